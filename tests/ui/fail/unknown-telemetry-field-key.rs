use telemetry_core::Telemetry;

#[derive(Telemetry)]
struct Stats {
    #[telemetry(round)]
    documents: u64,
}

fn main() {}

use telemetry_core::Telemetry;

#[derive(Telemetry)]
struct Collection {
    documents: u64,
    title: String,
}

fn main() {}

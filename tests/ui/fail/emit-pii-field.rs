use telemetry_core::Telemetry;

#[derive(Telemetry)]
struct Account {
    plan_count: u32,
    #[pii]
    holder: String,
}

fn main() {}

use telemetry_core::count_usage;

#[count_usage]
struct Store {
    docs: Vec<String>,
}

fn main() {
    let _ = Store { docs: Vec::new() };
}

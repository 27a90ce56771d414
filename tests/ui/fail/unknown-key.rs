use telemetry_core::count_usage;

#[count_usage(label = "x")]
fn handler() {}

fn main() {
    handler();
}

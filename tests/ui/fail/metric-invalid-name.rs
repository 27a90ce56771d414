/// Metric names follow the naming rule, checked at compile time.
fn main() {
    let _ = telemetry_core::histogram!("export size");
    let _ = telemetry_core::gauge!("queue", labels(shard: u8));
}

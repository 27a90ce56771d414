/// A plain-API label names its type, whose closed set of values the manifest lists.
fn main() {
    let _ = telemetry_core::counter!("exports", labels(format));
}

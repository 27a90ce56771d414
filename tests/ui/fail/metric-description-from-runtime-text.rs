/// A description is shown in the manifest as written: a string literal, never a value.
fn main() {
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    let _ = telemetry_core::counter!("exports", description = host.leak());
}

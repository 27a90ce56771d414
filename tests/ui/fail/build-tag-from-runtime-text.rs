/// A build tag is a string literal in the product's code: a host name read at run time does
/// not compile.
fn main() {
    let host: &'static str = std::env::var("HOSTNAME").unwrap_or_default().leak();
    let _ = telemetry_core::build_facts!(tag = host);
}

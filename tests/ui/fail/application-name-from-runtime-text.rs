use telemetry_core::Application;

/// The application's name is text fixed at compile time, never a value made at run time.
fn main() {
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    let _ = Application::new(&host, "1.0.0");
}

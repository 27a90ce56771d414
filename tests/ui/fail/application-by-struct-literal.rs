use telemetry_core::Application;

/// The application's fields are private: only `Application::new` (with its grammar) makes one.
fn main() {
    let _ = Application {
        name: "alice@example.com".to_owned(),
        version: "1.0.0".to_owned(),
    };
}

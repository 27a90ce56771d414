use telemetry_core::Telemetry;

/// An event's name becomes the report's trigger: a declared identifier, never free text.
#[derive(Telemetry)]
#[telemetry(event = "User signed up: alice@example.com")]
struct SignedUp {}

fn main() {}

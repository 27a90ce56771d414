use telemetry_core::{Pii, Telemetry};

#[derive(Telemetry)]
struct Session {
    active: bool,
    owner: Pii<String>,
}

fn main() {}

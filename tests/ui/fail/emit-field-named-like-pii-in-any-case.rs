use telemetry_core::Telemetry;

/// Names are split at case changes and digits, and plurals are folded.
#[derive(Telemetry)]
#[allow(non_snake_case)]
struct Session {
    userEmail: u64,
    clientIp: u32,
    emails: u32,
    email2: u32,
    remote_addr: u32,
    device_id: u64,
    nickname_count: u32,
}

fn main() {}

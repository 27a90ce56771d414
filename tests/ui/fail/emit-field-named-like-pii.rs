use telemetry_core::Telemetry;

/// Both bad fields are reported at once.
#[derive(Telemetry)]
struct Signup {
    email: u64,
    plan_count: u32,
    client_ip_address: u32,
}

fn main() {}

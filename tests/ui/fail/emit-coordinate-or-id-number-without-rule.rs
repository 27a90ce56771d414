use telemetry_core::Telemetry;

/// Numbers whose names say coordinates, postal codes or people's ids need a rule too.
#[derive(Telemetry)]
struct Visit {
    lat: f64,
    lng: f64,
    postal_code: u32,
    user_id: u64,
    #[telemetry(rename = "email")]
    contact: u32,
}

fn main() {}

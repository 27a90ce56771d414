// A product's payload is derive-checked like a section: a field named like personal data
// does not compile, nor does a free-text payload name, and a type not derived as a payload is
// refused by the shape.
use telemetry_core::payload::{InstanceId, OutgoingReport};
use telemetry_core::reporter::Reporter;
use telemetry_core::{Application, Telemetry};

#[derive(Telemetry)]
#[telemetry(payload = "product")]
struct Message {
    id: InstanceId,
    hostname: String,
    user_email: u64,
}

#[derive(Telemetry)]
#[telemetry(payload = "Product Payload")]
struct BadName {
    count: u64,
}

#[derive(Telemetry)]
struct NotAPayload {
    count: u64,
}

fn main() {
    let _ = Reporter::builder(Application::new("app", "1.0.0"))
        .payload_shape(|_: &OutgoingReport| NotAPayload { count: 1 });
}

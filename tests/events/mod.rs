//! An event type for the tests, named by the test that sends it (the name is kept in the
//! event's value: `sections.event.name`).

use telemetry_core::Telemetry;

/// One test event.
#[derive(Telemetry)]
#[telemetry(event = "test_event")]
pub struct TestEvent {
    #[telemetry(verbatim = "a name chosen by the test")]
    pub name: String,
}

/// A test event named `name`.
#[allow(dead_code)]
pub fn event(name: impl Into<String>) -> TestEvent {
    TestEvent { name: name.into() }
}

/// The trigger of a report body as the tests name it: `event:{name}` for a test event.
#[allow(dead_code)]
pub fn trigger(body: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    match value["sections"]["event"]["name"].as_str() {
        Some(name) => format!("event:{name}"),
        None => value["trigger"].as_str().unwrap_or_default().to_owned(),
    }
}

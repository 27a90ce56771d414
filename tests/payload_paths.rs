//! One payload, many views: the HTTP body, `Reporter::payload_json`, `preview_json`, the
//! end-user `show` command and `/telemetry?details_level=3&anonymize=true` come from one
//! function and are the same bytes. (The body is compared with the timestamp set aside, since
//! it was made a moment earlier.)

mod receiver;

use receiver::{Mode, Receiver, eventually, settle};
use std::sync::Arc;
use std::time::Duration;
use telemetry_core::consent::ConsentBuilder;
use telemetry_core::disclosure::Disclosure;
use telemetry_core::export::endpoint::Endpoints;
use telemetry_core::identity::Identity;
use telemetry_core::reporter::{FakeClock, HttpConfig, Reporter, ReporterBuilder};
use telemetry_core::{Application, Telemetry};

/// The product's own section.
#[derive(Clone, Telemetry)]
#[telemetry(section = "configuration")]
struct Configuration {
    shards: u32,
    #[telemetry(hash)]
    cluster_name: String,
}

fn without_timestamp(json: &str) -> String {
    let mut value: serde_json::Value = serde_json::from_str(json).unwrap();
    value["timestamp"] = serde_json::Value::Null;
    value["report_id"] = serde_json::Value::Null;
    value.to_string()
}

/// The report's id aside: the end-user command runs as a process of its own, whose next
/// report has an id of its own.
fn without_id(json: &str) -> String {
    let mut value: serde_json::Value = serde_json::from_str(json).unwrap();
    value["report_id"] = serde_json::Value::Null;
    value.to_string()
}

#[test]
fn every_view_of_the_payload_is_the_same_bytes() {
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    let state = std::env::temp_dir().join(format!("telemetry-payload-{}", uuid::Uuid::new_v4()));
    let clock = Arc::new(FakeClock::new());
    let builder = || -> ReporterBuilder {
        Reporter::builder(Application::new("payload-app", "2.1.0"))
            .consent(
                ConsentBuilder::new()
                    .environment(|_| None)
                    .flag("--telemetry", Some("enable")),
            )
            .disclosure(Disclosure::new("P", "Test Ltd", "setting X=1", "L").to_stderr(false))
            .endpoint(HttpConfig::new(receiver.url()))
            .state_dir(&state)
            .identity(Identity::Installation)
            .clock(clock.clone())
            .section(|| Configuration {
                shards: 123_456_789,
                cluster_name: "customers-eu".into(),
            })
            .system_facts(telemetry_core::build_facts!())
    };
    let ops = telemetry_core::counter!("payload.ops").unwrap();
    ops.increment_by(1_234_567);
    let reporter = Arc::new(builder().start().unwrap());
    clock.advance(Duration::from_secs(3601));
    eventually("the first report", || receiver.requests() >= 1);
    settle(&reporter, &clock);
    let sent = receiver.bodies()[0].clone();

    // The views, made within one second of each other.
    let endpoints =
        Endpoints::new(Application::new("payload-app", "2.1.0")).with_reporter(reporter.clone());
    let views = loop {
        let before = reporter.preview_json();
        let views = [
            before.clone(),
            reporter.payload_json().unwrap(),
            builder().preview().unwrap().0,
            endpoints
                .handle("/telemetry?details_level=3&anonymize=true", None)
                .body,
        ];
        if views
            .iter()
            .all(|v| without_timestamp(v) == without_timestamp(&before))
        {
            // Same content; the same second too, unless a second ended in between. The views
            // of the running reporter carry the id of its next report, byte for byte.
            let own = [&views[0], &views[1], &views[3]];
            if own.iter().all(|v| **v == before) && without_id(&views[2]) == without_id(&before) {
                break views;
            }
        } else {
            panic!("the views differ: {views:#?}");
        }
    };
    assert_eq!(without_timestamp(&sent), without_timestamp(&views[0]));
    let payload: serde_json::Value = serde_json::from_str(&views[0]).unwrap();
    assert_eq!(payload["trigger"], "schedule");
    assert!(payload["installation_id"].is_string());
    assert_eq!(
        payload["metrics"]["counters"]["payload.ops"]["series"][0]["value"],
        1_234_560
    );
    assert_eq!(payload["sections"]["configuration"]["shards"], 123_456_000);
    assert!(!views[0].contains("customers-eu"));
    drop(endpoints);
    drop(reporter);
    let _ = std::fs::remove_dir_all(&state);
}

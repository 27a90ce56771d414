//! Reports made by events: a real reporter's event report is accepted and stored; an event
//! the manifest does not declare, or a field its event does not have, is refused.

mod common;

use common::{Running, backends};
use std::time::{Duration, Instant};
use telemetry_core::consent::ConsentBuilder;
use telemetry_core::reporter::{HttpConfig, Reporter};

#[test]
fn event_reports_are_validated_against_the_declared_events() {
    common::declare();
    let (_, storage) = backends("events").remove(0);
    let running = Running::start(common::config(), storage.clone());
    let base = running.url.clone();
    common::register(&base, &["1.0.0"]);
    assert!(
        common::manifest()
            .events
            .iter()
            .any(|e| e.name == "search_failed")
    );

    let state = std::env::temp_dir().join(format!(
        "collector-events-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let reporter = Reporter::builder(telemetry_core::Application::new(common::PRODUCT, "1.0.0"))
        .consent(ConsentBuilder::new().flag("--telemetry", Some("enable")))
        .endpoint(HttpConfig::new(format!("{base}/v1/report")))
        .upload_config(format!("{base}/v1/upload-config/{}", common::PRODUCT))
        .state_dir(&state)
        .start()
        .unwrap();
    reporter.send_event(&common::SearchFailed {
        terms: 3,
        collection: "alice's invoices".to_owned(),
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while reporter.status().delivered == 0
        && reporter.status().last_error.is_none()
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = reporter.status();
    assert_eq!(
        (status.delivered, status.last_error.clone()),
        (1, None),
        "{status:?}"
    );
    drop(reporter);
    assert!(storage.count_reports(common::PRODUCT, None).unwrap() >= 1);

    let mut event = common::report(&common::Fake::default());
    event["trigger"] = serde_json::json!("event:search_failed");
    event["sections"]["event"] =
        serde_json::json!({ "terms": 2, "collection": "5d41402abc4b2a76b9719d911017c592" });
    assert_eq!(
        common::send(&base, &event).status,
        200,
        "a declared event with its fields"
    );
    event["report_id"] = serde_json::json!(uuid::Uuid::now_v7().to_string());
    event["sections"]["event"]["query"] = serde_json::json!("alice@example.com");
    let refused = common::send(&base, &event);
    assert_eq!(
        (refused.status, refused.json()["reason"].as_str()),
        (422, Some("undeclared_field")),
        "{refused:?}"
    );
    let mut not_an_event = common::report(&common::Fake::default());
    not_an_event["sections"]["event"] = serde_json::json!({ "terms": 2 });
    let refused = common::send(&base, &not_an_event);
    assert_eq!(
        refused.status, 422,
        "an event section in a scheduled report: {refused:?}"
    );
    let _ = std::fs::remove_dir_all(&state);
}

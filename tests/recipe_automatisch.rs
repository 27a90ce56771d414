//! The Automatisch example against its "Telemetry" documentation: on by default and off with
//! `TELEMETRY_ENABLED=false`; each user action leaves at once as an event with its typed data
//! and no credentials or payloads; diagnostics every six hours; the organization and instance
//! ids in every call. Library defaults; only the clock is fake.

#[path = "../examples/automatisch.rs"]
#[allow(dead_code)]
mod automatisch;
mod recipes;

use automatisch::{
    App, ConnectionCreated, ExecutionFinished, ExecutionStatus, FlowCreated, ServiceType, Settings,
};
use std::sync::Arc;
use std::time::Duration;
use telemetry_core::Pii;
use telemetry_core::reporter::{FakeClock, HttpConfig};
use telemetry_core::testing::Receiver;

const HOUR: Duration = Duration::from_secs(3600);

fn settings(env: &[(&'static str, &str)]) -> Settings {
    Settings {
        environment: recipes::environment(env),
        state_dir: recipes::state_dir("automatisch"),
        organization_id: uuid::Uuid::new_v4(),
        service: ServiceType::Worker,
    }
}

fn flow() -> FlowCreated {
    FlowCreated {
        steps: vec![App::Github, App::Slack],
        active: true,
        name: "Alice's secret flow".into(),
    }
}

#[test]
fn events_leave_when_they_happen_with_typed_data_and_diagnostics_every_six_hours() {
    let receiver = Receiver::start().unwrap();
    let clock = Arc::new(FakeClock::new());
    let settings = settings(&[]);
    let reporter = automatisch::reporter(&settings)
        .endpoint(HttpConfig::new(receiver.url()))
        .clock(clock.clone())
        .start()
        .unwrap();

    // User actions: sent at once, the clock standing still.
    reporter.send_event(&flow());
    reporter.send_event(&ConnectionCreated {
        app: App::Github,
        verified: true,
        credentials: Pii::new("ghp_secret-token".into()),
    });
    reporter.send_event(&ExecutionFinished {
        status: ExecutionStatus::Failure,
        steps: 2,
        duration: Duration::from_millis(1234),
        payload: Pii::new("customer@example.com".into()),
    });
    recipes::wait_for(&receiver, 3);
    let events = recipes::bodies(&receiver);
    let names: Vec<&str> = events
        .iter()
        .map(|b| b["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["flowCreated", "connectionCreated", "executionFinished"]
    );
    let flow = &events[0]["properties"];
    assert_eq!(flow["steps"], serde_json::json!(["Github", "Slack"]));
    assert_eq!(flow["active"], true);
    assert!(
        !flow["name"].as_str().unwrap().contains("Alice"),
        "hashed: {flow}"
    );
    assert_eq!(events[1]["properties"]["app"], "Github");
    assert!(events[1]["properties"].get("credentials").is_none());
    assert_eq!(events[2]["properties"]["status"], "Failure");
    assert!(events[2]["properties"].get("payload").is_none());
    for body in &events {
        assert_eq!(body["organizationId"], settings.organization_id.to_string());
        assert!(body["diagnostics"].is_null());
        let text = body.to_string();
        for secret in ["ghp_secret", "customer@example.com", "Alice"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
    let instance = events[0]["instanceId"].as_str().unwrap().to_owned();
    assert!(events.iter().all(|b| b["instanceId"] == instance.as_str()));

    // Diagnostics: none before six hours, then every six hours.
    clock.advance(6 * HOUR - Duration::from_secs(1));
    recipes::settle(&reporter, &clock);
    assert_eq!(receiver.requests().len(), 3);
    clock.advance(Duration::from_secs(1));
    recipes::wait_for(&receiver, 4);
    clock.advance(6 * HOUR);
    recipes::wait_for(&receiver, 5);
    for body in &recipes::bodies(&receiver)[3..] {
        assert_eq!(body["event"], "diagnosticInfo");
        let diagnostics = &body["diagnostics"];
        assert_eq!(diagnostics["automatischVersion"], "0.10.0");
        assert_eq!(diagnostics["serviceType"], "Worker");
        assert_eq!(diagnostics["osType"], std::env::consts::OS);
        assert!(diagnostics["cpus"].as_u64().unwrap() >= 1);
        assert!(body["properties"].is_null());
        assert_eq!(body["instanceId"], instance.as_str());
    }
    assert!(reporter.shutdown());
    let _ = std::fs::remove_dir_all(&settings.state_dir);
}

#[test]
fn telemetry_enabled_false_means_no_event_and_no_diagnostics() {
    let receiver = Receiver::start().unwrap();
    let clock = Arc::new(FakeClock::new());
    let settings = settings(&[("TELEMETRY_ENABLED", "false")]);
    let reporter = automatisch::reporter(&settings)
        .endpoint(HttpConfig::new(receiver.url()))
        .clock(clock.clone())
        .start()
        .unwrap();
    for _ in 0..8 {
        reporter.send_event(&flow());
        clock.advance(6 * HOUR);
        recipes::settle(&reporter, &clock);
    }
    assert!(reporter.shutdown());
    assert!(receiver.requests().is_empty());
    let _ = std::fs::remove_dir_all(&settings.state_dir);
}

#[test]
fn events_sent_just_before_shutdown_still_leave_and_no_diagnostics_do() {
    let receiver = Receiver::start().unwrap();
    let settings = settings(&[]);
    let reporter = automatisch::reporter(&settings)
        .endpoint(HttpConfig::new(receiver.url()))
        .clock(Arc::new(FakeClock::new()))
        .start()
        .unwrap();
    reporter.send_event(&flow());
    reporter.send_event(&ExecutionFinished {
        status: ExecutionStatus::Success,
        steps: 1,
        duration: Duration::from_millis(5),
        payload: Pii::new(String::new()),
    });
    assert!(reporter.shutdown());
    let names: Vec<String> = recipes::bodies(&receiver)
        .iter()
        .map(|b| b["event"].as_str().unwrap().to_owned())
        .collect();
    // No diagnostics at shutdown: they leave every six hours.
    assert_eq!(names, ["flowCreated", "executionFinished"]);
    let _ = std::fs::remove_dir_all(&settings.state_dir);
}

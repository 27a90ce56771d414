//! The Unleash example against its "Data collection" documentation: `CHECK_VERSION` off means
//! no request at all, `SEND_TELEMETRY` off leaves the version check without the feature usage
//! data, and with both on the counts come from the callback gauges as they are when the report
//! is made. Library defaults; only the clock is fake.

mod recipes;
#[path = "../examples/unleash.rs"]
#[allow(dead_code)]
mod unleash;

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use telemetry_core::reporter::{FakeClock, HttpConfig};
use telemetry_core::testing::Receiver;
use unleash::{Metrics, Settings, Store};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

fn store() -> &'static (Arc<Store>, Metrics) {
    static STORE: OnceLock<(Arc<Store>, Metrics)> = OnceLock::new();
    STORE.get_or_init(|| {
        let store = Arc::new(Store::default());
        let metrics = Metrics::new(&store).unwrap();
        (store, metrics)
    })
}

fn settings(env: &[(&'static str, &str)]) -> Settings {
    Settings {
        environment: recipes::environment(env),
        state_dir: recipes::state_dir("unleash"),
    }
}

/// Runs the example's reporter for three days of fake time, reports at 1 h, 25 h and 49 h;
/// `between` runs after each report. Returns the bodies.
fn run(settings: &Settings, mut between: impl FnMut(usize)) -> Vec<serde_json::Value> {
    let receiver = Receiver::start().unwrap().with_latest_version("5.3.1");
    let clock = Arc::new(FakeClock::new());
    let reporter = unleash::reporter(settings)
        .endpoint(HttpConfig::new(receiver.url()))
        .clock(clock.clone())
        .start()
        .unwrap();
    clock.advance(HOUR);
    for day in 0..3 {
        recipes::settle(&reporter, &clock);
        between(day);
        clock.advance(DAY);
    }
    recipes::settle(&reporter, &clock);
    let announced = reporter.update_available();
    assert!(reporter.shutdown());
    let _ = std::fs::remove_dir_all(&settings.state_dir);
    let bodies = recipes::bodies(&receiver);
    if !bodies.is_empty() {
        assert_eq!(
            announced.as_deref(),
            Some("5.3.1"),
            "the version check's answer"
        );
    }
    bodies
}

#[test]
fn check_version_off_means_nothing_at_all() {
    for off in ["false", "0", "yes", "", "TRUE "] {
        let settings = settings(&[("CHECK_VERSION", off), ("SEND_TELEMETRY", "true")]);
        assert!(run(&settings, |_| {}).is_empty(), "CHECK_VERSION={off:?}");
    }
}

#[test]
fn send_telemetry_off_leaves_the_version_check_without_feature_usage() {
    store();
    let settings = settings(&[("CHECK_VERSION", "t"), ("SEND_TELEMETRY", "f")]);
    let bodies = run(&settings, |_| {});
    assert!(bodies.len() >= 3, "a version check each day: {bodies:?}");
    for body in &bodies {
        assert_eq!(body["versions"]["oss"], "5.3.0");
        assert!(uuid::Uuid::parse_str(body["instanceId"].as_str().unwrap()).is_ok());
        assert!(body["featureInfo"].is_null(), "{body}");
    }
}

#[test]
fn feature_usage_counts_come_from_the_callback_gauges_when_each_report_is_made() {
    let (store, metrics) = store();
    let settings = settings(&[]);
    store.feature_toggles.store(10, Ordering::Relaxed);
    store.users.store(123_456_789, Ordering::Relaxed);
    store.projects.store(3, Ordering::Relaxed);
    let bodies = run(&settings, |day| {
        // The product's state changes between reports; the next report reads it anew.
        store
            .feature_toggles
            .store(10 + day as i64 + 1, Ordering::Relaxed);
        metrics.exports.increment();
    });
    let toggles: Vec<i64> = bodies
        .iter()
        .filter_map(|b| b["featureInfo"]["featureToggles"].as_i64())
        .collect();
    assert!(toggles.len() >= 3, "{bodies:?}");
    assert_eq!(
        &toggles[..3],
        &[10, 11, 12],
        "read when each report is made"
    );
    let first = &bodies[0]["featureInfo"];
    assert_eq!(first["users"], 123_456_000, "rounded");
    assert_eq!(first["projects"], 3);
    for key in [
        "featureToggles",
        "users",
        "projects",
        "contextFields",
        "groups",
        "roles",
        "environments",
        "segments",
        "strategies",
        "featureExports",
        "featureImports",
    ] {
        assert!(first.get(key).is_some(), "{key} in {first}");
    }
    // Counters are counted from the last report: one export each day.
    assert_eq!(bodies[1]["featureInfo"]["featureExports"], 1);
    // One instance id for all of them.
    let ids: std::collections::BTreeSet<&str> = bodies
        .iter()
        .map(|b| b["instanceId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1);
}

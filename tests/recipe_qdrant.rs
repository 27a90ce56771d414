//! The Qdrant example against its "Usage Statistics" documentation: on by default, each of the
//! three opt-outs alone means no request, the payload carries the per-start `id` and hashed
//! collection names with big numbers rounded, `/telemetry?anonymize=true` shows exactly what
//! is sent, and the `id` is stored nowhere. Library defaults; only the clock is fake.

#[path = "../examples/qdrant.rs"]
#[allow(dead_code)]
mod qdrant;
mod recipes;

use qdrant::{Engine, Settings};
use std::sync::Arc;
use std::time::Duration;
use telemetry_core::export::endpoint::Endpoints;
use telemetry_core::reporter::{FakeClock, HttpConfig};
use telemetry_core::testing::Receiver;

const HOUR: Duration = Duration::from_secs(3600);

/// The metrics are the process's: one test at a time, so one test's requests are not in the
/// other's counts.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn settings(
    env: &'static [(&'static str, &'static str)],
    config: Option<&str>,
    flag: bool,
) -> Settings {
    Settings {
        environment: Arc::new(move |name| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }),
        config_telemetry_disabled: config.map(str::to_owned),
        disable_telemetry_flag: flag,
        state_dir: std::env::temp_dir().join(format!("qdrant-recipe-{}", uuid::Uuid::new_v4())),
    }
}

/// Runs the example's reporter for two days of fake time; returns the request bodies.
fn run(settings: &Settings, engine: Arc<Engine>) -> Vec<serde_json::Value> {
    let receiver = Receiver::start().unwrap();
    let clock = Arc::new(FakeClock::new());
    let reporter = qdrant::reporter(settings, engine.clone())
        .endpoint(HttpConfig::new(receiver.url()))
        .clock(clock.clone())
        .start()
        .unwrap();
    for _ in 0..48 {
        engine.search("customers");
        clock.advance(HOUR);
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(reporter.shutdown());
    let _ = std::fs::remove_dir_all(&settings.state_dir);
    recipes::bodies(&receiver)
}

#[test]
fn each_opt_out_alone_means_no_request() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let off: [Settings; 5] = [
        settings(&[("QDRANT__TELEMETRY_DISABLED", "true")], None, false),
        settings(&[], Some("true"), false),
        settings(&[], None, true),
        // A word naming an opt-out opts out.
        settings(&[("QDRANT__TELEMETRY_DISABLED", "disabled")], None, false),
        // Any one disables, even when another says the opposite.
        settings(
            &[("QDRANT__TELEMETRY_DISABLED", "false")],
            Some("true"),
            false,
        ),
    ];
    for settings in &off {
        let engine = Arc::new(Engine::new().unwrap());
        assert!(run(settings, engine).is_empty());
    }
}

#[test]
fn the_payload_is_the_telemetry_api_answer_with_its_id_hashed_names_and_rounded_numbers() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let settings = settings(&[], None, false);
    let engine = Arc::new(Engine::new().unwrap());
    engine.create_collection("customers");
    engine.create_collection("alice@example.com");
    engine.upsert("customers", 123_456_789);
    // A critical error, counted by where it happened; its message names a collection.
    telemetry_core::crash::install_panic_hook(telemetry_core::crash::PanicHookConfig::new([
        "recipe_qdrant",
    ]));
    let engine_ref = engine.clone();
    assert!(std::panic::catch_unwind(move || engine_ref.optimize("alice-private-notes")).is_err());

    // What `/telemetry?anonymize=true` shows is what the reporter sends.
    let receiver = Receiver::start().unwrap();
    let clock = Arc::new(FakeClock::new());
    let reporter = Arc::new(
        qdrant::reporter(&settings, engine.clone())
            .endpoint(HttpConfig::new(receiver.url()))
            .clock(clock.clone())
            .start()
            .unwrap(),
    );
    let endpoints = Endpoints::new(telemetry_core::application!()).with_reporter(reporter.clone());
    let shown = endpoints
        .handle("/telemetry?details_level=6&anonymize=true", None)
        .body;
    clock.advance(HOUR);
    recipes::wait_for(&receiver, 1);
    let sent = receiver.requests()[0].body.clone();
    assert_eq!(String::from_utf8(sent).unwrap(), shown);

    let body: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(body["id"], telemetry_core::instance_id().to_string());
    assert_eq!(body["app"]["name"], "qdrant");
    assert_eq!(body["app"]["version"], "1.7.4");
    assert!(body["app"]["system"]["cores"].as_u64().unwrap() >= 1);
    assert_eq!(body["collections"]["number_of_collections"], 2);
    let collections = body["collections"]["collections"].as_array().unwrap();
    let vectors: Vec<u64> = collections
        .iter()
        .map(|c| c["vectors"].as_u64().unwrap())
        .collect();
    assert!(vectors.contains(&123_456_000), "rounded: {vectors:?}");
    for collection in collections {
        let id = collection["id"].as_str().unwrap();
        assert!(!id.contains("customers") && !id.contains('@'), "{id}");
    }
    assert_eq!(body["requests"]["rest"]["CreateCollection"], 2);
    assert_eq!(body["requests"]["rest"]["Upsert"], 1);
    let errors = body["critical_errors"].as_object().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let (location, count) = errors.iter().next().unwrap();
    assert!(
        location.contains("optimize"),
        "where it happened: {location}"
    );
    assert_eq!(count, 1);
    assert!(!shown.contains("customers") && !shown.contains("alice"));

    drop(endpoints);
    assert!(Arc::into_inner(reporter).unwrap().shutdown());
    // The id is made at each start and stored nowhere: not in a last-report file, not in a
    // spool (the state directory keeps only the hashing key).
    let id = telemetry_core::instance_id().to_string();
    for entry in walk(&settings.state_dir) {
        let text = std::fs::read(&entry).unwrap_or_default();
        let kept = String::from_utf8_lossy(&text);
        assert!(!kept.contains(&id), "{} keeps the id", entry.display());
    }
    let _ = std::fs::remove_dir_all(&settings.state_dir);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

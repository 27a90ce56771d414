//! The reporter honours the upload configuration the collector serves: a `telemetry_core`
//! reporter told its URL sends only the metrics it lists, at their rates, and reads the
//! version notice from the answer.

mod common;

use common::{Running, backends};
use std::time::Duration;
use telemetry_core::consent::ConsentBuilder;
use telemetry_core::identity::Identity;
use telemetry_core::reporter::{HttpConfig, Reporter};

fn reporter(base: &str, state: &std::path::Path, upload_config: bool) -> Reporter {
    let mut builder = Reporter::builder(telemetry_core::Application::new(common::PRODUCT, "1.0.0"))
        .consent(ConsentBuilder::new().flag("--telemetry", Some("enable")))
        .endpoint(HttpConfig::new(format!("{base}/v1/report")))
        .identity(Identity::Installation)
        .state_dir(state)
        .shutdown_timeout(Duration::from_secs(10))
        .initial_delay(Duration::ZERO)
        .section(|| common::Setup {
            shards: 2,
            mode: common::Mode::Fast,
        });
    if upload_config {
        builder = builder.upload_config(format!("{base}/v1/upload-config/{}", common::PRODUCT));
    }
    builder.start().expect("reporter")
}

/// The reporter's status once `done` holds (at most 20 s).
fn wait_for(
    reporter: &Reporter,
    done: impl Fn(&telemetry_core::reporter::ReporterStatus) -> bool,
) -> telemetry_core::reporter::ReporterStatus {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = reporter.status();
        if done(&status) || std::time::Instant::now() > deadline {
            return status;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_reporter_sends_only_what_the_served_upload_configuration_allows() {
    common::declare();
    let (_, storage) = backends("upload").remove(0);
    let mut config = common::config();
    let product = config.products.get_mut(common::PRODUCT).unwrap();
    product.deny = vec!["suite.export.calls".to_owned()];
    product
        .sampling
        .insert("suite.import.calls".to_owned(), 0.0);
    let running = Running::start(config, storage.clone());
    let base = running.url.clone();
    common::register(&base, &["1.0.0"]);

    let served = common::get(&format!("{base}/v1/upload-config/{}", common::PRODUCT)).json();
    let names: Vec<&str> = served["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"suite.search.calls") && !names.contains(&"suite.export.calls"),
        "{served}"
    );
    let rate = |name: &str| {
        served["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap()["rate"]
            .as_f64()
    };
    assert_eq!(
        (rate("suite.import.calls"), rate("suite.search.calls")),
        (Some(0.0), Some(1.0))
    );
    assert_eq!(
        common::get(&format!("{base}/v1/upload-config/nothing")).status,
        404
    );

    // This test binary also has metrics its manifest does not list (the collector's own, the
    // framework's): without the configuration the report is refused as a whole.
    let state = std::env::temp_dir().join(format!(
        "collector-upload-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let without = reporter(&base, &state.join("without"), false);
    let status = wait_for(&without, |s| s.last_error.is_some());
    assert_eq!(status.last_error.as_deref(), Some("HTTP 422"), "{status:?}");
    assert_eq!(
        storage.count_reports(common::PRODUCT, None).unwrap(),
        0,
        "refused: {status:?}"
    );
    without.shutdown();

    let with = reporter(&base, &state.join("with"), true);
    let status = wait_for(&with, |s| s.delivered >= 1);
    assert_eq!(status.last_error, None, "{status:?}");
    assert_eq!(
        with.latest_version().as_deref(),
        Some("2.0.0"),
        "the version notice is read"
    );
    with.shutdown();
    // The first report and the one made at shutdown.
    assert_eq!(storage.count_reports(common::PRODUCT, None).unwrap(), 2);
    let rollup = telemetry_collector::rollup::Rollup::compute(
        &*storage,
        common::PRODUCT,
        telemetry_collector::storage::Period::Day,
        "2000-01-01",
    )
    .unwrap();
    let used: Vec<&str> = rollup.features.iter().map(|f| f.feature.as_str()).collect();
    assert!(used.contains(&"suite.search.calls"), "{used:?}");
    assert!(
        !used.contains(&"suite.export.calls"),
        "denied, yet sent: {used:?}"
    );
    assert!(
        !used.contains(&"suite.import.calls"),
        "sampled at 0, yet sent: {used:?}"
    );
    let _ = std::fs::remove_dir_all(&state);
}

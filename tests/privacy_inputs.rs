//! Inputs next to the guarded ones: schedule names, build facts, sink errors.

use std::time::Duration;
use telemetry_core::facts::SystemFacts;
use telemetry_core::reporter::{Reporter, ReporterError};
use telemetry_core::{Application, JsonFileSink, Sink};

const EMAIL: &str = "alice@example.com";

#[test]
fn a_schedule_name_is_a_declared_identifier() {
    let leaked: &'static str = format!("nightly-{EMAIL}").leak();
    let err = Reporter::builder(Application::new("sched-app", "1.0.0"))
        .schedule(leaked, Duration::from_secs(60))
        .start()
        .err()
        .expect("refused");
    assert!(matches!(err, ReporterError::ScheduleName), "{err}");
    assert!(!err.to_string().contains("alice"), "{err}");
    let ok = Reporter::builder(Application::new("sched-app", "1.0.0"))
        .schedule("diagnostics", Duration::from_secs(6 * 3600))
        .start();
    assert!(ok.is_ok());
}

#[test]
fn build_facts_with_free_text_are_sent_as_other() {
    // Past the macro (which takes string literals only), through its hidden constructor: the
    // texts are still checked when the facts are collected.
    let feature: &'static str = format!("feature-{EMAIL}").leak();
    let build = telemetry_core::facts::BuildFacts::__declared(
        "1.0.0+db01.corp.example.com",
        Some("/home/alice/build"),
        true,
        &["tls", feature],
    );
    let facts = SystemFacts::collect(build);
    assert_eq!(facts.build().features(), ["tls", "other"]);
    assert_eq!(facts.build().version(), "other");
    assert_eq!(facts.build().tag(), Some("other"));
}

#[test]
fn a_sink_error_names_its_file_not_its_path() {
    let sink = JsonFileSink::new("/home/alice/no/such/dir/report.json");
    let report = telemetry_core::Report::collect(Application::new("sink-app", "1.0.0"));
    let err = sink.send(&report).unwrap_err().to_string();
    assert!(
        err.contains("report.json") && !err.contains("/home/alice"),
        "{err}"
    );
}

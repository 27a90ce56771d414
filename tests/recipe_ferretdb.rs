//! The FerretDB example against its "Telemetry reporting" documentation: the three states and
//! their sources, one hour of nothing while undecided, the installation UUID kept across
//! restarts, query errors in the payload, and the version notice announced only when the
//! collector's version is newer than the running one. Library defaults; only the clock is fake.

#[path = "../examples/ferretdb.rs"]
#[allow(dead_code)]
mod ferretdb;
mod recipes;

use ferretdb::{Command, ErrorCode, Operator, Server, Settings};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use telemetry_core::consent::Consent;
use telemetry_core::reporter::{FakeClock, HttpConfig, Reporter, ReporterError};
use telemetry_core::testing::Receiver;

const HOUR: Duration = Duration::from_secs(3600);

fn settings(env: &[(&'static str, &str)], executable: &str, flag: Option<&str>) -> Settings {
    Settings {
        environment: recipes::environment(env),
        executable: PathBuf::from(executable),
        telemetry_flag: flag.map(str::to_owned),
        state_dir: recipes::state_dir("ferretdb"),
    }
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server::new().unwrap())
}

fn start(
    settings: &Settings,
    version: &'static str,
    receiver: &Receiver,
) -> (Reporter, Arc<FakeClock>) {
    let clock = Arc::new(FakeClock::new());
    let reporter = ferretdb::reporter(settings, version)
        .endpoint(HttpConfig::new(receiver.url()))
        .clock(clock.clone())
        .start()
        .unwrap();
    (reporter, clock)
}

#[test]
fn every_documented_way_to_disable_means_no_request_and_no_version_check() {
    let receiver = Receiver::start().unwrap().with_latest_version("9.9.9");
    let mut off = Vec::new();
    for value in [
        "0", "f", "disable", "no", "false", "n", "disabled", "optout", "opt-out", "disallow",
        "forbid",
    ] {
        off.push(settings(&[], "/usr/bin/ferretdb", Some(value)));
    }
    for dnt in [
        &[("DO_NOT_TRACK", "1")][..],
        &[("DO_NOT_TRACK", "t")],
        &[("DO_NOT_TRACK", "true")],
        &[("DO_NOT_TRACK", "enable")],
    ] {
        off.push(settings(dnt, "/usr/bin/ferretdb", None));
    }
    off.push(settings(&[], "/usr/local/bin/ferretdb-donottrack", None));
    for settings in &off {
        let (reporter, clock) = start(settings, "1.0.0", &receiver);
        assert_eq!(reporter.consent().state, Consent::Disabled);
        for _ in 0..30 {
            clock.advance(HOUR);
        }
        recipes::settle(&reporter, &clock);
        assert_eq!(reporter.update_available(), None);
        assert!(ferretdb::startup_warnings(&reporter).is_empty());
        assert!(reporter.shutdown());
        let _ = std::fs::remove_dir_all(&settings.state_dir);
    }
    assert!(receiver.requests().is_empty());

    // "you cannot run the --telemetry flag until the donottrack string is removed"
    let renamed = settings(&[], "/usr/local/bin/ferretdb-donottrack", Some("enable"));
    let refused = ferretdb::reporter(&renamed, "1.0.0").start();
    assert!(matches!(refused, Err(ReporterError::Consent(_))));
}

#[test]
fn undecided_waits_an_hour_then_reports_with_the_installation_uuid_and_query_errors() {
    let receiver = Receiver::start().unwrap();
    let settings = settings(&[], "/usr/bin/ferretdb", None);
    let (reporter, clock) = start(&settings, "1.0.0", &receiver);
    assert_eq!(reporter.consent().state, Consent::Undecided);
    server().handle(
        Command::Find,
        2_000_000_000,
        Some((ErrorCode::NotImplemented, Operator::Regex)),
    );
    server().handle(
        Command::Insert,
        1_000_000,
        Some((ErrorCode::DuplicateKey, Operator::None)),
    );
    clock.advance(HOUR - Duration::from_secs(1));
    recipes::settle(&reporter, &clock);
    assert!(receiver.requests().is_empty(), "nothing during the hour");
    clock.advance(Duration::from_secs(1));
    recipes::wait_for(&receiver, 1);
    assert!(reporter.shutdown());
    let body: serde_json::Value = serde_json::from_slice(&receiver.requests()[0].body).unwrap();
    let uuid = body["uuid"].as_str().unwrap().to_owned();
    assert_eq!(uuid::Uuid::parse_str(&uuid).unwrap().get_version_num(), 4);
    assert_eq!(body["version"], "1.0.0");
    assert_eq!(body["backend"], "PostgreSQL");
    assert!(body["command_errors"]["Find"].as_u64().unwrap() >= 1);
    assert!(body["error_codes"]["DuplicateKey"].as_u64().unwrap() >= 1);
    assert!(body["operator_errors"]["Regex"].as_u64().unwrap() >= 1);
    assert!(body["command_seconds"]["Find"].as_f64().unwrap() > 0.0);
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "arch",
            "backend",
            "command_errors",
            "command_seconds",
            "error_codes",
            "operator_errors",
            "os",
            "package",
            "uuid",
            "version"
        ],
        "the page's data points and nothing else"
    );

    // The same installation UUID at the next start; the last report is kept.
    let (again, _clock) = start(&settings, "1.0.0", &receiver);
    assert_eq!(
        again.report().installation_id.map(|id| id.to_string()),
        Some(uuid)
    );
    assert!(settings.state_dir.join("telemetry.json").exists());
    assert!(again.shutdown());
    let _ = std::fs::remove_dir_all(&settings.state_dir);
}

#[test]
fn a_version_notice_is_announced_only_to_older_versions() {
    let receiver = Receiver::start().unwrap().with_latest_version("1.0.1");
    for (running, announced) in [
        ("1.0.0", true),
        ("1.0.1", false),
        ("2.0.0", false),
        ("1.0.1-rc.1", true),
    ] {
        let settings = settings(&[], "/usr/bin/ferretdb", Some("enable"));
        let (reporter, clock) = start(&settings, running, &receiver);
        clock.advance(HOUR);
        recipes::eventually("the collector's answer", || {
            reporter.latest_version().is_some()
        });
        assert_eq!(reporter.latest_version().as_deref(), Some("1.0.1"));
        let warnings = ferretdb::startup_warnings(&reporter);
        let status = ferretdb::server_status(&reporter);
        if announced {
            assert_eq!(
                reporter.update_available().as_deref(),
                Some("1.0.1"),
                "{running}"
            );
            assert_eq!(warnings.len(), 1, "{running}");
            assert!(
                warnings[0].contains("The latest version: 1.0.1"),
                "{warnings:?}"
            );
            assert_eq!(status["updateAvailable"], true);
        } else {
            assert_eq!(reporter.update_available(), None, "{running}");
            assert!(warnings.is_empty(), "{running}: {warnings:?}");
            assert_eq!(status["updateAvailable"], false);
        }
        assert_eq!(status["telemetry"], "enabled");
        assert!(reporter.shutdown());
        let _ = std::fs::remove_dir_all(&settings.state_dir);
    }
}

//! Each product's opt-out rules, taken from its public telemetry page, run against a real
//! loopback receiver with the library's defaults (delays, timeouts, retries); only the clock
//! is fake. Every opt-out must mean zero requests.

mod events;
mod receiver;

use events::event;
use receiver::{Mode, Receiver, eventually, settle};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use telemetry_core::consent::{
    Category, Combine, Consent, ConsentBuilder, Polarity, SourceKind, ValueRule,
};
use telemetry_core::disclosure::Disclosure;
use telemetry_core::reporter::{FakeClock, HttpConfig, Reporter, ReporterBuilder, ReporterError};
use telemetry_core::{Application, Report, Sink, SinkError};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

/// Sources reading `vars` only, with a plain executable name.
fn sources(vars: &[(&str, &str)]) -> ConsentBuilder {
    ConsentBuilder::new()
        .environment(env(vars))
        .executable("/usr/bin/server")
}

fn temp_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("telemetry-{name}-{}", uuid::Uuid::new_v4()))
}

fn builder(
    app: &'static str,
    receiver: &Receiver,
    clock: &Arc<FakeClock>,
    state: &PathBuf,
) -> ReporterBuilder {
    Reporter::builder(Application::new(app, "1.0.0"))
        .disclosure(
            Disclosure::new(app, "Test Ltd", "setting X=1", "https://example.invalid")
                .to_stderr(false),
        )
        .endpoint(HttpConfig::new(receiver.url()))
        .state_dir(state)
        .clock(clock.clone())
}

/// Lets `days` of fake time pass in hour steps, with an event every hour.
fn run_for(reporter: &Reporter, clock: &FakeClock, days: u32) {
    for _ in 0..days * 24 {
        reporter.send_event(&event("tick"));
        clock.advance(HOUR);
        settle(reporter, clock);
    }
}

/// Starts a reporter with `consent`, runs it for two days, shuts it down: the requests seen.
fn requests_under(app: &'static str, consent: ConsentBuilder) -> usize {
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    let clock = Arc::new(FakeClock::new());
    let state = temp_dir(app);
    let reporter = builder(app, &receiver, &clock, &state)
        .consent(consent)
        .start()
        .unwrap();
    run_for(&reporter, &clock, 2);
    assert!(reporter.shutdown());
    let _ = std::fs::remove_dir_all(&state);
    receiver.requests()
}

/// FerretDB's "Telemetry reporting" page: `--telemetry` with its disable values,
/// `DO_NOT_TRACK`, a `donottrack` executable, and the undecided hour whose data is sent.
#[test]
fn ferretdb() {
    let ferretdb =
        |vars: &[(&str, &str)], flag: Option<&str>| sources(vars).flag("--telemetry", flag);
    for off in [
        "0", "f", "disable", "no", "false", "n", "disabled", "optout", "opt-out", "disallow",
        "forbid",
    ] {
        let d = ferretdb(&[], Some(off)).resolve().unwrap();
        assert_eq!(d.state, Consent::Disabled, "--telemetry={off}");
    }
    assert_eq!(
        requests_under("ferret-flag", ferretdb(&[], Some("disable"))),
        0
    );
    for dnt in ["1", "t", "true", "enable"] {
        let d = ferretdb(&[("DO_NOT_TRACK", dnt)], None).resolve().unwrap();
        assert_eq!(d.state, Consent::Disabled, "DO_NOT_TRACK={dnt}");
    }
    assert_eq!(
        requests_under("ferret-dnt", ferretdb(&[("DO_NOT_TRACK", "true")], None)),
        0
    );
    assert_eq!(
        requests_under(
            "ferret-exe",
            ferretdb(&[], None).executable("/opt/ferretdb-donottrack")
        ),
        0
    );
    // "you cannot run the --telemetry flag until the donottrack string is removed"
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    let clock = Arc::new(FakeClock::new());
    let refused = builder("ferret-conflict", &receiver, &clock, &temp_dir("ferret"))
        .consent(ferretdb(&[], Some("enable")).executable("/opt/ferretdb-donottrack"))
        .start();
    assert!(matches!(refused, Err(ReporterError::Consent(_))));

    // Undecided: one hour of nothing, then a report with what that hour recorded.
    let counter = telemetry_core::counter!("products.ferretdb.ops").unwrap();
    let state = temp_dir("ferret-undecided");
    let reporter = builder("ferret-undecided", &receiver, &clock, &state)
        .consent(ferretdb(&[], None))
        .send_undecided_period(true)
        .start()
        .unwrap();
    for _ in 0..7 {
        counter.increment();
    }
    reporter.send_event(&event("startup"));
    clock.advance(HOUR - Duration::from_secs(1));
    settle(&reporter, &clock);
    assert_eq!(receiver.requests(), 0, "nothing during the undecided hour");
    clock.advance(Duration::from_secs(2));
    eventually("the report after the undecided hour", || {
        receiver.requests() >= 2
    });
    let bodies = receiver.bodies();
    let first: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(
        first["metrics"]["counters"]["products.ferretdb.ops"]["series"][0]["value"], 7,
        "the undecided hour's data is sent, as FerretDB's page says"
    );
    assert!(
        bodies.iter().any(|b| events::trigger(b) == "event:startup"),
        "the event waited for the hour"
    );
    drop(reporter);
    // The flag decides one run only: the next start without it is undecided again.
    let reporter = builder("ferret-flag-once", &receiver, &clock, &state)
        .consent(ferretdb(&[], Some("enable")))
        .start()
        .unwrap();
    assert_eq!(reporter.consent().state, Consent::Enabled);
    drop(reporter);
    let again = builder("ferret-flag-once", &receiver, &clock, &state)
        .consent(ferretdb(&[], None))
        .resolve_consent()
        .unwrap();
    assert_eq!(again.state, Consent::Undecided);
    // Unless the product saves it.
    let reporter = builder("ferret-flag-saved", &receiver, &clock, &state)
        .consent(ferretdb(&[], Some("disable")).persist_flag(true))
        .start()
        .unwrap();
    drop(reporter);
    let again = builder("ferret-flag-saved", &receiver, &clock, &state)
        .consent(ferretdb(&[], None))
        .resolve_consent()
        .unwrap();
    assert_eq!(
        (again.state, again.decided_by),
        (Consent::Disabled, SourceKind::Persisted)
    );
    let _ = std::fs::remove_dir_all(&state);
}

/// Qdrant's "Usage statistics" page: `QDRANT__TELEMETRY_DISABLED=true`, `telemetry_disabled:
/// true` in the config, or `--disable-telemetry`; any one of them prevents sending.
#[test]
fn qdrant() {
    let qdrant = |vars: &[(&str, &str)], config: Option<&str>, switch: bool| {
        sources(vars)
            .combine(Combine::AnyDisables)
            .env(
                "QDRANT__TELEMETRY_DISABLED",
                Polarity::OptOut,
                ValueRule::FerretDb,
            )
            .config(
                "telemetry_disabled",
                config,
                Polarity::OptOut,
                ValueRule::FerretDb,
            )
            .switch("--disable-telemetry", switch, Polarity::OptOut)
            .default_consent(Consent::Enabled)
    };
    assert_eq!(
        requests_under(
            "qdrant-mixed",
            qdrant(
                &[("QDRANT__TELEMETRY_DISABLED", "false")],
                Some("true"),
                false
            )
        ),
        0
    );
    assert_eq!(requests_under("qdrant-switch", qdrant(&[], None, true)), 0);
    assert_eq!(
        requests_under(
            "qdrant-env",
            qdrant(
                &[("QDRANT__TELEMETRY_DISABLED", "true")],
                Some("false"),
                false
            )
        ),
        0
    );
    assert!(
        requests_under("qdrant-on", qdrant(&[], None, false)) > 0,
        "enabled by default"
    );
}

/// Keeps every report handed to it.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<Report>>>);

impl Sink for Collect {
    fn send(&self, report: &Report) -> Result<(), SinkError> {
        self.0.lock().unwrap().push(report.clone());
        Ok(())
    }
}

/// EventStoreDB's "Usage telemetry" page: `EVENTSTORE_TELEMETRY_OPTOUT=true` stops sending,
/// the messages are still produced locally, and the disclosure says so.
#[test]
fn eventstoredb() {
    let eventstore = |vars: &[(&str, &str)]| {
        sources(vars)
            .env(
                "EVENTSTORE_TELEMETRY_OPTOUT",
                Polarity::OptOut,
                ValueRule::FerretDb,
            )
            .default_consent(Consent::Enabled)
    };
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    let clock = Arc::new(FakeClock::new());
    let local = Collect::default();
    let state = temp_dir("eventstore");
    let reporter = builder("eventstore", &receiver, &clock, &state)
        .consent(eventstore(&[("EVENTSTORE_TELEMETRY_OPTOUT", "true")]))
        .sink(local.clone())
        .start()
        .unwrap();
    run_for(&reporter, &clock, 2);
    assert!(reporter.shutdown());
    assert_eq!(receiver.requests(), 0);
    assert!(
        !local.0.lock().unwrap().is_empty(),
        "still produced to the console and log"
    );
    let disclosure = Disclosure::new(
        "EventStoreDB",
        "Event Store Ltd",
        "setting the EVENTSTORE_TELEMETRY_OPTOUT environment variable to true",
        "https://eventstore.com/telemetry",
    );
    let off = eventstore(&[("EVENTSTORE_TELEMETRY_OPTOUT", "true")])
        .resolve()
        .unwrap();
    assert!(
        disclosure
            .text(&off)
            .contains("You have opted out of sending telemetry")
    );
    // `false` is no decision: the product's default applies, not an explicit opt-in.
    let not_set = eventstore(&[("EVENTSTORE_TELEMETRY_OPTOUT", "false")])
        .resolve()
        .unwrap();
    assert_eq!(
        (not_set.state, not_set.decided_by),
        (Consent::Enabled, SourceKind::Default)
    );
    let _ = std::fs::remove_dir_all(&state);
}

/// Unleash's "Data collection" page: `CHECK_VERSION` not true/t/1 disables everything;
/// `SEND_TELEMETRY` not true/t/1 disables the feature telemetry but keeps the version check.
#[test]
fn unleash() {
    let unleash = |vars: &[(&str, &str)]| {
        sources(vars)
            .env("CHECK_VERSION", Polarity::OptIn, ValueRule::Unleash)
            .env_for(
                Category::UsageStatistics,
                "SEND_TELEMETRY",
                Polarity::OptIn,
                ValueRule::Unleash,
            )
            .default_consent(Consent::Enabled)
    };
    for off in ["false", "0", "yes", ""] {
        assert_eq!(
            requests_under(
                "unleash-off",
                unleash(&[("CHECK_VERSION", off), ("SEND_TELEMETRY", "true")])
            ),
            0,
            "CHECK_VERSION={off:?}"
        );
    }
    let receiver = Receiver::start(Mode::Ok("{\"latest_version\":\"5.3.0\"}".into()));
    let clock = Arc::new(FakeClock::new());
    let state = temp_dir("unleash");
    let counter = telemetry_core::counter!("products.unleash.flags").unwrap();
    counter.increment();
    let reporter = builder("unleash", &receiver, &clock, &state)
        .consent(unleash(&[("CHECK_VERSION", "t"), ("SEND_TELEMETRY", "f")]))
        .start()
        .unwrap();
    run_for(&reporter, &clock, 1);
    assert!(reporter.shutdown());
    assert!(receiver.requests() >= 1, "the version check still goes out");
    for body in receiver.bodies() {
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(body["metrics"]["counters"].as_object().unwrap().is_empty());
        assert!(body.get("sections").is_none());
    }
    let _ = std::fs::remove_dir_all(&state);
}

/// Automatisch's "Telemetry" page: enabled by default, disabled by `TELEMETRY_ENABLED=false`.
#[test]
fn automatisch() {
    let automatisch = |vars: &[(&str, &str)]| {
        sources(vars)
            .env("TELEMETRY_ENABLED", Polarity::OptIn, ValueRule::FerretDb)
            .default_consent(Consent::Enabled)
    };
    assert_eq!(
        requests_under(
            "automatisch-off",
            automatisch(&[("TELEMETRY_ENABLED", "false")])
        ),
        0
    );
    assert!(requests_under("automatisch-on", automatisch(&[])) > 0);
}

/// The README's consent set-up, decided at run time: the decision is read back at the next
/// start, which then sends nothing.
#[test]
fn the_readme_setup_keeps_a_runtime_opt_out_across_a_restart() {
    let readme = || {
        sources(&[]).flag("--telemetry", None).env(
            "MYAPP_TELEMETRY_OPTOUT",
            Polarity::OptOut,
            ValueRule::FerretDb,
        )
    };
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    let state = temp_dir("readme");
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("readme", &receiver, &clock, &state)
        .consent(readme())
        .start()
        .unwrap();
    assert_eq!(reporter.consent().state, Consent::Undecided);
    reporter.set_consent(Consent::Disabled).unwrap();
    assert!(reporter.shutdown());
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("readme", &receiver, &clock, &state)
        .consent(readme())
        .start()
        .unwrap();
    let d = reporter.consent();
    assert_eq!(
        (d.state, d.decided_by),
        (Consent::Disabled, SourceKind::Persisted)
    );
    assert!(d.decided_at.is_some());
    run_for(&reporter, &clock, 3);
    assert!(reporter.shutdown());
    assert_eq!(receiver.requests(), 0);
    // Without any consent configured, DO_NOT_TRACK and the saved decision still hold.
    let clock = Arc::new(FakeClock::new());
    let bare = builder("readme", &receiver, &clock, &state)
        .start()
        .unwrap();
    assert_eq!(bare.consent().state, Consent::Disabled);
    drop(bare);
    let _ = std::fs::remove_dir_all(&state);
}

/// A reporter built without `.consent(..)` reads `DO_NOT_TRACK` (here through a child
/// process whose environment sets it; the test binary re-runs itself).
#[test]
fn do_not_track_applies_without_any_consent_configured() {
    if std::env::var_os("CONSENT_PRODUCTS_CHILD").is_some() {
        let receiver = Receiver::start(Mode::Ok("{}".into()));
        let clock = Arc::new(FakeClock::new());
        let reporter = builder("bare", &receiver, &clock, &temp_dir("bare"))
            .start()
            .unwrap();
        reporter.set_consent(Consent::Enabled).unwrap_err();
        clock.advance(2 * DAY);
        settle(&reporter, &clock);
        assert!(reporter.shutdown());
        println!("CHILD requests={}", receiver.requests());
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "do_not_track_applies_without_any_consent_configured",
            "--nocapture",
        ])
        .env("CONSENT_PRODUCTS_CHILD", "1")
        .env("DO_NOT_TRACK", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("CHILD requests=0"), "{stdout}");
}

/// Events raised during the undecided delay wait; an opt-out during the delay drops them.
#[test]
fn events_wait_for_the_undecided_delay_and_die_with_an_opt_out() {
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    let clock = Arc::new(FakeClock::new());
    let state = temp_dir("events");
    let reporter = builder("events", &receiver, &clock, &state)
        .consent(sources(&[]))
        .start()
        .unwrap();
    for _ in 0..5 {
        reporter.send_event(&event("signup"));
    }
    clock.advance(HOUR / 2);
    settle(&reporter, &clock);
    assert_eq!(
        receiver.requests(),
        0,
        "events do not skip the undecided delay"
    );
    reporter.set_consent(Consent::Disabled).unwrap();
    clock.advance(2 * DAY);
    settle(&reporter, &clock);
    assert!(reporter.shutdown());
    assert_eq!(receiver.requests(), 0);
    let _ = std::fs::remove_dir_all(&state);
}

/// An opt-out followed by an opt-in never sends what was recorded before the opt-in.
#[test]
fn an_opt_in_after_an_opt_out_sends_only_what_came_after_it() {
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    let clock = Arc::new(FakeClock::new());
    let state = temp_dir("optin-date");
    let counter = telemetry_core::counter!("products.optin_date.ops").unwrap();
    let reporter = builder("optin-date", &receiver, &clock, &state)
        .consent(sources(&[]))
        .send_undecided_period(true)
        .start()
        .unwrap();
    reporter.set_consent(Consent::Disabled).unwrap();
    for _ in 0..100 {
        counter.increment();
    }
    reporter.set_consent(Consent::Enabled).unwrap();
    for _ in 0..3 {
        counter.increment();
    }
    clock.advance(HOUR + Duration::from_secs(1));
    eventually("a report", || receiver.requests() >= 1);
    // The opt-in makes the first report due at once, so it may leave before the three
    // increments (and then without the series): every report is checked.
    for body in receiver.bodies() {
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        let sent = body["metrics"]["counters"]["products.optin_date.ops"]["series"][0]["value"]
            .as_u64()
            .unwrap_or(0);
        assert!(sent <= 3, "{sent} counts sent, 3 recorded after the opt-in");
    }
    assert_eq!(
        reporter
            .payload()
            .unwrap()
            .metrics
            .counter("products.optin_date.ops"),
        Some(3)
    );
    drop(reporter);
    let _ = std::fs::remove_dir_all(&state);
}

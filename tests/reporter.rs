//! The reporter against a real HTTP receiver on loopback, with a fake clock for the schedule.

mod events;
mod receiver;

use events::event;
use receiver::{Mode, Receiver, eventually, settle};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use telemetry_core::consent::{Consent, ConsentBuilder, Polarity, ValueRule};
use telemetry_core::disclosure::Disclosure;
use telemetry_core::reporter::{FakeClock, HttpConfig, Reporter, ReporterBuilder};
use telemetry_core::{Application, Report, Sink, SinkError, Telemetry};

const HOUR: Duration = Duration::from_secs(3600);

/// Every log line, for the order of disclosure and sending.
struct Lines(Mutex<Vec<String>>);

impl log::Log for Lines {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0.lock().unwrap().push(record.args().to_string());
    }
    fn flush(&self) {}
}

fn log_lines() -> &'static Lines {
    static LINES: OnceLock<&'static Lines> = OnceLock::new();
    LINES.get_or_init(|| {
        let lines: &'static Lines = Box::leak(Box::new(Lines(Mutex::new(Vec::new()))));
        let _ = log::set_logger(lines);
        log::set_max_level(log::LevelFilter::Info);
        lines
    })
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

/// Consent from the `--telemetry` flag (`None`: undecided), read from an empty environment.
fn decision(state: Consent) -> ConsentBuilder {
    let flag = match state {
        Consent::Enabled => Some("enable"),
        Consent::Disabled => Some("disable"),
        Consent::Undecided => None,
    };
    ConsentBuilder::new()
        .environment(|_| None)
        .flag("--telemetry", flag)
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("telemetry-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn builder(app: &'static str, receiver_url: &str, clock: &Arc<FakeClock>) -> ReporterBuilder {
    let mut http = HttpConfig::new(receiver_url);
    http.retries = 0;
    http.total_timeout = Duration::from_secs(2);
    Reporter::builder(Application::new(app, "1.0.0"))
        .disclosure(
            Disclosure::new(app, "Test Ltd", "setting NO=1", "https://example.invalid")
                .to_stderr(false),
        )
        .endpoint(http)
        .clock(clock.clone())
}

#[test]
fn nothing_is_sent_before_the_initial_delay_then_one_report_per_interval() {
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("schedule-app", &receiver.url(), &clock)
        .consent(decision(Consent::Enabled))
        .start()
        .unwrap();
    settle(&reporter, &clock);
    clock.advance(HOUR - Duration::from_secs(1));
    settle(&reporter, &clock);
    assert_eq!(
        receiver.connections(),
        0,
        "nothing before the initial delay"
    );
    clock.advance(Duration::from_secs(2));
    eventually("the first report", || receiver.requests() == 1);
    clock.advance(23 * HOUR);
    settle(&reporter, &clock);
    assert_eq!(receiver.requests(), 1);
    clock.advance(HOUR + Duration::from_secs(1));
    eventually("the second report", || receiver.requests() == 2);
    let body: serde_json::Value = serde_json::from_str(&receiver.bodies()[0]).unwrap();
    assert_eq!(body["application"]["name"], "schedule-app");
    assert_eq!(body["trigger"], "schedule");
    assert_eq!(
        body["instance_id"],
        telemetry_core::instance_id().to_string()
    );
    drop(reporter);
}

#[test]
fn undecided_waits_its_delay_and_a_decision_takes_effect_at_once() {
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    let state = temp_dir("undecided");
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("undecided-app", &receiver.url(), &clock)
        .state_dir(&state)
        .start()
        .unwrap();
    clock.advance(HOUR / 2);
    settle(&reporter, &clock);
    assert_eq!(
        receiver.connections(),
        0,
        "undecided: nothing during the delay"
    );
    reporter.set_consent(Consent::Enabled).unwrap();
    eventually("the report right after the decision", || {
        receiver.requests() == 1
    });
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("consent.json")).unwrap())
            .unwrap();
    assert_eq!(saved["state"], "enabled");
    assert!(saved["set_at"].as_str().unwrap().ends_with('Z'));
    drop(reporter);

    // Undecided and never decided: reported after the delay, as FerretDB does.
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("undecided-app", &receiver.url(), &clock)
        .start()
        .unwrap();
    clock.advance(HOUR - Duration::from_secs(1));
    settle(&reporter, &clock);
    assert_eq!(receiver.connections(), 0);
    clock.advance(Duration::from_secs(2));
    eventually("the report after the undecided delay", || {
        receiver.requests() == 1
    });
    drop(reporter);

    // Declining during the delay: nothing, ever.
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("undecided-app", &receiver.url(), &clock)
        .start()
        .unwrap();
    clock.advance(HOUR / 6);
    reporter.set_consent(Consent::Disabled).unwrap();
    for _ in 0..4 {
        clock.advance(24 * HOUR);
        settle(&reporter, &clock);
    }
    reporter.send_event(&event("signup"));
    assert!(reporter.shutdown());
    assert_eq!(receiver.connections(), 0);
    std::fs::remove_dir_all(&state).unwrap();
}

#[test]
fn no_connection_is_ever_made_when_an_opt_out_source_says_so() {
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    let sources = [
        ConsentBuilder::new()
            .environment(env(&[("DO_NOT_TRACK", "1")]))
            .executable("/usr/bin/app"),
        ConsentBuilder::new()
            .environment(env(&[]))
            .executable("/usr/bin/app-donottrack"),
        ConsentBuilder::new()
            .environment(env(&[("APP_TELEMETRY_OPTOUT", "true")]))
            .executable("/usr/bin/app")
            .env(
                "APP_TELEMETRY_OPTOUT",
                Polarity::OptOut,
                ValueRule::FerretDb,
            ),
        ConsentBuilder::new()
            .environment(env(&[]))
            .executable("/usr/bin/app")
            .flag("--telemetry", Some("opt-out")),
        ConsentBuilder::new()
            .environment(env(&[("TELEMETRY_ENABLED", "false")]))
            .executable("/usr/bin/app")
            .env("TELEMETRY_ENABLED", Polarity::OptIn, ValueRule::FerretDb),
        ConsentBuilder::new()
            .environment(env(&[]))
            .executable("/usr/bin/app")
            .config(
                "telemetry_disabled",
                Some("true"),
                Polarity::OptOut,
                ValueRule::FerretDb,
            ),
        ConsentBuilder::new()
            .environment(env(&[("CHECK_VERSION", "no")]))
            .executable("/usr/bin/app")
            .env("CHECK_VERSION", Polarity::OptIn, ValueRule::Unleash),
    ];
    for source in sources {
        let decision = source.resolve().unwrap();
        assert_eq!(decision.state, Consent::Disabled, "{decision:?}");
        let decision = source;
        let clock = Arc::new(FakeClock::new());
        let local = Collect::default();
        let reporter = builder("optout-app", &receiver.url(), &clock)
            .consent(decision)
            .sink(local.clone())
            .start()
            .unwrap();
        for _ in 0..3 {
            clock.advance(24 * HOUR);
            settle(&reporter, &clock);
        }
        reporter.send_event(&event("user_action"));
        assert!(reporter.set_consent(Consent::Disabled).is_ok());
        assert!(reporter.shutdown());
        assert!(
            !local.0.lock().unwrap().is_empty(),
            "opted out still builds the report locally"
        );
    }
    assert_eq!(receiver.connections(), 0, "zero connections");

    let dnt = ConsentBuilder::new().environment(env(&[("DO_NOT_TRACK", "true")]));
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("optout-app", &receiver.url(), &clock)
        .consent(dnt)
        .start()
        .unwrap();
    assert!(
        reporter.set_consent(Consent::Enabled).is_err(),
        "DO_NOT_TRACK cannot be overridden"
    );
    drop(reporter);
    let err = ConsentBuilder::new()
        .environment(env(&[("DO_NOT_TRACK", "1")]))
        .flag("--telemetry", Some("enable"))
        .resolve()
        .unwrap_err();
    assert!(err.to_string().contains("cannot be overridden"), "{err}");
}

#[test]
fn the_disclosure_is_shown_before_anything_is_sent() {
    let lines = log_lines();
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("ordered-app", &receiver.url(), &clock)
        .consent(decision(Consent::Enabled))
        .initial_delay(Duration::ZERO)
        .start()
        .unwrap();
    eventually("a report", || receiver.requests() == 1);
    drop(reporter);
    let lines = lines.0.lock().unwrap();
    let disclosure = lines
        .iter()
        .position(|l| l.starts_with("ordered-app collects anonymous usage data"))
        .expect("the disclosure was logged");
    let sent = lines
        .iter()
        .position(|l| l.starts_with("sending telemetry report") && l.contains("ordered-app"))
        .expect("the transmission was logged with its payload");
    assert!(
        disclosure < sent,
        "disclosure at {disclosure}, send at {sent}"
    );
}

#[test]
fn a_down_endpoint_spools_and_the_spool_delivers_when_it_is_back() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let state = temp_dir("spool");
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("spool-app", &format!("http://{addr}/v1/report"), &clock)
        .consent(decision(Consent::Enabled))
        .state_dir(&state)
        .start()
        .unwrap();
    clock.advance(HOUR + Duration::from_secs(1));
    eventually("the report to be spooled", || {
        reporter.status().spooled == 1
    });
    let spooled = std::fs::read_dir(state.join("spool")).unwrap().count();
    assert_eq!(spooled, 1);
    let last: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("telemetry.json")).unwrap())
            .unwrap();
    assert_eq!(last["sent"], false);

    // The host does not wait for any of this.
    let started = Instant::now();
    reporter.send_event(&event("while_down"));
    assert!(started.elapsed() < Duration::from_millis(100));
    eventually("the event's report to be spooled", || {
        reporter.status().spooled == 2
    });

    let receiver = Receiver::start_on(
        std::net::TcpListener::bind(addr).unwrap(),
        Mode::Ok("{}".into()),
    );
    clock.advance(24 * HOUR);
    eventually("the new report and both spooled ones", || {
        receiver.requests() == 3
    });
    eventually("an empty spool", || {
        std::fs::read_dir(state.join("spool")).unwrap().count() == 0
    });
    let last: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("telemetry.json")).unwrap())
            .unwrap();
    assert_eq!(last["sent"], true);
    assert_eq!(last["endpoint"], format!("http://{addr}/v1/report"));
    drop(reporter);
    std::fs::remove_dir_all(&state).unwrap();
}

#[test]
fn a_hanging_endpoint_cannot_delay_shutdown_past_the_bound() {
    let receiver = Receiver::start(Mode::Hang);
    let clock = Arc::new(FakeClock::new());
    let mut http = HttpConfig::new(receiver.url());
    http.total_timeout = Duration::from_secs(30);
    let reporter = Reporter::builder(Application::new("hang-app", "1.0.0"))
        .disclosure(Disclosure::new("hang-app", "Test Ltd", "x", "y").to_stderr(false))
        .consent(decision(Consent::Enabled))
        .endpoint(http)
        .clock(clock.clone())
        .shutdown_timeout(Duration::from_secs(1))
        .start()
        .unwrap();
    // A send in progress against a hanging server does not block the host.
    reporter.send_event(&event("first"));
    eventually("the hanging connection", || receiver.connections() == 1);
    let started = Instant::now();
    reporter.send_event(&event("second"));
    assert!(started.elapsed() < Duration::from_millis(100));
    let started = Instant::now();
    reporter.shutdown();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500), "shutdown took {took:?}");
}

#[test]
fn retries_honour_retry_after_and_version_notices_are_exposed() {
    let receiver = Receiver::start(Mode::Status(429, Some(30)));
    let clock = Arc::new(FakeClock::new());
    let mut http = HttpConfig::new(receiver.url());
    http.retries = 2;
    let reporter = Reporter::builder(Application::new("retry-app", "1.0.0"))
        .disclosure(Disclosure::new("retry-app", "Test Ltd", "x", "y").to_stderr(false))
        .consent(decision(Consent::Enabled))
        .initial_delay(Duration::ZERO)
        .endpoint(http)
        .clock(clock.clone())
        .start()
        .unwrap();
    eventually("the first attempt", || receiver.requests() == 1);
    eventually("the retry to be scheduled", || {
        reporter.status().retry_at == Some(Duration::from_secs(30))
    });
    receiver.set_mode(Mode::Ok(r#"{"latest_version":"9.9.9"}"#.into()));
    clock.advance(Duration::from_secs(10));
    settle(&reporter, &clock);
    assert_eq!(receiver.requests(), 1, "Retry-After: 30 s is honoured");
    clock.advance(Duration::from_secs(21));
    eventually("the retry", || receiver.requests() == 2);
    eventually("the version notice", || {
        reporter.latest_version().as_deref() == Some("9.9.9")
    });
    assert_eq!(reporter.status().delivered, 1);
    drop(reporter);
}

#[test]
fn version_check_only_sends_no_usage_statistics() {
    let receiver = Receiver::start(Mode::Ok(r#"{"latest_version":"2.0.0"}"#.into()));
    let vars = [("CHECK_VERSION", "true"), ("SEND_TELEMETRY", "false")];
    let decision = ConsentBuilder::new()
        .environment(move |n| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| (*v).to_owned())
        })
        .env("CHECK_VERSION", Polarity::OptIn, ValueRule::Unleash)
        .env_for(
            telemetry_core::consent::Category::UsageStatistics,
            "SEND_TELEMETRY",
            Polarity::OptIn,
            ValueRule::Unleash,
        );
    let clock = Arc::new(FakeClock::new());
    let counter = telemetry_core::counter!("reporter.version_only").unwrap();
    counter.increment();
    let reporter = builder("version-app", &receiver.url(), &clock)
        .consent(decision)
        .initial_delay(Duration::ZERO)
        .start()
        .unwrap();
    eventually("the version check", || receiver.requests() == 1);
    let body: serde_json::Value = serde_json::from_str(&receiver.bodies()[0]).unwrap();
    assert_eq!(body["application"]["name"], "version-app");
    assert!(body["metrics"]["counters"].as_object().unwrap().is_empty());
    eventually("the version notice", || {
        reporter.latest_version().as_deref() == Some("2.0.0")
    });
    drop(reporter);
}

#[test]
fn an_oversized_report_is_not_sent() {
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    let clock = Arc::new(FakeClock::new());
    let mut http = HttpConfig::new(receiver.url());
    http.max_payload_bytes = 64;
    let reporter = Reporter::builder(Application::new("big-app", "1.0.0"))
        .disclosure(Disclosure::new("big-app", "Test Ltd", "x", "y").to_stderr(false))
        .consent(decision(Consent::Enabled))
        .initial_delay(Duration::ZERO)
        .endpoint(http)
        .clock(clock.clone())
        .start()
        .unwrap();
    eventually("the report to be dropped", || {
        reporter.status().dropped == 1
    });
    assert_eq!(receiver.connections(), 0);
    drop(reporter);
}

#[test]
fn plain_http_to_a_remote_host_is_refused_at_start() {
    let err = Reporter::builder(Application::new("x", "1"))
        .endpoint(HttpConfig::new("http://telemetry.example.com/report"))
        .start()
        .map(drop)
        .unwrap_err();
    assert!(err.to_string().contains("HTTPS"), "{err}");
}

/// A section with a name that must be hashed.
#[derive(telemetry_core::Telemetry)]
#[telemetry(section = "tenant")]
struct Tenant {
    #[telemetry(hash)]
    name: String,
    seats: u64,
}

#[test]
fn the_payload_is_what_is_sent_and_what_telemetry_anonymize_true_shows() {
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    let clock = Arc::new(FakeClock::new());
    let reporter = Arc::new(
        builder("payload-app", &receiver.url(), &clock)
            .consent(decision(Consent::Enabled))
            .section(|| Tenant {
                name: "acme-corp".into(),
                seats: 1_234_567,
            })
            .start()
            .unwrap(),
    );
    let payload = reporter.payload().expect("consent allows sending");
    reporter.send_event(&event("now"));
    eventually("the report", || receiver.requests() == 1);
    let sent: serde_json::Value = serde_json::from_str(&receiver.bodies()[0]).unwrap();
    let comparable = |mut v: serde_json::Value| {
        for volatile in ["timestamp", "uptime_seconds", "trigger", "report_id"] {
            v.as_object_mut().unwrap().remove(volatile);
        }
        // The event's own value, which only the event's report carries.
        v["sections"].as_object_mut().unwrap().remove("event");
        v
    };
    let expected = comparable(serde_json::to_value(&payload).unwrap());
    assert_eq!(comparable(sent.clone()), expected);
    assert_eq!(sent["sections"]["tenant"]["seats"], 1_234_560);
    assert!(!receiver.bodies()[0].contains("acme"));

    let shown = Arc::clone(&reporter);
    let endpoints =
        telemetry_core::export::endpoint::Endpoints::new(Application::new("payload-app", "1.0.0"))
            .with_report(move || shown.report());
    let response = endpoints.handle("/telemetry?details_level=3&anonymize=true", None);
    let body: serde_json::Value = serde_json::from_slice(response.body.as_ref()).unwrap();
    assert_eq!(
        comparable(body),
        expected,
        "/telemetry?anonymize=true is the payload"
    );
    drop(endpoints);
    Arc::try_unwrap(reporter)
        .ok()
        .expect("one owner left")
        .shutdown();
}

/// A flow was created (Automatisch's events carry flow data).
#[derive(Telemetry)]
#[telemetry(event = "flow_created")]
struct FlowCreated {
    /// Steps in the flow.
    steps: u32,
    #[telemetry(hash)]
    app_name: String,
}

#[test]
fn events_are_typed_anonymized_and_listed_in_the_manifest() {
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("events-app", &receiver.url(), &clock)
        .consent(decision(Consent::Enabled))
        .start()
        .unwrap();
    reporter.send_event(&FlowCreated {
        steps: 1_234_567,
        app_name: "billing for alice@example.com".into(),
    });
    eventually("the event's report", || receiver.requests() == 1);
    let body: serde_json::Value = serde_json::from_str(&receiver.bodies()[0]).unwrap();
    assert_eq!(body["trigger"], "event:flow_created");
    assert_eq!(body["sections"]["event"]["steps"], 1_234_560);
    assert!(!receiver.bodies()[0].contains("alice"));
    let manifest = telemetry_core::manifest::manifest();
    let event = manifest
        .events
        .iter()
        .find(|e| e.name == "flow_created")
        .expect("the event is in the manifest");
    assert_eq!(event.fields.len(), 2);
    assert!(manifest.to_markdown().contains("## Event `flow_created`"));
    drop(reporter);
}

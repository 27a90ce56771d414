//! PII canaries: known personal values fed through every input the framework accepts must not
//! appear, in any form a simple search finds, in any output.
//!
//! Inputs: label values (hashed), `#[derive(Telemetry)]` fields (hashed, URL-hashed, skipped,
//! `Pii`), error values (`#[count_usage(errors)]`), panic messages and locations (the panic
//! hook), system facts, consent configuration values, and the machine's own host name, user
//! name and home directory. Outputs: the JSON report, the anonymized report, Prometheus and
//! OpenMetrics text, the OTLP payload (protobuf and JSON), what the reporter sends, the spool,
//! the last-report file, the disclosure, and every log line the framework writes.

mod events;
mod public_inputs;
mod receiver;

use events::event;
use receiver::{Mode, Receiver, eventually};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use telemetry_core::anonymize::HashedLabel;
use telemetry_core::consent::{ConsentBuilder, ConsentDecision, Polarity, ValueRule};
use telemetry_core::crash::{PanicHookConfig, install_panic_hook};
use telemetry_core::disclosure::Disclosure;
use telemetry_core::export::otlp::{Encoding, OtlpExporter};
use telemetry_core::export::prometheus::{render_openmetrics, render_prometheus};
use telemetry_core::facts::SystemFacts;
use telemetry_core::payload::OutgoingReport;
use telemetry_core::reporter::{FakeClock, HttpConfig, Reporter};
use telemetry_core::{Application, ErrorKind, Pii, Report, Telemetry, count_usage};

const EMAIL: &str = "alice.canary@example.com";
const IPV4: &str = "203.0.113.77";
const IPV6: &str = "2001:db8::c0:ffee";
const HOME_PATH: &str = "/home/canaryuser/projects/secret-plans";
const HOST: &str = "canary-host.internal.example";
const USER: &str = "canaryuser";
const URL: &str = "https://canary.example.org/private/path?token=canarytoken123&user=alice";
const TOKEN: &str = "tok_live_canary9f8e7d6c";
/// [`IPV4`] as the `u32` a careless product would record (203 * 2^24 + 113 * 2^8 + 77).
const IPV4_INT: u64 = 3_405_803_853;

/// The planted canaries, the machine's own identifying strings, and parts a search would try.
fn canaries() -> Vec<String> {
    let mut all: Vec<String> = [EMAIL, IPV4, IPV6, HOME_PATH, HOST, USER, URL, TOKEN]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    all.extend(
        [
            "alice",
            "canarytoken123",
            "example.org",
            "secret-plans",
            "c0:ffee",
        ]
        .map(String::from),
    );
    if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
        let host = host.trim();
        if host.len() >= 4 {
            all.push(host.to_owned());
        }
    }
    for var in ["USER", "LOGNAME"] {
        if let Ok(user) = std::env::var(var)
            && user.len() >= 4
            && user != "root"
        {
            all.push(user);
        }
    }
    if let Ok(home) = std::env::var("HOME")
        && home.len() > 5
    {
        all.push(home);
    }
    all
}

/// The forms a search would find a value in: as it is, lowercase, JSON-escaped,
/// percent-encoded, and with `/` escaped.
fn forms(canary: &str) -> Vec<String> {
    let mut out = vec![canary.to_owned(), canary.to_lowercase()];
    out.push(
        serde_json::to_string(canary)
            .unwrap()
            .trim_matches('"')
            .to_owned(),
    );
    out.push(
        canary
            .replace('@', "%40")
            .replace(':', "%3A")
            .replace('/', "%2F"),
    );
    out.push(canary.replace('/', "\\/"));
    out.sort();
    out.dedup();
    out
}

fn assert_clean(what: &str, output: &[u8], tried: &mut usize) {
    let text = String::from_utf8_lossy(output);
    for canary in canaries() {
        for form in forms(&canary) {
            *tried += 1;
            assert!(
                !text.contains(&form),
                "canary {form:?} found in {what}:\n{text}"
            );
        }
    }
}

/// Every log line, from any thread.
struct Lines(Mutex<Vec<String>>);

impl log::Log for Lines {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{} {}", record.target(), record.args()));
    }
    fn flush(&self) {}
}

fn lines() -> &'static Lines {
    static LINES: OnceLock<&'static Lines> = OnceLock::new();
    LINES.get_or_init(|| {
        let lines: &'static Lines = Box::leak(Box::new(Lines(Mutex::new(Vec::new()))));
        let _ = log::set_logger(lines);
        log::set_max_level(log::LevelFilter::Trace);
        lines
    })
}

#[derive(Debug, ErrorKind)]
enum LoginError {
    WrongPassword { user: String, from: IpAddr },
    Locked(String),
}

#[count_usage(name = "canary.login", errors)]
fn login(user: &str, from: IpAddr) -> Result<(), LoginError> {
    if user.contains('@') {
        Err(LoginError::WrongPassword {
            user: user.to_owned(),
            from,
        })
    } else {
        Err(LoginError::Locked(format!("{user} from {from}")))
    }
}

#[derive(Clone, Copy, telemetry_core::LabelValue)]
enum Plan {
    Free,
}

/// A product's own payload made of everything above: the account section as a value and as
/// the report carries it, the event, counts by a label, and the integer form of an address.
#[derive(Telemetry)]
#[telemetry(payload = "canary_payload")]
struct CanaryPayload {
    id: telemetry_core::payload::InstanceId,
    account: Account,
    section: Option<telemetry_core::payload::SectionData>,
    event: Option<telemetry_core::payload::SectionData>,
    errors: telemetry_core::payload::Counts,
    #[telemetry(not_pii = "a count in this test, which holds an address's integer form")]
    address: u64,
}

/// The canary payload of `report`.
fn canary_payload(report: &OutgoingReport) -> CanaryPayload {
    CanaryPayload {
        id: report.instance_id(),
        account: account(),
        section: report.section("account"),
        event: report.event(),
        errors: report.counts_by("canary.errors", "code"),
        address: IPV4_INT,
    }
}

/// Everything a product might put in a section, PII included.
#[derive(Telemetry)]
#[telemetry(section = "account")]
struct Account {
    plan: Plan,
    #[telemetry(hash)]
    email: String,
    #[telemetry(hash)]
    client_ip: IpAddr,
    #[telemetry(hash)]
    data_path: PathBuf,
    #[telemetry(hash_url)]
    webhook_url: String,
    #[telemetry(skip)]
    api_token: Pii<String>,
    #[pii]
    #[telemetry(hash)]
    hostname: Pii<String>,
    #[telemetry(skip)]
    username: String,
    seats: u64,
}

fn account() -> Account {
    Account {
        plan: Plan::Free,
        email: EMAIL.into(),
        client_ip: IPV6.parse().unwrap(),
        data_path: HOME_PATH.into(),
        webhook_url: URL.into(),
        api_token: Pii::new(TOKEN.into()),
        hostname: Pii::new(HOST.into()),
        username: USER.into(),
        seats: 12_345_678,
    }
}

#[inline(never)]
fn crash_with_canaries() {
    panic!("cannot open {HOME_PATH} for {EMAIL} at {IPV4} with {TOKEN}");
}

#[test]
fn no_canary_reaches_any_output() {
    let lines = lines();
    let mut tried = 0;

    // Inputs: labels, errors, panics, sections, facts, configuration.
    let tenants =
        telemetry_core::counter!("canary.tenants", labels(tenant: HashedLabel, plan: Plan))
            .unwrap();
    for canary in [EMAIL, HOST, USER, URL, TOKEN] {
        tenants.increment((HashedLabel::new(canary), Plan::Free));
    }
    match login(EMAIL, IPV4.parse().unwrap()) {
        Err(LoginError::WrongPassword { user, from }) => {
            assert_eq!((user.as_str(), from.to_string().as_str()), (EMAIL, IPV4));
        }
        other => panic!("{other:?}"),
    }
    match login(USER, IPV6.parse().unwrap()) {
        Err(LoginError::Locked(message)) => assert!(message.contains(USER)),
        other => panic!("{other:?}"),
    }
    install_panic_hook(PanicHookConfig::new(["canaries"]).allow_messages([]));
    assert!(std::panic::catch_unwind(crash_with_canaries).is_err());
    let bad_config = ConsentBuilder::new()
        .environment(|name| (name == "APP_TELEMETRY").then(|| EMAIL.to_owned()))
        .env("APP_TELEMETRY", Polarity::OptIn, ValueRule::FerretDb)
        .resolve();
    let bad_config = bad_config.map(drop).unwrap_err();
    assert_clean(
        "the consent error",
        bad_config.to_string().as_bytes(),
        &mut tried,
    );

    // Text that does not fit its grammar is recorded as `other` (or refused), never as given.
    for text in [EMAIL, HOST, HOME_PATH, URL, IPV4] {
        let leaked: &'static str = text.to_owned().leak();
        let app = Application::new(leaked, leaked);
        assert_eq!((app.name(), app.version()), ("other", "other"));
        let refused = Reporter::builder(Application::new("canary-app", "1.0.0"))
            .schedule(leaked, Duration::from_secs(3600))
            .start();
        assert!(refused.is_err());
        assert!(HashedLabel::new(leaked).as_str() != leaked);
    }
    // Numbers: an IPv4 address as an integer, as a value and as a label.
    let numbers = telemetry_core::counter!(
        "canary.numbers",
        labels(code: telemetry_core::Bounded<599>, size: telemetry_core::Pow2Bucket)
    )
    .unwrap();
    numbers.increment_by(
        (
            telemetry_core::Bounded::new(IPV4_INT),
            telemetry_core::Pow2Bucket::new(IPV4_INT),
        ),
        IPV4_INT,
    );
    telemetry_core::gauge!("canary.gauge")
        .unwrap()
        .set(IPV4_INT as i64);
    telemetry_core::histogram!("canary.histogram")
        .unwrap()
        .record(IPV4_INT);

    let mut report = Report::collect(Application::new("canary-app", "1.0.0"));
    report.add_section(&account());
    report.add_section(&SystemFacts::collect(telemetry_core::build_facts!()));
    assert_eq!(account().seats, 12_345_678);
    let account = account();
    assert!(account.api_token.expose().starts_with("tok_") && account.username == USER);

    // Outputs.
    assert_clean(
        "the JSON report",
        report.to_json_pretty().as_bytes(),
        &mut tried,
    );
    assert_clean(
        "the anonymized report",
        report.anonymized().to_json().as_bytes(),
        &mut tried,
    );
    assert!(
        !report
            .anonymized()
            .to_json()
            .contains(&IPV4_INT.to_string()),
        "the anonymized report rounds every number"
    );
    let snapshot = telemetry_core::snapshot();
    assert_clean(
        "Prometheus text",
        render_prometheus(&snapshot).as_bytes(),
        &mut tried,
    );
    assert_clean(
        "OpenMetrics text",
        render_openmetrics(&snapshot).as_bytes(),
        &mut tried,
    );
    // An endpoint with a token in its query is refused, and the error does not repeat it.
    let refused = OtlpExporter::new(
        "http://alice:canarytoken123@127.0.0.1:4318/v1/metrics?token=canarytoken123",
        Application::new("canary-app", "1.0.0"),
    )
    .map(drop)
    .unwrap_err();
    assert_clean(
        "the OTLP endpoint error",
        refused.to_string().as_bytes(),
        &mut tried,
    );
    let otlp = OtlpExporter::new(
        "http://127.0.0.1:4318",
        Application::new("canary-app", "1.0.0"),
    )
    .unwrap()
    .with_header("authorization", TOKEN)
    .unwrap();
    let request = otlp.request(&snapshot);
    assert_clean(
        "the OTLP protobuf payload",
        &otlp.encode(&request),
        &mut tried,
    );
    let otlp_json = otlp.with_encoding(Encoding::Json);
    assert_clean(
        "the OTLP JSON payload",
        &otlp_json.encode(&request),
        &mut tried,
    );
    let disclosure = Disclosure::new(
        "CanaryApp",
        "Canary Ltd",
        "setting NO=1",
        "https://example.invalid",
    )
    .to_stderr(false);
    assert_clean(
        "the disclosure",
        disclosure.text(&ConsentDecision::undecided()).as_bytes(),
        &mut tried,
    );

    // What the reporter sends, spools and writes locally.
    // The state directory's path holds a canary (a home directory's project name): no log line
    // may name it.
    let state = std::env::temp_dir().join(format!("secret-plans-{}", uuid::Uuid::new_v4()));
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down_url = format!("http://{}/v1/report", down.local_addr().unwrap());
    drop(down);
    // An endpoint with a token in its query or user info is refused, without repeating it.
    for url in [
        format!("{}?token=canarytoken123&user=alice", receiver.url()),
        receiver.url().replace("://", "://alice:canarytoken123@"),
    ] {
        let refused = Reporter::builder(Application::new("canary-app", "1.0.0"))
            .consent(
                ConsentBuilder::new()
                    .environment(|_| None)
                    .flag("--telemetry", Some("enable")),
            )
            .endpoint(HttpConfig::new(url))
            .start()
            .map(drop)
            .unwrap_err();
        assert_clean(
            "the endpoint error",
            refused.to_string().as_bytes(),
            &mut tried,
        );
    }
    // The envelope sent, a product's own payload made from the report sent, then a report
    // spooled (its payload shape too).
    for (url, spooled, shaped) in [
        (receiver.url(), false, false),
        (receiver.url(), false, true),
        (down_url, true, true),
    ] {
        let sent_before = receiver.requests();
        let clock = Arc::new(FakeClock::new());
        let mut http = HttpConfig::new(url);
        http.retries = 0;
        let reporter = Reporter::builder(Application::new("canary-app", "1.0.0"))
            .consent(
                ConsentBuilder::new()
                    .environment(|_| None)
                    .flag("--telemetry", Some("enable")),
            )
            .disclosure(disclosure.clone())
            .endpoint(http)
            .state_dir(&state)
            .clock(clock.clone())
            .section(self::account)
            .system_facts(telemetry_core::build_facts!());
        let reporter = if shaped {
            reporter.payload_shape(canary_payload)
        } else {
            reporter
        };
        let reporter = reporter.start().unwrap();
        reporter.send_event(&event("canary"));
        if spooled {
            eventually("a spooled report", || reporter.status().spooled == 1);
        } else {
            eventually("a sent report", || receiver.requests() == sent_before + 1);
        }
        assert_clean(
            "the reporter's payload",
            reporter.payload().unwrap().to_json().as_bytes(),
            &mut tried,
        );
        assert_clean(
            "the reporter's payload bytes",
            reporter.payload_json().unwrap().as_bytes(),
            &mut tried,
        );
        reporter.shutdown();
    }
    for body in receiver.bodies() {
        assert_clean("what the reporter sent", body.as_bytes(), &mut tried);
        // What leaves the machine is rounded: not even the integer form of the address.
        assert!(!body.contains(&IPV4_INT.to_string()), "{body}");
    }
    let mut spooled = 0;
    for entry in std::fs::read_dir(state.join("spool")).unwrap() {
        assert_clean(
            "the spool",
            &std::fs::read(entry.unwrap().path()).unwrap(),
            &mut tried,
        );
        spooled += 1;
    }
    assert!(spooled >= 1);
    assert_clean(
        "the last report",
        &std::fs::read(state.join("telemetry.json")).unwrap(),
        &mut tried,
    );
    // Reports logged instead of sent (no endpoint), as the product's payload and as the
    // envelope.
    for shaped in [false, true] {
        let reporter = Reporter::builder(Application::new("canary-app", "1.0.0"))
            .consent(
                ConsentBuilder::new()
                    .environment(|_| None)
                    .flag("--telemetry", Some("enable")),
            )
            .disclosure(disclosure.clone())
            .section(self::account)
            .log_unsent_reports(true);
        let reporter = if shaped {
            reporter.payload_shape(canary_payload)
        } else {
            reporter
        };
        let reporter = reporter.start().unwrap();
        reporter.send_event(&event("canary"));
        reporter.shutdown();
    }
    std::thread::sleep(Duration::from_millis(50));
    let logged = lines.0.lock().unwrap().join("\n");
    assert!(
        logged.contains("telemetry report not sent (no endpoint is configured)"),
        "the unsent reports were logged"
    );
    assert!(
        logged.contains("sending telemetry report"),
        "the transmission log was captured"
    );
    assert_clean("the framework's log lines", logged.as_bytes(), &mut tried);
    std::fs::remove_dir_all(&state).unwrap();

    // The count a reviewer reads in docs/RELIABILITY.md.
    println!(
        "canaries: {} canaries, {tried} searches, 0 found",
        canaries().len()
    );
}

/// How the canary test covers one public input.
enum Covered {
    /// Fed canaries in this file (the call is in its source), every output searched.
    Fed,
    /// Cannot carry a canary to an output, for this reason.
    NoOutput(&'static str),
}

use Covered::{Fed, NoOutput};

const QUERY: Covered =
    NoOutput("a lookup in a snapshot or a parse of a request: returns, records nothing");
const LOCAL: Covered = NoOutput(
    "the operator's own configuration for their own systems (an endpoint, a Pushgateway job, \
     a file path, a consent source's name): it addresses the data, it is not in it",
);
const BRIDGED: Covered = NoOutput(
    "a `metrics` name the bridge routes by, never exported (the declared metric's name is); tests/metrics_bridge.rs feeds hostile names and label texts through the `metrics` macros",
);
const SPAN_SELECTOR: Covered = NoOutput(
    "a span's target and name the layer selects by, never exported; tests/tracing_bridge.rs feeds spans with personal data in their fields",
);
const PURE: Covered = NoOutput("a pure function of its arguments, whose result the caller holds");

/// Every public input of the library, from its source (`public_inputs`): fed canaries here,
/// or the reason it cannot reach an output. A new input fails the test until it is listed.
#[rustfmt::skip]
const INPUTS: &[(&str, Covered)] = &[
    ("Anonymizer::hash_name", NoOutput("a keyed hash: fed through `HashedLabel` and `#[telemetry(hash)]` here")),
    ("Anonymizer::hash_url", NoOutput("hashes: the result is a keyed hash, and `hash_url` is fed through `#[telemetry(hash_url)]` here")),
    ("Anonymizer::round", PURE),
    ("Anonymizer::round_float", PURE),
    ("Anonymizer::round_signed", PURE),
    ("Anonymizer::with_significant_digits", NoOutput("the rounding precision, a number the product picks")),
    ("Application::new", Fed),
    ("Application::try_new", NoOutput("as `Application::new`, returning the grammar error instead of `other`")),
    ("Bounded::new", Fed),
    ("Bounded::signed", NoOutput("as `Bounded::new` for a signed value: outside `0..=MAX` is `other`")),
    ("BucketLayout::explicit", NoOutput("bucket bounds of the local exposition, numbers fixed by the product")),
    ("BucketLayout::log_linear", NoOutput("the local exposition's bucket count per doubling")),
    ("ConsentBuilder::config", LOCAL),
    ("ConsentBuilder::debug_env", LOCAL),
    ("ConsentBuilder::env", Fed),
    ("ConsentBuilder::env_for", LOCAL),
    ("ConsentBuilder::environment", Fed),
    ("ConsentBuilder::executable", LOCAL),
    ("ConsentBuilder::flag", Fed),
    ("ConsentBuilder::switch", LOCAL),
    ("Counts::get", QUERY),
    ("OutgoingReport::counts_by", QUERY),
    ("OutgoingReport::section", QUERY),
    ("ReporterBuilder::payload_shape", Fed),
    ("Counter::increment_by", NoOutput("a count: exact in the local exposition, rounded to 6 significant digits in what is sent (fed through `LabeledCounter::increment_by`)")),
    ("Disclosure::new", NoOutput("the product's own words to its users, shown on their terminal and logged there, never sent")),
    ("Disclosure::with_texts", NoOutput("the product's own words to its users, shown on their terminal and logged there, never sent")),
    ("Endpoints::handle", QUERY),
    ("Endpoints::metrics", QUERY),
    ("Endpoints::telemetry", QUERY),
    ("Endpoints::with_report", NoOutput("a source of reports: its reports are made by the inputs above")),
    ("Endpoints::with_snapshot", NoOutput("a source of snapshots: its values are recorded by the inputs above")),
    ("ErrorKindLabel::of", NoOutput("the kind of an `ErrorKind` value: fed through `#[count_usage(errors)]` here")),
    ("Exposition::family_name", PURE),
    ("Exposition::with_prefix", NoOutput("a metric-name prefix for the operator's own Prometheus, checked against the name rule")),
    ("Format::from_name", QUERY),
    ("Format::negotiate", QUERY),
    ("Gauge::add", NoOutput("a value: exact in the local exposition, rounded to 6 significant digits in what is sent (fed through `Gauge::set`)")),
    ("Gauge::set", Fed),
    ("HashKey::from_bytes", NoOutput("the hash key, never written to an output")),
    ("HashKey::load_existing", LOCAL),
    ("HashKey::load_or_create", LOCAL),
    ("HashedLabel::new", Fed),
    ("Histogram::record", Fed),
    ("HistogramSnapshot::quantile", QUERY),
    ("HttpConfig::new", Fed),
    ("MetricsBridge::counter", BRIDGED),
    ("MetricsBridge::gauge", BRIDGED),
    ("MetricsBridge::histogram", BRIDGED),
    ("TracingBridge::count", SPAN_SELECTOR),
    ("TracingBridge::time", SPAN_SELECTOR),
    ("SpoolLimits::new", NoOutput("the spool's caps: how many local files and bytes are kept, never sent")),
    ("JsonFileSink::new", LOCAL),
    ("LabeledCounter::increment", Fed),
    ("LabeledCounter::increment_by", Fed),
    ("LabeledCounter::series", NoOutput("as `LabeledCounter::increment`, keeping the series' handle")),
    ("LabeledHistogram::record", NoOutput("as `LabeledCounter::increment_by`, for a histogram: the same label types")),
    ("LabeledHistogram::series", NoOutput("as `LabeledCounter::increment`, keeping the series' handle")),
    ("OtlpExporter::new", Fed),
    ("OtlpExporter::request_at", NoOutput("a timestamp in nanoseconds")),
    ("OtlpExporter::with_header", Fed),
    ("Pow2Bucket::new", Fed),
    ("Pushgateway::new", LOCAL),
    ("Pushgateway::with_grouping", LOCAL),
    ("Report::add_section", Fed),
    ("Reporter::send_event", Fed),
    ("ReporterBuilder::schedule", Fed),
    ("ReporterBuilder::section", Fed),
    ("ReporterBuilder::sink", NoOutput("a local sink the product writes: it receives the reports the inputs above make")),
    ("ReporterBuilder::state_dir", Fed),
    ("ReporterBuilder::upload_config", LOCAL),
    ("SinkError::new", NoOutput("an error the product's own sink returns: logged on the product's machine, never sent")),
    ("Snapshot::counter", QUERY),
    ("Snapshot::counter_with", QUERY),
    ("Snapshot::gauge", QUERY),
    ("Snapshot::histogram", QUERY),
    ("Snapshot::histogram_with", QUERY),
    ("StateDir::file", LOCAL),
    ("StateDir::new", LOCAL),
    ("StateDir::for_user", LOCAL),
    ("StateDir::read", LOCAL),
    ("StateDir::write", LOCAL),
    ("TelemetryQuery::parse", QUERY),
    ("global::use_key_file", LOCAL),
    ("crash::scrub_path", PURE),
    ("telemetry_json::telemetry_json", QUERY),
    ("metadata::validate_name", PURE),
    ("names::sanitize_name", PURE),
    ("Values::listed", NoOutput("a hand-written label type's values, a constant: a text outside them is recorded as `other` (`privacy::hand_written_guards_cannot_label_with_run_time_text`)")),
    ("Receiver::wait_for_reports", NoOutput("a wait in the product's own test")),
    ("Receiver::with_latest_version", NoOutput("what a test collector answers the reporter; the reporter keeps only a plain version string of it (the fuzzed version-notice rule)")),
    ("testing::capture", NoOutput("runs the product's code and returns what it recorded on this thread")),
    ("testing::capture_with", NoOutput("runs the product's code and returns what it recorded on this thread")),
];

#[test]
fn every_public_input_is_fed_canaries_or_says_why_not() {
    let inputs = public_inputs::public_inputs();
    let listed: Vec<&str> = INPUTS.iter().map(|(name, _)| *name).collect();
    let found: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    let unlisted: Vec<String> = inputs
        .iter()
        .filter(|i| !listed.contains(&i.name.as_str()))
        .map(|i| format!("{} (takes {:?})", i.name, i.takes))
        .collect();
    assert!(
        unlisted.is_empty(),
        "public inputs without a canary case: {unlisted:#?}"
    );
    let stale: Vec<&&str> = listed.iter().filter(|n| !found.contains(n)).collect();
    assert!(stale.is_empty(), "listed but no longer public: {stale:?}");
    let source = include_str!("canaries.rs");
    let body = &source[..source.find("/// How the canary test covers").unwrap()];
    let mut fed = 0;
    for (name, covered) in INPUTS {
        if let NoOutput(reason) = covered {
            assert!(
                reason.len() >= 20,
                "{name}: say why it cannot reach an output"
            );
        }
        if let Fed = covered {
            let method = name.rsplit("::").next().unwrap();
            assert!(
                body.contains(&format!(".{method}(")) || body.contains(&format!("::{method}(")),
                "{name} is listed as fed, but this file never calls it"
            );
            fed += 1;
        }
    }
    println!(
        "public inputs: {} ({fed} fed canaries, {} that cannot reach an output)",
        INPUTS.len(),
        INPUTS.len() - fed
    );
}

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
    install_panic_hook(PanicHookConfig {
        crates: vec!["canaries"],
        allowed_messages: vec![],
    });
    assert!(std::panic::catch_unwind(crash_with_canaries).is_err());
    let bad_config = ConsentBuilder::new()
        .environment(|name| (name == "APP_TELEMETRY").then(|| EMAIL.to_owned()))
        .env("APP_TELEMETRY", Polarity::OptIn, ValueRule::FerretDb)
        .resolve();
    assert!(bad_config.is_err(), "a canary is not a consent value");

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
    let otlp = OtlpExporter::new(
        "http://127.0.0.1:4318",
        Application::new("canary-app", "1.0.0"),
    )
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
    let state = std::env::temp_dir().join(format!("telemetry-canaries-{}", uuid::Uuid::new_v4()));
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down_url = format!("http://{}/v1/report", down.local_addr().unwrap());
    drop(down);
    for (url, spooled) in [(receiver.url(), false), (down_url, true)] {
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
            .system_facts(telemetry_core::build_facts!())
            .start()
            .unwrap();
        reporter.send_event(&event("canary"));
        if spooled {
            eventually("a spooled report", || reporter.status().spooled == 1);
        } else {
            eventually("a sent report", || receiver.requests() == 1);
        }
        assert_clean(
            "the reporter's payload",
            reporter.payload().unwrap().to_json().as_bytes(),
            &mut tried,
        );
        reporter.shutdown();
    }
    for body in receiver.bodies() {
        assert_clean("what the reporter sent", body.as_bytes(), &mut tried);
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
    std::thread::sleep(Duration::from_millis(50));
    let logged = lines.0.lock().unwrap().join("\n");
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

//! A product's own payload (`ReporterBuilder::payload_shape`): it is the whole body, every view
//! of "what leaves" shows the same bytes, it keeps the privacy rules (rounded numbers, hashed
//! names, no text without a rule), the manifest lists it, and a payload that is not derived or
//! a shape that panics sends nothing. Library defaults throughout; only the clock is fake.

mod receiver;

use receiver::{Mode, Receiver, eventually, settle};
use std::sync::Arc;
use std::time::Duration;
use telemetry_core::anonymize::{Anonymize, Anonymizer};
use telemetry_core::consent::{Consent, ConsentBuilder};
use telemetry_core::disclosure::Disclosure;
use telemetry_core::export::endpoint::Endpoints;
use telemetry_core::payload::{InstanceId, OutgoingReport, TimeSpan, Uptime, Version};
use telemetry_core::reporter::{FakeClock, HttpConfig, Reporter, ReporterBuilder};
use telemetry_core::{Application, LabelValue, Payload, Telemetry};

const HOUR: Duration = Duration::from_secs(3600);

/// A node's role.
#[derive(Clone, Copy, LabelValue)]
enum Role {
    Leader,
}

/// The collection statistics of the product's schema.
#[derive(Telemetry)]
struct Collections {
    /// How many there are.
    count: u64,
    /// Their names, hashed.
    #[telemetry(hash)]
    names: Vec<String>,
}

/// The product's documented payload.
#[derive(Telemetry)]
#[telemetry(payload = "shaped_product")]
struct ShapedPayload {
    /// The per-start id.
    id: InstanceId,
    version: Version,
    uptime: TimeSpan,
    #[telemetry(rename = "uptimeSeconds")]
    uptime_seconds: Uptime,
    role: Role,
    #[telemetry(rename = "totalVectors")]
    total_vectors: u64,
    collections: Collections,
}

fn shape(report: &OutgoingReport) -> ShapedPayload {
    ShapedPayload {
        id: report.instance_id(),
        version: report.version(),
        uptime: report.uptime().timespan(),
        uptime_seconds: report.uptime(),
        role: Role::Leader,
        total_vectors: 123_456_789,
        collections: Collections {
            count: 2,
            names: vec!["customers".into(), "alice@example.com".into()],
        },
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("telemetry-{name}-{}", uuid::Uuid::new_v4()))
}

fn builder(url: &str, clock: &Arc<FakeClock>, state: &std::path::Path) -> ReporterBuilder {
    Reporter::builder(Application::new("shaped", "1.4.2"))
        .consent(
            ConsentBuilder::new()
                .environment(|_| None)
                .executable("/usr/bin/shaped")
                .default_consent(Consent::Enabled),
        )
        .disclosure(
            Disclosure::new(
                "shaped",
                "Test Ltd",
                "setting X=1",
                "https://example.invalid",
            )
            .to_stderr(false),
        )
        .endpoint(HttpConfig::new(url))
        .state_dir(state)
        .clock(clock.clone())
}

#[test]
fn the_payload_is_the_whole_body_and_every_view_shows_the_same_bytes() {
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    let clock = Arc::new(FakeClock::new());
    let state = temp_dir("shaped");
    let reporter = Arc::new(
        builder(&receiver.url(), &clock, &state)
            .payload_shape(shape)
            .start()
            .unwrap(),
    );
    let preview = reporter.preview_json();
    assert_eq!(reporter.payload_json().as_deref(), Some(preview.as_str()));
    let endpoints = Endpoints::new(telemetry_core::application!()).with_reporter(reporter.clone());
    let answered = endpoints.handle("/telemetry?details_level=3&anonymize=true", None);
    assert_eq!(answered.body, preview);

    clock.advance(HOUR);
    eventually("the first report", || receiver.requests() == 1);
    let body: serde_json::Value = serde_json::from_str(&receiver.bodies()[0]).unwrap();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "collections",
            "id",
            "role",
            "totalVectors",
            "uptime",
            "uptimeSeconds",
            "version"
        ]
    );
    assert_eq!(body["id"], telemetry_core::instance_id().to_string());
    assert_eq!(body["version"], "1.4.2");
    assert_eq!(body["role"], "Leader");
    // Numbers are rounded, names hashed, the uptime rounded down to the hour.
    assert_eq!(body["totalVectors"], 123_456_000);
    assert_eq!(body["collections"]["count"], 2);
    let names = body["collections"]["names"].as_array().unwrap();
    assert_eq!(names.len(), 2);
    for name in names {
        let name = name.as_str().unwrap();
        assert!(!name.contains("customers") && !name.contains('@'), "{name}");
    }
    assert_eq!(body["uptimeSeconds"].as_u64().unwrap() % 3600, 0);
    let uptime = body["uptime"].as_str().unwrap();
    assert!(
        uptime.len() == 8 && uptime.ends_with(":00:00"),
        "hh:mm:ss, whole hours: {uptime}"
    );
    // The envelope is not sent beside it.
    assert!(body.get("metrics").is_none() && body.get("report_id").is_none());

    // The last-report file keeps the envelope.
    let last: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("telemetry.json")).unwrap())
            .unwrap();
    assert_eq!(last["sent"], true);
    assert_eq!(last["report"]["application"]["name"], "shaped");
    drop(endpoints);
    assert!(Arc::into_inner(reporter).unwrap().shutdown());
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn the_manifest_lists_the_payload_with_its_rules() {
    let manifest = telemetry_core::manifest::manifest();
    let payload = manifest
        .payloads
        .iter()
        .find(|p| p.name == "shaped_product")
        .expect("the payload is listed");
    assert_eq!(payload.description, "The product's documented payload.");
    let field = |name: &str| payload.fields.iter().find(|f| f.name == name).unwrap();
    assert_eq!(field("id").description, "The per-start id.");
    assert!(field("totalVectors").anonymization.contains("rounded"));
    assert!(
        manifest
            .to_markdown()
            .contains("## Payload `shaped_product`")
    );
    // Nested types are listed once, as types, not as payloads.
    assert!(manifest.types.iter().any(|t| t.name == "Collections"));
    assert!(!manifest.payloads.iter().any(|p| p.name == "Collections"));
}

/// A payload implemented by hand: the manifest cannot describe it.
struct HandMade;

impl Anonymize for HandMade {
    const SAFE_BECAUSE: &'static str = "trust me";
    fn anonymize(&self, _: &Anonymizer) -> serde_json::Value {
        serde_json::json!({ "email": "alice@example.com" })
    }
}

impl Payload for HandMade {
    const NAME: &'static str = "hand_made";
}

/// A payload implemented by hand under a derived payload's name.
struct Impostor;

impl Anonymize for Impostor {
    const SAFE_BECAUSE: &'static str = "trust me";
    fn anonymize(&self, _: &Anonymizer) -> serde_json::Value {
        serde_json::json!({ "email": "alice@example.com" })
    }
}

impl Payload for Impostor {
    const NAME: &'static str = "shaped_product";
}

#[test]
fn a_hand_written_payload_even_under_a_derived_name_or_a_panicking_shape_sends_nothing() {
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    for (name, builder) in [
        (
            "hand-written",
            builder(
                &receiver.url(),
                &Arc::new(FakeClock::new()),
                &temp_dir("hand"),
            )
            .payload_shape(|_: &OutgoingReport| HandMade),
        ),
        (
            "hand-written under a derived name",
            builder(
                &receiver.url(),
                &Arc::new(FakeClock::new()),
                &temp_dir("impostor"),
            )
            .payload_shape(|_: &OutgoingReport| Impostor),
        ),
        (
            "panicking",
            builder(
                &receiver.url(),
                &Arc::new(FakeClock::new()),
                &temp_dir("panic"),
            )
            .payload_shape(|_: &OutgoingReport| -> ShapedPayload {
                panic!("the product's shape has a bug")
            }),
        ),
    ] {
        let reporter = builder.start().unwrap();
        assert_eq!(reporter.payload_json(), None, "{name}");
        assert!(
            !reporter.preview_json().contains("alice@example.com"),
            "{name}"
        );
        reporter.send_event(&Nothing);
        eventually("the event's report to be dropped", || {
            reporter.status().dropped >= 1
        });
        assert!(reporter.shutdown(), "{name}");
    }
    assert_eq!(receiver.requests(), 0);
}

/// An event with no data.
#[derive(Telemetry)]
#[telemetry(event = "nothing")]
struct Nothing;

#[test]
fn an_opt_out_still_means_no_request_with_a_payload() {
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    let clock = Arc::new(FakeClock::new());
    let state = temp_dir("shaped-off");
    let reporter = builder(&receiver.url(), &clock, &state)
        .consent(
            ConsentBuilder::new()
                .environment(|name| (name == "DO_NOT_TRACK").then(|| "1".to_owned()))
                .executable("/usr/bin/shaped"),
        )
        .payload_shape(shape)
        .start()
        .unwrap();
    for _ in 0..48 {
        clock.advance(HOUR);
        settle(&reporter, &clock);
    }
    reporter.send_event(&Nothing);
    assert!(reporter.shutdown());
    assert_eq!(receiver.requests(), 0);
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn a_spooled_report_leaves_as_the_payload_when_the_endpoint_is_back() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let state = temp_dir("shaped-spool");
    let clock = Arc::new(FakeClock::new());
    let url = format!("http://{addr}/v1/report");
    let reporter = builder(&url, &clock, &state)
        .payload_shape(shape)
        .start()
        .unwrap();
    reporter.send_event(&Nothing);
    // The retries wait on the clock: a few seconds of it per look.
    eventually("the event's report to be spooled", || {
        clock.advance(Duration::from_secs(5));
        reporter.status().spooled == 1
    });
    // The spool keeps the payload's bytes, which leave as they are.
    let spooled = std::fs::read_dir(state.join("spool"))
        .unwrap()
        .next()
        .unwrap();
    let file = std::fs::read_to_string(spooled.unwrap().path()).unwrap();
    // A seal line, then the body.
    let (_seal, kept) = file.split_once('\n').unwrap();
    let kept: serde_json::Value = serde_json::from_str(kept).unwrap();
    assert_eq!(kept["totalVectors"], 123_456_000);
    assert!(kept.get("trigger").is_none());
    let receiver = Receiver::start_on(
        std::net::TcpListener::bind(addr).unwrap(),
        Mode::Ok("{}".into()),
    );
    clock.advance(HOUR);
    eventually("the scheduled report and the spooled one", || {
        receiver.requests() == 2
    });
    for body in receiver.bodies() {
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["totalVectors"], 123_456_000, "{body}");
        assert!(body.get("report_id").is_none(), "{body}");
    }
    assert!(reporter.shutdown());
    let _ = std::fs::remove_dir_all(&state);
}

/// What a shape can see of the machine and of consent.
#[derive(Telemetry)]
#[telemetry(payload = "facts_probe")]
struct FactsProbe {
    carries_usage: bool,
    cores: Option<usize>,
}

#[test]
fn a_shape_sees_no_system_facts_while_usage_statistics_are_withheld() {
    use telemetry_core::consent::{Category, Polarity, ValueRule};
    for (send_telemetry, usage) in [("false", false), ("true", true)] {
        let receiver = Receiver::start(Mode::Ok("{}".into()));
        let clock = Arc::new(FakeClock::new());
        let state = temp_dir("facts-probe");
        let reporter = builder(&receiver.url(), &clock, &state)
            .consent(
                ConsentBuilder::new()
                    .environment(move |name| {
                        (name == "SEND_TELEMETRY").then(|| send_telemetry.to_owned())
                    })
                    .executable("/usr/bin/shaped")
                    .env_for(
                        Category::UsageStatistics,
                        "SEND_TELEMETRY",
                        Polarity::OptIn,
                        ValueRule::Unleash,
                    )
                    .default_consent(Consent::Enabled),
            )
            .system_facts(telemetry_core::build_facts!())
            .payload_shape(|report: &OutgoingReport| FactsProbe {
                carries_usage: report.carries_usage(),
                cores: report.system_facts().map(|f| f.core_count()),
            })
            .start()
            .unwrap();
        clock.advance(HOUR);
        eventually("the version check", || receiver.requests() == 1);
        assert!(reporter.shutdown());
        let body: serde_json::Value = serde_json::from_str(&receiver.bodies()[0]).unwrap();
        assert_eq!(
            body["carries_usage"], usage,
            "SEND_TELEMETRY={send_telemetry}"
        );
        assert_eq!(
            body["cores"].is_null(),
            !usage,
            "SEND_TELEMETRY={send_telemetry}: {body}"
        );
        let _ = std::fs::remove_dir_all(&state);
    }
}

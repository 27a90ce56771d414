//! Privacy by construction: typed labels, cardinality caps, the PII guard, anonymization and
//! the manifest.

use telemetry_core::anonymize::{Anonymize, Anonymizer, HashKey, HashedLabel};
use telemetry_core::fuzzing::round_u64;
use telemetry_core::labels::{DEFAULT_MAX_SERIES, OVERFLOW_LABEL_VALUE};
use telemetry_core::testing::capture;
use telemetry_core::{
    Application, Bounded, LabelValue, Pii, Report, Telemetry, count_usage, snapshot, timed,
};

#[derive(Clone, Copy, Debug, LabelValue)]
enum Backend {
    Postgres,
    #[label(rename = "sqlite3")]
    Sqlite,
}

#[derive(Clone, Copy, LabelValue)]
enum ErrorCode {
    DuplicateKey,
    BadValue,
}

#[derive(Clone, Copy, LabelValue)]
enum Command {
    Find,
    Insert,
}

/// FerretDB's query operators, by their MongoDB names.
#[derive(Clone, Copy, LabelValue)]
enum Operator {
    #[label(rename = "$eq")]
    Eq,
    #[label(rename = "$set")]
    Set,
}

#[count_usage(name = "privacy.query", labels(backend = backend, cached = cached))]
#[timed(name = "privacy.query.duration", labels(backend = backend))]
fn query(backend: Backend, cached: bool) -> u32 {
    u32::from(cached)
}

#[count_usage(name = "privacy.capped", labels(shard = Bounded::<1000>::new(shard)), max_series = 3)]
fn capped(shard: u32) {}

#[test]
fn labels_from_arguments_make_one_series_per_label_set() {
    let snap = capture(|| {
        query(Backend::Postgres, true);
        query(Backend::Postgres, true);
        query(Backend::Sqlite, false);
    });
    let pg = [("backend", "Postgres"), ("cached", "true")];
    assert_eq!(snap.counter_with("privacy.query", &pg), Some(2));
    let lite = [("backend", "sqlite3"), ("cached", "false")];
    assert_eq!(snap.counter_with("privacy.query", &lite), Some(1));
    assert_eq!(snap.counter("privacy.query"), Some(3));
    let h = snap
        .histogram_with("privacy.query.duration", &[("backend", "sqlite3")])
        .unwrap();
    assert_eq!(h.count(), 1);

    let d = telemetry_core::descriptors()
        .into_iter()
        .find(|d| d.name == "privacy.query")
        .unwrap();
    assert_eq!(d.labels[0].name, "backend");
    assert_eq!(
        d.labels[0].values.as_deref(),
        Some(&["Postgres".to_owned(), "sqlite3".to_owned()][..])
    );
    assert_eq!(
        d.labels[1].values.as_deref(),
        Some(&["false".to_owned(), "true".to_owned()][..])
    );
    assert_eq!(d.max_series, Some(DEFAULT_MAX_SERIES));
}

#[test]
fn ferretdb_error_counts_by_code_command_and_operator() {
    let errors = telemetry_core::counter!("privacy.query_errors", description = "Query errors by error code, command name and operator", labels(code: ErrorCode, command: Command, operator: Operator))
        .unwrap();
    let dup = errors
        .series((ErrorCode::DuplicateKey, Command::Insert, Operator::Set))
        .unwrap();
    let snap = capture(|| {
        errors.increment((ErrorCode::BadValue, Command::Find, Operator::Eq));
        errors.increment((ErrorCode::BadValue, Command::Find, Operator::Eq));
        dup.increment();
    });
    let key = [
        ("code", "BadValue"),
        ("command", "Find"),
        ("operator", "$eq"),
    ];
    assert_eq!(snap.counter_with("privacy.query_errors", &key), Some(2));
    let key = [
        ("code", "DuplicateKey"),
        ("command", "Insert"),
        ("operator", "$set"),
    ];
    assert_eq!(snap.counter_with("privacy.query_errors", &key), Some(1));
}

#[test]
fn cardinality_is_capped_and_the_overflow_is_counted() {
    let snap = capture(|| {
        for shard in 0..10 {
            capped(shard);
        }
        capped(0);
    });
    let family = &snap.counters["privacy.capped"];
    assert_eq!(family.series.len(), 4, "3 series and one overflow series");
    assert_eq!(snap.counter("privacy.capped"), Some(11), "no call is lost");
    assert_eq!(
        snap.counter_with("privacy.capped", &[("shard", "0")]),
        Some(2)
    );
    assert_eq!(
        snap.counter_with("privacy.capped", &[("shard", OVERFLOW_LABEL_VALUE)]),
        Some(7)
    );
    let overflowed = snapshot()
        .counter_with("telemetry.series_overflow", &[("metric", "privacy.capped")])
        .unwrap();
    assert!(overflowed >= 7, "{overflowed}");

    // Memory stays bounded whatever the input: a flood of distinct values adds no series.
    let hist = telemetry_core::histogram!("privacy.capped_histogram", max_series = 2, labels(id: Bounded<65_535>))
        .unwrap();
    for id in 0..10_000u64 {
        hist.record((Bounded::new(id),), id);
    }
    let snap = snapshot();
    assert_eq!(snap.histograms["privacy.capped_histogram"].series.len(), 3);
    assert_eq!(
        snap.histogram("privacy.capped_histogram").unwrap().count(),
        10_000
    );
}

#[test]
fn hashed_labels_carry_no_name() {
    let tenant = HashedLabel::new("acme-corp");
    let tenants =
        telemetry_core::counter!("privacy.by_tenant", labels(tenant: HashedLabel)).unwrap();
    let snap = capture(|| tenants.increment((tenant.clone(),)));
    let json = serde_json::to_string(&snap).unwrap();
    assert!(!json.contains("acme"), "{json}");
    assert_eq!(
        snap.counter_with("privacy.by_tenant", &[("tenant", tenant.as_str())]),
        Some(1)
    );
}

/// Cluster facts, EventStoreDB style.
#[derive(Telemetry)]
#[telemetry(section = "cluster")]
struct Cluster {
    node_count: u32,
    backend: Backend,
    total_memory: u64,
    uptime: std::time::Duration,
    #[telemetry(hash)]
    database_name: String,
    #[telemetry(hash_url)]
    webhook: String,
    #[pii]
    #[telemetry(hash)]
    owner: Pii<String>,
    #[telemetry(skip)]
    admin_email: String,
    #[telemetry(not_pii = "a count of addresses, not an address")]
    address_count: u64,
    #[telemetry(verbatim = "the product's own release tag")]
    tag: String,
    #[telemetry(rename = "replicaSets")]
    replica_sets: Vec<u16>,
    limits: Option<Limits>,
}

#[derive(Telemetry)]
struct Limits {
    max_connections: u64,
}

fn cluster() -> Cluster {
    Cluster {
        node_count: 3,
        backend: Backend::Sqlite,
        total_memory: 68_631_052_288,
        uptime: std::time::Duration::from_millis(71_011),
        database_name: "customers".into(),
        webhook: "https://bob:hunter2@hooks.example.com/x?token=abc".into(),
        owner: Pii::new("alice".into()),
        admin_email: "alice@example.com".into(),
        address_count: 123_456_789,
        tag: "oss-v23.10.0".into(),
        replica_sets: vec![1, 2],
        limits: Some(Limits {
            max_connections: 10_000_000,
        }),
    }
}

#[test]
fn the_pii_guard_emits_each_field_by_its_rule() {
    let a = Anonymizer::new(HashKey::from_bytes([7; 32]));
    let cluster = cluster();
    assert!(
        cluster.admin_email.contains('@'),
        "the application still has its data"
    );
    let json = cluster.anonymize(&a);
    assert_eq!(json["node_count"], 3);
    assert_eq!(json["backend"], "sqlite3");
    assert_eq!(json["total_memory"], 68_631_000_000u64);
    assert_eq!(json["uptime"], 71_011_000_000u64);
    assert_eq!(json["database_name"], a.hash_name("customers"));
    let webhook = json["webhook"].as_str().unwrap();
    assert!(
        webhook.starts_with("https:") && !webhook.contains("example"),
        "{webhook}"
    );
    assert_eq!(json["owner"], a.hash_name("alice"));
    assert!(json.get("admin_email").is_none());
    assert_eq!(json["address_count"], 123_456_000);
    assert_eq!(json["tag"], "oss-v23.10.0");
    assert_eq!(json["replicaSets"], serde_json::json!([1, 2]));
    assert_eq!(json["limits"]["max_connections"], 10_000_000);
    let text = json.to_string();
    for raw in [
        "customers",
        "alice",
        "hunter2",
        "hooks.example.com",
        "token=abc",
    ] {
        assert!(!text.contains(raw), "{raw} leaked: {text}");
    }
}

#[test]
fn pii_is_redacted_in_debug_and_display() {
    let email = Pii::new(String::from("carol@example.com"));
    assert_eq!(format!("{email:?}"), "Pii(<redacted>)");
    assert_eq!(format!("{email}"), "<redacted>");
    assert_eq!(email.expose(), "carol@example.com");
}

#[test]
fn the_qdrant_example_number_rounds_as_the_seed_says() {
    assert_eq!(round_u64(123_456_789, 6), 123_456_000);
    let a = Anonymizer::new(HashKey::generate());
    assert_eq!(a.round(123_456_789), 123_456_000);
    assert_eq!(123_456_789u64.anonymize(&a), 123_456_000);
}

#[test]
fn the_anonymized_report_rounds_every_number_and_keeps_no_raw_name() {
    let big = telemetry_core::counter!("privacy.big").unwrap();
    big.increment_by(123_456_789);
    let mut report = Report::collect(Application::new("privacy", "1.0.0"));
    report.add_section(&cluster());
    let raw = report.to_json();
    // Sections are anonymized when added: not even the local report holds raw names.
    assert!(!raw.contains("customers") && !raw.contains("alice"));
    let anonymized = report.anonymized();
    assert!(
        anonymized
            .metrics
            .counter("privacy.big")
            .unwrap()
            .is_multiple_of(1000)
    );
    fn assert_rounded(value: &serde_json::Value, path: &str) {
        match value {
            serde_json::Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    assert_eq!(round_u64(u, 6), u, "unrounded number at {path}");
                }
            }
            serde_json::Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    assert_rounded(v, &format!("{path}[{i}]"));
                }
            }
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    assert_rounded(v, &format!("{path}.{k}"));
                }
            }
            _ => {}
        }
    }
    let json = serde_json::to_value(&anonymized).unwrap();
    assert_rounded(&json["metrics"], "metrics");
    assert_rounded(&json["sections"], "sections");
}

#[test]
fn the_manifest_describes_metrics_and_sections() {
    let manifest = telemetry_core::manifest::manifest();
    let m = manifest
        .metrics
        .iter()
        .find(|m| m.name == "privacy.query")
        .unwrap();
    assert_eq!(m.labels.len(), 2);
    let cluster = manifest
        .sections
        .iter()
        .find(|s| s.name == "cluster")
        .unwrap();
    assert_eq!(cluster.description, "Cluster facts, EventStoreDB style.");
    let admin = cluster
        .fields
        .iter()
        .find(|f| f.name == "admin_email")
        .unwrap();
    assert!(admin.skipped);
    let db = cluster
        .fields
        .iter()
        .find(|f| f.name == "database_name")
        .unwrap();
    assert!(db.anonymization.contains("keyed hash"));
    let count = cluster
        .fields
        .iter()
        .find(|f| f.name == "address_count")
        .unwrap();
    assert_eq!(
        count.not_pii.as_deref(),
        Some("a count of addresses, not an address")
    );
    let markdown = manifest.to_markdown();
    assert!(markdown.contains("named like personal data, but not: a count of addresses"));
    assert!(markdown.starts_with("# What data is collected"));
    assert!(markdown.contains("| `privacy.query` | counter |"));
    assert!(
        markdown.contains("- `cluster.admin_email`"),
        "skipped fields are listed as never sent"
    );
    // The version is a stable hash: the same program gives the same version.
    assert_eq!(
        manifest.version,
        telemetry_core::manifest::manifest().version
    );
    assert_eq!(manifest.version.len(), 16);
}

/// A customer tier, labeled through a hand-written implementation that says why it is safe.
#[derive(Clone, Copy)]
struct Tier(u8);

impl LabelValue for Tier {
    const SAFE_BECAUSE: &'static str = "one of three tiers, numbered 0 to 2";
    const VALUES: telemetry_core::labels::Values =
        telemetry_core::labels::Values::listed(&["0", "1", "2"]);
    fn label_key(&self) -> u64 {
        u64::from(self.0 % 3)
    }
    fn label_text(&self) -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Owned((self.0 % 3).to_string())
    }
}

/// A tenant, labeled through a hand-written implementation whose text is made at run time:
/// outside the listed values, so recorded as `other`.
#[derive(Clone)]
struct Tenant(String);

impl LabelValue for Tenant {
    const SAFE_BECAUSE: &'static str = "claims to be one of two plans";
    const VALUES: telemetry_core::labels::Values =
        telemetry_core::labels::Values::listed(&["free", "pro"]);
    fn label_key(&self) -> u64 {
        self.0.len() as u64
    }
    fn label_text(&self) -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Owned(self.0.clone())
    }
}

#[derive(Debug)]
struct LoginFailed(String);

impl telemetry_core::ErrorKind for LoginFailed {
    const SAFE_BECAUSE: &'static str = "claims to be one kind";
    const KINDS: &'static [&'static str] = &["denied"];
    fn error_kind(&self) -> &'static str {
        // A hand-written kind that leaks the user's name.
        self.0.clone().leak()
    }
}

#[telemetry_core::count_usage(name = "privacy.hand_login", errors)]
fn hand_login(user: &str) -> Result<(), LoginFailed> {
    Err(LoginFailed(user.to_owned()))
}

/// Hand-written guards cannot put text made at run time in a label: a label text outside the
/// type's listed values, and an error kind outside its kinds, are recorded as `other`.
#[test]
fn hand_written_guards_cannot_label_with_run_time_text() {
    let tenants = telemetry_core::counter!("privacy.by_tenant", labels(tenant: Tenant)).unwrap();
    tenants.increment((Tenant("alice@example.com".into()),));
    tenants.increment((Tenant("pro".into()),));
    let _ = hand_login("alice@example.com");
    let snap = telemetry_core::snapshot();
    assert_eq!(
        snap.counter_with("privacy.by_tenant", &[("tenant", "other")]),
        Some(1)
    );
    assert_eq!(
        snap.counter_with("privacy.by_tenant", &[("tenant", "pro")]),
        Some(1)
    );
    assert_eq!(
        snap.counter_with("privacy.hand_login.errors", &[("kind", "other")]),
        Some(1)
    );
    let text = telemetry_core::export::prometheus::render_prometheus(&snap);
    assert!(!text.contains("alice"), "{text}");
}

/// A share, emitted through a hand-written rule.
struct Share(f64);

impl Anonymize for Share {
    const SAFE_BECAUSE: &'static str = "a ratio between 0 and 1, rounded to two decimals";
    fn anonymize(&self, _: &Anonymizer) -> serde_json::Value {
        serde_json::json!((self.0.clamp(0.0, 1.0) * 100.0).round() / 100.0)
    }
}

/// A section with a hand-written field type.
#[derive(Telemetry)]
#[telemetry(section = "vouched_section")]
struct Vouched {
    share: Share,
}

#[test]
fn hand_written_guards_state_their_reason_and_the_manifest_shows_it() {
    let tiers = telemetry_core::counter!("privacy.by_tier", labels(tier: Tier)).unwrap();
    tiers.increment((Tier(7),));
    let manifest = telemetry_core::manifest::manifest();
    let metric = manifest
        .metrics
        .iter()
        .find(|m| m.name == "privacy.by_tier")
        .unwrap();
    assert_eq!(
        metric.labels[0].vouched.as_deref(),
        Some("one of three tiers, numbered 0 to 2")
    );
    let section = manifest
        .sections
        .iter()
        .find(|s| s.name == "vouched_section")
        .unwrap();
    assert_eq!(
        section.fields[0].vouched.as_deref(),
        Some("a ratio between 0 and 1, rounded to two decimals")
    );
    let page = manifest.to_markdown();
    assert!(
        page.contains("vouched for by hand: a ratio between 0 and 1"),
        "{page}"
    );
    assert!(
        page.contains("vouched for by hand: one of three tiers"),
        "{page}"
    );
    // Derived and built-in types are not listed as vouched for.
    assert!(
        manifest
            .metrics
            .iter()
            .flat_map(|m| &m.labels)
            .filter(|l| l.name == "backend")
            .all(|l| l.vouched.is_none())
    );
    let _ = Vouched { share: Share(0.5) };
    let json: serde_json::Value = serde_json::from_str(&manifest.to_json()).unwrap();
    assert_eq!(json["version"], manifest.version);
    assert!(
        json["envelope"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "uptime_seconds")
    );
}

/// A section written by hand: any JSON, which the manifest would not describe.
struct HandSection;

impl Anonymize for HandSection {
    const SAFE_BECAUSE: &'static str = "claims to be safe";
    fn anonymize(&self, _: &Anonymizer) -> serde_json::Value {
        serde_json::json!({ "who": "alice@example.com" })
    }
}

impl telemetry_core::Section for HandSection {
    const NAME: &'static str = "hand";
}

/// Sections and events must be derived, so the manifest lists them: one written by hand is
/// left out of reports.
#[test]
fn a_section_written_by_hand_is_left_out() {
    let mut report = Report::new(
        Application::new("app", "1.0.0"),
        telemetry_core::Snapshot::default(),
    );
    report.add_section(&HandSection);
    assert!(report.sections().is_empty());
    assert!(!report.to_json().contains("alice"));
    let read: Application =
        serde_json::from_str(r#"{"name":"alice@example.com","version":"203.0.113.77"}"#).unwrap();
    assert_eq!((read.name(), read.version()), ("other", "other"));
}

/// A label set past the cap is counted in `telemetry.series_overflow` once, however often it
/// comes back: here from a second thread, whose cache has never seen it. Before, every cache
/// miss counted it again (1,999,488 after two passes over 1,000,000 values).
#[test]
fn an_overflowing_label_set_is_counted_once() {
    let family = telemetry_core::counter!(
        "privacy.overflow_once",
        labels(n: Bounded<65535>),
        max_series = 3
    )
    .unwrap();
    let pass = || {
        for n in 0..100u16 {
            family.increment((Bounded::new(n),));
        }
    };
    std::thread::scope(|s| {
        s.spawn(pass).join().unwrap();
        s.spawn(pass).join().unwrap();
    });
    let snap = telemetry_core::snapshot();
    assert_eq!(snap.counter("privacy.overflow_once"), Some(200));
    assert_eq!(
        snap.counter_with(
            "telemetry.series_overflow",
            &[("metric", "privacy.overflow_once")]
        ),
        Some(97)
    );
}

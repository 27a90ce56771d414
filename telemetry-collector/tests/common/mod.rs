//! What the collector's tests share: the two backends, a collector on loopback, an HTTP
//! client, and a manifest and reports made by this test binary's own declarations.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;
use telemetry_collector::storage::Storage;
use telemetry_collector::storage::clickhouse::ClickHouseStorage;
use telemetry_collector::storage::sqlite::SqliteStorage;
use telemetry_collector::{Collector, Config};

/// The variable `scripts/with-clickhouse.sh` sets to its server's HTTP URL.
pub const CLICKHOUSE_ENV: &str = "TELEMETRY_COLLECTOR_TEST_CLICKHOUSE_URL";

/// Whether this is a CI run (`CI=true`): there a missing tool fails the test.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The ClickHouse URL, or `None` (said loudly) outside CI; in CI a missing server fails.
pub fn clickhouse_url() -> Option<String> {
    match std::env::var(CLICKHOUSE_ENV) {
        Ok(url) => {
            assert!(
                url.starts_with("http://127.0.0.1:") || url.starts_with("http://localhost:"),
                "the test ClickHouse must be on loopback: {url}"
            );
            Some(url)
        }
        Err(_) if in_ci() => panic!(
            "{CLICKHOUSE_ENV} is not set: run the collector's tests through scripts/with-clickhouse.sh"
        ),
        Err(_) => {
            eprintln!(
                "NOT RUN against ClickHouse: {CLICKHOUSE_ENV} is not set (run scripts/with-clickhouse.sh cargo test -p telemetry-collector)"
            );
            None
        }
    }
}

/// A fresh database name, so that tests running at once do not meet.
pub fn fresh_database(label: &str) -> String {
    format!("test_{label}_{}", uuid::Uuid::new_v4().simple())
}

/// The backends the shared tests run against, by name.
pub fn backends(label: &str) -> Vec<(&'static str, Arc<dyn Storage>)> {
    let mut out: Vec<(&'static str, Arc<dyn Storage>)> = vec![(
        "sqlite",
        Arc::new(SqliteStorage::in_memory().expect("sqlite in memory")),
    )];
    if let Some(url) = clickhouse_url() {
        let storage = ClickHouseStorage::open(&url, &fresh_database(label))
            .expect("the test ClickHouse answers");
        out.push(("clickhouse", Arc::new(storage)));
    }
    out
}

/// A collector serving on a free loopback port, on its own runtime thread.
pub struct Running {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The collector (its store, for checks).
    pub collector: Collector,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Starts a collector over `storage` with `config`.
    pub fn start(mut config: Config, storage: Arc<dyn Storage>) -> Self {
        config.listen = "127.0.0.1:0".to_owned();
        let collector = Collector::new(config, storage).expect("collector");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, address) = std::sync::mpsc::channel();
        let serving = collector.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                ready.send(listener.local_addr().unwrap()).unwrap();
                serving
                    .serve(listener, async move {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let address = address
            .recv_timeout(Duration::from_secs(10))
            .expect("collector started");
        Running {
            url: format!("http://{address}"),
            collector,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stops it gracefully and waits.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The admin token of the test configurations.
pub const TOKEN: &str = "test-token-0123456789abcdef";

/// A configuration with the admin token and a latest version for `docstore` and `suite`.
pub fn config() -> Config {
    let mut config: Config = toml::from_str(
        "[products.docstore]\nlatest_version = \"1.0.1\"\n[products.suite]\nlatest_version = \"2.0.0\"\nchannels = { beta = \"2.1.0-beta.1\" }\n",
    )
    .unwrap();
    config.admin_token = Some(TOKEN.to_owned());
    config
}

/// An answer: status, headers we look at, body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn read(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut response = response.expect("the collector answers");
    Answer {
        status: response.status().as_u16(),
        retry_after: response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .unwrap_or_default(),
    }
}

/// `POST url` with `body` as `content_type`.
pub fn post(url: &str, content_type: &str, body: &[u8]) -> Answer {
    read(
        agent()
            .post(url)
            .header("content-type", content_type)
            .send(body),
    )
}

/// `POST url` with the admin token.
pub fn post_admin(url: &str, body: &[u8]) -> Answer {
    read(
        agent()
            .post(url)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {TOKEN}"))
            .send(body),
    )
}

/// `DELETE url` with `token`.
pub fn delete(url: &str, token: Option<&str>) -> Answer {
    let mut request = agent().delete(url);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    read(request.call())
}

/// `GET url`.
pub fn get(url: &str) -> Answer {
    read(agent().get(url).call())
}

/// `POST /v1/report` of `report`.
pub fn send(base: &str, report: &serde_json::Value) -> Answer {
    post(
        &format!("{base}/v1/report"),
        "application/json",
        report.to_string().as_bytes(),
    )
}

/// The test product's name.
pub const PRODUCT: &str = "suite";

/// A label type of the test product.
#[derive(telemetry_core::LabelValue, Clone, Copy, Debug)]
pub enum Mode {
    /// Fast.
    Fast,
    /// Safe.
    Safe,
}

/// The test product's own section.
#[derive(telemetry_core::Telemetry)]
#[telemetry(section = "setup")]
pub struct Setup {
    /// Shards.
    pub shards: u32,
    /// The mode.
    pub mode: Mode,
}

/// Declares the test product's metrics (once) and records one value in each, so that every
/// one is in the snapshot with its series.
pub fn declare() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        telemetry_core::counter!("suite.search.calls", description = "Searches").unwrap().increment();
        telemetry_core::counter!("suite.export.calls", description = "Exports").unwrap().increment();
        telemetry_core::counter!("suite.import.calls", description = "Imports").unwrap().increment();
        let errors = telemetry_core::counter!("suite.query.errors", description = "Query errors", labels(mode: Mode)).unwrap();
        errors.increment((Mode::Fast,));
        let codes = telemetry_core::counter!("suite.errors.by_code", description = "Errors by code", labels(code: telemetry_core::Bounded<65535>)).unwrap();
        codes.increment((telemetry_core::Bounded::new(7u16),));
        telemetry_core::gauge!("suite.documents", description = "Documents").unwrap().set(3);
        telemetry_core::histogram!("suite.search.duration", unit = Nanoseconds, description = "Search time")
            .unwrap()
            .record(1_000);
    });
}

/// The manifest of the test product: this binary's manifest, its metrics cut to `suite.*`.
pub fn manifest() -> telemetry_core::manifest::Manifest {
    declare();
    let mut manifest = telemetry_core::manifest::manifest();
    manifest.metrics.retain(|m| m.name.starts_with("suite."));
    manifest
}

/// Registers the test product's manifest for `versions` with the collector at `base`.
pub fn register(base: &str, versions: &[&str]) {
    let json = manifest().to_json();
    for version in versions {
        let answer = post_admin(
            &format!("{base}/v1/manifests/{PRODUCT}/{version}"),
            json.as_bytes(),
        );
        assert!(matches!(answer.status, 200 | 201), "{answer:?}");
    }
}

/// What one test report holds.
pub struct Fake<'a> {
    /// `application.version`.
    pub version: &'static str,
    /// The installation id.
    pub installation: uuid::Uuid,
    /// Counters above zero, with their values; the others are 0.
    pub features: &'a [(&'a str, u64)],
    /// Values recorded in `suite.search.duration`.
    pub durations: &'a [u64],
    /// `environment.os`.
    pub os: &'a str,
}

impl Default for Fake<'_> {
    fn default() -> Self {
        Fake {
            version: "1.0.0",
            installation: uuid::Uuid::new_v4(),
            features: &[("suite.search.calls", 5)],
            durations: &[],
            os: "linux",
        }
    }
}

/// A report of the test product as the library makes it (`Report::to_json`), with the
/// values of `fake`.
pub fn report(fake: &Fake<'_>) -> serde_json::Value {
    use telemetry_core::{Series, Snapshot};
    declare();
    let global = telemetry_core::snapshot();
    let mut metrics = Snapshot::default();
    for (name, family) in global
        .counters
        .iter()
        .filter(|(n, _)| n.starts_with("suite."))
    {
        let mut family = family.clone();
        let value = fake
            .features
            .iter()
            .find(|(f, _)| **f == **name)
            .map_or(0, |(_, v)| *v);
        for s in &mut family.series {
            s.value = value;
        }
        metrics.counters.insert(name.clone(), family);
    }
    for (name, family) in global
        .gauges
        .iter()
        .filter(|(n, _)| n.starts_with("suite."))
    {
        metrics.gauges.insert(name.clone(), family.clone());
    }
    let (_, durations) = telemetry_core::testing::capture_with(|| {
        let h = telemetry_core::histogram!(
            "suite.search.duration",
            unit = Nanoseconds,
            description = "Search time"
        )
        .unwrap();
        for d in fake.durations {
            h.record(*d);
        }
    });
    if let Some(family) = global.histograms.get("suite.search.duration") {
        let mut family = family.clone();
        let value = durations
            .histogram("suite.search.duration")
            .unwrap_or_default();
        family.series = vec![Series {
            labels: Default::default(),
            value,
        }];
        metrics
            .histograms
            .insert("suite.search.duration".into(), family);
    }
    let mut report = telemetry_core::Report::new(
        telemetry_core::Application::new(PRODUCT, fake.version),
        metrics,
    );
    report.installation_id = Some(fake.installation);
    report.trigger = Some("schedule".to_owned());
    report.add_section(&Setup {
        shards: 3,
        mode: Mode::Safe,
    });
    report.add_section(&telemetry_core::facts::SystemFacts::collect(
        telemetry_core::build_facts!(),
    ));
    let mut json: serde_json::Value = serde_json::from_str(&report.anonymized().to_json()).unwrap();
    json["sections"]["environment"]["os"] = serde_json::Value::from(fake.os);
    json
}

/// An event of the test product (Automatisch-like user actions).
#[derive(telemetry_core::Telemetry)]
#[telemetry(event = "search_failed")]
pub struct SearchFailed {
    /// Terms in the query.
    pub terms: u32,
    /// The collection, hashed.
    #[telemetry(hash)]
    pub collection: String,
}

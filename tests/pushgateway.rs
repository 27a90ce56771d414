//! Pushes to a real Pushgateway (Debian's `prometheus-pushgateway`) on loopback: what it then
//! serves has our values under the group's labels; `PUT` replaces the group, `POST` only the
//! same names, `DELETE` removes it, and a push it refuses is a clear error.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;
use support::{ChildGuard, TempDir, WAIT, wait_for};
use telemetry_core::Snapshot;
use telemetry_core::export::pushgateway::{PushError, Pushgateway};
use telemetry_core::testing::capture;

/// A Pushgateway on 127.0.0.1, without persistence; killed on drop.
struct Gateway {
    addr: SocketAddr,
    guard: ChildGuard,
    _dir: TempDir,
}

impl Gateway {
    fn start() -> Option<Self> {
        let binary = support::require_tool("prometheus-pushgateway")?;
        let dir = TempDir::new("pushgateway");
        let addr: SocketAddr = format!("127.0.0.1:{}", support::free_port())
            .parse()
            .unwrap();
        let mut command = Command::new(binary);
        command
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null());
        let log = dir.path().join("pushgateway.log");
        let mut guard = ChildGuard::spawn("prometheus-pushgateway", command, Some(&log));
        wait_for("the Pushgateway to be ready", WAIT, || {
            guard.assert_running();
            match support::try_request(addr, "GET", "/-/ready", &[], b"") {
                Ok(r) if r.status == 200 => Ok(()),
                Ok(r) => Err(format!("status {}", r.status)),
                Err(e) => Err(e.to_string()),
            }
        });
        Some(Gateway {
            addr,
            guard,
            _dir: dir,
        })
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What the gateway serves for Prometheus to scrape.
    fn metrics(&self) -> String {
        support::request(self.addr, "GET", "/metrics", &[], b"").text()
    }
}

/// The value of the sample `name` whose labels include all of `labels`.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<String> {
    support::samples(text)
        .into_iter()
        .filter(|(n, _, _)| n == name)
        .find(|(_, written, _)| {
            let parsed: BTreeMap<&str, &str> = written
                .split("\",")
                .filter_map(|pair| pair.split_once("=\""))
                .map(|(k, v)| (k, v.trim_end_matches('"')))
                .collect();
            labels.iter().all(|(k, v)| parsed.get(k) == Some(v))
        })
        .map(|(_, _, v)| v)
}

#[test]
fn push_replaces_adds_and_deletes_a_group() {
    let Some(gateway) = Gateway::start() else {
        return;
    };
    let rows = telemetry_core::counter!("pg.test.rows", description = "Rows imported").unwrap();
    let batch = telemetry_core::histogram!("pg.test.batch", unit = Nanoseconds).unwrap();
    let first = capture(|| {
        rows.increment_by(7);
        for ms in [3, 40, 500] {
            batch.record(ms * 1_000_000);
        }
    });
    let group = Pushgateway::new(&gateway.url(), "nightly import")
        .unwrap()
        .with_grouping("path", "/var/import")
        .unwrap()
        .with_grouping("shard", "3")
        .unwrap()
        .with_timeout(Duration::from_secs(10));
    let labels = [
        ("job", "nightly import"),
        ("path", "/var/import"),
        ("shard", "3"),
    ];
    group
        .push(&first)
        .unwrap_or_else(|e| panic!("{e}\n{}", gateway.guard.log_tail()));
    let text = gateway.metrics();
    assert_eq!(
        value(&text, "pg_test_rows_total", &labels).as_deref(),
        Some("7"),
        "{text}"
    );
    assert_eq!(
        value(&text, "pg_test_batch_seconds_count", &labels).as_deref(),
        Some("3")
    );
    assert_eq!(
        value(&text, "pg_test_batch_seconds_sum", &labels).as_deref(),
        Some("0.543")
    );
    let inf = [labels.as_slice(), &[("le", "+Inf")]].concat();
    assert_eq!(
        value(&text, "pg_test_batch_seconds_bucket", &inf).as_deref(),
        Some("3")
    );
    assert!(
        text.contains("# HELP pg_test_rows_total Rows imported"),
        "{text}"
    );

    // POST replaces only the metrics of the same names.
    let other = telemetry_core::gauge!("pg.test.progress").unwrap();
    other.set(42);
    let progress_only = Snapshot {
        gauges: capture(|| {})
            .gauges
            .into_iter()
            .filter(|(n, _)| &**n == "pg.test.progress")
            .collect(),
        ..Snapshot::default()
    };
    group.push_add(&progress_only).unwrap();
    let text = gateway.metrics();
    assert_eq!(
        value(&text, "pg_test_progress", &labels).as_deref(),
        Some("42")
    );
    assert_eq!(
        value(&text, "pg_test_rows_total", &labels).as_deref(),
        Some("7")
    );

    // PUT replaces the whole group.
    group.push(&progress_only).unwrap();
    let text = gateway.metrics();
    assert_eq!(
        value(&text, "pg_test_progress", &labels).as_deref(),
        Some("42")
    );
    assert_eq!(value(&text, "pg_test_rows_total", &labels), None, "{text}");

    group.delete().unwrap();
    let text = gateway.metrics();
    assert_eq!(value(&text, "pg_test_progress", &labels), None, "{text}");
}

#[test]
fn a_refused_push_is_a_clear_error() {
    let Some(gateway) = Gateway::start() else {
        return;
    };
    let counter: Snapshot =
        serde_json::from_str(r#"{"counters":{"pg.conflict.hits":{"series":[{"value":1}]}}}"#)
            .unwrap();
    // A gauge whose name is the counter's sample name: the gateway cannot serve both.
    let gauge: Snapshot =
        serde_json::from_str(r#"{"gauges":{"pg.conflict.hits_total":{"series":[{"value":2}]}}}"#)
            .unwrap();
    Pushgateway::new(&gateway.url(), "first")
        .unwrap()
        .push(&counter)
        .unwrap();
    let err = Pushgateway::new(&gateway.url(), "second")
        .unwrap()
        .push(&gauge)
        .unwrap_err();
    let PushError::Status { status, body, .. } = &err else {
        panic!("expected a status error, got {err}");
    };
    assert_eq!(*status, 400, "{err}");
    assert!(!body.is_empty(), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("/metrics/job/second") && message.contains("answered 400"),
        "{message}"
    );
    eprintln!("refused push: {message}");
}

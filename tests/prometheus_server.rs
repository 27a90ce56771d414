//! A real Prometheus server (Debian's `prometheus`) on loopback scrapes the example server's
//! `/metrics`, in OpenMetrics (what Prometheus asks for) and in text format 0.0.4
//! (`?format=prometheus`), and answers PromQL queries through its HTTP API with the exact
//! counter value and a `histogram_quantile` within the documented error.

mod support;

use serde_json::Value;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{ChildGuard, ExampleServer, TempDir, WAIT, request, url_encode, wait_for};
use telemetry_core::export::prometheus::BucketLayout;

const PUTS: u64 = 200;
/// Value sizes: 37, 74, ..., 7400 bytes.
const SIZE_STEP: u64 = 37;

/// A Prometheus server on 127.0.0.1 with its data in a temporary directory; killed on drop.
struct Prometheus {
    addr: SocketAddr,
    guard: ChildGuard,
    _dir: TempDir,
}

impl Prometheus {
    fn start(binary: &std::path::Path, target: SocketAddr) -> Self {
        let dir = TempDir::new("prometheus");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n\
             \x20 - job_name: kv\n    static_configs:\n      - targets: ['{target}']\n\
             \x20 - job_name: kv-text\n    params:\n      format: [prometheus]\n    \
             static_configs:\n      - targets: ['{target}']\n"
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", support::free_port())
            .parse()
            .unwrap();
        let mut command = Command::new(binary);
        command
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null());
        let log = dir.path().join("prometheus.log");
        let mut guard = ChildGuard::spawn("prometheus", command, Some(&log));
        wait_for("Prometheus to be ready", WAIT, || {
            guard.assert_running();
            match support::try_request(addr, "GET", "/-/ready", &[], b"") {
                Ok(r) if r.status == 200 => Ok(()),
                Ok(r) => Err(format!("status {}", r.status)),
                Err(e) => Err(e.to_string()),
            }
        });
        Prometheus {
            addr,
            guard,
            _dir: dir,
        }
    }

    /// The result vector of an instant query.
    fn query(&self, promql: &str) -> Result<Vec<Value>, String> {
        let path = format!("/api/v1/query?query={}", url_encode(promql));
        let r =
            support::try_request(self.addr, "GET", &path, &[], b"").map_err(|e| e.to_string())?;
        let json: Value = serde_json::from_slice(&r.body).map_err(|e| e.to_string())?;
        if json["status"] != "success" {
            return Err(format!("{promql}: {json}"));
        }
        Ok(json["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// The single value of an instant query, waiting (bounded) until it has one.
    fn value(&self, promql: &str) -> f64 {
        wait_for(&format!("a value for `{promql}`"), WAIT, || {
            let result = self.query(promql)?;
            let [one] = result.as_slice() else {
                return Err(format!(
                    "{} results: {result:?}\n{}",
                    result.len(),
                    self.guard.log_tail()
                ));
            };
            one["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("no value in {one}"))
        })
    }
}

/// What `histogram_quantile(q, ...)` computes on `(le, cumulative count)` buckets: linear
/// interpolation in the bucket holding rank `q * count`, from 0 for the first bucket.
fn interpolate(buckets: &[(f64, f64)], q: f64) -> f64 {
    let total = buckets.last().unwrap().1;
    let rank = q * total;
    let i = buckets.iter().position(|&(_, c)| c >= rank).unwrap();
    if buckets[i].0.is_infinite() {
        return buckets[i - 1].0;
    }
    let (lo, below) = if i == 0 { (0.0, 0.0) } else { buckets[i - 1] };
    let (hi, at) = buckets[i];
    lo + (hi - lo) * (rank - below) / (at - below)
}

/// The `(le, count)` buckets of `family` in an exposition text.
fn buckets(text: &str, family: &str) -> Vec<(f64, f64)> {
    support::samples(text)
        .into_iter()
        .filter(|(n, _, _)| *n == format!("{family}_bucket"))
        .map(|(_, labels, value)| {
            let le = labels.rsplit_once("le=\"").unwrap().1.trim_end_matches('"');
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            (le, value.parse().unwrap())
        })
        .collect()
}

#[test]
fn prometheus_scrapes_the_example_server() {
    let Some(binary) = support::require_tool("prometheus") else {
        return;
    };
    let started = Instant::now();
    let server = ExampleServer::start(&[]);
    for i in 1..=PUTS {
        let body = vec![b'x'; (i * SIZE_STEP) as usize];
        let r = request(server.addr, "PUT", &format!("/kv/item{i}"), &[], &body);
        assert_eq!(r.status, 201);
    }
    for i in 1..=50 {
        server.get(&format!("/kv/item{i}"));
    }
    let ours = server.get("/metrics?format=prometheus").text();

    let prometheus = Prometheus::start(&binary, server.addr);
    // The exact counter value, from both scrape jobs (OpenMetrics and text 0.0.4).
    for job in ["kv", "kv-text"] {
        let puts = prometheus.value(&format!("kv_put_total{{job=\"{job}\"}}"));
        assert_eq!(puts, PUTS as f64, "job {job}");
        assert_eq!(prometheus.value(&format!("up{{job=\"{job}\"}}")), 1.0);
    }
    let hits = prometheus.value("kv_lookups_total{job=\"kv\",outcome=\"hit\"}");
    assert_eq!(hits, 50.0);
    let stored = prometheus.value("kv_stored_bytes{job=\"kv\"}");
    assert_eq!(stored, (SIZE_STEP * PUTS * (PUTS + 1) / 2) as f64);

    // histogram_quantile on the value sizes, whose true quantiles are known.
    let bound = BucketLayout::default().max_relative_error().unwrap();
    let size_buckets = buckets(&ours, "kv_value_size_bytes");
    let mut worst: f64 = 0.0;
    for q in [0.5, 0.9, 0.99] {
        let promql = format!(
            "histogram_quantile({q}, sum by (le) (kv_value_size_bytes_bucket{{job=\"kv\"}}))"
        );
        let got = prometheus.value(&promql);
        let rank = ((q * PUTS as f64).ceil() as u64).max(1);
        let truth = (rank * SIZE_STEP) as f64;
        let error = (got - truth).abs() / truth;
        eprintln!(
            "{promql} = {got} (true {truth}, error {:.2}%)",
            error * 100.0
        );
        assert!(
            error <= bound,
            "{promql} = {got}, true {truth}: error {error} > {bound}"
        );
        // Prometheus read exactly the buckets we exported.
        let expected = interpolate(&size_buckets, q);
        assert!(
            (got - expected).abs() <= 1e-9 * expected,
            "{got} vs {expected}"
        );
        worst = worst.max(error);
    }

    // The put durations: Prometheus' median against our own (within 1/128) median.
    let telemetry: Value =
        serde_json::from_slice(&server.get("/telemetry?details_level=1").body).unwrap();
    let our_p50 = telemetry["metrics"]["histograms"]["kv.put.duration"]["series"][0]["value"]["p50"]
        .as_f64()
        .unwrap() / 1e9;
    let promql =
        "histogram_quantile(0.5, sum by (le) (kv_put_duration_seconds_bucket{job=\"kv-text\"}))";
    let got = prometheus.value(promql);
    let expected = interpolate(&buckets(&ours, "kv_put_duration_seconds"), 0.5);
    assert!(
        (got - expected).abs() <= 1e-9 * expected,
        "{got} vs {expected}"
    );
    let error = (got - our_p50).abs() / our_p50;
    eprintln!(
        "{promql} = {got} s (our p50 {our_p50} s, difference {:.2}%)",
        error * 100.0
    );
    assert!(
        error <= bound + 1.0 / 128.0 + 1e-9 / our_p50,
        "{got} vs {our_p50}"
    );
    eprintln!(
        "Prometheus test: worst size quantile error {:.2}%, {:?} in all",
        worst * 100.0,
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

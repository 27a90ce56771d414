//! The `metrics` bridge: instrumentation written with the `metrics` crate's macros lands in
//! declared metrics only, with label values inside their declared sets, and whatever else it
//! sends is dropped, counted and never exported.

use telemetry_core::anonymize::HashedLabel;
use telemetry_core::bridge::metrics::{MetricsBridge, Scale};
use telemetry_core::{Bounded, LabelValue, Report, counter, gauge, histogram};

#[derive(LabelValue, Clone, Copy)]
#[allow(dead_code)] // Made only from the texts `metrics` sends.
enum Method {
    #[label(rename = "GET")]
    Get,
    #[label(rename = "POST")]
    Post,
}

fn bridge() -> MetricsBridge {
    MetricsBridge::new()
        .counter(
            "http_requests_total",
            counter!("bridge.http.requests", labels(method: Method, status: Bounded<599>)).unwrap(),
        )
        .counter("jobs_done", counter!("bridge.jobs.done").unwrap())
        .counter(
            "tenant_calls",
            counter!("bridge.tenant.calls", labels(tenant: HashedLabel)).unwrap(),
        )
        .gauge("queue_depth", gauge!("bridge.queue.depth").unwrap())
        .histogram(
            "request_seconds",
            histogram!("bridge.request.duration", unit = Nanoseconds).unwrap(),
            Scale::SecondsToNanoseconds,
        )
        .histogram(
            "payload_bytes",
            histogram!("bridge.payload.size", unit = Bytes, labels(method: Method)).unwrap(),
            Scale::AsIs,
        )
}

/// Held by the tests that drop measurements, so each counts only its own drops.
static DROPPING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn dropped(reason: &str) -> u64 {
    telemetry_core::snapshot()
        .counter_with(
            "telemetry.bridge.dropped",
            &[("bridge", "metrics"), ("reason", reason)],
        )
        .unwrap_or(0)
}

#[test]
fn declared_metrics_are_fed_and_everything_else_is_dropped_and_counted() {
    let _dropping = DROPPING.lock().unwrap_or_else(|e| e.into_inner());
    let bridge = bridge();
    let (names_before, labels_before) = (dropped("undeclared_name"), dropped("undeclared_label"));
    let before = telemetry_core::snapshot();
    metrics::with_local_recorder(&bridge, || {
        metrics::counter!("http_requests_total", "method" => "GET", "status" => "200").increment(3);
        // Label keys in another order are the same series.
        metrics::counter!("http_requests_total", "status" => "200", "method" => "GET").increment(1);
        metrics::counter!("http_requests_total", "method" => "DELETE", "status" => "70000")
            .increment(1);
        // A missing label is `other`.
        metrics::counter!("http_requests_total", "method" => "POST").increment(1);
        metrics::counter!("jobs_done").absolute(10);
        metrics::counter!("jobs_done").absolute(4);
        metrics::counter!("jobs_done").absolute(12);
        metrics::gauge!("queue_depth").set(7.9);
        metrics::gauge!("queue_depth").increment(2.0);
        metrics::histogram!("request_seconds").record(0.5);
        metrics::histogram!("request_seconds").record(-3.0);
        metrics::histogram!("payload_bytes", "method" => "POST").record(1024.7);
        // Undeclared: a name, a label key, a gauge with labels, a name of another kind.
        metrics::counter!("logins", "user" => "alice@example.com").increment(1);
        metrics::counter!("jobs_done", "host" => "db01.corp.example.com").increment(1);
        metrics::gauge!("queue_depth", "host" => "db01").set(1.0);
        metrics::histogram!("jobs_done").record(1.0);
    });
    let snap = telemetry_core::snapshot();
    let requests = |method, status| {
        let labels = [("method", method), ("status", status)];
        let count = |s: &telemetry_core::Snapshot| s.counter_with("bridge.http.requests", &labels);
        count(&snap).unwrap_or(0) - count(&before).unwrap_or(0)
    };
    assert_eq!(requests("GET", "200"), 4);
    assert_eq!(requests("other", "other"), 1);
    assert_eq!(requests("POST", "other"), 1);
    assert_eq!(
        snap.counter("bridge.jobs.done"),
        Some(12),
        "absolute only grows"
    );
    assert_eq!(snap.gauge("bridge.queue.depth"), Some(9));
    let duration = snap.histogram("bridge.request.duration").unwrap();
    assert_eq!(
        (duration.count(), duration.sum()),
        (2, 500_000_000),
        "seconds in nanoseconds, negative as 0"
    );
    let sizes = snap
        .histogram_with("bridge.payload.size", &[("method", "POST")])
        .unwrap();
    assert_eq!(sizes.sum(), 1024);
    assert_eq!(dropped("undeclared_name") - names_before, 2);
    assert_eq!(dropped("undeclared_label") - labels_before, 2);
    for name in snap.counters.keys().chain(snap.gauges.keys()) {
        assert!(!name.contains("logins") && !name.contains("host"), "{name}");
    }
}

#[test]
fn hostile_label_texts_never_reach_an_output() {
    let _dropping = DROPPING.lock().unwrap_or_else(|e| e.into_inner());
    let bridge = bridge();
    let canaries = [
        "alice@example.com",
        "203.0.113.77",
        "/home/alice/.ssh/id_rsa",
        "https://db01.corp.example.com/?token=s3cr3t",
        "3405803783",
    ];
    metrics::with_local_recorder(&bridge, || {
        for canary in canaries {
            metrics::counter!("http_requests_total", "method" => canary, "status" => canary)
                .increment(1);
            metrics::counter!("tenant_calls", "tenant" => canary).increment(1);
            metrics::histogram!("payload_bytes", "method" => canary).record(1.0);
            metrics::counter!(canary, "method" => canary).increment(1);
        }
        // 10,000 distinct texts: all `other`, one series.
        for i in 0..10_000 {
            let text = format!("user-{i}@example.com");
            metrics::counter!("http_requests_total", "method" => text, "status" => "200")
                .increment(1);
        }
    });
    let snap = telemetry_core::snapshot();
    assert!(
        snap.counter_with(
            "bridge.http.requests",
            &[("method", "other"), ("status", "200")]
        )
        .unwrap()
            >= 10_000
    );
    let report = Report::new(telemetry_core::application!(), snap.clone());
    let outputs = [
        serde_json::to_string(&snap).unwrap(),
        report.to_json(),
        report.anonymized().to_json(),
        telemetry_core::export::prometheus::render_prometheus(&snap),
    ];
    for output in &outputs {
        for canary in canaries {
            assert!(!output.contains(canary), "{canary} reached an output");
        }
        assert!(!output.contains("user-1@"), "a free text reached an output");
    }
    // The hashed label holds hashes, one series per tenant.
    let tenants = &snap.counters["bridge.tenant.calls"].series;
    assert!(tenants.len() >= canaries.len());
}

#[test]
fn the_bridge_is_usable_from_many_threads() {
    let bridge = std::sync::Arc::new(bridge());
    let before = telemetry_core::snapshot()
        .counter_with(
            "bridge.http.requests",
            &[("method", "POST"), ("status", "201")],
        )
        .unwrap_or(0);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let bridge = bridge.clone();
            std::thread::spawn(move || {
                metrics::with_local_recorder(&*bridge, || {
                    for _ in 0..10_000 {
                        metrics::counter!("http_requests_total", "method" => "POST", "status" => "201")
                            .increment(1);
                    }
                })
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let after = telemetry_core::snapshot()
        .counter_with(
            "bridge.http.requests",
            &[("method", "POST"), ("status", "201")],
        )
        .unwrap();
    assert_eq!(after - before, 40_000, "no count lost");
}

#[test]
fn a_second_install_is_refused() {
    use telemetry_core::bridge::metrics::AlreadyInstalled;
    // The first install may race no one here: no other test installs a global recorder.
    assert_eq!(MetricsBridge::new().install(), Ok(()));
    assert_eq!(MetricsBridge::new().install(), Err(AlreadyInstalled));
}

//! The example server driven over loopback: its workload is counted, `/metrics` negotiates
//! between Prometheus text and OpenMetrics, `/telemetry` adds detail level by level, and
//! `anonymize=true` is exactly the report the reporter sends.

mod support;

use serde_json::Value;
use support::{ExampleServer, request};
use telemetry_core::export::endpoint::{Endpoints, MAX_DETAILS_LEVEL, telemetry_json};
use telemetry_core::export::prometheus::{OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE};
use telemetry_core::{Application, Report};

/// Puts `n` values (`i * 10` bytes each), reads `n` keys of which half exist, deletes one.
fn workload(server: &ExampleServer, n: usize) -> u64 {
    let mut bytes = 0;
    for i in 0..n {
        let body = vec![b'v'; i * 10];
        bytes += body.len() as u64;
        let r = request(server.addr, "PUT", &format!("/kv/k{i}"), &[], &body);
        assert_eq!(r.status, 201);
    }
    for i in 0..n {
        let r = server.get(&format!("/kv/k{}", i * 2));
        assert_eq!(r.status, if i * 2 < n { 200 } else { 404 });
        if r.status == 200 {
            assert_eq!(r.body.len(), i * 2 * 10);
        }
    }
    assert_eq!(
        request(server.addr, "DELETE", "/kv/k0", &[], b"").status,
        204
    );
    assert_eq!(
        request(server.addr, "DELETE", "/kv/k0", &[], b"").status,
        404
    );
    bytes
}

#[test]
fn the_workload_is_counted_on_metrics() {
    let server = ExampleServer::start(&[]);
    let bytes = workload(&server, 10);
    let r = server.get("/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(PROMETHEUS_CONTENT_TYPE));
    let text = r.text();
    for (name, labels, value) in [
        ("kv_put_total", "", "10".to_owned()),
        ("kv_get_total", "", "10".to_owned()),
        ("kv_delete_total", "", "2".to_owned()),
        ("kv_lookups_total", "outcome=\"hit\"", "5".to_owned()),
        ("kv_lookups_total", "outcome=\"miss\"", "5".to_owned()),
        ("kv_keys", "", "9".to_owned()),
        ("kv_stored_bytes", "", (bytes).to_string()),
        ("kv_value_size_bytes_count", "", "10".to_owned()),
        ("kv_value_size_bytes_sum", "", bytes.to_string()),
        ("kv_value_size_bytes_bucket", "le=\"+Inf\"", "10".to_owned()),
        ("kv_put_duration_seconds_count", "", "10".to_owned()),
    ] {
        assert_eq!(
            support::sample(&text, name, labels),
            Some(value),
            "{name}{{{labels}}} in\n{text}"
        );
    }
    assert!(text.contains("# TYPE kv_put_duration_seconds histogram\n"));
}

#[test]
fn metrics_negotiates_the_format() {
    let server = ExampleServer::start(&[]);
    let get = |path: &str, accept: Option<&str>| {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        request(server.addr, "GET", path, &headers, b"")
    };
    let prometheus_accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    for (path, accept, expected) in [
        ("/metrics", None, PROMETHEUS_CONTENT_TYPE),
        ("/metrics", Some("*/*"), PROMETHEUS_CONTENT_TYPE),
        ("/metrics", Some("text/plain"), PROMETHEUS_CONTENT_TYPE),
        (
            "/metrics",
            Some("application/openmetrics-text; version=1.0.0"),
            OPENMETRICS_CONTENT_TYPE,
        ),
        (
            "/metrics",
            Some(prometheus_accept),
            OPENMETRICS_CONTENT_TYPE,
        ),
        (
            "/metrics?format=prometheus",
            Some(prometheus_accept),
            PROMETHEUS_CONTENT_TYPE,
        ),
        (
            "/metrics?format=openmetrics",
            None,
            OPENMETRICS_CONTENT_TYPE,
        ),
    ] {
        let r = get(path, accept);
        assert_eq!(r.status, 200, "{path} {accept:?}");
        assert_eq!(
            r.header("content-type"),
            Some(expected),
            "{path} {accept:?}"
        );
        let text = r.text();
        assert_eq!(
            text.ends_with("# EOF\n"),
            expected == OPENMETRICS_CONTENT_TYPE,
            "{path} {accept:?}"
        );
        assert!(text.contains("kv_put"), "{text}");
    }
    let r = get("/metrics?format=xml", None);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        "invalid format `xml`: expected prometheus or openmetrics\n"
    );
    let r = get("/nothing-here", None);
    assert_eq!(r.status, 404);
}

fn telemetry(server: &ExampleServer, query: &str) -> Value {
    let r = server.get(&format!("/telemetry?{query}"));
    assert_eq!(r.status, 200, "{query}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn telemetry_details_levels_add_detail() {
    let server = ExampleServer::start(&[]);
    workload(&server, 6);
    let level0 = telemetry(&server, "");
    let mut again = telemetry(&server, "details_level=0");
    // Each answer is a report of its own: its id differs.
    assert_ne!(again["report_id"], level0["report_id"]);
    again["report_id"] = level0["report_id"].clone();
    again["timestamp"] = level0["timestamp"].clone();
    assert_eq!(level0, again);
    assert_eq!(level0["application"]["name"], "kv-server");
    assert_eq!(level0["schema_version"], 1);
    assert!(level0["instance_id"].is_string());
    let counters = &level0["metrics"]["counters"];
    assert_eq!(counters["kv.put"]["series"][0]["value"], 6);
    // Level 0: labeled counters as one total, no gauges, histograms or sections.
    assert_eq!(
        counters["kv.lookups"]["series"],
        serde_json::json!([{ "value": 6 }])
    );
    assert_eq!(level0["metrics"]["gauges"], serde_json::json!({}));
    assert_eq!(level0["metrics"]["histograms"], serde_json::json!({}));
    assert!(level0.get("sections").is_none());

    let level1 = telemetry(&server, "details_level=1");
    assert_eq!(
        level1["metrics"]["gauges"]["kv.keys"]["series"][0]["value"],
        5
    );
    let size = &level1["metrics"]["histograms"]["kv.value.size"];
    assert_eq!(size["unit"], "bytes");
    let summary = &size["series"][0]["value"];
    assert_eq!(summary["count"], 6);
    assert_eq!(summary["sum"], 150);
    assert_eq!(
        (summary["min"].as_u64(), summary["max"].as_u64()),
        (Some(0), Some(50))
    );
    assert_eq!(summary["p50"], 20);
    assert!(summary.get("buckets").is_none(), "{summary}");
    assert_eq!(
        level1["metrics"]["counters"]["kv.lookups"]["series"],
        serde_json::json!([{ "value": 6 }])
    );
    assert_eq!(level1["sections"]["configuration"]["max_key_bytes"], 250);

    let level2 = telemetry(&server, "details_level=2");
    assert_eq!(
        level2["metrics"]["counters"]["kv.lookups"]["series"],
        serde_json::json!([
            { "labels": { "outcome": "hit" }, "value": 3 },
            { "labels": { "outcome": "miss" }, "value": 3 },
        ])
    );
    assert!(level2["metrics"]["histograms"]["kv.value.size"]["series"][0]["value"]["p99"].is_u64());

    let level3 = telemetry(&server, "details_level=3");
    let full: Report = serde_json::from_value(level3.clone()).expect("level 3 is a whole report");
    let h = full.metrics.histogram("kv.value.size").unwrap();
    assert_eq!(h.count(), 6);
    assert_eq!(h.buckets().map(|b| b.count).sum::<u64>(), 6);
    // Above the highest level is the highest level.
    let mut level9 = telemetry(&server, "details_level=9");
    level9["timestamp"] = level3["timestamp"].clone();
    level9["uptime_seconds"] = level3["uptime_seconds"].clone();
    level9["report_id"] = level3["report_id"].clone();
    assert_eq!(level9, level3);

    for (query, message) in [
        (
            "details_level=high",
            "invalid details_level `high`: expected a whole number",
        ),
        (
            "details_level=1&anonymize=maybe",
            "invalid anonymize `maybe`: expected true or false",
        ),
    ] {
        let r = server.get(&format!("/telemetry?{query}"));
        assert_eq!(r.status, 400, "{query}");
        assert!(r.text().starts_with(message), "{}", r.text());
    }
}

#[test]
fn anonymized_telemetry_is_the_report_the_reporter_sends() {
    let server = ExampleServer::start(&[]);
    workload(&server, 4);
    // Big numbers, to see them rounded: a 1,000,001-byte value.
    let big = vec![b'b'; 1_000_001];
    assert_eq!(
        request(server.addr, "PUT", "/kv/big", &[], &big).status,
        201
    );
    let raw = telemetry(&server, "details_level=3&anonymize=false");
    let anonymized = telemetry(&server, "details_level=3&anonymize=true");
    let raw_report: Report = serde_json::from_value(raw.clone()).unwrap();
    let mut expected = serde_json::to_value(raw_report.anonymized()).unwrap();
    // The two answers were made a moment apart: only their clocks and ids may differ.
    expected["timestamp"] = anonymized["timestamp"].clone();
    expected["report_id"] = anonymized["report_id"].clone();
    expected["uptime_seconds"] = anonymized["uptime_seconds"].clone();
    assert_eq!(anonymized, expected);
    // And the rounding did happen.
    assert_eq!(
        raw["metrics"]["gauges"]["kv.stored"]["series"][0]["value"],
        1_000_001 + 60
    );
    assert_eq!(
        anonymized["metrics"]["gauges"]["kv.stored"]["series"][0]["value"],
        1_000_060
    );
    // Sections are anonymized when they are added to a report, so even the local one is.
    assert_eq!(
        anonymized["sections"]["configuration"]["max_value_bytes"],
        1_048_570
    );
    assert_eq!(
        raw["sections"]["configuration"],
        anonymized["sections"]["configuration"]
    );
    assert_eq!(raw["instance_id"], anonymized["instance_id"]);
}

/// A product's limits, for the views' comparison.
#[derive(telemetry_core::Telemetry)]
#[telemetry(section = "limits")]
struct Limits {
    max_keys: u64,
}

#[test]
fn telemetry_json_at_the_highest_level_with_anonymize_is_report_anonymized() {
    let calls = telemetry_core::counter!("endpoints.inprocess.calls").unwrap();
    let sizes = telemetry_core::histogram!("endpoints.inprocess.sizes", unit = Bytes).unwrap();
    let snap = telemetry_core::testing::capture(|| {
        calls.increment_by(987_654_321);
        sizes.record(12_345_678);
    });
    let mut report = Report::new(Application::new("app", "1.0.0"), snap);
    report.add_section(&Limits {
        max_keys: 7_654_321,
    });
    assert_eq!(
        telemetry_json(&report, MAX_DETAILS_LEVEL, true),
        serde_json::to_value(report.anonymized()).unwrap()
    );
    assert_eq!(
        telemetry_json(&report, u8::MAX, false),
        serde_json::to_value(&report).unwrap()
    );
    // Lower levels: totals are rounded after summing, quantiles rounded too.
    let level1 = telemetry_json(&report, 1, true);
    assert_eq!(
        level1["metrics"]["counters"]["endpoints.inprocess.calls"]["series"][0]["value"],
        987_654_000u64
    );
    let summary =
        &level1["metrics"]["histograms"]["endpoints.inprocess.sizes"]["series"][0]["value"];
    assert_eq!(summary["max"], 12_345_600);
    assert_eq!(summary["p50"].as_u64().unwrap() % 100, 0, "{summary}");
    // The framework-independent handler gives the same as the axum one.
    let endpoints =
        Endpoints::new(Application::new("app", "1.0.0")).with_report(move || report.clone());
    let r = endpoints.handle("/telemetry?details_level=3&anonymize=true", None);
    assert_eq!(r.status, 200);
    let body: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        body["metrics"]["counters"]["endpoints.inprocess.calls"]["series"][0]["value"],
        987_654_000u64
    );
}

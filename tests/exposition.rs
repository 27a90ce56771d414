//! The Prometheus text exposition format 0.0.4 and OpenMetrics 1.0 output: exact lines for a
//! known snapshot, escaping, the name rule, exact cumulative buckets, and `promtool check
//! metrics` on the output of the main example and of the example server.

mod support;

use std::collections::BTreeMap;
/// Text label values written in the source, as the attributes' string literals are.
use telemetry_core::__private::LiteralLabel;
use telemetry_core::export::prometheus::{
    BucketLayout, Exposition, Format, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE,
    render_openmetrics, render_prometheus, sanitize_name,
};
use telemetry_core::testing::capture;
use telemetry_core::{Report, Snapshot};

/// Only the metrics whose names start with `prefix` (a capture lists every registered metric,
/// including those of the other tests in this binary).
fn only(snapshot: &Snapshot, prefix: &str) -> Snapshot {
    fn keep<V: Clone>(
        map: &BTreeMap<std::sync::Arc<str>, telemetry_core::Family<V>>,
        prefix: &str,
    ) -> BTreeMap<std::sync::Arc<str>, telemetry_core::Family<V>> {
        map.iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(n, f)| (n.clone(), f.clone()))
            .collect()
    }
    Snapshot {
        counters: keep(&snapshot.counters, prefix),
        gauges: keep(&snapshot.gauges, prefix),
        histograms: keep(&snapshot.histograms, prefix),
    }
}

/// A known workload through the plain API.
fn golden_snapshot() -> Snapshot {
    let orders = telemetry_core::counter!("golden.orders", description = "Orders placed").unwrap();
    let errors = telemetry_core::counter!("golden::api.errors", description = "Failed calls, by \"code\" \\ reason\nsecond line", labels(code: LiteralLabel))
        .unwrap();
    let queue = telemetry_core::gauge!("golden.queue").unwrap();
    let sizes = telemetry_core::histogram!("golden.size", description = "Body sizes", unit = Bytes)
        .unwrap();
    let latency = telemetry_core::histogram!(
        "golden.latency",
        description = "Handling time",
        unit = Nanoseconds
    )
    .unwrap();
    let snap = capture(|| {
        orders.increment_by(3);
        errors.increment((LiteralLabel("timeout"),));
        errors.increment_by((LiteralLabel("quote\"back\\slash\nnewline"),), 2);
        queue.set(-4);
        for v in [1, 100, 1000] {
            sizes.record(v);
        }
        latency.record(1_500_000);
        latency.record(2_500_000);
    });
    only(&snap, "golden")
}

#[test]
fn prometheus_text_has_the_exact_lines() {
    let snap = golden_snapshot();
    let exposition = Exposition::new()
        .with_prefix("shop_")
        .unwrap()
        .with_layout(BucketLayout::log_linear(1).unwrap());
    let text = exposition.render(&snap, Format::Prometheus);
    let expected = r#"# HELP shop_golden_orders_total Orders placed
# TYPE shop_golden_orders_total counter
shop_golden_orders_total 3
# HELP shop_golden_api_errors_total Failed calls, by "code" \\ reason\nsecond line
# TYPE shop_golden_api_errors_total counter
shop_golden_api_errors_total{code="quote\"back\\slash\nnewline"} 2
shop_golden_api_errors_total{code="timeout"} 1
# HELP shop_golden_queue golden.queue
# TYPE shop_golden_queue gauge
shop_golden_queue -4
# HELP shop_golden_latency_seconds Handling time
# TYPE shop_golden_latency_seconds histogram
shop_golden_latency_seconds_bucket{le="0.001048575"} 0
shop_golden_latency_seconds_bucket{le="0.002097151"} 1
shop_golden_latency_seconds_bucket{le="0.004194303"} 2
shop_golden_latency_seconds_bucket{le="+Inf"} 2
shop_golden_latency_seconds_sum 0.004
shop_golden_latency_seconds_count 2
# HELP shop_golden_size_bytes Body sizes
# TYPE shop_golden_size_bytes histogram
shop_golden_size_bytes_bucket{le="0.0"} 0
shop_golden_size_bytes_bucket{le="1.0"} 1
shop_golden_size_bytes_bucket{le="3.0"} 1
shop_golden_size_bytes_bucket{le="7.0"} 1
shop_golden_size_bytes_bucket{le="15.0"} 1
shop_golden_size_bytes_bucket{le="31.0"} 1
shop_golden_size_bytes_bucket{le="63.0"} 1
shop_golden_size_bytes_bucket{le="127.0"} 2
shop_golden_size_bytes_bucket{le="255.0"} 2
shop_golden_size_bytes_bucket{le="511.0"} 2
shop_golden_size_bytes_bucket{le="1023.0"} 3
shop_golden_size_bytes_bucket{le="+Inf"} 3
shop_golden_size_bytes_sum 1101
shop_golden_size_bytes_count 3
"#;
    assert_eq!(text, expected, "got:\n{text}");
    assert_eq!(Format::Prometheus.content_type(), PROMETHEUS_CONTENT_TYPE);
    assert_eq!(
        PROMETHEUS_CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8"
    );
}

#[test]
fn openmetrics_text_has_family_metadata_units_and_eof() {
    let snap = golden_snapshot();
    let exposition = Exposition::new()
        .with_prefix("shop_")
        .unwrap()
        .with_layout(BucketLayout::log_linear(1).unwrap());
    let text = exposition.render(&snap, Format::OpenMetrics);
    for block in [
        "# HELP shop_golden_api_errors Failed calls, by \\\"code\\\" \\\\ reason\\nsecond line\n\
         # TYPE shop_golden_api_errors counter\n\
         shop_golden_api_errors_total{code=\"quote\\\"back\\\\slash\\nnewline\"} 2\n",
        "# HELP shop_golden_orders Orders placed\n# TYPE shop_golden_orders counter\nshop_golden_orders_total 3\n",
        "# TYPE shop_golden_queue gauge\nshop_golden_queue -4\n",
        "# HELP shop_golden_latency_seconds Handling time\n\
         # TYPE shop_golden_latency_seconds histogram\n\
         # UNIT shop_golden_latency_seconds seconds\n\
         shop_golden_latency_seconds_bucket{le=\"0.001048575\"} 0\n",
        "# UNIT shop_golden_size_bytes bytes\n",
        "shop_golden_size_bytes_bucket{le=\"+Inf\"} 3\nshop_golden_size_bytes_sum 1101\nshop_golden_size_bytes_count 3\n",
    ] {
        assert!(text.contains(block), "missing\n{block}\nin\n{text}");
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1);
    assert!(
        !text.contains("# UNIT shop_golden_orders"),
        "no unit, no UNIT line"
    );
    assert_eq!(
        Format::OpenMetrics.content_type(),
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert_eq!(OPENMETRICS_CONTENT_TYPE, Format::OpenMetrics.content_type());
}

/// Parses the `_bucket` lines of one histogram series: `(le, cumulative count)`.
fn buckets(text: &str, family: &str) -> Vec<(f64, u64)> {
    support::samples(text)
        .into_iter()
        .filter(|(n, _, _)| *n == format!("{family}_bucket"))
        .map(|(_, labels, value)| {
            let le = labels
                .rsplit_once("le=\"")
                .unwrap()
                .1
                .trim_end_matches('"')
                .to_owned();
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
fn default_buckets_are_exact_cumulative_and_end_with_the_count() {
    let h = telemetry_core::histogram!("expo.exact.durations", unit = Nanoseconds).unwrap();
    // A spread of durations from 90 ns to 4 s.
    let values: Vec<u64> = (0..2_000u64).map(|i| 90 + i * i * i / 2).collect();
    let snap = only(
        &capture(|| values.iter().for_each(|&v| h.record(v))),
        "expo.exact",
    );
    for (layout, error) in [
        (BucketLayout::default(), 0.25),
        (BucketLayout::log_linear(16).unwrap(), 1.0 / 16.0),
        (BucketLayout::fine(), 1.0 / 64.0),
    ] {
        assert_eq!(layout.max_relative_error(), Some(error));
        let text = Exposition::new()
            .with_layout(layout.clone())
            .render(&snap, Format::Prometheus);
        let b = buckets(&text, "expo_exact_durations_seconds");
        assert!(b.len() > 3, "{text}");
        assert_eq!(b.last().unwrap(), &(f64::INFINITY, 2_000));
        assert_eq!(
            support::sample(&text, "expo_exact_durations_seconds_count", ""),
            Some("2000".to_owned())
        );
        let mut previous = (f64::NEG_INFINITY, 0);
        for &(le, count) in &b {
            assert!(
                le > previous.0 && count >= previous.1,
                "{layout:?}: not cumulative"
            );
            // Exact: the number of recorded values <= le (le in seconds).
            let exact = values.iter().filter(|&&v| v as f64 / 1e9 <= le).count() as u64;
            assert_eq!(count, exact, "{layout:?}: le={le}");
            previous = (le, count);
        }
        // The first bucket is empty, so interpolation in the second has a real lower edge.
        assert_eq!(b[0].1, 0, "{layout:?}");
        // Prometheus' histogram_quantile on these buckets is within the documented error.
        let mut sorted = values.clone();
        sorted.sort_unstable();
        for q in [0.1, 0.5, 0.9, 0.99] {
            let rank = q * 2_000.0;
            let i = b.iter().position(|&(_, c)| c as f64 >= rank).unwrap();
            let (lo, below) = if i == 0 { (0.0, 0) } else { b[i - 1] };
            let (hi, at) = b[i];
            let estimate = lo + (hi - lo) * (rank - below as f64) / (at - below) as f64;
            let truth = sorted[(rank.ceil() as usize).max(1) - 1] as f64 / 1e9;
            let err = (estimate - truth).abs() / truth;
            assert!(
                err <= error,
                "{layout:?} q={q}: {estimate} vs {truth} ({err})"
            );
        }
    }
    // Explicit boundaries (in ns) are moved down to fine-bucket bounds and stay exact.
    let text = Exposition::new()
        .with_layout(BucketLayout::explicit(&[1_000, 1_000_000, 1_000_000_000]).unwrap())
        .render(&snap, Format::Prometheus);
    let b = buckets(&text, "expo_exact_durations_seconds");
    assert_eq!(b.len(), 4, "{text}");
    assert_eq!(b[0].0, 999e-9);
    for &(le, count) in &b[..3] {
        let exact = values.iter().filter(|&&v| v as f64 / 1e9 <= le).count() as u64;
        assert_eq!(count, exact, "le={le}");
        assert!(le <= 1.0);
    }
}

#[test]
fn names_follow_the_documented_rule_and_never_collide() {
    assert_eq!(
        sanitize_name("docstore::store::insert.calls"),
        "docstore_store_insert_calls"
    );
    assert_eq!(sanitize_name("a.b-c d"), "a_b_c_d");
    assert_eq!(sanitize_name("2fast"), "_2fast");
    assert_eq!(sanitize_name("é"), "_");
    assert_eq!(sanitize_name(""), "_");
    let json = r#"{
      "counters": {
        "req.count": { "unit": "none", "series": [ { "value": 1 } ] },
        "hits_total": { "unit": "none", "series": [ { "value": 2 } ] },
        "busy": { "unit": "seconds", "series": [ { "value": 3 } ] },
        "9lives::x": { "unit": "none", "series": [ { "value": 4 } ] },
        "unused": { "unit": "none", "series": [] }
      },
      "gauges": {
        "req_count": { "unit": "none", "series": [ { "value": 5 } ] },
        "mem.bytes": { "unit": "bytes", "series": [ { "labels": { "__name__": "x", "9": "y" }, "value": 6 } ] }
      },
      "histograms": {
        "req": { "unit": "none", "series": [ { "labels": { "le": "a" },
                 "value": { "count": 1, "sum": 5, "min": 5, "max": 5, "buckets": [[5, 1]] } } ] }
      }
    }"#;
    let snap: Snapshot = serde_json::from_str(json).unwrap();
    let text = render_prometheus(&snap);
    for line in [
        "req_count_total 1",
        "hits_total 2",
        "busy_seconds_total 3",
        "_9lives_x_total 4",
        // The gauge `req_count` would be the counter's family name: it gets `_2`.
        "# TYPE req_count_2 gauge\nreq_count_2 5",
        // Already ends with its unit suffix: not doubled; reserved label names renamed.
        "mem_bytes{_9=\"y\",label___name__=\"x\"} 6",
        // `req_count` is taken, and so is `req`'s `_count` sample: the histogram is `req_2`.
        "req_2_bucket{label_le=\"a\",le=\"5.0\"} 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(
        !text.contains("unused"),
        "a metric without series is left out"
    );
    let om = render_openmetrics(&snap);
    assert!(om.contains("# TYPE hits counter\nhits_total 2\n"), "{om}");
    assert!(
        om.contains("# TYPE busy_seconds counter\n# UNIT busy_seconds seconds\n"),
        "{om}"
    );
}

#[test]
fn bad_options_are_clear_errors() {
    let err = Exposition::new().with_prefix("9x").unwrap_err();
    assert!(
        err.to_string().contains("invalid metric name prefix `9x`"),
        "{err}"
    );
    assert!(Exposition::new().with_prefix("a:b").is_err());
    assert!(Exposition::new().with_prefix("").is_ok());
    let err = BucketLayout::log_linear(5).unwrap_err();
    assert!(
        err.to_string().contains("use 1, 2, 4, 8, 16, 32 or 64"),
        "{err}"
    );
    let err = BucketLayout::explicit(&[]).unwrap_err();
    assert!(err.to_string().contains("0 explicit boundaries"), "{err}");
}

#[test]
fn hostile_snapshots_still_render_valid_text() {
    // Bucket counts that add up to more than the count, an index out of range, min > max.
    let json = r#"{"histograms":{"h":{"series":[{"value":{"count":5,"sum":1,"min":9,"max":2,
        "buckets":[[4294967295,3],[0,18446744073709551615],[70,9]]}}]}},
        "counters":{"c":{"series":[{"value":18446744073709551615}]}},
        "gauges":{"g":{"unit":"nanoseconds","series":[{"value":-9223372036854775808}]}}}"#;
    let snap: Snapshot = serde_json::from_str(json).unwrap();
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let text = Exposition::new().render(&snap, format);
        let b = buckets(&text, "h");
        assert_eq!(b.last().unwrap(), &(f64::INFINITY, 5), "{text}");
        assert!(b.windows(2).all(|w| w[0].1 <= w[1].1), "{text}");
        assert!(text.contains("c_total 18446744073709551615\n"), "{text}");
        assert!(text.contains("g_seconds -9223372036.854776\n"), "{text}");
    }
}

#[test]
fn promtool_accepts_the_main_example_output() {
    let Some(promtool) = support::require_tool("promtool") else {
        return;
    };
    let out = std::process::Command::new(support::example_binary("docstore"))
        .arg("2000")
        .output()
        .expect("run the docstore example");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Report = serde_json::from_slice(&out.stdout).expect("the example's report");
    assert!(report.metrics.len() > 20);
    for exposition in [
        Exposition::new(),
        Exposition::new().with_prefix("docstore_").unwrap(),
        Exposition::new().with_layout(BucketLayout::fine()),
    ] {
        let text = exposition.render(&report.metrics, Format::Prometheus);
        support::promtool_check(&promtool, &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(text.contains("_seconds_bucket{"), "{text}");
    }
    let text = render_prometheus(&report.metrics);
    let misses = report.metrics.counter("docstore.cache.misses").unwrap();
    assert_eq!(
        support::sample(&text, "docstore_cache_misses_total", ""),
        Some(misses.to_string())
    );
    // The in-process workload too (a different snapshot: this binary's own registry).
    let h = telemetry_core::histogram!("expo.promtool.latency").unwrap();
    let snap = capture(|| (1..500u64).for_each(|i| h.record(i * 1_000)));
    support::promtool_check(&promtool, &render_prometheus(&snap)).unwrap();
}

#[test]
fn promtool_accepts_the_example_server_metrics() {
    let Some(promtool) = support::require_tool("promtool") else {
        return;
    };
    let server = support::ExampleServer::start(&["--prefix", "kv_server_"]);
    for i in 0..20 {
        let body = "x".repeat(i * 10);
        support::request(
            server.addr,
            "PUT",
            &format!("/kv/key{i}"),
            &[],
            body.as_bytes(),
        );
    }
    // key0..key18 are there, key20..key38 are not.
    for i in 0..20 {
        support::request(server.addr, "GET", &format!("/kv/key{}", i * 2), &[], b"");
    }
    let response = support::request(
        server.addr,
        "GET",
        "/metrics",
        &[("Accept", "text/plain")],
        b"",
    );
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some(PROMETHEUS_CONTENT_TYPE)
    );
    let text = response.text();
    support::promtool_check(&promtool, &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        support::sample(&text, "kv_server_kv_put_total", ""),
        Some("20".into())
    );
    assert_eq!(
        support::sample(&text, "kv_server_kv_lookups_total", "outcome=\"hit\""),
        Some("10".into())
    );
}

//! Bad input over HTTP, against every backend: each kind is refused with its status and
//! reason, counted in `/metrics`, nothing of it is stored, and the collector stays up.

mod common;

use common::{Fake, Running, backends, get, post, send};
use serde_json::{Value, json};

/// A change that spoils a good report.
type Edit = Box<dyn Fn(&mut Value)>;

fn expect(answer: &common::Answer, status: u16, reason: &str, what: &str) {
    assert_eq!(answer.status, status, "{what}: {answer:?}");
    assert_eq!(answer.json()["reason"], reason, "{what}: {answer:?}");
}

#[test]
fn every_kind_of_bad_report_is_refused_with_its_reason_and_none_is_stored() {
    for (backend, storage) in backends("bad") {
        let mut config = common::config();
        config.max_body_bytes = 1 << 20;
        let running = Running::start(config, storage.clone());
        let base = running.url.clone();
        common::register(&base, &["1.0.0"]);
        let url = format!("{base}/v1/report");
        let good = common::report(&Fake::default());
        let what = |s: &str| format!("{backend}: {s}");

        // Size, content type, syntax.
        let mut big = good.clone();
        big["sections"]["setup"]["padding"] = Value::from("x".repeat(1100 << 10));
        expect(&send(&base, &big), 413, "too_large", &what("oversized"));
        expect(
            &post(&url, "text/plain", good.to_string().as_bytes()),
            415,
            "content_type",
            &what("text/plain"),
        );
        let text = good.to_string();
        expect(
            &post(&url, "application/json", &text.as_bytes()[..text.len() / 2]),
            400,
            "malformed",
            &what("truncated"),
        );
        expect(
            &post(&url, "application/json", b"schema_version=1&report_id=2"),
            400,
            "malformed",
            &what("not JSON"),
        );
        expect(
            &post(&url, "application/json", b"[1, 2, 3]"),
            400,
            "malformed",
            &what("an array"),
        );
        expect(
            &post(&url, "application/json", &[0xff, 0xfe, b'{', b'}']),
            400,
            "malformed",
            &what("not UTF-8"),
        );

        // Wrong types.
        let edits: Vec<(&str, Edit, &str)> = vec![
            (
                "a counter value as a string",
                Box::new(|r| {
                    r["metrics"]["counters"]["suite.search.calls"]["series"][0]["value"] =
                        json!("5")
                }),
                "wrong_type",
            ),
            (
                "a negative counter",
                Box::new(|r| {
                    r["metrics"]["counters"]["suite.search.calls"]["series"][0]["value"] = json!(-1)
                }),
                "wrong_type",
            ),
            (
                "a report id that is no UUID",
                Box::new(|r| r["report_id"] = json!("not-a-uuid")),
                "wrong_type",
            ),
            (
                "a nil report id",
                Box::new(|r| r["report_id"] = json!("00000000-0000-0000-0000-000000000000")),
                "wrong_type",
            ),
            (
                "an uptime as a float",
                Box::new(|r| r["uptime_seconds"] = json!(1.5)),
                "wrong_type",
            ),
            (
                "a timestamp with a zone",
                Box::new(|r| r["timestamp"] = json!("2026-12-07T10:00:00+02:00")),
                "wrong_type",
            ),
            (
                "a section field as an object",
                Box::new(|r| r["sections"]["setup"]["shards"] = json!({"a": 1})),
                "wrong_type",
            ),
            (
                "a histogram without buckets",
                Box::new(|r| {
                    r["metrics"]["histograms"]["suite.search.duration"]["series"][0]["value"] =
                        json!({"count": 1})
                }),
                "wrong_type",
            ),
            (
                "schema version 2",
                Box::new(|r| r["schema_version"] = json!(2)),
                "unsupported_schema",
            ),
            // Undeclared names.
            (
                "an undeclared metric",
                Box::new(|r| {
                    r["metrics"]["counters"]["suite.secret"] =
                        r["metrics"]["counters"]["suite.search.calls"].clone()
                }),
                "undeclared_metric",
            ),
            (
                "a counter sent as a gauge",
                Box::new(|r| {
                    r["metrics"]["gauges"]["suite.search.calls"] =
                        json!({"unit": "none", "series": [{"value": 1}]})
                }),
                "undeclared_metric",
            ),
            (
                "another unit",
                Box::new(|r| {
                    r["metrics"]["histograms"]["suite.search.duration"]["unit"] = json!("seconds")
                }),
                "undeclared_metric",
            ),
            (
                "an undeclared envelope field",
                Box::new(|r| r["hostname"] = json!("db01")),
                "undeclared_field",
            ),
            (
                "an undeclared section",
                Box::new(|r| r["sections"]["users"] = json!({"email": "a@b.c"})),
                "undeclared_field",
            ),
            (
                "an undeclared section field",
                Box::new(|r| r["sections"]["setup"]["hostname"] = json!("db01")),
                "undeclared_field",
            ),
            (
                "a free-text description",
                Box::new(|r| {
                    r["metrics"]["counters"]["suite.search.calls"]["description"] =
                        json!("alice@example.com")
                }),
                "undeclared_field",
            ),
            (
                "an undeclared label name",
                Box::new(|r| {
                    r["metrics"]["counters"]["suite.query.errors"]["series"][0]["labels"] =
                        json!({"user": "Fast"})
                }),
                "undeclared_label",
            ),
            (
                "an undeclared label value",
                Box::new(|r| {
                    r["metrics"]["counters"]["suite.query.errors"]["series"][0]["labels"]["mode"] =
                        json!("alice")
                }),
                "undeclared_label_value",
            ),
            (
                "free text in an open label",
                Box::new(|r| {
                    r["metrics"]["counters"]["suite.errors.by_code"]["series"][0]["labels"]["code"] =
                        json!("alice@example.com")
                }),
                "undeclared_label_value",
            ),
            (
                "an undeclared event",
                Box::new(|r| r["trigger"] = json!("event:login")),
                "undeclared_field",
            ),
            // Forged products and manifest versions.
            (
                "an unregistered product version",
                Box::new(|r| r["application"]["version"] = json!("9.9.9")),
                "unknown_manifest_version",
            ),
            (
                "an unknown product",
                Box::new(|r| r["application"]["name"] = json!("other")),
                "unknown_product",
            ),
        ];
        for (name, edit, reason) in &edits {
            let mut report = common::report(&Fake::default());
            edit(&mut report);
            let status = if *reason == "malformed" { 400 } else { 422 };
            expect(&send(&base, &report), status, reason, &what(name));
        }
        let forged = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent()
            .post(&url)
            .header("content-type", "application/json")
            .header("telemetry-manifest-version", "0123456789abcdef")
            .send(common::report(&Fake::default()).to_string().as_bytes())
            .unwrap();
        assert_eq!(
            forged.status().as_u16(),
            422,
            "{backend}: a forged manifest version header"
        );

        // 10,000 distinct fake label values: in a closed set, in an open one (over its cap of
        // series), and one fresh value per report.
        for (metric, label, reason) in [
            ("suite.query.errors", "mode", "too_many_series"),
            ("suite.errors.by_code", "code", "too_many_series"),
        ] {
            let mut report = common::report(&Fake::default());
            let series: Vec<Value> = (0..10_000)
                .map(|i| json!({"labels": {label: format!("{i}")}, "value": 1}))
                .collect();
            report["metrics"]["counters"][metric]["series"] = Value::from(series);
            expect(
                &send(&base, &report),
                422,
                reason,
                &what(&format!("10,000 values of {metric}")),
            );
        }
        let started = std::time::Instant::now();
        for i in 0..1_000 {
            let mut report = common::report(&Fake::default());
            report["metrics"]["counters"]["suite.query.errors"]["series"][0]["labels"]["mode"] =
                json!(format!("fake{i}"));
            expect(
                &send(&base, &report),
                422,
                "undeclared_label_value",
                &what("a fresh fake value"),
            );
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "{backend}: 1,000 refusals took {:?}",
            started.elapsed()
        );

        // Replays: the same report twice is stored once; another body under its id is refused.
        let first = send(&base, &good);
        assert_eq!(
            (first.status, first.json()["status"].as_str()),
            (200, Some("accepted")),
            "{backend}: {first:?}"
        );
        let again = send(&base, &good);
        assert_eq!(
            (again.status, again.json()["status"].as_str()),
            (200, Some("duplicate")),
            "{backend}: {again:?}"
        );
        let mut replayed = good.clone();
        replayed["metrics"]["counters"]["suite.search.calls"]["series"][0]["value"] = json!(999);
        expect(
            &send(&base, &replayed),
            409,
            "replayed_id",
            &what("a replayed id"),
        );

        assert_eq!(
            storage.count_reports(common::PRODUCT, None).unwrap(),
            1,
            "{backend}: only the good report is stored"
        );
        assert_eq!(
            storage.count_reports("other", None).unwrap(),
            0,
            "{backend}"
        );
        assert_eq!(
            get(&format!("{base}/healthz")).body,
            "ok",
            "{backend}: the collector is up"
        );
        let metrics = get(&format!("{base}/metrics")).body;
        for reason in [
            "too_large",
            "content_type",
            "malformed",
            "wrong_type",
            "undeclared_metric",
            "undeclared_field",
            "undeclared_label",
            "undeclared_label_value",
            "too_many_series",
            "unknown_manifest_version",
            "unknown_product",
            "replayed_id",
        ] {
            assert!(
                metrics
                    .lines()
                    .any(|l| l.starts_with("collector_reports_rejected_total{")
                        && l.contains(&format!("reason=\"{reason}\""))),
                "{backend}: {reason} is not counted:\n{metrics}"
            );
        }
        running.stop();
    }
}

#[test]
fn the_administrative_calls_need_the_token() {
    let (_, storage) = backends("auth").remove(0);
    let running = Running::start(common::config(), storage);
    let base = &running.url;
    let json = common::manifest().to_json();
    let url = format!("{base}/v1/manifests/{}/1.0.0", common::PRODUCT);
    let anonymous = post(&url, "application/json", json.as_bytes());
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    let id = uuid::Uuid::new_v4();
    assert_eq!(
        common::delete(&format!("{base}/v1/installations/{id}"), None).status,
        401
    );
    assert_eq!(
        common::delete(
            &format!("{base}/v1/installations/{id}"),
            Some("wrong-token-0123456789")
        )
        .status,
        401
    );
    assert_eq!(
        common::delete(
            &format!("{base}/v1/installations/{id}"),
            Some(common::TOKEN)
        )
        .status,
        200
    );
    assert_eq!(
        common::delete(
            &format!("{base}/v1/installations/not-an-id"),
            Some(common::TOKEN)
        )
        .status,
        400
    );
    let not_a_manifest = common::post_admin(&url, b"{\"version\": 3}");
    assert_eq!(not_a_manifest.status, 422, "{not_a_manifest:?}");
    assert_eq!(common::post_admin(&url, json.as_bytes()).status, 201);
    assert_eq!(
        common::post_admin(&url, json.as_bytes()).status,
        200,
        "registering again changes nothing"
    );
    let mut other = common::manifest();
    other.version = "00000000000000ff".to_owned();
    let conflict = common::post_admin(&url, other.to_json().as_bytes());
    assert_eq!(
        conflict.status, 409,
        "one product version has one manifest: {conflict:?}"
    );
}

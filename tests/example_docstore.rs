//! The main example, run as a user runs it: its report, its anonymized report and its
//! manifest agree with each other and keep the privacy promises.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

/// The example binary that `cargo test` builds next to the test binaries.
fn example() -> PathBuf {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("examples")
        .join(format!("docstore{}", std::env::consts::EXE_SUFFIX))
}

fn run(args: &[&str]) -> String {
    let out = Command::new(example())
        .args(args)
        .output()
        .expect("run the docstore example (built by `cargo test`)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn metric_names(report: &serde_json::Value) -> BTreeSet<String> {
    ["counters", "gauges", "histograms"]
        .iter()
        .flat_map(|kind| report["metrics"][kind].as_object().unwrap().keys().cloned())
        .collect()
}

#[test]
fn the_manifest_lists_every_metric_the_example_emits_and_nothing_else() {
    let report: serde_json::Value = serde_json::from_str(&run(&["1000"])).unwrap();
    let emitted = metric_names(&report);
    assert!(emitted.len() > 20, "{emitted:?}");
    let manifest = run(&["--manifest", "1000"]);
    let listed: BTreeSet<String> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|name| name.starts_with("docstore") || name.starts_with("telemetry."))
        .map(str::to_owned)
        .collect();
    assert_eq!(listed, emitted);
    // Every emitted counter has at least one series and the run did real work.
    assert!(
        report["metrics"]["counters"]["docstore.cache.misses"]["series"][0]["value"]
            .as_u64()
            .unwrap()
            > 100
    );
}

#[test]
fn the_anonymized_report_has_no_raw_name_and_no_unrounded_big_number() {
    let raw = run(&["5000"]);
    let anonymized = run(&["--anonymized", "5000"]);
    for name in ["articles", "runbooks", "tickets", "changelog", "trial"] {
        assert!(
            !anonymized.contains(&format!("\"{name}\"")),
            "collection name {name} leaked"
        );
        assert!(
            !raw.contains(&format!("\"{name}\"")),
            "not even the local report keeps {name}"
        );
    }
    let json: serde_json::Value = serde_json::from_str(&anonymized).unwrap();
    let mut big = 0;
    fn walk(v: &serde_json::Value, path: &str, big: &mut usize) {
        match v {
            serde_json::Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    assert_eq!(
                        telemetry_core::anonymize::round_u64(u, 6),
                        u,
                        "unrounded at {path}"
                    );
                    if u >= 1_000_000 {
                        *big += 1;
                    }
                }
            }
            serde_json::Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, v)| walk(v, &format!("{path}[{i}]"), big)),
            serde_json::Value::Object(o) => o
                .iter()
                .for_each(|(k, v)| walk(v, &format!("{path}.{k}"), big)),
            _ => {}
        }
    }
    walk(&json["metrics"], "metrics", &mut big);
    walk(&json["sections"], "sections", &mut big);
    assert!(
        big > 0,
        "the workload produces big numbers (durations in ns), so rounding is exercised"
    );
    // The raw report has the unrounded values.
    let raw: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let raw_sum =
        raw["metrics"]["histograms"]["docstore.search.duration"]["series"][0]["value"]["sum"]
            .as_u64()
            .unwrap();
    let anon_sum = json["metrics"]["histograms"]["docstore.search.duration"]["series"][0]["value"]
        ["sum"]
        .as_u64()
        .unwrap();
    assert_eq!(anon_sum, telemetry_core::anonymize::round_u64(anon_sum, 6));
    assert!(raw_sum >= 1_000_000, "{raw_sum}");
}

//! The main example, run as a user runs it: its report, its anonymized report and its
//! manifest agree with each other and keep the privacy promises.

mod receiver;

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
                        telemetry_core::fuzzing::round_u64(u, 6),
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
    assert_eq!(anon_sum, telemetry_core::fuzzing::round_u64(anon_sum, 6));
    assert!(raw_sum >= 1_000_000, "{raw_sum}");
}

/// Runs the example with `args` in a clean telemetry environment plus `vars`: (exit success,
/// stdout, stderr).
fn run_with(args: &[&str], vars: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = Command::new(example());
    command
        .args(args)
        .env_remove("DO_NOT_TRACK")
        .env_remove("TELEMETRY_DEBUG")
        .env_remove("DOCSTORE_TELEMETRY_DEBUG")
        .env_remove("DOCSTORE_TELEMETRY_OPTOUT");
    for (k, v) in vars {
        command.env(k, v);
    }
    let out = command.output().expect("run the docstore example");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_telemetry_subcommand_and_the_debug_variable_work_in_the_example() {
    let state = std::env::temp_dir().join(format!("docstore-telemetry-{}", uuid::Uuid::new_v4()));
    let dir = state.to_str().unwrap();
    let telemetry = |action: &str| {
        let (ok, out, err) = run_with(&["--state-dir", dir, "telemetry", action], &[]);
        assert!(ok, "telemetry {action}: {err}");
        out
    };
    assert!(telemetry("status").starts_with("telemetry: undecided, set by the default"));

    // Debug mode: the report is printed on stderr, and nothing reaches the endpoint.
    let receiver = receiver::Receiver::start(receiver::Mode::Ok("{}".into()));
    let url = receiver.url();
    let (ok, _, err) = run_with(
        &[
            "--telemetry=enable",
            "--endpoint",
            &url,
            "--state-dir",
            dir,
            "50",
        ],
        &[("DOCSTORE_TELEMETRY_DEBUG", "1")],
    );
    assert!(ok, "{err}");
    assert!(
        err.contains("telemetry debug mode: this report would be sent"),
        "{err}"
    );
    assert!(err.contains("\"trigger\":\"shutdown\""), "{err}");
    // Without it, the same run sends its final report.
    let (ok, _, err) = run_with(
        &[
            "--telemetry=enable",
            "--endpoint",
            &url,
            "--state-dir",
            dir,
            "50",
        ],
        &[],
    );
    assert!(ok, "{err}");
    assert_eq!(
        receiver.requests(),
        1,
        "only the run without debug mode sent"
    );

    let status = telemetry("status");
    assert!(status.contains("installation id: "), "{status}");
    assert!(
        status.contains("last report: ") && status.contains("(sent)"),
        "{status}"
    );

    let shown = telemetry("show");
    let payload: serde_json::Value = serde_json::from_str(&shown).expect("`show` prints JSON");
    assert_eq!(payload["application"]["name"], "docstore");

    assert!(telemetry("disable").starts_with("telemetry disabled"));
    let status = telemetry("status");
    assert!(
        status.starts_with(
            "telemetry: disabled, set by the decision saved in the state directory on "
        ),
        "{status}"
    );
    // The decision holds at the next run: nothing is sent.
    let (ok, _, err) = run_with(&["--endpoint", &url, "--state-dir", dir, "50"], &[]);
    assert!(ok, "{err}");
    assert!(err.contains("You have opted out"), "{err}");
    assert_eq!(receiver.requests(), 1);

    assert!(telemetry("clean").starts_with("telemetry state cleaned"));
    for gone in ["installation_id", "hash.key", "telemetry.json"] {
        assert!(!state.join(gone).exists(), "{gone} is still there");
    }
    assert!(telemetry("manifest").contains("docstore.search"));
    std::fs::remove_dir_all(&state).unwrap();
}

/// The manifest's version hashes what the code declares: the same for every workload of one
/// binary.
#[test]
fn the_manifest_version_is_the_same_for_every_workload() {
    let version = |operations: &str| {
        let json = run(&["--manifest-json", operations]);
        let manifest: serde_json::Value = serde_json::from_str(&json).unwrap();
        manifest["version"].as_str().unwrap().to_owned()
    };
    let versions = [version("0"), version("10"), version("3000")];
    assert_eq!(versions[0].len(), 16);
    assert!(versions.iter().all(|v| *v == versions[0]), "{versions:?}");
    let page = run(&["--manifest", "0"]);
    assert!(page.contains("## Every report"), "{page}");
    assert!(page.contains("`uptime_seconds`"), "{page}");
    assert!(!page.contains("&'staticstr"), "types read as written");
}

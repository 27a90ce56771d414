//! End to end: the collector binary, as `cargo run -p telemetry-collector` starts it, on
//! loopback; the main example (docstore) registers its manifest and its reporter sends its
//! report; the report is stored once even when resent; the page shows the example's
//! features; a deletion (from the API, and from the command line) removes them. Against
//! SQLite and ClickHouse. The collector's log never holds a client's address.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use telemetry_collector::storage::Storage;
use telemetry_collector::storage::clickhouse::ClickHouseStorage;
use telemetry_collector::storage::sqlite::SqliteStorage;

/// The docstore example, built next to this test binary by `cargo build --example docstore`
/// (`cargo test --workspace` builds it too). Missing, the test fails.
fn docstore() -> PathBuf {
    let mut dir = std::env::current_exe().unwrap();
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir
        .join("examples")
        .join(format!("docstore{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build the main example first (cargo build --example docstore)",
        path.display()
    );
    path
}

fn run(command: &mut Command) -> String {
    let out = command.output().expect("run");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(env: &[(&str, String)], dir: &Path) -> Self {
        let port = free_port();
        let config = dir.join("collector.toml");
        std::fs::write(&config, "[products.docstore]\nlatest_version = \"1.0.1\"\n").unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_telemetry-collector"));
        command
            .current_dir(dir)
            .env("TELEMETRY_COLLECTOR_CONFIG", &config)
            .env("TELEMETRY_COLLECTOR_LISTEN", format!("127.0.0.1:{port}"))
            .env("TELEMETRY_COLLECTOR_TOKEN", common::TOKEN)
            .env("TELEMETRY_COLLECTOR_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("start the collector");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while ureq::get(&format!("{url}/healthz")).call().is_err() {
            assert!(Instant::now() < deadline, "the collector did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server { child, url }
    }

    /// Stops it with SIGTERM; returns its log.
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "the collector stops cleanly on SIGTERM: {status}"
        );
        let mut log = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut log)
            .unwrap();
        log
    }
}

/// One docstore run with its reporter enabled, sending to `base`; returns its last report
/// (from `telemetry.json` in its state directory).
fn docstore_run(base: &str, state: &Path) -> serde_json::Value {
    run(Command::new(docstore())
        .args([
            "--telemetry=enable",
            "--endpoint",
            &format!("{base}/v1/report"),
            "--state-dir",
        ])
        .arg(state)
        .arg("1000")
        .env_remove("DO_NOT_TRACK")
        .env_remove("DOCSTORE_TELEMETRY_OPTOUT"));
    let last: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("telemetry.json")).unwrap())
            .unwrap();
    assert_eq!(last["sent"], true, "{last}");
    last["report"].clone()
}

/// Whether the chart names `feature` (plotters writes each text on a line of its own).
fn on_page(page: &str, feature: &str) -> bool {
    page.contains(&format!("\n{feature}\n</text>"))
}

fn counters_used(report: &serde_json::Value) -> Vec<String> {
    report["metrics"]["counters"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, f)| {
            f["series"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["value"].as_u64() > Some(0))
        })
        .map(|(name, _)| name.clone())
        .collect()
}

fn end_to_end(backend: &str, env: Vec<(&str, String)>, storage: Arc<dyn Storage>) {
    let dir = tempdir(backend);
    // The example's own manifest, registered from the command line before the collector
    // starts (a running collector reads manifests added beside it within a second).
    let manifest = dir.join("docstore-manifest.json");
    std::fs::write(
        &manifest,
        run(Command::new(docstore()).args(["--manifest-json", "1000"])),
    )
    .unwrap();
    let mut add = Command::new(env!("CARGO_BIN_EXE_telemetry-collector"));
    add.current_dir(&dir)
        .args([
            "manifest",
            "add",
            "--product",
            "docstore",
            "--version",
            "1.0.0",
        ])
        .arg(&manifest);
    for (k, v) in &env {
        add.env(k, v);
    }
    assert!(run(&mut add).contains("registered"), "{backend}");
    let server = Server::start(&env, &dir);
    let base = server.url.clone();

    // Two installations report.
    let first = docstore_run(&base, &dir.join("state-a"));
    let second = docstore_run(&base, &dir.join("state-b"));
    let ids: Vec<uuid::Uuid> = [&first, &second]
        .iter()
        .map(|r| r["installation_id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_ne!(ids[0], ids[1]);
    assert_eq!(
        storage.count_reports("docstore", None).unwrap(),
        2,
        "{backend}"
    );

    // Resent (as a spooled copy would be): acknowledged, with the version notice, stored once.
    let again = common::send(&base, &first);
    assert_eq!(again.status, 200, "{backend}: {again:?}");
    assert_eq!(again.json()["status"], "duplicate", "{backend}");
    // The version notice as the reporter reads it (`{"latest_version": "..."}`; a real
    // reporter reading it is tests/upload_config.rs).
    assert_eq!(
        again.json()["latest_version"],
        "1.0.1",
        "{backend}: the answer carries the version notice"
    );
    assert_eq!(
        storage.count_reports("docstore", None).unwrap(),
        2,
        "{backend}"
    );

    // The page shows the example's features, each used by both installations.
    let features = counters_used(&first);
    assert!(features.len() > 10, "{backend}: {features:?}");
    let page = common::get(&format!("{base}/")).body;
    for feature in &features {
        assert!(
            on_page(&page, feature),
            "{backend}: {feature} is not on the page"
        );
    }
    assert!(page.contains("100 % (2/2)"), "{backend}");

    // Deleting the first installation from the API, the second from the command line.
    let deleted = common::delete(
        &format!("{base}/v1/installations/{}", ids[0]),
        Some(common::TOKEN),
    );
    assert_eq!(
        (deleted.status, deleted.json()["reports"].as_u64()),
        (200, Some(1)),
        "{backend}: {deleted:?}"
    );
    assert_eq!(
        storage.count_reports("docstore", Some(ids[0])).unwrap(),
        0,
        "{backend}"
    );
    let page = common::get(&format!("{base}/")).body;
    assert!(
        page.contains("100 % (1/1)") && !page.contains("(2/2)"),
        "{backend}: the deleted installation still counts"
    );
    let mut delete = Command::new(env!("CARGO_BIN_EXE_telemetry-collector"));
    delete
        .current_dir(&dir)
        .arg("delete")
        .arg(ids[1].to_string());
    for (k, v) in &env {
        delete.env(k, v);
    }
    assert!(run(&mut delete).contains("deleted 1 report"), "{backend}");
    assert_eq!(
        storage.count_reports("docstore", None).unwrap(),
        0,
        "{backend}"
    );
    let page = common::get(&format!("{base}/")).body;
    for feature in &features {
        assert!(
            !on_page(&page, feature),
            "{backend}: {feature} is still on the page"
        );
    }

    let log = server.stop();
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines.iter().any(|l| l.contains("listening on")),
        "{backend}: {log}"
    );
    for line in &lines {
        let record: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|_| panic!("{backend}: not a JSON log line: {line}"));
        let msg = record["msg"].as_str().unwrap();
        assert!(
            !msg.contains("127.0.0.1") || msg.starts_with("listening on"),
            "{backend}: a log line holds an address: {line}"
        );
    }
    assert!(
        log.contains("every accepted report is written"),
        "{backend}: {log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "collector-e2e-{label}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_example_reports_to_the_collector_on_sqlite() {
    let dir = tempdir("sqlite-db");
    let db = dir.join("collector.sqlite3");
    let storage = Arc::new(SqliteStorage::open(&db).unwrap());
    end_to_end(
        "sqlite",
        vec![("TELEMETRY_COLLECTOR_SQLITE", db.display().to_string())],
        storage,
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_example_reports_to_the_collector_on_clickhouse() {
    let Some(url) = common::clickhouse_url() else {
        return;
    };
    let database = common::fresh_database("e2e");
    let storage = Arc::new(ClickHouseStorage::open(&url, &database).unwrap());
    end_to_end(
        "clickhouse",
        vec![
            ("TELEMETRY_COLLECTOR_CLICKHOUSE_URL", url),
            ("TELEMETRY_COLLECTOR_CLICKHOUSE_DATABASE", database),
        ],
        storage,
    );
}

//! A bounded load test of the collector on loopback: starts a collector in this process on
//! `127.0.0.1` (SQLite in a temporary file, or the ClickHouse at
//! `TELEMETRY_COLLECTOR_TEST_CLICKHOUSE_URL`), registers a manifest, and sends copies of one
//! real report (each with its own report id and installation id) from several client
//! threads, each waiting for its answer before sending the next, until the count or the time
//! bound is reached. Prints the reports stored per second and the p50 and p99 of the time
//! from sending a report to its answer.
//!
//! ```text
//! cargo run --release -p telemetry-collector --example collector_load -- \
//!     --manifest docstore-manifest.json --report docstore-report.json \
//!     [--backend sqlite|clickhouse] [--reports 20000] [--seconds 60] [--clients 16]
//! ```
//! `scripts/collector-load.sh` makes the two files with the docstore example and runs both
//! backends.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use telemetry_collector::storage::Storage;
use telemetry_collector::{Collector, Config};

struct Args {
    manifest: String,
    report: String,
    backend: String,
    reports: usize,
    seconds: u64,
    clients: usize,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        manifest: String::new(),
        report: String::new(),
        backend: "sqlite".to_owned(),
        reports: 20_000,
        seconds: 60,
        clients: 16,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--manifest" => args.manifest = value,
            "--report" => args.report = value,
            "--backend" => args.backend = value,
            "--reports" => args.reports = value.parse().map_err(|_| "--reports: a number")?,
            "--seconds" => args.seconds = value.parse().map_err(|_| "--seconds: a number")?,
            "--clients" => args.clients = value.parse().map_err(|_| "--clients: a number")?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.manifest.is_empty() || args.report.is_empty() {
        return Err("--manifest FILE and --report FILE are needed".to_owned());
    }
    // Bounded whatever is asked: at most 200,000 reports and 5 minutes.
    args.reports = args.reports.min(200_000);
    args.seconds = args.seconds.min(300);
    args.clients = args.clients.clamp(1, 256);
    Ok(args)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&args.report)?)?;
    let product = report["application"]["name"]
        .as_str()
        .ok_or("no application.name")?
        .to_owned();
    let version = report["application"]["version"]
        .as_str()
        .ok_or("no application.version")?
        .to_owned();
    let dir =
        std::env::temp_dir().join(format!("collector-load-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let storage: Arc<dyn Storage> = match args.backend.as_str() {
        "sqlite" => Arc::new(telemetry_collector::storage::sqlite::SqliteStorage::open(
            &dir.join("load.sqlite3"),
        )?),
        "clickhouse" => {
            let url = std::env::var("TELEMETRY_COLLECTOR_TEST_CLICKHOUSE_URL")
                .map_err(|_| "TELEMETRY_COLLECTOR_TEST_CLICKHOUSE_URL is not set (scripts/with-clickhouse.sh)")?;
            if !url.starts_with("http://127.0.0.1:") {
                return Err("the load test only talks to loopback".into());
            }
            let database = format!("load_{}", uuid::Uuid::new_v4().simple());
            Arc::new(
                telemetry_collector::storage::clickhouse::ClickHouseStorage::open(&url, &database)?,
            )
        }
        other => return Err(format!("unknown backend {other}").into()),
    };
    let collector = Collector::new(Config::default(), storage.clone())?;
    let manifest = std::fs::read(&args.manifest)?;
    collector.register(
        telemetry_collector::manifest_registry::Registration::from_json(
            &product, &version, &manifest,
        )?,
    )?;

    // Every body made before the clock starts: distinct report ids and installations.
    let bodies: Arc<Vec<String>> = Arc::new(
        (0..args.reports)
            .map(|_| {
                let mut r = report.clone();
                r["report_id"] = serde_json::Value::from(uuid::Uuid::now_v7().to_string());
                r["installation_id"] = serde_json::Value::from(uuid::Uuid::new_v4().to_string());
                r.to_string()
            })
            .collect(),
    );
    let body_bytes = bodies[0].len();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let url = format!("http://{}/v1/report", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(collector.serve(listener, async move {
        let _ = stopped.await;
    }));

    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let clients: Vec<_> = (0..args.clients)
        .map(|_| {
            let (bodies, next, url) = (bodies.clone(), next.clone(), url.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(30)))
                    .build()
                    .into();
                let mut latencies = Vec::new();
                let mut failed = 0usize;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= bodies.len() || Instant::now() > deadline {
                        break;
                    }
                    let sent = Instant::now();
                    let answer = agent
                        .post(&url)
                        .header("content-type", "application/json")
                        .send(bodies[i].as_bytes());
                    let ok = match answer {
                        Ok(mut r) => r.status() == 200 && r.body_mut().read_to_string().is_ok(),
                        Err(_) => false,
                    };
                    latencies.push(sent.elapsed());
                    failed += usize::from(!ok);
                }
                (latencies, failed)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failed = 0;
    for client in clients {
        let (l, f) = client.join().map_err(|_| "a client thread panicked")?;
        latencies.extend(l);
        failed += f;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(());
    runtime.block_on(server)??;
    latencies.sort_unstable();
    let quantile = |q: f64| {
        latencies[((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    let stored = storage.count_reports(&product, None)?;
    println!(
        "backend={} clients={} body_bytes={body_bytes} sent={} failed={failed} stored={stored} seconds={:.2} reports_per_second={:.0} p50_ms={:.2} p99_ms={:.2} cores={}",
        args.backend,
        args.clients,
        latencies.len(),
        elapsed.as_secs_f64(),
        stored as f64 / elapsed.as_secs_f64(),
        quantile(0.5).as_secs_f64() * 1e3,
        quantile(0.99).as_secs_f64() * 1e3,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let _ = std::fs::remove_dir_all(&dir);
    if failed > 0 || stored as usize != latencies.len() {
        return Err(format!(
            "{failed} report(s) failed; {stored} stored of {} sent",
            latencies.len()
        )
        .into());
    }
    Ok(())
}

//! A small key-value service over HTTP, instrumented with `#[count_usage]` and `#[timed]`, that
//! serves its own telemetry on `/metrics` (Prometheus text or OpenMetrics) and `/telemetry`.
//!
//! ```text
//! cargo run --example server -- [--port 8080] [--bind 127.0.0.1] [--prefix kv_] [--exit-after SECONDS]
//! ```
//!
//! Then, for example:
//! ```text
//! curl -X PUT --data 'hello' http://127.0.0.1:8080/kv/greeting
//! curl http://127.0.0.1:8080/kv/greeting
//! curl http://127.0.0.1:8080/metrics
//! curl -H 'Accept: application/openmetrics-text; version=1.0.0' http://127.0.0.1:8080/metrics
//! curl 'http://127.0.0.1:8080/telemetry?details_level=3&anonymize=true'
//! ```
//!
//! Routes: `PUT /kv/{key}` stores the request body (at most 1 MiB) and answers 201 (new) or
//! 204 (replaced); `GET /kv/{key}` answers the value or 404; `DELETE /kv/{key}` answers 204 or
//! 404; `GET /metrics` and `GET /telemetry` are `telemetry_core::serve::router`.
//!
//! The port is `--port`, else the `KV_SERVER_PORT` environment variable, else 8080; port 0
//! takes any free port. The first line on standard output is `listening on http://ADDRESS`,
//! so scripts and tests can read the address. The server stops on Ctrl-C (SIGINT), or by
//! itself after `--exit-after` seconds; open connections get 5 seconds to finish.
//!
//! Keys are the users' data: they are never put in a metric or a label. What the metrics
//! record: calls and durations of each handler, value sizes, lookups by outcome (hit or miss),
//! the number of keys and the bytes stored.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use clap::Parser;
use std::collections::HashMap;
use std::error::Error;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use telemetry_core::export::endpoint::Endpoints;
use telemetry_core::export::prometheus::Exposition;
use telemetry_core::{
    Application, Gauge, Histogram, LabelValue, LabeledCounter, Report, Telemetry, count_usage,
    timed,
};

/// The largest value accepted, in bytes.
const MAX_VALUE_BYTES: usize = 1 << 20;
/// The longest key accepted, in bytes.
const MAX_KEY_BYTES: usize = 250;
/// The port when neither `--port` nor `KV_SERVER_PORT` gives one.
const DEFAULT_PORT: u16 = 8080;
/// How long open connections may take to finish once the server is asked to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A key-value service with its own `/metrics` and `/telemetry` endpoints.
#[derive(Parser, Debug)]
#[command(name = "server")]
struct Args {
    /// The TCP port to listen on; 0 takes any free port [default: $KV_SERVER_PORT, else 8080].
    #[arg(long)]
    port: Option<u16>,
    /// The address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind: IpAddr,
    /// Stop by itself after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    exit_after: Option<u64>,
    /// A prefix for every metric name on /metrics, e.g. `kv_`.
    #[arg(long)]
    prefix: Option<String>,
}

/// Whether a lookup found its key.
#[derive(Clone, Copy, LabelValue)]
enum Outcome {
    /// The key was there.
    #[label(rename = "hit")]
    Hit,
    /// The key was not there.
    #[label(rename = "miss")]
    Miss,
}

/// The service's configuration, as the `configuration` section of its reports.
#[derive(Clone, Telemetry)]
#[telemetry(section = "configuration")]
struct Configuration {
    max_value_bytes: usize,
    max_key_bytes: usize,
    exits_by_itself: bool,
}

/// The metrics that are not function calls.
struct Metrics {
    value_size: Histogram,
    lookups: LabeledCounter<(Outcome,)>,
    stored: Gauge,
}

/// The values, and the counts the gauges read.
struct Store {
    values: Mutex<HashMap<String, Bytes>>,
    keys: Arc<AtomicI64>,
    metrics: Metrics,
}

impl Store {
    fn new() -> Result<Self, telemetry_core::RegistryError> {
        let keys = Arc::new(AtomicI64::new(0));
        let read_keys = Arc::clone(&keys);
        telemetry_core::gauge!(
            "kv.keys",
            description = "Keys stored",
            callback = move || read_keys.load(Ordering::Relaxed)
        )?;
        Ok(Store {
            values: Mutex::new(HashMap::new()),
            keys,
            metrics: Metrics {
                value_size: telemetry_core::histogram!(
                    "kv.value.size",
                    description = "Size of the values stored",
                    unit = Bytes
                )?,
                lookups: telemetry_core::counter!("kv.lookups", description = "Lookups, by whether the key was found", labels(outcome: Outcome))?,
                stored: telemetry_core::gauge!(
                    "kv.stored",
                    description = "Bytes of values stored",
                    unit = Bytes
                )?,
            },
        })
    }

    /// The map, also if a handler panicked while holding it (the map is always consistent).
    fn values(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bytes>> {
        self.values.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Updates the gauges after a change.
    fn changed(&self, values: &HashMap<String, Bytes>) {
        self.keys.store(values.len() as i64, Ordering::Relaxed);
        let bytes: usize = values.values().map(Bytes::len).sum();
        self.metrics.stored.set(bytes as i64);
    }
}

type Shared = State<Arc<Store>>;

/// Stores a value.
#[count_usage(name = "kv.put", description = "Values stored")]
#[timed(name = "kv.put.duration", description = "Time to store a value")]
async fn put_value(State(store): Shared, Path(key): Path<String>, body: Bytes) -> StatusCode {
    if key.len() > MAX_KEY_BYTES {
        return StatusCode::BAD_REQUEST;
    }
    store.metrics.value_size.record(body.len() as u64);
    let mut values = store.values();
    let created = values.insert(key, body).is_none();
    store.changed(&values);
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::NO_CONTENT
    }
}

/// Reads a value.
#[count_usage(name = "kv.get", description = "Values read")]
#[timed(name = "kv.get.duration", description = "Time to read a value")]
async fn get_value(State(store): Shared, Path(key): Path<String>) -> Result<Bytes, StatusCode> {
    let found = store.values().get(&key).cloned();
    let outcome = if found.is_some() {
        Outcome::Hit
    } else {
        Outcome::Miss
    };
    store.metrics.lookups.increment((outcome,));
    found.ok_or(StatusCode::NOT_FOUND)
}

/// Deletes a value.
#[count_usage(name = "kv.delete", description = "Values deleted")]
async fn delete_value(State(store): Shared, Path(key): Path<String>) -> StatusCode {
    let mut values = store.values();
    let removed = values.remove(&key).is_some();
    store.changed(&values);
    if removed {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn index() -> &'static str {
    "kv server: PUT, GET or DELETE /kv/{key}; telemetry on /metrics and \
     /telemetry?details_level=0..3&anonymize=true|false\n"
}

/// Resolves once the server should stop: on Ctrl-C, or after `exit_after` seconds.
async fn stop_requested(exit_after: Option<u64>) {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handling here: only the timer (if any) can stop the server.
            std::future::pending::<()>().await;
        }
    };
    match exit_after {
        Some(seconds) => tokio::select! {
            _ = ctrl_c => {}
            _ = tokio::time::sleep(Duration::from_secs(seconds)) => {}
        },
        None => ctrl_c.await,
    }
}

fn port(args: &Args) -> Result<u16, Box<dyn Error>> {
    if let Some(port) = args.port {
        return Ok(port);
    }
    match std::env::var("KV_SERVER_PORT") {
        Ok(text) => text.trim().parse().map_err(|e| {
            format!("invalid KV_SERVER_PORT `{text}` ({e}): expected 0 to 65535").into()
        }),
        Err(_) => Ok(DEFAULT_PORT),
    }
}

fn main() -> ExitCode {
    // The framework logs what it sends and the installation id under the `telemetry` target.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("telemetry=info"))
        .init();
    match serve(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kv server: {e}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn serve(args: Args) -> Result<(), Box<dyn Error>> {
    let mut exposition = Exposition::new();
    if let Some(prefix) = &args.prefix {
        exposition = exposition.with_prefix(prefix)?;
    }
    let application = Application::new("kv-server", env!("CARGO_PKG_VERSION"));
    let configuration = Configuration {
        max_value_bytes: MAX_VALUE_BYTES,
        max_key_bytes: MAX_KEY_BYTES,
        exits_by_itself: args.exit_after.is_some(),
    };
    // The report that a reporter would send, built the same way for `/telemetry`.
    let report = move || {
        let mut report = Report::collect(application.clone());
        report.add_section(&configuration);
        report
    };
    let endpoints = Endpoints::new(Application::new("kv-server", env!("CARGO_PKG_VERSION")))
        .with_exposition(exposition)
        .with_report(report);

    let store = Arc::new(Store::new()?);
    let app = Router::new()
        .route("/", get(index))
        .route(
            "/kv/{key}",
            get(get_value).put(put_value).delete(delete_value),
        )
        .layer(DefaultBodyLimit::max(MAX_VALUE_BYTES))
        .with_state(store)
        .merge(telemetry_core::serve::router(endpoints));

    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.bind, port(&args)?)).await?;
    let address = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{address}")?;
        out.flush()?;
    }
    eprintln!(
        "kv server: try `curl -X PUT --data hello http://{address}/kv/greeting`, then \
         http://{address}/metrics and http://{address}/telemetry?details_level=3; Ctrl-C stops"
    );

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let exit_after = args.exit_after;
    tokio::spawn(async move {
        stop_requested(exit_after).await;
        let _ = stop.send(true);
    });
    let mut graceful = stopped.clone();
    let mut deadline = stopped;
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = graceful.wait_for(|stop| *stop).await;
    });
    tokio::select! {
        result = server => result?,
        _ = async {
            let _ = deadline.wait_for(|stop| *stop).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => eprintln!("kv server: connections still open after {SHUTDOWN_GRACE:?}, stopping anyway"),
    }
    eprintln!("kv server: stopped");
    Ok(())
}

//! The HTTP server: routes, handlers and graceful shutdown.
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/report` | a report: validated, stored once per id, answered with the version notice |
//! | `GET /v1/upload-config/{product}` | the product's upload configuration |
//! | `POST /v1/manifests/{product}/{version}` | registers a manifest (bearer token) |
//! | `GET /v1/manifests` | the registered manifests |
//! | `DELETE /v1/installations/{id}` | deletes an installation's data (bearer token) |
//! | `GET /v1/rollups/{product}?period=day\|week` | the rollups as JSON |
//! | `GET /charts/{product}.svg?period=day\|week` | the feature chart |
//! | `GET /?period=day\|week` | the page with every product's charts |
//! | `GET /metrics` | the collector's own metrics (Prometheus text format) |
//! | `GET /healthz` | `ok` |
//!
//! The handlers never read the client's address (no `ConnectInfo`), so nothing stored or
//! logged can hold it.

use crate::config::{Backend, Config, StorageConfig};
use crate::ingest::{Ingest, Outcome};
use crate::manifest_registry::{ManifestRegistry, Registration, RegistrationError};
use crate::rollup::Rollup;
use crate::storage::clickhouse::ClickHouseStorage;
use crate::storage::sqlite::SqliteStorage;
use crate::storage::{Inserted, Period, Storage, StorageError};
use crate::validate::{Reason, Rejection, validate};
use crate::{dates, metrics, upload_config};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The largest manifest body accepted, bytes.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// Why the collector cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectorError {
    /// The configuration is not usable.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// The store cannot be opened.
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// A manifest cannot be registered.
    #[error("{0}")]
    Registration(#[from] RegistrationError),
    /// Listening or a thread failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Opens the store `config` names.
///
/// # Errors
/// [`StorageError`] if it cannot be opened.
pub fn open_storage(config: &StorageConfig) -> Result<Arc<dyn Storage>, StorageError> {
    Ok(match config.backend {
        Backend::Sqlite => Arc::new(SqliteStorage::open(&config.path)?),
        Backend::Clickhouse => Arc::new(ClickHouseStorage::open(&config.url, &config.database)?),
    })
}

/// A collector: its configuration, store, manifests and storage thread.
#[derive(Clone)]
pub struct Collector {
    state: Arc<AppState>,
}

struct AppState {
    config: Config,
    storage: Arc<dyn Storage>,
    registry: RwLock<ManifestRegistry>,
    ingest: Mutex<Option<Ingest>>,
    last_refresh: Mutex<Option<Instant>>,
}

/// How often a collector that meets an unknown product version reads the manifests other
/// collectors may have registered in the shared store.
const REFRESH_EVERY: Duration = Duration::from_secs(1);

impl Collector {
    /// A collector over `storage`, with the manifests already kept there.
    ///
    /// # Errors
    /// [`CollectorError`] if the manifests cannot be read or the storage thread started.
    pub fn new(config: Config, storage: Arc<dyn Storage>) -> Result<Self, CollectorError> {
        let ingest = Ingest::start(storage.clone(), config.queue, config.batch)?;
        let collector = Collector {
            state: Arc::new(AppState {
                config,
                storage,
                registry: RwLock::new(ManifestRegistry::new()),
                ingest: Mutex::new(Some(ingest)),
                last_refresh: Mutex::new(None),
            }),
        };
        collector.reload_manifests()?;
        Ok(collector)
    }

    /// Opens the store of `config` and makes a collector over it.
    ///
    /// # Errors
    /// [`CollectorError`].
    pub fn open(config: Config) -> Result<Self, CollectorError> {
        let storage = open_storage(&config.storage)?;
        Self::new(config, storage)
    }

    /// The store.
    pub fn storage(&self) -> Arc<dyn Storage> {
        self.state.storage.clone()
    }

    /// Registers a manifest here and in the store (blocking).
    ///
    /// # Errors
    /// [`CollectorError::Registration`] for a conflict, [`CollectorError::Storage`].
    pub fn register(&self, registration: Registration) -> Result<bool, CollectorError> {
        let added = self.state.write_registry().add(registration.clone())?;
        self.state.storage.put_manifest(&registration)?;
        Ok(added)
    }

    /// Reads the manifests kept in the store into this collector (blocking).
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn reload_manifests(&self) -> Result<(), StorageError> {
        self.state.reload()
    }

    /// The routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/report", post(report))
            .route("/v1/upload-config/{product}", get(upload_config_handler))
            .route("/v1/manifests", get(list_manifests))
            .route("/v1/manifests/{product}/{version}", post(register_manifest))
            .route("/v1/installations/{id}", delete(delete_installation))
            .route("/v1/rollups/{product}", get(rollups))
            .route("/charts/{file}", get(chart))
            .route("/", get(page))
            .route("/metrics", get(metrics_handler))
            .route("/healthz", get(|| async { "ok" }))
            .with_state(self.state.clone())
    }

    /// Serves on `listener` until `shutdown` completes, then finishes the requests already
    /// accepted and writes every queued report before returning.
    ///
    /// # Errors
    /// [`CollectorError::Io`] if serving fails.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), CollectorError> {
        let router = self.router();
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await?;
        let ingest = self
            .state
            .ingest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(ingest) = ingest {
            let _ = tokio::task::spawn_blocking(move || ingest.finish()).await;
        }
        log::info!(target: "telemetry_collector", "stopped: every accepted report is written");
        Ok(())
    }
}

impl AppState {
    fn registry(&self) -> std::sync::RwLockReadGuard<'_, ManifestRegistry> {
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_registry(&self) -> std::sync::RwLockWriteGuard<'_, ManifestRegistry> {
        self.registry.write().unwrap_or_else(|e| e.into_inner())
    }

    fn reload(&self) -> Result<(), StorageError> {
        let registrations = self.storage.manifests()?;
        let mut registry = self.write_registry();
        for r in registrations {
            if let Err(e) = registry.add(r) {
                log::warn!(target: "telemetry_collector", "a stored manifest is left out: {e}");
            }
        }
        *self.last_refresh.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        Ok(())
    }

    /// Reads the store's manifests again if that was not done in the last second.
    async fn refresh(self: &Arc<Self>) -> bool {
        {
            let mut last = self.last_refresh.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| t.elapsed() < REFRESH_EVERY) {
                return false;
            }
            *last = Some(Instant::now());
        }
        let state = self.clone();
        matches!(
            tokio::task::spawn_blocking(move || state.reload()).await,
            Ok(Ok(()))
        )
    }

    fn ingest(&self) -> Option<Ingest> {
        self.ingest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn answer(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

fn refused(rejection: &Rejection) -> Response {
    metrics::rejected(rejection.reason);
    let mut response = answer(
        rejection.reason.status(),
        json!({ "status": "rejected", "reason": rejection.reason.as_str(), "detail": rejection.detail }),
    );
    if rejection.reason == Reason::Overloaded {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn rejection(reason: Reason, detail: &str) -> Rejection {
    Rejection {
        reason,
        detail: detail.to_owned(),
    }
}

/// How much of a body over the limit is still read (and thrown away) before the 413, so the
/// client, still writing, gets the answer rather than a broken connection.
pub const DRAIN_BYTES: usize = 8 << 20;

/// The longest time a body may take to arrive.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads `body`, at most `limit` bytes (a larger one is read up to [`DRAIN_BYTES`] more and
/// refused), within [`BODY_TIMEOUT`].
async fn read_body(headers: &HeaderMap, mut body: Body, limit: usize) -> Result<Bytes, Rejection> {
    let too_large = || {
        rejection(
            Reason::TooLarge,
            &format!("the body is larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > (limit + DRAIN_BYTES) as u64) {
        return Err(too_large());
    }
    let read = async {
        let mut kept = Vec::with_capacity(declared.map_or(0, |n| n as usize).min(limit));
        let mut seen = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|_| rejection(Reason::Malformed, "the body could not be read whole"))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            seen += data.len();
            if seen > limit + DRAIN_BYTES {
                break;
            }
            if seen <= limit {
                kept.extend_from_slice(&data);
            }
        }
        if seen > limit {
            return Err(too_large());
        }
        Ok(Bytes::from(kept))
    };
    match tokio::time::timeout(BODY_TIMEOUT, read).await {
        Ok(result) => result,
        Err(_) => Err(rejection(
            Reason::Malformed,
            "the body did not arrive in time",
        )),
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

async fn report(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let response = ingest_report(&state, &headers, body).await;
    metrics::metrics()
        .ingest_duration
        .record_duration(started.elapsed());
    response
}

async fn ingest_report(state: &Arc<AppState>, headers: &HeaderMap, body: Body) -> Response {
    if !is_json(headers) {
        return refused(&rejection(
            Reason::ContentType,
            "the content type is not application/json",
        ));
    }
    let bytes = match read_body(headers, body, state.config.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(r) => return refused(&r),
    };
    let claimed = headers
        .get("telemetry-manifest-version")
        .map(|v| v.to_str().unwrap_or("(not text)").to_owned());
    let mut result = validate(&state.registry(), &bytes, claimed.as_deref());
    if matches!(&result, Err(r) if matches!(r.reason, Reason::UnknownProduct | Reason::UnknownManifestVersion))
        && state.refresh().await
    {
        result = validate(&state.registry(), &bytes, claimed.as_deref());
    }
    let valid = match result {
        Ok(valid) => valid,
        Err(r) => return refused(&r),
    };
    let (product, version, id) = (
        valid.product.clone(),
        valid.product_version.clone(),
        valid.report_id,
    );
    let Some(ingest) = state.ingest() else {
        return refused(&rejection(Reason::Overloaded, "the collector is stopping"));
    };
    let status = match ingest.submit(valid).await {
        Outcome::Stored(Inserted::New) => {
            metrics::metrics().accepted.increment();
            "accepted"
        }
        Outcome::Stored(Inserted::Duplicate) => {
            metrics::metrics().duplicates.increment();
            "duplicate"
        }
        Outcome::Stored(Inserted::Conflict) => {
            return refused(&rejection(
                Reason::ReplayedId,
                "a different report was received before under this report_id",
            ));
        }
        Outcome::Overloaded => return refused(&rejection(Reason::Overloaded, "the queue is full")),
        Outcome::Failed(_) => {
            return answer(
                503,
                json!({ "status": "error", "reason": "storage", "detail": "the report could not be stored" }),
            );
        }
    };
    let mut body = json!({ "status": status, "report_id": id.to_string() });
    if let Some(latest) = state.config.latest_version(&product, &version) {
        body["latest_version"] = Value::from(latest);
    }
    answer(200, body)
}

async fn upload_config_handler(
    State(state): State<Arc<AppState>>,
    Path(product): Path<String>,
) -> Response {
    let generated = |state: &AppState| {
        upload_config::generate(
            &state.registry(),
            &product,
            state.config.products.get(&product),
        )
    };
    let mut config = generated(&state);
    if config.is_none() && state.refresh().await {
        config = generated(&state);
    }
    match config {
        Some(config) => answer(200, serde_json::to_value(config).unwrap_or_default()),
        None => answer(
            404,
            json!({ "status": "error", "reason": "unknown_product" }),
        ),
    }
}

/// Checks the bearer token against the configured one, in constant time: the refusal, if
/// it is not the one.
fn unauthorized(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = &state.config.admin_token else {
        return Some(answer(
            403,
            json!({ "status": "error", "reason": "no_admin_token", "detail": "no admin token is configured: use the command line" }),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let same = given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        None
    } else {
        Some(answer(
            401,
            json!({ "status": "error", "reason": "unauthorized" }),
        ))
    }
}

async fn register_manifest(
    State(state): State<Arc<AppState>>,
    Path((product, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(response) = unauthorized(&state, &headers) {
        return response;
    }
    let bytes = match read_body(&headers, body, MAX_MANIFEST_BYTES).await {
        Ok(bytes) => bytes,
        Err(r) => {
            return answer(
                r.reason.status(),
                json!({ "status": "error", "reason": r.reason.as_str(), "detail": r.detail }),
            );
        }
    };
    let registration = match Registration::from_json(&product, &version, &bytes) {
        Ok(r) => r,
        Err(e) => {
            return answer(
                422,
                json!({ "status": "error", "reason": "invalid_manifest", "detail": e.to_string() }),
            );
        }
    };
    let manifest_version = registration.manifest.version.clone();
    let collector = Collector {
        state: state.clone(),
    };
    match tokio::task::spawn_blocking(move || collector.register(registration)).await {
        Ok(Ok(added)) => {
            log::info!(target: "telemetry_collector", "manifest {manifest_version} registered for {product} {version}");
            answer(
                if added { 201 } else { 200 },
                json!({ "status": "registered", "manifest_version": manifest_version, "new": added }),
            )
        }
        Ok(Err(CollectorError::Registration(e))) => answer(
            409,
            json!({ "status": "error", "reason": "conflict", "detail": e.to_string() }),
        ),
        _ => answer(503, json!({ "status": "error", "reason": "storage" })),
    }
}

async fn list_manifests(State(state): State<Arc<AppState>>) -> Response {
    let list: Vec<Value> = state
        .registry()
        .registrations()
        .iter()
        .map(|r| json!({ "product": r.product, "product_version": r.product_version, "manifest_version": r.manifest.version }))
        .collect();
    answer(200, Value::from(list))
}

async fn delete_installation(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = unauthorized(&state, &headers) {
        return response;
    }
    let Ok(id) = Uuid::try_parse(&id) else {
        return answer(400, json!({ "status": "error", "reason": "not_a_uuid" }));
    };
    let storage = state.storage.clone();
    match tokio::task::spawn_blocking(move || storage.delete_installation(id)).await {
        Ok(Ok(removed)) => {
            metrics::metrics().deletions.increment();
            log::info!(target: "telemetry_collector", "an installation's data was deleted on request ({removed} report(s))");
            answer(200, json!({ "status": "deleted", "reports": removed }))
        }
        _ => answer(503, json!({ "status": "error", "reason": "storage" })),
    }
}

/// `?period=day|week`.
#[derive(serde::Deserialize)]
struct PeriodQuery {
    #[serde(default)]
    period: Option<Period>,
}

/// The first period start shown: 30 days, or 12 weeks, back.
fn since(period: Period) -> String {
    let today = dates::today();
    match period {
        Period::Day => dates::format_day(today - 30),
        Period::Week => dates::format_day(dates::week_of(today) - 7 * 12),
    }
}

async fn compute(
    state: &Arc<AppState>,
    products: Vec<String>,
    period: Period,
) -> Result<Vec<Rollup>, Response> {
    let storage = state.storage.clone();
    let from = since(period);
    // The units of the products' metrics, as their manifests name them.
    let units: std::collections::HashMap<(String, String), String> = {
        let registry = state.registry();
        products
            .iter()
            .flat_map(|p| registry.registrations_of(p))
            .flat_map(|r| {
                r.manifest.metrics.iter().map(|m| {
                    (
                        (r.product.clone(), m.name.clone()),
                        m.unit.as_str().to_owned(),
                    )
                })
            })
            .collect()
    };
    match tokio::task::spawn_blocking(move || {
        products
            .iter()
            .map(|p| Rollup::compute(&*storage, p, period, &from))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    {
        Ok(Ok(mut rollups)) => {
            for rollup in &mut rollups {
                let product = rollup.product.clone();
                rollup
                    .name_units(|metric| units.get(&(product.clone(), metric.to_owned())).cloned());
            }
            Ok(rollups)
        }
        _ => Err(answer(
            503,
            json!({ "status": "error", "reason": "storage" }),
        )),
    }
}

async fn rollups(
    State(state): State<Arc<AppState>>,
    Path(product): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> Response {
    if !state.registry().knows_product(&product) {
        return answer(
            404,
            json!({ "status": "error", "reason": "unknown_product" }),
        );
    }
    match compute(&state, vec![product], q.period.unwrap_or(Period::Week)).await {
        Ok(mut r) => answer(200, serde_json::to_value(r.remove(0)).unwrap_or_default()),
        Err(response) => response,
    }
}

async fn chart(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> Response {
    let Some(product) = file
        .strip_suffix(".svg")
        .filter(|p| state.registry().knows_product(p))
    else {
        return answer(
            404,
            json!({ "status": "error", "reason": "unknown_product" }),
        );
    };
    match compute(
        &state,
        vec![product.to_owned()],
        q.period.unwrap_or(Period::Week),
    )
    .await
    {
        Ok(r) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("image/svg+xml"),
            )],
            crate::charts::feature_chart(&r[0]),
        )
            .into_response(),
        Err(response) => response,
    }
}

async fn page(State(state): State<Arc<AppState>>, Query(q): Query<PeriodQuery>) -> Response {
    let products: Vec<String> = state.registry().products().into_iter().collect();
    match compute(&state, products, q.period.unwrap_or(Period::Week)).await {
        Ok(r) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            crate::charts::page(&r),
        )
            .into_response(),
        Err(response) => response,
    }
}

async fn metrics_handler() -> Response {
    match tokio::task::spawn_blocking(metrics::render).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

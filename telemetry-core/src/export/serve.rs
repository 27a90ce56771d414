//! Local endpoints: `/metrics` and `/telemetry` handlers for axum (feature `axum`).
//!
//! ```
//! use telemetry_core::{Application, export::endpoint::Endpoints, serve};
//!
//! let app: axum::Router = axum::Router::new()
//!     // ... the product's own routes ...
//!     .merge(serve::router(Endpoints::new(Application::new("my-server", "1.0.0"))));
//! ```
//! Then serve `app` as usual, e.g. `axum::serve(listener, app)` on a tokio `TcpListener`
//! (the repository's `examples/server.rs` is a complete server).
//!
//! The handlers are thin: they pass the path, query and `Accept` header to
//! [`Endpoints::handle`](crate::export::endpoint::Endpoints::handle), whose module documents the
//! formats, the content negotiation between the Prometheus text exposition format 0.0.4 and
//! OpenMetrics 1.0, the `/telemetry` details levels and the errors (400, 404). The snapshot and
//! its rendering run on tokio's blocking pool (`spawn_blocking`), never on an async worker:
//! a callback gauge may take up to [`crate::CALLBACK_BUDGET`], and a report its sections.

use crate::export::endpoint::{self, Endpoints};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

/// A router with `GET /metrics` and `GET /telemetry` answered by `endpoints`, to
/// [`merge`](axum::Router::merge) into the product's router (whatever its state type `S`).
pub fn router<S>(endpoints: Endpoints) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/telemetry", get(telemetry))
        .with_state(Arc::new(endpoints))
}

/// The `GET /metrics` handler, for products that route it themselves: state
/// `Arc<Endpoints>`.
pub async fn metrics(
    State(endpoints): State<Arc<Endpoints>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    off_the_runtime(move || endpoints.metrics(query.as_deref().unwrap_or(""), accept.as_deref()))
        .await
}

/// The `GET /telemetry` handler, for products that route it themselves: state
/// `Arc<Endpoints>`.
pub async fn telemetry(
    State(endpoints): State<Arc<Endpoints>>,
    RawQuery(query): RawQuery,
) -> Response {
    off_the_runtime(move || endpoints.telemetry(query.as_deref().unwrap_or(""))).await
}

/// Runs `answer` on tokio's blocking pool.
async fn off_the_runtime(answer: impl FnOnce() -> endpoint::Response + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(answer).await {
        Ok(response) => into_response(response),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// An [`endpoint::Response`] as an axum response (status, `Content-Type`, body).
pub fn into_response(response: endpoint::Response) -> Response {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(response.content_type),
        )],
        response.body,
    )
        .into_response()
}

//! Exporters: the same snapshot in the formats of existing collection stacks.
//! Local endpoints: `/metrics` and `/telemetry` handlers.
//!
//! - [`prometheus`]: the Prometheus text exposition format 0.0.4 and OpenMetrics text 1.0,
//!   with the name rule, unit conversions and the histogram bucket layout
//!   ([`prometheus::BucketLayout`]) that the other exporters share.
//! - `pushgateway` (feature `http`): pushes a snapshot to a Prometheus Pushgateway, for jobs
//!   that end before anyone scrapes them.
//! - `otlp` (feature `otlp`): an OTLP/HTTP metrics exporter (protobuf or JSON) built on the
//!   `opentelemetry-proto` crate's generated types.
//! - [`endpoint`]: framework-independent handling of `GET /metrics` (content negotiation
//!   between Prometheus text and OpenMetrics) and `GET /telemetry?details_level=N&anonymize=B`
//!   (the report as JSON, see [`endpoint::telemetry_json`] for what each level holds). Any
//!   HTTP server can call [`endpoint::Endpoints::handle`]; with feature `axum`,
//!   `serve` (also at `telemetry_core::serve`) mounts the same handlers on an axum router;
//!   with feature `tower`, `tower_service::EndpointService` is the same as a `tower::Service`
//!   for any server on tower and hyper.
//!
//! `docs/EXPORTERS.md` in the repository gathers the rules of all of them in one page.

mod bucket_layout;
pub mod endpoint;
mod family_names;
mod format;
mod names;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod prometheus;
#[cfg(feature = "http")]
mod push_client;
#[cfg(feature = "http")]
pub mod pushgateway;
#[cfg(feature = "axum")]
pub mod serve;
mod telemetry_json;
mod text_numbers;
#[cfg(feature = "tower")]
pub mod tower_service;
mod units;

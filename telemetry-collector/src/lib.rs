//! The receiving half of `telemetry-core`: a collector that accepts only what a product's
//! manifest declares, stores each report once, deletes an installation's data on request,
//! answers with the latest version and the upload configuration, and charts aggregates.
//!
//! - [`validate`]: the closed-world check of a report against its manifest.
//! - [`manifest_registry`]: the registered manifests, by product and product version.
//! - [`ingest`]: the queue and storage thread that write reports in batches.
//! - [`storage`]: the [`storage::Storage`] trait, with SQLite (embedded, the default) and
//!   ClickHouse (several stateless collectors on one database).
//! - [`rollup`] and [`charts`]: the share of installations using each feature, merged
//!   histograms, and the page at `/`.
//! - [`upload_config`]: which metrics a product may send, and at what sampling rate.
//! - [`server`]: the HTTP routes and graceful shutdown; [`config`]: the file and environment.
//!
//! `cargo run -p telemetry-collector` serves on `127.0.0.1:4318` with a SQLite file in the
//! working directory; docs/COLLECTOR.md has the rest.
#![deny(missing_docs)]

pub mod charts;
pub mod config;
pub mod dates;
pub mod ingest;
pub mod logging;
pub mod manifest_registry;
pub mod metrics;
pub mod rollup;
pub mod server;
pub mod storage;
pub mod upload_config;
pub mod validate;

pub use config::Config;
pub use server::{Collector, CollectorError};

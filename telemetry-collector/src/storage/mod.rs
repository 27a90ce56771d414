//! The [`Storage`] trait: what every backend stores and answers, so that SQLite (the
//! embedded default) and ClickHouse (several stateless collectors on one database) pass the
//! same test suite.
//!
//! Calls are blocking: the server makes them on its storage thread or tokio's blocking pool,
//! never on an async worker.

pub mod clickhouse;
pub mod sqlite;

use crate::manifest_registry::Registration;
use uuid::Uuid;

/// One accepted report, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredReport {
    /// The report id: a report is stored once per id.
    pub report_id: Uuid,
    /// The product (`application.name`).
    pub product: String,
    /// The product version (`application.version`).
    pub product_version: String,
    /// The manifest it was validated against.
    pub manifest_version: String,
    /// Whom it counts for: the installation id, or the instance id of a report without one.
    pub installation: Uuid,
    /// `environment.os`, or `unknown`.
    pub os: String,
    /// `environment.architecture`, or `unknown`.
    pub arch: String,
    /// The day it was received, `YYYY-MM-DD` (UTC).
    pub day: String,
    /// The Monday of the week it was received, `YYYY-MM-DD`.
    pub week: String,
    /// When it was received, seconds since 1970 (UTC).
    pub received_at: u64,
    /// Every counter above zero, with its total.
    pub features: Vec<(String, u64)>,
    /// Every histogram with values, as its JSON (series merged).
    pub histograms: Vec<(String, String)>,
    /// The body as received.
    pub body: String,
}

/// What happened to one report handed to [`Storage::insert`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// Stored now.
    New,
    /// The same report (same id, same body) was stored before: nothing changes.
    Duplicate,
    /// Another body was stored under this id before: refused, nothing changes.
    Conflict,
}

/// A rollup period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// One UTC day.
    Day,
    /// One week, Monday to Sunday (UTC).
    Week,
}

impl Period {
    /// The column that holds the period's start.
    pub(crate) fn column(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
        }
    }
}

/// Installations counted in one period and one group (product version, OS, architecture),
/// for one feature or (`feature` = `None`) all of them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Count {
    /// The start of the period, `YYYY-MM-DD`.
    pub period: String,
    /// The product version.
    pub version: String,
    /// The OS.
    pub os: String,
    /// The architecture.
    pub arch: String,
    /// The counter, or `None` for the installations that sent any report.
    pub feature: Option<String>,
    /// Distinct installations.
    pub installations: u64,
}

/// One stored histogram of one report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredHistogram {
    /// The start of the period, `YYYY-MM-DD`.
    pub period: String,
    /// The product version.
    pub version: String,
    /// The metric.
    pub metric: String,
    /// The histogram's JSON.
    pub json: String,
}

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// SQLite said no.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// ClickHouse could not be reached or answered an error.
    #[error("clickhouse: {0}")]
    ClickHouse(String),
    /// A stored value could not be read back.
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

/// A report store. Every backend keeps reports, their rollup rows and the registered
/// manifests, stores a report once per id, and deletes an installation exactly.
pub trait Storage: Send + Sync + 'static {
    /// Stores `reports` (one batch, one transaction where the backend has them); says for
    /// each, in order, whether it was new, a duplicate or a conflicting replay. A report id
    /// twice in one batch counts as received twice.
    ///
    /// # Errors
    /// [`StorageError`] if the batch could not be stored; then none of it is.
    fn insert(&self, reports: &[StoredReport]) -> Result<Vec<Inserted>, StorageError>;

    /// Deletes every report and rollup contribution of `installation`; returns how many
    /// reports were removed. Done when it returns: later reads never see them.
    ///
    /// # Errors
    /// [`StorageError`].
    fn delete_installation(&self, installation: Uuid) -> Result<u64, StorageError>;

    /// The number of stored reports of `product` (of `installation`, if given).
    ///
    /// # Errors
    /// [`StorageError`].
    fn count_reports(&self, product: &str, installation: Option<Uuid>)
    -> Result<u64, StorageError>;

    /// Distinct installations per period, version, OS and architecture: per feature (a
    /// counter above zero) and in all (`feature: None`), for periods starting on or after
    /// `since` (`YYYY-MM-DD`).
    ///
    /// # Errors
    /// [`StorageError`].
    fn installations(
        &self,
        product: &str,
        period: Period,
        since: &str,
    ) -> Result<Vec<Count>, StorageError>;

    /// Every stored histogram of `product` in periods starting on or after `since`, one per
    /// report and metric.
    ///
    /// # Errors
    /// [`StorageError`].
    fn histograms(
        &self,
        product: &str,
        period: Period,
        since: &str,
    ) -> Result<Vec<StoredHistogram>, StorageError>;

    /// How many batches may be written at once (default 1). SQLite has one writer; ClickHouse
    /// takes inserts in parallel, and most of an insert's time is spent waiting on it.
    fn writers(&self) -> usize {
        1
    }

    /// How long a batch waits for more reports after its first one (default none). A
    /// backend that wants few, large inserts (ClickHouse makes a part of each) sets one; it
    /// is added to every report's answer time.
    fn linger(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    /// Keeps a manifest registration (registering the same one again changes nothing).
    ///
    /// # Errors
    /// [`StorageError`].
    fn put_manifest(&self, registration: &Registration) -> Result<(), StorageError>;

    /// Every manifest registration kept, oldest first.
    ///
    /// # Errors
    /// [`StorageError`].
    fn manifests(&self) -> Result<Vec<Registration>, StorageError>;
}

/// What a report whose id was stored before with `stored_body` is, given its `body`: the
/// same JSON (whatever its spacing or key order) is a duplicate, other JSON a conflict.
pub(crate) fn replay(stored_body: &str, body: &str) -> Inserted {
    let same = stored_body == body
        || matches!(
            (
                serde_json::from_str::<serde_json::Value>(stored_body),
                serde_json::from_str::<serde_json::Value>(body),
            ),
            (Ok(a), Ok(b)) if a == b
        );
    if same {
        Inserted::Duplicate
    } else {
        Inserted::Conflict
    }
}

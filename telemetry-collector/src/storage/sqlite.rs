//! The embedded default store: one SQLite file, made on first use, needing no set-up.
//!
//! Reports are keyed by their id (the primary key is the deduplication); the rollup rows
//! (one per counter above zero and per histogram of each report) carry the installation, so
//! a deletion removes them exactly. Writes come in batches, one transaction each, in WAL
//! mode: that is what lets one machine take thousands of reports a second.

use super::{
    Count, Inserted, Period, Storage, StorageError, StoredHistogram, StoredReport, replay,
};
use crate::manifest_registry::Registration;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::Mutex;
use uuid::Uuid;

/// A SQLite store.
pub struct SqliteStorage {
    connection: Mutex<Connection>,
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS reports (
    report_id TEXT PRIMARY KEY,
    product TEXT NOT NULL,
    product_version TEXT NOT NULL,
    manifest_version TEXT NOT NULL,
    installation TEXT NOT NULL,
    os TEXT NOT NULL,
    arch TEXT NOT NULL,
    day TEXT NOT NULL,
    week TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reports_installation ON reports (installation);
CREATE INDEX IF NOT EXISTS reports_product_day ON reports (product, day);
CREATE TABLE IF NOT EXISTS features (
    report_id TEXT NOT NULL,
    product TEXT NOT NULL,
    installation TEXT NOT NULL,
    day TEXT NOT NULL,
    week TEXT NOT NULL,
    version TEXT NOT NULL,
    os TEXT NOT NULL,
    arch TEXT NOT NULL,
    metric TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (report_id, metric)
);
CREATE INDEX IF NOT EXISTS features_installation ON features (installation);
CREATE INDEX IF NOT EXISTS features_product_day ON features (product, day);
CREATE TABLE IF NOT EXISTS histograms (
    report_id TEXT NOT NULL,
    product TEXT NOT NULL,
    installation TEXT NOT NULL,
    day TEXT NOT NULL,
    week TEXT NOT NULL,
    version TEXT NOT NULL,
    metric TEXT NOT NULL,
    json TEXT NOT NULL,
    PRIMARY KEY (report_id, metric)
);
CREATE INDEX IF NOT EXISTS histograms_installation ON histograms (installation);
CREATE TABLE IF NOT EXISTS manifests (
    product TEXT NOT NULL,
    product_version TEXT NOT NULL,
    manifest_version TEXT NOT NULL,
    json TEXT NOT NULL,
    registered_at INTEGER NOT NULL,
    PRIMARY KEY (product, product_version)
);
";

impl SqliteStorage {
    /// Opens (or creates) the database file at `path`, and its tables.
    ///
    /// # Errors
    /// [`StorageError::Sqlite`] if the file cannot be opened or written.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        }
        Self::with(Connection::open(path)?)
    }

    /// A database in memory, gone when dropped (tests).
    ///
    /// # Errors
    /// [`StorageError::Sqlite`].
    pub fn in_memory() -> Result<Self, StorageError> {
        Self::with(Connection::open_in_memory()?)
    }

    fn with(connection: Connection) -> Result<Self, StorageError> {
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.execute_batch(SCHEMA)?;
        Ok(SqliteStorage {
            connection: Mutex::new(connection),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Storage for SqliteStorage {
    fn insert(&self, reports: &[StoredReport]) -> Result<Vec<Inserted>, StorageError> {
        let mut connection = self.lock();
        let tx = connection.transaction()?;
        let mut out = Vec::with_capacity(reports.len());
        {
            let mut report = tx.prepare_cached(
                "INSERT INTO reports (report_id, product, product_version, manifest_version, installation, os, arch, day, week, received_at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (report_id) DO NOTHING",
            )?;
            let mut stored = tx.prepare_cached("SELECT body FROM reports WHERE report_id = ?1")?;
            let mut feature = tx.prepare_cached(
                "INSERT INTO features (report_id, product, installation, day, week, version, os, arch, metric, value)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            let mut histogram = tx.prepare_cached(
                "INSERT INTO histograms (report_id, product, installation, day, week, version, metric, json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for r in reports {
                let id = r.report_id.to_string();
                let installation = r.installation.to_string();
                let changed = report.execute(params![
                    id,
                    r.product,
                    r.product_version,
                    r.manifest_version,
                    installation,
                    r.os,
                    r.arch,
                    r.day,
                    r.week,
                    r.received_at as i64,
                    r.body
                ])?;
                if changed == 0 {
                    let body: Option<String> =
                        stored.query_row(params![id], |row| row.get(0)).optional()?;
                    out.push(replay(body.as_deref().unwrap_or_default(), &r.body));
                    continue;
                }
                for (metric, value) in &r.features {
                    feature.execute(params![
                        id,
                        r.product,
                        installation,
                        r.day,
                        r.week,
                        r.product_version,
                        r.os,
                        r.arch,
                        metric,
                        (*value).min(i64::MAX as u64) as i64
                    ])?;
                }
                for (metric, json) in &r.histograms {
                    histogram.execute(params![
                        id,
                        r.product,
                        installation,
                        r.day,
                        r.week,
                        r.product_version,
                        metric,
                        json
                    ])?;
                }
                out.push(Inserted::New);
            }
        }
        tx.commit()?;
        Ok(out)
    }

    fn delete_installation(&self, installation: Uuid) -> Result<u64, StorageError> {
        let mut connection = self.lock();
        let tx = connection.transaction()?;
        let id = installation.to_string();
        let removed = tx.execute("DELETE FROM reports WHERE installation = ?1", params![id])?;
        tx.execute("DELETE FROM features WHERE installation = ?1", params![id])?;
        tx.execute(
            "DELETE FROM histograms WHERE installation = ?1",
            params![id],
        )?;
        tx.commit()?;
        Ok(removed as u64)
    }

    fn count_reports(
        &self,
        product: &str,
        installation: Option<Uuid>,
    ) -> Result<u64, StorageError> {
        let connection = self.lock();
        let n: i64 = match installation {
            Some(id) => connection.query_row(
                "SELECT count(*) FROM reports WHERE product = ?1 AND installation = ?2",
                params![product, id.to_string()],
                |row| row.get(0),
            )?,
            None => connection.query_row(
                "SELECT count(*) FROM reports WHERE product = ?1",
                params![product],
                |row| row.get(0),
            )?,
        };
        Ok(n as u64)
    }

    fn installations(
        &self,
        product: &str,
        period: Period,
        since: &str,
    ) -> Result<Vec<Count>, StorageError> {
        let connection = self.lock();
        let col = period.column();
        let mut out = Vec::new();
        let mut all = connection.prepare(&format!(
            "SELECT {col}, product_version, os, arch, count(DISTINCT installation) FROM reports
             WHERE product = ?1 AND {col} >= ?2 GROUP BY 1, 2, 3, 4"
        ))?;
        let rows = all.query_map(params![product, since], |row| {
            Ok(Count {
                period: row.get(0)?,
                version: row.get(1)?,
                os: row.get(2)?,
                arch: row.get(3)?,
                feature: None,
                installations: row.get::<_, i64>(4)? as u64,
            })
        })?;
        for row in rows {
            out.push(row?);
        }
        let mut features = connection.prepare(&format!(
            "SELECT {col}, version, os, arch, metric, count(DISTINCT installation) FROM features
             WHERE product = ?1 AND {col} >= ?2 GROUP BY 1, 2, 3, 4, 5"
        ))?;
        let rows = features.query_map(params![product, since], |row| {
            Ok(Count {
                period: row.get(0)?,
                version: row.get(1)?,
                os: row.get(2)?,
                arch: row.get(3)?,
                feature: Some(row.get(4)?),
                installations: row.get::<_, i64>(5)? as u64,
            })
        })?;
        for row in rows {
            out.push(row?);
        }
        out.sort();
        Ok(out)
    }

    fn histograms(
        &self,
        product: &str,
        period: Period,
        since: &str,
    ) -> Result<Vec<StoredHistogram>, StorageError> {
        let connection = self.lock();
        let col = period.column();
        let mut statement = connection.prepare(&format!(
            "SELECT {col}, version, metric, json FROM histograms WHERE product = ?1 AND {col} >= ?2
             ORDER BY 1, 2, 3, report_id"
        ))?;
        let rows = statement.query_map(params![product, since], |row| {
            Ok(StoredHistogram {
                period: row.get(0)?,
                version: row.get(1)?,
                metric: row.get(2)?,
                json: row.get(3)?,
            })
        })?;
        rows.map(|r| r.map_err(StorageError::from)).collect()
    }

    fn put_manifest(&self, registration: &Registration) -> Result<(), StorageError> {
        let json = serde_json::to_string(&registration.manifest)
            .map_err(|e| StorageError::Corrupt(e.to_string()))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.lock().execute(
            "INSERT INTO manifests (product, product_version, manifest_version, json, registered_at)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (product, product_version) DO NOTHING",
            params![
                registration.product,
                registration.product_version,
                registration.manifest.version,
                json,
                now as i64
            ],
        )?;
        Ok(())
    }

    fn manifests(&self) -> Result<Vec<Registration>, StorageError> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT product, product_version, json FROM manifests ORDER BY registered_at, rowid",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (product, product_version, json) = row?;
            let manifest =
                serde_json::from_str(&json).map_err(|e| StorageError::Corrupt(e.to_string()))?;
            out.push(Registration {
                product,
                product_version,
                manifest,
            });
        }
        Ok(out)
    }
}

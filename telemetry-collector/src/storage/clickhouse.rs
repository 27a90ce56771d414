//! ClickHouse through its HTTP interface, for several stateless collectors writing to one
//! database. Plain SQL, MergeTree tables and `JSONEachRow`, which ClickHouse has had since
//! its early releases (18.16 included).
//!
//! One row per report: its rollup contributions (the counters above zero, the histograms) are
//! array columns of the same row, read with `ARRAY JOIN`, so a batch is one insert (one part)
//! and a deletion one mutation. Batches wait up to [`LINGER`] for more reports: ClickHouse
//! wants few, large inserts.
//!
//! # Deduplication with several collectors
//! Each batch first asks which of its report ids are stored, and stores only the others, so
//! one collector never stores a report twice. Two collectors that receive the same report in
//! the same instant can both store it; then:
//! - the `reports` table is a `ReplacingMergeTree` ordered by report id, so background merges
//!   fold the copies into one;
//! - every read is exact before that: report counts are of distinct report ids, the share of
//!   installations counts distinct installations (a copy adds none), and histograms are read
//!   once per report id and metric.
//!
//! Batches are written by two threads at once. Two of them holding the same report id
//! in the same instant are the case of two collectors above: both may store it, and reads stay
//! exact.
//!
//! # Deletion
//! `ALTER TABLE ... DELETE` on the three tables, then a wait until ClickHouse says the
//! mutations are done, so a deletion that returned is complete.

use super::{
    Count, Inserted, Period, Storage, StorageError, StoredHistogram, StoredReport, replay,
};
use crate::manifest_registry::Registration;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A ClickHouse store.
pub struct ClickHouseStorage {
    url: String,
    database: String,
    agent: ureq::Agent,
}

/// Batches written at once: ClickHouse makes a part per insert, and the time of one is mostly
/// spent waiting for it, so a few in flight keep it busy.
const WRITERS: usize = 2;

/// How long a batch waits for more reports after its first.
pub const LINGER: Duration = Duration::from_millis(20);

/// How long a deletion waits for ClickHouse to finish its mutations.
const MUTATION_WAIT: Duration = Duration::from_secs(60);

/// `text` as a ClickHouse string literal.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A number that ClickHouse's JSON formats may quote (64-bit integers are strings there).
fn number(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| value.as_str()?.parse().ok())
}

fn text(row: &Value, key: &str) -> Result<String, StorageError> {
    row.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| StorageError::Corrupt(format!("no text `{key}` in a ClickHouse row")))
}

/// One row of installation counts (`period`, `version`, `os`, `arch`, `n`), of `feature` if
/// the count is of one.
fn count(row: &Value, feature: Option<String>) -> Result<Count, StorageError> {
    Ok(Count {
        period: text(row, "period")?,
        version: text(row, "version")?,
        os: text(row, "os")?,
        arch: text(row, "arch")?,
        feature,
        installations: row.get("n").and_then(number).unwrap_or(0),
    })
}

impl ClickHouseStorage {
    /// Connects to the HTTP interface at `url` (e.g. `http://127.0.0.1:8123`) and makes the
    /// database `database` and its tables if they are missing.
    ///
    /// # Errors
    /// [`StorageError::ClickHouse`] if ClickHouse cannot be reached or refuses.
    pub fn open(url: &str, database: &str) -> Result<Self, StorageError> {
        if database.is_empty()
            || !database
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(StorageError::ClickHouse(
                "a database name is ASCII letters, digits and `_`".to_owned(),
            ));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build()
            .into();
        let storage = ClickHouseStorage {
            url: url.trim_end_matches('/').to_owned(),
            database: database.to_owned(),
            agent,
        };
        storage.execute(&format!("CREATE DATABASE IF NOT EXISTS {database}"), "")?;
        let db = database;
        for ddl in [
            format!(
                "CREATE TABLE IF NOT EXISTS {db}.reports (report_id String, product String, product_version String,
                 manifest_version String, installation String, os String, arch String, day String, week String,
                 received_at UInt64, body String, feature_metrics Array(String), feature_values Array(UInt64),
                 histogram_metrics Array(String), histogram_jsons Array(String))
                 ENGINE = ReplacingMergeTree ORDER BY report_id SETTINGS index_granularity = 256"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {db}.manifests (product String, product_version String,
                 manifest_version String, json String, registered_at UInt64)
                 ENGINE = ReplacingMergeTree ORDER BY (product, product_version)"
            ),
        ] {
            storage.execute(&ddl, "")?;
        }
        Ok(storage)
    }

    /// Runs `query` with `body` (the rows of an `INSERT ... FORMAT JSONEachRow`, or empty);
    /// returns the answer's text.
    fn execute(&self, query: &str, body: &str) -> Result<String, StorageError> {
        let sent = if body.is_empty() {
            self.agent.post(&self.url).send(query.as_bytes())
        } else {
            self.agent
                .post(&self.url)
                .query("query", query)
                .send(body.as_bytes())
        };
        let mut response = sent.map_err(|e| StorageError::ClickHouse(e.to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| StorageError::ClickHouse(e.to_string()))?;
        if status != 200 {
            let cut: String = text.chars().take(500).collect();
            return Err(StorageError::ClickHouse(format!(
                "HTTP {status}: {}",
                cut.trim()
            )));
        }
        Ok(text)
    }

    /// The rows of a `SELECT` (without its `FORMAT`).
    fn select(&self, query: &str) -> Result<Vec<Value>, StorageError> {
        let text = self.execute(&format!("{query} FORMAT JSONEachRow"), "")?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(|e| StorageError::Corrupt(e.to_string())))
            .collect()
    }

    fn insert_rows(&self, table: &str, rows: &[Value]) -> Result<(), StorageError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut body = String::new();
        for row in rows {
            body.push_str(&row.to_string());
            body.push('\n');
        }
        self.execute(
            &format!("INSERT INTO {}.{table} FORMAT JSONEachRow", self.database),
            &body,
        )
        .map(drop)
    }

    fn wait_for_mutations(&self) -> Result<(), StorageError> {
        let deadline = Instant::now() + MUTATION_WAIT;
        loop {
            let rows = self.select(&format!(
                "SELECT count() AS n FROM system.mutations WHERE database = {} AND is_done = 0",
                quote(&self.database)
            ))?;
            if rows.first().and_then(|r| r.get("n")).and_then(number) == Some(0) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(StorageError::ClickHouse(
                    "the deletion's mutations are not done after 60 s".to_owned(),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Storage for ClickHouseStorage {
    fn insert(&self, reports: &[StoredReport]) -> Result<Vec<Inserted>, StorageError> {
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = reports
            .iter()
            .map(|r| quote(&r.report_id.to_string()))
            .collect();
        // The ids first (PREWHERE: only the id column is read, and with a small index
        // granularity only the few granules that can hold them), the bodies only of the
        // granules that do.
        let mut stored: HashMap<String, String> = HashMap::new();
        for row in self.select(&format!(
            "SELECT report_id, any(body) AS body FROM {}.reports PREWHERE report_id IN ({}) GROUP BY report_id",
            self.database,
            ids.join(", ")
        ))? {
            stored.insert(text(&row, "report_id")?, text(&row, "body")?);
        }
        let mut out = Vec::with_capacity(reports.len());
        let mut rows = Vec::new();
        for r in reports {
            let id = r.report_id.to_string();
            if let Some(body) = stored.get(&id) {
                out.push(replay(body, &r.body));
                continue;
            }
            stored.insert(id.clone(), r.body.clone());
            let (feature_metrics, feature_values): (Vec<&str>, Vec<u64>) =
                r.features.iter().map(|(m, v)| (m.as_str(), *v)).unzip();
            let (histogram_metrics, histogram_jsons): (Vec<&str>, Vec<&str>) = r
                .histograms
                .iter()
                .map(|(m, j)| (m.as_str(), j.as_str()))
                .unzip();
            rows.push(json!({
                "report_id": id, "product": r.product, "product_version": r.product_version,
                "manifest_version": r.manifest_version, "installation": r.installation.to_string(),
                "os": r.os, "arch": r.arch, "day": r.day, "week": r.week,
                "received_at": r.received_at, "body": r.body,
                "feature_metrics": feature_metrics, "feature_values": feature_values,
                "histogram_metrics": histogram_metrics, "histogram_jsons": histogram_jsons,
            }));
            out.push(Inserted::New);
        }
        // One insert: a report and its rollup contributions become visible together.
        self.insert_rows("reports", &rows)?;
        Ok(out)
    }

    fn writers(&self) -> usize {
        WRITERS
    }

    fn linger(&self) -> Duration {
        LINGER
    }

    fn delete_installation(&self, installation: Uuid) -> Result<u64, StorageError> {
        let id = quote(&installation.to_string());
        let before = self
            .select(&format!(
                "SELECT uniqExact(report_id) AS n FROM {}.reports WHERE installation = {id}",
                self.database
            ))?
            .first()
            .and_then(|r| r.get("n"))
            .and_then(number)
            .unwrap_or(0);
        self.execute(
            &format!(
                "ALTER TABLE {}.reports DELETE WHERE installation = {id}",
                self.database
            ),
            "",
        )?;
        self.wait_for_mutations()?;
        Ok(before)
    }

    fn count_reports(
        &self,
        product: &str,
        installation: Option<Uuid>,
    ) -> Result<u64, StorageError> {
        let mut query = format!(
            "SELECT uniqExact(report_id) AS n FROM {}.reports WHERE product = {}",
            self.database,
            quote(product)
        );
        if let Some(id) = installation {
            query.push_str(&format!(" AND installation = {}", quote(&id.to_string())));
        }
        Ok(self
            .select(&query)?
            .first()
            .and_then(|r| r.get("n"))
            .and_then(number)
            .unwrap_or(0))
    }

    fn installations(
        &self,
        product: &str,
        period: Period,
        since: &str,
    ) -> Result<Vec<Count>, StorageError> {
        let col = period.column();
        let (db, product, since) = (&self.database, quote(product), quote(since));
        let mut out = Vec::new();
        for row in self.select(&format!(
            "SELECT {col} AS period, product_version AS version, os, arch, uniqExact(installation) AS n
             FROM {db}.reports WHERE product = {product} AND {col} >= {since} GROUP BY period, version, os, arch"
        ))? {
            out.push(count(&row, None)?);
        }
        for row in self.select(&format!(
            "SELECT {col} AS period, product_version AS version, os, arch, metric,
             uniqExact(installation) AS n FROM {db}.reports ARRAY JOIN feature_metrics AS metric
             WHERE product = {product} AND {col} >= {since} GROUP BY period, version, os, arch, metric"
        ))? {
            let feature = text(&row, "metric")?;
            out.push(count(&row, Some(feature))?);
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
        let col = period.column();
        let rows = self.select(&format!(
            "SELECT {col} AS period, product_version AS version, metric, any(histogram_json) AS json
             FROM {}.reports ARRAY JOIN histogram_metrics AS metric, histogram_jsons AS histogram_json
             WHERE product = {} AND {col} >= {} GROUP BY report_id, period, version, metric
             ORDER BY period, version, metric, report_id",
            self.database,
            quote(product),
            quote(since)
        ))?;
        rows.iter()
            .map(|row| {
                Ok(StoredHistogram {
                    period: text(row, "period")?,
                    version: text(row, "version")?,
                    metric: text(row, "metric")?,
                    json: text(row, "json")?,
                })
            })
            .collect()
    }

    fn put_manifest(&self, registration: &Registration) -> Result<(), StorageError> {
        let existing = self.select(&format!(
            "SELECT count() AS n FROM {}.manifests WHERE product = {} AND product_version = {}",
            self.database,
            quote(&registration.product),
            quote(&registration.product_version)
        ))?;
        if existing
            .first()
            .and_then(|r| r.get("n"))
            .and_then(number)
            .unwrap_or(0)
            > 0
        {
            return Ok(());
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let manifest = serde_json::to_string(&registration.manifest)
            .map_err(|e| StorageError::Corrupt(e.to_string()))?;
        self.insert_rows(
            "manifests",
            &[json!({
                "product": registration.product,
                "product_version": registration.product_version,
                "manifest_version": registration.manifest.version,
                "json": manifest,
                "registered_at": now,
            })],
        )
    }

    fn manifests(&self) -> Result<Vec<Registration>, StorageError> {
        let rows = self.select(&format!(
            "SELECT product, product_version, any(json) AS json, min(registered_at) AS at FROM {}.manifests
             GROUP BY product, product_version ORDER BY at, product, product_version",
            self.database
        ))?;
        rows.iter()
            .map(|row| {
                Ok(Registration {
                    product: text(row, "product")?,
                    product_version: text(row, "product_version")?,
                    manifest: serde_json::from_str(&text(row, "json")?)
                        .map_err(|e| StorageError::Corrupt(e.to_string()))?,
                })
            })
            .collect()
    }
}

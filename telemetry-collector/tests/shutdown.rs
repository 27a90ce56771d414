//! Graceful shutdown: reports accepted before the stop are all answered and stored, even
//! with a slow store and the stop arriving while they wait for it.

mod common;

use common::{Fake, Running};
use std::sync::Arc;
use std::time::Duration;
use telemetry_collector::manifest_registry::Registration;
use telemetry_collector::storage::sqlite::SqliteStorage;
use telemetry_collector::storage::{
    Count, Inserted, Period, Storage, StorageError, StoredHistogram, StoredReport,
};
use uuid::Uuid;

/// SQLite that takes 100 ms per batch, and counts the batches begun.
struct Slow(SqliteStorage, std::sync::atomic::AtomicUsize);

impl Storage for Slow {
    fn insert(&self, reports: &[StoredReport]) -> Result<Vec<Inserted>, StorageError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
        self.0.insert(reports)
    }
    fn delete_installation(&self, installation: Uuid) -> Result<u64, StorageError> {
        self.0.delete_installation(installation)
    }
    fn count_reports(
        &self,
        product: &str,
        installation: Option<Uuid>,
    ) -> Result<u64, StorageError> {
        self.0.count_reports(product, installation)
    }
    fn installations(
        &self,
        product: &str,
        period: Period,
        since: &str,
    ) -> Result<Vec<Count>, StorageError> {
        self.0.installations(product, period, since)
    }
    fn histograms(
        &self,
        product: &str,
        period: Period,
        since: &str,
    ) -> Result<Vec<StoredHistogram>, StorageError> {
        self.0.histograms(product, period, since)
    }
    fn put_manifest(&self, registration: &Registration) -> Result<(), StorageError> {
        self.0.put_manifest(registration)
    }
    fn manifests(&self) -> Result<Vec<Registration>, StorageError> {
        self.0.manifests()
    }
}

#[test]
fn a_stop_finishes_the_accepted_reports_before_the_collector_ends() {
    let storage = Arc::new(Slow(
        SqliteStorage::in_memory().unwrap(),
        Default::default(),
    ));
    let mut config = common::config();
    config.batch = 4;
    let running = Running::start(config, storage.clone());
    let base = running.url.clone();
    common::register(&base, &["1.0.0"]);
    let reports: Vec<serde_json::Value> =
        (0..40).map(|_| common::report(&Fake::default())).collect();
    let senders: Vec<_> = reports
        .into_iter()
        .map(|report| {
            let base = base.clone();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                agent
                    .post(&format!("{base}/v1/report"))
                    .header("content-type", "application/json")
                    .send(report.to_string().as_bytes())
                    .ok()
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    // The stop comes once every report is in, while most of the ten batches (1 s of
    // writing) still wait.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while storage.1.load(std::sync::atomic::Ordering::SeqCst) == 0
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    let begun = storage.1.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        begun < 8,
        "the stop must come while batches wait ({begun} begun)"
    );
    running.stop();
    let statuses: Vec<Option<u16>> = senders.into_iter().map(|s| s.join().unwrap()).collect();
    let accepted = statuses.iter().filter(|s| **s == Some(200)).count();
    assert!(
        statuses.iter().all(|s| matches!(s, None | Some(200))),
        "a report that reached the collector is answered 200, never cut off: {statuses:?}"
    );
    assert!(
        accepted >= 10,
        "most reports were sent before the stop: {statuses:?}"
    );
    assert_eq!(
        storage.count_reports(common::PRODUCT, None).unwrap(),
        accepted as u64,
        "and stored"
    );
}

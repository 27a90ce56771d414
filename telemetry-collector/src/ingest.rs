//! The way from a validated report to storage: a bounded queue in front of the storage
//! threads (one for SQLite), each of which writes whatever is waiting as one batch (one
//! transaction), then answers each report of it. Under load the batches grow, which is what keeps the per-report cost low;
//! when the queue is full the report is answered 503 with `Retry-After` instead of waiting.

use crate::dates;
use crate::storage::{Inserted, Storage, StorageError, StoredReport};
use crate::validate::ValidReport;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::oneshot;

/// What became of a report handed to [`Ingest::submit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Stored, or a duplicate of a stored report, or a conflicting replay.
    Stored(Inserted),
    /// The queue is full.
    Overloaded,
    /// Storage failed; the report is not stored.
    Failed(String),
}

struct Job {
    report: StoredReport,
    done: oneshot::Sender<Result<Inserted, String>>,
}

/// The queue and its storage threads ([`Storage::writers`]). Dropping every clone of it lets
/// the threads write what is queued and end ([`Ingest::finish`] waits for that).
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::SyncSender<Job>,
    threads: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
}

impl Ingest {
    /// Starts the storage threads over `storage`, with room for `queue` waiting reports and
    /// batches of at most `batch`.
    ///
    /// # Errors
    /// The operating system's error if no thread can be started.
    pub fn start(storage: Arc<dyn Storage>, queue: usize, batch: usize) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Job>(queue);
        let linger = storage.linger();
        // The writers take turns at the queue: each takes what is waiting (up to `batch`),
        // lets go of the queue, and writes it while the next one collects.
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let mut threads = Vec::new();
        for n in 0..storage.writers().max(1) {
            let (storage, rx) = (storage.clone(), rx.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("collector-storage-{n}"))
                    .spawn(move || {
                        let mut jobs = Vec::with_capacity(batch);
                        loop {
                            {
                                let rx = rx.lock().unwrap_or_else(|e| e.into_inner());
                                let Ok(first) = rx.recv() else {
                                    return;
                                };
                                jobs.push(first);
                                // What is waiting, then (for a backend that wants fewer,
                                // larger inserts) what arrives within its linger.
                                let until = Instant::now() + linger;
                                while jobs.len() < batch {
                                    let next = match until.checked_duration_since(Instant::now()) {
                                        Some(wait) if !wait.is_zero() => rx.recv_timeout(wait).ok(),
                                        _ => rx.try_recv().ok(),
                                    };
                                    match next {
                                        Some(job) => jobs.push(job),
                                        None => break,
                                    }
                                }
                            }
                            write(&*storage, &mut jobs);
                        }
                    })?,
            );
        }
        Ok(Ingest {
            tx,
            threads: Arc::new(std::sync::Mutex::new(threads)),
        })
    }

    /// Queues `report` (received now) and waits for its batch to be written.
    pub async fn submit(&self, report: ValidReport) -> Outcome {
        let (done, answer) = oneshot::channel();
        let job = Job {
            report: stored(report),
            done,
        };
        if self.tx.try_send(job).is_err() {
            return Outcome::Overloaded;
        }
        match answer.await {
            Ok(Ok(inserted)) => Outcome::Stored(inserted),
            Ok(Err(e)) => Outcome::Failed(e),
            Err(_) => Outcome::Failed("the storage thread stopped".to_owned()),
        }
    }

    /// Closes this handle and waits until the storage thread has written every queued report
    /// (once every other clone is dropped too).
    pub fn finish(self) {
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        drop(self.tx);
        for thread in threads {
            let _ = thread.join();
        }
    }
}

fn write(storage: &dyn Storage, jobs: &mut Vec<Job>) {
    let reports: Vec<StoredReport> = jobs.iter().map(|j| j.report.clone()).collect();
    let result: Result<Vec<Inserted>, StorageError> = storage.insert(&reports);
    crate::metrics::metrics()
        .batch_size
        .record(reports.len() as u64);
    match result {
        Ok(outcomes) => {
            for (job, outcome) in jobs.drain(..).zip(outcomes) {
                let _ = job.done.send(Ok(outcome));
            }
        }
        Err(e) => {
            log::error!(target: "telemetry_collector", "a batch of {} report(s) could not be stored: {e}", reports.len());
            for job in jobs.drain(..) {
                let _ = job.done.send(Err(e.to_string()));
            }
        }
    }
    jobs.clear();
}

/// The stored form of a validated report received now.
pub fn stored(report: ValidReport) -> StoredReport {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    stored_at(report, now)
}

/// The stored form of a validated report received at `received_at` (seconds since 1970).
pub fn stored_at(report: ValidReport, received_at: u64) -> StoredReport {
    let day = (received_at / 86_400) as i64;
    StoredReport {
        report_id: report.report_id,
        product: report.product,
        product_version: report.product_version,
        manifest_version: report.manifest_version,
        installation: report.installation,
        os: report.os,
        arch: report.arch,
        day: dates::format_day(day),
        week: dates::format_day(dates::week_of(day)),
        received_at,
        features: report.features,
        histograms: report
            .histograms
            .iter()
            .map(|(name, h)| (name.clone(), serde_json::to_string(h).unwrap_or_default()))
            .collect(),
        body: report.body,
    }
}

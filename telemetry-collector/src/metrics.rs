//! The collector's own metrics, declared with this workspace's macros and served at
//! `/metrics` in the Prometheus text format by telemetry-core's exporter.

use crate::validate::Reason;
use std::sync::OnceLock;
use telemetry_core::{Counter, Histogram, LabeledCounter};

/// The collector's metric handles.
pub struct Metrics {
    /// Reports stored.
    pub accepted: Counter,
    /// Reports received again (same id, same body): acknowledged, not stored again.
    pub duplicates: Counter,
    /// Reports refused, by reason.
    pub rejected: LabeledCounter<(Reason,)>,
    /// Time from a report's arrival to its answer, nanoseconds.
    pub ingest_duration: Histogram,
    /// Reports stored per storage batch.
    pub batch_size: Histogram,
    /// Installations deleted on request.
    pub deletions: Counter,
}

/// The handles, registered on first use.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| Metrics {
        accepted: telemetry_core::counter!(
            "collector.reports.accepted",
            description = "Reports validated and stored"
        )
        .expect("declared once"),
        duplicates: telemetry_core::counter!(
            "collector.reports.duplicates",
            description =
                "Reports received again with the same id and body: acknowledged, stored once"
        )
        .expect("declared once"),
        rejected: telemetry_core::counter!(
            "collector.reports.rejected",
            description = "Reports refused, by reason; nothing of them is stored",
            labels(reason: Reason)
        )
        .expect("declared once"),
        ingest_duration: telemetry_core::histogram!(
            "collector.ingest.duration",
            unit = Nanoseconds,
            description = "Time from a report's arrival to its answer"
        )
        .expect("declared once"),
        batch_size: telemetry_core::histogram!(
            "collector.storage.batch_size",
            description = "Reports written per storage batch"
        )
        .expect("declared once"),
        deletions: telemetry_core::counter!(
            "collector.installations.deleted",
            description = "Installations whose data was deleted on request"
        )
        .expect("declared once"),
    })
}

/// Counts a refusal.
pub fn rejected(reason: Reason) {
    metrics().rejected.increment((reason,));
}

/// `/metrics`: every metric of this process in the Prometheus text exposition format.
pub fn render() -> String {
    let _ = metrics();
    telemetry_core::export::prometheus::render_prometheus(&telemetry_core::snapshot())
}

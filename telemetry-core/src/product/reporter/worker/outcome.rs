//! What the worker keeps of a delivery: the version a collector announces, and the last report
//! in `telemetry.json`.

use super::Worker;
use crate::product::report::Report;
use crate::product::reporter::transport::parse_version_notice;
use crate::state::files;
use std::time::SystemTime;

impl Worker {
    pub(super) fn note_version(&mut self, body: &[u8]) {
        let Some(version) = parse_version_notice(body) else {
            return;
        };
        if self.announced_version.as_deref() != Some(version.as_str()) {
            log::info!(target: "telemetry", "{} {version} is available (running {})", self.decider.maker.application.name(), self.decider.maker.application.version());
            self.announced_version = Some(version.clone());
        }
        self.gate().lock().latest_version = Some(version);
    }

    /// Writes the last report to `telemetry.json` with whether and where it was sent
    /// (FerretDB keeps its last report this way).
    pub(super) fn write_last(&self, report: &Report, sent_to: Option<&str>, outcome: &str) {
        let Some(dir) = &self.decider.state_dir else {
            return;
        };
        let record = serde_json::json!({
            "sent": sent_to.is_some(),
            "endpoint": sent_to,
            "outcome": outcome,
            "written_at": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            "report": report,
        });
        let bytes = serde_json::to_vec_pretty(&record).unwrap_or_default();
        if let Err(e) = dir.write(files::LAST_REPORT, &bytes) {
            log::debug!(target: "telemetry", "cannot write {}: {e}", crate::state::named(files::LAST_REPORT));
        }
    }
}

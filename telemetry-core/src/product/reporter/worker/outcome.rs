//! What the worker keeps of a delivery: the version a collector announces, and the last report
//! in `telemetry.json`.

use super::Worker;
use crate::product::report::Report;
use crate::product::reporter::version_notice::{is_newer, parse_version_notice};
use crate::state::files;
use std::time::SystemTime;

impl Worker {
    pub(super) fn note_version(&mut self, body: &[u8]) {
        let Some(version) = parse_version_notice(body) else {
            return;
        };
        let application = &self.decider.maker.application;
        if self.announced_version.as_deref() != Some(version.as_str()) {
            self.announced_version = Some(version.clone());
            match is_newer(&version, application.version()) {
                Some(true) => {
                    crate::diagnostics::diag!(
                        info,
                        "{} {version} is available (running {})",
                        application.name(),
                        application.version()
                    );
                }
                Some(false) => {
                    crate::diagnostics::diag!(
                        debug,
                        "the collector's latest version {version} is not newer than the running {}",
                        application.version()
                    );
                }
                None => {
                    crate::diagnostics::diag!(
                        debug,
                        "the collector's latest version {version} cannot be compared with the running {}; it is not announced",
                        application.version()
                    );
                }
            }
        }
        self.gate().lock().latest_version = Some(version);
    }

    /// Writes the last report to `telemetry.json` with whether and where it was sent
    /// (FerretDB keeps its last report this way).
    /// `payload`: the body made for it, kept beside the report when it is the product's own
    /// payload (otherwise it is the report itself).
    pub(super) fn write_last(
        &self,
        report: &Report,
        payload: Option<&[u8]>,
        sent_to: Option<&str>,
        outcome: &str,
    ) {
        if !self.keep_last_report {
            return;
        }
        let Some(dir) = &self.decider.state_dir else {
            return;
        };
        let mut record = serde_json::json!({
            "sent": sent_to.is_some(),
            "endpoint": sent_to,
            "outcome": outcome,
            "written_at": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            "report": report,
        });
        if self.decider.maker.has_shape()
            && let Some(payload) = payload.and_then(|p| serde_json::from_slice(p).ok())
        {
            record["payload"] = payload;
        }
        let bytes = serde_json::to_vec_pretty(&record).unwrap_or_default();
        if let Err(e) = dir.write(files::LAST_REPORT, &bytes) {
            crate::diagnostics::diag!(
                debug,
                "cannot write {}: {e}",
                crate::state::named(files::LAST_REPORT)
            );
        }
    }
}

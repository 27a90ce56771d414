//! The worker and the spool: claiming, putting back and draining spooled reports.

use super::Worker;
use crate::product::consent::Category;
use crate::product::reporter::transport::{Failure, HttpConfig};
use crate::state::files;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

impl Worker {
    /// Removes a claimed report (delivered, refused, or withdrawn).
    pub(super) fn forget(&self, claimed: &Path) {
        if let Some(spool) = self.spool() {
            let _guard = self.gate().lock_spool();
            spool.remove(claimed);
        }
    }

    /// Puts a claimed report back in line if consent has not changed since `generation`;
    /// otherwise removes it, so a report made under an old decision never survives an opt-out.
    /// `fresh`: a new report that now counts against the caps. True if it was kept.
    pub(super) fn put_back(&self, claimed: &Path, generation: u64, fresh: bool) -> bool {
        let Some(spool) = self.spool() else {
            return false;
        };
        let _guard = self.gate().lock_spool();
        if self.gate().generation() != generation {
            spool.remove(claimed);
            return false;
        }
        if !fresh {
            return spool.unclaim(claimed).is_ok();
        }
        match spool.release(claimed) {
            Ok(dropped) => {
                if dropped > 0 {
                    self.gate().lock().status.dropped += dropped as u64;
                    crate::diagnostics::diag!(
                        warn,
                        "the telemetry spool ({}) is full: {dropped} oldest report(s) dropped",
                        crate::state::named(files::SPOOL)
                    );
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Sends spooled reports, oldest first, each claimed first so that a process sharing the
    /// spool never sends the same one. Each asks the gate like any other request. Stops at the
    /// first failure, but a report the collector refuses (4xx) or a file that is not a report
    /// is taken out of line instead of blocking the others.
    pub(super) fn drain_spool(&mut self, http: &HttpConfig, deadline: Option<Instant>) {
        let Some(spool) = self.spool().cloned() else {
            return;
        };
        let generation = self.gate().generation();
        // Claims of processes that ended since this one started (another instance on the same
        // state directory that crashed) come back now, not only at the next start.
        let recovered = {
            let _guard = self.gate().lock_spool();
            spool.recover()
        };
        recovered.log_reclaimed();
        if recovered.dropped > 0 {
            self.gate().lock().status.dropped += recovered.dropped as u64;
        }
        for (path, _) in spool.list().unwrap_or_default() {
            let claimed = {
                let _guard = self.gate().lock_spool();
                if self.gate().generation() != generation {
                    return;
                }
                spool.claim(&path)
            };
            let Some(claimed) = claimed else {
                continue; // another process is sending it
            };
            let payload = match spool.read(&claimed) {
                Ok(payload) if self.decider.maker.is_body(&payload) => payload,
                _ => {
                    spool.set_aside(&claimed);
                    self.gate().lock().status.dropped += 1;
                    crate::diagnostics::diag!(
                        warn,
                        "{} is not a telemetry report; it is set aside (.corrupt) and not sent",
                        crate::state::named(format!(
                            "{}/{}",
                            files::SPOOL,
                            crate::state::file_name(&path)
                        ))
                    );
                    continue;
                }
            };
            let once = HttpConfig {
                retries: 0,
                ..http.clone()
            };
            match self.deliver(
                Category::UsageStatistics,
                generation,
                &once,
                &payload,
                deadline,
            ) {
                Ok(()) => self.forget(&claimed),
                Err(Failure::Withdrawn) => {
                    self.forget(&claimed);
                    return;
                }
                Err(e) if e.is_refusal() => {
                    self.forget(&claimed);
                    self.gate().lock().status.dropped += 1;
                    crate::diagnostics::diag!(
                        warn,
                        "the collector refused a spooled telemetry report ({e}); it is dropped"
                    );
                }
                Err(_) => {
                    self.put_back(&claimed, generation, false);
                    return;
                }
            }
        }
    }

    /// Writes the report about to be sent into the spool, claimed. `None` if there is no
    /// spool, it cannot be written (logged once until it works), or consent changed.
    pub(super) fn keep_claimed(&mut self, payload: &[u8], generation: u64) -> Option<PathBuf> {
        let spool = self.spool().cloned()?;
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let written = {
            let _guard = self.gate().lock_spool();
            if self.gate().generation() != generation {
                return None;
            }
            spool.write_claimed(payload, millis)
        };
        match written {
            Ok(Some(claimed)) => {
                if std::mem::take(&mut self.spool_failing) {
                    crate::diagnostics::diag!(
                        info,
                        "the telemetry spool ({}) can be written again",
                        crate::state::named(files::SPOOL)
                    );
                }
                Some(claimed)
            }
            Ok(None) => None,
            Err(e) => {
                if !std::mem::replace(&mut self.spool_failing, true) {
                    crate::diagnostics::diag!(
                        warn,
                        "cannot keep unsent telemetry reports in {} ({e}): reports that cannot be delivered are not kept",
                        crate::state::named(files::SPOOL)
                    );
                }
                None
            }
        }
    }
}

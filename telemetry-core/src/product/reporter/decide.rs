//! Changing consent while the reporter runs: one path for a runtime decision
//! ([`super::Reporter::set_consent`]), a decision saved by another process (the end-user
//! `telemetry disable` command, a second instance on the same state directory) and the end of
//! the undecided delay.

use super::clock::Clock;
use super::gate::{Control, Gate};
use super::maker::ReportMaker;
use super::spool::Spool;
use crate::product::consent::{
    Category, Consent, ConsentBuilder, ConsentError, PersistedConsent, SourceKind,
};
use crate::state::{StateDir, files};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// What a consent change touches, shared by the reporter's handle and its thread.
pub(crate) struct Decider {
    pub(crate) gate: Arc<Gate>,
    pub(crate) maker: Arc<ReportMaker>,
    pub(crate) spool: Option<Arc<Spool>>,
    pub(crate) state_dir: Option<StateDir>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) send_undecided_period: bool,
    /// The product's consent sources: a saved "enable" applies only if they allow it.
    sources: ConsentBuilder,
    /// One decision at a time, from the change in memory to the saved file and the cleared
    /// spool, so the saved decision is always the one in force.
    serial: Mutex<()>,
    /// The fingerprint of the saved decision as last seen or written by this process.
    seen: Mutex<Option<String>>,
}

impl Decider {
    pub(crate) fn new(
        gate: Arc<Gate>,
        maker: Arc<ReportMaker>,
        spool: Option<Arc<Spool>>,
        state_dir: Option<StateDir>,
        clock: Arc<dyn Clock>,
        send_undecided_period: bool,
        sources: ConsentBuilder,
    ) -> Self {
        Decider {
            sources,
            gate,
            maker,
            spool,
            state_dir,
            clock,
            send_undecided_period,
            serial: Mutex::new(()),
            seen: Mutex::new(None),
        }
    }

    /// Puts `state` in force now, decided by `by`, and saves it if `save`.
    ///
    /// Disabling stops every request from starting, drops the waiting events and empties the
    /// spool before it returns. Enabling counts what is sent from now on (the opt-in date
    /// rule), unless this ends an undecided delay whose data the product sends and no opt-out
    /// came before. `Undecided` starts a new undecided delay.
    ///
    /// # Errors
    /// [`ConsentError::Conflict`] for enabling under `DO_NOT_TRACK` or a `donottrack`
    /// executable name (nothing changes); [`ConsentError::NotSaved`] when the decision is in
    /// force but could not be saved.
    pub(crate) fn apply(
        &self,
        state: Consent,
        by: SourceKind,
        decided_at: Option<String>,
        save: bool,
    ) -> Result<(), ConsentError> {
        let _serial = self.serial.lock().unwrap_or_else(|e| e.into_inner());
        self.apply_serially(state, by, decided_at, save, false)
    }

    /// Puts in force a decision another process saved in the state directory since this one
    /// last looked (the end-user `telemetry disable` command, a second instance): a saved
    /// "disabled" always, a saved "enabled" only if `sources` allow it (and then counting from
    /// now, even if this process was enabled already: the other process may have opted out
    /// and in again in between). A file that is there but cannot be read or parsed counts as
    /// "disabled", as it does at start. Read and applied under the same lock as
    /// [`apply`](Self::apply), and this process's own saves are recorded as seen, so its own
    /// decision is never mistaken for someone else's.
    pub(crate) fn adopt_saved(&self) {
        let Some(dir) = &self.state_dir else {
            return;
        };
        let _serial = self.serial.lock().unwrap_or_else(|e| e.into_inner());
        let fingerprint = saved_fingerprint(dir);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if fingerprint == *seen {
                return;
            }
            seen.clone_from(&fingerprint);
        }
        let saved = match dir.read(files::CONSENT) {
            Ok(None) => return,
            Ok(Some(text)) => serde_json::from_str::<PersistedConsent>(&text).ok(),
            Err(_) => None,
        };
        let (state, decided_at) = match saved {
            Some(saved) => (saved.state, Some(saved.set_at)),
            // Broken: off, as at start.
            None => (Consent::Disabled, None),
        };
        let current = self.gate.lock().consent.state;
        let adopt = match state {
            Consent::Disabled => current != Consent::Disabled,
            Consent::Enabled => self
                .sources
                .resolve_in(Some(dir))
                .is_ok_and(|d| d.state == Consent::Enabled),
            Consent::Undecided => false,
        };
        if adopt {
            crate::diagnostics::diag!(
                info,
                "telemetry is now {state}: a decision saved in the state directory by another process"
            );
            let _ = self.apply_serially(state, SourceKind::Persisted, decided_at, false, true);
        }
    }

    /// Records the saved decision's fingerprint as seen (at start, before consent is
    /// resolved, so a decision saved while the reporter starts is not missed).
    pub(crate) fn mark_seen(&self, fingerprint: Option<String>) {
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = fingerprint;
    }

    /// `fresh`: count from now even if sending was allowed already (an opt-in saved by
    /// another process).
    fn apply_serially(
        &self,
        state: Consent,
        by: SourceKind,
        decided_at: Option<String>,
        save: bool,
        fresh: bool,
    ) -> Result<(), ConsentError> {
        // Taken before the switch: what leaves after an opt-in counts from here.
        let baseline = (state != Consent::Disabled).then(crate::snapshot);
        let now = self.clock.now();
        let now_sending = {
            let mut control = self.gate.lock();
            if state != Consent::Disabled
                && let Some(source) = &control.operator_opt_out
            {
                return Err(ConsentError::Conflict {
                    disabled_by: source.to_string(),
                    flag: "the request to enable telemetry".to_owned(),
                });
            }
            let was_sending = control.consents(Category::UsageStatistics) && !fresh;
            let was_waiting =
                control.consent.state == Consent::Undecided && !control.undecided_expired;
            if control.consent.state != state {
                control.generation += 1;
            }
            if by == SourceKind::Runtime {
                control.decisions += 1;
            }
            control.consent.state = state;
            // DO_NOT_TRACK keeps deciding (an opt-out under it must not unlock a later opt-in).
            if !control.consent.is_locked() {
                control.consent.decided_by = by;
                control.consent.decided_at = decided_at.or_else(|| {
                    Some(humantime::format_rfc3339_seconds(SystemTime::now()).to_string())
                });
            }
            match state {
                Consent::Disabled => control.opted_out = true,
                Consent::Undecided => {
                    control.undecided_expired = false;
                    control.undecided_since = now;
                }
                Consent::Enabled => {}
            }
            let now_sending = control.consents(Category::UsageStatistics);
            let exempt = self.send_undecided_period && was_waiting && !control.opted_out;
            if now_sending
                && !was_sending
                && !exempt
                && let Some(baseline) = baseline
            {
                self.count_from(&mut control, baseline);
            }
            if !now_sending {
                control.events.clear();
            }
            now_sending
        };
        self.gate.wake.notify_all();
        let mut saved = Ok(());
        if save && let Some(dir) = &self.state_dir {
            match crate::product::consent::persist(dir, state) {
                // This process's own save: not someone else's decision to adopt.
                Ok(_) => {
                    self.mark_seen(saved_fingerprint(dir));
                    if let Ok(next) = self.sources.resolve_in(Some(dir))
                        && next.state != state
                    {
                        crate::diagnostics::diag!(
                            warn,
                            "telemetry is {state} for this run and saved so, but {} decides before the saved decision: the next start will be {}",
                            next.decided_by,
                            next.state
                        );
                    }
                }
                Err(e) => {
                    crate::diagnostics::diag!(
                        warn,
                        "the telemetry decision ({state}) holds for this run only: cannot save it in the telemetry state directory: {e}"
                    );
                    saved = Err(ConsentError::NotSaved {
                        reason: e.to_string(),
                    });
                }
            }
        }
        if !now_sending {
            self.clear_spool();
        }
        saved
    }

    /// The undecided delay ended without a decision: the installation may send from now on,
    /// counting from now unless the product sends the undecided period (and no opt-out came
    /// before in this run).
    pub(crate) fn end_undecided_delay(&self) {
        let _serial = self.serial.lock().unwrap_or_else(|e| e.into_inner());
        let baseline = crate::snapshot();
        let mut control = self.gate.lock();
        if control.consent.state == Consent::Undecided && !control.undecided_expired {
            if !self.send_undecided_period || control.opted_out {
                self.count_from(&mut control, baseline);
            }
            control.undecided_expired = true;
        }
    }

    /// Reports count from `baseline` on, and the events raised before it (data from before
    /// the opt-in) are dropped.
    fn count_from(&self, control: &mut Control, baseline: crate::Snapshot) {
        self.maker.set_baseline(baseline);
        control.events.clear();
    }

    /// Deletes every spooled report (an opt-out: nothing made under the old decision is kept).
    pub(crate) fn clear_spool(&self) {
        if let Some(spool) = &self.spool {
            let _guard = self.gate.lock_spool();
            spool.clear();
        }
    }
}

/// What tells one saving of the decision from another: the file's identity and modification
/// time as well as its text, since two decisions saved within a second can have equal text.
pub(crate) fn saved_fingerprint(dir: &StateDir) -> Option<String> {
    let path = dir.file(files::CONSENT);
    let meta = std::fs::metadata(&path).ok()?;
    #[cfg(unix)]
    let identity = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let identity = 0u64;
    let text = dir.read(files::CONSENT).ok().flatten().unwrap_or_default();
    Some(format!("{identity}:{:?}:{text}", meta.modified().ok()))
}

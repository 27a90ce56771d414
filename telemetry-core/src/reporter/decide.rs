//! Changing consent while the reporter runs: one path for a runtime decision
//! ([`super::Reporter::set_consent`]), a decision saved by another process (the end-user
//! `telemetry disable` command, a second instance on the same state directory) and the end of
//! the undecided delay.

use super::clock::Clock;
use super::gate::Gate;
use super::maker::ReportMaker;
use super::spool::Spool;
use crate::consent::{
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
    /// One decision at a time, from the change in memory to the saved file and the cleared
    /// spool, so the saved decision is always the one in force.
    serial: Mutex<()>,
}

impl Decider {
    pub(crate) fn new(
        gate: Arc<Gate>,
        maker: Arc<ReportMaker>,
        spool: Option<Arc<Spool>>,
        state_dir: Option<StateDir>,
        clock: Arc<dyn Clock>,
        send_undecided_period: bool,
    ) -> Self {
        Decider {
            gate,
            maker,
            spool,
            state_dir,
            clock,
            send_undecided_period,
            serial: Mutex::new(()),
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
        self.apply_serially(state, by, decided_at, save)
    }

    /// Puts in force a decision another process saved in the state directory since `seen`
    /// (the end-user `telemetry disable` command, a second instance that opted out): a saved
    /// "disabled" always, a saved "enabled" only if `sources` allow it. Read and applied under
    /// the same lock as [`apply`](Self::apply), so this process's own decision, in force and
    /// being saved, is never mistaken for someone else's.
    pub(crate) fn adopt_saved(&self, sources: &ConsentBuilder, seen: &mut Option<String>) {
        let Some(dir) = &self.state_dir else {
            return;
        };
        let _serial = self.serial.lock().unwrap_or_else(|e| e.into_inner());
        let fingerprint = saved_fingerprint(dir);
        if fingerprint == *seen {
            return;
        }
        seen.clone_from(&fingerprint);
        let text = dir.read(files::CONSENT).ok().flatten();
        let Some(saved) = text.and_then(|t| serde_json::from_str::<PersistedConsent>(&t).ok())
        else {
            return;
        };
        if saved.state == self.gate.lock().consent.state {
            return;
        }
        let adopt = match saved.state {
            Consent::Disabled => true,
            Consent::Enabled => sources
                .resolve_in(Some(dir))
                .is_ok_and(|d| d.state == Consent::Enabled),
            Consent::Undecided => false,
        };
        if adopt {
            log::info!(target: "telemetry", "telemetry is now {}: a decision saved in the state directory by another process", saved.state);
            let _ = self.apply_serially(
                saved.state,
                SourceKind::Persisted,
                Some(saved.set_at),
                false,
            );
        }
    }

    fn apply_serially(
        &self,
        state: Consent,
        by: SourceKind,
        decided_at: Option<String>,
        save: bool,
    ) -> Result<(), ConsentError> {
        // Taken before the switch: what leaves after an opt-in counts from here.
        let baseline = (state != Consent::Disabled).then(crate::snapshot);
        let now = self.clock.now();
        let now_sending = {
            let mut control = self.gate.lock();
            if state != Consent::Disabled && control.consent.is_locked() {
                return Err(ConsentError::Conflict {
                    disabled_by: control.consent.decided_by.to_string(),
                    flag: "the request to enable telemetry".to_owned(),
                });
            }
            let was_sending = control.consents(Category::UsageStatistics);
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
            if now_sending && !was_sending && !exempt {
                if let Some(baseline) = baseline {
                    self.maker.set_baseline(baseline);
                }
                // Events raised before the opt-in are data from before it.
                control.events.clear();
            }
            if !now_sending {
                control.events.clear();
            }
            now_sending
        };
        self.gate.wake.notify_all();
        let mut saved = Ok(());
        if save
            && let Some(dir) = &self.state_dir
            && let Err(e) = crate::consent::persist(dir, state)
        {
            log::warn!(target: "telemetry", "the telemetry decision ({state}) holds for this run only: cannot save it in {}: {e}", dir.path().display());
            saved = Err(ConsentError::NotSaved {
                reason: e.to_string(),
            });
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
                self.maker.set_baseline(baseline);
                control.events.clear();
            }
            control.undecided_expired = true;
        }
    }

    /// The saved decision's fingerprint, for [`adopt_saved`](Self::adopt_saved).
    pub(crate) fn fingerprint(&self) -> Option<String> {
        self.state_dir.as_ref().and_then(saved_fingerprint)
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
fn saved_fingerprint(dir: &StateDir) -> Option<String> {
    let path = dir.file(files::CONSENT);
    let meta = std::fs::metadata(&path).ok()?;
    #[cfg(unix)]
    let identity = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let identity = 0u64;
    let text = dir.read(files::CONSENT).ok().flatten().unwrap_or_default();
    Some(format!("{identity}:{:?}:{text}", meta.modified().ok()))
}

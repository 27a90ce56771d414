//! The consent gate: the one place that decides whether a request may start, and the
//! [`Permit`] that the HTTP sink requires. Only [`Gate::permit`] makes a permit, so no code
//! path can open a connection without asking the current consent first.

use super::ReporterStatus;
use crate::product::consent::{Category, Consent, ConsentDecision};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// What the reporter's thread and its handle share, behind one lock.
pub(crate) struct Control {
    pub(crate) consent: ConsentDecision,
    /// Bumped by every consent change: a payload built under an older generation never leaves.
    pub(crate) generation: u64,
    /// Counts runtime decisions, changed or not: each one reschedules the first report.
    pub(crate) decisions: u64,
    /// The undecided delay has passed without a decision: an undecided installation may send.
    pub(crate) undecided_expired: bool,
    /// The clock time the current undecided delay started (the start, or a runtime
    /// "undecided").
    pub(crate) undecided_since: std::time::Duration,
    /// Telemetry was disabled at some point in this run: a later opt-in never sends what came
    /// before it, whatever the product says about the undecided period.
    pub(crate) opted_out: bool,
    /// The operator's opt-out this run started under (`DO_NOT_TRACK`, the executable's name,
    /// the flag, an environment variable, a config value or a switch): only the operator can
    /// lift it, so a runtime or saved "enable" is refused for the whole run.
    pub(crate) operator_opt_out: Option<crate::product::consent::SourceKind>,
    /// Debug mode: reports are printed, never sent.
    pub(crate) debug: bool,
    /// Events waiting to be sent: the trigger (`event:{name}`) and the anonymized value.
    pub(crate) events: VecDeque<(String, serde_json::Value)>,
    /// When shutdown was asked for (real time), if it was.
    pub(crate) shutdown: Option<Instant>,
    pub(crate) latest_version: Option<String>,
    pub(crate) status: ReporterStatus,
    /// Events are being dropped (logged once until the queue has room again).
    pub(crate) events_overflowing: bool,
}

impl Control {
    /// Whether consent lets data of `category` leave now, debug mode aside.
    pub(crate) fn consents(&self, category: Category) -> bool {
        match self.consent.category(category) {
            Consent::Enabled => true,
            Consent::Disabled => false,
            Consent::Undecided => self.undecided_expired,
        }
    }

    /// The category a report made now travels under: usage statistics, or only the version
    /// check (Unleash's `SEND_TELEMETRY=false`); `None` if nothing may leave.
    pub(crate) fn report_category(&self) -> Option<Category> {
        [Category::UsageStatistics, Category::VersionCheck]
            .into_iter()
            .find(|c| self.consents(*c))
    }
}

/// The shared state and the condition variable that wakes the reporter's thread.
pub(crate) struct Gate {
    control: Mutex<Control>,
    pub(crate) wake: Condvar,
    /// Serializes spool changes with the clearing an opt-out does, so that a report the
    /// thread puts back in line after an opt-out cannot survive it.
    spool: Mutex<()>,
}

impl Gate {
    pub(crate) fn new(control: Control) -> Self {
        Gate {
            control: Mutex::new(control),
            wake: Condvar::new(),
            spool: Mutex::new(()),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits on the condition variable for at most `timeout` (consent changes, events and
    /// shutdown wake it earlier).
    pub(crate) fn wait<'a>(
        &self,
        control: MutexGuard<'a, Control>,
        timeout: std::time::Duration,
    ) -> MutexGuard<'a, Control> {
        self.wake
            .wait_timeout(control, timeout)
            .unwrap_or_else(|e| e.into_inner())
            .0
    }

    pub(crate) fn lock_spool(&self) -> MutexGuard<'_, ()> {
        self.spool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current consent generation.
    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// A permit for one request carrying data of `category` built under `generation`, if the
    /// current consent allows it now and has not changed since. Counted as an attempt.
    pub(crate) fn permit(self: &Arc<Self>, category: Category, generation: u64) -> Option<Permit> {
        let mut control = self.lock();
        if !Self::open(&control, category, generation) {
            return None;
        }
        control.status.attempts += 1;
        Some(Permit {
            gate: Arc::clone(self),
            category,
            generation,
        })
    }

    fn open(control: &Control, category: Category, generation: u64) -> bool {
        !control.debug && control.generation == generation && control.consents(category)
    }
}

/// Leave to make one request. (Without the `http` feature there is no client to hand it to.) Made only by [`Gate::permit`]; the HTTP sink takes one, and asks
/// it again ([`Permit::release_body`]) right before the report's bytes go to the connection.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) struct Permit {
    gate: Arc<Gate>,
    category: Category,
    generation: u64,
}

#[cfg_attr(not(feature = "http"), allow(dead_code))]
impl Permit {
    /// Asks the gate again, immediately before the body is written: false if consent was
    /// withdrawn while the connection was being set up (the request is then abandoned before
    /// any of the report leaves). Counted as a released body.
    pub(crate) fn release_body(&self) -> bool {
        let mut control = self.gate.lock();
        if !Gate::open(&control, self.category, self.generation) {
            return false;
        }
        control.status.released += 1;
        true
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A gate whose consent is `state`.
    pub(crate) fn gate(state: Consent) -> Arc<Gate> {
        Arc::new(Gate::new(Control {
            consent: ConsentDecision {
                state,
                ..ConsentDecision::undecided()
            },
            generation: 0,
            decisions: 0,
            undecided_expired: false,
            undecided_since: std::time::Duration::ZERO,
            opted_out: false,
            operator_opt_out: None,
            debug: false,
            events: VecDeque::new(),
            shutdown: None,
            latest_version: None,
            status: ReporterStatus::default(),
            events_overflowing: false,
        }))
    }

    #[test]
    fn permits_follow_consent_generation_and_debug_mode() {
        let g = gate(Consent::Enabled);
        assert!(g.permit(Category::UsageStatistics, 0).is_some());
        assert!(
            g.permit(Category::UsageStatistics, 1).is_none(),
            "stale payload"
        );
        g.lock().debug = true;
        assert!(
            g.permit(Category::UsageStatistics, 0).is_none(),
            "debug mode"
        );
        let g = gate(Consent::Disabled);
        assert!(Category::ALL.iter().all(|c| g.permit(*c, 0).is_none()));
        let g = gate(Consent::Undecided);
        assert!(
            g.permit(Category::UsageStatistics, 0).is_none(),
            "during the delay"
        );
        g.lock().undecided_expired = true;
        assert!(g.permit(Category::UsageStatistics, 0).is_some());
        assert_eq!(g.lock().status.attempts, 1);
    }

    #[test]
    fn a_withdrawal_after_the_permit_stops_the_body() {
        let g = gate(Consent::Enabled);
        let permit = g.permit(Category::UsageStatistics, 0).unwrap();
        {
            let mut control = g.lock();
            control.consent.state = Consent::Disabled;
            control.generation += 1;
        }
        assert!(!permit.release_body());
        assert_eq!(g.lock().status.released, 0);
        let g = gate(Consent::Enabled);
        let permit = g.permit(Category::UsageStatistics, 0).unwrap();
        assert!(permit.release_body());
        assert_eq!(g.lock().status.released, 1);
    }
}

//! The reporter's thread: its loop and schedule; sending (`delivery`), the spool (`spooled`) and
//! what a delivery leaves (`outcome`) are beside it.

mod delivery;
mod outcome;
mod spooled;

use super::FinalReport;
use super::decide::Decider;
use super::gate::Gate;
use super::maker::SHAPE_FAILED;
use super::spool::Spool;
use super::transport::{Failure, HttpConfig, redacted};
use crate::product::consent::{Category, Consent, ConsentDecision};
use crate::product::report::Report;
use crate::product::sink::Sink;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

/// The most events waiting to be sent; more are dropped (and logged).
pub(crate) const MAX_PENDING_EVENTS: usize = 64;

/// The most of the shutdown bound kept for the local work after the last network wait.
const SHUTDOWN_MARGIN: Duration = Duration::from_millis(100);

/// How often, in clock time, an idle reporter looks for a decision saved by another process.
const SAVED_DECISION_POLL: Duration = Duration::from_secs(60);

/// The reporter thread's state.
pub(crate) struct Worker {
    pub(crate) decider: Arc<Decider>,
    pub(crate) http: Option<HttpConfig>,
    /// The collector's upload configuration, if the product named one.
    pub(crate) upload_config: Option<super::upload_config::UploadConfig>,
    /// One client for every request of this reporter, so its connection is reused.
    pub(crate) client: super::transport::Client,
    pub(crate) sinks: Vec<Arc<dyn Sink>>,
    pub(crate) log_level: log::Level,
    /// Log each report that is not sent, with why (EventStoreDB's opted-out messages).
    pub(crate) log_unsent: bool,
    /// Whether a report is made at shutdown.
    pub(crate) final_report: FinalReport,
    /// Whether the last report is written to `telemetry.json`.
    pub(crate) keep_last_report: bool,
    pub(crate) initial_delay: Duration,
    pub(crate) undecided_delay: Duration,
    pub(crate) interval: Duration,
    pub(crate) schedules: Vec<(String, Duration)>,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) announced_version: Option<String>,
    /// The clock time at which the reporter was started.
    pub(crate) started: Duration,
    /// The spool cannot be written (logged once until a write succeeds again).
    pub(crate) spool_failing: bool,
}

/// What the loop does next.
enum Step {
    /// A report with this trigger, made by this event's value if any.
    Send(String, Option<serde_json::Value>),
    /// The undecided delay has passed: take the baseline (outside the lock), then open.
    UndecidedExpired,
    /// Time to look for a decision saved by another process.
    Look,
    Shutdown(Instant),
}

impl Worker {
    pub(crate) fn run(mut self) {
        // Ready before anyone asks for a view of the report.
        self.decider.maker.refresh_facts();
        let start = self.started;
        // Counted from zero, not read here: a decision made before this thread first runs
        // must still reschedule the first report.
        let mut seen_decisions = 0;
        let undecided = self.gate().lock().consent.state == Consent::Undecided;
        let first = if undecided {
            start + self.undecided_delay
        } else {
            start + self.initial_delay
        };
        let mut next_regular = first;
        // Whether a scheduled report has been made (for `FinalReport::AfterInitialDelay`).
        let mut scheduled_made = false;
        let mut next_extra: Vec<Duration> = self
            .schedules
            .iter()
            .map(|(_, every)| start + self.initial_delay + *every)
            .collect();
        loop {
            self.decider.adopt_saved();
            let step = {
                let gate = self.decider.gate.clone();
                let mut control = gate.lock();
                loop {
                    let now = self.decider.clock.now();
                    let undecided_until = control.undecided_since + self.undecided_delay;
                    control.status.observed = now;
                    if let Some(asked) = control.shutdown {
                        break Step::Shutdown(asked);
                    }
                    if control.decisions != seen_decisions {
                        seen_decisions = control.decisions;
                        // A decision takes effect at once: enabling during the initial or
                        // undecided delay makes the first report due now.
                        if control.consent.state == Consent::Enabled
                            && next_regular == first
                            && now < first
                        {
                            next_regular = now;
                        }
                    }
                    if control.consent.state == Consent::Undecided
                        && !control.undecided_expired
                        && now >= undecided_until
                    {
                        break Step::UndecidedExpired;
                    }
                    let category = control.report_category();
                    if category != Some(Category::UsageStatistics) {
                        // Events are usage data: they wait while undecided, and are dropped
                        // when usage statistics are off.
                        if control.consent.category(Category::UsageStatistics) == Consent::Disabled
                        {
                            control.events.clear();
                        }
                    } else if let Some(event) = control.events.pop_front() {
                        break Step::Send(event.0, Some(event.1));
                    }
                    if control.events.len() < MAX_PENDING_EVENTS / 2 {
                        control.events_overflowing = false;
                    }
                    if now >= next_regular {
                        next_regular = now + self.interval;
                        break Step::Send("schedule".to_owned(), None);
                    }
                    if let Some(i) = next_extra.iter().position(|due| now >= *due) {
                        next_extra[i] = now + self.schedules[i].1;
                        break Step::Send(self.schedules[i].0.clone(), None);
                    }
                    let mut due = next_extra.iter().copied().fold(next_regular, Duration::min);
                    if control.consent.state == Consent::Undecided && !control.undecided_expired {
                        due = due.min(undecided_until);
                    }
                    // A decision saved by another process is noticed within a minute of clock
                    // time even while nothing is due (and before any request in any case).
                    let wait = self
                        .decider
                        .clock
                        .real_wait(due.saturating_sub(now))
                        .min(SAVED_DECISION_POLL);
                    control = gate.wait(control, wait);
                    if self.decider.clock.now() >= now + SAVED_DECISION_POLL {
                        break Step::Look;
                    }
                }
            };
            match step {
                Step::Send(trigger, event) => {
                    scheduled_made |= event.is_none();
                    self.report(&trigger, event.as_ref(), None);
                }
                Step::UndecidedExpired => self.decider.end_undecided_delay(),
                Step::Look => {}
                Step::Shutdown(asked) => {
                    let (sending, events) = {
                        let mut control = self.gate().lock();
                        let category = control.report_category();
                        // Events still waiting leave first, if usage statistics may.
                        let events: Vec<_> = if category == Some(Category::UsageStatistics) {
                            control.events.drain(..).collect()
                        } else {
                            Vec::new()
                        };
                        (category.is_some(), events)
                    };
                    if sending {
                        // The network part ends a little before the bound, which leaves time
                        // to put an unsent final report back in line and write the last one.
                        let margin = (self.shutdown_timeout / 10).min(SHUTDOWN_MARGIN);
                        let deadline = asked + self.shutdown_timeout.saturating_sub(margin);
                        let pending = events.len();
                        for (sent, (trigger, value)) in events.into_iter().enumerate() {
                            if Instant::now() >= deadline {
                                // Out of time: the rest would only delay the exit.
                                self.gate().lock().status.dropped += (pending - sent) as u64;
                                crate::diagnostics::diag!(
                                    warn,
                                    "{} telemetry event(s) not sent: the shutdown bound was reached",
                                    pending - sent
                                );
                                break;
                            }
                            self.report(&trigger, Some(&value), Some(deadline));
                        }
                        let lived = scheduled_made || self.decider.clock.now() >= first;
                        let final_report = match self.final_report {
                            FinalReport::Always => true,
                            FinalReport::AfterInitialDelay => lived,
                            FinalReport::Never => false,
                        };
                        if final_report {
                            self.report("shutdown", None, Some(deadline));
                        }
                    }
                    return;
                }
            }
        }
    }

    /// With [`super::ReporterBuilder::log_unsent_reports`]: the body `report` would have,
    /// logged at the transmission level with why it is not sent.
    fn log_unsent(&self, report: &Report, decision: &ConsentDecision, why: &str) {
        if !self.log_unsent {
            return;
        }
        if let Some(body) = self.decider.maker.body(report, decision) {
            crate::diagnostics::diag_at!(
                self.log_level,
                "telemetry report not sent ({why}): {body}"
            );
        }
    }

    fn gate(&self) -> &Gate {
        &self.decider.gate
    }

    fn spool(&self) -> Option<&Arc<Spool>> {
        self.decider.spool.as_ref()
    }

    /// Builds a report, hands it to the local sinks, and sends it if consent allows.
    /// `deadline` bounds the whole send (shutdown).
    fn report(
        &mut self,
        trigger: &str,
        event: Option<&serde_json::Value>,
        deadline: Option<Instant>,
    ) {
        self.decider.adopt_saved();
        let (decision, generation, category, debug) = {
            let control = self.gate().lock();
            (
                control.consent.clone(),
                control.generation,
                control.report_category(),
                control.debug,
            )
        };
        let report = self
            .decider
            .maker
            .next_report(Some(trigger), event, &decision);
        self.gate().lock().status.built += 1;
        for sink in &self.sinks {
            match catch_unwind(AssertUnwindSafe(|| sink.send(&report))) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => crate::diagnostics::diag!(warn, "{e}"),
                Err(_) => {
                    crate::diagnostics::diag!(
                        error,
                        "a telemetry sink panicked; the product is unaffected"
                    )
                }
            }
        }
        let Some(category) = category else {
            self.log_unsent(&report, &decision, "telemetry is disabled");
            self.write_last(&report, None, None, "telemetry is disabled");
            return;
        };
        // The product's payload if it gave a shape, else the report itself.
        let Some(body) = self.decider.maker.body(&report, &decision) else {
            self.gate().lock().status.dropped += 1;
            self.write_last(&report, None, None, SHAPE_FAILED);
            return;
        };
        let payload = body.into_bytes();
        if debug {
            eprintln!(
                "telemetry debug mode: this report would be sent (nothing is sent):\n{}",
                String::from_utf8_lossy(&payload)
            );
            self.gate().lock().status.printed += 1;
            self.write_last(
                &report,
                Some(&payload),
                None,
                "debug mode: printed, not sent",
            );
            return;
        }
        let Some(http) = self.http.clone() else {
            self.log_unsent(&report, &decision, "no endpoint is configured");
            self.write_last(&report, Some(&payload), None, "no endpoint is configured");
            return;
        };
        // What the collector's upload configuration allows, if the product named one.
        let (report, payload) = if self.upload_config.is_some() {
            let mut report = report;
            self.apply_upload_config(&mut report, category, generation, &http, deadline);
            let Some(body) = self.decider.maker.body(&report, &decision) else {
                self.gate().lock().status.dropped += 1;
                self.write_last(&report, None, None, SHAPE_FAILED);
                return;
            };
            (report, body.into_bytes())
        } else {
            (report, payload)
        };
        if payload.len() > http.max_payload_bytes {
            crate::diagnostics::diag!(
                error,
                "telemetry report not sent: {} bytes is over the {} byte cap",
                payload.len(),
                http.max_payload_bytes
            );
            self.gate().lock().status.dropped += 1;
            self.write_last(
                &report,
                Some(&payload),
                None,
                "the report is larger than the payload cap",
            );
            return;
        }
        let endpoint = redacted(&http.endpoint);
        crate::diagnostics::diag_at!(
            self.log_level,
            "sending telemetry report to {endpoint}: {}",
            String::from_utf8_lossy(&payload)
        );
        // On disk before it is sent: if the send outlives the shutdown bound and the process
        // exits, the next start sends it, byte for byte what was logged and checked here.
        let claimed = self.keep_claimed(&payload, generation);
        match self.deliver(category, generation, &http, &payload, deadline) {
            Ok(()) => {
                if let Some(claimed) = &claimed {
                    self.forget(claimed);
                }
                self.write_last(&report, Some(&payload), Some(&endpoint), "sent");
                self.drain_spool(&http, deadline);
            }
            Err(Failure::Withdrawn) => {
                if let Some(claimed) = &claimed {
                    self.forget(claimed);
                }
                self.write_last(
                    &report,
                    Some(&payload),
                    None,
                    "not sent: consent was withdrawn",
                );
            }
            Err(e) => {
                let kept = claimed
                    .as_deref()
                    .is_some_and(|claimed| self.put_back(claimed, generation, true));
                let outcome = if kept {
                    "delivery failed; kept in the spool to send later"
                } else {
                    "delivery failed; not kept (no usable spool, or consent changed)"
                };
                crate::diagnostics::diag!(
                    warn,
                    "telemetry report not delivered to {endpoint} ({e}): {outcome}"
                );
                // The local record first: whoever sees the status change finds it written.
                self.write_last(&report, Some(&payload), None, outcome);
                let mut control = self.gate().lock();
                if kept {
                    control.status.spooled += 1;
                } else {
                    control.status.dropped += 1;
                }
                control.status.last_error = Some(e.to_string());
            }
        }
    }

    /// Waits `pause` of clock time; false if shutdown, a consent change or a deadline
    /// interrupts it.
    fn pause(&self, pause: Duration, deadline: Option<Instant>, generation: u64) -> bool {
        let until = self.decider.clock.now() + pause;
        let mut control = self.gate().lock();
        control.status.retry_at = Some(until);
        let resumed = self.wait_until(control, until, deadline, generation);
        self.gate().lock().status.retry_at = None;
        resumed
    }

    fn wait_until(
        &self,
        mut control: MutexGuard<'_, super::gate::Control>,
        until: Duration,
        deadline: Option<Instant>,
        generation: u64,
    ) -> bool {
        loop {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            if control.shutdown.is_some() && deadline.is_none() {
                return false;
            }
            if control.generation != generation {
                return false;
            }
            let now = self.decider.clock.now();
            control.status.observed = now;
            if now >= until {
                return true;
            }
            let wait = self
                .decider
                .clock
                .real_wait(until - now)
                .min(Duration::from_millis(100));
            control = self.gate().wait(control, wait);
        }
    }
}

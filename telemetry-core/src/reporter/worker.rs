//! The reporter's thread: the schedule, sending with retries, the spool, the last report.

use super::decide::Decider;
use super::gate::{Gate, Permit};
use super::spool::Spool;
use super::transport::{self, Failure, HttpConfig, parse_version_notice, redacted};
use crate::consent::{Category, Consent};
use crate::report::Report;
use crate::sink::Sink;
use crate::state::files;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, MutexGuard, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The most events waiting to be sent; more are dropped (and logged).
pub(crate) const MAX_PENDING_EVENTS: usize = 64;

/// The most of the shutdown bound kept for the local work after the last network wait.
const SHUTDOWN_MARGIN: Duration = Duration::from_millis(100);

/// How often the reporter's thread looks up from a request in flight for a shutdown or its
/// deadline.
const ATTEMPT_POLL: Duration = Duration::from_millis(10);

/// How often, in clock time, an idle reporter looks for a decision saved by another process.
const SAVED_DECISION_POLL: Duration = Duration::from_secs(60);

/// The reporter thread's state.
pub(crate) struct Worker {
    pub(crate) decider: Arc<Decider>,
    pub(crate) http: Option<HttpConfig>,
    /// The collector's upload configuration, if the product named one.
    pub(crate) upload_config: Option<super::upload_config::UploadConfig>,
    pub(crate) sinks: Vec<Arc<dyn Sink>>,
    pub(crate) log_level: log::Level,
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
                Step::Send(trigger, event) => self.report(&trigger, event.as_ref(), None),
                Step::UndecidedExpired => self.decider.end_undecided_delay(),
                Step::Look => {}
                Step::Shutdown(asked) => {
                    let sending = self.gate().lock().report_category().is_some();
                    if sending {
                        // The network part ends a little before the bound, which leaves time
                        // to put an unsent final report back in line and write the last one.
                        let margin = (self.shutdown_timeout / 10).min(SHUTDOWN_MARGIN);
                        let deadline = asked + self.shutdown_timeout.saturating_sub(margin);
                        self.report("shutdown", None, Some(deadline));
                    }
                    return;
                }
            }
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
                Ok(Err(e)) => log::warn!(target: "telemetry", "{e}"),
                Err(_) => {
                    log::error!(target: "telemetry", "a telemetry sink panicked; the product is unaffected")
                }
            }
        }
        let Some(category) = category else {
            self.write_last(&report, None, "telemetry is disabled");
            return;
        };
        let payload = report.to_json().into_bytes();
        if debug {
            eprintln!(
                "telemetry debug mode: this report would be sent (nothing is sent):\n{}",
                String::from_utf8_lossy(&payload)
            );
            self.gate().lock().status.printed += 1;
            self.write_last(&report, None, "debug mode: printed, not sent");
            return;
        }
        let Some(http) = self.http.clone() else {
            self.write_last(&report, None, "no endpoint is configured");
            return;
        };
        // What the collector's upload configuration allows, if the product named one.
        let (report, payload) = if self.upload_config.is_some() {
            let mut report = report;
            self.apply_upload_config(&mut report, category, generation, &http, deadline);
            let payload = report.to_json().into_bytes();
            (report, payload)
        } else {
            (report, payload)
        };
        if payload.len() > http.max_payload_bytes {
            log::error!(target: "telemetry", "telemetry report not sent: {} bytes is over the {} byte cap", payload.len(), http.max_payload_bytes);
            self.gate().lock().status.dropped += 1;
            self.write_last(&report, None, "the report is larger than the payload cap");
            return;
        }
        let endpoint = redacted(&http.endpoint);
        log::log!(target: "telemetry", self.log_level, "sending telemetry report to {endpoint}: {}", String::from_utf8_lossy(&payload));
        // On disk before it is sent: if the send outlives the shutdown bound and the process
        // exits, the next start sends it.
        let claimed = self.keep_claimed(&payload, generation);
        match self.deliver(category, generation, &http, &payload, deadline) {
            Ok(()) => {
                if let Some(claimed) = &claimed {
                    self.forget(claimed);
                }
                self.write_last(&report, Some(&endpoint), "sent");
                self.drain_spool(&http, deadline);
            }
            Err(Failure::Withdrawn) => {
                if let Some(claimed) = &claimed {
                    self.forget(claimed);
                }
                self.write_last(&report, None, "not sent: consent was withdrawn");
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
                log::warn!(target: "telemetry", "telemetry report not delivered to {endpoint} ({e}): {outcome}");
                // The local record first: whoever sees the status change finds it written.
                self.write_last(&report, None, outcome);
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

    /// Fetches the upload configuration if it is stale (under a permit, like every request),
    /// then leaves out of `report` what it does not allow.
    fn apply_upload_config(
        &mut self,
        report: &mut Report,
        category: Category,
        generation: u64,
        http: &HttpConfig,
        deadline: Option<Instant>,
    ) {
        let Some(config) = &self.upload_config else {
            return;
        };
        if config.stale() {
            let mut timeout = http.total_timeout.min(Duration::from_secs(5));
            if let Some(deadline) = deadline {
                timeout = timeout.min(deadline.saturating_duration_since(Instant::now()) / 2);
            }
            let fetched = match self.decider.gate.permit(category, generation) {
                Some(permit) if !timeout.is_zero() => {
                    transport::get(&permit, http, &config.url, timeout)
                }
                _ => Err(Failure::Withdrawn),
            };
            let allowed = match fetched {
                Ok(answer) if answer.status == 200 => {
                    super::upload_config::Allowed::parse(&answer.body)
                }
                _ => None,
            };
            match allowed {
                Some(allowed) => {
                    if let Some(config) = &mut self.upload_config {
                        config.current = Some((Instant::now(), allowed));
                    }
                }
                None => {
                    log::debug!(target: "telemetry", "the telemetry upload configuration could not be fetched; the last one (if any) stays in use");
                }
            }
        }
        if let Some(config) = &self.upload_config {
            config.apply(report);
        }
    }

    /// Removes a claimed report (delivered, refused, or withdrawn).
    fn forget(&self, claimed: &Path) {
        if let Some(spool) = self.spool() {
            let _guard = self.gate().lock_spool();
            spool.remove(claimed);
        }
    }

    /// Puts a claimed report back in line if consent has not changed since `generation`;
    /// otherwise removes it, so a report made under an old decision never survives an opt-out.
    /// `fresh`: a new report that now counts against the caps. True if it was kept.
    fn put_back(&self, claimed: &Path, generation: u64, fresh: bool) -> bool {
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
                    log::warn!(target: "telemetry", "the telemetry spool ({}) is full: {dropped} oldest report(s) dropped", crate::state::named(files::SPOOL));
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
    fn drain_spool(&mut self, http: &HttpConfig, deadline: Option<Instant>) {
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
        if recovered.reclaimed > 0 {
            log::info!(target: "telemetry", "{} telemetry report(s) left by a stopped process are back in the spool", recovered.reclaimed);
        }
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
                Ok(payload) if serde_json::from_slice::<Report>(&payload).is_ok() => payload,
                _ => {
                    spool.set_aside(&claimed);
                    self.gate().lock().status.dropped += 1;
                    log::warn!(target: "telemetry", "{} is not a telemetry report; it is set aside (.corrupt) and not sent", crate::state::named(format!("{}/{}", files::SPOOL, crate::state::file_name(&path))));
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
                    log::warn!(target: "telemetry", "the collector refused a spooled telemetry report ({e}); it is dropped");
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
    fn keep_claimed(&mut self, payload: &[u8], generation: u64) -> Option<PathBuf> {
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
                    log::info!(target: "telemetry", "the telemetry spool ({}) can be written again", crate::state::named(files::SPOOL));
                }
                Some(claimed)
            }
            Ok(None) => None,
            Err(e) => {
                if !std::mem::replace(&mut self.spool_failing, true) {
                    log::warn!(target: "telemetry", "cannot keep unsent telemetry reports in {} ({e}): reports that cannot be delivered are not kept", crate::state::named(files::SPOOL));
                }
                None
            }
        }
    }

    /// One report, with retries. Every attempt asks the gate for a permit first; a consent
    /// change, shutdown or the deadline ends the retries.
    fn deliver(
        &mut self,
        category: Category,
        generation: u64,
        http: &HttpConfig,
        payload: &[u8],
        deadline: Option<Instant>,
    ) -> Result<(), Failure> {
        let mut last_error = Failure::OutOfTime;
        for attempt in 0..=http.retries {
            let budget = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => http.total_timeout,
            };
            if budget.is_zero() {
                return Err(Failure::OutOfTime);
            }
            // A decision saved by another process since the last attempt counts too.
            self.decider.adopt_saved();
            let Some(permit) = self.decider.gate.permit(category, generation) else {
                return Err(Failure::Withdrawn);
            };
            let answer = self.attempt(
                permit,
                http,
                payload,
                budget.min(http.total_timeout),
                deadline,
            );
            let wait = match answer {
                Ok(answer) if (200..300).contains(&answer.status) => {
                    self.gate().lock().status.delivered += 1;
                    self.note_version(&answer.body);
                    return Ok(());
                }
                Ok(answer) => {
                    last_error = Failure::Status(answer.status);
                    let retryable = answer.status == 429 || answer.status >= 500;
                    if !retryable {
                        return Err(last_error);
                    }
                    answer.retry_after.map(|d| d.min(Duration::from_secs(3600)))
                }
                Err(Failure::Withdrawn) => return Err(Failure::Withdrawn),
                Err(e) => {
                    last_error = e;
                    None
                }
            };
            if attempt == http.retries {
                break;
            }
            let backoff = wait.unwrap_or_else(|| jittered_backoff(http.backoff, attempt));
            if !self.pause(backoff, deadline, generation) {
                break;
            }
        }
        Err(last_error)
    }

    /// One request, made on a thread of its own so that the reporter's thread can stop
    /// waiting for it: when the shutdown starts (for a regular report) or `deadline` passes
    /// (the final report), the request is abandoned (its thread ends when its own timeout
    /// does) and the report stays in the spool for the next start.
    fn attempt(
        &self,
        permit: Permit,
        http: &HttpConfig,
        payload: &[u8],
        timeout: Duration,
        deadline: Option<Instant>,
    ) -> Result<transport::Answer, Failure> {
        let (tx, rx) = mpsc::channel();
        let (config, body) = (http.clone(), payload.to_vec());
        let spawned = std::thread::Builder::new()
            .name("telemetry-send".to_owned())
            .spawn(move || {
                let _ = tx.send(transport::post(&permit, &config, &body, timeout));
            });
        if spawned.is_err() {
            return Err(Failure::Transport(
                "no thread could be started for the request".to_owned(),
            ));
        }
        loop {
            match rx.recv_timeout(ATTEMPT_POLL) {
                Ok(answer) => return answer,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Failure::Transport("the request stopped".to_owned()));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let out_of_time = match deadline {
                        Some(deadline) => Instant::now() >= deadline,
                        None => self.gate().lock().shutdown.is_some(),
                    };
                    if out_of_time {
                        return Err(Failure::OutOfTime);
                    }
                }
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

    fn note_version(&mut self, body: &[u8]) {
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
    fn write_last(&self, report: &Report, sent_to: Option<&str>, outcome: &str) {
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

/// `base * 2^attempt`, at most 5 minutes, with "equal jitter": a random point in the second
/// half of that range, so many installations that failed together do not retry together.
pub(crate) fn jittered_backoff(base: Duration, attempt: u32) -> Duration {
    let ceiling = base
        .saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
        .min(Duration::from_secs(300));
    // Not for security: a failed draw only makes this retry less spread out.
    let random = getrandom::u64().unwrap_or(0);
    let half = ceiling / 2;
    half + Duration::from_nanos(random % (half.as_nanos() as u64).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for attempt in 0..5 {
            let ceiling = Duration::from_secs(1 << attempt);
            let d = jittered_backoff(Duration::from_secs(1), attempt);
            assert!(d >= ceiling / 2 && d <= ceiling, "{attempt}: {d:?}");
        }
        assert!(jittered_backoff(Duration::from_secs(1), 40) <= Duration::from_secs(300));
    }
}

//! The reporter: shows the disclosure, then sends a small report on a schedule, on its own
//! thread, without ever blocking or breaking the host, and never without consent.
//!
//! ```no_run
//! use telemetry_core::consent::{ConsentBuilder, Polarity, ValueRule};
//! use telemetry_core::disclosure::Disclosure;
//! use telemetry_core::reporter::{HttpConfig, Reporter};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let reporter = Reporter::builder(telemetry_core::application!())
//!     .consent(ConsentBuilder::new().env(
//!         "DOCSTORE_TELEMETRY_OPTOUT",
//!         Polarity::OptOut,
//!         ValueRule::FerretDb,
//!     ))
//!     .disclosure(Disclosure::new(
//!         "DocStore",
//!         "Example Ltd",
//!         "setting DOCSTORE_TELEMETRY_OPTOUT=true",
//!         "https://example.com/telemetry",
//!     ))
//!     .endpoint(HttpConfig::new("https://telemetry.example.com/v1/report"))
//!     .state_dir("/var/lib/docstore/telemetry")
//!     .start()?; // resolves consent with this state directory, then shows the disclosure
//! // ... the product runs ...
//! reporter.shutdown();
//! # Ok(())
//! # }
//! ```
//!
//! # Consent, at the wire
//! The reporter resolves consent itself at [`ReporterBuilder::start`], from the product's
//! sources ([`ReporterBuilder::consent`]; without any, `DO_NOT_TRACK`, a `donottrack`
//! executable name and the decision saved in its own state directory), so a decision made
//! at run time ([`Reporter::set_consent`]) is read back at the next start.
//!
//! Every request (each report, each retry, each spooled report, each event, the version check)
//! asks the current consent for its category immediately before it starts, and again right
//! before the report's first byte is written to the connection; the HTTP client cannot be
//! called without the permit that only this check makes. So after
//! [`set_consent(Disabled)`](Reporter::set_consent) returns:
//! - no request starts, and no retry or spooled report follows;
//! - a request whose connection was still being set up is abandoned before any of the report
//!   is written;
//! - the only bytes that can still be on the wire are those of the one report whose body was
//!   handed to the connection before the opt-out (at most one request per reporter; its
//!   answer is ignored);
//! - the spool, the events waiting and any report being built under the old decision are
//!   deleted (switching off never uploads old reports, as in Go's telemetry).
//!
//! A decision saved by another process on the same state directory (the end-user
//! `telemetry disable` command, a second instance that opts out) is put in force before the
//! next request and at least once a minute; a request that process had already started when
//! the other one saved its decision is the one exception. Reports an earlier run spooled are
//! deleted at start unless this run's consent is enabled.
//!
//! # Opt-in date rule
//! Nothing recorded before an opt-in leaves. When sending becomes allowed during a run (an
//! opt-in after an opt-out, an opt-in during the undecided delay, or the undecided delay
//! ending), reports count from that moment: counters and histograms as differences, series
//! that recorded nothing since left out, events raised before dropped. Gauges are state, not
//! history: they report their current value. A product whose disclosure says the undecided
//! period is reported (FerretDB's undecided hour) sets
//! [`ReporterBuilder::send_undecided_period`]; an opt-out followed by an opt-in never sends
//! what came before the opt-in. The disclosure states which rule applies.
//!
//! # Schedule
//! The first report goes out after the initial delay (default 1 hour, as EventStoreDB and
//! FerretDB do, so short-lived instances such as test containers are not counted), then one
//! every interval (default 24 hours). An undecided installation waits its undecided delay
//! (default 1 hour) and is then reported, as FerretDB does; nothing leaves during the delay.
//! Events raised in it wait (at most 64): they go out when the delay ends without an opt-out
//! if the product sends the undecided period ([`ReporterBuilder::send_undecided_period`]), and
//! are dropped otherwise, as data from before the opt-in. A decision made during the delay
//! takes effect at once (enabling sends the first report immediately); a runtime
//! `set_consent(Undecided)` starts a new delay.
//! Extra schedules ([`ReporterBuilder::schedule`], Automatisch's diagnostics every 6 hours)
//! and events ([`Reporter::send_event`], Automatisch's user actions) send reports too. At
//! shutdown, a final report is sent if consent allows it, within the shutdown bound
//! (default 5 s).
//!
//! # What leaves, and when nothing does
//! Every report is built, anonymized ([`crate::Report::anonymized`]) and handed to the local
//! sinks ([`ReporterBuilder::sink`]) whatever the consent, so an opted-out installation can
//! still log or write it (EventStoreDB). With usage statistics disabled but the version check
//! enabled (Unleash's `SEND_TELEMETRY=false`), only the report's header is sent, to learn the
//! latest version. With everything disabled, no connection is ever made. In debug mode
//! (`TELEMETRY_DEBUG=1`, [`crate::product::consent::ConsentBuilder::debug_env`]) reports that would be
//! sent are printed to standard error and nothing is sent.
//!
//! # Failures
//! Sending happens on the reporter's thread with connect and total timeouts. A failed report
//! is retried with exponential backoff and jitter (or the server's `Retry-After`), then kept
//! in the spool (in the state directory, bounded) and sent before the next report. A panic in
//! a sink or a section provider is caught and logged. The host's instrumented calls never
//! wait for any of this.
//!
//! # End-user control
//! [`TelemetryCommand`] (a clap subcommand with the `clap` feature) gives a product
//! `myapp telemetry status|enable|disable|show|manifest|clean`, run by
//! [`ReporterBuilder::run_command`] on the same configuration the reporter uses.

mod builder;
mod clock;
mod command;
mod decide;
mod gate;
mod maker;
mod spool;
pub(crate) mod transport;
mod upload_config;
pub(crate) mod version_notice;
mod worker;

pub use builder::{FinalReport, ReporterBuilder, ReporterError};
pub use clock::{Clock, FakeClock, SystemClock};
pub use command::{CommandError, LastTransmission, TelemetryCommand, TelemetryStatus};
pub use maker::{ERROR_METRIC_PREFIXES, EVENT_SECTION};
pub use spool::SpoolLimits;
pub(crate) use transport::validate_endpoint;
pub use transport::{EndpointError, HttpConfig};
#[cfg(feature = "fuzzing")]
pub(crate) use version_notice::parse_version_notice;

use crate::product::consent::{Category, Consent, ConsentDecision, ConsentError, SourceKind};
use crate::product::report::{Application, Report};
use decide::Decider;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use worker::MAX_PENDING_EVENTS;

/// What the reporter has done so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReporterStatus {
    /// The clock time at which the reporter last looked at its schedule.
    pub observed: Duration,
    /// Reports built (sent or not).
    pub built: u64,
    /// HTTP requests started (each passed the consent gate).
    pub attempts: u64,
    /// Request bodies handed to the connection after the gate's second check: an upper bound
    /// of the reports that reached the wire.
    pub released: u64,
    /// Reports delivered (including spooled ones delivered later).
    pub delivered: u64,
    /// Reports put in the spool.
    pub spooled: u64,
    /// Reports dropped (too large, or pushed out of a full spool).
    pub dropped: u64,
    /// Reports printed to standard error in debug mode instead of being sent.
    pub printed: u64,
    /// The last delivery error.
    pub last_error: Option<String>,
    /// While a failed send waits to be retried: the clock time of the retry.
    pub retry_at: Option<Duration>,
}

/// A running reporter. Dropping it shuts it down (within the shutdown bound). It is `Send` and
/// `Sync`: share it (`Arc`) with the code that changes consent or serves `/telemetry`.
///
/// # `fork()`
/// The reporter's thread does not survive a fork. In a child, the inherited `Reporter` is
/// inert: dropping it or calling [`shutdown`](Self::shutdown) returns at once (false),
/// [`send_event`](Self::send_event) does nothing, and the parent's reporter keeps sending for
/// the parent. Metrics recorded in the child stay in the child; a child that should report
/// starts its own reporter.
pub struct Reporter {
    decider: Arc<Decider>,
    /// Signals the thread's end; in a mutex so that a `Reporter` can be shared (`Sync`).
    done: Mutex<Option<mpsc::Receiver<()>>>,
    shutdown_timeout: Duration,
    /// The process that started it: a child forked from it has no reporter thread.
    pid: u32,
}

impl Reporter {
    /// Starts configuring a reporter for `application`.
    pub fn builder(application: Application) -> ReporterBuilder {
        ReporterBuilder::new(application)
    }

    /// Changes consent now (a user's answer to "may we?"), for every category. Before it
    /// returns, the decision is saved with its date and manifest version in the state
    /// directory (so the next start reads it back) and takes effect:
    /// - disabling: no request starts from then on, a connection being set up is abandoned
    ///   before the report is written, and the spool and the events waiting are deleted (see
    ///   the module docs for the one report that can still be on the wire);
    /// - enabling during the initial or undecided delay sends the first report right away,
    ///   counting from now (the opt-in date rule in the module docs).
    ///
    /// - `Undecided` starts a new undecided delay.
    ///
    /// A decision saved by another process on the same state directory (the end-user
    /// `telemetry disable` command, a second instance) is put in force by the reporter's
    /// thread before its next request. Concurrent calls are applied one at a time, so the saved
    /// decision is the one in force. It takes a snapshot of the metrics when enabling and
    /// writes two small files; it never waits for the network.
    ///
    /// The decision is saved, but a source that decides before the saved decision (the flag,
    /// the product's variables and config) still decides at the next start, as it did at this
    /// one; a warning is logged when that start will differ.
    ///
    /// # Errors
    /// [`ConsentError::Conflict`] when asked to enable (or to be asked again) while this run
    /// started under an operator's opt-out (`DO_NOT_TRACK`, a `donottrack` executable name,
    /// the flag, an environment variable, a config value or a switch): only the operator can
    /// lift it, and nothing changes.
    /// [`ConsentError::NotSaved`] when the decision is in force for this run but could not be
    /// saved (a read-only or full state directory): the next start will not know it.
    pub fn set_consent(&self, state: Consent) -> Result<(), ConsentError> {
        self.decider.apply(state, SourceKind::Runtime, None, true)
    }

    /// The current consent decision.
    pub fn consent(&self) -> ConsentDecision {
        self.decider.gate.lock().consent.clone()
    }

    /// Sends a report of `event` soon (Automatisch's user-action events), if consent allows:
    /// its trigger is `event:{NAME}` and its `event` section holds the event's anonymized value
    /// (taken now). During the undecided delay it waits until the delay ends without an
    /// opt-out (and is dropped then unless the product sends the undecided period); with usage
    /// statistics disabled it is dropped. Returns at once; at most 64 events wait, more are
    /// dropped and logged. Events are types declared in the code
    /// (`#[derive(Telemetry)] #[telemetry(event = "name")]`), listed in the manifest. In a
    /// child process forked from the one that started the reporter, it does nothing.
    pub fn send_event<E: crate::Event>(&self, event: &E) {
        if self.inherited()
            || !crate::privacy::event::is_declared(
                E::__declaration(),
                E::NAME,
                crate::privacy::event::Declared::Event,
            )
        {
            return;
        }
        let value = event.anonymize(&crate::privacy::anonymize::global());
        let mut control = self.decider.gate.lock();
        if control.consent.category(Category::UsageStatistics) == Consent::Disabled {
            return;
        }
        if control.events.len() >= MAX_PENDING_EVENTS {
            control.status.dropped += 1;
            let first = !std::mem::replace(&mut control.events_overflowing, true);
            drop(control);
            if first {
                crate::diagnostics::diag!(
                    warn,
                    "telemetry events are being dropped: {MAX_PENDING_EVENTS} are waiting to be sent (the endpoint is slow or down, or consent is undecided); drops are counted in the reporter's status"
                );
            }
            return;
        }
        control
            .events
            .push_back((format!("event:{}", E::NAME), value));
        drop(control);
        self.decider.gate.wake.notify_all();
    }

    /// The latest version the endpoint announced (FerretDB's version notification), if any,
    /// whether or not it is newer than this one; [`update_available`](Self::update_available)
    /// is the one to show to people.
    pub fn latest_version(&self) -> Option<String> {
        self.decider.gate.lock().latest_version.clone()
    }

    /// The version the endpoint announced, if it is newer than the running application's
    /// (SemVer 2.0.0 precedence: `1.0.10` after `1.0.9`, `1.0.0` after `1.0.0-rc.1`, build
    /// metadata ignored; one to four numbers, as in `2`, `1.0` or `23.10.0.0`). `None` if no
    /// version was announced, it is the same or older, or either one is not a version. This is
    /// what FerretDB puts in its log, `startupWarnings` and `serverStatus`; the reporter logs it
    /// once per announced version, at info level.
    pub fn update_available(&self) -> Option<String> {
        let latest = self.latest_version()?;
        let running = self.decider.maker.application.version();
        version_notice::is_newer(&latest, running)
            .unwrap_or(false)
            .then_some(latest)
    }

    /// The report as the product sees it locally now: current metric values (not rounded),
    /// the sections (anonymized as they are added: hashed names, skipped fields), the facts.
    /// This is what `/telemetry?anonymize=false` shows.
    pub fn report(&self) -> Report {
        self.decider.maker.build(None)
    }

    /// The bytes the next scheduled report would carry if it were made now (compact JSON),
    /// whether or not consent lets it leave: the same function makes the HTTP body, the debug
    /// print, the `show` command and `/telemetry?anonymize=true` at the highest details level
    /// ([`crate::export::endpoint::Endpoints::with_reporter`]).
    pub fn preview_json(&self) -> String {
        let decision = self.decider.gate.lock().consent.clone();
        self.decider.maker.payload(Some("schedule"), &decision)
    }

    /// [`preview_json`](Self::preview_json) if it would leave now; `None` if nothing would
    /// (consent disabled, undecided during its delay, debug mode, or a payload shape that
    /// failed).
    pub fn payload_json(&self) -> Option<String> {
        let decision = self.decider.gate.lock().consent.clone();
        self.payload()
            .and_then(|report| self.decider.maker.body(&report, &decision))
    }

    /// Exactly what the next scheduled report would carry if it were sent now, as a
    /// [`Report`]; `None` if nothing would leave now (consent disabled, undecided during its
    /// delay, or debug mode). With a [`ReporterBuilder::payload_shape`], this is the report the
    /// payload is made from; [`payload_json`](Self::payload_json) is the payload.
    pub fn payload(&self) -> Option<Report> {
        let (decision, sending) = {
            let control = self.decider.gate.lock();
            (
                control.consent.clone(),
                control.report_category().is_some() && !control.debug,
            )
        };
        sending.then(|| {
            self.decider
                .maker
                .outgoing(Some("schedule"), None, &decision)
        })
    }

    /// What the reporter has done so far.
    pub fn status(&self) -> ReporterStatus {
        self.decider.gate.lock().status.clone()
    }

    /// Stops the reporter: sends a final report if consent allows it, and returns within
    /// the shutdown bound (default 5 s) whatever the endpoint does. A request in flight is
    /// abandoned when the shutdown starts, and its report stays in the spool; the final report
    /// is written to the spool before its attempt, which ends a little before the bound. So a
    /// hung endpoint costs no counts: the next start sends what it did not acknowledge.
    /// Returns true if the reporter's thread finished within the bound.
    ///
    /// Without a shutdown (the process exits with the reporter in a `static`, calls
    /// `std::process::exit`, is killed, or the reporter is `mem::forget`-ed): nothing more is
    /// sent; the reports already made are on disk (waiting, or claimed by this process, whose
    /// claim the next start takes back) and are sent by the next start, with their ids; the
    /// counts recorded since the last report are lost with the process's memory.
    pub fn shutdown(mut self) -> bool {
        self.stop(true)
    }

    /// [`shutdown`](Self::shutdown) for async code (feature `tokio`): the wait runs on tokio's
    /// blocking pool, so the runtime's threads go on meanwhile.
    #[cfg(feature = "tokio")]
    pub async fn shutdown_async(mut self) -> bool {
        self.stop(false);
        let done = self
            .done
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let bound = self.shutdown_timeout;
        match done {
            None => true,
            Some(done) => tokio::task::spawn_blocking(move || done.recv_timeout(bound).is_ok())
                .await
                .unwrap_or(false),
        }
    }

    /// Whether this is a copy a forked child inherited: its thread did not survive the fork,
    /// and the parent's reporter still sends for the parent.
    fn inherited(&self) -> bool {
        self.pid != std::process::id()
    }

    /// Asks the reporter's thread to stop; with `wait`, waits for it (at most the bound).
    fn stop(&mut self, wait: bool) -> bool {
        if self.inherited() {
            return false;
        }
        {
            let mut control = self.decider.gate.lock();
            if control.shutdown.is_none() {
                control.shutdown = Some(Instant::now());
            }
        }
        self.decider.gate.wake.notify_all();
        if !wait {
            return true;
        }
        let Some(done) = self
            .done
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return true;
        };
        done.recv_timeout(self.shutdown_timeout).is_ok()
    }

    /// Whether dropping it here must not wait: on a tokio runtime's thread (feature `tokio`).
    fn on_async_runtime() -> bool {
        #[cfg(feature = "tokio")]
        return tokio::runtime::Handle::try_current().is_ok();
        #[cfg(not(feature = "tokio"))]
        return false;
    }
}

impl Drop for Reporter {
    /// Shuts the reporter down as [`shutdown`](Reporter::shutdown) does, waiting at most the
    /// bound; on a tokio runtime's thread (feature `tokio`) it asks the reporter to stop and
    /// returns at once (the reporter's own thread still makes the final report, within the
    /// bound, unless the process exits first: `shutdown_async().await` waits for it).
    fn drop(&mut self) {
        let wait = !Self::on_async_runtime();
        self.stop(wait);
    }
}

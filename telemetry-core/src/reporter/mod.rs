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
//! (`TELEMETRY_DEBUG=1`, [`crate::consent::ConsentBuilder::debug_env`]) reports that would be
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

mod clock;
mod command;
mod decide;
mod gate;
mod maker;
mod spool;
pub(crate) mod transport;
mod worker;

pub use clock::{Clock, FakeClock, SystemClock};
pub use command::{CommandError, LastTransmission, TelemetryCommand, TelemetryStatus};
pub use maker::{ERROR_METRIC_PREFIXES, EVENT_SECTION};
pub use spool::SpoolLimits;
pub use transport::{EndpointError, HttpConfig, parse_version_notice, validate_endpoint};

use crate::consent::{
    Category, Consent, ConsentBuilder, ConsentDecision, ConsentError, SourceKind,
};
use crate::disclosure::Disclosure;
use crate::facts::BuildFacts;
use crate::identity::{self, Identity};
use crate::report::{Application, Report};
use crate::sink::Sink;
use crate::state::{StateDir, files};
use decide::Decider;
use gate::{Control, Gate};
use maker::{ReportMaker, SectionProvider};
use spool::Spool;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use worker::{MAX_PENDING_EVENTS, Worker};

/// Configures and starts a [`Reporter`].
#[must_use = "a builder does nothing until `start` is called"]
pub struct ReporterBuilder {
    application: Application,
    consent: ConsentBuilder,
    disclosure: Option<Disclosure>,
    http: Option<HttpConfig>,
    state_dir: Option<StateDir>,
    identity: Identity,
    initial_delay: Duration,
    undecided_delay: Duration,
    send_undecided_period: bool,
    interval: Duration,
    schedules: Vec<(String, Duration)>,
    shutdown_timeout: Duration,
    sinks: Vec<Arc<dyn Sink>>,
    sections: Vec<SectionProvider>,
    system_facts: Option<BuildFacts>,
    spool_limits: SpoolLimits,
    log_level: log::Level,
    clock: Arc<dyn Clock>,
}

/// Why the reporter did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReporterError {
    /// The endpoint is not `https://` (or `http://` to loopback), or not a URL.
    #[error("{0}")]
    Endpoint(#[source] EndpointError),
    /// A consent source holds a value that is neither yes nor no, or a flag asks to enable
    /// what `DO_NOT_TRACK` disables.
    #[error("{0}")]
    Consent(#[source] ConsentError),
    /// The operating system refused a thread.
    #[error("cannot start the telemetry reporter thread: {0}")]
    Thread(#[source] std::io::Error),
    /// A schedule's name is not 1 to 64 lower-case ASCII letters, digits, `_` and `.`,
    /// starting with a letter (it would be sent as the report's trigger).
    #[error(
        "a telemetry schedule's name is 1 to 64 lower-case ASCII letters, digits, `_` and `.`, \
         starting with a letter"
    )]
    ScheduleName,
}

impl From<ConsentError> for ReporterError {
    fn from(e: ConsentError) -> Self {
        ReporterError::Consent(e)
    }
}

impl ReporterBuilder {
    /// A reporter for `application` with the defaults: consent from `DO_NOT_TRACK`, a
    /// `donottrack` executable name and the state directory's saved decision (else
    /// undecided); no endpoint (local sinks only); 1 hour initial and undecided delays; 24 hour
    /// interval; 5 s shutdown bound.
    pub fn new(application: Application) -> Self {
        ReporterBuilder {
            application,
            consent: ConsentBuilder::new(),
            disclosure: None,
            http: None,
            state_dir: None,
            identity: Identity::Instance,
            initial_delay: Duration::from_secs(3600),
            undecided_delay: Duration::from_secs(3600),
            send_undecided_period: false,
            interval: Duration::from_secs(24 * 3600),
            schedules: Vec::new(),
            shutdown_timeout: Duration::from_secs(5),
            sinks: Vec::new(),
            sections: Vec::new(),
            system_facts: None,
            spool_limits: SpoolLimits::default(),
            log_level: log::Level::Info,
            clock: Arc::new(SystemClock::default()),
        }
    }

    /// The product's consent sources. They are resolved at [`start`](Self::start) with the
    /// decision saved in this reporter's [`state_dir`](Self::state_dir), so there is one state
    /// directory for both by construction. Without this call, `DO_NOT_TRACK`, a `donottrack`
    /// executable name and the saved decision are still asked.
    pub fn consent(mut self, sources: ConsentBuilder) -> Self {
        self.consent = sources;
        self
    }

    /// The start-up disclosure. Without one, a plain default naming the application and
    /// `DO_NOT_TRACK` is shown.
    pub fn disclosure(mut self, disclosure: Disclosure) -> Self {
        self.disclosure = Some(disclosure);
        self
    }

    /// Where reports are sent. Without an endpoint, reports only go to the local sinks.
    pub fn endpoint(mut self, http: HttpConfig) -> Self {
        self.http = Some(http);
        self
    }

    /// The state directory: persisted consent, installation id, hash key, the last report
    /// (`telemetry.json`) and the spool. Problems with it are logged once and degrade to "do
    /// not keep" (no spool, per-run ids), never to a crash.
    ///
    /// From this call on, the process's name-hashing key is the one stored there
    /// ([`crate::anonymize::use_key_file`]), so names hashed before [`start`](Self::start)
    /// hash as they will in the reports.
    pub fn state_dir(mut self, path: impl Into<PathBuf>) -> Self {
        let dir = StateDir::new(path);
        crate::anonymize::use_key_file(&dir.file(files::HASH_KEY));
        self.state_dir = Some(dir);
        self
    }

    /// Which ids reports carry (default: the instance id only).
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = identity;
        self
    }

    /// Delay before the first report of an installation whose consent is enabled.
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// Delay before the first report of an undecided installation (default 1 hour, FerretDB);
    /// the disclosure states it.
    pub fn undecided_delay(mut self, delay: Duration) -> Self {
        self.undecided_delay = delay;
        self
    }

    /// Whether what is recorded during the undecided delay is sent once it ends (or once the
    /// user opts in during it), as FerretDB's undecided hour is (default false: reports count
    /// from the moment sending became allowed). An explicit opt-out followed by an opt-in
    /// never sends what came before the opt-in, whatever this says.
    pub fn send_undecided_period(mut self, send: bool) -> Self {
        self.send_undecided_period = send;
        self
    }

    /// Time between regular reports.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// An extra schedule: a report tagged `name` (its `trigger`) every `every`, starting after
    /// the initial delay (Automatisch's diagnostics every 6 hours). The name is text fixed in
    /// the code, 1 to 64 lower-case ASCII letters, digits, `_` and `.`, starting with a letter;
    /// [`start`](Self::start) refuses another.
    pub fn schedule(mut self, name: &'static str, every: Duration) -> Self {
        self.schedules.push((name.to_owned(), every));
        self
    }

    /// The most time [`Reporter::shutdown`] takes, final report included (default 5 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// A local sink that receives every report, sent or not (a log, a file).
    pub fn sink(mut self, sink: impl Sink + 'static) -> Self {
        self.sinks.push(Arc::new(sink));
        self
    }

    /// A product section, made afresh for each report by `make`: a `#[derive(Telemetry)]
    /// #[telemetry(section = "name")]` value, added under its [`crate::Section::NAME`]. A
    /// panic in `make` is caught and the section left out.
    pub fn section<T: crate::Section + 'static>(
        mut self,
        make: impl Fn() -> T + Send + Sync + 'static,
    ) -> Self {
        self.sections.push(Arc::new(move |report: &mut Report| {
            report.add_section(&make());
        }));
        self
    }

    /// Adds the `environment` section ([`crate::facts::SystemFacts`]) with the product's
    /// build facts.
    pub fn system_facts(mut self, build: BuildFacts) -> Self {
        self.system_facts = Some(build);
        self
    }

    /// The spool's caps.
    pub fn spool_limits(mut self, limits: SpoolLimits) -> Self {
        self.spool_limits = limits;
        self
    }

    /// The level at which every transmission is logged with its full payload (default info).
    pub fn transmission_log_level(mut self, level: log::Level) -> Self {
        self.log_level = level;
        self
    }

    /// The clock of the schedule (tests pass a [`FakeClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Resolves consent with the state directory's saved decision, as [`start`](Self::start)
    /// does.
    ///
    /// # Errors
    /// The [`ConsentError`] of [`ConsentBuilder::resolve_in`].
    pub fn resolve_consent(&self) -> Result<ConsentDecision, ConsentError> {
        self.consent.resolve_in(self.state_dir.as_ref())
    }

    fn spool(&self) -> Option<Spool> {
        self.state_dir
            .as_ref()
            .map(|dir| Spool::new(dir.file(files::SPOOL), self.spool_limits.clone()))
    }

    fn disclosure_for(&self) -> Disclosure {
        self.disclosure
            .clone()
            .unwrap_or_else(|| {
                Disclosure::new(
                    self.application.name(),
                    format!("the makers of {}", self.application.name()),
                    "setting the DO_NOT_TRACK environment variable to 1",
                    "the product's documentation",
                )
            })
            .undecided(self.undecided_delay, self.send_undecided_period)
    }

    /// Resolves consent, shows the disclosure, then starts the reporter's thread. With
    /// consent disabled for usage statistics, the spool is emptied first.
    ///
    /// # Errors
    /// [`ReporterError::Endpoint`] for an endpoint that is not HTTPS (or loopback HTTP);
    /// [`ReporterError::Consent`] for a consent source that cannot be read (the product
    /// reports it and exits, as FerretDB does); [`ReporterError::Thread`] if no thread can be
    /// started.
    pub fn start(self) -> Result<Reporter, ReporterError> {
        if let Some(http) = &self.http {
            validate_endpoint(&http.endpoint).map_err(ReporterError::Endpoint)?;
        }
        if !self
            .schedules
            .iter()
            .all(|(name, _)| crate::event::is_trigger_name(name))
        {
            return Err(ReporterError::ScheduleName);
        }
        // Seen before consent is resolved: a decision saved while the reporter starts is then
        // taken up by its thread instead of being missed.
        let mut seen = self.state_dir.as_ref().and_then(decide::saved_fingerprint);
        let mut decision = self.resolve_consent()?;
        if self.consent.persists_flag()
            && matches!(decision.decided_by, SourceKind::Flag(_))
            && let Some(dir) = &self.state_dir
        {
            match crate::consent::persist(dir, decision.state) {
                Ok(saved) => {
                    decision.decided_at = Some(saved.set_at);
                    seen = decide::saved_fingerprint(dir);
                }
                Err(e) => {
                    log::warn!(target: "telemetry", "the telemetry decision ({}) holds for this run only: cannot save it in the telemetry state directory: {e}", decision.state);
                }
            }
        }
        let debug = self.consent.debug_mode();
        if let Some(name) = &debug {
            log::warn!(target: "telemetry", "telemetry debug mode ({name}): reports are printed to standard error and nothing is sent");
        }
        let mut installation_id = None;
        let mut spool = None;
        // One line per problem: an unusable state directory is said once, here, and the spool's
        // own write failures are not said again until a write has worked.
        let mut spool_failing = false;
        if let Some(dir) = &self.state_dir {
            if let Err(e) = identity::install_hash_key(dir) {
                log::warn!(target: "telemetry", "the telemetry state directory is not usable ({e}): names are hashed with a per-run key, and reports that cannot be delivered are not kept");
                spool_failing = true;
            }
            let spool_dir = Spool::new(dir.file(files::SPOOL), self.spool_limits.clone());
            // Reports kept by an earlier run were made under its consent: unless this run is
            // enabled too, they are deleted (an opt-out, or a decision to be asked again).
            if decision.state != Consent::Enabled
                || decision.category(Category::UsageStatistics) == Consent::Disabled
            {
                let removed = spool_dir.clear();
                if removed > 0 {
                    log::info!(target: "telemetry", "telemetry is not enabled: {removed} unsent report(s) of an earlier run deleted");
                }
            } else {
                let recovered = spool_dir.recover();
                if recovered.reclaimed > 0 {
                    log::info!(target: "telemetry", "{} telemetry report(s) left by a stopped process are back in the spool", recovered.reclaimed);
                }
                if recovered.dropped > 0 {
                    log::warn!(target: "telemetry", "the telemetry spool ({}) was over its caps: {} oldest report(s) dropped", crate::state::named(files::SPOOL), recovered.dropped);
                }
            }
            spool = Some(Arc::new(spool_dir));
            if self.identity == Identity::Installation {
                installation_id = identity::installation_id(dir)
                    .inspect_err(|e| log::warn!(target: "telemetry", "no installation id: cannot use {} ({e}); reports carry the instance id only", crate::state::named(files::INSTALLATION_ID)))
                    .ok();
            }
        }
        // The disclosure comes first, before the thread that may send exists.
        self.disclosure_for().show(&decision);

        let opted_out = decision.state == Consent::Disabled;
        let operator_opt_out = decision
            .is_operator_opt_out()
            .then(|| decision.decided_by.clone());
        let gate = Arc::new(Gate::new(Control {
            consent: decision,
            generation: 0,
            decisions: 0,
            undecided_expired: false,
            undecided_since: self.clock.now(),
            opted_out,
            operator_opt_out,
            debug: debug.is_some(),
            events: VecDeque::new(),
            shutdown: None,
            latest_version: None,
            status: ReporterStatus::default(),
            events_overflowing: false,
        }));
        let maker = Arc::new(ReportMaker::new(
            self.application,
            installation_id,
            self.sections,
            self.system_facts,
        ));
        let decider = Arc::new(Decider::new(
            gate,
            maker,
            spool,
            self.state_dir,
            self.clock,
            self.send_undecided_period,
            self.consent,
        ));
        decider.mark_seen(seen);
        let (done_tx, done_rx) = mpsc::channel();
        // The schedule starts now, not when the thread first runs.
        let started = decider.clock.now();
        let worker = Worker {
            started,
            decider: decider.clone(),
            http: self.http,
            sinks: self.sinks,
            log_level: self.log_level,
            initial_delay: self.initial_delay,
            undecided_delay: self.undecided_delay,
            interval: self.interval,
            schedules: self.schedules,
            shutdown_timeout: self.shutdown_timeout,
            announced_version: None,
            spool_failing,
        };
        std::thread::Builder::new()
            .name("telemetry-reporter".to_owned())
            .spawn(move || {
                if catch_unwind(AssertUnwindSafe(|| worker.run())).is_err() {
                    log::error!(target: "telemetry", "the telemetry reporter stopped after a panic; the product is unaffected");
                }
                let _ = done_tx.send(());
            })
            .map_err(ReporterError::Thread)?;
        Ok(Reporter {
            decider,
            done: Mutex::new(Some(done_rx)),
            shutdown_timeout: self.shutdown_timeout,
            pid: std::process::id(),
        })
    }
}

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
        if self.inherited() || !crate::event::is_declared(E::NAME, true) {
            return;
        }
        let value = event.anonymize(&crate::anonymize::global());
        let mut control = self.decider.gate.lock();
        if control.consent.category(Category::UsageStatistics) == Consent::Disabled {
            return;
        }
        if control.events.len() >= MAX_PENDING_EVENTS {
            control.status.dropped += 1;
            let first = !std::mem::replace(&mut control.events_overflowing, true);
            drop(control);
            if first {
                log::warn!(target: "telemetry", "telemetry events are being dropped: {MAX_PENDING_EVENTS} are waiting to be sent (the endpoint is slow or down, or consent is undecided); drops are counted in the reporter's status");
            }
            return;
        }
        control
            .events
            .push_back((format!("event:{}", E::NAME), value));
        drop(control);
        self.decider.gate.wake.notify_all();
    }

    /// The latest version the endpoint announced (FerretDB's version notification), if any.
    pub fn latest_version(&self) -> Option<String> {
        self.decider.gate.lock().latest_version.clone()
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
    /// (consent disabled, undecided during its delay, or debug mode).
    pub fn payload_json(&self) -> Option<String> {
        self.payload().map(|report| report.to_json())
    }

    /// Exactly what the next scheduled report would carry if it were sent now, as a
    /// [`Report`]; `None` if nothing would leave now (consent disabled, undecided during its
    /// delay, or debug mode).
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

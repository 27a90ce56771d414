//! The reporter: shows the disclosure, then sends a small report on a schedule, on its own
//! thread, without ever blocking or breaking the host.
//!
//! ```no_run
//! use std::time::Duration;
//! use telemetry_core::consent::{ConsentBuilder, Polarity, ValueRule};
//! use telemetry_core::disclosure::Disclosure;
//! use telemetry_core::reporter::{HttpConfig, Reporter};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let consent = ConsentBuilder::new()
//!     .env("DOCSTORE_TELEMETRY_OPTOUT", Polarity::OptOut, ValueRule::FerretDb)
//!     .resolve()?;
//! let reporter = Reporter::builder(telemetry_core::application!())
//!     .consent(consent)
//!     .disclosure(Disclosure::new(
//!         "DocStore",
//!         "Example Ltd",
//!         "setting DOCSTORE_TELEMETRY_OPTOUT=true",
//!         "https://example.com/telemetry",
//!     ))
//!     .endpoint(HttpConfig::new("https://telemetry.example.com/v1/report"))
//!     .state_dir("/var/lib/docstore/telemetry")
//!     .start()?;
//! // ... the product runs ...
//! reporter.shutdown();
//! # Ok(())
//! # }
//! ```
//!
//! # Schedule
//! The first report goes out after the initial delay (default 1 hour, as EventStoreDB and
//! FerretDB do, so short-lived instances such as test containers are not counted), then one
//! every interval (default 24 hours). An undecided installation waits its undecided delay
//! (default 1 hour) and is then reported, as FerretDB does; a decision made during the delay
//! takes effect at once (enabling sends the first report immediately). Extra schedules
//! ([`ReporterBuilder::schedule`], Automatisch's diagnostics every 6 hours) and events
//! ([`Reporter::send_event`], Automatisch's user actions) send reports too. At shutdown, a
//! final report is sent if consent is enabled, within the shutdown bound (default 5 s).
//!
//! # What leaves, and when nothing does
//! Every report is built, anonymized ([`crate::Report::anonymized`]) and handed to the local
//! sinks ([`ReporterBuilder::sink`]) whatever the consent, so an opted-out installation can
//! still log or write it (EventStoreDB). It is sent only if consent allows it, after the
//! disclosure has been shown. With usage statistics disabled but the version check enabled
//! (Unleash's `SEND_TELEMETRY=false`), only the report's header is sent, to learn the latest
//! version. With everything disabled, no connection is ever made.
//!
//! # Failures
//! Sending happens on the reporter's thread with connect and total timeouts. A failed report
//! is retried with exponential backoff and jitter (or the server's `Retry-After`), then kept
//! in the spool (in the state directory, bounded) and sent before the next report. A panic in
//! a sink or a section provider is caught and logged. The host's instrumented calls never
//! wait for any of this.

mod clock;
mod http;
mod spool;

pub use clock::{Clock, FakeClock, SystemClock};
pub use http::{EndpointError, HttpConfig, parse_version_notice, validate_endpoint};
pub use spool::SpoolLimits;

use crate::anonymize::Anonymize;
use crate::consent::{Category, Consent, ConsentDecision, ConsentError, SourceKind};
use crate::disclosure::Disclosure;
use crate::facts::{BuildFacts, SystemFacts};
use crate::identity::{self, Identity};
use crate::report::{Application, Report};
use crate::sink::Sink;
use crate::state::{StateDir, files};
use spool::Spool;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Metric names in the error-reports category ([`Category::ErrorReports`]): left out of the
/// report when that category is disabled.
pub const ERROR_METRIC_PREFIXES: &[&str] = &["telemetry.panics", "telemetry.errors"];

/// The most events waiting to be sent; more are dropped (and logged).
const MAX_PENDING_EVENTS: usize = 64;

type SectionProvider = Box<dyn Fn(&mut Report) + Send + Sync>;

/// Configures and starts a [`Reporter`].
#[must_use = "a builder does nothing until `start` is called"]
pub struct ReporterBuilder {
    application: Application,
    consent: ConsentDecision,
    disclosure: Option<Disclosure>,
    http: Option<HttpConfig>,
    state_dir: Option<StateDir>,
    identity: Identity,
    initial_delay: Duration,
    undecided_delay: Duration,
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
#[derive(Debug)]
#[non_exhaustive]
pub enum ReporterError {
    /// The endpoint is not `https://` (or `http://` to loopback), or not a URL.
    Endpoint(EndpointError),
    /// The operating system refused a thread.
    Thread(std::io::Error),
}

impl std::fmt::Display for ReporterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReporterError::Endpoint(e) => e.fmt(f),
            ReporterError::Thread(e) => {
                write!(f, "cannot start the telemetry reporter thread: {e}")
            }
        }
    }
}

impl std::error::Error for ReporterError {}

impl ReporterBuilder {
    /// A reporter for `application` with the defaults: undecided consent, no endpoint (local
    /// sinks only), 1 hour initial and undecided delays, 24 hour interval, 5 s shutdown bound.
    pub fn new(application: Application) -> Self {
        ReporterBuilder {
            application,
            consent: ConsentDecision::undecided(),
            disclosure: None,
            http: None,
            state_dir: None,
            identity: Identity::Instance,
            initial_delay: Duration::from_secs(3600),
            undecided_delay: Duration::from_secs(3600),
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

    /// The resolved consent ([`crate::consent::ConsentBuilder::resolve`]).
    pub fn consent(mut self, decision: ConsentDecision) -> Self {
        self.consent = decision;
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
    pub fn state_dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(StateDir::new(path));
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

    /// Delay before the first report of an undecided installation.
    pub fn undecided_delay(mut self, delay: Duration) -> Self {
        self.undecided_delay = delay;
        self
    }

    /// Time between regular reports.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// An extra schedule: a report tagged `name` every `every`, starting after the initial
    /// delay (Automatisch's diagnostics every 6 hours).
    pub fn schedule(mut self, name: impl Into<String>, every: Duration) -> Self {
        self.schedules.push((name.into(), every));
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

    /// A product section, made afresh for each report by `make` (a `#[derive(Telemetry)]`
    /// value). A panic in `make` is caught and the section left out.
    pub fn section<T: Anonymize + 'static>(
        mut self,
        name: impl Into<String>,
        make: impl Fn() -> T + Send + Sync + 'static,
    ) -> Self {
        let name = name.into();
        self.sections.push(Box::new(move |report: &mut Report| {
            report.add_section(name.clone(), &make());
        }));
        self
    }

    /// Adds the `environment` section ([`SystemFacts`]) with the product's build facts.
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

    /// Shows the disclosure, then starts the reporter's thread.
    ///
    /// # Errors
    /// [`ReporterError::Endpoint`] for an endpoint that is not HTTPS (or loopback HTTP);
    /// [`ReporterError::Thread`] if no thread can be started.
    pub fn start(self) -> Result<Reporter, ReporterError> {
        if let Some(http) = &self.http {
            validate_endpoint(&http.endpoint).map_err(ReporterError::Endpoint)?;
        }
        let mut installation_id = None;
        let mut spool = None;
        // One line per problem: an unusable state directory is said once, here, and the spool's
        // own write failures are not said again until a write has worked.
        let mut spool_failing = false;
        if let Some(dir) = &self.state_dir {
            if let Err(e) = identity::install_hash_key(dir) {
                log::warn!(target: "telemetry", "the telemetry state directory {} is not usable ({e}): names are hashed with a per-run key, and reports that cannot be delivered are not kept", dir.path().display());
                spool_failing = true;
            }
            // The spool does not depend on the key: its own failures are logged when they happen.
            let spool_dir = Spool::new(dir.file(files::SPOOL), self.spool_limits.clone());
            let reclaimed = spool_dir.reclaim_abandoned();
            if reclaimed > 0 {
                log::info!(target: "telemetry", "{reclaimed} telemetry report(s) left by a stopped process are back in the spool");
            }
            spool = Some(spool_dir);
            if self.identity == Identity::Installation {
                installation_id = identity::installation_id(dir)
                    .inspect_err(|e| log::warn!(target: "telemetry", "no installation id: cannot use {} ({e}); reports carry the instance id only", dir.file(files::INSTALLATION_ID).display()))
                    .ok();
            }
        }
        let disclosure = self.disclosure.clone().unwrap_or_else(|| {
            Disclosure::new(
                &self.application.name,
                format!("the makers of {}", self.application.name),
                "setting the DO_NOT_TRACK environment variable to 1",
                "the product's documentation",
            )
        });
        // The disclosure comes first, before the thread that may send exists.
        disclosure.show(&self.consent);

        let shared = Arc::new(Shared {
            control: Mutex::new(Control {
                consent: self.consent.clone(),
                consent_changed: false,
                events: VecDeque::new(),
                shutdown: None,
                latest_version: None,
                status: ReporterStatus::default(),
                events_overflowing: false,
            }),
            wake: Condvar::new(),
        });
        let maker = Arc::new(ReportMaker {
            application: self.application,
            installation_id,
            sections: self.sections,
            system_facts: self.system_facts,
        });
        let (done_tx, done_rx) = mpsc::channel();
        // The schedule starts now, not when the thread first runs.
        let started = self.clock.now();
        let worker = Worker {
            started,
            shared: shared.clone(),
            maker: maker.clone(),
            http: self.http,
            state_dir: self.state_dir,
            spool,
            sinks: self.sinks,
            log_level: self.log_level,
            clock: self.clock,
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
            shared,
            maker,
            done: Mutex::new(Some(done_rx)),
            shutdown_timeout: self.shutdown_timeout,
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
    /// HTTP requests made.
    pub attempts: u64,
    /// Reports delivered (including spooled ones delivered later).
    pub delivered: u64,
    /// Reports put in the spool.
    pub spooled: u64,
    /// Reports dropped (too large, or pushed out of a full spool).
    pub dropped: u64,
    /// The last delivery error.
    pub last_error: Option<String>,
    /// While a failed send waits to be retried: the clock time of the retry.
    pub retry_at: Option<Duration>,
}

struct Control {
    consent: ConsentDecision,
    consent_changed: bool,
    events: VecDeque<String>,
    /// When shutdown was asked for (real time), if it was.
    shutdown: Option<Instant>,
    latest_version: Option<String>,
    status: ReporterStatus,
    /// Events are being dropped (logged once until the queue has room again).
    events_overflowing: bool,
}

struct Shared {
    control: Mutex<Control>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running reporter. Dropping it shuts it down (within the shutdown bound). It is `Send` and
/// `Sync`: share it (`Arc`) with the code that changes consent or serves `/telemetry`.
pub struct Reporter {
    shared: Arc<Shared>,
    maker: Arc<ReportMaker>,
    /// Signals the thread's end; in a mutex so that a `Reporter` can be shared (`Sync`).
    done: Mutex<Option<mpsc::Receiver<()>>>,
    shutdown_timeout: Duration,
}

impl Reporter {
    /// Starts configuring a reporter for `application`.
    pub fn builder(application: Application) -> ReporterBuilder {
        ReporterBuilder::new(application)
    }

    /// Changes consent now (a user's answer to "may we?"): persisted with its date in the
    /// state directory, and effective at once: enabling during the initial or undecided delay
    /// sends the first report right away; disabling stops all sending and empties the spool.
    ///
    /// # Errors
    /// [`ConsentError::Conflict`] when asked to enable while `DO_NOT_TRACK` or a `donottrack`
    /// executable name disables telemetry: that cannot be overridden.
    pub fn set_consent(&self, state: Consent) -> Result<(), ConsentError> {
        let mut control = self.shared.lock();
        if state != Consent::Disabled
            && matches!(
                control.consent.decided_by,
                SourceKind::DoNotTrack | SourceKind::ExecutableName
            )
        {
            return Err(ConsentError::Conflict {
                disabled_by: control.consent.decided_by.to_string(),
                flag: "the request to enable telemetry".to_owned(),
            });
        }
        control.consent.state = state;
        control.consent.decided_by = SourceKind::Runtime;
        control.consent_changed = true;
        drop(control);
        self.shared.wake.notify_all();
        Ok(())
    }

    /// The current consent decision.
    pub fn consent(&self) -> ConsentDecision {
        self.shared.lock().consent.clone()
    }

    /// Sends a report tagged `event:{name}` soon (Automatisch's user-action events), if consent
    /// allows. Returns at once; at most 64 events wait, more are dropped and logged.
    pub fn send_event(&self, name: &str) {
        let mut control = self.shared.lock();
        if control.events.len() >= MAX_PENDING_EVENTS {
            control.status.dropped += 1;
            let first = !std::mem::replace(&mut control.events_overflowing, true);
            drop(control);
            if first {
                log::warn!(target: "telemetry", "telemetry events are being dropped: {MAX_PENDING_EVENTS} are waiting to be sent (the endpoint is slow or down); drops are counted in the reporter's status");
            }
            return;
        }
        control.events.push_back(format!("event:{name}"));
        drop(control);
        self.shared.wake.notify_all();
    }

    /// The latest version the endpoint announced (FerretDB's version notification), if any.
    pub fn latest_version(&self) -> Option<String> {
        self.shared.lock().latest_version.clone()
    }

    /// The report as the product sees it locally now: current metric values (not rounded),
    /// the sections (anonymized as they are added: hashed names, skipped fields), the facts.
    /// This is what `/telemetry?anonymize=false` shows.
    pub fn report(&self) -> Report {
        self.maker.build(None)
    }

    /// Exactly what would leave the machine if a report were sent now: [`report`](Self::report)
    /// anonymized and cut down to what consent allows (`/telemetry?anonymize=true`). `None`
    /// if consent allows nothing to leave.
    pub fn payload(&self) -> Option<Report> {
        let decision = self.consent();
        allowed(&decision).then(|| outgoing(self.report(), &decision))
    }

    /// What the reporter has done so far.
    pub fn status(&self) -> ReporterStatus {
        self.shared.lock().status.clone()
    }

    /// Stops the reporter: sends a final report if consent is enabled, and returns within
    /// the shutdown bound whatever the endpoint does. Returns true if the reporter finished in
    /// time (false: it was still waiting on the network, and is abandoned).
    pub fn shutdown(mut self) -> bool {
        self.stop()
    }

    fn stop(&mut self) -> bool {
        let Some(done) = self
            .done
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return true;
        };
        self.shared.lock().shutdown = Some(Instant::now());
        self.shared.wake.notify_all();
        done.recv_timeout(self.shutdown_timeout + Duration::from_millis(250))
            .is_ok()
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Builds reports: the same for the reporter's thread and for [`Reporter::report`].
struct ReportMaker {
    application: Application,
    installation_id: Option<uuid::Uuid>,
    sections: Vec<SectionProvider>,
    system_facts: Option<BuildFacts>,
}

impl ReportMaker {
    /// The local (not rounded) report, tagged with its trigger.
    fn build(&self, trigger: Option<&str>) -> Report {
        let mut report = Report::collect(self.application.clone());
        report.installation_id = self.installation_id;
        report.trigger = trigger.map(str::to_owned);
        for provider in &self.sections {
            if catch_unwind(AssertUnwindSafe(|| provider(&mut report))).is_err() {
                log::error!(target: "telemetry", "a telemetry section provider panicked; its section is left out");
            }
        }
        if let Some(build) = &self.system_facts {
            report.add_section("environment", &SystemFacts::collect(build.clone()));
        }
        report
    }
}

/// Whether consent lets anything leave: usage statistics, or at least the version check.
fn allowed(decision: &ConsentDecision) -> bool {
    decision.state != Consent::Disabled
        && (decision.category(Category::UsageStatistics) != Consent::Disabled
            || decision.category(Category::VersionCheck) != Consent::Disabled)
}

/// A local report as it leaves: anonymized, and without what consent withholds (with usage
/// statistics disabled, only the header is left for the version check; with error reports
/// disabled, the error and panic counters are removed).
fn outgoing(report: Report, decision: &ConsentDecision) -> Report {
    let mut report = report.anonymized();
    if decision.category(Category::UsageStatistics) == Consent::Disabled {
        report.metrics = Default::default();
        report.sections.clear();
    }
    if decision.category(Category::ErrorReports) == Consent::Disabled {
        let is_error = |name: &str| ERROR_METRIC_PREFIXES.iter().any(|p| name.starts_with(p));
        report.metrics.counters.retain(|name, _| !is_error(name));
        report.metrics.histograms.retain(|name, _| !is_error(name));
    }
    report
}

/// The reporter thread's state.
struct Worker {
    shared: Arc<Shared>,
    maker: Arc<ReportMaker>,
    http: Option<HttpConfig>,
    state_dir: Option<StateDir>,
    spool: Option<Spool>,
    sinks: Vec<Arc<dyn Sink>>,
    log_level: log::Level,
    clock: Arc<dyn Clock>,
    initial_delay: Duration,
    undecided_delay: Duration,
    interval: Duration,
    schedules: Vec<(String, Duration)>,
    shutdown_timeout: Duration,
    announced_version: Option<String>,
    /// The clock time at which the reporter was started.
    started: Duration,
    /// The spool cannot be written (logged once until a write succeeds again).
    spool_failing: bool,
}

/// What the loop does next.
enum Step {
    Send(String),
    Shutdown(Instant),
}

impl Worker {
    fn run(mut self) {
        let start = self.started;
        let undecided = self.shared.lock().consent.state == Consent::Undecided;
        let first = start
            + if undecided {
                self.undecided_delay
            } else {
                self.initial_delay
            };
        let mut next_regular = first;
        let mut next_extra: Vec<Duration> = self
            .schedules
            .iter()
            .map(|(_, every)| start + self.initial_delay + *every)
            .collect();
        loop {
            let step = {
                let mut control = self.shared.lock();
                loop {
                    let now = self.clock.now();
                    control.status.observed = now;
                    if let Some(asked) = control.shutdown {
                        break Step::Shutdown(asked);
                    }
                    if std::mem::take(&mut control.consent_changed) {
                        self.persist(control.consent.state);
                        match control.consent.state {
                            // The decision takes effect at once: the first report is due now.
                            Consent::Enabled if next_regular == first && now < first => {
                                next_regular = now
                            }
                            Consent::Disabled => self.clear_spool(),
                            _ => {}
                        }
                    }
                    if control.events.len() < MAX_PENDING_EVENTS / 2 {
                        control.events_overflowing = false;
                    }
                    if let Some(event) = control.events.pop_front() {
                        break Step::Send(event);
                    }
                    if now >= next_regular {
                        next_regular = now + self.interval;
                        break Step::Send("schedule".to_owned());
                    }
                    if let Some(i) = next_extra.iter().position(|due| now >= *due) {
                        next_extra[i] = now + self.schedules[i].1;
                        break Step::Send(self.schedules[i].0.clone());
                    }
                    let due = next_extra.iter().copied().fold(next_regular, Duration::min);
                    let wait = self.clock.real_wait(due.saturating_sub(now));
                    control = self
                        .shared
                        .wake
                        .wait_timeout(control, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            };
            match step {
                Step::Send(trigger) => self.report(&trigger, None),
                Step::Shutdown(asked) => {
                    let enabled = self
                        .shared
                        .lock()
                        .consent
                        .category(Category::UsageStatistics)
                        == Consent::Enabled;
                    if enabled {
                        self.report("shutdown", Some(asked + self.shutdown_timeout));
                    }
                    return;
                }
            }
        }
    }

    fn persist(&self, state: Consent) {
        if let Some(dir) = &self.state_dir
            && let Err(e) = crate::consent::persist(dir, state)
        {
            log::warn!(target: "telemetry", "the telemetry decision ({state}) holds for this run only: cannot save it in {}: {e}", dir.path().display());
        }
    }

    fn clear_spool(&self) {
        if let Some(spool) = &self.spool {
            for (path, _) in spool.list().unwrap_or_default() {
                spool.remove(&path);
            }
        }
    }

    /// Builds a report, hands it to the local sinks, and sends it if consent allows.
    /// `deadline` bounds the whole send (shutdown).
    fn report(&mut self, trigger: &str, deadline: Option<Instant>) {
        let decision = self.shared.lock().consent.clone();
        let report = outgoing(self.maker.build(Some(trigger)), &decision);
        self.shared.lock().status.built += 1;
        for sink in &self.sinks {
            match catch_unwind(AssertUnwindSafe(|| sink.send(&report))) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => log::warn!(target: "telemetry", "{e}"),
                Err(_) => {
                    log::error!(target: "telemetry", "a telemetry sink panicked; the product is unaffected")
                }
            }
        }
        let Some(http) = self.http.clone().filter(|_| allowed(&decision)) else {
            let why = if self.http.is_none() {
                "no endpoint is configured"
            } else {
                "telemetry is disabled"
            };
            self.write_last(&report, None, why);
            return;
        };
        let payload = report.to_json().into_bytes();
        if payload.len() > http.max_payload_bytes {
            log::error!(target: "telemetry", "telemetry report not sent: {} bytes is over the {} byte cap", payload.len(), http.max_payload_bytes);
            self.shared.lock().status.dropped += 1;
            self.write_last(&report, None, "the report is larger than the payload cap");
            return;
        }
        log::log!(target: "telemetry", self.log_level, "sending telemetry report to {}: {}", http.endpoint, String::from_utf8_lossy(&payload));
        // On disk before it is sent: if the send outlives the shutdown bound and the process
        // exits, the next start sends it.
        let claimed = self.keep_claimed(&payload);
        match self.deliver(&http, &payload, deadline) {
            Ok(()) => {
                if let (Some(spool), Some(claimed)) = (&self.spool, &claimed) {
                    spool.remove(claimed);
                }
                self.write_last(&report, Some(&http.endpoint), "sent");
                self.drain_spool(&http, deadline);
            }
            Err(e) => {
                let kept = match (&self.spool, &claimed) {
                    (Some(spool), Some(claimed)) => match spool.release(claimed) {
                        Ok(dropped) => {
                            if dropped > 0 {
                                self.shared.lock().status.dropped += dropped as u64;
                                log::warn!(target: "telemetry", "the telemetry spool in {} is full: {dropped} oldest report(s) dropped", spool.dir().display());
                            }
                            true
                        }
                        Err(_) => false,
                    },
                    _ => false,
                };
                let outcome = if kept {
                    "delivery failed; kept in the spool to send later"
                } else {
                    "delivery failed; not kept (no usable spool)"
                };
                log::warn!(target: "telemetry", "telemetry report not delivered to {} ({e}): {outcome}", http.endpoint);
                // The local record first: whoever sees the status change finds it written.
                self.write_last(&report, None, outcome);
                let mut control = self.shared.lock();
                if kept {
                    control.status.spooled += 1;
                } else {
                    control.status.dropped += 1;
                }
                control.status.last_error = Some(e);
            }
        }
    }

    /// Sends spooled reports, oldest first, each claimed first so that a process sharing the
    /// spool never sends the same one. Stops at the first failure, but a report the collector
    /// refuses (4xx) or a file that is not a report is taken out of line instead of blocking
    /// the others.
    fn drain_spool(&mut self, http: &HttpConfig, deadline: Option<Instant>) {
        let Some(waiting) = self.spool.as_ref().map(|s| s.list().unwrap_or_default()) else {
            return;
        };
        for (path, _) in waiting {
            let Some(spool) = &self.spool else { return };
            let Some(claimed) = spool.claim(&path) else {
                continue; // another process is sending it
            };
            let payload = match spool.read(&claimed) {
                Ok(payload) if serde_json::from_slice::<Report>(&payload).is_ok() => payload,
                _ => {
                    spool.set_aside(&claimed);
                    self.shared.lock().status.dropped += 1;
                    log::warn!(target: "telemetry", "{} is not a telemetry report; it is set aside (.corrupt) and not sent", path.display());
                    continue;
                }
            };
            let once = HttpConfig {
                retries: 0,
                ..http.clone()
            };
            let result = self.deliver(&once, &payload, deadline);
            let Some(spool) = &self.spool else { return };
            match result {
                Ok(()) => {
                    spool.remove(&claimed);
                }
                Err(e) if e.starts_with("HTTP 4") && !e.starts_with("HTTP 429") => {
                    spool.remove(&claimed);
                    self.shared.lock().status.dropped += 1;
                    log::warn!(target: "telemetry", "the collector refused a spooled telemetry report ({e}); it is dropped");
                }
                Err(_) => {
                    let _ = spool.unclaim(&claimed);
                    return;
                }
            }
        }
    }

    /// Writes the report about to be sent into the spool, claimed. `None` if there is no
    /// spool or it cannot be written (logged once, naming the directory, until it works).
    fn keep_claimed(&mut self, payload: &[u8]) -> Option<PathBuf> {
        let spool = self.spool.as_ref()?;
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        match spool.write_claimed(payload, millis) {
            Ok(Some(claimed)) => {
                if std::mem::take(&mut self.spool_failing) {
                    log::info!(target: "telemetry", "the telemetry spool in {} can be written again", spool.dir().display());
                }
                Some(claimed)
            }
            Ok(None) => None,
            Err(e) => {
                if !std::mem::replace(&mut self.spool_failing, true) {
                    log::warn!(target: "telemetry", "cannot keep unsent telemetry reports in {} ({e}): reports that cannot be delivered are not kept", spool.dir().display());
                }
                None
            }
        }
    }

    /// One report, with retries. Stops retrying at shutdown or at the deadline.
    fn deliver(
        &mut self,
        http: &HttpConfig,
        payload: &[u8],
        deadline: Option<Instant>,
    ) -> Result<(), String> {
        let mut last_error = String::new();
        for attempt in 0..=http.retries {
            let budget = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => http.total_timeout,
            };
            if budget.is_zero() {
                return Err(format!("out of time ({last_error})"));
            }
            self.shared.lock().status.attempts += 1;
            let wait = match http::post(http, payload, budget.min(http.total_timeout)) {
                Ok(answer) if (200..300).contains(&answer.status) => {
                    self.shared.lock().status.delivered += 1;
                    self.note_version(&answer.body);
                    return Ok(());
                }
                Ok(answer) => {
                    last_error = format!("HTTP {}", answer.status);
                    let retryable = answer.status == 429 || answer.status >= 500;
                    if !retryable {
                        return Err(last_error);
                    }
                    answer.retry_after.map(|d| d.min(Duration::from_secs(3600)))
                }
                Err(e) => {
                    last_error = e;
                    None
                }
            };
            if attempt == http.retries {
                break;
            }
            let backoff = wait.unwrap_or_else(|| jittered_backoff(http.backoff, attempt));
            if !self.pause(backoff, deadline) {
                break;
            }
        }
        Err(last_error)
    }

    /// Waits `pause` of clock time; false if shutdown or a deadline interrupts it.
    fn pause(&self, pause: Duration, deadline: Option<Instant>) -> bool {
        let until = self.clock.now() + pause;
        let mut control = self.shared.lock();
        control.status.retry_at = Some(until);
        let resumed = self.wait_until(control, until, deadline);
        self.shared.lock().status.retry_at = None;
        resumed
    }

    fn wait_until(
        &self,
        mut control: MutexGuard<'_, Control>,
        until: Duration,
        deadline: Option<Instant>,
    ) -> bool {
        loop {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            if control.shutdown.is_some() && deadline.is_none() {
                return false;
            }
            let now = self.clock.now();
            control.status.observed = now;
            if now >= until {
                return true;
            }
            let wait = self
                .clock
                .real_wait(until - now)
                .min(Duration::from_millis(100));
            control = self
                .shared
                .wake
                .wait_timeout(control, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn note_version(&mut self, body: &[u8]) {
        let Some(version) = parse_version_notice(body) else {
            return;
        };
        if self.announced_version.as_deref() != Some(version.as_str()) {
            log::info!(target: "telemetry", "{} {version} is available (running {})", self.maker.application.name, self.maker.application.version);
            self.announced_version = Some(version.clone());
        }
        self.shared.lock().latest_version = Some(version);
    }

    /// Writes the last report to `telemetry.json` with whether and where it was sent
    /// (FerretDB keeps its last report this way).
    fn write_last(&self, report: &Report, sent_to: Option<&str>, outcome: &str) {
        let Some(dir) = &self.state_dir else { return };
        let record = serde_json::json!({
            "sent": sent_to.is_some(),
            "endpoint": sent_to,
            "outcome": outcome,
            "written_at": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            "report": report,
        });
        let bytes = serde_json::to_vec_pretty(&record).unwrap_or_default();
        if let Err(e) = dir.write(files::LAST_REPORT, &bytes) {
            log::debug!(target: "telemetry", "cannot write {}: {e}", dir.file(files::LAST_REPORT).display());
        }
    }
}

/// `base * 2^attempt`, at most 5 minutes, with full jitter (a random point in the second half
/// of that range), so many installations that failed together do not retry together.
fn jittered_backoff(base: Duration, attempt: u32) -> Duration {
    let ceiling = base
        .saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
        .min(Duration::from_secs(300));
    let random = uuid::Uuid::new_v4().as_u128() as u64;
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

//! Configuring and starting a [`Reporter`]: [`ReporterBuilder`], and [`ReporterError`] when it
//! cannot start.

use super::decide;
use super::decide::Decider;
use super::gate::{Control, Gate};
use super::maker::{ReportMaker, SectionProvider, Shape};
use super::spool::Spool;
use super::worker::Worker;
use super::{
    Clock, EndpointError, HttpConfig, Reporter, ReporterStatus, SpoolLimits, SystemClock,
    validate_endpoint,
};
use crate::product::consent::{
    Category, Consent, ConsentBuilder, ConsentDecision, ConsentError, SourceKind,
};
use crate::product::disclosure::Disclosure;
use crate::product::facts::BuildFacts;
use crate::product::identity::{self, Identity};
use crate::product::payload::OutgoingReport;
use crate::product::report::{Application, Report};
use crate::product::sink::Sink;
use crate::state::{StateDir, files};
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Configures and starts a [`Reporter`].
#[must_use = "a builder does nothing until `start` is called"]
pub struct ReporterBuilder {
    pub(super) application: Application,
    pub(super) consent: ConsentBuilder,
    pub(super) disclosure: Option<Disclosure>,
    pub(super) http: Option<HttpConfig>,
    pub(super) upload_config: Option<String>,
    pub(super) state_dir: Option<StateDir>,
    pub(super) identity: Identity,
    pub(super) initial_delay: Duration,
    pub(super) undecided_delay: Duration,
    pub(super) send_undecided_period: bool,
    pub(super) interval: Duration,
    pub(super) schedules: Vec<(String, Duration)>,
    pub(super) shutdown_timeout: Duration,
    pub(super) sinks: Vec<Arc<dyn Sink>>,
    pub(super) sections: Vec<SectionProvider>,
    pub(super) shape: Option<Shape>,
    pub(super) system_facts: Option<BuildFacts>,
    pub(super) spool_limits: SpoolLimits,
    pub(super) log_level: log::Level,
    pub(super) log_unsent: bool,
    pub(super) final_report: FinalReport,
    pub(super) keep_last_report: bool,
    pub(super) clock: Arc<dyn Clock>,
}

/// When a reporter makes a report at shutdown ([`ReporterBuilder::final_report`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FinalReport {
    /// Always (while consent allows sending): nothing recorded since the last report is lost.
    #[default]
    Always,
    /// Only if the process lived past the initial (or undecided) delay, or a scheduled report
    /// was made: a short-lived instance (a test container) sends nothing, as EventStoreDB's
    /// "Usage telemetry" page describes its one-hour delay.
    AfterInitialDelay,
    /// Never: reports leave only on their schedule and with events (Automatisch's diagnostics
    /// every six hours).
    Never,
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
            upload_config: None,
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
            shape: None,
            system_facts: None,
            spool_limits: SpoolLimits::default(),
            log_level: log::Level::Info,
            log_unsent: false,
            final_report: FinalReport::Always,
            keep_last_report: true,
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

    /// The collector's upload configuration, fetched from `url` (the same rule as the endpoint:
    /// `https://`, or `http://` to a loopback host) through the consent gate before a report
    /// is sent, and again at most once an hour: only the metrics it lists are sent, each with
    /// its sampling rate (kept with that probability, decided by the report id). Until one has
    /// been fetched, reports carry no metrics. Local sinks and the debug print get the whole
    /// report.
    pub fn upload_config(mut self, url: impl Into<String>) -> Self {
        self.upload_config = Some(url.into());
        self
    }

    /// The state directory: persisted consent, installation id, hash key, the last report
    /// (`telemetry.json`) and the spool. Problems with it are logged once and degrade to "do
    /// not keep" (no spool, per-run ids), never to a crash.
    ///
    /// From this call on, the process's name-hashing key is the one stored there
    /// ([`crate::privacy::anonymize::use_key_file`]), so names hashed before [`start`](Self::start)
    /// hash as they will in the reports.
    pub fn state_dir(mut self, path: impl Into<PathBuf>) -> Self {
        let dir = StateDir::new(path);
        crate::privacy::anonymize::use_key_file(&dir.file(files::HASH_KEY));
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

    /// Sends the product's own payload instead of this crate's report envelope: for each
    /// report, `shape` receives the report as it would leave ([`OutgoingReport`]: anonymized,
    /// without what consent withholds) and returns a `#[derive(Telemetry)]
    /// #[telemetry(payload = "name")]` value, which is anonymized by its derived rules and
    /// sent as the whole HTTP body (EventStoreDB's message, Qdrant's `id`; see
    /// [`crate::payload`]). The same body is what the debug mode prints, what
    /// [`Reporter::payload_json`], the `show` command and `/telemetry?anonymize=true` show, and
    /// what is measured against the payload cap; the spool keeps those bytes and sends them as
    /// they are. Local sinks get the envelope, and the last-report file keeps it beside the
    /// payload. The shape runs on the reporter's thread, and on the caller's for
    /// [`Reporter::payload_json`] and `/telemetry`: keep it quick. A panic in
    /// `shape`, or a payload type implemented by hand, means the report is not sent (logged;
    /// counted in [`ReporterStatus::dropped`]).
    ///
    /// Take usage data from the report: it holds only what consent allows. A value `shape`
    /// reads from the product's own state is sent whatever the categories say, so leave it out
    /// when [`OutgoingReport::carries_usage`] is false (Unleash's `SEND_TELEMETRY=false` still
    /// sends the version check).
    pub fn payload_shape<P: crate::Payload + 'static>(
        mut self,
        shape: impl Fn(&OutgoingReport) -> P + Send + Sync + 'static,
    ) -> Self {
        self.shape = Some(Arc::new(move |report: &OutgoingReport| {
            crate::privacy::event::is_declared(
                P::__declaration(),
                P::NAME,
                crate::privacy::event::Declared::Payload,
            )
            .then(|| shape(report).anonymize(&crate::privacy::anonymize::global()))
        }));
        self
    }

    /// Adds the `environment` section ([`crate::product::facts::SystemFacts`]) with the product's
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

    /// Also logs each report that is not sent (telemetry disabled, or no endpoint),
    /// at the [transmission level](Self::transmission_log_level), as the body it would have
    /// had: EventStoreDB's page says an opted-out node still produces its messages to the
    /// console and the log. Off by default.
    pub fn log_unsent_reports(mut self, yes: bool) -> Self {
        self.log_unsent = yes;
        self
    }

    /// Whether [`Reporter::shutdown`] (or dropping the reporter) makes a final report with what
    /// was recorded since the last one (default [`FinalReport::Always`]). Events still waiting
    /// leave in any case.
    pub fn final_report(mut self, when: FinalReport) -> Self {
        self.final_report = when;
        self
    }

    /// Whether the last report, and what became of it, is written to `telemetry.json` in the
    /// state directory (default true, as FerretDB keeps its last report). Off for a product
    /// that promises its per-start id is stored nowhere (Qdrant's "Usage Statistics" page).
    pub fn keep_last_report(mut self, keep: bool) -> Self {
        self.keep_last_report = keep;
        self
    }

    /// The level at which every transmission is logged with its full payload (default info).
    pub fn transmission_log_level(mut self, level: log::Level) -> Self {
        self.log_level = level;
        self
    }

    /// The clock of the schedule (tests pass a [`FakeClock`](super::FakeClock)).
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

    pub(super) fn spool(&self) -> Option<Spool> {
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
        if let Some(url) = &self.upload_config {
            validate_endpoint(url).map_err(ReporterError::Endpoint)?;
        }
        if !self
            .schedules
            .iter()
            .all(|(name, _)| crate::privacy::event::is_trigger_name(name))
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
            match crate::product::consent::persist(dir, decision.state) {
                Ok(saved) => {
                    decision.decided_at = Some(saved.set_at);
                    seen = decide::saved_fingerprint(dir);
                }
                Err(e) => {
                    crate::diagnostics::diag!(
                        warn,
                        "the telemetry decision ({}) holds for this run only: cannot save it in the telemetry state directory: {e}",
                        decision.state
                    );
                }
            }
        }
        let debug = self.consent.debug_mode();
        if let Some(name) = &debug {
            crate::diagnostics::diag!(
                warn,
                "telemetry debug mode ({name}): reports are printed to standard error and nothing is sent"
            );
        }
        let mut installation_id = None;
        let mut spool = None;
        // One line per problem: an unusable state directory is said once, here, and the spool's
        // own write failures are not said again until a write has worked.
        let mut spool_failing = false;
        if let Some(dir) = &self.state_dir {
            if let Err(e) = identity::install_hash_key(dir) {
                crate::diagnostics::diag!(
                    warn,
                    "the telemetry state directory is not usable ({e}): names are hashed with a per-run key, and reports that cannot be delivered are not kept"
                );
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
                    crate::diagnostics::diag!(
                        info,
                        "telemetry is not enabled: {removed} unsent report(s) of an earlier run deleted"
                    );
                }
            } else {
                let recovered = spool_dir.recover();
                recovered.log_reclaimed();
                if recovered.dropped > 0 {
                    crate::diagnostics::diag!(
                        warn,
                        "the telemetry spool ({}) was over its caps: {} oldest report(s) dropped",
                        crate::state::named(files::SPOOL),
                        recovered.dropped
                    );
                }
            }
            spool = Some(Arc::new(spool_dir));
            if self.identity == Identity::Installation {
                installation_id = identity::installation_id(dir)
                    .inspect_err(|e| crate::diagnostics::diag!(warn, "no installation id: cannot use {} ({e}); reports carry the instance id only", crate::state::named(files::INSTALLATION_ID)))
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
            self.shape,
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
            upload_config: self
                .upload_config
                .map(super::upload_config::UploadConfig::new),
            client: super::transport::Client::new(),
            sinks: self.sinks,
            log_level: self.log_level,
            log_unsent: self.log_unsent,
            final_report: self.final_report,
            keep_last_report: self.keep_last_report,
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
                    crate::diagnostics::diag!(
                        error,
                        "the telemetry reporter stopped after a panic; the product is unaffected"
                    );
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

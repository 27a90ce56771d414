//! FerretDB's telemetry, as FerretDB's "Telemetry reporting" documentation describes it, built
//! with this crate.
//!
//! ```text
//! cargo run --example ferretdb [-- [--telemetry=VALUE] [--endpoint URL]]
//! ```
//!
//! - **Three states**: enabled, disabled, undecided (the default). Undecided waits one hour
//!   after start before it reports (what that hour recorded included), unless an opt-out
//!   comes first.
//! - **Off** with `--telemetry=` `0`, `f`, `disable`, `no`, `false`, `n`, `disabled`, `optout`,
//!   `opt-out`, `disallow` or `forbid`; with `DO_NOT_TRACK` set to `1`, `t`, `true` or `enable`;
//!   or with `donottrack` in the executable's name, which also refuses `--telemetry=enable`
//!   until the name changes. **On** with `--telemetry=` `1`, `t`, `enable`, `yes`, `true`, `y`,
//!   `enabled`, `optin`, `opt-in` or `allow`. The decision is kept in the state directory.
//! - **The payload** has the installation UUID, the version, the backend, the build
//!   configuration (package type, OS and architecture), query errors (by command, error
//!   code and operator), and the time each command takes, in seconds.
//! - FerretDB's page also lists the autonomous system number, the cloud region and the
//!   country: a collector would derive them from the connection's address. This crate sends
//!   no address and the collector in this workspace keeps none, so they are not here.
//! - **Version notification**: the collector answers with the latest version; a newer one is
//!   put in the log, in the startup warnings and in `serverStatus`. One that is the same or
//!   older than the running version is not announced. With telemetry disabled there is no
//!   version check.
//!
//! The run handles a few commands, some failing, prints the payload the next report would
//! carry, the startup warnings and the `serverStatus` telemetry part, and stops.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;
use telemetry_core::consent::ConsentBuilder;
use telemetry_core::disclosure::Disclosure;
use telemetry_core::identity::Identity;
use telemetry_core::payload::{Counts, InstallationId, OutgoingReport, Version};
use telemetry_core::reporter::{HttpConfig, Reporter, ReporterBuilder};
use telemetry_core::{
    Application, LabelValue, LabeledCounter, LabeledHistogram, RegistryError, Telemetry,
};

/// The commands whose failures and durations are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, LabelValue)]
pub enum Command {
    /// `find`
    Find,
    /// `insert`
    Insert,
    /// `update`
    Update,
    /// `aggregate`
    Aggregate,
}

impl Command {
    const ALL: [Command; 4] = [
        Command::Find,
        Command::Insert,
        Command::Update,
        Command::Aggregate,
    ];
}

/// The error codes a failing command returns.
#[derive(Clone, Copy, Debug, LabelValue)]
pub enum ErrorCode {
    /// `2`: a bad value.
    BadValue,
    /// `11000`: a duplicate key.
    DuplicateKey,
    /// `238`: not implemented yet.
    NotImplemented,
}

/// The query operators a failure is counted under.
#[derive(Clone, Copy, Debug, LabelValue)]
pub enum Operator {
    /// No operator.
    None,
    /// `$regex`
    Regex,
    /// `$elemMatch`
    ElemMatch,
}

/// The storage backend.
#[derive(Clone, Copy, Debug, Telemetry)]
pub enum Backend {
    /// PostgreSQL.
    PostgreSQL,
    /// Tigris.
    Tigris,
}

/// How this build was installed.
#[derive(Clone, Copy, Debug, Telemetry)]
pub enum Package {
    /// The Docker image.
    Docker,
    /// A `.deb` or `.rpm` package.
    Deb,
    /// Built from source.
    SelfBuilt,
}

/// The server's instrumentation.
pub struct Server {
    errors: LabeledCounter<(Command, ErrorCode, Operator)>,
    durations: LabeledHistogram<(Command,)>,
}

impl Server {
    /// The server's metrics.
    ///
    /// # Errors
    /// The [`RegistryError`] if a name is taken by another kind of metric.
    pub fn new() -> Result<Self, RegistryError> {
        Ok(Server {
            errors: telemetry_core::counter!(
                "ferretdb.query.errors",
                description = "Failed commands by command, error code and operator",
                labels(command: Command, code: ErrorCode, operator: Operator)
            )?,
            durations: telemetry_core::histogram!(
                "ferretdb.command.duration",
                description = "Time to execute a command",
                unit = Nanoseconds,
                labels(command: Command)
            )?,
        })
    }

    /// Handles one command taking `nanos`, failing with `error` under `operator` if given.
    pub fn handle(&self, command: Command, nanos: u64, error: Option<(ErrorCode, Operator)>) {
        self.durations.record((command,), nanos);
        if let Some((code, operator)) = error {
            self.errors.increment((command, code, operator));
        }
    }
}

/// FerretDB's report, as it leaves the machine.
#[derive(Telemetry)]
#[telemetry(payload = "ferretdb")]
pub struct FerretDbReport {
    /// The installation UUID (random, made at the first start, kept in the state directory).
    uuid: Option<InstallationId>,
    /// The running version.
    version: Version,
    /// The backend in use.
    backend: Backend,
    /// How this build was installed.
    package: Package,
    /// The operating system family (build configuration).
    #[telemetry(verbatim = "a constant of the standard library")]
    os: &'static str,
    /// The CPU architecture (build configuration).
    #[telemetry(verbatim = "a constant of the standard library")]
    arch: &'static str,
    /// Failed commands, by command.
    command_errors: Counts,
    /// Failed commands, by error code.
    error_codes: Counts,
    /// Failed commands, by query operator.
    operator_errors: Counts,
    /// Mean time to execute each command, seconds.
    command_seconds: BTreeMap<Command, f64>,
}

/// Reads one environment variable: `std::env::var` in the product, a fixed map in its tests.
pub type EnvReader = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where the product reads its settings from.
pub struct Settings {
    /// The process environment (`std::env::var`), or a test's.
    pub environment: EnvReader,
    /// The executable's path (`argv[0]`).
    pub executable: PathBuf,
    /// The value of `--telemetry=`, if given.
    pub telemetry_flag: Option<String>,
    /// Where FerretDB keeps its state (the decision, the installation UUID, the last report).
    pub state_dir: PathBuf,
}

/// FerretDB's consent: `--telemetry`, `DO_NOT_TRACK` and the executable's name (the last two
/// are read by every reporter), undecided by default.
pub fn consent(settings: &Settings) -> ConsentBuilder {
    let environment = settings.environment.clone();
    ConsentBuilder::new()
        .environment(move |name| environment(name))
        .executable(&settings.executable)
        .flag("--telemetry", settings.telemetry_flag.as_deref())
}

/// The reporter, as FerretDB configures it. `version` is the running version.
pub fn reporter(settings: &Settings, version: &'static str) -> ReporterBuilder {
    Reporter::builder(Application::new("ferretdb", version))
        .consent(consent(settings))
        .disclosure(Disclosure::new(
            "FerretDB",
            "FerretDB Inc.",
            "running with --telemetry=disable, setting DO_NOT_TRACK=true, or putting \
             `donottrack` in the executable's name",
            "https://docs.ferretdb.io/telemetry/",
        ))
        .state_dir(&settings.state_dir)
        .identity(Identity::Installation)
        // The hour of delay is a time to opt out in: what it recorded is then reported.
        .send_undecided_period(true)
        .system_facts(telemetry_core::build_facts!())
        .payload_shape(|report: &OutgoingReport| FerretDbReport {
            uuid: report.installation_id(),
            version: report.version(),
            backend: Backend::PostgreSQL,
            package: Package::SelfBuilt,
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
            command_errors: report.counts_by("ferretdb.query.errors", "command"),
            error_codes: report.counts_by("ferretdb.query.errors", "code"),
            operator_errors: report.counts_by("ferretdb.query.errors", "operator"),
            command_seconds: Command::ALL
                .into_iter()
                .filter_map(|command| {
                    let name = command.label_text();
                    let h = report
                        .metrics()
                        .histogram_with("ferretdb.command.duration", &[("command", &name)])?;
                    (h.count() > 0).then(|| (command, h.sum() as f64 / h.count() as f64 / 1e9))
                })
                .collect(),
        })
}

/// The startup warnings (`getLog startupWarnings`): the version notice, if a newer version
/// was announced.
pub fn startup_warnings(reporter: &Reporter) -> Vec<String> {
    reporter
        .update_available()
        .map(|latest| {
            format!(
                "A new version available! The latest version: {latest}. The current version: {}.",
                reporter.report().application.version()
            )
        })
        .into_iter()
        .collect()
}

/// The telemetry part of `serverStatus`.
pub fn server_status(reporter: &Reporter) -> serde_json::Value {
    let consent = reporter.consent().state;
    serde_json::json!({
        "telemetry": format!("{consent:?}").to_lowercase(),
        "latestVersion": reporter.update_available(),
        "updateAvailable": reporter.update_available().is_some(),
    })
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Vec<String> = std::env::args().collect();
    let option = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("{name}=")).map(str::to_owned))
    };
    let settings = Settings {
        environment: Arc::new(|name| std::env::var(name).ok()),
        executable: args.first().map(PathBuf::from).unwrap_or_default(),
        telemetry_flag: option("--telemetry"),
        state_dir: std::env::temp_dir().join("ferretdb-example-telemetry"),
    };
    let server = Server::new()?;
    let mut builder = reporter(&settings, "1.0.0");
    if let Some(url) = option("--endpoint") {
        builder = builder.endpoint(HttpConfig::new(url));
    }
    let reporter = builder.start()?;
    server.handle(Command::Find, 1_200_000, None);
    server.handle(
        Command::Find,
        900_000,
        Some((ErrorCode::NotImplemented, Operator::ElemMatch)),
    );
    server.handle(
        Command::Insert,
        400_000,
        Some((ErrorCode::DuplicateKey, Operator::None)),
    );
    server.handle(Command::Aggregate, 8_000_000, None);
    let payload: serde_json::Value = serde_json::from_str(&reporter.preview_json())?;
    println!("{}", serde_json::to_string_pretty(&payload)?);
    println!("startupWarnings: {:?}", startup_warnings(&reporter));
    println!("serverStatus.telemetry: {}", server_status(&reporter));
    reporter.shutdown();
    Ok(())
}

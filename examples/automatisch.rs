//! Automatisch's telemetry, as Automatisch's "Telemetry" documentation describes it, built
//! with this crate.
//!
//! ```text
//! cargo run --example automatisch [-- --endpoint URL]
//! TELEMETRY_ENABLED=false cargo run --example automatisch
//! ```
//!
//! - **On by default**; `TELEMETRY_ENABLED=false` turns it off.
//! - **Events of user actions** leave when the action happens: a flow created, a step added, a
//!   connection made, an execution finished. Each carries its typed data, without credentials,
//!   payloads or anything that identifies a person: the types below skip the credentials and
//!   hash the names a user typed.
//! - **Diagnostic information every six hours**: the version, the service type (main or
//!   worker), the operating system and its version, the CPUs and the memory.
//! - **Organization and instance ids**: random ids made when Automatisch is installed.
//!
//! The run creates a flow and runs it (without `--endpoint`, both events are logged with the
//! payload they would carry), prints the next diagnostics, and stops.

use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use telemetry_core::consent::{Consent, ConsentBuilder, Polarity, ValueRule};
use telemetry_core::disclosure::Disclosure;
use telemetry_core::identity::Identity;
use telemetry_core::payload::{InstallationId, OutgoingReport, SectionData, Version};
use telemetry_core::reporter::{FinalReport, HttpConfig, Reporter, ReporterBuilder};
use telemetry_core::{Application, Pii, Telemetry};
use uuid::Uuid;

/// How often the diagnostic information is sent.
pub const DIAGNOSTICS_EVERY: Duration = Duration::from_secs(6 * 3600);

/// The apps a step or a connection can use (a closed set: never what a user typed).
#[derive(Clone, Copy, Debug, Telemetry)]
pub enum App {
    /// GitHub.
    Github,
    /// Slack.
    Slack,
    /// A webhook.
    Webhook,
    /// Scheduled triggers.
    Scheduler,
}

/// A flow was created.
#[derive(Telemetry)]
#[telemetry(event = "flow_created")]
pub struct FlowCreated {
    /// The flow's steps, in order.
    pub steps: Vec<App>,
    /// Whether it is active.
    pub active: bool,
    /// The name the user gave it: hashed.
    #[telemetry(hash)]
    pub name: String,
}

/// A connection to an app was made.
#[derive(Telemetry)]
#[telemetry(event = "connection_created")]
pub struct ConnectionCreated {
    /// The app.
    pub app: App,
    /// Whether the credentials were verified.
    pub verified: bool,
    /// The credentials: never sent.
    #[telemetry(skip)]
    pub credentials: Pii<String>,
}

/// How an execution ended.
#[derive(Clone, Copy, Debug, Telemetry)]
pub enum ExecutionStatus {
    /// Every step succeeded.
    Success,
    /// A step failed.
    Failure,
}

/// A flow's execution finished.
#[derive(Telemetry)]
#[telemetry(event = "execution_finished")]
pub struct ExecutionFinished {
    /// How it ended.
    pub status: ExecutionStatus,
    /// Steps executed.
    pub steps: u32,
    /// How long it took (rounded).
    pub duration: Duration,
    /// The data that flowed through the steps: never sent.
    #[telemetry(skip)]
    pub payload: Pii<String>,
}

/// What this process is.
#[derive(Clone, Copy, Debug, Telemetry)]
pub enum ServiceType {
    /// The main service (web app and API).
    Main,
    /// A worker.
    Worker,
}

/// A tracking call, as it leaves the machine: an event or the diagnostics.
#[derive(Telemetry)]
#[telemetry(payload = "automatisch")]
pub struct Track {
    /// `flowCreated`, `connectionCreated`, `executionFinished` or `diagnosticInfo`.
    #[telemetry(verbatim = "one of the event names in this file")]
    event: &'static str,
    /// The organization's random id, made at installation.
    #[telemetry(
        rename = "organizationId",
        verbatim = "a random id made when Automatisch is installed"
    )]
    organization_id: Uuid,
    /// The instance's random id, made at installation.
    #[telemetry(rename = "instanceId")]
    instance_id: Option<InstallationId>,
    /// The event's data (events only).
    properties: Option<SectionData>,
    /// The diagnostic information (diagnostics only).
    diagnostics: Option<Diagnostics>,
}

/// The diagnostic information.
#[derive(Telemetry)]
pub struct Diagnostics {
    /// The running version.
    #[telemetry(rename = "automatischVersion")]
    version: Version,
    /// Main service or worker.
    #[telemetry(rename = "serviceType")]
    service_type: ServiceType,
    /// The operating system family.
    #[telemetry(rename = "osType", verbatim = "a constant of the standard library")]
    os_type: &'static str,
    /// The operating system's release.
    #[telemetry(
        rename = "osVersion",
        verbatim = "the OS release name, checked by SystemFacts"
    )]
    os_version: Option<String>,
    /// Logical CPUs.
    cpus: usize,
    /// Memory, bytes (rounded).
    memory: Option<u64>,
}

/// The tracking call for `report`: its event, or the diagnostics for a scheduled report.
fn track(report: &OutgoingReport, organization_id: Uuid, service: ServiceType) -> Track {
    let event = match report.event_name() {
        Some("flow_created") => "flowCreated",
        Some("connection_created") => "connectionCreated",
        Some("execution_finished") => "executionFinished",
        Some(_) => "otherEvent",
        None => "diagnosticInfo",
    };
    let facts = report.system_facts();
    Track {
        event,
        organization_id,
        instance_id: report.installation_id(),
        properties: report.event(),
        diagnostics: report.event_name().is_none().then(|| Diagnostics {
            version: report.version(),
            service_type: service,
            os_type: std::env::consts::OS,
            os_version: facts.and_then(|f| f.os_version()).map(str::to_owned),
            cpus: facts.map_or(0, |f| f.core_count()),
            memory: facts.and_then(|f| f.total_memory_bytes()),
        }),
    }
}

/// Reads one environment variable: `std::env::var` in the product, a fixed map in its tests.
pub type EnvReader = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where the product reads its settings from.
pub struct Settings {
    /// The process environment (`std::env::var`), or a test's.
    pub environment: EnvReader,
    /// Where the reporter keeps its files (the instance id among them).
    pub state_dir: PathBuf,
    /// The organization's id, which the product made at installation and keeps in its
    /// database.
    pub organization_id: Uuid,
    /// Main service or worker.
    pub service: ServiceType,
}

/// Automatisch's consent: on unless `TELEMETRY_ENABLED=false`.
pub fn consent(settings: &Settings) -> ConsentBuilder {
    let environment = settings.environment.clone();
    ConsentBuilder::new()
        .environment(move |name| environment(name))
        .env("TELEMETRY_ENABLED", Polarity::OptIn, ValueRule::FerretDb)
        .default_consent(Consent::Enabled)
}

/// The reporter, as Automatisch configures it: events as they happen, diagnostics every six
/// hours.
pub fn reporter(settings: &Settings) -> ReporterBuilder {
    let (organization_id, service) = (settings.organization_id, settings.service);
    Reporter::builder(Application::new("automatisch", "0.10.0"))
        .consent(consent(settings))
        .disclosure(Disclosure::new(
            "Automatisch",
            "Automatisch",
            "setting TELEMETRY_ENABLED=false",
            "https://automatisch.io/docs/advanced/telemetry",
        ))
        .state_dir(&settings.state_dir)
        .identity(Identity::Installation)
        .system_facts(telemetry_core::build_facts!())
        .initial_delay(DIAGNOSTICS_EVERY)
        .interval(DIAGNOSTICS_EVERY)
        // Diagnostics leave every six hours, not at shutdown; waiting events still do.
        .final_report(FinalReport::Never)
        .payload_shape(move |report: &OutgoingReport| track(report, organization_id, service))
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let settings = Settings {
        environment: Arc::new(|name| std::env::var(name).ok()),
        state_dir: std::env::temp_dir().join("automatisch-example-telemetry"),
        organization_id: Uuid::new_v4(),
        service: ServiceType::Main,
    };
    // Without an endpoint, each payload is logged instead of sent.
    let mut builder = reporter(&settings).log_unsent_reports(true);
    if let Some(url) = args
        .iter()
        .position(|a| a == "--endpoint")
        .and_then(|i| args.get(i + 1))
    {
        builder = builder.endpoint(HttpConfig::new(url));
    }
    let reporter = builder.start()?;
    reporter.send_event(&FlowCreated {
        steps: vec![App::Webhook, App::Slack],
        active: true,
        name: "Notify the on-call team".into(),
    });
    reporter.send_event(&ExecutionFinished {
        status: ExecutionStatus::Success,
        steps: 2,
        duration: Duration::from_millis(840),
        payload: Pii::new(r#"{"text": "database down"}"#.into()),
    });
    let diagnostics: serde_json::Value = serde_json::from_str(&reporter.preview_json())?;
    println!("{}", serde_json::to_string_pretty(&diagnostics)?);
    reporter.shutdown();
    Ok(())
}

//! Unleash's data collection, as Unleash's "Data collection" documentation describes it, built
//! with this crate.
//!
//! ```text
//! cargo run --example unleash [-- --endpoint URL]
//! SEND_TELEMETRY=false cargo run --example unleash
//! ```
//!
//! - **Version and instance id**: a version check carrying the running version and a random
//!   instance id kept with the installation.
//! - **Feature usage data** (Unleash 5.3 and later): counts only, read when a report is made
//!   from callback gauges over the product's own state: active feature toggles, users,
//!   projects, custom context fields, user groups, custom roles, environments, segments in
//!   use, custom strategies, and the feature exports and imports made.
//! - **`CHECK_VERSION`** set to anything but `true`, `t` or `1` turns all of it off: nothing is
//!   sent. **`SEND_TELEMETRY`** set to anything but those turns the feature usage data off;
//!   the version check still goes out.
//!
//! The run creates a few toggles and projects, prints the payload the next report would
//! carry, and stops.

use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use telemetry_core::consent::{Category, Consent, ConsentBuilder, Polarity, ValueRule};
use telemetry_core::disclosure::Disclosure;
use telemetry_core::identity::Identity;
use telemetry_core::payload::{InstallationId, OutgoingReport, Version};
use telemetry_core::reporter::{HttpConfig, Reporter, ReporterBuilder};
use telemetry_core::{Application, Counter, RegistryError, Telemetry};

/// What the product counts in its database (here: in memory).
#[derive(Default)]
pub struct Store {
    /// Active feature toggles.
    pub feature_toggles: AtomicI64,
    /// Users.
    pub users: AtomicI64,
    /// Projects.
    pub projects: AtomicI64,
    /// Custom context fields in use.
    pub context_fields: AtomicI64,
    /// User groups.
    pub groups: AtomicI64,
    /// Custom roles.
    pub roles: AtomicI64,
    /// Environments.
    pub environments: AtomicI64,
    /// Segments in use by feature toggles.
    pub segments: AtomicI64,
    /// Custom strategies in use.
    pub strategies: AtomicI64,
}

/// The gauges over the store, and the export and import counters.
pub struct Metrics {
    /// Feature exports made.
    pub exports: Counter,
    /// Feature imports made.
    pub imports: Counter,
}

/// The gauge names, with the field of the store each one reads.
const GAUGES: [&str; 9] = [
    "unleash.feature_toggles",
    "unleash.users",
    "unleash.projects",
    "unleash.context_fields",
    "unleash.groups",
    "unleash.roles",
    "unleash.environments",
    "unleash.segments",
    "unleash.strategies",
];

impl Metrics {
    /// Registers a callback gauge for each count of `store`, read when a snapshot is taken.
    ///
    /// # Errors
    /// The [`RegistryError`] if a name is taken by another kind of metric.
    pub fn new(store: &Arc<Store>) -> Result<Self, RegistryError> {
        let read = |field: fn(&Store) -> &AtomicI64| {
            let store = store.clone();
            move || field(&store).load(Ordering::Relaxed)
        };
        telemetry_core::gauge!(
            "unleash.feature_toggles",
            description = "Active feature toggles",
            callback = read(|s| &s.feature_toggles)
        )?;
        telemetry_core::gauge!(
            "unleash.users",
            description = "Users",
            callback = read(|s| &s.users)
        )?;
        telemetry_core::gauge!(
            "unleash.projects",
            description = "Projects",
            callback = read(|s| &s.projects)
        )?;
        telemetry_core::gauge!(
            "unleash.context_fields",
            description = "Custom context fields in use",
            callback = read(|s| &s.context_fields)
        )?;
        telemetry_core::gauge!(
            "unleash.groups",
            description = "User groups",
            callback = read(|s| &s.groups)
        )?;
        telemetry_core::gauge!(
            "unleash.roles",
            description = "Custom roles",
            callback = read(|s| &s.roles)
        )?;
        telemetry_core::gauge!(
            "unleash.environments",
            description = "Environments",
            callback = read(|s| &s.environments)
        )?;
        telemetry_core::gauge!(
            "unleash.segments",
            description = "Segments in use by feature toggles",
            callback = read(|s| &s.segments)
        )?;
        telemetry_core::gauge!(
            "unleash.strategies",
            description = "Custom strategies in use",
            callback = read(|s| &s.strategies)
        )?;
        Ok(Metrics {
            exports: telemetry_core::counter!(
                "unleash.feature_exports",
                description = "Feature exports made"
            )?,
            imports: telemetry_core::counter!(
                "unleash.feature_imports",
                description = "Feature imports made"
            )?,
        })
    }
}

/// The version check, as it leaves the machine.
#[derive(Telemetry)]
#[telemetry(payload = "unleash")]
pub struct VersionCheck {
    /// The running versions.
    versions: Versions,
    /// The random id kept with the installation.
    #[telemetry(rename = "instanceId")]
    instance_id: Option<InstallationId>,
    /// The feature usage counts: absent when `SEND_TELEMETRY` is off.
    #[telemetry(rename = "featureInfo")]
    feature_info: Option<FeatureInfo>,
}

/// The running versions.
#[derive(Telemetry)]
pub struct Versions {
    /// The open-source server's version.
    oss: Version,
}

/// The feature usage counts.
#[derive(Telemetry)]
pub struct FeatureInfo {
    /// Active feature toggles.
    #[telemetry(rename = "featureToggles")]
    feature_toggles: i64,
    /// Users.
    users: i64,
    /// Projects.
    projects: i64,
    /// Custom context fields in use.
    #[telemetry(rename = "contextFields")]
    context_fields: i64,
    /// User groups.
    groups: i64,
    /// Custom roles.
    roles: i64,
    /// Environments.
    environments: i64,
    /// Segments in use.
    segments: i64,
    /// Custom strategies in use.
    strategies: i64,
    /// Feature exports made.
    #[telemetry(rename = "featureExports")]
    feature_exports: u64,
    /// Feature imports made.
    #[telemetry(rename = "featureImports")]
    feature_imports: u64,
}

/// The feature usage counts, from the report (so a consent that withholds usage data leaves
/// them out): `None` when the report carries none.
fn feature_info(report: &OutgoingReport) -> Option<FeatureInfo> {
    if !report.carries_usage() {
        return None;
    }
    let metrics = report.metrics();
    let gauge = |name: &str| metrics.gauge(name).unwrap_or(0);
    let [
        feature_toggles,
        users,
        projects,
        context_fields,
        groups,
        roles,
        environments,
        segments,
        strategies,
    ] = GAUGES.map(gauge);
    Some(FeatureInfo {
        feature_toggles,
        users,
        projects,
        context_fields,
        groups,
        roles,
        environments,
        segments,
        strategies,
        feature_exports: metrics.counter("unleash.feature_exports").unwrap_or(0),
        feature_imports: metrics.counter("unleash.feature_imports").unwrap_or(0),
    })
}

/// Reads one environment variable: `std::env::var` in the product, a fixed map in its tests.
pub type EnvReader = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where the product reads its settings from.
pub struct Settings {
    /// The process environment (`std::env::var`), or a test's.
    pub environment: EnvReader,
    /// Where the reporter keeps its files (the instance id among them).
    pub state_dir: PathBuf,
}

/// Unleash's consent: `CHECK_VERSION` for everything, `SEND_TELEMETRY` for the usage data;
/// on when neither is set.
pub fn consent(settings: &Settings) -> ConsentBuilder {
    let environment = settings.environment.clone();
    ConsentBuilder::new()
        .environment(move |name| environment(name))
        .env("CHECK_VERSION", Polarity::OptIn, ValueRule::Unleash)
        .env_for(
            Category::UsageStatistics,
            "SEND_TELEMETRY",
            Polarity::OptIn,
            ValueRule::Unleash,
        )
        .default_consent(Consent::Enabled)
}

/// The reporter, as Unleash configures it.
pub fn reporter(settings: &Settings) -> ReporterBuilder {
    Reporter::builder(Application::new("unleash", "5.3.0"))
        .consent(consent(settings))
        .disclosure(Disclosure::new(
            "Unleash",
            "Bricks Software AS",
            "setting CHECK_VERSION=false (everything) or SEND_TELEMETRY=false (the feature \
             usage data)",
            "https://docs.getunleash.io/topics/data-collection",
        ))
        .state_dir(&settings.state_dir)
        .identity(Identity::Installation)
        .payload_shape(|report: &OutgoingReport| VersionCheck {
            versions: Versions {
                oss: report.version(),
            },
            instance_id: report.installation_id(),
            feature_info: feature_info(report),
        })
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let settings = Settings {
        environment: Arc::new(|name| std::env::var(name).ok()),
        state_dir: std::env::temp_dir().join("unleash-example-telemetry"),
    };
    let store = Arc::new(Store::default());
    let metrics = Metrics::new(&store)?;
    store.feature_toggles.store(42, Ordering::Relaxed);
    store.users.store(7, Ordering::Relaxed);
    store.projects.store(3, Ordering::Relaxed);
    store.environments.store(2, Ordering::Relaxed);
    metrics.exports.increment();
    let mut builder = reporter(&settings);
    if let Some(url) = args
        .iter()
        .position(|a| a == "--endpoint")
        .and_then(|i| args.get(i + 1))
    {
        builder = builder.endpoint(HttpConfig::new(url));
    }
    let reporter = builder.start()?;
    let payload: serde_json::Value = serde_json::from_str(&reporter.preview_json())?;
    println!("{}", serde_json::to_string_pretty(&payload)?);
    reporter.shutdown();
    Ok(())
}

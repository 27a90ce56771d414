//! Qdrant's usage statistics, as Qdrant's "Usage Statistics" documentation describes them,
//! built with this crate.
//!
//! ```text
//! cargo run --example qdrant [-- [--disable-telemetry] [--config FILE] [--endpoint URL]]
//! ```
//!
//! - **On by default**, off with any of: `QDRANT__TELEMETRY_DISABLED=true`, `telemetry_disabled:
//!   true` in the configuration file, or `--disable-telemetry`. Any one of them is enough.
//! - **The payload is Qdrant's telemetry API answer**: a random `id` made at each start and
//!   stored nowhere (the one a deletion request quotes), the system, the collections with
//!   their names hashed and big numbers rounded (123456789 is sent as 123456000), and request
//!   counts by endpoint. `/telemetry?details_level=6&anonymize=true` answers exactly what is sent.
//! - **Critical error reports**: a panic is counted by where it happened in Qdrant's own code
//!   (`crash::install_panic_hook`), without its message (which may name a collection) or any
//!   path.
//! - **Monitoring stays**: `/metrics` and `/telemetry` answer whether or not usage statistics
//!   are sent.
//!
//! The run creates two collections, answers a few searches, prints the anonymized
//! `/telemetry` answer and stops. With `--endpoint`, the final report goes there.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use telemetry_core::consent::{Combine, Consent, ConsentBuilder, Polarity, ValueRule};
use telemetry_core::crash::PanicHookConfig;
use telemetry_core::disclosure::Disclosure;
use telemetry_core::export::endpoint::Endpoints;
use telemetry_core::payload::{Counts, InstanceId, OutgoingReport, Version};
use telemetry_core::reporter::{HttpConfig, Reporter, ReporterBuilder, SpoolLimits};
use telemetry_core::{Application, LabelValue, LabeledCounter, RegistryError, Telemetry};

/// The REST endpoints whose requests are counted (a closed set: never the request's path).
#[derive(Clone, Copy, Debug, LabelValue)]
pub enum Endpoint {
    /// `PUT /collections/{name}`
    CreateCollection,
    /// `PUT /collections/{name}/points`
    Upsert,
    /// `POST /collections/{name}/points/search`
    Search,
}

/// The engine: collections of vectors.
#[derive(Default)]
pub struct Engine {
    collections: Mutex<BTreeMap<String, u64>>,
    requests: Option<LabeledCounter<(Endpoint,)>>,
}

impl Engine {
    /// An engine that counts its requests by endpoint.
    ///
    /// # Errors
    /// The [`RegistryError`] if the counter's name is taken by another kind of metric.
    pub fn new() -> Result<Self, RegistryError> {
        Ok(Engine {
            collections: Mutex::default(),
            requests: Some(telemetry_core::counter!(
                "qdrant.rest.requests",
                description = "REST requests, by endpoint",
                labels(endpoint: Endpoint)
            )?),
        })
    }

    fn count(&self, endpoint: Endpoint) {
        if let Some(requests) = &self.requests {
            requests.increment((endpoint,));
        }
    }

    /// Creates a collection.
    pub fn create_collection(&self, name: &str) {
        self.count(Endpoint::CreateCollection);
        self.collections.lock().unwrap().insert(name.to_owned(), 0);
    }

    /// Adds `vectors` vectors to a collection.
    pub fn upsert(&self, name: &str, vectors: u64) {
        self.count(Endpoint::Upsert);
        if let Some(count) = self.collections.lock().unwrap().get_mut(name) {
            *count += vectors;
        }
    }

    /// Rebuilds a collection's index. Panics if there is no such collection (a bug a critical
    /// error report shows).
    pub fn optimize(&self, name: &str) {
        let exists = self.collections.lock().unwrap().contains_key(name);
        assert!(exists, "no collection named {name}");
    }

    /// Answers a search (here: the number of vectors it looked at).
    pub fn search(&self, name: &str) -> u64 {
        self.count(Endpoint::Search);
        self.collections
            .lock()
            .unwrap()
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    fn telemetry(&self) -> Collections {
        let collections = self.collections.lock().unwrap();
        Collections {
            number_of_collections: collections.len() as u64,
            collections: collections
                .iter()
                .map(|(name, vectors)| CollectionTelemetry {
                    id: name.clone(),
                    vectors: *vectors,
                })
                .collect(),
        }
    }
}

/// Qdrant's telemetry API answer, as it leaves the machine.
#[derive(Telemetry)]
#[telemetry(payload = "qdrant")]
pub struct QdrantTelemetry {
    /// The random id made at start-up and stored nowhere: quote it to have the data deleted.
    id: InstanceId,
    /// The application and the machine it runs on.
    app: AppTelemetry,
    /// The collections.
    collections: Collections,
    /// Request counts.
    requests: RequestsTelemetry,
    /// Critical errors: panics, by where they happened in Qdrant's code.
    critical_errors: Counts,
}

/// The application and its machine.
#[derive(Telemetry)]
pub struct AppTelemetry {
    /// Always `qdrant`.
    #[telemetry(verbatim = "the product's name, a constant")]
    name: &'static str,
    /// The running version.
    version: Version,
    /// The machine, if system facts are collected.
    system: Option<SystemTelemetry>,
}

/// The machine.
#[derive(Telemetry)]
pub struct SystemTelemetry {
    /// The OS release, e.g. `Debian GNU/Linux 12`.
    #[telemetry(verbatim = "the OS release name, checked by SystemFacts")]
    distribution: Option<String>,
    /// Logical cores.
    cores: usize,
    /// Memory, bytes.
    ram_size: Option<u64>,
    /// Disk, bytes.
    disk_size: Option<u64>,
    /// Running in a container.
    is_docker: bool,
}

/// The collections.
#[derive(Telemetry)]
pub struct Collections {
    /// How many there are.
    number_of_collections: u64,
    /// Each one, by hashed name.
    collections: Vec<CollectionTelemetry>,
}

/// One collection.
#[derive(Telemetry)]
pub struct CollectionTelemetry {
    /// The collection's name, hashed: no collection name leaves.
    #[telemetry(hash)]
    id: String,
    /// Vectors stored (rounded).
    vectors: u64,
}

/// Request counts.
#[derive(Telemetry)]
pub struct RequestsTelemetry {
    /// REST requests by endpoint.
    rest: Counts,
}

/// Reads one environment variable: `std::env::var` in the product, a fixed map in its tests.
pub type EnvReader = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where the product reads its settings from.
pub struct Settings {
    /// The process environment (`std::env::var`), or a test's.
    pub environment: EnvReader,
    /// `telemetry_disabled` from `config/config.yaml` (or `config/production.yaml`), if set.
    pub config_telemetry_disabled: Option<String>,
    /// Whether `--disable-telemetry` was given.
    pub disable_telemetry_flag: bool,
    /// Where the reporter keeps its files.
    pub state_dir: PathBuf,
}

/// Qdrant's consent: any of its three opt-outs disables, and it is on otherwise.
pub fn consent(settings: &Settings) -> ConsentBuilder {
    let environment = settings.environment.clone();
    ConsentBuilder::new()
        .environment(move |name| environment(name))
        .combine(Combine::AnyDisables)
        .env(
            "QDRANT__TELEMETRY_DISABLED",
            Polarity::OptOut,
            ValueRule::FerretDb,
        )
        .config(
            "telemetry_disabled",
            settings.config_telemetry_disabled.as_deref(),
            Polarity::OptOut,
            ValueRule::FerretDb,
        )
        .switch(
            "--disable-telemetry",
            settings.disable_telemetry_flag,
            Polarity::OptOut,
        )
        .default_consent(Consent::Enabled)
}

/// The reporter, as Qdrant configures it: its consent, a disclosure, its payload.
pub fn reporter(settings: &Settings, engine: Arc<Engine>) -> ReporterBuilder {
    Reporter::builder(Application::new("qdrant", "1.7.4"))
        .consent(consent(settings))
        .disclosure(Disclosure::new(
            "Qdrant",
            "Qdrant Solutions GmbH",
            "setting QDRANT__TELEMETRY_DISABLED=true, `telemetry_disabled: true` in the \
             configuration file, or --disable-telemetry",
            "https://qdrant.tech/documentation/guides/usage-statistics/",
        ))
        .state_dir(&settings.state_dir)
        // The id is made at each start and stored nowhere: no last-report file, no spool.
        .keep_last_report(false)
        .spool_limits(SpoolLimits::new(0, 0))
        .system_facts(telemetry_core::build_facts!())
        .payload_shape(move |report: &OutgoingReport| QdrantTelemetry {
            id: report.instance_id(),
            app: AppTelemetry {
                name: "qdrant",
                version: report.version(),
                system: report.system_facts().map(|facts| SystemTelemetry {
                    distribution: facts.os_version().map(str::to_owned),
                    cores: facts.core_count(),
                    ram_size: facts.total_memory_bytes(),
                    disk_size: facts.total_disk_bytes(),
                    is_docker: facts.is_container(),
                }),
            },
            collections: engine.telemetry(),
            requests: RequestsTelemetry {
                rest: report.counts_by("qdrant.rest.requests", "endpoint"),
            },
            critical_errors: report.counts_by("telemetry.panics", "location"),
        })
}

/// `telemetry_disabled` from a YAML configuration file, read the simple way (a product reads
/// it with its own configuration loader).
fn config_value(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let value = line.trim().strip_prefix("telemetry_disabled:")?;
        Some(value.trim().to_owned())
    })
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let config =
        option("--config").map_or_else(|| PathBuf::from("config/config.yaml"), PathBuf::from);
    let settings = Settings {
        environment: Arc::new(|name| std::env::var(name).ok()),
        config_telemetry_disabled: config_value(&config),
        disable_telemetry_flag: args.iter().any(|a| a == "--disable-telemetry"),
        state_dir: std::env::temp_dir().join("qdrant-example-telemetry"),
    };
    telemetry_core::crash::install_panic_hook(PanicHookConfig::new(["qdrant"]));
    let engine = Arc::new(Engine::new()?);
    let mut builder = reporter(&settings, engine.clone());
    if let Some(url) = option("--endpoint") {
        builder = builder.endpoint(HttpConfig::new(url));
    }
    let reporter = Arc::new(builder.start()?);
    log::info!(
        "telemetry id of this run: {}",
        telemetry_core::instance_id()
    );

    engine.create_collection("customers");
    engine.create_collection("support-tickets");
    engine.upsert("customers", 123_456_789);
    engine.upsert("support-tickets", 4_321);
    for _ in 0..3 {
        engine.search("customers");
    }
    // A request that hits a bug: the server answers 500 and goes on.
    let _ = std::panic::catch_unwind(|| engine.optimize("archived-customers"));

    let endpoints = Endpoints::new(telemetry_core::application!()).with_reporter(reporter.clone());
    let answer = endpoints.handle("/telemetry?details_level=6&anonymize=true", None);
    let answer: serde_json::Value = serde_json::from_str(&answer.body)?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    drop(endpoints);
    if let Some(reporter) = Arc::into_inner(reporter) {
        reporter.shutdown();
    }
    Ok(())
}

//! EventStoreDB's usage telemetry, as EventStoreDB's "Usage telemetry" documentation
//! describes it, built with this crate.
//!
//! ```text
//! cargo run --example eventstoredb [-- --endpoint URL]
//! EVENTSTORE_TELEMETRY_OPTOUT=true cargo run --example eventstoredb
//! ```
//!
//! - **The message** is the one the page shows, key for key: `version`, `tag`, `uptime` as .NET
//!   writes a TimeSpan (`00:01:11.0115732`; here rounded down to the hour, as every uptime
//!   this crate sends), `cluster`, `configuration`, `database`, `environment`, `gossip`,
//!   `persistentSubscriptions` and `projections`. No stream names, metadata, event payloads,
//!   user names or passwords: the types below have no field for them.
//! - **Schedule**: the first message one hour after the node starts, then every 24 hours. A
//!   short-lived node (a test container) sends nothing, not even when it stops. Every
//!   transmission is logged.
//! - **Opt-out**: `EVENTSTORE_TELEMETRY_OPTOUT=true`. The node still produces its messages to
//!   the console and the log, and sends none of them. The start-up disclosure is shown either
//!   way, with the page's two texts.
//!
//! The run prints the disclosure and the message the next transmission would carry, and stops.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;
use telemetry_core::consent::{Consent, ConsentBuilder, Polarity, ValueRule};
use telemetry_core::disclosure::Disclosure;
use telemetry_core::payload::{OutgoingReport, TimeSpan};
use telemetry_core::reporter::{FinalReport, HttpConfig, Reporter, ReporterBuilder};
use telemetry_core::{Application, Telemetry};
use uuid::Uuid;

/// The version as the node reports it (four numbers, as .NET assemblies have).
pub const VERSION: &str = "23.10.0.0";
/// The build's tag.
pub const TAG: &str = "oss-v23.10.0";

/// The disclosure while telemetry is on, the page's text.
pub const ENABLED_TEXT: &str = "Telemetry\n---------\nEventStoreDB collects usage data in order to \
    improve your experience. The data is anonymous and collected by Event Store Ltd.\nYou can \
    opt out of sending telemetry by setting the EVENTSTORE_TELEMETRY_OPTOUT environment \
    variable to true.\nFor more information visit https://eventstore.com/telemetry";
/// The disclosure after an opt-out, the page's text.
pub const DISABLED_TEXT: &str = "Telemetry\n---------\nEventStoreDB collects usage data in order \
    to improve your experience. The data is anonymous and collected by EventStore Ltd.\nYou \
    have opted out of sending telemetry by setting the EVENTSTORE_TELEMETRY_OPTOUT environment \
    variable to true.\nFor more information visit https://eventstore.com/telemetry";

/// A node's role in its cluster.
#[derive(Clone, Copy, Debug, serde::Serialize, Telemetry)]
pub enum NodeState {
    /// The leader.
    Leader,
    /// A follower.
    Follower,
    /// A read-only replica.
    ReadOnlyReplica,
}

/// Which projections run.
#[derive(Clone, Copy, Debug, Telemetry)]
pub enum RunProjections {
    /// None.
    None,
    /// The system projections.
    System,
    /// All of them.
    All,
}

/// The CPU architecture, as .NET names it.
#[derive(Clone, Copy, Debug, Telemetry)]
pub enum ProcessorArchitecture {
    /// x86-64.
    X64,
    /// 64-bit ARM.
    Arm64,
    /// Another one.
    Other,
}

/// What the node knows of itself and its cluster (a real node reads it from its state).
pub struct Node {
    /// This node's id, a random UUID made when the node was first started.
    pub node_id: Uuid,
    /// The leader's id.
    pub leader_id: Uuid,
    /// This node's role.
    pub state: NodeState,
    /// The cluster's other nodes and their roles.
    pub gossip: BTreeMap<Uuid, NodeState>,
    /// The configured cluster size.
    pub cluster_size: u32,
    /// Which projections run.
    pub run_projections: RunProjections,
    /// The current epoch number.
    pub epoch_number: u64,
    /// The first epoch's id, a random UUID.
    pub first_epoch_id: Uuid,
    /// The chunk being written.
    pub active_chunk_number: u64,
}

/// The message, as it leaves the machine.
#[derive(Telemetry)]
#[telemetry(payload = "eventstoredb")]
pub struct Message {
    /// The node's version.
    #[telemetry(verbatim = "the product's version, a constant of the build")]
    version: &'static str,
    /// The build's tag.
    #[telemetry(verbatim = "the build's tag, a constant of the build")]
    tag: &'static str,
    /// Time since the node started.
    uptime: TimeSpan,
    /// The node's place in its cluster.
    cluster: Cluster,
    /// The configuration that shapes usage.
    configuration: Configuration,
    /// The database's position.
    database: Database,
    /// The machine.
    environment: Environment,
    /// The roles of the cluster's nodes, by node id.
    #[telemetry(verbatim = "random node ids, each with its role")]
    gossip: BTreeMap<Uuid, NodeState>,
    /// Persistent subscriptions.
    #[telemetry(rename = "persistentSubscriptions")]
    persistent_subscriptions: PersistentSubscriptions,
    /// Projections.
    projections: Projections,
}

/// The node's place in its cluster.
#[derive(Telemetry)]
pub struct Cluster {
    /// The leader's id.
    #[telemetry(
        rename = "leaderId",
        verbatim = "a random id the leader made for itself"
    )]
    leader_id: Uuid,
    /// This node's id.
    #[telemetry(rename = "nodeId", verbatim = "a random id the node made for itself")]
    node_id: Uuid,
    /// This node's role.
    #[telemetry(rename = "nodeState")]
    node_state: NodeState,
}

/// The configuration that shapes usage.
#[derive(Telemetry)]
pub struct Configuration {
    /// The configured cluster size.
    #[telemetry(rename = "clusterSize")]
    cluster_size: u32,
    /// The legacy AtomPub protocol.
    #[telemetry(rename = "enableAtomPubOverHttp")]
    enable_atom_pub_over_http: bool,
    /// The legacy TCP client protocol.
    #[telemetry(rename = "enableExternalTcp")]
    enable_external_tcp: bool,
    /// Running without TLS.
    insecure: bool,
    /// Which projections run.
    #[telemetry(rename = "runProjections")]
    run_projections: RunProjections,
}

/// The database's position.
#[derive(Telemetry)]
pub struct Database {
    /// The current epoch number.
    #[telemetry(rename = "epochNumber")]
    epoch_number: u64,
    /// The first epoch's id.
    #[telemetry(
        rename = "firstEpochId",
        verbatim = "a random id of the database's first epoch"
    )]
    first_epoch_id: Uuid,
    /// The chunk being written.
    #[telemetry(rename = "activeChunkNumber")]
    active_chunk_number: u64,
}

/// The machine.
#[derive(Telemetry)]
pub struct Environment {
    /// Logical cores.
    #[telemetry(rename = "coreCount")]
    core_count: usize,
    /// Running in a container.
    #[telemetry(rename = "isContainer")]
    is_container: bool,
    /// Running in a Kubernetes pod.
    #[telemetry(rename = "isKubernetes")]
    is_kubernetes: bool,
    /// The CPU architecture.
    #[telemetry(rename = "processorArchitecture")]
    processor_architecture: ProcessorArchitecture,
    /// Disk, bytes (rounded).
    #[telemetry(rename = "totalDiskSpace")]
    total_disk_space: u64,
    /// Memory, bytes (rounded).
    #[telemetry(rename = "totalMemory")]
    total_memory: u64,
}

/// Persistent subscriptions.
#[derive(Telemetry)]
pub struct PersistentSubscriptions {
    /// How many run.
    count: u64,
}

/// Projections.
#[derive(Telemetry)]
pub struct Projections {
    /// Custom projections.
    #[telemetry(rename = "customProjectionCount")]
    custom_projection_count: u64,
    /// Standard projections.
    #[telemetry(rename = "standardProjectionCount")]
    standard_projection_count: u64,
    /// Custom projections running.
    #[telemetry(rename = "customProjectionRunningCount")]
    custom_projection_running_count: u64,
    /// Standard projections running.
    #[telemetry(rename = "standardProjectionRunningCount")]
    standard_projection_running_count: u64,
    /// All projections.
    #[telemetry(rename = "totalCount")]
    total_count: u64,
    /// All projections running.
    #[telemetry(rename = "totalRunningCount")]
    total_running_count: u64,
}

/// The message made from the outgoing report and the node's state.
fn message(report: &OutgoingReport, node: &Node) -> Message {
    let facts = report.system_facts();
    Message {
        version: VERSION,
        tag: TAG,
        uptime: report.uptime().timespan(),
        cluster: Cluster {
            leader_id: node.leader_id,
            node_id: node.node_id,
            node_state: node.state,
        },
        configuration: Configuration {
            cluster_size: node.cluster_size,
            enable_atom_pub_over_http: true,
            enable_external_tcp: true,
            insecure: false,
            run_projections: node.run_projections,
        },
        database: Database {
            epoch_number: node.epoch_number,
            first_epoch_id: node.first_epoch_id,
            active_chunk_number: node.active_chunk_number,
        },
        environment: Environment {
            core_count: facts.map_or(0, |f| f.core_count()),
            is_container: facts.is_some_and(|f| f.is_container()),
            is_kubernetes: facts.is_some_and(|f| f.is_kubernetes()),
            processor_architecture: match std::env::consts::ARCH {
                "x86_64" => ProcessorArchitecture::X64,
                "aarch64" => ProcessorArchitecture::Arm64,
                _ => ProcessorArchitecture::Other,
            },
            total_disk_space: facts.and_then(|f| f.total_disk_bytes()).unwrap_or(0),
            total_memory: facts.and_then(|f| f.total_memory_bytes()).unwrap_or(0),
        },
        gossip: node.gossip.clone(),
        persistent_subscriptions: PersistentSubscriptions { count: 0 },
        projections: Projections {
            custom_projection_count: 0,
            standard_projection_count: 5,
            custom_projection_running_count: 0,
            standard_projection_running_count: 5,
            total_count: 5,
            total_running_count: 5,
        },
    }
}

/// Reads one environment variable: `std::env::var` in the product, a fixed map in its tests.
pub type EnvReader = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where the node reads its settings from.
pub struct Settings {
    /// The process environment (`std::env::var`), or a test's.
    pub environment: EnvReader,
    /// Where the reporter keeps its files.
    pub state_dir: PathBuf,
}

/// EventStoreDB's consent: on, unless `EVENTSTORE_TELEMETRY_OPTOUT=true` (`false` is no
/// decision, the default stays).
pub fn consent(settings: &Settings) -> ConsentBuilder {
    let environment = settings.environment.clone();
    ConsentBuilder::new()
        .environment(move |name| environment(name))
        // `true` opts out, `false` is as if unset; a word naming an opt-out opts out too.
        .env(
            "EVENTSTORE_TELEMETRY_OPTOUT",
            Polarity::OptOut,
            ValueRule::FerretDb,
        )
        .default_consent(Consent::Enabled)
}

/// The reporter, as EventStoreDB configures it (the library's default schedule is its own:
/// one hour, then every 24 hours).
pub fn reporter(settings: &Settings, node: Arc<Node>) -> ReporterBuilder {
    Reporter::builder(Application::new("eventstoredb", "23.10.0"))
        .consent(consent(settings))
        .disclosure(
            Disclosure::new(
                "EventStoreDB",
                "Event Store Ltd",
                "setting the EVENTSTORE_TELEMETRY_OPTOUT environment variable to true",
                "https://eventstore.com/telemetry",
            )
            .with_texts(ENABLED_TEXT, DISABLED_TEXT),
        )
        .state_dir(&settings.state_dir)
        .system_facts(telemetry_core::build_facts!())
        .log_unsent_reports(true)
        // A node that stops within its first hour sends nothing, not even at shutdown.
        .final_report(FinalReport::AfterInitialDelay)
        .payload_shape(move |report: &OutgoingReport| message(report, &node))
}

/// A single-node cluster, as on the page.
pub fn single_node() -> Node {
    let id = Uuid::new_v4();
    Node {
        node_id: id,
        leader_id: id,
        state: NodeState::Leader,
        gossip: BTreeMap::from([(id, NodeState::Leader)]),
        cluster_size: 1,
        run_projections: RunProjections::None,
        epoch_number: 29,
        first_epoch_id: Uuid::new_v4(),
        active_chunk_number: 2,
    }
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let settings = Settings {
        environment: Arc::new(|name| std::env::var(name).ok()),
        state_dir: std::env::temp_dir().join("eventstoredb-example-telemetry"),
    };
    let mut builder = reporter(&settings, Arc::new(single_node()));
    if let Some(url) = args
        .iter()
        .position(|a| a == "--endpoint")
        .and_then(|i| args.get(i + 1))
    {
        builder = builder.endpoint(HttpConfig::new(url));
    }
    let reporter = builder.start()?;
    let message: serde_json::Value = serde_json::from_str(&reporter.preview_json())?;
    println!("{}", serde_json::to_string_pretty(&message)?);
    reporter.shutdown();
    Ok(())
}

//! `telemetry-collector`: serves the collector (the default), registers manifests and deletes
//! installations from the command line.
//!
//! ```text
//! telemetry-collector [--config FILE] [serve]
//! telemetry-collector [--config FILE] manifest add --product NAME --version VERSION FILE
//! telemetry-collector [--config FILE] manifest list
//! telemetry-collector [--config FILE] delete INSTALLATION_ID
//! ```

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use telemetry_collector::manifest_registry::Registration;
use telemetry_collector::{Collector, CollectorError, Config};

/// The receiving half of telemetry-core.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// The configuration file (TOML); environment variables override it.
    #[arg(
        long,
        global = true,
        env = "TELEMETRY_COLLECTOR_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serves the collector until interrupted (SIGINT or SIGTERM).
    Serve,
    /// Registers or lists manifests.
    Manifest {
        #[command(subcommand)]
        action: ManifestAction,
    },
    /// Deletes every report and rollup contribution of an installation.
    Delete {
        /// The installation id (a UUID, as the product's reports carry it).
        id: uuid::Uuid,
    },
}

#[derive(Subcommand)]
enum ManifestAction {
    /// Registers the manifest JSON in FILE (`docstore --manifest-json` prints one) for one
    /// product version.
    Add {
        /// The product's name, as its reports' `application.name`.
        #[arg(long)]
        product: String,
        /// The product version the manifest describes, as its reports' `application.version`.
        #[arg(long)]
        version: String,
        /// The manifest JSON file.
        file: PathBuf,
    },
    /// Lists the registered manifests.
    List,
}

fn main() -> ExitCode {
    telemetry_collector::logging::init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!(target: "telemetry_collector", "{e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<(), CollectorError> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config),
        Command::Manifest {
            action:
                ManifestAction::Add {
                    product,
                    version,
                    file,
                },
        } => {
            let json = std::fs::read(&file)?;
            let registration = Registration::from_json(&product, &version, &json)?;
            let manifest_version = registration.manifest.version.clone();
            let collector = Collector::open(config)?;
            let added = collector.register(registration)?;
            println!(
                "{} manifest {manifest_version} for {product} {version}",
                if added {
                    "registered"
                } else {
                    "already registered:"
                }
            );
            Ok(())
        }
        Command::Manifest {
            action: ManifestAction::List,
        } => {
            let storage = telemetry_collector::server::open_storage(&config.storage)?;
            for r in storage.manifests()? {
                println!("{} {} {}", r.product, r.product_version, r.manifest.version);
            }
            Ok(())
        }
        Command::Delete { id } => {
            let storage = telemetry_collector::server::open_storage(&config.storage)?;
            let removed = storage.delete_installation(id)?;
            println!(
                "deleted {removed} report(s) of installation {id} and their rollup contributions"
            );
            Ok(())
        }
    }
}

fn serve(config: Config) -> Result<(), CollectorError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&config.listen).await?;
        let address = listener.local_addr()?;
        let backend = format!("{:?}", config.storage.backend).to_lowercase();
        let collector = Collector::open(config)?;
        log::info!(target: "telemetry_collector", "listening on http://{address} ({backend} storage)");
        collector.serve(listener, shutdown_signal()).await
    })
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    log::info!(target: "telemetry_collector", "stopping: finishing the requests already accepted");
}

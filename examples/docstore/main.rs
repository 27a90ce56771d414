//! A small in-memory document store with full-text search, instrumented with usage telemetry
//! the way a product team would do it, and driven by a deterministic synthetic workload.
//!
//! ```text
//! cargo run --example docstore [-- [--anonymized | --manifest] [--telemetry=VALUE]
//!                                  [--endpoint URL] [--state-dir DIR] [OPERATIONS]]
//! cargo run --example docstore -- [--state-dir DIR] telemetry <status|enable|disable|show|manifest|clean>
//! ```
//!
//! The store has collections of JSON documents, an inverted index per collection (terms,
//! phrases, prefixes, field filters, pagination, BM25 ranking), an LRU query cache,
//! autocomplete, exports, periodic compaction and asynchronous checkpoints. The workload
//! (5,000 operations unless told otherwise) is generated from a fixed seed, so every run
//! makes the same calls. At the end the telemetry report is printed to standard output as
//! JSON, with a one-line summary on standard error. `--anonymized` prints instead exactly what
//! would leave the machine; `--manifest` prints the "What data is collected" page generated
//! from the code.
//!
//! Telemetry is wired as a product would wire it: the disclosure is shown at start (on
//! stderr); consent comes from `--telemetry`, `DOCSTORE_TELEMETRY_OPTOUT`, `DO_NOT_TRACK` and
//! the decision saved in the state directory; with `--endpoint`, the reporter sends the
//! anonymized report when the run ends, if consent is enabled (the regular schedule starts
//! after one hour, longer than this run). `docstore telemetry ...` is the end-user control
//! (`status`, `enable`, `disable`, `show`, `manifest`, `clean`), and `TELEMETRY_DEBUG=1` or
//! `DOCSTORE_TELEMETRY_DEBUG=1` prints the report that would be sent instead of sending it.

mod collection;
mod export;
mod index;
mod query;
mod store;
mod workload;

use clap::Parser;
use std::error::Error;
use std::future::Future;
use std::io::Write;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;
use store::{Config, Store, StoreError, StoreStats};
use telemetry_core::consent::{ConsentBuilder, Polarity, TelemetryArgs, ValueRule};
use telemetry_core::disclosure::Disclosure;
use telemetry_core::identity::Identity;
use telemetry_core::reporter::{HttpConfig, Reporter, ReporterBuilder, TelemetryCommand};
use telemetry_core::{Application, Report, Telemetry};
use workload::{Op, Workload};

const DEFAULT_OPERATIONS: usize = 5_000;
const SEED: u64 = 0x5EED_D0C5_2024;
const COLLECTIONS: [&str; 4] = ["articles", "runbooks", "tickets", "changelog"];
/// A collection that exists for part of the run, like a tenant that signs up and leaves.
const TRIAL_COLLECTION: &str = "trial";
const IMPORTED_PER_COLLECTION: usize = 120;
const COMPACTION_INTERVAL: usize = 500;
const CHECKPOINT_INTERVAL: usize = 1_000;

/// The product's own section of the report.
#[derive(Clone, Telemetry)]
#[telemetry(section = "configuration")]
struct Configuration {
    collections: usize,
    store: Config,
    compaction_interval_ops: usize,
    checkpoint_interval_ops: usize,
    max_prefix_expansions: usize,
}

/// What the run did, for the summary line.
#[derive(Default)]
struct Tally {
    imported: usize,
    searches: usize,
    matched: usize,
    shown: usize,
    rejected_queries: usize,
    inserts: usize,
    updates: usize,
    deletes: usize,
    lookups: usize,
    suggestions: usize,
    exported_bytes: usize,
    compactions: usize,
    checkpoints: usize,
}

/// A small document store under a synthetic workload, with its usage telemetry.
#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Operations to run after the initial import.
    #[arg(default_value_t = DEFAULT_OPERATIONS)]
    operations: usize,
    /// Print exactly the bytes the next report would carry (compact JSON), as the reporter
    /// sends them.
    #[arg(long, conflicts_with = "manifest")]
    anonymized: bool,
    /// Print the "What data is collected" page generated from the code.
    #[arg(long, conflicts_with = "manifest_json")]
    manifest: bool,
    /// Print the manifest as JSON, for a collector that validates reports against it.
    #[arg(long)]
    manifest_json: bool,
    /// Send the report here when the run ends, if consent is enabled (https, or http to a
    /// loopback address).
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// Keep the telemetry state (consent, installation id, hash key, spool, last report) here.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    telemetry: TelemetryArgs,
}

/// The example's subcommands.
#[derive(clap::Subcommand)]
enum Command {
    /// Show or change what telemetry this installation sends.
    Telemetry {
        #[command(subcommand)]
        action: TelemetryCommand,
    },
}

/// The report sections, filled in when the run ends and read by the reporter.
type Sections = Arc<Mutex<Option<(Configuration, StoreStats)>>>;

/// The reporter's configuration: the same for the run and for `docstore telemetry ...`.
fn telemetry(cli: &Cli, sections: &Sections) -> ReporterBuilder {
    let consent = ConsentBuilder::new()
        .flag("--telemetry", cli.telemetry.value())
        .env(
            "DOCSTORE_TELEMETRY_OPTOUT",
            Polarity::OptOut,
            ValueRule::FerretDb,
        )
        .debug_env("DOCSTORE_TELEMETRY_DEBUG");
    let mut reporter = Reporter::builder(Application::new("docstore", "1.0.0"))
        .consent(consent)
        .disclosure(Disclosure::new(
            "DocStore",
            "the DocStore example's authors",
            "setting the DOCSTORE_TELEMETRY_OPTOUT environment variable to true, \
                 DO_NOT_TRACK=1, or --telemetry=disable",
            "the README of this repository",
        ))
        .identity(Identity::Installation)
        .system_facts(telemetry_core::build_facts!());
    let (config, database) = (sections.clone(), sections.clone());
    reporter = reporter
        .section(move || config.lock().unwrap().as_ref().map(|s| s.0.clone()))
        .section(move || database.lock().unwrap().as_ref().map(|s| s.1.clone()));
    if let Some(endpoint) = &cli.endpoint {
        reporter = reporter.endpoint(HttpConfig::new(endpoint));
    }
    if let Some(dir) = &cli.state_dir {
        reporter = reporter.state_dir(dir);
    }
    reporter
}

fn main() -> std::process::ExitCode {
    // The framework logs what it sends and the installation id under the `telemetry` target;
    // a product shows them through its own logger.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("telemetry=info"))
        .init();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("docstore: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn Error>> {
    let sections = Sections::default();
    if let Some(Command::Telemetry { action }) = cli.command {
        telemetry(&cli, &sections).run_command(action, &mut std::io::stdout())?;
        return Ok(());
    }
    // Consent is resolved and the disclosure shown here, before any work.
    let reporter = telemetry(&cli, &sections).start()?;
    let operations = cli.operations;
    let output = if cli.anonymized {
        Output::Anonymized
    } else if cli.manifest {
        Output::Manifest
    } else if cli.manifest_json {
        Output::ManifestJson
    } else {
        Output::Report
    };
    let started = Instant::now();
    let mut store = Store::new(Config::default())?;
    let mut workload = Workload::new(SEED);
    let mut tally = Tally::default();

    for name in COLLECTIONS {
        store.create_collection(name)?;
        workload.add_collection(name);
        let docs: Vec<_> = (0..IMPORTED_PER_COLLECTION)
            .map(|_| workload.new_document(name))
            .collect();
        tally.imported += store.insert_batch(name, docs)?;
    }

    // The trial tenant arrives at 40% of the run and leaves at 80%.
    let trial = (operations >= 5).then_some((operations * 2 / 5, operations * 4 / 5));
    for op in 1..=operations {
        if trial.is_some_and(|(arrives, _)| op == arrives) {
            store.create_collection(TRIAL_COLLECTION)?;
            workload.add_collection(TRIAL_COLLECTION);
        }
        if trial.is_some_and(|(_, leaves)| op == leaves) {
            workload.remove_collection(TRIAL_COLLECTION);
            store.drop_collection(TRIAL_COLLECTION)?;
        }
        apply(&mut store, workload.next_op(), &mut tally)?;
        if op % COMPACTION_INTERVAL == 0 {
            store.compact();
            tally.compactions += 1;
        }
        if op % CHECKPOINT_INTERVAL == 0 {
            block_on(store.checkpoint())?;
            tally.checkpoints += 1;
        }
    }
    let stats = store.stats();
    eprintln!(
        "docstore: imported {} documents, then ran {operations} operations in {} ms: \
         {} searches ({} rejected, {} hits shown of {} matches), {} suggestions, {} lookups, \
         {} inserts, {} updates, {} deletes, {} KiB exported, {} compactions, {} checkpoints; \
         {} documents in {} collections",
        tally.imported,
        started.elapsed().as_millis(),
        tally.searches,
        tally.rejected_queries,
        tally.shown,
        tally.matched,
        tally.suggestions,
        tally.lookups,
        tally.inserts,
        tally.updates,
        tally.deletes,
        tally.exported_bytes / 1024,
        tally.compactions,
        tally.checkpoints,
        stats.documents,
        stats.collections,
    );

    let configuration = Configuration {
        collections: stats.collections,
        store: store.config().clone(),
        compaction_interval_ops: COMPACTION_INTERVAL,
        checkpoint_interval_ops: CHECKPOINT_INTERVAL,
        max_prefix_expansions: collection::MAX_PREFIX_EXPANSIONS,
    };
    let mut report = Report::collect(Application::new("docstore", "1.0.0"));
    report.add_section(&configuration);
    report.add_section(&stats);
    *sections.lock().unwrap() = Some((configuration, stats));
    let text = match output {
        Output::Report => report.to_json_pretty(),
        // The bytes the reporter's next report carries, made by the function that makes its
        // HTTP body.
        Output::Anonymized => reporter.preview_json(),
        Output::Manifest => telemetry_core::manifest::manifest().to_markdown(),
        Output::ManifestJson => telemetry_core::manifest::manifest().to_json(),
    };
    writeln!(std::io::stdout().lock(), "{text}")?;
    // Sends the final report if consent is enabled and an endpoint is set, within 5 s.
    reporter.shutdown();
    Ok(())
}

/// What to print at the end.
#[derive(Clone, Copy, PartialEq)]
enum Output {
    Report,
    Anonymized,
    Manifest,
    ManifestJson,
}

/// Runs one operation. Failures a client can cause (a malformed query) are tallied; any other
/// failure means the store or the workload is wrong, and ends the run.
fn apply(store: &mut Store, op: Op, tally: &mut Tally) -> Result<(), StoreError> {
    match op {
        Op::Insert {
            collection,
            key,
            doc,
        } => {
            store.insert(collection, &key, doc)?;
            tally.inserts += 1;
        }
        Op::Update {
            collection,
            key,
            doc,
        } => {
            store.update(collection, &key, doc)?;
            tally.updates += 1;
        }
        Op::Delete { collection, key } => {
            store.delete(collection, &key)?;
            tally.deletes += 1;
        }
        Op::Get { collection, key } => {
            if store.get(collection, &key)?.is_none() {
                return Err(StoreError::NotFound {
                    collection: collection.to_owned(),
                    key,
                });
            }
            tally.lookups += 1;
        }
        Op::Search {
            collection,
            query,
            page,
        } => {
            tally.searches += 1;
            match store.search(collection, &query, page) {
                Ok(page) => {
                    tally.matched += page.total;
                    tally.shown += page.hits.len();
                }
                Err(StoreError::Query(_)) => tally.rejected_queries += 1,
                Err(e) => return Err(e),
            }
        }
        Op::Suggest { collection, prefix } => {
            store.suggest(collection, &prefix)?;
            tally.suggestions += 1;
        }
        Op::Export { collection, csv } => {
            let collection = store.collection(collection)?;
            let bytes = if csv {
                export::export_collection(&export::Csv, collection)?
            } else {
                export::export_collection(&export::JsonLines, collection)?
            };
            tally.exported_bytes += bytes.len();
        }
    }
    Ok(())
}

/// Drives a future to completion on this thread. The store's futures never wait on I/O (they
/// only yield), so polling again at once is enough; a server would use its runtime instead.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

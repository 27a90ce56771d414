//! A small in-memory document store with full-text search, instrumented with usage telemetry
//! the way a product team would do it, and driven by a deterministic synthetic workload.
//!
//! ```text
//! cargo run --example docstore [-- [--anonymized | --manifest] [OPERATIONS]]
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

mod collection;
mod export;
mod index;
mod query;
mod store;
mod workload;

use std::error::Error;
use std::future::Future;
use std::io::Write;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;
use store::{Config, Store, StoreError};
use telemetry_core::Telemetry;
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
#[derive(Telemetry)]
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

/// What to print at the end.
#[derive(Clone, Copy, PartialEq)]
enum Output {
    Report,
    Anonymized,
    Manifest,
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut output = Output::Report;
    let mut operations = DEFAULT_OPERATIONS;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--anonymized" => output = Output::Anonymized,
            "--manifest" => output = Output::Manifest,
            _ => {
                operations = arg.parse().map_err(|e| {
                    format!("invalid argument `{arg}` ({e}): expected --anonymized, --manifest or a number of operations")
                })?
            }
        }
    }
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
        run(&mut store, workload.next_op(), &mut tally)?;
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

    let mut report =
        telemetry_core::Report::collect(telemetry_core::Application::new("docstore", "1.0.0"));
    report.add_section(
        "configuration",
        &Configuration {
            collections: stats.collections,
            store: store.config().clone(),
            compaction_interval_ops: COMPACTION_INTERVAL,
            checkpoint_interval_ops: CHECKPOINT_INTERVAL,
            max_prefix_expansions: collection::MAX_PREFIX_EXPANSIONS,
        },
    );
    report.add_section("database", &stats);
    let text = match output {
        Output::Report => report.to_json_pretty(),
        Output::Anonymized => report.anonymized().to_json_pretty(),
        Output::Manifest => telemetry_core::manifest::manifest().to_markdown(),
    };
    writeln!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}

/// Runs one operation. Failures a client can cause (a malformed query) are tallied; any other
/// failure means the store or the workload is wrong, and ends the run.
fn run(store: &mut Store, op: Op, tally: &mut Tally) -> Result<(), StoreError> {
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

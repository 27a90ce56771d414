//! Anonymous, privacy-safe usage telemetry for Rust servers and CLIs: count which features are
//! used, time the important operations, and read exact snapshots of it all.
//!
//! ```
//! use telemetry_core::{count_usage, timed};
//!
//! /// Inserts a document.
//! #[count_usage]
//! #[timed]
//! fn insert(doc: &str) -> usize {
//!     doc.len()
//! }
//!
//! #[count_usage(name = "store.search", description = "Full-text searches")]
//! async fn search(query: &str) -> Vec<String> {
//!     vec![query.to_owned()]
//! }
//!
//! let snap = telemetry_core::testing::capture(|| {
//!     insert("a");
//!     insert("bb");
//! });
//! // Unnamed metrics are named `{module_path}::{function}.calls` / `.duration`.
//! assert_eq!(snap.counter(concat!(module_path!(), "::insert.calls")), Some(2));
//! assert_eq!(snap.histogram(concat!(module_path!(), "::insert.duration")).unwrap().count(), 2);
//! // Named ones keep their name; the doc comment's first line is the default description.
//! assert_eq!(snap.counter("store.search"), Some(0));
//! ```
//!
//! # Metric names
//! An explicit `name = "..."` is used as given and must follow [`validate_name`]: segments of
//! ASCII letters, digits and `_` joined by `.` or `::`. Without one, the name is derived as
//! `{module_path!()}::{function}.calls` for `#[count_usage]` and
//! `{module_path!()}::{function}.duration` for `#[timed]`; for example `insert` in module
//! `docstore::store` gives `docstore::store::insert.calls`. Methods are named by their module,
//! not their type (an attribute on a method cannot see the `impl` it is in), so two types in
//! one module with a method of the same name share a metric unless one of them is named.
//! Without a `description`, the first line of the function's doc comment is used.
//!
//! # What the macros count
//! `#[count_usage]` adds one to a counter each time the function's body starts; `#[timed]`
//! records the wall-clock time from the body's start to the function's exit, in nanoseconds,
//! into a histogram. An `async fn` starts at its first poll and is timed across its awaits until
//! it completes (or is dropped). Early `return`, `?` and unwinding panics are counted and timed
//! too: the timer is a drop guard. The function's signature is not changed.
//!
//! # Cost
//! Each use of a macro is one `static`. The first call registers it; every later call adds
//! to a cell in the calling thread's own shard (a plain load and store, no lock, no hash, no
//! allocation, no locked instruction), so threads never contend. Snapshots sum the shards. See
//! `docs/PERFORMANCE.md` in the repository for measurements.
//!
//! # The parts
//! | need | where |
//! |---|---|
//! | count, time, label | [`count_usage`], [`timed`], [`Counter`], [`Histogram`], [`Gauge`], [`labels`] |
//! | read values | [`snapshot()`], [`testing::capture`], [`Snapshot`], [`descriptors`] |
//! | keep personal data out | [`LabelValue`](trait@LabelValue), [`Pii`], [`anonymize`], the `Telemetry` derive, [`manifest`] |
//! | errors and crashes | [`ErrorKind`](trait@ErrorKind) with `#[count_usage(errors)]`, [`crash`] |
//! | ask and respect consent | [`consent`], [`disclosure`], [`identity`] |
//! | report | [`Report`], [`facts`], [`reporter`], [`sink`], a product's own [`payload`] |
//! | export | [`export`] (Prometheus, OpenMetrics, Pushgateway, OTLP), `serve` (axum) |
//! | turn it all off | [`set_recording`] |
//!
//! # Layers
//! The crate is four layers, each a top-level module that uses only itself and the layers
//! before it (the repository's `tests/module_graph.rs` checks it, and that no module imports
//! another in a cycle):
//!
//! | layer | what it holds | uses |
//! |---|---|---|
//! | [`engine`] | call sites and handles, per-thread shards, histogram cells and buckets, the registry, snapshots, label sets | — |
//! | [`privacy`] | the PII guard, anonymization, error kinds, sections, events and payloads, the manifest | engine |
//! | [`product`] | consent, disclosure, identity, facts, reports, sinks, the crash hook, the reporter | engine, privacy |
//! | [`export`] | Prometheus and OpenMetrics text, OTLP, Pushgateway, local endpoints and their axum handlers | all three |
//! | [`bridge`] | instrumentation written for other APIs (`metrics`, `tracing`) feeding declared metrics | all three |
//!
//! Under all of them the process-wide parts (fork safety, the start time and [`instance_id`],
//! the [`StateDir`], the framework's diagnostics through `log` or `tracing`); above them
//! [`testing`]. The items a program uses most are re-exported at
//! the crate root, and the public modules of the layers too (`telemetry_core::consent` is
//! `telemetry_core::product::consent`).
//!
//! # Crate feature flags
//! - `macros` (default): re-exports [`count_usage`], [`timed`] and the `LabelValue`,
//!   `ErrorKind` and `Telemetry` derives from `telemetry-macros`.
//! - `http` (default): HTTP delivery: the reporter's sink and `export::pushgateway` (ureq).
//! - `system-facts` (default): memory, disk, OS version and uptime in [`facts::SystemFacts`]
//!   (sysinfo).
//! - `clap`: `consent::TelemetryArgs`, the `--telemetry=<value>` flag.
//! - `otlp`: the OTLP/HTTP metrics exporter, `export::otlp`.
//! - `axum`: ready `/metrics` and `/telemetry` handlers, `serve` (answered on tokio's
//!   blocking pool; implies `tokio`).
//! - `metrics`: `bridge::metrics::MetricsBridge`, a `metrics::Recorder` that feeds declared
//!   metrics under the privacy rules.
//! - `tower`: `export::tower_service::EndpointService`, the local endpoints as a
//!   `tower::Service` for any server on tower and hyper (implies `tokio`).
//! - `user-dirs`: `StateDir::for_user`, the per-user state directory of a command-line tool.
//! - `test-receiver`: `testing::Receiver`, a collector on loopback for a product's tests.
//! - `tracing`: `bridge::tracing::TracingBridge`, a `tracing_subscriber::Layer` that counts and
//!   times selected spans into declared metrics; the framework's own diagnostics (target
//!   `telemetry`) become tracing events, passed on to `log` while no subscriber is set.
//! - `tokio`: `Reporter::shutdown_async`, and a `Reporter` dropped on a tokio runtime's
//!   thread asks its thread to stop without blocking the runtime.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![deny(rustdoc::broken_intra_doc_links)]

// The derives name `::telemetry_core`; this lets the crate use them on its own types.
extern crate self as telemetry_core;

// Below every layer: what the whole process shares (fork safety, its start time and instance
// id, the state directory on disk, the framework's own diagnostics).
mod diagnostics;
mod fork;
mod process;
mod state;

pub mod bridge;
pub mod engine;
pub mod export;
pub mod privacy;
pub mod product;
pub mod testing;

pub use engine::labels;
pub use engine::{
    Bounded, Bucket, CALLBACK_BUDGET, Counter, Descriptor, Family, Gauge, Histogram,
    HistogramSnapshot, InvalidName, LabelSet, LabelValue, LabeledCounter, LabeledHistogram, Labels,
    Location, MAX_NAME_LEN, MetricKind, OTHER_LABEL_VALUE, Pow2Bucket, RegistryError, Series,
    Snapshot, Unit, descriptors, is_recording, set_recording, shard_memory, snapshot,
    validate_name,
};
#[cfg(feature = "axum")]
pub use export::serve;
pub use privacy::manifest::REPORT_SCHEMA_VERSION;
pub use privacy::{ErrorKind, ErrorKindLabel, Event, Payload, Pii, Section, anonymize, manifest};
pub use process::{instance_id, uptime};
pub use product::{
    Application, ApplicationError, INVALID_APPLICATION_TEXT, JsonFileSink, LogSink, Report, Sink,
    SinkError, StdoutSink, consent, crash, disclosure, facts, identity, payload, reporter, sink,
};
pub use state::StateDir;

/// Counts every call of the function it is on.
///
/// ```
/// # use telemetry_core::count_usage;
/// #[count_usage(name = "store.insert", description = "Documents inserted")]
/// fn insert() {}
/// ```
/// Keys: `name = "..."` (see the crate docs for the rule and the default) and
/// `description = "..."` (default: the first line of the doc comment), `labels(..)`,
/// `max_series = N`, `errors` and `crate = "..."`.
///
/// A recursive function counts every level.
///
/// # `errors`
/// On a function returning `Result<T, E>` (or an alias such as `io::Result<T>`), `errors`
/// also counts each `Err` in `{name}.errors`, labeled `kind` by `E`'s [`ErrorKind`]. The body
/// stays in the function (no closure): borrows of `self` in the result, `impl Trait` in it
/// and `#[track_caller]` callers work as without the attribute. Every `return` and `?` of the
/// body is seen, those inside the standard macros' arguments (`format!`, `vec![..]`, ...)
/// included; an `Err` returned by another macro's expansion (`anyhow::bail!`) is not: write
/// `return Err(..)` there.
///
/// # A renamed dependency
/// The macros' expansions name `::telemetry_core`. A crate that renames the dependency
/// (`tc = { package = "telemetry-core", .. }`) or reaches it through a re-export says where it
/// is with `crate = "..."`: `#[count_usage(crate = "tc")]`, `#[timed(crate = "tc")]`,
/// `counter!("name", crate = "tc")` (also `gauge!`, `histogram!`), and on the derives
/// `#[label(crate = "tc")]` (`LabelValue`), `#[error_kind(crate = "tc")]` (`ErrorKind`) and
/// `#[telemetry(crate = "tc")]` (`Telemetry`). A bare name is a dependency (`::tc`); a path
/// (`crate = "my_crate::telemetry"`) is used as written.
#[cfg(feature = "macros")]
pub use telemetry_macros::count_usage;

/// Records the duration of every call of the function it is on, in nanoseconds, into a
/// histogram.
///
/// ```
/// # use telemetry_core::timed;
/// #[timed(name = "search.duration")]
/// async fn search() {}
/// ```
/// Keys: `name = "..."`, `description = "..."`, `labels(..)`, `max_series = N` and
/// `crate = "..."`, as for [`count_usage`], and `sample = N`.
///
/// # Sampling
/// Two clock reads cost about 20 ns on current x86 machines (more in some VMs), which matters
/// for a function that itself takes nanoseconds and runs millions of times a second. With
/// `sample = N` (2 or more), each call is timed with probability 1/N, independently of the
/// others (a per-thread pseudo-random draw, so a periodic workload cannot fall in step with
/// it), and a timed call is recorded N times: the histogram's count, sum and buckets are
/// unbiased estimates of the totals, its quantiles those of the sampled calls, and its min and
/// max the sampled calls'. A call that is not timed costs a thread-local draw and a branch.
/// The manifest shows the rate ([`Descriptor::sample_one_in`]); count the calls exactly with
/// `#[count_usage]`.
///
/// ```
/// # use telemetry_core::timed;
/// #[timed(name = "index.lookup.duration", sample = 16)]
/// fn lookup(key: u64) -> u64 {
///     key.rotate_left(7)
/// }
/// ```
///
/// An `async fn` is timed from the call to its completion, and so is a function that returns
/// `impl Future<..>` (the future it returns is wrapped), not only while the future is built.
/// A recursive function records every level: each call is timed, nested ones included.
#[cfg(feature = "macros")]
pub use telemetry_macros::timed;

/// Declares a counter in the code and returns its handle: `Result<Counter, RegistryError>`,
/// or `Result<LabeledCounter<(T, ...)>, RegistryError>` with `labels(...)`.
///
/// The plain API, for what is not a function call (a cache hit, a size, a count of things).
/// Every use is a declaration the linker collects, like an attribute's call site: the metric,
/// its description and the values its labels can take are in the [`manifest`] before the code
/// that records it first runs, and nothing recorded can carry text made at run time.
///
/// ```
/// use telemetry_core::{Bounded, LabelValue, counter};
///
/// #[derive(LabelValue, Clone, Copy)]
/// enum Command { Find, Insert }
///
/// let hits = counter!("docs.cache.hits", description = "Searches answered from the cache")?;
/// hits.increment();
/// let errors = counter!("docs.query.errors", labels(code: Bounded<65535>, command: Command))?;
/// errors.increment((Bounded::new(11000u16), Command::Insert));
/// let snap = telemetry_core::snapshot();
/// assert_eq!(snap.counter_with("docs.query.errors", &[("code", "11000"), ("command", "Insert")]), Some(1));
/// # Ok::<(), telemetry_core::RegistryError>(())
/// ```
///
/// Arguments: the name, a string literal ([`validate_name`]'s rule, checked at compile time);
/// then, in any order, `description = "..."` (a string literal), `unit = Bytes` (a [`Unit`]
/// variant), `labels(name: Type, ...)` (at most 8; each type a [`LabelValue`], whose closed
/// set of values the manifest lists) and `max_series = N` (the cap on a labeled metric's
/// series, default [`labels::DEFAULT_MAX_SERIES`]).
///
/// A name given by a variable, `format!` or a leaked `String` does not compile:
///
/// ```compile_fail
/// let user = "alice";
/// let name: &'static str = format!("logins.{user}").leak();
/// let _ = telemetry_core::counter!(name);
/// ```
///
/// Evaluating the macro again returns the same metric (a registry lookup: keep the handle
/// in hot code).
///
/// # Errors
/// [`RegistryError`] if the name is declared elsewhere with another kind, unit or label
/// names.
#[cfg(feature = "macros")]
pub use telemetry_macros::counter;

/// Declares a gauge in the code and returns its handle, `Result<Gauge, RegistryError>`; with
/// `callback = || value`, registers a gauge whose value the callback returns when a snapshot
/// is taken, `Result<(), RegistryError>`.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicI64, Ordering};
/// use telemetry_core::gauge;
///
/// let open = gauge!("docs.connections.open", description = "Open connections")?;
/// open.add(2);
/// let projects = Arc::new(AtomicI64::new(12));
/// let read = projects.clone();
/// gauge!("docs.projects", callback = move || read.load(Ordering::Relaxed))?;
/// let snap = telemetry_core::snapshot();
/// assert_eq!(snap.gauge("docs.projects"), Some(12));
/// # Ok::<(), telemetry_core::RegistryError>(())
/// ```
///
/// Arguments as for [`counter!`] without labels. The callback runs when a snapshot is taken,
/// on a helper thread, outside any lock, and cannot hurt the caller: a snapshot taken from
/// inside it (or from a panic hook while it panics) leaves callback gauges out instead of
/// recursing; a panic is caught, logged once, and the gauge disabled for the rest of the
/// process; a callback that takes longer than [`CALLBACK_BUDGET`] (100 ms) is left out of that
/// snapshot and of later ones until it returns.
///
/// # Errors
/// [`RegistryError`] as for [`counter!`], and [`RegistryError::DuplicateCallback`] when a
/// callback gauge of that name is registered already (or a plain gauge has its name).
#[cfg(feature = "macros")]
pub use telemetry_macros::gauge;

/// Declares a histogram in the code and returns its handle: `Result<Histogram, RegistryError>`,
/// or `Result<LabeledHistogram<(T, ...)>, RegistryError>` with `labels(...)`.
///
/// ```
/// use telemetry_core::histogram;
///
/// let sizes = histogram!("docs.document.size", unit = Bytes)?;
/// sizes.record(4_096);
/// # Ok::<(), telemetry_core::RegistryError>(())
/// ```
///
/// Arguments and errors as for [`counter!`].
#[cfg(feature = "macros")]
pub use telemetry_macros::histogram;

/// Makes an enum without fields a [`LabelValue`] (its variant names, or
/// `#[label(rename = "...")]`) and [`anonymize::Anonymize`] (emitted by name).
///
/// ```
/// use telemetry_core::LabelValue;
/// #[derive(LabelValue)]
/// enum Backend { Postgres, #[label(rename = "sqlite")] Sqlite }
/// assert_eq!(Backend::Sqlite.label_text(), "sqlite");
/// ```
#[cfg(feature = "macros")]
pub use telemetry_macros::LabelValue;

/// Names an error enum's kinds for `#[count_usage(errors)]`: each variant's name, or
/// `#[error_kind(rename = "...")]`. Variants may have fields; they are never read. See the
/// [`ErrorKind`](trait@ErrorKind) trait.
#[cfg(feature = "macros")]
pub use telemetry_macros::ErrorKind;

/// The PII guard: makes a struct or a field-less enum a report section that leaves the
/// machine only in anonymized form ([`anonymize::Anonymize`]), and lists it in the
/// [`manifest`].
///
/// Field attributes:
/// - none: emitted by its type's [`anonymize::Anonymize`] rule (numbers rounded, enums by
///   name, nested sections). `String`, paths and addresses have no such rule, so they need:
/// - `#[telemetry(hash)]` / `#[telemetry(hash_url)]`: a keyed hash
///   ([`anonymize::Anonymizer::hash_name`], [`anonymize::Anonymizer::hash_url`]);
/// - `#[telemetry(skip)]`: never emitted (listed as "never sent" in the manifest);
/// - `#[telemetry(verbatim = "reason")]`: emitted as it is (via `Serialize`), vouched for;
/// - `#[pii]` or `#[telemetry(pii)]`: personal data; must be skipped or hashed;
/// - `#[telemetry(not_pii = "reason")]`: a field whose *name* looks like personal data but
///   is not (`address_count`);
/// - `#[telemetry(rename = "key")]`: the key in the report.
///
/// A field of type [`Pii`], or whose name (or `rename`) contains one of the entries of the PII
/// name list below, is PII too; that includes numbers whose names say identifiers, postal codes
/// or coordinates (`user_id`, `postal_code`, `lat`), which need an explicit rule as well.
/// Emitting a PII field is a compile error at the field; all of an item's bad fields are
/// reported at once.
///
#[doc = telemetry_macros::__pii_names_doc!()]
///
/// ```
/// use telemetry_core::{Pii, Telemetry, LabelValue, anonymize::{Anonymize, Anonymizer, HashKey}};
///
/// #[derive(LabelValue)]
/// enum NodeState { Leader, Follower }
///
/// /// Cluster configuration.
/// #[derive(Telemetry)]
/// #[telemetry(section = "configuration")]
/// struct Configuration {
///     cluster_size: u32,
///     node_state: NodeState,
///     total_memory: u64,
///     #[telemetry(hash)]
///     database_name: String,
///     #[telemetry(skip)]
///     admin_email: Pii<String>,
///     #[telemetry(verbatim = "the product's own version string")]
///     version: String,
/// }
///
/// let config = Configuration {
///     cluster_size: 3,
///     node_state: NodeState::Leader,
///     total_memory: 68_631_052_288,
///     database_name: "customers".into(),
///     admin_email: Pii::new("alice@example.com".into()),
///     version: "23.10.0".into(),
/// };
/// let json = config.anonymize(&Anonymizer::new(HashKey::generate()));
/// assert_eq!(json["total_memory"], 68_631_000_000u64);
/// assert_eq!(json["node_state"], "Leader");
/// assert_ne!(json["database_name"], "customers");
/// assert!(json.get("admin_email").is_none());
/// ```
#[cfg(feature = "macros")]
pub use telemetry_macros::Telemetry;

/// Internals the fuzz targets check (feature `fuzzing`). Not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

/// Items the macros' expansions use. Not a stable API: it changes without notice.
#[doc(hidden)]
pub mod __private;

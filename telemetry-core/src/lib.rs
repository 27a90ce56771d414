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
//! # Crate feature flags
//! - `macros` (default): re-exports [`count_usage`] and [`timed`] from `telemetry-macros`.
#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![deny(rustdoc::broken_intra_doc_links)]

mod buckets;
mod callsite;
mod cells;
mod clock;
mod handles;
mod metadata;
mod registry;
mod report;
mod shard;
pub mod sink;
mod snapshot;
pub mod testing;

pub use handles::{Counter, Gauge, Histogram, MetricBuilder};
pub use metadata::{
    Descriptor, InvalidName, Location, MAX_NAME_LEN, MetricKind, Unit, validate_name,
};
pub use registry::RegistryError;
pub use report::{Application, REPORT_SCHEMA_VERSION, Report, instance_id, uptime};
pub use sink::{JsonFileSink, LogSink, Sink, SinkError, StdoutSink};
pub use snapshot::{Bucket, Family, HistogramSnapshot, Labels, Series, Snapshot};

/// Counts every call of the function it is on.
///
/// ```
/// # use telemetry_core::count_usage;
/// #[count_usage(name = "store.insert", description = "Documents inserted")]
/// fn insert() {}
/// ```
/// Keys: `name = "..."` (see the crate docs for the rule and the default) and
/// `description = "..."` (default: the first line of the doc comment).
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
/// Keys: `name = "..."` and `description = "..."`, as for [`count_usage`].
#[cfg(feature = "macros")]
pub use telemetry_macros::timed;

/// The values of every registered metric now.
///
/// Sums every thread's shard and the totals of exited threads under the registry lock (a few
/// microseconds per thousand metrics; never blocks a recording thread), then evaluates callback
/// gauges outside the lock.
pub fn snapshot() -> Snapshot {
    registry::registry().snapshot(None)
}

/// The descriptor of every registered metric, in name order, including the macro call sites
/// whose functions have not run yet: the linker collects every site into one list, which the
/// registry reads on first use.
pub fn descriptors() -> Vec<Descriptor> {
    registry::registry().descriptors()
}

/// Memory used by the per-thread shards now: `(live shards, bytes)`.
pub fn shard_memory() -> (usize, usize) {
    registry::registry().shard_memory()
}

/// Items the macros' expansions use. Not a stable API: it changes without notice.
#[doc(hidden)]
pub mod __private {
    pub use crate::callsite::{CALL_SITES, CallSite, TimerGuard};
    pub use crate::metadata::{MetricKind, Unit};
    pub use linkme;
}

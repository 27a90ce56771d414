//! The metric engine: where counts and timings are kept, and how they are read.
//!
//! From the hot path down: [`count_usage`](crate::count_usage) and [`timed`](crate::timed)
//! sites (`callsite`) and the plain API's handles ([`Counter`], [`Histogram`], [`Gauge`]) add to
//! the calling thread's own shard (`local_shard`, `shard`), whose histogram cells (`cells`)
//! use one log-linear bucket layout (`buckets`). The registry names metrics, hands out slots and
//! adopts the shards of exited threads; [`snapshot()`] sums it all into a [`Snapshot`]. Series are
//! keyed by label sets of closed types ([`labels`]), so no text made at run time reaches them.
//!
//! The engine depends on nothing above it: it knows neither reports nor consent nor formats.

pub(crate) mod buckets;
pub(crate) mod callsite;
pub(crate) mod cells;
pub(crate) mod declaration;
pub(crate) mod gauges;
pub(crate) mod handles;
pub(crate) mod histogram_snapshot;
pub mod labels;
pub(crate) mod local_shard;
pub(crate) mod metadata;
pub(crate) mod registry;
pub(crate) mod sampling;
pub(crate) mod series_cache;
pub(crate) mod shard;
pub(crate) mod snapshot;
pub(crate) mod switch;
pub(crate) mod tick_clock;
pub(crate) mod timed_future;

pub use gauges::CALLBACK_BUDGET;
pub use handles::{Counter, Gauge, Histogram, LabeledCounter, LabeledHistogram};
pub use histogram_snapshot::{Bucket, HistogramSnapshot};
pub use labels::{Bounded, LabelSet, LabelValue, OTHER_LABEL_VALUE, Pow2Bucket};
pub use metadata::{
    Descriptor, InvalidName, Location, MAX_NAME_LEN, MetricKind, Unit, validate_name,
};
pub use registry::RegistryError;
pub use snapshot::{Family, Labels, Series, Snapshot};
pub use switch::{is_recording, set_recording};

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

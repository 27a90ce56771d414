//! Macro call sites: one `static` per `#[count_usage]` or `#[timed]` use.
//!
//! The static carries the site's metadata, built in `const` context, and caches the slot the
//! registry gave it. The first call resolves it on a cold path; every later call is one relaxed
//! load of the cached slot, a branch, and the shard write. Every site is also collected by the
//! linker into [`CALL_SITES`], so the registry lists metrics whose functions have not run yet.

mod collect;
mod labeled;
mod meta;
mod timer;

pub use collect::CALL_SITES;
pub use labeled::LabeledTimerGuard;
pub use meta::LabelDomain;
pub use timer::{LocalTimerGuard, TimerGuard};

use crate::engine::local_shard::{counter_add, histogram_record};
use crate::engine::metadata::MetricKind;
use crate::engine::registry::{self, CounterCore, HistogramCore, NO_SLOT, SeriesRequest, Storage};
use crate::engine::switch;
use crate::engine::tick_clock;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering::*};

// A site's registration, held in `cached_slot` so the hot path reads it with one relaxed load.
// It moves forward once, never back:
// - `UNRESOLVED` (0): not registered yet; the first call (or the registry's first lock, which
//   loads every collected site) registers it;
// - `slot + 1`: registered, with a slot in every thread's shard;
// - `SHARED`: registered without a slot (the slot tables are full): it records through the
//   shared atomics of its core.
// `core` holds the registered core from the same moment on.

/// Not registered yet.
const UNRESOLVED: u32 = 0;
/// Registered without a slot (`NO_SLOT + 1` would wrap to [`UNRESOLVED`]).
const SHARED: u32 = u32::MAX;

/// One macro use. Built by the macros only; not a stable API.
///
/// Its metadata is one string, so that the `static` the macro emits per use is cheap to compile
/// (each field of a `static` is const-evaluated and validated in the user's crate): see
/// [`CallSite::new`] for its layout. It is decoded only on cold paths (registration, listing).
#[doc(hidden)]
pub struct CallSite {
    meta: &'static str,
    /// Each label's values, known at link time (empty for an unlabeled site).
    domains: &'static [LabelDomain],
    /// `slot + 1`, [`UNRESOLVED`] or [`SHARED`].
    cached_slot: AtomicU32,
    /// The `&'static CounterCore` or `&'static HistogramCore`, once resolved.
    core: AtomicPtr<()>,
}

impl CallSite {
    /// A site from its metadata: `kind`, `max_series`, `labels`, `name`, `description`,
    /// `module_path`, `file` and `line`, joined by [`META_SEPARATOR`]. `kind` is `counter` or
    /// `histogram` (whose unit is nanoseconds); `max_series` is empty for the default; `labels`
    /// are comma-separated names. The macros check every field; a malformed string still
    /// decodes (to a counter with whatever fields are present), it never panics.
    pub const fn new(meta: &'static str) -> Self {
        Self::labeled(meta, &[])
    }

    /// A labeled site: `domains` lists each label's values (by its type), so the manifest
    /// shows them before the site first runs.
    pub const fn labeled(meta: &'static str, domains: &'static [LabelDomain]) -> Self {
        CallSite {
            meta,
            domains,
            cached_slot: AtomicU32::new(UNRESOLVED),
            core: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    pub(crate) fn cached(&self) -> Option<Storage> {
        let core = self.core.load(Acquire);
        if core.is_null() {
            return None;
        }
        // SAFETY: `cache` stores a pointer of the type that matches `self.kind`.
        Some(match self.kind() {
            MetricKind::Counter => Storage::Counter(unsafe { &*core.cast::<CounterCore>() }),
            _ => Storage::Histogram(unsafe { &*core.cast::<HistogramCore>() }),
        })
    }

    /// Stores the resolved storage (the same for every caller: registration is idempotent).
    pub(crate) fn cache(&'static self, storage: &Storage) {
        let (core, slot) = match storage {
            Storage::Counter(c) => ((*c as *const CounterCore).cast::<()>(), c.slot),
            Storage::Histogram(h) => ((*h as *const HistogramCore).cast::<()>(), h.slot),
            // The macros only make counter and histogram sites.
            Storage::Gauge(_) | Storage::CallbackGauge(_) => return,
        };
        self.core.store(core.cast_mut(), Release);
        let cached = if slot == NO_SLOT { SHARED } else { slot + 1 };
        self.cached_slot.store(cached, Release);
    }

    /// The storage of an unlabeled site: cached, or registered now and cached.
    fn resolve(&'static self) -> Storage {
        if let Some(storage) = self.cached() {
            return storage;
        }
        let storage = registry::registry()
            .register_or_keep_apart(&self.meta().request(), SeriesRequest::unlabeled());
        self.cache(&storage);
        storage
    }

    fn counter_core(&'static self) -> &'static CounterCore {
        match self.resolve() {
            Storage::Counter(core) => core,
            _ => unreachable!("a counter call site resolves to a counter"),
        }
    }

    fn histogram_core(&'static self) -> &'static HistogramCore {
        match self.resolve() {
            Storage::Histogram(core) => core,
            _ => unreachable!("a histogram call site resolves to a histogram"),
        }
    }

    /// Counts one call (`#[count_usage]`).
    #[inline(always)]
    pub fn increment(&'static self) {
        if !switch::recording() {
            return;
        }
        let cached = self.cached_slot.load(Relaxed);
        if cached.wrapping_sub(1) < SHARED - 1 {
            counter_add(cached - 1, 1, || self.counter_core());
        } else {
            self.increment_cold();
        }
    }

    #[cold]
    #[inline(never)]
    fn increment_cold(&'static self) {
        let core = self.counter_core();
        counter_add(core.slot, 1, || core);
    }

    /// Records one duration in nanoseconds (`#[timed]`).
    #[inline(always)]
    pub fn record(&'static self, nanos: u64) {
        self.record_weighted(nanos, 1);
    }

    /// Records one duration in nanoseconds `weight` times (a sampled timer's observation).
    #[inline(always)]
    fn record_weighted(&'static self, nanos: u64, weight: u64) {
        if !switch::recording() {
            return;
        }
        let cached = self.cached_slot.load(Relaxed);
        if cached.wrapping_sub(1) < SHARED - 1 {
            histogram_record(cached - 1, nanos, weight, || self.histogram_core());
        } else {
            self.record_cold(nanos, weight);
        }
    }

    /// Records the time since `start` (a clock reading) through the call site.
    #[cold]
    #[inline(never)]
    fn record_since(&'static self, start: u64, weight: u64) {
        self.record_weighted(tick_clock::elapsed_nanos(start), weight);
    }

    #[cold]
    #[inline(never)]
    fn record_cold(&'static self, nanos: u64, weight: u64) {
        let core = self.histogram_core();
        histogram_record(core.slot, nanos, weight, || core);
    }
}

//! The global registry: names to metrics, slots to cells, and the list of live thread shards.
//!
//! One mutex guards all of it. It is taken to register a metric (once per call site or handle),
//! to adopt or retire a thread's shard (once per thread) and to take a snapshot; never on the hot
//! path. No user code and no logging runs while it is held: a logger or a callback gauge that is
//! itself instrumented would otherwise deadlock.

use crate::engine::metadata::Descriptor;
use crate::engine::shard::{self, Shard};
use crate::engine::snapshot::{Labels, Snapshot};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::*;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

mod assembly;
mod declare;
mod error;
mod loading;
mod request;
mod storage;

use declare::overflow_request;
pub use error::RegistryError;
pub(crate) use loading::{LOADERS, Loader, Loading};
pub(crate) use request::{Request, SeriesRequest};
use storage::Slots;
pub(crate) use storage::{CounterCore, GaugeCallback, GaugeCore, HistogramCore, NO_SLOT, Storage};

struct Metric {
    descriptor: Descriptor,
    /// The descriptor's description, shared with every snapshot (a clone is a reference count).
    description: Arc<str>,
    /// Series other than the overflow series.
    bounded_series: usize,
    /// Whether the metric is a callback gauge (checked on every registration, so kept here
    /// rather than found by scanning the series).
    has_callback: bool,
    /// Series in label order; an unlabeled metric has one series with no labels.
    series: BTreeMap<Labels, Storage>,
    /// Hashes of the label sets already counted as overflowing, so a label set met again
    /// (after a per-thread cache miss) is not counted twice; at most [`OVERFLOW_MEMORY`].
    overflowed: rustc_hash::FxHashSet<u64>,
}

struct ShardPtr(*const Shard);
// SAFETY: shards are written by their owning thread only and read under the registry lock.
unsafe impl Send for ShardPtr {}

struct State {
    /// By name; the name is shared with every snapshot.
    metrics: BTreeMap<Arc<str>, Metric>,
    slots: Slots,
    shards: Vec<ShardPtr>,
    call_sites_loaded: bool,
}

/// The process-wide registry. Reach it through the free functions of this crate
/// ([`crate::snapshot`], [`crate::descriptors`], [`crate::counter!`], ...).
pub(crate) struct Registry {
    state: Mutex<State>,
}

static REGISTRY: Registry = Registry {
    state: Mutex::new(State {
        metrics: BTreeMap::new(),
        slots: Slots::new(),
        shards: Vec::new(),
        call_sites_loaded: false,
    }),
};

pub(crate) fn registry() -> &'static Registry {
    &REGISTRY
}

/// Log lines produced under the lock, written after it is released.
type Deferred = Vec<String>;

// The registry's lock, held across a fork (see `crate::fork`): after the anonymizer's (the
// registry never hashes under its lock) and before the crash-location set (a panic under the
// lock records its location).
crate::fork::fork_hook!(REGISTRY_FORK_HOOK, 3, || {
    Some(Box::new(
        registry()
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    ))
});

fn emit(deferred: Deferred) {
    for line in deferred {
        crate::diagnostics::diag!(error, "{line}");
    }
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, State> {
        crate::fork::install();
        // No code that can panic runs under the lock, but never let poisoning reach the host.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks and registers every macro call site that the linker collected, once.
    fn lock_loaded(&self) -> (MutexGuard<'_, State>, Deferred) {
        let mut state = self.lock();
        let mut deferred = Vec::new();
        if !state.call_sites_loaded {
            state.call_sites_loaded = true;
            let _ = state.declare(&overflow_request(), &SeriesRequest::unlabeled(), false);
            let mut loaders: Vec<&Loader> = LOADERS.iter().collect();
            loaders.sort_by_key(|loader| loader.order);
            let mut loading = Loading {
                state: &mut state,
                deferred: &mut deferred,
            };
            for loader in loaders {
                (loader.load)(&mut loading);
            }
        }
        (state, deferred)
    }

    /// Registers a metric (or finds the existing one of the same name, kind and unit).
    pub(crate) fn register(&self, request: Request<'_>) -> Result<Storage, RegistryError> {
        let (mut state, deferred) = self.lock_loaded();
        let result = state.register(&request, SeriesRequest::unlabeled(), None);
        drop(state);
        emit(deferred);
        result
    }

    /// Declares a metric without registering a series (labeled handles), with each label
    /// type's closed set of values, so the manifest lists them before anything is recorded.
    pub(crate) fn declare(
        &self,
        request: Request<'_>,
        possible: Vec<Option<&'static [&'static str]>>,
        reasons: Vec<&'static str>,
    ) -> Result<(), RegistryError> {
        let (mut state, deferred) = self.lock_loaded();
        let series = SeriesRequest {
            values: Vec::new(),
            possible,
            reasons,
        };
        let result = state.declare(&request, &series, false);
        drop(state);
        emit(deferred);
        result
    }

    /// Registers one series of a labeled metric (or finds it).
    pub(crate) fn register_series(
        &self,
        request: Request<'_>,
        series: SeriesRequest,
    ) -> Result<Storage, RegistryError> {
        let (mut state, deferred) = self.lock_loaded();
        let result = state.register(&request, series, None);
        drop(state);
        emit(deferred);
        result
    }

    /// Registers a callback gauge.
    pub(crate) fn register_callback(
        &self,
        request: Request<'_>,
        callback: GaugeCallback,
    ) -> Result<(), RegistryError> {
        let (mut state, deferred) = self.lock_loaded();
        let result = state
            .register(&request, SeriesRequest::unlabeled(), Some(callback))
            .map(drop);
        drop(state);
        emit(deferred);
        result
    }

    /// The storage of a declared metric's series (the cold path of the macros): registered
    /// now if need be, or kept apart under another name if it conflicts with an existing
    /// metric (see [`Loading::register_or_keep_apart`]).
    pub(crate) fn register_or_keep_apart(
        &self,
        request: &Request<'_>,
        series: SeriesRequest,
    ) -> Storage {
        let (mut state, mut deferred) = self.lock_loaded();
        let storage = state.register_or_keep_apart(request, series, &mut deferred);
        drop(state);
        emit(deferred);
        storage
    }

    /// Every descriptor, in name order.
    pub(crate) fn descriptors(&self) -> Vec<Descriptor> {
        let (state, deferred) = self.lock_loaded();
        let out = state
            .metrics
            .values()
            .map(|m| m.descriptor.clone())
            .collect();
        drop(state);
        emit(deferred);
        out
    }

    pub(crate) fn adopt_shard(&self, shard: *const Shard) {
        crate::process::mark_started();
        self.lock().shards.push(ShardPtr(shard));
    }

    /// Folds an exiting thread's shard into the retired totals and frees it.
    pub(crate) fn retire_shard(&self, shard: *const Shard) {
        let mut state = self.lock();
        // SAFETY: the shard is alive until `free` below; only this (its owning) thread writes it.
        state.fold(unsafe { &*shard });
        state.shards.retain(|s| s.0 != shard);
        drop(state);
        // SAFETY: no longer in the list nor in the thread-local; freed once.
        unsafe { shard::free(shard) };
    }

    /// Folds the calling thread's shard into the retired totals and zeroes it, so that what the
    /// thread records next can be read from the shard alone (scoped capture).
    pub(crate) fn fold_and_reset(&self, shard: &Shard) {
        let state = self.lock();
        state.fold(shard);
        shard.reset_owned();
    }

    /// A snapshot of everything (`shard == None`) or of one thread's shard only.
    pub(crate) fn snapshot(&self, only: Option<&Shard>) -> Snapshot {
        let mut snapshot = Snapshot::default();
        self.snapshot_into(only, &mut snapshot);
        snapshot
    }

    /// Makes `into` a snapshot of everything (`shard == None`) or of one thread's shard,
    /// reusing its allocations where it already holds the same metrics and series.
    pub(crate) fn snapshot_into(&self, only: Option<&Shard>, into: &mut Snapshot) {
        let (state, deferred) = self.lock_loaded();
        let callbacks = state.snapshot_into(only, into);
        drop(state);
        emit(deferred);
        crate::engine::gauges::evaluate(into, callbacks);
    }

    /// Bytes used by live thread shards: `(shards, total bytes)`.
    pub(crate) fn shard_memory(&self) -> (usize, usize) {
        let state = self.lock();
        // SAFETY: shards in the list are alive while the lock is held.
        let bytes = state
            .shards
            .iter()
            .map(|s| unsafe { &*s.0 }.memory_bytes())
            .sum();
        (state.shards.len(), bytes)
    }
}

impl State {
    fn fold(&self, shard: &Shard) {
        shard.counters.for_each(|slot, cell| {
            let n = cell.load(Relaxed);
            if n != 0 {
                self.slots.counters[slot as usize]
                    .retired
                    .fetch_add(n, Relaxed);
            }
        });
        shard.for_each_histogram(|slot, cells| {
            cells.fold_into(&self.slots.histograms[slot as usize].retired)
        });
    }
}

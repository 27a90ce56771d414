//! The global registry: names to metrics, slots to cells, and the list of live thread shards.
//!
//! One mutex guards all of it. It is taken to register a metric (once per call site or handle),
//! to adopt or retire a thread's shard (once per thread) and to take a snapshot; never on the hot
//! path. No user code and no logging runs while it is held: a logger or a callback gauge that is
//! itself instrumented would otherwise deadlock.

use crate::engine::cells::{HistogramAccumulator, HistogramCells};
use crate::engine::labels::{MAX_LABELS, OTHER_LABEL_VALUE, OVERFLOW_LABEL_VALUE};
use crate::engine::metadata::{
    Descriptor, LabelDescriptor, Location, MetricKind, Unit, validate_name,
};
use crate::engine::shard::{self, MAX_SLOTS, Shard};
use crate::engine::snapshot::{Labels, Series, Snapshot};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

mod assembly;
mod error;
mod loading;

use assembly::{update_families, update_series};
pub use error::RegistryError;
pub(crate) use loading::{LOADERS, Loader, Loading};

/// Marks a series that has no per-thread slot (the slot tables are full): it is recorded with
/// shared atomics instead.
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// A counter series: its slot in every shard, and the total of exited threads.
pub(crate) struct CounterCore {
    pub(crate) slot: u32,
    pub(crate) retired: AtomicU64,
}

/// A histogram series: its slot in every shard, and the cells of exited threads.
pub(crate) struct HistogramCore {
    pub(crate) slot: u32,
    pub(crate) retired: HistogramCells,
}

/// A gauge series: one shared value.
pub(crate) struct GaugeCore {
    pub(crate) value: AtomicI64,
}

/// A gauge read from a closure at snapshot time.
pub(crate) use crate::engine::gauges::GaugeCallback;

/// Where one series keeps its values.
#[derive(Clone)]
pub(crate) enum Storage {
    Counter(&'static CounterCore),
    Gauge(&'static GaugeCore),
    CallbackGauge(GaugeCallback),
    Histogram(&'static HistogramCore),
}

/// What a registration asks for.
pub(crate) struct Request<'a> {
    pub(crate) name: &'a str,
    pub(crate) kind: MetricKind,
    pub(crate) unit: Unit,
    pub(crate) description: &'a str,
    pub(crate) location: Location,
    /// Label names; empty for an unlabeled metric.
    pub(crate) labels: &'a [&'a str],
    /// The cap on series, for a labeled metric.
    pub(crate) max_series: usize,
    /// `#[timed(sample = N)]`: the histogram times 1 call in N.
    pub(crate) sample_one_in: Option<u32>,
}

/// The label values of one series, and each value type's closed set (if known).
pub(crate) struct SeriesRequest {
    pub(crate) values: Vec<std::borrow::Cow<'static, str>>,
    pub(crate) possible: Vec<Option<&'static [&'static str]>>,
    /// Each value type's `SAFE_BECAUSE` (empty where unknown).
    pub(crate) reasons: Vec<&'static str>,
}

impl SeriesRequest {
    pub(crate) fn unlabeled() -> Self {
        SeriesRequest {
            values: Vec::new(),
            possible: Vec::new(),
            reasons: Vec::new(),
        }
    }
}

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

/// The most overflowing label sets a metric remembers (8 bytes each). Past it, each new
/// registration of an overflowing label set is counted, so `telemetry.series_overflow` is an
/// upper bound of the distinct label sets.
const OVERFLOW_MEMORY: usize = 65_536;

struct ShardPtr(*const Shard);
// SAFETY: shards are written by their owning thread only and read under the registry lock.
unsafe impl Send for ShardPtr {}

struct State {
    /// By name; the name is shared with every snapshot.
    metrics: BTreeMap<Arc<str>, Metric>,
    counter_slots: Vec<&'static CounterCore>,
    histogram_slots: Vec<&'static HistogramCore>,
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
        counter_slots: Vec::new(),
        histogram_slots: Vec::new(),
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
        log::error!(target: "telemetry", "{line}");
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

// `Snapshot::refresh` is defined here, with the registry that fills snapshots, so that
// `snapshot` (the values) does not depend on the registry.
impl Snapshot {
    /// Replaces the values with the current ones, as `*self = telemetry_core::snapshot()`
    /// would, but reusing this snapshot's allocations: when no metric or label set was added
    /// since it was taken, a refresh overwrites the numbers in place, allocating no name,
    /// series or label set (only a few scratch buffers of its own). Gauges' series are
    /// rebuilt each time, as callback gauges are run again.
    ///
    /// For code that reads the values again and again, such as a `/metrics` endpoint (the
    /// `Endpoints` of the `export` module keep one snapshot and refresh it for each scrape).
    /// Works on any snapshot: one that holds other metrics (deserialized, or from
    /// [`crate::testing::capture`]) is rebuilt, with the same result as a fresh snapshot.
    pub fn refresh(&mut self) {
        registry().snapshot_into(None, self);
    }
}

impl State {
    /// Creates the metric of `request`, or checks that the existing one agrees with it.
    fn declare(
        &mut self,
        request: &Request<'_>,
        series: &SeriesRequest,
        callback: bool,
    ) -> Result<(), RegistryError> {
        validate_name(request.name).map_err(RegistryError::InvalidName)?;
        validate_label_names(request)?;
        let Some(metric) = self.metrics.get_mut(request.name) else {
            let mut descriptor = Descriptor {
                name: request.name.to_owned(),
                kind: request.kind,
                unit: request.unit,
                description: request.description.to_owned(),
                declared_at: vec![request.location.clone()],
                labels: request
                    .labels
                    .iter()
                    .map(|name| LabelDescriptor {
                        name: (*name).to_owned(),
                        values: None,
                        vouched: None,
                    })
                    .collect(),
                max_series: (!request.labels.is_empty()).then_some(request.max_series),
                sample_one_in: request.sample_one_in,
            };
            note_possible_values(&mut descriptor, series);
            self.metrics.insert(
                Arc::from(request.name),
                Metric {
                    description: Arc::from(descriptor.description.as_str()),
                    descriptor,
                    bounded_series: 0,
                    overflowed: rustc_hash::FxHashSet::default(),
                    has_callback: callback,
                    series: BTreeMap::new(),
                },
            );
            return Ok(());
        };
        let existing = &metric.descriptor;
        if existing.kind != request.kind {
            return Err(RegistryError::KindConflict {
                name: request.name.to_owned(),
                existing: existing.kind,
                requested: request.kind,
                existing_at: existing.declared_at[0].clone(),
            });
        }
        if existing.unit != request.unit {
            return Err(RegistryError::UnitConflict {
                name: request.name.to_owned(),
                existing: existing.unit,
                requested: request.unit,
                existing_at: existing.declared_at[0].clone(),
            });
        }
        if !existing
            .labels
            .iter()
            .map(|l| l.name.as_str())
            .eq(request.labels.iter().copied())
        {
            return Err(RegistryError::LabelConflict {
                name: request.name.to_owned(),
                existing: existing.labels.iter().map(|l| l.name.clone()).collect(),
                requested: request.labels.iter().map(|l| (*l).to_owned()).collect(),
            });
        }
        // A callback gauge has one source of values: only a declared one's first registration.
        let declared_callback = callback && metric.has_callback && metric.series.is_empty();
        if (callback || metric.has_callback) && !declared_callback {
            return Err(RegistryError::DuplicateCallback {
                name: request.name.to_owned(),
            });
        }
        let descriptor = &mut metric.descriptor;
        if descriptor.description.is_empty() && !request.description.is_empty() {
            descriptor.description = request.description.to_owned();
            metric.description = Arc::from(request.description);
        }
        // Sites that sample differently may share a histogram (each records unbiased
        // estimates); the manifest shows the sparsest sampling.
        descriptor.sample_one_in = descriptor.sample_one_in.max(request.sample_one_in);
        if !descriptor.declared_at.contains(&request.location) {
            descriptor.declared_at.push(request.location.clone());
        }
        note_possible_values(descriptor, series);
        Ok(())
    }

    /// Lists a plain-API declaration: a labeled metric or callback gauge is declared (its
    /// series come when recorded or registered), any other gets its one series now, so a
    /// snapshot shows it as zero before it is first recorded.
    /// Registers one series (the only one of an unlabeled metric), or finds it.
    fn register(
        &mut self,
        request: &Request<'_>,
        series: SeriesRequest,
        callback: Option<GaugeCallback>,
    ) -> Result<Storage, RegistryError> {
        self.declare(request, &series, callback.is_some())?;
        if series.values.len() != request.labels.len() {
            return Err(RegistryError::InvalidLabel {
                name: request.name.to_owned(),
                reason: format!(
                    "{} label values for the label names {:?}",
                    series.values.len(),
                    request.labels
                ),
            });
        }
        // A text outside its type's listed values (a hand-written `label_text` that returns
        // something made at run time) is recorded as `other`.
        let labels: Labels = request
            .labels
            .iter()
            .zip(&series.values)
            .enumerate()
            .map(|(i, (name, value))| {
                let listed = series.possible.get(i).copied().flatten();
                let value = match listed {
                    Some(list) if !list.contains(&value.as_ref()) => OTHER_LABEL_VALUE,
                    _ => value.as_ref(),
                };
                ((*name).to_owned(), value.to_owned())
            })
            .collect();
        if let Some(storage) = self.metrics[request.name].series.get(&labels) {
            return Ok(storage.clone());
        }
        let metric = &self.metrics[request.name];
        let labels = if !labels.is_empty() && metric.bounded_series >= request.max_series {
            let hash = {
                use std::hash::{Hash, Hasher};
                let mut hasher = rustc_hash::FxHasher::default();
                labels.hash(&mut hasher);
                hasher.finish()
            };
            let Some(metric) = self.metrics.get_mut(request.name) else {
                unreachable!("declared above");
            };
            let first_time =
                metric.overflowed.len() >= OVERFLOW_MEMORY || metric.overflowed.insert(hash);
            if first_time {
                self.count_overflow(request.name);
            }
            let overflow: Labels = request
                .labels
                .iter()
                .map(|name| ((*name).to_owned(), OVERFLOW_LABEL_VALUE.to_owned()))
                .collect();
            if let Some(storage) = self.metrics[request.name].series.get(&overflow) {
                return Ok(storage.clone());
            }
            overflow
        } else {
            labels
        };
        let is_overflow = labels
            .values()
            .next()
            .is_some_and(|v| v == OVERFLOW_LABEL_VALUE);
        let storage = match callback {
            Some(callback) => Storage::CallbackGauge(callback),
            None => self.new_storage(request.kind),
        };
        let Some(metric) = self.metrics.get_mut(request.name) else {
            unreachable!("inserted above");
        };
        if !is_overflow {
            metric.bounded_series += 1;
        }
        metric.series.insert(labels, storage.clone());
        Ok(storage)
    }

    /// Counts a label set that did not fit under its metric's cap, in
    /// `telemetry.series_overflow{metric="..."}` (a family without a cap: it has at most one
    /// series per metric).
    fn count_overflow(&mut self, metric: &str) {
        let series = SeriesRequest {
            values: vec![metric.to_owned().into()],
            possible: vec![None],
            reasons: Vec::new(),
        };
        if let Ok(Storage::Counter(core)) = self.register(&overflow_request(), series, None) {
            core.retired.fetch_add(1, Relaxed);
        }
    }

    /// New cells for a series. They are leaked on purpose: metrics live as long as the process,
    /// and call sites and handles keep `'static` references to them.
    fn new_storage(&mut self, kind: MetricKind) -> Storage {
        match kind {
            MetricKind::Counter => {
                let slot = next_slot(self.counter_slots.len());
                let core: &'static CounterCore = Box::leak(Box::new(CounterCore {
                    slot,
                    retired: AtomicU64::new(0),
                }));
                if slot != NO_SLOT {
                    self.counter_slots.push(core);
                }
                Storage::Counter(core)
            }
            MetricKind::Histogram => {
                let slot = next_slot(self.histogram_slots.len());
                let core: &'static HistogramCore = Box::leak(Box::new(HistogramCore {
                    slot,
                    retired: HistogramCells::new(),
                }));
                if slot != NO_SLOT {
                    self.histogram_slots.push(core);
                }
                Storage::Histogram(core)
            }
            MetricKind::Gauge => Storage::Gauge(Box::leak(Box::new(GaugeCore {
                value: AtomicI64::new(0),
            }))),
        }
    }

    /// Registers a call site, and caches its storage in it. A site whose name conflicts with
    /// another metric keeps its values under `{name}.conflicting_{kind}` and the conflict is
    /// logged: a macro cannot return an error, and dropping its values would lose data.
    fn register_or_keep_apart(
        &mut self,
        request: &Request<'_>,
        series: SeriesRequest,
        deferred: &mut Deferred,
    ) -> Storage {
        let values = series.values.clone();
        match self.register(request, series, None) {
            Ok(storage) => storage,
            Err(error) => {
                let fallback = format!("{}.conflicting_{}", request.name, request.kind);
                deferred.push(format!(
                    "{error}; values of the call site at {} are kept under `{fallback}`",
                    request.location
                ));
                let renamed = Request {
                    name: &fallback,
                    location: request.location.clone(),
                    ..*request
                };
                let series = SeriesRequest {
                    possible: vec![None; values.len()],
                    reasons: Vec::new(),
                    values,
                };
                self.register(&renamed, series, None)
                    .unwrap_or_else(|_| self.new_storage(request.kind))
            }
        }
    }

    fn fold(&self, shard: &Shard) {
        shard.counters.for_each(|slot, cell| {
            let n = cell.load(Relaxed);
            if n != 0 {
                self.counter_slots[slot as usize]
                    .retired
                    .fetch_add(n, Relaxed);
            }
        });
        shard.for_each_histogram(|slot, cells| {
            cells.fold_into(&self.histogram_slots[slot as usize].retired)
        });
    }

    /// Brings `into` up to date: in place where it already holds this registry's metrics (no
    /// name, series or label set is allocated again), rebuilt where it does not. Returns the
    /// callback gauges, which the caller runs after the lock is released.
    fn snapshot_into(
        &self,
        only: Option<&Shard>,
        into: &mut Snapshot,
    ) -> Vec<(Arc<str>, GaugeCallback)> {
        // SAFETY: shards in the list are alive while the lock is held.
        let shards: Vec<&Shard> = match only {
            Some(shard) => vec![shard],
            None => self.shards.iter().map(|s| unsafe { &*s.0 }).collect(),
        };
        // Counters: dense per-slot totals, one pass over each shard's cells.
        let mut counters = vec![0u64; self.counter_slots.len()];
        for shard in &shards {
            shard.counters.for_each_chunk(|first, cells| {
                let totals = counters.get_mut(first..).unwrap_or_default();
                for (total, cell) in totals.iter_mut().zip(cells) {
                    *total = total.wrapping_add(cell.load(Relaxed));
                }
            });
        }
        let retired = only.is_none();
        update_families(
            &self.metrics,
            MetricKind::Counter,
            &mut into.counters,
            |_, metric, series| {
                update_series(metric, series, |storage, value| {
                    if let Storage::Counter(core) = storage {
                        let shards = counters.get(core.slot as usize).copied().unwrap_or(0);
                        let retired = if retired {
                            core.retired.load(Relaxed)
                        } else {
                            0
                        };
                        *value = retired.wrapping_add(shards);
                    }
                })
            },
        );
        let mut callbacks = Vec::new();
        update_families(
            &self.metrics,
            MetricKind::Gauge,
            &mut into.gauges,
            |name, metric, series| {
                // Callback values are pushed after the lock is released, so the series are
                // always rebuilt; gauges are few.
                series.clear();
                for (labels, storage) in &metric.series {
                    match storage {
                        Storage::Gauge(core) => series.push(Series {
                            labels: labels.clone(),
                            value: core.value.load(Relaxed),
                        }),
                        Storage::CallbackGauge(cb) => callbacks.push((name.clone(), cb.clone())),
                        _ => {}
                    }
                }
            },
        );
        // Histograms are summed one at a time into one reused accumulator.
        let mut acc = HistogramAccumulator::new();
        let mut cells = Vec::with_capacity(shards.len() + 1);
        update_families(
            &self.metrics,
            MetricKind::Histogram,
            &mut into.histograms,
            |_, metric, series| {
                update_series(metric, series, |storage, value| {
                    let Storage::Histogram(core) = storage else {
                        return;
                    };
                    acc.reset();
                    cells.clear();
                    if core.slot != NO_SLOT {
                        cells.extend(
                            shards
                                .iter()
                                .filter_map(|s| s.histogram_if_present(core.slot)),
                        );
                    }
                    if retired {
                        cells.push(&core.retired);
                    }
                    acc.add_cells(&cells);
                    value.set_from_accumulator(&acc);
                })
            },
        );
        callbacks
    }
}

/// The counter of label sets that did not fit under their metric's cap.
pub(crate) const SERIES_OVERFLOW: &str = "telemetry.series_overflow";

/// `telemetry.series_overflow{metric}`: declared when the call sites load, so the manifest
/// lists it whether or not any metric has overflowed.
fn overflow_request() -> Request<'static> {
    Request {
        name: SERIES_OVERFLOW,
        kind: MetricKind::Counter,
        unit: Unit::None,
        description: "Label sets recorded into a metric's overflow series because it reached its cap on series",
        location: Location {
            module_path: module_path!().to_owned(),
            file: file!().to_owned(),
            line: line!(),
        },
        labels: &["metric"],
        max_series: usize::MAX,
        sample_one_in: None,
    }
}

fn validate_label_names(request: &Request<'_>) -> Result<(), RegistryError> {
    let fail = |reason: String| {
        Err(RegistryError::InvalidLabel {
            name: request.name.to_owned(),
            reason,
        })
    };
    if request.labels.len() > MAX_LABELS {
        return fail(format!(
            "{} labels; at most {MAX_LABELS} are allowed",
            request.labels.len()
        ));
    }
    for (i, label) in request.labels.iter().enumerate() {
        if let Err(rule) = telemetry_rules::label_name(label) {
            return fail(format!("label name `{label}`: {rule}"));
        }
        if request.labels[..i].contains(label) {
            return fail(format!("label name `{label}` is given twice"));
        }
    }
    Ok(())
}

/// Records, for the manifest, each label's closed set of values and the reason a hand-written
/// label type gives, once known.
fn note_possible_values(descriptor: &mut Descriptor, series: &SeriesRequest) {
    for (label, possible) in descriptor.labels.iter_mut().zip(&series.possible) {
        if let (None, Some(values)) = (&label.values, possible) {
            label.values = Some(values.iter().map(|v| (*v).to_owned()).collect());
        }
    }
    for (label, reason) in descriptor.labels.iter_mut().zip(&series.reasons) {
        if label.vouched.is_none() {
            label.vouched = crate::engine::metadata::hand_written(reason);
        }
    }
}

fn next_slot(used: usize) -> u32 {
    if used < MAX_SLOTS as usize {
        used as u32
    } else {
        NO_SLOT
    }
}

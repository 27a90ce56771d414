//! The plain API's handles: what `counter!`, `gauge!` and `histogram!` return.
//!
//! For code that cannot use an attribute (a value that is not a function call, a size, a
//! count of things in the system). Handles are `Copy`, cost the same to use as the attributes,
//! and declaring the same name again (with the same kind, unit and labels) returns the same
//! metric. The metrics themselves are declared at compile time (`crate::declaration`).

use crate::engine::labels::{DEFAULT_MAX_SERIES, LabelSet};
use crate::engine::local_shard::{counter_add, histogram_record};
use crate::engine::metadata::{Location, MetricKind, Unit};
use crate::engine::registry::{
    CounterCore, GaugeCore, HistogramCore, RegistryError, Request, SeriesRequest, Storage, registry,
};
use crate::engine::series_cache::{CachedCore, MetricId, cached_series};
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

/// A monotonic `u64` counter.
///
/// ```
/// use telemetry_core::Counter;
/// let exports: Counter = telemetry_core::counter!("docs.plain_api.exports")?;
/// exports.increment();
/// exports.increment_by(2);
/// assert!(telemetry_core::snapshot().counter("docs.plain_api.exports") >= Some(3));
/// # Ok::<(), telemetry_core::RegistryError>(())
/// ```
#[derive(Clone, Copy)]
pub struct Counter {
    core: &'static CounterCore,
}

/// A gauge: an `i64` that is set or adjusted, shared by all threads.
#[derive(Clone, Copy)]
pub struct Gauge {
    core: &'static GaugeCore,
}

/// A histogram of `u64` values (nanoseconds, bytes, counts) in log-linear buckets; see
/// [`crate::HistogramSnapshot`] for the layout and error bound.
#[derive(Clone, Copy)]
pub struct Histogram {
    core: &'static HistogramCore,
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counter")
            .field("slot", &self.core.slot)
            .finish()
    }
}

impl std::fmt::Debug for Gauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gauge").field("value", &self.get()).finish()
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("slot", &self.core.slot)
            .finish()
    }
}

/// Options for registering a metric: made from a declaration the linker collected, or by this
/// crate for its own metrics.
#[must_use = "a builder does nothing until `register` is called"]
pub(crate) struct MetricBuilder<M> {
    name: String,
    description: String,
    unit: Unit,
    location: Location,
    labels: Vec<&'static str>,
    max_series: usize,
    _metric: PhantomData<M>,
}

impl<M> MetricBuilder<M> {
    /// The builder of a collected declaration's request.
    pub(crate) fn from_request(request: Request<'static>) -> Self {
        MetricBuilder {
            name: request.name.to_owned(),
            description: request.description.to_owned(),
            unit: request.unit,
            location: request.location,
            labels: request.labels.to_vec(),
            max_series: request.max_series,
            _metric: PhantomData,
        }
    }

    #[track_caller]
    fn new(name: &str) -> Self {
        let caller = std::panic::Location::caller();
        MetricBuilder {
            name: name.to_owned(),
            description: String::new(),
            unit: Unit::None,
            location: Location {
                module_path: String::new(),
                file: caller.file().to_owned(),
                line: caller.line(),
            },
            labels: Vec::new(),
            max_series: DEFAULT_MAX_SERIES,
            _metric: PhantomData,
        }
    }

    /// A one-line description, shown in exports and the disclosure manifest: text fixed in the
    /// code, like the metric's name.
    pub(crate) fn description(mut self, description: &'static str) -> Self {
        self.description = description.to_owned();
        self
    }

    /// Label names, for a metric registered with `register_labeled` (at most
    /// [`crate::engine::labels::MAX_LABELS`]; ASCII letters, digits and `_`).
    pub(crate) fn labels(mut self, names: &[&'static str]) -> Self {
        self.labels = names.to_vec();
        self
    }

    /// The cap on the number of series of a labeled metric (default
    /// [`crate::engine::labels::DEFAULT_MAX_SERIES`]). Label sets past it are recorded into one
    /// overflow series and counted in `telemetry.series_overflow`.
    pub(crate) fn max_series(mut self, max_series: usize) -> Self {
        self.max_series = max_series;
        self
    }

    fn request(&self, kind: MetricKind) -> Request<'_> {
        Request {
            name: &self.name,
            kind,
            unit: self.unit,
            description: &self.description,
            location: self.location.clone(),
            labels: &self.labels,
            max_series: self.max_series,
            sample_one_in: None,
        }
    }

    /// Checks the label names against `L`, and declares the metric.
    fn labeled<L: LabelSet>(self, kind: MetricKind) -> Result<Arc<LabeledFamily>, RegistryError> {
        if self.labels.len() != L::LEN {
            return Err(RegistryError::InvalidLabel {
                name: self.name,
                reason: format!(
                    "{} label names {:?} for label sets of {} values",
                    self.labels.len(),
                    self.labels,
                    L::LEN
                ),
            });
        }
        registry().declare(self.request(kind), L::possible_values(), L::reasons())?;
        Ok(Arc::new(LabeledFamily {
            id: MetricId::of_family(&self.name),
            name: self.name,
            description: self.description,
            unit: self.unit,
            location: self.location,
            labels: self.labels,
            max_series: self.max_series,
            kind,
        }))
    }
}

/// What a labeled handle needs to register its series on first use.
struct LabeledFamily {
    id: MetricId,
    name: String,
    description: String,
    unit: Unit,
    location: Location,
    labels: Vec<&'static str>,
    max_series: usize,
    kind: MetricKind,
}

impl LabeledFamily {
    /// The series of `labels`, from this thread's cache or registered on first use.
    #[inline]
    fn series<C: CachedCore, L: LabelSet>(&self, labels: &L) -> Result<&'static C, RegistryError> {
        let mut failed = None;
        let series = cached_series((self.id, labels.keys()), || {
            self.resolve(labels).map_err(|e| failed = Some(e)).ok()
        });
        match (series, failed) {
            (Some(series), _) => Ok(series),
            (None, Some(e)) => Err(e),
            (None, None) => unreachable!("a failed resolution reports its error"),
        }
    }

    #[cold]
    fn resolve<C: CachedCore, L: LabelSet>(&self, labels: &L) -> Result<&'static C, RegistryError> {
        self.resolve_values(labels.texts(), L::possible_values(), L::reasons())
    }

    /// The series of label texts that arrived from another instrumentation API, each mapped
    /// into its type's closed set ([`LabelSet::bridged_texts`]); not cached here (the bridge
    /// keeps what it resolves).
    #[cfg(feature = "metrics")]
    fn resolve_bridged<C: CachedCore, L: LabelSet>(
        &self,
        texts: &[Option<&str>],
    ) -> Result<&'static C, RegistryError> {
        self.resolve_values(L::bridged_texts(texts), L::possible_values(), L::reasons())
    }

    fn resolve_values<C: CachedCore>(
        &self,
        values: Vec<std::borrow::Cow<'static, str>>,
        possible: Vec<Option<&'static [&'static str]>>,
        reasons: Vec<&'static str>,
    ) -> Result<&'static C, RegistryError> {
        let request = Request {
            name: &self.name,
            kind: self.kind,
            unit: self.unit,
            description: &self.description,
            location: self.location.clone(),
            labels: &self.labels,
            max_series: self.max_series,
            sample_one_in: None,
        };
        let series = SeriesRequest {
            values,
            possible,
            reasons,
        };
        let storage = registry().register_series(request, series)?;
        // The registry checks that a name keeps its kind.
        Ok(C::of(storage).unwrap_or_else(|| unreachable!("a family resolves to its own kind")))
    }
}

impl MetricBuilder<Counter> {
    /// Registers a labeled counter whose label sets are `L`, a tuple of
    /// [`LabelValue`](crate::LabelValue) types (one per name given to
    /// [`labels`](Self::labels)).
    ///
    /// # Errors
    /// [`RegistryError`] if the name or a label name is invalid, the number of names is not
    /// the arity of `L`, or the name is taken by another kind, unit or label names.
    pub(crate) fn register_labeled<L: LabelSet>(self) -> Result<LabeledCounter<L>, RegistryError> {
        Ok(LabeledCounter {
            family: self.labeled::<L>(MetricKind::Counter)?,
            _labels: PhantomData,
        })
    }

    /// Registers the counter, or returns the existing one of the same name.
    ///
    /// # Errors
    /// [`RegistryError`] if the name is invalid or taken by another kind or unit.
    pub(crate) fn register(self) -> Result<Counter, RegistryError> {
        match registry().register(self.request(MetricKind::Counter))? {
            Storage::Counter(core) => Ok(Counter { core }),
            _ => unreachable!("the registry checks the kind"),
        }
    }
}

impl MetricBuilder<Gauge> {
    /// Registers the gauge, or returns the existing one of the same name.
    ///
    /// # Errors
    /// [`RegistryError`] if the name is invalid, taken by another kind or unit, or by a
    /// callback gauge.
    pub(crate) fn register(self) -> Result<Gauge, RegistryError> {
        match registry().register(self.request(MetricKind::Gauge))? {
            Storage::Gauge(core) => Ok(Gauge { core }),
            _ => Err(RegistryError::DuplicateCallback { name: self.name }),
        }
    }

    /// Registers a gauge whose value `read` returns when a snapshot is taken, e.g. "the number
    /// of projects in the system" (Unleash's "Data collection" documentation). `read` runs on the thread taking the snapshot,
    /// outside any lock; if it panics, the panic is caught and logged and the gauge is left out
    /// of that snapshot.
    ///
    /// # Errors
    /// [`RegistryError`] if the name is invalid or already registered.
    pub(crate) fn register_callback(
        self,
        read: impl Fn() -> i64 + Send + Sync + 'static,
    ) -> Result<(), RegistryError> {
        registry().register_callback(
            self.request(MetricKind::Gauge),
            crate::engine::gauges::Callback::new(read),
        )
    }
}

impl MetricBuilder<Histogram> {
    /// Registers a labeled histogram whose label sets are `L`; see
    /// [`MetricBuilder::<Counter>::register_labeled`].
    ///
    /// # Errors
    /// As for labeled counters.
    pub(crate) fn register_labeled<L: LabelSet>(
        self,
    ) -> Result<LabeledHistogram<L>, RegistryError> {
        Ok(LabeledHistogram {
            family: self.labeled::<L>(MetricKind::Histogram)?,
            _labels: PhantomData,
        })
    }

    /// Registers the histogram, or returns the existing one of the same name.
    ///
    /// # Errors
    /// [`RegistryError`] if the name is invalid or taken by another kind or unit.
    pub(crate) fn register(self) -> Result<Histogram, RegistryError> {
        match registry().register(self.request(MetricKind::Histogram))? {
            Storage::Histogram(core) => Ok(Histogram { core }),
            _ => unreachable!("the registry checks the kind"),
        }
    }
}

impl Counter {
    /// Starts registering one of this crate's own counters.
    #[track_caller]
    pub(crate) fn builder(name: &'static str) -> MetricBuilder<Counter> {
        MetricBuilder::new(name)
    }

    /// Adds one.
    #[inline]
    pub fn increment(&self) {
        self.increment_by(1);
    }

    /// Adds `n`.
    #[inline]
    pub fn increment_by(&self, n: u64) {
        if !crate::engine::switch::recording() {
            return;
        }
        let core = self.core;
        counter_add(core.slot, n, || core);
    }
}

impl Gauge {
    /// Sets the value.
    #[inline]
    pub fn set(&self, value: i64) {
        self.core.value.store(value, Relaxed);
    }

    /// Adds `delta` (negative to subtract), wrapping on overflow.
    #[inline]
    pub fn add(&self, delta: i64) {
        self.core.value.fetch_add(delta, Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.core.value.load(Relaxed)
    }
}

impl Histogram {
    /// Records one value, in the histogram's unit.
    #[inline]
    pub fn record(&self, value: u64) {
        if !crate::engine::switch::recording() {
            return;
        }
        let core = self.core;
        histogram_record(core.slot, value, 1, || core);
    }

    /// Records a duration in nanoseconds (saturating at `u64::MAX` ns, about 584 years).
    #[inline]
    pub fn record_duration(&self, duration: std::time::Duration) {
        self.record(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
    }
}

/// A counter with labels: one series per label set `L` (a tuple of [`LabelValue`](crate::LabelValue)s).
///
/// [`increment`](Self::increment) finds the series in a per-thread cache (a hash of the
/// label values; no lock) and registers it on first use. For a label set used in a hot loop,
/// keep its [`series`](Self::series) handle: a plain [`Counter`].
pub struct LabeledCounter<L> {
    family: Arc<LabeledFamily>,
    _labels: PhantomData<fn(L)>,
}

impl<L> Clone for LabeledCounter<L> {
    fn clone(&self) -> Self {
        LabeledCounter {
            family: self.family.clone(),
            _labels: PhantomData,
        }
    }
}

impl<L: LabelSet> LabeledCounter<L> {
    /// Adds one to the series of `labels`.
    #[inline]
    pub fn increment(&self, labels: L) {
        self.increment_by(labels, 1);
    }

    /// Adds `n` to the series of `labels`. (Registering a series of a metric that
    /// `register_labeled` accepted cannot fail; should it, the error is logged.)
    #[inline]
    pub fn increment_by(&self, labels: L, n: u64) {
        match self.series(labels) {
            Ok(counter) => counter.increment_by(n),
            Err(e) => crate::diagnostics::diag!(error, "{e}"),
        }
    }

    /// The plain counter of one label set.
    ///
    /// # Errors
    /// [`RegistryError`] if the series cannot be registered.
    pub fn series(&self, labels: L) -> Result<Counter, RegistryError> {
        Ok(Counter {
            core: self.family.series(&labels)?,
        })
    }

    /// The label names, in order.
    #[cfg(feature = "metrics")]
    pub(crate) fn label_names(&self) -> &[&'static str] {
        &self.family.labels
    }

    /// The series of label texts from another instrumentation API (see
    /// [`LabelValue::bridged_text`](crate::LabelValue::bridged_text)), one per label name.
    #[cfg(feature = "metrics")]
    pub(crate) fn bridged_series(&self, texts: &[Option<&str>]) -> Result<Counter, RegistryError> {
        Ok(Counter {
            core: self.family.resolve_bridged::<_, L>(texts)?,
        })
    }
}

/// A histogram with labels: one series per label set `L`; see [`LabeledCounter`].
pub struct LabeledHistogram<L> {
    family: Arc<LabeledFamily>,
    _labels: PhantomData<fn(L)>,
}

impl<L> Clone for LabeledHistogram<L> {
    fn clone(&self) -> Self {
        LabeledHistogram {
            family: self.family.clone(),
            _labels: PhantomData,
        }
    }
}

impl<L: LabelSet> LabeledHistogram<L> {
    /// Records `value` into the series of `labels`.
    #[inline]
    pub fn record(&self, labels: L, value: u64) {
        match self.series(labels) {
            Ok(histogram) => histogram.record(value),
            Err(e) => crate::diagnostics::diag!(error, "{e}"),
        }
    }

    /// The plain histogram of one label set.
    ///
    /// # Errors
    /// [`RegistryError`] if the series cannot be registered.
    pub fn series(&self, labels: L) -> Result<Histogram, RegistryError> {
        Ok(Histogram {
            core: self.family.series(&labels)?,
        })
    }

    /// The label names, in order.
    #[cfg(feature = "metrics")]
    pub(crate) fn label_names(&self) -> &[&'static str] {
        &self.family.labels
    }

    /// The series of label texts from another instrumentation API (see
    /// [`LabelValue::bridged_text`](crate::LabelValue::bridged_text)), one per label name.
    #[cfg(feature = "metrics")]
    pub(crate) fn bridged_series(
        &self,
        texts: &[Option<&str>],
    ) -> Result<Histogram, RegistryError> {
        Ok(Histogram {
            core: self.family.resolve_bridged::<_, L>(texts)?,
        })
    }
}

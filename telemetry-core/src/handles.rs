//! The plain API: register a metric by name at run time and keep its handle.
//!
//! For code that cannot use an attribute (a value that is not a function call, a size, a
//! count of things in the system). Handles are `Copy`, cost the same to use as the macros, and
//! registering the same name again returns the same metric.

use crate::metadata::{Location, MetricKind, Unit};
use crate::registry::{
    CounterCore, GaugeCore, HistogramCore, RegistryError, Request, Storage, counter_add,
    histogram_record, registry,
};
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

/// A monotonic `u64` counter.
///
/// ```
/// use telemetry_core::Counter;
/// let exports = Counter::register("docs.plain_api.exports")?;
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

/// Options for registering a metric: description and unit. Made by `Counter::builder`,
/// `Gauge::builder` and `Histogram::builder`.
#[must_use = "a builder does nothing until `register` is called"]
pub struct MetricBuilder<M> {
    name: String,
    description: String,
    unit: Unit,
    location: Location,
    _metric: PhantomData<M>,
}

impl<M> MetricBuilder<M> {
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
            _metric: PhantomData,
        }
    }

    /// A one-line description, shown in exports and the disclosure manifest.
    pub fn description(mut self, description: &str) -> Self {
        self.description = description.to_owned();
        self
    }

    /// The unit of the values (default [`Unit::None`]).
    pub fn unit(mut self, unit: Unit) -> Self {
        self.unit = unit;
        self
    }

    fn request(&self, kind: MetricKind) -> Request<'_> {
        Request {
            name: &self.name,
            kind,
            unit: self.unit,
            description: &self.description,
            location: self.location.clone(),
        }
    }
}

impl MetricBuilder<Counter> {
    /// Registers the counter, or returns the existing one of the same name.
    ///
    /// # Errors
    /// [`RegistryError`] if the name is invalid or taken by another kind or unit.
    pub fn register(self) -> Result<Counter, RegistryError> {
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
    pub fn register(self) -> Result<Gauge, RegistryError> {
        match registry().register(self.request(MetricKind::Gauge))? {
            Storage::Gauge(core) => Ok(Gauge { core }),
            _ => Err(RegistryError::DuplicateCallback { name: self.name }),
        }
    }

    /// Registers a gauge whose value `read` returns when a snapshot is taken, e.g. "the number
    /// of projects in the system" (Unleash seed). `read` runs on the thread taking the snapshot,
    /// outside any lock; if it panics, the panic is caught and logged and the gauge is left out
    /// of that snapshot.
    ///
    /// # Errors
    /// [`RegistryError`] if the name is invalid or already registered.
    pub fn register_callback(
        self,
        read: impl Fn() -> i64 + Send + Sync + 'static,
    ) -> Result<(), RegistryError> {
        registry().register_callback(self.request(MetricKind::Gauge), Arc::new(read))
    }
}

impl MetricBuilder<Histogram> {
    /// Registers the histogram, or returns the existing one of the same name.
    ///
    /// # Errors
    /// [`RegistryError`] if the name is invalid or taken by another kind or unit.
    pub fn register(self) -> Result<Histogram, RegistryError> {
        match registry().register(self.request(MetricKind::Histogram))? {
            Storage::Histogram(core) => Ok(Histogram { core }),
            _ => unreachable!("the registry checks the kind"),
        }
    }
}

impl Counter {
    /// Registers counter `name` with no description and no unit. Same as
    /// `Counter::builder(name).register()`.
    ///
    /// # Errors
    /// [`RegistryError`] if the name is invalid or taken by another kind or unit.
    #[track_caller]
    pub fn register(name: &str) -> Result<Counter, RegistryError> {
        Self::builder(name).register()
    }

    /// Starts registering counter `name` with a description or unit.
    #[track_caller]
    pub fn builder(name: &str) -> MetricBuilder<Counter> {
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
        let core = self.core;
        counter_add(core.slot, n, || core);
    }
}

impl Gauge {
    /// Registers gauge `name` with no description and no unit.
    ///
    /// # Errors
    /// [`RegistryError`] if the name is invalid or taken by another kind, unit or a callback.
    #[track_caller]
    pub fn register(name: &str) -> Result<Gauge, RegistryError> {
        Self::builder(name).register()
    }

    /// Starts registering gauge `name` with a description or unit, or as a callback gauge.
    #[track_caller]
    pub fn builder(name: &str) -> MetricBuilder<Gauge> {
        MetricBuilder::new(name)
    }

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
    /// Registers histogram `name` with no description and no unit.
    ///
    /// # Errors
    /// [`RegistryError`] if the name is invalid or taken by another kind or unit.
    #[track_caller]
    pub fn register(name: &str) -> Result<Histogram, RegistryError> {
        Self::builder(name).register()
    }

    /// Starts registering histogram `name` with a description or unit.
    #[track_caller]
    pub fn builder(name: &str) -> MetricBuilder<Histogram> {
        MetricBuilder::new(name)
    }

    /// Records one value, in the histogram's unit.
    #[inline]
    pub fn record(&self, value: u64) {
        let core = self.core;
        histogram_record(core.slot, value, || core);
    }

    /// Records a duration in nanoseconds (saturating at `u64::MAX` ns, about 584 years).
    #[inline]
    pub fn record_duration(&self, duration: std::time::Duration) {
        self.record(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
    }
}

//! A `metrics::Recorder` (feature `metrics`): code instrumented with the `metrics` crate's
//! `counter!`, `gauge!` and `histogram!` records into metrics declared here, under the privacy
//! rules of the [`bridge`](super) module.
//!
//! ```
//! use telemetry_core::bridge::metrics::{MetricsBridge, Scale};
//! use telemetry_core::{LabelValue, counter, histogram};
//!
//! #[derive(LabelValue, Clone, Copy)]
//! enum Method { #[label(rename = "GET")] Get, #[label(rename = "POST")] Post }
//!
//! let bridge = MetricsBridge::new()
//!     .counter("http_requests_total", counter!("docs.http.requests", labels(method: Method))?)
//!     .histogram(
//!         "http_request_duration_seconds",
//!         histogram!("docs.http.duration", unit = Nanoseconds)?,
//!         Scale::SecondsToNanoseconds,
//!     );
//! metrics::with_local_recorder(&bridge, || {
//!     metrics::counter!("http_requests_total", "method" => "GET").increment(2);
//!     // Not one of the declared values: recorded as `other`.
//!     metrics::counter!("http_requests_total", "method" => "/admin?user=alice").increment(1);
//!     // Undeclared: dropped and counted in `telemetry.bridge.dropped`.
//!     metrics::counter!("logins", "user" => "alice").increment(1);
//!     metrics::histogram!("http_request_duration_seconds").record(0.25);
//! });
//! let snap = telemetry_core::snapshot();
//! assert_eq!(snap.counter_with("docs.http.requests", &[("method", "GET")]), Some(2));
//! assert_eq!(snap.counter_with("docs.http.requests", &[("method", "other")]), Some(1));
//! assert!(snap.counters.keys().all(|name| !name.contains("logins")));
//! assert_eq!(snap.histogram("docs.http.duration").unwrap().sum(), 250_000_000);
//! # Ok::<(), telemetry_core::RegistryError>(())
//! ```
//!
//! Install it for the whole process with [`MetricsBridge::install`] (the `metrics` crate's
//! `set_global_recorder`), or for a scope with `metrics::with_local_recorder`.
//!
//! # What is taken, and how
//! - The `metrics` name only selects the declared metric; it is never exported. Each declared
//!   metric may be fed by one name; a name fed to no metric of its kind is dropped.
//! - Label keys must be the declared metric's label names (in any order); a measurement with
//!   any other key is dropped, a missing one is recorded as `other`.
//! - Counters take `increment` as it is and `absolute` as "at least this much" (the counter
//!   grows to the largest value given). Gauges hold integers: `set`, `increment` and
//!   `decrement` take the value truncated toward zero (NaN as 0). Histograms hold unsigned
//!   integers: a value is multiplied by its [`Scale`], truncated, and negative values and NaN
//!   are recorded as 0.
//! - Descriptions and units given to `describe_*` are ignored: the declaration's description
//!   and unit are the ones the manifest lists.

use super::{Bridge, Dropped, dropped_counter};
use crate::engine::handles::{Counter, Gauge, Histogram, LabeledCounter, LabeledHistogram};
use crate::engine::labels::LabelSet;
use crate::engine::registry::RegistryError;
use metrics::{Key, KeyName, Metadata, SharedString, Unit};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

/// The most `metrics` keys (name and label values) whose handle a bridge keeps; past it, a key
/// is resolved again on each registration (the series are still capped by their metric).
const MAX_KEPT_KEYS: usize = 4096;

/// How a histogram's values are turned into the unsigned integers it records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Scale {
    /// As given, truncated toward zero.
    #[default]
    AsIs,
    /// Seconds, as the `metrics` crate's convention for durations is, recorded in
    /// nanoseconds (for a histogram declared with `unit = Nanoseconds`, the unit of `#[timed]`).
    SecondsToNanoseconds,
}

impl Scale {
    fn apply(self, value: f64) -> u64 {
        let scaled = match self {
            Scale::AsIs => value,
            Scale::SecondsToNanoseconds => value * 1e9,
        };
        // `as` saturates: negative values and NaN become 0, huge ones u64::MAX.
        scaled as u64
    }
}

impl<H> Route<H> {
    /// The key's label values in the declared order, or `None` if it has an undeclared key.
    fn texts<'k>(&self, key: &'k Key) -> Option<Vec<Option<&'k str>>> {
        let mut texts = vec![None; self.labels.len()];
        for label in key.labels() {
            let i = self.labels.iter().position(|name| *name == label.key())?;
            texts[i] = Some(label.value());
        }
        Some(texts)
    }
}

/// A handle a counter route can be made of: [`Counter`] or [`LabeledCounter`]. Sealed.
pub trait CounterTarget: sealed::IntoRoute<Counter> {}

impl CounterTarget for Counter {}
impl<L: LabelSet + 'static> CounterTarget for LabeledCounter<L> {}

/// A handle a histogram route can be made of: [`Histogram`] or [`LabeledHistogram`]. Sealed.
pub trait HistogramTarget: sealed::IntoRoute<Histogram> {}

impl HistogramTarget for Histogram {}
impl<L: LabelSet + 'static> HistogramTarget for LabeledHistogram<L> {}

impl sealed::IntoRoute<Counter> for Counter {
    fn into_route(self) -> Route<Counter> {
        Route {
            labels: Vec::new(),
            resolve: Box::new(move |_| Ok(self)),
        }
    }
}

impl<L: LabelSet + 'static> sealed::IntoRoute<Counter> for LabeledCounter<L> {
    fn into_route(self) -> Route<Counter> {
        Route {
            labels: self.label_names().to_vec(),
            resolve: Box::new(move |texts| self.bridged_series(texts)),
        }
    }
}

impl sealed::IntoRoute<Histogram> for Histogram {
    fn into_route(self) -> Route<Histogram> {
        Route {
            labels: Vec::new(),
            resolve: Box::new(move |_| Ok(self)),
        }
    }
}

impl<L: LabelSet + 'static> sealed::IntoRoute<Histogram> for LabeledHistogram<L> {
    fn into_route(self) -> Route<Histogram> {
        Route {
            labels: self.label_names().to_vec(),
            resolve: Box::new(move |texts| self.bridged_series(texts)),
        }
    }
}

mod sealed {
    use super::RegistryError;

    /// A declared metric a `metrics` name feeds: its label names, and how a series is found
    /// from label texts.
    pub struct Route<H> {
        pub(super) labels: Vec<&'static str>,
        pub(super) resolve: Resolve<H>,
    }

    /// Finds the series of label texts in the declared order.
    pub(super) type Resolve<H> =
        Box<dyn Fn(&[Option<&str>]) -> Result<H, RegistryError> + Send + Sync>;

    /// Makes the route of a handle; only this module implements it.
    pub trait IntoRoute<H> {
        fn into_route(self) -> Route<H>;
    }
}
use sealed::Route;

/// Why [`MetricsBridge::install`] failed: the process has a `metrics` recorder already.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a `metrics` recorder is installed already")]
pub struct AlreadyInstalled;

/// The handles resolved so far, by `metrics` key.
#[derive(Default)]
struct Kept {
    counters: HashMap<Key, metrics::Counter>,
    gauges: HashMap<Key, metrics::Gauge>,
    histograms: HashMap<Key, metrics::Histogram>,
}

/// A `metrics::Recorder` that feeds declared metrics: built with [`counter`](Self::counter),
/// [`gauge`](Self::gauge) and [`histogram`](Self::histogram), one call per `metrics` name.
pub struct MetricsBridge {
    counters: HashMap<&'static str, Route<Counter>>,
    gauges: HashMap<&'static str, Gauge>,
    histograms: HashMap<&'static str, (Route<Histogram>, Scale)>,
    kept: RwLock<Kept>,
    dropped: Option<LabeledCounter<(Bridge, Dropped)>>,
}

impl Default for MetricsBridge {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MetricsBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |map: Vec<&&'static str>| {
            let mut v: Vec<&str> = map.into_iter().copied().collect();
            v.sort_unstable();
            v
        };
        f.debug_struct("MetricsBridge")
            .field("counters", &names(self.counters.keys().collect()))
            .field("gauges", &names(self.gauges.keys().collect()))
            .field("histograms", &names(self.histograms.keys().collect()))
            .finish_non_exhaustive()
    }
}

impl MetricsBridge {
    /// A bridge that feeds nothing yet: every measurement is dropped and counted.
    pub fn new() -> Self {
        MetricsBridge {
            counters: HashMap::new(),
            gauges: HashMap::new(),
            histograms: HashMap::new(),
            kept: RwLock::new(Kept::default()),
            dropped: dropped_counter(),
        }
    }

    /// Feeds `counter` (a [`Counter`] or a [`LabeledCounter`] declared with
    /// [`counter!`](crate::counter!)) with the `metrics` counter named `name`. A second call
    /// with the same name replaces the first.
    pub fn counter(mut self, name: &'static str, counter: impl CounterTarget) -> Self {
        self.counters.insert(name, counter.into_route());
        self
    }

    /// Feeds `gauge` (declared with [`gauge!`](crate::gauge!)) with the `metrics` gauge named
    /// `name`, which may have no labels.
    pub fn gauge(mut self, name: &'static str, gauge: Gauge) -> Self {
        self.gauges.insert(name, gauge);
        self
    }

    /// Feeds `histogram` (a [`Histogram`] or a [`LabeledHistogram`] declared with
    /// [`histogram!`](crate::histogram!)) with the `metrics` histogram named `name`, its values
    /// multiplied by `scale`.
    pub fn histogram(
        mut self,
        name: &'static str,
        histogram: impl HistogramTarget,
        scale: Scale,
    ) -> Self {
        self.histograms
            .insert(name, (histogram.into_route(), scale));
        self
    }

    /// Installs the bridge as the process's `metrics` recorder (`metrics::set_global_recorder`).
    ///
    /// # Errors
    /// [`AlreadyInstalled`] if the process has a `metrics` recorder already (the bridge is
    /// dropped).
    pub fn install(self) -> Result<(), AlreadyInstalled> {
        metrics::set_global_recorder(self).map_err(|_| AlreadyInstalled)
    }

    fn drop_one(&self, reason: Dropped) {
        if let Some(dropped) = &self.dropped {
            dropped.increment((Bridge::Metrics, reason));
        }
    }

    /// The handle of `key` from `map`, or made by `make` (and kept, up to [`MAX_KEPT_KEYS`]).
    fn handle<T: Clone>(
        &self,
        key: &Key,
        map: impl Fn(&Kept) -> &HashMap<Key, T>,
        map_mut: impl Fn(&mut Kept) -> &mut HashMap<Key, T>,
        make: impl FnOnce() -> Result<T, Dropped>,
        noop: T,
    ) -> T {
        let kept = self.kept.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = map(&kept).get(key) {
            return handle.clone();
        }
        drop(kept);
        match make() {
            Ok(handle) => {
                let mut kept = self.kept.write().unwrap_or_else(PoisonError::into_inner);
                let map = map_mut(&mut kept);
                if map.len() < MAX_KEPT_KEYS {
                    map.insert(key.clone(), handle.clone());
                }
                handle
            }
            Err(reason) => {
                self.drop_one(reason);
                noop
            }
        }
    }
}

impl metrics::Recorder for MetricsBridge {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> metrics::Counter {
        self.handle(
            key,
            |k| &k.counters,
            |k| &mut k.counters,
            || {
                let route = self
                    .counters
                    .get(key.name())
                    .ok_or(Dropped::UndeclaredName)?;
                let texts = route.texts(key).ok_or(Dropped::UndeclaredLabel)?;
                let counter = (route.resolve)(&texts).map_err(|_| Dropped::Refused)?;
                Ok(metrics::Counter::from_arc(Arc::new(BridgedCounter {
                    counter,
                    absolute: AtomicU64::new(0),
                })))
            },
            metrics::Counter::noop(),
        )
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> metrics::Gauge {
        self.handle(
            key,
            |k| &k.gauges,
            |k| &mut k.gauges,
            || {
                let gauge = *self.gauges.get(key.name()).ok_or(Dropped::UndeclaredName)?;
                if key.labels().next().is_some() {
                    return Err(Dropped::UndeclaredLabel);
                }
                Ok(metrics::Gauge::from_arc(Arc::new(BridgedGauge(gauge))))
            },
            metrics::Gauge::noop(),
        )
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> metrics::Histogram {
        self.handle(
            key,
            |k| &k.histograms,
            |k| &mut k.histograms,
            || {
                let (route, scale) = self
                    .histograms
                    .get(key.name())
                    .ok_or(Dropped::UndeclaredName)?;
                let texts = route.texts(key).ok_or(Dropped::UndeclaredLabel)?;
                let histogram = (route.resolve)(&texts).map_err(|_| Dropped::Refused)?;
                Ok(metrics::Histogram::from_arc(Arc::new(BridgedHistogram {
                    histogram,
                    scale: *scale,
                })))
            },
            metrics::Histogram::noop(),
        )
    }
}

/// One series of a declared counter, as a `metrics` counter.
struct BridgedCounter {
    counter: Counter,
    /// The largest `absolute` value given, so the counter only grows.
    absolute: AtomicU64,
}

impl metrics::CounterFn for BridgedCounter {
    fn increment(&self, value: u64) {
        self.counter.increment_by(value);
    }

    fn absolute(&self, value: u64) {
        let before = self.absolute.fetch_max(value, Ordering::Relaxed);
        if value > before {
            self.counter.increment_by(value - before);
        }
    }
}

/// A declared gauge, as a `metrics` gauge.
struct BridgedGauge(Gauge);

impl metrics::GaugeFn for BridgedGauge {
    fn increment(&self, value: f64) {
        self.0.add(value as i64);
    }

    fn decrement(&self, value: f64) {
        self.0.add(-(value as i64));
    }

    fn set(&self, value: f64) {
        self.0.set(value as i64);
    }
}

/// One series of a declared histogram, as a `metrics` histogram.
struct BridgedHistogram {
    histogram: Histogram,
    scale: Scale,
}

impl metrics::HistogramFn for BridgedHistogram {
    fn record(&self, value: f64) {
        self.histogram.record(self.scale.apply(value));
    }
}

//! A `tracing_subscriber::Layer` (feature `tracing`): the spans a product selects, counted and
//! timed in declared metrics, under the privacy rules of the [`bridge`](super) module.
//!
//! ```
//! use telemetry_core::bridge::tracing::TracingBridge;
//! use telemetry_core::{counter, histogram};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let layer = TracingBridge::new()
//!     .count("docs::store", "compaction", counter!("docs.tracing.compactions")?)
//!     .time("docs::store", "compaction", histogram!("docs.tracing.compaction.duration", unit = Nanoseconds)?);
//! let subscriber = tracing_subscriber::registry().with(layer);
//! tracing::subscriber::with_default(subscriber, || {
//!     // The field is never read: span fields do not become labels.
//!     let span = tracing::info_span!(target: "docs::store", "compaction", path = "/home/alice/db");
//!     let _entered = span.enter();
//! });
//! let snap = telemetry_core::snapshot();
//! assert_eq!(snap.counter("docs.tracing.compactions"), Some(1));
//! assert_eq!(snap.histogram("docs.tracing.compaction.duration").unwrap().count(), 1);
//! # Ok::<(), telemetry_core::RegistryError>(())
//! ```
//!
//! A span is selected by its target and its name, both exactly as written at the span (the
//! target is the module path unless the span sets one). A selected span is counted when it is
//! created and timed from its creation to its close (wall-clock time, awaits included), in
//! nanoseconds. Span fields and events are never read, so nothing a span carries becomes a
//! label; spans that no selection names cost one hash lookup per span callsite, once.

use crate::engine::handles::{Counter, Histogram};
use crate::engine::tick_clock;
use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use tracing_core::callsite::Identifier;
use tracing_core::span::{Attributes, Id};
use tracing_core::{Interest, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// What a selected span feeds.
#[derive(Clone, Copy, Default)]
struct Route {
    calls: Option<Counter>,
    duration: Option<Histogram>,
}

/// Stored in a timed span's extensions: when it was created (a [`tick_clock`] reading).
struct Started {
    at: u64,
    duration: Histogram,
}

/// A layer that counts and times the spans a product selects, with
/// [`count`](Self::count) and [`time`](Self::time).
#[derive(Default)]
pub struct TracingBridge {
    routes: HashMap<(&'static str, &'static str), Route>,
    /// Each span callsite's route once seen (`None`: not selected).
    by_callsite: RwLock<HashMap<Identifier, Option<Route>>>,
}

impl std::fmt::Debug for TracingBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut spans: Vec<_> = self.routes.keys().collect();
        spans.sort_unstable();
        f.debug_struct("TracingBridge")
            .field("spans", &spans)
            .finish_non_exhaustive()
    }
}

impl TracingBridge {
    /// A layer that selects no span yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one to `calls` (declared with [`counter!`](crate::counter!)) for every span named
    /// `name` with target `target`.
    pub fn count(mut self, target: &'static str, name: &'static str, calls: Counter) -> Self {
        self.routes.entry((target, name)).or_default().calls = Some(calls);
        self
    }

    /// Records into `duration` (declared with [`histogram!`](crate::histogram!), best with
    /// `unit = Nanoseconds`) the nanoseconds from the creation to the close of every span
    /// named `name` with target `target`.
    pub fn time(mut self, target: &'static str, name: &'static str, duration: Histogram) -> Self {
        self.routes.entry((target, name)).or_default().duration = Some(duration);
        self
    }

    /// The route of a span callsite, decided once per callsite.
    fn route(&self, metadata: &'static Metadata<'static>) -> Option<Route> {
        let id = metadata.callsite();
        let known = self
            .by_callsite
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(route) = known.get(&id) {
            return *route;
        }
        drop(known);
        let route = self
            .routes
            .get(&(metadata.target(), metadata.name()))
            .copied();
        self.by_callsite
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, route);
        route
    }
}

impl<S> Layer<S> for TracingBridge
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if metadata.is_span() {
            self.route(metadata);
        }
        // Never narrows what the other layers see.
        Interest::always()
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(route) = self.route(attrs.metadata()) else {
            return;
        };
        if let Some(calls) = route.calls {
            calls.increment();
        }
        if let (Some(duration), Some(span)) = (route.duration, ctx.span(id)) {
            span.extensions_mut().insert(Started {
                at: tick_clock::now(),
                duration,
            });
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        if let Some(started) = span.extensions().get::<Started>() {
            started
                .duration
                .record(tick_clock::elapsed_nanos(started.at));
        }
    }
}

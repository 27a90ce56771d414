//! Bridges: instrumentation written for other Rust APIs, landing in this crate's registry
//! under its privacy rules.
//!
//! A bridge never creates a metric. Every metric it feeds is declared with [`counter!`],
//! [`gauge!`] or [`histogram!`](crate::histogram!) (so it is in the [`manifest`] before the
//! program runs, with the closed set of each label), and the bridge is told which of them each
//! foreign name feeds. Anything else (an undeclared name, an undeclared label key) is dropped
//! and counted in `telemetry.bridge.dropped`, never exported. Label values arrive as text and
//! are mapped into their declared type's set ([`LabelValue::bridged_text`]): a text outside it
//! is recorded as `other`, and a [`HashedLabel`](crate::anonymize::HashedLabel) label is
//! hashed.
//!
//! The counter of drops is declared only when a bridge is built, so it is in a product's
//! manifest exactly when the product can send it.
//!
//! - `bridge::metrics` (feature `metrics`): a `metrics::Recorder`, for code that uses the `metrics`
//!   crate's `counter!`, `gauge!` and `histogram!`.
//! - `bridge::tracing` (feature `tracing`): a `tracing_subscriber::Layer` that counts and times the
//!   spans a product selects by target and name; span fields never become labels.
//!
//! [`counter!`]: crate::counter!
//! [`gauge!`]: crate::gauge!
//! [`manifest`]: crate::manifest
//! [`LabelValue::bridged_text`]: crate::LabelValue::bridged_text

#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "tracing")]
pub mod tracing;

/// Which bridge dropped something, a label of `telemetry.bridge.dropped`.
#[cfg(feature = "metrics")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, telemetry_macros::LabelValue)]
pub(crate) enum Bridge {
    /// The `metrics` recorder.
    #[label(rename = "metrics")]
    Metrics,
}

/// Why a bridge dropped a measurement, a label of `telemetry.bridge.dropped`.
#[cfg(feature = "metrics")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, telemetry_macros::LabelValue)]
pub(crate) enum Dropped {
    /// No declared metric is fed by that name (or not of that kind).
    #[label(rename = "undeclared_name")]
    UndeclaredName,
    /// The measurement has a label key its metric does not declare.
    #[label(rename = "undeclared_label")]
    UndeclaredLabel,
    /// The registry refused the series (its metric is not registered as declared).
    #[label(rename = "refused")]
    Refused,
}

/// `telemetry.bridge.dropped{bridge, reason}`: measurements a bridge did not record.
#[cfg(feature = "metrics")]
pub(crate) fn dropped_counter() -> Option<crate::LabeledCounter<(Bridge, Dropped)>> {
    telemetry_macros::counter!(
        "telemetry.bridge.dropped",
        description = "Measurements from another instrumentation API that no declared metric takes",
        labels(bridge: Bridge, reason: Dropped)
    )
    .ok()
}

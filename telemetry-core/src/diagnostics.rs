//! The framework's own diagnostics (a conflict, a sink failure, a transmission, the
//! disclosure), all under the target `telemetry`: through `tracing` when the `tracing` feature
//! is on (and from there to `log` while no tracing subscriber is set, tracing's `log`
//! feature), through the `log` facade otherwise.

/// One diagnostic: `diag!(warn, "format {}", args)`, with the level as `error`, `warn`,
/// `info` or `debug`.
#[cfg(feature = "tracing")]
macro_rules! diag {
    (error, $($arg:tt)+) => { ::tracing::error!(target: "telemetry", $($arg)+) };
    (warn, $($arg:tt)+) => { ::tracing::warn!(target: "telemetry", $($arg)+) };
    (info, $($arg:tt)+) => { ::tracing::info!(target: "telemetry", $($arg)+) };
    (debug, $($arg:tt)+) => { ::tracing::debug!(target: "telemetry", $($arg)+) };
}

/// One diagnostic: `diag!(warn, "format {}", args)`, with the level as `error`, `warn`,
/// `info` or `debug`.
#[cfg(not(feature = "tracing"))]
macro_rules! diag {
    (error, $($arg:tt)+) => { ::log::error!(target: "telemetry", $($arg)+) };
    (warn, $($arg:tt)+) => { ::log::warn!(target: "telemetry", $($arg)+) };
    (info, $($arg:tt)+) => { ::log::info!(target: "telemetry", $($arg)+) };
    (debug, $($arg:tt)+) => { ::log::debug!(target: "telemetry", $($arg)+) };
}

/// A diagnostic at a level chosen at run time (a `log::Level`, as the product configured it).
macro_rules! diag_at {
    ($level:expr, $($arg:tt)+) => {
        match $level {
            ::log::Level::Error => $crate::diagnostics::diag!(error, $($arg)+),
            ::log::Level::Warn => $crate::diagnostics::diag!(warn, $($arg)+),
            ::log::Level::Info => $crate::diagnostics::diag!(info, $($arg)+),
            ::log::Level::Debug | ::log::Level::Trace => {
                $crate::diagnostics::diag!(debug, $($arg)+)
            }
        }
    };
}

pub(crate) use {diag, diag_at};

/// Whether an info diagnostic is shown to someone: a tracing subscriber that takes it, or,
/// without one, a `log` logger that does.
pub(crate) fn info_is_shown() -> bool {
    #[cfg(feature = "tracing")]
    if tracing::dispatcher::has_been_set() {
        return tracing::enabled!(target: "telemetry", tracing::Level::INFO);
    }
    log::log_enabled!(target: "telemetry", log::Level::Info)
}

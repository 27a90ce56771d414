//! The process-wide recording switch.
//!
//! Consent decides what *leaves* the machine; it does not stop counting, because an opted-out
//! installation still builds its report locally (EventStoreDB). A product that wants no
//! telemetry work at all (a benchmark run, an embedded build, a user who opted out and wants
//! no local report either) turns recording off: every macro call site and handle then costs
//! one relaxed load and a predictable branch, and `#[timed]` does not read the clock.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns recording on or off for the whole process (on by default). Values recorded so far
/// are kept; gauges still follow `set`/`add`, since they describe current state.
pub fn set_recording(on: bool) {
    ENABLED.store(on, Relaxed);
}

/// Whether recording is on.
pub fn is_recording() -> bool {
    ENABLED.load(Relaxed)
}

/// The hot-path check.
#[inline(always)]
pub(crate) fn recording() -> bool {
    ENABLED.load(Relaxed)
}

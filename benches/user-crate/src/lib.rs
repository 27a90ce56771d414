//! Functions as a user's crate writes them, instrumented and not, for `benches/user.rs`. In
//! the library (not in the bench file) so that they are compiled as a user's code is, in a
//! crate of their own, and called across a crate boundary.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use telemetry_core::{count_usage, timed};

static BARE: AtomicU64 = AtomicU64::new(0);

/// The floor: an uninstrumented call.
#[inline(never)]
pub fn plain(x: u64) -> u64 {
    x
}

/// A hand-written shared counter: one `fetch_add`.
#[inline(never)]
pub fn bare_atomic(x: u64) -> u64 {
    BARE.fetch_add(1, Relaxed);
    x
}

/// Counted.
#[count_usage(name = "user.counted")]
#[inline(never)]
pub fn counted(x: u64) -> u64 {
    x
}

/// Timed.
#[timed(name = "user.timed")]
#[inline(never)]
pub fn timed_fn(x: u64) -> u64 {
    x
}

/// Timed, 1 call in 16 (`sample = 16`).
#[timed(name = "user.timed_sampled", sample = 16)]
#[inline(never)]
pub fn timed_sampled(x: u64) -> u64 {
    x
}

/// Two raw time-stamp-counter reads: the floor of any TSC-based timer (what `#[timed]` reads
/// through quanta where the TSC is invariant). Elsewhere, two `Instant::now()`.
#[inline(never)]
pub fn rdtsc_pair(x: u64) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `rdtsc` is available on every x86_64 CPU.
        let start = unsafe { std::arch::x86_64::_rdtsc() };
        let r = std::hint::black_box(x);
        // SAFETY: as above.
        std::hint::black_box(unsafe { std::arch::x86_64::_rdtsc() }.wrapping_sub(start));
        r
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let start = std::time::Instant::now();
        let r = std::hint::black_box(x);
        std::hint::black_box(start.elapsed());
        r
    }
}

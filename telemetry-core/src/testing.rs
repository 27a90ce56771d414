//! Exact counts in unit tests, even while other tests run in parallel.
//!
//! `cargo test` runs tests on several threads that may call the same instrumented functions, so
//! the global [`crate::snapshot()`] sees everyone's calls. [`capture`] sees only what the calling
//! thread records while the closure runs:
//!
//! ```
//! use telemetry_core::{count_usage, testing};
//!
//! #[count_usage(name = "docs.testing.lookup")]
//! fn lookup(key: u32) -> Option<u32> { key.checked_mul(2) }
//!
//! let snap = testing::capture(|| {
//!     lookup(1);
//!     lookup(2);
//! });
//! assert_eq!(snap.counter("docs.testing.lookup"), Some(2));
//! ```
//!
//! It costs nothing on the hot path: every thread already records into a shard of its own, so
//! a capture folds the thread's shard into the global totals, zeroes it, runs the closure and
//! reads the shard. The global snapshot loses and double-counts nothing.
//!
//! What a capture sees: counters and histograms recorded on the calling thread, which includes
//! `async fn`s driven by a single-threaded executor on it (`block_on`), but not work on threads
//! the closure spawns. Gauges are process-wide values and appear as they are when the closure
//! returns. Captures nest: an outer capture also sees what inner ones saw.

use crate::engine::local_shard;
use crate::engine::registry::registry;
use crate::engine::shard::Shard;
use crate::engine::snapshot::Snapshot;
use std::cell::RefCell;

thread_local! {
    /// What each enclosing capture has seen so far, innermost last.
    static OPEN: RefCell<Vec<Snapshot>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` and returns what the calling thread recorded during it.
pub fn capture(f: impl FnOnce()) -> Snapshot {
    capture_with(f).1
}

/// Runs `f` and returns its result and what the calling thread recorded during it.
///
/// # Panics
/// If `f` panics, the panic propagates after the capture is closed; the values recorded are
/// kept in the global totals.
pub fn capture_with<R>(f: impl FnOnce() -> R) -> (R, Snapshot) {
    let Some(shard) = local_shard::with_local(|s| s as *const Shard) else {
        // Only reachable from a thread-local destructor: nothing can be isolated, run plainly.
        return (f(), Snapshot::default());
    };
    // SAFETY: a thread's shard lives as long as its thread-locals, which outlive this call.
    let shard = unsafe { &*shard };
    OPEN.with_borrow_mut(|open| {
        if !open.is_empty() {
            let so_far = registry().snapshot(Some(shard));
            for outer in open.iter_mut() {
                outer.merge(&so_far);
            }
        }
        registry().fold_and_reset(shard);
        open.push(Snapshot::default());
    });
    let close = Close { shard };
    let result = f();
    let snapshot = close.finish();
    (result, snapshot)
}

/// Closes a capture also when the closure unwinds.
struct Close<'a> {
    shard: &'a Shard,
}

impl Close<'_> {
    fn finish(self) -> Snapshot {
        let mut seen = OPEN.with_borrow_mut(|open| open.pop()).unwrap_or_default();
        seen.merge(&registry().snapshot(Some(self.shard)));
        std::mem::forget(self);
        seen
    }
}

impl Drop for Close<'_> {
    fn drop(&mut self) {
        OPEN.with_borrow_mut(|open| open.pop());
    }
}

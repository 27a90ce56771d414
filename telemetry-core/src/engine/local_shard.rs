//! This thread's shard and the hot path that writes it: a thread's [`Shard`] is made on its
//! first record and adopted by the registry, and retired (folded into the retired totals)
//! when the thread exits; a counter add or histogram record goes to it, or to the series'
//! shared cells when the series has no slot or the thread is exiting. Between the shard (the
//! storage, which knows nothing of the registry) and the registry (which knows nothing of
//! threads).

use crate::engine::registry::{CounterCore, HistogramCore, NO_SLOT, registry};
use crate::engine::shard::Shard;
use std::cell::Cell;
use std::ptr;
use std::sync::atomic::Ordering::Relaxed;

/// The thread-local handle. Its destructor retires the shard: folds it into the retired totals
/// and frees it, so values recorded by a thread outlive the thread.
struct LocalShard(Cell<*const Shard>);

impl Drop for LocalShard {
    fn drop(&mut self) {
        let shard = self.0.replace(ptr::null());
        if !shard.is_null() {
            registry().retire_shard(shard);
        }
    }
}

thread_local! {
    static LOCAL: LocalShard = const { LocalShard(Cell::new(ptr::null())) };
}

/// Runs `f` on this thread's shard, creating it on first use. Returns `None` while the thread's
/// locals are being destroyed; callers then record into the shared retired cells.
#[inline(always)]
pub(crate) fn with_local<R>(f: impl FnOnce(&Shard) -> R) -> Option<R> {
    LOCAL
        .try_with(|local| {
            let mut shard = local.0.get();
            if shard.is_null() {
                shard = new_local(local);
            }
            // SAFETY: the shard is freed only by `LocalShard::drop`, after which `try_with` fails.
            f(unsafe { &*shard })
        })
        .ok()
}

#[cold]
#[inline(never)]
fn new_local(local: &LocalShard) -> *const Shard {
    let shard = Box::into_raw(Box::new(Shard::new())).cast_const();
    registry().adopt_shard(shard);
    local.0.set(shard);
    shard
}

/// Adds `n` to a counter series: to the calling thread's shard, or to the shared total if the
/// series has no slot or the thread is exiting.
#[inline(always)]
pub(crate) fn counter_add(slot: u32, n: u64, core: impl FnOnce() -> &'static CounterCore) {
    if slot == NO_SLOT || with_local(|s| s.add(slot, n)).is_none() {
        core().retired.fetch_add(n, Relaxed);
    }
}

/// Records `value` `weight` times into a histogram series (weight 1 but for a sampled timer);
/// the counterpart of [`counter_add`].
#[inline(always)]
pub(crate) fn histogram_record(
    slot: u32,
    value: u64,
    weight: u64,
    core: impl FnOnce() -> &'static HistogramCore,
) {
    if slot == NO_SLOT || with_local(|s| s.record(slot, value, weight)).is_none() {
        core().retired.record_shared(value, weight);
    }
}

//! Timing a call through its site: the guards `#[timed]` holds while the function runs.

use super::{CallSite, SHARED};
use crate::engine::cells::HistogramCells;
use crate::engine::local_shard::{self};
use crate::engine::sampling;
use crate::engine::switch;
use crate::engine::tick_clock;
use std::sync::atomic::Ordering::*;

impl CallSite {
    /// Starts timing a call; the returned guard records the elapsed time when dropped, also on
    /// early return, `?` and unwinding. It may be dropped on another thread (`async fn`s).
    #[inline(always)]
    pub fn start_timer(&'static self) -> TimerGuard {
        self.start_timer_weighted(switch::recording(), 1)
    }

    /// Starts timing 1 call in `one_in` on average (`#[timed(sample = N)]`, see
    /// `#[timed]`); a timed call is recorded `one_in` times.
    #[inline(always)]
    pub fn start_sampled_timer(&'static self, one_in: u32) -> TimerGuard {
        self.start_timer_weighted(
            switch::recording() && sampling::take(one_in),
            u64::from(one_in),
        )
    }

    #[inline(always)]
    fn start_timer_weighted(&'static self, timed: bool, weight: u64) -> TimerGuard {
        if !timed {
            return TimerGuard {
                site: None,
                start: 0,
                weight,
            };
        }
        TimerGuard {
            site: Some(self),
            start: tick_clock::now(),
            weight,
        }
    }

    /// Starts timing a synchronous call: finds this thread's cells first (outside the timed
    /// span), so that the guard's drop is only the clock read and the bucket update. The guard
    /// is not `Send`: a synchronous call starts and ends on one thread.
    #[inline(always)]
    pub fn start_local_timer(&'static self) -> LocalTimerGuard {
        self.start_local_timer_weighted(switch::recording(), 1)
    }

    /// Starts timing a synchronous call, 1 in `one_in` on average (`#[timed(sample = N)]`, see
    /// `#[timed]`); a timed call is recorded `one_in` times.
    #[inline(always)]
    pub fn start_sampled_local_timer(&'static self, one_in: u32) -> LocalTimerGuard {
        self.start_local_timer_weighted(
            switch::recording() && sampling::take(one_in),
            u64::from(one_in),
        )
    }

    #[inline(always)]
    fn start_local_timer_weighted(&'static self, timed: bool, weight: u64) -> LocalTimerGuard {
        if !timed {
            return LocalTimerGuard {
                target: TimerTarget::Off,
                start: 0,
                weight,
            };
        }
        let cached = self.cached_slot.load(Relaxed);
        let cells = if cached.wrapping_sub(1) < SHARED - 1 {
            local_shard::with_local(|s| s.histogram(cached - 1) as *const HistogramCells)
        } else {
            None
        };
        let target = match cells {
            Some(cells) => TimerTarget::Owned(cells),
            None => TimerTarget::Shared(self),
        };
        LocalTimerGuard {
            target,
            start: tick_clock::now(),
            weight,
        }
    }
}

/// Where a [`LocalTimerGuard`] records.
enum TimerTarget {
    /// This thread's cells (the common case).
    Owned(*const HistogramCells),
    /// Through the call site (first call, no slot, or the thread is exiting).
    Shared(&'static CallSite),
    /// Nowhere: recording is off.
    Off,
}

/// Records the time since `start` into `cells`. Out of line, so that the guard's drop (a
/// match and a call) is inlined at every timed call and recording off costs a load and a
/// branch.
///
/// # Safety
/// `cells` are this thread's and alive.
#[inline(never)]
unsafe fn record_owned_since(cells: *const HistogramCells, start: u64, weight: u64) {
    let nanos = tick_clock::elapsed_nanos(start);
    // SAFETY: the caller's.
    unsafe { &*cells }.record_owned_weighted(nanos, weight);
}

/// Records the time since its creation when dropped, on the thread that created it.
pub struct LocalTimerGuard {
    target: TimerTarget,
    start: u64,
    /// How many calls the observation stands for (1 unless sampled).
    weight: u64,
}

impl Drop for LocalTimerGuard {
    #[inline(always)]
    fn drop(&mut self) {
        match self.target {
            // SAFETY: the cells belong to this thread's shard, which outlives this call: the
            // guard is not `Send` and lives in one synchronous call.
            TimerTarget::Owned(cells) => unsafe {
                record_owned_since(cells, self.start, self.weight)
            },
            // Rare (first call, no slot, thread exiting): out of line, to keep the drop small.
            TimerTarget::Shared(site) => site.record_since(self.start, self.weight),
            TimerTarget::Off => {}
        }
    }
}

/// Records the time since its creation into its call site's histogram when dropped.
pub struct TimerGuard {
    /// `None` when recording is off or the call is not sampled.
    site: Option<&'static CallSite>,
    start: u64,
    /// How many calls the observation stands for (1 unless sampled).
    weight: u64,
}

impl Drop for TimerGuard {
    #[inline(always)]
    fn drop(&mut self) {
        if let Some(site) = self.site {
            site.record_weighted(tick_clock::elapsed_nanos(self.start), self.weight);
        }
    }
}

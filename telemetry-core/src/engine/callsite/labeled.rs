//! Labeled call sites: each label set's series, found through this thread's series cache.

use super::CallSite;
use crate::engine::labels::LabelSet;
use crate::engine::local_shard::{counter_add, histogram_record};
use crate::engine::registry::{self, CounterCore, HistogramCore, SeriesRequest};
use crate::engine::sampling;
use crate::engine::series_cache::{CachedCore, MetricId, cached_series};
use crate::engine::switch;
use crate::engine::tick_clock;

impl CallSite {
    /// The series of a labeled site for `labels`: from this thread's cache, or registered on
    /// first use.
    #[inline]
    fn series<C: CachedCore, L: LabelSet>(&'static self, labels: &L) -> &'static C {
        let key = (MetricId::of_site(self), labels.keys());
        cached_series(key, || Some(self.resolve_series(labels)))
            .unwrap_or_else(|| self.resolve_series(labels))
    }

    #[cold]
    #[inline(never)]
    fn resolve_series<C: CachedCore, L: LabelSet>(&'static self, labels: &L) -> &'static C {
        let request = SeriesRequest {
            values: labels.texts(),
            possible: L::possible_values(),
            reasons: L::reasons(),
        };
        let storage = registry::registry().register_or_keep_apart(&self.meta().request(), request);
        // A site registers its own kind (a conflicting name is kept apart under another).
        C::of(storage).unwrap_or_else(|| unreachable!("a call site resolves to its own kind"))
    }

    /// Counts one call into the series of `labels` (`#[count_usage(labels(...))]`).
    #[inline]
    pub fn increment_labeled<L: LabelSet>(&'static self, labels: L) {
        if !switch::recording() {
            return;
        }
        let core: &'static CounterCore = self.series(&labels);
        counter_add(core.slot, 1, || core);
    }

    /// Starts timing a call into the series of `labels` (`#[timed(labels(...))]`).
    #[inline]
    pub fn start_timer_labeled<L: LabelSet>(&'static self, labels: L) -> LabeledTimerGuard {
        self.start_timer_labeled_weighted(labels, switch::recording(), 1)
    }

    /// Starts timing 1 call in `one_in` on average into the series of `labels`
    /// (`#[timed(sample = N, labels(...))]`; see `#[timed]`).
    #[inline]
    pub fn start_sampled_timer_labeled<L: LabelSet>(
        &'static self,
        one_in: u32,
        labels: L,
    ) -> LabeledTimerGuard {
        self.start_timer_labeled_weighted(
            labels,
            switch::recording() && sampling::take(one_in),
            u64::from(one_in),
        )
    }

    #[inline]
    fn start_timer_labeled_weighted<L: LabelSet>(
        &'static self,
        labels: L,
        timed: bool,
        weight: u64,
    ) -> LabeledTimerGuard {
        if !timed {
            return LabeledTimerGuard {
                core: None,
                start: 0,
                weight,
            };
        }
        let core: &'static HistogramCore = self.series(&labels);
        LabeledTimerGuard {
            core: Some(core),
            start: tick_clock::now(),
            weight,
        }
    }
}

/// Records the time since its creation into one series of a labeled histogram when dropped.
pub struct LabeledTimerGuard {
    /// `None` when recording is off or the call is not sampled.
    core: Option<&'static HistogramCore>,
    start: u64,
    /// How many calls the observation stands for (1 unless sampled).
    weight: u64,
}

impl Drop for LabeledTimerGuard {
    #[inline]
    fn drop(&mut self) {
        if let Some(core) = self.core {
            histogram_record(
                core.slot,
                tick_clock::elapsed_nanos(self.start),
                self.weight,
                || core,
            );
        }
    }
}

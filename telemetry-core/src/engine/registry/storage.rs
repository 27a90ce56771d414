//! Where series keep their values: the per-kind cores (a slot in every thread's shard plus
//! what exited threads left) and the slot tables. It knows nothing of names, call sites or
//! snapshots.

use crate::engine::cells::HistogramCells;
use crate::engine::metadata::MetricKind;
use crate::engine::shard::MAX_SLOTS;
use std::sync::atomic::{AtomicI64, AtomicU64};

/// Marks a series that has no per-thread slot (the slot tables are full): it is recorded with
/// shared atomics instead.
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// A counter series: its slot in every shard, and the total of exited threads.
pub(crate) struct CounterCore {
    pub(crate) slot: u32,
    pub(crate) retired: AtomicU64,
}

/// A histogram series: its slot in every shard, and the cells of exited threads.
pub(crate) struct HistogramCore {
    pub(crate) slot: u32,
    pub(crate) retired: HistogramCells,
}

/// A gauge series: one shared value.
pub(crate) struct GaugeCore {
    pub(crate) value: AtomicI64,
}

/// A gauge read from a closure at snapshot time.
pub(crate) use crate::engine::gauges::GaugeCallback;

/// Where one series keeps its values.
#[derive(Clone)]
pub(crate) enum Storage {
    Counter(&'static CounterCore),
    Gauge(&'static GaugeCore),
    CallbackGauge(GaugeCallback),
    Histogram(&'static HistogramCore),
}

/// The cores that have a slot, by slot: what snapshots sum across shards and what an exiting
/// thread's cells are folded into.
pub(super) struct Slots {
    pub(super) counters: Vec<&'static CounterCore>,
    pub(super) histograms: Vec<&'static HistogramCore>,
}

impl Slots {
    pub(super) const fn new() -> Self {
        Slots {
            counters: Vec::new(),
            histograms: Vec::new(),
        }
    }

    /// New cells for a series. They are leaked on purpose: metrics live as long as the process,
    /// and call sites and handles keep `'static` references to them.
    pub(super) fn new_storage(&mut self, kind: MetricKind) -> Storage {
        match kind {
            MetricKind::Counter => {
                let slot = next_slot(self.counters.len());
                let core: &'static CounterCore = Box::leak(Box::new(CounterCore {
                    slot,
                    retired: AtomicU64::new(0),
                }));
                if slot != NO_SLOT {
                    self.counters.push(core);
                }
                Storage::Counter(core)
            }
            MetricKind::Histogram => {
                let slot = next_slot(self.histograms.len());
                let core: &'static HistogramCore = Box::leak(Box::new(HistogramCore {
                    slot,
                    retired: HistogramCells::new(),
                }));
                if slot != NO_SLOT {
                    self.histograms.push(core);
                }
                Storage::Histogram(core)
            }
            MetricKind::Gauge => Storage::Gauge(Box::leak(Box::new(GaugeCore {
                value: AtomicI64::new(0),
            }))),
        }
    }
}

fn next_slot(used: usize) -> u32 {
    if used < MAX_SLOTS as usize {
        used as u32
    } else {
        NO_SLOT
    }
}

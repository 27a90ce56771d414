//! Snapshot assembly: bringing a snapshot's families and series up to date with the registry,
//! in place when nothing was added since it was taken.

use super::{GaugeCallback, Metric, NO_SLOT, State, Storage, registry};
use crate::engine::cells::HistogramAccumulator;
use crate::engine::metadata::MetricKind;
use crate::engine::shard::Shard;
use crate::engine::snapshot::Snapshot;
use crate::engine::snapshot::{Family, Series};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

/// Updates `families`, one kind's map of a snapshot, to the registry's metrics of `kind`, with
/// `fill(name, metric, series)` bringing each family's series up to date (called once per
/// metric). When `families` holds exactly those metrics (a snapshot of this registry that no
/// registration has outdated, which the shared name pointers show without comparing text), each
/// family is updated in place; otherwise the map is rebuilt, in one sorted pass since the
/// registry is in name order.
pub(super) fn update_families<V>(
    metrics: &BTreeMap<Arc<str>, Metric>,
    kind: MetricKind,
    families: &mut BTreeMap<Arc<str>, Family<V>>,
    mut fill: impl FnMut(&Arc<str>, &Metric, &mut Vec<Series<V>>),
) {
    let of_kind = || metrics.iter().filter(|(_, m)| m.descriptor.kind == kind);
    let (mut wanted, mut have) = (of_kind(), families.keys());
    let same_metrics = loop {
        match (wanted.next(), have.next()) {
            (None, None) => break true,
            (Some((name, _)), Some(had)) if Arc::ptr_eq(name, had) => {}
            _ => break false,
        }
    };
    if same_metrics {
        for ((name, metric), family) in of_kind().zip(families.values_mut()) {
            // A description given by a later registration, or a field the caller changed.
            family.unit = metric.descriptor.unit;
            if !Arc::ptr_eq(&family.description, &metric.description) {
                family.description = metric.description.clone();
            }
            fill(name, metric, &mut family.series);
        }
        return;
    }
    *families = of_kind()
        .map(|(name, metric)| {
            let mut series = Vec::new();
            fill(name, metric, &mut series);
            let family = Family {
                unit: metric.descriptor.unit,
                description: metric.description.clone(),
                series,
            };
            (name.clone(), family)
        })
        .collect();
}

/// Updates `series` to the series of `metric`, with `read(storage, value)` writing each value.
/// Values are overwritten in place when the label sets are those of last time; otherwise the
/// series are rebuilt from the registry's label sets, in label order.
pub(super) fn update_series<V: Default>(
    metric: &Metric,
    series: &mut Vec<Series<V>>,
    mut read: impl FnMut(&Storage, &mut V),
) {
    let same_labels = series.len() == metric.series.len()
        && (series.iter())
            .zip(metric.series.keys())
            // Most metrics are unlabeled: compare lengths before contents.
            .all(|(s, labels)| s.labels.len() == labels.len() && s.labels == *labels);
    if !same_labels {
        series.clear();
        series.extend(metric.series.keys().map(|labels| Series {
            labels: labels.clone(),
            value: V::default(),
        }));
    }
    for (s, storage) in series.iter_mut().zip(metric.series.values()) {
        read(storage, &mut s.value);
    }
}

// `Snapshot::refresh` is defined with the registry that fills snapshots, so that `snapshot`
// (the values) does not depend on the registry.
impl Snapshot {
    /// Replaces the values with the current ones, as `*self = telemetry_core::snapshot()`
    /// would, but reusing this snapshot's allocations: when no metric or label set was added
    /// since it was taken, a refresh overwrites the numbers in place, allocating no name,
    /// series or label set (only a few scratch buffers of its own). Gauges' series are
    /// rebuilt each time, as callback gauges are run again.
    ///
    /// For code that reads the values again and again, such as a `/metrics` endpoint (the
    /// `Endpoints` of the `export` module keep one snapshot and refresh it for each scrape).
    /// Works on any snapshot: one that holds other metrics (deserialized, or from
    /// [`crate::testing::capture`]) is rebuilt, with the same result as a fresh snapshot.
    pub fn refresh(&mut self) {
        registry().snapshot_into(None, self);
    }
}

impl State {
    /// Brings `into` up to date: in place where it already holds this registry's metrics (no
    /// name, series or label set is allocated again), rebuilt where it does not. Returns the
    /// callback gauges, which the caller runs after the lock is released.
    pub(super) fn snapshot_into(
        &self,
        only: Option<&Shard>,
        into: &mut Snapshot,
    ) -> Vec<(Arc<str>, GaugeCallback)> {
        // SAFETY: shards in the list are alive while the lock is held.
        let shards: Vec<&Shard> = match only {
            Some(shard) => vec![shard],
            None => self.shards.iter().map(|s| unsafe { &*s.0 }).collect(),
        };
        // Counters: dense per-slot totals, one pass over each shard's cells.
        let mut counters = vec![0u64; self.slots.counters.len()];
        for shard in &shards {
            shard.counters.for_each_chunk(|first, cells| {
                let totals = counters.get_mut(first..).unwrap_or_default();
                for (total, cell) in totals.iter_mut().zip(cells) {
                    *total = total.wrapping_add(cell.load(Relaxed));
                }
            });
        }
        let retired = only.is_none();
        update_families(
            &self.metrics,
            MetricKind::Counter,
            &mut into.counters,
            |_, metric, series| {
                update_series(metric, series, |storage, value| {
                    if let Storage::Counter(core) = storage {
                        let shards = counters.get(core.slot as usize).copied().unwrap_or(0);
                        let retired = if retired {
                            core.retired.load(Relaxed)
                        } else {
                            0
                        };
                        *value = retired.wrapping_add(shards);
                    }
                })
            },
        );
        let mut callbacks = Vec::new();
        update_families(
            &self.metrics,
            MetricKind::Gauge,
            &mut into.gauges,
            |name, metric, series| {
                // Callback values are pushed after the lock is released, so the series are
                // always rebuilt; gauges are few.
                series.clear();
                for (labels, storage) in &metric.series {
                    match storage {
                        Storage::Gauge(core) => series.push(Series {
                            labels: labels.clone(),
                            value: core.value.load(Relaxed),
                        }),
                        Storage::CallbackGauge(cb) => callbacks.push((name.clone(), cb.clone())),
                        _ => {}
                    }
                }
            },
        );
        // Histograms are summed one at a time into one reused accumulator.
        let mut acc = HistogramAccumulator::new();
        let mut cells = Vec::with_capacity(shards.len() + 1);
        update_families(
            &self.metrics,
            MetricKind::Histogram,
            &mut into.histograms,
            |_, metric, series| {
                update_series(metric, series, |storage, value| {
                    let Storage::Histogram(core) = storage else {
                        return;
                    };
                    acc.reset();
                    cells.clear();
                    if core.slot != NO_SLOT {
                        cells.extend(
                            shards
                                .iter()
                                .filter_map(|s| s.histogram_if_present(core.slot)),
                        );
                    }
                    if retired {
                        cells.push(&core.retired);
                    }
                    acc.add_cells(&cells);
                    value.set_from_accumulator(&acc);
                })
            },
        );
        callbacks
    }
}

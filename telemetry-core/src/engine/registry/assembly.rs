//! Snapshot assembly: bringing a snapshot's families and series up to date with the registry,
//! in place when nothing was added since it was taken.

use super::{Metric, Storage};
use crate::engine::metadata::MetricKind;
use crate::engine::snapshot::{Family, Series};
use std::collections::BTreeMap;
use std::sync::Arc;

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

//! Point-in-time values of every metric: what tests read and reports carry.

use crate::engine::histogram_snapshot::HistogramSnapshot;
use crate::engine::metadata::Unit;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Label names to label values of one series. Empty for an unlabeled metric.
pub type Labels = BTreeMap<String, String>;

/// The values of every registered metric at one point in time.
///
/// Take one with [`crate::snapshot()`], or with [`crate::testing::capture`] for only what one
/// thread did. Every registered metric is present, with zero values if nothing was recorded yet,
/// so a lookup answers `None` only for names that were never registered.
///
/// # JSON shape
/// ```json
/// {
///   "counters":   { "store.insert.calls": { "unit": "none", "description": "…", "series": [ { "value": 3 } ] } },
///   "gauges":     { "store.documents":    { "unit": "none", "series": [ { "value": 120 } ] } },
///   "histograms": { "search.duration":    { "unit": "nanoseconds", "series": [ { "value":
///                     { "count": 2, "sum": 3100, "min": 1000, "max": 2100,
///                       "buckets": [[317, 1], [385, 1]] } } ] } }
/// }
/// ```
/// A series of a labeled metric also has `"labels": { "name": "value" }`. Maps are in name
/// order and series in label order, so equal snapshots serialize to equal bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Counters by name.
    #[serde(default)]
    pub counters: BTreeMap<Arc<str>, Family<u64>>,
    /// Gauges (set, adjusted, or read from a callback) by name.
    #[serde(default)]
    pub gauges: BTreeMap<Arc<str>, Family<i64>>,
    /// Histograms by name.
    #[serde(default)]
    pub histograms: BTreeMap<Arc<str>, Family<HistogramSnapshot>>,
}

/// One metric in a snapshot: its unit, description and series.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Family<V> {
    /// The unit of the values.
    #[serde(default)]
    pub unit: Unit,
    /// The metric's one-line description (omitted from JSON when empty). Shared with the
    /// registry: cloning a snapshot or taking another one does not copy it.
    #[serde(default, skip_serializing_if = "str::is_empty")]
    pub description: Arc<str>,
    /// One entry per label set, in label order.
    pub series: Vec<Series<V>>,
}

/// The value of one label set of a metric.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Series<V> {
    /// The label set (omitted from JSON when empty).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
    /// The value: a count, a gauge value or a histogram.
    pub value: V,
}

impl Snapshot {
    /// The total of counter `name` over all its series, `None` if no such counter is registered.
    pub fn counter(&self, name: &str) -> Option<u64> {
        let family = self.counters.get(name)?;
        Some(
            family
                .series
                .iter()
                .fold(0u64, |t, s| t.saturating_add(s.value)),
        )
    }

    /// The value of one series of counter `name`: the one whose labels are exactly `labels`
    /// (in any order). `None` if the counter or that series does not exist.
    pub fn counter_with(&self, name: &str, labels: &[(&str, &str)]) -> Option<u64> {
        find_series(self.counters.get(name)?, labels).map(|s| s.value)
    }

    /// The value of gauge `name`, summed over its series; `None` if no such gauge is registered
    /// or (for a callback gauge) if its callback panicked.
    pub fn gauge(&self, name: &str) -> Option<i64> {
        let family = self.gauges.get(name)?;
        if family.series.is_empty() {
            return None;
        }
        Some(
            family
                .series
                .iter()
                .fold(0i64, |t, s| t.saturating_add(s.value)),
        )
    }

    /// Histogram `name`, all its series merged into one; `None` if no such histogram exists.
    pub fn histogram(&self, name: &str) -> Option<HistogramSnapshot> {
        let family = self.histograms.get(name)?;
        let mut merged = HistogramSnapshot::default();
        for series in &family.series {
            merged.add(&series.value);
        }
        Some(merged)
    }

    /// One series of histogram `name`, chosen by its exact label set.
    pub fn histogram_with(
        &self,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Option<&HistogramSnapshot> {
        find_series(self.histograms.get(name)?, labels).map(|s| &s.value)
    }

    /// What happened between `earlier` and `self`: counters and histograms are differences
    /// (saturating at zero if `earlier` is in fact later), gauges keep `self`'s value.
    /// A delta histogram's min and max are estimated from its buckets (within
    /// [`HistogramSnapshot::RELATIVE_ERROR`]), since the exact ones of the interval are not kept.
    pub fn delta(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot {
            counters: delta_families(&self.counters, &earlier.counters, |a, b| {
                a.saturating_sub(*b)
            }),
            gauges: self.gauges.clone(),
            histograms: delta_families(
                &self.histograms,
                &earlier.histograms,
                HistogramSnapshot::minus,
            ),
        }
    }

    /// Adds `other` into `self`: counters and histograms are summed, gauges take `other`'s value.
    pub fn merge(&mut self, other: &Snapshot) {
        merge_families(&mut self.counters, &other.counters, |a, b| {
            *a = a.saturating_add(*b)
        });
        merge_families(&mut self.gauges, &other.gauges, |a, b| *a = *b);
        merge_families(
            &mut self.histograms,
            &other.histograms,
            HistogramSnapshot::add,
        );
    }

    /// The number of metrics in the snapshot.
    pub fn len(&self) -> usize {
        self.counters.len() + self.gauges.len() + self.histograms.len()
    }

    /// True if the snapshot holds no metric.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn find_series<'a, V>(family: &'a Family<V>, labels: &[(&str, &str)]) -> Option<&'a Series<V>> {
    family.series.iter().find(|s| {
        s.labels.len() == labels.len()
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    })
}

fn delta_families<V: Clone>(
    later: &BTreeMap<Arc<str>, Family<V>>,
    earlier: &BTreeMap<Arc<str>, Family<V>>,
    minus: impl Fn(&V, &V) -> V,
) -> BTreeMap<Arc<str>, Family<V>> {
    later
        .iter()
        .map(|(name, family)| {
            let before = earlier.get(name);
            // Series are paired in order among those with equal labels, so that a snapshot
            // that (deserialized) holds one label set twice still has a zero delta with itself.
            let mut used = vec![false; before.map_or(0, |f| f.series.len())];
            let series = family
                .series
                .iter()
                .map(|s| {
                    let old = before.and_then(|f| {
                        let i = f
                            .series
                            .iter()
                            .enumerate()
                            .position(|(i, o)| !used[i] && o.labels == s.labels)?;
                        used[i] = true;
                        Some(&f.series[i])
                    });
                    Series {
                        labels: s.labels.clone(),
                        value: match old {
                            Some(old) => minus(&s.value, &old.value),
                            None => s.value.clone(),
                        },
                    }
                })
                .collect();
            (
                name.clone(),
                Family {
                    series,
                    ..family.clone()
                },
            )
        })
        .collect()
}

fn merge_families<V: Clone>(
    into: &mut BTreeMap<Arc<str>, Family<V>>,
    from: &BTreeMap<Arc<str>, Family<V>>,
    add: impl Fn(&mut V, &V),
) {
    for (name, family) in from {
        let target = into.entry(name.clone()).or_insert_with(|| Family {
            unit: family.unit,
            description: family.description.clone(),
            series: Vec::new(),
        });
        for s in &family.series {
            match target.series.iter_mut().find(|t| t.labels == s.labels) {
                Some(t) => add(&mut t.value, &s.value),
                None => {
                    target.series.push(s.clone());
                    target.series.sort_by(|a, b| a.labels.cmp(&b.labels));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_lookups_delta_and_merge() {
        let family = |v| Family {
            unit: Unit::None,
            description: Arc::default(),
            series: vec![Series {
                labels: Labels::new(),
                value: v,
            }],
        };
        let mut early = Snapshot::default();
        early.counters.insert("a".into(), family(3));
        let mut late = Snapshot::default();
        late.counters.insert("a".into(), family(10));
        late.counters.insert("b".into(), family(1));
        let d = late.delta(&early);
        assert_eq!(d.counter("a"), Some(7));
        assert_eq!(d.counter("b"), Some(1));
        assert_eq!(d.counter("c"), None);
        let mut m = early.clone();
        m.merge(&d);
        assert_eq!(m.counter("a"), Some(10));
        assert_eq!(m.counter_with("a", &[]), Some(10));
        let json = serde_json::to_string(&m).unwrap();
        let back: Snapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn hostile_json_does_not_panic() {
        let json = r#"{"histograms":{"h":{"series":[{"value":{"count":5,"sum":1,"min":9,"max":2,"buckets":[[4294967295,3],[0,18446744073709551615]]}}]}}}"#;
        let s: Snapshot = serde_json::from_str(json).unwrap();
        let h = s.histogram("h").unwrap();
        let _ = h.quantile(0.5);
        let _ = s.delta(&s).histogram("h").unwrap().quantile(0.9);
        let mut m = s.clone();
        m.merge(&s);
        let _ = m.histogram("h").unwrap().quantile(0.3);
    }
}

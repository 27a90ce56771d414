//! Point-in-time values of every metric: what tests read and reports carry.

use crate::engine::buckets::{
    BUCKETS, MAX_RELATIVE_ERROR, bucket_lower, bucket_midpoint, bucket_upper,
};
use crate::engine::cells::HistogramAccumulator;
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

/// The distribution of one histogram series: count, sum, exact min and max, and the non-empty
/// buckets of the log-linear layout.
///
/// Values `0..128` have exact buckets; above, each power of two is split into 64 buckets, so
/// [`quantile`](Self::quantile) is within [`RELATIVE_ERROR`](Self::RELATIVE_ERROR) (1/128,
/// about 0.78%) of the true value. For `#[timed]` the values are nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistogramSnapshot {
    count: u64,
    sum: u64,
    min: u64,
    max: u64,
    /// `[index, count]` of each non-empty bucket, ascending by index. Bucket `i` of the layout
    /// holds the values from `lower(i)` to `lower(i + 1) - 1`, where `lower(i) = i` for
    /// `i < 64` and `lower(i) = (64 + i % 64) << (i / 64 - 1)` above; [`Self::buckets`] gives
    /// the bounds. Indexes (not bounds) are stored so that a report carries no raw value.
    buckets: Vec<(u32, u64)>,
}

/// One bucket of a [`HistogramSnapshot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// The smallest value the bucket holds.
    pub lower: u64,
    /// The largest value the bucket holds (inclusive).
    pub upper: u64,
    /// How many recorded values fell in it.
    pub count: u64,
}

impl HistogramSnapshot {
    /// The bound on the relative error of [`quantile`](Self::quantile): 1/128.
    pub const RELATIVE_ERROR: f64 = MAX_RELATIVE_ERROR;

    #[cfg(test)]
    pub(crate) fn from_accumulator(acc: &HistogramAccumulator) -> Self {
        let mut h = HistogramSnapshot::default();
        h.set_from_accumulator(acc);
        h
    }

    /// Makes this the histogram of `acc`, reusing the bucket list's allocation.
    pub(crate) fn set_from_accumulator(&mut self, acc: &HistogramAccumulator) {
        self.buckets.clear();
        self.buckets.reserve(acc.occupied_count());
        (self.buckets).extend(acc.nonzero_buckets().map(|(index, n)| (index as u32, n)));
        self.count = total(&self.buckets);
        (self.sum, self.min, self.max) = match (self.buckets.first(), self.buckets.last()) {
            (Some(&(first, _)), Some(&(last, _))) if self.count > 0 => {
                // Exact min and max lie in the first and last buckets. Values recorded while
                // the snapshot reads may be in the buckets read but not yet in min and max
                // (or the other way round): clamping keeps them consistent.
                let (first, last) = (first as usize, last as usize);
                let min = acc.min.clamp(bucket_lower(first), bucket_upper(first));
                let max = acc.max.clamp(bucket_lower(last), bucket_upper(last));
                (acc.sum, min, max)
            }
            _ => (0, 0, 0),
        };
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sum of the recorded values (saturating at `u64::MAX`), in the metric's unit.
    pub fn sum(&self) -> u64 {
        self.sum
    }

    /// The smallest recorded value, `None` if the histogram is empty.
    pub fn min(&self) -> Option<u64> {
        (self.count > 0).then_some(self.min)
    }

    /// The largest recorded value, `None` if the histogram is empty.
    pub fn max(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max)
    }

    /// The mean of the recorded values, `None` if the histogram is empty.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }

    /// The non-empty buckets, ascending.
    pub fn buckets(&self) -> impl Iterator<Item = Bucket> + '_ {
        self.buckets.iter().map(|&(index, count)| {
            let index = layout_index(index);
            let lower = bucket_lower(index);
            Bucket {
                lower,
                upper: bucket_upper(index),
                count,
            }
        })
    }

    /// The value at quantile `q` (0.5 is the median, 0.99 the 99th percentile): the middle of
    /// the bucket holding the `ceil(q * count)`-th smallest value, clamped to the exact min and
    /// max. `quantile(0.0)` is the exact min and `quantile(1.0)` the exact max.
    ///
    /// Returns `None` if the histogram is empty or `q` is not within `0.0..=1.0` (or NaN).
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        if q == 0.0 {
            return Some(self.min);
        }
        if q == 1.0 {
            return Some(self.max);
        }
        let total = total(&self.buckets);
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total.max(1));
        let mut seen = 0u64;
        for &(index, n) in &self.buckets {
            seen = seen.saturating_add(n);
            if seen >= rank {
                let estimate = bucket_midpoint(layout_index(index));
                return Some(estimate.clamp(self.min, self.max.max(self.min)));
            }
        }
        Some(self.max)
    }

    /// The same histogram with every number (count, sum, min, max, bucket counts) passed
    /// through `f`; bucket bounds are kept. Used by anonymization.
    pub(crate) fn map_numbers(&self, f: impl Fn(u64) -> u64) -> HistogramSnapshot {
        HistogramSnapshot {
            count: f(self.count),
            sum: f(self.sum),
            min: f(self.min),
            max: f(self.max),
            buckets: self
                .buckets
                .iter()
                .map(|&(lower, n)| (lower, f(n)))
                .collect(),
        }
    }

    /// Adds another histogram's values into this one.
    pub fn add(&mut self, other: &HistogramSnapshot) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = other.clone();
            return;
        }
        let mut merged = BTreeMap::new();
        for &(index, n) in self.buckets.iter().chain(&other.buckets) {
            let slot = merged.entry(layout_index(index) as u32).or_insert(0u64);
            *slot = slot.saturating_add(n);
        }
        self.buckets = merged.into_iter().collect();
        self.count = self.count.saturating_add(other.count);
        self.sum = self.sum.saturating_add(other.sum);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// `self` minus `earlier`, bucket by bucket; min and max estimated from the buckets left.
    fn minus(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        let mut old: BTreeMap<u32, u64> = BTreeMap::new();
        for &(index, n) in &earlier.buckets {
            let slot = old.entry(layout_index(index) as u32).or_insert(0u64);
            *slot = slot.saturating_add(n);
        }
        let buckets: Vec<(u32, u64)> = self
            .buckets
            .iter()
            .filter_map(|&(index, n)| {
                let index = layout_index(index) as u32;
                let left = n.saturating_sub(old.get(&index).copied().unwrap_or(0));
                (left > 0).then_some((index, left))
            })
            .collect();
        let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else {
            return HistogramSnapshot::default();
        };
        HistogramSnapshot {
            count: total(&buckets),
            sum: self.sum.saturating_sub(earlier.sum),
            min: bucket_lower(layout_index(first.0)).max(self.min),
            max: bucket_upper(layout_index(last.0)).min(self.max),
            buckets,
        }
    }
}

/// A stored bucket index as an index of the layout (deserialized input may be out of range).
fn layout_index(index: u32) -> usize {
    (index as usize).min(BUCKETS - 1)
}

/// The number of values in `buckets`, saturating (deserialized input may be hostile).
fn total(buckets: &[(u32, u64)]) -> u64 {
    buckets.iter().fold(0u64, |t, b| t.saturating_add(b.1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cells::HistogramCells;

    fn histogram(values: impl IntoIterator<Item = u64>) -> HistogramSnapshot {
        let cells = HistogramCells::new();
        for v in values {
            cells.record_owned_weighted(v, 1);
        }
        let mut acc = HistogramAccumulator::new();
        cells.read_into(&mut acc);
        HistogramSnapshot::from_accumulator(&acc)
    }

    #[test]
    fn quantiles_are_within_the_documented_error() {
        let values: Vec<u64> = (1..=100_000u64).map(|i| i * 37).collect();
        let h = histogram(values.iter().copied());
        assert_eq!(h.count(), 100_000);
        assert_eq!(h.sum(), values.iter().sum::<u64>());
        assert_eq!((h.min(), h.max()), (Some(37), Some(3_700_000)));
        for q in [0.001, 0.1, 0.25, 0.5, 0.9, 0.99, 0.999] {
            let exact = values[((q * values.len() as f64).ceil() as usize).max(1) - 1] as f64;
            let got = h.quantile(q).unwrap() as f64;
            let err = (got - exact).abs() / exact;
            assert!(
                err <= HistogramSnapshot::RELATIVE_ERROR,
                "q={q}: {got} vs {exact} ({err})"
            );
        }
        assert_eq!(h.quantile(0.0), Some(37));
        assert_eq!(h.quantile(1.0), Some(3_700_000));
        assert_eq!(h.quantile(1.5), None);
        assert_eq!(h.quantile(f64::NAN), None);
        assert_eq!(HistogramSnapshot::default().quantile(0.5), None);
    }

    #[test]
    fn min_and_max_read_apart_from_their_buckets_are_clamped_to_them() {
        let cells = HistogramCells::new();
        for v in [1_000, 50_000] {
            cells.record_owned_weighted(v, 1);
        }
        let mut acc = HistogramAccumulator::new();
        cells.read_into(&mut acc);
        // As if the snapshot read the buckets of a value whose min and max were not written
        // yet (a record racing with the snapshot).
        (acc.min, acc.max) = (u64::MAX, 0);
        let h = HistogramSnapshot::from_accumulator(&acc);
        let (first, last) = (h.buckets().next().unwrap(), h.buckets().last().unwrap());
        assert!((first.lower..=first.upper).contains(&h.min().unwrap()));
        assert!((last.lower..=last.upper).contains(&h.max().unwrap()));
        assert!(h.quantile(0.5).unwrap() <= 50_000 * 129 / 128);
        // Consistent values are kept exactly.
        let exact = histogram([1_000, 50_000]);
        assert_eq!((exact.min(), exact.max()), (Some(1_000), Some(50_000)));
    }

    #[test]
    fn add_and_minus_are_inverse_on_counts() {
        let a = histogram([1, 200, 5_000]);
        let b = histogram([200, 7_000_000]);
        let mut sum = a.clone();
        sum.add(&b);
        assert_eq!(sum.count(), 5);
        assert_eq!((sum.min(), sum.max()), (Some(1), Some(7_000_000)));
        let back = sum.minus(&a);
        assert_eq!(back.count(), 2);
        assert_eq!(back.sum(), b.sum());
        assert_eq!(back.buckets().map(|x| x.count).sum::<u64>(), 2);
        assert!(back.min().unwrap() <= 200 && back.max().unwrap() >= 7_000_000 * 127 / 128);
    }

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

//! One histogram series at a point in time: [`HistogramSnapshot`], its buckets and quantiles.

use crate::engine::buckets::{
    BUCKETS, MAX_RELATIVE_ERROR, bucket_lower, bucket_midpoint, bucket_upper,
};
use crate::engine::cells::HistogramAccumulator;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    pub(crate) fn minus(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
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
}

//! Which `le` boundaries a histogram is exported with: [`BucketLayout`], shared by the
//! Prometheus and OpenMetrics exposition and the OTLP exporter, with the cumulative counts at
//! those boundaries, and [`ExpositionError`] for a layout (or an exposition) that cannot be
//! built. Public through `export::prometheus`.

use crate::engine::buckets::{bucket_index, bucket_lower, bucket_upper};
use crate::engine::histogram_snapshot::HistogramSnapshot;

/// Why an [`Exposition`](super::prometheus::Exposition) or a [`BucketLayout`] could not be
/// built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExpositionError {
    /// The name prefix is not `[a-zA-Z_][a-zA-Z0-9_]*` (or is longer than 100 bytes).
    #[error(
        "invalid metric name prefix `{prefix}`: a prefix is ASCII letters, digits and `_`, not \
         starting with a digit, at most 100 bytes, e.g. `docstore_`"
    )]
    InvalidPrefix {
        /// The rejected prefix.
        prefix: String,
    },
    /// `per_doubling` is not one of 1, 2, 4, 8, 16, 32, 64.
    #[error(
        "invalid bucket layout: {per_doubling} buckets per power of two; use 1, 2, 4, 8, 16, 32 \
         or 64 (powers of two up to the 64 fine buckets of each power of two)"
    )]
    InvalidPerDoubling {
        /// The rejected value.
        per_doubling: u32,
    },
    /// The explicit boundary list is empty or longer than [`BucketLayout::MAX_EXPLICIT`].
    #[error(
        "invalid bucket layout: {len} explicit boundaries; give from 1 to {max}",
        max = BucketLayout::MAX_EXPLICIT
    )]
    InvalidExplicitBounds {
        /// How many boundaries were given.
        len: usize,
    },
}

/// Which `le` boundaries a histogram is exported with (also the explicit bounds of the OTLP
/// exporter).
///
/// Every boundary is the inclusive upper bound of one of the fine buckets of our log-linear
/// layout (values `0..128` exact, then 64 buckets per power of two), so the exported counts
/// are exact: bucket `le = b` counts exactly the recorded values `v <= b`. Boundaries are in
/// the metric's recorded unit (nanoseconds for `#[timed]`; the text is converted to seconds).
/// All series of one metric share the boundaries, computed over the values of all of them.
///
/// # The error of `histogram_quantile`
/// Prometheus interpolates linearly inside the bucket `(b[i-1], b[i]]` that holds the rank it
/// looks for; the true value is in the same bucket, so the error is at most the bucket's width.
/// - [`log_linear(k)`](Self::log_linear) (default `k` = 4): each power of two `[2^e, 2^(e+1))`
///   is split into `k` equal buckets, whose upper bounds are `2^e * (1 + j/k) - 1` for
///   `j = 1..=k` (ratio between neighbours at most `1 + 1/k`). The relative error of
///   `histogram_quantile` is at most `1/k` of the true value (25% for the default 4, 12.5% for
///   8, 1.6% for 64), or one unit of the recorded value (1 ns), whichever is larger: below `k`
///   the buckets are single values. Boundaries cover the observed range, from the bucket below
///   the smallest value to the one holding the largest, contiguously, so they change only when
///   a value falls outside the range seen so far; about `k` boundaries per power of two
///   (`4 * 23 = 92` at most for durations from 1 µs to 10 s).
/// - [`fine()`](Self::fine): the fine buckets themselves, only around the non-empty ones
///   (the bound below each non-empty bucket and its upper bound): error at most 1/64 of the
///   value (1.6%), up to two boundaries per non-empty fine bucket.
/// - [`explicit(bounds)`](Self::explicit): fixed boundaries, each moved down to the nearest
///   fine-bucket upper bound (at most 1/64 below the requested value) so counts stay exact.
///   The error then depends on the boundaries; [`max_relative_error`](Self::max_relative_error)
///   is `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketLayout {
    kind: LayoutKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum LayoutKind {
    LogLinear(u32),
    Fine,
    Explicit(Vec<u64>),
}

impl Default for BucketLayout {
    /// [`log_linear`](Self::log_linear) with [`DEFAULT_PER_DOUBLING`](Self::DEFAULT_PER_DOUBLING).
    fn default() -> Self {
        BucketLayout {
            kind: LayoutKind::LogLinear(Self::DEFAULT_PER_DOUBLING),
        }
    }
}

impl BucketLayout {
    /// Buckets per power of two of the default layout: 4 (`histogram_quantile` within 25%).
    pub const DEFAULT_PER_DOUBLING: u32 = 4;

    /// The most boundaries [`explicit`](Self::explicit) accepts: 1024.
    pub const MAX_EXPLICIT: usize = 1024;

    /// `per_doubling` equal buckets per power of two across the observed range.
    ///
    /// # Errors
    /// [`ExpositionError::InvalidPerDoubling`] unless `per_doubling` is 1, 2, 4, 8, 16, 32 or
    /// 64 (a boundary must be an upper bound of the 64 fine buckets of each power of two).
    pub fn log_linear(per_doubling: u32) -> Result<Self, ExpositionError> {
        if !(per_doubling.is_power_of_two() && per_doubling <= 64) {
            return Err(ExpositionError::InvalidPerDoubling { per_doubling });
        }
        Ok(BucketLayout {
            kind: LayoutKind::LogLinear(per_doubling),
        })
    }

    /// The fine buckets around every non-empty one (see the type's docs).
    pub fn fine() -> Self {
        BucketLayout {
            kind: LayoutKind::Fine,
        }
    }

    /// Fixed boundaries in the metric's recorded unit (nanoseconds for `#[timed]`), each moved
    /// down to the nearest upper bound of a fine bucket, sorted and deduplicated.
    ///
    /// # Errors
    /// [`ExpositionError::InvalidExplicitBounds`] if `bounds` is empty or longer than
    /// [`MAX_EXPLICIT`](Self::MAX_EXPLICIT).
    pub fn explicit(bounds: &[u64]) -> Result<Self, ExpositionError> {
        if bounds.is_empty() || bounds.len() > Self::MAX_EXPLICIT {
            return Err(ExpositionError::InvalidExplicitBounds { len: bounds.len() });
        }
        let mut snapped: Vec<u64> = bounds.iter().map(|&b| fine_upper_at_or_below(b)).collect();
        snapped.sort_unstable();
        snapped.dedup();
        Ok(BucketLayout {
            kind: LayoutKind::Explicit(snapped),
        })
    }

    /// The bound on the relative error of Prometheus' `histogram_quantile` (and of any linear
    /// interpolation inside the exported buckets), as a fraction of the true value, for values
    /// of at least `per_doubling` units: `1/per_doubling` for [`log_linear`](Self::log_linear),
    /// `1/64` for [`fine`](Self::fine), `None` for [`explicit`](Self::explicit).
    pub fn max_relative_error(&self) -> Option<f64> {
        match &self.kind {
            LayoutKind::LogLinear(k) => Some(1.0 / f64::from(*k)),
            LayoutKind::Fine => Some(1.0 / 64.0),
            LayoutKind::Explicit(_) => None,
        }
    }

    /// The boundaries for a metric whose series are `histograms`: ascending inclusive upper
    /// bounds in the recorded unit, without the final `+Inf`. Empty if no value was recorded
    /// (an empty histogram has only the `+Inf` bucket).
    pub fn boundaries<'a>(
        &self,
        histograms: impl IntoIterator<Item = &'a HistogramSnapshot>,
    ) -> Vec<u64> {
        let mut out = Vec::new();
        self.boundaries_into(histograms, &mut out);
        out
    }

    /// [`boundaries`](Self::boundaries) into `out` (cleared first), so that rendering reuses
    /// one vector for all histograms.
    pub(super) fn boundaries_into<'a>(
        &self,
        histograms: impl IntoIterator<Item = &'a HistogramSnapshot>,
        out: &mut Vec<u64>,
    ) {
        out.clear();
        if let LayoutKind::Explicit(bounds) = &self.kind {
            out.extend_from_slice(bounds);
            return;
        }
        let fine = matches!(self.kind, LayoutKind::Fine);
        let mut lowest = u64::MAX;
        let mut highest = 0u64;
        let mut any = false;
        for h in histograms {
            for b in h.buckets().filter(|b| b.count > 0) {
                any = true;
                lowest = lowest.min(b.lower);
                highest = highest.max(b.upper);
                if fine {
                    // The bound below the bucket and its upper bound.
                    if b.lower > 0 {
                        out.push(b.lower - 1);
                    }
                    out.push(b.upper);
                }
            }
        }
        if !any {
            return;
        }
        match &self.kind {
            LayoutKind::LogLinear(k) => {
                let k = u64::from(*k);
                let start = grid_upper(lowest, k);
                let end = grid_upper(highest, k);
                let mut point = grid_below(start, k).unwrap_or(start);
                loop {
                    out.push(point);
                    if point >= end || point == u64::MAX {
                        break;
                    }
                    point = grid_upper(point + 1, k);
                }
            }
            LayoutKind::Fine => {
                out.sort_unstable();
                out.dedup();
            }
            LayoutKind::Explicit(_) => unreachable!("handled above"),
        }
    }
}

/// The smallest point `>= v` of the log-linear grid with `k` buckets per power of two: `0`,
/// `1`, then `2^e + j * 2^e / min(k, 2^e) - 1` for `j = 1..=min(k, 2^e)` in each `[2^e, 2^(e+1))`.
fn grid_upper(v: u64, k: u64) -> u64 {
    if v <= 1 {
        return v;
    }
    let e = 63 - v.leading_zeros();
    // `k` is a power of two (checked by `log_linear`), so the step `2^e / min(k, 2^e)` is
    // `2^shift` and the divisions are shifts.
    let shift = e - k.min(1u64 << e).trailing_zeros();
    let j = ((v - (1u64 << e)) >> shift) + 1;
    ((1u128 << e) + (u128::from(j) << shift) - 1) as u64
}

/// The grid point before grid point `point`, `None` below 0.
fn grid_below(point: u64, k: u64) -> Option<u64> {
    match point {
        0 => None,
        1 => Some(0),
        _ => {
            let e = 63 - point.leading_zeros();
            Some(point - (1u64 << (e - k.min(1u64 << e).trailing_zeros())))
        }
    }
}

/// The largest upper bound of a fine bucket that is `<= v`.
fn fine_upper_at_or_below(v: u64) -> u64 {
    let index = bucket_index(v);
    if bucket_upper(index) == v {
        v
    } else {
        // `v` is inside a wider bucket: the previous bucket ends just below it.
        bucket_lower(index).saturating_sub(1)
    }
}

/// Cumulative counts of `h` at each boundary of `bounds` (ascending upper bounds of fine
/// buckets): entry `i` is the number of values `<= bounds[i]`, capped at `h.count()`.
#[cfg(feature = "otlp")]
pub(crate) fn cumulative_counts(h: &HistogramSnapshot, bounds: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(bounds.len());
    let mut fine = h.buckets().peekable();
    let mut running = 0u64;
    for &bound in bounds {
        while let Some(b) = fine.peek() {
            if b.upper > bound {
                break;
            }
            running = running.saturating_add(b.count);
            fine.next();
        }
        out.push(running.min(h.count()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_points_are_fine_bucket_upper_bounds() {
        for k in [1u64, 2, 4, 8, 16, 32, 64] {
            let mut v = 0u64;
            while v < u64::MAX / 3 {
                let p = grid_upper(v, k);
                assert!(p >= v, "k={k} v={v} p={p}");
                assert_eq!(
                    fine_upper_at_or_below(p),
                    p,
                    "k={k}: {p} not a bucket upper"
                );
                if let Some(below) = grid_below(p, k) {
                    assert!(below < v, "k={k} v={v}: {below} is not below");
                    assert_eq!(grid_upper(below + 1, k), p, "k={k} v={v}");
                    // The bucket (below, p] is at most 1/k of its lower end wide (or one unit).
                    let width = (p - below) as f64;
                    assert!(
                        width <= ((below + 1) as f64 / k as f64).max(1.0),
                        "k={k} v={v}"
                    );
                }
                v = v + v / 4 + 1;
            }
        }
        assert_eq!(grid_upper(u64::MAX, 4), u64::MAX);
        assert_eq!(grid_upper(1024, 4), 1279);
        assert_eq!(grid_below(1279, 4), Some(1023));
        assert_eq!(grid_upper(5, 4), 5);
        assert_eq!(grid_upper(9, 4), 9);
        assert_eq!(grid_upper(10, 4), 11);
    }

    #[test]
    fn explicit_bounds_are_snapped_down() {
        let layout = BucketLayout::explicit(&[1000, 100, 1_000_000, 100]).unwrap();
        let LayoutKind::Explicit(b) = &layout.kind else {
            panic!()
        };
        assert_eq!(b[0], 100);
        assert_eq!(b[1], 999); // 1000 starts the bucket [1000, 1007]: the one below ends at 999
        assert!(b[1] <= 1000 && b[2] <= 1_000_000 && b[2] >= 1_000_000 - 1_000_000 / 64);
        assert_eq!(b.len(), 3);
        assert!(BucketLayout::explicit(&[]).is_err());
        assert!(BucketLayout::log_linear(3).is_err());
        assert!(BucketLayout::log_linear(128).is_err());
        assert!(BucketLayout::log_linear(0).is_err());
    }
}

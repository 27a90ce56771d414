//! The log-linear bucket layout shared by every histogram.
//!
//! Values `0..128` each have a bucket of their own (exact). Above that, every power of two
//! `[2^e, 2^(e+1))` is split into 64 equal buckets, so a bucket is at most 1/64 of its lower
//! bound wide. A quantile is reported as the middle of its bucket, clamped to the exact min and
//! max, so its relative error is at most 1/128 (0.79%) of the true value, inside the 1% bound
//! the framework documents. The layout covers all of `u64` in [`BUCKETS`] buckets; the same
//! layout as HdrHistogram with 2 significant-digit precision, but computed with shifts only.

/// Sub-buckets per power of two: 2^SUB_BITS.
const SUB_BITS: u32 = 6;
/// Buckets in one group (one power of two above 128, or one of the two linear groups below).
pub(crate) const GROUP: usize = 1 << SUB_BITS;
/// Number of groups: two linear ones for `0..128`, then one per power of two from 2^7 to 2^63.
pub(crate) const GROUPS: usize = 59;
/// Total number of buckets in the layout.
pub(crate) const BUCKETS: usize = GROUP * GROUPS;

/// The largest relative error of a quantile estimate: 1/128.
pub(crate) const MAX_RELATIVE_ERROR: f64 = 1.0 / 128.0;

/// The bucket index (`0..BUCKETS`) of a value. Branch-free: a leading-zero count and shifts.
#[inline(always)]
pub(crate) fn bucket_index(value: u64) -> usize {
    // e = floor(log2(value)), with 0 and 1 both giving 0.
    let e = 63 - (value | 1).leading_zeros();
    let group = e.saturating_sub(SUB_BITS - 1);
    let shift = e.saturating_sub(SUB_BITS);
    let sub = (value >> shift) as usize & (GROUP - 1);
    ((group as usize) << SUB_BITS) | sub
}

/// The smallest value that falls in bucket `index`.
#[inline]
pub(crate) fn bucket_lower(index: usize) -> u64 {
    let group = index >> SUB_BITS;
    let sub = (index & (GROUP - 1)) as u64;
    if group == 0 {
        sub
    } else {
        (GROUP as u64 + sub) << (group - 1)
    }
}

/// The largest value that falls in bucket `index` (inclusive).
#[inline]
pub(crate) fn bucket_upper(index: usize) -> u64 {
    let group = index >> SUB_BITS;
    let width_minus_one = if group <= 1 {
        0
    } else {
        (1u64 << (group - 1)) - 1
    };
    bucket_lower(index) + width_minus_one
}

/// The value reported for a bucket: the middle of its range.
#[inline]
pub(crate) fn bucket_midpoint(index: usize) -> u64 {
    let lower = bucket_lower(index);
    lower + (bucket_upper(index) - lower) / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_are_exact() {
        for v in 0..128u64 {
            let i = bucket_index(v);
            assert_eq!(bucket_lower(i), v);
            assert_eq!(bucket_upper(i), v);
        }
    }

    #[test]
    fn indexes_are_monotonic_and_bounds_contain_the_value() {
        let mut last = 0;
        let mut v = 0u64;
        while v < u64::MAX / 2 {
            let i = bucket_index(v);
            assert!(i >= last, "index went down at {v}");
            assert!(i < BUCKETS);
            assert!(
                bucket_lower(i) <= v && v <= bucket_upper(i),
                "{v} outside bucket {i}"
            );
            last = i;
            v = v + 1 + v / 97;
        }
        assert_eq!(bucket_index(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_upper(BUCKETS - 1), u64::MAX);
    }

    #[test]
    fn buckets_tile_the_range_without_gaps() {
        for i in 1..BUCKETS {
            assert_eq!(
                bucket_lower(i),
                bucket_upper(i - 1) + 1,
                "gap before bucket {i}"
            );
        }
    }

    #[test]
    fn midpoint_error_is_within_the_documented_bound() {
        let mut v = 1u64;
        while v < u64::MAX / 3 {
            let mid = bucket_midpoint(bucket_index(v)) as f64;
            let err = (mid - v as f64).abs() / v as f64;
            assert!(err <= MAX_RELATIVE_ERROR, "{v}: error {err}");
            v = v * 3 / 2 + 1;
        }
    }
}

//! The storage of one histogram's values: lazily allocated bucket groups plus sum, min and max.
//!
//! The same structure serves two writers:
//! - a thread's own shard, written only by that thread (`record_owned_weighted`: plain loads and
//!   stores, no locked instruction), read by snapshots under the registry lock;
//! - the shared "retired" cells of a histogram, which receive the values of exited threads
//!   and of threads whose shard is gone (`record_shared`: atomic read-modify-write).

use crate::engine::buckets::{BUCKETS, GROUP, GROUPS, bucket_index};
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering::*};

/// The 64 buckets of one power of two: 512 bytes, aligned so that they span exactly 8 cache
/// lines.
#[repr(align(64))]
struct Group([AtomicU64; GROUP]);

/// One power of two of a histogram: its buckets (allocated on first use) and which of them are
/// non-zero (bit `i` for bucket `i`), so that snapshots of sparse histograms read only the
/// buckets that hold something. The mask sits next to the pointer, not in the group, so a
/// reader finds both with one memory access instead of two dependent ones.
struct GroupSlot {
    buckets: AtomicPtr<Group>,
    occupied: AtomicU64,
}

impl GroupSlot {
    /// The buckets, if allocated.
    fn get(&self) -> Option<&Group> {
        let group = self.buckets.load(Acquire);
        // SAFETY: a group is a live allocation owned by its cells; it is freed only when the
        // cells are dropped, which needs `&mut` access.
        (!group.is_null()).then(|| unsafe { &*group })
    }

    /// The buckets that may be non-zero, as `(index in group, bucket)`.
    fn occupied<'a>(&self, group: &'a Group) -> impl Iterator<Item = (usize, &'a AtomicU64)> {
        set_bits(self.occupied.load(Relaxed)).map(|i| (i, &group.0[i]))
    }
}

/// The indexes of the bits set in `mask`, lowest first: how groups and buckets are found from
/// their masks.
#[inline]
fn set_bits(mut mask: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let i = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            i
        })
    })
}

fn new_group() -> *mut Group {
    Box::into_raw(Box::new(Group([const { AtomicU64::new(0) }; GROUP])))
}

/// One histogram's values. 976 bytes, plus 512 bytes for each power of two that holds values.
/// The four totals come first, so a reader usually finds them in one cache line.
#[repr(C)]
pub(crate) struct HistogramCells {
    /// Bit `g` is set once group `g` is allocated, so readers visit only those.
    allocated: AtomicU64,
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
    groups: [GroupSlot; GROUPS],
}

impl HistogramCells {
    pub(crate) const fn new() -> Self {
        HistogramCells {
            allocated: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
            groups: [const {
                GroupSlot {
                    buckets: AtomicPtr::new(ptr::null_mut()),
                    occupied: AtomicU64::new(0),
                }
            }; GROUPS],
        }
    }

    /// Records `value` `weight` times (1 but for a sampled timer's observation), from the one
    /// thread that owns these cells.
    #[inline(always)]
    pub(crate) fn record_owned_weighted(&self, value: u64, weight: u64) {
        let index = bucket_index(value);
        let slot = &self.groups[index / GROUP];
        let mut group = slot.buckets.load(Relaxed);
        if group.is_null() {
            group = self.alloc_group_owned(index / GROUP);
        }
        // SAFETY: as in `GroupSlot::get`.
        let bucket = unsafe { &(*group).0[index % GROUP] };
        let before = bucket.load(Relaxed);
        bucket.store(before + weight, Relaxed);
        if before == 0 {
            // The bucket's first value: rare, so the common path has no extra memory access.
            let occupied = &slot.occupied;
            occupied.store(occupied.load(Relaxed) | 1 << (index % GROUP), Relaxed);
        }
        self.sum.store(
            self.sum
                .load(Relaxed)
                .saturating_add(value.saturating_mul(weight)),
            Relaxed,
        );
        if value < self.min.load(Relaxed) {
            self.min.store(value, Relaxed);
        }
        if value > self.max.load(Relaxed) {
            self.max.store(value, Relaxed);
        }
    }

    #[cold]
    #[inline(never)]
    fn alloc_group_owned(&self, group: usize) -> *mut Group {
        let fresh = new_group();
        // Release: a snapshot that sees the pointer sees zeroed buckets.
        self.groups[group].buckets.store(fresh, Release);
        self.allocated.fetch_or(1 << group, Release);
        fresh
    }

    /// Records `value` `weight` times, from any thread.
    pub(crate) fn record_shared(&self, value: u64, weight: u64) {
        self.add_shared(bucket_index(value), weight);
        self.sum.fetch_add(value.saturating_mul(weight), Relaxed);
        self.min.fetch_min(value, Relaxed);
        self.max.fetch_max(value, Relaxed);
    }

    fn add_shared(&self, index: usize, count: u64) {
        let slot = &self.groups[index / GROUP];
        let mut group = slot.buckets.load(Acquire);
        if group.is_null() {
            let fresh = new_group();
            group = match (slot.buckets).compare_exchange(ptr::null_mut(), fresh, AcqRel, Acquire) {
                Ok(_) => {
                    self.allocated.fetch_or(1 << (index / GROUP), Release);
                    fresh
                }
                Err(existing) => {
                    // SAFETY: `fresh` was never shared.
                    drop(unsafe { Box::from_raw(fresh) });
                    existing
                }
            };
        }
        // SAFETY: as in `GroupSlot::get`.
        let bucket = unsafe { &(*group).0[index % GROUP] };
        if bucket.fetch_add(count, Relaxed) == 0 {
            slot.occupied.fetch_or(1 << (index % GROUP), Relaxed);
        }
    }

    /// Adds these cells into `into` with atomic operations (thread exit, capture start).
    pub(crate) fn fold_into(&self, into: &HistogramCells) {
        let mut any = false;
        for (g, slot, group) in self.allocated_groups() {
            for (i, bucket) in slot.occupied(group) {
                let n = bucket.load(Relaxed);
                if n != 0 {
                    into.add_shared(g * GROUP + i, n);
                    any = true;
                }
            }
        }
        if any {
            into.sum.fetch_add(self.sum.load(Relaxed), Relaxed);
            into.min.fetch_min(self.min.load(Relaxed), Relaxed);
            into.max.fetch_max(self.max.load(Relaxed), Relaxed);
        }
    }

    /// Zeroes the cells; only the owning thread may call it, under the registry lock.
    pub(crate) fn reset_owned(&self) {
        for (_, slot, group) in self.allocated_groups() {
            for (_, bucket) in slot.occupied(group) {
                bucket.store(0, Relaxed);
            }
            slot.occupied.store(0, Relaxed);
        }
        self.sum.store(0, Relaxed);
        self.min.store(u64::MAX, Relaxed);
        self.max.store(0, Relaxed);
    }

    /// The allocated groups as `(index, slot, buckets)`.
    fn allocated_groups(&self) -> impl Iterator<Item = (usize, &GroupSlot, &Group)> {
        set_bits(self.allocated.load(Acquire)).filter_map(|g| {
            let slot = &self.groups[g];
            slot.get().map(|group| (g, slot, group))
        })
    }

    /// Adds the current values into a plain accumulator (snapshots).
    #[cfg(test)]
    pub(crate) fn read_into(&self, acc: &mut HistogramAccumulator) {
        acc.add_cells(&[self]);
    }

    /// Bytes of heap and inline memory these cells use now.
    pub(crate) fn memory_bytes(&self) -> usize {
        let groups = self.allocated.load(Relaxed).count_ones() as usize;
        std::mem::size_of::<Self>() + groups * std::mem::size_of::<Group>()
    }
}

impl Drop for HistogramCells {
    fn drop(&mut self) {
        for slot in &mut self.groups {
            let group = *slot.buckets.get_mut();
            if !group.is_null() {
                // SAFETY: allocated by `new_group`, and `&mut self` means no reader is left.
                drop(unsafe { Box::from_raw(group) });
            }
        }
    }
}

/// A plain (non-atomic) sum of histogram cells, turned into a snapshot at the end. One is
/// reused for every histogram of a snapshot: [`reset`](Self::reset) zeroes only the groups the
/// last histogram touched.
pub(crate) struct HistogramAccumulator {
    buckets: Vec<u64>,
    /// Bit `g` is set if group `g` may hold non-zero buckets.
    touched: u64,
    /// Per group, the buckets that may be non-zero, so that reading and resetting visit only
    /// those.
    occupied: [u64; GROUPS],
    pub(crate) sum: u64,
    pub(crate) min: u64,
    pub(crate) max: u64,
    /// Scratch of [`add_cells`](Self::add_cells): the allocated groups found, as
    /// `(group index, buckets, occupied mask)`.
    found: Vec<(usize, *const Group, u64)>,
}

impl HistogramAccumulator {
    pub(crate) fn new() -> Self {
        HistogramAccumulator {
            buckets: vec![0; BUCKETS],
            touched: 0,
            occupied: [0; GROUPS],
            sum: 0,
            min: u64::MAX,
            max: 0,
            found: Vec::new(),
        }
    }

    /// Adds the current values of `cells` (the cells of one histogram in several shards).
    ///
    /// The cells are scattered over the memory of many threads, so the time goes into cache
    /// misses. The work is done in stages whose loads do not depend on each other's results,
    /// so that the processor has many of them in flight at once, instead of one chain of
    /// dependent misses per cell set: the group masks and totals of every cell set, then the
    /// pointer and occupancy of every allocated group, then the buckets.
    pub(crate) fn add_cells(&mut self, cells: &[&HistogramCells]) {
        self.found.clear();
        for c in cells {
            let before = self.found.len();
            self.found.extend(
                c.allocated_groups().map(|(g, slot, group)| {
                    (g, group as *const Group, slot.occupied.load(Relaxed))
                }),
            );
            if self.found.len() > before {
                // The totals share the mask's cache line. A value recorded while this runs may
                // be in the buckets read but not in the min and max read, or the other way
                // round; the snapshot clamps min and max to the buckets (`set_from_accumulator`).
                self.sum = self.sum.saturating_add(c.sum.load(Relaxed));
                self.min = self.min.min(c.min.load(Relaxed));
                self.max = self.max.max(c.max.load(Relaxed));
            }
        }
        for &(g, group, mask) in &self.found {
            // SAFETY: found by `allocated_groups` (so not null); the cells outlive this call.
            let group = unsafe { &*group };
            self.touched |= 1 << g;
            self.occupied[g] |= mask;
            let dense = &mut self.buckets[g * GROUP..(g + 1) * GROUP];
            for i in set_bits(mask) {
                dense[i] = dense[i].wrapping_add(group.0[i].load(Relaxed));
            }
        }
    }

    /// Back to empty.
    pub(crate) fn reset(&mut self) {
        for g in set_bits(std::mem::take(&mut self.touched)) {
            for i in set_bits(std::mem::take(&mut self.occupied[g])) {
                self.buckets[g * GROUP + i] = 0;
            }
        }
        self.sum = 0;
        self.min = u64::MAX;
        self.max = 0;
    }

    /// The indexes of the buckets that may be non-zero, in index order, as `(index, count)`.
    fn occupied_buckets(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        set_bits(self.touched).flat_map(move |g| {
            set_bits(self.occupied[g]).map(move |i| {
                let index = g * GROUP + i;
                (index, self.buckets[index])
            })
        })
    }

    /// Non-empty buckets as `(index, count)`, in index order.
    pub(crate) fn nonzero_buckets(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.occupied_buckets().filter(|&(_, n)| n != 0)
    }

    /// An upper bound of the number of non-empty buckets.
    pub(crate) fn occupied_count(&self) -> usize {
        self.occupied.iter().map(|m| m.count_ones() as usize).sum()
    }
}

const _: () = assert!(BUCKETS == GROUP * GROUPS);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_and_shared_records_agree_and_fold() {
        let owned = HistogramCells::new();
        let shared = HistogramCells::new();
        for v in [0, 5, 1000, 1_000_000, 3_600_000_000_000] {
            owned.record_owned_weighted(v, 1);
            shared.record_shared(v, 1);
        }
        let (mut a, mut b) = (HistogramAccumulator::new(), HistogramAccumulator::new());
        owned.read_into(&mut a);
        shared.read_into(&mut b);
        assert_eq!(
            a.nonzero_buckets().collect::<Vec<_>>(),
            b.nonzero_buckets().collect::<Vec<_>>()
        );
        assert_eq!((a.sum, a.min, a.max), (b.sum, b.min, b.max));
        assert_eq!((a.min, a.max), (0, 3_600_000_000_000));

        owned.fold_into(&shared);
        owned.reset_owned();
        let mut c = HistogramAccumulator::new();
        shared.read_into(&mut c);
        assert_eq!(c.nonzero_buckets().map(|(_, n)| n).sum::<u64>(), 10);
        let mut d = HistogramAccumulator::new();
        owned.read_into(&mut d);
        assert_eq!(d.nonzero_buckets().count(), 0);
    }

    #[test]
    fn a_one_ns_to_one_hour_histogram_fits_in_8_kib_in_its_usual_state() {
        // Usual state: request latencies spanning four decades, 10 µs to 100 ms (14 powers of
        // two; the layout itself covers 1 ns to 584 years).
        let cells = HistogramCells::new();
        let mut v = 10_000u64;
        while v <= 100_000_000 {
            cells.record_owned_weighted(v, 1);
            v += v / 50;
        }
        assert!(
            cells.memory_bytes() <= 8192,
            "{} bytes",
            cells.memory_bytes()
        );
    }
}

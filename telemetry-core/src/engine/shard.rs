//! Per-thread shards: where the hot path writes.
//!
//! Every thread that records gets a [`Shard`]: a table of counter cells and a table of
//! histogram cells, indexed by the *slot* the registry gave each counter or histogram series.
//! Only the owning thread writes its shard, so an increment is a plain load and store of a
//! thread-local cache line: no locked instruction, no cache-line ping-pong between threads.
//! Snapshots read every live shard under the registry lock and add the *retired* totals, where
//! exiting threads fold their values (also under the lock), so no count is lost or counted twice.
//!
//! Memory: a shard is two 2 KiB tables of chunk pointers; a chunk of 1,024 counter cells is
//! 8 KiB and a chunk of 1,024 histogram pointers is 8 KiB, allocated the first time the thread
//! touches a slot in it. Histogram cells per thread are described in `cells.rs`.

use crate::engine::cells::HistogramCells;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering::*};

/// Slots in one chunk.
const CHUNK: usize = 1024;
/// Chunks in one table.
const CHUNKS: usize = 256;
/// The number of counter series (and, separately, histogram series) that get a per-thread slot.
/// Series registered past it are recorded with shared atomics instead: slower, never lost.
pub(crate) const MAX_SLOTS: u32 = (CHUNK * CHUNKS) as u32;

/// A cell type that starts zeroed.
pub(crate) trait Zeroed: Sized {
    fn zeroed() -> Self;
}
impl Zeroed for AtomicU64 {
    fn zeroed() -> Self {
        AtomicU64::new(0)
    }
}
impl<T> Zeroed for AtomicPtr<T> {
    fn zeroed() -> Self {
        AtomicPtr::new(ptr::null_mut())
    }
}

/// A two-level table of cells: a fixed array of chunk pointers, chunks allocated on first touch.
pub(crate) struct SlotTable<T> {
    chunks: [AtomicPtr<T>; CHUNKS],
}

impl<T: Zeroed> SlotTable<T> {
    const fn new() -> Self {
        SlotTable {
            chunks: [const { AtomicPtr::new(ptr::null_mut()) }; CHUNKS],
        }
    }

    /// The cell of `slot`, allocating its chunk if needed. Owner thread only.
    #[inline(always)]
    fn get_owned(&self, slot: u32) -> &T {
        let slot = slot as usize;
        let mut chunk = self.chunks[slot / CHUNK].load(Relaxed);
        if chunk.is_null() {
            chunk = self.alloc_chunk(slot / CHUNK);
        }
        // SAFETY: chunks hold CHUNK cells and live until the table is dropped.
        unsafe { &*chunk.add(slot % CHUNK) }
    }

    #[cold]
    #[inline(never)]
    fn alloc_chunk(&self, chunk: usize) -> *mut T {
        let cells: Box<[T]> = (0..CHUNK).map(|_| T::zeroed()).collect();
        let fresh = Box::into_raw(cells) as *mut T;
        // Release: a snapshot that sees the pointer sees initialized cells.
        self.chunks[chunk].store(fresh, Release);
        fresh
    }

    /// The cell of `slot` if its chunk exists (any thread).
    #[inline]
    fn get_if_present(&self, slot: u32) -> Option<&T> {
        let slot = slot as usize;
        let chunk = self.chunks.get(slot / CHUNK)?.load(Acquire);
        // SAFETY: as in `get_owned`.
        (!chunk.is_null()).then(|| unsafe { &*chunk.add(slot % CHUNK) })
    }

    /// Visits every allocated chunk as `(its first slot, its cells)`.
    pub(crate) fn for_each_chunk(&self, mut f: impl FnMut(usize, &[T])) {
        for (c, chunk) in self.chunks.iter().enumerate() {
            let chunk = chunk.load(Acquire);
            if !chunk.is_null() {
                // SAFETY: as in `get_owned`.
                f(c * CHUNK, unsafe {
                    std::slice::from_raw_parts(chunk, CHUNK)
                });
            }
        }
    }

    /// Visits every allocated cell as `(slot, cell)`.
    pub(crate) fn for_each(&self, mut f: impl FnMut(u32, &T)) {
        self.for_each_chunk(|first, cells| {
            for (i, cell) in cells.iter().enumerate() {
                f((first + i) as u32, cell);
            }
        });
    }

    fn allocated_chunks(&self) -> usize {
        self.chunks
            .iter()
            .filter(|c| !c.load(Relaxed).is_null())
            .count()
    }
}

impl<T> Drop for SlotTable<T> {
    fn drop(&mut self) {
        for chunk in &mut self.chunks {
            let chunk = *chunk.get_mut();
            if !chunk.is_null() {
                // SAFETY: allocated in `alloc_chunk` as a boxed slice of CHUNK cells.
                drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(chunk, CHUNK)) });
            }
        }
    }
}

/// One thread's cells.
pub(crate) struct Shard {
    pub(crate) counters: SlotTable<AtomicU64>,
    pub(crate) histograms: SlotTable<AtomicPtr<HistogramCells>>,
}

impl Shard {
    pub(crate) fn new() -> Self {
        Shard {
            counters: SlotTable::new(),
            histograms: SlotTable::new(),
        }
    }

    #[inline(always)]
    pub(crate) fn add(&self, slot: u32, n: u64) {
        let cell = self.counters.get_owned(slot);
        cell.store(cell.load(Relaxed).wrapping_add(n), Relaxed);
    }

    #[inline(always)]
    pub(crate) fn record(&self, slot: u32, value: u64, weight: u64) {
        self.histogram(slot).record_owned_weighted(value, weight);
    }

    /// This thread's cells of histogram `slot`, allocated on first use. They live as long as
    /// the shard, that is until the thread's locals are destroyed.
    #[inline(always)]
    pub(crate) fn histogram(&self, slot: u32) -> &HistogramCells {
        let cell = self.histograms.get_owned(slot);
        let mut cells = cell.load(Relaxed);
        if cells.is_null() {
            cells = alloc_histogram(cell);
        }
        // SAFETY: histogram cells live until the shard is dropped.
        unsafe { &*cells }
    }

    /// The cells of histogram `slot`, if this thread has recorded into it (snapshots).
    #[inline]
    pub(crate) fn histogram_if_present(&self, slot: u32) -> Option<&HistogramCells> {
        let cell = self.histograms.get_if_present(slot)?;
        let cells = cell.load(Acquire);
        // SAFETY: histogram cells live until the shard is dropped.
        (!cells.is_null()).then(|| unsafe { &*cells })
    }

    /// Visits every histogram this shard holds cells for.
    pub(crate) fn for_each_histogram(&self, mut f: impl FnMut(u32, &HistogramCells)) {
        self.histograms.for_each(|slot, cell| {
            let cells = cell.load(Acquire);
            if !cells.is_null() {
                // SAFETY: as in `record`.
                f(slot, unsafe { &*cells });
            }
        });
    }

    /// Zeroes every cell. Owner thread only, under the registry lock.
    pub(crate) fn reset_owned(&self) {
        self.counters.for_each(|_, c| c.store(0, Relaxed));
        self.for_each_histogram(|_, h| h.reset_owned());
    }

    /// Bytes this shard uses now, histogram cells included.
    pub(crate) fn memory_bytes(&self) -> usize {
        let mut bytes = std::mem::size_of::<Self>()
            + (self.counters.allocated_chunks() + self.histograms.allocated_chunks()) * CHUNK * 8;
        self.for_each_histogram(|_, h| bytes += h.memory_bytes());
        bytes
    }
}

#[cold]
#[inline(never)]
fn alloc_histogram(cell: &AtomicPtr<HistogramCells>) -> *mut HistogramCells {
    let fresh = Box::into_raw(Box::new(HistogramCells::new()));
    cell.store(fresh, Release);
    fresh
}

impl Drop for Shard {
    fn drop(&mut self) {
        self.histograms.for_each(|_, cell| {
            let cells = cell.load(Relaxed);
            if !cells.is_null() {
                // SAFETY: allocated in `alloc_histogram`; the shard is being dropped.
                drop(unsafe { Box::from_raw(cells) });
            }
        });
    }
}

/// Frees a shard that the registry has retired.
///
/// # Safety
/// `shard` came from `local_shard`'s `new_local` (a `Box`), is no longer reachable from any thread-local, and is freed once.
pub(crate) unsafe fn free(shard: *const Shard) {
    // SAFETY: see the function's contract.
    drop(unsafe { Box::from_raw(shard.cast_mut()) });
}

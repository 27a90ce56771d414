//! The per-thread shard protocol, checked under every interleaving with `loom`.
//!
//! The real shards live in thread-locals and a `static` registry, which loom cannot host, so
//! this is a faithful model of the protocol in `telemetry-core/src/engine/`: `shard.rs`, `registry/`,
//! `cells.rs`, and `src/testing.rs`, with the same orderings:
//! - the owner increments its cell with a relaxed load and store, without the lock;
//! - a snapshot takes the registry lock and adds the retired total to every live cell;
//! - a capture folds the owner's cell into the retired total and zeroes it, under the lock;
//! - a thread's exit folds its cell and removes the shard, under the lock; later increments
//!   (from other thread-local destructors) go straight to the retired total;
//! - a histogram group is published with a release store of its pointer after it is zeroed,
//!   and read by snapshots with an acquire load.
//!
//! Checked: snapshots never go backwards, the final total is exact (nothing lost or counted
//! twice), and a snapshot never reads a group before its zeroed buckets are visible.

use loom::sync::atomic::{AtomicPtr, AtomicU64, Ordering::*};
use loom::sync::{Arc, Mutex};

struct Shard {
    cell: AtomicU64,
    group: AtomicPtr<AtomicU64>,
}

struct Registry {
    live: Mutex<Vec<Arc<Shard>>>,
    retired: AtomicU64,
    retired_histogram: AtomicU64,
}

impl Registry {
    fn snapshot(&self) -> (u64, u64) {
        let live = self.live.lock().unwrap();
        let mut counter = self.retired.load(Relaxed);
        let mut histogram = self.retired_histogram.load(Relaxed);
        for shard in live.iter() {
            counter += shard.cell.load(Relaxed);
            let group = shard.group.load(Acquire);
            if !group.is_null() {
                // SAFETY: published with release after initialization; freed only at the end.
                histogram += unsafe { &*group }.load(Relaxed);
            }
        }
        (counter, histogram)
    }
}

/// The hot path: the owner's relaxed load and store.
fn increment(shard: &Shard) {
    shard.cell.store(shard.cell.load(Relaxed) + 1, Relaxed);
}

/// The histogram hot path: allocate the group on first use, then load and store.
fn record(shard: &Shard) {
    let mut group = shard.group.load(Relaxed);
    if group.is_null() {
        group = Box::into_raw(Box::new(AtomicU64::new(0)));
        shard.group.store(group, Release);
    }
    // SAFETY: allocated above or earlier by this thread.
    let bucket = unsafe { &*group };
    bucket.store(bucket.load(Relaxed) + 1, Relaxed);
}

fn fold(registry: &Registry, shard: &Shard) {
    registry
        .retired
        .fetch_add(shard.cell.load(Relaxed), Relaxed);
    let group = shard.group.load(Relaxed);
    if !group.is_null() {
        // SAFETY: owned by this (the owner) thread.
        registry
            .retired_histogram
            .fetch_add(unsafe { &*group }.load(Relaxed), Relaxed);
    }
}

#[test]
fn snapshots_are_monotonic_and_totals_exact_under_every_interleaving() {
    loom::model(|| {
        let registry = Arc::new(Registry {
            live: Mutex::new(Vec::new()),
            retired: AtomicU64::new(0),
            retired_histogram: AtomicU64::new(0),
        });
        let owner = {
            let registry = registry.clone();
            loom::thread::spawn(move || {
                let shard = Arc::new(Shard {
                    cell: AtomicU64::new(0),
                    group: AtomicPtr::new(std::ptr::null_mut()),
                });
                registry.live.lock().unwrap().push(shard.clone());
                increment(&shard);
                record(&shard);
                // A capture starts: fold and zero under the lock.
                {
                    let _live = registry.live.lock().unwrap();
                    fold(&registry, &shard);
                    shard.cell.store(0, Relaxed);
                    let group = shard.group.load(Relaxed);
                    // SAFETY: owned by this thread.
                    unsafe { &*group }.store(0, Relaxed);
                }
                increment(&shard);
                // The thread exits: fold and remove under the lock.
                {
                    let mut live = registry.live.lock().unwrap();
                    fold(&registry, &shard);
                    live.retain(|s| !Arc::ptr_eq(s, &shard));
                }
                // A thread-local destructor records after the shard is gone.
                registry.retired.fetch_add(1, Relaxed);
                let group = shard.group.load(Relaxed);
                // SAFETY: no snapshot can reach the shard any more; freed once.
                drop(unsafe { Box::from_raw(group) });
            })
        };
        let (first, first_histogram) = registry.snapshot();
        let (second, second_histogram) = registry.snapshot();
        assert!(second >= first, "counter went back: {first} then {second}");
        assert!(second_histogram >= first_histogram);
        assert!(second <= 3 && second_histogram <= 1);
        owner.join().unwrap();
        assert_eq!(
            registry.snapshot(),
            (3, 1),
            "nothing lost, nothing counted twice"
        );
    });
}

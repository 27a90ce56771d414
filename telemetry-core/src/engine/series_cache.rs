//! This thread's cache of labeled series: a metric and its label values' keys to the series'
//! core, so a labeled call finds its series with one hash lookup and no lock.

use crate::engine::labels::MAX_LABELS;
use crate::engine::registry::{CounterCore, HistogramCore, Storage};
use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::thread::LocalKey;

/// The bit that tells a labeled handle's family from a call site in a [`MetricId`].
const FAMILY_BIT: u64 = 1 << 63;

/// Which metric a cached series belongs to: a call site, by its address, or a labeled
/// handle's family, by its name's hash with the top bit set. Addresses never have that bit
/// (user-space addresses are below 2^63 on every 64-bit target, and 32-bit addresses have no
/// such bit), so the two never meet; and since each kind of series has a cache of its own, a
/// key that met another could only find another series of the same kind, never memory of
/// another type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct MetricId(u64);

impl MetricId {
    /// The id of a call site (or any other `static` that stands for one metric).
    pub(crate) fn of_site<T>(site: &'static T) -> Self {
        MetricId(site as *const T as usize as u64 & !FAMILY_BIT)
    }

    /// The id of the labeled family named `name`: every handle of that name shares it.
    pub(crate) fn of_family(name: &str) -> Self {
        let mut hasher = rustc_hash::FxHasher::default();
        std::hash::Hasher::write(&mut hasher, name.as_bytes());
        MetricId(std::hash::Hasher::finish(&hasher) | FAMILY_BIT)
    }
}

/// The cache key of one series: its metric and its label values' keys.
pub(crate) type SeriesKey = (MetricId, [u64; MAX_LABELS]);

type Cache<C> = RefCell<FxHashMap<SeriesKey, &'static C>>;

/// The most label sets one thread remembers of each kind; past it that cache starts over.
/// Memory per thread stays under ~0.7 MiB a kind whatever the input.
const CACHE_CAP: usize = 4096;

thread_local! {
    static COUNTERS: Cache<CounterCore> = RefCell::new(FxHashMap::default());
    static HISTOGRAMS: Cache<HistogramCore> = RefCell::new(FxHashMap::default());
}

/// A kind of series core that labeled calls find through this thread's cache.
pub(crate) trait CachedCore: Sync + 'static {
    /// This thread's cache of this kind.
    fn cache() -> &'static LocalKey<Cache<Self>>;
    /// The core in `storage`, if it is of this kind.
    fn of(storage: Storage) -> Option<&'static Self>;
}

impl CachedCore for CounterCore {
    fn cache() -> &'static LocalKey<Cache<Self>> {
        &COUNTERS
    }

    fn of(storage: Storage) -> Option<&'static Self> {
        match storage {
            Storage::Counter(core) => Some(core),
            _ => None,
        }
    }
}

impl CachedCore for HistogramCore {
    fn cache() -> &'static LocalKey<Cache<Self>> {
        &HISTOGRAMS
    }

    fn of(storage: Storage) -> Option<&'static Self> {
        match storage {
            Storage::Histogram(core) => Some(core),
            _ => None,
        }
    }
}

/// The cached series for `key`, or `resolve`'s answer, which is then cached if it is `Some`.
/// Falls back to `resolve` alone while the thread exits.
#[inline]
pub(crate) fn cached_series<C: CachedCore>(
    key: SeriesKey,
    resolve: impl FnOnce() -> Option<&'static C>,
) -> Option<&'static C> {
    let hit = C::cache()
        .try_with(|cache| cache.try_borrow().ok().and_then(|c| c.get(&key).copied()))
        .ok()
        .flatten();
    match hit {
        Some(series) => Some(series),
        None => cache_miss(key, resolve),
    }
}

#[cold]
#[inline(never)]
fn cache_miss<C: CachedCore>(
    key: SeriesKey,
    resolve: impl FnOnce() -> Option<&'static C>,
) -> Option<&'static C> {
    let series = resolve()?;
    let _ = C::cache().try_with(|cache| {
        if let Ok(mut cache) = cache.try_borrow_mut() {
            if cache.len() >= CACHE_CAP {
                cache.clear();
            }
            cache.insert(key, series);
        }
    });
    Some(series)
}

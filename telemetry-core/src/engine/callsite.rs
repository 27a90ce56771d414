//! Macro call sites: one `static` per `#[count_usage]` or `#[timed]` use.
//!
//! The static carries the site's metadata, built in `const` context, and caches the slot the
//! registry gave it. The first call resolves it on a cold path; every later call is one relaxed
//! load of the cached slot, a branch, and the shard write. Every site is also collected by the
//! linker into [`CALL_SITES`], so the registry lists metrics whose functions have not run yet.

use crate::engine::cells::HistogramCells;
use crate::engine::labels::{LabelSet, LabelValue};
use crate::engine::local_shard::{self, counter_add, histogram_record};
use crate::engine::metadata::{Location, MetricKind, Unit};
use crate::engine::registry::{
    self, CounterCore, HistogramCore, Loader, Loading, NO_SLOT, Request, SeriesRequest, Storage,
};
use crate::engine::sampling;
use crate::engine::series_cache::{CachedCore, MetricId, cached_series};
use crate::engine::switch;
use crate::engine::tick_clock;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering::*};

/// Every macro call site in the program, gathered at link time.
#[linkme::distributed_slice]
pub static CALL_SITES: [CallSite];

/// Puts a call site's `static` into [`CALL_SITES`]. Used by the macros' expansions.
///
/// On Linux-like and BSD targets it writes the section attribute linkme would write itself
/// (linkme 0.3.37 names the section there `linkme_` and the slice's name, and marks elements
/// `#[used]`; its `used_linker` feature, which this crate does not enable, would change that),
/// saving each site two `macro_rules!` hops and five `cfg_attr`s at compile time. Elsewhere
/// (macOS, Windows, illumos, whose section names linkme derives differently) it goes through
/// the `macro_rules!` linkme generates for the slice. `tests/registry.rs` checks that sites are
/// collected.
#[cfg(any(
    target_os = "none",
    target_os = "linux",
    target_os = "android",
    target_os = "fuchsia",
    target_os = "psp",
    target_os = "freebsd",
    target_os = "openbsd"
))]
#[doc(hidden)]
#[macro_export]
macro_rules! __call_site {
    ($($item:tt)*) => {
        #[used]
        #[unsafe(link_section = "linkme_CALL_SITES")]
        $($item)*
    };
}

#[cfg(not(any(
    target_os = "none",
    target_os = "linux",
    target_os = "android",
    target_os = "fuchsia",
    target_os = "psp",
    target_os = "freebsd",
    target_os = "openbsd"
)))]
#[doc(hidden)]
#[macro_export]
macro_rules! __call_site {
    ($($item:tt)*) => {
        $crate::__private::CALL_SITES! {
            #![linkme_macro = $crate::__private::CALL_SITES]
            $($item)*
        }
    };
}

/// The values one label of a call site can take, from its type. Made by the macros only; not a
/// stable API.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct LabelDomain {
    /// The type's listed values, if it lists them.
    pub values: Option<&'static [&'static str]>,
    /// Why the type's values carry no personal data.
    pub safe_because: &'static str,
}

impl LabelDomain {
    /// The values of `T`.
    pub const fn of<T: LabelValue + ?Sized>() -> Self {
        LabelDomain {
            values: T::VALUES.list(),
            safe_because: T::SAFE_BECAUSE,
        }
    }

    /// A string literal's one value.
    pub const fn literal(values: &'static [&'static str]) -> Self {
        LabelDomain {
            values: Some(values),
            safe_because: crate::engine::labels::LiteralLabel::SAFE_BECAUSE,
        }
    }
}

/// The state of a call site's cache: 0 = not resolved yet, otherwise `slot + 1`
/// (`NO_SLOT + 1` wraps to 0 and is stored as [`SHARED`]).
const UNRESOLVED: u32 = 0;
const SHARED: u32 = u32::MAX;

/// One macro use. Built by the macros only; not a stable API.
///
/// Its metadata is one string, so that the `static` the macro emits per use is cheap to compile
/// (each field of a `static` is const-evaluated and validated in the user's crate): see
/// [`CallSite::new`] for its layout. It is decoded only on cold paths (registration, listing).
#[doc(hidden)]
pub struct CallSite {
    meta: &'static str,
    /// Each label's values, known at link time (empty for an unlabeled site).
    domains: &'static [LabelDomain],
    /// `slot + 1`, [`UNRESOLVED`] or [`SHARED`].
    cached_slot: AtomicU32,
    /// The `&'static CounterCore` or `&'static HistogramCore`, once resolved.
    core: AtomicPtr<()>,
}

/// The fields of a call site's metadata string, separated by this byte (ASCII unit separator).
pub(crate) const META_SEPARATOR: char = '\x1f';

/// A call site's metadata, decoded.
pub(crate) struct SiteMeta {
    pub(crate) kind: MetricKind,
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
    /// Label names; empty for an unlabeled site.
    pub(crate) labels: Vec<&'static str>,
    pub(crate) max_series: usize,
    /// `#[timed(sample = N)]`'s `N`.
    pub(crate) sample_one_in: Option<u32>,
    pub(crate) location: Location,
}

impl SiteMeta {
    pub(crate) fn request(&self) -> Request<'_> {
        Request {
            name: self.name,
            kind: self.kind,
            unit: match self.kind {
                MetricKind::Histogram => Unit::Nanoseconds,
                _ => Unit::None,
            },
            description: self.description,
            location: self.location.clone(),
            labels: &self.labels,
            max_series: self.max_series,
            sample_one_in: self.sample_one_in,
        }
    }
}

impl CallSite {
    /// A site from its metadata: `kind`, `max_series`, `labels`, `name`, `description`,
    /// `module_path`, `file` and `line`, joined by [`META_SEPARATOR`]. `kind` is `counter` or
    /// `histogram` (whose unit is nanoseconds); `max_series` is empty for the default; `labels`
    /// are comma-separated names. The macros check every field; a malformed string still
    /// decodes (to a counter with whatever fields are present), it never panics.
    pub const fn new(meta: &'static str) -> Self {
        Self::labeled(meta, &[])
    }

    /// A labeled site: `domains` lists each label's values (by its type), so the manifest
    /// shows them before the site first runs.
    pub const fn labeled(meta: &'static str, domains: &'static [LabelDomain]) -> Self {
        CallSite {
            meta,
            domains,
            cached_slot: AtomicU32::new(UNRESOLVED),
            core: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// Each label's closed set of values, where its type has one.
    pub(crate) fn possible_values(&self) -> Vec<Option<&'static [&'static str]>> {
        self.domains.iter().map(|d| d.values).collect()
    }

    /// Each label type's reason its values are safe.
    pub(crate) fn reasons(&self) -> Vec<&'static str> {
        self.domains.iter().map(|d| d.safe_because).collect()
    }

    /// Decodes the metadata string.
    pub(crate) fn meta(&self) -> SiteMeta {
        let (rest, line) = self
            .meta
            .rsplit_once(META_SEPARATOR)
            .unwrap_or((self.meta, ""));
        let mut fields = rest.splitn(7, META_SEPARATOR);
        let mut next = || fields.next().unwrap_or("");
        // `histogram~N` for `#[timed(sample = N)]`.
        let kind_field = next();
        let (kind, sample_one_in) = match kind_field.split_once('~') {
            Some((kind, one_in)) => (kind, one_in.parse().ok()),
            None => (kind_field, None),
        };
        let kind = match kind {
            "histogram" => MetricKind::Histogram,
            _ => MetricKind::Counter,
        };
        let max_series = next()
            .parse()
            .unwrap_or(crate::engine::labels::DEFAULT_MAX_SERIES);
        let labels = next().split(',').filter(|l| !l.is_empty()).collect();
        let name = next();
        let description = next();
        let module_path = next();
        // The file is the rest: a path could hold the separator, the other fields cannot.
        let file = next();
        SiteMeta {
            kind,
            name,
            description,
            labels,
            max_series,
            sample_one_in,
            location: Location {
                module_path: module_path.to_owned(),
                file: file.to_owned(),
                line: line.parse().unwrap_or(0),
            },
        }
    }

    /// The site's kind, without decoding the rest.
    fn kind(&self) -> MetricKind {
        if self.meta.starts_with("histogram") {
            MetricKind::Histogram
        } else {
            MetricKind::Counter
        }
    }

    pub(crate) fn cached(&self) -> Option<Storage> {
        let core = self.core.load(Acquire);
        if core.is_null() {
            return None;
        }
        // SAFETY: `cache` stores a pointer of the type that matches `self.kind`.
        Some(match self.kind() {
            MetricKind::Counter => Storage::Counter(unsafe { &*core.cast::<CounterCore>() }),
            _ => Storage::Histogram(unsafe { &*core.cast::<HistogramCore>() }),
        })
    }

    /// Stores the resolved storage (the same for every caller: registration is idempotent).
    pub(crate) fn cache(&'static self, storage: &Storage) {
        let (core, slot) = match storage {
            Storage::Counter(c) => ((*c as *const CounterCore).cast::<()>(), c.slot),
            Storage::Histogram(h) => ((*h as *const HistogramCore).cast::<()>(), h.slot),
            // The macros only make counter and histogram sites.
            Storage::Gauge(_) | Storage::CallbackGauge(_) => return,
        };
        self.core.store(core.cast_mut(), Release);
        let cached = if slot == NO_SLOT { SHARED } else { slot + 1 };
        self.cached_slot.store(cached, Release);
    }

    /// The storage of an unlabeled site: cached, or registered now and cached.
    fn resolve(&'static self) -> Storage {
        if let Some(storage) = self.cached() {
            return storage;
        }
        let storage = registry::registry()
            .register_or_keep_apart(&self.meta().request(), SeriesRequest::unlabeled());
        self.cache(&storage);
        storage
    }

    fn counter_core(&'static self) -> &'static CounterCore {
        match self.resolve() {
            Storage::Counter(core) => core,
            _ => unreachable!("a counter call site resolves to a counter"),
        }
    }

    fn histogram_core(&'static self) -> &'static HistogramCore {
        match self.resolve() {
            Storage::Histogram(core) => core,
            _ => unreachable!("a histogram call site resolves to a histogram"),
        }
    }

    /// Counts one call (`#[count_usage]`).
    #[inline(always)]
    pub fn increment(&'static self) {
        if !switch::recording() {
            return;
        }
        let cached = self.cached_slot.load(Relaxed);
        if cached.wrapping_sub(1) < SHARED - 1 {
            counter_add(cached - 1, 1, || self.counter_core());
        } else {
            self.increment_cold();
        }
    }

    #[cold]
    #[inline(never)]
    fn increment_cold(&'static self) {
        let core = self.counter_core();
        counter_add(core.slot, 1, || core);
    }

    /// Records one duration in nanoseconds (`#[timed]`).
    #[inline(always)]
    pub fn record(&'static self, nanos: u64) {
        self.record_weighted(nanos, 1);
    }

    /// Records one duration in nanoseconds `weight` times (a sampled timer's observation).
    #[inline(always)]
    fn record_weighted(&'static self, nanos: u64, weight: u64) {
        if !switch::recording() {
            return;
        }
        let cached = self.cached_slot.load(Relaxed);
        if cached.wrapping_sub(1) < SHARED - 1 {
            histogram_record(cached - 1, nanos, weight, || self.histogram_core());
        } else {
            self.record_cold(nanos, weight);
        }
    }

    /// Records the time since `start` (a clock reading) through the call site.
    #[cold]
    #[inline(never)]
    fn record_since(&'static self, start: u64, weight: u64) {
        self.record_weighted(tick_clock::elapsed_nanos(start), weight);
    }

    #[cold]
    #[inline(never)]
    fn record_cold(&'static self, nanos: u64, weight: u64) {
        let core = self.histogram_core();
        histogram_record(core.slot, nanos, weight, || core);
    }

    /// Starts timing a call; the returned guard records the elapsed time when dropped, also on
    /// early return, `?` and unwinding. It may be dropped on another thread (`async fn`s).
    #[inline(always)]
    pub fn start_timer(&'static self) -> TimerGuard {
        self.start_timer_weighted(switch::recording(), 1)
    }

    /// Starts timing 1 call in `one_in` on average (`#[timed(sample = N)]`, see
    /// `#[timed]`); a timed call is recorded `one_in` times.
    #[inline(always)]
    pub fn start_sampled_timer(&'static self, one_in: u32) -> TimerGuard {
        self.start_timer_weighted(
            switch::recording() && sampling::take(one_in),
            u64::from(one_in),
        )
    }

    #[inline(always)]
    fn start_timer_weighted(&'static self, timed: bool, weight: u64) -> TimerGuard {
        if !timed {
            return TimerGuard {
                site: None,
                start: 0,
                weight,
            };
        }
        TimerGuard {
            site: Some(self),
            start: tick_clock::now(),
            weight,
        }
    }

    /// Starts timing a synchronous call: finds this thread's cells first (outside the timed
    /// span), so that the guard's drop is only the clock read and the bucket update. The guard
    /// is not `Send`: a synchronous call starts and ends on one thread.
    #[inline(always)]
    pub fn start_local_timer(&'static self) -> LocalTimerGuard {
        self.start_local_timer_weighted(switch::recording(), 1)
    }

    /// Starts timing a synchronous call, 1 in `one_in` on average (`#[timed(sample = N)]`, see
    /// `#[timed]`); a timed call is recorded `one_in` times.
    #[inline(always)]
    pub fn start_sampled_local_timer(&'static self, one_in: u32) -> LocalTimerGuard {
        self.start_local_timer_weighted(
            switch::recording() && sampling::take(one_in),
            u64::from(one_in),
        )
    }

    #[inline(always)]
    fn start_local_timer_weighted(&'static self, timed: bool, weight: u64) -> LocalTimerGuard {
        if !timed {
            return LocalTimerGuard {
                target: TimerTarget::Off,
                start: 0,
                weight,
            };
        }
        let cached = self.cached_slot.load(Relaxed);
        let cells = if cached.wrapping_sub(1) < SHARED - 1 {
            local_shard::with_local(|s| s.histogram(cached - 1) as *const HistogramCells)
        } else {
            None
        };
        let target = match cells {
            Some(cells) => TimerTarget::Owned(cells),
            None => TimerTarget::Shared(self),
        };
        LocalTimerGuard {
            target,
            start: tick_clock::now(),
            weight,
        }
    }
}

/// Where a [`LocalTimerGuard`] records.
enum TimerTarget {
    /// This thread's cells (the common case).
    Owned(*const HistogramCells),
    /// Through the call site (first call, no slot, or the thread is exiting).
    Shared(&'static CallSite),
    /// Nowhere: recording is off.
    Off,
}

/// Records the time since `start` into `cells`. Out of line, so that the guard's drop (a
/// match and a call) is inlined at every timed call and recording off costs a load and a
/// branch.
///
/// # Safety
/// `cells` are this thread's and alive.
#[inline(never)]
unsafe fn record_owned_since(cells: *const HistogramCells, start: u64, weight: u64) {
    let nanos = tick_clock::elapsed_nanos(start);
    // SAFETY: the caller's.
    unsafe { &*cells }.record_owned_weighted(nanos, weight);
}

/// Records the time since its creation when dropped, on the thread that created it.
pub struct LocalTimerGuard {
    target: TimerTarget,
    start: u64,
    /// How many calls the observation stands for (1 unless sampled).
    weight: u64,
}

impl Drop for LocalTimerGuard {
    #[inline(always)]
    fn drop(&mut self) {
        match self.target {
            // SAFETY: the cells belong to this thread's shard, which outlives this call: the
            // guard is not `Send` and lives in one synchronous call.
            TimerTarget::Owned(cells) => unsafe {
                record_owned_since(cells, self.start, self.weight)
            },
            // Rare (first call, no slot, thread exiting): out of line, to keep the drop small.
            TimerTarget::Shared(site) => site.record_since(self.start, self.weight),
            TimerTarget::Off => {}
        }
    }
}

impl CallSite {
    /// The series of a labeled site for `labels`: from this thread's cache, or registered on
    /// first use.
    #[inline]
    fn series<C: CachedCore, L: LabelSet>(&'static self, labels: &L) -> &'static C {
        let key = (MetricId::of_site(self), labels.keys());
        cached_series(key, || Some(self.resolve_series(labels)))
            .unwrap_or_else(|| self.resolve_series(labels))
    }

    #[cold]
    #[inline(never)]
    fn resolve_series<C: CachedCore, L: LabelSet>(&'static self, labels: &L) -> &'static C {
        let request = SeriesRequest {
            values: labels.texts(),
            possible: L::possible_values(),
            reasons: L::reasons(),
        };
        let storage = registry::registry().register_or_keep_apart(&self.meta().request(), request);
        // A site registers its own kind (a conflicting name is kept apart under another).
        C::of(storage).unwrap_or_else(|| unreachable!("a call site resolves to its own kind"))
    }

    /// Counts one call into the series of `labels` (`#[count_usage(labels(...))]`).
    #[inline]
    pub fn increment_labeled<L: LabelSet>(&'static self, labels: L) {
        if !switch::recording() {
            return;
        }
        let core: &'static CounterCore = self.series(&labels);
        counter_add(core.slot, 1, || core);
    }

    /// Starts timing a call into the series of `labels` (`#[timed(labels(...))]`).
    #[inline]
    pub fn start_timer_labeled<L: LabelSet>(&'static self, labels: L) -> LabeledTimerGuard {
        self.start_timer_labeled_weighted(labels, switch::recording(), 1)
    }

    /// Starts timing 1 call in `one_in` on average into the series of `labels`
    /// (`#[timed(sample = N, labels(...))]`; see `#[timed]`).
    #[inline]
    pub fn start_sampled_timer_labeled<L: LabelSet>(
        &'static self,
        one_in: u32,
        labels: L,
    ) -> LabeledTimerGuard {
        self.start_timer_labeled_weighted(
            labels,
            switch::recording() && sampling::take(one_in),
            u64::from(one_in),
        )
    }

    #[inline]
    fn start_timer_labeled_weighted<L: LabelSet>(
        &'static self,
        labels: L,
        timed: bool,
        weight: u64,
    ) -> LabeledTimerGuard {
        if !timed {
            return LabeledTimerGuard {
                core: None,
                start: 0,
                weight,
            };
        }
        let core: &'static HistogramCore = self.series(&labels);
        LabeledTimerGuard {
            core: Some(core),
            start: tick_clock::now(),
            weight,
        }
    }
}

/// Records the time since its creation into one series of a labeled histogram when dropped.
pub struct LabeledTimerGuard {
    /// `None` when recording is off or the call is not sampled.
    core: Option<&'static HistogramCore>,
    start: u64,
    /// How many calls the observation stands for (1 unless sampled).
    weight: u64,
}

impl Drop for LabeledTimerGuard {
    #[inline]
    fn drop(&mut self) {
        if let Some(core) = self.core {
            histogram_record(
                core.slot,
                tick_clock::elapsed_nanos(self.start),
                self.weight,
                || core,
            );
        }
    }
}

/// Records the time since its creation into its call site's histogram when dropped.
pub struct TimerGuard {
    /// `None` when recording is off or the call is not sampled.
    site: Option<&'static CallSite>,
    start: u64,
    /// How many calls the observation stands for (1 unless sampled).
    weight: u64,
}

impl Drop for TimerGuard {
    #[inline(always)]
    fn drop(&mut self) {
        if let Some(site) = self.site {
            site.record_weighted(tick_clock::elapsed_nanos(self.start), self.weight);
        }
    }
}

/// Registers every call site the linker collected, the first time the registry is locked:
/// unlabeled ones get their storage, labeled ones are declared with their label values.
fn load_call_sites(loading: &mut Loading<'_>) {
    for site in CALL_SITES {
        let meta = site.meta();
        if meta.labels.is_empty() {
            if site.cached().is_none() {
                let storage =
                    loading.register_or_keep_apart(&meta.request(), SeriesRequest::unlabeled());
                site.cache(&storage);
            }
        } else if let Err(error) = loading.declare(
            &meta.request(),
            &SeriesRequest {
                values: Vec::new(),
                possible: site.possible_values(),
                reasons: site.reasons(),
            },
            false,
        ) {
            loading.defer(error.to_string());
        }
    }
}

#[linkme::distributed_slice(registry::LOADERS)]
static CALL_SITE_LOADER: Loader = Loader {
    order: 0,
    load: load_call_sites,
};

//! Family names without collisions: two metrics whose names map to the same family or sample
//! name (`a.b` and `a_b`) are told apart with `_2`, `_3`, ..., and the names of one render are
//! kept for the next.

use super::names::push_family;
use crate::engine::metadata::{MetricKind, Unit};
use crate::engine::snapshot::Snapshot;
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use std::hash::Hasher as _;
use std::ops::Range;
use std::sync::Arc;

/// The names a render's first attempt has written so far, to find a collision without
/// building any name twice.
///
/// Each name written is keyed by its root and one bit: a name ending with `_total`,
/// `_bucket`, `_sum` or `_count` by the name without it and that suffix's bit, any other
/// name by itself and bit 0. The key is a function of the name and gives the name back, so
/// two names are equal exactly when their keys are; the sample names of a family share the
/// family's root, so most metrics need one lookup. Roots are compared by a 64-bit hash: two
/// roots with the same hash count as a collision, which at worst takes the slower way.
pub(super) struct FirstAttempt {
    roots: FxHashMap<u64, u8>,
}

impl FirstAttempt {
    /// Room for the names of `metrics` metrics.
    pub(super) fn with_capacity(metrics: usize) -> Self {
        FirstAttempt {
            roots: FxHashMap::with_capacity_and_hasher(metrics + metrics / 4, Default::default()),
        }
    }

    /// Claims the names a family of `kind` named `family` writes: false if one of them was
    /// written before.
    pub(super) fn claim(&mut self, family: &[u8], kind: MetricKind) -> bool {
        const SUFFIXES: [&[u8]; 4] = [b"_total", b"_bucket", b"_sum", b"_count"];
        let samples: u8 = match kind {
            MetricKind::Counter => 0b10,
            MetricKind::Gauge => 0,
            MetricKind::Histogram => 0b11100,
        };
        let own = SUFFIXES
            .iter()
            .enumerate()
            .find_map(|(i, s)| Some((family.strip_suffix(*s)?, 0b10 << i)));
        match own {
            None => self.claim_root(family, samples | 1),
            Some((root, bit)) => {
                (samples == 0 || self.claim_root(family, samples)) && self.claim_root(root, bit)
            }
        }
    }

    fn claim_root(&mut self, root: &[u8], bits: u8) -> bool {
        let mut hasher = FxHasher::default();
        hasher.write(root);
        hasher.write_usize(root.len());
        let slot = self.roots.entry(hasher.finish()).or_insert(0);
        let free = *slot & bits == 0;
        *slot |= bits;
        free
    }
}

/// Family names of every metric of `snapshot` (counters, then gauges, then histograms,
/// each in name order), with collisions resolved: each metric, in that order, gets the
/// first attempt whose names are all still free. Returns the names and where each is.
fn plan(prefix: &str, snapshot: &Snapshot) -> (Vec<u8>, Vec<Range<usize>>) {
    let metrics = plan_order(snapshot);
    let mut names = Vec::new();
    let mut families = Vec::with_capacity(snapshot.len());
    let mut taken: FxHashSet<Vec<u8>> = FxHashSet::default();
    for (kind, name, unit) in metrics {
        let mut attempt = 1;
        loop {
            let family = push_family(&mut names, prefix, name, kind, unit, attempt);
            let sample = sample_names(kind, &names[family.clone()]);
            if attempt > 1000 || sample.iter().all(|n| !taken.contains(n)) {
                taken.extend(sample);
                families.push(family);
                break;
            }
            attempt += 1;
        }
    }
    (names, families)
}

/// The metrics of `snapshot` in the order they are written and named.
fn plan_order(snapshot: &Snapshot) -> impl Iterator<Item = (MetricKind, &Arc<str>, Unit)> {
    (snapshot.counters.iter())
        .map(|(n, f)| (MetricKind::Counter, n, f.unit))
        .chain((snapshot.gauges.iter()).map(|(n, f)| (MetricKind::Gauge, n, f.unit)))
        .chain((snapshot.histograms.iter()).map(|(n, f)| (MetricKind::Histogram, n, f.unit)))
}

/// The family names of one render, kept for the next: working them out (sanitizing every
/// name and checking that no two collide) is a third of the time of a render.
#[derive(Default)]
pub(crate) struct FamilyNames {
    /// The prefix they were worked out with.
    prefix: String,
    /// The metrics they are for, in plan order. The names are kept alive here, so that
    /// comparing their addresses is sound (no other string can take the same address).
    metrics: Vec<(MetricKind, Arc<str>, Unit)>,
    names: Vec<u8>,
    families: Vec<Range<usize>>,
}

impl FamilyNames {
    /// The family names of `snapshot`'s metrics under `prefix`, with collisions resolved.
    pub(super) fn plan(prefix: &str, snapshot: &Snapshot) -> Self {
        let (names, families) = plan(prefix, snapshot);
        FamilyNames {
            prefix: prefix.to_owned(),
            metrics: plan_order(snapshot)
                .map(|(kind, name, unit)| (kind, name.clone(), unit))
                .collect(),
            names,
            families,
        }
    }

    /// The names, and where each metric's family name is in them (in plan order).
    pub(super) fn names(&self) -> (&[u8], &[Range<usize>]) {
        (&self.names, &self.families)
    }

    /// Whether these are the family names of `snapshot`'s metrics under `exposition`: the same
    /// prefix and the same metrics (the same name strings, which a refreshed snapshot shares
    /// with the registry, kinds and units), without comparing any text but the prefix.
    pub(super) fn holds(&self, prefix: &str, snapshot: &Snapshot) -> bool {
        self.prefix == prefix
            && self.metrics.len() == snapshot.len()
            && plan_order(snapshot)
                .zip(&self.metrics)
                .all(|((kind, name, unit), (k, n, u))| {
                    kind == *k && unit == *u && Arc::ptr_eq(name, n)
                })
    }
}

/// Every name a family of `kind` named `family` writes (family and sample names).
fn sample_names(kind: MetricKind, family: &[u8]) -> Vec<Vec<u8>> {
    let with = |suffix: &[u8]| [family, suffix].concat();
    match kind {
        MetricKind::Counter => vec![family.to_vec(), with(b"_total")],
        MetricKind::Gauge => vec![family.to_vec()],
        MetricKind::Histogram => vec![
            family.to_vec(),
            with(b"_bucket"),
            with(b"_sum"),
            with(b"_count"),
        ],
    }
}

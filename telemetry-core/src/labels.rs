//! Labels whose types are safe: which values may label a series, and the per-thread cache that
//! maps a label set to its series without a lock.
//!
//! Only types that implement [`LabelValue`] may be label values: `bool`, the integer types,
//! `&'static str` (text fixed at compile time), enums with `#[derive(LabelValue)]`, and
//! [`crate::anonymize::HashedLabel`] (an explicit, keyed hash of a name). `String`, a borrowed
//! `&str`, IP and socket addresses, paths and [`crate::Pii`] do not: free text and addresses
//! are where personal data hides, so using one is a compile error that says what to use instead.
//! (A non-`'static` `&str` is refused by the borrow checker rather than with that message.)

use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::cell::RefCell;

/// The most labels one metric may have.
pub const MAX_LABELS: usize = 8;

/// The default cap on the number of series (label sets) of one metric. Label sets past it are
/// recorded into one overflow series whose every label value is [`OVERFLOW_LABEL_VALUE`], and
/// each such label set is counted in `telemetry.series_overflow{metric="..."}`.
pub const DEFAULT_MAX_SERIES: usize = 256;

/// The label value of the overflow series.
pub const OVERFLOW_LABEL_VALUE: &str = "__overflow__";

/// A value that may label a series.
///
/// Implemented for `bool`, integers, `&'static str`, `&T` where `T: LabelValue`, and enums with
/// `#[derive(LabelValue)]` (each variant's name, or its `#[label(rename = "...")]`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a telemetry label value: it may carry personal data or take unbounded values",
    label = "not a safe label value",
    note = "label values are `bool`, integers, `&'static str` and enums with `#[derive(LabelValue)]`; \
            map this value to such an enum, or hash it explicitly with `telemetry_core::anonymize::HashedLabel::new(..)`"
)]
pub trait LabelValue {
    /// A cache key that tells this value apart from the other values of its type. Two values
    /// with equal keys must have equal [`label_text`](Self::label_text).
    fn label_key(&self) -> u64;

    /// The value as it appears in snapshots and reports.
    fn label_text(&self) -> Cow<'static, str>;

    /// Every value the type can take, when that is a small closed set (enums, `bool`); shown
    /// in the collected-data manifest.
    fn possible_values() -> Option<&'static [&'static str]>
    where
        Self: Sized,
    {
        None
    }
}

impl<T: LabelValue> LabelValue for &T {
    #[inline]
    fn label_key(&self) -> u64 {
        (**self).label_key()
    }
    fn label_text(&self) -> Cow<'static, str> {
        (**self).label_text()
    }
    fn possible_values() -> Option<&'static [&'static str]> {
        T::possible_values()
    }
}

impl LabelValue for bool {
    #[inline]
    fn label_key(&self) -> u64 {
        *self as u64
    }
    fn label_text(&self) -> Cow<'static, str> {
        Cow::Borrowed(if *self { "true" } else { "false" })
    }
    fn possible_values() -> Option<&'static [&'static str]> {
        Some(&["false", "true"])
    }
}

macro_rules! integer_labels {
    ($($t:ty),*) => {$(
        impl LabelValue for $t {
            #[inline]
            fn label_key(&self) -> u64 {
                *self as u64
            }
            fn label_text(&self) -> Cow<'static, str> {
                Cow::Owned(self.to_string())
            }
        }
    )*};
}
integer_labels!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

impl LabelValue for &'static str {
    /// The text's address and length: equal for every use of one literal, and cheap. Two
    /// literals with the same text have different keys but the same series.
    #[inline]
    fn label_key(&self) -> u64 {
        (self.as_ptr() as u64).rotate_left(16) ^ self.len() as u64
    }
    fn label_text(&self) -> Cow<'static, str> {
        Cow::Borrowed(self)
    }
}

/// A tuple of label values, one per label name of a metric (up to [`MAX_LABELS`]).
pub trait LabelSet {
    /// The number of values.
    const LEN: usize;

    /// The values' cache keys, padded with zeros.
    fn keys(&self) -> [u64; MAX_LABELS];

    /// The values' texts, in order.
    fn texts(&self) -> Vec<Cow<'static, str>>;

    /// Each value type's closed set of values, if it has one.
    fn possible_values() -> Vec<Option<&'static [&'static str]>>;
}

macro_rules! label_sets {
    ($( ($($t:ident $i:tt),*) )*) => {$(
        impl<$($t: LabelValue),*> LabelSet for ($($t,)*) {
            const LEN: usize = [$($i),*].len();
            #[inline]
            fn keys(&self) -> [u64; MAX_LABELS] {
                let mut keys = [0; MAX_LABELS];
                $( keys[$i] = self.$i.label_key(); )*
                keys
            }
            fn texts(&self) -> Vec<Cow<'static, str>> {
                vec![$(self.$i.label_text()),*]
            }
            fn possible_values() -> Vec<Option<&'static [&'static str]>> {
                vec![$($t::possible_values()),*]
            }
        }
    )*};
}
label_sets! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
}

/// The cache key of one series: the metric's identity (the address of its call site or
/// handle family, which lives for the whole process) and its label values' keys.
type SeriesKey = (usize, [u64; MAX_LABELS]);

/// The most label sets one thread remembers; past it the cache starts over. Memory per thread
/// stays under ~0.5 MiB whatever the input.
const CACHE_CAP: usize = 4096;

thread_local! {
    static SERIES_CACHE: RefCell<FxHashMap<SeriesKey, usize>> = RefCell::new(FxHashMap::default());
}

/// The cached series (an address of a leaked series core) for `key`, or `resolve`'s answer,
/// which is then cached if it is `Some`. Falls back to `resolve` alone while the thread exits.
#[inline]
pub(crate) fn cached_series(
    key: SeriesKey,
    resolve: impl FnOnce() -> Option<usize>,
) -> Option<usize> {
    let hit = SERIES_CACHE
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
fn cache_miss(key: SeriesKey, resolve: impl FnOnce() -> Option<usize>) -> Option<usize> {
    let series = resolve()?;
    let _ = SERIES_CACHE.try_with(|cache| {
        if let Ok(mut cache) = cache.try_borrow_mut() {
            if cache.len() >= CACHE_CAP {
                cache.clear();
            }
            cache.insert(key, series);
        }
    });
    Some(series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_texts() {
        assert_eq!((true, 7u8, "x").texts(), vec!["true", "7", "x"]);
        assert_eq!(<(bool, u8)>::LEN, 2);
        assert_eq!(
            <(bool,)>::possible_values(),
            vec![Some(&["false", "true"][..])]
        );
        let k = (1u32, false).keys();
        assert_eq!(&k[..3], &[1, 0, 0]);
        assert_ne!("abc".label_key(), "abd".label_key());
        assert_eq!((-1i32).label_text(), "-1");
    }
}

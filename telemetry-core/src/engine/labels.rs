//! Labels whose types are safe: which values may label a series, and how a label set is keyed
//! (this thread's cache from a key to its series is `series_cache`).
//!
//! Only types that implement [`LabelValue`] may be label values, and every one of them has a
//! closed set of values, declared in the code: `bool`, `u8`, [`Bounded`] integers (a declared
//! range, anything above it recorded as `other`), [`Pow2Bucket`] (the power of two at or below
//! a number), enums with `#[derive(LabelValue)]`, string literals written in an attribute's
//! `labels(..)`, and [`crate::privacy::anonymize::HashedLabel`] (an explicit, keyed hash of a name, the
//! one open set). Text of any other kind (`String`, `&str`, `&'static str`, which a program can
//! make at run time with `String::leak` or a `LazyLock<String>`), wide integers (an IPv4
//! address fits a `u32`), IP and socket addresses, paths and [`crate::Pii`] are not: using one
//! is a compile error that says what to use instead.

use std::borrow::Cow;

/// The most labels one metric may have.
pub const MAX_LABELS: usize = telemetry_rules::MAX_LABELS;

/// The default cap on the number of series (label sets) of one metric. Label sets past it are
/// recorded into one overflow series whose every label value is [`OVERFLOW_LABEL_VALUE`], and
/// each such label set is counted in `telemetry.series_overflow{metric="..."}`.
pub const DEFAULT_MAX_SERIES: usize = 256;

/// The label value of the overflow series.
pub const OVERFLOW_LABEL_VALUE: &str = "__overflow__";

/// A value that may label a series.
///
/// Implemented for `bool`, `u8`, [`Bounded`], [`Pow2Bucket`], `&T` where `T: LabelValue`,
/// [`crate::privacy::anonymize::HashedLabel`], and enums with `#[derive(LabelValue)]` (each variant's
/// name, or its `#[label(rename = "...")]`). A hand-written implementation states why its
/// values carry no personal data in [`SAFE_BECAUSE`](Self::SAFE_BECAUSE), which the manifest
/// shows.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a telemetry label value: it may carry personal data or take unbounded values",
    label = "not a safe label value",
    note = "label values come from sets declared in the code: `bool`, `u8`, `telemetry_core::Bounded<MAX>` and \
            `telemetry_core::Pow2Bucket` for numbers, enums with `#[derive(LabelValue)]` for text (a string literal \
            works in `labels(..)`), or an explicit keyed hash with `telemetry_core::anonymize::HashedLabel::new(..)`"
)]
pub trait LabelValue {
    /// Why this type's values carry no personal data, in words. The derives and this crate's
    /// implementations fill it in; a hand-written implementation must state it (a greppable
    /// vouching marker), and the manifest shows it beside each label of the type.
    const SAFE_BECAUSE: &'static str;

    /// A cache key that tells this value apart from the other values of its type. Two values
    /// with equal keys must have equal [`label_text`](Self::label_text).
    fn label_key(&self) -> u64;

    /// The value as it appears in snapshots and reports: one of [`VALUES`](Self::VALUES) if
    /// they are listed (any other text is recorded as `other`).
    fn label_text(&self) -> Cow<'static, str>;

    /// Every value the type can take, shown in the collected-data manifest. A hand-written
    /// implementation lists them, `Values::listed(&["a", "b"])`: a constant, so a list made at
    /// run time cannot be given, and a [`label_text`](Self::label_text) outside it is recorded
    /// as `other`.
    const VALUES: Values;

    /// The label text of a value that arrives as text from another instrumentation API (the
    /// `metrics` bridge): `text` if it is one of [`VALUES`](Self::VALUES), `other`
    /// ([`OTHER_LABEL_VALUE`]) otherwise, so the type's closed set holds whatever comes in.
    /// This crate's number and hash types read the text as their input instead (a number in
    /// range, a power of two, a keyed hash).
    fn bridged_text(text: &str) -> Cow<'static, str>
    where
        Self: Sized,
    {
        match Self::VALUES
            .list()
            .and_then(|list| list.iter().find(|v| **v == text))
        {
            Some(value) => Cow::Borrowed(value),
            None => Cow::Borrowed(OTHER_LABEL_VALUE),
        }
    }
}

/// The values a label type can take: a list declared in the code ([`Values::listed`]), or,
/// for this crate's own number and hash types, a set computed from a closed range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Values(Option<&'static [&'static str]>);

impl Values {
    /// These values and no other: a label text outside them is recorded as `other`
    /// ([`OTHER_LABEL_VALUE`]).
    pub const fn listed(values: &'static [&'static str]) -> Self {
        Values(Some(values))
    }

    /// Numbers in a closed range (`u8`, [`Bounded`], [`Pow2Bucket`]) or keyed hashes: made by
    /// this crate only.
    pub(crate) const COMPUTED: Values = Values(None);

    /// The list, if the values are listed.
    pub const fn list(self) -> Option<&'static [&'static str]> {
        self.0
    }
}

impl<T: LabelValue + ?Sized> LabelValue for &T {
    const SAFE_BECAUSE: &'static str = T::SAFE_BECAUSE;
    #[inline]
    fn label_key(&self) -> u64 {
        (**self).label_key()
    }
    fn label_text(&self) -> Cow<'static, str> {
        (**self).label_text()
    }
    const VALUES: Values = T::VALUES;
}

impl LabelValue for bool {
    const SAFE_BECAUSE: &'static str = "built-in: true or false";
    #[inline]
    fn label_key(&self) -> u64 {
        *self as u64
    }
    fn label_text(&self) -> Cow<'static, str> {
        Cow::Borrowed(if *self { "true" } else { "false" })
    }
    const VALUES: Values = Values::listed(&["false", "true"]);
}

impl LabelValue for u8 {
    const SAFE_BECAUSE: &'static str = "built-in: a number from 0 to 255";
    const VALUES: Values = Values::COMPUTED;
    #[inline]
    fn label_key(&self) -> u64 {
        u64::from(*self)
    }
    fn label_text(&self) -> Cow<'static, str> {
        Cow::Owned(self.to_string())
    }
    fn bridged_text(text: &str) -> Cow<'static, str> {
        match text.parse::<u8>() {
            Ok(value) => value.label_text(),
            Err(_) => Cow::Borrowed(OTHER_LABEL_VALUE),
        }
    }
}

/// The largest `MAX` of a [`Bounded`] label.
pub const MAX_BOUNDED: u64 = 65_535;

/// The label text of a value outside its declared set.
pub const OTHER_LABEL_VALUE: &str = "other";

/// An integer label with a declared range: values from 0 to `MAX` are themselves, anything
/// larger (or negative, through [`Bounded::signed`]) is recorded as `other`
/// ([`OTHER_LABEL_VALUE`]), so the label has at most `MAX + 2` values whatever the input.
/// Use it for status codes (`Bounded::<599>::new(code)`), shard numbers, small counts.
/// `MAX` is at most [`MAX_BOUNDED`] (65,535), checked at compile time: a range wide enough for
/// an IPv4 address is not a closed set. Sizes and large counts go in [`Pow2Bucket`].
///
/// ```
/// use telemetry_core::{Bounded, LabelValue};
/// assert_eq!(Bounded::<599>::new(404u16).label_text(), "404");
/// assert_eq!(Bounded::<599>::new(3_405_803_783u32).label_text(), "other");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bounded<const MAX: u64>(Option<u64>);

impl<const MAX: u64> Bounded<MAX> {
    /// Evaluated where a value is made: a compile error for a `MAX` above [`MAX_BOUNDED`].
    const RANGE_IS_CLOSED: () = assert!(
        MAX <= MAX_BOUNDED,
        "a Bounded label's range is at most 65535 values: use Pow2Bucket for sizes and large counts"
    );

    /// `value` if it is at most `MAX`, else `other`.
    pub fn new(value: impl Into<u64>) -> Self {
        const { Self::RANGE_IS_CLOSED };
        let value = value.into();
        Bounded((value <= MAX).then_some(value))
    }

    /// `value` if it is from 0 to `MAX`, else `other`.
    pub fn signed(value: impl Into<i64>) -> Self {
        const { Self::RANGE_IS_CLOSED };
        Bounded(u64::try_from(value.into()).ok().filter(|v| *v <= MAX))
    }

    /// The value, if it was in range.
    pub fn get(&self) -> Option<u64> {
        self.0
    }
}

impl<const MAX: u64> LabelValue for Bounded<MAX> {
    const SAFE_BECAUSE: &'static str = "built-in: a number in a declared range, or `other`";
    const VALUES: Values = Values::COMPUTED;
    #[inline]
    fn label_key(&self) -> u64 {
        self.0.map_or(u64::MAX, |v| v)
    }
    fn label_text(&self) -> Cow<'static, str> {
        match self.0 {
            Some(v) => Cow::Owned(v.to_string()),
            None => Cow::Borrowed(OTHER_LABEL_VALUE),
        }
    }
    fn bridged_text(text: &str) -> Cow<'static, str> {
        Bounded::<MAX>(text.parse::<u64>().ok().filter(|v| *v <= MAX)).label_text()
    }
}

/// A size or count as a label: the power of two at or below it (`0`, `1`, `2`, `4`, ...,
/// `9223372036854775808`), at most 65 values whatever the input.
///
/// ```
/// use telemetry_core::{LabelValue, Pow2Bucket};
/// assert_eq!(Pow2Bucket::new(1500u32).label_text(), "1024");
/// assert_eq!(Pow2Bucket::new(0u8).label_text(), "0");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pow2Bucket(u64);

impl Pow2Bucket {
    /// The bucket of `value`.
    pub fn new(value: impl Into<u64>) -> Self {
        let value = value.into();
        Pow2Bucket(if value == 0 { 0 } else { 1 << value.ilog2() })
    }
}

impl LabelValue for Pow2Bucket {
    const SAFE_BECAUSE: &'static str = "built-in: a power of two";
    const VALUES: Values = Values::COMPUTED;
    #[inline]
    fn label_key(&self) -> u64 {
        self.0
    }
    fn label_text(&self) -> Cow<'static, str> {
        Cow::Owned(self.0.to_string())
    }
    fn bridged_text(text: &str) -> Cow<'static, str> {
        match text.parse::<u64>() {
            Ok(value) => Pow2Bucket::new(value).label_text(),
            Err(_) => Cow::Borrowed(OTHER_LABEL_VALUE),
        }
    }
}

/// The cache key of a label whose text is a `&'static str` from a closed set: its address and
/// length, equal for every use of one literal and cheap (two equal texts at different addresses
/// get different keys but the same series).
#[inline]
pub(crate) fn static_text_key(text: &'static str) -> u64 {
    (text.as_ptr() as u64).rotate_left(16) ^ text.len() as u64
}

/// A string literal written in an attribute's `labels(..)`: text fixed in the source. Made by
/// the macros only; not a stable API.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LiteralLabel(pub &'static str);

impl LabelValue for LiteralLabel {
    const SAFE_BECAUSE: &'static str = "built-in: a string literal in the source";
    const VALUES: Values = Values::COMPUTED;
    #[inline]
    fn label_key(&self) -> u64 {
        static_text_key(self.0)
    }
    fn label_text(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.0)
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

    /// Each value type's [`LabelValue::SAFE_BECAUSE`].
    fn reasons() -> Vec<&'static str>;

    /// Texts that arrived from another instrumentation API, one per value (`None`: absent),
    /// each mapped into its type's closed set by [`LabelValue::bridged_text`] (an absent one
    /// is `other`).
    fn bridged_texts(texts: &[Option<&str>]) -> Vec<Cow<'static, str>>;
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
                vec![$($t::VALUES.list()),*]
            }
            fn reasons() -> Vec<&'static str> {
                vec![$($t::SAFE_BECAUSE),*]
            }
            fn bridged_texts(texts: &[Option<&str>]) -> Vec<Cow<'static, str>> {
                vec![$(match texts.get($i).copied().flatten() {
                    Some(text) => $t::bridged_text(text),
                    None => Cow::Borrowed(OTHER_LABEL_VALUE),
                }),*]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_texts() {
        assert_eq!(
            (true, 7u8, LiteralLabel("x")).texts(),
            vec!["true", "7", "x"]
        );
        assert_eq!(<(bool, u8)>::LEN, 2);
        assert_eq!(
            <(bool,)>::possible_values(),
            vec![Some(&["false", "true"][..])]
        );
        let k = (1u8, false).keys();
        assert_eq!(&k[..3], &[1, 0, 0]);
        assert_ne!(
            LiteralLabel("abc").label_key(),
            LiteralLabel("abd").label_key()
        );
        assert_eq!(Bounded::<10>::signed(-1).label_text(), "other");
        assert_eq!(Bounded::<10>::new(10u8).label_text(), "10");
        assert_ne!(
            Bounded::<10>::new(3u8).label_key(),
            Bounded::<10>::signed(-3).label_key()
        );
        assert_eq!(
            Pow2Bucket::new(u64::MAX).label_text(),
            "9223372036854775808"
        );
    }
}

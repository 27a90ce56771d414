//! [`Anonymize`]: the types whose values may leave the machine, and the rule of each std type.

use super::Anonymizer;
use crate::engine::labels::LabelValue;
use serde_json::{Map, Number, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// A type whose values may leave the machine, in anonymized form.
///
/// Implemented for `bool`, integers and floats (rounded), `Duration`, `Option`, `Vec`, slices,
/// arrays and maps keyed by a [`LabelValue`], and by `#[derive(Telemetry)]` for product
/// structs and enums. Not for text of any kind (`String`, `&'static str`, which a program can
/// make at run time with `String::leak`), addresses, paths or [`crate::Pii`]: a field of such
/// a type must be hashed (`#[telemetry(hash)]`), skipped (`#[telemetry(skip)]`) or vouched
/// for (`#[telemetry(verbatim = "why it is safe")]`).
///
/// A hand-written implementation states why its values are safe in
/// [`SAFE_BECAUSE`](Self::SAFE_BECAUSE); the manifest shows that reason.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be emitted in telemetry as it is: it may carry personal data",
    label = "may carry personal data",
    note = "mark the field `#[telemetry(hash)]` to emit a keyed hash, `#[telemetry(skip)]` to leave it out, \
            or `#[telemetry(verbatim = \"why it is safe\")]` if it is free of personal data"
)]
pub trait Anonymize {
    /// Why this type's values carry no personal data once anonymized, in words. The derives
    /// and this crate's implementations fill it in; a hand-written implementation must state
    /// it (a greppable vouching marker), and the manifest shows it beside each field of the
    /// type.
    const SAFE_BECAUSE: &'static str;

    /// The value as it leaves the machine.
    fn anonymize(&self, anonymizer: &Anonymizer) -> Value;
}

impl<T: Anonymize + ?Sized> Anonymize for &T {
    const SAFE_BECAUSE: &'static str = T::SAFE_BECAUSE;
    fn anonymize(&self, a: &Anonymizer) -> Value {
        (**self).anonymize(a)
    }
}

impl Anonymize for bool {
    const SAFE_BECAUSE: &'static str = "built-in: true or false";
    fn anonymize(&self, _: &Anonymizer) -> Value {
        Value::Bool(*self)
    }
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl Anonymize for $t {
            const SAFE_BECAUSE: &'static str = "built-in: a number rounded toward zero to its significant digits";
            fn anonymize(&self, a: &Anonymizer) -> Value {
                Value::from(a.round(*self as u64))
            }
        }
    )*};
}
unsigned!(u8, u16, u32, u64, usize);

macro_rules! signed {
    ($($t:ty),*) => {$(
        impl Anonymize for $t {
            const SAFE_BECAUSE: &'static str = "built-in: a number rounded toward zero to its significant digits";
            fn anonymize(&self, a: &Anonymizer) -> Value {
                Value::from(a.round_signed(*self as i64))
            }
        }
    )*};
}
signed!(i8, i16, i32, i64, isize);

impl Anonymize for f64 {
    const SAFE_BECAUSE: &'static str =
        "built-in: a number rounded toward zero to its significant digits";
    fn anonymize(&self, a: &Anonymizer) -> Value {
        a.round_float(*self)
            .and_then(Number::from_f64)
            .map_or(Value::Null, Value::Number)
    }
}

impl Anonymize for f32 {
    const SAFE_BECAUSE: &'static str =
        "built-in: a number rounded toward zero to its significant digits";
    fn anonymize(&self, a: &Anonymizer) -> Value {
        f64::from(*self).anonymize(a)
    }
}

impl Anonymize for Duration {
    const SAFE_BECAUSE: &'static str =
        "built-in: nanoseconds rounded toward zero to their significant digits";
    fn anonymize(&self, a: &Anonymizer) -> Value {
        Value::from(a.round(u64::try_from(self.as_nanos()).unwrap_or(u64::MAX)))
    }
}

impl<T: Anonymize> Anonymize for Option<T> {
    const SAFE_BECAUSE: &'static str = T::SAFE_BECAUSE;
    fn anonymize(&self, a: &Anonymizer) -> Value {
        self.as_ref().map_or(Value::Null, |v| v.anonymize(a))
    }
}

impl<T: Anonymize> Anonymize for [T] {
    const SAFE_BECAUSE: &'static str = T::SAFE_BECAUSE;
    fn anonymize(&self, a: &Anonymizer) -> Value {
        Value::Array(self.iter().map(|v| v.anonymize(a)).collect())
    }
}

impl<T: Anonymize, const N: usize> Anonymize for [T; N] {
    const SAFE_BECAUSE: &'static str = T::SAFE_BECAUSE;
    fn anonymize(&self, a: &Anonymizer) -> Value {
        self[..].anonymize(a)
    }
}

impl<T: Anonymize> Anonymize for Vec<T> {
    const SAFE_BECAUSE: &'static str = T::SAFE_BECAUSE;
    fn anonymize(&self, a: &Anonymizer) -> Value {
        self[..].anonymize(a)
    }
}

fn map<'a, K: LabelValue + 'a, V: Anonymize + 'a>(
    entries: impl Iterator<Item = (&'a K, &'a V)>,
    a: &Anonymizer,
) -> Value {
    let mut out = Map::new();
    for (k, v) in entries {
        out.insert(k.label_text().into_owned(), v.anonymize(a));
    }
    Value::Object(out)
}

impl<K: LabelValue, V: Anonymize> Anonymize for BTreeMap<K, V> {
    const SAFE_BECAUSE: &'static str = V::SAFE_BECAUSE;
    fn anonymize(&self, a: &Anonymizer) -> Value {
        map(self.iter(), a)
    }
}

impl<K: LabelValue, V: Anonymize, S> Anonymize for HashMap<K, V, S> {
    const SAFE_BECAUSE: &'static str = V::SAFE_BECAUSE;
    fn anonymize(&self, a: &Anonymizer) -> Value {
        map(self.iter(), a)
    }
}

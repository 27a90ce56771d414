//! Items the macros' expansions use. Not a stable API: it changes without notice.

pub use crate::engine::callsite::{
    CALL_SITES, CallSite, LabeledTimerGuard, LocalTimerGuard, TimerGuard,
};
pub use crate::engine::declaration::{DECLARATIONS, Declaration};
pub use crate::engine::labels::{DEFAULT_MAX_SERIES, LiteralLabel};
pub use crate::engine::timed_future::TimedFuture;

/// Passes a label value of the type the call site lists through.
#[inline(always)]
pub fn label_as<T: crate::LabelValue + ?Sized>(value: &T) -> &T {
    value
}
pub use crate::__call_site as call_site;

/// The error type of a `Result` (through aliases such as `io::Result<T>`): the macros name
/// an `errors` site's error type as `<Ret as ResultError>::Error`.
pub trait ResultError {
    /// `E` of `Result<T, E>`.
    type Error;
}
impl<T, E> ResultError for Result<T, E> {
    type Error = E;
}
pub use crate::engine::callsite::LabelDomain;
pub use crate::privacy::errors::ErrorKinds;

/// Asks a type for its `Anonymize::SAFE_BECAUSE` without requiring it, by method
/// resolution: `(&Probe::<T>::new()).safe_because()` is the reason if `T: Anonymize`, and
/// "" otherwise (the missing rule is reported where the field is emitted).
pub struct Probe<T: ?Sized>(::core::marker::PhantomData<T>);
impl<T: ?Sized> Probe<T> {
    /// A probe of `T`.
    pub const fn new() -> Self {
        Probe(::core::marker::PhantomData)
    }
}
impl<T: ?Sized> Default for Probe<T> {
    fn default() -> Self {
        Self::new()
    }
}
impl<T: ?Sized> Clone for Probe<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: ?Sized> Copy for Probe<T> {}
/// See [`Probe`].
pub trait ViaAnonymize {
    /// `T::SAFE_BECAUSE`.
    fn safe_because(self) -> &'static str;
}
impl<T: crate::privacy::anonymize::Anonymize + ?Sized> ViaAnonymize for &Probe<T> {
    fn safe_because(self) -> &'static str {
        T::SAFE_BECAUSE
    }
}
/// See [`Probe`].
pub trait NoAnonymize {
    /// "".
    fn safe_because(self) -> &'static str;
}
impl<T: ?Sized> NoAnonymize for Probe<T> {
    fn safe_because(self) -> &'static str {
        ""
    }
}
/// The reason of a field that is not emitted by its type's rule.
pub fn no_reason() -> &'static str {
    ""
}
pub use crate::engine::metadata::{MetricKind, Unit};
pub use crate::privacy::manifest::SECTIONS;
pub use linkme;

/// The error conversion of `?`, for `#[count_usage(errors)]`'s rewritten `?`: a generic
/// call, so that a conversion to the same type is not linted as useless in the user's
/// code (the compiler's own `?` is not linted either).
#[inline(always)]
pub fn from_error<E, F: From<E>>(error: E) -> F {
    F::from(error)
}
pub use serde_json;

/// A field through its [`Anonymize`](crate::privacy::anonymize::Anonymize) rule; the derive spans
/// this call at the field's type so a refused type is reported there.
pub fn anonymized<T: crate::privacy::anonymize::Anonymize>(
    value: &T,
    anonymizer: &crate::privacy::anonymize::Anonymizer,
) -> serde_json::Value {
    value.anonymize(anonymizer)
}

/// A `#[telemetry(verbatim = "...")]` field as JSON (`null` if it cannot be serialized).
pub fn verbatim<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

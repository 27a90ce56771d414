//! `Pii<T>`: personal data in the application's own types, kept out of telemetry by the types.

use crate::anonymize::HashInput;
use serde_json::Value;
use std::fmt;

/// Wraps personal data (an e-mail address, a user name, a client's IP address) so that it can
/// never become telemetry by accident.
///
/// - It implements neither [`crate::LabelValue`], nor [`crate::anonymize::Anonymize`], nor
///   `serde::Serialize`: using it as a label or as an emitted field does not compile. A
///   `#[derive(Telemetry)]` field of type `Pii<..>` must be `#[telemetry(skip)]` or
///   `#[telemetry(hash)]`.
/// - Its `Debug` and `Display` print `<redacted>`, so it does not leak through log lines or
///   panic messages either.
/// - The application reads the value with [`expose`](Self::expose), a word that stands out in
///   review.
///
/// ```
/// use telemetry_core::Pii;
/// let email = Pii::new(String::from("alice@example.com"));
/// assert_eq!(format!("{email:?} {email}"), "Pii(<redacted>) <redacted>");
/// assert_eq!(email.expose(), "alice@example.com");
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pii<T>(T);

impl<T> Pii<T> {
    /// Wraps a value.
    pub const fn new(value: T) -> Self {
        Pii(value)
    }

    /// The wrapped value, for the application's own use.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Pii<T> {
    fn from(value: T) -> Self {
        Pii(value)
    }
}

impl<T> fmt::Debug for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pii(<redacted>)")
    }
}

impl<T> fmt::Display for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A `Pii` field may be hashed: the keyed hash does not reveal it.
impl<T: HashInput> HashInput for Pii<T> {
    fn hash_with(&self, hash: &dyn Fn(&str) -> String) -> Value {
        self.0.hash_with(hash)
    }
}

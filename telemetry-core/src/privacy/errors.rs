//! Error counts by kind (FerretDB's "query errors by error code, command name and operator"):
//! `#[count_usage(errors)]` on a function returning `Result<T, E>` counts each `Err` in
//! `{name}.errors`, labeled `kind` by the error's [`ErrorKind`]: the variant's name, never the
//! error's message or fields, which may hold the user's data.
//!
//! ```
//! use telemetry_core::{count_usage, ErrorKind, testing};
//!
//! #[derive(Debug, ErrorKind)]
//! enum QueryError {
//!     #[error_kind(rename = "E11000")]
//!     DuplicateKey { key: String },
//!     BadValue(String),
//! }
//!
//! #[count_usage(name = "docs.errors.insert", errors)]
//! fn insert(key: &str) -> Result<(), QueryError> {
//!     Err(QueryError::DuplicateKey { key: key.to_owned() })
//! }
//!
//! let snap = testing::capture(|| {
//!     let _ = insert("alice@example.com");
//! });
//! assert_eq!(snap.counter("docs.errors.insert"), Some(1));
//! assert_eq!(snap.counter_with("docs.errors.insert.errors", &[("kind", "E11000")]), Some(1));
//! assert!(!serde_json::to_string(&snap).unwrap().contains("alice"));
//! ```

use crate::engine::labels::LabelValue;
use std::borrow::Cow;
use std::marker::PhantomData;

/// The kind of an error, as a label: a name from a small closed set.
///
/// Derive it with `#[derive(ErrorKind)]` on an error enum (variants may have fields; only the
/// variant's name, or its `#[error_kind(rename = "...")]`, is used).
#[diagnostic::on_unimplemented(
    message = "`#[count_usage(errors)]` needs the error type `{Self}` to implement `ErrorKind`",
    label = "errors are counted by kind",
    note = "add `#[derive(telemetry_core::ErrorKind)]` to the error enum (only variant names are used, never messages or fields), or implement `ErrorKind` by hand"
)]
pub trait ErrorKind {
    /// Why this type's kinds carry no personal data, in words. The derive fills it in; a
    /// hand-written implementation must state it (a greppable vouching marker), and the
    /// manifest shows it.
    const SAFE_BECAUSE: &'static str;

    /// This error's kind: one of [`KINDS`](Self::KINDS). Anything else is recorded as `other`.
    fn error_kind(&self) -> &'static str;

    /// Every kind the type has, listed in the manifest: a constant, so a list made at run
    /// time cannot be given.
    const KINDS: &'static [&'static str];
}

/// An error kind as a label value of type `E`'s closed set.
pub struct ErrorKindLabel<E> {
    kind: &'static str,
    _error: PhantomData<fn() -> E>,
}

impl<E: ErrorKind> ErrorKindLabel<E> {
    /// The label of `error`: its kind if it is one of `E::KINDS`, else `other`, so a
    /// hand-written `error_kind` that returns a message cannot put it in a label.
    pub fn of(error: &E) -> Self {
        let kind = error.error_kind();
        let kind = E::KINDS
            .iter()
            .copied()
            .find(|k| *k == kind)
            .unwrap_or(crate::engine::labels::OTHER_LABEL_VALUE);
        ErrorKindLabel {
            kind,
            _error: PhantomData,
        }
    }
}

impl<E: ErrorKind> LabelValue for ErrorKindLabel<E> {
    const SAFE_BECAUSE: &'static str = E::SAFE_BECAUSE;
    #[inline]
    fn label_key(&self) -> u64 {
        crate::engine::labels::static_text_key(self.kind)
    }
    fn label_text(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.kind)
    }
    const VALUES: crate::engine::labels::Values = crate::engine::labels::Values::listed(E::KINDS);
}

/// The kinds of an `errors` call site's error type `E`, declared by `#[count_usage(errors)]`
/// next to the site. Only [`ErrorKinds::new`] needs `E: ErrorKind`, so an error type without
/// it is reported once, there. Made by the macro only; not a stable API.
#[doc(hidden)]
pub struct ErrorKinds<E> {
    domain: crate::engine::callsite::LabelDomain,
    kind_of: fn(&E) -> &'static str,
}

impl<E: ErrorKind> Default for ErrorKinds<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> ErrorKinds<E> {
    /// The kinds of `E`.
    pub const fn new() -> Self
    where
        E: ErrorKind,
    {
        ErrorKinds {
            domain: crate::engine::callsite::LabelDomain::of::<ErrorKindLabel<E>>(),
            kind_of: |error| ErrorKindLabel::of(error).kind,
        }
    }

    /// The `kind` label's values, for the call site.
    pub const fn domain(&self) -> crate::engine::callsite::LabelDomain {
        self.domain
    }

    /// Counts `result` in `site` by its error's kind if it is an `Err`.
    #[inline]
    pub fn observe<T>(
        &self,
        site: &'static crate::engine::callsite::CallSite,
        result: &Result<T, E>,
    ) {
        if let Err(error) = result {
            site.increment_labeled((crate::engine::labels::LiteralLabel((self.kind_of)(error)),));
        }
    }
}

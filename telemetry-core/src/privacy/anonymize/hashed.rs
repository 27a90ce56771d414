//! Hashed text: the types a `#[telemetry(hash)]` field may hold ([`HashInput`]) and the
//! hashed label value ([`HashedLabel`]).

use super::{Anonymize, Anonymizer, global};
use crate::engine::labels::LabelValue;
use serde_json::Value;
use std::borrow::Cow;
use std::path::Path;

/// Text that `#[telemetry(hash)]` and `#[telemetry(hash_url)]` fields may hold: strings,
/// paths, IP and socket addresses, [`crate::Pii`] of those, and options and vectors of them.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be hashed for telemetry",
    note = "a hashed field holds text: a `String`, `&str`, path, IP or socket address, `Pii<..>` of one, or an `Option` or `Vec` of them"
)]
pub trait HashInput {
    /// The keyed hash of the value, by `hash` (a name or URL hasher).
    fn hash_with(&self, hash: &dyn Fn(&str) -> String) -> Value;
}

impl<T: HashInput + ?Sized> HashInput for &T {
    fn hash_with(&self, hash: &dyn Fn(&str) -> String) -> Value {
        (**self).hash_with(hash)
    }
}

macro_rules! hash_as_text {
    ($($t:ty => |$v:ident| $text:expr),* $(,)?) => {$(
        impl HashInput for $t {
            fn hash_with(&self, hash: &dyn Fn(&str) -> String) -> Value {
                let $v = self;
                let text: Cow<'_, str> = $text;
                Value::String(hash(&text))
            }
        }
    )*};
}
hash_as_text! {
    str => |s| Cow::Borrowed(s),
    String => |s| Cow::Borrowed(s.as_str()),
    Path => |p| p.to_string_lossy(),
    std::path::PathBuf => |p| p.to_string_lossy(),
    std::net::IpAddr => |a| Cow::Owned(a.to_string()),
    std::net::SocketAddr => |a| Cow::Owned(a.to_string()),
}

impl<T: HashInput> HashInput for Option<T> {
    fn hash_with(&self, hash: &dyn Fn(&str) -> String) -> Value {
        self.as_ref().map_or(Value::Null, |v| v.hash_with(hash))
    }
}

impl<T: HashInput> HashInput for Vec<T> {
    fn hash_with(&self, hash: &dyn Fn(&str) -> String) -> Value {
        Value::Array(self.iter().map(|v| v.hash_with(hash)).collect())
    }
}

/// A label value that is the keyed hash of a name: for labeling by something that is not a
/// closed set (a collection, a tenant) without sending the name.
///
/// Hashing costs about a microsecond, so make one per name and reuse it rather than building
/// it on every call.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HashedLabel {
    hash: String,
    key: u64,
}

impl HashedLabel {
    /// The hash of `name` under the process's [`global`] anonymizer.
    pub fn new(name: &str) -> Self {
        let hash = global().hash_name(name);
        // The first 64 bits of the MAC, as the cache key.
        let key = u64::from_str_radix(&hash[..16], 16).unwrap_or(0);
        HashedLabel { hash, key }
    }

    /// The hash: 32 hex digits.
    pub fn as_str(&self) -> &str {
        &self.hash
    }
}

impl LabelValue for HashedLabel {
    const SAFE_BECAUSE: &'static str = "built-in: a keyed hash";
    const VALUES: crate::engine::labels::Values = crate::engine::labels::Values::COMPUTED;
    fn label_key(&self) -> u64 {
        self.key
    }
    fn label_text(&self) -> Cow<'static, str> {
        Cow::Owned(self.hash.clone())
    }
    fn bridged_text(text: &str) -> Cow<'static, str> {
        HashedLabel::new(text).label_text()
    }
}

impl Anonymize for HashedLabel {
    const SAFE_BECAUSE: &'static str = "built-in: a keyed hash";
    fn anonymize(&self, _: &Anonymizer) -> Value {
        Value::String(self.hash.clone())
    }
}

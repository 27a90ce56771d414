//! Anonymization: every rule that changes data before it leaves the machine, in one place.
//!
//! - **Big numbers are rounded** toward zero to a number of significant digits (default
//!   [`DEFAULT_SIGNIFICANT_DIGITS`] = 6), so the last digits are always 0: `123456789` becomes
//!   `123456000`, as Qdrant's "Usage Statistics" documentation promises. Numbers with at most that many digits are kept
//!   as they are (`999999` stays, `42` stays). Signed numbers round their magnitude toward zero
//!   (`-123456789` becomes `-123456000`). Floats keep the same number of significant digits,
//!   truncated toward zero (`1234.56789` becomes `1234.56`); NaN and infinities become `null`.
//!   A `Duration` is emitted as whole nanoseconds, rounded like any other number.
//! - **Names are hashed** with HMAC-SHA-256 under a random per-installation [`HashKey`] that
//!   never leaves the machine. Within one installation a name always gives the same hash, so a
//!   report can say "12 distinct collections, this one is queried most"; without the key,
//!   nobody can test guesses against a hash, not even for short names. (Qdrant hashes names
//!   with a fixed-key SipHash, which a dictionary of likely names reverses.) A hash is the first
//!   128 bits of the MAC, as 32 lowercase hex digits.
//! - **URLs are hashed whole**; only the scheme is kept, and only if it is one of a short list
//!   of well-known schemes (`https`, `postgres`, ...), because the scheme tells which kind of
//!   integration or whether TLS is used, while host, port, path, query and user info can all
//!   identify a person or an organization. The result is `"{scheme}:{hash}"`, or the hash alone.
//!
//! Types opt in to leaving the machine through [`Anonymize`], implemented here for the safe
//! std types and generated for product types by `#[derive(Telemetry)]`.

use crate::engine::labels::LabelValue;
use crate::engine::snapshot::Snapshot;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Number, Value};
use sha2::Sha256;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Significant digits kept by default: 6, so `123456789` becomes `123456000` (Qdrant's "Usage Statistics" documentation).
pub const DEFAULT_SIGNIFICANT_DIGITS: u32 = 6;

/// Rounds `value` toward zero to `digits` significant digits (`digits` is clamped to `1..=20`).
pub(crate) fn round_u64(value: u64, digits: u32) -> u64 {
    let digits = digits.clamp(1, 20);
    let len = value.checked_ilog10().map_or(1, |d| d + 1);
    if len <= digits {
        return value;
    }
    let unit = 10u64.pow(len - digits);
    value / unit * unit
}

/// Rounds the magnitude of `value` toward zero to `digits` significant digits.
pub(crate) fn round_i64(value: i64, digits: u32) -> i64 {
    let magnitude = round_u64(value.unsigned_abs(), digits);
    if value < 0 {
        // `magnitude <= |i64::MIN|`, so the negation fits.
        0i64.wrapping_sub_unsigned(magnitude)
    } else {
        magnitude as i64
    }
}

/// Truncates `value` toward zero to `digits` significant digits (clamped to `1..=17`) of its
/// shortest decimal form; `None` for NaN and infinities. Working on the decimal digits (not by
/// scaling) keeps subnormal and huge values exact and adds no binary noise: `1.13` stays
/// `1.13`, `1234.56789` becomes `1234.56`, `-3.4999999999999995e-300` becomes `-3.49999e-300`.
pub(crate) fn round_f64(value: f64, digits: u32) -> Option<f64> {
    if !value.is_finite() {
        return None;
    }
    if value == 0.0 {
        return Some(0.0);
    }
    let digits = digits.clamp(1, 17) as usize;
    // `{:e}` is the shortest form that reads back exactly: `-1.2345e-3`.
    let text = format!("{value:e}");
    let (mantissa, exponent) = text.split_once('e')?;
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let all: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let kept = &all[..all.len().min(digits)];
    let (first, rest) = kept.split_at(1);
    let rounded = if rest.is_empty() {
        format!("{sign}{first}e{exponent}")
    } else {
        format!("{sign}{first}.{rest}e{exponent}")
    };
    rounded.parse().ok()
}

/// The secret key of name hashing: 32 random bytes per installation.
///
/// Its `Debug` output never shows the bytes. Keep it in the installation's state directory
/// ([`HashKey::load_or_create`]); it is never part of any report.
#[derive(Clone, PartialEq, Eq)]
pub struct HashKey([u8; 32]);

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashKey(<secret>)")
    }
}

impl HashKey {
    /// The seal of a spooled report: the full HMAC-SHA-256 of its bytes (64 hex digits), in a
    /// domain of its own, so no public hash equals it.
    pub(crate) fn seal(&self, bytes: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"spool\0");
        mac.update(bytes);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A new random key from the operating system's generator.
    ///
    /// # Panics
    /// Never in practice: only if the OS has no random source at all (`getrandom` fails), in
    /// which case a key derived from the process's random instance id is used instead.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        if getrandom::fill(&mut bytes).is_err() {
            let a = uuid::Uuid::new_v4();
            let b = uuid::Uuid::new_v4();
            bytes[..16].copy_from_slice(a.as_bytes());
            bytes[16..].copy_from_slice(b.as_bytes());
        }
        HashKey(bytes)
    }

    /// A key from known bytes (tests, or a key managed by the product).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        HashKey(bytes)
    }

    /// The key stored at `path` if there is a valid one; never creates or replaces a file
    /// (previews and status commands use it).
    pub fn load_existing(path: &Path) -> Option<Self> {
        let bytes = std::fs::read(path).ok()?;
        Self::from_hex(std::str::from_utf8(&bytes).ok()?.trim())
    }
    /// Reads the key stored at `path` (64 hex digits), or creates one there with permissions
    /// `0600` on Unix. The directory must exist.
    ///
    /// The key is written to a temporary file and linked into place, so two processes
    /// starting at once on one state directory end up with the same key, and a reader never
    /// sees half a key. A file that does not hold a key (corrupt, empty after a full disk) is
    /// replaced by a new key, with one log line: hashes made before change, which is better
    /// than hashing with a key nobody keeps.
    ///
    /// # Errors
    /// The I/O error if the file cannot be read or written; the caller then uses a
    /// [`generate`](Self::generate)d key for this run and says so once.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        for _ in 0..3 {
            match std::fs::read(path) {
                Ok(bytes) => {
                    if let Some(key) = std::str::from_utf8(&bytes)
                        .ok()
                        .and_then(|t| Self::from_hex(t.trim()))
                    {
                        return Ok(key);
                    }
                    log::warn!(target: "telemetry", "{} does not hold a name-hashing key; replacing it (hashes made before will differ)", crate::state::named(crate::state::file_name(path)));
                    let key = Self::generate();
                    crate::state::write_private(path, key.to_hex().as_bytes())?;
                    return Ok(key);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let key = Self::generate();
                    match Self::create(path, &key) {
                        Ok(()) => return Ok(key),
                        // Another process created it first: use theirs.
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other(format!(
            "{} keeps changing",
            path.display()
        )))
    }

    /// Writes `key` beside `path`, then links it into place; `AlreadyExists` if `path` exists.
    fn create(path: &Path, key: &HashKey) -> std::io::Result<()> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(format!(
            ".{}.{}.partial",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let partial = std::path::PathBuf::from(partial);
        let result = (|| {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&partial)?;
            std::io::Write::write_all(&mut file, key.to_hex().as_bytes())?;
            file.sync_all()?;
            std::fs::hard_link(&partial, path)
        })();
        let _ = std::fs::remove_file(&partial);
        result
    }

    fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(HashKey(bytes))
    }
}

/// A clock reading in seconds (an uptime) rounded down to the whole hour: exact uptimes let a
/// collector subtract them from the report's timestamp and link the per-start instance ids of
/// one machine.
pub(crate) fn round_clock(seconds: u64) -> u64 {
    seconds - seconds % 3600
}

/// Schemes kept in front of a URL's hash: see the module docs.
pub(crate) const KEPT_URL_SCHEMES: &[&str] = &[
    "http",
    "https",
    "ws",
    "wss",
    "grpc",
    "grpcs",
    "ftp",
    "sftp",
    "ssh",
    "file",
    "s3",
    "gs",
    "postgres",
    "postgresql",
    "mysql",
    "mongodb",
    "mongodb+srv",
    "redis",
    "rediss",
    "amqp",
    "amqps",
    "kafka",
    "nats",
    "unix",
];

/// Applies the rules: rounds numbers and hashes names and URLs with an installation's key.
#[derive(Debug)]
pub struct Anonymizer {
    key: HashKey,
    digits: u32,
    /// A name or URL has been hashed with this key (so it must not change in this run).
    used: std::sync::atomic::AtomicBool,
}

impl Clone for Anonymizer {
    fn clone(&self) -> Self {
        Anonymizer {
            key: self.key.clone(),
            digits: self.digits,
            used: std::sync::atomic::AtomicBool::new(
                self.used.load(std::sync::atomic::Ordering::Relaxed),
            ),
        }
    }
}

impl Anonymizer {
    /// An anonymizer hashing with `key` and keeping [`DEFAULT_SIGNIFICANT_DIGITS`].
    pub fn new(key: HashKey) -> Self {
        Anonymizer {
            key,
            digits: DEFAULT_SIGNIFICANT_DIGITS,
            used: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Keeps `digits` significant digits instead, clamped to `1..=6`: fewer is coarser, and
    /// more than the default would send identifying numbers (an IPv4 address as an integer)
    /// as they are.
    pub fn with_significant_digits(mut self, digits: u32) -> Self {
        self.digits = digits.clamp(1, DEFAULT_SIGNIFICANT_DIGITS);
        self
    }

    /// The significant digits kept.
    pub fn significant_digits(&self) -> u32 {
        self.digits
    }

    /// Rounds an unsigned number toward zero to the significant digits kept (see the module
    /// docs).
    pub fn round(&self, value: u64) -> u64 {
        round_u64(value, self.digits)
    }

    /// Rounds a signed number's magnitude toward zero to the significant digits kept.
    pub fn round_signed(&self, value: i64) -> i64 {
        round_i64(value, self.digits)
    }

    /// Rounds a float toward zero to the significant digits kept; `None` for NaN and
    /// infinities.
    pub fn round_float(&self, value: f64) -> Option<f64> {
        round_f64(value, self.digits)
    }

    fn mac(&self, domain: &str, text: &str) -> String {
        self.used.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(text.as_bytes());
        let digest = mac.finalize().into_bytes();
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The keyed hash of a name (collection, field, stream, host...): 32 hex digits.
    pub fn hash_name(&self, name: &str) -> String {
        self.mac("name", name)
    }

    /// The keyed hash of a URL, behind its scheme if it is one of the well-known schemes kept
    /// (see the module docs).
    pub fn hash_url(&self, url: &str) -> String {
        let hash = self.mac("url", url);
        let scheme = url
            .split_once(':')
            .map(|(scheme, _)| scheme.to_ascii_lowercase())
            .filter(|s| KEPT_URL_SCHEMES.contains(&s.as_str()));
        match scheme {
            Some(scheme) => format!("{scheme}:{hash}"),
            None => hash,
        }
    }
}

static GLOBAL: RwLock<Option<Arc<Anonymizer>>> = RwLock::new(None);

// The anonymizer's lock, held across a `fork` (see `crate::fork`).
crate::fork::fork_hook!(ANONYMIZER_FORK_HOOK, 2, || {
    Some(Box::new(GLOBAL.write().unwrap_or_else(|e| e.into_inner())))
});

/// Where the process's key is stored, once a state directory is known.
static KEY_FILE: RwLock<Option<std::path::PathBuf>> = RwLock::new(None);

// Holds the key file's path until the guard is dropped (see [`crate::fork`]).
crate::fork::fork_hook!(KEY_FILE_FORK_HOOK, 1, || {
    Some(Box::new(
        KEY_FILE.write().unwrap_or_else(|e| e.into_inner()),
    ))
});

/// The process's anonymizer, used by reports and hashed labels. On first use it loads (or
/// creates, owner-only) the key stored in the state directory given to
/// [`use_key_file`] (the reporter's builder gives it as soon as its state directory is set),
/// so hashes are stable across restarts whoever hashes first. Without one it hashes with a
/// random key made for this process: hashes are then stable within this run only.
pub fn global() -> Arc<Anonymizer> {
    crate::fork::install();
    if let Some(a) = GLOBAL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return a.clone();
    }
    let file = KEY_FILE.read().unwrap_or_else(|e| e.into_inner()).clone();
    let mut slot = GLOBAL.write().unwrap_or_else(|e| e.into_inner());
    slot.get_or_insert_with(|| {
        let key = file
            .and_then(|path| {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).ok()?;
                }
                HashKey::load_or_create(&path).ok()
            })
            .unwrap_or_else(HashKey::generate);
        Arc::new(Anonymizer::new(key))
    })
    .clone()
}

/// The key file the process's anonymizer loads on first use (`hash.key` in the state
/// directory). If names were already hashed under another key, that key stays for this run
/// (one series per name), and this is logged once.
pub fn use_key_file(path: &Path) {
    *KEY_FILE.write().unwrap_or_else(|e| e.into_inner()) = Some(path.to_path_buf());
}

/// Replaces the process's anonymizer (for example with one keyed by the installation's
/// stored [`HashKey`]), unless names were already hashed under a different key in this run:
/// then that key stays, so a name never gets two hashes (and two series) in one run; this is
/// logged once.
pub fn set_global(anonymizer: Anonymizer) {
    let mut slot = GLOBAL.write().unwrap_or_else(|e| e.into_inner());
    if let Some(current) = slot.as_ref()
        && current.used.load(std::sync::atomic::Ordering::Relaxed)
        && current.key != anonymizer.key
    {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            log::warn!(target: "telemetry", "names were hashed before the installation's telemetry key was known: this run keeps hashing with its own key (configure the reporter before hashing names)");
        });
        return;
    }
    *slot = Some(Arc::new(anonymizer));
}

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
}

impl Anonymize for HashedLabel {
    const SAFE_BECAUSE: &'static str = "built-in: a keyed hash";
    fn anonymize(&self, _: &Anonymizer) -> Value {
        Value::String(self.hash.clone())
    }
}

/// The snapshot as it leaves the machine: every counter, gauge and histogram number rounded
/// (a histogram's bucket bounds are kept, since they are the layout, not data). Metric names,
/// units, descriptions and label values come from the program's code and typed label values,
/// so they are kept.
pub fn anonymize_snapshot(snapshot: &Snapshot, a: &Anonymizer) -> Snapshot {
    let mut out = snapshot.clone();
    for family in out.counters.values_mut() {
        for series in &mut family.series {
            series.value = a.round(series.value);
        }
    }
    for family in out.gauges.values_mut() {
        for series in &mut family.series {
            series.value = a.round_signed(series.value);
        }
    }
    for family in out.histograms.values_mut() {
        for series in &mut family.series {
            series.value = series.value.map_numbers(|n| a.round(n));
        }
    }
    out
}

/// Rounds every integer and float inside a JSON value, in place (sections added to a report
/// are already anonymized by type; this applies the current digits once more before sending).
pub fn round_json_numbers(value: &mut Value, a: &Anonymizer) {
    match value {
        Value::Number(n) => {
            let rounded = if let Some(u) = n.as_u64() {
                Some(Number::from(a.round(u)))
            } else if let Some(i) = n.as_i64() {
                Some(Number::from(a.round_signed(i)))
            } else {
                n.as_f64()
                    .and_then(|f| a.round_float(f))
                    .and_then(Number::from_f64)
            };
            // A number that cannot be rounded is not sent as it is.
            *value = rounded.map_or(Value::Null, Value::Number);
        }
        Value::Array(items) => items.iter_mut().for_each(|v| round_json_numbers(v, a)),
        Value::Object(map) => map.values_mut().for_each(|v| round_json_numbers(v, a)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_keeps_significant_digits_toward_zero() {
        assert_eq!(round_u64(123_456_789, 6), 123_456_000);
        assert_eq!(round_u64(999_999, 6), 999_999);
        assert_eq!(round_u64(1_999_999, 6), 1_999_990);
        assert_eq!(round_u64(0, 6), 0);
        assert_eq!(round_u64(u64::MAX, 6), 18_446_700_000_000_000_000);
        assert_eq!(round_u64(u64::MAX, 20), u64::MAX);
        assert_eq!(round_u64(987, 1), 900);
        assert_eq!(round_i64(-123_456_789, 6), -123_456_000);
        assert_eq!(round_i64(i64::MIN, 6), -9_223_370_000_000_000_000);
        assert_eq!(round_i64(42, 6), 42);
        assert_eq!(round_f64(1234.56789, 6), Some(1234.56));
        assert_eq!(round_f64(-0.000123456789, 3), Some(-0.000123));
        assert_eq!(round_f64(0.1 + 0.2, 6), Some(0.3));
        assert_eq!(round_f64(f64::NAN, 6), None);
        assert_eq!(round_f64(0.0, 6), Some(0.0));
        assert_eq!(round_f64(1.13, 6), Some(1.13));
        assert_eq!(round_f64(4.35, 6), Some(4.35));
        assert_eq!(round_f64(1e-310, 6), Some(1e-310));
        assert_eq!(round_f64(1e308, 1), Some(1e308));
        assert_eq!(round_f64(999.9999999999999, 6), Some(999.999));
        assert_eq!(round_f64(-3.4999999999999995e-300, 6), Some(-3.49999e-300));
    }

    #[test]
    fn hashes_are_keyed_stable_and_irreversible_by_guessing_without_the_key() {
        let a = Anonymizer::new(HashKey::from_bytes([1; 32]));
        let b = Anonymizer::new(HashKey::from_bytes([2; 32]));
        assert_eq!(a.hash_name("users"), a.hash_name("users"));
        assert_ne!(a.hash_name("users"), b.hash_name("users"));
        assert_ne!(a.hash_name("users"), a.hash_name("user"));
        assert_eq!(a.hash_name("users").len(), 32);
        // Names and URLs are hashed in separate domains.
        assert_ne!(a.hash_name("x"), a.hash_url("x"));
        let url = a.hash_url("https://alice@example.com/private?token=secret");
        assert!(url.starts_with("https:") && !url.contains("example") && !url.contains("alice"));
        assert!(!a.hash_url("weird-scheme://host").contains("weird"));
    }

    #[test]
    fn keys_are_persisted_and_corrupt_keys_are_replaced() {
        let dir = std::env::temp_dir().join(format!("telemetry-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hash.key");
        let _ = std::fs::remove_file(&path);
        let first = HashKey::load_or_create(&path).unwrap();
        assert_eq!(HashKey::load_or_create(&path).unwrap(), first);
        assert_eq!(format!("{first:?}"), "HashKey(<secret>)");
        #[cfg(unix)]
        let mode = || {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777
        };
        #[cfg(unix)]
        assert_eq!(mode(), 0o600, "created owner-only");
        std::fs::write(&path, "not a key").unwrap();
        #[cfg(unix)]
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let replaced = HashKey::load_or_create(&path).unwrap();
        assert_ne!(replaced, first);
        #[cfg(unix)]
        assert_eq!(mode(), 0o600, "a replaced key is owner-only too");
        assert_eq!(
            HashKey::load_or_create(&path).unwrap(),
            replaced,
            "the replacement is kept"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn std_types_anonymize() {
        let a = Anonymizer::new(HashKey::from_bytes([0; 32]));
        let mut m = BTreeMap::new();
        m.insert(
            crate::engine::labels::LiteralLabel("k"),
            vec![Some(123_456_789u64), None],
        );
        assert_eq!(
            m.anonymize(&a),
            serde_json::json!({"k": [123_456_000, null]})
        );
        assert_eq!(
            Duration::from_secs(3).anonymize(&a),
            serde_json::json!(3_000_000_000u64)
        );
        assert_eq!(f64::INFINITY.anonymize(&a), Value::Null);
        assert_eq!(
            Some(String::from("x")).hash_with(&|t| a.hash_name(t)),
            Value::String(a.hash_name("x"))
        );
    }
}

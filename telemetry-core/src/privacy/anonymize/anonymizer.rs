//! [`Anonymizer`]: the rules applied with one key, rounding numbers and hashing names and URLs.

use super::{DEFAULT_SIGNIFICANT_DIGITS, HashKey, round_f64, round_i64, round_u64};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

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
    pub(super) key: HashKey,
    digits: u32,
    /// A name or URL has been hashed with this key (so it must not change in this run).
    pub(super) used: std::sync::atomic::AtomicBool,
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

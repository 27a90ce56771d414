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

mod anonymizer;
mod global;
mod hashed;
mod key;
mod rounding;
mod rule;
mod snapshot;

pub use anonymizer::Anonymizer;
#[cfg(feature = "fuzzing")]
pub(crate) use anonymizer::KEPT_URL_SCHEMES;
pub use global::{global, set_global, use_key_file};
pub use hashed::{HashInput, HashedLabel};
pub use key::HashKey;
pub use rounding::{DEFAULT_SIGNIFICANT_DIGITS, round_json_numbers};
pub(crate) use rounding::{round_clock, round_f64, round_i64, round_u64};
pub use rule::Anonymize;
pub use snapshot::anonymize_snapshot;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::BTreeMap;
    use std::time::Duration;

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

//! The naming rules of `telemetry-core`, defined once: `telemetry-macros` checks them at
//! compile time (a proc-macro crate cannot depend on the crate that re-exports it) and
//! `telemetry-core` at run time, so the two never disagree. Use them through
//! `telemetry-core` (`validate_name`, `labels::MAX_LABELS`).
#![cfg_attr(not(test), no_std)]

/// The longest metric name, in bytes.
pub const MAX_NAME_LEN: usize = 200;

/// The most labels a metric may have: every label multiplies its number of series.
pub const MAX_LABELS: usize = 8;

/// The longest label name, in bytes.
pub const MAX_LABEL_NAME_LEN: usize = 64;

/// Checks a metric name: segments of ASCII letters, digits and `_`, not starting with a
/// digit, joined by `.` or `::`; at most [`MAX_NAME_LEN`] bytes.
///
/// # Errors
/// Which part of the rule is broken, as a phrase ("a segment starts with a digit").
pub const fn metric_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the name is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Err("the name is longer than 200 bytes");
    }
    let bytes = name.as_bytes();
    let mut i = 0;
    let mut segment_start = true;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'.' || (b == b':' && i + 1 < bytes.len() && bytes[i + 1] == b':') {
            if segment_start {
                return Err("a segment is empty (two separators in a row, or one at the start)");
            }
            segment_start = true;
            i += if b == b'.' { 1 } else { 2 };
            continue;
        }
        if !(b.is_ascii_alphanumeric() || b == b'_') {
            return Err(
                "it contains a character other than ASCII letters, digits, `_`, `.` and `::`",
            );
        }
        if segment_start && b.is_ascii_digit() {
            return Err("a segment starts with a digit");
        }
        segment_start = false;
        i += 1;
    }
    if segment_start {
        return Err("the name ends with a separator");
    }
    Ok(())
}

/// Checks a label name: ASCII letters, digits and `_`, not starting with a digit, at most
/// [`MAX_LABEL_NAME_LEN`] bytes.
///
/// # Errors
/// What the rule is, as a phrase.
pub const fn label_name(name: &str) -> Result<(), &'static str> {
    const RULE: &str = "a label name is ASCII letters, digits and `_`, not starting with a digit, at most 64 bytes";
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_LABEL_NAME_LEN || bytes[0].is_ascii_digit() {
        return Err(RULE);
    }
    let mut i = 0;
    while i < bytes.len() {
        if !(bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            return Err(RULE);
        }
        i += 1;
    }
    Ok(())
}

/// Checks an event, section or schedule name (it becomes a report's `trigger`): 1 to 64
/// lower-case ASCII letters, digits, `_` and `.`, starting with a letter.
pub const fn trigger_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > 64 || !bytes[0].is_ascii_lowercase() {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.') {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names() {
        for good in ["store.insert", "a::b.c_1", "x", "_private.count"] {
            assert_eq!(metric_name(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("", "the name is empty"),
            (
                "a..b",
                "a segment is empty (two separators in a row, or one at the start)",
            ),
            ("a.1b", "a segment starts with a digit"),
            ("a.", "the name ends with a separator"),
            (
                "a-b",
                "it contains a character other than ASCII letters, digits, `_`, `.` and `::`",
            ),
            (
                "a:b",
                "it contains a character other than ASCII letters, digits, `_`, `.` and `::`",
            ),
        ] {
            assert_eq!(metric_name(bad), Err(why), "{bad}");
        }
        assert!(metric_name(&"a".repeat(MAX_NAME_LEN)).is_ok());
        assert!(metric_name(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn trigger_names() {
        assert!(trigger_name("store.export_v2"));
        assert!(trigger_name(&"a".repeat(64)));
        for bad in ["", "Store", "2x", "a-b", "a b", &"a".repeat(65)] {
            assert!(!trigger_name(bad), "{bad}");
        }
    }

    #[test]
    fn label_names() {
        assert!(label_name("backend").is_ok());
        assert!(label_name(&"a".repeat(MAX_LABEL_NAME_LEN)).is_ok());
        for bad in ["", "1a", "a-b", "é", &"a".repeat(MAX_LABEL_NAME_LEN + 1)] {
            assert!(label_name(bad).is_err(), "{bad}");
        }
    }
}

//! The name rules of the text expositions: metric and label names mapped to Prometheus'
//! alphabet, the prefix, unit suffixes and `_total`.

use super::units;
use crate::engine::metadata::{MetricKind, Unit};
use std::ops::Range;

/// Maps a metric (or label) name to Prometheus' alphabet: `::`, `.` and every other character
/// outside `[a-zA-Z0-9_]` become `_` (`::` as a single `_`), and a leading digit gets a `_` in
/// front. An empty name gives `_`. The result matches `[a-zA-Z_][a-zA-Z0-9_]*`.
///
/// ```
/// use telemetry_core::export::prometheus::sanitize_name;
/// assert_eq!(sanitize_name("docstore::store::insert.calls"), "docstore_store_insert_calls");
/// assert_eq!(sanitize_name("9lives-café"), "_9lives_caf_");
/// ```
pub fn sanitize_name(name: &str) -> String {
    let mut out = Vec::with_capacity(name.len() + 1);
    push_sanitized(&mut out, name);
    into_string(out)
}

/// True for the bytes a name keeps as they are: `[a-zA-Z0-9_]` (branch-free, so that loops
/// over a name vectorize).
pub(super) fn is_name_byte(b: u8) -> bool {
    ((b | 0x20).wrapping_sub(b'a') < 26) | (b.wrapping_sub(b'0') < 10) | (b == b'_')
}

/// Appends [`sanitize_name`]`(name)` to `out` (always ASCII).
pub(super) fn push_sanitized(out: &mut Vec<u8>, name: &str) {
    let bytes = name.as_bytes();
    if bytes.first().is_none_or(u8::is_ascii_digit) {
        out.push(b'_');
    }
    // ASCII without `:` maps one byte to one byte: do that (in a loop that vectorizes) and
    // note whether the name was such.
    let start = out.len();
    out.resize(start + bytes.len(), 0);
    let mut other = false;
    for (to, &b) in out[start..].iter_mut().zip(bytes) {
        other |= (b >= 0x80) | (b == b':');
        *to = if is_name_byte(b) { b } else { b'_' };
    }
    if other {
        // Characters of several bytes give one `_` (their continuation bytes give none), and
        // so does `::`.
        out.truncate(start);
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b == b':' && bytes.get(i + 1) == Some(&b':') {
                out.push(b'_');
                i += 2;
                continue;
            }
            if b & 0xC0 != 0x80 {
                out.push(if is_name_byte(b) { b } else { b'_' });
            }
            i += 1;
        }
    }
}

/// Appends the family name of `name` to `names` (with `_{attempt}` before the unit suffix
/// from the second attempt on) and returns where it is.
pub(super) fn push_family(
    names: &mut Vec<u8>,
    prefix: &str,
    name: &str,
    kind: MetricKind,
    unit: Unit,
    attempt: u32,
) -> Range<usize> {
    let start = names.len();
    if !prefix.is_empty() {
        names.extend_from_slice(prefix.as_bytes());
    }
    push_sanitized(names, name);
    let mut base = &names[start..];
    if kind == MetricKind::Counter {
        while let Some(stripped) = base.strip_suffix(b"_total") {
            if stripped.is_empty() {
                break;
            }
            base = stripped;
        }
    }
    let suffix = units::exported(unit).suffix;
    if let Some(s) = suffix
        && let Some(stripped) = base
            .strip_suffix(s.as_bytes())
            .and_then(|b| b.strip_suffix(b"_"))
        && !stripped.is_empty()
    {
        base = stripped;
    }
    names.truncate(start + base.len());
    if attempt > 1 {
        names.push(b'_');
        names.extend_from_slice(attempt.to_string().as_bytes());
    }
    if let Some(s) = suffix {
        names.push(b'_');
        names.extend_from_slice(s.as_bytes());
    }
    start..names.len()
}

/// Whether a label name is written as it is (already in the alphabet, not reserved).
pub(super) fn label_name_is_kept(name: &str, histogram: bool) -> bool {
    let bytes = name.as_bytes();
    bytes.first().is_some_and(|b| !b.is_ascii_digit())
        && bytes.iter().fold(true, |acc, &b| acc & is_name_byte(b))
        && !name.starts_with("__")
        && !(histogram && name == "le")
}

/// A label name under the name rule; `le` on histograms and `__*` are renamed `label_{name}`.
pub(super) fn label_name(name: &str, histogram: bool) -> String {
    let clean = sanitize_name(name);
    if clean.starts_with("__") || (histogram && clean == "le") {
        format!("label_{clean}")
    } else {
        clean
    }
}

/// The text written as a `String`. Everything written is ASCII or a whole `&str` (escaping
/// cuts text only next to ASCII bytes), so the bytes are always valid UTF-8.
pub(super) fn into_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

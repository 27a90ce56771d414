//! Rounding: numbers toward zero to a number of significant digits, clock readings down to the
//! hour, and every number of a JSON value.

use super::Anonymizer;
use serde_json::{Number, Value};

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

/// A clock reading in seconds (an uptime) rounded down to the whole hour: exact uptimes let a
/// collector subtract them from the report's timestamp and link the per-start instance ids of
/// one machine.
pub(crate) fn round_clock(seconds: u64) -> u64 {
    seconds - seconds % 3600
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

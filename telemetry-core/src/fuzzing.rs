//! Internals the fuzz targets check (feature `fuzzing`): the readers and rules that have no
//! public entry point of their own. Not a stable API: it changes without notice.

use crate::product::consent::{ConsentError, ValueRule};
use crate::product::reporter::EndpointError;

/// The values FerretDB's rule reads as yes.
pub const YES: &[&str] = crate::product::consent::YES;
/// The values FerretDB's rule reads as no.
pub const NO: &[&str] = crate::product::consent::NO;
/// The schemes kept in front of a hashed URL.
pub const KEPT_URL_SCHEMES: &[&str] = crate::privacy::anonymize::KEPT_URL_SCHEMES;

/// A consent source's value read by `rule`: `Ok(true)` for yes.
///
/// # Errors
/// [`ConsentError::InvalidValue`] for a value the rule does not know.
pub fn parse_value(source: &str, value: &str, rule: ValueRule) -> Result<bool, ConsentError> {
    crate::product::consent::parse_value(source, value, rule)
}

/// `value` rounded toward zero to `digits` significant digits.
pub fn round_u64(value: u64, digits: u32) -> u64 {
    crate::privacy::anonymize::round_u64(value, digits)
}

/// `value`'s magnitude rounded toward zero to `digits` significant digits.
pub fn round_i64(value: i64, digits: u32) -> i64 {
    crate::privacy::anonymize::round_i64(value, digits)
}

/// `value` truncated to `digits` significant digits; `None` for NaN and infinities.
pub fn round_f64(value: f64, digits: u32) -> Option<f64> {
    crate::privacy::anonymize::round_f64(value, digits)
}

/// The reporter's rule for its collector endpoint.
///
/// # Errors
/// [`EndpointError`] naming what is wrong.
pub fn validate_endpoint(endpoint: &str) -> Result<(), EndpointError> {
    crate::product::reporter::validate_endpoint(endpoint)
}

/// The newer version a collector's answer announces, if any.
pub fn parse_version_notice(body: &[u8]) -> Option<String> {
    crate::product::reporter::parse_version_notice(body)
}

//! What a source's value says: the words FerretDB's rule reads as yes and as no, and the
//! reading itself.

use super::{ConsentError, ValueRule};

/// The values [`ValueRule::FerretDb`] reads as yes.
pub(crate) const YES: &[&str] = &[
    "1", "t", "true", "y", "yes", "on", "enable", "enabled", "optin", "opt-in", "allow",
];
/// The values [`ValueRule::FerretDb`] reads as no.
pub(crate) const NO: &[&str] = &[
    "0", "f", "false", "n", "no", "off", "disable", "disabled", "optout", "opt-out", "disallow",
    "forbid",
];

/// Reads `value` by `rule`: `Ok(true)` for yes.
///
/// # Errors
/// [`ConsentError::InvalidValue`] naming `source` and the accepted values, for a value the
/// FerretDB rule does not know (the Unleash rule accepts anything).
pub(crate) fn parse_value(
    source: &str,
    value: &str,
    rule: ValueRule,
) -> Result<bool, ConsentError> {
    let lower = value.trim().to_ascii_lowercase();
    match rule {
        // Exactly these, as Unleash compares them: `TRUE` or ` 1` is "anything other than"
        // them, so it says no (the reading that sends less).
        ValueRule::Unleash => Ok(matches!(value, "true" | "t" | "1")),
        ValueRule::FerretDb if YES.contains(&lower.as_str()) => Ok(true),
        ValueRule::FerretDb if NO.contains(&lower.as_str()) => Ok(false),
        ValueRule::FerretDb => Err(ConsentError::InvalidValue {
            setting: source.to_owned(),
            value: value.to_owned(),
        }),
    }
}

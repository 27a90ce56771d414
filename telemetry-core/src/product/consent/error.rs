//! Why consent could not be resolved or saved: [`ConsentError`].

use super::values::{NO, YES};

/// Why consent could not be resolved. Both are startup errors the product reports and exits
/// on: a silent guess would either send against the user's wish or ignore their opt-in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConsentError {
    /// A source holds a value that is neither yes nor no.
    #[error("{}", invalid_value(setting, value))]
    InvalidValue {
        /// The source, e.g. `--telemetry` or `EVENTSTORE_TELEMETRY_OPTOUT`.
        setting: String,
        /// What it held.
        value: String,
    },
    /// The CLI flag (or a request to enable) asks to enable while `DO_NOT_TRACK` or a
    /// `donottrack` executable name disables.
    #[error(
        "telemetry is disabled by {disabled_by}, which cannot be overridden: remove {flag} or \
         unset {disabled_by}"
    )]
    Conflict {
        /// What disables (`DO_NOT_TRACK` or the executable name).
        disabled_by: String,
        /// The flag that asks to enable.
        flag: String,
    },
    /// A runtime decision is in force for this run, but could not be saved in the state
    /// directory (read-only, full, or not a directory): the next start will not know it.
    #[error(
        "the telemetry decision holds for this run only: it could not be saved in the state \
         directory ({reason})"
    )]
    NotSaved {
        /// The I/O error, in words.
        reason: String,
    },
}

/// The message of [`ConsentError::InvalidValue`]. A short word (a typo such as `ture`) is
/// repeated; anything else (a path, an address pasted by mistake) is not, since the message
/// may be logged.
fn invalid_value(setting: &str, value: &str) -> String {
    let word = (1..=16).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let shown = if word {
        format!("invalid telemetry setting {setting}={value:?}")
    } else {
        format!("invalid telemetry setting {setting} (its value is not shown)")
    };
    format!(
        "{shown}: use one of {} to enable, or one of {} to disable",
        YES.join(", "),
        NO.join(", ")
    )
}

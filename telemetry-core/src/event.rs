//! Events and sections: typed reports of one user action (Automatisch's events), named and described in
//! the code, never free text.
//!
//! ```
//! use telemetry_core::{Event, Telemetry};
//!
//! /// A flow was created.
//! #[derive(Telemetry)]
//! #[telemetry(event = "flow_created")]
//! struct FlowCreated {
//!     steps: u32,
//!     #[telemetry(hash)]
//!     app_name: String,
//! }
//!
//! assert_eq!(<FlowCreated as Event>::NAME, "flow_created");
//! ```
//!
//! [`crate::reporter::Reporter::send_event`] sends one: the report's `trigger` is
//! `event:{NAME}` and its `event` section holds the anonymized value. The manifest lists every
//! event with its fields.

use crate::anonymize::Anonymize;

/// An event or schedule name: 1 to 64 lower-case ASCII letters, digits, `_` and `.`, starting
/// with a letter (it becomes a report's `trigger`).
pub(crate) fn is_trigger_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
}

/// A kind of event: a name fixed in the code and a payload that leaves only in anonymized
/// form. Implemented by `#[derive(Telemetry)]` with `#[telemetry(event = "name")]`, whose
/// name is 1 to 64 lower-case ASCII letters, digits, `_` and `.`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a telemetry event",
    label = "not an event",
    note = "derive it: `#[derive(Telemetry)] #[telemetry(event = \"name\")] struct {Self} {{ .. }}`"
)]
pub trait Event: Anonymize {
    /// The event's name, in the report's `trigger` as `event:{NAME}`.
    const NAME: &'static str;
}

/// A report section: a name fixed in the code and a value that leaves only in anonymized form,
/// listed in the manifest with its fields. Implemented by `#[derive(Telemetry)]` with
/// `#[telemetry(section = "name")]` (1 to 64 lower-case ASCII letters, digits, `_` and `.`);
/// added with [`crate::Report::add_section`] or
/// [`crate::reporter::ReporterBuilder::section`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a telemetry report section",
    label = "not a report section",
    note = "derive it: `#[derive(Telemetry)] #[telemetry(section = \"name\")] struct {Self} {{ .. }}`, \
            so the manifest lists its name and fields"
)]
pub trait Section: Anonymize {
    /// The section's key in the report's `sections`.
    const NAME: &'static str;
}

/// A section that may not be ready yet (`null` in the report until it is).
impl<T: Section> Section for Option<T> {
    const NAME: &'static str = T::NAME;
}

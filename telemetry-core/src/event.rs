//! Events: typed reports of one user action (Automatisch's events), named and described in
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

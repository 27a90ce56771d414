//! Events, sections and payloads: the typed parts of a report (a user action as Automatisch's
//! events are, a product's own section, a product's whole documented payload), named and
//! described in the code, never free text.
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
//! [`crate::product::reporter::Reporter::send_event`] sends one: the report's `trigger` is
//! `event:{NAME}` and its `event` section holds the anonymized value. The manifest lists every
//! event with its fields.

use crate::privacy::anonymize::Anonymize;
use crate::privacy::section_schema::SectionSchema;
use std::sync::{Mutex, PoisonError};

/// An event or schedule name: 1 to 64 lower-case ASCII letters, digits, `_` and `.`, starting
/// with a letter (it becomes a report's `trigger`); the rule the derive checks at compile time.
pub(crate) fn is_trigger_name(name: &str) -> bool {
    telemetry_rules::trigger_name(name)
}

/// A kind of event: a name fixed in the code and a payload that leaves only in anonymized
/// form. Implemented by `#[derive(Telemetry)]` with `#[telemetry(event = "name")]`, whose
/// name is 1 to 64 lower-case ASCII letters, digits, `_` and `.`. An event whose type was not
/// derived (so the manifest does not list it) is not sent, and this is logged once.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a telemetry event",
    label = "not an event",
    note = "derive it: `#[derive(Telemetry)] #[telemetry(event = \"name\")] struct {Self} {{ .. }}`"
)]
pub trait Event: Anonymize {
    /// The event's name, in the report's `trigger` as `event:{NAME}`.
    const NAME: &'static str;

    /// The derive's declaration of this type, so that only a derived type is sent. Written by
    /// `#[derive(Telemetry)]`; a hand-written implementation keeps the default (`None`) and is
    /// not sent, whatever name it gives itself.
    #[doc(hidden)]
    fn __declaration() -> Option<&'static SectionSchema> {
        None
    }
}

/// A report section: a name fixed in the code and a value that leaves only in anonymized form,
/// listed in the manifest with its fields. Implemented by `#[derive(Telemetry)]` with
/// `#[telemetry(section = "name")]` (1 to 64 lower-case ASCII letters, digits, `_` and `.`);
/// added with [`crate::Report::add_section`] or
/// [`crate::product::reporter::ReporterBuilder::section`]. A section whose type was not derived (so the
/// manifest does not list it) is left out of reports, and this is logged once.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a telemetry report section",
    label = "not a report section",
    note = "derive it: `#[derive(Telemetry)] #[telemetry(section = \"name\")] struct {Self} {{ .. }}`, \
            so the manifest lists its name and fields"
)]
pub trait Section: Anonymize {
    /// The section's key in the report's `sections`.
    const NAME: &'static str;

    /// The derive's declaration of this type, so that only a derived type is sent. Written by
    /// `#[derive(Telemetry)]`; a hand-written implementation keeps the default (`None`) and is
    /// not sent, whatever name it gives itself.
    #[doc(hidden)]
    fn __declaration() -> Option<&'static SectionSchema> {
        None
    }
}

/// A product's own report schema: the whole body its reporter sends instead of this crate's
/// report envelope, for a product whose collector expects its documented payload (the message
/// on EventStoreDB's "Usage telemetry" page, the `id` of Qdrant's telemetry API).
/// Implemented by `#[derive(Telemetry)]` with `#[telemetry(payload = "name")]` (1 to 64
/// lower-case ASCII letters, digits, `_` and `.`): every field has a rule the derive checked,
/// so a payload leaves anonymized as a section does, and the manifest lists it with its fields.
/// A payload whose type was not derived is not sent, and this is logged once. Given to
/// [`crate::product::reporter::ReporterBuilder::payload_shape`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a telemetry payload",
    label = "not a payload",
    note = "derive it: `#[derive(Telemetry)] #[telemetry(payload = \"name\")] struct {Self} {{ .. }}`, \
            so the manifest lists its fields"
)]
pub trait Payload: Anonymize {
    /// The payload's name in the manifest (the product's name for its schema).
    const NAME: &'static str;

    /// The derive's declaration of this type, so that only a derived type is sent. Written by
    /// `#[derive(Telemetry)]`; a hand-written implementation keeps the default (`None`) and is
    /// not sent, whatever name it gives itself.
    #[doc(hidden)]
    fn __declaration() -> Option<&'static SectionSchema> {
        None
    }
}

/// What a name was declared as by the derive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Declared {
    /// A top-level report section (`#[telemetry(section = "..")]`).
    Section,
    /// An event (`#[telemetry(event = "..")]`).
    Event,
    /// A whole payload (`#[telemetry(payload = "..")]`).
    Payload,
}

impl Declared {
    fn word(self) -> (&'static str, &'static str) {
        match self {
            Declared::Section => ("report section", "section"),
            Declared::Event => ("telemetry event", "event"),
            Declared::Payload => ("telemetry payload", "payload"),
        }
    }
}

/// A section that may not be ready yet (`null` in the report until it is).
impl<T: Section> Section for Option<T> {
    const NAME: &'static str = T::NAME;
    fn __declaration() -> Option<&'static SectionSchema> {
        T::__declaration()
    }
}

/// The names of hand-written sections and events already logged.
static LOGGED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

// Holds [`LOGGED`] until the guard is dropped (see [`crate::fork`]).
crate::fork::fork_hook!(LOGGED_FORK_HOOK, 5, || {
    Some(Box::new(
        LOGGED.lock().unwrap_or_else(PoisonError::into_inner),
    ))
});

/// Whether `declaration` (a type's [`Section::__declaration`], or an event's or payload's) is
/// the derive's declaration of `name` as `kind`, one the manifest lists. A hand-written
/// [`Section`], [`Event`] or [`Payload`] has none, even under a derived type's name: its value
/// could be any JSON the manifest does not describe. Logged once per name.
pub(crate) fn is_declared(
    declaration: Option<&'static SectionSchema>,
    name: &'static str,
    kind: Declared,
) -> bool {
    let declared = declaration.is_some_and(|declared| {
        declared.name == name
            && match kind {
                Declared::Section => declared.top_level,
                Declared::Event => declared.event,
                Declared::Payload => declared.payload,
            }
            // The very declaration the linker gathered, not a look-alike.
            && crate::privacy::section_schema::SECTIONS
                .iter()
                .any(|s| std::ptr::eq(s, declared))
    });
    if !declared {
        let first = {
            let mut logged = LOGGED.lock().unwrap_or_else(PoisonError::into_inner);
            let first = !logged.contains(&name);
            if first {
                logged.push(name);
            }
            first
        };
        // Logged outside the lock: a logger may do anything, a fork included.
        if first {
            let (what, key) = kind.word();
            crate::diagnostics::diag!(
                error,
                "a {what} implemented by hand is not sent: derive it with `#[derive(Telemetry)] #[telemetry({key} = \"...\")]` so the manifest lists it"
            );
        }
    }
    declared && is_trigger_name(name)
}

//! What `#[derive(Telemetry)]` declares about a report section, an event or a nested type:
//! its name, its fields and how each leaves the machine, collected by the linker into
//! [`SECTIONS`]. Read by the manifest (to list them) and by reports and events (to send only
//! what the derive declared). Public through `telemetry_core::manifest`.

use serde::Serialize;

/// Every `#[derive(Telemetry)]` type in the program, gathered at link time.
#[linkme::distributed_slice]
pub static SECTIONS: [SectionSchema];

/// How one field leaves the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldRule {
    /// By its type's `Anonymize` rule: numbers rounded, enums by name, nested sections.
    Anonymized,
    /// A keyed hash of the value (`#[telemetry(hash)]`).
    Hashed,
    /// A keyed hash of the URL, behind a well-known scheme (`#[telemetry(hash_url)]`).
    HashedUrl,
    /// As it is, vouched for with a reason (`#[telemetry(verbatim = "...")]`).
    Verbatim(&'static str),
    /// Never emitted (`#[telemetry(skip)]`).
    Skipped,
    /// A variant of an enum emitted by name.
    Variant,
}

/// One field of a `#[derive(Telemetry)]` type. Made by the derive; not built by hand.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct FieldSchema {
    /// The key in the report.
    pub name: &'static str,
    /// The Rust type as written.
    pub type_name: &'static str,
    /// The first line of the field's doc comment.
    pub description: &'static str,
    /// How it leaves the machine.
    pub rule: FieldRule,
    /// Whether it is personal data (marked, `Pii<..>`, or named like it).
    pub personal: bool,
    /// The reason given with `#[telemetry(not_pii = "...")]`.
    pub not_pii: Option<&'static str>,
    /// Why the field's type is safe to emit ([`crate::privacy::anonymize::Anonymize::SAFE_BECAUSE`]),
    /// for fields emitted by their type's rule; empty otherwise. A function, so that a field
    /// whose type has no rule is reported once (where it is emitted), not twice.
    #[serde(skip)]
    pub safe_because: fn() -> &'static str,
}

/// A `#[derive(Telemetry)]` type. Made by the derive; not built by hand.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SectionSchema {
    /// The section name (`#[telemetry(section = "...")]`, or the type's name).
    pub name: &'static str,
    /// Whether the type names a report section (`#[telemetry(section = "...")]`) rather than
    /// a type nested in one.
    pub top_level: bool,
    /// Whether the type is an event (`#[telemetry(event = "...")]`).
    pub event: bool,
    /// Whether the type is a product's whole payload (`#[telemetry(payload = "...")]`).
    pub payload: bool,
    /// The type's path.
    pub type_name: &'static str,
    /// The first line of the type's doc comment.
    pub description: &'static str,
    /// Its fields (or variants, for an enum).
    pub fields: &'static [FieldSchema],
}

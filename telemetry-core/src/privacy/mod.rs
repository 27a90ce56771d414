//! Privacy: what may leave the machine, and in what form.
//!
//! The PII guard ([`Pii`], the `Telemetry` derive's field rules), anonymization ([`anonymize`]:
//! rounding, keyed hashes, URL scrubbing), error counts by kind ([`ErrorKind`]), typed report
//! sections, events and payloads ([`Section`], [`Event`], [`Payload`]) and the [`manifest`]
//! that lists every one of them before the program runs. The closed label sets that key the
//! engine's series are in [`labels`](crate::labels), beside the engine that uses them.
//!
//! Privacy builds on the engine (it anonymizes snapshots and lists descriptors) and knows
//! nothing of consent, reports or delivery.

pub mod anonymize;
pub(crate) mod errors;
pub(crate) mod event;
pub mod manifest;
pub(crate) mod pii;
pub(crate) mod section_schema;

pub use errors::{ErrorKind, ErrorKindLabel};
pub use event::{Event, Payload, Section};
pub use pii::Pii;

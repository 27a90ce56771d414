//! Why the registry refused a registration: [`RegistryError`], public at the crate root.

use crate::engine::metadata::{InvalidName, Location, MetricKind, Unit};

/// Why a registration was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The name breaks the naming rule ([`crate::validate_name`]).
    #[error(transparent)]
    InvalidName(InvalidName),
    /// The name is already registered as another kind of metric.
    #[error(
        "metric `{name}` is already registered as a {existing} (declared at {existing_at}); it \
         cannot also be a {requested}: give one of them another name"
    )]
    KindConflict {
        /// The contested name.
        name: String,
        /// The kind it already has.
        existing: MetricKind,
        /// The kind that was asked for.
        requested: MetricKind,
        /// Where the existing metric was first declared.
        existing_at: Location,
    },
    /// The name is already registered with another unit.
    #[error(
        "metric `{name}` is already registered with unit {existing} (declared at \
         {existing_at}); it cannot also have unit {requested}: give one of them another name"
    )]
    UnitConflict {
        /// The contested name.
        name: String,
        /// The unit it already has.
        existing: Unit,
        /// The unit that was asked for.
        requested: Unit,
        /// Where the existing metric was first declared.
        existing_at: Location,
    },
    /// A callback gauge of this name is already registered; a gauge has one source of values.
    #[error("a callback gauge `{name}` is already registered; register it once and share it")]
    DuplicateCallback {
        /// The contested name.
        name: String,
    },
    /// The name is already registered with other label names.
    #[error(
        "metric `{name}` is already registered with labels {existing:?}; it cannot also have \
         labels {requested:?}: give one of them another name"
    )]
    LabelConflict {
        /// The contested name.
        name: String,
        /// The label names it already has.
        existing: Vec<String>,
        /// The label names that were asked for.
        requested: Vec<String>,
    },
    /// A label name breaks the rule: ASCII letters, digits and `_`, not starting with a digit,
    /// at most 64 bytes; at most [`crate::engine::labels::MAX_LABELS`] labels.
    #[error("invalid labels for metric `{name}`: {reason}")]
    InvalidLabel {
        /// The metric.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A declaration that the linker did not collect: one built at run time rather than by
    /// [`crate::counter!`], [`crate::gauge!`] or [`crate::histogram!`]. Every metric is
    /// declared in the code, so that the manifest lists it before the program runs.
    #[error(
        "metric `{name}` was not declared in the code: declare it with `counter!`, `gauge!` or \
         `histogram!` and a string literal, so that the manifest lists it"
    )]
    Undeclared {
        /// The refused name.
        name: String,
    },
}

//! What a call site declares: its metadata string, decoded on cold paths, and the values each
//! of its labels can take ([`LabelDomain`]).

use super::CallSite;
use crate::engine::labels::LabelValue;
use crate::engine::metadata::{Location, MetricKind, Unit};
use crate::engine::registry::Request;

/// The values one label of a call site can take, from its type. Made by the macros only; not a
/// stable API.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct LabelDomain {
    /// The type's listed values, if it lists them.
    pub values: Option<&'static [&'static str]>,
    /// Why the type's values carry no personal data.
    pub safe_because: &'static str,
}

impl LabelDomain {
    /// The values of `T`.
    pub const fn of<T: LabelValue + ?Sized>() -> Self {
        LabelDomain {
            values: T::VALUES.list(),
            safe_because: T::SAFE_BECAUSE,
        }
    }

    /// A string literal's one value.
    pub const fn literal(values: &'static [&'static str]) -> Self {
        LabelDomain {
            values: Some(values),
            safe_because: crate::engine::labels::LiteralLabel::SAFE_BECAUSE,
        }
    }
}

/// The fields of a call site's metadata string, separated by this byte (ASCII unit separator).
pub(crate) const META_SEPARATOR: char = '\x1f';

/// A call site's metadata, decoded.
pub(crate) struct SiteMeta {
    pub(crate) kind: MetricKind,
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
    /// Label names; empty for an unlabeled site.
    pub(crate) labels: Vec<&'static str>,
    pub(crate) max_series: usize,
    /// `#[timed(sample = N)]`'s `N`.
    pub(crate) sample_one_in: Option<u32>,
    pub(crate) location: Location,
}

impl SiteMeta {
    pub(crate) fn request(&self) -> Request<'_> {
        Request {
            name: self.name,
            kind: self.kind,
            unit: match self.kind {
                MetricKind::Histogram => Unit::Nanoseconds,
                _ => Unit::None,
            },
            description: self.description,
            location: self.location.clone(),
            labels: &self.labels,
            max_series: self.max_series,
            sample_one_in: self.sample_one_in,
        }
    }
}

impl CallSite {
    /// Each label's closed set of values, where its type has one.
    pub(crate) fn possible_values(&self) -> Vec<Option<&'static [&'static str]>> {
        self.domains.iter().map(|d| d.values).collect()
    }

    /// Each label type's reason its values are safe.
    pub(crate) fn reasons(&self) -> Vec<&'static str> {
        self.domains.iter().map(|d| d.safe_because).collect()
    }

    /// Decodes the metadata string.
    pub(crate) fn meta(&self) -> SiteMeta {
        let (rest, line) = self
            .meta
            .rsplit_once(META_SEPARATOR)
            .unwrap_or((self.meta, ""));
        let mut fields = rest.splitn(7, META_SEPARATOR);
        let mut next = || fields.next().unwrap_or("");
        // `histogram~N` for `#[timed(sample = N)]`.
        let kind_field = next();
        let (kind, sample_one_in) = match kind_field.split_once('~') {
            Some((kind, one_in)) => (kind, one_in.parse().ok()),
            None => (kind_field, None),
        };
        let kind = match kind {
            "histogram" => MetricKind::Histogram,
            _ => MetricKind::Counter,
        };
        let max_series = next()
            .parse()
            .unwrap_or(crate::engine::labels::DEFAULT_MAX_SERIES);
        let labels = next().split(',').filter(|l| !l.is_empty()).collect();
        let name = next();
        let description = next();
        let module_path = next();
        // The file is the rest: a path could hold the separator, the other fields cannot.
        let file = next();
        SiteMeta {
            kind,
            name,
            description,
            labels,
            max_series,
            sample_one_in,
            location: Location {
                module_path: module_path.to_owned(),
                file: file.to_owned(),
                line: line.parse().unwrap_or(0),
            },
        }
    }

    /// The site's kind, without decoding the rest.
    pub(super) fn kind(&self) -> MetricKind {
        if self.meta.starts_with("histogram") {
            MetricKind::Histogram
        } else {
            MetricKind::Counter
        }
    }
}

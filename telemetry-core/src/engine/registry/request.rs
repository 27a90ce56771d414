//! What a registration asks the registry for: a metric ([`Request`]) and one of its series
//! ([`SeriesRequest`]).

use crate::engine::metadata::{Location, MetricKind, Unit};

/// What a registration asks for.
pub(crate) struct Request<'a> {
    pub(crate) name: &'a str,
    pub(crate) kind: MetricKind,
    pub(crate) unit: Unit,
    pub(crate) description: &'a str,
    pub(crate) location: Location,
    /// Label names; empty for an unlabeled metric.
    pub(crate) labels: &'a [&'a str],
    /// The cap on series, for a labeled metric.
    pub(crate) max_series: usize,
    /// `#[timed(sample = N)]`: the histogram times 1 call in N.
    pub(crate) sample_one_in: Option<u32>,
}

/// The label values of one series, and each value type's closed set (if known).
pub(crate) struct SeriesRequest {
    pub(crate) values: Vec<std::borrow::Cow<'static, str>>,
    pub(crate) possible: Vec<Option<&'static [&'static str]>>,
    /// Each value type's `SAFE_BECAUSE` (empty where unknown).
    pub(crate) reasons: Vec<&'static str>,
}

impl SeriesRequest {
    pub(crate) fn unlabeled() -> Self {
        SeriesRequest {
            values: Vec::new(),
            possible: Vec::new(),
            reasons: Vec::new(),
        }
    }
}

//! What a metric is: its kind, unit, name rule and descriptor.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// A monotonic `u64` count (calls, events). Never decreases.
    Counter,
    /// An `i64` value that is set or adjusted (open connections, projects in the system).
    Gauge,
    /// A distribution of `u64` values (durations in ns, sizes in bytes) in log-linear buckets.
    Histogram,
}

impl MetricKind {
    /// The lowercase name used in JSON and messages: `counter`, `gauge` or `histogram`.
    pub const fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

impl fmt::Display for MetricKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The unit of a metric's values. Two registrations of one name must agree on it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A plain count or a dimensionless value.
    #[default]
    None,
    /// Nanoseconds: what `#[timed]` records.
    Nanoseconds,
    /// Bytes.
    Bytes,
    /// Seconds.
    Seconds,
}

impl Unit {
    /// The lowercase name used in JSON and messages (`none`, `nanoseconds`, `bytes`, `seconds`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Unit::None => "none",
            Unit::Nanoseconds => "nanoseconds",
            Unit::Bytes => "bytes",
            Unit::Seconds => "seconds",
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a metric was declared: the `module_path!()`, `file!()` and `line!()` of the call site
/// or of the code that registered it at run time.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Location {
    /// The Rust module path, e.g. `my_app::store`.
    pub module_path: String,
    /// The source file, relative to its crate's manifest directory as `file!()` gives it.
    pub file: String,
    /// The 1-based line number.
    pub line: u32,
}

impl fmt::Display for Location {
    /// `src/store.rs:42 (my_app::store)`: an absolute file path (a path dependency's, which
    /// carries a user or host name) is cut to its part from the last `src` directory, or to
    /// the file's name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} ({})",
            relative_file(&self.file),
            self.line,
            self.module_path
        )
    }
}

fn relative_file(file: &str) -> &str {
    let absolute = file.starts_with('/') || file.starts_with('\\') || file.get(1..3) == Some(":\\");
    if !absolute {
        return file;
    }
    let separators = ['/', '\\'];
    match file.rfind("/src/").or_else(|| file.rfind("\\src\\")) {
        Some(i) => &file[i + 1..],
        None => file.rsplit(separators).next().unwrap_or(file),
    }
}

/// Everything the registry knows about one metric, without its values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// The metric name; see [`validate_name`] for the rule.
    pub name: String,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// The unit of its values.
    pub unit: Unit,
    /// A one-line human description (empty if none was given).
    pub description: String,
    /// Every place that declares this metric: one per macro call site or run-time registration
    /// site. Two call sites may share a metric only if they agree on kind, unit and labels.
    pub declared_at: Vec<Location>,
    /// The label names, in order; empty for an unlabeled metric.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<LabelDescriptor>,
    /// For a labeled metric, the cap on its number of series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_series: Option<usize>,
    /// For a histogram of `#[timed(sample = N)]`: `N`, one call in `N` (on average) is timed
    /// and recorded `N` times, so its count, sum and buckets are estimates; `None` when every
    /// call is recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_one_in: Option<u32>,
}

/// One label of a metric.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelDescriptor {
    /// The label name.
    pub name: String,
    /// Every value it can take, when its type has a closed set (an enum, `bool`) and a series
    /// has been recorded; `None` for an open set (integers, `&'static str`), which is bounded
    /// by the metric's cap on series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    /// The reason a hand-written label type gives for its values
    /// ([`crate::LabelValue::SAFE_BECAUSE`]); types the derives and this crate implement are
    /// not listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vouched: Option<String>,
}

/// Whether `reason` was written by hand (not by a derive or this crate).
pub(crate) fn hand_written(reason: &str) -> Option<String> {
    (!reason.is_empty() && !reason.starts_with("built-in:") && !reason.starts_with("derived:"))
        .then(|| reason.to_owned())
}

/// The longest accepted metric name, in bytes.
pub const MAX_NAME_LEN: usize = telemetry_rules::MAX_NAME_LEN;

/// Why a metric name was rejected. Returned by [`validate_name`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid metric name `{name}`: {reason}; a name is segments of ASCII letters, digits and `_` \
     (not starting with a digit) joined by `.` or `::`, e.g. `store.insert` or `my_app::search`"
)]
pub struct InvalidName {
    /// The rejected name.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Checks a metric name against the naming rule.
///
/// A valid name is one or more *segments* joined by `.` or `::`. A segment is ASCII letters,
/// digits and `_`, and does not start with a digit. At most [`MAX_NAME_LEN`] bytes.
/// Examples: `store.insert`, `search.latency`, `my_app::store::insert.calls`.
///
/// The names that `#[count_usage]` and `#[timed]` derive when no `name` is given follow this
/// rule: `{module_path}::{function}.calls` and `{module_path}::{function}.duration`.
/// Exporters map names to their own alphabets (Prometheus: `.` and `::` become `_`).
///
/// # Errors
/// [`InvalidName`] saying which part of the rule is broken.
pub fn validate_name(name: &str) -> Result<(), InvalidName> {
    telemetry_rules::metric_name(name).map_err(|reason| InvalidName {
        name: name.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dotted_and_path_names() {
        for ok in [
            "a",
            "store.insert",
            "my_app::store::insert.calls",
            "_x.y_2",
            "A.B",
        ] {
            assert_eq!(validate_name(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_bad_names_with_a_reason() {
        for bad in [
            "", ".a", "a.", "a..b", "a:b", "a::", "1a", "a.1b", "a b", "a-b", "é",
        ] {
            let err = validate_name(bad).unwrap_err();
            assert_eq!(err.name, bad);
            assert!(err.to_string().contains("invalid metric name"), "{err}");
        }
        assert!(validate_name(&"a".repeat(201)).is_err());
        assert!(validate_name(&"a".repeat(200)).is_ok());
    }
}

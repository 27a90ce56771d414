//! The `/telemetry` document: its query (`details_level`, `anonymize`, as Qdrant's telemetry
//! API takes them) and the report's JSON at each level of detail.

use crate::engine::histogram_snapshot::HistogramSnapshot;
use crate::engine::snapshot::{Family, Labels, Series};
use crate::privacy::anonymize::Anonymizer;
use crate::product::report::Report;
use serde_json::{Value, json};

/// The highest details level of `/telemetry`: the whole report. Higher levels are the same.
pub const MAX_DETAILS_LEVEL: u8 = 3;

/// The parameters of `/telemetry`, parsed from a query string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TelemetryQuery {
    /// The details level, already clamped to [`MAX_DETAILS_LEVEL`].
    pub details_level: u8,
    /// Whether to answer with the anonymized report.
    pub anonymize: bool,
}

/// A query parameter with a value that is not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {parameter} `{value}`: expected {expected}")]
#[non_exhaustive]
pub struct QueryError {
    /// The parameter name.
    pub parameter: &'static str,
    /// The rejected value (percent-decoded).
    pub value: String,
    /// What is accepted.
    pub expected: &'static str,
}

impl TelemetryQuery {
    /// Parses `details_level` and `anonymize` from `query` (the part after `?`, without it;
    /// percent-encoding and `+` for space are decoded). Missing parameters take their
    /// defaults (0, `false`); unknown ones are ignored; a repeated one takes its last value.
    ///
    /// # Errors
    /// [`QueryError`] if `details_level` is not a whole number `>= 0` or `anonymize` is not
    /// `true`, `false`, `1` or `0`.
    pub fn parse(query: &str) -> Result<Self, QueryError> {
        let mut out = TelemetryQuery::default();
        for (key, value) in query_pairs(query) {
            match key.as_str() {
                "details_level" => {
                    let level: u64 = value.trim().parse().map_err(|_| QueryError {
                        parameter: "details_level",
                        value: value.clone(),
                        expected: "a whole number from 0 (counters only) to 3 (everything); \
                                   higher numbers mean 3",
                    })?;
                    out.details_level = level.min(u64::from(MAX_DETAILS_LEVEL)) as u8;
                }
                "anonymize" => {
                    out.anonymize = match value.trim().to_ascii_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(QueryError {
                                parameter: "anonymize",
                                value,
                                expected: "true or false",
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// The `key=value` pairs of a query string, decoded as HTML forms encode them (`%XX` and
/// `+`; invalid UTF-8 replaced).
pub(super) fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()))
}

/// The report as `/telemetry` shows it at `details_level`, anonymized or not.
///
/// | level | holds |
/// |-------|-------|
/// | 0 | `schema_version`, `framework`, `application`, `instance_id`, `timestamp`, `uptime_seconds`, and each counter's total over its labels (one unlabeled series); no gauges, histograms or sections |
/// | 1 | + each gauge's total, each histogram merged over its labels as a summary `{count, sum, min, max, p50, p90, p99}` (quantiles from the log-linear buckets, within 1/128; `null`s when empty), and the product's `sections` (configuration, system facts) |
/// | 2 | + every labeled series, instead of the totals (histograms still as summaries) |
/// | 3 (and above) | + full histograms with their buckets: the whole [`Report`] |
///
/// With `anonymize`, the level's view is made first (totals from the exact values) and then
/// anonymized by [`Report::anonymized`] (numbers rounded under the process's anonymizer;
/// summaries' quantiles rounded too), so at level 3 the result is exactly
/// `serde_json::to_value(report.anonymized())`: what the reporter sends. Without it, numbers
/// are exact. The JSON keeps the shape of the report (see [`Report`]) at every level.
pub fn telemetry_json(report: &Report, details_level: u8, anonymize: bool) -> Value {
    let level = details_level.min(MAX_DETAILS_LEVEL);
    let view = if level >= MAX_DETAILS_LEVEL {
        report.clone()
    } else {
        restrict(report, level)
    };
    let shown = if anonymize { view.anonymized() } else { view };
    let mut json = serde_json::to_value(&shown)
        .unwrap_or_else(|e| json!({ "error": format!("report could not be serialized: {e}") }));
    if level < MAX_DETAILS_LEVEL {
        let anonymizer = anonymize.then(crate::privacy::anonymize::global);
        for (name, family) in &shown.metrics.histograms {
            let Some(series) = json
                .pointer_mut(&format!(
                    "/metrics/histograms/{}/series",
                    name.replace('~', "~0").replace('/', "~1")
                ))
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for (slot, s) in series.iter_mut().zip(&family.series) {
                if let Some(value) = slot.get_mut("value") {
                    *value = summary(&s.value, anonymizer.as_deref());
                }
            }
        }
    }
    json
}

/// A histogram as `{count, sum, min, max, p50, p90, p99}`.
fn summary(h: &HistogramSnapshot, anonymizer: Option<&Anonymizer>) -> Value {
    let round = |v: u64| anonymizer.map_or(v, |a| a.round(v));
    let q = |q: f64| h.quantile(q).map(round);
    json!({
        "count": h.count(),
        "sum": h.sum(),
        "min": h.min(),
        "max": h.max(),
        "p50": q(0.5),
        "p90": q(0.9),
        "p99": q(0.99),
    })
}

/// The report with what `level` (0 to 2) does not show removed and, below 2, series merged.
fn restrict(report: &Report, level: u8) -> Report {
    let mut out = report.clone();
    let m = &report.metrics;
    if level == 0 {
        out.sections.clear();
        out.metrics.gauges.clear();
        out.metrics.histograms.clear();
    }
    if level < 2 {
        for (name, family) in out.metrics.counters.iter_mut() {
            family.series = total(m.counter(name).unwrap_or(0));
        }
        for (name, family) in out.metrics.gauges.iter_mut() {
            family.series = match m.gauge(name) {
                Some(v) => total(v),
                None => Vec::new(),
            };
        }
        for (name, family) in out.metrics.histograms.iter_mut() {
            *family = Family {
                unit: family.unit,
                description: std::mem::take(&mut family.description),
                series: total(m.histogram(name).unwrap_or_default()),
            };
        }
    }
    out
}

/// One unlabeled series holding `value`.
fn total<V>(value: V) -> Vec<Series<V>> {
    vec![Series {
        labels: Labels::new(),
        value,
    }]
}

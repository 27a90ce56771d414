//! A [`Snapshot`] in the Prometheus text exposition format 0.0.4 and in OpenMetrics text 1.0.
//!
//! ```
//! use telemetry_core::export::prometheus::{Exposition, Format};
//! use telemetry_core::{Counter, testing};
//!
//! let orders = Counter::builder("docs.prom.orders").description("Orders placed").register().unwrap();
//! let snap = testing::capture(|| orders.increment_by(3));
//! let text = Exposition::new().with_prefix("shop_").unwrap().render(&snap, Format::Prometheus);
//! assert!(text.contains("# TYPE shop_docs_prom_orders_total counter\nshop_docs_prom_orders_total 3\n"));
//! ```
//!
//! # Names
//! Prometheus metric names match `[a-zA-Z_:][a-zA-Z0-9_:]*`, and colons are reserved for
//! recording rules. A metric name is mapped by [`sanitize_name`]:
//! 1. `::` and `.` become `_`, and so does any other character outside `[a-zA-Z0-9_]`
//!    (`docstore::store::insert.calls` gives `docstore_store_insert_calls`);
//! 2. a name starting with a digit gets a leading `_`;
//! 3. the optional prefix ([`Exposition::with_prefix`], e.g. `docstore_`) is put in front;
//! 4. the unit suffix is appended unless the name already ends with it: `_seconds` for
//!    [`Unit::Nanoseconds`] and [`Unit::Seconds`], `_bytes` for [`Unit::Bytes`];
//! 5. counters: the family is that name (a trailing `_total` is removed) and the sample is
//!    `{family}_total`.
//!
//! If two metrics end up with the same family name or sample name (`a.b` and `a_b`), the one
//! rendered later (counters, then gauges, then histograms, each in name order) gets `_2`
//! (then `_3`, ...) before its unit suffix, so the output always parses. Label names are
//! mapped the same way (no prefix, no suffix); a label named `le` on a histogram, or one that
//! starts with `__` (reserved by Prometheus), is renamed `label_{name}`.
//!
//! The `# HELP` text is the metric's description, or its original name if it has none.
//!
//! # Units
//! Prometheus wants base units. Values in [`Unit::Nanoseconds`] (everything `#[timed]`
//! records) are exported in seconds: values, bucket bounds and sums divided by 10^9.
//! [`Unit::Seconds`] and [`Unit::Bytes`] are exported as they are, with their suffix;
//! [`Unit::None`] gets no suffix and no `# UNIT` line.
//!
//! # Histograms
//! Our histograms count into up to 3776 fine log-linear buckets (exact below 128, then 64 per
//! power of two). Exporting all of them is too much for Prometheus, so a [`BucketLayout`] picks
//! the `le` boundaries, by default 4 per power of two ([`BucketLayout::DEFAULT_PER_DOUBLING`])
//! across the observed range. Every boundary is the upper bound of a fine bucket, so every
//! `_bucket{le="b"}` count is exact: the number of recorded values `v <= b`. Buckets are
//! cumulative and end with `le="+Inf"`, which equals `_count`. See [`BucketLayout`] for the
//! error of `histogram_quantile` on them.
//!
//! # Formats
//! - [`Format::Prometheus`]: text format 0.0.4, content type [`PROMETHEUS_CONTENT_TYPE`].
//!   Counters carry `# HELP` and `# TYPE` under their sample name `x_total`.
//! - [`Format::OpenMetrics`]: OpenMetrics 1.0 text, content type
//!   [`OPENMETRICS_CONTENT_TYPE`]: `# HELP`, `# TYPE` and `# UNIT` under the family name,
//!   counter samples `x_total`, and `# EOF` at the end.
//!
//! Label values escape `\` as `\\`, `"` as `\"` and a line feed as `\n` (both formats);
//! `# HELP` text escapes `\` and line feeds (0.0.4) and also `"` (OpenMetrics). Floats are
//! written in Rust's shortest round-trip form (`1.023e-6`), always with a `.` or an exponent
//! in `le` labels (`1.0`, as OpenMetrics asks); `+Inf`, `-Inf` and `NaN` as the formats spell
//! them. No timestamps are written: the scraper stamps samples.

use crate::buckets::{bucket_index, bucket_lower, bucket_upper};
use crate::metadata::{MetricKind, Unit};
use crate::snapshot::{Family, HistogramSnapshot, Labels, Snapshot};
use std::collections::HashSet;
use std::fmt::{self, Write as _};

/// The content type of the Prometheus text exposition format 0.0.4.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The content type of OpenMetrics 1.0 text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The text formats this module writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// The Prometheus text exposition format 0.0.4 (the default of `/metrics`).
    #[default]
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    /// The HTTP `Content-Type` of the format: [`PROMETHEUS_CONTENT_TYPE`] or
    /// [`OPENMETRICS_CONTENT_TYPE`].
    pub const fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => PROMETHEUS_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }

    /// The format to answer an HTTP `Accept` header with (proactive negotiation, RFC 9110
    /// §12.5.1): OpenMetrics 1.0 if `application/openmetrics-text` (version `1.0.0`, `0.0.1`
    /// or none) has a higher quality than `text/plain` and `*/*`, or the same quality and comes
    /// first; Prometheus text 0.0.4 otherwise, including without a header, for `*/*` and for
    /// headers that cannot be parsed. Prometheus servers send
    /// `application/openmetrics-text;version=1.0.0,...,text/plain;version=0.0.4;q=0.5,...`
    /// and get OpenMetrics.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Prometheus;
        };
        // (quality, position) of the best range for each format; higher quality wins, then
        // the earlier position.
        let mut best_text: Option<(f64, usize)> = None;
        let mut best_om: Option<(f64, usize)> = None;
        for (position, range) in accept.split(',').enumerate() {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let mut quality = 1.0f64;
            let mut version: Option<String> = None;
            for param in parts {
                let Some((key, value)) = param.split_once('=') else {
                    continue;
                };
                let value = value.trim().trim_matches('"');
                match key.trim().to_ascii_lowercase().as_str() {
                    "q" => quality = value.parse().unwrap_or(0.0),
                    "version" => version = Some(value.to_owned()),
                    _ => {}
                }
            }
            if !(quality > 0.0 && quality <= 1.0) {
                continue;
            }
            let slot = match media.as_str() {
                "application/openmetrics-text"
                    if version
                        .as_deref()
                        .is_none_or(|v| v == "1.0.0" || v == "0.0.1") =>
                {
                    &mut best_om
                }
                "text/plain" | "text/*" | "*/*"
                    if version.as_deref().is_none_or(|v| v == "0.0.4") =>
                {
                    &mut best_text
                }
                _ => continue,
            };
            if slot.is_none_or(|(q, _)| quality > q) {
                *slot = Some((quality, position));
            }
        }
        match (best_om, best_text) {
            (Some(_), None) => Format::OpenMetrics,
            (Some((qo, po)), Some((qt, pt))) if qo > qt || (qo == qt && po < pt) => {
                Format::OpenMetrics
            }
            _ => Format::Prometheus,
        }
    }

    /// The format named `prometheus` (also `text`, `0.0.4`) or `openmetrics`, for a
    /// `?format=` query parameter; `None` for any other name.
    pub fn from_name(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "prometheus" | "text" | "0.0.4" => Some(Format::Prometheus),
            "openmetrics" | "open-metrics" | "openmetrics-text" => Some(Format::OpenMetrics),
            _ => None,
        }
    }
}

/// Why an [`Exposition`] or a [`BucketLayout`] could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpositionError {
    /// The name prefix is not `[a-zA-Z_][a-zA-Z0-9_]*` (or is longer than 100 bytes).
    InvalidPrefix {
        /// The rejected prefix.
        prefix: String,
    },
    /// `per_doubling` is not one of 1, 2, 4, 8, 16, 32, 64.
    InvalidPerDoubling {
        /// The rejected value.
        per_doubling: u32,
    },
    /// The explicit boundary list is empty or longer than [`BucketLayout::MAX_EXPLICIT`].
    InvalidExplicitBounds {
        /// How many boundaries were given.
        len: usize,
    },
}

impl fmt::Display for ExpositionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpositionError::InvalidPrefix { prefix } => write!(
                f,
                "invalid metric name prefix `{prefix}`: a prefix is ASCII letters, digits and `_`, \
                 not starting with a digit, at most 100 bytes, e.g. `docstore_`"
            ),
            ExpositionError::InvalidPerDoubling { per_doubling } => write!(
                f,
                "invalid bucket layout: {per_doubling} buckets per power of two; use 1, 2, 4, 8, \
                 16, 32 or 64 (powers of two up to the 64 fine buckets of each power of two)"
            ),
            ExpositionError::InvalidExplicitBounds { len } => write!(
                f,
                "invalid bucket layout: {len} explicit boundaries; give from 1 to {}",
                BucketLayout::MAX_EXPLICIT
            ),
        }
    }
}

impl std::error::Error for ExpositionError {}

/// Which `le` boundaries a histogram is exported with (also the explicit bounds of the OTLP
/// exporter).
///
/// Every boundary is the inclusive upper bound of one of the fine buckets of our log-linear
/// layout (values `0..128` exact, then 64 buckets per power of two), so the exported counts
/// are exact: bucket `le = b` counts exactly the recorded values `v <= b`. Boundaries are in
/// the metric's recorded unit (nanoseconds for `#[timed]`; the text is converted to seconds).
/// All series of one metric share the boundaries, computed over the values of all of them.
///
/// # The error of `histogram_quantile`
/// Prometheus interpolates linearly inside the bucket `(b[i-1], b[i]]` that holds the rank it
/// looks for; the true value is in the same bucket, so the error is at most the bucket's width.
/// - [`log_linear(k)`](Self::log_linear) (default `k` = 4): each power of two `[2^e, 2^(e+1))`
///   is split into `k` equal buckets, whose upper bounds are `2^e * (1 + j/k) - 1` for
///   `j = 1..=k` (ratio between neighbours at most `1 + 1/k`). The relative error of
///   `histogram_quantile` is at most `1/k` of the true value (25% for the default 4, 12.5% for
///   8, 1.6% for 64), or one unit of the recorded value (1 ns), whichever is larger: below `k`
///   the buckets are single values. Boundaries cover the observed range, from the bucket below
///   the smallest value to the one holding the largest, contiguously, so they change only when
///   a value falls outside the range seen so far; about `k` boundaries per power of two
///   (`4 * 23 = 92` at most for durations from 1 µs to 10 s).
/// - [`fine()`](Self::fine): the fine buckets themselves, only around the non-empty ones
///   (the bound below each non-empty bucket and its upper bound): error at most 1/64 of the
///   value (1.6%), up to two boundaries per non-empty fine bucket.
/// - [`explicit(bounds)`](Self::explicit): fixed boundaries, each moved down to the nearest
///   fine-bucket upper bound (at most 1/64 below the requested value) so counts stay exact.
///   The error then depends on the boundaries; [`max_relative_error`](Self::max_relative_error)
///   is `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketLayout {
    kind: LayoutKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum LayoutKind {
    LogLinear(u32),
    Fine,
    Explicit(Vec<u64>),
}

impl Default for BucketLayout {
    /// [`log_linear`](Self::log_linear) with [`DEFAULT_PER_DOUBLING`](Self::DEFAULT_PER_DOUBLING).
    fn default() -> Self {
        BucketLayout {
            kind: LayoutKind::LogLinear(Self::DEFAULT_PER_DOUBLING),
        }
    }
}

impl BucketLayout {
    /// Buckets per power of two of the default layout: 4 (`histogram_quantile` within 25%).
    pub const DEFAULT_PER_DOUBLING: u32 = 4;

    /// The most boundaries [`explicit`](Self::explicit) accepts: 1024.
    pub const MAX_EXPLICIT: usize = 1024;

    /// `per_doubling` equal buckets per power of two across the observed range.
    ///
    /// # Errors
    /// [`ExpositionError::InvalidPerDoubling`] unless `per_doubling` is 1, 2, 4, 8, 16, 32 or
    /// 64 (a boundary must be an upper bound of the 64 fine buckets of each power of two).
    pub fn log_linear(per_doubling: u32) -> Result<Self, ExpositionError> {
        if !(per_doubling.is_power_of_two() && per_doubling <= 64) {
            return Err(ExpositionError::InvalidPerDoubling { per_doubling });
        }
        Ok(BucketLayout {
            kind: LayoutKind::LogLinear(per_doubling),
        })
    }

    /// The fine buckets around every non-empty one (see the type's docs).
    pub fn fine() -> Self {
        BucketLayout {
            kind: LayoutKind::Fine,
        }
    }

    /// Fixed boundaries in the metric's recorded unit (nanoseconds for `#[timed]`), each moved
    /// down to the nearest upper bound of a fine bucket, sorted and deduplicated.
    ///
    /// # Errors
    /// [`ExpositionError::InvalidExplicitBounds`] if `bounds` is empty or longer than
    /// [`MAX_EXPLICIT`](Self::MAX_EXPLICIT).
    pub fn explicit(bounds: &[u64]) -> Result<Self, ExpositionError> {
        if bounds.is_empty() || bounds.len() > Self::MAX_EXPLICIT {
            return Err(ExpositionError::InvalidExplicitBounds { len: bounds.len() });
        }
        let mut snapped: Vec<u64> = bounds.iter().map(|&b| fine_upper_at_or_below(b)).collect();
        snapped.sort_unstable();
        snapped.dedup();
        Ok(BucketLayout {
            kind: LayoutKind::Explicit(snapped),
        })
    }

    /// The bound on the relative error of Prometheus' `histogram_quantile` (and of any linear
    /// interpolation inside the exported buckets), as a fraction of the true value, for values
    /// of at least `per_doubling` units: `1/per_doubling` for [`log_linear`](Self::log_linear),
    /// `1/64` for [`fine`](Self::fine), `None` for [`explicit`](Self::explicit).
    pub fn max_relative_error(&self) -> Option<f64> {
        match &self.kind {
            LayoutKind::LogLinear(k) => Some(1.0 / f64::from(*k)),
            LayoutKind::Fine => Some(1.0 / 64.0),
            LayoutKind::Explicit(_) => None,
        }
    }

    /// The boundaries for a metric whose series are `histograms`: ascending inclusive upper
    /// bounds in the recorded unit, without the final `+Inf`. Empty if no value was recorded
    /// (an empty histogram has only the `+Inf` bucket).
    pub fn boundaries<'a>(
        &self,
        histograms: impl IntoIterator<Item = &'a HistogramSnapshot>,
    ) -> Vec<u64> {
        if let LayoutKind::Explicit(bounds) = &self.kind {
            return bounds.clone();
        }
        let mut lowest = u64::MAX;
        let mut highest = 0u64;
        let mut any = false;
        let mut fine: Vec<(u64, u64)> = Vec::new();
        for h in histograms {
            for b in h.buckets().filter(|b| b.count > 0) {
                any = true;
                lowest = lowest.min(b.lower);
                highest = highest.max(b.upper);
                if matches!(self.kind, LayoutKind::Fine) {
                    fine.push((b.lower, b.upper));
                }
            }
        }
        if !any {
            return Vec::new();
        }
        match &self.kind {
            LayoutKind::LogLinear(k) => {
                let k = u64::from(*k);
                let start = grid_upper(lowest, k);
                let end = grid_upper(highest, k);
                let mut out = Vec::new();
                let mut point = grid_below(start, k).unwrap_or(start);
                loop {
                    out.push(point);
                    if point >= end || point == u64::MAX {
                        break;
                    }
                    point = grid_upper(point + 1, k);
                }
                out
            }
            LayoutKind::Fine => {
                let mut out = Vec::with_capacity(fine.len() * 2);
                for (lower, upper) in fine {
                    if lower > 0 {
                        out.push(lower - 1);
                    }
                    out.push(upper);
                }
                out.sort_unstable();
                out.dedup();
                out
            }
            LayoutKind::Explicit(_) => unreachable!("handled above"),
        }
    }
}

/// The smallest point `>= v` of the log-linear grid with `k` buckets per power of two: `0`,
/// `1`, then `2^e + j * 2^e / min(k, 2^e) - 1` for `j = 1..=min(k, 2^e)` in each `[2^e, 2^(e+1))`.
fn grid_upper(v: u64, k: u64) -> u64 {
    if v <= 1 {
        return v;
    }
    let e = 63 - v.leading_zeros();
    let base = 1u128 << e;
    let parts = k.min(1u64 << e);
    let step = (1u64 << e) / parts;
    let j = (v - (1u64 << e)) / step + 1;
    (base + u128::from(j) * u128::from(step) - 1) as u64
}

/// The grid point before grid point `point`, `None` below 0.
fn grid_below(point: u64, k: u64) -> Option<u64> {
    match point {
        0 => None,
        1 => Some(0),
        _ => {
            let e = 63 - point.leading_zeros();
            let parts = k.min(1u64 << e);
            Some(point - (1u64 << e) / parts)
        }
    }
}

/// The largest upper bound of a fine bucket that is `<= v`.
fn fine_upper_at_or_below(v: u64) -> u64 {
    let index = bucket_index(v);
    if bucket_upper(index) == v {
        v
    } else {
        // `v` is inside a wider bucket: the previous bucket ends just below it.
        bucket_lower(index).saturating_sub(1)
    }
}

/// Cumulative counts of `h` at each boundary of `bounds` (ascending upper bounds of fine
/// buckets): entry `i` is the number of values `<= bounds[i]`, capped at `h.count()`.
pub(crate) fn cumulative_counts(h: &HistogramSnapshot, bounds: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(bounds.len());
    let mut fine = h.buckets().peekable();
    let mut running = 0u64;
    for &bound in bounds {
        while let Some(b) = fine.peek() {
            if b.upper > bound {
                break;
            }
            running = running.saturating_add(b.count);
            fine.next();
        }
        out.push(running.min(h.count()));
    }
    out
}

/// Maps a metric (or label) name to Prometheus' alphabet: `::`, `.` and every other character
/// outside `[a-zA-Z0-9_]` become `_` (`::` as a single `_`), and a leading digit gets a `_` in
/// front. An empty name gives `_`. The result matches `[a-zA-Z_][a-zA-Z0-9_]*`.
///
/// ```
/// use telemetry_core::export::prometheus::sanitize_name;
/// assert_eq!(sanitize_name("docstore::store::insert.calls"), "docstore_store_insert_calls");
/// assert_eq!(sanitize_name("9lives-café"), "_9lives_caf_");
/// ```
pub fn sanitize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("::") {
            out.push('_');
            rest = after;
            continue;
        }
        out.push(if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        });
        rest = &rest[c.len_utf8()..];
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The unit suffix and the factor values are divided by, in exposition.
fn unit_export(unit: Unit) -> (Option<&'static str>, Option<f64>) {
    match unit {
        Unit::None => (None, None),
        Unit::Nanoseconds => (Some("seconds"), Some(1e9)),
        Unit::Seconds => (Some("seconds"), None),
        Unit::Bytes => (Some("bytes"), None),
    }
}

/// Options of the Prometheus and OpenMetrics text output: the name prefix and the histogram
/// bucket layout. `Exposition::new()` has no prefix and the default [`BucketLayout`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exposition {
    prefix: String,
    layout: BucketLayout,
}

/// One metric family as it will be written.
struct Planned<'a> {
    kind: MetricKind,
    original: &'a str,
    /// The family name: for OpenMetrics metadata lines, and the base of histogram samples.
    family: String,
    unit: Option<&'static str>,
    scale: Option<f64>,
    help: &'a str,
}

impl Exposition {
    /// No prefix, the default bucket layout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `prefix` in front of every metric name (`docstore_`), after sanitizing.
    ///
    /// # Errors
    /// [`ExpositionError::InvalidPrefix`] unless `prefix` is `[a-zA-Z_][a-zA-Z0-9_]*` of at
    /// most 100 bytes (colons are reserved for recording rules). An empty prefix is accepted
    /// and means none.
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self, ExpositionError> {
        let valid = prefix.len() <= 100
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !prefix.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(ExpositionError::InvalidPrefix {
                prefix: prefix.to_owned(),
            });
        }
        self.prefix = prefix.to_owned();
        Ok(self)
    }

    /// Uses `layout` for histogram buckets.
    pub fn with_layout(mut self, layout: BucketLayout) -> Self {
        self.layout = layout;
        self
    }

    /// The name prefix (empty for none).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The histogram bucket layout.
    pub fn layout(&self) -> &BucketLayout {
        &self.layout
    }

    /// The family name of metric `name` of `kind` and `unit` under the rule in the module
    /// docs, ignoring collisions with other metrics: `counter` `docstore.cache.hits` gives
    /// family `docstore_cache_hits` (sample `docstore_cache_hits_total`), a `#[timed]`
    /// histogram `search.duration` gives `search_duration_seconds`.
    pub fn family_name(&self, name: &str, kind: MetricKind, unit: Unit) -> String {
        self.base_and_family(name, kind, unit, 1)
    }

    fn base_and_family(&self, name: &str, kind: MetricKind, unit: Unit, attempt: u32) -> String {
        let mut base = format!("{}{}", self.prefix, sanitize_name(name));
        if kind == MetricKind::Counter {
            while let Some(stripped) = base.strip_suffix("_total") {
                if stripped.is_empty() {
                    break;
                }
                base.truncate(stripped.len());
            }
        }
        let suffix = unit_export(unit).0;
        if let Some(s) = suffix {
            let with_underscore = format!("_{s}");
            if let Some(stripped) = base.strip_suffix(&with_underscore)
                && !stripped.is_empty()
            {
                base.truncate(stripped.len());
            }
        }
        if attempt > 1 {
            let _ = write!(base, "_{attempt}");
        }
        if let Some(s) = suffix {
            let _ = write!(base, "_{s}");
        }
        base
    }

    /// Family names of every metric of `snapshot`, with collisions resolved.
    fn plan<'a>(&self, snapshot: &'a Snapshot) -> Vec<Planned<'a>> {
        let mut taken: HashSet<String> = HashSet::new();
        let mut out = Vec::with_capacity(snapshot.len());
        let mut add = |kind: MetricKind, name: &'a str, unit: Unit, description: &'a str| {
            let mut attempt = 1;
            let family = loop {
                let family = self.base_and_family(name, kind, unit, attempt);
                let names = sample_names(kind, &family);
                if attempt > 1000 || names.iter().all(|n| !taken.contains(n)) {
                    taken.extend(names);
                    break family;
                }
                attempt += 1;
            };
            let (suffix, scale) = unit_export(unit);
            out.push(Planned {
                kind,
                original: name,
                family,
                unit: suffix,
                scale,
                help: if description.is_empty() {
                    name
                } else {
                    description
                },
            });
        };
        for (name, f) in &snapshot.counters {
            add(MetricKind::Counter, name, f.unit, &f.description);
        }
        for (name, f) in &snapshot.gauges {
            add(MetricKind::Gauge, name, f.unit, &f.description);
        }
        for (name, f) in &snapshot.histograms {
            add(MetricKind::Histogram, name, f.unit, &f.description);
        }
        out
    }

    /// `snapshot` as text in `format`; see the module docs for the rules.
    ///
    /// Never fails and never panics, also for snapshots deserialized from untrusted JSON
    /// (bucket counts are capped at the histogram's count). Metrics without any series
    /// (a labeled metric not used yet, a callback gauge whose callback panicked) are left out.
    pub fn render(&self, snapshot: &Snapshot, format: Format) -> String {
        let mut out = String::with_capacity(256 * snapshot.len() + 16);
        for planned in self.plan(snapshot) {
            match planned.kind {
                MetricKind::Counter => {
                    if let Some(f) = snapshot.counters.get(planned.original) {
                        self.write_counter(&mut out, &planned, f, format);
                    }
                }
                MetricKind::Gauge => {
                    if let Some(f) = snapshot.gauges.get(planned.original) {
                        self.write_gauge(&mut out, &planned, f, format);
                    }
                }
                MetricKind::Histogram => {
                    if let Some(f) = snapshot.histograms.get(planned.original) {
                        self.write_histogram(&mut out, &planned, f, format);
                    }
                }
            }
        }
        if format == Format::OpenMetrics {
            out.push_str("# EOF\n");
        }
        out
    }

    fn write_counter(&self, out: &mut String, p: &Planned<'_>, f: &Family<u64>, format: Format) {
        if f.series.is_empty() {
            return;
        }
        let sample = format!("{}_total", p.family);
        let meta_name = match format {
            Format::Prometheus => &sample,
            Format::OpenMetrics => &p.family,
        };
        write_metadata(out, meta_name, "counter", p, format);
        for s in &f.series {
            let value = match p.scale {
                None => s.value.to_string(),
                Some(d) => fmt_float(s.value as f64 / d),
            };
            write_sample(out, &sample, &s.labels, None, &value, false);
        }
    }

    fn write_gauge(&self, out: &mut String, p: &Planned<'_>, f: &Family<i64>, format: Format) {
        if f.series.is_empty() {
            return;
        }
        write_metadata(out, &p.family, "gauge", p, format);
        for s in &f.series {
            let value = match p.scale {
                None => s.value.to_string(),
                Some(d) => fmt_float(s.value as f64 / d),
            };
            write_sample(out, &p.family, &s.labels, None, &value, false);
        }
    }

    fn write_histogram(
        &self,
        out: &mut String,
        p: &Planned<'_>,
        f: &Family<HistogramSnapshot>,
        format: Format,
    ) {
        if f.series.is_empty() {
            return;
        }
        write_metadata(out, &p.family, "histogram", p, format);
        let bounds = self.layout.boundaries(f.series.iter().map(|s| &s.value));
        let les: Vec<String> = bounds
            .iter()
            .map(|&b| fmt_float(scaled(b, p.scale)))
            .collect();
        let bucket = format!("{}_bucket", p.family);
        let sum = format!("{}_sum", p.family);
        let count = format!("{}_count", p.family);
        for s in &f.series {
            let h = &s.value;
            for (le, n) in les.iter().zip(cumulative_counts(h, &bounds)) {
                write_sample(out, &bucket, &s.labels, Some(le), &n.to_string(), true);
            }
            write_sample(
                out,
                &bucket,
                &s.labels,
                Some("+Inf"),
                &h.count().to_string(),
                true,
            );
            let sum_text = match p.scale {
                None => h.sum().to_string(),
                Some(d) => fmt_float(h.sum() as f64 / d),
            };
            write_sample(out, &sum, &s.labels, None, &sum_text, true);
            write_sample(out, &count, &s.labels, None, &h.count().to_string(), true);
        }
    }
}

/// Every name a family of `kind` named `family` writes (family and sample names).
fn sample_names(kind: MetricKind, family: &str) -> Vec<String> {
    match kind {
        MetricKind::Counter => vec![family.to_owned(), format!("{family}_total")],
        MetricKind::Gauge => vec![family.to_owned()],
        MetricKind::Histogram => vec![
            family.to_owned(),
            format!("{family}_bucket"),
            format!("{family}_sum"),
            format!("{family}_count"),
        ],
    }
}

fn write_metadata(out: &mut String, name: &str, kind: &str, p: &Planned<'_>, format: Format) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    escape_help(out, p.help, format);
    out.push('\n');
    let _ = writeln!(out, "# TYPE {name} {kind}");
    if format == Format::OpenMetrics
        && let Some(unit) = p.unit
    {
        let _ = writeln!(out, "# UNIT {name} {unit}");
    }
}

fn write_sample(
    out: &mut String,
    name: &str,
    labels: &Labels,
    le: Option<&str>,
    value: &str,
    histogram: bool,
) {
    out.push_str(name);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        let mut seen: Vec<String> = Vec::with_capacity(labels.len());
        for (i, (key, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let mut key = label_name(key, histogram);
            let first = key.clone();
            let mut n = 2;
            while seen.contains(&key) {
                key = format!("{first}_{n}");
                n += 1;
            }
            out.push_str(&key);
            out.push_str("=\"");
            escape_label_value(out, v);
            out.push('"');
            seen.push(key);
        }
        if let Some(le) = le {
            if !labels.is_empty() {
                out.push(',');
            }
            out.push_str("le=\"");
            out.push_str(le);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(value);
    out.push('\n');
}

/// A label name under the name rule; `le` on histograms and `__*` are renamed `label_{name}`.
fn label_name(name: &str, histogram: bool) -> String {
    let clean = sanitize_name(name);
    if clean.starts_with("__") || (histogram && clean == "le") {
        format!("label_{clean}")
    } else {
        clean
    }
}

/// Escapes a label value: `\` → `\\`, `"` → `\"`, line feed → `\n` (both formats).
fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Escapes `# HELP` text: `\` and line feeds, and `"` too in OpenMetrics.
fn escape_help(out: &mut String, text: &str, format: Format) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if format == Format::OpenMetrics => out.push_str("\\\""),
            '\r' => {}
            c => out.push(c),
        }
    }
}

fn scaled(value: u64, scale: Option<f64>) -> f64 {
    match scale {
        None => value as f64,
        Some(d) => value as f64 / d,
    }
}

/// A float as the formats spell it: shortest round-trip digits, `+Inf`, `-Inf`, `NaN`.
pub(crate) fn fmt_float(x: f64) -> String {
    if x.is_nan() {
        "NaN".to_owned()
    } else if x.is_infinite() {
        if x > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        // `Debug` is the shortest representation that reads back as the same float, with an
        // exponent for very small and very large magnitudes (`1.023e-6`), and always a `.` or
        // an exponent.
        format!("{x:?}")
    }
}

/// [`Exposition::new`]`.render(snapshot, Format::Prometheus)`: text format 0.0.4 with no
/// prefix and the default bucket layout.
pub fn render_prometheus(snapshot: &Snapshot) -> String {
    Exposition::new().render(snapshot, Format::Prometheus)
}

/// [`Exposition::new`]`.render(snapshot, Format::OpenMetrics)`: OpenMetrics 1.0 text with no
/// prefix and the default bucket layout.
pub fn render_openmetrics(snapshot: &Snapshot) -> String {
    Exposition::new().render(snapshot, Format::OpenMetrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_points_are_fine_bucket_upper_bounds() {
        for k in [1u64, 2, 4, 8, 16, 32, 64] {
            let mut v = 0u64;
            while v < u64::MAX / 3 {
                let p = grid_upper(v, k);
                assert!(p >= v, "k={k} v={v} p={p}");
                assert_eq!(
                    fine_upper_at_or_below(p),
                    p,
                    "k={k}: {p} not a bucket upper"
                );
                if let Some(below) = grid_below(p, k) {
                    assert!(below < v, "k={k} v={v}: {below} is not below");
                    assert_eq!(grid_upper(below + 1, k), p, "k={k} v={v}");
                    // The bucket (below, p] is at most 1/k of its lower end wide (or one unit).
                    let width = (p - below) as f64;
                    assert!(
                        width <= ((below + 1) as f64 / k as f64).max(1.0),
                        "k={k} v={v}"
                    );
                }
                v = v + v / 4 + 1;
            }
        }
        assert_eq!(grid_upper(u64::MAX, 4), u64::MAX);
        assert_eq!(grid_upper(1024, 4), 1279);
        assert_eq!(grid_below(1279, 4), Some(1023));
        assert_eq!(grid_upper(5, 4), 5);
        assert_eq!(grid_upper(9, 4), 9);
        assert_eq!(grid_upper(10, 4), 11);
    }

    #[test]
    fn explicit_bounds_are_snapped_down() {
        let layout = BucketLayout::explicit(&[1000, 100, 1_000_000, 100]).unwrap();
        let LayoutKind::Explicit(b) = &layout.kind else {
            panic!()
        };
        assert_eq!(b[0], 100);
        assert_eq!(b[1], 999); // 1000 starts the bucket [1000, 1007]: the one below ends at 999
        assert!(b[1] <= 1000 && b[2] <= 1_000_000 && b[2] >= 1_000_000 - 1_000_000 / 64);
        assert_eq!(b.len(), 3);
        assert!(BucketLayout::explicit(&[]).is_err());
        assert!(BucketLayout::log_linear(3).is_err());
        assert!(BucketLayout::log_linear(128).is_err());
        assert!(BucketLayout::log_linear(0).is_err());
    }

    #[test]
    fn negotiation() {
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prom)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(None), Format::Prometheus);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Prometheus);
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Prometheus);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text")),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::negotiate(Some("text/plain, application/openmetrics-text")),
            Format::Prometheus
        );
        assert_eq!(
            Format::negotiate(Some("text/plain;q=0.5, application/openmetrics-text")),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;version=2.0.0")),
            Format::Prometheus
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0")),
            Format::Prometheus
        );
        assert_eq!(Format::negotiate(Some(";;,,=q")), Format::Prometheus);
    }

    #[test]
    fn float_spelling() {
        assert_eq!(fmt_float(1.0), "1.0");
        assert_eq!(fmt_float(1023.0 / 1e9), "1.023e-6");
        assert_eq!(fmt_float(0.25), "0.25");
        assert_eq!(fmt_float(f64::INFINITY), "+Inf");
        assert_eq!(fmt_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(fmt_float(f64::NAN), "NaN");
    }
}

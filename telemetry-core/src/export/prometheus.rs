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
use rustc_hash::{FxHashMap, FxHashSet};
use std::fmt::{self, Write as _};
use std::ops::Range;

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
#[cfg(feature = "otlp")]
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
    let mut out = Vec::with_capacity(name.len() + 1);
    push_sanitized(&mut out, name);
    ascii_string(out)
}

/// True for the bytes a name keeps as they are: `[a-zA-Z0-9_]` (branch-free, so that loops
/// over a name vectorize).
fn is_name_byte(b: u8) -> bool {
    ((b | 0x20).wrapping_sub(b'a') < 26) | (b.wrapping_sub(b'0') < 10) | (b == b'_')
}

/// Appends [`sanitize_name`]`(name)` to `out` (always ASCII).
fn push_sanitized(out: &mut Vec<u8>, name: &str) {
    let bytes = name.as_bytes();
    if bytes.first().is_none_or(u8::is_ascii_digit) {
        out.push(b'_');
    }
    if bytes
        .iter()
        .fold(false, |acc, &b| acc | (b >= 0x80) | (b == b':'))
    {
        // Characters of several bytes give one `_` (the continuation bytes give none), and
        // so does `::`.
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b == b':' && bytes.get(i + 1) == Some(&b':') {
                out.push(b'_');
                i += 2;
                continue;
            }
            if b & 0xC0 != 0x80 {
                out.push(if is_name_byte(b) { b } else { b'_' });
            }
            i += 1;
        }
    } else {
        // ASCII without `:`: one byte for one byte.
        out.extend(
            bytes
                .iter()
                .map(|&b| if is_name_byte(b) { b } else { b'_' }),
        );
    }
}

/// `bytes` as a `String`; only ever called with ASCII, which is always valid UTF-8.
fn ascii_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
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
    unit: Unit,
    /// Where the family name is in [`Plan::names`]: for OpenMetrics metadata lines, and the
    /// base of the sample names.
    family: Range<usize>,
    help: &'a str,
}

/// The family names of every metric of a snapshot: counters, then gauges, then histograms,
/// each in name order (the order of the snapshot's maps), all names in one buffer.
struct Plan<'a> {
    names: String,
    metrics: Vec<Planned<'a>>,
}

/// The buffers that rendering reuses from one family or series to the next.
#[derive(Default)]
struct Scratch {
    /// The label pairs of the current series, `a="x",b="y"` (no braces).
    labels: String,
    /// The `le` texts of the current histogram family, each followed by `"} `.
    les: String,
    /// The end of each `le` text in `les`.
    le_ends: Vec<usize>,
    /// Scaled bucket bounds already spelled in this render: bound to its range in `floats`.
    float_cache: FxHashMap<(u64, u64), Range<usize>>,
    floats: String,
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
        let mut out = Vec::with_capacity(self.prefix.len() + name.len() + 16);
        self.push_family(&mut out, name, kind, unit, 1);
        ascii_string(out)
    }

    /// Appends the family name of `name` to `names` (with `_{attempt}` before the unit suffix
    /// from the second attempt on) and returns where it is.
    fn push_family(
        &self,
        names: &mut Vec<u8>,
        name: &str,
        kind: MetricKind,
        unit: Unit,
        attempt: u32,
    ) -> Range<usize> {
        let start = names.len();
        names.extend_from_slice(self.prefix.as_bytes());
        push_sanitized(names, name);
        let mut base = &names[start..];
        if kind == MetricKind::Counter {
            while let Some(stripped) = base.strip_suffix(b"_total") {
                if stripped.is_empty() {
                    break;
                }
                base = stripped;
            }
        }
        let suffix = unit_export(unit).0;
        if let Some(s) = suffix
            && let Some(stripped) = base
                .strip_suffix(s.as_bytes())
                .and_then(|b| b.strip_suffix(b"_"))
            && !stripped.is_empty()
        {
            base = stripped;
        }
        names.truncate(start + base.len());
        if attempt > 1 {
            names.push(b'_');
            names.extend_from_slice(attempt.to_string().as_bytes());
        }
        if let Some(s) = suffix {
            names.push(b'_');
            names.extend_from_slice(s.as_bytes());
        }
        start..names.len()
    }

    /// Family names of every metric of `snapshot`, with collisions resolved.
    fn plan<'a>(&self, snapshot: &'a Snapshot) -> Plan<'a> {
        let metrics = snapshot
            .counters
            .iter()
            .map(|(n, f)| (MetricKind::Counter, n, f.unit, &f.description))
            .chain(
                (snapshot.gauges.iter())
                    .map(|(n, f)| (MetricKind::Gauge, n, f.unit, &f.description)),
            )
            .chain(
                (snapshot.histograms.iter())
                    .map(|(n, f)| (MetricKind::Histogram, n, f.unit, &f.description)),
            );
        // Sanitized names are ASCII: built as bytes, made a `String` once at the end.
        let mut names = Vec::with_capacity(snapshot.len() * (self.prefix.len() + 48));
        let mut planned = Vec::with_capacity(snapshot.len());
        for (kind, name, unit, description) in metrics {
            planned.push(Planned {
                kind,
                original: name,
                unit,
                family: self.push_family(&mut names, name, kind, unit, 1),
                help: if description.is_empty() {
                    name
                } else {
                    description
                },
            });
        }
        if !names_are_distinct(&names, &planned) {
            // Some names collide: give each metric, in order, the first attempt whose names
            // are all still free.
            let mut taken: FxHashSet<Vec<u8>> = FxHashSet::default();
            for p in &mut planned {
                let mut attempt = 1;
                loop {
                    let family = if attempt == 1 {
                        p.family.clone()
                    } else {
                        self.push_family(&mut names, p.original, p.kind, p.unit, attempt)
                    };
                    let sample = sample_names(p.kind, &names[family.clone()]);
                    if attempt > 1000 || sample.iter().all(|n| !taken.contains(n)) {
                        taken.extend(sample);
                        p.family = family;
                        break;
                    }
                    attempt += 1;
                }
            }
        }
        Plan {
            names: ascii_string(names),
            metrics: planned,
        }
    }

    /// `snapshot` as text in `format`; see the module docs for the rules.
    ///
    /// Never fails and never panics, also for snapshots deserialized from untrusted JSON
    /// (bucket counts are capped at the histogram's count). Metrics without any series
    /// (a labeled metric not used yet, a callback gauge whose callback panicked) are left out.
    pub fn render(&self, snapshot: &Snapshot, format: Format) -> String {
        let plan = self.plan(snapshot);
        let mut out = String::with_capacity(256 * snapshot.len() + 16);
        let mut scratch = Scratch::default();
        // The plan lists the metrics in the order of the maps, so no lookup by name is needed.
        let mut counters = snapshot.counters.values();
        let mut gauges = snapshot.gauges.values();
        let mut histograms = snapshot.histograms.values();
        for p in &plan.metrics {
            let family = &plan.names[p.family.clone()];
            match p.kind {
                MetricKind::Counter => {
                    if let Some(f) = counters.next() {
                        write_counter(&mut out, &mut scratch, family, p, f, format);
                    }
                }
                MetricKind::Gauge => {
                    if let Some(f) = gauges.next() {
                        write_gauge(&mut out, &mut scratch, family, p, f, format);
                    }
                }
                MetricKind::Histogram => {
                    if let Some(f) = histograms.next() {
                        self.write_histogram(&mut out, &mut scratch, family, p, f, format);
                    }
                }
            }
        }
        if format == Format::OpenMetrics {
            out.push_str("# EOF\n");
        }
        out
    }

    fn write_histogram(
        &self,
        out: &mut String,
        scratch: &mut Scratch,
        family: &str,
        p: &Planned<'_>,
        f: &Family<HistogramSnapshot>,
        format: Format,
    ) {
        if f.series.is_empty() {
            return;
        }
        write_metadata(out, family, "", "histogram", p, format);
        let bounds = self.layout.boundaries(f.series.iter().map(|s| &s.value));
        let scale = unit_export(p.unit).1;
        // The `le` texts, once for all series.
        scratch.les.clear();
        scratch.le_ends.clear();
        for &b in &bounds {
            match scale {
                None => push_float(&mut scratch.les, b as f64),
                Some(d) => {
                    let floats = &mut scratch.floats;
                    let range = scratch
                        .float_cache
                        .entry((b, d.to_bits()))
                        .or_insert_with(|| {
                            let start = floats.len();
                            push_float(floats, b as f64 / d);
                            start..floats.len()
                        });
                    scratch.les.push_str(&scratch.floats[range.clone()]);
                }
            }
            scratch.les.push_str("\"} ");
            scratch.le_ends.push(scratch.les.len());
        }
        for s in &f.series {
            let h = &s.value;
            scratch.labels.clear();
            push_label_pairs(&mut scratch.labels, &s.labels, true);
            let labels = scratch.labels.as_str();
            let mut fine = h.buckets().peekable();
            let mut running = 0u64;
            let mut le_start = 0;
            for (&bound, &le_end) in bounds.iter().zip(&scratch.le_ends) {
                while let Some(b) = fine.peek() {
                    if b.upper > bound {
                        break;
                    }
                    running = running.saturating_add(b.count);
                    fine.next();
                }
                push_bucket_start(out, family, labels);
                out.push_str(&scratch.les[le_start..le_end]);
                push_u64(out, running.min(h.count()));
                out.push('\n');
                le_start = le_end;
            }
            push_bucket_start(out, family, labels);
            out.push_str("+Inf\"} ");
            push_u64(out, h.count());
            out.push('\n');
            push_series_start(out, family, "_sum", labels);
            match scale {
                None => push_u64(out, h.sum()),
                Some(d) => push_float(out, h.sum() as f64 / d),
            }
            out.push('\n');
            push_series_start(out, family, "_count", labels);
            push_u64(out, h.count());
            out.push('\n');
        }
    }
}

/// True if no two metrics of `planned` write the same name, with every metric at its first
/// attempt (then every metric keeps it).
///
/// Every name is keyed by its root and one bit: a name ending with `_total`, `_bucket`, `_sum`
/// or `_count` by the name without it and that suffix's bit, any other name by itself and
/// bit 0. The key is a function of the name and gives the name back, so two names are equal
/// exactly when their keys are; a family's sample names all share the family's root, so most
/// metrics need one lookup.
fn names_are_distinct(names: &[u8], planned: &[Planned<'_>]) -> bool {
    const SUFFIXES: [&[u8]; 4] = [b"_total", b"_bucket", b"_sum", b"_count"];
    let mut roots: FxHashMap<&[u8], u8> =
        FxHashMap::with_capacity_and_hasher(planned.len() + planned.len() / 4, Default::default());
    let mut claim = |root, bits: u8| {
        let slot = roots.entry(root).or_insert(0);
        let free = *slot & bits == 0;
        *slot |= bits;
        free
    };
    for p in planned {
        let family = &names[p.family.clone()];
        let samples: u8 = match p.kind {
            MetricKind::Counter => 0b10,
            MetricKind::Gauge => 0,
            MetricKind::Histogram => 0b11100,
        };
        let own = SUFFIXES
            .iter()
            .enumerate()
            .find_map(|(i, s)| Some((family.strip_suffix(*s)?, 0b10 << i)));
        let free = match own {
            None => claim(family, samples | 1),
            Some((root, bit)) => (samples == 0 || claim(family, samples)) && claim(root, bit),
        };
        if !free {
            return false;
        }
    }
    true
}

/// Every name a family of `kind` named `family` writes (family and sample names).
fn sample_names(kind: MetricKind, family: &[u8]) -> Vec<Vec<u8>> {
    let with = |suffix: &[u8]| [family, suffix].concat();
    match kind {
        MetricKind::Counter => vec![family.to_vec(), with(b"_total")],
        MetricKind::Gauge => vec![family.to_vec()],
        MetricKind::Histogram => vec![
            family.to_vec(),
            with(b"_bucket"),
            with(b"_sum"),
            with(b"_count"),
        ],
    }
}

fn write_counter(
    out: &mut String,
    scratch: &mut Scratch,
    family: &str,
    p: &Planned<'_>,
    f: &Family<u64>,
    format: Format,
) {
    if f.series.is_empty() {
        return;
    }
    let meta_suffix = match format {
        Format::Prometheus => "_total",
        Format::OpenMetrics => "",
    };
    write_metadata(out, family, meta_suffix, "counter", p, format);
    let scale = unit_export(p.unit).1;
    for s in &f.series {
        push_simple_start(out, scratch, family, "_total", &s.labels);
        match scale {
            None => push_u64(out, s.value),
            Some(d) => push_float(out, s.value as f64 / d),
        }
        out.push('\n');
    }
}

fn write_gauge(
    out: &mut String,
    scratch: &mut Scratch,
    family: &str,
    p: &Planned<'_>,
    f: &Family<i64>,
    format: Format,
) {
    if f.series.is_empty() {
        return;
    }
    write_metadata(out, family, "", "gauge", p, format);
    let scale = unit_export(p.unit).1;
    for s in &f.series {
        push_simple_start(out, scratch, family, "", &s.labels);
        match scale {
            None => {
                if s.value < 0 {
                    out.push('-');
                }
                push_u64(out, s.value.unsigned_abs());
            }
            Some(d) => push_float(out, s.value as f64 / d),
        }
        out.push('\n');
    }
}

/// The `# HELP`, `# TYPE` and (OpenMetrics) `# UNIT` lines of metric `{family}{suffix}`.
fn write_metadata(
    out: &mut String,
    family: &str,
    suffix: &str,
    kind: &str,
    p: &Planned<'_>,
    format: Format,
) {
    out.push_str("# HELP ");
    out.push_str(family);
    out.push_str(suffix);
    out.push(' ');
    escape_help(out, p.help, format);
    out.push_str("\n# TYPE ");
    out.push_str(family);
    out.push_str(suffix);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
    if format == Format::OpenMetrics
        && let Some(unit) = unit_export(p.unit).0
    {
        out.push_str("# UNIT ");
        out.push_str(family);
        out.push_str(suffix);
        out.push(' ');
        out.push_str(unit);
        out.push('\n');
    }
}

/// A counter or gauge sample up to its value: `{family}{suffix}{labels} `.
fn push_simple_start(
    out: &mut String,
    scratch: &mut Scratch,
    family: &str,
    suffix: &str,
    labels: &Labels,
) {
    out.push_str(family);
    out.push_str(suffix);
    if !labels.is_empty() {
        scratch.labels.clear();
        push_label_pairs(&mut scratch.labels, labels, false);
        out.push('{');
        out.push_str(&scratch.labels);
        out.push('}');
    }
    out.push(' ');
}

/// A histogram bucket sample up to its `le` value: `{family}_bucket{{labels,}le="`.
fn push_bucket_start(out: &mut String, family: &str, labels: &str) {
    out.push_str(family);
    out.push_str("_bucket{");
    if !labels.is_empty() {
        out.push_str(labels);
        out.push(',');
    }
    out.push_str("le=\"");
}

/// A histogram `_sum` or `_count` sample up to its value (`labels` are the series' pairs).
fn push_series_start(out: &mut String, family: &str, suffix: &str, labels: &str) {
    out.push_str(family);
    out.push_str(suffix);
    if !labels.is_empty() {
        out.push('{');
        out.push_str(labels);
        out.push('}');
    }
    out.push(' ');
}

/// The label pairs of a series, `a="x",b="y"`: names under the name rule, a name already
/// taken by an earlier label of the series gets `_2` (then `_3`, ...).
fn push_label_pairs(out: &mut String, labels: &Labels, histogram: bool) {
    // Names that need no change are distinct already (they are the keys of a map).
    if labels.keys().all(|k| label_name_is_kept(k, histogram)) {
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(key);
            out.push_str("=\"");
            escape_label_value(out, value);
            out.push('"');
        }
        return;
    }
    let mut seen: Vec<String> = Vec::with_capacity(labels.len());
    for (i, (key, value)) in labels.iter().enumerate() {
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
        escape_label_value(out, value);
        out.push('"');
        seen.push(key);
    }
}

/// True if [`label_name`] leaves `name` as it is.
fn label_name_is_kept(name: &str, histogram: bool) -> bool {
    let bytes = name.as_bytes();
    bytes.first().is_some_and(|b| !b.is_ascii_digit())
        && bytes.iter().fold(true, |acc, &b| acc & is_name_byte(b))
        && !name.starts_with("__")
        && !(histogram && name == "le")
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

/// Appends `text` with each byte that `escape` maps (all ASCII) replaced by its escape.
fn push_escaped(out: &mut String, text: &str, escape: impl Fn(u8) -> Option<&'static str>) {
    let mut run = 0;
    for (i, &b) in text.as_bytes().iter().enumerate() {
        if let Some(escaped) = escape(b) {
            // `b` is ASCII, so `i` and `i + 1` are character boundaries.
            out.push_str(&text[run..i]);
            out.push_str(escaped);
            run = i + 1;
        }
    }
    out.push_str(&text[run..]);
}

/// Escapes a label value: `\` → `\\`, `"` → `\"`, line feed → `\n` (both formats).
fn escape_label_value(out: &mut String, value: &str) {
    let special = |b: u8| (b == b'\\') | (b == b'"') | (b == b'\n');
    if !value.bytes().fold(false, |acc, b| acc | special(b)) {
        out.push_str(value);
        return;
    }
    push_escaped(out, value, |b| match b {
        b'\\' => Some("\\\\"),
        b'"' => Some("\\\""),
        b'\n' => Some("\\n"),
        _ => None,
    });
}

/// Escapes `# HELP` text: `\` and line feeds, and `"` too in OpenMetrics; drops carriage
/// returns.
fn escape_help(out: &mut String, text: &str, format: Format) {
    let quote = format == Format::OpenMetrics;
    let special = |b: u8| (b == b'\\') | (b == b'\n') | (b == b'\r') | (quote & (b == b'"'));
    if !text.bytes().fold(false, |acc, b| acc | special(b)) {
        out.push_str(text);
        return;
    }
    push_escaped(out, text, |b| match b {
        b'\\' => Some("\\\\"),
        b'\n' => Some("\\n"),
        b'"' if quote => Some("\\\""),
        b'\r' => Some(""),
        _ => None,
    });
}

/// Appends the decimal digits of `value`.
fn push_u64(out: &mut String, mut value: u64) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut buf = [0u8; 20];
    let mut start = buf.len();
    while value >= 100 {
        let pair = (value % 100) as usize * 2;
        value /= 100;
        start -= 2;
        buf[start..start + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if value >= 10 {
        let pair = value as usize * 2;
        start -= 2;
        buf[start..start + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        start -= 1;
        buf[start] = b'0' + value as u8;
    }
    for &digit in &buf[start..] {
        out.push(char::from(digit));
    }
}

/// Appends a float as the formats spell it: shortest round-trip digits, `+Inf`, `-Inf`, `NaN`.
fn push_float(out: &mut String, x: f64) {
    if x.is_nan() {
        out.push_str("NaN");
    } else if x.is_infinite() {
        out.push_str(if x > 0.0 { "+Inf" } else { "-Inf" });
    } else if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 {
        // An integer below 2^53 (so below 1e16, where `Debug` switches to an exponent):
        // `Debug` writes its digits and `.0`, which is what this writes without `fmt`.
        if x.is_sign_negative() {
            out.push('-');
        }
        push_u64(out, x.abs() as u64);
        out.push_str(".0");
    } else {
        // `Debug` is the shortest representation that reads back as the same float, with an
        // exponent for very small and very large magnitudes (`1.023e-6`), and always a `.` or
        // an exponent.
        let _ = write!(out, "{x:?}");
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

    fn fmt_float(x: f64) -> String {
        let mut out = String::new();
        push_float(&mut out, x);
        out
    }

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

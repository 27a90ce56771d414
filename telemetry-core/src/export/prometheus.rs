//! A [`Snapshot`] in the Prometheus text exposition format 0.0.4 and in OpenMetrics text 1.0.
//!
//! ```
//! use telemetry_core::export::prometheus::{Exposition, Format};
//! use telemetry_core::{Counter, testing};
//!
//! let orders = telemetry_core::counter!("docs.prom.orders", description = "Orders placed").unwrap();
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

#[cfg(feature = "otlp")]
pub(crate) use super::bucket_layout::cumulative_counts;
pub use super::bucket_layout::{BucketLayout, ExpositionError};
use super::family_names::{FamilyNames, FirstAttempt};
pub use super::format::{Format, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE};
pub use super::names::sanitize_name;
use super::names::{into_string, label_name, label_name_is_kept, push_family};
use super::text_numbers::{push_float, push_float_line, push_value_line};
use super::units;
use crate::engine::histogram_snapshot::HistogramSnapshot;
use crate::engine::metadata::{MetricKind, Unit};
use crate::engine::snapshot::{Family, Labels, Snapshot};
use rustc_hash::FxHashMap;
use std::ops::Range;

/// Options of the Prometheus and OpenMetrics text output: the name prefix and the histogram
/// bucket layout. `Exposition::new()` has no prefix and the default [`BucketLayout`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exposition {
    prefix: String,
    layout: BucketLayout,
}

/// The buffers that rendering reuses from one family or series to the next. The text is
/// written as bytes (ASCII and whole `&str`s) and made a `String` once at the end.
#[derive(Default)]
struct Scratch {
    /// The bucket boundaries of the current histogram family.
    bounds: Vec<u64>,
    /// The label pairs of the current series, `a="x",b="y"` (no braces).
    labels: Vec<u8>,
    /// The start of the bucket lines of the current series, `{family}_bucket{{labels,}le="`.
    bucket_start: Vec<u8>,
    /// The `le` texts of the current histogram family, each followed by `"}`.
    les: Vec<u8>,
    /// The end of each `le` text in `les`.
    le_ends: Vec<usize>,
    /// Scaled bucket bounds already spelled in this render: bound and scale to the range of
    /// the text in `floats`.
    float_cache: FxHashMap<(u64, u64), Range<usize>>,
    floats: Vec<u8>,
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
        push_family(&mut out, &self.prefix, name, kind, unit, 1);
        into_string(out)
    }

    /// `snapshot` as text in `format`; see the module docs for the rules.
    ///
    /// Never fails and never panics, also for snapshots deserialized from untrusted JSON
    /// (bucket counts are capped at the histogram's count). Metrics without any series
    /// (a labeled metric not used yet, a callback gauge whose callback panicked) are left out.
    pub fn render(&self, snapshot: &Snapshot, format: Format) -> String {
        let mut out = Vec::with_capacity(256 * snapshot.len() + 16);
        let mut scratch = Scratch::default();
        if !self.write_first_attempt(&mut out, &mut scratch, snapshot, format) {
            // Some names collide: start again with the collisions resolved.
            out.clear();
            let planned = FamilyNames::plan(&self.prefix, snapshot);
            let (names, families) = planned.names();
            self.write_planned(&mut out, &mut scratch, snapshot, format, names, families);
        }
        finish(out, format)
    }

    /// [`Self::render`], with the family names of the last render taken from `cache` when
    /// `snapshot` holds the same metrics (as a refreshed snapshot does), and worked out and
    /// kept there otherwise. The same text as `render`.
    pub(crate) fn render_cached(
        &self,
        snapshot: &Snapshot,
        format: Format,
        cache: &mut FamilyNames,
    ) -> String {
        if !cache.holds(&self.prefix, snapshot) {
            *cache = FamilyNames::plan(&self.prefix, snapshot);
        }
        let mut out = Vec::with_capacity(256 * snapshot.len() + 16);
        let mut scratch = Scratch::default();
        let (names, families) = cache.names();
        self.write_planned(&mut out, &mut scratch, snapshot, format, names, families);
        finish(out, format)
    }

    /// Writes every metric under the family name of its first attempt, which is every
    /// metric's name unless two of them collide: false (and a partial text) if they do.
    fn write_first_attempt(
        &self,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
        snapshot: &Snapshot,
        format: Format,
    ) -> bool {
        let mut written = FirstAttempt::with_capacity(snapshot.len());
        self.write_metrics(
            out,
            scratch,
            snapshot,
            format,
            |family, kind, name, unit| {
                push_family(family, &self.prefix, name, kind, unit, 1);
                written.claim(family, kind)
            },
        )
    }

    /// Writes every metric under the family names `plan` gave.
    fn write_planned(
        &self,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
        snapshot: &Snapshot,
        format: Format,
        names: &[u8],
        families: &[Range<usize>],
    ) {
        let mut families = families.iter();
        self.write_metrics(out, scratch, snapshot, format, |family, _, _, _| {
            families
                .next()
                .map(|r| family.extend_from_slice(&names[r.clone()]))
                .is_some()
        });
    }

    /// Writes every metric of `snapshot` with a series, in the order of [`Self::plan`], under
    /// the family name that `family(buffer, kind, name, unit)` puts into an empty buffer
    /// (counter samples under `{family}_total`); stops with false as soon as it returns false.
    fn write_metrics(
        &self,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
        snapshot: &Snapshot,
        format: Format,
        mut family: impl FnMut(&mut Vec<u8>, MetricKind, &str, Unit) -> bool,
    ) -> bool {
        let mut family_name = Vec::with_capacity(self.prefix.len() + 128);
        for (name, f) in &snapshot.counters {
            family_name.clear();
            if !family(&mut family_name, MetricKind::Counter, name, f.unit) {
                return false;
            }
            // The sample name, `{family}_total`.
            family_name.extend_from_slice(b"_total");
            write_counter(out, scratch, &family_name, name, f, format);
        }
        for (name, f) in &snapshot.gauges {
            family_name.clear();
            if !family(&mut family_name, MetricKind::Gauge, name, f.unit) {
                return false;
            }
            write_gauge(out, scratch, &family_name, name, f, format);
        }
        for (name, f) in &snapshot.histograms {
            family_name.clear();
            if !family(&mut family_name, MetricKind::Histogram, name, f.unit) {
                return false;
            }
            self.write_histogram(out, scratch, &family_name, name, f, format);
        }
        true
    }

    fn write_histogram(
        &self,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
        family: &[u8],
        name: &str,
        f: &Family<HistogramSnapshot>,
        format: Format,
    ) {
        if f.series.is_empty() {
            return;
        }
        write_metadata(out, family, " histogram\n", name, f, format);
        let mut bounds = std::mem::take(&mut scratch.bounds);
        self.layout
            .boundaries_into(f.series.iter().map(|s| &s.value), &mut bounds);
        let scale = units::exported(f.unit).divisor;
        // The `le` texts, once for all series, each with the `"}` that follows it.
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
                    scratch
                        .les
                        .extend_from_slice(&scratch.floats[range.clone()]);
                }
            }
            scratch.les.extend_from_slice(b"\"}");
            scratch.le_ends.push(scratch.les.len());
        }
        for s in &f.series {
            let h = &s.value;
            scratch.labels.clear();
            push_label_pairs(&mut scratch.labels, &s.labels, true);
            let labels = scratch.labels.as_slice();
            // `{family}_bucket{{labels,}le="`: the start of every bucket line of the series.
            let start = &mut scratch.bucket_start;
            start.clear();
            start.extend_from_slice(family);
            start.extend_from_slice(b"_bucket{");
            if !labels.is_empty() {
                start.extend_from_slice(labels);
                start.push(b',');
            }
            start.extend_from_slice(b"le=\"");
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
                out.extend_from_slice(start);
                out.extend_from_slice(&scratch.les[le_start..le_end]);
                push_value_line(out, false, running.min(h.count()));
                le_start = le_end;
            }
            out.extend_from_slice(start);
            out.extend_from_slice(b"+Inf\"}");
            push_value_line(out, false, h.count());
            push_series_name(out, family, b"_sum", labels);
            match scale {
                None => push_value_line(out, false, h.sum()),
                Some(d) => push_float_line(out, h.sum() as f64 / d),
            }
            push_series_name(out, family, b"_count", labels);
            push_value_line(out, false, h.count());
        }
        scratch.bounds = bounds;
    }
}

/// The text, with the OpenMetrics end marker if that is the format.
fn finish(mut out: Vec<u8>, format: Format) -> String {
    if format == Format::OpenMetrics {
        out.extend_from_slice(b"# EOF\n");
    }
    into_string(out)
}

/// Writes a counter: its family name is `sample` without the `_total` it ends with.
fn write_counter(
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    sample: &[u8],
    name: &str,
    f: &Family<u64>,
    format: Format,
) {
    if f.series.is_empty() {
        return;
    }
    let meta_name = match format {
        Format::Prometheus => sample,
        Format::OpenMetrics => sample.strip_suffix(b"_total").unwrap_or(sample),
    };
    write_metadata(out, meta_name, " counter\n", name, f, format);
    let scale = units::exported(f.unit).divisor;
    for s in &f.series {
        push_sample_name(out, scratch, sample, &s.labels);
        match scale {
            None => push_value_line(out, false, s.value),
            Some(d) => push_float_line(out, s.value as f64 / d),
        }
    }
}

fn write_gauge(
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    family: &[u8],
    name: &str,
    f: &Family<i64>,
    format: Format,
) {
    if f.series.is_empty() {
        return;
    }
    write_metadata(out, family, " gauge\n", name, f, format);
    let scale = units::exported(f.unit).divisor;
    for s in &f.series {
        push_sample_name(out, scratch, family, &s.labels);
        match scale {
            None => {
                push_value_line(out, s.value < 0, s.value.unsigned_abs());
            }
            Some(d) => push_float_line(out, s.value as f64 / d),
        }
    }
}

/// The `# HELP`, `# TYPE` and (OpenMetrics) `# UNIT` lines of metric `metric`; `type_end` is
/// the rest of the `# TYPE` line (` counter\n`). The help text is the description of `f`, or
/// `name` if it has none.
fn write_metadata<V>(
    out: &mut Vec<u8>,
    metric: &[u8],
    type_end: &str,
    name: &str,
    f: &Family<V>,
    format: Format,
) {
    let help = if f.description.is_empty() {
        name
    } else {
        &f.description
    };
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(metric);
    out.push(b' ');
    escape_help(out, help, format);
    out.extend_from_slice(b"\n# TYPE ");
    out.extend_from_slice(metric);
    out.extend_from_slice(type_end.as_bytes());
    if format == Format::OpenMetrics
        && let Some(unit) = units::exported(f.unit).suffix
    {
        out.extend_from_slice(b"# UNIT ");
        out.extend_from_slice(metric);
        out.push(b' ');
        out.extend_from_slice(unit.as_bytes());
        out.push(b'\n');
    }
}

/// A counter or gauge sample up to its value: `{sample}{labels}`.
fn push_sample_name(out: &mut Vec<u8>, scratch: &mut Scratch, sample: &[u8], labels: &Labels) {
    out.extend_from_slice(sample);
    if !labels.is_empty() {
        scratch.labels.clear();
        push_label_pairs(&mut scratch.labels, labels, false);
        out.push(b'{');
        out.extend_from_slice(&scratch.labels);
        out.push(b'}');
    }
}

/// A histogram `_sum` or `_count` sample up to its value (`labels` are the series' pairs).
fn push_series_name(out: &mut Vec<u8>, family: &[u8], suffix: &[u8], labels: &[u8]) {
    out.extend_from_slice(family);
    out.extend_from_slice(suffix);
    if !labels.is_empty() {
        out.push(b'{');
        out.extend_from_slice(labels);
        out.push(b'}');
    }
}

/// The label pairs of a series, `a="x",b="y"`: names under the name rule, a name already
/// taken by an earlier label of the series gets `_2` (then `_3`, ...).
fn push_label_pairs(out: &mut Vec<u8>, labels: &Labels, histogram: bool) {
    // Names that need no change are distinct already (they are the keys of a map).
    if labels.keys().all(|k| label_name_is_kept(k, histogram)) {
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"=\"");
            escape_label_value(out, value);
            out.push(b'"');
        }
        return;
    }
    let mut seen: Vec<String> = Vec::with_capacity(labels.len());
    for (i, (key, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let mut key = label_name(key, histogram);
        let first = key.clone();
        let mut n = 2;
        while seen.contains(&key) {
            key = format!("{first}_{n}");
            n += 1;
        }
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"=\"");
        escape_label_value(out, value);
        out.push(b'"');
        seen.push(key);
    }
}

/// Appends `text` with each byte that `escape` maps (all ASCII) replaced by its escape.
fn push_escaped(out: &mut Vec<u8>, text: &str, escape: impl Fn(u8) -> Option<&'static str>) {
    let bytes = text.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if let Some(escaped) = escape(b) {
            out.extend_from_slice(&bytes[run..i]);
            out.extend_from_slice(escaped.as_bytes());
            run = i + 1;
        }
    }
    out.extend_from_slice(&bytes[run..]);
}

/// False if no byte of `text` is one that an escape rule changes: a control character (line
/// feed, carriage return), `"` or `\`. True means "maybe": the escaping itself decides. Tests
/// eight bytes at a time (for any byte below 0x20 and any byte equal to `"` or `\`).
fn may_need_escape(text: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // A high bit set in the bytes of `w` below `n` (exact for "any byte", `n` <= 0x80).
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGHS;
    let test = |w: u64| {
        below(w, 0x20)
            | below(w ^ (ONES * u64::from(b'"')), 1)
            | below(w ^ (ONES * u64::from(b'\\')), 1)
    };
    if text.len() < 8 {
        return text.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
    }
    let word = |at: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&text[at..at + 8]);
        u64::from_le_bytes(word)
    };
    let mut found = 0;
    let mut at = 0;
    while at + 8 <= text.len() {
        found |= test(word(at));
        at += 8;
    }
    // The last eight bytes, overlapping the words above.
    found |= test(word(text.len() - 8));
    found != 0
}

/// Escapes a label value: `\` → `\\`, `"` → `\"`, line feed → `\n` (both formats).
fn escape_label_value(out: &mut Vec<u8>, value: &str) {
    if !may_need_escape(value.as_bytes()) {
        out.extend_from_slice(value.as_bytes());
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
fn escape_help(out: &mut Vec<u8>, text: &str, format: Format) {
    if !may_need_escape(text.as_bytes()) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    let quote = format == Format::OpenMetrics;
    push_escaped(out, text, |b| match b {
        b'\\' => Some("\\\\"),
        b'\n' => Some("\\n"),
        b'"' if quote => Some("\\\""),
        b'\r' => Some(""),
        _ => None,
    });
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
    fn cached_family_names_give_the_text_of_a_plain_render() {
        let snapshot = |json: &str| -> Snapshot { serde_json::from_str(json).unwrap() };
        // `a.b` and `a_b` collide; the second gets `_2`.
        let colliding = snapshot(
            r#"{"counters":{"a.b":{"series":[{"value":1}]},"a_b":{"series":[{"value":2}]}},
                "histograms":{"t.duration":{"unit":"nanoseconds","series":[{"value":
                  {"count":1,"sum":5,"min":5,"max":5,"buckets":[[5,1]]}}]}}}"#,
        );
        let other = snapshot(r#"{"gauges":{"g":{"series":[{"value":-3}]}}}"#);
        let plain = Exposition::new();
        let prefixed = Exposition::new().with_prefix("app_").unwrap();
        let mut cache = FamilyNames::default();
        for (exposition, snapshot) in [
            (&plain, &colliding),
            (&plain, &colliding),
            (&plain, &other),
            (&prefixed, &other),
            (&plain, &colliding),
        ] {
            for format in [Format::Prometheus, Format::OpenMetrics] {
                assert_eq!(
                    exposition.render_cached(snapshot, format, &mut cache),
                    exposition.render(snapshot, format)
                );
            }
        }
        let text = plain.render_cached(&colliding, Format::Prometheus, &mut cache);
        assert!(
            text.contains("a_b_total 1\n") && text.contains("a_b_2_total 2\n"),
            "{text}"
        );
        // Equal text in another allocation is another metric for the cache: worked out again.
        let copy = snapshot(&serde_json::to_string(&colliding).unwrap());
        assert!(!cache.holds(plain.prefix(), &copy));
        assert!(cache.holds(plain.prefix(), &colliding));
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
    fn the_escape_check_finds_every_escaped_byte() {
        for len in 0..24 {
            let plain = "abcdefghijklmnopqrstuvwxyzé".get(..len).unwrap_or("é");
            assert!(!may_need_escape(plain.as_bytes()), "{plain:?}");
            for at in 0..len {
                for special in [b'\\', b'"', b'\n', b'\r', 0, 0x1f] {
                    let mut bytes = vec![b'x'; len];
                    bytes[at] = special;
                    assert!(may_need_escape(&bytes), "{bytes:?}");
                }
            }
        }
        assert!(!may_need_escape(
            "0123456789 ~!#$%&'()*+,-./:;<=>?@[]^_`{|}\u{7f}ü".as_bytes()
        ));
    }

    #[test]
    fn sanitizing_follows_the_character_rule() {
        // The rule, one character at a time.
        fn by_chars(name: &str) -> String {
            let mut out = String::new();
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
        let names = [
            "",
            "9",
            "a",
            "a::b",
            ":::",
            "a:b",
            ":",
            "é",
            "aé::b",
            "x.y-z",
            "__",
            "::a::",
            "9lives-café",
            "日本語.calls",
            "a\u{10ffff}b",
            "docstore::store::insert.calls",
            "Zz09_",
            "a b\tc",
        ];
        for name in names {
            assert_eq!(sanitize_name(name), by_chars(name), "{name:?}");
            assert!(label_name_is_kept(name, false) == (label_name(name, false) == name));
        }
    }
}

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
use super::text_numbers::{push_float, push_float_line, push_value_line};
use crate::engine::metadata::{MetricKind, Unit};
use crate::engine::snapshot::{Family, HistogramSnapshot, Labels, Snapshot};
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use std::hash::Hasher as _;
use std::ops::Range;
use std::sync::Arc;

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
    into_string(out)
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
    // ASCII without `:` maps one byte to one byte: do that (in a loop that vectorizes) and
    // note whether the name was such.
    let start = out.len();
    out.resize(start + bytes.len(), 0);
    let mut other = false;
    for (to, &b) in out[start..].iter_mut().zip(bytes) {
        other |= (b >= 0x80) | (b == b':');
        *to = if is_name_byte(b) { b } else { b'_' };
    }
    if other {
        // Characters of several bytes give one `_` (their continuation bytes give none), and
        // so does `::`.
        out.truncate(start);
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
    }
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
        self.push_family(&mut out, name, kind, unit, 1);
        into_string(out)
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
        if !self.prefix.is_empty() {
            names.extend_from_slice(self.prefix.as_bytes());
        }
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
            let (names, families) = self.plan(snapshot);
            self.write_planned(&mut out, &mut scratch, snapshot, format, &names, &families);
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
        if !cache.holds(self, snapshot) {
            let (names, families) = self.plan(snapshot);
            *cache = FamilyNames {
                prefix: self.prefix.clone(),
                metrics: plan_order(snapshot)
                    .map(|(kind, name, unit)| (kind, name.clone(), unit))
                    .collect(),
                names,
                families,
            };
        }
        let mut out = Vec::with_capacity(256 * snapshot.len() + 16);
        let mut scratch = Scratch::default();
        let (names, families) = (&cache.names, &cache.families);
        self.write_planned(&mut out, &mut scratch, snapshot, format, names, families);
        finish(out, format)
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

    /// Writes every metric under the family name of its first attempt, which is every
    /// metric's name unless two of them collide: false (and a partial text) if they do.
    ///
    /// Each name written is keyed by its root and one bit: a name ending with `_total`,
    /// `_bucket`, `_sum` or `_count` by the name without it and that suffix's bit, any other
    /// name by itself and bit 0. The key is a function of the name and gives the name back, so
    /// two names are equal exactly when their keys are; the sample names of a family share the
    /// family's root, so most metrics need one lookup. Roots are compared by a 64-bit hash: two
    /// roots with the same hash count as a collision, which at worst takes the slower way.
    fn write_first_attempt(
        &self,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
        snapshot: &Snapshot,
        format: Format,
    ) -> bool {
        const SUFFIXES: [&[u8]; 4] = [b"_total", b"_bucket", b"_sum", b"_count"];
        let mut roots: FxHashMap<u64, u8> = FxHashMap::with_capacity_and_hasher(
            snapshot.len() + snapshot.len() / 4,
            Default::default(),
        );
        let mut claim = |root: &[u8], bits: u8| {
            let mut hasher = FxHasher::default();
            hasher.write(root);
            hasher.write_usize(root.len());
            let slot = roots.entry(hasher.finish()).or_insert(0);
            let free = *slot & bits == 0;
            *slot |= bits;
            free
        };
        self.write_metrics(
            out,
            scratch,
            snapshot,
            format,
            |family, kind, name, unit| {
                self.push_family(family, name, kind, unit, 1);
                let samples: u8 = match kind {
                    MetricKind::Counter => 0b10,
                    MetricKind::Gauge => 0,
                    MetricKind::Histogram => 0b11100,
                };
                let own = SUFFIXES
                    .iter()
                    .enumerate()
                    .find_map(|(i, s)| Some((family.strip_suffix(*s)?, 0b10 << i)));
                match own {
                    None => claim(family, samples | 1),
                    Some((root, bit)) => {
                        (samples == 0 || claim(family, samples)) && claim(root, bit)
                    }
                }
            },
        )
    }

    /// Family names of every metric of `snapshot` (counters, then gauges, then histograms,
    /// each in name order), with collisions resolved: each metric, in that order, gets the
    /// first attempt whose names are all still free. Returns the names and where each is.
    fn plan(&self, snapshot: &Snapshot) -> (Vec<u8>, Vec<Range<usize>>) {
        let metrics = plan_order(snapshot);
        let mut names = Vec::new();
        let mut families = Vec::with_capacity(snapshot.len());
        let mut taken: FxHashSet<Vec<u8>> = FxHashSet::default();
        for (kind, name, unit) in metrics {
            let mut attempt = 1;
            loop {
                let family = self.push_family(&mut names, name, kind, unit, attempt);
                let sample = sample_names(kind, &names[family.clone()]);
                if attempt > 1000 || sample.iter().all(|n| !taken.contains(n)) {
                    taken.extend(sample);
                    families.push(family);
                    break;
                }
                attempt += 1;
            }
        }
        (names, families)
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
        let scale = unit_export(f.unit).1;
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

/// Every metric of `snapshot` as `(kind, name, unit)`, in the order of [`Exposition::plan`].
fn plan_order(snapshot: &Snapshot) -> impl Iterator<Item = (MetricKind, &Arc<str>, Unit)> {
    (snapshot.counters.iter())
        .map(|(n, f)| (MetricKind::Counter, n, f.unit))
        .chain((snapshot.gauges.iter()).map(|(n, f)| (MetricKind::Gauge, n, f.unit)))
        .chain((snapshot.histograms.iter()).map(|(n, f)| (MetricKind::Histogram, n, f.unit)))
}

/// The family names of one render, kept for the next: working them out (sanitizing every
/// name and checking that no two collide) is a third of the time of a render.
#[derive(Default)]
pub(crate) struct FamilyNames {
    /// The prefix they were worked out with.
    prefix: String,
    /// The metrics they are for, in plan order. The names are kept alive here, so that
    /// comparing their addresses is sound (no other string can take the same address).
    metrics: Vec<(MetricKind, Arc<str>, Unit)>,
    names: Vec<u8>,
    families: Vec<Range<usize>>,
}

impl FamilyNames {
    /// Whether these are the family names of `snapshot`'s metrics under `exposition`: the same
    /// prefix and the same metrics (the same name strings, which a refreshed snapshot shares
    /// with the registry, kinds and units), without comparing any text but the prefix.
    fn holds(&self, exposition: &Exposition, snapshot: &Snapshot) -> bool {
        self.prefix == exposition.prefix
            && self.metrics.len() == snapshot.len()
            && plan_order(snapshot)
                .zip(&self.metrics)
                .all(|((kind, name, unit), (k, n, u))| {
                    kind == *k && unit == *u && Arc::ptr_eq(name, n)
                })
    }
}

/// The text, with the OpenMetrics end marker if that is the format.
fn finish(mut out: Vec<u8>, format: Format) -> String {
    if format == Format::OpenMetrics {
        out.extend_from_slice(b"# EOF\n");
    }
    into_string(out)
}

/// The text written as a `String`. Everything written is ASCII or a whole `&str` (escaping
/// cuts text only next to ASCII bytes), so the bytes are always valid UTF-8.
fn into_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
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
    let scale = unit_export(f.unit).1;
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
    let scale = unit_export(f.unit).1;
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
        && let Some(unit) = unit_export(f.unit).0
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
        assert!(!cache.holds(&plain, &copy));
        assert!(cache.holds(&plain, &colliding));
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

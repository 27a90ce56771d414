//! Which text format to answer with: [`Format`], its content types, and the HTTP `Accept`
//! negotiation of `/metrics`.

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

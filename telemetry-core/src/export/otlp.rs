//! An OTLP/HTTP metrics exporter (feature `otlp`), built on the generated types of the
//! `opentelemetry-proto` crate (OTLP 1.x / opentelemetry-proto `metrics.v1`).
//!
//! ```no_run
//! use telemetry_core::Application;
//! use telemetry_core::export::otlp::OtlpExporter;
//!
//! let exporter = OtlpExporter::new("http://127.0.0.1:4318", Application::new("my-server", "1.0.0"))?;
//! exporter.export(&telemetry_core::snapshot())?;
//! # Ok::<(), telemetry_core::export::otlp::OtlpError>(())
//! ```
//!
//! [`OtlpExporter::export`] sends one `ExportMetricsServiceRequest` as an HTTP `POST` to
//! `{endpoint}/v1/metrics` (the endpoint is used as it is if it already ends with
//! `/v1/metrics`), as `application/x-protobuf` or, with [`Encoding::Json`], as OTLP/JSON
//! (`application/json`: the OTLP specification's JSON encoding, lowerCamelCase field names and
//! enums as numbers, through `opentelemetry-proto`'s serde support). A 2xx answer with a
//! `partial_success` that rejected data points is an error too.
//!
//! # Mapping
//! - One `ResourceMetrics` whose resource has [`resource_attributes`]: `service.name`,
//!   `service.version`, `service.instance.id` (the per-process random [`crate::instance_id`]),
//!   `telemetry.sdk.*`, and a few coarse system facts read through `std`: `os.type`,
//!   `host.arch` (semantic-convention values: `linux`, `darwin`, `amd64`, `arm64`, ...) and
//!   `host.cpu.logical_count` (our own attribute; rounded by the process's anonymizer like any
//!   reported number). Nothing that identifies a machine or a person: no host name, no IP.
//! - One `ScopeMetrics` with scope `telemetry-core` and this crate's version.
//! - Metric names: `::` becomes `.` (`docstore::store::insert.calls` gives
//!   `docstore.store.insert.calls`), so they follow the OpenTelemetry instrument name syntax;
//!   description as given; units as UCUM codes: `s`, `By`, or none.
//! - Counters: `Sum`, monotonic, cumulative temporality, one `NumberDataPoint` per label set
//!   (labels as string attributes), `as_int` (saturating at `i64::MAX`), or `as_double` in
//!   seconds for nanosecond counters.
//! - Gauges: `Gauge`, `as_int` (or `as_double` in seconds).
//! - Histograms: explicit-bucket `Histogram`, cumulative temporality, with count, sum, min and
//!   max, on the boundaries of the exporter's [`BucketLayout`] (default: 4 per power of two),
//!   converted to seconds for nanosecond histograms.
//! - Times: `start_time_unix_nano` is the process start (now minus [`crate::uptime`]),
//!   `time_unix_nano` the moment of the request. Gauges carry only the time.
//!
//! # Why explicit-bucket histograms
//! OTLP's exponential histogram has bucket boundaries `base^i` with `base = 2^(2^-scale)`,
//! each bucket `(base^i, base^(i+1)]`. Our fine buckets split each power of two into 64 equal
//! (linear) parts, so apart from the powers of two none of their bounds is a power of such a
//! base, and even the powers of two are on the other side: our bucket `[2^e, 2^(e+1) - 1]`
//! holds `2^e`, which an exponential bucket puts below. Re-bucketing into an exponential
//! layout would have to split counts by guessing where values lie inside our buckets. An
//! explicit-bucket histogram takes our boundaries as they are, with OTLP's semantics
//! (bucket `i` counts `bounds[i-1] < v <= bounds[i]`) matching ours, so every count is exact,
//! the same as on `/metrics`, and collectors convert it to Prometheus `_bucket` series without
//! loss. The error of quantiles estimated from it is bounded as [`BucketLayout`] documents.
//!
//! [`BucketLayout`]: super::prometheus::BucketLayout

use super::prometheus::{BucketLayout, cumulative_counts};
use super::push_client::{self, Method};
use super::units;
use crate::engine::histogram_snapshot::HistogramSnapshot;
use crate::engine::snapshot::{Labels, Snapshot};
use crate::product::report::Application;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};

/// The content type of OTLP/HTTP protobuf bodies.
pub const PROTOBUF_CONTENT_TYPE: &str = "application/x-protobuf";

/// The content type of OTLP/HTTP JSON bodies.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// How request bodies are encoded (OTLP/HTTP allows both).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Encoding {
    /// Binary protobuf, `application/x-protobuf` (the default, and what every receiver takes).
    #[default]
    Protobuf,
    /// OTLP/JSON, `application/json`.
    Json,
}

impl Encoding {
    /// The `Content-Type` of bodies in this encoding.
    pub const fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => PROTOBUF_CONTENT_TYPE,
            Encoding::Json => JSON_CONTENT_TYPE,
        }
    }
}

/// Why an export, or building an [`OtlpExporter`], failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OtlpError {
    /// The endpoint is not an `http://` or `https://` URL with a host.
    #[error("invalid OTLP endpoint `{endpoint}`: {reason}")]
    InvalidEndpoint {
        /// The rejected endpoint, without its query, fragment and user info (they can hold
        /// a token).
        endpoint: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A header name is not an HTTP token, or its value holds a line break or control
    /// character.
    #[error(
        "invalid OTLP request header `{name}`: the name must be an HTTP token and the value \
         free of line breaks and control characters"
    )]
    InvalidHeader {
        /// The rejected header name.
        name: String,
    },
    /// The request did not complete: refused connection, DNS failure, timeout, TLS error.
    #[error("OTLP export to {url} failed: {message}")]
    Transport {
        /// The URL of the request.
        url: String,
        /// The transport's description of the failure.
        message: String,
    },
    /// The receiver answered with a status other than 2xx.
    #[error("the OTLP receiver at {url} answered {status}: {body}")]
    Status {
        /// The URL of the request.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the answer (lossy UTF-8).
        body: String,
    },
    /// The receiver accepted the request but rejected some data points.
    #[error("the OTLP receiver rejected {rejected_data_points} data points: {message}")]
    PartialSuccess {
        /// How many data points were rejected.
        rejected_data_points: i64,
        /// The receiver's explanation.
        message: String,
    },
}

/// Where and how to send metrics over OTLP/HTTP.
#[derive(Clone, Debug)]
pub struct OtlpExporter {
    url: String,
    application: Application,
    encoding: Encoding,
    layout: BucketLayout,
    timeout: Duration,
    headers: Vec<(String, String)>,
    /// Shared by the exporter's clones, so exports reuse their connections.
    client: push_client::Client,
}

impl OtlpExporter {
    /// An exporter to the OTLP/HTTP receiver at `endpoint` (`http://collector:4318`; the path
    /// `/v1/metrics` is added unless it is there), reporting as `application`: protobuf, the
    /// default [`BucketLayout`], a 10 s timeout.
    ///
    /// # Errors
    /// [`OtlpError::InvalidEndpoint`] if `endpoint` is not `http(s)://host...` without query.
    pub fn new(endpoint: &str, application: Application) -> Result<Self, OtlpError> {
        let base =
            push_client::check_base_url(endpoint).map_err(|reason| OtlpError::InvalidEndpoint {
                endpoint: crate::product::reporter::transport::redacted(endpoint),
                reason,
            })?;
        let url = if base.ends_with("/v1/metrics") {
            base
        } else {
            format!("{base}/v1/metrics")
        };
        Ok(OtlpExporter {
            url,
            application,
            encoding: Encoding::Protobuf,
            layout: BucketLayout::default(),
            timeout: Duration::from_secs(10),
            headers: Vec::new(),
            client: push_client::Client::new(),
        })
    }

    /// Encodes bodies as `encoding`.
    pub fn with_encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Exports histograms on the boundaries of `layout`.
    pub fn with_layout(mut self, layout: BucketLayout) -> Self {
        self.layout = layout;
        self
    }

    /// Bounds each request (connect, send, answer) by `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends header `name: value` with every request (an API key, for example).
    ///
    /// # Errors
    /// [`OtlpError::InvalidHeader`] if `name` is not an HTTP token or `value` holds a control
    /// character.
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Self, OtlpError> {
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        let valid = !name.is_empty()
            && name.bytes().all(token)
            && !value.chars().any(|c| c.is_control() && c != '\t');
        if !valid {
            return Err(OtlpError::InvalidHeader {
                name: name.to_owned(),
            });
        }
        self.headers.push((name.to_owned(), value.to_owned()));
        Ok(self)
    }

    /// The URL requests are posted to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The request for `snapshot`, stamped now (see the module docs for the mapping).
    pub fn request(&self, snapshot: &Snapshot) -> ExportMetricsServiceRequest {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let start = now.saturating_sub(crate::uptime());
        self.request_at(snapshot, nanos(start), nanos(now))
    }

    /// The request for `snapshot` with explicit times in nanoseconds since the Unix epoch:
    /// `start_unix_nano` (the start of the cumulative counts) and `time_unix_nano`.
    pub fn request_at(
        &self,
        snapshot: &Snapshot,
        start_unix_nano: u64,
        time_unix_nano: u64,
    ) -> ExportMetricsServiceRequest {
        let times = Times {
            start: start_unix_nano,
            now: time_unix_nano,
        };
        let mut metrics = Vec::with_capacity(snapshot.len());
        for (name, family) in &snapshot.counters {
            let exported = units::exported(family.unit);
            let (unit, scale) = (exported.ucum, exported.divisor);
            let data_points = family
                .series
                .iter()
                .map(|s| number_point(&s.labels, counter_value(s.value, scale), times, true))
                .collect();
            metrics.push(Metric {
                name: otlp_name(name),
                description: family.description.to_string(),
                unit: unit.to_owned(),
                data: Some(metric::Data::Sum(Sum {
                    data_points,
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    is_monotonic: true,
                })),
                ..Default::default()
            });
        }
        for (name, family) in &snapshot.gauges {
            let exported = units::exported(family.unit);
            let (unit, scale) = (exported.ucum, exported.divisor);
            let data_points = family
                .series
                .iter()
                .map(|s| {
                    let value = match scale {
                        None => number_data_point::Value::AsInt(s.value),
                        Some(d) => number_data_point::Value::AsDouble(s.value as f64 / d),
                    };
                    number_point(&s.labels, value, times, false)
                })
                .collect();
            metrics.push(Metric {
                name: otlp_name(name),
                description: family.description.to_string(),
                unit: unit.to_owned(),
                data: Some(metric::Data::Gauge(Gauge { data_points })),
                ..Default::default()
            });
        }
        for (name, family) in &snapshot.histograms {
            let exported = units::exported(family.unit);
            let (unit, scale) = (exported.ucum, exported.divisor);
            let bounds = self
                .layout
                .boundaries(family.series.iter().map(|s| &s.value));
            let data_points = family
                .series
                .iter()
                .map(|s| histogram_point(&s.labels, &s.value, &bounds, scale, times))
                .collect();
            metrics.push(Metric {
                name: otlp_name(name),
                description: family.description.to_string(),
                unit: unit.to_owned(),
                data: Some(metric::Data::Histogram(Histogram {
                    data_points,
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                })),
                ..Default::default()
            });
        }
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: resource_attributes(&self.application),
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: env!("CARGO_PKG_NAME").to_owned(),
                        version: env!("CARGO_PKG_VERSION").to_owned(),
                        ..Default::default()
                    }),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    /// `request` as a body in the exporter's [`Encoding`]: the protobuf wire format, or the
    /// OTLP/JSON mapping of the generated types (`opentelemetry-proto`'s serde support).
    pub fn encode(&self, request: &ExportMetricsServiceRequest) -> Vec<u8> {
        match self.encoding {
            Encoding::Protobuf => request.encode_to_vec(),
            // Serializing these types cannot fail (no map has non-string keys); an empty body
            // would be refused by the receiver, never sent as something else.
            Encoding::Json => serde_json::to_vec(request).unwrap_or_default(),
        }
    }

    /// Sends `snapshot` to the receiver: one blocking `POST` on the calling thread, bounded by
    /// the timeout.
    ///
    /// # Errors
    /// [`OtlpError::Transport`] if the receiver cannot be reached in time,
    /// [`OtlpError::Status`] if it answers with an error status, and
    /// [`OtlpError::PartialSuccess`] if it accepts the request but rejects data points.
    pub fn export(&self, snapshot: &Snapshot) -> Result<(), OtlpError> {
        let body = self.encode(&self.request(snapshot));
        let mut headers = vec![(
            "Content-Type".to_owned(),
            self.encoding.content_type().to_owned(),
        )];
        headers.extend(self.headers.iter().cloned());
        let response = self
            .client
            .send(Method::Post, &self.url, &headers, &body, self.timeout)
            .map_err(|message| OtlpError::Transport {
                url: self.url.clone(),
                message,
            })?;
        if !(200..300).contains(&response.status) {
            return Err(OtlpError::Status {
                url: self.url.clone(),
                status: response.status,
                body: response.body_excerpt(),
            });
        }
        match partial_success(&response.body) {
            Some((rejected, message)) if rejected > 0 => Err(OtlpError::PartialSuccess {
                rejected_data_points: rejected,
                message,
            }),
            _ => Ok(()),
        }
    }
}

/// `(rejected_data_points, error_message)` from an export answer in protobuf or JSON.
fn partial_success(body: &[u8]) -> Option<(i64, String)> {
    if body.is_empty() {
        return None;
    }
    if let Ok(answer) = ExportMetricsServiceResponse::decode(body)
        && let Some(p) = answer.partial_success
    {
        return Some((p.rejected_data_points, p.error_message));
    }
    let json: Value = serde_json::from_slice(body).ok()?;
    let p = json.get("partialSuccess")?;
    let rejected = match p.get("rejectedDataPoints")? {
        Value::String(s) => s.parse().ok()?,
        v => v.as_i64()?,
    };
    let message = p
        .get("errorMessage")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    Some((rejected, message))
}

#[derive(Clone, Copy)]
struct Times {
    start: u64,
    now: u64,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// An OTLP metric name: `::` becomes `.`.
fn otlp_name(name: &str) -> String {
    name.replace("::", ".")
}

fn counter_value(value: u64, scale: Option<f64>) -> number_data_point::Value {
    match scale {
        None => number_data_point::Value::AsInt(i64::try_from(value).unwrap_or(i64::MAX)),
        Some(d) => number_data_point::Value::AsDouble(value as f64 / d),
    }
}

fn attributes(labels: &Labels) -> Vec<KeyValue> {
    labels.iter().map(|(k, v)| string_kv(k, v)).collect()
}

fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
    }
}

fn int_kv(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
    }
}

fn number_point(
    labels: &Labels,
    value: number_data_point::Value,
    times: Times,
    cumulative: bool,
) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attributes(labels),
        start_time_unix_nano: if cumulative { times.start } else { 0 },
        time_unix_nano: times.now,
        value: Some(value),
        ..Default::default()
    }
}

fn histogram_point(
    labels: &Labels,
    h: &HistogramSnapshot,
    bounds: &[u64],
    scale: Option<f64>,
    times: Times,
) -> HistogramDataPoint {
    let cumulative = cumulative_counts(h, bounds);
    let mut bucket_counts = Vec::with_capacity(bounds.len() + 1);
    let mut previous = 0u64;
    for c in cumulative {
        bucket_counts.push(c.saturating_sub(previous));
        previous = c;
    }
    bucket_counts.push(h.count().saturating_sub(previous));
    let convert = |v: u64| match scale {
        None => v as f64,
        Some(d) => v as f64 / d,
    };
    HistogramDataPoint {
        attributes: attributes(labels),
        start_time_unix_nano: times.start,
        time_unix_nano: times.now,
        count: h.count(),
        sum: Some(convert(h.sum())),
        bucket_counts,
        explicit_bounds: bounds.iter().map(|&b| convert(b)).collect(),
        min: h.min().map(convert),
        max: h.max().map(convert),
        ..Default::default()
    }
}

/// The resource attributes of `application`'s exports: `service.name`, `service.version`,
/// `service.instance.id`, `telemetry.sdk.name`, `telemetry.sdk.language`,
/// `telemetry.sdk.version`, `os.type`, `host.arch` and `host.cpu.logical_count` (see the
/// module docs), in that order.
pub fn resource_attributes(application: &Application) -> Vec<KeyValue> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let cores = crate::privacy::anonymize::global().round(cores);
    vec![
        string_kv("service.name", application.name()),
        string_kv("service.version", application.version()),
        string_kv("service.instance.id", &crate::instance_id().to_string()),
        string_kv("telemetry.sdk.name", env!("CARGO_PKG_NAME")),
        string_kv("telemetry.sdk.language", "rust"),
        string_kv("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
        string_kv("os.type", os_type()),
        string_kv("host.arch", host_arch()),
        int_kv(
            "host.cpu.logical_count",
            i64::try_from(cores).unwrap_or(i64::MAX),
        ),
    ]
}

/// `std::env::consts::OS` as a semantic-convention `os.type` value.
fn os_type() -> &'static str {
    match std::env::consts::OS {
        "macos" | "ios" => "darwin",
        "illumos" | "solaris" => "solaris",
        os => os,
    }
}

/// `std::env::consts::ARCH` as a semantic-convention `host.arch` value.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "x86",
        "arm" => "arm32",
        "powerpc" => "ppc32",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        arch => arch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_headers() {
        let app = Application::new("a", "1");
        assert_eq!(
            OtlpExporter::new("http://h:4318/", app.clone())
                .unwrap()
                .url(),
            "http://h:4318/v1/metrics"
        );
        assert_eq!(
            OtlpExporter::new("https://h/otlp/v1/metrics", app.clone())
                .unwrap()
                .url(),
            "https://h/otlp/v1/metrics"
        );
        assert!(matches!(
            OtlpExporter::new("h:4318", app.clone()),
            Err(OtlpError::InvalidEndpoint { .. })
        ));
        let e = OtlpExporter::new("http://h", app).unwrap();
        assert!(e.clone().with_header("x-api-key", "k").is_ok());
        assert!(e.clone().with_header("bad header", "k").is_err());
        assert!(e.with_header("x", "a\r\nInjected: 1").is_err());
    }

    #[test]
    fn histogram_points_are_exact_and_consistent() {
        let snap = crate::testing::capture(|| {
            let h = telemetry_core::histogram!("otlp.unit.sizes", unit = Bytes).unwrap();
            for v in [0, 5, 100, 1000, 1000, 70_000] {
                h.record(v);
            }
        });
        let e = OtlpExporter::new("http://h", Application::new("a", "1")).unwrap();
        let req = e.request_at(&snap, 1, 2);
        let metrics = &req.resource_metrics[0].scope_metrics[0].metrics;
        let index = metrics
            .iter()
            .position(|m| m.name == "otlp.unit.sizes")
            .unwrap();
        let metric = &metrics[index];
        assert_eq!(metric.unit, "By");
        let Some(metric::Data::Histogram(h)) = &metric.data else {
            panic!("{metric:?}")
        };
        let p = &h.data_points[0];
        assert_eq!(p.count, 6);
        assert_eq!(p.bucket_counts.len(), p.explicit_bounds.len() + 1);
        assert_eq!(p.bucket_counts.iter().sum::<u64>(), 6);
        assert_eq!(
            (p.min, p.max, p.sum),
            (Some(0.0), Some(70_000.0), Some(72_105.0))
        );
        for (i, &b) in p.explicit_bounds.iter().enumerate() {
            let below: u64 = p.bucket_counts[..=i].iter().sum();
            let exact = [0u64, 5, 100, 1000, 1000, 70_000]
                .iter()
                .filter(|&&v| v as f64 <= b)
                .count() as u64;
            assert_eq!(below, exact, "bound {b}");
        }
        let json: Value = serde_json::to_value(&req).unwrap();
        let point = &json["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][index]["histogram"]["dataPoints"]
            [0];
        assert_eq!(point["count"], 6);
        assert_eq!(point["startTimeUnixNano"], "1");
    }
}

//! Local `/metrics` and `/telemetry` endpoints, independent of any HTTP framework.
//!
//! [`Endpoints::handle`] takes a request's path and query and its `Accept` header and returns a
//! [`Response`] (status, content type, body) that any server writes out as it is; `crate::serve`
//! (feature `axum`) mounts the same handling on an axum router.
//!
//! ```
//! use telemetry_core::Application;
//! use telemetry_core::export::endpoint::Endpoints;
//!
//! let endpoints = Endpoints::new(Application::new("my-server", "1.0.0"));
//! let metrics = endpoints.handle("/metrics", Some("application/openmetrics-text; version=1.0.0"));
//! assert_eq!(metrics.status, 200);
//! assert!(metrics.content_type.starts_with("application/openmetrics-text"));
//! assert!(metrics.body.ends_with("# EOF\n"));
//!
//! let telemetry = endpoints.handle("/telemetry?details_level=3&anonymize=true", None);
//! assert_eq!(telemetry.content_type, "application/json");
//! let bad = endpoints.handle("/telemetry?details_level=high", None);
//! assert_eq!(bad.status, 400);
//! ```
//!
//! # `GET /metrics`
//! The [`Snapshot`] (by default [`crate::snapshot()`]) in the Prometheus text exposition format
//! 0.0.4 or in OpenMetrics 1.0, chosen by the `Accept` header
//! ([`Format::negotiate`]) or forced with `?format=prometheus` / `?format=openmetrics`.
//!
//! # `GET /telemetry?details_level=N&anonymize=true|false`
//! The [`Report`] (by default [`Report::collect`] of the application) as JSON, at a level of
//! detail (the Qdrant's telemetry API, in its "Usage Statistics" documentation). Both parameters are optional: `details_level`
//! defaults to 0 and is clamped to [`MAX_DETAILS_LEVEL`]; `anonymize` (`true`, `false`, `1`,
//! `0`) defaults to `false`. Other parameters are ignored. See [`telemetry_json`] for what
//! each level holds; `anonymize=true` at the highest level is exactly what the reporter sends,
//! [`Report::anonymized`].
//!
//! Any other path answers 404, and invalid parameters 400 with a message saying what is
//! accepted. The endpoints serve the local machine's operator: bind them to loopback or put
//! them behind the same protection as the product's other admin endpoints.

use super::family_names::FamilyNames;
use super::prometheus::{Exposition, Format};
use super::telemetry_json::query_pairs;
pub use super::telemetry_json::{MAX_DETAILS_LEVEL, QueryError, TelemetryQuery, telemetry_json};
use crate::engine::snapshot::Snapshot;
use crate::product::report::{Application, Report};
use std::fmt;
use std::sync::{Arc, Mutex, TryLockError};

/// The content type of `/telemetry` answers.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// The content type of error answers and 404s.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// An answer of [`Endpoints::handle`], for the server to write out as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code: 200, 400 (bad parameter) or 404 (unknown path).
    pub status: u16,
    /// The `Content-Type` header value.
    pub content_type: &'static str,
    /// The body: exposition text, JSON, or a one-line error message.
    pub body: String,
}

impl Response {
    fn text(status: u16, body: String) -> Self {
        Response {
            status,
            content_type: TEXT_CONTENT_TYPE,
            body,
        }
    }
}

/// Where `/metrics` gets its snapshot.
#[derive(Clone)]
enum SnapshotSource {
    /// [`crate::snapshot()`], kept between scrapes and refreshed in place
    /// ([`Snapshot::refresh`]) so that a scrape does not build a new one, with the family names
    /// of the last scrape.
    Global(Arc<Mutex<KeptScrape>>),
    /// A snapshot made by the program's own function.
    Custom(Arc<dyn Fn() -> Snapshot + Send + Sync>),
}

/// What a scrape of [`crate::snapshot()`] keeps for the next one.
#[derive(Default)]
struct KeptScrape {
    snapshot: Snapshot,
    names: FamilyNames,
}

impl SnapshotSource {
    /// The current snapshot as text.
    fn render(&self, exposition: &Exposition, format: Format) -> String {
        match self {
            SnapshotSource::Global(kept) => {
                let kept = match kept.try_lock() {
                    Ok(kept) => Some(kept),
                    // A refresh overwrites every value, and the names are checked against the
                    // snapshot before use, so a panic elsewhere while the lock was held cannot
                    // leave anything stale behind.
                    Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                    // Another scrape is using it: never wait, take a fresh one.
                    Err(TryLockError::WouldBlock) => None,
                };
                match kept {
                    Some(mut kept) => {
                        let KeptScrape { snapshot, names } = &mut *kept;
                        snapshot.refresh();
                        exposition.render_cached(snapshot, format, names)
                    }
                    None => exposition.render(&crate::snapshot(), format),
                }
            }
            SnapshotSource::Custom(source) => exposition.render(&source(), format),
        }
    }
}

type ReportSource = Arc<dyn Fn() -> Report + Send + Sync>;
type PayloadSource = Arc<dyn Fn() -> String + Send + Sync>;

/// The `/metrics` and `/telemetry` endpoints of one program: where their data comes from and
/// how it is written. Cheap to clone (the sources are shared).
#[derive(Clone)]
pub struct Endpoints {
    exposition: Exposition,
    snapshot: SnapshotSource,
    report: ReportSource,
    /// The reporter's payload, answered byte for byte at the highest anonymized level.
    payload: Option<PayloadSource>,
}

impl fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoints")
            .field("exposition", &self.exposition)
            .finish_non_exhaustive()
    }
}

impl Endpoints {
    /// Endpoints serving [`crate::snapshot()`] on `/metrics` (default [`Exposition`]) and
    /// [`Report::collect`]`(application)` on `/telemetry`.
    pub fn new(application: Application) -> Self {
        Endpoints {
            exposition: Exposition::new(),
            snapshot: SnapshotSource::Global(Arc::default()),
            report: Arc::new(move || Report::collect(application.clone())),
            payload: None,
        }
    }

    /// Serves `reporter`'s reports on `/telemetry`: its local report at every level, and at
    /// the highest level with `anonymize=true` exactly the bytes its next report would carry
    /// ([`crate::product::reporter::Reporter::preview_json`], the function that makes the HTTP body).
    pub fn with_reporter(mut self, reporter: Arc<crate::product::reporter::Reporter>) -> Self {
        let local = reporter.clone();
        self.report = Arc::new(move || local.report());
        self.payload = Some(Arc::new(move || reporter.preview_json()));
        self
    }

    /// Writes `/metrics` with `exposition` (name prefix, bucket layout).
    pub fn with_exposition(mut self, exposition: Exposition) -> Self {
        self.exposition = exposition;
        self
    }

    /// Serves the snapshots `source` makes on `/metrics`.
    pub fn with_snapshot(mut self, source: impl Fn() -> Snapshot + Send + Sync + 'static) -> Self {
        self.snapshot = SnapshotSource::Custom(Arc::new(source));
        self
    }

    /// Serves the reports `source` makes on `/telemetry`: give it the function that builds the
    /// reporter's reports (with the product's sections), so that `anonymize=true` shows what
    /// is sent.
    pub fn with_report(mut self, source: impl Fn() -> Report + Send + Sync + 'static) -> Self {
        self.report = Arc::new(source);
        self
    }

    /// The exposition options of `/metrics`.
    pub fn exposition(&self) -> &Exposition {
        &self.exposition
    }

    /// Answers a `GET` request for `path_and_query` (`/metrics`, `/telemetry?details_level=2`)
    /// whose `Accept` header is `accept`. Never panics on any input; a source that panics
    /// propagates its panic.
    pub fn handle(&self, path_and_query: &str, accept: Option<&str>) -> Response {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        match path {
            "/metrics" => self.metrics(query, accept),
            "/telemetry" => self.telemetry(query),
            _ => Response::text(
                404,
                format!(
                    "no telemetry endpoint at `{path}`: use /metrics or \
                     /telemetry?details_level=0..3&anonymize=true|false\n"
                ),
            ),
        }
    }

    /// Answers `GET /metrics?{query}`: `format=prometheus|openmetrics` if given, else the
    /// format `accept` asks for.
    pub fn metrics(&self, query: &str, accept: Option<&str>) -> Response {
        let mut format = Format::negotiate(accept);
        for (key, value) in query_pairs(query) {
            if key == "format" {
                match Format::from_name(&value) {
                    Some(f) => format = f,
                    None => {
                        let error = QueryError {
                            parameter: "format",
                            value,
                            expected: "prometheus or openmetrics",
                        };
                        return Response::text(400, format!("{error}\n"));
                    }
                }
            }
        }
        Response {
            status: 200,
            content_type: format.content_type(),
            body: self.snapshot.render(&self.exposition, format),
        }
    }

    /// Answers `GET /telemetry?{query}` with [`telemetry_json`] of a fresh report.
    pub fn telemetry(&self, query: &str) -> Response {
        match TelemetryQuery::parse(query) {
            Ok(q) if q.anonymize && q.details_level == MAX_DETAILS_LEVEL => {
                if let Some(payload) = &self.payload {
                    return Response {
                        status: 200,
                        content_type: JSON_CONTENT_TYPE,
                        body: payload(),
                    };
                }
                let report = (self.report)();
                Response {
                    status: 200,
                    content_type: JSON_CONTENT_TYPE,
                    body: telemetry_json(&report, q.details_level, q.anonymize).to_string(),
                }
            }
            Ok(q) => {
                let report = (self.report)();
                let json = telemetry_json(&report, q.details_level, q.anonymize);
                Response {
                    status: 200,
                    content_type: JSON_CONTENT_TYPE,
                    body: json.to_string(),
                }
            }
            Err(e) => Response::text(400, format!("{e}\n")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::anonymize::anonymize_snapshot;

    /// A product's configuration.
    #[derive(telemetry_macros::Telemetry)]
    #[telemetry(section = "configuration")]
    struct Configuration {
        shards: u64,
    }

    #[test]
    fn queries_parse_with_defaults_and_clear_errors() {
        assert_eq!(
            TelemetryQuery::parse("").unwrap(),
            TelemetryQuery::default()
        );
        let q = TelemetryQuery::parse("details_level=6&anonymize=true&x=%zz").unwrap();
        assert_eq!((q.details_level, q.anonymize), (3, true));
        let q = TelemetryQuery::parse("anonymize=0&details_level=%32").unwrap();
        assert_eq!((q.details_level, q.anonymize), (2, false));
        let q = TelemetryQuery::parse("details_level=99999999999999999999999").unwrap_err();
        assert_eq!(q.parameter, "details_level");
        let e = TelemetryQuery::parse("details_level=-1").unwrap_err();
        assert!(e.to_string().contains("invalid details_level `-1`"), "{e}");
        let e = TelemetryQuery::parse("anonymize=yes%21").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid anonymize `yes!`: expected true or false"
        );
        let pairs: Vec<_> = query_pairs("a=a+b%2&b=%&c=%C3%A9%").collect();
        let expected = [("a", "a b%2"), ("b", "%"), ("c", "é%")];
        assert!(
            pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .eq(expected)
        );
    }

    #[test]
    fn max_level_anonymized_is_the_sent_report() {
        let snap = crate::testing::capture(|| {
            let c = telemetry_macros::counter!("endpoint.unit.calls").unwrap();
            c.increment_by(123_456_789);
        });
        let mut report = Report::new(Application::new("t", "1"), snap);
        report.add_section(&Configuration { shards: 1_234_567 });
        assert_eq!(
            telemetry_json(&report, 3, true),
            serde_json::to_value(report.anonymized()).unwrap()
        );
        assert_eq!(
            telemetry_json(&report, 200, false),
            serde_json::to_value(&report).unwrap()
        );
        let level0 = telemetry_json(&report, 0, true);
        assert_eq!(
            level0["metrics"]["counters"]["endpoint.unit.calls"]["series"][0]["value"],
            123_456_000
        );
        assert!(level0.get("sections").is_none());
        assert_eq!(
            anonymize_snapshot(&report.metrics, &crate::privacy::anonymize::global())
                .counter("endpoint.unit.calls"),
            Some(123_456_000)
        );
    }
}

//! Sending a report over HTTP: one JSON POST with connect and total timeouts, HTTPS required
//! except to loopback addresses, and a bounded read of the answer.

use super::gate::Permit;
#[cfg(feature = "http")]
use std::io::Read;
use std::time::Duration;

/// Where and how reports are posted: [`HttpConfig::new`] with the defaults, then any field
/// changed (`config.retries = 5`).
///
/// It can also be read from a configuration file (`Deserialize`): `endpoint` is required,
/// every other field is optional and defaults as in [`HttpConfig::new`]; durations are
/// written as humantime spells them, and unknown fields are refused.
///
/// ```
/// use std::time::Duration;
/// use telemetry_core::reporter::HttpConfig;
///
/// let config: HttpConfig = serde_json::from_str(
///     r#"{"endpoint": "https://telemetry.example.com/v1/report", "total_timeout": "10s", "retries": 1}"#,
/// )?;
/// assert_eq!(config.total_timeout, Duration::from_secs(10));
/// assert_eq!(config.connect_timeout, Duration::from_secs(5));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(from = "HttpConfigFields")]
#[non_exhaustive]
pub struct HttpConfig {
    /// The URL reports are POSTed to. `https://` is required, except for loopback hosts
    /// (`127.0.0.0/8`, `[::1]`, `localhost`), which may use `http://` (tests, local collectors).
    /// It has no query, fragment or user information: a receiver of anonymous reports needs
    /// no credentials, and the HTTP client (ureq) writes each request line, query included, in
    /// its own debug log records. [`crate::product::reporter::ReporterBuilder::start`] refuses another.
    pub endpoint: String,
    /// The most time to set up a connection (default 5 s).
    pub connect_timeout: Duration,
    /// The most time for one whole request, answer included (default 20 s).
    pub total_timeout: Duration,
    /// Retries after a failed attempt (default 3), with exponential backoff from
    /// [`backoff`](Self::backoff) and equal jitter (a random point in the second half of each
    /// doubled delay), or the server's `Retry-After`.
    pub retries: u32,
    /// The first backoff (default 1 s); doubled on each retry, at most 5 minutes.
    pub backoff: Duration,
    /// The largest report sent, bytes (default 256 KiB); a larger one is not sent.
    pub max_payload_bytes: usize,
}

/// `endpoint` as the framework writes it in logs and in `telemetry.json`: scheme, host, port
/// and path, without user information, query or fragment (a `?token=` stays out of logs).
pub(crate) fn redacted(endpoint: &str) -> String {
    let cut = endpoint.split(['?', '#']).next().unwrap_or("");
    match cut.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit('@').next().unwrap_or("");
            format!("{scheme}://{host}{path}")
        }
        None => cut.to_owned(),
    }
}

/// [`HttpConfig`] as a configuration file writes it.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpConfigFields {
    endpoint: String,
    #[serde(
        default,
        deserialize_with = "crate::product::config_duration::optional"
    )]
    connect_timeout: Option<Duration>,
    #[serde(
        default,
        deserialize_with = "crate::product::config_duration::optional"
    )]
    total_timeout: Option<Duration>,
    #[serde(default)]
    retries: Option<u32>,
    #[serde(
        default,
        deserialize_with = "crate::product::config_duration::optional"
    )]
    backoff: Option<Duration>,
    #[serde(default)]
    max_payload_bytes: Option<usize>,
}

impl From<HttpConfigFields> for HttpConfig {
    fn from(fields: HttpConfigFields) -> Self {
        let defaults = HttpConfig::new(fields.endpoint);
        HttpConfig {
            connect_timeout: fields.connect_timeout.unwrap_or(defaults.connect_timeout),
            total_timeout: fields.total_timeout.unwrap_or(defaults.total_timeout),
            retries: fields.retries.unwrap_or(defaults.retries),
            backoff: fields.backoff.unwrap_or(defaults.backoff),
            max_payload_bytes: fields
                .max_payload_bytes
                .unwrap_or(defaults.max_payload_bytes),
            ..defaults
        }
    }
}

impl HttpConfig {
    /// Defaults for `endpoint`.
    pub fn new(endpoint: impl Into<String>) -> Self {
        HttpConfig {
            endpoint: endpoint.into(),
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(20),
            retries: 3,
            backoff: Duration::from_secs(1),
            max_payload_bytes: 256 << 10,
        }
    }
}

/// Why an endpoint is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("telemetry endpoint `{endpoint}` refused: {reason}")]
#[non_exhaustive]
pub struct EndpointError {
    /// The endpoint.
    pub endpoint: String,
    /// What is wrong.
    pub reason: &'static str,
}

/// Checks that `endpoint` is `https://`, or `http://` to a loopback host.
///
/// # Errors
/// [`EndpointError`] saying why.
pub(crate) fn validate_endpoint(endpoint: &str) -> Result<(), EndpointError> {
    crate::product::endpoint_url::parse(
        endpoint,
        crate::product::endpoint_url::PlainHttp::LoopbackOnly,
    )
    .map(drop)
    .map_err(|reason| EndpointError {
        endpoint: redacted(endpoint),
        reason,
    })
}

/// What the server answered.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    /// `Retry-After`, given as seconds or as an HTTP-date.
    pub(crate) retry_after: Option<Duration>,
    /// At most [`MAX_ANSWER_BYTES`] of the body.
    pub(crate) body: Vec<u8>,
}

/// The most bytes of an answer read: a version notice is small; anything larger is ignored.
pub(crate) const MAX_ANSWER_BYTES: u64 = 64 << 10;

/// Why a request did not get a 2xx answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Failure {
    /// Consent was withdrawn (or changed) before the report's bytes were written.
    #[error("consent was withdrawn")]
    Withdrawn,
    /// The collector answered with this status.
    #[error("HTTP {0}")]
    Status(u16),
    /// No answer: connection, TLS or timeout error.
    #[error("{0}")]
    Transport(String),
    /// The shutdown bound ran out before another attempt could start.
    #[error("out of time")]
    OutOfTime,
}

impl Failure {
    /// A 4xx other than 429: the collector refuses this report, and sending it again will not
    /// help.
    pub(crate) fn is_refusal(&self) -> bool {
        matches!(self, Failure::Status(s) if (400..500).contains(s) && *s != 429)
    }
}

/// The request body: asks the permit once more right before its first byte is written, so a
/// withdrawal that arrives while the connection is being set up stops the report.
#[cfg(feature = "http")]
struct GatedBody<'p> {
    permit: &'p Permit,
    body: std::io::Cursor<Vec<u8>>,
    released: bool,
    withdrawn: bool,
}

#[cfg(feature = "http")]
impl Read for GatedBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.released {
            if !self.permit.release_body() {
                self.withdrawn = true;
                return Err(std::io::Error::other("telemetry consent was withdrawn"));
            }
            self.released = true;
        }
        self.body.read(buf)
    }
}

/// The HTTP client of one reporter: a ureq agent, whose pool keeps the connection to the
/// collector between reports and retries (cloning shares it). No redirects: a report goes to
/// the configured endpoint or nowhere.
#[derive(Clone, Debug)]
pub(crate) struct Client {
    #[cfg(feature = "http")]
    agent: ureq::Agent,
}

impl Client {
    pub(crate) fn new() -> Self {
        Client {
            #[cfg(feature = "http")]
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .user_agent(concat!("telemetry-core/", env!("CARGO_PKG_VERSION")))
                .build()
                .into(),
        }
    }

    /// Posts `body` once, under `permit`, within `total_timeout` (connecting within the
    /// config's connect timeout, if that is shorter).
    #[cfg(feature = "http")]
    pub(crate) fn post(
        &self,
        permit: &Permit,
        config: &HttpConfig,
        body: &[u8],
        total_timeout: Duration,
    ) -> Result<Answer, Failure> {
        post(&self.agent, permit, config, body, total_timeout)
    }

    /// Fetches `url` once (the upload configuration), under `permit`, asked again right
    /// before the request is written, within `total_timeout` (connecting within the config's
    /// connect timeout, if that is shorter); reads at most [`MAX_ANSWER_BYTES`] of the answer.
    #[cfg(feature = "http")]
    pub(crate) fn get(
        &self,
        permit: &Permit,
        config: &HttpConfig,
        url: &str,
        total_timeout: Duration,
    ) -> Result<Answer, Failure> {
        if !permit.release_body() {
            return Err(Failure::Withdrawn);
        }
        let mut response = self
            .agent
            .get(url)
            .config()
            .timeout_connect(Some(config.connect_timeout.min(total_timeout)))
            .timeout_global(Some(total_timeout))
            .build()
            .call()
            .map_err(|e| Failure::Transport(e.to_string()))?;
        let body = read_answer(&mut response, MAX_ANSWER_BYTES);
        Ok(Answer {
            status: response.status().as_u16(),
            retry_after: None,
            body,
        })
    }

    /// Without the `http` feature there is no client: every fetch fails.
    #[cfg(not(feature = "http"))]
    pub(crate) fn get(
        &self,
        _: &Permit,
        _: &HttpConfig,
        _: &str,
        _: Duration,
    ) -> Result<Answer, Failure> {
        Err(Failure::Transport(
            "built without the `http` feature".to_owned(),
        ))
    }

    /// Without the `http` feature there is no client: every post fails, and reports are
    /// spooled.
    #[cfg(not(feature = "http"))]
    pub(crate) fn post(
        &self,
        _: &Permit,
        _: &HttpConfig,
        _: &[u8],
        _: Duration,
    ) -> Result<Answer, Failure> {
        Err(Failure::Transport(
            "built without the `http` feature".to_owned(),
        ))
    }
}

#[cfg(feature = "http")]
fn post(
    agent: &ureq::Agent,
    permit: &Permit,
    config: &HttpConfig,
    body: &[u8],
    total_timeout: Duration,
) -> Result<Answer, Failure> {
    let mut gated = GatedBody {
        permit,
        body: std::io::Cursor::new(body.to_vec()),
        released: false,
        withdrawn: false,
    };
    let result = agent
        .post(&config.endpoint)
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .config()
        .timeout_connect(Some(config.connect_timeout.min(total_timeout)))
        .timeout_global(Some(total_timeout))
        .build()
        .send(ureq::SendBody::from_reader(&mut gated));
    let mut response = match result {
        Ok(response) => response,
        Err(_) if gated.withdrawn => return Err(Failure::Withdrawn),
        Err(e) => return Err(Failure::Transport(e.to_string())),
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry_after(v, std::time::SystemTime::now()));
    // A malformed or oversized answer must not fail a delivered report: keep what was read.
    let body = read_answer(&mut response, MAX_ANSWER_BYTES);
    Ok(Answer {
        status,
        retry_after,
        body,
    })
}

/// At most `limit` bytes of an answer's body; an unreadable body reads as empty (what the
/// server said is in its status).
#[cfg(feature = "http")]
pub(crate) fn read_answer(response: &mut ureq::http::Response<ureq::Body>, limit: u64) -> Vec<u8> {
    response
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .unwrap_or_default()
}

/// A `Retry-After` value (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date, which is read
/// as the time from `now` until then (0 if it is past).
#[cfg(feature = "http")]
fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_files_are_read_with_defaults_and_refused_when_wrong() {
        let config: HttpConfig =
            serde_json::from_str(r#"{"endpoint":"https://c.example/r","backoff":"250ms"}"#)
                .unwrap();
        assert_eq!(
            config,
            HttpConfig {
                backoff: Duration::from_millis(250),
                ..HttpConfig::new("https://c.example/r")
            }
        );
        for bad in [
            r#"{}"#,
            r#"{"endpoint":"https://c.example/r","retry":1}"#,
            r#"{"endpoint":"https://c.example/r","total_timeout":"soon"}"#,
            r#"{"endpoint":"https://c.example/r","total_timeout":20}"#,
        ] {
            assert!(serde_json::from_str::<HttpConfig>(bad).is_err(), "{bad}");
        }
        let limits: super::super::SpoolLimits = serde_json::from_str(r#"{"max_files":5}"#).unwrap();
        assert_eq!(limits, super::super::SpoolLimits::new(5, 10 << 20));
        assert!(serde_json::from_str::<super::super::SpoolLimits>(r#"{"files":5}"#).is_err());
    }

    #[cfg(feature = "http")]
    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
    }

    /// Consent withdrawn while the connection is set up: the request is abandoned before any
    /// byte of the report reaches the server.
    #[cfg(feature = "http")]
    #[test]
    fn a_withdrawal_during_connect_sends_no_byte_of_the_report() {
        use super::super::gate::tests::gate;
        use crate::product::consent::{Category, Consent};
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/r", listener.local_addr().unwrap());
        let received = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut all = Vec::new();
            let _ = stream.read_to_end(&mut all);
            String::from_utf8_lossy(&all).into_owned()
        });
        let g = gate(Consent::Enabled);
        let permit = g.permit(Category::UsageStatistics, 0).unwrap();
        // The opt-out lands after the permit, before the body is written.
        {
            let mut control = g.lock();
            control.consent.state = Consent::Disabled;
            control.generation += 1;
        }
        let config = HttpConfig::new(url);
        let result = Client::new().post(
            &permit,
            &config,
            b"{\"secret\":\"CANARY\"}",
            Duration::from_secs(5),
        );
        assert_eq!(result.unwrap_err(), Failure::Withdrawn);
        let seen = received.join().unwrap();
        assert!(!seen.contains("CANARY"), "the server saw: {seen}");
    }

    #[test]
    fn endpoints_are_logged_without_queries_or_user_information() {
        assert_eq!(
            redacted("https://user:pw@t.example.com:8443/v1/report?token=s3cr3t#x"),
            "https://t.example.com:8443/v1/report"
        );
        assert_eq!(redacted("http://127.0.0.1:9/r"), "http://127.0.0.1:9/r");
        assert_eq!(redacted("https://h?a@b"), "https://h");
    }
}

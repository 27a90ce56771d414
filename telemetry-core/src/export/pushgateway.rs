//! Pushes a snapshot to a Prometheus Pushgateway (feature `http`), for batch jobs and CLIs
//! that exit before a Prometheus server could scrape them.
//!
//! ```no_run
//! use telemetry_core::export::pushgateway::Pushgateway;
//!
//! let gateway = Pushgateway::new("http://127.0.0.1:9091", "nightly_import")?
//!     .with_grouping("shard", "3")?;
//! // ... the job's work ...
//! gateway.push(&telemetry_core::snapshot())?;
//! # Ok::<(), telemetry_core::export::pushgateway::PushError>(())
//! ```
//!
//! The body is the Prometheus text exposition format 0.0.4 made by
//! [`Exposition`] (same names, units and bucket layout as
//! `/metrics`), sent to the Pushgateway's HTTP API (`/metrics/job/<job>{/<label>/<value>}`, as
//! documented in the Pushgateway's README): [`Pushgateway::push`] uses `PUT`, which replaces
//! every metric of the group, [`Pushgateway::push_add`] uses `POST`, which replaces only the
//! metrics of the same names, and [`Pushgateway::delete`] removes the group. Path values that
//! contain a `/` or are empty are sent in the gateway's `@base64` form (base64url), other
//! values percent-encoded.
//!
//! A push is one blocking request on the calling thread, bounded by
//! [`Pushgateway::with_timeout`] (default 10 s). Counters pushed by a job are that run's
//! totals; the gateway keeps the last push of each group until it is deleted or replaced.

use super::prometheus::{Exposition, Format, PROMETHEUS_CONTENT_TYPE};
use super::push_client::{self, Method};
use crate::engine::snapshot::Snapshot;
use std::time::Duration;

/// Why a push, or building a [`Pushgateway`], failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The gateway URL is not an `http://` or `https://` URL with a host.
    #[error("invalid Pushgateway URL `{url}`: {reason}")]
    InvalidUrl {
        /// The rejected URL, without its query, fragment and user info (they can hold a
        /// token).
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The job name is empty.
    #[error("the Pushgateway job name is empty")]
    EmptyJob,
    /// A grouping label name is not `[a-zA-Z_][a-zA-Z0-9_]*`, starts with `__`, is `job`, or is
    /// given twice.
    #[error(
        "invalid Pushgateway grouping label `{name}`: a label name is ASCII letters, digits and \
         `_`, not starting with a digit or `__`, not `job`, and given once"
    )]
    InvalidLabel {
        /// The rejected label name.
        name: String,
    },
    /// The request did not complete: refused connection, DNS failure, timeout, TLS error.
    #[error("push to {url} failed: {message}")]
    Transport {
        /// The URL of the request.
        url: String,
        /// The transport's description of the failure.
        message: String,
    },
    /// The gateway answered with a status other than 2xx (400: the push was malformed or
    /// inconsistent with metrics it already holds).
    #[error("the Pushgateway at {url} answered {status}: {body}")]
    Status {
        /// The URL of the request.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the gateway's answer, which says what it rejected.
        body: String,
    },
}

/// A Pushgateway group to push to: the gateway's base URL, the job name and grouping labels.
#[derive(Clone, Debug)]
pub struct Pushgateway {
    base: String,
    job: String,
    grouping: Vec<(String, String)>,
    exposition: Exposition,
    timeout: Duration,
    /// Shared by the group's clones, so pushes reuse their connections.
    client: push_client::Client,
}

impl Pushgateway {
    /// The group of job `job` on the gateway at `url` (`http://host:9091`; a trailing `/` is
    /// ignored), with the default [`Exposition`] and a 10 s timeout.
    ///
    /// # Errors
    /// [`PushError::InvalidUrl`] if `url` is not `http(s)://host...` without query, and
    /// [`PushError::EmptyJob`] if `job` is empty.
    pub fn new(url: &str, job: &str) -> Result<Self, PushError> {
        let base = push_client::check_base_url(url).map_err(|reason| PushError::InvalidUrl {
            url: crate::product::reporter::transport::redacted(url),
            reason,
        })?;
        if job.is_empty() {
            return Err(PushError::EmptyJob);
        }
        Ok(Pushgateway {
            base,
            job: job.to_owned(),
            grouping: Vec::new(),
            exposition: Exposition::new(),
            timeout: Duration::from_secs(10),
            client: push_client::Client::new(),
        })
    }

    /// Adds grouping label `name="value"` to the group's key (after `job`, in call order).
    ///
    /// # Errors
    /// [`PushError::InvalidLabel`] if `name` is not a valid label name, starts with `__`, is
    /// `job`, or was already added.
    pub fn with_grouping(mut self, name: &str, value: &str) -> Result<Self, PushError> {
        let valid = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && !name.starts_with("__")
            && name != "job"
            && self.grouping.iter().all(|(n, _)| n != name);
        if !valid {
            return Err(PushError::InvalidLabel {
                name: name.to_owned(),
            });
        }
        self.grouping.push((name.to_owned(), value.to_owned()));
        Ok(self)
    }

    /// Uses `exposition` (prefix, bucket layout) for the pushed text.
    pub fn with_exposition(mut self, exposition: Exposition) -> Self {
        self.exposition = exposition;
        self
    }

    /// Bounds each request (connect, send, answer) by `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The group's URL: `{base}/metrics/job/{job}{/{label}/{value}}`.
    pub fn group_url(&self) -> String {
        let mut url = format!("{}/metrics", self.base);
        push_segment(&mut url, "job", &self.job);
        for (name, value) in &self.grouping {
            push_segment(&mut url, name, value);
        }
        url
    }

    /// Replaces every metric of the group with `snapshot` (HTTP `PUT`).
    ///
    /// # Errors
    /// [`PushError::Transport`] if the gateway cannot be reached in time, and
    /// [`PushError::Status`] if it refuses the push.
    pub fn push(&self, snapshot: &Snapshot) -> Result<(), PushError> {
        self.send(Method::Put, Some(snapshot))
    }

    /// Replaces the group's metrics that have the names of `snapshot`'s, keeping the others
    /// (HTTP `POST`).
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn push_add(&self, snapshot: &Snapshot) -> Result<(), PushError> {
        self.send(Method::Post, Some(snapshot))
    }

    /// Deletes the group from the gateway (HTTP `DELETE`).
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn delete(&self) -> Result<(), PushError> {
        self.send(Method::Delete, None)
    }

    fn send(&self, method: Method, snapshot: Option<&Snapshot>) -> Result<(), PushError> {
        let url = self.group_url();
        let body = snapshot
            .map(|s| self.exposition.render(s, Format::Prometheus))
            .unwrap_or_default();
        let headers = [(
            "Content-Type".to_owned(),
            PROMETHEUS_CONTENT_TYPE.to_owned(),
        )];
        let headers = if snapshot.is_some() {
            &headers[..]
        } else {
            &[]
        };
        let response = self
            .client
            .send(method, &url, headers, body.as_bytes(), self.timeout)
            .map_err(|message| PushError::Transport {
                url: url.clone(),
                message,
            })?;
        if (200..300).contains(&response.status) {
            Ok(())
        } else {
            Err(PushError::Status {
                url,
                status: response.status,
                body: response.body_excerpt(),
            })
        }
    }
}

/// Appends `/{name}/{value}`, in the `@base64` form if the value is empty or holds a `/`.
fn push_segment(url: &mut String, name: &str, value: &str) {
    url.push('/');
    url.push_str(name);
    if value.is_empty() || value.contains('/') {
        url.push_str("@base64/");
        url.push_str(&base64url(value.as_bytes()));
    } else {
        url.push('/');
        url.push_str(&push_client::encode_path_segment(value));
    }
}

/// Base64url with padding (RFC 4648 §5); the empty input gives `=`, as the Pushgateway wants
/// for an empty value.
fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    if bytes.is_empty() {
        return "=".to_owned();
    }
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_urls() {
        let g = Pushgateway::new("http://127.0.0.1:9091/", "import job")
            .unwrap()
            .with_grouping("path", "/var/tmp")
            .unwrap()
            .with_grouping("empty", "")
            .unwrap()
            .with_grouping("shard", "3")
            .unwrap();
        assert_eq!(
            g.group_url(),
            "http://127.0.0.1:9091/metrics/job/import%20job/path@base64/L3Zhci90bXA=/empty@base64/=/shard/3"
        );
        assert!(matches!(
            Pushgateway::new("localhost:9091", "j"),
            Err(PushError::InvalidUrl { .. })
        ));
        assert_eq!(
            Pushgateway::new("http://h", "").unwrap_err(),
            PushError::EmptyJob
        );
        let g = Pushgateway::new("http://h", "j").unwrap();
        for bad in ["job", "__x", "1a", "a-b", ""] {
            assert!(g.clone().with_grouping(bad, "v").is_err(), "{bad}");
        }
        assert!(
            g.with_grouping("a", "1")
                .unwrap()
                .with_grouping("a", "2")
                .is_err()
        );
    }

    #[test]
    fn base64url_matches_rfc4648() {
        assert_eq!(base64url(b"f"), "Zg==");
        assert_eq!(base64url(b"fo"), "Zm8=");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8=");
    }

    #[test]
    fn unreachable_gateway_is_a_transport_error() {
        // A port that was just free: nothing listens there.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let g = Pushgateway::new(&format!("http://127.0.0.1:{port}"), "j")
            .unwrap()
            .with_timeout(Duration::from_secs(2));
        let err = g.push(&Snapshot::default()).unwrap_err();
        assert!(matches!(err, PushError::Transport { .. }), "{err}");
        assert!(
            err.to_string().contains("push to http://127.0.0.1:"),
            "{err}"
        );
    }
}

//! The blocking HTTP requests of the push exporters, through ureq (feature `http`).
//!
//! Each exporter holds one [`Client`] (a ureq agent), so the connections to its receiver are
//! reused from one export to the next; each request has its own global timeout. HTTP error
//! statuses are returned, not raised, so the exporters can put the server's answer in their
//! errors. Proxies are taken from the usual environment variables (`HTTP_PROXY`,
//! `HTTPS_PROXY`, `NO_PROXY`), as ureq does by default.

use std::time::Duration;

/// The most of a response body that is read: answers are status messages, not data.
const MAX_RESPONSE: u64 = 1 << 20;

/// The request methods the exporters use.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Method {
    Put,
    Post,
    Delete,
}

/// A response: its status and (up to 1 MiB of) its body.
pub(crate) struct HttpResponse {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

impl HttpResponse {
    /// The body as text for an error message: lossy UTF-8, trimmed, at most 500 characters.
    pub(crate) fn body_excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        match text.char_indices().nth(500) {
            Some((cut, _)) => format!("{}...", &text[..cut]),
            None => text.to_owned(),
        }
    }
}

/// The HTTP client of one exporter: a ureq agent and its connection pool (cloning shares
/// them).
#[derive(Clone, Debug)]
pub(crate) struct Client {
    agent: ureq::Agent,
}

impl Client {
    pub(crate) fn new() -> Self {
        Client {
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .user_agent(concat!("telemetry-core/", env!("CARGO_PKG_VERSION")))
                .build()
                .into(),
        }
    }

    /// Sends one request, bounded by `timeout`. `Err` holds ureq's description of a
    /// transport failure (DNS, refused connection, timeout, TLS), never an HTTP status.
    pub(crate) fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
        timeout: Duration,
    ) -> Result<HttpResponse, String> {
        // The headers and the timeout, on a request of either body kind.
        fn prepared<B>(
            mut request: ureq::RequestBuilder<B>,
            headers: &[(String, String)],
            timeout: Duration,
        ) -> ureq::RequestBuilder<B> {
            for (name, value) in headers {
                request = request.header(name.as_str(), value.as_str());
            }
            request.config().timeout_global(Some(timeout)).build()
        }
        let result = match method {
            Method::Put => prepared(self.agent.put(url), headers, timeout).send(body),
            Method::Post => prepared(self.agent.post(url), headers, timeout).send(body),
            Method::Delete => prepared(self.agent.delete(url), headers, timeout).call(),
        };
        let mut response = result.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = crate::product::reporter::transport::read_answer(&mut response, MAX_RESPONSE);
        Ok(HttpResponse { status, body })
    }
}

/// Percent-encodes a URL path segment: everything but `A-Z a-z 0-9 - . _ ~` (RFC 3986's
/// unreserved characters).
pub(crate) fn encode_path_segment(segment: &str) -> String {
    const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(segment, RESERVED).to_string()
}

/// Checks `url` against the crate's URL rule (plain `http://` to any host allowed) and
/// returns it without a trailing `/`.
pub(crate) fn check_base_url(url: &str) -> Result<String, &'static str> {
    let trimmed = url.trim().trim_end_matches('/');
    crate::product::endpoint_url::parse(trimmed, crate::product::endpoint_url::PlainHttp::Any)?;
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_segments() {
        assert_eq!(
            check_base_url("http://127.0.0.1:9091/").unwrap(),
            "http://127.0.0.1:9091"
        );
        assert!(check_base_url("ftp://x").is_err());
        assert!(check_base_url("http://").is_err());
        assert!(check_base_url("http:///path").is_err());
        assert!(check_base_url("http://h?x=1").is_err());
        assert_eq!(encode_path_segment("a b/é"), "a%20b%2F%C3%A9");
    }
}

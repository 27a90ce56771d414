//! The one rule for the URLs this crate sends to: the reporter's collector endpoint and the
//! exporters' base URLs (OTLP, Pushgateway). Parsed as an [`http::Uri`]; an absolute
//! `http://` or `https://` URL with a host, a port from 0 to 65535 if one is given, and no
//! user information, query or fragment: a receiver of anonymous data needs no credentials,
//! and an HTTP client writes whole URLs in its debug log lines.

use http::Uri;

/// Which plain `http://` URLs are accepted.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlainHttp {
    /// Only to a loopback host (`localhost`, `127.0.0.0/8`, `::1`): the reporter's reports
    /// travel over HTTPS.
    LoopbackOnly,
    /// To any host: exporters that push to a collector on the operator's own network.
    Any,
}

/// `text` as a URL that follows the rule, or why it does not.
pub(crate) fn parse(text: &str, plain: PlainHttp) -> Result<Uri, &'static str> {
    if text.contains(['?', '#']) {
        return Err(
            "it must not have a query or a fragment (a token in a URL ends up in log lines)",
        );
    }
    let uri: Uri = text
        .parse()
        .map_err(|_| "it is not an absolute URL (scheme://host/path)")?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err("it is not an absolute URL (scheme://host/path)");
    };
    let authority = authority.as_str();
    if authority.contains('@') {
        return Err("it needs a host and no user information");
    }
    let host = uri.host().unwrap_or("");
    if host.is_empty() {
        return Err("it needs a host and no user information");
    }
    if let Some(bracketed) = host.strip_prefix('[') {
        let inside = bracketed.strip_suffix(']').unwrap_or(bracketed);
        if inside.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("only an IPv6 address goes in brackets");
        }
    } else if host.contains(':') {
        return Err("the host is malformed (an IPv6 address goes in brackets)");
    }
    // A `:` after the host announces a port, which must then be a number up to 65535.
    let after_host = &authority[authority.find(host).map_or(0, |i| i + host.len())..];
    if !after_host.is_empty() {
        let digits = after_host.strip_prefix(':').unwrap_or("");
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || uri.port_u16().is_none()
        {
            return Err("the port is not a number from 0 to 65535");
        }
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(uri),
        "http" if plain == PlainHttp::Any || is_loopback(host) => Ok(uri),
        "http" => Err("reports travel over HTTPS; plain http:// is only for loopback addresses"),
        _ => Err("the scheme must be https (or http to a loopback address)"),
    }
}

fn is_loopback(host: &str) -> bool {
    let unbracketed = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || unbracketed
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_is_required_except_for_loopback() {
        for ok in [
            "https://telemetry.example.com/v1/report",
            "http://127.0.0.1:8080/r",
            "http://127.1.2.3/r",
            "http://[::1]:9/r",
            "http://localhost:1/",
            "HTTPS://x",
        ] {
            assert!(parse(ok, PlainHttp::LoopbackOnly).is_ok(), "{ok}");
        }
        for bad in [
            "http://telemetry.example.com/r",
            "http://10.0.0.1/r",
            "ftp://x",
            "example.com",
            "https://user:pw@example.com/",
            "https://user@example.com/",
            "http://127.0.0.1.evil.com/",
            "http://127.0.0.1:80r",
            "http://127.0.0.1:99999/",
            "http://[::1]evil.com/",
            "http://[::1]2:9/r",
            "http://[::1]]/",
            "http://::1:80/",
            "http://127.0.0.1:/",
            "http://[127.0.0.1]",
            "https://x/?token=1",
            "https://x/#f",
            "https://",
            "http:///path",
            "https://exa mple.com/",
        ] {
            assert!(parse(bad, PlainHttp::LoopbackOnly).is_err(), "{bad}");
        }
    }

    #[test]
    fn exporters_may_push_over_plain_http_to_any_host() {
        assert!(parse("http://pushgateway.lan:9091", PlainHttp::Any).is_ok());
        assert!(parse("http://10.0.0.1:4318/", PlainHttp::Any).is_ok());
        for bad in ["http://u@h:1", "http://h:99999", "http://h?x=1", "ftp://h"] {
            assert!(parse(bad, PlainHttp::Any).is_err(), "{bad}");
        }
    }
}

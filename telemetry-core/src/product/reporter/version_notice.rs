//! The version notice a collector answers with (FerretDB's "Version notification"): reading
//! it, and telling whether the announced version is newer than the running one.

use super::transport::MAX_ANSWER_BYTES;
use std::cmp::Ordering;

/// The latest version announced in an answer (FerretDB's version notification):
/// `{"latest_version": "1.2.3"}`. Only a plain version string (at most 64 characters of
/// letters, digits, `.`, `-` and `+`) is accepted; anything else is ignored.
pub(crate) fn parse_version_notice(body: &[u8]) -> Option<String> {
    if body.len() as u64 > MAX_ANSWER_BYTES {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let version = value.get("latest_version")?.as_str()?.trim();
    let plain = !version.is_empty()
        && version.len() <= 64
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'));
    plain.then(|| version.to_owned())
}

/// A version in the order SemVer 2.0.0 gives (§11): numbers compared numerically, a
/// pre-release before its release, build metadata ignored. One to four numbers are read
/// (`2`, `1.0`, `1.0.1`, .NET's `23.10.0.0`), missing ones counting as 0, after an optional
/// `v`.
#[derive(Debug, PartialEq, Eq)]
struct Precedence {
    numbers: [u64; 4],
    pre: semver::Prerelease,
}

impl Precedence {
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
        let text = text
            .split_once('+')
            .map_or(text, |(version, _build)| version);
        let (core, pre) = match text.split_once('-') {
            Some((_, "")) => return None,
            Some(parts) => parts,
            None => (text, ""),
        };
        let mut numbers = [0; 4];
        let mut parts = core.split('.');
        for (slot, part) in numbers.iter_mut().zip(parts.by_ref()) {
            let digits = !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
            *slot = if digits {
                part.parse().ok()?
            } else {
                return None;
            };
        }
        if parts.next().is_some() {
            return None;
        }
        Some(Precedence {
            numbers,
            pre: semver::Prerelease::new(pre).ok()?,
        })
    }
}

impl Ord for Precedence {
    fn cmp(&self, other: &Self) -> Ordering {
        // The semver crate orders an empty pre-release (a release) after every other.
        self.numbers
            .cmp(&other.numbers)
            .then_with(|| self.pre.cmp(&other.pre))
    }
}

impl PartialOrd for Precedence {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Whether `latest` is a newer version than `running`: `None` if either cannot be read as a
/// version, in which case nothing is announced.
pub(crate) fn is_newer(latest: &str, running: &str) -> Option<bool> {
    Some(Precedence::parse(latest)? > Precedence::parse(running)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_notices_are_parsed_strictly() {
        assert_eq!(
            parse_version_notice(br#"{"latest_version":"1.24.0"}"#).as_deref(),
            Some("1.24.0")
        );
        assert_eq!(
            parse_version_notice(br#"{"latest_version":"<script>"}"#),
            None
        );
        assert_eq!(parse_version_notice(br#"{"latest_version":42}"#), None);
        assert_eq!(parse_version_notice(b"not json"), None);
        assert_eq!(parse_version_notice(b""), None);
    }

    #[test]
    fn only_a_newer_version_is_newer() {
        for (latest, running) in [
            ("1.0.1", "1.0.0"),
            ("1.0.10", "1.0.9"),
            ("2", "1.9.9"),
            ("v1.1", "1.0.5"),
            ("1.0.0", "1.0.0-rc.1"),
            ("1.0.0-rc.2", "1.0.0-rc.1"),
            ("1.0.0-rc.10", "1.0.0-rc.9"),
            ("1.0.0-beta", "1.0.0-alpha.1"),
            ("23.10.0.1", "23.10.0.0"),
            ("24.2.0", "23.10.0.0"),
        ] {
            assert_eq!(
                is_newer(latest, running),
                Some(true),
                "{latest} > {running}"
            );
            assert_eq!(
                is_newer(running, latest),
                Some(false),
                "{running} < {latest}"
            );
        }
        for (a, b) in [
            ("1.0.1", "1.0.1"),
            ("1.0", "1.0.0"),
            ("v2", "2.0.0"),
            ("1.0.0+build.5", "1.0.0"),
            ("23.10.0.0", "23.10.0"),
        ] {
            assert_eq!(is_newer(a, b), Some(false), "{a} = {b}");
            assert_eq!(is_newer(b, a), Some(false), "{b} = {a}");
        }
        for bad in [
            "",
            "latest",
            "1.x",
            "1..2",
            "1.2.3.4.5",
            "1.0.0-",
            "-1",
            "1.0.0-01",
        ] {
            assert_eq!(is_newer(bad, "1.0.0"), None, "{bad:?}");
            assert_eq!(is_newer("1.0.0", bad), None, "{bad:?}");
        }
    }
}

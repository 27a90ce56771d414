//! The product's build: [`BuildFacts`], fixed at compile time by [`build_facts!`](crate::build_facts).

use telemetry_macros::Telemetry;

/// The product's build: version, tag, profile, target and enabled features. Made with
/// [`build_facts!`](crate::build_facts) in the product's crate, from string literals and
/// `CARGO_PKG_VERSION`, so the values are the product's own and fixed at compile time.
#[derive(Clone, Debug, PartialEq, Telemetry)]
pub struct BuildFacts {
    #[telemetry(verbatim = "the product's version, fixed at compile time")]
    version: &'static str,
    #[telemetry(verbatim = "a release tag, a string literal in the product's code")]
    tag: Option<&'static str>,
    #[telemetry(verbatim = "one of two constants")]
    profile: &'static str,
    #[telemetry(verbatim = "a constant of the standard library")]
    target: &'static str,
    #[telemetry(verbatim = "feature names, string literals in the product's code")]
    features: Vec<&'static str>,
}

/// [`BuildFacts`] of the calling crate: its `CARGO_PKG_VERSION`, the profile from
/// `debug_assertions`, the target, the feature names given and, with `tag = "..."`, a release
/// tag. Every text is a string literal: a tag comes only from the product's code, never from
/// the build environment (CI systems set variables such as Jenkins' `BUILD_TAG` to
/// `jenkins-{job}-{number}` on their own) or from a value made at run time.
///
/// ```
/// let build = telemetry_core::build_facts!("tls", "metrics");
/// assert_eq!(build.features(), ["tls", "metrics"]);
/// let tagged = telemetry_core::build_facts!(tag = "oss-v23.10.0", "tls");
/// assert_eq!(tagged.tag(), Some("oss-v23.10.0"));
/// ```
///
/// A value made at run time does not compile:
///
/// ```compile_fail
/// let host: &'static str = String::from("db01.corp.example.com").leak();
/// let build = telemetry_core::build_facts!(tag = host);
/// ```
#[macro_export]
macro_rules! build_facts {
    (tag = $tag:literal $(, $feature:literal)* $(,)?) => {
        $crate::product::facts::BuildFacts::__declared(
            env!("CARGO_PKG_VERSION"),
            ::core::option::Option::Some($tag),
            ::core::cfg!(debug_assertions),
            &[$($feature),*],
        )
    };
    ($($feature:literal),* $(,)?) => {
        $crate::product::facts::BuildFacts::__declared(
            env!("CARGO_PKG_VERSION"),
            ::core::option::Option::None,
            ::core::cfg!(debug_assertions),
            &[$($feature),*],
        )
    };
    ($($anything:tt)*) => {
        ::core::compile_error!(
            "build_facts! takes string literals: a tag and feature names fixed in the code, \
             e.g. `build_facts!(tag = \"oss-v23.10.0\", \"tls\")`; a value made at run time \
             (an environment variable, a host name) could carry personal data"
        )
    };
}

/// A release tag: 1 to 64 ASCII letters, digits, `.`, `-`, `_` and `+` (`oss-v23.10.0`).
fn is_tag(tag: &str) -> bool {
    (1..=64).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+'))
}

/// `{arch}-{os}` of the build target (one compilation builds the product and this crate for
/// the same target).
pub const TARGET: &str = match (
    std::env::consts::ARCH.as_bytes(),
    std::env::consts::OS.as_bytes(),
) {
    (b"x86_64", b"linux") => "x86_64-linux",
    (b"aarch64", b"linux") => "aarch64-linux",
    (b"x86_64", b"macos") => "x86_64-macos",
    (b"aarch64", b"macos") => "aarch64-macos",
    (b"x86_64", b"windows") => "x86_64-windows",
    (b"aarch64", b"windows") => "aarch64-windows",
    _ => std::env::consts::ARCH,
};

impl BuildFacts {
    /// These facts with each text checked (defence in depth behind the macro's literals): a
    /// version or tag outside the version grammar, or a feature name outside
    /// Cargo's (letters, digits, `_`, `-`, `+`, `.`), is sent as `other`.
    pub(super) fn checked(mut self) -> Self {
        let other = crate::product::report::INVALID_APPLICATION_TEXT;
        if !crate::product::report::is_version(self.version) {
            self.version = other;
        }
        if self
            .tag
            .is_some_and(|t| !crate::product::report::is_version(t) && !is_tag(t))
        {
            self.tag = Some(other);
        }
        for feature in &mut self.features {
            let ok = (1..=64).contains(&feature.len())
                && feature
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+' | b'.'));
            if !ok {
                *feature = other;
            }
        }
        self
    }

    /// Made by [`build_facts!`](crate::build_facts) only; not a stable API.
    #[doc(hidden)]
    pub fn __declared(
        version: &'static str,
        tag: Option<&'static str>,
        debug: bool,
        features: &[&'static str],
    ) -> Self {
        BuildFacts {
            version,
            tag,
            profile: if debug { "debug" } else { "release" },
            target: TARGET,
            features: features.to_vec(),
        }
    }

    /// The product's version (`CARGO_PKG_VERSION`).
    pub fn version(&self) -> &'static str {
        self.version
    }

    /// The release tag, if the product gave one (`build_facts!(tag = "oss-v23.10.0")`).
    pub fn tag(&self) -> Option<&'static str> {
        self.tag
    }

    /// `debug` or `release`.
    pub fn profile(&self) -> &'static str {
        self.profile
    }

    /// `{arch}-{os}` of the build target.
    pub fn target(&self) -> &'static str {
        self.target
    }

    /// The product's enabled Cargo features, as the product lists them.
    pub fn features(&self) -> &[&'static str] {
        &self.features
    }
}

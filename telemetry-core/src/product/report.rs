//! The report: what a product sends (or writes, or logs) about one installation.

use crate::engine::snapshot::Snapshot;
use crate::privacy::event::Section;
use crate::privacy::manifest::REPORT_SCHEMA_VERSION;
use crate::process::{instance_id, uptime};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::SystemTime;
use uuid::Uuid;

/// The section that holds the value of the event that made a report.
pub const EVENT_SECTION: &str = "event";

/// The name and version of a program, for the `framework` and `application` sections.
/// Deserializing one checks both against their grammar, as [`Application::new`] does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ApplicationText")]
pub struct Application {
    /// The name, e.g. `my-server`.
    name: String,
    /// The version, e.g. `1.4.2`.
    version: String,
}

/// An application as read from JSON, before its texts are checked.
#[derive(Deserialize)]
struct ApplicationText {
    name: String,
    version: String,
}

impl From<ApplicationText> for Application {
    fn from(text: ApplicationText) -> Self {
        let checked = |text: String, ok: bool| {
            if ok {
                text
            } else {
                INVALID_APPLICATION_TEXT.to_owned()
            }
        };
        Application {
            name: {
                let ok = is_name(&text.name);
                checked(text.name, ok)
            },
            version: {
                let ok = is_version(&text.version);
                checked(text.version, ok)
            },
        }
    }
}

/// A name or version that does not fit its grammar ([`Application::try_new`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplicationError {
    /// The name is not 1 to 64 ASCII letters, digits, `-` and `_`, starting with a letter.
    #[error(
        "an application name is 1 to 64 ASCII letters, digits, `-` and `_`, starting with a \
         letter"
    )]
    Name,
    /// The version is not 1 to 64 ASCII letters, digits, `.`, `-` and `+`, starting with a
    /// digit or `v`.
    #[error(
        "an application version is 1 to 64 ASCII letters, digits, `.`, `-` and `+`, starting \
         with a digit or `v`"
    )]
    Version,
}

/// What [`Application::new`] records for a name or version that does not fit its grammar.
pub const INVALID_APPLICATION_TEXT: &str = "other";

fn is_name(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A version: `1.4.2`, `v2`, `1.4.2-rc.1+build5`: an optional `v`, one to three numbers
/// joined by `.`, an optional pre-release (a word of letters, digits and `-`, then numbers
/// each after a `.`) and optional build metadata after `+` without dots. Four numbers (an IPv4
/// address) or a pre-release with words after dots (a host name) do not fit.
pub(crate) fn is_version(text: &str) -> bool {
    let word = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (rest, build) = match text.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (text, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let core = core.strip_prefix('v').unwrap_or(core);
    let parts: Vec<&str> = core.split('.').collect();
    (1..=64).contains(&text.len())
        && (1..=3).contains(&parts.len())
        && parts.iter().all(|p| number(p))
        && pre.is_none_or(|pre| {
            let mut ids = pre.split('.');
            ids.next().is_some_and(word) && ids.all(number)
        })
        && build.is_none_or(word)
}

impl Application {
    /// An application of this name and version: text fixed at compile time, never free text
    /// made at run time. The name is 1 to 64 ASCII letters, digits, `-` and `_` (starting with
    /// a letter), the version 1 to 64 letters, digits, `.`, `-` and `+` (starting with a digit
    /// or `v`), as Cargo package names and SemVer versions are; either one that does not fit
    /// is recorded as [`INVALID_APPLICATION_TEXT`] (and logged once, without the text), so a
    /// host name or an e-mail address passed by mistake never leaves. [`try_new`](Self::try_new)
    /// returns the error instead.
    pub fn new(name: &'static str, version: &'static str) -> Self {
        let checked = |text: &'static str, ok: bool, what: &str| {
            if !ok {
                crate::diagnostics::diag!(
                    warn,
                    "the application {what} does not fit its grammar; it is reported as `{INVALID_APPLICATION_TEXT}`"
                );
            }
            if ok { text } else { INVALID_APPLICATION_TEXT }.to_owned()
        };
        Application {
            name: checked(name, is_name(name), "name"),
            version: checked(version, is_version(version), "version"),
        }
    }

    /// The name, e.g. `my-server`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version, e.g. `1.4.2`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// As [`new`](Self::new), but a name or version that does not fit is an error.
    ///
    /// # Errors
    /// [`ApplicationError`] saying which one and the grammar.
    pub fn try_new(name: &'static str, version: &'static str) -> Result<Self, ApplicationError> {
        if !is_name(name) {
            return Err(ApplicationError::Name);
        }
        if !is_version(version) {
            return Err(ApplicationError::Version);
        }
        Ok(Self::new(name, version))
    }
}

/// The calling crate as an [`Application`]: its Cargo package name and version.
#[macro_export]
macro_rules! application {
    () => {
        $crate::Application::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
    };
}

/// One report: who is reporting and what it measured.
///
/// # JSON shape (schema version 1)
/// ```json
/// {
///   "schema_version": 1,
///   "framework":   { "name": "telemetry-core", "version": "0.1.0" },
///   "application": { "name": "docstore", "version": "1.2.0" },
///   "instance_id": "81e9ca2a-8acc-41ed-b9d0-65a652b36801",
///   "timestamp": "2026-11-22T01:10:02Z",
///   "uptime_seconds": 71,
///   "sections": { "configuration": { "cluster_size": 1 } },
///   "metrics": { "counters": { … }, "gauges": { … }, "histograms": { … } }
/// }
/// ```
/// `sections` holds the product's own parts (like EventStoreDB's `configuration` or
/// `database`) and is omitted when empty; `metrics` is a [`Snapshot`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`REPORT_SCHEMA_VERSION`] when made by this version.
    pub schema_version: u32,
    /// A unique id of this report (a time-ordered UUID, version 7). It is kept when the report
    /// is spooled and sent again, so a collector that receives a report twice (a crash after
    /// the collector answered, before the spooled copy was removed) drops the duplicate by it.
    #[serde(default = "Uuid::nil")]
    pub report_id: Uuid,
    /// This framework's name and version.
    pub framework: Application,
    /// The reporting application.
    pub application: Application,
    /// The per-process random id ([`instance_id`]).
    pub instance_id: Uuid,
    /// The persisted installation id, for products that send one
    /// ([`crate::product::identity::Identity::Installation`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installation_id: Option<Uuid>,
    /// What made this report: `schedule`, `shutdown`, an extra schedule's name, or
    /// `event:{name}` (omitted for reports made by hand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// When the report was made, RFC 3339 in UTC with whole seconds.
    pub timestamp: String,
    /// Whole seconds since start-up ([`uptime`]); rounded down to the hour when anonymized, so
    /// that the timestamp minus the uptime cannot link the reports of different starts.
    pub uptime_seconds: u64,
    /// Product-defined sections, by name: only [`Report::add_section`] adds one, from an
    /// [`Anonymize`] value, so no raw JSON can be put in a report by hand.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) sections: BTreeMap<String, serde_json::Value>,
    /// The metric values.
    pub metrics: Snapshot,
}

impl Report {
    /// A report for `application` holding `metrics`, stamped now.
    pub fn new(application: Application, metrics: Snapshot) -> Self {
        Report {
            schema_version: REPORT_SCHEMA_VERSION,
            report_id: Uuid::now_v7(),
            framework: Application::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION")),
            application,
            instance_id: instance_id(),
            installation_id: None,
            trigger: None,
            timestamp: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            uptime_seconds: uptime().as_secs(),
            sections: BTreeMap::new(),
            metrics,
        }
    }

    /// A report for `application` with a fresh global [`crate::snapshot()`].
    pub fn collect(application: Application) -> Self {
        Self::new(application, crate::snapshot())
    }

    /// Adds (or replaces) the section of `value`, a `#[derive(Telemetry)]
    /// #[telemetry(section = "name")]` value, under its [`Section::NAME`]. The section is
    /// anonymized as it is added, with the process's [`crate::privacy::anonymize::global`] anonymizer:
    /// names marked for hashing are hashed and skipped fields left out, so raw personal data
    /// is never stored in a report, not even in the local, unrounded form. Its name and fields
    /// are in the manifest.
    pub fn add_section<T: Section>(&mut self, value: &T) -> &mut Self {
        if !crate::privacy::event::is_declared(
            T::__declaration(),
            T::NAME,
            crate::privacy::event::Declared::Section,
        ) {
            return self;
        }
        let value = value.anonymize(&crate::privacy::anonymize::global());
        self.sections.insert(T::NAME.to_owned(), value);
        self
    }

    /// The product's sections, by name, as they leave the machine (anonymized).
    pub fn sections(&self) -> &BTreeMap<String, serde_json::Value> {
        &self.sections
    }

    /// Exactly the payload that would leave the machine (Qdrant's `anonymize=true`, in its "Usage Statistics" documentation):
    /// this report with every metric number rounded ([`crate::privacy::anonymize::anonymize_snapshot`]),
    /// numbers in the sections rounded, and the uptime rounded, under the process's
    /// [`crate::privacy::anonymize::global`] anonymizer.
    pub fn anonymized(&self) -> Report {
        let a = crate::privacy::anonymize::global();
        let mut out = self.clone();
        out.metrics = crate::privacy::anonymize::anonymize_snapshot(&self.metrics, &a);
        out.uptime_seconds = crate::privacy::anonymize::round_clock(self.uptime_seconds);
        for section in out.sections.values_mut() {
            crate::privacy::anonymize::round_json_numbers(section, &a);
        }
        out
    }

    /// The report as compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(unserializable)
    }

    /// The report as indented JSON, for people.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(unserializable)
    }
}

/// All fields are plain data with string map keys, so serialization cannot fail; should that
/// ever change, the report degrades to a JSON error object instead of panicking.
fn unserializable(error: serde_json::Error) -> String {
    serde_json::json!({ "error": format!("report could not be serialized: {error}") }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A product's configuration.
    #[derive(telemetry_macros::Telemetry)]
    #[telemetry(section = "configuration")]
    struct Configuration {
        shards: u32,
    }

    #[test]
    fn json_round_trip_with_sections() {
        let mut report = Report::new(Application::new("app", "1.0.0"), Snapshot::default());
        report.add_section(&Configuration { shards: 3 });
        let back: Report = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(back, report);
        assert_eq!(back.schema_version, REPORT_SCHEMA_VERSION);
        assert_eq!(back.instance_id, instance_id());
        assert!(
            report.timestamp.ends_with('Z') && report.timestamp.len() == 20,
            "{}",
            report.timestamp
        );
        let json: serde_json::Value = serde_json::from_str(&report.to_json_pretty()).unwrap();
        assert_eq!(json["sections"]["configuration"]["shards"], 3);
        assert_eq!(json["framework"]["name"], "telemetry-core");
    }

    #[test]
    fn application_text_fits_its_grammar_or_is_recorded_as_other() {
        for version in ["1.4.2-rc.1+build5", "v2", "23.10.0", "1.0.0-beta", "0.1"] {
            let ok = Application::new("my-server_2", version);
            assert_eq!((ok.name(), ok.version()), ("my-server_2", version));
        }
        for (name, version) in [
            ("alice@example.com", "1.0.0"),
            ("db01.corp.example.com", "1.0.0"),
            ("/home/alice", "1.0.0"),
            ("", "1.0.0"),
            ("app", "1.0 beta"),
            ("app", "jenkins/job"),
            ("app", "1.0.0+db01.corp.example.com"),
            ("app", "203.0.113.77"),
            ("app", "v1.corp.example"),
            ("app", "1.0.0-db01.corp.example.com"),
            ("app", "1..2"),
        ] {
            let json = serde_json::json!({ "name": name, "version": version });
            let read: Application = serde_json::from_value(json).unwrap();
            assert!(
                read.name == INVALID_APPLICATION_TEXT || read.version == INVALID_APPLICATION_TEXT,
                "deserialized: {name} {version}"
            );
            let app = Application::new(name, version);
            assert!(
                app.name == INVALID_APPLICATION_TEXT || app.version == INVALID_APPLICATION_TEXT,
                "{name} {version}"
            );
            assert!(Application::try_new(name, version).is_err());
        }
    }

    #[test]
    fn uptimes_are_rounded_down_to_the_hour_when_anonymized() {
        let mut report = Report::new(Application::new("app", "1.0.0"), Snapshot::default());
        report.uptime_seconds = 999_999;
        assert_eq!(report.anonymized().uptime_seconds, 997_200);
        report.uptime_seconds = 3_599;
        assert_eq!(report.anonymized().uptime_seconds, 0);
    }
}

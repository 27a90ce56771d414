//! A product's own payload: the report mapped to the body the product's collector expects
//! (EventStoreDB's message, Qdrant's `id`, Unleash's feature counts), through a
//! `#[derive(Telemetry)] #[telemetry(payload = "...")]` type, so every field still has a rule
//! the derive checked and the manifest lists.
//!
//! ```
//! use telemetry_core::payload::{InstanceId, OutgoingReport, TimeSpan, Version};
//! use telemetry_core::reporter::Reporter;
//! use telemetry_core::{Application, Telemetry};
//!
//! /// The message EventStoreDB's "Usage telemetry" page shows.
//! #[derive(Telemetry)]
//! #[telemetry(payload = "eventstoredb")]
//! struct Message {
//!     version: Version,
//!     /// Time since start-up, as .NET prints a TimeSpan.
//!     uptime: TimeSpan,
//!     #[telemetry(rename = "nodeId")]
//!     node_id: InstanceId,
//!     #[telemetry(rename = "clusterSize")]
//!     cluster_size: u32,
//! }
//!
//! let builder = Reporter::builder(Application::new("eventstoredb", "23.10.0"))
//!     .payload_shape(|report: &OutgoingReport| Message {
//!         version: report.version(),
//!         uptime: report.uptime().timespan(),
//!         node_id: report.instance_id(),
//!         cluster_size: 1,
//!     });
//! # drop(builder);
//! ```
//!
//! The shape receives the report exactly as it would leave (anonymized, without what consent
//! withholds) and returns the payload, which is anonymized again by its derived rules on the
//! way out: numbers rounded, names hashed, text only where a field vouches for it. The values
//! the envelope carries (ids, version, timestamp, uptime, sections, the event) come out of an
//! [`OutgoingReport`] as the types below, each emitted as the envelope would emit it.

use crate::engine::snapshot::Snapshot;
use crate::privacy::anonymize::{Anonymize, Anonymizer};
use crate::product::facts::SystemFacts;
use crate::product::report::Report;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;
use uuid::Uuid;

/// The report a payload is made from: the one that would leave the machine now (anonymized,
/// without what consent withholds). Only the reporter makes one, from a report it has just
/// made, so every value taken out of it was anonymized by this crate's rules; a [`Report`]
/// deserialized or edited by hand cannot become one.
#[derive(Clone, Debug)]
pub struct OutgoingReport {
    report: Report,
    facts: Option<SystemFacts>,
    usage: bool,
}

impl OutgoingReport {
    /// `report` as it leaves (the reporter's outgoing, already anonymized report); `usage`:
    /// whether consent lets usage statistics leave with it; `facts`: the reporter's system
    /// facts, if it collects them (kept only if `usage` holds).
    pub(crate) fn new(report: Report, facts: Option<SystemFacts>, usage: bool) -> Self {
        OutgoingReport {
            report,
            facts: facts.filter(|_| usage),
            usage,
        }
    }

    /// The system facts, when the reporter collects them
    /// ([`crate::product::reporter::ReporterBuilder::system_facts`]) and consent lets usage
    /// statistics leave: read them through their accessors into the payload's own fields
    /// (numbers there are rounded as usual).
    pub fn system_facts(&self) -> Option<&SystemFacts> {
        self.facts.as_ref()
    }

    /// Counter `name` summed by the values of its label `label` (FerretDB's failures by
    /// command), e.g. `{"find": 3, "insert": 1}`; series without that label are left out. The
    /// label values are those of the report, which come from declared label types or keyed
    /// hashes. Empty if there is no such counter.
    pub fn counts_by(&self, name: &str, label: &str) -> Counts {
        let mut counts = BTreeMap::new();
        if let Some(family) = self.report.metrics.counters.get(name) {
            for series in &family.series {
                if let Some(value) = series.labels.get(label) {
                    let total: &mut u64 = counts.entry(value.to_string()).or_default();
                    *total = total.saturating_add(series.value);
                }
            }
        }
        Counts(counts)
    }

    /// The whole report, to read its metrics and sections.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The metric values (rounded), e.g. `report.metrics().gauge("unleash.users")`.
    pub fn metrics(&self) -> &Snapshot {
        &self.report.metrics
    }

    /// Whether consent lets usage statistics leave with this report. When it does not, the
    /// report holds only its header, for the version check (Unleash's `SEND_TELEMETRY=false`),
    /// [`system_facts`](Self::system_facts) is `None`, and a payload should carry nothing the
    /// shape reads from the product's own state.
    pub fn carries_usage(&self) -> bool {
        self.usage
    }

    /// The per-process random id (Qdrant's `id`).
    pub fn instance_id(&self) -> InstanceId {
        InstanceId(self.report.instance_id)
    }

    /// The persisted installation id, when the reporter keeps one
    /// ([`crate::product::identity::Identity::Installation`]; FerretDB's installation UUID).
    pub fn installation_id(&self) -> Option<InstallationId> {
        self.report.installation_id.map(InstallationId)
    }

    /// The report's own id, which stays the same when a spooled report is sent again.
    pub fn report_id(&self) -> ReportId {
        ReportId(self.report.report_id)
    }

    /// The application's version.
    pub fn version(&self) -> Version {
        Version(self.report.application.version().to_owned())
    }

    /// When the report was made.
    pub fn timestamp(&self) -> Timestamp {
        Timestamp(self.report.timestamp.clone())
    }

    /// Time since start-up, rounded down to the hour as in the envelope.
    pub fn uptime(&self) -> Uptime {
        Uptime(self.report.uptime_seconds)
    }

    /// The section `name` as its derived type emitted it (`environment` for the system facts).
    pub fn section(&self, name: &str) -> Option<SectionData> {
        self.report.sections.get(name).cloned().map(SectionData)
    }

    /// The name of the event that made this report (Automatisch's events), if an event did.
    pub fn event_name(&self) -> Option<&str> {
        self.report.trigger.as_deref()?.strip_prefix("event:")
    }

    /// The data of the event that made this report, as its derived type emitted it.
    pub fn event(&self) -> Option<SectionData> {
        self.event_name()?;
        self.section(crate::product::report::EVENT_SECTION)
    }
}

/// Implements `Anonymize` (the value as the envelope emits it) and `Display`.
macro_rules! envelope_value {
    ($type:ident, $why:literal, |$value:ident| $emit:expr) => {
        impl Anonymize for $type {
            const SAFE_BECAUSE: &'static str = $why;
            fn anonymize(&self, _: &Anonymizer) -> Value {
                let $value = self;
                $emit
            }
        }
    };
}

/// The per-process random id ([`crate::instance_id`]), as a UUID string: a version 4 UUID
/// made at start-up and stored nowhere (Qdrant's `id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstanceId(Uuid);

/// The persisted installation id, as a UUID string: random, made once per installation
/// ([`crate::product::identity`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstallationId(Uuid);

/// A report's id, as a UUID string (time-ordered, version 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportId(Uuid);

envelope_value!(InstanceId, "built-in: a random id made at start-up", |id| {
    Value::from(id.0.to_string())
});
envelope_value!(
    InstallationId,
    "built-in: a random id made once per installation",
    |id| Value::from(id.0.to_string())
);
envelope_value!(ReportId, "built-in: a random id of one report", |id| {
    Value::from(id.0.to_string())
});

impl InstanceId {
    /// The UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl InstallationId {
    /// The UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl ReportId {
    /// The UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

/// The application's version text, which [`crate::Application`] checked against its grammar
/// (so it is never a host name or an address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version(String);

envelope_value!(
    Version,
    "built-in: the application's version, checked against the version grammar",
    |v| Value::from(v.0.clone())
);

impl Version {
    /// The text, e.g. `1.4.2`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// When the report was made, RFC 3339 in UTC with whole seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timestamp(String);

envelope_value!(
    Timestamp,
    "built-in: the time the report was made, whole seconds",
    |t| Value::from(t.0.clone())
);

/// Time since start-up in whole seconds, rounded down to the hour as the envelope's
/// `uptime_seconds` is, so that the timestamp minus the uptime cannot link the reports of
/// different starts. Emitted as the number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uptime(u64);

envelope_value!(
    Uptime,
    "built-in: time since start-up, rounded down to the hour",
    |u| Value::from(u.0)
);

impl Uptime {
    /// The seconds (a multiple of 3600).
    pub fn seconds(&self) -> u64 {
        self.0
    }

    /// The same time as a [`TimeSpan`] (EventStoreDB's `uptime`), still rounded down to the
    /// hour.
    pub fn timespan(&self) -> TimeSpan {
        TimeSpan {
            duration: Duration::from_secs(self.0),
            rounded: true,
        }
    }
}

/// A duration as .NET writes a `TimeSpan` in its constant ("c") format, `[d.]hh:mm:ss[.fffffff]`
/// (Microsoft's "Standard TimeSpan format strings"), as EventStoreDB's message carries its
/// `uptime` (`00:01:11.0115732`). A duration given with [`TimeSpan::new`] is rounded like any
/// `Duration` when emitted (nanoseconds to their significant digits); one from
/// [`Uptime::timespan`] is already rounded down to the hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeSpan {
    duration: Duration,
    rounded: bool,
}

impl TimeSpan {
    /// A time span of `duration`.
    pub fn new(duration: Duration) -> Self {
        TimeSpan {
            duration,
            rounded: false,
        }
    }
}

impl fmt::Display for TimeSpan {
    /// `[d.]hh:mm:ss[.fffffff]`: days only when there are any, the fraction (100 ns ticks)
    /// only when it is not zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.duration.as_secs();
        let ticks = self.duration.subsec_nanos() / 100;
        let (days, hours) = (seconds / 86_400, seconds / 3600 % 24);
        let (minutes, secs) = (seconds / 60 % 60, seconds % 60);
        if days > 0 {
            write!(f, "{days}.")?;
        }
        write!(f, "{hours:02}:{minutes:02}:{secs:02}")?;
        if ticks > 0 {
            write!(f, ".{ticks:07}")?;
        }
        Ok(())
    }
}

impl Anonymize for TimeSpan {
    const SAFE_BECAUSE: &'static str =
        "built-in: a duration rounded toward zero to its significant digits, as text";
    fn anonymize(&self, a: &Anonymizer) -> Value {
        let duration = if self.rounded {
            self.duration
        } else {
            let nanos = u64::try_from(self.duration.as_nanos()).unwrap_or(u64::MAX);
            Duration::from_nanos(a.round(nanos))
        };
        Value::from(
            TimeSpan {
                duration,
                rounded: true,
            }
            .to_string(),
        )
    }
}

/// Counts by a label's values ([`OutgoingReport::counts_by`]), emitted as a JSON object of
/// rounded counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts(BTreeMap<String, u64>);

impl Anonymize for Counts {
    const SAFE_BECAUSE: &'static str =
        "built-in: counts keyed by the values of a declared label, rounded";
    fn anonymize(&self, a: &Anonymizer) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(key, count)| (key.clone(), Value::from(a.round(*count))))
                .collect(),
        )
    }
}

impl Counts {
    /// The count of one label value, 0 if there is none.
    pub fn get(&self, value: &str) -> u64 {
        self.0.get(value).copied().unwrap_or(0)
    }

    /// The label values and their counts, in value order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Whether there is no count at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A section or an event as its derived type emitted it ([`OutgoingReport::section`],
/// [`OutgoingReport::event`]): already anonymized, emitted as it is.
#[derive(Clone, Debug, PartialEq)]
pub struct SectionData(Value);

envelope_value!(
    SectionData,
    "built-in: a section as its derived type emitted it",
    |s| s.0.clone()
);

impl SectionData {
    /// The emitted JSON.
    pub fn as_json(&self) -> &Value {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::anonymize::HashKey;

    #[test]
    fn time_spans_are_written_as_dotnet_writes_them() {
        let a = Anonymizer::new(HashKey::generate());
        let exact = |d: Duration| {
            TimeSpan {
                duration: d,
                rounded: true,
            }
            .to_string()
        };
        assert_eq!(
            exact(Duration::from_nanos(71_011_573_200)),
            "00:01:11.0115732"
        );
        assert_eq!(exact(Duration::from_secs(3600)), "01:00:00");
        assert_eq!(
            exact(Duration::from_secs(2 * 86_400 + 3 * 3600)),
            "2.03:00:00"
        );
        assert_eq!(exact(Duration::ZERO), "00:00:00");
        assert_eq!(
            Uptime(7200).timespan().anonymize(&a),
            Value::from("02:00:00")
        );
        // Given by hand: rounded like a Duration on the way out (six significant digits).
        let given = TimeSpan::new(Duration::from_nanos(71_011_573_200)).anonymize(&a);
        assert_eq!(given, Value::from("00:01:11.0115000"));
    }
}

//! The collected-data manifest: every metric and report field that can ever be emitted, made
//! from the code itself, so the disclosure page cannot drift from what is sent.
//!
//! Metrics come from the registry (which already lists every `#[count_usage]` and `#[timed]`
//! call site in the program, run or not, and every metric registered at run time so far).
//! Report sections come from every `#[derive(Telemetry)]` type, which the linker collects the
//! same way. [`Manifest::to_markdown`] renders a "What data is collected" page like the
//! public telemetry pages of Qdrant, FerretDB or Unleash; [`Manifest::version`] is a stable hash of what is collected, to re-ask consent
//! when it changes.

use crate::engine::metadata::{LabelDescriptor, MetricKind, Unit};
use crate::privacy::anonymize::DEFAULT_SIGNIFICANT_DIGITS;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt::Write;

pub use crate::privacy::section_schema::{FieldRule, FieldSchema, SECTIONS, SectionSchema};

/// The version of the report's JSON shape. It changes only when a field is removed or changes
/// meaning; new optional fields keep the version.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// One metric in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestMetric {
    /// The metric name.
    pub name: String,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// The unit of its values.
    pub unit: Unit,
    /// What it measures.
    pub description: String,
    /// Its labels and, for closed sets, their values.
    pub labels: Vec<LabelDescriptor>,
    /// The cap on series of a labeled metric.
    pub max_series: Option<usize>,
    /// What anonymization does to it.
    pub anonymization: String,
}

/// One field of a report section in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestField {
    /// The key in the report.
    pub name: String,
    /// The Rust type.
    pub type_name: String,
    /// What it holds.
    pub description: String,
    /// How it leaves the machine, in words.
    pub anonymization: String,
    /// Whether it is left out of every report.
    pub skipped: bool,
    /// The reason a hand-written `Anonymize` implementation gives for the field's type (types
    /// the derives and this crate implement are not listed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vouched: Option<String>,
    /// The reason given for a field whose name looks like personal data but is not
    /// (`#[telemetry(not_pii = "...")]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_pii: Option<String>,
}

/// One field every report carries, around the metrics and sections.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeField {
    /// The key in the report.
    pub name: String,
    /// What it holds and how it is made.
    pub description: String,
}

/// The fields every report carries ([`crate::Report`]), as the manifest lists them.
const ENVELOPE: &[(&str, &str)] = &[
    ("schema_version", "the version of the report format"),
    (
        "report_id",
        "a random, time-ordered id of the report (UUID v7), the same when a kept report is sent again, so the collector counts it once",
    ),
    ("framework", "this library's name and version"),
    (
        "application",
        "the product's name and version, fixed at compile time and checked against a grammar",
    ),
    (
        "instance_id",
        "a random id made at every start and never stored: reports of one run can be grouped, runs cannot be linked",
    ),
    (
        "installation_id",
        "a random id kept in the state directory, for products that send one: quote it to ask for deletion",
    ),
    (
        "trigger",
        "what made the report: `schedule`, `shutdown`, an extra schedule's name, or `event:{name}` for an event listed below",
    ),
    (
        "timestamp",
        "when the report was made, RFC 3339 UTC, whole seconds",
    ),
    (
        "uptime_seconds",
        "time since the process started, rounded down to the hour",
    ),
    (
        "sections",
        "the product's sections listed below; a report made by an event holds its fields in `event`",
    ),
    ("metrics", "the metrics listed below, rounded"),
];

/// One report section in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestSection {
    /// The section name.
    pub name: String,
    /// What it describes.
    pub description: String,
    /// Its fields.
    pub fields: Vec<ManifestField>,
}

/// Everything that can be emitted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// 16 hex digits of SHA-256 over the envelope, the metrics, the sections and the nested
    /// types (names, kinds, units, labels and their values, rules; not descriptions or source
    /// locations), so it changes exactly when what is collected changes. It is the same for
    /// every run and workload of one binary: everything it covers is declared in the code
    /// (call sites, label types, `#[derive(Telemetry)]` types), plus the metrics the program
    /// registers through the plain API.
    pub version: String,
    /// The fields every report carries.
    pub envelope: Vec<EnvelopeField>,
    /// Metrics, in name order.
    pub metrics: Vec<ManifestMetric>,
    /// Report sections (`#[telemetry(section = "...")]` types), in name order.
    pub sections: Vec<ManifestSection>,
    /// Events (`#[telemetry(event = "...")]` types), in name order: each report of one has
    /// the trigger `event:{name}` and its fields in the `event` section.
    #[serde(default)]
    pub events: Vec<ManifestSection>,
    /// Types nested in sections and events (other `#[derive(Telemetry)]` types), in name
    /// order.
    #[serde(default)]
    pub types: Vec<ManifestSection>,
    /// A product's own payloads (`#[telemetry(payload = "...")]` types), in name order: a
    /// reporter given one sends it, made from the report above, as its whole body instead of
    /// the envelope ([`crate::product::reporter::ReporterBuilder::payload_shape`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payloads: Vec<ManifestSection>,
}

fn metric_rule(kind: MetricKind) -> String {
    let digits = DEFAULT_SIGNIFICANT_DIGITS;
    match kind {
        MetricKind::Counter => format!("count rounded toward zero to {digits} significant digits"),
        MetricKind::Gauge => format!("value rounded toward zero to {digits} significant digits"),
        MetricKind::Histogram => format!(
            "count, sum, min, max and bucket counts rounded toward zero to {digits} significant digits"
        ),
    }
}

fn field_rule(field: &FieldSchema) -> String {
    match field.rule {
        FieldRule::Anonymized => format!(
            "by type: numbers rounded toward zero to {DEFAULT_SIGNIFICANT_DIGITS} significant \
             digits, enums as their variant name"
        ),
        FieldRule::Hashed => "keyed hash (HMAC-SHA-256, per-installation key)".to_owned(),
        FieldRule::HashedUrl => {
            "keyed hash of the whole URL; only a well-known scheme is kept".to_owned()
        }
        FieldRule::Verbatim(reason) => format!("as it is: {reason}"),
        FieldRule::Skipped => "never sent".to_owned(),
        FieldRule::Variant => "the variant's name".to_owned(),
    }
}

/// The manifest of this program: every registered metric (every macro call site, and what
/// was registered at run time so far) and every `#[derive(Telemetry)]` section.
///
/// The framework's own metrics (`telemetry.*`) appear only once they exist.
pub fn manifest() -> Manifest {
    let metrics: Vec<ManifestMetric> = crate::descriptors()
        .into_iter()
        .map(|d| ManifestMetric {
            anonymization: metric_rule(d.kind),
            name: d.name,
            kind: d.kind,
            unit: d.unit,
            description: d.description,
            labels: d.labels,
            max_series: d.max_series,
        })
        .collect();
    let describe = |s: &SectionSchema| ManifestSection {
        name: s.name.to_owned(),
        description: s.description.to_owned(),
        fields: s
            .fields
            .iter()
            .map(|f| ManifestField {
                name: f.name.to_owned(),
                type_name: f.type_name.to_owned(),
                description: f.description.to_owned(),
                anonymization: field_rule(f),
                skipped: f.rule == FieldRule::Skipped,
                vouched: crate::engine::metadata::hand_written((f.safe_because)()),
                not_pii: f.not_pii.map(str::to_owned),
            })
            .collect(),
    };
    let mut sections: Vec<ManifestSection> = SECTIONS
        .iter()
        .filter(|s| s.top_level)
        .map(describe)
        .collect();
    let mut events: Vec<ManifestSection> =
        SECTIONS.iter().filter(|s| s.event).map(describe).collect();
    let mut types: Vec<ManifestSection> = SECTIONS
        .iter()
        .filter(|s| !s.top_level && !s.event && !s.payload)
        .map(describe)
        .collect();
    let mut payloads: Vec<ManifestSection> = SECTIONS
        .iter()
        .filter(|s| s.payload)
        .map(describe)
        .collect();
    payloads.sort_by(|a, b| a.name.cmp(&b.name));
    payloads.dedup_by(|a, b| a.name == b.name);
    sections.sort_by(|a, b| a.name.cmp(&b.name));
    events.sort_by(|a, b| a.name.cmp(&b.name));
    types.sort_by(|a, b| a.name.cmp(&b.name));
    events.dedup_by(|a, b| a.name == b.name);
    // One entry per name: a type linked twice (two versions of a crate) is listed once.
    sections.dedup_by(|a, b| a.name == b.name);
    types.dedup_by(|a, b| a.name == b.name);
    let envelope: Vec<EnvelopeField> = ENVELOPE
        .iter()
        .map(|(name, description)| EnvelopeField {
            name: (*name).to_owned(),
            description: (*description).to_owned(),
        })
        .collect();
    let version = version_of(&envelope, &metrics, &sections, &events, &types, &payloads);
    Manifest {
        version,
        envelope,
        metrics,
        sections,
        events,
        types,
        payloads,
    }
}

fn version_of(
    envelope: &[EnvelopeField],
    metrics: &[ManifestMetric],
    sections: &[ManifestSection],
    events: &[ManifestSection],
    types: &[ManifestSection],
    payloads: &[ManifestSection],
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("v\0{}\0", REPORT_SCHEMA_VERSION));
    for e in envelope {
        hasher.update(format!("e\0{}\0", e.name));
    }
    for m in metrics {
        hasher.update(format!("m\0{}\0{}\0{}\0", m.name, m.kind, m.unit));
        for l in &m.labels {
            hasher.update(format!("l\0{}\0{:?}\0", l.name, l.values));
        }
    }
    for (kind, s) in sections
        .iter()
        .map(|s| ("s", s))
        .chain(events.iter().map(|e| ("e", e)))
        .chain(types.iter().map(|t| ("t", t)))
        .chain(payloads.iter().map(|p| ("p", p)))
    {
        hasher.update(format!("{kind}\0{}\0", s.name));
        for f in &s.fields {
            hasher.update(format!(
                "f\0{}\0{}\0{}\0",
                f.name, f.type_name, f.anonymization
            ));
        }
    }
    hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Manifest {
    /// The manifest as JSON, for a collector that validates reports against it.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A Markdown "What data is collected" page: the metrics with their labels and
    /// anonymization, then each report section with its fields, then what is never sent.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# What data is collected\n");
        let _ = writeln!(
            out,
            "Generated from the code (manifest version `{}`). Nothing else is collected.\n",
            self.version
        );
        let _ = writeln!(out, "## Every report\n");
        let _ = writeln!(out, "| field | what it holds |");
        let _ = writeln!(out, "|---|---|");
        for e in &self.envelope {
            let _ = writeln!(out, "| `{}` | {} |", e.name, cell(&e.description));
        }
        let _ = writeln!(out, "\n## Metrics\n");
        let _ = writeln!(
            out,
            "| name | kind | unit | labels | description | anonymization |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for m in &self.metrics {
            let labels = m
                .labels
                .iter()
                .map(|l| {
                    let vouched = l
                        .vouched
                        .as_ref()
                        .map(|reason| format!(" [vouched for by hand: {}]", cell(reason)))
                        .unwrap_or_default();
                    match &l.values {
                        Some(values) => format!("`{}` ({}){vouched}", l.name, values.join(", ")),
                        None => format!("`{}`{vouched}", l.name),
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {} |",
                m.name,
                m.kind,
                m.unit,
                if labels.is_empty() {
                    "-".to_owned()
                } else {
                    labels
                },
                cell(&m.description),
                m.anonymization
            );
        }
        let sections = self.sections.iter().map(|s| ("Section", s));
        let events = self.events.iter().map(|e| ("Event", e));
        let types = self.types.iter().map(|t| ("Type", t));
        let payloads = self.payloads.iter().map(|p| ("Payload", p));
        for (heading, s) in sections.chain(events).chain(types).chain(payloads) {
            let _ = writeln!(out, "\n## {heading} `{}`\n", s.name);
            if !s.description.is_empty() {
                let _ = writeln!(out, "{}\n", s.description);
            }
            let _ = writeln!(out, "| field | type | description | sent as |");
            let _ = writeln!(out, "|---|---|---|---|");
            for f in s.fields.iter().filter(|f| !f.skipped) {
                let mut vouched = f
                    .vouched
                    .as_ref()
                    .map(|reason| format!("; vouched for by hand: {}", cell(reason)))
                    .unwrap_or_default();
                if let Some(reason) = &f.not_pii {
                    vouched.push_str(&format!(
                        "; named like personal data, but not: {}",
                        cell(reason)
                    ));
                }
                let _ = writeln!(
                    out,
                    "| `{}` | `{}` | {} | {}{vouched} |",
                    f.name,
                    f.type_name,
                    cell(&f.description),
                    f.anonymization
                );
            }
        }
        let never: Vec<String> = self
            .sections
            .iter()
            .chain(&self.events)
            .chain(&self.types)
            .chain(&self.payloads)
            .flat_map(|s| {
                s.fields
                    .iter()
                    .filter(|f| f.skipped)
                    .map(move |f| format!("- `{}.{}`", s.name, f.name))
            })
            .collect();
        if !never.is_empty() {
            let _ = writeln!(out, "\n## Never sent\n\n{}", never.join("\n"));
        }
        out
    }
}

/// Text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.replace('|', "\\|")
    }
}

//! Validation of one report body against the manifest of the product version that sent it:
//! a closed world, where every key, metric, label name and label value must be declared, and
//! every value must have the shape the reporter gives it.

use crate::manifest_registry::{CompiledManifest, ManifestRegistry, MetricRule, ShapeRule};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use telemetry_core::{HistogramSnapshot, LabelValue, MetricKind};
use uuid::Uuid;

/// The report schema version this collector reads.
pub const SCHEMA_VERSION: u64 = 1;

/// The longest text accepted in a section value or an open label value, bytes.
pub const MAX_TEXT_LEN: usize = 128;

/// The most elements of an array in a section.
pub const MAX_ARRAY_LEN: usize = 1_024;

/// How deep sections may nest.
pub const MAX_DEPTH: usize = 8;

/// Why a report was refused. Each is counted in the collector's own metrics
/// (`collector.reports.rejected{reason}`) and named in the answer (`{"reason": "..."}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, LabelValue)]
pub enum Reason {
    /// The body is larger than the configured limit (413).
    #[label(rename = "too_large")]
    TooLarge,
    /// The content type is not `application/json` (415).
    #[label(rename = "content_type")]
    ContentType,
    /// The body is not JSON, or truncated, or not an object (400).
    #[label(rename = "malformed")]
    Malformed,
    /// A value has the wrong type or form: a string for a number, a bad UUID (422).
    #[label(rename = "wrong_type")]
    WrongType,
    /// The report schema version is not one this collector reads (422).
    #[label(rename = "unsupported_schema")]
    UnsupportedSchema,
    /// No manifest of this product is registered (422).
    #[label(rename = "unknown_product")]
    UnknownProduct,
    /// No manifest is registered for this product version, or the claimed manifest version is
    /// not the registered one (422).
    #[label(rename = "unknown_manifest_version")]
    UnknownManifestVersion,
    /// A metric the manifest does not declare, or declares with another kind or unit (422).
    #[label(rename = "undeclared_metric")]
    UndeclaredMetric,
    /// A key of the envelope, a section or an event that the manifest does not declare (422).
    #[label(rename = "undeclared_field")]
    UndeclaredField,
    /// A label name the metric does not declare (422).
    #[label(rename = "undeclared_label")]
    UndeclaredLabel,
    /// A label value outside the declared closed set, or not a plain word (422).
    #[label(rename = "undeclared_label_value")]
    UndeclaredLabelValue,
    /// More series of one metric than its cap (422).
    #[label(rename = "too_many_series")]
    TooManySeries,
    /// A report id received before with another body (409).
    #[label(rename = "replayed_id")]
    ReplayedId,
    /// The collector's queue is full: try again later (503, `Retry-After`).
    #[label(rename = "overloaded")]
    Overloaded,
}

impl Reason {
    /// The reason as the answer spells it, in snake case.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::TooLarge => "too_large",
            Reason::ContentType => "content_type",
            Reason::Malformed => "malformed",
            Reason::WrongType => "wrong_type",
            Reason::UnsupportedSchema => "unsupported_schema",
            Reason::UnknownProduct => "unknown_product",
            Reason::UnknownManifestVersion => "unknown_manifest_version",
            Reason::UndeclaredMetric => "undeclared_metric",
            Reason::UndeclaredField => "undeclared_field",
            Reason::UndeclaredLabel => "undeclared_label",
            Reason::UndeclaredLabelValue => "undeclared_label_value",
            Reason::TooManySeries => "too_many_series",
            Reason::ReplayedId => "replayed_id",
            Reason::Overloaded => "overloaded",
        }
    }

    /// The HTTP status of the answer.
    pub fn status(self) -> u16 {
        match self {
            Reason::TooLarge => 413,
            Reason::ContentType => 415,
            Reason::Malformed => 400,
            Reason::ReplayedId => 409,
            Reason::Overloaded => 503,
            _ => 422,
        }
    }
}

/// A refused report: the reason and a sentence saying where (a name from the report is
/// quoted at most 64 characters long; no value of the client's connection is ever included).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", reason.as_str())]
pub struct Rejection {
    /// Why.
    pub reason: Reason,
    /// Where, in words.
    pub detail: String,
}

fn reject(reason: Reason, detail: impl Into<String>) -> Rejection {
    Rejection {
        reason,
        detail: detail.into(),
    }
}

/// A name from a report, cut for an answer.
fn quoted(name: &str) -> String {
    let cut: String = name.chars().take(64).collect();
    format!("`{}`", cut.escape_debug())
}

/// A report that passed validation, with what storage and the rollups need taken out of it.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidReport {
    /// The report id (UUID).
    pub report_id: Uuid,
    /// `application.name`.
    pub product: String,
    /// `application.version`.
    pub product_version: String,
    /// The version of the manifest it was validated against.
    pub manifest_version: String,
    /// Whom it counts for in the rollups: the installation id if the report has one, else its
    /// instance id (one run).
    pub installation: Uuid,
    /// Whether the report carried an installation id (else `installation` is an instance id).
    pub has_installation_id: bool,
    /// `environment.os`, or `unknown`.
    pub os: String,
    /// `environment.architecture`, or `unknown`.
    pub arch: String,
    /// The report's own `timestamp` (RFC 3339, UTC, whole seconds).
    pub timestamp: String,
    /// Every counter whose total over its series is above zero, with that total.
    pub features: Vec<(String, u64)>,
    /// Every histogram with at least one value, its series merged.
    pub histograms: Vec<(String, HistogramSnapshot)>,
    /// The body as received. A copy resent under the same id with other spacing or key
    /// order is the same report ([`crate::storage::Inserted::Duplicate`]).
    pub body: String,
}

/// Validates `body`, claimed (when `claimed_manifest` is given, from the
/// `telemetry-manifest-version` header) to follow that manifest version.
///
/// # Errors
/// [`Rejection`] with the first problem found.
pub fn validate(
    registry: &ManifestRegistry,
    body: &[u8],
    claimed_manifest: Option<&str>,
) -> Result<ValidReport, Rejection> {
    let text = std::str::from_utf8(body).map_err(|_| reject(Reason::Malformed, "not UTF-8"))?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        reject(
            Reason::Malformed,
            format!(
                "not JSON ({} at line {} column {})",
                category(&e),
                e.line(),
                e.column()
            ),
        )
    })?;
    let Value::Object(report) = value else {
        return Err(reject(Reason::Malformed, "not a JSON object"));
    };
    match report.get("schema_version") {
        Some(Value::Number(n)) if n.as_u64() == Some(SCHEMA_VERSION) => {}
        Some(Value::Number(_)) => {
            return Err(reject(Reason::UnsupportedSchema, "schema_version is not 1"));
        }
        _ => return Err(reject(Reason::WrongType, "schema_version is not a number")),
    }
    let (product, product_version) = application(&report, "application")?;
    application(&report, "framework")?;
    let Some(manifest) = registry.get(&product, &product_version) else {
        return Err(if registry.knows_product(&product) {
            reject(
                Reason::UnknownManifestVersion,
                format!(
                    "no manifest is registered for {} version {}",
                    quoted(&product),
                    quoted(&product_version)
                ),
            )
        } else {
            reject(
                Reason::UnknownProduct,
                format!("no manifest is registered for {}", quoted(&product)),
            )
        });
    };
    if let Some(claimed) = claimed_manifest
        && claimed != manifest.version
    {
        return Err(reject(
            Reason::UnknownManifestVersion,
            format!(
                "the report claims manifest {}, but {} {} is registered with manifest {}",
                quoted(claimed),
                quoted(&product),
                quoted(&product_version),
                manifest.version
            ),
        ));
    }
    Validator {
        manifest: &manifest,
    }
    .report(&report, text.to_owned(), product, product_version)
}

fn category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "truncated",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "data error",
        serde_json::error::Category::Io => "read error",
    }
}

fn application(report: &Map<String, Value>, key: &str) -> Result<(String, String), Rejection> {
    let Some(Value::Object(app)) = report.get(key) else {
        return Err(reject(Reason::WrongType, format!("{key} is not an object")));
    };
    if let Some(extra) = app.keys().find(|k| *k != "name" && *k != "version") {
        return Err(reject(
            Reason::UndeclaredField,
            format!("{key}.{}", quoted(extra)),
        ));
    }
    let (Some(Value::String(name)), Some(Value::String(version))) =
        (app.get("name"), app.get("version"))
    else {
        return Err(reject(
            Reason::WrongType,
            format!("{key} needs a name and a version, both strings"),
        ));
    };
    if !crate::manifest_registry::is_product_name(name)
        || !crate::manifest_registry::is_product_version(version)
    {
        return Err(reject(
            Reason::WrongType,
            format!("{key} has a name or version off its grammar"),
        ));
    }
    Ok((name.clone(), version.clone()))
}

fn uuid(value: Option<&Value>, what: &str) -> Result<Uuid, Rejection> {
    let Some(Value::String(text)) = value else {
        return Err(reject(Reason::WrongType, format!("{what} is not a string")));
    };
    match Uuid::try_parse(text) {
        Ok(id) if !id.is_nil() && text.len() == 36 => Ok(id),
        _ => Err(reject(Reason::WrongType, format!("{what} is not a UUID"))),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, as the reporter writes it.
fn is_timestamp(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
        && crate::dates::parse_day(&text[..10]).is_some()
}

/// A plain word: what an open label value may be (an integer, a name in the code).
fn is_plain_word(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_TEXT_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

struct Validator<'m> {
    manifest: &'m Arc<CompiledManifest>,
}

impl Validator<'_> {
    fn report(
        &self,
        report: &Map<String, Value>,
        body: String,
        product: String,
        product_version: String,
    ) -> Result<ValidReport, Rejection> {
        if let Some(extra) = report.keys().find(|k| !self.manifest.envelope.contains(*k)) {
            return Err(reject(
                Reason::UndeclaredField,
                format!("the envelope has no field {}", quoted(extra)),
            ));
        }
        let report_id = uuid(report.get("report_id"), "report_id")?;
        let instance_id = uuid(report.get("instance_id"), "instance_id")?;
        let installation_id = match report.get("installation_id") {
            None | Some(Value::Null) => None,
            value => Some(uuid(value, "installation_id")?),
        };
        let trigger = match report.get("trigger") {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) => Some(t.as_str()),
            Some(_) => return Err(reject(Reason::WrongType, "trigger is not a string")),
        };
        let event = match trigger {
            None => None,
            Some(t) => match t.strip_prefix("event:") {
                Some(name) => {
                    if !self.manifest.events.contains_key(name) {
                        return Err(reject(
                            Reason::UndeclaredField,
                            format!("the manifest declares no event {}", quoted(name)),
                        ));
                    }
                    Some(name)
                }
                None if telemetry_rules::trigger_name(t) => None,
                None => {
                    return Err(reject(
                        Reason::WrongType,
                        "trigger is not a schedule or event name",
                    ));
                }
            },
        };
        let timestamp = match report.get("timestamp") {
            Some(Value::String(t)) if is_timestamp(t) => t.clone(),
            _ => {
                return Err(reject(
                    Reason::WrongType,
                    "timestamp is not RFC 3339 UTC with whole seconds",
                ));
            }
        };
        if !report.get("uptime_seconds").is_some_and(Value::is_u64) {
            return Err(reject(
                Reason::WrongType,
                "uptime_seconds is not a whole number",
            ));
        }
        let (os, arch) = self.sections(report.get("sections"), event)?;
        let (features, histograms) = self.metrics(report.get("metrics"))?;
        Ok(ValidReport {
            report_id,
            product,
            product_version,
            manifest_version: self.manifest.version.clone(),
            installation: installation_id.unwrap_or(instance_id),
            has_installation_id: installation_id.is_some(),
            os,
            arch,
            timestamp,
            features,
            histograms,
            body,
        })
    }

    /// Checks the sections; returns the OS and architecture of the `environment` section.
    fn sections(
        &self,
        sections: Option<&Value>,
        event: Option<&str>,
    ) -> Result<(String, String), Rejection> {
        let mut os = "unknown".to_owned();
        let mut arch = "unknown".to_owned();
        let sections = match sections {
            None => return Ok((os, arch)),
            Some(Value::Object(s)) => s,
            Some(_) => return Err(reject(Reason::WrongType, "sections is not an object")),
        };
        for (name, value) in sections {
            let rule = match (name.as_str(), event) {
                (telemetry_core::reporter::EVENT_SECTION, Some(event)) => {
                    &self.manifest.events[event]
                }
                _ => self.manifest.sections.get(name).ok_or_else(|| {
                    reject(
                        Reason::UndeclaredField,
                        format!("the manifest declares no section {}", quoted(name)),
                    )
                })?,
            };
            self.shape(value, rule, name, 0)?;
            if name == "environment" {
                let word = |key: &str| {
                    value
                        .get(key)
                        .and_then(Value::as_str)
                        .filter(|s| is_plain_word(s))
                        .map(str::to_owned)
                };
                os = word("os").unwrap_or(os);
                arch = word("architecture").unwrap_or(arch);
            }
        }
        Ok((os, arch))
    }

    fn shape(
        &self,
        value: &Value,
        rule: &ShapeRule,
        path: &str,
        depth: usize,
    ) -> Result<(), Rejection> {
        let Value::Object(fields) = value else {
            return Err(reject(
                Reason::WrongType,
                format!("{} is not an object", quoted(path)),
            ));
        };
        for (key, value) in fields {
            let Some(type_name) = rule.fields.get(key) else {
                return Err(reject(
                    Reason::UndeclaredField,
                    format!("{} has no field {}", quoted(path), quoted(key)),
                ));
            };
            self.typed(value, type_name, &format!("{path}.{key}"), depth + 1)?;
        }
        Ok(())
    }

    /// Checks `value` against the Rust type `type_name` the manifest gives its field.
    fn typed(
        &self,
        value: &Value,
        type_name: &str,
        path: &str,
        depth: usize,
    ) -> Result<(), Rejection> {
        if depth > MAX_DEPTH {
            return Err(reject(
                Reason::WrongType,
                format!("{} nests too deep", quoted(path)),
            ));
        }
        let wrong = || {
            reject(
                Reason::WrongType,
                format!("{} is not a {}", quoted(path), type_name.escape_debug()),
            )
        };
        let ty = type_name.trim();
        if let Some(inner) = generic(ty, "Option") {
            return match value {
                Value::Null => Ok(()),
                v => self.typed(v, inner, path, depth),
            };
        }
        if let Some(inner) =
            generic(ty, "Vec").or_else(|| ty.strip_prefix('[').and_then(|t| t.strip_suffix(']')))
        {
            let Value::Array(items) = value else {
                return Err(wrong());
            };
            if items.len() > MAX_ARRAY_LEN {
                return Err(reject(
                    Reason::WrongType,
                    format!("{} has too many elements", quoted(path)),
                ));
            }
            return items
                .iter()
                .try_for_each(|item| self.typed(item, inner, path, depth + 1));
        }
        let base = ty
            .trim_start_matches('&')
            .trim_start_matches("'static")
            .trim();
        match base {
            "u8" | "u16" | "u32" | "u64" | "usize" => {
                value.is_u64().then_some(()).ok_or_else(wrong)
            }
            "i8" | "i16" | "i32" | "i64" | "isize" => {
                value.is_i64().then_some(()).ok_or_else(wrong)
            }
            "f32" | "f64" => value.is_number().then_some(()).ok_or_else(wrong),
            "bool" => value.is_boolean().then_some(()).ok_or_else(wrong),
            "str" | "String" | "Cow<'static, str>" => self.text(value, path),
            _ => {
                let last = base.rsplit("::").next().unwrap_or(base);
                match self
                    .manifest
                    .types
                    .get(last)
                    .or_else(|| self.manifest.sections.get(last))
                {
                    Some(rule) => self.shape(value, rule, path, depth),
                    // A type the manifest does not describe (an enum sent as its variant's
                    // name, a hashed name): a scalar, never an object or a list.
                    None => match value {
                        Value::String(_) => self.text(value, path),
                        Value::Number(_) | Value::Bool(_) | Value::Null => Ok(()),
                        _ => Err(wrong()),
                    },
                }
            }
        }
    }

    fn text(&self, value: &Value, path: &str) -> Result<(), Rejection> {
        match value {
            Value::String(s) if s.len() <= MAX_TEXT_LEN => Ok(()),
            Value::String(_) => Err(reject(
                Reason::WrongType,
                format!("{} is longer than {MAX_TEXT_LEN} bytes", quoted(path)),
            )),
            _ => Err(reject(
                Reason::WrongType,
                format!("{} is not a string", quoted(path)),
            )),
        }
    }

    #[allow(clippy::type_complexity)]
    fn metrics(
        &self,
        metrics: Option<&Value>,
    ) -> Result<(Vec<(String, u64)>, Vec<(String, HistogramSnapshot)>), Rejection> {
        let Some(Value::Object(metrics)) = metrics else {
            return Err(reject(Reason::WrongType, "metrics is not an object"));
        };
        let mut features = Vec::new();
        let mut histograms = Vec::new();
        for (kind_key, families) in metrics {
            let kind = match kind_key.as_str() {
                "counters" => MetricKind::Counter,
                "gauges" => MetricKind::Gauge,
                "histograms" => MetricKind::Histogram,
                other => {
                    return Err(reject(
                        Reason::UndeclaredField,
                        format!("metrics has no field {}", quoted(other)),
                    ));
                }
            };
            let Value::Object(families) = families else {
                return Err(reject(
                    Reason::WrongType,
                    format!("metrics.{kind_key} is not an object"),
                ));
            };
            for (name, family) in families {
                let rule = self
                    .manifest
                    .metrics
                    .get(name)
                    .filter(|r| r.kind == kind)
                    .ok_or_else(|| {
                        reject(
                            Reason::UndeclaredMetric,
                            format!("the manifest declares no {kind} {}", quoted(name)),
                        )
                    })?;
                let series = family_series(family, name, rule)?;
                let mut total = 0u64;
                let mut merged = HistogramSnapshot::default();
                let mut label_sets = BTreeSet::new();
                for s in series {
                    let labels = series_labels(s, name, rule)?;
                    if !label_sets.insert(labels) {
                        return Err(reject(
                            Reason::WrongType,
                            format!("{} has one label set twice", quoted(name)),
                        ));
                    }
                    let value = s.get("value");
                    match kind {
                        MetricKind::Counter => {
                            let n = value.and_then(Value::as_u64).ok_or_else(|| {
                                reject(
                                    Reason::WrongType,
                                    format!(
                                        "a value of counter {} is not a whole number",
                                        quoted(name)
                                    ),
                                )
                            })?;
                            total = total.saturating_add(n);
                        }
                        MetricKind::Gauge => {
                            value.and_then(Value::as_i64).ok_or_else(|| {
                                reject(
                                    Reason::WrongType,
                                    format!("a value of gauge {} is not an integer", quoted(name)),
                                )
                            })?;
                        }
                        MetricKind::Histogram => merged.add(&histogram(value, name)?),
                    }
                }
                match kind {
                    MetricKind::Counter if total > 0 => features.push((name.clone(), total)),
                    MetricKind::Histogram if merged.count() > 0 => {
                        histograms.push((name.clone(), merged))
                    }
                    _ => {}
                }
            }
        }
        Ok((features, histograms))
    }
}

/// `T` of `Name<T>`.
fn generic<'a>(ty: &'a str, name: &str) -> Option<&'a str> {
    ty.strip_prefix(name)?
        .trim_start()
        .strip_prefix('<')?
        .strip_suffix('>')
}

fn family_series<'v>(
    family: &'v Value,
    name: &str,
    rule: &MetricRule,
) -> Result<&'v Vec<Value>, Rejection> {
    let Value::Object(family) = family else {
        return Err(reject(
            Reason::WrongType,
            format!("{} is not an object", quoted(name)),
        ));
    };
    for (key, value) in family {
        match key.as_str() {
            "unit" => {
                if value.as_str() != Some(rule.unit.as_str()) {
                    return Err(reject(
                        Reason::UndeclaredMetric,
                        format!("{} is declared in {}", quoted(name), rule.unit),
                    ));
                }
            }
            "description" => {
                if value.as_str() != Some(rule.description.as_str()) {
                    return Err(reject(
                        Reason::UndeclaredField,
                        format!(
                            "the description of {} is not the declared one",
                            quoted(name)
                        ),
                    ));
                }
            }
            "series" => {}
            other => {
                return Err(reject(
                    Reason::UndeclaredField,
                    format!("{} has no field {}", quoted(name), quoted(other)),
                ));
            }
        }
    }
    let Some(Value::Array(series)) = family.get("series") else {
        return Err(reject(
            Reason::WrongType,
            format!("{} has no list of series", quoted(name)),
        ));
    };
    if series.len() > rule.max_series {
        return Err(reject(
            Reason::TooManySeries,
            format!(
                "{} has {} series, more than its cap of {}",
                quoted(name),
                series.len(),
                rule.max_series
            ),
        ));
    }
    Ok(series)
}

/// The labels of one series, checked; as a sorted list for the duplicate check.
fn series_labels(
    series: &Value,
    name: &str,
    rule: &MetricRule,
) -> Result<Vec<(String, String)>, Rejection> {
    let Value::Object(series) = series else {
        return Err(reject(
            Reason::WrongType,
            format!("a series of {} is not an object", quoted(name)),
        ));
    };
    if let Some(extra) = series.keys().find(|k| *k != "labels" && *k != "value") {
        return Err(reject(
            Reason::UndeclaredField,
            format!("a series of {} has a field {}", quoted(name), quoted(extra)),
        ));
    }
    let labels = match series.get("labels") {
        None => return Ok(Vec::new()),
        Some(Value::Object(labels)) => labels,
        Some(_) => {
            return Err(reject(
                Reason::WrongType,
                format!("the labels of {} are not an object", quoted(name)),
            ));
        }
    };
    let mut out = Vec::with_capacity(labels.len());
    for (label, value) in labels {
        let Some(label_rule) = rule.labels.get(label) else {
            return Err(reject(
                Reason::UndeclaredLabel,
                format!("{} has no label {}", quoted(name), quoted(label)),
            ));
        };
        let Value::String(value) = value else {
            return Err(reject(
                Reason::WrongType,
                format!(
                    "label {} of {} is not a string",
                    quoted(label),
                    quoted(name)
                ),
            ));
        };
        let declared = match &label_rule.values {
            Some(values) => values.contains(value),
            None => is_plain_word(value),
        };
        if !declared {
            return Err(reject(
                Reason::UndeclaredLabelValue,
                format!(
                    "label {} of {} has an undeclared value {}",
                    quoted(label),
                    quoted(name),
                    quoted(value)
                ),
            ));
        }
        out.push((label.clone(), value.clone()));
    }
    Ok(out)
}

fn histogram(value: Option<&Value>, name: &str) -> Result<HistogramSnapshot, Rejection> {
    let wrong = |why: &str| {
        reject(
            Reason::WrongType,
            format!("a value of histogram {} {why}", quoted(name)),
        )
    };
    let Some(whole @ Value::Object(h)) = value else {
        return Err(wrong("is not an object"));
    };
    if let Some(extra) = h
        .keys()
        .find(|k| !matches!(k.as_str(), "count" | "sum" | "min" | "max" | "buckets"))
    {
        return Err(reject(
            Reason::UndeclaredField,
            format!(
                "a value of histogram {} has a field {}",
                quoted(name),
                quoted(extra)
            ),
        ));
    }
    if !["count", "sum", "min", "max"]
        .iter()
        .all(|k| h.get(*k).is_some_and(Value::is_u64))
    {
        return Err(wrong("needs whole numbers count, sum, min and max"));
    }
    let Some(Value::Array(buckets)) = h.get("buckets") else {
        return Err(wrong("has no list of buckets"));
    };
    let mut last = None;
    for bucket in buckets {
        let pair = bucket.as_array().filter(|p| p.len() == 2);
        let (Some(index), Some(_)) = (
            pair.and_then(|p| p[0].as_u64())
                .filter(|i| *i < crate::rollup::BUCKET_COUNT),
            pair.and_then(|p| p[1].as_u64()),
        ) else {
            return Err(wrong("has a bucket that is not [index, count]"));
        };
        if last.is_some_and(|l| l >= index) {
            return Err(wrong("has buckets out of order"));
        }
        last = Some(index);
    }
    <HistogramSnapshot as serde::Deserialize>::deserialize(whole)
        .map_err(|_| wrong("is not a histogram"))
}

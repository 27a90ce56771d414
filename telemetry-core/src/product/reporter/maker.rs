//! Building reports: the local view, and the one function that makes what leaves.

use crate::engine::snapshot::Snapshot;
use crate::product::consent::{Category, Consent, ConsentDecision};
use crate::product::facts::{BuildFacts, SystemFacts};
use crate::product::payload::OutgoingReport;
use crate::product::report::{Application, Report};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

/// Metric names in the error-reports category ([`Category::ErrorReports`]): left out of the
/// report when that category is disabled.
pub const ERROR_METRIC_PREFIXES: &[&str] = &["telemetry.panics", "telemetry.errors"];

/// What `now` recorded after `baseline`: counters and histograms as differences, without the
/// series that recorded nothing since (a label set seen only before an opt-in is data from
/// before it). Gauges are the current state, kept as they are.
fn since(now: &Snapshot, baseline: &Snapshot) -> Snapshot {
    let mut out = now.delta(baseline);
    for (name, family) in &mut out.counters {
        let before = baseline.counters.get(name);
        family.series.retain(|s| {
            s.value > 0 || !before.is_some_and(|b| b.series.iter().any(|o| o.labels == s.labels))
        });
    }
    for (name, family) in &mut out.histograms {
        let before = baseline.histograms.get(name);
        family.series.retain(|s| {
            s.value.count() > 0
                || !before.is_some_and(|b| b.series.iter().any(|o| o.labels == s.labels))
        });
    }
    out
}

/// Why a report made with a product's payload shape is not sent.
pub(crate) const SHAPE_FAILED: &str =
    "the product's telemetry payload shape panicked; the report is not sent";

pub use crate::product::report::EVENT_SECTION;

pub(crate) type SectionProvider = Arc<dyn Fn(&mut Report) + Send + Sync>;

/// A product's payload shape ([`super::ReporterBuilder::payload_shape`]): the outgoing report
/// to the product's payload, anonymized; `None` if the payload type was not derived.
pub(crate) type Shape = Arc<dyn Fn(&OutgoingReport) -> Option<serde_json::Value> + Send + Sync>;

/// Builds reports: the same for the reporter's thread, [`super::Reporter::payload`] and the
/// end-user `show` command.
pub(crate) struct ReportMaker {
    pub(crate) application: Application,
    pub(crate) installation_id: Option<uuid::Uuid>,
    pub(crate) sections: Vec<SectionProvider>,
    pub(crate) system_facts: Option<BuildFacts>,
    /// The product's own payload, if it gave one: the body sent instead of the report's JSON.
    shape: Option<Shape>,
    /// The metric values at the moment sending last became allowed in this process (an opt-in
    /// after an opt-out or during the undecided delay): what leaves is counted from there, so
    /// nothing recorded before an opt-in is sent.
    baseline: Mutex<Option<Snapshot>>,
    /// The id of the next report: every view of "the next report" (the preview, `show`,
    /// `/telemetry`) carries it, and the reporter's thread moves on to a new one when it makes
    /// a report ([`Self::next_report`]).
    next_id: Mutex<uuid::Uuid>,
    /// The system facts, gathered on the reporter's thread ([`Self::refresh_facts`]), so a
    /// view of the report made elsewhere (an async `/telemetry` handler) never scans disks.
    facts: Mutex<Option<SystemFacts>>,
}

impl ReportMaker {
    pub(crate) fn new(
        application: Application,
        installation_id: Option<uuid::Uuid>,
        sections: Vec<SectionProvider>,
        system_facts: Option<BuildFacts>,
        shape: Option<Shape>,
    ) -> Self {
        ReportMaker {
            application,
            installation_id,
            sections,
            system_facts,
            shape,
            baseline: Mutex::new(None),
            next_id: Mutex::new(uuid::Uuid::now_v7()),
            facts: Mutex::new(None),
        }
    }

    /// The local (not rounded) report, tagged with its trigger: cumulative values since the
    /// process started.
    pub(crate) fn build(&self, trigger: Option<&str>) -> Report {
        let mut report = Report::collect(self.application.clone());
        report.report_id = *self.next_id.lock().unwrap_or_else(|e| e.into_inner());
        report.installation_id = self.installation_id;
        report.trigger = trigger.map(str::to_owned);
        for provider in &self.sections {
            if catch_unwind(AssertUnwindSafe(|| provider(&mut report))).is_err() {
                crate::diagnostics::diag!(
                    error,
                    "a telemetry section provider panicked; its section is left out"
                );
            }
        }
        if let Some(facts) = self.facts() {
            report.add_section(&facts);
        }
        report
    }

    /// Gathers the system facts again (a few milliseconds: sysinfo reads `/proc` and the
    /// mount table). Called on the reporter's thread, before each report it makes.
    pub(crate) fn refresh_facts(&self) {
        if let Some(build) = &self.system_facts {
            let facts = SystemFacts::collect(build.clone());
            *self.facts.lock().unwrap_or_else(|e| e.into_inner()) = Some(facts);
        }
    }

    /// The latest system facts; gathered here only if the reporter's thread has not yet.
    fn facts(&self) -> Option<SystemFacts> {
        let build = self.system_facts.as_ref()?;
        let mut facts = self.facts.lock().unwrap_or_else(|e| e.into_inner());
        Some(
            facts
                .get_or_insert_with(|| SystemFacts::collect(build.clone()))
                .clone(),
        )
    }

    /// The report made now for the reporter's thread ([`Self::outgoing`]); the next one gets a
    /// new id.
    pub(crate) fn next_report(
        &self,
        trigger: Option<&str>,
        event: Option<&serde_json::Value>,
        decision: &ConsentDecision,
    ) -> Report {
        self.refresh_facts();
        let report = self.outgoing(trigger, event, decision);
        *self.next_id.lock().unwrap_or_else(|e| e.into_inner()) = uuid::Uuid::now_v7();
        report
    }

    /// Whether the product gave a payload shape.
    pub(crate) fn has_shape(&self) -> bool {
        self.shape.is_some()
    }

    /// Whether `body`, read back from the spool, is something this maker made: a report's
    /// JSON, or, with a payload shape, a JSON object.
    pub(crate) fn is_body(&self, body: &[u8]) -> bool {
        if self.shape.is_some() {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body).is_ok()
        } else {
            serde_json::from_slice::<Report>(body).is_ok()
        }
    }

    /// Counts from `baseline` on: reports leave with what was recorded after it.
    pub(crate) fn set_baseline(&self, baseline: Snapshot) {
        *self.baseline.lock().unwrap_or_else(|e| e.into_inner()) = Some(baseline);
    }

    /// The HTTP body for a report made now under `decision`: [`Self::body`] of
    /// [`Self::outgoing`]. The reporter's body, its debug print,
    /// [`super::Reporter::payload_json`], the `show` command and `/telemetry?anonymize=true` at
    /// the highest details level all come from here. If the product's payload shape fails,
    /// a JSON object saying so (nothing would be sent).
    pub(crate) fn payload(&self, trigger: Option<&str>, decision: &ConsentDecision) -> String {
        self.body(&self.outgoing(trigger, None, decision), decision)
            .unwrap_or_else(|| serde_json::json!({ "error": SHAPE_FAILED }).to_string())
    }

    /// The HTTP body of `report`, an outgoing report made under `decision`: the product's
    /// payload made from it if the product gave a shape, else the report as compact JSON.
    /// `None` if the shape panicked or its type was not derived (logged): such a report is not
    /// sent. The shape sees the system facts only if usage statistics may leave.
    pub(crate) fn body(&self, report: &Report, decision: &ConsentDecision) -> Option<String> {
        let Some(shape) = &self.shape else {
            return Some(report.to_json());
        };
        let usage = decision.category(Category::UsageStatistics) != Consent::Disabled;
        let outgoing = OutgoingReport::new(report.clone(), self.facts(), usage);
        match catch_unwind(AssertUnwindSafe(|| shape(&outgoing))) {
            Ok(Some(payload)) => Some(payload.to_string()),
            Ok(None) => None,
            Err(_) => {
                crate::diagnostics::diag!(error, "{SHAPE_FAILED}");
                None
            }
        }
    }

    /// Exactly what leaves the machine for a report made now under `decision`: the values
    /// recorded since the last opt-in, anonymized, without what consent withholds (with usage
    /// statistics disabled only the header is left, for the version check; with error reports
    /// disabled the error and panic counters are removed). The HTTP body, the debug print,
    /// [`super::Reporter::payload`] and the `show` command all come from here.
    /// `event`: the anonymized value of the event that made the report, kept in the `event`
    /// section.
    pub(crate) fn outgoing(
        &self,
        trigger: Option<&str>,
        event: Option<&serde_json::Value>,
        decision: &ConsentDecision,
    ) -> Report {
        let mut local = self.build(trigger);
        if let Some(event) = event {
            local
                .sections
                .insert(EVENT_SECTION.to_owned(), event.clone());
        }
        if let Some(baseline) = &*self.baseline.lock().unwrap_or_else(|e| e.into_inner()) {
            local.metrics = since(&local.metrics, baseline);
        }
        let mut report = local.anonymized();
        if decision.category(Category::UsageStatistics) == Consent::Disabled {
            report.metrics = Snapshot::default();
            report.sections.clear();
        }
        if decision.category(Category::ErrorReports) == Consent::Disabled {
            let is_error = |name: &str| ERROR_METRIC_PREFIXES.iter().any(|p| name.starts_with(p));
            report.metrics.counters.retain(|name, _| !is_error(name));
            report.metrics.histograms.retain(|name, _| !is_error(name));
        }
        report
    }
}

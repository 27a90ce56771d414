//! The collector's upload configuration ([`super::ReporterBuilder::upload_config`]): which
//! metrics may be sent and the sampling rate of each, fetched from a stable URL (as Go's
//! telemetry fetches its upload config) and applied to every report before it is sent.
//!
//! The JSON read is `{"metrics": [{"name": "...", "rate": 0.5}, ...]}` (other keys are
//! ignored). A metric not listed is left out; a listed one is kept in a report with
//! probability `rate`, decided from the report id and the metric's name, so a report sent
//! again (from the spool) carries the same metrics. Until a configuration has been fetched,
//! reports carry no metrics (their envelope and sections still go).

use crate::product::report::Report;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a fetched configuration is used before it is fetched again.
pub(crate) const REFRESH: Duration = Duration::from_secs(3600);

/// A fetched configuration: metric name to sampling rate (0 to 1).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Allowed {
    rates: HashMap<String, f64>,
}

impl Allowed {
    /// Reads a configuration; `None` if it is not one (then the previous one stays in use).
    pub(crate) fn parse(body: &[u8]) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        let mut rates = HashMap::new();
        for metric in value.get("metrics")?.as_array()? {
            let name = metric.get("name")?.as_str()?;
            let rate = metric
                .get("rate")?
                .as_f64()
                .filter(|r| (0.0..=1.0).contains(r))?;
            rates.insert(name.to_owned(), rate);
        }
        Some(Allowed { rates })
    }

    /// Whether report `id` carries metric `name`.
    fn keeps(&self, id: &uuid::Uuid, name: &str) -> bool {
        let Some(&rate) = self.rates.get(name) else {
            return false;
        };
        if rate >= 1.0 {
            return true;
        }
        // FNV-1a over the report id and the name: the same decision for the same report.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for b in id.as_bytes().iter().chain(name.as_bytes()) {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        (hash as f64 / u64::MAX as f64) < rate
    }

    /// Leaves out of `report` every metric this configuration does not keep for it.
    pub(crate) fn apply(&self, report: &mut Report) {
        let id = report.report_id;
        let metrics = &mut report.metrics;
        metrics.counters.retain(|name, _| self.keeps(&id, name));
        metrics.gauges.retain(|name, _| self.keeps(&id, name));
        metrics.histograms.retain(|name, _| self.keeps(&id, name));
    }
}

/// The configuration's URL and the last one fetched.
pub(crate) struct UploadConfig {
    pub(crate) url: String,
    pub(crate) current: Option<(Instant, Allowed)>,
}

impl UploadConfig {
    pub(crate) fn new(url: String) -> Self {
        UploadConfig { url, current: None }
    }

    /// Whether the configuration should be fetched (again) now.
    pub(crate) fn stale(&self) -> bool {
        self.current
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= REFRESH)
    }

    /// Applies the current configuration to `report`: without one, no metric is sent.
    pub(crate) fn apply(&self, report: &mut Report) {
        match &self.current {
            Some((_, allowed)) => allowed.apply(report),
            None => report.metrics = crate::engine::snapshot::Snapshot::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::snapshot::{Family, Series, Snapshot};
    use crate::product::report::Application;

    fn report() -> Report {
        let mut metrics = Snapshot::default();
        for name in ["a.kept", "a.denied", "a.half"] {
            metrics.counters.insert(
                name.into(),
                Family {
                    series: vec![Series {
                        labels: Default::default(),
                        value: 1,
                    }],
                    ..Family::default()
                },
            );
        }
        Report::new(Application::new("app", "1.0.0"), metrics)
    }

    #[test]
    fn unlisted_metrics_are_dropped_and_rates_are_applied_per_report_id() {
        let allowed = Allowed::parse(
            br#"{"version":"x","metrics":[{"name":"a.kept","rate":1.0},{"name":"a.half","rate":0.5}]}"#,
        )
        .unwrap();
        let mut halves = 0;
        for _ in 0..1_000 {
            let mut r = report();
            allowed.apply(&mut r);
            assert!(r.metrics.counters.contains_key("a.kept"));
            assert!(!r.metrics.counters.contains_key("a.denied"));
            halves += usize::from(r.metrics.counters.contains_key("a.half"));
            // The same report id makes the same decision when the report is made again.
            let mut again = report();
            again.report_id = r.report_id;
            allowed.apply(&mut again);
            assert_eq!(
                again.metrics.counters.contains_key("a.half"),
                r.metrics.counters.contains_key("a.half")
            );
        }
        assert!(
            (400..600).contains(&halves),
            "{halves} of 1000 kept at rate 0.5"
        );
        assert_eq!(
            Allowed::parse(br#"{"metrics":[{"name":"a","rate":2}]}"#),
            None
        );
        assert_eq!(Allowed::parse(b"not json"), None);
        let mut none = UploadConfig::new("http://127.0.0.1:1/c".to_owned());
        assert!(none.stale());
        let mut r = report();
        none.apply(&mut r);
        assert!(
            r.metrics.is_empty(),
            "no configuration fetched yet: no metric leaves"
        );
        none.current = Some((Instant::now(), allowed));
        assert!(!none.stale());
    }
}

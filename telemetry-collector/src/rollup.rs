//! Daily and weekly rollups, computed from the stored reports when asked (so a deletion is
//! exact at once): the share of installations that used each feature (a counter above zero
//! in the period) by product version, OS and architecture, and the histograms of every
//! installation merged bucket by bucket.
//!
//! Merging adds the counts of equal buckets of the log-linear layout, so a quantile of the
//! merged histogram is the midpoint of the bucket that holds it, as for one installation:
//! within [`HistogramSnapshot::RELATIVE_ERROR`] (1/128) of the true value over all of them.

use crate::storage::{Count, Period, Storage, StorageError};
use serde::Serialize;
use std::collections::BTreeMap;
use telemetry_core::HistogramSnapshot;

/// The number of buckets of the reporter's histogram layout: 59 groups of 64.
pub const BUCKET_COUNT: u64 = 59 * 64;

/// The share of one group's installations that used one feature in one period.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FeatureShare {
    /// The start of the period, `YYYY-MM-DD`.
    pub period: String,
    /// The counter.
    pub feature: String,
    /// The product version.
    pub version: String,
    /// The OS.
    pub os: String,
    /// The architecture.
    pub arch: String,
    /// Installations of the group whose counter was above zero.
    pub installations: u64,
    /// Installations of the group that sent a report in the period.
    pub of: u64,
    /// `installations / of`, 0 to 1.
    pub share: f64,
}

/// One histogram merged over every installation of one period and product version.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MergedHistogram {
    /// The start of the period.
    pub period: String,
    /// The product version.
    pub version: String,
    /// The metric.
    pub metric: String,
    /// The metric's unit as its manifest names it (`nanoseconds`, `bytes`, ...), once
    /// [`Rollup::name_units`] has been given the manifests; empty before.
    pub unit: String,
    /// Reports merged.
    pub reports: u64,
    /// Values recorded, over all of them.
    pub count: u64,
    /// The median, in the metric's unit.
    pub p50: Option<u64>,
    /// The 90th percentile.
    pub p90: Option<u64>,
    /// The 99th percentile.
    pub p99: Option<u64>,
    /// The bound on the relative error of the quantiles (1/128).
    pub relative_error: f64,
    /// The merged histogram.
    #[serde(skip)]
    pub histogram: HistogramSnapshot,
}

/// The rollups of one product.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rollup {
    /// The product.
    pub product: String,
    /// Days or weeks.
    pub period: Period,
    /// Feature shares, by period, feature, version, OS, architecture.
    pub features: Vec<FeatureShare>,
    /// Installations that sent a report, by period and group (`feature` is `None`).
    pub installations: Vec<Count>,
    /// Merged histograms, by period, version and metric.
    pub histograms: Vec<MergedHistogram>,
}

impl Rollup {
    /// The rollups of `product` for periods starting on or after `since` (`YYYY-MM-DD`).
    ///
    /// # Errors
    /// [`StorageError`], or [`StorageError::Corrupt`] for a stored histogram that does not
    /// read back.
    pub fn compute(
        storage: &dyn Storage,
        product: &str,
        period: Period,
        since: &str,
    ) -> Result<Self, StorageError> {
        let counts = storage.installations(product, period, since)?;
        let (totals, used): (Vec<Count>, Vec<Count>) =
            counts.into_iter().partition(|c| c.feature.is_none());
        let of: BTreeMap<(&str, &str, &str, &str), u64> = totals
            .iter()
            .map(|c| {
                (
                    (
                        c.period.as_str(),
                        c.version.as_str(),
                        c.os.as_str(),
                        c.arch.as_str(),
                    ),
                    c.installations,
                )
            })
            .collect();
        let features = used
            .iter()
            .map(|c| {
                let of = of
                    .get(&(
                        c.period.as_str(),
                        c.version.as_str(),
                        c.os.as_str(),
                        c.arch.as_str(),
                    ))
                    .copied()
                    .unwrap_or(c.installations)
                    .max(c.installations);
                FeatureShare {
                    period: c.period.clone(),
                    feature: c.feature.clone().unwrap_or_default(),
                    version: c.version.clone(),
                    os: c.os.clone(),
                    arch: c.arch.clone(),
                    installations: c.installations,
                    of,
                    share: if of == 0 {
                        0.0
                    } else {
                        c.installations as f64 / of as f64
                    },
                }
            })
            .collect();
        let mut merged: BTreeMap<(String, String, String), (u64, HistogramSnapshot)> =
            BTreeMap::new();
        for stored in storage.histograms(product, period, since)? {
            let h: HistogramSnapshot = serde_json::from_str(&stored.json)
                .map_err(|e| StorageError::Corrupt(format!("histogram {}: {e}", stored.metric)))?;
            let slot = merged
                .entry((stored.period, stored.version, stored.metric))
                .or_default();
            slot.0 += 1;
            slot.1.add(&h);
        }
        let histograms = merged
            .into_iter()
            .map(
                |((period, version, metric), (reports, histogram))| MergedHistogram {
                    period,
                    version,
                    metric,
                    unit: String::new(),
                    reports,
                    count: histogram.count(),
                    p50: histogram.quantile(0.5),
                    p90: histogram.quantile(0.9),
                    p99: histogram.quantile(0.99),
                    relative_error: HistogramSnapshot::RELATIVE_ERROR,
                    histogram,
                },
            )
            .collect();
        Ok(Rollup {
            product: product.to_owned(),
            period,
            features,
            installations: totals,
            histograms,
        })
    }

    /// Names the unit of each merged histogram, from `unit_of` (the registered manifests).
    pub fn name_units(&mut self, unit_of: impl Fn(&str) -> Option<String>) {
        for h in &mut self.histograms {
            if let Some(unit) = unit_of(&h.metric) {
                h.unit = unit;
            }
        }
    }

    /// The latest period with data, if any.
    pub fn latest_period(&self) -> Option<&str> {
        self.installations.iter().map(|c| c.period.as_str()).max()
    }

    /// The share of installations of each product version that used each feature in
    /// `period`, over every OS and architecture: feature → version → (used, of).
    pub fn shares_by_version(
        &self,
        period: &str,
    ) -> BTreeMap<String, BTreeMap<String, (u64, u64)>> {
        let mut of: BTreeMap<&str, u64> = BTreeMap::new();
        for c in self.installations.iter().filter(|c| c.period == period) {
            *of.entry(c.version.as_str()).or_default() += c.installations;
        }
        let mut out: BTreeMap<String, BTreeMap<String, (u64, u64)>> = BTreeMap::new();
        for f in self.features.iter().filter(|f| f.period == period) {
            let slot = out
                .entry(f.feature.clone())
                .or_default()
                .entry(f.version.clone())
                .or_insert((0, of.get(f.version.as_str()).copied().unwrap_or(0)));
            slot.0 += f.installations;
        }
        out
    }
}

//! The upload configuration of a product, generated from its registered manifests and the
//! collector's configuration rather than written by hand (as Go's telemetry publishes one):
//! which metrics may be sent, and the sampling rate of each.
//!
//! Served at `GET /v1/upload-config/{product}`:
//! ```json
//! {
//!   "product": "docstore",
//!   "version": "5f1c0e7a9b2d4c61",
//!   "manifest_versions": ["c68fb2a86743f50d"],
//!   "metrics": [ { "name": "docstore.cache.hits", "kind": "counter", "rate": 1.0 } ]
//! }
//! ```
//! A reporter told this URL sends only the listed metrics, each in a report with
//! probability `rate`; `version` changes exactly when the content does.

use crate::config::ProductConfig;
use crate::manifest_registry::ManifestRegistry;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

/// One metric the product may send.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AllowedMetric {
    /// The metric's name.
    pub name: String,
    /// `counter`, `gauge` or `histogram`.
    pub kind: String,
    /// The probability that a report carries it, 0 to 1.
    pub rate: f64,
}

/// The upload configuration of one product.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UploadConfig {
    /// The product.
    pub product: String,
    /// 16 hex digits that change exactly when the rest does.
    pub version: String,
    /// The manifests it was generated from.
    pub manifest_versions: Vec<String>,
    /// What may be sent, in name order.
    pub metrics: Vec<AllowedMetric>,
}

/// The upload configuration of `product`: every metric of any of its registered manifests,
/// less those `config` denies, at `config`'s rates. `None` if no manifest of it is
/// registered.
pub fn generate(
    registry: &ManifestRegistry,
    product: &str,
    config: Option<&ProductConfig>,
) -> Option<UploadConfig> {
    let default = ProductConfig::default();
    let config = config.unwrap_or(&default);
    let mut metrics: BTreeMap<String, AllowedMetric> = BTreeMap::new();
    let mut manifest_versions = Vec::new();
    for registration in registry.registrations_of(product) {
        if !manifest_versions.contains(&registration.manifest.version) {
            manifest_versions.push(registration.manifest.version.clone());
        }
        for metric in &registration.manifest.metrics {
            if config.deny.contains(&metric.name) {
                continue;
            }
            let rate = config
                .sampling
                .get(&metric.name)
                .copied()
                .unwrap_or(config.default_rate);
            metrics
                .entry(metric.name.clone())
                .or_insert_with(|| AllowedMetric {
                    name: metric.name.clone(),
                    kind: metric.kind.as_str().to_owned(),
                    rate,
                });
        }
    }
    if manifest_versions.is_empty() {
        return None;
    }
    manifest_versions.sort();
    let metrics: Vec<AllowedMetric> = metrics.into_values().collect();
    let mut hasher = Fnv::default();
    for m in &metrics {
        m.name.hash(&mut hasher);
        m.kind.hash(&mut hasher);
        m.rate.to_bits().hash(&mut hasher);
    }
    manifest_versions.hash(&mut hasher);
    Some(UploadConfig {
        product: product.to_owned(),
        version: format!("{:016x}", hasher.finish()),
        manifest_versions,
        metrics,
    })
}

/// FNV-1a: a hash that is the same in every build, for the configuration's version.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

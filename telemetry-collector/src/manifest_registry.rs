//! The registered manifests: for each product, the manifest JSON of each of its versions,
//! compiled into the lookup tables validation needs.
//!
//! A manifest is registered for a product name and one product version (the `application`
//! of the reports that binary sends): a binary has exactly one manifest, so the report's
//! application version names the manifest it is validated against. Several products and
//! several versions of each are registered at once; the same manifest may serve several
//! product versions.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use telemetry_core::MetricKind;
use telemetry_core::manifest::{Manifest, ManifestField, ManifestSection};

/// One registration: `manifest` describes what version `product_version` of `product` sends.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Registration {
    /// The product's name, as in the reports' `application.name`.
    pub product: String,
    /// The product's version, as in the reports' `application.version`.
    pub product_version: String,
    /// The manifest JSON the product prints (`Manifest::to_json`).
    pub manifest: Manifest,
}

/// Why a registration is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrationError {
    /// The product name does not fit the grammar of `application.name`.
    #[error("a product name is 1 to 64 ASCII letters, digits, `-` and `_`, starting with a letter")]
    Product,
    /// The product version does not fit the grammar of `application.version`.
    #[error(
        "a product version is 1 to 64 ASCII letters, digits, `.`, `-` and `+`, starting with a digit or `v`"
    )]
    Version,
    /// The body is not a manifest.
    #[error("not a manifest: {0}")]
    Manifest(String),
    /// This product version has another manifest already: one binary has one manifest.
    #[error("{product} {product_version} is registered with manifest {existing} already")]
    Conflict {
        /// The product.
        product: String,
        /// The product version.
        product_version: String,
        /// The manifest version registered before.
        existing: String,
    },
}

/// What validation knows of one label.
#[derive(Clone, Debug)]
pub struct LabelRule {
    /// The values of a closed set; `None` for an open set (bounded by the series cap).
    pub values: Option<HashSet<String>>,
}

/// What validation knows of one metric.
#[derive(Clone, Debug)]
pub struct MetricRule {
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// Its unit, as the reports spell it (`none`, `nanoseconds`, ...).
    pub unit: String,
    /// Its description, as the reports carry it.
    pub description: String,
    /// Its labels by name.
    pub labels: BTreeMap<String, LabelRule>,
    /// The most series a report may carry for it.
    pub max_series: usize,
}

/// The most series one metric may carry in a report, whatever its manifest says: a cap of
/// `usize::MAX` (the framework's own overflow counter) is no bound for a collector.
pub const SERIES_CEILING: usize = 1_024;

/// A section, event or nested type: its fields that may be sent, by name, with their types.
#[derive(Clone, Debug, Default)]
pub struct ShapeRule {
    /// Field name to its Rust type name.
    pub fields: HashMap<String, String>,
}

/// A manifest ready for validation.
#[derive(Clone, Debug)]
pub struct CompiledManifest {
    /// The manifest's version (16 hex digits).
    pub version: String,
    /// The envelope field names.
    pub envelope: HashSet<String>,
    /// Metrics by name.
    pub metrics: HashMap<String, MetricRule>,
    /// Top-level sections by name.
    pub sections: HashMap<String, ShapeRule>,
    /// Events by name.
    pub events: HashMap<String, ShapeRule>,
    /// Nested types by name.
    pub types: HashMap<String, ShapeRule>,
    /// The manifest as registered.
    pub source: Manifest,
}

fn shape(section: &ManifestSection) -> ShapeRule {
    ShapeRule {
        fields: section
            .fields
            .iter()
            .filter(|f: &&ManifestField| !f.skipped)
            .map(|f| (f.name.clone(), f.type_name.clone()))
            .collect(),
    }
}

impl CompiledManifest {
    /// Compiles `manifest`.
    pub fn new(manifest: Manifest) -> Self {
        let metrics = manifest
            .metrics
            .iter()
            .map(|m| {
                let labels = m
                    .labels
                    .iter()
                    .map(|l| {
                        let values = l.values.as_ref().map(|v| v.iter().cloned().collect());
                        (l.name.clone(), LabelRule { values })
                    })
                    .collect::<BTreeMap<_, _>>();
                // A metric whose labels are all closed sets has at most the product of their
                // sizes of series, whatever its cap.
                let combinations = labels.values().try_fold(1usize, |n, l: &LabelRule| {
                    l.values.as_ref().map(|v| n.saturating_mul(v.len()))
                });
                let max_series = if labels.is_empty() {
                    1
                } else {
                    m.max_series
                        .unwrap_or(SERIES_CEILING)
                        .min(SERIES_CEILING)
                        .min(combinations.unwrap_or(usize::MAX))
                };
                let rule = MetricRule {
                    kind: m.kind,
                    unit: m.unit.as_str().to_owned(),
                    description: m.description.clone(),
                    labels,
                    max_series,
                };
                (m.name.clone(), rule)
            })
            .collect();
        CompiledManifest {
            version: manifest.version.clone(),
            envelope: manifest.envelope.iter().map(|e| e.name.clone()).collect(),
            metrics,
            sections: manifest
                .sections
                .iter()
                .map(|s| (s.name.clone(), shape(s)))
                .collect(),
            events: manifest
                .events
                .iter()
                .map(|s| (s.name.clone(), shape(s)))
                .collect(),
            types: manifest
                .types
                .iter()
                .map(|s| (s.name.clone(), shape(s)))
                .collect(),
            source: manifest,
        }
    }
}

/// Every registered manifest, by product and product version.
#[derive(Clone, Debug, Default)]
pub struct ManifestRegistry {
    by_version: HashMap<(String, String), Arc<CompiledManifest>>,
    registrations: Vec<Registration>,
}

/// Whether `text` is a product name (the grammar of `application.name`).
pub fn is_product_name(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `text` is a product version (the characters and length of `application.version`).
pub fn is_product_version(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text.starts_with(|c: char| c.is_ascii_digit() || c == 'v')
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'))
}

impl Registration {
    /// A registration of the manifest JSON `json` for `product` `product_version`.
    ///
    /// # Errors
    /// [`RegistrationError`] for a name or version off the grammar, or a body that is not a
    /// manifest.
    pub fn from_json(
        product: &str,
        product_version: &str,
        json: &[u8],
    ) -> Result<Self, RegistrationError> {
        if !is_product_name(product) {
            return Err(RegistrationError::Product);
        }
        if !is_product_version(product_version) {
            return Err(RegistrationError::Version);
        }
        let manifest: Manifest =
            serde_json::from_slice(json).map_err(|e| RegistrationError::Manifest(e.to_string()))?;
        if manifest.version.len() != 16 || !manifest.version.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(RegistrationError::Manifest(
                "`version` is not 16 hex digits".to_owned(),
            ));
        }
        Ok(Registration {
            product: product.to_owned(),
            product_version: product_version.to_owned(),
            manifest,
        })
    }
}

impl ManifestRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `registration`. Registering the same manifest again changes nothing.
    ///
    /// # Errors
    /// [`RegistrationError::Conflict`] when this product version has another manifest.
    pub fn add(&mut self, registration: Registration) -> Result<bool, RegistrationError> {
        let key = (
            registration.product.clone(),
            registration.product_version.clone(),
        );
        if let Some(existing) = self.by_version.get(&key) {
            if existing.version == registration.manifest.version {
                return Ok(false);
            }
            return Err(RegistrationError::Conflict {
                product: key.0,
                product_version: key.1,
                existing: existing.version.clone(),
            });
        }
        self.by_version.insert(
            key,
            Arc::new(CompiledManifest::new(registration.manifest.clone())),
        );
        self.registrations.push(registration);
        Ok(true)
    }

    /// The manifest of `product` `product_version`, if registered.
    pub fn get(&self, product: &str, product_version: &str) -> Option<Arc<CompiledManifest>> {
        self.by_version
            .get(&(product.to_owned(), product_version.to_owned()))
            .cloned()
    }

    /// Whether any manifest of `product` is registered.
    pub fn knows_product(&self, product: &str) -> bool {
        self.registrations.iter().any(|r| r.product == product)
    }

    /// Whether any version of any product is registered with manifest version `version`.
    pub fn knows_manifest_version(&self, version: &str) -> bool {
        self.registrations
            .iter()
            .any(|r| r.manifest.version == version)
    }

    /// The registered products, in name order.
    pub fn products(&self) -> BTreeSet<String> {
        self.registrations
            .iter()
            .map(|r| r.product.clone())
            .collect()
    }

    /// Every registration of `product`, in registration order.
    pub fn registrations_of<'a>(
        &'a self,
        product: &'a str,
    ) -> impl Iterator<Item = &'a Registration> {
        self.registrations
            .iter()
            .filter(move |r| r.product == product)
    }

    /// Every registration, in registration order.
    pub fn registrations(&self) -> &[Registration] {
        &self.registrations
    }
}

//! How units leave in the expositions: in base units (seconds, bytes), each format spelling
//! them its own way, from one table.

use crate::engine::metadata::Unit;

/// One unit as the exporters write it.
pub(crate) struct ExportedUnit {
    /// The Prometheus and OpenMetrics name suffix and `# UNIT` (`seconds`, `bytes`).
    pub(crate) suffix: Option<&'static str>,
    /// The UCUM code OTLP carries (`s`, `By`; empty for none).
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub(crate) ucum: &'static str,
    /// What recorded values are divided by to be in the base unit (10^9 for nanoseconds).
    pub(crate) divisor: Option<f64>,
}

/// How `unit` is exported: nanoseconds (everything `#[timed]` records) as seconds, seconds and
/// bytes as they are, plain numbers without a unit.
pub(crate) const fn exported(unit: Unit) -> ExportedUnit {
    match unit {
        Unit::None => ExportedUnit {
            suffix: None,
            ucum: "",
            divisor: None,
        },
        Unit::Nanoseconds => ExportedUnit {
            suffix: Some("seconds"),
            ucum: "s",
            divisor: Some(1e9),
        },
        Unit::Seconds => ExportedUnit {
            suffix: Some("seconds"),
            ucum: "s",
            divisor: None,
        },
        Unit::Bytes => ExportedUnit {
            suffix: Some("bytes"),
            ucum: "By",
            divisor: None,
        },
    }
}

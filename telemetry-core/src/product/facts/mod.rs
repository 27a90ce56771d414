//! System and build facts, as in EventStoreDB's `environment` section (its "Usage telemetry" documentation) and Automatisch's
//! diagnostics: OS and version, architecture, cores, memory, disk, container and Kubernetes
//! detection, uptime, and the product's build.
//!
//! Collected through `sysinfo` (feature `system-facts`, on by default; without it the fields
//! sysinfo provides are absent). Nothing here names the machine or a person: no host name,
//! user name, IP address or path. Big numbers (memory, disk, uptime) are rounded by the usual
//! anonymization rules when the section is added to a report.

mod build;
mod system;

pub use build::{BuildFacts, TARGET};
pub use system::SystemFacts;

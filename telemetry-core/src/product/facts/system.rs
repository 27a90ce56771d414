//! The machine's facts: [`SystemFacts`] (OS, architecture, cores, memory, disk, container,
//! uptime), read from the machine and checked.

use super::BuildFacts;
use telemetry_macros::Telemetry;

/// Facts about the machine and the build. Add it to a report with
/// `report.add_section(&SystemFacts::collect(build))`. Only [`collect`](Self::collect) makes
/// one (the fields are private), so every value is read from the machine and checked.
#[derive(Clone, Debug, PartialEq, Telemetry)]
#[telemetry(section = "environment")]
pub struct SystemFacts {
    /// The operating system family: `linux`, `macos`, `windows`, ... (`std::env::consts::OS`).
    #[telemetry(verbatim = "a constant of the standard library")]
    os: &'static str,
    /// The OS distribution and version, e.g. `Debian GNU/Linux 12`.
    #[telemetry(verbatim = "the OS release name, shared by every machine running that release")]
    os_version: Option<String>,
    /// The CPU architecture: `x86_64`, `aarch64`, ... (`std::env::consts::ARCH`).
    #[telemetry(verbatim = "a constant of the standard library")]
    architecture: &'static str,
    /// Logical cores available to the process.
    core_count: usize,
    /// Physical memory, bytes.
    total_memory_bytes: Option<u64>,
    /// Total size of the mounted disks, bytes.
    total_disk_bytes: Option<u64>,
    /// Running in a container (Docker, Podman, containerd).
    is_container: bool,
    /// Running in a Kubernetes pod.
    is_kubernetes: bool,
    /// Time since the machine booted, seconds, rounded down to the hour
    /// (an exact uptime would let a collector link the instance ids of one machine).
    system_uptime_seconds: Option<u64>,
    /// The product's build.
    build: BuildFacts,
}

/// The OS release name as sent: 1 to 64 ASCII letters, digits, spaces and `.`, `-`, `_`,
/// `(`, `)`, with `/` only in `GNU/Linux`. It comes from a file an administrator can edit
/// (`/etc/os-release`), so anything else is sent as `other`.
#[cfg_attr(not(feature = "system-facts"), allow(dead_code))]
fn checked_os_version(text: String) -> String {
    let ok = (1..=64).contains(&text.len())
        && text.replace("GNU/Linux", "GNU Linux").bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b' ' | b'.' | b'-' | b'_' | b'(' | b')')
        });
    if ok {
        text
    } else {
        crate::product::report::INVALID_APPLICATION_TEXT.to_owned()
    }
}

impl SystemFacts {
    /// The operating system family: `linux`, `macos`, `windows`, ... (`std::env::consts::OS`).
    pub fn os(&self) -> &'static str {
        self.os
    }

    /// The OS distribution and version, e.g. `Debian GNU/Linux 12`, or `other` when the
    /// release file holds something else.
    pub fn os_version(&self) -> Option<&str> {
        self.os_version.as_deref()
    }

    /// The CPU architecture: `x86_64`, `aarch64`, ... (`std::env::consts::ARCH`).
    pub fn architecture(&self) -> &'static str {
        self.architecture
    }

    /// Logical cores available to the process.
    pub fn core_count(&self) -> usize {
        self.core_count
    }

    /// Physical memory, bytes.
    pub fn total_memory_bytes(&self) -> Option<u64> {
        self.total_memory_bytes
    }

    /// Total size of the mounted disks, bytes.
    pub fn total_disk_bytes(&self) -> Option<u64> {
        self.total_disk_bytes
    }

    /// Running in a container (Docker, Podman, containerd).
    pub fn is_container(&self) -> bool {
        self.is_container
    }

    /// Running in a Kubernetes pod.
    pub fn is_kubernetes(&self) -> bool {
        self.is_kubernetes
    }

    /// Time since the machine booted, seconds, rounded down to the hour.
    pub fn system_uptime_seconds(&self) -> Option<u64> {
        self.system_uptime_seconds
    }

    /// The product's build.
    pub fn build(&self) -> &BuildFacts {
        &self.build
    }

    /// Reads the facts now (a few milliseconds: sysinfo reads `/proc` and the mount table).
    pub fn collect(build: BuildFacts) -> Self {
        let core_count = std::thread::available_parallelism().map_or(1, |n| n.get());
        #[cfg_attr(not(feature = "system-facts"), allow(unused_mut))]
        let mut facts = SystemFacts {
            os: std::env::consts::OS,
            os_version: None,
            architecture: std::env::consts::ARCH,
            core_count,
            total_memory_bytes: None,
            total_disk_bytes: None,
            is_container: detect_container(),
            is_kubernetes: std::env::var_os("KUBERNETES_SERVICE_HOST").is_some(),
            system_uptime_seconds: None,
            build: build.checked(),
        };
        #[cfg(feature = "system-facts")]
        {
            let mut system = sysinfo::System::new();
            system.refresh_memory();
            facts.total_memory_bytes = Some(system.total_memory()).filter(|m| *m > 0);
            facts.os_version = sysinfo::System::long_os_version().map(checked_os_version);
            facts.system_uptime_seconds = Some(crate::privacy::anonymize::round_clock(
                sysinfo::System::uptime(),
            ));
            let disks = sysinfo::Disks::new_with_refreshed_list();
            let total: u64 = disks.list().iter().map(sysinfo::Disk::total_space).sum();
            facts.total_disk_bytes = Some(total).filter(|t| *t > 0);
        }
        facts
    }
}

/// Docker's `/.dockerenv`, Podman's `/run/.containerenv`, or a container runtime in the cgroup
/// of process 1.
fn detect_container() -> bool {
    if std::path::Path::new("/.dockerenv").exists()
        || std::path::Path::new("/run/.containerenv").exists()
    {
        return true;
    }
    std::fs::read_to_string("/proc/1/cgroup").is_ok_and(|cgroup| {
        ["docker", "kubepods", "containerd", "libpod", "lxc"]
            .iter()
            .any(|runtime| cgroup.contains(runtime))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::anonymize::{Anonymize, Anonymizer, HashKey};

    #[test]
    fn facts_are_collected_and_anonymized() {
        let facts = SystemFacts::collect(crate::build_facts!("x"));
        assert!(facts.core_count >= 1);
        assert_eq!(facts.build.version(), env!("CARGO_PKG_VERSION"));
        for (release, sent) in [
            (
                "Debian GNU/Linux 12 (bookworm)",
                "Debian GNU/Linux 12 (bookworm)",
            ),
            ("Ubuntu 24.04.1 LTS", "Ubuntu 24.04.1 LTS"),
            ("/home/alice/os", "other"),
            ("alice@example.com", "other"),
            ("", "other"),
        ] {
            assert_eq!(checked_os_version(release.to_owned()), sent);
        }
        assert!(!facts.build.target().is_empty());
        #[cfg(feature = "system-facts")]
        assert!(facts.total_memory_bytes.unwrap() > 1 << 20);
        let json = facts.anonymize(&Anonymizer::new(HashKey::generate()));
        if let Some(memory) = json["total_memory_bytes"].as_u64() {
            assert_eq!(memory, crate::privacy::anonymize::round_u64(memory, 6));
        }
        assert_eq!(json["architecture"], std::env::consts::ARCH);
        assert_eq!(json["build"]["features"][0], "x");
    }
}

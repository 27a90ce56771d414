//! Reports that could not be sent, kept on disk until the endpoint answers again.
//!
//! One file per report, named by its creation time and a sequence number so that the oldest
//! is sent first. The spool never holds more than its caps (files and bytes): to make room,
//! the oldest reports are dropped, each drop counted in `telemetry.spool.dropped` and logged.

use crate::state::write_atomically;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The spool's limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolLimits {
    /// The most reports kept (default 100).
    pub max_files: usize,
    /// The most bytes kept (default 10 MiB).
    pub max_bytes: u64,
}

impl Default for SpoolLimits {
    fn default() -> Self {
        SpoolLimits {
            max_files: 100,
            max_bytes: 10 << 20,
        }
    }
}

/// A directory of unsent reports.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    limits: SpoolLimits,
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl Spool {
    pub(crate) fn new(dir: PathBuf, limits: SpoolLimits) -> Self {
        Spool { dir, limits }
    }

    /// Spooled reports, oldest first, as `(path, size)`. Files that are not reports (partial
    /// writes, strangers) are ignored.
    pub(crate) fn list(&self) -> io::Result<Vec<(PathBuf, u64)>> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let is_report = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("report-") && n.ends_with(".json"));
            if is_report {
                out.push((path, entry.metadata().map(|m| m.len()).unwrap_or(0)));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Keeps `payload` for later, dropping the oldest reports if the caps require it.
    /// Returns how many were dropped.
    pub(crate) fn push(&self, payload: &[u8], unix_millis: u128) -> io::Result<usize> {
        if payload.len() as u64 > self.limits.max_bytes {
            log::error!(target: "telemetry", "a report of {} bytes is larger than the whole spool; it is dropped", payload.len());
            return Ok(1);
        }
        fs::create_dir_all(&self.dir)?;
        let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "report-{unix_millis:016}-{}-{seq:08}.json",
            std::process::id()
        );
        let mut existing = self.list()?;
        let mut dropped = 0;
        let mut bytes: u64 = existing.iter().map(|e| e.1).sum::<u64>() + payload.len() as u64;
        while !existing.is_empty()
            && (existing.len() + 1 > self.limits.max_files || bytes > self.limits.max_bytes)
        {
            let (oldest, size) = existing.remove(0);
            if remove(&oldest) {
                dropped += 1;
            }
            bytes -= size;
        }
        write_atomically(&self.dir.join(name), payload)?;
        Ok(dropped)
    }

    /// Reads a spooled report.
    pub(crate) fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    /// Removes a report that was delivered.
    pub(crate) fn remove(&self, path: &Path) -> bool {
        remove(path)
    }
}

/// Removes a file; another process sharing the directory may have sent it already.
fn remove(path: &Path) -> bool {
    fs::remove_file(path).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_first_and_never_past_the_caps() {
        let dir = std::env::temp_dir().join(format!("telemetry-spool-{}", uuid::Uuid::new_v4()));
        let spool = Spool::new(
            dir.clone(),
            SpoolLimits {
                max_files: 3,
                max_bytes: 1000,
            },
        );
        assert!(spool.list().unwrap().is_empty());
        for i in 0..5u128 {
            spool
                .push(format!("{{\"n\":{i}}}").as_bytes(), 1000 + i)
                .unwrap();
        }
        let left = spool.list().unwrap();
        assert_eq!(left.len(), 3);
        assert_eq!(spool.read(&left[0].0).unwrap(), b"{\"n\":2}");
        assert_eq!(
            spool.push(&vec![b'x'; 2000], 2000).unwrap(),
            1,
            "too big for the spool: dropped"
        );
        std::fs::write(dir.join("stranger.txt"), b"x").unwrap();
        assert_eq!(
            spool.list().unwrap().len(),
            3,
            "the others are kept, strangers ignored"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Reports that could not be sent, kept on disk until the endpoint answers again.
//!
//! One file per report, named by its creation time and a sequence number so that the oldest
//! is sent first. The spool never holds more than its caps (files and bytes): to make room,
//! the oldest reports are dropped, each drop counted in the reporter's status and logged.
//!
//! Several processes may share one spool (two instances on one state directory). A report is
//! *claimed* before it is sent, by renaming `report-….json` to `report-….json.sending-{pid}`:
//! the rename succeeds for one process only, so no report is sent twice. A report being sent
//! is already on disk under its claimed name, so a process that exits mid-send (its shutdown
//! bound ran out) loses nothing: the next start finds the claim of a process that no longer
//! runs (or a claim older than an hour) and puts the report back in line. The caps bound the
//! waiting reports; the one report being sent is on disk besides them.

use crate::state::write_atomically;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

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

/// A claim older than this is taken back even if its process seems alive (pids are reused).
const STALE_CLAIM: Duration = Duration::from_secs(3600);

fn claim_suffix() -> String {
    format!(".sending-{}", std::process::id())
}

impl Spool {
    pub(crate) fn new(dir: PathBuf, limits: SpoolLimits) -> Self {
        Spool { dir, limits }
    }

    /// The spool's directory.
    #[cfg(test)]
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reports waiting (not claimed), oldest first, as `(path, size)`. Other files (partial
    /// writes, claims, strangers) are ignored.
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

    fn new_name(unix_millis: u128) -> String {
        let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        format!(
            "report-{unix_millis:016}-{}-{seq:08}.json",
            std::process::id()
        )
    }

    /// Drops the oldest waiting reports until one more of `incoming` bytes fits the caps.
    /// Returns how many were dropped.
    fn make_room(&self, incoming: u64) -> io::Result<usize> {
        let mut existing = self.list()?;
        let mut dropped = 0;
        let mut bytes: u64 = existing.iter().map(|e| e.1).sum::<u64>() + incoming;
        while !existing.is_empty()
            && (existing.len() + 1 > self.limits.max_files || bytes > self.limits.max_bytes)
        {
            let (oldest, size) = existing.remove(0);
            if fs::remove_file(&oldest).is_ok() {
                dropped += 1;
            }
            bytes -= size;
        }
        Ok(dropped)
    }

    /// Writes a report that is about to be sent, already claimed by this process, so that it
    /// is on disk whatever happens to the send. It does not count against the caps until it
    /// is [`release`](Self::release)d (its send failed): a report that is delivered never
    /// pushes a waiting one out. `None` for a report larger than the whole spool.
    pub(crate) fn write_claimed(
        &self,
        payload: &[u8],
        unix_millis: u128,
    ) -> io::Result<Option<PathBuf>> {
        if payload.len() as u64 > self.limits.max_bytes {
            return Ok(None);
        }
        fs::create_dir_all(&self.dir)?;
        let mut name = Self::new_name(unix_millis);
        name.push_str(&claim_suffix());
        let path = self.dir.join(name);
        write_atomically(&path, payload)?;
        Ok(Some(path))
    }

    /// Claims a waiting report for sending; `None` if another process claimed it first.
    pub(crate) fn claim(&self, path: &Path) -> Option<PathBuf> {
        let mut claimed = path.as_os_str().to_owned();
        claimed.push(claim_suffix());
        let claimed = PathBuf::from(claimed);
        fs::rename(path, &claimed).ok().map(|()| claimed)
    }

    /// Puts a claimed report back in line (its send failed), then drops the oldest waiting
    /// reports if the caps require it. Returns how many were dropped.
    pub(crate) fn release(&self, claimed: &Path) -> io::Result<usize> {
        let size = fs::metadata(claimed)?.len();
        let dropped = self.make_room(size)?;
        fs::rename(claimed, unclaimed_name(claimed))?;
        Ok(dropped)
    }

    /// Puts a claimed report back in line without touching the others (a spooled report whose
    /// resend failed: it was already counted).
    pub(crate) fn unclaim(&self, claimed: &Path) -> io::Result<()> {
        fs::rename(claimed, unclaimed_name(claimed))
    }

    /// Moves a file that is not a report out of the way (`….json.corrupt`), so it neither
    /// leaves nor blocks the reports behind it.
    pub(crate) fn set_aside(&self, claimed: &Path) {
        let mut aside = unclaimed_name(claimed).into_os_string();
        aside.push(".corrupt");
        if fs::rename(claimed, &aside).is_err() {
            let _ = fs::remove_file(claimed);
        }
    }

    /// Reads a report.
    pub(crate) fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    /// Removes a report that was delivered (or dropped).
    pub(crate) fn remove(&self, path: &Path) -> bool {
        fs::remove_file(path).is_ok()
    }

    /// Removes every file in the spool: waiting and claimed reports, partial writes and files
    /// set aside (an opt-out: nothing made under the old decision is kept). Returns how many
    /// reports were removed.
    pub(crate) fn clear(&self) -> usize {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let report = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("report-"));
            if path.is_file() && fs::remove_file(&path).is_ok() && report {
                removed += 1;
            }
        }
        removed
    }

    /// The number of reports on disk, waiting or being sent.
    pub(crate) fn count(&self) -> usize {
        fs::read_dir(&self.dir).map_or(0, |entries| {
            entries
                .flatten()
                .filter(|e| {
                    e.file_name().to_str().is_some_and(|n| {
                        n.starts_with("report-")
                            && !n.ends_with(".partial")
                            && !n.ends_with(".corrupt")
                    })
                })
                .count()
        })
    }

    /// Puts back in line the reports claimed by processes that no longer run (or claimed more
    /// than an hour ago). Returns how many.
    pub(crate) fn reclaim_abandoned(&self) -> usize {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut reclaimed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some((_, pid)) = name.rsplit_once(".sending-") else {
                continue;
            };
            let Ok(pid) = pid.parse::<u32>() else {
                continue;
            };
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > STALE_CLAIM);
            let abandoned = pid != std::process::id() && (!process_runs(pid) || old);
            if abandoned && fs::rename(&path, unclaimed_name(&path)).is_ok() {
                reclaimed += 1;
            }
        }
        reclaimed
    }
}

/// `report-….json.sending-123` → `report-….json`.
fn unclaimed_name(claimed: &Path) -> PathBuf {
    let text = claimed.as_os_str().to_string_lossy();
    match text.rsplit_once(".sending-") {
        Some((waiting, _)) => PathBuf::from(waiting),
        None => claimed.to_path_buf(),
    }
}

/// Whether process `pid` runs (Linux: `/proc/{pid}`). Elsewhere unknown, so assumed alive;
/// its claims are then taken back after an hour.
fn process_runs(pid: u32) -> bool {
    let proc = Path::new("/proc");
    if proc.join("self").exists() {
        proc.join(pid.to_string()).exists()
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spool(limits: SpoolLimits) -> Spool {
        let dir = std::env::temp_dir().join(format!("telemetry-spool-{}", uuid::Uuid::new_v4()));
        Spool::new(dir, limits)
    }

    #[test]
    fn oldest_first_and_never_past_the_caps() {
        let spool = spool(SpoolLimits {
            max_files: 3,
            max_bytes: 1000,
        });
        assert!(spool.list().unwrap().is_empty());
        for i in 0..5u128 {
            let claimed = spool
                .write_claimed(format!("{{\"n\":{i}}}").as_bytes(), 1000 + i)
                .unwrap()
                .unwrap();
            assert_eq!(spool.release(&claimed).unwrap(), usize::from(i >= 3));
        }
        let left = spool.list().unwrap();
        assert_eq!(left.len(), 3);
        assert_eq!(spool.read(&left[0].0).unwrap(), b"{\"n\":2}");
        assert!(
            spool
                .write_claimed(&vec![b'x'; 2000], 2000)
                .unwrap()
                .is_none(),
            "larger than the spool"
        );
        std::fs::write(spool.dir().join("stranger.txt"), b"x").unwrap();
        assert_eq!(
            spool.list().unwrap().len(),
            3,
            "the others are kept, strangers ignored"
        );
        std::fs::remove_dir_all(spool.dir()).unwrap();
    }

    #[test]
    fn a_report_is_claimed_once_and_abandoned_claims_come_back() {
        let spool = spool(SpoolLimits::default());
        let claimed = spool.write_claimed(b"{}", 1).unwrap().unwrap();
        assert!(
            spool.list().unwrap().is_empty(),
            "a claimed report is not waiting"
        );
        spool.release(&claimed).unwrap();
        let waiting = spool.list().unwrap()[0].0.clone();
        let mine = spool.claim(&waiting).unwrap();
        assert!(spool.claim(&waiting).is_none(), "claimed once");
        spool.unclaim(&mine).unwrap();
        // A claim by a process that no longer runs.
        let dead = waiting.with_extension("json.sending-4000000000");
        std::fs::rename(&waiting, &dead).unwrap();
        assert!(spool.list().unwrap().is_empty());
        assert_eq!(spool.reclaim_abandoned(), 1);
        assert_eq!(spool.list().unwrap().len(), 1);
        std::fs::remove_dir_all(spool.dir()).unwrap();
    }
}

//! Reports that could not be sent, kept on disk until the endpoint answers again.
//!
//! One file per report, named by its creation time, process and a sequence number so that the
//! oldest is sent first. Each file starts with a line that seals it with the installation's
//! key (`hash.key`), so a file this crate did not write (or one that was altered) is set aside,
//! never sent.
//!
//! # States of a report file
//!
//! | state | name | what a crash (kill -9, power loss) in it causes |
//! |---|---|---|
//! | written | `report-….json.partial`, locked by its writer | nothing sent; the next start removes it (its lock is gone) |
//! | claimed | `report-….json.sending-{token}`, locked by its owner | the next start finds the lock gone and puts it back in line: it is sent again, with the same report id |
//! | sent | claimed, and the collector has answered 2xx | the same as claimed: sent again, with the same report id; the collector drops the duplicate by that id |
//! | acknowledged | removed | nothing left |
//! | waiting | `report-….json` (its send failed) | nothing: it waits for the next attempt |
//!
//! A new report is written and claimed before its first attempt, so it is on disk whatever
//! happens to the process while it is sent. The owner of a claim is the process holding the
//! file's lock (`flock` on Unix, `LockFileEx` on Windows): the operating system releases it when
//! the process ends, however it ends, so a claim left by a dead process is recognized at once,
//! whatever its process id (a container restarted as PID 1 again included), and a live owner's
//! claim is never taken. Claims and partial writes count against the caps. After each rename
//! the directory is synced, so the state survives a power loss.
//!
//! The caps (files and bytes) bound everything in the spool, claims and partial writes of
//! every process included, except the one report each running process is sending now. When a
//! report's send fails, it joins the line and the oldest waiting reports are dropped to bring
//! the spool back within its caps (counted in the reporter's status and logged): the newest
//! are kept, since a report carries the counts since its process started. At start, claims of
//! ended processes come back and the caps are applied again, so a crash loop cannot grow the
//! spool. When the disk is full, the new report cannot be written and is not kept (the counts
//! it carries are in the next report of the same run).

use crate::privacy::anonymize::HashKey;
use crate::state::sync_dir;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// The spool's limits: [`SpoolLimits::new`] or the defaults (100 files, 10 MiB). Also read
/// from a configuration file (`Deserialize`, each field optional, unknown fields refused).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SpoolLimits {
    /// The most report files kept, waiting, being sent or being written (default 100).
    pub max_files: usize,
    /// The most bytes kept (default 10 MiB).
    pub max_bytes: u64,
}

impl SpoolLimits {
    /// At most `max_files` report files and `max_bytes` bytes.
    pub const fn new(max_files: usize, max_bytes: u64) -> Self {
        SpoolLimits {
            max_files,
            max_bytes,
        }
    }
}

impl Default for SpoolLimits {
    fn default() -> Self {
        SpoolLimits {
            max_files: 100,
            max_bytes: 10 << 20,
        }
    }
}

/// A partial write younger than this is left alone by [`Spool::recover`].
const YOUNG_PARTIAL: std::time::Duration = std::time::Duration::from_secs(10);

/// The first line of every spooled report, before its seal.
const SEAL_PREFIX: &str = "telemetry-spool 1 ";

/// A directory of unsent reports.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    limits: SpoolLimits,
    /// This process's claim suffix: `.sending-{token}`.
    claim_suffix: String,
    /// The locked files of this process's claims, by their current path.
    held: Mutex<HashMap<PathBuf, File>>,
    /// The installation's key (`hash.key` beside the spool), which seals the reports; loaded
    /// on first use.
    key: OnceLock<HashKey>,
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// What one look at the spool found.
#[derive(Default)]
struct Contents {
    /// Waiting reports, oldest first: `(path, size)`.
    waiting: Vec<(PathBuf, u64)>,
    /// Claimed or partially written report files (any process's).
    others: usize,
    /// Bytes of all report files.
    bytes: u64,
}

/// What [`Spool::recover`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// Claims of processes that ended, put back in line.
    pub(crate) reclaimed: usize,
    /// Partial writes of processes that ended, removed.
    pub(crate) removed: usize,
    /// Waiting reports dropped to bring the spool within its caps.
    pub(crate) dropped: usize,
}

impl Recovered {
    /// Says that reports left by a stopped process are back in line, if any are.
    pub(crate) fn log_reclaimed(&self) {
        if self.reclaimed > 0 {
            crate::diagnostics::diag!(
                info,
                "{} telemetry report(s) left by a stopped process are back in the spool",
                self.reclaimed
            );
        }
    }
}

impl Spool {
    pub(crate) fn new(dir: PathBuf, limits: SpoolLimits) -> Self {
        Spool {
            dir,
            limits,
            claim_suffix: format!(".sending-{}", uuid::Uuid::new_v4().simple()),
            held: Mutex::new(HashMap::new()),
            key: OnceLock::new(),
        }
    }

    /// The seal of `payload` under the installation's key (a per-run key if `hash.key`
    /// cannot be used: reports kept then are readable in this run only).
    fn seal(&self, payload: &[u8]) -> String {
        self.key
            .get_or_init(|| {
                self.dir
                    .parent()
                    .and_then(|state| {
                        HashKey::load_or_create(&state.join(crate::state::files::HASH_KEY)).ok()
                    })
                    .unwrap_or_else(HashKey::generate)
            })
            .seal(payload)
    }

    /// The spool's directory.
    #[cfg(test)]
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, File>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn contents(&self) -> io::Result<Contents> {
        let mut out = Contents::default();
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !name.starts_with("report-") || name.ends_with(".corrupt") {
                continue;
            }
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            out.bytes += size;
            if name.ends_with(".json") {
                out.waiting.push((path, size));
            } else if name.contains(".json.sending-") || name.ends_with(".partial") {
                out.others += 1;
            }
        }
        out.waiting.sort();
        Ok(out)
    }

    /// Reports waiting (not claimed), oldest first, as `(path, size)`. Other files (partial
    /// writes, claims, strangers) are left out.
    pub(crate) fn list(&self) -> io::Result<Vec<(PathBuf, u64)>> {
        Ok(self.contents()?.waiting)
    }

    fn new_name(unix_millis: u128) -> String {
        let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        format!(
            "report-{unix_millis:016}-{}-{seq:08}.json",
            std::process::id()
        )
    }

    /// Drops the oldest waiting reports until one more file of `incoming` bytes fits the caps
    /// (`incoming == 0`: until the spool is within them). Returns how many were dropped.
    fn make_room(&self, incoming: u64) -> io::Result<usize> {
        let Contents {
            mut waiting,
            others,
            mut bytes,
        } = self.contents()?;
        let adding = usize::from(incoming > 0);
        bytes += incoming;
        let mut dropped = 0;
        while !waiting.is_empty()
            && (waiting.len() + others + adding > self.limits.max_files
                || bytes > self.limits.max_bytes)
        {
            let (oldest, size) = waiting.remove(0);
            if fs::remove_file(&oldest).is_ok() {
                dropped += 1;
            }
            bytes -= size;
        }
        if dropped > 0 {
            sync_dir(&self.dir);
        }
        Ok(dropped)
    }

    /// Writes a report that is about to be sent, sealed and already claimed by this process,
    /// so that it is on disk whatever happens to the send. It does not push a waiting report
    /// out: a report that is delivered must not cost one that waits. Only when its send fails
    /// ([`release`](Self::release)) is room made for it. `None` for a report larger than the
    /// whole spool.
    pub(crate) fn write_claimed(
        &self,
        payload: &[u8],
        unix_millis: u128,
    ) -> io::Result<Option<PathBuf>> {
        let seal = format!("{SEAL_PREFIX}{}\n", self.seal(payload));
        let size = (seal.len() + payload.len()) as u64;
        if size > self.limits.max_bytes {
            return Ok(None);
        }
        fs::create_dir_all(&self.dir)?;
        let name = Self::new_name(unix_millis);
        let partial = self.dir.join(format!("{name}.partial"));
        let claimed = self.dir.join(format!("{name}{}", self.claim_suffix));
        let written = (|| {
            let mut file = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&partial)?;
            file.try_lock().map_err(io::Error::other)?;
            file.write_all(seal.as_bytes())?;
            file.write_all(payload)?;
            file.sync_all()?;
            fs::rename(&partial, &claimed)?;
            sync_dir(&self.dir);
            Ok::<File, io::Error>(file)
        })();
        match written {
            Ok(file) => {
                self.held().insert(claimed.clone(), file);
                Ok(Some(claimed))
            }
            Err(e) => {
                let _ = fs::remove_file(&partial);
                Err(e)
            }
        }
    }

    /// Puts a new report whose send failed in line, then drops the oldest waiting reports if
    /// the caps require it. Returns how many were dropped.
    pub(crate) fn release(&self, claimed: &Path) -> io::Result<usize> {
        self.unclaim(claimed)?;
        self.make_room(0)
    }

    /// Claims a waiting report for sending; `None` if another process holds it.
    pub(crate) fn claim(&self, path: &Path) -> Option<PathBuf> {
        let file = File::open(path).ok()?;
        file.try_lock().ok()?;
        let mut claimed = path.as_os_str().to_owned();
        claimed.push(&self.claim_suffix);
        let claimed = PathBuf::from(claimed);
        // Another process may have claimed and put it back between our look and our lock.
        fs::rename(path, &claimed).ok()?;
        sync_dir(&self.dir);
        self.held().insert(claimed.clone(), file);
        Some(claimed)
    }

    /// Puts a claimed report back in line (its send failed).
    pub(crate) fn unclaim(&self, claimed: &Path) -> io::Result<()> {
        let result = fs::rename(claimed, unclaimed_name(claimed));
        sync_dir(&self.dir);
        self.held().remove(claimed);
        result
    }

    /// Moves a file that is not a sealed report out of the way (`….json.corrupt`), so it
    /// neither leaves nor blocks the reports behind it.
    pub(crate) fn set_aside(&self, claimed: &Path) {
        let mut aside = unclaimed_name(claimed).into_os_string();
        aside.push(".corrupt");
        if fs::rename(claimed, &aside).is_err() {
            let _ = fs::remove_file(claimed);
        }
        self.held().remove(claimed);
    }

    /// The report in a spooled file, if its seal is this installation's and matches.
    pub(crate) fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let bytes = fs::read(path)?;
        let invalid = || io::Error::new(io::ErrorKind::InvalidData, "not a sealed report");
        let newline = bytes.iter().position(|b| *b == b'\n').ok_or_else(invalid)?;
        let (head, payload) = (&bytes[..newline], &bytes[newline + 1..]);
        let seal = std::str::from_utf8(head)
            .ok()
            .and_then(|head| head.strip_prefix(SEAL_PREFIX))
            .ok_or_else(invalid)?;
        if self.seal(payload) != seal {
            return Err(invalid());
        }
        Ok(payload.to_vec())
    }

    /// Removes a claimed report (delivered, refused, or dropped).
    pub(crate) fn remove(&self, path: &Path) -> bool {
        let removed = fs::remove_file(path).is_ok();
        sync_dir(&self.dir);
        self.held().remove(path);
        removed
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
        sync_dir(&self.dir);
        self.held().clear();
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

    /// At start: puts back in line the reports claimed by processes that ended (their lock is
    /// gone), removes their partial writes, and brings the spool within its caps (a crash loop
    /// must not grow it).
    pub(crate) fn recover(&self) -> Recovered {
        let mut out = Recovered::default();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return out;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let claim = name.starts_with("report-") && name.contains(".json.sending-");
            let partial = name.starts_with("report-") && name.ends_with(".partial");
            if !(claim || partial) || self.held().contains_key(&path) {
                continue;
            }
            // A writer creates its partial file and then locks it: a young one may be in
            // that instant. Partial files are cleaned once they are old.
            if partial
                && entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_none_or(|age| age < YOUNG_PARTIAL)
            {
                continue;
            }
            // Locked: its owner runs. Free: its owner ended.
            let Ok(file) = File::open(&path) else {
                continue;
            };
            if file.try_lock().is_err() {
                continue;
            }
            if claim {
                if fs::rename(&path, unclaimed_name(&path)).is_ok() {
                    out.reclaimed += 1;
                }
            } else if fs::remove_file(&path).is_ok() {
                out.removed += 1;
            }
        }
        sync_dir(&self.dir);
        out.dropped = self.make_room(0).unwrap_or(0);
        out
    }
}

/// `report-….json.sending-…` → `report-….json`.
fn unclaimed_name(claimed: &Path) -> PathBuf {
    let text = claimed.as_os_str().to_string_lossy();
    match text.rsplit_once(".sending-") {
        Some((waiting, _)) => PathBuf::from(waiting),
        None => claimed.to_path_buf(),
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
        assert_eq!(
            spool.write_claimed(&vec![b'x'; 2000], 2000).unwrap(),
            None,
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
        spool.unclaim(&claimed).unwrap();
        let waiting = spool.list().unwrap()[0].0.clone();
        let mine = spool.claim(&waiting).unwrap();
        assert!(spool.claim(&waiting).is_none(), "claimed once");
        // Another process (another spool on the same directory) cannot take a live claim.
        let other = Spool::new(spool.dir().to_path_buf(), SpoolLimits::default());
        assert_eq!(other.recover(), Recovered::default());
        spool.unclaim(&mine).unwrap();
        // A claim nobody holds (its process ended): whatever its name says, it comes back.
        let dead = waiting.with_extension("json.sending-1");
        std::fs::rename(&waiting, &dead).unwrap();
        let partial = spool.dir().join("report-1-1-1.json.partial");
        std::fs::write(&partial, b"half").unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&partial)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(spool.list().unwrap().is_empty());
        let recovered = other.recover();
        assert_eq!((recovered.reclaimed, recovered.removed), (1, 1));
        assert_eq!(spool.list().unwrap().len(), 1);
        std::fs::remove_dir_all(spool.dir()).unwrap();
    }

    /// A crash loop: each run dies with its report claimed. The next start takes them all
    /// back and applies the caps, whatever the process ids were (a container's PID 1 again).
    #[test]
    fn claims_of_dead_runs_come_back_within_the_caps() {
        let limits = SpoolLimits {
            max_files: 5,
            max_bytes: 10 << 20,
        };
        let dir = spool(limits.clone()).dir().to_path_buf();
        for run in 0..8u128 {
            let dying = Spool::new(dir.clone(), limits.clone());
            dying.write_claimed(b"{}", run).unwrap().unwrap();
            // The process ends: its locks go with it.
            drop(dying);
        }
        let next = Spool::new(dir.clone(), limits);
        let recovered = next.recover();
        assert_eq!(recovered.reclaimed, 8);
        assert_eq!(recovered.dropped, 3);
        assert_eq!(next.list().unwrap().len(), 5);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_not_sealed_by_this_installation_is_not_read() {
        let spool = spool(SpoolLimits::default());
        std::fs::create_dir_all(spool.dir()).unwrap();
        let forged = spool.dir().join("report-0000000000000001-1-00000001.json");
        std::fs::write(&forged, b"{\"smuggled\":\"alice@example.com\"}").unwrap();
        assert!(spool.read(&forged).is_err());
        std::fs::write(&forged, format!("{SEAL_PREFIX}00\n{{}}")).unwrap();
        assert!(spool.read(&forged).is_err());
        std::fs::remove_dir_all(spool.dir()).unwrap();
    }
}

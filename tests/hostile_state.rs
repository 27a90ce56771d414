//! Hostile state: an unwritable, missing, full or corrupted state directory and spool, a clock
//! that jumps, and two processes sharing one state directory. No crash, no lost spooled report,
//! and each problem logged once, with a message that names the path and the consequence.
//!
//! The tests that look at log lines run one at a time (`serial()`), so that every line logged
//! while one runs is its own. The two-process tests run this binary a second time, with
//! `TELEMETRY_SHARED_STATE` selecting the second process's part
//! (`child_process_sharing_the_state_dir`, which does nothing in a normal run).

mod events;
mod faults_server;

use events::event;
use faults_server::{
    FaultServer, Mode, each_delivered_once, eventually, eventually_within, log_lines, spool,
    temp_dir, trigger,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use telemetry_core::consent::{Consent, ConsentBuilder};
use telemetry_core::disclosure::Disclosure;
use telemetry_core::identity::Identity;
use telemetry_core::reporter::{Clock, FakeClock, HttpConfig, Reporter, ReporterBuilder};
use telemetry_core::{Application, StateDir};

const DAY: Duration = Duration::from_secs(24 * 3600);
const TEN_YEARS: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A number unique to each report of this process.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A number that makes each report unique.
#[derive(telemetry_core::Telemetry)]
#[telemetry(section = "seq")]
struct Seq {
    n: u64,
}

/// One test at a time for the tests that count log lines.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Consent enabled by the `--telemetry` flag, read from an empty environment (so a
/// `DO_NOT_TRACK` set where the tests run does not change them).
fn enabled() -> ConsentBuilder {
    ConsentBuilder::new()
        .environment(|_| None)
        .flag("--telemetry", Some("enable"))
}

fn builder(app: &'static str, url: &str, clock: &Arc<FakeClock>, state: &Path) -> ReporterBuilder {
    log_lines();
    let mut http = HttpConfig::new(url);
    http.retries = 0;
    http.connect_timeout = Duration::from_secs(1);
    http.total_timeout = Duration::from_secs(2);
    Reporter::builder(Application::new(app, "1.0.0"))
        .disclosure(
            Disclosure::new(app, "Test Ltd", "setting NO=1", "https://example.invalid")
                .to_stderr(false),
        )
        .consent(enabled())
        .endpoint(http)
        .clock(clock.clone())
        .initial_delay(DAY)
        .interval(DAY)
        .shutdown_timeout(Duration::from_secs(1))
        .state_dir(state)
        .section(|| Seq {
            n: SEQUENCE.fetch_add(1, Ordering::Relaxed),
        })
}

/// No reporter thread, sink or section provider of this process has panicked so far.
fn no_panic() {
    let panics = log_lines().problems_since(0, "panic");
    assert!(panics.is_empty(), "{panics:#?}");
}

/// Waits until the reporter has looked at its schedule at the clock's time, and a bit more.
fn settle(reporter: &Reporter, clock: &FakeClock) {
    let now = clock.now();
    eventually("the reporter to catch up with the clock", || {
        reporter.status().observed >= now
    });
    std::thread::sleep(Duration::from_millis(50));
    eventually("the reporter to be idle", || {
        reporter.status().observed >= now
    });
}

/// Sends `count` events and waits until each has been built (and sent, kept or dropped).
fn events(reporter: &Reporter, prefix: &str, count: u64) {
    let before = reporter.status();
    let settled =
        |s: &telemetry_core::reporter::ReporterStatus| s.delivered + s.spooled + s.dropped;
    for i in 0..count {
        reporter.send_event(&event(format!("{prefix}-{i}")));
    }
    // Built, sent, and settled: delivered, kept or dropped.
    eventually("the events' reports", || {
        let s = reporter.status();
        s.built == before.built + count
            && s.attempts >= before.built + count
            && settled(&s) >= settled(&before) + count
    });
    std::thread::sleep(Duration::from_millis(30));
}

/// A state directory the process cannot write: a directory with mode 0555, or, where
/// permissions are not enforced (root), a path under a regular file. Returns it, what it is,
/// and what to remove afterwards.
fn unwritable_dir() -> (PathBuf, &'static str, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("readonly");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let probe = dir.join("probe");
    if std::fs::write(&probe, b"x").is_err() {
        return (dir.clone(), "a directory with mode 0555", dir);
    }
    std::fs::remove_file(&probe).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = dir.join("a-regular-file");
    std::fs::write(&file, b"not a directory").unwrap();
    (
        file.join("state"),
        "a path under a regular file (mode 0555 is not enforced for root)",
        dir,
    )
}

fn remove(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_unwritable_state_dir_is_logged_once_and_nothing_breaks() {
    let _serial = serial();
    let lines = log_lines();
    let (state, how, cleanup) = unwritable_dir();
    println!("unwritable state directory: {how}: {}", state.display());
    // Log lines name the state directory, never its absolute path.
    let path = "telemetry state directory".to_owned();
    let mark = lines.mark();
    let server = FaultServer::start(Mode::Refuse);
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("unwritable", &server.url(), &clock, &state)
        .start()
        .unwrap();
    events(&reporter, "unwritable", 5);
    let status = reporter.status();
    assert_eq!((status.built, status.spooled), (5, 0), "{status:?}");

    // The endpoint is back: the reporter still works.
    server.set_mode(Mode::Ok);
    clock.advance(DAY + Duration::from_secs(1));
    eventually("a delivery", || reporter.status().delivered == 1);
    assert!(reporter.shutdown());

    let about_it = lines.problems_since(mark, &path);
    assert_eq!(about_it.len(), 1, "{about_it:#?}");
    let absolute = lines.problems_since(mark, &state.display().to_string());
    assert!(
        absolute.is_empty(),
        "no line names the absolute path: {absolute:#?}"
    );
    assert!(
        about_it[0].contains("not usable") && about_it[0].contains("not kept"),
        "{}",
        about_it[0]
    );

    // Consent read from it: an unreadable directory means off, said once.
    let mark = lines.mark();
    let decision = ConsentBuilder::new()
        .environment(|_| None)
        .resolve_in(Some(&StateDir::new(&state)))
        .unwrap();
    assert!(lines.problems_since(mark, &path).len() <= 1);
    assert_ne!(decision.state, Consent::Enabled);
    remove(&cleanup);
    no_panic();
}

#[test]
fn an_unwritable_state_dir_never_claims_reports_are_kept() {
    let _serial = serial();
    let lines = log_lines();
    let (state, _, cleanup) = unwritable_dir();
    let mark = lines.mark();
    let server = FaultServer::start(Mode::Refuse);
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("unkept", &server.url(), &clock, &state)
        .start()
        .unwrap();
    events(&reporter, "unkept", 3);
    drop(reporter);
    remove(&cleanup);
    let claims = lines.problems_since(mark, "kept for later");
    assert!(
        claims.is_empty(),
        "reports that were not kept are logged as kept: {claims:#?}"
    );
}

#[test]
fn a_missing_state_dir_is_created_on_demand() {
    let _serial = serial();
    let lines = log_lines();
    let root = temp_dir("missing");
    let state = root.join("deep/er/state");
    let mark = lines.mark();
    let server = FaultServer::start(Mode::Refuse);
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("missing", &server.url(), &clock, &state)
        .identity(Identity::Installation)
        .start()
        .unwrap();
    events(&reporter, "missing", 2);
    reporter.set_consent(Consent::Enabled).unwrap();
    eventually("the decision to be saved", || {
        state.join("consent.json").exists()
    });
    eventually("the reports to be kept", || spool(&state).len() == 3);
    for file in ["hash.key", "installation_id", "telemetry.json"] {
        assert!(state.join(file).is_file(), "{file}");
    }
    let waiting: Vec<String> = spool(&state).into_iter().map(|(_, b)| b).collect();
    server.set_mode(Mode::Ok);
    clock.advance(DAY + Duration::from_secs(1));
    eventually("the spool to be delivered", || spool(&state).is_empty());
    each_delivered_once(&server.accepted(), &waiting);
    assert!(reporter.shutdown());
    let problems = lines.problems_since(mark, "telemetry state directory");
    assert!(problems.is_empty(), "{problems:#?}");
    std::fs::remove_dir_all(&root).unwrap();
    no_panic();
}

/// A 64 KiB tmpfs, unmounted on drop; `None` (with a note) where mounting is not allowed.
struct TinyDisk(PathBuf);

impl TinyDisk {
    fn mount() -> Option<TinyDisk> {
        let dir = temp_dir("tiny-disk");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if mounted {
            Some(TinyDisk(dir))
        } else {
            let _ = std::fs::remove_dir(&dir);
            println!(
                "note: skipped: cannot mount a 64 KiB tmpfs here (needs root and mount rights)"
            );
            None
        }
    }

    /// Fills the disk up; returns the bytes written.
    fn fill(&self) -> usize {
        use std::io::Write;
        let mut file = std::fs::File::create(self.0.join("filler")).unwrap();
        let chunk = [0u8; 1024];
        let mut written = 0;
        while written < (1 << 20) && file.write_all(&chunk).is_ok() {
            written += chunk.len();
        }
        let _ = file.sync_all();
        written
    }

    fn free(&self) {
        std::fs::remove_file(self.0.join("filler")).unwrap();
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Files in `dir` left half written.
fn partial_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in walk(dir) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".partial") {
            out.push(name);
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn a_full_disk_loses_no_kept_report_and_leaves_no_half_files() {
    let _serial = serial();
    let Some(disk) = TinyDisk::mount() else {
        return;
    };
    let lines = log_lines();
    let server = FaultServer::start(Mode::Refuse);

    // Full before the reporter starts: the state directory is not usable, said once.
    let full = disk.0.join("full-from-the-start");
    let filled = disk.fill();
    let mark = lines.mark();
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("full", &server.url(), &clock, &full)
        .start()
        .unwrap();
    events(&reporter, "full", 3);
    assert_eq!(reporter.status().spooled, 0);
    drop(reporter);
    let about_it = lines.problems_since(mark, "telemetry state directory");
    assert_eq!(about_it.len(), 1, "{about_it:#?}");
    assert!(partial_files(&disk.0).is_empty());
    disk.free();
    println!(
        "full disk: {filled} bytes filled a 64 KiB tmpfs; a state directory made on it is not usable: {}",
        about_it[0]
    );

    // Full while running: reports that cannot be written are not kept; those kept before and
    // after are all delivered.
    let state = disk.0.join("fills-up");
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("fills", &server.url(), &clock, &state)
        .start()
        .unwrap();
    events(&reporter, "before", 2);
    assert_eq!(spool(&state).len(), 2);
    disk.fill();
    events(&reporter, "while-full", 3);
    assert_eq!(spool(&state).len(), 2, "nothing could be written");
    assert!(partial_files(&disk.0).is_empty(), "no half-written file");
    disk.free();
    events(&reporter, "after", 2);
    let waiting: Vec<String> = spool(&state).into_iter().map(|(_, b)| b).collect();
    assert_eq!(waiting.len(), 4);
    let status = reporter.status();
    assert_eq!(status.spooled, 4, "{status:?}");
    server.set_mode(Mode::Ok);
    clock.advance(DAY + Duration::from_secs(1));
    eventually("the spool to be delivered", || spool(&state).is_empty());
    each_delivered_once(&server.accepted(), &waiting);
    assert!(reporter.shutdown());
    println!(
        "full disk while running: 7 reports failed, 4 kept (2 before, 2 after the disk was full) and all 4 delivered, 3 could not be written"
    );
    drop(disk);
    no_panic();
}

#[test]
fn spool_write_failures_are_logged_once_naming_the_path() {
    let _serial = serial();
    let lines = log_lines();
    let state = temp_dir("spool-file-log");
    std::fs::write(
        state.join("spool"),
        b"a file where the spool directory goes",
    )
    .unwrap();
    let mark = lines.mark();
    let server = FaultServer::start(Mode::Refuse);
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("spool-file-log", &server.url(), &clock, &state)
        .start()
        .unwrap();
    events(&reporter, "spool-file-log", 5);
    drop(reporter);
    let about_keeping = lines.problems_since(mark, "cannot keep");
    std::fs::remove_dir_all(&state).unwrap();
    assert_eq!(
        about_keeping.len(),
        1,
        "one line for one problem: {about_keeping:#?}"
    );
    assert!(
        about_keeping[0].contains("`spool` in the telemetry state directory"),
        "the line names the spool: {}",
        about_keeping[0]
    );
}

#[test]
fn a_garbage_consent_file_means_off_said_once_until_decided_again() {
    let _serial = serial();
    let lines = log_lines();
    // Text that is not JSON, and bytes that are not even text.
    for garbage in [&b"{\"state\": \"enab"[..], b"\x00\xff\xfe\x80"] {
        let state = temp_dir("bad-consent");
        std::fs::write(state.join("consent.json"), garbage).unwrap();
        let resolve = || {
            ConsentBuilder::new()
                .environment(|_| None)
                .resolve_in(Some(&StateDir::new(&state)))
                .unwrap()
        };
        let mark = lines.mark();
        let decision = resolve();
        assert_eq!(decision.state, Consent::Disabled);
        let about_it =
            lines.problems_since(mark, "`consent.json` in the telemetry state directory");
        assert_eq!(about_it.len(), 1, "{about_it:#?}");
        assert!(about_it[0].contains("stays off"), "{}", about_it[0]);

        // Off: nothing leaves, however long it runs.
        let server = FaultServer::start(Mode::Ok);
        let clock = Arc::new(FakeClock::new());
        let reporter = builder("bad-consent", &server.url(), &clock, &state)
            .consent(ConsentBuilder::new().environment(|_| None))
            .start()
            .unwrap();
        for _ in 0..3 {
            clock.advance(DAY + Duration::from_secs(1));
            settle(&reporter, &clock);
        }
        assert_eq!(server.connections(), 0);
        // A new decision replaces the garbage.
        reporter.set_consent(Consent::Enabled).unwrap();
        clock.advance(DAY + Duration::from_secs(1));
        eventually("a delivery", || reporter.status().delivered >= 1);
        assert!(reporter.shutdown());
        let mark = lines.mark();
        assert_eq!(resolve().state, Consent::Enabled);
        assert!(lines.all_problems_since(mark).is_empty());
        std::fs::remove_dir_all(&state).unwrap();
    }
    no_panic();
}

#[test]
fn a_garbage_installation_id_is_replaced_with_one_line() {
    let _serial = serial();
    let lines = log_lines();
    let state = temp_dir("bad-id");
    std::fs::write(state.join("installation_id"), b"not-a-uuid\n").unwrap();
    let mark = lines.mark();
    let server = FaultServer::start(Mode::Ok);
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("bad-id", &server.url(), &clock, &state)
        .identity(Identity::Installation)
        .start()
        .unwrap();
    reporter.send_event(&event("bad-id"));
    eventually("a delivery", || reporter.status().delivered == 1);
    assert!(reporter.shutdown());
    let stored = std::fs::read_to_string(state.join("installation_id")).unwrap();
    let id = uuid::Uuid::parse_str(stored.trim()).expect("a new id is stored");
    let sent: serde_json::Value = serde_json::from_str(&server.accepted()[0]).unwrap();
    assert_eq!(sent["installation_id"], id.to_string());
    let about_it = lines.problems_since(mark, "installation id");
    assert_eq!(about_it.len(), 1, "{about_it:#?}");
    std::fs::remove_dir_all(&state).unwrap();
    no_panic();
}

#[test]
fn a_garbage_installation_id_is_replaced_and_logged_naming_the_file() {
    let _serial = serial();
    let lines = log_lines();
    for garbage in [&b"not-a-uuid"[..], b"\xff\xfe\x00\x80"] {
        let state = temp_dir("bad-id-path");
        let file = state.join("installation_id");
        std::fs::write(&file, garbage).unwrap();
        let mark = lines.mark();
        let id = telemetry_core::identity::installation_id(&StateDir::new(&state));
        let stored = std::fs::read_to_string(&file).unwrap_or_default();
        let about_it = lines.all_problems_since(mark);
        std::fs::remove_dir_all(&state).unwrap();
        let id = id.unwrap_or_else(|e| panic!("{garbage:?}: no id, and none ever will be: {e}"));
        assert_eq!(stored.trim(), id.to_string(), "{garbage:?}: replaced");
        assert_eq!(about_it.len(), 1, "{about_it:#?}");
        assert!(
            about_it[0].contains("`installation_id` in the telemetry state directory"),
            "the line names the file: {}",
            about_it[0]
        );
    }
}

#[test]
fn a_garbage_hash_key_is_said_once_and_reports_still_go_out() {
    let _serial = serial();
    let lines = log_lines();
    let state = temp_dir("bad-key");
    std::fs::write(state.join("hash.key"), b"0123 not hex at all").unwrap();
    let mark = lines.mark();
    let server = FaultServer::start(Mode::Ok);
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("bad-key", &server.url(), &clock, &state)
        .start()
        .unwrap();
    events(&reporter, "bad-key", 3);
    eventually("three deliveries", || reporter.status().delivered == 3);
    assert!(reporter.shutdown());
    let about_it = lines.problems_since(mark, "telemetry state directory");
    assert_eq!(about_it.len(), 1, "{about_it:#?}");
    assert!(about_it[0].contains("hash.key"), "{}", about_it[0]);
    std::fs::remove_dir_all(&state).unwrap();
    no_panic();
}

#[test]
fn a_garbage_or_empty_hash_key_is_replaced_and_reports_are_still_kept() {
    let _serial = serial();
    for contents in [&b"0123 not hex at all"[..], b""] {
        let state = temp_dir("bad-key-spool");
        std::fs::write(state.join("hash.key"), contents).unwrap();
        let server = FaultServer::start(Mode::Refuse);
        let clock = Arc::new(FakeClock::new());
        let reporter = builder("bad-key-spool", &server.url(), &clock, &state)
            .start()
            .unwrap();
        events(&reporter, "bad-key-spool", 2);
        let status = reporter.status();
        let kept = spool(&state).len();
        drop(reporter);
        let key = std::fs::read_to_string(state.join("hash.key")).unwrap_or_default();
        std::fs::remove_dir_all(&state).unwrap();
        assert_eq!(
            (status.spooled, kept),
            (2, 2),
            "hash.key {contents:?}: reports made while the endpoint is down are not kept"
        );
        assert_eq!(key.trim().len(), 64, "the key is replaced");
    }
}

/// Files that are not reports are left alone; a report half written by a process that ended
/// (no lock on it) is removed at start.
#[test]
fn strangers_are_left_alone_and_half_written_reports_cleaned_up() {
    let _serial = serial();
    let state = temp_dir("strangers");
    let spool_dir = state.join("spool");
    std::fs::create_dir_all(&spool_dir).unwrap();
    let strangers = [
        "notes.txt",
        "report-0000000000000001-1-00000001.json.1.abc.partial",
        "report-without-suffix",
    ];
    for name in strangers {
        std::fs::write(spool_dir.join(name), b"\x00 not a report").unwrap();
        // Left by a process that ended a minute ago.
        std::fs::File::options()
            .write(true)
            .open(spool_dir.join(name))
            .unwrap()
            .set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
            .unwrap();
    }
    let server = FaultServer::start(Mode::Refuse);
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("strangers", &server.url(), &clock, &state)
        .start()
        .unwrap();
    events(&reporter, "strangers", 2);
    let waiting: Vec<String> = spool(&state).into_iter().map(|(_, b)| b).collect();
    assert_eq!(waiting.len(), 2);
    server.set_mode(Mode::Ok);
    clock.advance(DAY + Duration::from_secs(1));
    eventually("the spool to be delivered", || spool(&state).is_empty());
    each_delivered_once(&server.accepted(), &waiting);
    assert!(reporter.shutdown());
    assert!(server.refused().is_empty(), "nothing else was sent");
    for name in strangers {
        let kept = spool_dir.join(name).exists();
        assert_eq!(!kept, name.ends_with(".partial"), "{name}");
    }
    std::fs::remove_dir_all(&state).unwrap();
    no_panic();
}

#[test]
fn a_corrupt_spool_file_neither_leaves_nor_blocks_the_spool() {
    let _serial = serial();
    let lines = log_lines();
    let state = temp_dir("corrupt-spool");
    let spool_dir = state.join("spool");
    std::fs::create_dir_all(&spool_dir).unwrap();
    // The oldest name, so it comes first.
    let corrupt = spool_dir.join("report-0000000000000001-1-00000000.json");
    std::fs::write(&corrupt, b"{\"schema_version\":1,\"instance_id\":\"trunc").unwrap();
    let server = FaultServer::start(Mode::Refuse);
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("corrupt-spool", &server.url(), &clock, &state)
        .start()
        .unwrap();
    events(&reporter, "corrupt-spool", 2);
    let waiting: Vec<String> = spool(&state)
        .into_iter()
        .filter(|(name, _)| !corrupt.ends_with(name))
        .map(|(_, b)| b)
        .collect();
    assert_eq!(waiting.len(), 2);
    let mark = lines.mark();
    server.set_mode(Mode::Ok);
    clock.advance(DAY + Duration::from_secs(1));
    settle(&reporter, &clock);
    let delivered = eventually_or(Duration::from_secs(3), || {
        waiting.iter().all(|w| server.accepted().contains(w))
    });
    drop(reporter);
    let sent_garbage = server.refused();
    let about_it = lines.problems_since(
        mark,
        corrupt.file_name().unwrap().to_string_lossy().as_ref(),
    );
    std::fs::remove_dir_all(&state).unwrap();
    assert!(
        sent_garbage.is_empty(),
        "a corrupt spool file was sent: {sent_garbage:?}"
    );
    assert!(
        delivered,
        "the reports behind the corrupt file were never delivered"
    );
    assert_eq!(about_it.len(), 1, "{about_it:#?}");
}

/// Waits (at most `within`) for `done`; whether it came.
fn eventually_or(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}

#[test]
fn a_spool_that_is_a_file_loses_nothing_else_and_breaks_nothing() {
    let _serial = serial();
    let state = temp_dir("spool-file");
    std::fs::write(
        state.join("spool"),
        b"a file where the spool directory goes",
    )
    .unwrap();
    let server = FaultServer::start(Mode::Refuse);
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("spool-file", &server.url(), &clock, &state)
        .start()
        .unwrap();
    events(&reporter, "spool-file", 3);
    let status = reporter.status();
    assert_eq!((status.built, status.spooled), (3, 0), "{status:?}");
    server.set_mode(Mode::Ok);
    clock.advance(DAY + Duration::from_secs(1));
    eventually("a delivery", || reporter.status().delivered == 1);
    assert!(reporter.shutdown());
    assert!(state.join("spool").is_file(), "the file is left as it was");
    std::fs::remove_dir_all(&state).unwrap();
    no_panic();
}

#[test]
fn a_clock_that_jumps_ten_years_sends_one_report_not_a_burst() {
    let _serial = serial();
    let state = temp_dir("clock-jump");
    let server = FaultServer::start(Mode::Refuse);
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("clock-jump", &server.url(), &clock, &state)
        .start()
        .unwrap();
    settle(&reporter, &clock);
    clock.advance(TEN_YEARS);
    eventually("one report", || reporter.status().spooled == 1);
    settle(&reporter, &clock);
    assert_eq!(
        reporter.status().built,
        1,
        "one report for ten years, not 3650"
    );

    server.set_mode(Mode::Ok);
    clock.advance(TEN_YEARS);
    eventually("the report and the spooled one", || {
        spool(&state).is_empty() && server.accepted().len() == 2
    });
    settle(&reporter, &clock);
    assert_eq!(reporter.status().built, 2);
    clock.advance(DAY + Duration::from_secs(1));
    eventually("the next day's report", || reporter.status().built == 3);
    settle(&reporter, &clock);
    assert_eq!(reporter.status().built, 3);
    assert_eq!(server.accepted().len(), 3);

    assert!(reporter.shutdown());

    // A jump during a `Retry-After` pause ends the pause.
    let state2 = temp_dir("clock-jump-retry");
    let retrying = FaultServer::start(Mode::Status(429, Some(3600)));
    let mut http = HttpConfig::new(retrying.url());
    http.retries = 1;
    http.total_timeout = Duration::from_secs(2);
    let clock2 = Arc::new(FakeClock::new());
    let reporter2 = builder("clock-jump-retry", &retrying.url(), &clock2, &state2)
        .endpoint(http)
        .start()
        .unwrap();
    reporter2.send_event(&event("jump"));
    eventually("the first answer", || retrying.finished() == 1);
    // Let the reporter start its pause (it counts from when it read the answer).
    std::thread::sleep(Duration::from_millis(100));
    clock2.advance(TEN_YEARS);
    // The retry, then the report that ten years made due.
    eventually("the retry", || retrying.requests() >= 2);
    eventually("the report to be kept", || reporter2.status().spooled == 1);
    let waiting = spool(&state2)
        .iter()
        .filter(|(name, _)| name.ends_with(".json"))
        .count();
    assert_eq!(waiting, 1, "one report waits (another may be in flight)");
    // The final report meets the same 429 and waits out the shutdown bound.
    let started = Instant::now();
    let finished = reporter2.shutdown();
    assert!(started.elapsed() < Duration::from_millis(1500));
    if !finished {
        // Abandoned at its bound: let it finish writing before the directory goes.
        std::thread::sleep(Duration::from_millis(500));
    }
    std::fs::remove_dir_all(&state2).unwrap();
    no_panic();
    std::fs::remove_dir_all(&state).unwrap();
}

#[test]
fn first_starts_racing_on_a_fresh_state_dir_both_get_the_key() {
    let _serial = serial();
    let root = temp_dir("key-race");
    let mut failures = Vec::new();
    for round in 0..300 {
        let dir = StateDir::new(root.join(round.to_string()));
        let barrier = Barrier::new(2);
        let results: Vec<std::io::Result<()>> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        telemetry_core::identity::install_hash_key(&dir)
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        failures.extend(results.into_iter().filter_map(Result::err));
    }
    std::fs::remove_dir_all(&root).unwrap();
    assert!(
        failures.is_empty(),
        "{} of 600 first starts found the state directory unusable: {:?}",
        failures.len(),
        failures.first().map(ToString::to_string)
    );
}

// --- Two processes sharing one state directory ---

const SHARED_ENV: &str = "TELEMETRY_SHARED_STATE";
const SHARED_REPORTS: u64 = 20;

/// The second process's part. Does nothing unless started by `two_processes`.
#[test]
fn child_process_sharing_the_state_dir() {
    let Ok(spec) = std::env::var(SHARED_ENV) else {
        return;
    };
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    let state = PathBuf::from(spec["state"].as_str().unwrap());
    let control = PathBuf::from(spec["control"].as_str().unwrap());
    let url = spec["url"].as_str().unwrap();
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("shared", url, &clock, &state).start().unwrap();
    for i in 0..SHARED_REPORTS {
        reporter.send_event(&event(format!("child-{i}")));
    }
    eventually_within(Duration::from_secs(20), "the child's reports", || {
        reporter.status().spooled == SHARED_REPORTS
    });
    std::fs::write(control.join("child-spooled"), b"").unwrap();
    eventually_within(Duration::from_secs(20), "the go-ahead", || {
        control.join("go").exists()
    });
    reporter.send_event(&event("child-back"));
    eventually_within(Duration::from_secs(20), "an empty spool", || {
        reporter.status().delivered >= 1 && spool(&state).is_empty()
    });
    let status = reporter.status();
    let finished = reporter.shutdown();
    println!(
        "CHILD {}",
        serde_json::json!({
            "built": status.built, "spooled": status.spooled,
            "delivered": status.delivered, "finished": finished,
        })
    );
}

/// Both processes spool while the server is down, then both drain when it is back. Returns
/// the spooled reports and the bodies the server accepted.
fn two_processes(name: &str) -> (Vec<String>, Vec<String>, String) {
    let state = temp_dir(name);
    let control = temp_dir(&format!("{name}-control"));
    let server = FaultServer::start(Mode::Refuse);
    let clock = Arc::new(FakeClock::new());
    // This process starts first, so the hash key exists before the second one starts.
    let reporter = builder("shared", &server.url(), &clock, &state)
        .start()
        .unwrap();
    let spec = serde_json::json!({
        "state": state, "control": control, "url": server.url(),
    });
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_sharing_the_state_dir",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(SHARED_ENV, spec.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for i in 0..SHARED_REPORTS {
        reporter.send_event(&event(format!("parent-{i}")));
    }
    eventually_within(Duration::from_secs(20), "this process's reports", || {
        reporter.status().spooled == SHARED_REPORTS
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while !control.join("child-spooled").exists() {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the second process did not spool: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let waiting: Vec<String> = spool(&state).into_iter().map(|(_, b)| b).collect();
    assert_eq!(waiting.len(), 2 * SHARED_REPORTS as usize, "all kept");

    // Back: both drain at once.
    server.set_mode(Mode::Ok);
    std::fs::write(control.join("go"), b"").unwrap();
    reporter.send_event(&event("parent-back"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the second process did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        status.success(),
        "the second process failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let child_line = stdout
        .lines()
        .find_map(|l| l.split_once("CHILD ").map(|(_, figures)| figures))
        .unwrap_or_else(|| panic!("the second process's figures: {stdout}"))
        .to_owned();
    eventually("an empty spool", || spool(&state).is_empty());
    assert!(reporter.shutdown());
    std::fs::remove_dir_all(&state).unwrap();
    std::fs::remove_dir_all(&control).unwrap();
    (waiting, server.accepted(), child_line)
}

#[test]
fn two_processes_sharing_a_state_dir_lose_nothing() {
    let _serial = serial();
    let (waiting, accepted, child) = two_processes("shared-lossless");
    let mut duplicates = 0;
    for body in &waiting {
        let times = accepted.iter().filter(|a| *a == body).count();
        assert!(times >= 1, "a spooled report was lost: {}", trigger(body));
        duplicates += times - 1;
    }
    println!(
        "two processes: {} reports spooled, all delivered, {duplicates} delivered twice; second process: {child}",
        waiting.len()
    );
    no_panic();
}

#[test]
fn two_processes_sharing_a_state_dir_deliver_each_report_once() {
    let _serial = serial();
    let (waiting, accepted, _) = two_processes("shared-once");
    each_delivered_once(&accepted, &waiting);
}

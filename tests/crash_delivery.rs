//! kill -9 at random points: delivery is at least once, a report sent again after a crash
//! carries the same id (so the collector keeps it once), and crash-restarts never grow the
//! spool past its caps. The reporter runs with the library's defaults (request timeouts,
//! retries, shutdown bound) in a child process of this test binary; the collector answers
//! after a random delay of up to 150 ms, so kills land before, during and after its answer,
//! and is down (503) every other run, so reports pile up in a spool capped at 5 files.
//! Before report ids, 20 kills gave 20 duplicates a collector could not tell apart.

mod events;
mod faults_server;

use events::event;
use faults_server::{
    FaultServer, Mode, defaults_reporter, eventually_within, spool_size, temp_dir,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use telemetry_core::reporter::{FakeClock, ReporterBuilder, SpoolLimits};

const CHILD_ENV: &str = "TELEMETRY_CRASH_CHILD";
const KILLS: usize = 20;
const LIMITS: SpoolLimits = SpoolLimits::new(5, 10 << 20);

fn builder(url: &str, state: &std::path::Path, clock: &Arc<FakeClock>) -> ReporterBuilder {
    defaults_reporter("crash-app", url, clock, state).spool_limits(LIMITS)
}

/// The child's part: reports as fast as events come, until it is killed. Does nothing unless
/// started by the test below.
#[test]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (state, url) = spec.split_once('\n').unwrap();
    // Which process id this run had (1 when started in a PID namespace of its own).
    let _ = std::fs::write(
        PathBuf::from(state).with_extension("pid"),
        std::process::id().to_string(),
    );
    let clock = Arc::new(FakeClock::new());
    let reporter = builder(url, &PathBuf::from(state), &clock).start().unwrap();
    for i in 0.. {
        reporter.send_event(&event(format!("crash-{i}")));
        std::thread::sleep(Duration::from_millis(3));
    }
}

/// A random number below `n`.
fn random_below(n: u64) -> u64 {
    (uuid::Uuid::new_v4().as_u128() as u64) % n
}

#[test]
fn twenty_kills_duplicate_no_report_id_and_keep_the_spool_within_its_caps() {
    twenty_kills(false);
}

/// The same, each run as PID 1 in a PID namespace of its own (as in a container restarted
/// again and again): every dead run had the same process id.
#[test]
fn twenty_kills_as_pid_1_keep_the_spool_within_its_caps() {
    twenty_kills(true);
}

fn twenty_kills(as_pid_1: bool) {
    let state = temp_dir(if as_pid_1 { "crash-pid1" } else { "crash" });
    let collector = FaultServer::start(Mode::OkAfter(Duration::from_millis(150)));
    let mut most_files = 0;
    for kill in 0..KILLS {
        // Every other run the collector is down (503): reports pile up in the spool.
        collector.set_mode(if kill % 2 == 0 {
            Mode::OkAfter(Duration::from_millis(150))
        } else {
            Mode::Status(503, None)
        });
        let exe = std::env::current_exe().unwrap();
        let mut command = if as_pid_1 {
            // unshare(1) from util-linux; killing it kills its child, PID 1 of the namespace.
            let mut c = Command::new("unshare");
            c.args(["--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL"])
                .arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let mut child = command
            .args(["--exact", "crash_child", "--nocapture"])
            .env(
                CHILD_ENV,
                format!("{}\n{}", state.display(), collector.url()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100 + random_below(400)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if as_pid_1 {
            let pid = std::fs::read_to_string(state.with_extension("pid")).unwrap_or_default();
            assert_eq!(pid, "1", "the run was not PID 1 in its own namespace");
        }
        // What the dead process left: its caps, plus the one report it was sending.
        most_files = most_files.max(spool_size(&state).0);
    }
    assert!(
        most_files <= LIMITS.max_files + 1,
        "the spool grew to {most_files} files through crash-restarts (cap {})",
        LIMITS.max_files
    );

    // A last start delivers what the killed processes left.
    collector.set_mode(Mode::OkAfter(Duration::from_millis(150)));
    let clock = Arc::new(FakeClock::new());
    let reporter = builder(&collector.url(), &state, &clock).start().unwrap();
    // Its first report is due after the initial delay, and one a day after; the kept ones
    // follow each. A report half written when a child was killed is removed once it is 10 s
    // old (it may be a live writer's before that), at a later drain.
    let mut last_day = Instant::now();
    clock.advance(Duration::from_secs(3601));
    eventually_within(Duration::from_secs(60), "an empty spool", || {
        if last_day.elapsed() > Duration::from_secs(1) {
            clock.advance(Duration::from_secs(24 * 3600));
            last_day = Instant::now();
        }
        spool_size(&state).0 == 0
    });
    assert!(reporter.shutdown());

    // The collector keeps each report once, by its id; a report received twice is the same
    // report, byte for byte.
    let mut by_id: HashMap<String, Vec<String>> = HashMap::new();
    for body in collector.accepted() {
        let report: serde_json::Value = serde_json::from_str(&body).unwrap();
        let id = report["report_id"].as_str().unwrap().to_owned();
        assert_ne!(id, uuid::Uuid::nil().to_string());
        by_id.entry(id).or_default().push(body);
    }
    let received: usize = by_id.values().map(Vec::len).sum();
    let sent_again = received - by_id.len();
    for (id, bodies) in &by_id {
        assert!(
            bodies.iter().all(|b| b == &bodies[0]),
            "report {id} came back with other contents"
        );
    }
    println!(
        "crash{}: {KILLS} kills, {received} reports received, {} distinct, {sent_again} sent again \
         after a crash and kept once by id, spool at most {most_files} files (cap {})",
        if as_pid_1 { " (each run PID 1)" } else { "" },
        by_id.len(),
        LIMITS.max_files
    );
    assert!(by_id.len() >= KILLS, "the children reported");
    std::fs::remove_dir_all(&state).unwrap();
    let _ = std::fs::remove_file(state.with_extension("pid"));
}

//! A child forked while other threads use the registry never deadlocks, and the reporter it
//! inherits is inert. Before the fork handlers, 26 of 40 children hung on their first new call
//! site or snapshot, and a child that dropped the inherited reporter blocked 5.2 s.
#![cfg(unix)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use telemetry_core::reporter::Reporter;
use telemetry_core::{Application, Bounded, count_usage, counter, snapshot, timed};

const CHILDREN: usize = 40;
/// Far above what a child needs (a few ms): only to turn a hang into a failure.
const HANG: Duration = Duration::from_secs(10);

/// Fresh processes in which a fork comes while another thread makes the library's first use.
const FIRST_USE_TRIALS: usize = 20;

/// Never called in the parent: its first call in a child registers it.
#[count_usage(name = "fork.child_site")]
fn first_called_in_the_child() {}

static INHERITED: Mutex<Option<Reporter>> = Mutex::new(None);

/// What each child does; its exit code says how it went.
fn child() -> i32 {
    let work = std::panic::catch_unwind(|| {
        first_called_in_the_child();
        let family = counter!(
            "fork.child_series",
            labels(n: Bounded<65535>),
            max_series = 1000
        )
        .unwrap();
        family.increment((Bounded::new(std::process::id() % 1000),));
        let snap = snapshot();
        assert_eq!(snap.counter("fork.child_site"), Some(1));
        let reporter = INHERITED.lock().unwrap().take();
        let dropping = Instant::now();
        drop(reporter);
        dropping.elapsed() < Duration::from_secs(1)
    });
    match work {
        Ok(true) => 0,
        Ok(false) => 2,
        Err(_) => 1,
    }
}

#[test]
fn forty_children_forked_while_another_thread_snapshots_never_hang() {
    let reporter = Reporter::builder(Application::new("fork-app", "1.0.0"))
        .start()
        .unwrap();
    *INHERITED.lock().unwrap() = Some(reporter);
    let stop = Arc::new(AtomicBool::new(false));
    let busy = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let family = counter!(
                "fork.parent_series",
                labels(n: Bounded<65535>),
                max_series = 100_000
            )
            .unwrap();
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let _ = snapshot();
                family.increment((Bounded::new(n % 60_000),));
                n += 1;
            }
        })
    };
    let mut outcomes = Vec::new();
    for _ in 0..CHILDREN {
        // SAFETY: the child only runs `child` and `_exit`s; the library's fork handlers make
        // its locks usable there.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = child();
            // SAFETY: ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(code) };
        }
        outcomes.push(wait_or_kill(pid));
    }
    stop.store(true, Ordering::Relaxed);
    busy.join().unwrap();
    let hung = outcomes.iter().filter(|o| o.is_none()).count();
    let failed: Vec<_> = outcomes.iter().flatten().filter(|c| **c != 0).collect();
    println!(
        "fork: {CHILDREN} children, {hung} hung, {} failed",
        failed.len()
    );
    assert_eq!(hung, 0, "children that hung");
    assert!(
        failed.is_empty(),
        "children that failed (exit codes): {failed:?}"
    );
    assert!(INHERITED.lock().unwrap().take().unwrap().shutdown());
}

/// The child's exit code, or `None` if it was still running after [`HANG`] (then killed).
fn wait_or_kill(pid: libc::pid_t) -> Option<i32> {
    let started = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: waits for our own child.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            return Some(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                -1
            });
        }
        if started.elapsed() > HANG {
            // SAFETY: our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[timed(name = "fork.timed")]
fn timed_call() {}

/// Run in a fresh process by the test below: a thread makes the process's first use of the
/// registry and the clock (the clock's calibration takes milliseconds) while the main thread
/// forks children that use both.
#[test]
#[ignore = "run in a fresh process by `a_fork_during_the_first_use_never_hangs_the_child`"]
fn first_use_trial() {
    let first_use = std::thread::spawn(|| {
        timed_call();
        first_called_in_the_child();
        let _ = snapshot();
    });
    let mut outcomes = Vec::new();
    while outcomes.len() < 5 || !first_use.is_finished() {
        // SAFETY: the child only runs library calls and `_exit`s.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            timed_call();
            let ok = snapshot().histogram("fork.timed").is_some();
            // SAFETY: ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        outcomes.push(wait_or_kill(pid));
    }
    first_use.join().unwrap();
    let hung = outcomes.iter().filter(|o| o.is_none()).count();
    assert_eq!(hung, 0, "children that hung, of {}", outcomes.len());
    assert!(outcomes.iter().all(|o| *o == Some(0)), "{outcomes:?}");
}

/// A one-time initialization (the fork handlers' registration, the clock's calibration) that
/// another thread was running at the fork would never end in the child: none may be.
#[test]
fn a_fork_during_the_first_use_never_hangs_the_child() {
    let exe = std::env::current_exe().unwrap();
    for trial in 0..FIRST_USE_TRIALS {
        let out = std::process::Command::new(&exe)
            .args(["--exact", "first_use_trial", "--ignored", "--nocapture"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "trial {trial}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

//! Callback gauges cannot hurt the program that takes a snapshot: a callback that takes a
//! snapshot itself, one that panics while the host's panic hook takes snapshots, and one that
//! blocks. Each case once failed: a stack overflow, an abort ("panicked while processing
//! panic"), and every `snapshot()` hanging.
//!
//! One test, so that the process-wide panic hook it installs sees only its own panics.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use telemetry_core::{CALLBACK_BUDGET, gauge, snapshot};

/// Generous: far above the budget, only to turn a hang into a failure.
const HANG: Duration = Duration::from_secs(10);

#[test]
fn callback_gauges_cannot_recurse_abort_or_block_the_caller() {
    // A callback that takes a snapshot: the inner one leaves callback gauges out.
    static INNER_SAW_ITSELF: AtomicBool = AtomicBool::new(true);
    gauge!(
        "callbacks.recursive",
        callback = || {
            let inner = snapshot();
            INNER_SAW_ITSELF.store(
                inner.gauge("callbacks.recursive").is_some(),
                Ordering::Relaxed,
            );
            7
        }
    )
    .unwrap();
    let outer = snapshot();
    assert_eq!(outer.gauge("callbacks.recursive"), Some(7));
    assert!(!INNER_SAW_ITSELF.load(Ordering::Relaxed));

    // A callback that panics, with a host panic hook that takes a snapshot: the hook runs
    // once, not on every snapshot, and nothing aborts.
    static HOOK_CALLS: AtomicUsize = AtomicUsize::new(0);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {
        HOOK_CALLS.fetch_add(1, Ordering::SeqCst);
        let _ = snapshot();
    }));
    gauge!(
        "callbacks.panicking",
        callback = || panic!("a callback gauge that panics")
    )
    .unwrap();
    for _ in 0..5 {
        let snap = snapshot();
        assert_eq!(snap.gauge("callbacks.panicking"), None);
        assert_eq!(snap.gauge("callbacks.recursive"), Some(7));
    }
    assert_eq!(
        HOOK_CALLS.load(Ordering::SeqCst),
        1,
        "disabled after one panic"
    );
    std::panic::set_hook(previous);

    // A callback that blocks: each snapshot waits at most the budget for it, the others are
    // still read, and it is back once it returns.
    let (release, blocked) = mpsc::channel::<()>();
    let blocked = Mutex::new(blocked);
    let slow_calls = Arc::new(AtomicUsize::new(0));
    let calls = slow_calls.clone();
    gauge!(
        "callbacks.blocking",
        callback = move || {
            calls.fetch_add(1, Ordering::SeqCst);
            let _ = blocked
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(60));
            3
        }
    )
    .unwrap();
    for _ in 0..3 {
        let started = Instant::now();
        let snap = snapshot();
        assert!(
            started.elapsed() < HANG,
            "a blocking callback hung the snapshot"
        );
        assert_eq!(snap.gauge("callbacks.blocking"), None);
        assert_eq!(snap.gauge("callbacks.recursive"), Some(7));
        // Past the budget since the stuck call started, whatever the scheduler did.
        std::thread::sleep(CALLBACK_BUDGET / 10);
    }
    assert_eq!(
        slow_calls.load(Ordering::SeqCst),
        1,
        "a stuck callback is not called again while it runs"
    );
    release.send(()).unwrap();
    let back = Instant::now();
    loop {
        std::thread::sleep(CALLBACK_BUDGET);
        // The stuck call returns; the next call finds no message and waits: release it too.
        let _ = release.send(());
        if snapshot().gauge("callbacks.blocking") == Some(3) {
            break;
        }
        assert!(back.elapsed() < HANG, "the gauge never came back");
    }
}

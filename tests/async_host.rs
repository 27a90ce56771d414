//! Telemetry never stalls a tokio `current_thread` runtime: a reporter started, used, dropped
//! and shut down on it, and `/telemetry` answered on it, with a callback gauge that takes
//! 50 ms. A task ticking every millisecond measures the longest stall. Before, a `Reporter`
//! dropped on the runtime blocked it for its whole shutdown bound (5.25 s), and `/telemetry`
//! scanned the disks (system facts) on the runtime's thread.

mod events;
mod faults_server;

use faults_server::{FaultServer, Mode, defaults_reporter, temp_dir};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use telemetry_core::export::endpoint::Endpoints;
use telemetry_core::reporter::{FakeClock, Reporter};
use telemetry_core::{Application, gauge};

/// The longest a runtime thread may be held by telemetry.
const MOST_STALL: Duration = Duration::from_millis(10);

fn reporter(url: &str, state: &std::path::Path, clock: &Arc<FakeClock>) -> Reporter {
    defaults_reporter("async-app", url, clock, state)
        .system_facts(telemetry_core::build_facts!())
        .start()
        .unwrap()
}

#[test]
fn a_current_thread_runtime_is_never_stalled_by_telemetry() {
    gauge!(
        "async.slow_gauge",
        callback = || {
            std::thread::sleep(Duration::from_millis(50));
            1
        }
    )
    .unwrap();
    let hung = FaultServer::start(Mode::Hang);
    let state = temp_dir("async");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let stall = runtime.block_on(async {
        let done = Arc::new(AtomicBool::new(false));
        let ticker = tokio::spawn({
            let done = done.clone();
            async move {
                let mut most = Duration::ZERO;
                let mut last = Instant::now();
                while !done.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    let now = Instant::now();
                    // A 1 ms sleep itself takes about 1 ms more.
                    most = most.max(now - last);
                    last = now;
                }
                most
            }
        });
        tokio::task::yield_now().await;
        let clock = Arc::new(FakeClock::new());
        let first = Arc::new(reporter(&hung.url(), &state, &clock));
        // A report whose request hangs.
        clock.advance(Duration::from_secs(3601));
        let endpoints =
            Endpoints::new(Application::new("async-app", "1.0.0")).with_reporter(first.clone());
        let router = telemetry_core::serve::router::<()>(endpoints);
        for _ in 0..5 {
            let request = axum::http::Request::builder()
                .uri("/telemetry?details_level=3&anonymize=true")
                .body(axum::body::Body::empty())
                .unwrap();
            let answer = tower::ServiceExt::oneshot(router.clone(), request)
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(router);
        // Dropped on the runtime: it must not wait for the hung request.
        drop(Arc::try_unwrap(first).ok().expect("the only owner"));
        // And the async shutdown of a second one.
        let second = reporter(&hung.url(), &state, &Arc::new(FakeClock::new()));
        assert!(second.shutdown_async().await);
        tokio::time::sleep(Duration::from_millis(20)).await;
        done.store(true, Ordering::Relaxed);
        ticker.await.unwrap()
    });
    println!("async: the longest stall of a current_thread runtime: {stall:?}");
    assert!(
        stall <= MOST_STALL + Duration::from_millis(2),
        "telemetry stalled the runtime for {stall:?}"
    );
    let _ = std::fs::remove_dir_all(&state);
}

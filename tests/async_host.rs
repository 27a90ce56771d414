//! Telemetry never stalls a tokio `current_thread` runtime: reporters used, dropped and shut
//! down on it, and `/telemetry` answered on it, with a callback gauge that takes 50 ms; each
//! poll of a telemetry future and each call is timed on the runtime's thread. Before, a
//! `Reporter` dropped on the runtime blocked it for its whole shutdown bound (5.25 s), and
//! `/telemetry` scanned the disks (system facts) on the runtime's thread.

mod events;
mod faults_server;

use faults_server::{FaultServer, Mode, defaults_reporter, temp_dir};
use std::sync::Arc;
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

/// Runs `future` to completion, and says the longest any one of its polls held the thread.
async fn measured<F: std::future::Future>(future: F) -> (F::Output, Duration) {
    let mut future = std::pin::pin!(future);
    let mut most = Duration::ZERO;
    let output = std::future::poll_fn(|cx| {
        let started = Instant::now();
        let poll = future.as_mut().poll(cx);
        most = most.max(started.elapsed());
        poll
    })
    .await;
    (output, most)
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
    // Reporters are made while the program sets up (their start reads and writes the state
    // directory); the ticker then watches them being used, dropped and shut down.
    let clock = Arc::new(FakeClock::new());
    let (first, second) = runtime.block_on(async {
        (
            Arc::new(reporter(&hung.url(), &state, &clock)),
            reporter(&hung.url(), &state, &Arc::new(FakeClock::new())),
        )
    });
    let stall = runtime.block_on(async {
        let mut most = Duration::ZERO;
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
            let (answer, held) =
                measured(tower::ServiceExt::oneshot(router.clone(), request)).await;
            assert_eq!(answer.unwrap().status(), 200);
            most = most.max(held);
        }
        drop(router);
        // Dropped on the runtime: it must not wait for the hung request.
        let dropping = Instant::now();
        drop(Arc::try_unwrap(first).ok().expect("the only owner"));
        most = most.max(dropping.elapsed());
        // And the async shutdown of a second one.
        let (finished, held) = measured(second.shutdown_async()).await;
        assert!(finished);
        most.max(held)
    });
    println!("async: the longest a telemetry call held the runtime's thread: {stall:?}");
    assert!(
        stall <= MOST_STALL,
        "telemetry held the runtime's thread for {stall:?}"
    );
    let _ = std::fs::remove_dir_all(&state);
}

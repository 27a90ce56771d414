//! The shutdown bound is a hard bound with the library's defaults (a 20 s request timeout, a
//! 5 s shutdown bound), and a hung endpoint costs no counts: the final report is on disk before
//! its network attempt and is delivered at the next start. Before, a send stuck on an endpoint
//! that accepts and never answers kept the reporter's thread for its whole 20 s timeout,
//! `shutdown()` returned `false` after 5.25 s, and the counts made after the stuck report were
//! lost. Only the clock is fake.

mod events;
mod faults_server;

use faults_server::{FaultServer, Mode, defaults_reporter, eventually, temp_dir};
use std::sync::Arc;
use std::time::{Duration, Instant};
use telemetry_core::count_usage;
use telemetry_core::reporter::{FakeClock, ReporterBuilder};

/// The library's default shutdown bound (`ReporterBuilder::shutdown_timeout`).
const DEFAULT_BOUND: Duration = Duration::from_secs(5);

#[count_usage(name = "shutdown.calls")]
fn call() {}

fn builder(url: &str, clock: &Arc<FakeClock>, state: &std::path::Path) -> ReporterBuilder {
    defaults_reporter("shutdown-app", url, clock, state)
}

/// How to end the reporter.
#[derive(Clone, Copy, Debug)]
enum End {
    Shutdown,
    Drop,
}

fn hung_endpoint_costs_no_counts(end: End) {
    let state = temp_dir(&format!("shutdown-{end:?}"));
    let hung = FaultServer::start(Mode::Hang);
    let clock = Arc::new(FakeClock::new());
    let reporter = builder(&hung.url(), &clock, &state).start().unwrap();
    for _ in 0..1_000 {
        call();
    }
    // The first report's request hangs: the endpoint accepts and never answers.
    clock.advance(Duration::from_secs(3601));
    eventually("the stuck request", || hung.connections() >= 1);
    for _ in 0..99_000 {
        call();
    }
    let started = Instant::now();
    let finished = match end {
        End::Shutdown => reporter.shutdown(),
        End::Drop => {
            drop(reporter);
            true
        }
    };
    let took = started.elapsed();
    println!("shutdown ({end:?}) with a hung endpoint and the default bound: {took:?}");
    assert!(finished, "the reporter finished within its bound");
    assert!(
        took <= DEFAULT_BOUND + Duration::from_millis(50),
        "{took:?} is past the {DEFAULT_BOUND:?} bound"
    );

    // The next start delivers what the hung endpoint never acknowledged: the final report
    // carries all 100,000 calls.
    let up = FaultServer::start(Mode::Ok);
    let clock = Arc::new(FakeClock::new());
    let next = builder(&up.url(), &clock, &state).start().unwrap();
    clock.advance(Duration::from_secs(3601));
    eventually("the kept reports", || {
        up.accepted().iter().any(|body| {
            let report: serde_json::Value = serde_json::from_str(body).unwrap();
            report["trigger"] == "shutdown"
                && report["metrics"]["counters"]["shutdown.calls"]["series"][0]["value"]
                    .as_u64()
                    .is_some_and(|v| v >= 100_000)
        })
    });
    assert!(next.shutdown());
    std::fs::remove_dir_all(&state).unwrap();
}

#[test]
fn shutdown_with_a_hung_endpoint_keeps_its_bound_and_every_count() {
    hung_endpoint_costs_no_counts(End::Shutdown);
}

#[test]
fn drop_with_a_hung_endpoint_keeps_its_bound_and_every_count() {
    hung_endpoint_costs_no_counts(End::Drop);
}

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

/// A local sink that holds the reporter's thread in its first report until released.
struct HoldFirst {
    entered: std::sync::Mutex<Option<std::sync::mpsc::Sender<()>>>,
    release: std::sync::Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

impl telemetry_core::Sink for HoldFirst {
    fn send(&self, _: &telemetry_core::Report) -> Result<(), telemetry_core::SinkError> {
        if let Some(entered) = self.entered.lock().unwrap().take() {
            let _ = entered.send(());
            if let Some(release) = self.release.lock().unwrap().take() {
                let _ = release.recv();
            }
        }
        Ok(())
    }
}

#[test]
fn events_waiting_at_shutdown_leave_before_the_final_report() {
    let receiver = telemetry_core::testing::Receiver::start().unwrap();
    let state = temp_dir("shutdown-events");
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let reporter = builder(&receiver.url(), &Arc::new(FakeClock::new()), &state)
        .sink(HoldFirst {
            entered: std::sync::Mutex::new(Some(entered_tx)),
            release: std::sync::Mutex::new(Some(release_rx)),
        })
        .start()
        .unwrap();
    // The first event's report holds the reporter's thread; two more wait in line.
    reporter.send_event(&events::event("first"));
    entered.recv_timeout(Duration::from_secs(10)).unwrap();
    reporter.send_event(&events::event("second"));
    reporter.send_event(&events::event("third"));
    let stopping = std::thread::spawn(move || reporter.shutdown());
    // Long enough for `shutdown` to have asked; the order is checked below either way.
    std::thread::sleep(Duration::from_millis(100));
    release.send(()).unwrap();
    assert!(stopping.join().unwrap(), "within the shutdown bound");
    let triggers: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| events::trigger(&String::from_utf8_lossy(&r.body)))
        .collect();
    assert_eq!(
        triggers,
        ["event:first", "event:second", "event:third", "shutdown"],
        "every waiting event, then the final report"
    );
    let _ = std::fs::remove_dir_all(&state);
}

//! Fault injection against a real loopback server (tests/faults_server): connection refused,
//! accept-then-hang, a trickled answer, 500 and 429 with `Retry-After`, oversized and malformed
//! answers, TLS to a server that does not speak it, and a name that does not resolve.
//!
//! For each fault: the host never waits (100,000 instrumented calls made while the reporter is
//! stuck are all counted, and the reporter's own API returns at once), the spool stays within
//! its caps, every report that failed is spooled and delivered exactly once when the endpoint
//! is back, and shutdown keeps its bound. Nothing here times the instrumented calls.
//!
//! `cargo test --test faults -- --nocapture` prints the figures of each fault.

mod events;
mod faults_server;

use events::event;
use faults_server::{
    FaultServer, Mode, OVERSIZED_PROBE, each_delivered_once, eventually, eventually_within,
    log_lines, spool, spool_size, temp_dir, trigger,
};
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use telemetry_core::consent::{Consent, ConsentBuilder};
use telemetry_core::disclosure::Disclosure;
use telemetry_core::reporter::{
    Clock, FakeClock, HttpConfig, Reporter, ReporterBuilder, SpoolLimits,
};
use telemetry_core::testing::capture;
use telemetry_core::{Application, count_usage};

const DAY: Duration = Duration::from_secs(24 * 3600);
/// The reporter's total timeout per request in these tests.
const TOTAL_TIMEOUT: Duration = Duration::from_secs(1);
/// The shutdown bound in these tests.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(1);
/// What `shutdown()` may take: the bound, and a generous margin for a loaded machine.
const SHUTDOWN_MAX: Duration = Duration::from_millis(1500);
/// A generous bound for the reporter's API (never the instrumented calls).
const API_MAX: Duration = Duration::from_millis(100);
/// The host's calls made while the reporter is stuck.
const HOST_CALLS: u64 = 100_000;
/// The spool's caps in the per-fault runs.
const LIMITS: SpoolLimits = SpoolLimits::new(10, 1 << 20);
/// A name under the `.invalid` top-level domain, which never resolves (RFC 6761).
const UNRESOLVABLE: &str = "https://telemetry.invalid/report";

/// The host's instrumented function.
#[count_usage(name = "faults.host_call")]
fn host_call(x: u64) -> u64 {
    x.rotate_left(7) ^ 0x5555
}

/// A number unique to each report of this process, so that two reports never look the same.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A number that makes each report unique.
#[derive(telemetry_core::Telemetry)]
#[telemetry(section = "seq")]
struct Seq {
    n: u64,
}

/// Consent enabled by the `--telemetry` flag, read from an empty environment (so a
/// `DO_NOT_TRACK` set where the tests run does not change them).
fn enabled() -> ConsentBuilder {
    ConsentBuilder::new()
        .environment(|_| None)
        .flag("--telemetry", Some("enable"))
}

fn http(url: &str) -> HttpConfig {
    let mut http = HttpConfig::new(url);
    http.retries = 0;
    http.connect_timeout = TOTAL_TIMEOUT;
    http.total_timeout = TOTAL_TIMEOUT;
    http
}

fn builder(
    app: &'static str,
    http: HttpConfig,
    clock: &Arc<FakeClock>,
    state: &Path,
) -> ReporterBuilder {
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
        .shutdown_timeout(SHUTDOWN_BOUND)
        .state_dir(state)
        .spool_limits(LIMITS)
        .section(|| Seq {
            n: SEQUENCE.fetch_add(1, Ordering::Relaxed),
        })
}

/// While the reporter is stuck: the host's calls all complete and are all counted, and the
/// reporter's API returns at once. Sends one event and enables consent (which, before the
/// initial delay, asks for a report at once): two reports.
fn host_never_waits(reporter: &Reporter, name: &str) {
    let snap = capture(|| {
        let mut acc = 0;
        for i in 0..HOST_CALLS {
            acc ^= host_call(black_box(i));
        }
        black_box(acc);
    });
    assert_eq!(snap.counter("faults.host_call"), Some(HOST_CALLS));
    let started = Instant::now();
    reporter.send_event(&event(format!("{name}-1")));
    let event = started.elapsed();
    let started = Instant::now();
    reporter.set_consent(Consent::Enabled).unwrap();
    let consent = started.elapsed();
    let started = Instant::now();
    let _ = reporter.status();
    let status = started.elapsed();
    assert!(
        event < API_MAX && consent < API_MAX && status < API_MAX,
        "{name}: send_event {event:?}, set_consent {consent:?}, status {status:?}"
    );
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    /// `http://127.0.0.1:PORT`.
    Http,
    /// `https://127.0.0.1:PORT` to a server that never speaks TLS.
    Https,
    /// A name that never resolves.
    Unresolvable,
}

/// What one fault run measured.
struct Outcome {
    server: FaultServer,
    /// Requests the reporter made while the fault lasted.
    attempts: u64,
    /// Reports that failed and went to the spool.
    spooled: usize,
    /// Of those, delivered exactly once when the endpoint was back.
    delivered_later: usize,
    /// Reports delivered in spite of the fault (a 2xx with a broken body).
    delivered_anyway: u64,
    /// The most files and bytes seen in the spool.
    most_spooled: (usize, u64),
    /// How long `shutdown()` took under the fault, and what it returned.
    shutdown: (Duration, bool),
    /// Real time from the first report to its failure.
    first_failure: Duration,
}

fn delivers_anyway(mode: &Mode) -> bool {
    matches!(
        mode,
        Mode::Oversized(_) | Mode::NotJson | Mode::TruncatedChunked
    )
}

/// Runs the reporter against `mode` from start to shutdown, then restarts it on the same state
/// directory against a working endpoint.
fn run_fault(name: &'static str, mode: Mode, target: Target) -> Outcome {
    let server = FaultServer::start(mode.clone());
    let url = match target {
        Target::Http => server.url(),
        Target::Https => server.https_url(),
        Target::Unresolvable => UNRESOLVABLE.to_owned(),
    };
    let anyway = delivers_anyway(&mode);
    let lines = log_lines();
    let state = temp_dir(name);
    let clock = Arc::new(FakeClock::new());
    let reporter = builder(name, http(&url), &clock, &state).start().unwrap();
    let mut most = (0, 0);
    let watch = |most: &mut (usize, u64)| {
        let (files, bytes) = spool_size(&state);
        assert!(
            files <= LIMITS.max_files && bytes <= LIMITS.max_bytes,
            "{name}: spool at {files} files, {bytes} bytes"
        );
        *most = (most.0.max(files), most.1.max(bytes));
    };

    // 1. Reports made while the fault lasts: one event, then (while it is stuck) another
    //    event and a consent decision that asks for a report at once.
    let started = Instant::now();
    reporter.send_event(&event(format!("{name}-0")));
    eventually("a first attempt", || reporter.status().attempts >= 1);
    host_never_waits(&reporter, name);
    let made = 3;
    let mut first_failure = None;
    eventually_within(
        Duration::from_secs(10) + TOTAL_TIMEOUT * made as u32,
        "every report to be done",
        || {
            watch(&mut most);
            let s = reporter.status();
            if first_failure.is_none() && (s.spooled >= 1 || s.delivered >= 1) {
                first_failure = Some(started.elapsed());
            }
            if anyway {
                s.delivered == made
            } else {
                s.spooled == made
            }
        },
    );
    let status = reporter.status();
    let attempts = status.attempts;
    assert_eq!(status.built, made, "{name}: {status:?}");
    assert_eq!(status.dropped, 0, "{name}: {status:?}");
    let mut spooled = 0;
    let mut delivered_later = 0;
    if anyway {
        assert_eq!(status.spooled, 0, "{name}: a 2xx is a delivery");
        assert_eq!(spool(&state).len(), 0);
        assert_eq!(server.accepted().len(), made as usize);
    } else {
        assert_eq!(status.delivered, 0, "{name}: {status:?}");
        assert!(status.last_error.is_some(), "{name}: {status:?}");
        spooled += made as usize;
    }

    // 2. The endpoint comes back (same address): the next report, then every spooled one.
    if target == Target::Http && !anyway {
        let waiting: Vec<String> = spool(&state).into_iter().map(|(_, body)| body).collect();
        assert_eq!(
            waiting.len(),
            made as usize,
            "{name}: every failed report is kept"
        );
        server.set_mode(Mode::Ok);
        clock.advance(DAY + Duration::from_secs(1));
        eventually("the spool to be delivered", || {
            watch(&mut most);
            spool(&state).is_empty() && reporter.status().delivered == made + 1
        });
        each_delivered_once(&server.accepted(), &waiting);
        delivered_later += waiting.len();
        server.set_mode(mode.clone());
    }

    // 3. The fault again, and shutdown with a report in flight.
    let before = reporter.status();
    reporter.send_event(&event(format!("{name}-late")));
    eventually("the late report's attempt", || {
        reporter.status().attempts > before.attempts
    });
    let started = Instant::now();
    let finished = reporter.shutdown();
    let took = started.elapsed();
    assert!(
        took < SHUTDOWN_MAX,
        "{name}: shutdown took {took:?} (bound {SHUTDOWN_BOUND:?})"
    );
    if !anyway {
        // A reporter abandoned at its bound finishes on its own: wait (bounded) for it.
        let expected = if target == Target::Http {
            2
        } else {
            made as usize + 2
        };
        eventually_within(
            TOTAL_TIMEOUT * 2 + Duration::from_secs(3),
            "the late and final reports",
            || spool(&state).len() == expected,
        );
        spooled += 2;
        let triggers: Vec<String> = spool(&state).iter().map(|(_, b)| trigger(b)).collect();
        assert!(
            triggers.contains(&format!("event:{name}-late"))
                && triggers.contains(&"shutdown".into()),
            "{name}: {triggers:?}"
        );
    } else {
        if !finished {
            std::thread::sleep(TOTAL_TIMEOUT * 2);
        }
        // The late report was delivered; the final one too, unless shutdown ran out of time.
        spooled += spool(&state).len();
    }
    watch(&mut most);

    // 4. A restart on the same state directory, with a working endpoint.
    let waiting: Vec<String> = spool(&state).into_iter().map(|(_, body)| body).collect();
    let fixed = match target {
        Target::Http => {
            server.set_mode(Mode::Ok);
            None
        }
        _ => Some(FaultServer::start(Mode::Ok)),
    };
    let working = fixed.as_ref().unwrap_or(&server);
    let clock = Arc::new(FakeClock::new());
    let reporter = builder(name, http(&working.url()), &clock, &state)
        .start()
        .unwrap();
    reporter.send_event(&event(format!("{name}-back")));
    eventually("the spool to be delivered after the restart", || {
        spool(&state).is_empty() && reporter.status().delivered == 1 + waiting.len() as u64
    });
    each_delivered_once(&working.accepted(), &waiting);
    delivered_later += waiting.len();
    assert!(reporter.shutdown(), "{name}: a healthy shutdown is in time");
    std::fs::remove_dir_all(&state).unwrap();
    assert_eq!(delivered_later, spooled, "{name}: reports lost");
    let panics = lines.problems_since(0, "panic");
    assert!(panics.is_empty(), "{panics:#?}");

    let outcome = Outcome {
        server,
        attempts,
        spooled,
        delivered_later,
        delivered_anyway: if anyway { made } else { 0 },
        most_spooled: most,
        shutdown: (took, finished),
        first_failure: first_failure.unwrap_or_default(),
    };
    println!(
        "fault {name}: {} attempts under the fault, {} reports spooled, {} delivered later, {} lost, {} delivered despite the fault; spool at most {} files / {} bytes (caps {} / {}); first report done after {:?}; shutdown {:?} -> {}; {} host calls counted",
        outcome.attempts,
        outcome.spooled,
        outcome.delivered_later,
        outcome.spooled - outcome.delivered_later,
        outcome.delivered_anyway,
        outcome.most_spooled.0,
        outcome.most_spooled.1,
        LIMITS.max_files,
        LIMITS.max_bytes,
        outcome.first_failure,
        outcome.shutdown.0,
        outcome.shutdown.1,
        HOST_CALLS,
    );
    outcome
}

#[test]
fn connection_refused() {
    let out = run_fault("refused", Mode::Refuse, Target::Http);
    assert_eq!(out.spooled, 5);
}

#[test]
fn accept_then_hang() {
    let out = run_fault("hang", Mode::Hang, Target::Http);
    assert_eq!(out.spooled, 5);
    assert!(out.server.connections() >= 4, "every attempt connected");
    assert_eq!(out.server.requests(), out.server.accepted().len());
}

#[test]
fn slow_trickle_answer() {
    // About 90 bytes of answer at one byte every 50 ms: 4.5 s, against a 1 s total timeout.
    let out = run_fault(
        "trickle",
        Mode::Trickle(Duration::from_millis(50)),
        Target::Http,
    );
    assert_eq!(out.spooled, 5);
    assert!(
        out.server.refused().len() >= 3,
        "the trickled answers were cut off"
    );
}

#[test]
fn status_500_with_retry_after() {
    let out = run_fault("status500", Mode::Status(500, Some(30)), Target::Http);
    assert_eq!(out.spooled, 5);
    assert!(out.server.refused().len() >= 4);
}

#[test]
fn status_429_with_retry_after() {
    let out = run_fault("status429", Mode::Status(429, Some(30)), Target::Http);
    assert_eq!(out.spooled, 5);
}

#[test]
fn oversized_answer_is_read_at_most_64_kib_and_counts_as_delivered() {
    let out = run_fault("oversized", Mode::Oversized(10 << 20), Target::Http);
    assert_eq!(out.delivered_anyway, 3);
    let hangups = out.server.hangups();
    assert!(hangups.len() >= 4, "{hangups:?}");
    for (sent, hung_up) in hangups {
        assert!(
            hung_up && sent <= OVERSIZED_PROBE,
            "the client kept reading a 10 MiB answer: {sent} bytes sent, hung up: {hung_up}"
        );
    }
}

#[test]
fn answer_that_is_not_json_counts_as_delivered() {
    let out = run_fault("notjson", Mode::NotJson, Target::Http);
    assert_eq!(out.delivered_anyway, 3);
}

#[test]
fn truncated_chunked_answer_counts_as_delivered() {
    let out = run_fault("chunked", Mode::TruncatedChunked, Target::Http);
    assert_eq!(out.delivered_anyway, 3);
}

#[test]
fn garbage_status_line() {
    let out = run_fault("garbage-status", Mode::GarbageStatus, Target::Http);
    assert_eq!(out.spooled, 5);
}

#[test]
fn tls_to_a_server_speaking_plain_http() {
    let out = run_fault("tls-plain", Mode::PlainHttp, Target::Https);
    assert_eq!(out.spooled, 5);
    assert_eq!(
        out.server.requests(),
        0,
        "no request went out in clear text"
    );
}

#[test]
fn tls_to_a_server_speaking_garbage() {
    let out = run_fault("tls-garbage", Mode::Garbage, Target::Https);
    assert_eq!(out.spooled, 5);
    assert_eq!(out.server.requests(), 0);
}

#[test]
fn name_that_does_not_resolve() {
    let out = run_fault("dns", Mode::Refuse, Target::Unresolvable);
    assert_eq!(out.spooled, 5);
    // A failed lookup is bounded by the request's total timeout (ureq resolves on a helper
    // thread when a timeout is set); here it fails at once.
    assert!(
        out.first_failure < TOTAL_TIMEOUT + Duration::from_secs(2),
        "resolution took {:?}",
        out.first_failure
    );
}

#[test]
fn retry_after_is_honoured_then_the_report_is_spooled_and_delivered() {
    for (code, name) in [(429, "retry-after-429"), (500, "retry-after-500")] {
        let server = FaultServer::start(Mode::Status(code, Some(30)));
        let state = temp_dir(name);
        let clock = Arc::new(FakeClock::new());
        let mut config = http(&server.url());
        config.retries = 1;
        let reporter = builder(name, config, &clock, &state).start().unwrap();
        reporter.send_event(&event("once"));
        eventually("the first answer to be read", || server.finished() == 1);
        std::thread::sleep(Duration::from_millis(50));
        // The reporter now waits 30 s of its clock from the answer (or later, never earlier).
        clock.advance(Duration::from_secs(29));
        let now = clock.now();
        eventually("the reporter to see the clock", || {
            reporter.status().observed >= now
        });
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(server.requests(), 1, "{code}: no retry before Retry-After");
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.requests() < 2 {
            assert!(
                Instant::now() < deadline,
                "{code}: no retry after Retry-After"
            );
            clock.advance(Duration::from_secs(2));
            std::thread::sleep(Duration::from_millis(20));
        }
        eventually("the report to be spooled", || {
            reporter.status().spooled == 1
        });
        let waiting: Vec<String> = spool(&state).into_iter().map(|(_, b)| b).collect();
        assert_eq!(waiting.len(), 1);
        assert_eq!(trigger(&waiting[0]), "event:once");
        server.set_mode(Mode::Ok);
        clock.advance(DAY);
        eventually("the spooled report", || spool(&state).is_empty());
        each_delivered_once(&server.accepted(), &waiting);
        let status = reporter.status();
        assert_eq!((status.attempts, status.delivered), (4, 2), "{status:?}");
        let started = Instant::now();
        assert!(reporter.shutdown());
        assert!(started.elapsed() < SHUTDOWN_MAX);
        println!(
            "fault {name}: retry after 30 s of clock honoured, 1 report spooled, 1 delivered later, 0 lost"
        );
        std::fs::remove_dir_all(&state).unwrap();
    }
}

#[test]
fn the_spool_never_exceeds_its_caps_and_counts_what_it_pushes_out() {
    let server = FaultServer::start(Mode::Refuse);
    let state = temp_dir("caps");
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("caps", http(&server.url()), &clock, &state)
        .start()
        .unwrap();
    let mut most = (0, 0);
    for i in 0..50 {
        reporter.send_event(&event(format!("caps-{i}")));
    }
    eventually("50 failed reports", || {
        let (files, bytes) = spool_size(&state);
        most = (most.0.max(files), most.1.max(bytes));
        reporter.status().spooled == 50
    });
    let status = reporter.status();
    assert_eq!(status.dropped, 40, "{status:?}");
    let left = spool(&state);
    assert_eq!(left.len(), LIMITS.max_files);
    // Plus the one report being sent, which is on disk before its attempt.
    assert!(most.0 <= LIMITS.max_files + 1, "{most:?}");
    let triggers: Vec<String> = left.iter().map(|(_, b)| trigger(b)).collect();
    let newest: Vec<String> = (40..50).map(|i| format!("event:caps-{i}")).collect();
    assert_eq!(triggers, newest, "the oldest are pushed out first");

    let waiting: Vec<String> = left.into_iter().map(|(_, b)| b).collect();
    server.set_mode(Mode::Ok);
    clock.advance(DAY + Duration::from_secs(1));
    eventually("the 10 kept reports", || spool(&state).is_empty());
    each_delivered_once(&server.accepted(), &waiting);
    drop(reporter);
    println!(
        "caps by files: 50 reports failed, spool at most {} files / {} bytes (cap 10 files), 40 pushed out and counted, 10 delivered later",
        most.0, most.1
    );

    // The byte cap: room for three and a half reports.
    let server = FaultServer::start(Mode::Refuse);
    let state2 = temp_dir("caps-bytes");
    let size = waiting[0].len() as u64;
    let limits = SpoolLimits::new(100, size * 7 / 2);
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("caps-bytes", http(&server.url()), &clock, &state2)
        .spool_limits(limits.clone())
        .start()
        .unwrap();
    let mut most = (0, 0);
    for i in 0..20 {
        reporter.send_event(&event(format!("caps-bytes-{i}")));
    }
    eventually("20 failed reports", || {
        let (files, bytes) = spool_size(&state2);
        most = (most.0.max(files), most.1.max(bytes));
        reporter.status().spooled == 20
    });
    let (files, bytes) = spool_size(&state2);
    // At rest within the cap; while a report is being sent, that one report (its body and
    // the line that seals it) is on disk besides.
    assert!(
        bytes <= limits.max_bytes && most.1 <= limits.max_bytes + size + 100,
        "{bytes} {most:?}"
    );
    assert!((2..=3).contains(&files), "{files}");
    assert_eq!(reporter.status().dropped, 20 - files as u64);
    drop(reporter);
    println!(
        "caps by bytes: 20 reports failed, spool at most {} files / {} bytes (cap {} bytes), {} pushed out and counted",
        most.0,
        most.1,
        limits.max_bytes,
        20 - files
    );
    std::fs::remove_dir_all(&state).unwrap();
    std::fs::remove_dir_all(&state2).unwrap();
}

#[test]
fn a_report_in_flight_at_shutdown_is_kept_and_the_bound_holds() {
    let server = FaultServer::start(Mode::Hang);
    let state = temp_dir("inflight");
    let clock = Arc::new(FakeClock::new());
    let mut config = http(&server.url());
    config.total_timeout = Duration::from_secs(30);
    let reporter = builder("inflight", config, &clock, &state).start().unwrap();
    reporter.send_event(&event("in-flight"));
    eventually("the hanging connection", || server.connections() == 1);
    let started = Instant::now();
    let finished = reporter.shutdown();
    assert!(started.elapsed() < SHUTDOWN_MAX);
    // The reporter stops waiting for the hung request: it finishes within its bound.
    assert!(
        finished,
        "the reporter waited on the network past its bound"
    );
    // The process may exit now: the report (and the counts in it) must already be on disk.
    let kept: Vec<String> = spool(&state).iter().map(|(_, b)| trigger(b)).collect();
    assert!(
        kept.contains(&"event:in-flight".to_owned()),
        "the in-flight report is lost if the process exits now: spool holds {kept:?}"
    );
}

#[test]
fn a_flood_of_events_while_the_endpoint_hangs_is_logged_once() {
    let lines = log_lines();
    let mark = lines.mark();
    let server = FaultServer::start(Mode::Hang);
    let state = temp_dir("flood");
    let clock = Arc::new(FakeClock::new());
    let reporter = builder("flood", http(&server.url()), &clock, &state)
        .start()
        .unwrap();
    reporter.send_event(&event("flood-first"));
    eventually("the hanging connection", || server.connections() == 1);
    for i in 0..1000 {
        reporter.send_event(&event(format!("flood-{i}")));
    }
    let dropped = lines
        .problems_since(mark, "dropped: too many events waiting")
        .into_iter()
        .filter(|l| l.contains("flood-"))
        .count();
    drop(reporter);
    std::fs::remove_dir_all(&state).ok();
    assert!(
        dropped <= 1,
        "{dropped} log lines for the events dropped while the endpoint hangs"
    );
}

//! Consent under races and from outside the one running reporter: concurrent decisions, a
//! decision saved by another process, two reporters on one state directory, decisions that
//! cannot be saved, and `DO_NOT_TRACK` and `donottrack` in forms a careless setup produces.
//! Library defaults throughout; only the clock is fake.

mod events;
mod receiver;

use events::event;
use receiver::{Mode, Receiver, eventually, settle};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::Duration;
use telemetry_core::consent::{self, Consent, ConsentBuilder, ConsentError, SourceKind};
use telemetry_core::disclosure::Disclosure;
use telemetry_core::reporter::{
    FakeClock, HttpConfig, Reporter, ReporterBuilder, TelemetryCommand,
};
use telemetry_core::{Application, LabelValue, StateDir};

const HOUR: Duration = Duration::from_secs(3600);

fn temp_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("telemetry-{name}-{}", uuid::Uuid::new_v4()))
}

/// Sources from an empty environment, with `--telemetry` set to `flag`.
/// A receiver that accepts every report, a fresh state directory and a fake clock.
fn setup(name: &str) -> (Receiver, PathBuf, Arc<FakeClock>) {
    (
        Receiver::start(Mode::Ok("{}".into())),
        temp_dir(name),
        Arc::new(FakeClock::new()),
    )
}

fn sources(flag: Option<&str>) -> ConsentBuilder {
    ConsentBuilder::new()
        .environment(|_| None)
        .executable("/usr/bin/server")
        .flag("--telemetry", flag)
}

fn builder(receiver: &Receiver, clock: &Arc<FakeClock>, state: &Path) -> ReporterBuilder {
    Reporter::builder(Application::new("races", "1.0.0"))
        .disclosure(
            Disclosure::new(
                "Races",
                "Test Ltd",
                "setting X=1",
                "https://example.invalid",
            )
            .to_stderr(false),
        )
        .endpoint(HttpConfig::new(receiver.url()))
        .state_dir(state)
        .clock(clock.clone())
}

/// Lets `hours` of clock pass, an hour at a time, raising the event `name` every hour.
fn hours_with_events(reporter: &Reporter, clock: &FakeClock, hours: u32, name: &str) {
    for _ in 0..hours {
        reporter.send_event(&event(name));
        clock.advance(HOUR);
        settle(reporter, clock);
    }
}

fn spooled(state: &Path) -> usize {
    std::fs::read_dir(state.join("spool"))
        .map(|d| d.flatten().count())
        .unwrap_or(0)
}

#[test]
fn concurrent_decisions_leave_the_saved_one_in_force() {
    let (receiver, state, clock) = setup("concurrent");
    let reporter = Arc::new(
        builder(&receiver, &clock, &state)
            .consent(sources(None))
            .start()
            .unwrap(),
    );
    let dir = StateDir::new(&state);
    for round in 0..200 {
        let barrier = Arc::new(Barrier::new(2));
        let threads: Vec<_> = [Consent::Enabled, Consent::Disabled]
            .into_iter()
            .map(|state| {
                let (reporter, barrier) = (reporter.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    reporter.set_consent(state).unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(
            consent::persisted(&dir).unwrap().state,
            reporter.consent().state,
            "round {round}: the saved decision is the one in force"
        );
    }
    drop(reporter);
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn a_decision_saved_by_the_telemetry_command_stops_a_running_reporter() {
    let (receiver, state, clock) = setup("cli-disable");
    let cli = || builder(&receiver, &clock, &state).consent(sources(None));
    cli().save_consent(Consent::Enabled).unwrap();
    let reporter = cli().start().unwrap();
    reporter.send_event(&event("first"));
    eventually("the first report", || receiver.requests() >= 1);
    settle(&reporter, &clock);

    let mut out = Vec::new();
    cli()
        .run_command(TelemetryCommand::Disable, &mut out)
        .unwrap();
    let after_disable = receiver.requests();
    hours_with_events(&reporter, &clock, 72, "hourly");
    assert_eq!(
        receiver.requests(),
        after_disable,
        "0 requests after the disable"
    );
    let d = reporter.consent();
    assert_eq!(
        (d.state, d.decided_by),
        (Consent::Disabled, SourceKind::Persisted)
    );
    // And the other way: `telemetry enable` resumes it (its own sources allow it).
    cli()
        .run_command(TelemetryCommand::Enable, &mut out)
        .unwrap();
    reporter.send_event(&event("resumed"));
    clock.advance(HOUR);
    eventually("a report after the enable", || {
        receiver.requests() > after_disable
    });
    drop(reporter);
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn two_reporters_on_one_state_dir_stop_together() {
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    let state = temp_dir("two");
    let (clock_a, clock_b) = (Arc::new(FakeClock::new()), Arc::new(FakeClock::new()));
    let a = builder(&receiver, &clock_a, &state)
        .consent(sources(Some("enable")))
        .start()
        .unwrap();
    let b = builder(&receiver, &clock_b, &state)
        .consent(sources(Some("enable")))
        .start()
        .unwrap();
    a.set_consent(Consent::Disabled).unwrap();
    settle(&b, &clock_b);
    let after = receiver.requests();
    receiver.set_mode(Mode::Status(503, None));
    hours_with_events(&b, &clock_b, 48, "still-running");
    receiver.set_mode(Mode::Ok("{}".into()));
    clock_b.advance(2 * HOUR);
    settle(&b, &clock_b);
    assert_eq!(
        receiver.requests(),
        after,
        "the second reporter sent nothing"
    );
    assert_eq!(spooled(&state), 0, "and kept nothing in the spool");
    assert_eq!(b.consent().state, Consent::Disabled);
    drop((a, b));
    let _ = std::fs::remove_dir_all(&state);
}

#[derive(Clone, Copy, LabelValue)]
enum Plan {
    Trial,
    Paid,
}

fn counter_value(body: &serde_json::Value, name: &str) -> Option<u64> {
    body["metrics"]["counters"][name]["series"][0]["value"].as_u64()
}

#[test]
fn nothing_recorded_before_an_opt_in_leaves_whatever_the_path_to_it() {
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    let clock = Arc::new(FakeClock::new());

    // Opted out, then undecided again: the product's "send the undecided period" does not
    // reach back past the opt-out.
    let state = temp_dir("optin-undecided");
    let ops = telemetry_core::counter!("races.ops").unwrap();
    let reporter = builder(&receiver, &clock, &state)
        .consent(sources(None))
        .send_undecided_period(true)
        .start()
        .unwrap();
    ops.increment_by(5);
    reporter.set_consent(Consent::Disabled).unwrap();
    ops.increment_by(100);
    clock.advance(HOUR / 6);
    reporter.set_consent(Consent::Undecided).unwrap();
    clock.advance(HOUR / 2);
    settle(&reporter, &clock);
    assert_eq!(receiver.requests(), 0, "a new undecided delay started");
    clock.advance(HOUR);
    settle(&reporter, &clock);
    eventually("the report after the delay", || receiver.requests() >= 1);
    for body in receiver.bodies() {
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(counter_value(&body, "races.ops"), None, "{body}");
    }
    drop(reporter);
    let _ = std::fs::remove_dir_all(&state);

    // Events raised and label values seen before an opt-in.
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    let state = temp_dir("optin-series");
    let by_plan = telemetry_core::counter!("races.by_plan", labels(plan: Plan)).unwrap();
    let reporter = builder(&receiver, &clock, &state)
        .consent(sources(None))
        .start()
        .unwrap();
    reporter.send_event(&event("before_the_opt_in"));
    by_plan.increment((Plan::Trial,));
    reporter.set_consent(Consent::Enabled).unwrap();
    by_plan.increment((Plan::Paid,));
    eventually("the report at the opt-in", || receiver.requests() >= 1);
    settle(&reporter, &clock);
    reporter.send_event(&event("after_the_opt_in"));
    eventually("the event's report", || receiver.requests() >= 2);
    let bodies = receiver.bodies();
    assert!(
        bodies.iter().all(|b| !b.contains("before_the_opt_in")),
        "{bodies:?}"
    );
    let last: serde_json::Value = serde_json::from_str(bodies.last().unwrap()).unwrap();
    let series = last["metrics"]["counters"]["races.by_plan"]["series"].to_string();
    assert!(series.contains("Paid"), "{series}");
    for body in &bodies {
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        let series = body["metrics"]["counters"]["races.by_plan"]["series"].to_string();
        assert!(!series.contains("Trial"), "{series}");
    }
    drop(reporter);
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn an_opt_out_that_cannot_be_saved_is_in_force_and_says_so() {
    let receiver = Receiver::start(Mode::Ok("{}".into()));
    let clock = Arc::new(FakeClock::new());
    let file = temp_dir("not-a-dir");
    std::fs::write(&file, b"a regular file").unwrap();
    let reporter = builder(&receiver, &clock, &file.join("state"))
        .consent(sources(Some("enable")))
        .start()
        .unwrap();
    let err = reporter.set_consent(Consent::Disabled).unwrap_err();
    assert!(matches!(err, ConsentError::NotSaved { .. }), "{err}");
    assert!(err.to_string().contains("this run only"), "{err}");
    assert_eq!(reporter.consent().state, Consent::Disabled);
    clock.advance(2 * HOUR);
    settle(&reporter, &clock);
    assert_eq!(receiver.requests(), 0);
    drop(reporter);
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn do_not_track_words_and_names_err_on_the_side_of_not_tracking() {
    for value in [
        "1",
        "true",
        "enable",
        "disable",
        "optout",
        "forbid",
        "yes please",
        "2",
    ] {
        let d = ConsentBuilder::new()
            .environment(move |n| (n == "DO_NOT_TRACK").then(|| value.to_owned()))
            .executable("/usr/bin/server")
            .resolve()
            .unwrap();
        assert_eq!(d.state, Consent::Disabled, "DO_NOT_TRACK={value}");
    }
    for value in ["", " ", "0", "false", "No", "off"] {
        let d = ConsentBuilder::new()
            .environment(move |n| (n == "DO_NOT_TRACK").then(|| value.to_owned()))
            .executable("/usr/bin/server")
            .resolve()
            .unwrap();
        assert_eq!(d.state, Consent::Undecided, "DO_NOT_TRACK={value:?}");
    }
}

/// The real process environment and executable name, in a child process: a `DO_NOT_TRACK`
/// that is not UTF-8, and a `donottrack` symbolic link to the program.
#[test]
fn real_environments_and_symlinked_executables() {
    use std::os::unix::ffi::OsStrExt;
    if let Some(want) = std::env::var_os("CONSENT_RACES_CHILD") {
        let d = ConsentBuilder::new().resolve();
        println!("CHILD {want:?} -> {:?}", d.map(|d| (d.state, d.decided_by)));
        return;
    }
    let child = |program: &Path, var: Option<&std::ffi::OsStr>| {
        let mut command = std::process::Command::new(program);
        command
            .args([
                "--exact",
                "real_environments_and_symlinked_executables",
                "--nocapture",
            ])
            .env("CONSENT_RACES_CHILD", "1")
            .env_remove("DO_NOT_TRACK");
        if let Some(var) = var {
            command.env("DO_NOT_TRACK", var);
        }
        let out = command.output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let me = std::env::current_exe().unwrap();
    let out = child(&me, Some(std::ffi::OsStr::from_bytes(b"1\xff")));
    assert!(out.contains("Ok((Disabled, DoNotTrack))"), "{out}");
    let link_dir = temp_dir("symlink");
    std::fs::create_dir_all(&link_dir).unwrap();
    let link = link_dir.join("server-donottrack");
    std::os::unix::fs::symlink(&me, &link).unwrap();
    let out = child(&link, None);
    assert!(out.contains("Ok((Disabled, ExecutableName))"), "{out}");
    let out = child(&me, None);
    assert!(out.contains("Ok((Undecided, Default))"), "{out}");
    std::fs::remove_dir_all(&link_dir).unwrap();
}

/// A `telemetry disable` saved while the reporter is starting (here: when it reads its debug
/// variable, between resolving consent and starting its thread) is put in force.
#[test]
fn a_decision_saved_while_the_reporter_starts_is_not_missed() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (receiver, state, clock) = setup("during-start");
    let cli = {
        let (url, state) = (receiver.url(), state.clone());
        move || {
            Reporter::builder(Application::new("races", "1.0.0"))
                .consent(sources(None))
                .endpoint(HttpConfig::new(url.clone()))
                .state_dir(&state)
        }
    };
    cli().save_consent(Consent::Enabled).unwrap();
    let armed = Arc::new(AtomicBool::new(true));
    let hooked = {
        let (armed, cli) = (armed.clone(), cli.clone());
        ConsentBuilder::new()
            .executable("/usr/bin/server")
            .environment(move |name| {
                if name == "TELEMETRY_DEBUG" && armed.swap(false, Ordering::SeqCst) {
                    cli()
                        .run_command(TelemetryCommand::Disable, &mut Vec::new())
                        .unwrap();
                }
                None
            })
    };
    let reporter = builder(&receiver, &clock, &state)
        .consent(hooked)
        .start()
        .unwrap();
    assert!(!armed.load(Ordering::SeqCst), "the hook ran during start");
    hours_with_events(&reporter, &clock, 48, "hourly");
    assert_eq!(receiver.requests(), 0);
    assert_eq!(reporter.consent().state, Consent::Disabled);
    drop(reporter);
    let _ = std::fs::remove_dir_all(&state);
}

/// Disabled and enabled again by another process between two looks: the counts recorded in
/// between are not sent.
#[test]
fn an_opt_out_and_in_from_outside_between_two_looks_resets_the_counts() {
    let (receiver, state, clock) = setup("toggle");
    let ops = telemetry_core::counter!("races.toggle_ops").unwrap();
    let cli = || builder(&receiver, &clock, &state).consent(sources(None));
    cli().save_consent(Consent::Enabled).unwrap();
    let reporter = cli().start().unwrap();
    clock.advance(HOUR + Duration::from_secs(1));
    eventually("the first report", || receiver.requests() >= 1);
    settle(&reporter, &clock);
    let mut out = Vec::new();
    cli()
        .run_command(TelemetryCommand::Disable, &mut out)
        .unwrap();
    ops.increment_by(1000);
    cli()
        .run_command(TelemetryCommand::Enable, &mut out)
        .unwrap();
    ops.increment_by(3);
    clock.advance(24 * HOUR);
    eventually("the next report", || receiver.requests() >= 2);
    let body: serde_json::Value = serde_json::from_str(receiver.bodies().last().unwrap()).unwrap();
    let sent = counter_value(&body, "races.toggle_ops").unwrap_or(0);
    assert!(
        sent <= 3,
        "{sent} counts sent; 3 were recorded after the opt-in"
    );
    drop(reporter);
    let _ = std::fs::remove_dir_all(&state);
}

/// A saved decision that cannot be read means "disabled" at start, and while running too.
#[test]
fn a_broken_saved_decision_disables_a_running_reporter() {
    for broken in [
        &b"{\"state\":\"disabled\"}"[..],
        b"{\"state\":\"Disabled\",\"set_at\":\"x\"}",
        b"\xff\xfe",
    ] {
        let receiver = Receiver::start(Mode::Ok("{}".into()));
        let state = temp_dir("broken-while-running");
        let clock = Arc::new(FakeClock::new());
        let reporter = builder(&receiver, &clock, &state)
            .consent(sources(None))
            .start()
            .unwrap();
        reporter.set_consent(Consent::Enabled).unwrap();
        eventually("the report at the opt-in", || receiver.requests() >= 1);
        settle(&reporter, &clock);
        let before = receiver.requests();
        std::fs::write(state.join("consent.json"), broken).unwrap();
        hours_with_events(&reporter, &clock, 48, "hourly");
        assert_eq!(
            receiver.requests(),
            before,
            "{:?}",
            String::from_utf8_lossy(broken)
        );
        drop(reporter);
        let _ = std::fs::remove_dir_all(&state);
    }
}

/// An operator's opt-out (here an environment variable) is lifted by the operator only: a
/// runtime "enable" and a saved one are both refused for the run.
#[test]
fn an_operator_opt_out_holds_against_runtime_and_saved_enables() {
    let (receiver, state, clock) = setup("operator");
    let operator = || {
        ConsentBuilder::new()
            .environment(|n| (n == "APP_TELEMETRY_OPTOUT").then(|| "true".to_owned()))
            .executable("/usr/bin/server")
            .env(
                "APP_TELEMETRY_OPTOUT",
                consent::Polarity::OptOut,
                consent::ValueRule::FerretDb,
            )
    };
    let reporter = builder(&receiver, &clock, &state)
        .consent(operator())
        .start()
        .unwrap();
    let err = reporter.set_consent(Consent::Enabled).unwrap_err();
    assert!(matches!(err, ConsentError::Conflict { .. }), "{err}");
    reporter.set_consent(Consent::Disabled).unwrap();
    assert!(
        reporter.set_consent(Consent::Enabled).is_err(),
        "still the operator's"
    );
    // `telemetry enable` from a shell without the variable is saved, but not adopted here.
    builder(&receiver, &clock, &state)
        .consent(sources(None))
        .save_consent(Consent::Enabled)
        .unwrap();
    hours_with_events(&reporter, &clock, 24, "hourly");
    assert_eq!(receiver.requests(), 0);
    drop(reporter);
    let _ = std::fs::remove_dir_all(&state);
}

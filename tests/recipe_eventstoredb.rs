//! The EventStoreDB example against its "Usage telemetry" documentation: the message has the
//! page's keys at every level and its `uptime` is a .NET TimeSpan; the first message leaves one
//! hour after start and then every 24 hours; every transmission is logged; with
//! `EVENTSTORE_TELEMETRY_OPTOUT=true` nothing is sent but the messages are still logged, and
//! the disclosure has the page's two texts. Library defaults; only the clock is fake.

#[path = "../examples/eventstoredb.rs"]
#[allow(dead_code)]
mod eventstoredb;
mod recipes;

use eventstoredb::Settings;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use telemetry_core::reporter::{FakeClock, HttpConfig};
use telemetry_core::testing::Receiver;

const HOUR: Duration = Duration::from_secs(3600);

/// The full message from a single-node instance, as the page shows it.
const DOCUMENTED: &str = r#"{
  "version": "23.10.0.0",
  "tag": "oss-v23.10.0",
  "uptime": "00:01:11.0115732",
  "cluster": {
    "leaderId": "81e9ca2a-8acc-41ed-b9d0-65a652b36801",
    "nodeId": "81e9ca2a-8acc-41ed-b9d0-65a652b36801",
    "nodeState": "Leader"
  },
  "configuration": {
    "clusterSize": 1,
    "enableAtomPubOverHttp": true,
    "enableExternalTcp": true,
    "insecure": false,
    "runProjections": "None"
  },
  "database": {
    "epochNumber": 29,
    "firstEpochId": "b02f1ba6-98a3-473f-ade7-dcd1476b2149",
    "activeChunkNumber": 2
  },
  "environment": {
    "coreCount": 24,
    "isContainer": false,
    "isKubernetes": false,
    "processorArchitecture": "X64",
    "totalDiskSpace": 1000186310656,
    "totalMemory": 68631052288
  },
  "gossip": {
    "81e9ca2a-8acc-41ed-b9d0-65a652b36801": "Leader"
  },
  "persistentSubscriptions": {
    "count": 0
  },
  "projections": {
    "customProjectionCount": 0,
    "standardProjectionCount": 5,
    "customProjectionRunningCount": 0,
    "standardProjectionRunningCount": 5,
    "totalCount": 5,
    "totalRunningCount": 5
  }
}"#;

/// Every key path of a JSON value, with the JSON type at it (`gossip` keys are node ids, so
/// they count as one key).
fn shape(value: &serde_json::Value, at: &str, out: &mut BTreeSet<String>) {
    let kind = match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    };
    out.insert(format!("{at}: {kind}"));
    if let serde_json::Value::Object(map) = value {
        for (key, child) in map {
            let key = if at == ".gossip" {
                "{nodeId}"
            } else {
                key.as_str()
            };
            shape(child, &format!("{at}.{key}"), out);
        }
    }
}

/// Captures the `telemetry` log lines.
struct Lines(Mutex<Vec<String>>);

impl log::Log for Lines {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.target() == "telemetry" {
            self.0.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

fn lines() -> &'static Lines {
    static LINES: OnceLock<&'static Lines> = OnceLock::new();
    LINES.get_or_init(|| {
        let lines: &'static Lines = Box::leak(Box::new(Lines(Mutex::new(Vec::new()))));
        log::set_logger(lines).unwrap();
        log::set_max_level(log::LevelFilter::Info);
        lines
    })
}

fn settings(env: &[(&'static str, &str)]) -> Settings {
    Settings {
        environment: recipes::environment(env),
        state_dir: recipes::state_dir("eventstoredb"),
    }
}

/// One test: the log is the process's.
#[test]
fn the_documented_message_schedule_logging_and_opt_out() {
    let lines = lines();
    let documented: serde_json::Value = serde_json::from_str(DOCUMENTED).unwrap();
    let mut want = BTreeSet::new();
    shape(&documented, "", &mut want);

    // On: one hour of nothing, then the message, then every 24 hours.
    let receiver = Receiver::start().unwrap();
    let clock = Arc::new(FakeClock::new());
    let on = settings(&[]);
    let reporter = eventstoredb::reporter(&on, Arc::new(eventstoredb::single_node()))
        .endpoint(HttpConfig::new(receiver.url()))
        .clock(clock.clone())
        .start()
        .unwrap();
    assert!(
        lines.0.lock().unwrap().iter().any(|l| l == "You can opt out of sending telemetry by setting the EVENTSTORE_TELEMETRY_OPTOUT environment variable to true."),
        "the page's disclosure"
    );
    clock.advance(HOUR - Duration::from_secs(1));
    recipes::settle(&reporter, &clock);
    assert!(receiver.requests().is_empty(), "nothing in the first hour");
    clock.advance(Duration::from_secs(1));
    recipes::wait_for(&receiver, 1);
    clock.advance(23 * HOUR);
    recipes::settle(&reporter, &clock);
    assert_eq!(receiver.requests().len(), 1, "nothing more within 24 hours");
    clock.advance(HOUR);
    recipes::wait_for(&receiver, 2);

    for request in receiver.requests() {
        let message: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        let mut got = BTreeSet::new();
        shape(&message, "", &mut got);
        assert_eq!(got, want, "the page's keys and types, no more, no fewer");
        let uptime = message["uptime"].as_str().unwrap();
        let (days, clock_part) = uptime
            .split_once('.')
            .map_or(("0", uptime), |(d, rest)| (d, rest));
        assert!(days.bytes().all(|b| b.is_ascii_digit()), "{uptime}");
        assert!(
            clock_part.len() == 8 && clock_part.ends_with(":00:00"),
            "[d.]hh:mm:ss, rounded down to the hour: {uptime}"
        );
        let node = message["cluster"]["nodeId"].as_str().unwrap();
        assert_eq!(message["gossip"][node], "Leader");
        assert_eq!(message["version"], "23.10.0.0");
    }
    // Every transmission is logged with its message.
    let sent_lines = lines
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|l| {
            l.starts_with("sending telemetry report") && l.contains("\"tag\":\"oss-v23.10.0\"")
        })
        .count();
    assert_eq!(sent_lines, 2);
    assert!(reporter.shutdown());
    let _ = std::fs::remove_dir_all(&on.state_dir);

    // Opted out: the messages are produced to the log, none is sent.
    let receiver = Receiver::start().unwrap();
    let clock = Arc::new(FakeClock::new());
    let off = settings(&[("EVENTSTORE_TELEMETRY_OPTOUT", "true")]);
    let before = lines.0.lock().unwrap().len();
    let reporter = eventstoredb::reporter(&off, Arc::new(eventstoredb::single_node()))
        .endpoint(HttpConfig::new(receiver.url()))
        .clock(clock.clone())
        .start()
        .unwrap();
    for _ in 0..50 {
        clock.advance(HOUR);
        recipes::settle(&reporter, &clock);
    }
    assert!(reporter.shutdown());
    assert!(receiver.requests().is_empty());
    let logged: Vec<String> = lines.0.lock().unwrap()[before..].to_vec();
    assert!(
        logged.iter().any(|l| l == "You have opted out of sending telemetry by setting the EVENTSTORE_TELEMETRY_OPTOUT environment variable to true."),
        "the page's opted-out disclosure: {logged:?}"
    );
    let produced: Vec<&String> = logged
        .iter()
        .filter(|l| l.starts_with("telemetry report not sent (telemetry is disabled): {"))
        .collect();
    assert!(produced.len() >= 2, "a message each day: {logged:?}");
    let message: serde_json::Value =
        serde_json::from_str(produced[0].split_once(": ").unwrap().1).unwrap();
    let mut got = BTreeSet::new();
    shape(&message, "", &mut got);
    assert_eq!(got, want);
    let _ = std::fs::remove_dir_all(&off.state_dir);
}

#[test]
fn a_short_lived_node_or_a_node_opted_out_in_words_sends_nothing() {
    // A node that stops within its first hour (a test container): nothing, not even at shutdown.
    let receiver = Receiver::start().unwrap();
    let clock = Arc::new(FakeClock::new());
    let short = settings(&[]);
    let reporter = eventstoredb::reporter(&short, Arc::new(eventstoredb::single_node()))
        .endpoint(HttpConfig::new(receiver.url()))
        .clock(clock.clone())
        .start()
        .unwrap();
    clock.advance(Duration::from_secs(10 * 60));
    recipes::settle(&reporter, &clock);
    assert!(reporter.shutdown());
    assert!(
        receiver.requests().is_empty(),
        "a ten-minute node sent something"
    );
    let _ = std::fs::remove_dir_all(&short.state_dir);

    // The variable set to a word that names an opt-out.
    for word in [
        "opt-out", "optout", "disable", "disabled", "forbid", "disallow", "TRUE",
    ] {
        let receiver = Receiver::start().unwrap();
        let clock = Arc::new(FakeClock::new());
        let vars = [("EVENTSTORE_TELEMETRY_OPTOUT", word)];
        let off = settings(&vars);
        let reporter = eventstoredb::reporter(&off, Arc::new(eventstoredb::single_node()))
            .endpoint(HttpConfig::new(receiver.url()))
            .clock(clock.clone())
            .start()
            .unwrap();
        for _ in 0..26 {
            clock.advance(HOUR);
            recipes::settle(&reporter, &clock);
        }
        assert!(reporter.shutdown());
        assert!(
            receiver.requests().is_empty(),
            "EVENTSTORE_TELEMETRY_OPTOUT={word}"
        );
        let _ = std::fs::remove_dir_all(&off.state_dir);
    }
}

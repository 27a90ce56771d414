//! Shared helpers of the product recipe tests (`tests/recipe_*.rs`): a fixed environment, a
//! fresh state directory, and bounded waits on the reporter and the receiver.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use telemetry_core::reporter::{Clock, FakeClock, Reporter};
use telemetry_core::testing::Receiver;

/// The bound on every wait: only to turn a hang into a failure.
const WAIT: Duration = Duration::from_secs(10);

/// Reads one environment variable (the recipes' `EnvReader`).
pub type EnvReader = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// An environment holding exactly `vars`, as a recipe's settings take it.
pub fn environment(vars: &[(&'static str, &str)]) -> EnvReader {
    let vars: Vec<(&'static str, String)> =
        vars.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    Arc::new(move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
}

/// A state directory of its own for one run of `product`.
pub fn state_dir(product: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{product}-recipe-{}", uuid::Uuid::new_v4()))
}

/// Waits until the reporter has looked at `clock`'s current time, then a little more, so that
/// what was due at that time has been done.
pub fn settle(reporter: &Reporter, clock: &FakeClock) {
    let now = clock.now();
    let deadline = Instant::now() + WAIT;
    while reporter.status().observed < now {
        assert!(Instant::now() < deadline, "the reporter did not catch up");
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(20));
}

/// Waits until `done` holds.
pub fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until `receiver` has at least `count` requests.
pub fn wait_for(receiver: &Receiver, count: usize) {
    eventually(&format!("{count} request(s)"), || {
        receiver.requests().len() >= count
    });
}

/// Every request body `receiver` got, as JSON.
pub fn bodies(receiver: &Receiver) -> Vec<serde_json::Value> {
    receiver
        .requests()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("a JSON body"))
        .collect()
}

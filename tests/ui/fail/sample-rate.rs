// `sample = N` times 1 call in N: N is 2 or more, and only `#[timed]` samples (calls are
// counted exactly).
use telemetry_core::{count_usage, timed};

#[timed(sample = 1)]
fn every_call() {}

#[count_usage(sample = 4)]
fn counted() {}

fn main() {
    every_call();
    counted();
}

//! The workspace's root package: examples, integration tests and benchmarks of
//! `telemetry-core`. Its library holds only the README, so that the README's code is compiled
//! and run as a doc test.
#![doc = include_str!("../README.md")]

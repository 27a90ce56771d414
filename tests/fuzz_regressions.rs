//! Runs every input kept for the fuzz targets through the same checks as the fuzz targets
//! (`fuzz/checks.rs`), so that `cargo test` catches a regression without cargo-fuzz: the seeds
//! (`fuzz/seeds/<target>/`) and the inputs that once failed (`fuzz/regressions/<target>/`).
//! A failure names the input file and the broken check's tag, e.g. `[delta-self]`.
//! See `docs/FUZZING.md`.
//!
//! Open bugs in `telemetry-core`, failing here until they are fixed (docs/FUZZING.md, Results):
//! - `[round-f64-nan]`, `[round-f64-digits]`, `[round-f64-up]`: `anonymize::round_f64`
//!   (tests `round_numbers`, `json_numbers`, `report`);
//! - `[delta-self]`: `Snapshot::delta` with repeated label sets (test `snapshot`);
//! - `[endpoint-malformed]`: `reporter::validate_endpoint` accepts malformed loopback
//!   authorities (test `endpoint`).

#[path = "../fuzz/checks.rs"]
mod checks;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The kept inputs of `target`, seeds first, each directory in name order.
fn inputs(target: &str) -> Vec<PathBuf> {
    let mut all = Vec::new();
    for kind in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .map(|e| e.expect("a readable directory entry").path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        all.extend(files);
    }
    all
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Runs every kept input of `target` and fails with the list of those that break a check.
fn run(target: &str) {
    let (_, check) = checks::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no check for fuzz target {target}"));
    let inputs = inputs(target);
    assert!(
        !inputs.is_empty(),
        "no kept inputs for fuzz target {target}"
    );
    let failures: Vec<String> = inputs
        .iter()
        .filter_map(|path| {
            let data = std::fs::read(path).expect("a readable input");
            catch_unwind(AssertUnwindSafe(|| check(&data)))
                .err()
                .map(|payload| format!("{}: {}", path.display(), panic_message(&*payload)))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} kept inputs of fuzz target {target} break a check:\n{}",
        failures.len(),
        inputs.len(),
        failures.join("\n")
    );
}

macro_rules! targets {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run(stringify!($name));
            }
        )*

        /// Every fuzz target has a check, seeds and a test here, and every check a target.
        #[test]
        fn every_fuzz_target_is_covered() {
            let mut files: Vec<String> = std::fs::read_dir(fuzz_dir().join("fuzz_targets"))
                .expect("fuzz/fuzz_targets")
                .map(|e| e.expect("a readable directory entry").path())
                .filter(|p| p.extension().is_some_and(|x| x == "rs"))
                .map(|p| p.file_stem().expect("a file name").to_string_lossy().into_owned())
                .collect();
            files.sort();
            let mut checked: Vec<String> =
                checks::TARGETS.iter().map(|(name, _)| (*name).to_owned()).collect();
            checked.sort();
            let mut tested: Vec<String> = [$(stringify!($name)),*].map(String::from).to_vec();
            tested.sort();
            assert_eq!(files, checked, "fuzz/fuzz_targets/*.rs against checks::TARGETS");
            assert_eq!(files, tested, "fuzz/fuzz_targets/*.rs against the tests here");
            let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml"))
                .expect("fuzz/Cargo.toml");
            for name in &files {
                assert!(
                    manifest.contains(&format!("name = \"{name}\"")),
                    "fuzz/Cargo.toml has no [[bin]] for {name}"
                );
                assert!(
                    fuzz_dir().join("seeds").join(name).is_dir(),
                    "fuzz/seeds/{name}/ is missing"
                );
            }
        }
    };
}

targets!(
    consent_value,
    consent_sources,
    endpoint,
    metric_name,
    round_numbers,
    hash,
    json_numbers,
    snapshot,
    report,
    version_notice,
);

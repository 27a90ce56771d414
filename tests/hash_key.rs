//! The name-hashing key is the installation's from the first hash on: a name hashed before the
//! reporter starts hashes as it will in the reports, and as it did in the last run. Each run is
//! a child process (the key is process-wide).

use std::path::Path;
use telemetry_core::Application;
use telemetry_core::anonymize::HashedLabel;
use telemetry_core::consent::ConsentBuilder;
use telemetry_core::reporter::Reporter;

const CHILD: &str = "HASH_KEY_TEST_STATE_DIR";

fn child_run(state: &Path) -> Vec<String> {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_name_hashes_the_same_before_start_after_start_and_next_run",
            "--nocapture",
        ])
        .env(CHILD, state)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("HASH "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_name_hashes_the_same_before_start_after_start_and_next_run() {
    if let Some(state) = std::env::var_os(CHILD) {
        let builder = Reporter::builder(Application::new("hash-app", "1.0.0"))
            .consent(ConsentBuilder::new().environment(|_| None))
            .state_dir(&state);
        // Before the reporter starts: the builder has named the state directory.
        println!("HASH {}", HashedLabel::new("acme-corp").as_str());
        let reporter = builder.start().unwrap();
        println!("HASH {}", HashedLabel::new("acme-corp").as_str());
        drop(reporter);
        return;
    }
    let state = std::env::temp_dir().join(format!("telemetry-hash-key-{}", uuid::Uuid::new_v4()));
    let first = child_run(&state);
    let second = child_run(&state);
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(
        first.iter().chain(&second).all(|h| *h == first[0]),
        "one hash before and after start, in both runs: {first:?} {second:?}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.join("hash.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    std::fs::remove_dir_all(&state).unwrap();
}

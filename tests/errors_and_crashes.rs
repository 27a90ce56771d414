//! Error counts by kind (`#[count_usage(errors)]`) and scrubbed crash reports (the panic hook).

use std::sync::atomic::{AtomicUsize, Ordering};
use telemetry_core::crash::{PANICS, PanicHookConfig, install_panic_hook};
use telemetry_core::testing::capture;
use telemetry_core::{ErrorKind, count_usage, snapshot};

#[derive(Debug, PartialEq, ErrorKind)]
enum StoreError {
    #[error_kind(rename = "E11000")]
    DuplicateKey {
        key: String,
    },
    NotFound(String),
    Parse(std::num::ParseIntError),
}

impl From<std::num::ParseIntError> for StoreError {
    fn from(e: std::num::ParseIntError) -> Self {
        StoreError::Parse(e)
    }
}

#[count_usage(name = "errors.insert", errors)]
fn insert(key: &str, existing: &[&str]) -> Result<usize, StoreError> {
    if existing.contains(&key) {
        return Err(StoreError::DuplicateKey {
            key: key.to_owned(),
        });
    }
    let n: usize = key.len().to_string().parse()?;
    Ok(n)
}

#[count_usage(errors)]
async fn lookup(id: &str) -> Result<u32, StoreError> {
    let n: u32 = id.parse()?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("no user {id}")));
    }
    Ok(n)
}

struct Service;

impl Service {
    #[count_usage(name = "errors.method", errors)]
    fn call(&self, ok: bool) -> Result<(), StoreError> {
        if ok {
            Ok(())
        } else {
            Err(StoreError::NotFound("alice@example.com".into()))
        }
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[test]
fn err_outcomes_are_counted_by_kind_never_by_message() {
    let snap = capture(|| {
        assert_eq!(insert("a", &[]), Ok(1));
        assert!(matches!(
            insert("alice@example.com", &["alice@example.com"]),
            Err(StoreError::DuplicateKey { .. })
        ));
        assert_eq!(block_on(lookup("7")), Ok(7));
        assert!(matches!(
            block_on(lookup("0")),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(block_on(lookup("bob")), Err(StoreError::Parse(_))));
        assert!(Service.call(false).is_err());
        assert!(Service.call(true).is_ok());
    });
    assert_eq!(
        snap.counter("errors.insert"),
        Some(2),
        "every call is counted"
    );
    assert_eq!(
        snap.counter_with("errors.insert.errors", &[("kind", "E11000")]),
        Some(1)
    );
    assert_eq!(snap.counter("errors.insert.errors"), Some(1));
    let lookup_errors = concat!(module_path!(), "::lookup.errors");
    assert_eq!(
        snap.counter_with(lookup_errors, &[("kind", "NotFound")]),
        Some(1)
    );
    assert_eq!(
        snap.counter_with(lookup_errors, &[("kind", "Parse")]),
        Some(1)
    );
    assert_eq!(
        snap.counter_with("errors.method.errors", &[("kind", "NotFound")]),
        Some(1)
    );
    let json = serde_json::to_string(&snap).unwrap();
    for canary in ["alice", "bob", "no user"] {
        assert!(!json.contains(canary), "{canary} leaked");
    }
    let manifest = telemetry_core::manifest::manifest();
    let errors = manifest
        .metrics
        .iter()
        .find(|m| m.name == "errors.insert.errors")
        .unwrap();
    assert_eq!(
        errors.labels[0].values.as_deref(),
        Some(
            &[
                "E11000".to_owned(),
                "NotFound".to_owned(),
                "Parse".to_owned()
            ][..]
        )
    );
}

#[inline(never)]
fn crashes(secret: &str) {
    panic!("cannot open /home/alice/.config/app for {secret}");
}

#[inline(never)]
fn crashes_with_allowed_message() {
    panic!("index out of bounds");
}

#[test]
fn panics_are_counted_by_scrubbed_location_and_the_previous_hook_still_runs() {
    static PREVIOUS: AtomicUsize = AtomicUsize::new(0);
    std::panic::set_hook(Box::new(|_| {
        PREVIOUS.fetch_add(1, Ordering::Relaxed);
    }));
    assert!(install_panic_hook(
        PanicHookConfig::new(["errors_and_crashes"]).allow_messages(["index out of bounds"])
    ));
    assert!(
        !install_panic_hook(PanicHookConfig::default()),
        "installed once"
    );
    assert!(std::panic::catch_unwind(|| crashes("alice@example.com")).is_err());
    assert!(std::panic::catch_unwind(crashes_with_allowed_message).is_err());
    assert_eq!(
        PREVIOUS.load(Ordering::Relaxed),
        2,
        "the previous hook is chained"
    );

    let snap = snapshot();
    let family = &snap.counters[PANICS];
    assert_eq!(snap.counter(PANICS), Some(2));
    let labels: Vec<String> = family
        .series
        .iter()
        .map(|s| format!("{} {}", s.labels["location"], s.labels["message"]))
        .collect();
    assert!(
        labels
            .iter()
            .any(|l| l.starts_with("errors_and_crashes::crashes:") && l.ends_with(" other")),
        "{labels:?}"
    );
    assert!(
        labels.iter().any(|l| l.ends_with(" index out of bounds")),
        "allow-listed messages are kept: {labels:?}"
    );
    let json = serde_json::to_string(&snap).unwrap();
    for canary in ["alice", "/home", ".config", "/work/", "/tmp/"] {
        assert!(!json.contains(canary), "{canary} leaked: {labels:?}");
    }
}

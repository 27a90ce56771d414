//! The `tracing` bridge: only selected spans are counted and timed, into declared metrics; no
//! span field or event text reaches an output; other layers keep seeing every span.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use telemetry_core::bridge::tracing::TracingBridge;
use telemetry_core::{Report, counter, histogram};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Another layer of the product's: counts every span it sees.
struct Seen(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> Layer<S> for Seen {
    fn on_new_span(
        &self,
        _: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: Context<'_, S>,
    ) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn selected_spans_are_counted_and_timed_and_nothing_else_leaves() {
    let seen = Arc::new(AtomicUsize::new(0));
    let bridge = TracingBridge::new()
        .count(
            "store",
            "search",
            counter!("tracing.store.searches").unwrap(),
        )
        .time(
            "store",
            "search",
            histogram!("tracing.store.search.duration", unit = Nanoseconds).unwrap(),
        )
        .count("store", "flush", counter!("tracing.store.flushes").unwrap());
    let subscriber = tracing_subscriber::registry()
        .with(bridge)
        .with(Seen(seen.clone()));
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..5 {
            let span = tracing::info_span!(
                target: "store",
                "search",
                user = "alice@example.com",
                client = "203.0.113.77",
                query = i
            );
            let _entered = span.enter();
            std::thread::sleep(std::time::Duration::from_millis(1));
            tracing::info!(target: "store", path = "/home/alice/db", "searched");
        }
        // The same name under another target, and an unselected span: not ours.
        let _other = tracing::info_span!(target: "other", "search").entered();
        let _login =
            tracing::info_span!(target: "store", "login", user = "alice@example.com").entered();
        // Counted, not timed.
        let _flush = tracing::info_span!(target: "store", "flush").entered();
    });
    let snap = telemetry_core::snapshot();
    assert_eq!(snap.counter("tracing.store.searches"), Some(5));
    assert_eq!(snap.counter("tracing.store.flushes"), Some(1));
    let duration = snap.histogram("tracing.store.search.duration").unwrap();
    assert_eq!(duration.count(), 5);
    assert!(
        duration.min() >= Some(1_000_000),
        "each span slept 1 ms: {duration:?}"
    );
    assert_eq!(
        seen.load(Ordering::Relaxed),
        8,
        "the other layer saw every span"
    );
    let report = Report::new(telemetry_core::application!(), snap.clone());
    for output in [
        report.to_json(),
        report.anonymized().to_json(),
        telemetry_core::export::prometheus::render_prometheus(&snap),
    ] {
        for canary in ["alice", "203.0.113.77", "/home/", "login"] {
            assert!(!output.contains(canary), "{canary} reached an output");
        }
    }
}

/// A layer that keeps the target and level of every event.
struct Events(Arc<std::sync::Mutex<Vec<(String, tracing::Level, String)>>>);

impl<S: tracing::Subscriber> Layer<S> for Events {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        let meta = event.metadata();
        self.0
            .lock()
            .unwrap()
            .push((meta.target().to_owned(), *meta.level(), message.0));
    }
}

#[test]
fn the_frameworks_own_diagnostics_are_tracing_events_with_the_feature() {
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry().with(Events(events.clone()));
    tracing::subscriber::with_default(subscriber, || {
        // A version that does not fit its grammar is a warning; the disclosure is info.
        let app = telemetry_core::Application::new("app", "1.0 beta");
        assert_eq!(app.version(), telemetry_core::INVALID_APPLICATION_TEXT);
        let decision = telemetry_core::consent::ConsentBuilder::new()
            .environment(|_| None)
            .executable("/usr/bin/app")
            .resolve()
            .unwrap();
        let shown = telemetry_core::disclosure::Disclosure::new(
            "App",
            "App Ltd",
            "setting APP_TELEMETRY=0",
            "https://example.invalid",
        )
        .to_stderr(false)
        .show(&decision);
        assert!(!shown.is_empty());
    });
    let events = events.lock().unwrap();
    assert!(
        events.iter().all(|(target, _, _)| target == "telemetry"),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|(_, level, text)| *level == tracing::Level::INFO && text.contains("App Ltd")),
        "the disclosure: {events:?}"
    );
    assert!(
        events
            .iter()
            .any(|(_, level, text)| *level == tracing::Level::WARN
                && text.contains("does not fit its grammar")),
        "the warning: {events:?}"
    );
}

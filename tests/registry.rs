//! The plain API and the registry's rules.

use telemetry_core::testing::{capture, capture_with};
use telemetry_core::{
    Counter, Gauge, Histogram, MetricKind, RegistryError, Unit, descriptors, snapshot,
};

/// One test at a time: a test that registers a metric changes the registry under another's
/// snapshots (a refresh rebuilds instead of overwriting in place).
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn same_name_same_kind_is_the_same_metric() {
    let _serial = serial();
    let a = Counter::register("registry.shared").unwrap();
    let b = Counter::register("registry.shared").unwrap();
    let snap = capture(|| {
        a.increment();
        b.increment_by(4);
    });
    assert_eq!(snap.counter("registry.shared"), Some(5));
}

#[test]
fn kind_and_unit_conflicts_are_errors_not_merges() {
    let _serial = serial();
    Counter::register("registry.conflict").unwrap();
    let err = Histogram::register("registry.conflict").unwrap_err();
    assert!(matches!(
        err,
        RegistryError::KindConflict {
            existing: MetricKind::Counter,
            requested: MetricKind::Histogram,
            ..
        }
    ));
    let message = err.to_string();
    assert!(
        message.contains("already registered as a counter"),
        "{message}"
    );
    assert!(
        message.contains("tests/registry.rs"),
        "names where it was declared: {message}"
    );

    Histogram::builder("registry.sizes")
        .unit(Unit::Bytes)
        .register()
        .unwrap();
    let err = Histogram::builder("registry.sizes")
        .unit(Unit::Nanoseconds)
        .register()
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::UnitConflict {
                existing: Unit::Bytes,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn invalid_names_are_rejected_with_the_rule() {
    let _serial = serial();
    let err = Counter::register("has space").unwrap_err();
    assert!(matches!(err, RegistryError::InvalidName(_)));
    assert!(err.to_string().contains("e.g. `store.insert`"), "{err}");
}

#[test]
fn gauges_and_callback_gauges() {
    let _serial = serial();
    let g = Gauge::builder("registry.open_files")
        .description("Open files")
        .register()
        .unwrap();
    g.set(10);
    g.add(-3);
    assert_eq!(g.get(), 7);
    assert_eq!(snapshot().gauge("registry.open_files"), Some(7));

    Gauge::builder("registry.projects")
        .register_callback(|| 42)
        .unwrap();
    assert_eq!(snapshot().gauge("registry.projects"), Some(42));
    let err = Gauge::builder("registry.projects")
        .register_callback(|| 1)
        .unwrap_err();
    assert!(matches!(err, RegistryError::DuplicateCallback { .. }));
    assert!(Gauge::register("registry.projects").is_err());
}

#[test]
fn a_panicking_callback_gauge_does_not_reach_the_caller() {
    let _serial = serial();
    Gauge::builder("registry.broken")
        .register_callback(|| panic!("broken callback"))
        .unwrap();
    let snap = snapshot();
    assert_eq!(snap.gauge("registry.broken"), None);
    assert!(snap.gauges.contains_key("registry.broken"));
}

#[test]
fn descriptors_carry_kind_unit_description_and_location() {
    let _serial = serial();
    Histogram::builder("registry.described")
        .description("Payload sizes")
        .unit(Unit::Bytes)
        .register()
        .unwrap();
    let d = descriptors()
        .into_iter()
        .find(|d| d.name == "registry.described")
        .unwrap();
    assert_eq!(
        (d.kind, d.unit, d.description.as_str()),
        (MetricKind::Histogram, Unit::Bytes, "Payload sizes")
    );
    assert!(d.declared_at[0].file.ends_with("registry.rs"));
    assert!(d.declared_at[0].line > 0);
}

#[test]
fn captures_nest_and_see_only_this_thread() {
    let _serial = serial();
    let c = Counter::register("registry.nested").unwrap();
    let (inner, outer) = capture_with(|| {
        c.increment();
        let inner = capture(|| c.increment_by(10));
        c.increment_by(100);
        // Another thread's work is not in this thread's capture.
        std::thread::spawn(move || c.increment_by(1000))
            .join()
            .unwrap();
        inner
    });
    assert_eq!(inner.counter("registry.nested"), Some(10));
    assert_eq!(outer.counter("registry.nested"), Some(111));
    assert!(snapshot().counter("registry.nested").unwrap() >= 1111);
}

#[test]
fn a_panicking_capture_closes_and_keeps_the_values() {
    let _serial = serial();
    let c = Counter::register("registry.capture_panic").unwrap();
    let result = std::panic::catch_unwind(|| {
        capture(|| {
            c.increment();
            panic!("inside a capture");
        })
    });
    assert!(result.is_err());
    let after = capture(|| c.increment());
    assert_eq!(after.counter("registry.capture_panic"), Some(1));
    assert!(snapshot().counter("registry.capture_panic").unwrap() >= 2);
}

#[test]
fn histogram_quantiles_from_the_plain_api() {
    let _serial = serial();
    let h = Histogram::builder("registry.latency")
        .unit(Unit::Nanoseconds)
        .register()
        .unwrap();
    let snap = capture(|| {
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        h.record_duration(std::time::Duration::from_millis(2));
    });
    let s = snap.histogram("registry.latency").unwrap();
    assert_eq!(s.count(), 1001);
    assert_eq!(s.max(), Some(2_000_000));
    let p50 = s.quantile(0.5).unwrap() as f64;
    assert!((p50 - 501_000.0).abs() / 501_000.0 <= 1.0 / 128.0, "{p50}");
}

#[test]
fn snapshot_delta_gives_interval_counts() {
    let _serial = serial();
    let c = Counter::register("registry.delta").unwrap();
    let h = Histogram::register("registry.delta_values").unwrap();
    let ((), first) = capture_with(|| {
        c.increment_by(5);
        h.record(10);
    });
    let mut second = first.clone();
    second.merge(&capture(|| {
        c.increment_by(2);
        h.record(1_000);
    }));
    let d = second.delta(&first);
    assert_eq!(d.counter("registry.delta"), Some(2));
    let dh = d.histogram("registry.delta_values").unwrap();
    assert_eq!(dh.count(), 1);
    assert_eq!(dh.sum(), 1_000);
}

mod never_called {
    //! Functions no test calls: the linker lists their call sites anyway.
    #![allow(dead_code)]
    use telemetry_core::{ErrorKind, count_usage, timed};

    #[derive(Debug, ErrorKind)]
    pub enum Failure {
        Missing,
    }

    /// Looks nothing up.
    #[count_usage]
    #[timed]
    pub fn derived_names() {}

    #[count_usage(name = "registry.never_called.given", description = "Given text.")]
    pub async fn given_name() {}

    #[count_usage(name = "registry.never_called.labeled", labels(ok = ok), max_series = 4)]
    pub fn labeled(ok: bool) -> bool {
        ok
    }

    #[count_usage(name = "registry.never_called.fallible", errors)]
    pub fn fallible() -> Result<(), Failure> {
        Err(Failure::Missing)
    }
}

#[test]
fn call_sites_that_never_ran_are_described_with_their_metadata() {
    let _serial = serial();
    let all = descriptors();
    let find = |name: &str| {
        all.iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("{name} is not listed"))
    };
    let module = module_path!();
    let calls = find(&format!("{module}::never_called::derived_names.calls"));
    assert_eq!(calls.kind, MetricKind::Counter);
    assert_eq!(calls.description, "Looks nothing up.");
    assert_eq!(
        calls.declared_at[0].module_path,
        format!("{module}::never_called")
    );
    assert!(calls.declared_at[0].file.ends_with("registry.rs"));
    assert!(calls.declared_at[0].line > 0);
    let duration = find(&format!("{module}::never_called::derived_names.duration"));
    assert_eq!(duration.kind, MetricKind::Histogram);
    assert_eq!(duration.unit, Unit::Nanoseconds);
    assert_eq!(
        find("registry.never_called.given").description,
        "Given text."
    );
    let labeled = find("registry.never_called.labeled");
    assert_eq!(labeled.max_series, Some(4));
    assert_eq!(labeled.labels.len(), 1);
    assert_eq!(labeled.labels[0].name, "ok");
    assert_eq!(
        find("registry.never_called.fallible.errors").labels[0].name,
        "kind"
    );
    // They are in every snapshot, at zero.
    assert_eq!(snapshot().counter("registry.never_called.given"), Some(0));
}

/// The families of `snap` whose names start with `prefix`, as JSON (for comparing one test's
/// metrics while other tests record into theirs).
fn families_under(snap: &telemetry_core::Snapshot, prefix: &str) -> serde_json::Value {
    let mut own = telemetry_core::Snapshot::default();
    own.counters.extend(
        (snap.counters.iter())
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(n, f)| (n.clone(), f.clone())),
    );
    own.gauges.extend(
        (snap.gauges.iter())
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(n, f)| (n.clone(), f.clone())),
    );
    own.histograms.extend(
        (snap.histograms.iter())
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(n, f)| (n.clone(), f.clone())),
    );
    serde_json::to_value(&own).unwrap()
}

#[test]
fn a_refreshed_snapshot_equals_a_fresh_one_and_reuses_its_allocations() {
    let _serial = serial();
    let calls = Counter::register("refresh.calls").unwrap();
    let latency = Histogram::register("refresh.latency").unwrap();
    let by_shard = Counter::builder("refresh.by_shard")
        .labels(&["shard"])
        .register_labeled::<(u8,)>()
        .unwrap();
    Gauge::builder("refresh.callback")
        .register_callback(|| 7)
        .unwrap();
    calls.increment();
    latency.record(1_000);
    by_shard.increment((1u8,));

    let mut kept = snapshot();
    let series_buffer = kept.counters["refresh.calls"].series.as_ptr();
    let buckets_before = kept.histogram("refresh.latency").unwrap().buckets().count();
    calls.increment_by(4);
    latency.record(2_000_000);
    by_shard.increment((1u8,));
    kept.refresh();
    assert_eq!(kept.counter("refresh.calls"), Some(5));
    assert_eq!(
        kept.counter_with("refresh.by_shard", &[("shard", "1")]),
        Some(2)
    );
    let h = kept.histogram("refresh.latency").unwrap();
    assert_eq!(
        (h.count(), h.min(), h.max()),
        (2, Some(1_000), Some(2_000_000))
    );
    assert_eq!(h.buckets().count(), buckets_before + 1);
    assert_eq!(
        kept.gauge("refresh.callback"),
        Some(7),
        "one callback value, not two"
    );
    assert_eq!(kept.gauges["refresh.callback"].series.len(), 1);
    assert_eq!(
        kept.counters["refresh.calls"].series.as_ptr(),
        series_buffer,
        "values were overwritten in place"
    );
    assert_eq!(
        families_under(&kept, "refresh."),
        families_under(&snapshot(), "refresh.")
    );

    // New series and new metrics appear, as in a fresh snapshot.
    by_shard.increment((2u8,));
    let late = Counter::register("refresh.late").unwrap();
    late.increment();
    kept.refresh();
    assert_eq!(
        kept.counter_with("refresh.by_shard", &[("shard", "2")]),
        Some(1)
    );
    assert_eq!(kept.counter("refresh.late"), Some(1));
    assert_eq!(
        families_under(&kept, "refresh."),
        families_under(&snapshot(), "refresh.")
    );

    // A snapshot that holds other metrics (here, deserialized with a stale value and a metric
    // that does not exist) is rebuilt.
    let mut foreign: telemetry_core::Snapshot =
        serde_json::from_str(r#"{"counters":{"refresh.calls":{"series":[{"value":99}]},"refresh.gone":{"series":[{"value":1}]}}}"#)
            .unwrap();
    foreign.refresh();
    assert_eq!(foreign.counter("refresh.calls"), Some(5));
    assert_eq!(foreign.counter("refresh.gone"), None);
    assert_eq!(
        families_under(&foreign, "refresh."),
        families_under(&snapshot(), "refresh.")
    );
}

#[test]
fn a_refresh_after_new_gauges_gives_each_callback_gauge_one_series_and_late_descriptions() {
    let _serial = serial();
    Gauge::builder("refresh2.a_callback")
        .register_callback(|| 3)
        .unwrap();
    let undescribed = Counter::register("refresh2.counter").unwrap();
    undescribed.increment();
    let mut kept = snapshot();
    assert_eq!(&*kept.counters["refresh2.counter"].description, "");

    // A gauge that sorts after the callback gauge, and a description given by a later
    // registration of the same counter.
    Gauge::register("refresh2.b_plain").unwrap().set(5);
    Counter::builder("refresh2.counter")
        .description("Described later")
        .register()
        .unwrap();
    kept.refresh();
    // Run once: a callback run twice would give its family two series.
    assert_eq!(kept.gauges["refresh2.a_callback"].series.len(), 1);
    assert_eq!(kept.gauge("refresh2.a_callback"), Some(3));
    assert_eq!(kept.gauge("refresh2.b_plain"), Some(5));
    assert_eq!(
        &*kept.counters["refresh2.counter"].description,
        "Described later"
    );
    assert_eq!(
        families_under(&kept, "refresh2."),
        families_under(&snapshot(), "refresh2.")
    );
}

//! The plain API and the registry's rules.

use telemetry_core::testing::{capture, capture_with};
use telemetry_core::{MetricKind, RegistryError, Unit, descriptors, snapshot};

/// One test at a time: a test that registers a metric changes the registry under another's
/// snapshots (a refresh rebuilds instead of overwriting in place).
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn same_name_same_kind_is_the_same_metric() {
    let _serial = serial();
    let a = telemetry_core::counter!("registry.shared").unwrap();
    let b = telemetry_core::counter!("registry.shared").unwrap();
    let snap = capture(|| {
        a.increment();
        b.increment_by(4);
    });
    assert_eq!(snap.counter("registry.shared"), Some(5));
}

#[test]
fn kind_and_unit_conflicts_are_errors_not_merges() {
    let _serial = serial();
    // Both are declared when the registry loads, in link order: whichever came first keeps
    // the name, and the other is refused.
    let counter = telemetry_core::counter!("registry.conflict").map(drop);
    let histogram = telemetry_core::histogram!("registry.conflict").map(drop);
    assert_ne!(counter.is_ok(), histogram.is_ok());
    let err = counter.err().or(histogram.err()).unwrap();
    assert!(matches!(err, RegistryError::KindConflict { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("already registered as a"), "{message}");
    assert!(
        message.contains("tests/registry.rs"),
        "names where it was declared: {message}"
    );

    let bytes = telemetry_core::histogram!("registry.sizes", unit = Bytes).map(drop);
    let nanos = telemetry_core::histogram!("registry.sizes", unit = Nanoseconds).map(drop);
    assert_ne!(bytes.is_ok(), nanos.is_ok());
    let err = bytes.err().or(nanos.err()).unwrap();
    assert!(matches!(err, RegistryError::UnitConflict { .. }), "{err}");
}

/// A declaration of `kind` named `name`, as the macros write it.
const fn declaration(
    kind: MetricKind,
    name: &'static str,
) -> telemetry_core::__private::Declaration {
    telemetry_core::__private::Declaration::new(
        kind,
        name,
        "",
        Unit::None,
        &[],
        &[],
        16,
        false,
        module_path!(),
        file!(),
        line!(),
    )
}

/// A declaration built at run time (a leaked name, past the macros) is not among those the
/// linker collected: refused, and nothing is registered under its name.
#[test]
fn a_declaration_made_at_run_time_is_refused() {
    use telemetry_core::__private::Declaration;
    let _serial = serial();
    let name: &'static str = format!("registry.user_{}", "alice").leak();
    for kind in [
        MetricKind::Counter,
        MetricKind::Gauge,
        MetricKind::Histogram,
    ] {
        let leaked: &'static Declaration = Box::leak(Box::new(declaration(kind, name)));
        let err = match kind {
            MetricKind::Counter => leaked.counter().map(drop).unwrap_err(),
            MetricKind::Gauge => leaked.gauge().map(drop).unwrap_err(),
            _ => leaked.histogram().map(drop).unwrap_err(),
        };
        assert_eq!(err, RegistryError::Undeclared { name: name.into() });
        assert!(err.to_string().contains("`counter!`"), "{err}");
        assert!(leaked.gauge_callback(|| 1).is_err());
        assert!(leaked.labeled_counter::<(bool,)>().is_err());
    }
    assert!(descriptors().iter().all(|d| d.name != name));
    assert!(snapshot().counter(name).is_none());
}

/// A declaration collected by the linker but used as another kind is refused too.
#[test]
fn a_declaration_is_used_as_its_own_kind_only() {
    let _serial = serial();
    #[telemetry_core::__private::linkme::distributed_slice(telemetry_core::__private::DECLARATIONS)]
    #[linkme(crate = telemetry_core::__private::linkme)]
    static COUNTER: telemetry_core::__private::Declaration =
        declaration(MetricKind::Counter, "registry.declared_counter");
    assert!(COUNTER.counter().is_ok());
    assert!(matches!(
        COUNTER.histogram(),
        Err(RegistryError::Undeclared { .. })
    ));
}

#[test]
fn gauges_and_callback_gauges() {
    let _serial = serial();
    let g = telemetry_core::gauge!("registry.open_files", description = "Open files").unwrap();
    g.set(10);
    g.add(-3);
    assert_eq!(g.get(), 7);
    assert_eq!(snapshot().gauge("registry.open_files"), Some(7));

    telemetry_core::gauge!("registry.projects", callback = || 42).unwrap();
    assert_eq!(snapshot().gauge("registry.projects"), Some(42));
    let err = telemetry_core::gauge!("registry.projects", callback = || 1).unwrap_err();
    assert!(matches!(err, RegistryError::DuplicateCallback { .. }));

    // A plain gauge and a callback gauge of one name: whichever the linker put first keeps
    // the name, and the other is refused.
    let callback = telemetry_core::gauge!("registry.pair", callback = || 1).map(drop);
    let plain = telemetry_core::gauge!("registry.pair").map(drop);
    assert_ne!(callback.is_ok(), plain.is_ok());
    let err = callback.err().or(plain.err()).unwrap();
    assert!(matches!(err, RegistryError::DuplicateCallback { .. }));
}

#[test]
fn a_panicking_callback_gauge_does_not_reach_the_caller() {
    let _serial = serial();
    telemetry_core::gauge!("registry.broken", callback = || panic!("broken callback")).unwrap();
    let snap = snapshot();
    assert_eq!(snap.gauge("registry.broken"), None);
    assert!(snap.gauges.contains_key("registry.broken"));
}

#[test]
fn descriptors_carry_kind_unit_description_and_location() {
    let _serial = serial();
    telemetry_core::histogram!(
        "registry.described",
        description = "Payload sizes",
        unit = Bytes
    )
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
    let c = telemetry_core::counter!("registry.nested").unwrap();
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
    let c = telemetry_core::counter!("registry.capture_panic").unwrap();
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
    let h = telemetry_core::histogram!("registry.latency", unit = Nanoseconds).unwrap();
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
    let c = telemetry_core::counter!("registry.delta").unwrap();
    let h = telemetry_core::histogram!("registry.delta_values").unwrap();
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
    let calls = telemetry_core::counter!("refresh.calls").unwrap();
    let latency = telemetry_core::histogram!("refresh.latency").unwrap();
    let by_shard = telemetry_core::counter!("refresh.by_shard", labels(shard: u8)).unwrap();
    telemetry_core::gauge!("refresh.callback", callback = || 7).unwrap();
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
    let late = telemetry_core::counter!("refresh.late").unwrap();
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
    telemetry_core::gauge!("refresh2.a_callback", callback = || 3).unwrap();
    let undescribed = telemetry_core::counter!("refresh2.counter").unwrap();
    undescribed.increment();
    let mut kept = snapshot();
    // A description given by another declaration of the same counter is there from the
    // start: every declaration is read when the registry loads.
    assert_eq!(
        &*kept.counters["refresh2.counter"].description,
        "Described later"
    );

    // A gauge that sorts after the callback gauge.
    telemetry_core::gauge!("refresh2.b_plain").unwrap().set(5);
    telemetry_core::counter!("refresh2.counter", description = "Described later").unwrap();
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

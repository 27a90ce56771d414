//! Turning recording off: nothing is recorded, the clock is not read, values are kept, and
//! turning it on again resumes. (Its own test binary: the switch is process-wide.)

use telemetry_core::testing::capture;
use telemetry_core::{count_usage, is_recording, set_recording, timed};

#[count_usage(name = "switch.calls")]
#[timed(name = "switch.duration")]
fn work() -> u32 {
    1
}

#[test]
fn off_records_nothing_and_on_resumes() {
    let counter = telemetry_core::counter!("switch.handle").unwrap();
    let histogram = telemetry_core::histogram!("switch.values").unwrap();
    let before = capture(|| {
        work();
        counter.increment();
        histogram.record(5);
    });
    assert_eq!(before.counter("switch.calls"), Some(1));

    set_recording(false);
    assert!(!is_recording());
    let off = capture(|| {
        assert_eq!(work(), 1, "the function still runs");
        counter.increment();
        histogram.record(5);
    });
    assert_eq!(off.counter("switch.calls"), Some(0));
    assert_eq!(off.histogram("switch.duration").unwrap().count(), 0);
    assert_eq!(off.counter("switch.handle"), Some(0));
    assert_eq!(off.histogram("switch.values").unwrap().count(), 0);
    assert_eq!(
        telemetry_core::snapshot().counter("switch.calls"),
        Some(1),
        "kept"
    );

    set_recording(true);
    let on = capture(|| {
        work();
    });
    assert_eq!(on.counter("switch.calls"), Some(1));
    assert_eq!(on.histogram("switch.duration").unwrap().count(), 1);
}

//! The snapshot as it leaves the machine: [`anonymize_snapshot`].

use super::Anonymizer;
use crate::engine::snapshot::Snapshot;

/// The snapshot as it leaves the machine: every counter, gauge and histogram number rounded
/// (a histogram's bucket bounds are kept, since they are the layout, not data). Metric names,
/// units, descriptions and label values come from the program's code and typed label values,
/// so they are kept.
pub fn anonymize_snapshot(snapshot: &Snapshot, a: &Anonymizer) -> Snapshot {
    let mut out = snapshot.clone();
    for family in out.counters.values_mut() {
        for series in &mut family.series {
            series.value = a.round(series.value);
        }
    }
    for family in out.gauges.values_mut() {
        for series in &mut family.series {
            series.value = a.round_signed(series.value);
        }
    }
    for family in out.histograms.values_mut() {
        for series in &mut family.series {
            series.value = series.value.map_numbers(|n| a.round(n));
        }
    }
    out
}

use telemetry_core::Bounded;

/// A range wide enough for an IPv4 address is not a closed set.
fn main() {
    let _ = Bounded::<{ u32::MAX as u64 }>::new(3_405_803_783u32);
}

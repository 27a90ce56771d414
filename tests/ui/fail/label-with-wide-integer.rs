use telemetry_core::count_usage;

/// An IPv4 address fits a `u32`: wide integers need a declared range (`Bounded<MAX>`) or a
/// bucket (`Pow2Bucket`).
#[count_usage(name = "server.peer", labels(peer = peer))]
fn peer(peer: u32) {
    let _ = peer;
}

fn main() {
    peer(3_405_803_783);
}

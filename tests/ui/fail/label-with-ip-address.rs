use std::net::IpAddr;
use telemetry_core::count_usage;

#[count_usage(name = "server.connect", labels(peer = peer))]
fn connect(peer: IpAddr) {
    drop(peer);
}

fn main() {
    connect(IpAddr::from([127, 0, 0, 1]));
}

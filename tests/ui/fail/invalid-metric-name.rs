use telemetry_core::timed;

#[timed(name = "search latency")]
fn search() {}

fn main() {
    search();
}

use telemetry_core::{count_usage, timed};

#[count_usage(name = "store.search")]
#[timed(name = "store.search")]
fn search() {}

fn main() {
    search();
}

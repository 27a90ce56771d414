use telemetry_core::count_usage;

#[count_usage(name = "store.get", labels(key = key))]
fn get(key: &str) -> usize {
    key.len()
}

fn main() {
    get("k");
}

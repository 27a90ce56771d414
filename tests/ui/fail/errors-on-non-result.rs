use telemetry_core::count_usage;

#[count_usage(name = "store.len", errors)]
fn len(items: &[u8]) -> usize {
    items.len()
}

fn main() {
    len(&[]);
}

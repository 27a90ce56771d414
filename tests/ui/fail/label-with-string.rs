use telemetry_core::count_usage;

#[count_usage(name = "store.insert", labels(collection = collection))]
fn insert(collection: String) {
    drop(collection);
}

fn main() {
    insert(String::from("customers"));
}

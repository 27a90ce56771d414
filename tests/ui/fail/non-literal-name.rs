use telemetry_core::count_usage;

const NAME: &str = "store.insert";

#[count_usage(name = NAME)]
fn insert() {}

fn main() {
    insert();
}

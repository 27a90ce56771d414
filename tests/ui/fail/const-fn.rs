use telemetry_core::count_usage;

#[count_usage]
const fn answer() -> u32 {
    42
}

fn main() {
    let _ = answer();
}

use telemetry_core::{count_usage, timed};

#[count_usage]
#[timed]
fn length(text: &str) -> usize {
    let n: u32 = text.len();
    n as usize
}

fn main() {
    length("abc");
}

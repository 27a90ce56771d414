use telemetry_core::{count_usage, LabelValue};

#[derive(Clone, Copy, LabelValue)]
enum Tier {
    Free,
    Paid,
}

fn tier_of(user: u32) -> Tier {
    if user % 2 == 0 { Tier::Free } else { Tier::Paid }
}

/// The manifest lists a label's values before the program runs, so the attribute must see
/// the label's type: here the value comes from a call whose type it cannot see.
#[count_usage(name = "app.requests", labels(tier = tier_of(user)))]
fn request(user: u32) {
    let _ = user;
}

fn main() {
    request(1);
}

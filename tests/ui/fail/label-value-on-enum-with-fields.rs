use telemetry_core::LabelValue;

#[derive(LabelValue)]
enum Outcome {
    Ok,
    Failed(String),
}

fn main() {}

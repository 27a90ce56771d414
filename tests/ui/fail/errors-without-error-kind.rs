use telemetry_core::count_usage;

#[derive(Debug)]
struct ParseFailure(String);

#[count_usage(name = "config.parse", errors)]
fn parse(text: &str) -> Result<u32, ParseFailure> {
    text.parse().map_err(|_| ParseFailure(text.to_owned()))
}

fn main() {
    let _ = parse("1");
}

// `?` in an `errors` function converts the error as the compiler's `?` does; a missing
// conversion is reported at the `?`.
use telemetry_core::{ErrorKind, count_usage};

#[derive(Debug, ErrorKind)]
enum StoreError {
    Full,
}

#[count_usage(errors)]
fn parse(text: &str) -> Result<u32, StoreError> {
    let n: u32 = text.parse()?;
    if n > 10 {
        return Err(StoreError::Full);
    }
    Ok(n)
}

fn main() {
    let _ = parse("1");
}

use telemetry_core::{count_usage, LabelValue};

/// A label whose type is a generic parameter cannot be listed before the program runs.
#[count_usage(name = "generic.calls", labels(backend = backend))]
pub fn open<B: LabelValue>(backend: B) {
    let _ = backend;
}

/// Nor can the kinds of a generic error type.
#[count_usage(name = "generic.errors", errors)]
pub fn connect<E: telemetry_core::ErrorKind>(fail: Option<E>) -> Result<(), E> {
    fail.map_or(Ok(()), Err)
}

fn main() {}

use telemetry_core::ErrorKind;

/// A hand-written `ErrorKind` must say why its kinds are safe (`SAFE_BECAUSE`).
#[derive(Debug)]
struct DbError(String);

impl ErrorKind for DbError {
    fn error_kind(&self) -> &'static str {
        self.0.clone().leak()
    }
    const KINDS: &'static [&'static str] = &[];
}

fn main() {}

use std::borrow::Cow;
use telemetry_core::labels::Values;
use telemetry_core::{ErrorKind, LabelValue};

/// A hand-written label type lists its values as a constant: a list made at run time (here
/// from the user's home directory) does not compile, and neither do error kinds made so.
struct Home(String);

impl LabelValue for Home {
    const SAFE_BECAUSE: &'static str = "claims to be safe";
    const VALUES: Values = Values::listed(&[std::env::var("HOME").unwrap().leak()]);
    fn label_key(&self) -> u64 {
        self.0.len() as u64
    }
    fn label_text(&self) -> Cow<'static, str> {
        Cow::Owned(self.0.clone())
    }
}

#[derive(Debug)]
struct Failed;

impl ErrorKind for Failed {
    const SAFE_BECAUSE: &'static str = "claims to be safe";
    const KINDS: &'static [&'static str] = &[String::from("x").leak()];
    fn error_kind(&self) -> &'static str {
        "x"
    }
}

fn main() {}

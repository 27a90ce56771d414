use telemetry_core::Counter;

/// Metric names are text fixed in the code: a name made at run time (here with a user's id
/// in it) does not compile.
fn main() {
    let user = 42;
    let _ = Counter::builder(&format!("logins.user_{user}")).register();
}

/// Metric names are text fixed in the code: a name made at run time (here with a user's id
/// in it, leaked to get a `&'static str`) does not compile.
fn main() {
    let user = 42;
    let name: &'static str = format!("logins.user_{user}").leak();
    let _ = telemetry_core::counter!(name);
}

use telemetry_core::Pii;

fn main() {
    let logins = telemetry_core::counter!("auth.logins", labels(user: Pii<String>))
        .unwrap();
    logins.increment((Pii::new(String::from("alice")),));
}

use telemetry_core::{Counter, Pii};

fn main() {
    let logins = Counter::builder("auth.logins")
        .labels(&["user"])
        .register_labeled::<(Pii<String>,)>()
        .unwrap();
    logins.increment((Pii::new(String::from("alice")),));
}

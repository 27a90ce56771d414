use std::sync::LazyLock;
use telemetry_core::count_usage;

static HOST: LazyLock<String> = LazyLock::new(|| "db01.example.com".to_owned());

/// `&'static str` made at run time (a leaked `String`, a `LazyLock<String>`) is text like any
/// other: only literals and `#[derive(LabelValue)]` enums may be text labels.
#[count_usage(name = "server.connect", labels(host = HOST.as_str()))]
fn connect() {}

#[count_usage(name = "server.tenant", labels(tenant = tenant))]
fn tenant(tenant: &'static str) {
    let _ = tenant;
}

fn main() {
    connect();
    tenant(String::from("alice@example.com").leak());
}

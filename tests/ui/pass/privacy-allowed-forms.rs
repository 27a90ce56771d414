//! Every allowed form of labels and of `#[derive(Telemetry)]` fields.
#![deny(warnings)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use telemetry_core::anonymize::HashedLabel;
use telemetry_core::{count_usage, timed, Bounded, LabelValue, Pii, Pow2Bucket, Telemetry};

#[derive(Clone, Copy, LabelValue)]
pub enum Backend {
    Postgres,
    #[label(rename = "sqlite3")]
    Sqlite,
}

#[count_usage(
    name = "pass.labels",
    labels(
        backend = backend,
        ok = true,
        code = Bounded::<599>::new(404u16),
        signed = Bounded::<10>::signed(-1i64),
        kind = "static",
        size = Pow2Bucket::new(n as u64),
        small = 7u8,
    ),
    max_series = 10
)]
#[timed(name = "pass.labels.duration", labels(backend = backend, tier: Backend = pick(n)))]
pub fn labeled(backend: Backend, n: usize) -> usize {
    n
}

fn pick(n: usize) -> Backend {
    if n % 2 == 0 { Backend::Postgres } else { Backend::Sqlite }
}

/// A nested section.
#[derive(Telemetry)]
pub struct Inner {
    pub count: u8,
}

/// A unit enum section value.
#[derive(Telemetry)]
pub enum Mode {
    Fast,
    Safe,
}

/// Every field form.
#[derive(Telemetry)]
#[telemetry(section = "all_forms")]
pub struct AllForms {
    pub counter: u64,
    pub signed: i32,
    pub ratio: f64,
    pub flag: bool,
    pub backend: Backend,
    pub mode: Mode,
    #[telemetry(verbatim = "a constant of this program")]
    pub kind: &'static str,
    pub uptime: std::time::Duration,
    pub inner: Inner,
    pub maybe: Option<u32>,
    pub list: Vec<Inner>,
    pub by_backend: BTreeMap<Backend, u64>,
    #[telemetry(hash)]
    pub collection_name: String,
    #[telemetry(hash)]
    pub data_path: PathBuf,
    #[telemetry(hash)]
    pub peer_ip: IpAddr,
    #[telemetry(hash)]
    pub maybe_name: Option<String>,
    #[telemetry(hash_url)]
    pub endpoint_url: String,
    #[pii]
    #[telemetry(hash)]
    pub user: Pii<String>,
    #[telemetry(pii, skip)]
    pub note: String,
    #[telemetry(skip)]
    pub email: Pii<String>,
    #[telemetry(not_pii = "a number of hosts, not a host")]
    pub host_count: u32,
    #[telemetry(verbatim = "our own version string")]
    pub version: String,
    #[telemetry(rename = "renamedField")]
    pub renamed: u8,
}

fn main() {
    labeled(Backend::Sqlite, 3);
    let tenants = telemetry_core::counter!("pass.tenants", labels(tenant: HashedLabel))
        .unwrap();
    tenants.increment((HashedLabel::new("acme"),));
    let f = AllForms {
        counter: 1,
        signed: -1,
        ratio: 0.5,
        flag: true,
        backend: Backend::Postgres,
        mode: Mode::Fast,
        kind: "k",
        uptime: std::time::Duration::from_secs(1),
        inner: Inner { count: 1 },
        maybe: None,
        list: vec![],
        by_backend: BTreeMap::new(),
        collection_name: "c".into(),
        data_path: PathBuf::from("/home/u"),
        peer_ip: IpAddr::from([10, 0, 0, 1]),
        maybe_name: None,
        endpoint_url: "https://x".into(),
        user: Pii::new("u".into()),
        note: String::new(),
        email: Pii::new("e".into()),
        host_count: 2,
        version: "1".into(),
        renamed: 0,
    };
    let _ = (&f.note, &f.email, Mode::Safe);
    let mut report = telemetry_core::Report::collect(telemetry_core::application!());
    report.add_section(&f);
    assert!(!report.to_json().contains("/home/u"));
}

//! Several stateless collectors on one ClickHouse: a manifest registered through one is used
//! by the other, a report sent to both is stored once, and a deletion through either removes
//! it for both.

mod common;

use common::{Fake, Running, send};
use std::sync::Arc;
use std::time::Duration;
use telemetry_collector::storage::Storage;
use telemetry_collector::storage::clickhouse::ClickHouseStorage;

#[test]
fn two_collectors_on_one_clickhouse_share_manifests_reports_and_deletions() {
    let Some(url) = common::clickhouse_url() else {
        return;
    };
    let database = common::fresh_database("two");
    let open =
        || -> Arc<dyn Storage> { Arc::new(ClickHouseStorage::open(&url, &database).unwrap()) };
    let (a, b) = (
        Running::start(common::config(), open()),
        Running::start(common::config(), open()),
    );
    common::register(&a.url, &["1.0.0"]);
    // The other collector reads manifests registered beside it at most once a second.
    std::thread::sleep(Duration::from_millis(1_100));
    let installation = uuid::Uuid::new_v4();
    let report = common::report(&Fake {
        installation,
        ..Fake::default()
    });
    let first = send(&b.url, &report);
    assert_eq!(
        (first.status, first.json()["status"].as_str()),
        (200, Some("accepted")),
        "{first:?}"
    );
    let again = send(&a.url, &report);
    assert_eq!(
        (again.status, again.json()["status"].as_str()),
        (200, Some("duplicate")),
        "{again:?}"
    );
    let storage = open();
    assert_eq!(storage.count_reports(common::PRODUCT, None).unwrap(), 1);
    let deleted = common::delete(
        &format!("{}/v1/installations/{installation}", a.url),
        Some(common::TOKEN),
    );
    assert_eq!(
        (deleted.status, deleted.json()["reports"].as_u64()),
        (200, Some(1)),
        "{deleted:?}"
    );
    let page = common::get(&format!("{}/", b.url)).body;
    assert!(
        !page.contains("\nsuite.search.calls\n"),
        "the other collector still shows the deleted installation"
    );
    assert_eq!(storage.count_reports(common::PRODUCT, None).unwrap(), 0);
}

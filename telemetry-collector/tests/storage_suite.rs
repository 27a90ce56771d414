//! One suite, every backend: SQLite always, ClickHouse when `scripts/with-clickhouse.sh`
//! started one (in CI a missing ClickHouse fails). Reports go through the real validation,
//! as the server would store them.

mod common;

use common::{Fake, backends};
use std::collections::BTreeMap;
use telemetry_collector::ingest::stored_at;
use telemetry_collector::manifest_registry::{ManifestRegistry, Registration};
use telemetry_collector::rollup::Rollup;
use telemetry_collector::storage::{Inserted, Period, Storage, StoredReport};
use telemetry_collector::validate::validate;

/// 2026-12-07 (a Monday), 12:00 UTC, in seconds since 1970.
const MONDAY_NOON: u64 = 1_796_644_800;
const DAY: u64 = 86_400;

fn registry() -> ManifestRegistry {
    let mut registry = ManifestRegistry::new();
    let json = common::manifest().to_json();
    for version in ["1.0.0", "2.0.0"] {
        registry
            .add(Registration::from_json(common::PRODUCT, version, json.as_bytes()).unwrap())
            .unwrap();
    }
    registry
}

fn stored(registry: &ManifestRegistry, fake: &Fake<'_>, at: u64) -> StoredReport {
    let json = common::report(fake).to_string();
    stored_at(validate(registry, json.as_bytes(), None).unwrap(), at)
}

fn each_backend(label: &str, test: impl Fn(&str, &dyn Storage)) {
    for (name, storage) in backends(label) {
        test(name, &*storage);
    }
}

#[test]
fn a_report_is_stored_once_per_id_and_a_different_body_under_a_known_id_is_refused() {
    let registry = registry();
    each_backend("dedup", |backend, storage| {
        let a = stored(&registry, &Fake::default(), MONDAY_NOON);
        let mut forged = a.clone();
        forged.body = forged.body.replace("\"shards\":3", "\"shards\":4");
        assert_ne!(forged.body, a.body);
        // The same report spelled otherwise (indented, as a person might resend it).
        let mut respelled = a.clone();
        let value: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        respelled.body = serde_json::to_string_pretty(&value).unwrap();
        assert_ne!(respelled.body, a.body);
        let b = stored(&registry, &Fake::default(), MONDAY_NOON);
        assert_eq!(
            storage.insert(std::slice::from_ref(&a)).unwrap(),
            [Inserted::New],
            "{backend}"
        );
        assert_eq!(
            storage
                .insert(&[a.clone(), b.clone(), b.clone(), respelled, forged])
                .unwrap(),
            [
                Inserted::Duplicate,
                Inserted::New,
                Inserted::Duplicate,
                Inserted::Duplicate,
                Inserted::Conflict
            ],
            "{backend}"
        );
        assert_eq!(
            storage.count_reports(common::PRODUCT, None).unwrap(),
            2,
            "{backend}"
        );
        assert_eq!(
            storage
                .count_reports(common::PRODUCT, Some(a.installation))
                .unwrap(),
            1,
            "{backend}"
        );
        // The duplicates added no rollup contribution either.
        let rollup = Rollup::compute(storage, common::PRODUCT, Period::Day, "2026-12-01").unwrap();
        let searched: u64 = rollup
            .features
            .iter()
            .filter(|f| f.feature == "suite.search.calls")
            .map(|f| f.installations)
            .sum();
        assert_eq!(searched, 2, "{backend}");
    });
}

#[test]
fn shares_of_installations_by_day_week_version_and_os() {
    let registry = registry();
    each_backend("shares", |backend, storage| {
        let (a, b, c) = (
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4(),
        );
        let search = &[("suite.search.calls", 3)][..];
        let both = &[("suite.search.calls", 1), ("suite.export.calls", 2)][..];
        let none: &[(&str, u64)] = &[];
        let reports = vec![
            // Monday: a (1.0.0) searches twice (two reports), b (1.0.0) exports and searches.
            stored(
                &registry,
                &Fake {
                    installation: a,
                    features: search,
                    ..Fake::default()
                },
                MONDAY_NOON,
            ),
            stored(
                &registry,
                &Fake {
                    installation: a,
                    features: search,
                    ..Fake::default()
                },
                MONDAY_NOON + 60,
            ),
            stored(
                &registry,
                &Fake {
                    installation: b,
                    features: both,
                    ..Fake::default()
                },
                MONDAY_NOON,
            ),
            // Monday: c on 2.0.0 and windows uses nothing.
            stored(
                &registry,
                &Fake {
                    installation: c,
                    features: none,
                    version: "2.0.0",
                    os: "windows",
                    ..Fake::default()
                },
                MONDAY_NOON,
            ),
            // Tuesday: only a, exporting.
            stored(
                &registry,
                &Fake {
                    installation: a,
                    features: &[("suite.export.calls", 1)],
                    ..Fake::default()
                },
                MONDAY_NOON + DAY,
            ),
        ];
        assert!(
            storage
                .insert(&reports)
                .unwrap()
                .iter()
                .all(|i| *i == Inserted::New)
        );

        let days = Rollup::compute(storage, common::PRODUCT, Period::Day, "2026-12-01").unwrap();
        let share = |r: &Rollup, period: &str, feature: &str, version: &str, os: &str| {
            r.features
                .iter()
                .find(|f| {
                    f.period == period && f.feature == feature && f.version == version && f.os == os
                })
                .map(|f| (f.installations, f.of))
        };
        assert_eq!(
            share(&days, "2026-12-07", "suite.search.calls", "1.0.0", "linux"),
            Some((2, 2)),
            "{backend}"
        );
        assert_eq!(
            share(&days, "2026-12-07", "suite.export.calls", "1.0.0", "linux"),
            Some((1, 2)),
            "{backend}"
        );
        assert_eq!(
            share(
                &days,
                "2026-12-07",
                "suite.search.calls",
                "2.0.0",
                "windows"
            ),
            None,
            "{backend}"
        );
        assert_eq!(
            share(&days, "2026-12-08", "suite.export.calls", "1.0.0", "linux"),
            Some((1, 1)),
            "{backend}"
        );
        assert_eq!(
            share(&days, "2026-12-08", "suite.search.calls", "1.0.0", "linux"),
            None,
            "{backend}"
        );
        let windows: Vec<_> = days
            .installations
            .iter()
            .filter(|c| c.os == "windows")
            .collect();
        assert_eq!(windows.len(), 1, "{backend}");
        assert_eq!(
            (windows[0].version.as_str(), windows[0].installations),
            ("2.0.0", 1),
            "{backend}"
        );

        let weeks = Rollup::compute(storage, common::PRODUCT, Period::Week, "2026-11-30").unwrap();
        // Over the week a exported too (on Tuesday): 2 of 2 linux installations exported.
        assert_eq!(
            share(&weeks, "2026-12-07", "suite.export.calls", "1.0.0", "linux"),
            Some((2, 2)),
            "{backend}"
        );
        assert_eq!(
            share(&weeks, "2026-12-07", "suite.search.calls", "1.0.0", "linux"),
            Some((2, 2)),
            "{backend}"
        );
        let by_version = weeks.shares_by_version("2026-12-07");
        assert_eq!(
            by_version["suite.search.calls"]["1.0.0"],
            (2, 2),
            "{backend}"
        );
        assert!(
            !by_version["suite.search.calls"].contains_key("2.0.0"),
            "{backend}"
        );
    });
}

#[test]
fn histograms_merge_across_installations_within_the_bucket_error_bound() {
    let registry = registry();
    each_backend("histograms", |backend, storage| {
        // Three installations with different distributions; the merged quantiles must match
        // the quantiles of all values together within 1/128.
        let sets: Vec<Vec<u64>> = vec![
            (1..=400).map(|i| i * 1_000).collect(),
            (1..=300).map(|i| 50_000 + i * 7_919).collect(),
            (1..=100).map(|i| 3_000_000 + i * 104_729).collect(),
        ];
        let reports: Vec<StoredReport> = sets
            .iter()
            .map(|d| {
                stored(
                    &registry,
                    &Fake {
                        durations: d,
                        ..Fake::default()
                    },
                    MONDAY_NOON,
                )
            })
            .collect();
        storage.insert(&reports).unwrap();
        storage.insert(&reports[..1]).unwrap(); // a duplicate is merged once
        let rollup = Rollup::compute(storage, common::PRODUCT, Period::Day, "2026-12-07").unwrap();
        let merged = rollup
            .histograms
            .iter()
            .find(|h| h.metric == "suite.search.duration")
            .unwrap();
        assert_eq!((merged.reports, merged.count), (3, 800), "{backend}");
        let mut all: Vec<u64> = sets.concat();
        all.sort_unstable();
        for (q, estimate) in [(0.5, merged.p50), (0.9, merged.p90), (0.99, merged.p99)] {
            let exact =
                all[((q * all.len() as f64).ceil() as usize).clamp(1, all.len()) - 1] as f64;
            let estimate = estimate.unwrap() as f64;
            let error = (estimate - exact).abs() / exact;
            assert!(
                error <= merged.relative_error,
                "{backend}: q{q}: {estimate} against {exact} ({error})"
            );
        }
    });
}

#[test]
fn deleting_an_installation_removes_its_reports_and_every_rollup_contribution() {
    let registry = registry();
    each_backend("delete", |backend, storage| {
        let (gone, kept) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let features = &[("suite.search.calls", 1), ("suite.import.calls", 1)][..];
        let reports = vec![
            stored(
                &registry,
                &Fake {
                    installation: gone,
                    features,
                    durations: &[5, 6],
                    ..Fake::default()
                },
                MONDAY_NOON,
            ),
            stored(
                &registry,
                &Fake {
                    installation: gone,
                    features,
                    durations: &[7],
                    ..Fake::default()
                },
                MONDAY_NOON + DAY,
            ),
            stored(
                &registry,
                &Fake {
                    installation: kept,
                    durations: &[9],
                    ..Fake::default()
                },
                MONDAY_NOON,
            ),
        ];
        storage.insert(&reports).unwrap();
        assert_eq!(storage.delete_installation(gone).unwrap(), 2, "{backend}");
        assert_eq!(
            storage.count_reports(common::PRODUCT, Some(gone)).unwrap(),
            0,
            "{backend}"
        );
        assert_eq!(
            storage.count_reports(common::PRODUCT, None).unwrap(),
            1,
            "{backend}"
        );
        let rollup = Rollup::compute(storage, common::PRODUCT, Period::Week, "2026-11-30").unwrap();
        let features: BTreeMap<&str, u64> = rollup
            .features
            .iter()
            .map(|f| (f.feature.as_str(), f.installations))
            .collect();
        assert_eq!(
            features,
            BTreeMap::from([("suite.search.calls", 1)]),
            "{backend}: import was only used by the deleted one"
        );
        assert_eq!(rollup.histograms[0].count, 1, "{backend}");
        assert_eq!(
            rollup
                .installations
                .iter()
                .map(|c| c.installations)
                .sum::<u64>(),
            1,
            "{backend}"
        );
        // A deleted installation's report sent again is a new report: deletion is not a ban.
        assert_eq!(
            storage.insert(&reports[..1]).unwrap(),
            [Inserted::New],
            "{backend}"
        );
    });
}

#[test]
fn manifests_are_kept_once_per_product_version() {
    each_backend("manifests", |backend, storage| {
        let manifest = common::manifest();
        let registration = Registration {
            product: common::PRODUCT.to_owned(),
            product_version: "1.0.0".to_owned(),
            manifest: manifest.clone(),
        };
        storage.put_manifest(&registration).unwrap();
        storage.put_manifest(&registration).unwrap();
        let other = Registration {
            product_version: "1.1.0".to_owned(),
            ..registration.clone()
        };
        storage.put_manifest(&other).unwrap();
        let kept = storage.manifests().unwrap();
        assert_eq!(kept, vec![registration, other], "{backend}");
    });
}

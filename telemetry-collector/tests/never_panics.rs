//! Validation under hostile bodies: thousands of mutations of a good report (deterministic)
//! are each answered with a verdict, never a panic, and what passes is still a report of
//! declared names only.

mod common;

use serde_json::Value;
use telemetry_collector::manifest_registry::{ManifestRegistry, Registration};
use telemetry_collector::validate::validate;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn paths(value: &Value, path: Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(path.clone());
    match value {
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            let mut p = path.clone();
            p.push(k.clone());
            paths(v, p, out);
        }),
        Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| {
            let mut p = path.clone();
            p.push(i.to_string());
            paths(v, p, out);
        }),
        _ => {}
    }
}

/// The value at `path`, if an earlier mutation left it there.
fn at<'a>(value: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |v, key| match v {
        Value::Object(map) => map.get_mut(key),
        Value::Array(items) => items.get_mut(key.parse::<usize>().ok()?),
        _ => None,
    })
}

#[test]
fn thousands_of_mutated_reports_get_a_verdict_and_never_a_panic() {
    let mut registry = ManifestRegistry::new();
    let json = common::manifest().to_json();
    registry
        .add(Registration::from_json(common::PRODUCT, "1.0.0", json.as_bytes()).unwrap())
        .unwrap();
    let good = common::report(&common::Fake {
        durations: &[5, 500, 50_000],
        ..common::Fake::default()
    });
    assert!(validate(&registry, good.to_string().as_bytes(), None).is_ok());
    let mut all = Vec::new();
    paths(&good, Vec::new(), &mut all);
    let replacements = [
        Value::Null,
        Value::from(-1),
        Value::from(u64::MAX),
        Value::from(1.5),
        Value::from(""),
        Value::from("x".repeat(5_000)),
        Value::from("alice@example.com"),
        serde_json::json!([]),
        serde_json::json!({}),
        serde_json::json!([[1, 2, 3]]),
        serde_json::json!({"labels": {"x": "y"}, "value": 1}),
        Value::Bool(true),
    ];
    let mut rng = Rng(0x5eed_c011_ec70);
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..3_000 {
        let mut report = good.clone();
        for _ in 0..1 + rng.below(3) {
            let path = &all[rng.below(all.len())];
            let Some(target) = at(&mut report, path) else {
                continue;
            };
            match rng.below(3) {
                0 => *target = replacements[rng.below(replacements.len())].clone(),
                1 => {
                    if let Value::Object(map) = target {
                        map.insert(format!("k{}", rng.below(5)), Value::from(1));
                    }
                }
                _ => {
                    if let Value::Object(map) = target
                        && let Some(key) = map.keys().nth(rng.below(map.len().max(1))).cloned()
                    {
                        map.remove(&key);
                    }
                }
            }
        }
        let mut bytes = report.to_string().into_bytes();
        if rng.below(10) == 0 {
            bytes.truncate(rng.below(bytes.len()));
        }
        match validate(&registry, &bytes, None) {
            Ok(valid) => {
                accepted += 1;
                let manifest = common::manifest();
                let names = valid
                    .features
                    .iter()
                    .map(|(n, _)| n)
                    .chain(valid.histograms.iter().map(|(n, _)| n));
                for name in names {
                    assert!(
                        manifest.metrics.iter().any(|m| &m.name == name),
                        "{name} passed"
                    );
                }
            }
            Err(_) => refused += 1,
        }
    }
    assert!(refused > 1_000, "{refused} refused, {accepted} accepted");
}

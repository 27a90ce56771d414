//! The `#[count_usage]` and `#[timed]` hot paths against a bare shared `AtomicU64::fetch_add`.
//! `cargo bench --bench hot_path`; ratios are printed by criterion's comparison of the groups.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use telemetry_core::{count_usage, timed};

static BARE: AtomicU64 = AtomicU64::new(0);

#[inline(never)]
fn bare(x: u64) -> u64 {
    BARE.fetch_add(1, Relaxed);
    x
}

#[inline(never)]
fn plain(x: u64) -> u64 {
    x
}

#[count_usage(name = "bench.counted")]
#[inline(never)]
fn counted(x: u64) -> u64 {
    x
}

#[timed(name = "bench.timed")]
#[inline(never)]
fn timed_fn(x: u64) -> u64 {
    x
}

fn one_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("one_thread");
    g.bench_function("plain_fn", |b| b.iter(|| plain(black_box(1))));
    g.bench_function("bare_atomic_fn", |b| b.iter(|| bare(black_box(1))));
    g.bench_function("count_usage_fn", |b| b.iter(|| counted(black_box(1))));
    g.bench_function("timed_fn", |b| b.iter(|| timed_fn(black_box(1))));
    g.finish();
}

criterion_group!(benches, one_thread);
criterion_main!(benches);

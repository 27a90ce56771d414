//! Our hot paths, each against a bare shared `AtomicU64::fetch_add` and an uninstrumented
//! function in the same run: `cargo bench --bench hot_path`. The peer crates are in
//! `benches/peers.rs`; `scripts/bench-table.py` turns both into the table of
//! `docs/PERFORMANCE.md`.
//!
//! Every measured function is `#[inline(never)]`, instrumented or not, so "added cost" is the
//! instrumented time minus `plain_fn`. Two-thread cases run `iters` calls on each of two
//! threads hammering the same metric and report wall time per call per thread.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use telemetry_core::{Bounded, Counter, Histogram, LabelValue, count_usage, timed};

#[path = "support/snapshot_metrics.rs"]
mod snapshot_metrics;

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

#[timed(name = "bench.timed_sampled", sample = 16)]
#[inline(never)]
fn timed_sampled(x: u64) -> u64 {
    x
}

#[count_usage(name = "bench.counted_and_timed.calls")]
#[timed(name = "bench.counted_and_timed.duration")]
#[inline(never)]
fn counted_and_timed(x: u64) -> u64 {
    x
}

#[derive(Clone, Copy, LabelValue)]
enum Backend {
    Postgres,
    Sqlite,
}

#[count_usage(name = "bench.labeled", labels(backend = backend, ok = ok))]
#[inline(never)]
fn labeled(backend: Backend, ok: bool) -> bool {
    ok
}

/// Runs `op` `iters` times on each of `threads` threads at once; the wall time of the slowest.
fn on_threads(threads: usize, iters: u64, op: impl Fn() + Sync) -> Duration {
    let barrier = Barrier::new(threads);
    let slowest = std::sync::Mutex::new(Duration::ZERO);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                barrier.wait();
                let start = Instant::now();
                for _ in 0..iters {
                    op();
                }
                let took = start.elapsed();
                let mut slowest = slowest.lock().unwrap();
                *slowest = (*slowest).max(took);
            });
        }
    });
    slowest.into_inner().unwrap()
}

fn one_thread(c: &mut Criterion) {
    let counter = telemetry_core::counter!("bench.handle").unwrap();
    let histogram = telemetry_core::histogram!("bench.histogram").unwrap();
    let labeled_handle =
        telemetry_core::counter!("bench.labeled_handle", labels(backend: Backend, ok: bool))
            .unwrap();
    let cached = labeled_handle.series((Backend::Postgres, true)).unwrap();
    let mut g = c.benchmark_group("one_thread");
    g.bench_function("plain_fn", |b| b.iter(|| plain(black_box(1))));
    g.bench_function("bare_atomic_fn", |b| b.iter(|| bare(black_box(1))));
    g.bench_function("count_usage_fn", |b| b.iter(|| counted(black_box(1))));
    g.bench_function("timed_fn", |b| b.iter(|| timed_fn(black_box(1))));
    g.bench_function("timed_fn_sample_16", |b| {
        b.iter(|| timed_sampled(black_box(1)))
    });
    g.bench_function("count_usage_and_timed_fn", |b| {
        b.iter(|| counted_and_timed(black_box(1)))
    });
    g.bench_function("counter_handle", |b| {
        b.iter(|| black_box(&counter).increment())
    });
    g.bench_function("histogram_record", |b| {
        let mut v = 1_000u64;
        b.iter(|| {
            v = v
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            histogram.record(black_box(v >> 40));
        })
    });
    g.bench_function("labeled_counter_cached_series", |b| {
        b.iter(|| black_box(&cached).increment())
    });
    // Recording switched off: what disabled telemetry costs (a relaxed load and a branch).
    telemetry_core::set_recording(false);
    g.bench_function("count_usage_fn_recording_off", |b| {
        b.iter(|| counted(black_box(1)))
    });
    g.bench_function("timed_fn_recording_off", |b| {
        b.iter(|| timed_fn(black_box(1)))
    });
    telemetry_core::set_recording(true);
    g.bench_function("labeled_counter_from_values", |b| {
        b.iter(|| labeled_handle.increment(black_box((Backend::Sqlite, false))))
    });
    g.bench_function("labeled_count_usage_fn", |b| {
        b.iter(|| labeled(black_box(Backend::Postgres), black_box(true)))
    });
    g.finish();
}

fn two_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("two_threads");
    g.bench_function("plain_fn", |b| {
        b.iter_custom(|iters| on_threads(2, iters, || _ = black_box(plain(black_box(1)))))
    });
    g.bench_function("bare_atomic_fn", |b| {
        b.iter_custom(|iters| on_threads(2, iters, || _ = black_box(bare(black_box(1)))))
    });
    g.bench_function("count_usage_fn", |b| {
        b.iter_custom(|iters| on_threads(2, iters, || _ = black_box(counted(black_box(1)))))
    });
    g.bench_function("timed_fn", |b| {
        b.iter_custom(|iters| on_threads(2, iters, || _ = black_box(timed_fn(black_box(1)))))
    });
    g.bench_function("labeled_count_usage_fn", |b| {
        b.iter_custom(|iters| {
            on_threads(2, iters, || {
                _ = black_box(labeled(black_box(Backend::Sqlite), black_box(true)))
            })
        })
    });
    g.finish();
}

fn snapshot(c: &mut Criterion) {
    // 1,000 counters and 100 histograms, touched by 16 threads.
    let counters: Vec<Counter> = snapshot_metrics::counters();
    let histograms: Vec<Histogram> = snapshot_metrics::histograms();
    let barrier = Barrier::new(17);
    std::thread::scope(|s| {
        for t in 0..16u64 {
            let (counters, histograms, barrier) = (&counters, &histograms, &barrier);
            s.spawn(move || {
                for (i, c) in counters.iter().enumerate() {
                    c.increment_by(i as u64 + t);
                }
                for (i, h) in histograms.iter().enumerate() {
                    for v in 0..20u64 {
                        h.record((i as u64 + 1) * 1000 + v * 977 + t);
                    }
                }
                // Stay alive (shards live) while the snapshot is measured.
                barrier.wait();
                barrier.wait();
            });
        }
        barrier.wait();
        let mut g = c.benchmark_group("snapshot");
        g.bench_function("snapshot_1000_counters_100_histograms_16_threads", |b| {
            b.iter(|| black_box(telemetry_core::snapshot()))
        });
        let mut kept = telemetry_core::snapshot();
        g.bench_function("refresh_1000_counters_100_histograms_16_threads", |b| {
            b.iter(|| {
                kept.refresh();
                black_box(&kept);
            })
        });
        // What a `/metrics` scrape costs: the endpoint refreshes the snapshot it keeps and
        // renders it.
        let endpoints = telemetry_core::export::endpoint::Endpoints::new(
            telemetry_core::Application::new("bench", "1"),
        );
        g.bench_function(
            "scrape_prometheus_text_1000_counters_100_histograms_16_threads",
            |b| b.iter(|| black_box(endpoints.metrics("", None))),
        );
        g.bench_function(
            "snapshot_and_prometheus_text_1000_counters_100_histograms_16_threads",
            |b| {
                b.iter(|| {
                    let snapshot = telemetry_core::snapshot();
                    black_box(telemetry_core::export::prometheus::render_prometheus(
                        &snapshot,
                    ))
                })
            },
        );
        g.bench_function("report_json_1000_counters_100_histograms_16_threads", |b| {
            b.iter(|| {
                let report =
                    telemetry_core::Report::collect(telemetry_core::Application::new("bench", "1"));
                black_box(report.to_json())
            })
        });
        g.finish();
        barrier.wait();
    });
}

/// How cost grows: per-call cost of a counted function with 1 to 16 threads on one counter,
/// and snapshot time with 10 to 100,000 counter series (one thread has touched each).
fn scaling(c: &mut Criterion) {
    let mut g = c.benchmark_group("scaling");
    for threads in [1usize, 2, 4, 8, 16] {
        g.bench_function(format!("count_usage_fn_threads_{threads}"), |b| {
            b.iter_custom(|iters| {
                on_threads(threads, iters, || _ = black_box(counted(black_box(1))))
            })
        });
    }
    let mut registered = 0;
    // `cargo bench` passes `--bench`; the smoke run (`cargo test --benches`, a debug build)
    // stops at 1,000 series.
    let full = std::env::args().any(|a| a == "--bench");
    let sizes: &[usize] = if full {
        &[10, 100, 1_000, 10_000, 100_000]
    } else {
        &[10, 1_000]
    };
    for &series in sizes {
        // Two labels of a thousand values each: up to a million label sets.
        let family = telemetry_core::counter!("bench.scaling", max_series = 100_000, labels(thousands: Bounded<999>, units: Bounded<999>))
            .unwrap();
        while registered < series {
            let i = registered as u64;
            family.increment((Bounded::new(i / 1000), Bounded::new(i % 1000)));
            registered += 1;
        }
        g.bench_function(format!("snapshot_series_{series}"), |b| {
            b.iter(|| black_box(telemetry_core::snapshot()))
        });
    }
    g.finish();
}

criterion_group!(benches, one_thread, two_threads, snapshot, scaling);
criterion_main!(benches);

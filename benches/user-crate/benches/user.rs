//! `#[count_usage]` and `#[timed]` called from a user's crate (`src/lib.rs`), against an
//! uninstrumented call, a bare shared atomic, two raw clock reads and prometheus-client, in one
//! run: `cargo bench -p telemetry-user-bench`. "Added" costs in docs/PERFORMANCE.md are each
//! time minus `plain_fn`'s.

use criterion::{Criterion, criterion_group, criterion_main};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};
use telemetry_user_bench as user;

/// `threads` threads each making `iters` calls; the slowest thread's time.
fn on_threads(threads: usize, iters: u64, op: impl Fn() + Sync) -> Duration {
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        op();
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .max()
            .unwrap_or_default()
    })
}

/// One benchmark per call, each a direct (statically dispatched) call as in user code: on
/// one thread with criterion's own loop, on two with [`on_threads`].
macro_rules! bench_calls {
    ($c:expr, $threads:expr, $($name:literal => $call:expr),* $(,)?) => {{
        let threads: usize = $threads;
        let mut g = $c.benchmark_group(format!("user_crate_{threads}t"));
        $(
            if threads == 1 {
                g.bench_function($name, |b| b.iter(|| $call(black_box(1))));
            } else {
                g.bench_function($name, |b| {
                    b.iter_custom(|iters| {
                        on_threads(threads, iters, || {
                            black_box($call(black_box(1)));
                        })
                    })
                });
            }
        )*
        g.finish();
    }};
}

fn calls(c: &mut Criterion) {
    let counter = Counter::<u64>::default();
    let histogram = Histogram::new(exponential_buckets(1.0, 2.0, 30));
    let prometheus_counter = |x: u64| {
        counter.inc();
        x
    };
    let prometheus_timed = |x: u64| {
        let start = Instant::now();
        let r = black_box(x);
        histogram.observe(start.elapsed().as_nanos() as f64);
        r
    };
    for threads in [1, 2] {
        bench_calls!(c, threads,
            "plain_fn" => user::plain,
            "bare_atomic_fn" => user::bare_atomic,
            "count_usage_fn" => user::counted,
            "timed_fn" => user::timed_fn,
            "timed_fn_sample_16" => user::timed_sampled,
            "rdtsc_pair" => user::rdtsc_pair,
            "prometheus_client_counter" => prometheus_counter,
            "prometheus_client_histogram_std_clock" => prometheus_timed,
        );
    }
    telemetry_core::set_recording(false);
    bench_calls!(c, 1,
        "recording_off/count_usage_fn" => user::counted,
        "recording_off/timed_fn" => user::timed_fn,
        "recording_off/timed_fn_sample_16" => user::timed_sampled,
    );
    telemetry_core::set_recording(true);
}

criterion_group!(benches, calls);
criterion_main!(benches);

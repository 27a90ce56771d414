//! Exactness across threads: no increment lost, also when threads exit.

use std::sync::Barrier;
use telemetry_core::{count_usage, snapshot, timed};

#[count_usage(name = "concurrency.hammered")]
fn hammered() {}

#[timed(name = "concurrency.timed")]
fn timed_call() {}

#[test]
fn two_threads_times_a_million_calls_give_exactly_two_million() {
    let before = snapshot().counter("concurrency.hammered").unwrap_or(0);
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                barrier.wait();
                for _ in 0..1_000_000 {
                    hammered();
                }
            });
        }
    });
    // The threads have exited: their shards were folded into the totals.
    assert_eq!(
        snapshot().counter("concurrency.hammered"),
        Some(before + 2_000_000)
    );
}

#[test]
fn snapshots_taken_while_threads_record_are_monotonic_and_end_exact() {
    const THREADS: u64 = 8;
    const CALLS: u64 = 50_000;
    let counter = telemetry_core::counter!("concurrency.monotonic").unwrap();
    let histogram = telemetry_core::histogram!("concurrency.values").unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                s.spawn(move || {
                    for i in 0..CALLS {
                        counter.increment();
                        histogram.record(t * 1000 + i % 1000);
                        timed_call();
                    }
                })
            })
            .collect();
        s.spawn(|| {
            let mut last = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let snap = snapshot();
                let now = snap.counter("concurrency.monotonic").unwrap();
                assert!(now >= last, "counter went back from {last} to {now}");
                last = now;
                let h = snap.histogram("concurrency.values").unwrap();
                assert_eq!(h.count(), h.buckets().map(|b| b.count).sum::<u64>());
            }
        });
        for w in workers {
            w.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let snap = snapshot();
    assert_eq!(snap.counter("concurrency.monotonic"), Some(THREADS * CALLS));
    let h = snap.histogram("concurrency.values").unwrap();
    assert_eq!(h.count(), THREADS * CALLS);
    assert_eq!(h.min(), Some(0));
    assert_eq!(h.max(), Some((THREADS - 1) * 1000 + 999));
    let expected_sum: u64 = (0..THREADS)
        .map(|t| (0..CALLS).map(|i| t * 1000 + i % 1000).sum::<u64>())
        .sum();
    assert_eq!(h.sum(), expected_sum);
    assert_eq!(
        snap.histogram("concurrency.timed").unwrap().count(),
        THREADS * CALLS
    );
}

#[test]
fn values_recorded_in_thread_local_destructors_are_kept() {
    struct RecordsOnDrop;
    impl Drop for RecordsOnDrop {
        fn drop(&mut self) {
            telemetry_core::counter!("concurrency.in_destructor")
                .unwrap()
                .increment();
        }
    }
    thread_local! {
        static GUARD: RecordsOnDrop = const { RecordsOnDrop };
    }
    telemetry_core::counter!("concurrency.in_destructor").unwrap();
    std::thread::spawn(|| {
        GUARD.with(|_| {});
        telemetry_core::counter!("concurrency.in_destructor")
            .unwrap()
            .increment();
    })
    .join()
    .unwrap();
    assert_eq!(snapshot().counter("concurrency.in_destructor"), Some(2));
}

#[derive(Clone, Copy, telemetry_core::LabelValue)]
enum Shard {
    Even,
    Odd,
}

#[count_usage(name = "concurrency.async_calls", labels(shard = shard))]
#[timed(name = "concurrency.async_duration")]
async fn async_work(shard: Shard) {
    tokio::task::yield_now().await;
}

#[test]
fn async_tasks_across_worker_threads_are_counted_exactly_while_snapshots_run() {
    const TASKS: u64 = 64;
    const CALLS: u64 = 500;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut last = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let snap = snapshot();
                let now = snap.counter("concurrency.async_calls").unwrap_or(0);
                assert!(now >= last, "async counter went back from {last} to {now}");
                last = now;
            }
        })
    };
    runtime.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                tokio::spawn(async move {
                    for i in 0..CALLS {
                        let shard = if (t + i) % 2 == 0 {
                            Shard::Even
                        } else {
                            Shard::Odd
                        };
                        async_work(shard).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    drop(runtime);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    watcher.join().unwrap();
    let snap = snapshot();
    assert_eq!(snap.counter("concurrency.async_calls"), Some(TASKS * CALLS));
    assert_eq!(
        snap.counter_with("concurrency.async_calls", &[("shard", "Even")]),
        Some(TASKS * CALLS / 2)
    );
    assert_eq!(
        snap.histogram("concurrency.async_duration")
            .unwrap()
            .count(),
        TASKS * CALLS
    );
}

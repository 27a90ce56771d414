//! `#[count_usage]`, `#[timed]` and the plain handles against the peer crates, in one run.
//!
//! `cargo bench --bench peers`; `scripts/bench-table.py` runs it (and `hot_path`) and prints the
//! Markdown table of `docs/PERFORMANCE.md`.
//!
//! Method, the same for ours and every peer:
//! - Every measured operation is an `#[inline(never)]` function `fn(u64) -> u64` whose body is
//!   `black_box(x)` plus the instrumentation, so each row pays one real call. The
//!   `plain_fn`/`value_fn` row of each group is that function without instrumentation; "added"
//!   cost is a row minus it.
//! - Metrics that are values (peer counters and histograms, our handles) are created once and
//!   passed by reference, as a struct field would be; ours and `metrics`'s macros and the bare
//!   atomic are statics, as their users write them.
//! - Every thread count runs the same loop, `black_box(f(black_box(i)))` for consecutive `i`.
//!   `1t` runs it on criterion's thread. `2t` runs it on a persistent pair of threads that
//!   hammer the SAME metric, each doing criterion's `iters` calls, so criterion reports the
//!   time per call per thread (equal to `1t` for an operation that scales perfectly).
//! - Each criterion sample is cut into chunks of about 20 µs of calls, timed one by one; the
//!   sample's time is its median chunk's time per call times `iters`, so a chunk during which
//!   other work on the machine descheduled the thread does not move it. With 2 threads, both
//!   start every chunk together (a spinning barrier), a chunk lasts from the first start to the
//!   last end, and only chunks in which the two threads overlapped for at least 90% of that
//!   span count (not time-sliced on one core, not descheduled): the numbers are for two threads
//!   running at once. A warning goes to stderr when fewer than 90% of a benchmark's chunks
//!   qualify. `BENCH_WHOLE_SAMPLES=1` times whole samples instead of chunks.
//! - Histograms record `value(i)`, a pseudo-random value in `1..=2^20` (a multiplicative hash of
//!   the loop index), so bucket lookups are not the same branch every time. Peer histograms have
//!   21 power-of-two buckets covering that range.
//! - Group `render` is different: the time per whole render of the Prometheus text exposition
//!   of the metrics of `hot_path`'s `snapshot` group (1,000 counters, 100 histograms of 20
//!   values), by each peer from its own registry, for the same run's comparison with ours.

use criterion::{Criterion, criterion_group, criterion_main};
use metered::{HitCount, ResponseTime, metered};
use std::cell::Cell;
use std::hint::{black_box, spin_loop};
use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Relaxed};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use telemetry_core::bridge::metrics::MetricsBridge;
use telemetry_core::{count_usage, timed};

// ---------------------------------------------------------------------------------------------
// Harness: the measured loop on one thread or on a persistent pair of threads.
// ---------------------------------------------------------------------------------------------

/// The loop every benchmark runs, whatever the thread count: calls `first..first + n`.
#[inline(always)]
fn run_loop(first: u64, n: u64, f: &mut impl FnMut(u64) -> u64) {
    for i in first..first + n {
        black_box(f(black_box(i)));
    }
}

/// The wall time of one chunk of calls.
const CHUNK_TIME: Duration = Duration::from_micros(20);

/// Calls per chunk for `f`: about [`CHUNK_TIME`] of them on one thread, or every call of the
/// sample in one chunk with `BENCH_WHOLE_SAMPLES=1`.
fn chunk_len(mut f: impl FnMut(u64) -> u64) -> u64 {
    if std::env::var_os("BENCH_WHOLE_SAMPLES").is_some_and(|v| v != "0") {
        return u64::MAX;
    }
    run_loop(0, 1_000, &mut f);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        run_loop(0, 1_000, &mut f);
        best = best.min(start.elapsed().as_nanos() as f64 / 1_000.0);
    }
    ((CHUNK_TIME.as_nanos() as f64 / best.max(0.1)) as u64).clamp(16, 1 << 16)
}

/// The chunks of a sample of `iters` calls: `(first, n)`.
fn chunks(iters: u64, len: u64) -> impl Iterator<Item = (u64, u64)> {
    (0..iters.div_ceil(len)).map(move |k| (k * len, len.min(iters - k * len)))
}

/// The sample's time: its median chunk's time per call, times `iters`.
fn sample_time(iters: u64, mut per_call_ns: Vec<f64>) -> Duration {
    if per_call_ns.is_empty() {
        return Duration::ZERO;
    }
    per_call_ns.sort_by(f64::total_cmp);
    let median = per_call_ns[per_call_ns.len() / 2];
    Duration::from_secs_f64(median * iters as f64 / 1e9)
}

/// One thread: criterion's own.
fn one_thread(iters: u64, len: u64, mut f: impl FnMut(u64) -> u64) -> Duration {
    let mut per_call = Vec::with_capacity(iters.div_ceil(len) as usize);
    for (first, n) in chunks(iters, len) {
        let start = Instant::now();
        run_loop(first, n, &mut f);
        per_call.push(start.elapsed().as_nanos() as f64 / n as f64);
    }
    sample_time(iters, per_call)
}

/// A job for the pair: `job(first, n)` runs the loop over `first..first + n`.
type Job = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// One sample for one thread of the pair: the job, `iters`, the chunk length and the barrier.
type Work = (Job, u64, u64, Arc<AtomicU64>);

/// Two threads that live for a whole benchmark group, so thread-local state (our shards, the
/// floor's `Cell`) is set up once, as in a server's worker pool.
struct Pair {
    work: Vec<mpsc::Sender<Work>>,
    spans: mpsc::Receiver<Vec<(Instant, Instant)>>,
    threads: Vec<JoinHandle<()>>,
    /// Chunks in which both threads ran together, and all chunks, for the report on stderr.
    chunks_together: AtomicU64,
    chunks_all: AtomicU64,
}

impl Pair {
    fn new() -> Pair {
        let (span_tx, spans) = mpsc::channel();
        let mut work = Vec::new();
        let mut threads = Vec::new();
        for t in 0..2 {
            let (work_tx, work_rx) = mpsc::channel::<Work>();
            let span_tx = span_tx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("bench-{t}"))
                .spawn(move || {
                    for (job, iters, len, arrived) in work_rx {
                        let mut spans = Vec::with_capacity(iters.div_ceil(len) as usize);
                        for (k, (first, n)) in chunks(iters, len).enumerate() {
                            // Both threads start every chunk together.
                            let target = 2 * (k as u64 + 1);
                            arrived.fetch_add(1, Relaxed);
                            let mut spins = 0u32;
                            while arrived.load(Acquire) < target {
                                spins += 1;
                                if spins < 1 << 10 {
                                    spin_loop();
                                } else {
                                    // The other thread is not running (on this core?): let it.
                                    std::thread::yield_now();
                                }
                            }
                            let start = Instant::now();
                            job(first, n);
                            spans.push((start, Instant::now()));
                        }
                        span_tx.send(spans).expect("the bench is waiting");
                    }
                })
                .expect("spawn a bench thread");
            work.push(work_tx);
            threads.push(thread);
        }
        Pair {
            work,
            spans,
            threads,
            chunks_together: AtomicU64::new(0),
            chunks_all: AtomicU64::new(0),
        }
    }

    /// Runs `job` over `iters` calls on both threads at once.
    fn run(&self, job: &Job, iters: u64, len: u64) -> Duration {
        let arrived = Arc::new(AtomicU64::new(0));
        for tx in &self.work {
            tx.send((Arc::clone(job), iters, len, Arc::clone(&arrived)))
                .expect("bench thread alive");
        }
        let a = self.spans.recv().expect("bench thread alive");
        let b = self.spans.recv().expect("bench thread alive");
        let (mut together, mut all) = (Vec::new(), Vec::new());
        for ((_, n), (&(s0, e0), &(s1, e1))) in chunks(iters, len).zip(a.iter().zip(&b)) {
            let span = (e0.max(e1) - s0.min(s1)).as_nanos() as f64;
            let overlap = e0.min(e1).saturating_duration_since(s0.max(s1)).as_nanos() as f64;
            all.push(span / n as f64);
            // Both threads ran at once for (nearly) the whole chunk: not time-sliced on one
            // core, not descheduled by other work.
            if overlap >= 0.9 * span {
                together.push(span / n as f64);
            }
        }
        self.chunks_together
            .fetch_add(together.len() as u64, Relaxed);
        self.chunks_all.fetch_add(all.len() as u64, Relaxed);
        sample_time(iters, if together.is_empty() { all } else { together })
    }

    /// The share of chunks, since the last call, in which both threads ran together; `None`
    /// if nothing ran (a benchmark left out by a filter).
    fn take_together_share(&self) -> Option<f64> {
        let together = self.chunks_together.swap(0, Relaxed);
        let all = self.chunks_all.swap(0, Relaxed);
        (all > 0).then(|| together as f64 / all as f64)
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        self.work.clear();
        for thread in self.threads.drain(..) {
            thread.join().expect("bench thread panicked");
        }
    }
}

/// Registers benchmarks `{group}_1t/{id}` and `{group}_2t/{id}`.
struct Groups<'a> {
    c: &'a mut Criterion,
    group: &'static str,
    pair: Pair,
    /// Untimed work before every sample (the `metrics` exporter's upkeep).
    before_sample: fn(),
}

impl Groups<'_> {
    fn bench<F>(&mut self, id: &str, f: F)
    where
        F: Fn(u64) -> u64 + Send + Sync + Copy + 'static,
    {
        let before = self.before_sample;
        let len = chunk_len(f);
        self.c
            .benchmark_group(format!("{}_1t", self.group))
            .bench_function(id, |b| {
                b.iter_custom(|iters| {
                    before();
                    one_thread(iters, len, f)
                })
            });
        let job: Job = Arc::new(move |first, n| run_loop(first, n, &mut { f }));
        let pair = &self.pair;
        self.c
            .benchmark_group(format!("{}_2t", self.group))
            .bench_function(id, |b| {
                b.iter_custom(|iters| {
                    before();
                    pair.run(&job, iters, len)
                })
            });
        if let Some(share) = pair.take_together_share()
            && share < 0.9
        {
            eprintln!(
                "warning: {}_2t/{id}: the two threads ran together in only {:.0}% of the chunks; \
                 other work on the machine is disturbing the 2-thread numbers",
                self.group,
                share * 100.0
            );
        }
    }

    fn bench_single_thread(&mut self, id: &str, mut f: impl FnMut(u64) -> u64) {
        let len = chunk_len(&mut f);
        self.c
            .benchmark_group(format!("{}_1t", self.group))
            .bench_function(id, |b| {
                b.iter_custom(|iters| one_thread(iters, len, &mut f))
            });
    }
}

fn groups<'a>(c: &'a mut Criterion, group: &'static str) -> Groups<'a> {
    Groups {
        c,
        group,
        pair: Pair::new(),
        before_sample: || (),
    }
}

// ---------------------------------------------------------------------------------------------
// The peers' metrics, created once.
// ---------------------------------------------------------------------------------------------

/// A pseudo-random value in `1..=2^20` for histogram records.
#[inline(always)]
fn value(x: u64) -> u64 {
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 44) + 1
}

#[derive(Default)]
struct MeteredService {
    metrics: MeteredMetrics,
}

#[metered(registry = MeteredMetrics)]
impl MeteredService {
    #[measure(HitCount)]
    #[inline(never)]
    fn hit(&self, x: u64) -> u64 {
        black_box(x)
    }

    #[measure(ResponseTime)]
    #[inline(never)]
    fn timed(&self, x: u64) -> u64 {
        black_box(x)
    }
}

struct Peers {
    ours_counter: telemetry_core::Counter,
    ours_histogram: telemetry_core::Histogram,
    prometheus_counter: prometheus::IntCounter,
    prometheus_histogram: prometheus::Histogram,
    client_counter: prometheus_client::metrics::counter::Counter<u64>,
    client_histogram: prometheus_client::metrics::histogram::Histogram,
    client_seconds: prometheus_client::metrics::histogram::Histogram,
    metered: MeteredService,
    metrics_counter: metrics::Counter,
    metrics_histogram: metrics::Histogram,
    metrics_handle: metrics_exporter_prometheus::PrometheusHandle,
}

fn peers() -> &'static Peers {
    use prometheus_client::metrics::histogram::exponential_buckets;
    static PEERS: std::sync::OnceLock<Peers> = std::sync::OnceLock::new();
    PEERS.get_or_init(|| {
        // The `metrics` facade needs a global recorder; the Prometheus exporter's is the usual
        // one. Its histograms buffer values until upkeep, which runs untimed before every sample.
        let metrics_handle = metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .expect("install the metrics recorder");
        let value_buckets: Vec<f64> = exponential_buckets(1.0, 2.0, 21).collect();
        let prometheus_histogram = prometheus::Histogram::with_opts(
            prometheus::HistogramOpts::new("bench_values", "Values").buckets(value_buckets.clone()),
        )
        .expect("prometheus histogram");
        Peers {
            ours_counter: telemetry_core::counter!("bench.peers.counter_handle").expect("register"),
            ours_histogram: telemetry_core::histogram!("bench.peers.histogram_handle")
                .expect("register"),
            prometheus_counter: prometheus::IntCounter::new("bench_calls", "Calls")
                .expect("prometheus counter"),
            prometheus_histogram,
            client_counter: Default::default(),
            client_histogram: prometheus_client::metrics::histogram::Histogram::new(value_buckets),
            // Seconds, 1 µs to ~8 s: a timed call of a few tens of ns lands in the first bucket.
            client_seconds: prometheus_client::metrics::histogram::Histogram::new(
                exponential_buckets(1e-6, 2.0, 24),
            ),
            metered: MeteredService::default(),
            metrics_counter: metrics::counter!("bench_metrics_handle_calls"),
            metrics_histogram: metrics::histogram!("bench_metrics_values"),
            metrics_handle,
        }
    })
}

fn metrics_upkeep() {
    peers().metrics_handle.run_upkeep();
}

// ---------------------------------------------------------------------------------------------
// Counters.
// ---------------------------------------------------------------------------------------------

#[inline(never)]
fn plain_fn(x: u64) -> u64 {
    black_box(x)
}

#[count_usage(name = "bench.peers.count_usage")]
#[inline(never)]
fn count_usage_fn(x: u64) -> u64 {
    black_box(x)
}

#[inline(never)]
fn counter_handle(c: &telemetry_core::Counter, x: u64) -> u64 {
    c.increment();
    black_box(x)
}

static BARE: AtomicU64 = AtomicU64::new(0);

#[inline(never)]
fn bare_atomic(x: u64) -> u64 {
    BARE.fetch_add(1, Relaxed);
    black_box(x)
}

thread_local! {
    static CELL: Cell<u64> = const { Cell::new(0) };
}

#[inline(never)]
fn thread_local_cell(x: u64) -> u64 {
    CELL.with(|c| c.set(c.get() + 1));
    black_box(x)
}

#[inline(never)]
fn prometheus_inc(c: &prometheus::IntCounter, x: u64) -> u64 {
    c.inc();
    black_box(x)
}

#[inline(never)]
fn prometheus_client_inc(c: &prometheus_client::metrics::counter::Counter<u64>, x: u64) -> u64 {
    c.inc();
    black_box(x)
}

#[inline(never)]
fn metrics_macro(x: u64) -> u64 {
    metrics::counter!("bench_metrics_macro_calls").increment(1);
    black_box(x)
}

#[inline(never)]
fn metrics_handle(c: &metrics::Counter, x: u64) -> u64 {
    c.increment(1);
    black_box(x)
}

/// Keeps both CPUs busy for a moment before the first benchmark, so it does not run while the
/// machine is still leaving an idle state (its first samples were slower than the same function
/// measured a minute later).
fn prewarm() {
    let until = Instant::now() + Duration::from_secs(2);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while Instant::now() < until {
                    run_loop(0, 10_000, &mut plain_fn);
                }
            });
        }
    });
}

fn counters(c: &mut Criterion) {
    prewarm();
    let p = peers();
    let mut g = groups(c, "counter");
    g.bench("plain_fn", plain_fn);
    g.bench("count_usage_fn", count_usage_fn);
    g.bench("counter_handle", |x| counter_handle(&p.ours_counter, x));
    g.bench("thread_local_cell", thread_local_cell);
    g.bench("bare_atomic", bare_atomic);
    g.bench("prometheus", |x| prometheus_inc(&p.prometheus_counter, x));
    g.bench("prometheus_client", |x| {
        prometheus_client_inc(&p.client_counter, x)
    });
    g.bench("metered_hit_count", |x| p.metered.hit(x));
    g.bench("metrics_macro", metrics_macro);
    g.bench("metrics_handle", |x| metrics_handle(&p.metrics_counter, x));
}

// ---------------------------------------------------------------------------------------------
// Timed functions.
// ---------------------------------------------------------------------------------------------

#[timed(name = "bench.peers.timed")]
#[inline(never)]
fn timed_fn(x: u64) -> u64 {
    black_box(x)
}

#[inline(never)]
fn prometheus_client_timed(h: &prometheus_client::metrics::histogram::Histogram, x: u64) -> u64 {
    let start = Instant::now();
    let r = black_box(x);
    h.observe(start.elapsed().as_secs_f64());
    r
}

fn timed(c: &mut Criterion) {
    let p = peers();
    let mut g = groups(c, "timed");
    g.bench("plain_fn", plain_fn);
    g.bench("timed_fn", timed_fn);
    g.bench("metered_response_time", |x| p.metered.timed(x));
    g.bench("prometheus_client_std_clock", |x| {
        prometheus_client_timed(&p.client_seconds, x)
    });
}

// ---------------------------------------------------------------------------------------------
// Histogram records (value given, no clock).
// ---------------------------------------------------------------------------------------------

#[inline(never)]
fn value_fn(x: u64) -> u64 {
    black_box(value(x))
}

#[inline(never)]
fn histogram_handle(h: &telemetry_core::Histogram, x: u64) -> u64 {
    let v = value(x);
    h.record(v);
    black_box(v)
}

#[inline(never)]
fn prometheus_observe(h: &prometheus::Histogram, x: u64) -> u64 {
    let v = value(x);
    h.observe(v as f64);
    black_box(v)
}

#[inline(never)]
fn prometheus_client_observe(h: &prometheus_client::metrics::histogram::Histogram, x: u64) -> u64 {
    let v = value(x);
    h.observe(v as f64);
    black_box(v)
}

#[inline(never)]
fn metrics_record(h: &metrics::Histogram, x: u64) -> u64 {
    let v = value(x);
    h.record(v as f64);
    black_box(v)
}

#[inline(never)]
fn hdrhistogram_record(h: &mut hdrhistogram::Histogram<u64>, x: u64) -> u64 {
    let v = value(x);
    h.saturating_record(v);
    black_box(v)
}

fn histograms(c: &mut Criterion) {
    let p = peers();
    let mut g = groups(c, "histogram");
    g.bench("value_fn", value_fn);
    g.bench("histogram_handle", |x| {
        histogram_handle(&p.ours_histogram, x)
    });
    g.bench("prometheus", |x| {
        prometheus_observe(&p.prometheus_histogram, x)
    });
    g.bench("prometheus_client", |x| {
        prometheus_client_observe(&p.client_histogram, x)
    });
    g.before_sample = metrics_upkeep;
    g.bench("metrics_handle", |x| {
        metrics_record(&p.metrics_histogram, x)
    });
    g.before_sample = || ();
    // Not `Sync`: one thread only.
    let mut hdr = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 1 << 40, 3)
        .expect("hdrhistogram bounds");
    g.bench_single_thread("hdrhistogram", |x| hdrhistogram_record(&mut hdr, x));
}

// ---------------------------------------------------------------------------------------------
// Clocks.
// ---------------------------------------------------------------------------------------------

#[inline(never)]
fn std_instant_pair(x: u64) -> u64 {
    let start = Instant::now();
    let r = black_box(x);
    black_box(start.elapsed());
    r
}

/// Two raw time-stamp-counter reads: the floor of any TSC-based timer (what `#[timed]` reads,
/// through quanta, where the TSC is invariant).
#[cfg(target_arch = "x86_64")]
#[inline(never)]
fn rdtsc_pair(x: u64) -> u64 {
    // SAFETY: `rdtsc` is available on every x86_64 CPU.
    let start = unsafe { std::arch::x86_64::_rdtsc() };
    let r = black_box(x);
    // SAFETY: as above.
    black_box(unsafe { std::arch::x86_64::_rdtsc() }.wrapping_sub(start));
    r
}

fn clocks(c: &mut Criterion) {
    let mut g = groups(c, "clock");
    g.bench("std_instant_pair", std_instant_pair);
    #[cfg(target_arch = "x86_64")]
    g.bench("rdtsc_pair", rdtsc_pair);
}

// ---------------------------------------------------------------------------------------------
// Rendering the Prometheus text exposition.
// ---------------------------------------------------------------------------------------------

/// The metrics of every peer's registry in the `render` group: those of `hot_path`'s `snapshot`
/// group (1,000 counters, 100 histograms of 20 values), under the same names and help texts.
const RENDER_COUNTERS: u64 = 1_000;
const RENDER_HISTOGRAMS: u64 = 100;
const RENDER_VALUES: u64 = 20;

/// Counter `i`'s value: what `hot_path`'s 16 threads add to its counter `i` (`i + t` each), so
/// distinct, non-zero and as long in digits.
fn render_counter_value(i: u64) -> u64 {
    16 * i + 120
}

/// The `k`-th value (of 20) of histogram `h`: one in each power of two `[2^k, 2^(k+1))`, so the
/// values are spread over the 21 power-of-two buckets.
fn render_value(h: u64, k: u64) -> f64 {
    ((1 << k) + h % (1 << k)) as f64
}

fn render_counter_name(i: u64) -> (String, String) {
    (
        format!("bench_snapshot_counter_{i}"),
        format!("bench.snapshot.counter_{i}"),
    )
}

fn render_histogram_name(h: u64) -> (String, String) {
    (
        format!("bench_snapshot_histogram_{h}"),
        format!("bench.snapshot.histogram_{h}"),
    )
}

fn prometheus_client_registry(buckets: &[f64]) -> prometheus_client::registry::Registry {
    use prometheus_client::metrics::{counter::Counter, histogram::Histogram};
    let mut registry = prometheus_client::registry::Registry::default();
    for i in 0..RENDER_COUNTERS {
        let (name, help) = render_counter_name(i);
        let counter = Counter::<u64>::default();
        counter.inc_by(render_counter_value(i));
        // prometheus-client appends `_total` to a counter's name.
        registry.register(name, help, counter);
    }
    for h in 0..RENDER_HISTOGRAMS {
        let (name, help) = render_histogram_name(h);
        let histogram = Histogram::new(buckets.iter().copied());
        for k in 0..RENDER_VALUES {
            histogram.observe(render_value(h, k));
        }
        registry.register(name, help, histogram);
    }
    registry
}

fn prometheus_registry(buckets: &[f64]) -> prometheus::Registry {
    let registry = prometheus::Registry::new();
    for i in 0..RENDER_COUNTERS {
        let (name, help) = render_counter_name(i);
        let counter =
            prometheus::IntCounter::new(format!("{name}_total"), help).expect("prometheus counter");
        counter.inc_by(render_counter_value(i));
        registry
            .register(Box::new(counter))
            .expect("register a prometheus counter");
    }
    for h in 0..RENDER_HISTOGRAMS {
        let (name, help) = render_histogram_name(h);
        let histogram = prometheus::Histogram::with_opts(
            prometheus::HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        )
        .expect("prometheus histogram");
        for k in 0..RENDER_VALUES {
            histogram.observe(render_value(h, k));
        }
        registry
            .register(Box::new(histogram))
            .expect("register a prometheus histogram");
    }
    registry
}

/// A recorder of its own (not the global one of the other groups), with histograms rendered as
/// Prometheus histograms over `buckets` rather than summaries.
fn metrics_recorder(buckets: &[f64]) -> metrics_exporter_prometheus::PrometheusRecorder {
    use metrics::{Key, Level, Metadata, Recorder};
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(buckets)
        .expect("metrics buckets")
        .build_recorder();
    let metadata = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));
    for i in 0..RENDER_COUNTERS {
        let (name, help) = render_counter_name(i);
        // The exporter adds no `_total` unless told to use the recommended naming.
        let name = format!("{name}_total");
        recorder.describe_counter(name.clone().into(), None, help.into());
        recorder
            .register_counter(&Key::from_name(name), &metadata)
            .increment(render_counter_value(i));
    }
    for h in 0..RENDER_HISTOGRAMS {
        let (name, help) = render_histogram_name(h);
        recorder.describe_histogram(name.clone().into(), None, help.into());
        let histogram = recorder.register_histogram(&Key::from_name(name), &metadata);
        for k in 0..RENDER_VALUES {
            histogram.record(render_value(h, k));
        }
    }
    recorder
}

/// Checks, once and untimed, that a peer's text holds every metric with its values.
fn check_render(peer: &str, text: &str) {
    let samples = text.lines().filter(|l| !l.starts_with('#')).count();
    let last = RENDER_COUNTERS - 1;
    let counter = format!(
        "bench_snapshot_counter_{last}_total {}",
        render_counter_value(last)
    );
    let count = format!(
        "bench_snapshot_histogram_{}_count {RENDER_VALUES}",
        RENDER_HISTOGRAMS - 1
    );
    let buckets = text.matches("_bucket{").count();
    assert!(
        text.contains(&counter)
            && text.contains(&count)
            && buckets == (RENDER_HISTOGRAMS * 22) as usize,
        "render/{peer}: unexpected text ({samples} lines, {buckets} buckets)"
    );
}

/// Time per whole render of the text exposition of the `snapshot` group's metrics, by each
/// peer (ours is `hot_path`'s `snapshot/snapshot_and_prometheus_text_*`). A new `String` or
/// buffer per render, as a scrape handler allocates.
fn render(c: &mut Criterion) {
    use prometheus::Encoder;
    use prometheus_client::metrics::histogram::exponential_buckets;
    let buckets: Vec<f64> = exponential_buckets(1.0, 2.0, 21).collect();
    let client = prometheus_client_registry(&buckets);
    let prom = prometheus_registry(&buckets);
    let recorder = metrics_recorder(&buckets);
    let handle = recorder.handle();

    let client_text = || {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &client).expect("encode");
        text
    };
    let prom_text = || {
        let mut buf = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&prom.gather(), &mut buf)
            .expect("encode");
        buf
    };
    check_render("prometheus_client", &client_text());
    check_render(
        "prometheus",
        &String::from_utf8(prom_text()).expect("UTF-8"),
    );
    // The first render also moves the histograms' buffered values into their buckets.
    check_render("metrics_exporter_prometheus", &handle.render());

    let mut g = c.benchmark_group("render");
    g.bench_function("prometheus_client", |b| b.iter(|| black_box(client_text())));
    g.bench_function("prometheus", |b| b.iter(|| black_box(prom_text())));
    g.bench_function("metrics_exporter_prometheus", |b| {
        b.iter(|| black_box(handle.render()))
    });
    g.finish();
}

fn config() -> Criterion {
    // Modest defaults; `--warm-up-time`, `--measurement-time` and `--sample-size` override them.
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

// ---------------------------------------------------------------------------------------------
// The `metrics` facade: the same `metrics::counter!` call with one label, recorded by our
// bridge (into a declared metric, the label value mapped into its closed set) and by
// metrics-exporter-prometheus (the process's global recorder here). One thread: the bridge is
// this thread's local recorder.
// ---------------------------------------------------------------------------------------------

#[derive(telemetry_core::LabelValue, Clone, Copy)]
#[allow(dead_code)] // Made only from the texts `metrics` sends.
enum Method {
    #[label(rename = "GET")]
    Get,
    #[label(rename = "POST")]
    Post,
}

#[inline(never)]
fn metrics_labeled_macro(x: u64) -> u64 {
    metrics::counter!("bench_facade_requests", "method" => "GET").increment(1);
    black_box(x)
}

fn facade(c: &mut Criterion) {
    prewarm();
    let _ = peers();
    let mut g = groups(c, "metrics_facade");
    g.bench_single_thread("exporter_prometheus", metrics_labeled_macro);
    let bridge = MetricsBridge::new().counter(
        "bench_facade_requests",
        telemetry_core::counter!("bench.facade.requests", labels(method: Method))
            .expect("declare the bridged counter"),
    );
    let _local = metrics::set_default_local_recorder(&bridge);
    g.bench_single_thread("telemetry_bridge", metrics_labeled_macro);
}

// ---------------------------------------------------------------------------------------------
// Group `tracing_span`: one `info_span!` entered and left per call, under a bare registry, under
// tracing-opentelemetry's layer (the OpenTelemetry SDK's tracer, no exporter), and under our
// bridge counting and timing that span into declared metrics. Each subscriber is this thread's
// default for its rows only.
// ---------------------------------------------------------------------------------------------

#[inline(never)]
fn span_fn(x: u64) -> u64 {
    let span = tracing::info_span!(target: "bench", "search");
    let _entered = span.enter();
    black_box(x)
}

fn spans(c: &mut Criterion) {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;
    prewarm();
    let mut g = groups(c, "tracing_span");
    g.bench_single_thread("plain_fn", plain_fn);
    {
        let _default = tracing::subscriber::set_default(tracing_subscriber::registry());
        g.bench_single_thread("registry_only", span_fn);
    }
    {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
        let subscriber = tracing_subscriber::registry().with(layer);
        let _default = tracing::subscriber::set_default(subscriber);
        g.bench_single_thread("tracing_opentelemetry", span_fn);
    }
    {
        let bridge = telemetry_core::bridge::tracing::TracingBridge::new()
            .count(
                "bench",
                "search",
                telemetry_core::counter!("bench.span.searches").expect("declare the counter"),
            )
            .time(
                "bench",
                "search",
                telemetry_core::histogram!("bench.span.search.duration", unit = Nanoseconds)
                    .expect("declare the histogram"),
            );
        let subscriber = tracing_subscriber::registry().with(bridge);
        let _default = tracing::subscriber::set_default(subscriber);
        g.bench_single_thread("telemetry_bridge", span_fn);
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = counters, timed, histograms, clocks, render, facade, spans
}
criterion_main!(benches);

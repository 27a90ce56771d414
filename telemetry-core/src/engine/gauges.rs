//! Callback gauges, run so that a callback cannot hurt the program that takes a snapshot.
//!
//! A callback is the product's code run at snapshot time. Three things can go wrong, and each
//! is contained here:
//! - **It calls `snapshot()` itself** (directly, or from a panic hook while it panics): the
//!   inner snapshot leaves the callback gauges out instead of recursing.
//! - **It panics**: the panic is caught, the gauge is disabled for the rest of the process and
//!   logged once, so the host's panic hook fires once, not on every snapshot.
//! - **It blocks**: callbacks run on a helper thread, and the snapshot waits at most
//!   [`CALLBACK_BUDGET`] for each. One that takes longer is left out of that snapshot (logged
//!   once) and skipped until it returns; the snapshot, the reporter and `/metrics` go on.

use crate::engine::snapshot::{Labels, Series, Snapshot};
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, mpsc};
use std::time::{Duration, Instant};

/// The most a snapshot waits for one callback gauge.
pub const CALLBACK_BUDGET: Duration = Duration::from_millis(100);

/// The origin of [`Callback::running_since`].
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

// Sets [`EPOCH`] now if it is not yet, so that a forked child never finds it being set.
crate::fork::fork_hook!(EPOCH_FORK_HOOK, 0, || {
    LazyLock::force(&EPOCH);
    None
});

fn nanos_now() -> u64 {
    u64::try_from(EPOCH.elapsed().as_nanos()).unwrap_or(u64::MAX) | 1
}

/// A callback gauge's function and its state.
pub(crate) struct Callback {
    read: Box<dyn Fn() -> i64 + Send + Sync>,
    /// Panicked once: never run again.
    disabled: AtomicBool,
    /// When its latest run started ([`nanos_now`]), or 0 when it is not running.
    running_since: AtomicU64,
    /// Its slowness has been logged (logged again after it recovers).
    slow_logged: AtomicBool,
}

/// A registered callback, shared by the registry and every snapshot.
pub(crate) type GaugeCallback = Arc<Callback>;

impl Callback {
    pub(crate) fn new(read: impl Fn() -> i64 + Send + Sync + 'static) -> GaugeCallback {
        Arc::new(Callback {
            read: Box::new(read),
            disabled: AtomicBool::new(false),
            running_since: AtomicU64::new(0),
            slow_logged: AtomicBool::new(false),
        })
    }

    /// Disabled, or still running longer than the budget on a thread a snapshot gave up on.
    fn skipped(&self) -> bool {
        let since = self.running_since.load(Ordering::Acquire);
        self.disabled.load(Ordering::Acquire)
            || (since != 0 && nanos_now().saturating_sub(since) > CALLBACK_BUDGET.as_nanos() as u64)
    }
}

thread_local! {
    /// This thread is running callback gauges (a snapshot from inside one must not recurse).
    static RUNNING_CALLBACKS: Cell<bool> = const { Cell::new(false) };
}

/// What a helper thread reports for one callback.
enum Outcome {
    /// About to call it.
    Started,
    Value(i64),
    Panicked,
}

/// Runs `callbacks` and adds their values to `snapshot`'s gauge families. A callback that is
/// disabled, still stuck, or called from inside a callback is left out (its family stays in the
/// snapshot without a series).
pub(crate) fn evaluate(snapshot: &mut Snapshot, callbacks: Vec<(Arc<str>, GaugeCallback)>) {
    if callbacks.is_empty() || RUNNING_CALLBACKS.with(Cell::get) {
        return;
    }
    let mut pending: Vec<(Arc<str>, GaugeCallback)> = callbacks
        .into_iter()
        .filter(|(_, cb)| !cb.skipped())
        .collect();
    while !pending.is_empty() {
        let (tx, rx) = mpsc::channel();
        let batch = pending.clone();
        let spawned = std::thread::Builder::new()
            .name("telemetry-gauges".to_owned())
            .spawn(move || run_batch(&batch, &tx));
        if spawned.is_err() {
            // No thread to be had: run them here, still guarded against panics and recursion.
            let (tx, rx) = mpsc::channel();
            run_batch(&pending, &tx);
            drop(tx);
            for (index, outcome) in rx.try_iter() {
                record(snapshot, &pending[index], outcome);
            }
            return;
        }
        // The callback being run, and when the wait for it ends.
        let mut current = 0;
        let mut deadline = Instant::now() + CALLBACK_BUDGET;
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok((index, Outcome::Started)) => {
                    current = index;
                    deadline = Instant::now() + CALLBACK_BUDGET;
                }
                Ok((index, outcome)) => {
                    record(snapshot, &pending[index], outcome);
                    if index + 1 == pending.len() {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let (name, slow) = &pending[current];
                    if !slow.slow_logged.swap(true, Ordering::Relaxed) {
                        crate::diagnostics::diag!(
                            warn,
                            "callback gauge `{name}` took longer than {} ms; it is left out of snapshots until it returns",
                            CALLBACK_BUDGET.as_millis()
                        );
                    }
                    // The rest go to a new helper thread; this one stays with the slow call.
                    pending.drain(..=current);
                    break;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

fn record(snapshot: &mut Snapshot, (name, callback): &(Arc<str>, GaugeCallback), outcome: Outcome) {
    match outcome {
        Outcome::Started => {}
        Outcome::Value(value) => {
            callback.slow_logged.store(false, Ordering::Relaxed);
            if let Some(family) = snapshot.gauges.get_mut(&**name) {
                family.series.push(Series {
                    labels: Labels::new(),
                    value,
                });
            }
        }
        Outcome::Panicked => {
            crate::diagnostics::diag!(
                error,
                "callback gauge `{name}` panicked; it is disabled and left out of every snapshot from now on"
            );
        }
    }
}

/// Runs each callback in turn on this thread, sending `(index, outcome)` after each. Stops
/// when the snapshot is no longer listening (it gave up on a slow callback).
fn run_batch(batch: &[(Arc<str>, GaugeCallback)], tx: &mpsc::Sender<(usize, Outcome)>) {
    RUNNING_CALLBACKS.with(|running| running.set(true));
    for (index, (_, callback)) in batch.iter().enumerate() {
        if tx.send((index, Outcome::Started)).is_err() {
            break;
        }
        callback.running_since.store(nanos_now(), Ordering::Release);
        let result = catch_unwind(AssertUnwindSafe(|| (callback.read)()));
        callback.running_since.store(0, Ordering::Release);
        let outcome = match result {
            Ok(value) => Outcome::Value(value),
            Err(_) => {
                // The first panic only: a concurrent run may have panicked too.
                if callback.disabled.swap(true, Ordering::AcqRel) {
                    continue;
                }
                Outcome::Panicked
            }
        };
        if tx.send((index, outcome)).is_err() {
            break;
        }
    }
    RUNNING_CALLBACKS.with(|running| running.set(false));
}

//! `#[timed]` on a function that returns `impl Future` (not an `async fn`): the future it
//! returns is timed from the call to its completion, as an `async fn` would be, not only while
//! the function builds it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A future that records the time from its timer's start to its completion (or to being
/// dropped unfinished). Made by `#[timed]` only; not a stable API.
#[doc(hidden)]
#[must_use = "futures do nothing unless polled"]
pub struct TimedFuture<F, G> {
    inner: F,
    /// A timer guard (`TimerGuard`, `LabeledTimerGuard`): it records when dropped.
    timer: Option<G>,
}

impl<F: Future, G> TimedFuture<F, G> {
    /// `inner`, timed by `timer`.
    pub fn new(timer: G, inner: F) -> Self {
        TimedFuture {
            inner,
            timer: Some(timer),
        }
    }
}

impl<F: Future, G> Future for TimedFuture<F, G> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `inner` is structurally pinned: it is never moved out of `self`, and
        // `TimedFuture` has no `Drop` of its own that could move it; `timer` is not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let inner = unsafe { Pin::new_unchecked(&mut this.inner) };
        let poll = inner.poll(cx);
        if poll.is_ready() {
            // Records now: the call's time ends with its result.
            this.timer = None;
        }
        poll
    }
}

//! The reporter's clock: real time, or a fake one that tests move by hand.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Time as the reporter's schedule sees it: a duration since the reporter started.
pub trait Clock: Send + Sync {
    /// Time since the clock's origin.
    fn now(&self) -> Duration;

    /// How long, in real time, the reporter may block while waiting `remaining` of this
    /// clock's time (it wakes earlier for consent changes, events and shutdown).
    fn real_wait(&self, remaining: Duration) -> Duration;
}

/// The monotonic system clock.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn real_wait(&self, remaining: Duration) -> Duration {
        remaining
    }
}

/// A clock that moves only when [`advance`](FakeClock::advance) is called, so a test can run
/// "one hour later" in milliseconds. The reporter polls it every few milliseconds of real time.
#[derive(Debug, Default)]
pub struct FakeClock {
    now: Mutex<Duration>,
}

impl FakeClock {
    /// A fake clock at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Duration {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn real_wait(&self, remaining: Duration) -> Duration {
        remaining.min(Duration::from_millis(5))
    }
}

//! Sampled timing, `#[timed(sample = N)]`: for a function so cheap or so hot that two clock
//! reads per call cost too much. Each call is timed with probability 1/N, independently of
//! the others (a per-thread xorshift generator, so a periodic workload cannot fall in step
//! with it), and a timed call is recorded with weight N: its bucket and the histogram's count
//! grow by N and its sum by N times its duration. Count, sum and bucket counts are then
//! unbiased estimates of the totals, and quantiles those of the sampled calls; min and max are
//! the sampled calls'. The calls themselves are counted exactly by `#[count_usage]`.

use std::cell::Cell;

thread_local! {
    /// The generator's state; 0 until the thread's first sampled call seeds it.
    static STATE: Cell<u64> = const { Cell::new(0) };
}

/// Whether this call is timed: true with probability `1 / one_in` (within 2^-32).
#[inline(always)]
pub(crate) fn take(one_in: u32) -> bool {
    STATE.with(|state| {
        let mut x = state.get();
        if x == 0 {
            x = seed();
        }
        // xorshift64 (Marsaglia's 13, 7, 17): full period over the non-zero states.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        // The high half scaled to [0, one_in): 0 for a fraction 1 / one_in of its values.
        ((x >> 32) * u64::from(one_in)) >> 32 == 0
    })
}

/// A per-thread seed, never 0.
#[cold]
#[inline(never)]
fn seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::thread::current().id()) | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_one_call_in_n_on_average() {
        for one_in in [2u32, 16, 100] {
            let calls = 400_000;
            let taken = (0..calls).filter(|_| take(one_in)).count() as f64;
            let expected = f64::from(calls) / f64::from(one_in);
            // Five standard deviations of a binomial count.
            let sd = (expected * (1.0 - 1.0 / f64::from(one_in))).sqrt();
            assert!(
                (taken - expected).abs() < 5.0 * sd,
                "1 in {one_in}: {taken} taken of {calls}"
            );
        }
        assert!((0..1000).all(|_| take(1)));
    }
}

//! How long to wait before trying again, everywhere hotswap retries
//! (reconnecting streams, listing a failing source, loading a failed
//! version, restarting a Python process): exponential between a floor and
//! a ceiling, each delay with random jitter, so that many retriers that
//! failed together do not come back together.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Delays from `min` (doubling) up to `max`, each with up to its own
/// length again as jitter; never runs out (callers decide when to stop, and
/// start over after a success).
pub fn delays(min: Duration, max: Duration) -> Delays {
    Delays {
        min,
        max,
        inner: builder(min, max).build(),
    }
}

/// The `attempt`-th delay (1 for the first retry) of [`delays`], for
/// callers that keep a count rather than a sequence.
pub fn nth(min: Duration, max: Duration, attempt: u32) -> Duration {
    builder(min, max)
        .build()
        .nth(attempt.saturating_sub(1) as usize)
        .unwrap_or(max)
}

fn builder(min: Duration, max: Duration) -> ExponentialBuilder {
    ExponentialBuilder::new()
        .with_jitter()
        .with_min_delay(min)
        .with_max_delay(max)
        .without_max_times()
}

/// A sequence of delays that can start over.
pub struct Delays {
    min: Duration,
    max: Duration,
    inner: ExponentialBackoff,
}

impl Delays {
    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        self.inner.next().unwrap_or(self.max)
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.inner = builder(self.min, self.max).build();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_ceiling_with_jitter_and_start_over() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(1));
        let mut d = delays(min, max);
        let first = d.next_delay();
        assert!(first >= min && first < 2 * min, "{first:?}");
        for _ in 0..20 {
            let next = d.next_delay();
            assert!(next >= min && next <= 2 * max, "{next:?}");
        }
        d.reset();
        assert!(d.next_delay() < 2 * min);
        let late = nth(min, max, 30);
        assert!(late >= max && late <= 2 * max, "{late:?}");
    }
}

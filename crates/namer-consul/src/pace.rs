//! Pacing: the retry backoff and the churn limiter.

use std::time::Duration;

use tokio::time::Instant;

/// Jittered exponential backoff (Linkerd 1's `exponentialJittered`, 10 ms
/// to 5 s by default).
///
/// Step `n` (from 0) has a base of `min * 2^n`, capped at `max`; the delay
/// is uniform in `[base/2, base]`, then clamped to `[min, max]`. So the
/// first delay is `min`, the second is in `[min, 2*min]`, and at the cap
/// delays spread over `[max/2, max]` so that watches failing together do
/// not retry together.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    step: u32,
    rng: fastrand::Rng,
}

impl Backoff {
    pub(crate) fn new((min, max): (Duration, Duration)) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            step: 0,
            rng: fastrand::Rng::new(),
        }
    }

    /// The next delay.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self
            .min
            .checked_mul(1u32 << self.step.min(30))
            .unwrap_or(self.max)
            .min(self.max);
        self.step = self.step.saturating_add(1);
        let lo = base / 2;
        let span = u64::try_from((base - lo).as_nanos()).unwrap_or(u64::MAX);
        let delay = lo + Duration::from_nanos(self.rng.u64(0..=span));
        delay.clamp(self.min, self.max)
    }

    /// Back to the first step (after a success).
    pub(crate) fn reset(&mut self) {
        self.step = 0;
    }
}

/// A token bucket (burst `burst`, one token per `interval`), as a GCRA:
/// in the happy case (long polls that last) requests go at once; a loop
/// that churns (answers that come back immediately, over and over) is held
/// to one request per `interval` after its burst. Consul's blocking-query
/// docs recommend exactly this over a flat sleep.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    interval: Duration,
    tolerance: Duration,
    /// The theoretical arrival time of the next request.
    tat: Option<Instant>,
}

impl TokenBucket {
    pub(crate) fn new(burst: u32, interval: Duration) -> TokenBucket {
        TokenBucket {
            interval,
            tolerance: interval * burst.saturating_sub(1),
            tat: None,
        }
    }

    /// Takes a token at `now`; returns how long to wait before using it.
    pub(crate) fn take(&mut self, now: Instant) -> Duration {
        let tat = self.tat.map_or(now, |t| t.max(now));
        let allowed = tat.checked_sub(self.tolerance).unwrap_or(now).max(now);
        self.tat = Some(tat + self.interval);
        allowed - now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn backoff_grows_jittered_to_its_cap_and_resets() {
        let mut b = Backoff::new((10 * MS, 5000 * MS));
        assert_eq!(b.next_delay(), 10 * MS, "the first delay is the minimum");
        let d = b.next_delay();
        assert!(
            (10 * MS..=20 * MS).contains(&d),
            "second in [10, 20] ms: {d:?}"
        );
        let d = b.next_delay();
        assert!(
            (20 * MS..=40 * MS).contains(&d),
            "third in [20, 40] ms: {d:?}"
        );
        for _ in 0..40 {
            let d = b.next_delay();
            assert!(d <= 5000 * MS, "never above the cap: {d:?}");
        }
        let d = b.next_delay();
        assert!(
            (2500 * MS..=5000 * MS).contains(&d),
            "at the cap delays spread over [max/2, max]: {d:?}"
        );
        b.reset();
        assert_eq!(b.next_delay(), 10 * MS, "a reset starts over");
    }

    #[test]
    fn bucket_lets_a_burst_through_then_paces() {
        let start = Instant::now();
        let mut t = TokenBucket::new(2, 1000 * MS);
        assert_eq!(t.take(start), Duration::ZERO);
        assert_eq!(t.take(start), Duration::ZERO, "a burst of two goes at once");
        assert_eq!(t.take(start), 1000 * MS, "the third waits for a token");
        let later = start + 1000 * MS;
        assert_eq!(t.take(later), 1000 * MS, "then one per interval");
        let idle = start + 60_000 * MS;
        assert_eq!(t.take(idle), Duration::ZERO, "an idle bucket refills");
        assert_eq!(t.take(idle), Duration::ZERO, "to its full burst");
        assert_eq!(t.take(idle), 1000 * MS);
    }
}

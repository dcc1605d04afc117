//! The sequence of dead periods a [`Backoff`] describes, with an injected,
//! seeded RNG so tests can replay it.

use std::time::Duration;

use crate::config::Backoff;

/// Jittered periods are never shorter than this, so a zero `min` cannot
/// pin a decorrelated sequence at zero forever.
const MIN_JITTERED: Duration = Duration::from_millis(1);

/// An endless iterator of backoff periods. Restart it (make a new one) to
/// go back to the first step.
#[derive(Debug, Clone)]
pub struct BackoffStream {
    kind: Kind,
    rng: fastrand::Rng,
}

#[derive(Debug, Clone)]
enum Kind {
    Constant(Duration),
    /// Finagle `Backoff.decorrelatedJittered`.
    Decorrelated {
        min: u64,
        max: u64,
        prev: Option<u64>,
    },
    /// Finagle `Backoff.equalJittered`.
    Equal {
        min: u64,
        max: u64,
        step: u32,
    },
}

impl BackoffStream {
    pub(crate) fn new(backoff: Backoff, seed: u64) -> Self {
        let bounds = |min: Duration, max: Duration| {
            let min = nanos(min.max(MIN_JITTERED));
            (min, nanos(max).max(min))
        };
        let kind = match backoff {
            Backoff::Constant(d) => Kind::Constant(d),
            Backoff::Jittered { min, max } => {
                let (min, max) = bounds(min, max);
                Kind::Decorrelated {
                    min,
                    max,
                    prev: None,
                }
            }
            Backoff::EqualJittered { min, max } => {
                let (min, max) = bounds(min, max);
                Kind::Equal { min, max, step: 0 }
            }
        };
        BackoffStream {
            kind,
            rng: fastrand::Rng::with_seed(seed),
        }
    }
}

impl Iterator for BackoffStream {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let ns = match &mut self.kind {
            Kind::Constant(d) => return Some(*d),
            // First `min`; then uniform in [prev, min(3 * prev, max)]. The
            // sequence never shrinks and reaches `max` after about
            // log3(max / min) steps on average.
            Kind::Decorrelated { min, max, prev } => {
                let next = match *prev {
                    None => *min,
                    Some(p) => {
                        let upper = p.saturating_mul(3).min(*max);
                        self.rng.u64(p..=upper)
                    }
                };
                *prev = Some(next);
                next
            }
            // Step 1 is `min`; step k >= 2 is h + uniform[0, h) with
            // h = min * 2^(k-2): half the exponential growth is kept, half is
            // jitter. Capped at `max`.
            Kind::Equal { min, max, step } => {
                *step = step.saturating_add(1);
                if *step == 1 {
                    *min
                } else {
                    let shift = (*step - 2).min(62);
                    let half = min.saturating_mul(1u64 << shift);
                    if half >= *max {
                        *max
                    } else {
                        (half + self.rng.u64(0..half)).min(*max)
                    }
                }
            }
        };
        Some(Duration::from_nanos(ns))
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn constant_backoff_repeats_its_period() {
        let got: Vec<_> = Backoff::Constant(3 * S).stream(1).take(4).collect();
        assert_eq!(got, [3 * S; 4], "constant backoff never changes");
    }

    #[test]
    fn equal_jittered_backoff_doubles_its_floor_and_stays_under_max() {
        for seed in 0..200 {
            let got: Vec<_> = Backoff::default().stream(seed).take(12).collect();
            assert_eq!(got[0], 5 * S, "the first dead period is min");
            for (i, d) in got.iter().enumerate().skip(1) {
                let half = (5 * S) * (1u32 << (i - 1));
                let (lo, hi) = (half.min(300 * S), (2 * half).min(300 * S));
                assert!(
                    *d >= lo && *d <= hi,
                    "step {} must lie in [min*2^(k-2), 2*min*2^(k-2)] capped at max; got {d:?} (seed {seed})",
                    i + 1
                );
            }
            assert_eq!(got[11], 300 * S, "the sequence settles at max");
        }
    }

    #[test]
    fn decorrelated_jittered_backoff_grows_at_most_threefold_within_bounds() {
        for seed in 0..200 {
            let b = Backoff::Jittered {
                min: 5 * S,
                max: 300 * S,
            };
            let got: Vec<_> = b.stream(seed).take(40).collect();
            assert_eq!(got[0], 5 * S, "the first dead period is min");
            for w in got.windows(2) {
                assert!(
                    w[1] >= w[0] && w[1] <= (3 * w[0]).min(300 * S),
                    "each period lies in [previous, min(3*previous, max)]: {:?} -> {:?}",
                    w[0],
                    w[1]
                );
            }
        }
    }

    #[test]
    fn jittered_backoff_is_reproducible_from_its_seed() {
        let a: Vec<_> = Backoff::default().stream(7).take(8).collect();
        let b: Vec<_> = Backoff::default().stream(7).take(8).collect();
        assert_eq!(a, b, "the same seed gives the same periods");
    }

    #[test]
    fn degenerate_jittered_bounds_are_clamped() {
        let b = Backoff::Jittered {
            min: Duration::ZERO,
            max: Duration::ZERO,
        };
        let got: Vec<_> = b.stream(1).take(3).collect();
        assert_eq!(
            got, [MIN_JITTERED; 3],
            "min is at least 1 ms and max at least min"
        );
    }
}

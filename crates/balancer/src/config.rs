//! Plain configuration types: which balancer, which failure accrual policy,
//! which backoff. Linkerd 1's defaults are the `Default` impls; parsing YAML
//! into these types is `strait::config`'s job, not this crate's.

use std::time::Duration;

use crate::backoff::BackoffStream;

/// Linkerd's `maxEffort` default for every balancer kind.
pub const DEFAULT_MAX_EFFORT: u32 = 5;
/// Linkerd's `decayTimeMs` default for the `ewma` balancer.
pub const DEFAULT_EWMA_DECAY: Duration = Duration::from_secs(10);
/// Linkerd's `failures` default for `io.l5d.consecutiveFailures`.
pub const DEFAULT_CONSECUTIVE_FAILURES: u32 = 5;
/// First dead period of Linkerd's default failure-accrual backoff.
pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_secs(5);
/// Longest dead period of Linkerd's default failure-accrual backoff.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(300);

/// How an endpoint is chosen (`client.loadBalancer`).
///
/// Every kind honours endpoint weights and `max_effort` (how many times a
/// pick is redrawn when it lands on a dead endpoint or on the one to avoid).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoadBalancer {
    /// `p2c`: power of two choices, least `(in-flight + 1) / weight` wins.
    P2c {
        /// Redraws after an unusable pick (default 5).
        max_effort: u32,
    },
    /// `ewma`: power of two choices over peak-EWMA cost
    /// `rtt * (in-flight + 1) / weight`.
    Ewma {
        /// Redraws after an unusable pick (default 5).
        max_effort: u32,
        /// Time constant of the RTT estimate's decay (`decayTimeMs`, default 10 s).
        decay: Duration,
    },
    /// `roundRobin`: smooth weighted round robin, skipping dead endpoints.
    RoundRobin {
        /// Redraws after an unusable pick (default 5).
        max_effort: u32,
    },
}

/// When an endpoint is marked dead (`client.failureAccrual`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FailureAccrual {
    /// `io.l5d.consecutiveFailures`: dead after `failures` failures in a row.
    ConsecutiveFailures {
        /// Failures in a row that mark an endpoint dead (default 5; 0 acts as 1).
        failures: u32,
        /// Dead periods.
        backoff: Backoff,
    },
    /// `io.l5d.successRate`: dead when the success rate, an EWMA over the
    /// last `requests` requests, falls below `success_rate`. Never before
    /// `requests` requests have been seen (Finagle's rule).
    SuccessRate {
        /// Required success rate, in `[0, 1]`.
        success_rate: f64,
        /// Window of the EWMA, in requests (0 acts as 1).
        requests: u32,
        /// Dead periods.
        backoff: Backoff,
    },
    /// `io.l5d.successRateWindowed`: as `SuccessRate`, but the EWMA's window
    /// is a duration, and nothing is marked dead before one window has passed
    /// since the endpoint was added or revived.
    SuccessRateWindowed {
        /// Required success rate, in `[0, 1]`.
        success_rate: f64,
        /// Window of the EWMA (0 acts as 1 ms).
        window: Duration,
        /// Dead periods.
        backoff: Backoff,
    },
    /// `none`: endpoints are never marked dead.
    None,
}

/// The successive dead periods of an endpoint (`backoff:`).
///
/// Linkerd 1 has two configurable kinds, `constant` and `jittered`; its
/// *default* (when `backoff` is absent) is a third, Finagle's equal jitter,
/// so all three are here. Sequences restart at the first step when an
/// endpoint is revived. See [`BackoffStream`] for the exact arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// `kind: constant` (`ms`, default 0): the same period every time.
    Constant(Duration),
    /// `kind: jittered` (`minMs`, `maxMs`): Finagle's *decorrelated* jitter
    /// (`Backoff.decorrelatedJittered`, what Linkerd 1's `BackoffConfig`
    /// builds): first `min`, then each period uniform in
    /// `[previous, min(3 * previous, max)]`.
    Jittered {
        /// First period; also the floor (at least 1 ms).
        min: Duration,
        /// Ceiling.
        max: Duration,
    },
    /// Linkerd 1's default (`FailureAccrualConfig.defaultBackoff`): Finagle's
    /// *equal* jitter, `Backoff.equalJittered(5 s, 300 s)`: first `min`, then
    /// step `k >= 2` uniform in `[h, 2h)` with `h = min * 2^(k-2)`, capped at
    /// `max`.
    EqualJittered {
        /// First period (at least 1 ms).
        min: Duration,
        /// Ceiling.
        max: Duration,
    },
}

impl Default for LoadBalancer {
    fn default() -> Self {
        LoadBalancer::P2c {
            max_effort: DEFAULT_MAX_EFFORT,
        }
    }
}

impl LoadBalancer {
    /// `ewma` with Linkerd's defaults (`maxEffort` 5, `decayTimeMs` 10 000).
    pub fn ewma() -> Self {
        LoadBalancer::Ewma {
            max_effort: DEFAULT_MAX_EFFORT,
            decay: DEFAULT_EWMA_DECAY,
        }
    }

    /// `roundRobin` with Linkerd's default `maxEffort` 5.
    pub fn round_robin() -> Self {
        LoadBalancer::RoundRobin {
            max_effort: DEFAULT_MAX_EFFORT,
        }
    }

    /// Redraws after an unusable pick.
    pub fn max_effort(&self) -> u32 {
        match *self {
            LoadBalancer::P2c { max_effort }
            | LoadBalancer::Ewma { max_effort, .. }
            | LoadBalancer::RoundRobin { max_effort } => max_effort,
        }
    }
}

impl Default for FailureAccrual {
    fn default() -> Self {
        FailureAccrual::ConsecutiveFailures {
            failures: DEFAULT_CONSECUTIVE_FAILURES,
            backoff: Backoff::default(),
        }
    }
}

impl FailureAccrual {
    /// The backoff of this policy (`None` has none).
    pub fn backoff(&self) -> Option<Backoff> {
        match *self {
            FailureAccrual::ConsecutiveFailures { backoff, .. }
            | FailureAccrual::SuccessRate { backoff, .. }
            | FailureAccrual::SuccessRateWindowed { backoff, .. } => Some(backoff),
            FailureAccrual::None => None,
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::EqualJittered {
            min: DEFAULT_BACKOFF_MIN,
            max: DEFAULT_BACKOFF_MAX,
        }
    }
}

impl Backoff {
    /// The sequence of periods, jittered by an RNG seeded with `seed`.
    pub fn stream(&self, seed: u64) -> BackoffStream {
        BackoffStream::new(*self, seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_linkerds() {
        assert_eq!(
            LoadBalancer::default(),
            LoadBalancer::P2c { max_effort: 5 },
            "Linkerd's default balancer is p2c with maxEffort 5"
        );
        assert_eq!(
            FailureAccrual::default(),
            FailureAccrual::ConsecutiveFailures {
                failures: 5,
                backoff: Backoff::EqualJittered {
                    min: Duration::from_secs(5),
                    max: Duration::from_secs(300)
                }
            },
            "Linkerd's default accrual is 5 consecutive failures, equal jitter 5 s to 300 s"
        );
        assert_eq!(
            LoadBalancer::ewma(),
            LoadBalancer::Ewma {
                max_effort: 5,
                decay: Duration::from_secs(10)
            },
            "ewma defaults are maxEffort 5 and decayTimeMs 10000"
        );
    }
}

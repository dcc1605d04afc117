//! One endpoint's state: requests in flight, the peak-EWMA RTT estimate and
//! failure accrual. Reads (what `pick` does) are lock-free atomics; writes
//! (what `Lease::finish` does) take the endpoint's own small mutex.
//!
//! Accrual state machine (Finagle `FailureAccrualFactory`, with two
//! deliberate differences marked *):
//!
//! ```text
//!   Alive --policy says dead--> Dead(until now + backoff.next())
//!   Alive --NotConnected--> Dead(until now + backoff.next())     * at once
//!   Dead  --clock passes until--> ProbeOpen          (no event: read lazily)
//!   ProbeOpen --a pick claims the probe--> ProbeOpen with probe in flight
//!   probe Success --> Alive (policy and backoff reset)
//!   probe Failure or NotConnected --> Dead(until now + backoff.next())
//!   probe dropped --> ProbeOpen (the slot is free again)
//!   Dead or ProbeOpen --success of a request sent to it while dead--> Alive *
//! ```
//!
//! A refused connection is unambiguous (nothing was sent, nothing listens),
//! so it marks the endpoint dead without waiting for the policy; with
//! accrual `none` it is only a failure. A request reaches a dead endpoint
//! only as its probe or through panic mode (every draw of a pick unusable,
//! always so when every endpoint is dead or the set has one); if it
//! succeeds the endpoint serves, and it is revived exactly as by a
//! successful probe (Finagle waits for the probe after the backoff, so a
//! whole set marked dead by an outage stays "dead" for the full backoff and
//! a crashed endpoint keeps its share of panic picks meanwhile).
//!
//! Other outcomes of ordinary (non-probe) requests change nothing while the
//! endpoint is dead: failures are expected of a dead endpoint, and the
//! outcomes of requests picked before it died are stale (a success of one
//! does not revive it, or success-rate accrual could never keep a
//! half-failing endpoint out under load).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::backoff::BackoffStream;
use crate::balancer::Outcome;
use crate::config::{Backoff, FailureAccrual};

/// Peak-EWMA never reports an RTT below this (linkerd2-proxy's floor), so a
/// fresh or long-idle endpoint's cost still grows with its in-flight count.
pub(crate) const RTT_FLOOR_NS: f64 = 1_000_000.0;

/// What `pick` sees of an endpoint's accrual state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    Alive,
    Dead,
    /// The dead period is over; `claimed` once its one probe is in flight.
    ProbeOpen {
        claimed: bool,
    },
}

impl Health {
    /// Not known to be failing: alive, or probe-open with the probe slot
    /// free. What a pick prefers.
    pub(crate) fn is_usable(self) -> bool {
        matches!(self, Health::Alive | Health::ProbeOpen { claimed: false })
    }
}

/// What marking dead or reviving did, for the balancer's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    None,
    MarkedDead,
    /// Revived after having been out for this many nanoseconds.
    Revived(u64),
}

#[derive(Debug)]
pub(crate) struct Endpoint {
    pub(crate) addr: SocketAddr,
    inflight: AtomicU64,
    /// `f64` bits, nanoseconds; 0 until the first response.
    rtt_ns: AtomicU64,
    /// When `rtt_ns` was last updated (nanoseconds since the balancer's epoch).
    rtt_at: AtomicU64,
    /// 0 while alive; otherwise the end of the dead period (ns since epoch, >= 1).
    dead_until: AtomicU64,
    probe_in_flight: AtomicBool,
    /// Removed from the set by an update: outstanding leases still finish,
    /// but their outcomes no longer feed accrual or the balancer's counters.
    retired: AtomicBool,
    accrual: Mutex<Accrual>,
}

#[derive(Debug)]
struct Accrual {
    policy: Policy,
    backoff_config: Backoff,
    backoff: BackoffStream,
    rng: fastrand::Rng,
    /// Start of the current outage, if dead or probing.
    dead_since: u64,
}

#[derive(Debug)]
enum Policy {
    Consecutive {
        limit: u32,
        count: u32,
    },
    /// EWMA success rate; the stamp is the request count since added/revived.
    SuccessRate {
        required: f64,
        window: f64,
        ema: Ema,
        requests: u64,
    },
    /// EWMA success rate; the stamp is milliseconds since added/revived.
    Windowed {
        required: f64,
        window_ms: f64,
        ema: Ema,
        since: u64,
    },
    Never,
}

/// Finagle `util.Ema`: an exponentially weighted moving average over an
/// arbitrary monotonic stamp (request count or milliseconds).
#[derive(Debug, Default)]
struct Ema {
    last: Option<f64>,
    value: f64,
}

impl Endpoint {
    pub(crate) fn new(addr: SocketAddr, accrual: &FailureAccrual, seed: u64, now: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let backoff_config = accrual
            .backoff()
            .unwrap_or(Backoff::Constant(Duration::ZERO));
        let backoff = backoff_config.stream(rng.u64(..));
        Endpoint {
            addr,
            inflight: AtomicU64::new(0),
            rtt_ns: AtomicU64::new(0f64.to_bits()),
            rtt_at: AtomicU64::new(now),
            dead_until: AtomicU64::new(0),
            probe_in_flight: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            accrual: Mutex::new(Accrual {
                policy: Policy::new(accrual, now),
                backoff_config,
                backoff,
                rng,
                dead_since: 0,
            }),
        }
    }

    pub(crate) fn inflight(&self) -> u64 {
        self.inflight.load(Ordering::Relaxed)
    }

    pub(crate) fn acquire(&self) {
        self.inflight.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn release(&self) {
        self.inflight.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }

    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    pub(crate) fn health(&self, now: u64) -> Health {
        match self.dead_until.load(Ordering::Acquire) {
            0 => Health::Alive,
            until if now < until => Health::Dead,
            _ => Health::ProbeOpen {
                claimed: self.probe_in_flight.load(Ordering::Acquire),
            },
        }
    }

    /// Takes the probe slot if the endpoint is probe-open and the slot is free.
    pub(crate) fn try_claim_probe(&self, now: u64) -> bool {
        matches!(self.health(now), Health::ProbeOpen { claimed: false })
            && self
                .probe_in_flight
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    pub(crate) fn release_probe(&self) {
        self.probe_in_flight.store(false, Ordering::Release);
    }

    /// The peak-EWMA estimate decayed to `now`, before the floor (0 until
    /// the first response).
    pub(crate) fn rtt_raw_ns(&self, now: u64, decay_ns: f64) -> f64 {
        let est = f64::from_bits(self.rtt_ns.load(Ordering::Relaxed));
        let at = self.rtt_at.load(Ordering::Relaxed);
        est * decay_weight(now.saturating_sub(at), decay_ns)
    }

    /// The estimate `pick` uses: decayed, floored at 1 ms.
    pub(crate) fn rtt_ns(&self, now: u64, decay_ns: f64) -> f64 {
        self.rtt_raw_ns(now, decay_ns).max(RTT_FLOOR_NS)
    }

    /// Records a finished request: its RTT, then its outcome for accrual.
    /// `start` is when it was picked; `probe` says whether it was the
    /// endpoint's probe.
    pub(crate) fn observe(
        &self,
        start: u64,
        now: u64,
        decay_ns: f64,
        outcome: Outcome,
        probe: bool,
    ) -> Transition {
        let mut acc = self.lock();
        if outcome != Outcome::NotConnected {
            // Nothing was sent: the time it took says nothing of the RTT.
            self.observe_rtt(now.saturating_sub(start) as f64, now, decay_ns);
        }
        let transition = self.accrue(&mut acc, start, now, outcome, probe);
        if probe {
            // Only now: freed before a failed probe's new dead period is
            // stored, the slot would let a second probe through.
            self.release_probe();
        }
        transition
    }

    fn accrue(
        &self,
        acc: &mut Accrual,
        start: u64,
        now: u64,
        outcome: Outcome,
        probe: bool,
    ) -> Transition {
        let dead = self.dead_until.load(Ordering::Acquire) != 0;
        if dead {
            // Sent while the endpoint was dead (a probe or a panic pick), as
            // opposed to picked before it died. A probe claimed in an earlier
            // outage that a success has since ended is stale too.
            let sent_while_dead = start >= acc.dead_since;
            return match outcome {
                _ if !sent_while_dead => Transition::None,
                Outcome::Success => {
                    let out_for = now.saturating_sub(acc.dead_since);
                    acc.revive(now);
                    self.dead_until.store(0, Ordering::Release);
                    Transition::Revived(out_for)
                }
                Outcome::Failure | Outcome::NotConnected if probe => {
                    let period = acc.backoff.next().unwrap_or_default();
                    self.mark_dead_until(now, period);
                    Transition::MarkedDead
                }
                Outcome::Failure | Outcome::NotConnected => Transition::None,
            };
        }
        // Alive (a probe whose endpoint a success revived meanwhile counts
        // as an ordinary request).
        let marks_dead = match outcome {
            Outcome::Success => {
                acc.policy.success(now);
                false
            }
            Outcome::Failure => acc.policy.failure_marks_dead(now),
            Outcome::NotConnected => {
                acc.policy.failure_marks_dead(now) || !acc.policy.is_disabled()
            }
        };
        if marks_dead {
            let period = acc.backoff.next().unwrap_or_default();
            acc.dead_since = now;
            self.mark_dead_until(now, period);
            Transition::MarkedDead
        } else {
            Transition::None
        }
    }

    /// Peak-EWMA (Finagle `PeakEwma`, tower `load::PeakEwma`): decay the
    /// estimate to now; a sample above it replaces it (peak); a sample below
    /// it is blended in with weight `1 - exp(-elapsed / decay)`.
    fn observe_rtt(&self, rtt: f64, now: u64, decay_ns: f64) {
        let at = self.rtt_at.load(Ordering::Relaxed);
        let w = decay_weight(now.saturating_sub(at), decay_ns);
        let current = f64::from_bits(self.rtt_ns.load(Ordering::Relaxed)) * w;
        let next = if rtt >= current {
            rtt
        } else {
            current * w + rtt * (1.0 - w)
        };
        self.rtt_ns.store(next.to_bits(), Ordering::Relaxed);
        self.rtt_at.store(now, Ordering::Relaxed);
    }

    fn mark_dead_until(&self, now: u64, period: Duration) {
        let period = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
        self.dead_until
            .store(now.saturating_add(period).max(1), Ordering::Release);
    }

    fn lock(&self) -> MutexGuard<'_, Accrual> {
        // A panic elsewhere cannot leave this state half-written in a way
        // that matters more than refusing to balance would.
        self.accrual.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Accrual {
    fn revive(&mut self, now: u64) {
        self.policy.reset(now);
        self.backoff = self.backoff_config.stream(self.rng.u64(..));
    }
}

impl Policy {
    fn new(config: &FailureAccrual, now: u64) -> Self {
        match *config {
            FailureAccrual::ConsecutiveFailures { failures, .. } => Policy::Consecutive {
                limit: failures.max(1),
                count: 0,
            },
            FailureAccrual::SuccessRate {
                success_rate,
                requests,
                ..
            } => Policy::SuccessRate {
                required: success_rate,
                window: f64::from(requests.max(1)),
                ema: Ema::default(),
                requests: 0,
            },
            FailureAccrual::SuccessRateWindowed {
                success_rate,
                window,
                ..
            } => Policy::Windowed {
                required: success_rate,
                window_ms: (window.as_secs_f64() * 1e3).max(1.0),
                ema: Ema::default(),
                since: now,
            },
            FailureAccrual::None => Policy::Never,
        }
    }

    fn success(&mut self, now: u64) {
        match self {
            Policy::Consecutive { count, .. } => *count = 0,
            Policy::SuccessRate {
                window,
                ema,
                requests,
                ..
            } => {
                *requests += 1;
                ema.update(*requests as f64, 1.0, *window);
            }
            Policy::Windowed {
                window_ms,
                ema,
                since,
                ..
            } => {
                ema.update(ms_since(*since, now), 1.0, *window_ms);
            }
            Policy::Never => {}
        }
    }

    /// Finagle `markDeadOnFailure`: records the failure, says whether the
    /// endpoint is now dead.
    fn failure_marks_dead(&mut self, now: u64) -> bool {
        match self {
            Policy::Consecutive { limit, count } => {
                *count = count.saturating_add(1);
                *count >= *limit
            }
            Policy::SuccessRate {
                required,
                window,
                ema,
                requests,
            } => {
                *requests += 1;
                let stamp = *requests as f64;
                let rate = ema.update(stamp, 0.0, *window);
                stamp >= *window && rate < *required
            }
            Policy::Windowed {
                required,
                window_ms,
                ema,
                since,
            } => {
                let stamp = ms_since(*since, now);
                let rate = ema.update(stamp, 0.0, *window_ms);
                stamp >= *window_ms && rate < *required
            }
            Policy::Never => false,
        }
    }

    /// Accrual `none`: nothing ever marks the endpoint dead.
    fn is_disabled(&self) -> bool {
        matches!(self, Policy::Never)
    }

    /// Finagle `revived`: forget the history.
    fn reset(&mut self, now: u64) {
        match self {
            Policy::Consecutive { count, .. } => *count = 0,
            Policy::SuccessRate { ema, requests, .. } => {
                *ema = Ema::default();
                *requests = 0;
            }
            Policy::Windowed { ema, since, .. } => {
                *ema = Ema::default();
                *since = now;
            }
            Policy::Never => {}
        }
    }
}

impl Ema {
    /// The first sample is taken as is; later ones are weighted by
    /// `1 - exp(-(stamp - last) / window)`.
    fn update(&mut self, stamp: f64, x: f64, window: f64) -> f64 {
        self.value = match self.last {
            None => x,
            Some(last) => {
                let w = (-(stamp - last).max(0.0) / window).exp();
                x * (1.0 - w) + self.value * w
            }
        };
        self.last = Some(stamp);
        self.value
    }
}

fn decay_weight(elapsed_ns: u64, decay_ns: f64) -> f64 {
    (-(elapsed_ns as f64) / decay_ns).exp()
}

fn ms_since(since: u64, now: u64) -> f64 {
    now.saturating_sub(since) as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECAY: f64 = 10e9;

    fn addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 1))
    }

    #[test]
    fn peak_ewma_jumps_to_a_slow_sample_and_decays_towards_zero() {
        let ep = Endpoint::new(addr(), &FailureAccrual::None, 1, 0);
        assert_eq!(
            ep.rtt_ns(0, DECAY),
            RTT_FLOOR_NS,
            "an endpoint without samples costs the 1 ms floor"
        );
        ep.observe(0, 500_000_000, DECAY, Outcome::Success, false);
        assert_eq!(
            ep.rtt_raw_ns(500_000_000, DECAY),
            500e6,
            "a sample above the estimate replaces it"
        );
        let later = 500_000_000 + 10_000_000_000;
        let decayed = ep.rtt_raw_ns(later, DECAY);
        assert!(
            (decayed - 500e6 / std::f64::consts::E).abs() < 1.0,
            "after one decay period the estimate is divided by e, got {decayed}"
        );
    }

    #[test]
    fn a_fast_sample_pulls_the_estimate_down_gradually() {
        let ep = Endpoint::new(addr(), &FailureAccrual::None, 1, 0);
        ep.observe(0, 100_000_000, DECAY, Outcome::Success, false);
        let t = 100_000_000 + 1_000_000_000;
        ep.observe(t - 10_000_000, t, DECAY, Outcome::Success, false);
        let est = ep.rtt_raw_ns(t, DECAY);
        assert!(
            est > 10e6 && est < 100e6,
            "a sample below the estimate is blended in, not taken as is: {est}"
        );
    }

    #[test]
    fn ema_takes_the_first_sample_and_weights_later_ones_by_distance() {
        let mut ema = Ema::default();
        assert_eq!(
            ema.update(1.0, 1.0, 10.0),
            1.0,
            "first sample is taken as is"
        );
        let v = ema.update(2.0, 0.0, 10.0);
        assert!(
            (v - (-0.1f64).exp()).abs() < 1e-12,
            "one step of a 10-step window keeps exp(-1/10) of the past"
        );
    }
}

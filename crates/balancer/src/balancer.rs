//! The balancer: an atomically swapped endpoint set, the three pick
//! strategies, `maxEffort` redraws and panic mode, leases and counters.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use arc_swap::ArcSwap;

use crate::clock::Clock;
use crate::config::{DEFAULT_EWMA_DECAY, FailureAccrual, LoadBalancer};
use crate::endpoint::{Endpoint, Health, Transition};
use crate::rng::SplitMix;

/// Weights that are not finite and positive are replaced by this: such an
/// endpoint loses every comparison against a properly weighted one, and gets
/// one slot per round in round robin.
const INVALID_WEIGHT: f64 = 1e-6;
/// Round-robin weights are quantised to integers with this resolution
/// relative to the smallest weight...
const RR_RESOLUTION: f64 = 10.0;
/// ...and one round (the schedule) never has more slots than this.
const RR_MAX_SLOTS: u64 = 10_000;

/// Picks endpoints for one client. `Send + Sync`; share it behind an `Arc`.
pub struct Balancer {
    lb: LoadBalancer,
    shared: Arc<Shared>,
    set: ArcSwap<Set>,
    /// Serialises `update` so two concurrent updates cannot lose state.
    update_lock: Mutex<()>,
}

/// A picked endpoint, counted in flight until finished or dropped.
///
/// Call [`Lease::finish`] when the response (including its body) is done;
/// dropping a lease without finishing releases it and records nothing
/// (neither success nor failure, no latency sample).
#[must_use = "a lease counts as in flight until finished or dropped"]
pub struct Lease {
    ep: Arc<Endpoint>,
    shared: Arc<Shared>,
    start: u64,
    probe: bool,
}

/// How a request to an endpoint ended, as the caller's classifier saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Counts as a success for failure accrual.
    Success,
    /// Counts as a failure for failure accrual.
    Failure,
    /// The connection could not be made (refused, or timed out, or no
    /// connection was available): nothing was sent. Unambiguous, so it marks
    /// the endpoint dead at once, starting its backoff, without waiting for
    /// the accrual policy; with accrual `none` it is only a failure. On a
    /// probe it is a failed probe; on an endpoint already dead it changes
    /// nothing. It gives no latency sample.
    NotConnected,
}

/// Counters and gauges of a balancer (Finagle's `loadbalancer/*` and
/// `failure_accrual/*` names in the field docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BalancerStats {
    /// `loadbalancer/size`: endpoints in the current set.
    pub size: usize,
    /// `loadbalancer/available`: endpoints alive or probe-open.
    pub available: usize,
    /// `failure_accrual/removals`: times an endpoint was marked dead
    /// (including re-kills after a failed probe and refused connections).
    pub removals: u64,
    /// `failure_accrual/revivals`: dead endpoints revived by a success (of
    /// their probe, or of a request sent to them in panic mode).
    pub revivals: u64,
    /// `failure_accrual/probes`: probe requests let through.
    pub probes: u64,
    /// `failure_accrual/removed_for_ms`: total length of completed outages,
    /// from being marked dead to being revived.
    pub removed_for_ms: u64,
    /// `loadbalancer/adds`: endpoints added by `update`.
    pub adds: u64,
    /// `loadbalancer/removes`: endpoints removed by `update`.
    pub removes: u64,
}

/// One endpoint as the admin page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointInfo {
    /// Where it is.
    pub addr: SocketAddr,
    /// Its weight as given to `update` (after replacing invalid ones).
    pub weight: f64,
    /// Requests in flight (leases not yet finished or dropped).
    pub inflight: u64,
    /// `"alive"`, `"dead"` or `"probing"` (dead period over, probe allowed or
    /// in flight).
    pub state: &'static str,
    /// Peak-EWMA RTT estimate decayed to now, in ms (0 before any response).
    pub ewma_ms: f64,
}

struct Shared {
    clock: Arc<dyn Clock>,
    epoch: Instant,
    rng: SplitMix,
    rr_next: AtomicU64,
    /// Round robin's panic picks walk the schedule on their own counter.
    rr_panic: AtomicU64,
    decay_ns: f64,
    accrual: FailureAccrual,
    adds: AtomicU64,
    removes: AtomicU64,
    removals: AtomicU64,
    revivals: AtomicU64,
    probes: AtomicU64,
    removed_for_ns: AtomicU64,
    /// Told of each ejection and revival (for the log).
    observer: std::sync::OnceLock<Observer>,
}

/// An endpoint's change of state under failure accrual.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Marked dead (ejected), or a probe failed and it stays dead.
    Ejected,
    /// Revived after being out for this long.
    Revived(std::time::Duration),
}

/// Told of each [`Change`], with the endpoint's address.
pub type Observer = Box<dyn Fn(SocketAddr, Change) + Send + Sync>;

/// The endpoints at one instant; replaced whole by `update`.
struct Set {
    entries: Vec<Entry>,
    /// Round robin only: one round of smooth weighted round robin, as
    /// indices into `entries`.
    schedule: Vec<u32>,
}

struct Entry {
    ep: Arc<Endpoint>,
    weight: f64,
}

impl Balancer {
    /// Tells `observer` of every ejection and revival from now on (set
    /// once; later calls are ignored).
    pub fn observe(&self, observer: Observer) {
        let _ = self.shared.observer.set(observer);
    }

    /// A balancer with no endpoints. `seed` seeds every random choice (picks
    /// and backoff jitter), so a `ManualClock` and a fixed seed make it
    /// fully deterministic.
    pub fn new(
        lb: LoadBalancer,
        accrual: FailureAccrual,
        clock: Arc<dyn Clock>,
        seed: u64,
    ) -> Self {
        let decay = match lb {
            LoadBalancer::Ewma { decay, .. } if !decay.is_zero() => decay,
            _ => DEFAULT_EWMA_DECAY,
        };
        let epoch = clock.now();
        Balancer {
            lb,
            shared: Arc::new(Shared {
                clock,
                epoch,
                rng: SplitMix::new(seed),
                rr_next: AtomicU64::new(0),
                rr_panic: AtomicU64::new(0),
                decay_ns: decay.as_secs_f64() * 1e9,
                accrual,
                adds: AtomicU64::new(0),
                removes: AtomicU64::new(0),
                removals: AtomicU64::new(0),
                revivals: AtomicU64::new(0),
                probes: AtomicU64::new(0),
                removed_for_ns: AtomicU64::new(0),
                observer: std::sync::OnceLock::new(),
            }),
            set: ArcSwap::from_pointee(Set {
                entries: Vec::new(),
                schedule: Vec::new(),
            }),
            update_lock: Mutex::new(()),
        }
    }

    /// The balancer kind this was built with.
    pub fn load_balancer(&self) -> LoadBalancer {
        self.lb
    }

    /// The failure accrual policy this was built with.
    pub fn failure_accrual(&self) -> FailureAccrual {
        self.shared.accrual
    }

    /// Replaces the endpoint set. Endpoints that stay keep their state
    /// (in-flight count, RTT estimate, accrual) and take their new weight;
    /// removed ones are dropped from the set, but their outstanding leases
    /// stay valid and finish normally; new ones start alive with no history.
    /// A repeated address keeps its first weight. Order is kept (it is
    /// round robin's order).
    pub fn update(&self, endpoints: &[(SocketAddr, f64)]) {
        let _serial = self
            .update_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let old = self.set.load_full();
        let mut old_by_addr: HashMap<SocketAddr, Arc<Endpoint>> = old
            .entries
            .iter()
            .map(|e| (e.ep.addr, e.ep.clone()))
            .collect();
        let now = self.shared.now();
        let mut entries: Vec<Entry> = Vec::with_capacity(endpoints.len());
        let mut added = 0;
        for &(addr, weight) in endpoints {
            if entries.iter().any(|e| e.ep.addr == addr) {
                continue;
            }
            let ep = match old_by_addr.remove(&addr) {
                Some(ep) => ep,
                None => {
                    added += 1;
                    let seed = self.shared.rng.next_u64();
                    Arc::new(Endpoint::new(addr, &self.shared.accrual, seed, now))
                }
            };
            let weight = if weight.is_finite() && weight > 0.0 {
                weight
            } else {
                INVALID_WEIGHT
            };
            entries.push(Entry { ep, weight });
        }
        let schedule = match self.lb {
            LoadBalancer::RoundRobin { .. } => smooth_wrr_schedule(&entries),
            _ => Vec::new(),
        };
        for gone in old_by_addr.values() {
            gone.retire();
        }
        self.shared.adds.fetch_add(added, Ordering::Relaxed);
        self.shared
            .removes
            .fetch_add(old_by_addr.len() as u64, Ordering::Relaxed);
        self.set.store(Arc::new(Set { entries, schedule }));
    }

    /// Picks an endpoint, avoiding `avoid` (the endpoint a retry just failed
    /// on) and dead endpoints when it can. Returns `None` only when the set
    /// is empty: with every endpoint dead it still picks (panic mode).
    pub fn pick(&self, avoid: Option<SocketAddr>) -> Option<Lease> {
        let set = self.set.load();
        let entries = &set.entries;
        let now = self.shared.now();
        match entries.len() {
            0 => return None,
            1 => return Some(self.lease_anyway(&entries[0], now)),
            _ => {}
        }
        let usable = |i: usize| {
            let e = &entries[i];
            Some(e.ep.addr) != avoid && e.ep.health(now).is_usable()
        };

        // Panic mode (fail open), after Finagle `PanicMode.scala`.
        //
        // A pick makes at most 1 + maxEffort draws and stops at the first
        // usable one. For p2c and ewma a draw is two distinct random
        // endpoints, and it fails only when *both* are unusable (dead, probe
        // already in flight, or `avoid`). With D unusable of N endpoints,
        // d = D/N, a draw fails with probability
        //     q = D(D-1) / (N(N-1))  ≈  d²,
        // so a pick panics (gives up and uses its last draw) with probability
        //     P = q^(1 + maxEffort)  ≈  d^(2(maxEffort + 1)).
        // With Linkerd's maxEffort = 5 (6 draws):
        //     d = 0.5: 0.25^6 ≈ 2.4e-4   (1 pick in ~4 000)
        //     d = 0.7: 0.49^6 ≈ 1.4e-2
        //     d = 0.8: 0.64^6 ≈ 6.9e-2
        //     d = 0.9: 0.81^6 ≈ 0.28
        //     d = 1:   1: every pick panics; the balancer fails open instead
        //              of refusing, exactly what Linkerd 1 does.
        // Two endpoints with one unusable never panic (q = 0). Finagle counts
        // maxEffort draws, not 1 + maxEffort, and so quotes 0.25^4 < 1 % at
        // 50 % unhealthy for its default of 4; we are one draw more patient.
        //
        // Round robin draws one endpoint per try, so the draws are the next
        // 1 + maxEffort slots of the schedule: it panics when all of them are
        // unusable, deterministically, not with probability d^(1+maxEffort).
        //
        // The panic pick is the last draw for p2c/ewma: the less loaded of
        // its two endpoints, so even a fully dead set is balanced by load.
        // For round robin it is the next slot of a schedule walk of its own:
        // each pick consumes 1 + maxEffort slots of `rr_next`, so its last
        // draw would land on the same endpoint every time whenever the
        // schedule's length divides 1 + maxEffort (3 endpoints, maxEffort 5).
        let draws = self.lb.max_effort().saturating_add(1);
        let mut last = 0;
        for _ in 0..draws {
            let pick = match self.lb {
                LoadBalancer::P2c { .. } | LoadBalancer::Ewma { .. } => {
                    let (a, b) = self.shared.rng.two_distinct(entries.len());
                    match (usable(a), usable(b)) {
                        (true, true) => Some(self.less_loaded(entries, a, b, now)),
                        (true, false) => Some(a),
                        (false, true) => Some(b),
                        (false, false) => {
                            last = self.less_loaded(entries, a, b, now);
                            None
                        }
                    }
                }
                LoadBalancer::RoundRobin { .. } => {
                    let slot = self.shared.rr_next.fetch_add(1, Ordering::Relaxed);
                    let i = set.schedule[(slot % set.schedule.len() as u64) as usize] as usize;
                    if usable(i) {
                        Some(i)
                    } else {
                        last = i;
                        None
                    }
                }
            };
            if let Some(i) = pick {
                if let Some(lease) = self.lease_if_usable(&entries[i], now) {
                    return Some(lease);
                }
                // Lost the race for a probe slot: that counts as a failed draw.
                last = i;
            }
        }
        if let LoadBalancer::RoundRobin { .. } = self.lb {
            let slot = self.shared.rr_panic.fetch_add(1, Ordering::Relaxed);
            last = set.schedule[(slot % set.schedule.len() as u64) as usize] as usize;
        }
        Some(self.lease_anyway(&entries[last], now))
    }

    /// Whether some endpoint other than `avoid` is not known to be failing:
    /// alive, or probe-open with its probe slot free (what a pick prefers).
    /// `false` for an empty set, or when every other endpoint is dead or
    /// being probed; `pick` still fails open then. Reads the current set,
    /// allocates nothing.
    pub fn has_usable_except(&self, avoid: Option<SocketAddr>) -> bool {
        let set = self.set.load();
        let now = self.shared.now();
        set.entries
            .iter()
            .any(|e| Some(e.ep.addr) != avoid && e.ep.health(now).is_usable())
    }

    /// Counters and gauges.
    pub fn stats(&self) -> BalancerStats {
        let set = self.set.load();
        let now = self.shared.now();
        let s = &self.shared;
        BalancerStats {
            size: set.entries.len(),
            available: set
                .entries
                .iter()
                .filter(|e| e.ep.health(now) != Health::Dead)
                .count(),
            removals: s.removals.load(Ordering::Relaxed),
            revivals: s.revivals.load(Ordering::Relaxed),
            probes: s.probes.load(Ordering::Relaxed),
            removed_for_ms: s.removed_for_ns.load(Ordering::Relaxed) / 1_000_000,
            adds: s.adds.load(Ordering::Relaxed),
            removes: s.removes.load(Ordering::Relaxed),
        }
    }

    /// Every endpoint of the current set, in order, for the admin page.
    pub fn endpoints_state(&self) -> Vec<EndpointInfo> {
        let set = self.set.load();
        let now = self.shared.now();
        set.entries
            .iter()
            .map(|e| EndpointInfo {
                addr: e.ep.addr,
                weight: e.weight,
                inflight: e.ep.inflight(),
                state: match e.ep.health(now) {
                    Health::Alive => "alive",
                    Health::Dead => "dead",
                    Health::ProbeOpen { .. } => "probing",
                },
                ewma_ms: e.ep.rtt_raw_ns(now, self.shared.decay_ns) / 1e6,
            })
            .collect()
    }

    /// p2c: `(in-flight + 1) / weight`; ewma: that times the RTT estimate.
    /// Ties go to `a`, which is already random.
    fn less_loaded(&self, entries: &[Entry], a: usize, b: usize, now: u64) -> usize {
        if self.load(&entries[b], now) < self.load(&entries[a], now) {
            b
        } else {
            a
        }
    }

    fn load(&self, e: &Entry, now: u64) -> f64 {
        let pending = (e.ep.inflight() + 1) as f64;
        match self.lb {
            LoadBalancer::Ewma { .. } => {
                e.ep.rtt_ns(now, self.shared.decay_ns) * pending / e.weight
            }
            _ => pending / e.weight,
        }
    }

    /// A lease if the endpoint is alive, or probe-open and its probe slot is
    /// won now.
    fn lease_if_usable(&self, e: &Entry, now: u64) -> Option<Lease> {
        match e.ep.health(now) {
            Health::Alive => Some(self.lease(e, now, false)),
            Health::ProbeOpen { claimed: false } if e.ep.try_claim_probe(now) => {
                Some(self.lease(e, now, true))
            }
            _ => None,
        }
    }

    /// A lease whatever the endpoint's state (a single endpoint, or panic).
    fn lease_anyway(&self, e: &Entry, now: u64) -> Lease {
        let probe = e.ep.health(now) != Health::Alive && e.ep.try_claim_probe(now);
        self.lease(e, now, probe)
    }

    fn lease(&self, e: &Entry, now: u64, probe: bool) -> Lease {
        if probe {
            self.shared.probes.fetch_add(1, Ordering::Relaxed);
        }
        e.ep.acquire();
        Lease {
            ep: e.ep.clone(),
            shared: self.shared.clone(),
            start: now,
            probe,
        }
    }
}

impl Lease {
    /// The endpoint to send to.
    pub fn addr(&self) -> SocketAddr {
        self.ep.addr
    }

    /// Whether this request is the endpoint's one probe after a dead period:
    /// its failure kills the endpoint again, with a longer backoff; its
    /// success revives it (as does the success of any request sent to the
    /// endpoint while dead, in panic mode).
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Ends the request: records its latency (start of the lease to now) in
    /// the RTT estimate and its outcome in failure accrual, then releases it.
    /// A lease on an endpoint that an update has since removed records
    /// nothing: it is only released.
    pub fn finish(mut self, outcome: Outcome) {
        if self.ep.is_retired() {
            return;
        }
        let now = self.shared.now();
        let transition =
            self.ep
                .observe(self.start, now, self.shared.decay_ns, outcome, self.probe);
        // `observe` already freed the probe slot; Drop must not touch it.
        self.probe = false;
        let s = &self.shared;
        match transition {
            Transition::None => {}
            Transition::MarkedDead => {
                s.removals.fetch_add(1, Ordering::Relaxed);
                if let Some(o) = s.observer.get() {
                    o(self.ep.addr, Change::Ejected);
                }
            }
            Transition::Revived(out_for) => {
                s.revivals.fetch_add(1, Ordering::Relaxed);
                s.removed_for_ns.fetch_add(out_for, Ordering::Relaxed);
                if let Some(o) = s.observer.get() {
                    o(
                        self.ep.addr,
                        Change::Revived(std::time::Duration::from_nanos(out_for)),
                    );
                }
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.probe {
            self.ep.release_probe();
        }
        self.ep.release();
    }
}

impl Shared {
    /// Nanoseconds since the balancer was built, by the injected clock.
    fn now(&self) -> u64 {
        let d = self.clock.now().saturating_duration_since(self.epoch);
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
    }
}

/// One round of smooth weighted round robin (nginx's algorithm): weights are
/// quantised to integers (10 steps per unit of the smallest weight, reduced by
/// their gcd, at most 10 000 slots), then each step adds every weight to its
/// endpoint's credit and takes the endpoint with the most credit (first on
/// ties), which pays the total back. Equal weights give plain `a, b, c`;
/// 3:1 gives `a, a, b, a`: the heavy endpoint gets its share without long
/// runs. Picks then walk this schedule with one atomic counter, lock-free.
fn smooth_wrr_schedule(entries: &[Entry]) -> Vec<u32> {
    let min = entries
        .iter()
        .map(|e| e.weight)
        .fold(f64::INFINITY, f64::min);
    let mut q: Vec<u64> = entries
        .iter()
        .map(|e| ((e.weight / min * RR_RESOLUTION).round() as u64).max(1))
        .collect();
    let g = q.iter().copied().fold(0, gcd);
    if g > 1 {
        q.iter_mut().for_each(|x| *x /= g);
    }
    let total: u64 = q.iter().sum();
    if total > RR_MAX_SLOTS {
        let scale = RR_MAX_SLOTS as f64 / total as f64;
        q.iter_mut()
            .for_each(|x| *x = ((*x as f64 * scale).round() as u64).max(1));
    }
    let total: i64 = q.iter().sum::<u64>() as i64;
    let mut credit = vec![0i64; q.len()];
    let mut schedule = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for (i, w) in q.iter().enumerate() {
            credit[i] += *w as i64;
            if credit[i] > credit[best] {
                best = i;
            }
        }
        credit[best] -= total;
        schedule.push(best as u32);
    }
    schedule
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl fmt::Debug for Balancer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balancer")
            .field("lb", &self.lb)
            .field("accrual", &self.shared.accrual)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("addr", &self.ep.addr)
            .field("probe", &self.probe)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(weights: &[f64]) -> Vec<Entry> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| Entry {
                ep: Arc::new(Endpoint::new(
                    SocketAddr::from(([127, 0, 0, 1], i as u16 + 1)),
                    &FailureAccrual::None,
                    0,
                    0,
                )),
                weight: *w,
            })
            .collect()
    }

    #[test]
    fn smooth_wrr_interleaves_a_three_to_one_round() {
        assert_eq!(
            smooth_wrr_schedule(&entries(&[3.0, 1.0])),
            [0, 0, 1, 0],
            "3:1 is a, a, b, a"
        );
        assert_eq!(
            smooth_wrr_schedule(&entries(&[1.0, 1.0, 1.0])),
            [0, 1, 2],
            "equal weights are plain round robin"
        );
        assert_eq!(
            smooth_wrr_schedule(&entries(&[1.5, 1.0])).len(),
            5,
            "1.5:1 is quantised to 3:2"
        );
    }

    #[test]
    fn smooth_wrr_schedule_is_bounded_for_extreme_ratios() {
        let s = smooth_wrr_schedule(&entries(&[1e9, 1.0]));
        assert!(
            s.len() as u64 <= RR_MAX_SLOTS + 1 && s.contains(&1),
            "a round has at most 10 000 slots and every endpoint keeps one"
        );
    }
}

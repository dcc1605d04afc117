//! The balancer through its public API, one test per rule, on a
//! `ManualClock` with a fixed seed: no sleeps, same result every run.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use strait_balancer::{Backoff, Balancer, FailureAccrual, LoadBalancer, ManualClock, Outcome};

const SEED: u64 = 42;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn p2c() -> LoadBalancer {
    LoadBalancer::P2c { max_effort: 5 }
}

fn rr() -> LoadBalancer {
    LoadBalancer::round_robin()
}

fn all_kinds() -> [LoadBalancer; 3] {
    [p2c(), LoadBalancer::ewma(), rr()]
}

fn consecutive(failures: u32, backoff: Duration) -> FailureAccrual {
    FailureAccrual::ConsecutiveFailures {
        failures,
        backoff: Backoff::Constant(backoff),
    }
}

fn setup(
    lb: LoadBalancer,
    accrual: FailureAccrual,
    endpoints: &[(u16, f64)],
) -> (Balancer, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let b = Balancer::new(lb, accrual, clock.clone(), SEED);
    update(&b, endpoints);
    (b, clock)
}

fn update(b: &Balancer, endpoints: &[(u16, f64)]) {
    let eps: Vec<_> = endpoints.iter().map(|&(p, w)| (addr(p), w)).collect();
    b.update(&eps);
}

/// Picks `n` times, dropping every lease at once (no outcome, no load).
fn spread(b: &Balancer, n: usize) -> HashMap<u16, usize> {
    let mut seen = HashMap::new();
    for _ in 0..n {
        *seen.entry(b.pick(None).unwrap().addr().port()).or_default() += 1;
    }
    seen
}

/// Picks until the pick is `port` (other picks are dropped, recording
/// nothing). With two endpoints the other one is avoided, so `port` comes
/// first time unless it is dead.
fn pick_port(b: &Balancer, port: u16) -> strait_balancer::Lease {
    let others: Vec<_> = b
        .endpoints_state()
        .into_iter()
        .map(|e| e.addr)
        .filter(|a| a.port() != port)
        .collect();
    let avoid = if others.len() == 1 {
        Some(others[0])
    } else {
        None
    };
    for _ in 0..10_000 {
        let lease = b.pick(avoid).unwrap();
        if lease.addr().port() == port {
            return lease;
        }
    }
    panic!("port {port} never picked");
}

fn fail(b: &Balancer, port: u16, times: usize) {
    for _ in 0..times {
        pick_port(b, port).finish(Outcome::Failure);
    }
}

fn state(b: &Balancer, port: u16) -> &'static str {
    b.endpoints_state()
        .into_iter()
        .find(|e| e.addr.port() == port)
        .map(|e| e.state)
        .unwrap_or("absent")
}

/// Advances the clock in 10 ms steps until `port` is probing; returns how long.
fn time_until_probing(b: &Balancer, clock: &ManualClock, port: u16) -> Duration {
    let step = Duration::from_millis(10);
    let mut waited = Duration::ZERO;
    while state(b, port) == "dead" {
        clock.advance(step);
        waited += step;
        assert!(waited < Duration::from_secs(400), "backoff exceeded max");
    }
    waited
}

// ---- p2c ----------------------------------------------------------------

#[test]
fn p2c_spreads_evenly_over_equal_endpoints() {
    let (b, _) = setup(
        p2c(),
        FailureAccrual::None,
        &[(1, 1.0), (2, 1.0), (3, 1.0), (4, 1.0)],
    );
    let seen = spread(&b, 8000);
    for port in 1..=4 {
        let n = seen[&port];
        assert!(
            (1700..=2300).contains(&n),
            "idle equal endpoints each get a quarter of picks within 15 %: {seen:?}"
        );
    }
}

#[test]
fn p2c_prefers_the_less_loaded_endpoint() {
    let (b, _) = setup(p2c(), FailureAccrual::None, &[(1, 1.0), (2, 1.0), (3, 1.0)]);
    // Thirty requests in flight, then all but those on :1 finish.
    let mut held: Vec<_> = (0..30).map(|_| b.pick(None).unwrap()).collect();
    held.retain(|l| l.addr().port() == 1);
    assert!(!held.is_empty());
    let seen = spread(&b, 300);
    assert_eq!(
        seen.get(&1),
        None,
        "every draw includes an idle endpoint, and the less loaded of two wins: {seen:?}"
    );
}

#[test]
fn every_kind_honours_weights_three_to_one() {
    for lb in all_kinds() {
        let (b, _) = setup(lb, FailureAccrual::None, &[(1, 3.0), (2, 1.0)]);
        // Hold every lease: p2c and ewma divide load by weight, so outstanding
        // requests settle in proportion to weight, as under real traffic.
        let held: Vec<_> = (0..400).map(|_| b.pick(None).unwrap()).collect();
        let heavy = held.iter().filter(|l| l.addr().port() == 1).count() as f64;
        let ratio = heavy / (400.0 - heavy);
        assert!(
            (2.7..=3.3).contains(&ratio),
            "{lb:?}: a 3:1 weight gives 3:1 picks, got {ratio}"
        );
    }
}

// ---- ewma ---------------------------------------------------------------

#[test]
fn ewma_moves_traffic_away_from_a_slow_endpoint_and_recovers_after_decay() {
    let (b, clock) = setup(
        LoadBalancer::ewma(),
        FailureAccrual::None,
        &[(1, 1.0), (2, 1.0)],
    );
    let before = spread(&b, 1000);
    assert!(
        before[&1] > 400,
        "without samples both cost the 1 ms floor: {before:?}"
    );
    // Three slow responses from :1 (500 ms), some fast ones from :2 (5 ms).
    for _ in 0..3 {
        let slow = pick_port(&b, 1);
        clock.advance(Duration::from_millis(500));
        slow.finish(Outcome::Success);
        let fast = pick_port(&b, 2);
        clock.advance(Duration::from_millis(5));
        fast.finish(Outcome::Success);
    }
    let ewma_1 = b.endpoints_state()[0].ewma_ms;
    assert!(
        (450.0..=500.0).contains(&ewma_1),
        "a slow sample above the average replaces it (peak): {ewma_1}"
    );
    let during = spread(&b, 1000);
    assert_eq!(
        during.get(&1),
        None,
        "rtt * (pending + 1): 500 ms idle costs more than 5 ms idle: {during:?}"
    );
    // Ten decay periods later both estimates have decayed to the 1 ms floor.
    clock.advance(Duration::from_secs(100));
    let after = spread(&b, 1000);
    assert!(
        (400..=600).contains(&after[&1]),
        "the estimate decays by exp(-elapsed / decay), so the slow endpoint is forgiven: {after:?}"
    );
}

#[test]
fn ewma_counts_a_request_until_its_lease_finishes() {
    let (b, _) = setup(
        LoadBalancer::ewma(),
        FailureAccrual::None,
        &[(1, 1.0), (2, 1.0)],
    );
    let _held = pick_port(&b, 1);
    let seen = spread(&b, 200);
    assert_eq!(
        seen.get(&1),
        None,
        "an unfinished lease is pending and doubles its endpoint's cost: {seen:?}"
    );
}

// ---- round robin --------------------------------------------------------

#[test]
fn round_robin_visits_endpoints_in_order() {
    let (b, _) = setup(rr(), FailureAccrual::None, &[(1, 1.0), (2, 1.0), (3, 1.0)]);
    let order: Vec<u16> = (0..7)
        .map(|_| b.pick(None).unwrap().addr().port())
        .collect();
    assert_eq!(
        order,
        [1, 2, 3, 1, 2, 3, 1],
        "round robin follows the set's order"
    );
}

#[test]
fn weighted_round_robin_interleaves_a_three_to_one_round() {
    let (b, _) = setup(rr(), FailureAccrual::None, &[(1, 3.0), (2, 1.0)]);
    let order: Vec<u16> = (0..8)
        .map(|_| b.pick(None).unwrap().addr().port())
        .collect();
    assert_eq!(
        order,
        [1, 1, 2, 1, 1, 1, 2, 1],
        "smooth weighted round robin: 3:1 is a, a, b, a every round"
    );
}

#[test]
fn round_robin_skips_dead_endpoints() {
    let (b, _) = setup(
        rr(),
        consecutive(1, Duration::from_secs(60)),
        &[(1, 1.0), (2, 1.0), (3, 1.0)],
    );
    fail(&b, 2, 1);
    let order: Vec<u16> = (0..6)
        .map(|_| b.pick(None).unwrap().addr().port())
        .collect();
    assert!(
        !order.contains(&2) && order.contains(&1) && order.contains(&3),
        "a dead endpoint's turn goes to the next live one: {order:?}"
    );
}

// ---- avoid and maxEffort ------------------------------------------------

#[test]
fn avoid_is_honoured_when_another_endpoint_exists() {
    for lb in all_kinds() {
        let (b, _) = setup(lb, FailureAccrual::None, &[(1, 1.0), (2, 1.0), (3, 1.0)]);
        for _ in 0..300 {
            assert_ne!(
                b.pick(Some(addr(1))).unwrap().addr(),
                addr(1),
                "{lb:?}: a retry is not sent back to the endpoint that just failed"
            );
        }
        update(&b, &[(1, 1.0)]);
        assert_eq!(
            b.pick(Some(addr(1))).unwrap().addr(),
            addr(1),
            "{lb:?}: with nothing else to pick, the avoided endpoint is used anyway"
        );
    }
}

// ---- failure accrual ----------------------------------------------------

#[test]
fn accrual_marks_dead_after_n_consecutive_failures_not_n_minus_one() {
    let (b, _) = setup(
        p2c(),
        consecutive(5, Duration::from_secs(10)),
        &[(1, 1.0), (2, 1.0)],
    );
    fail(&b, 1, 4);
    assert_eq!(state(&b, 1), "alive", "four failures are not five");
    assert_eq!(b.stats().removals, 0, "no removal before the fifth failure");
    fail(&b, 1, 1);
    assert_eq!(
        state(&b, 1),
        "dead",
        "the fifth consecutive failure marks it dead"
    );
    assert_eq!(
        (b.stats().removals, b.stats().available),
        (1, 1),
        "one removal, one endpoint left available"
    );
    let seen = spread(&b, 300);
    assert_eq!(
        seen.get(&1),
        None,
        "a dead endpoint is not picked while another lives: {seen:?}"
    );
}

#[test]
fn a_success_resets_the_consecutive_failure_count() {
    let (b, _) = setup(
        p2c(),
        consecutive(3, Duration::from_secs(10)),
        &[(1, 1.0), (2, 1.0)],
    );
    fail(&b, 1, 2);
    pick_port(&b, 1).finish(Outcome::Success);
    fail(&b, 1, 2);
    assert_eq!(
        state(&b, 1),
        "alive",
        "failures must be consecutive to count"
    );
}

#[test]
fn dropping_a_lease_counts_neither_success_nor_failure() {
    let (b, _) = setup(
        p2c(),
        consecutive(1, Duration::from_secs(10)),
        &[(1, 1.0), (2, 1.0)],
    );
    for _ in 0..20 {
        drop(pick_port(&b, 1));
    }
    let info = &b.endpoints_state()[0];
    assert_eq!(
        (info.state, info.inflight, info.ewma_ms),
        ("alive", 0, 0.0),
        "a dropped lease releases its slot and records no outcome or latency"
    );
}

#[test]
fn dead_endpoint_gets_exactly_one_probe_after_its_backoff() {
    let (b, clock) = setup(
        p2c(),
        consecutive(1, Duration::from_secs(10)),
        &[(1, 1.0), (2, 1.0)],
    );
    fail(&b, 1, 1);
    clock.advance(Duration::from_millis(9_999));
    assert_eq!(
        state(&b, 1),
        "dead",
        "still dead 1 ms before the backoff ends"
    );
    clock.advance(Duration::from_millis(1));
    assert_eq!(
        state(&b, 1),
        "probing",
        "probe-open once the backoff has passed"
    );
    assert_eq!(
        b.stats().available,
        2,
        "a probe-open endpoint counts as available"
    );
    let probe = pick_port(&b, 1);
    assert!(
        probe.is_probe(),
        "the first request after the backoff is the probe"
    );
    let seen = spread(&b, 300);
    assert_eq!(
        seen.get(&1),
        None,
        "while its probe is in flight, no other request goes to the endpoint: {seen:?}"
    );
    assert_eq!(b.stats().probes, 1, "exactly one probe let through");
}

#[test]
fn probe_success_revives_the_endpoint() {
    let (b, clock) = setup(
        p2c(),
        consecutive(1, Duration::from_secs(10)),
        &[(1, 1.0), (2, 1.0)],
    );
    fail(&b, 1, 1);
    clock.advance(Duration::from_secs(10));
    pick_port(&b, 1).finish(Outcome::Success);
    let s = b.stats();
    assert_eq!(state(&b, 1), "alive", "a successful probe revives");
    assert_eq!(
        (s.revivals, s.removed_for_ms, s.available),
        (1, 10_000, 2),
        "one revival after a 10 s outage"
    );
    let seen = spread(&b, 1000);
    assert!(
        seen[&1] > 400,
        "a revived endpoint takes its share again: {seen:?}"
    );
}

#[test]
fn dropping_a_probe_frees_the_probe_slot() {
    let (b, clock) = setup(
        p2c(),
        consecutive(1, Duration::from_secs(1)),
        &[(1, 1.0), (2, 1.0)],
    );
    fail(&b, 1, 1);
    clock.advance(Duration::from_secs(1));
    drop(pick_port(&b, 1));
    let again = pick_port(&b, 1);
    assert!(
        again.is_probe(),
        "an abandoned probe lets the next request probe"
    );
    assert_eq!(b.stats().probes, 2, "two probes issued");
}

#[test]
fn probe_failure_kills_again_with_a_longer_equal_jittered_backoff() {
    // Linkerd's default: 5 failures, equal jitter from 5 s to 300 s.
    let (b, clock) = setup(p2c(), FailureAccrual::default(), &[(1, 1.0), (2, 1.0)]);
    fail(&b, 1, 5);
    let tol = Duration::from_millis(10);
    let mut periods = Vec::new();
    for _ in 0..8 {
        periods.push(time_until_probing(&b, &clock, 1));
        pick_port(&b, 1).finish(Outcome::Failure);
    }
    let s = Duration::from_secs(5);
    assert!(
        periods[0] >= s && periods[0] <= s + tol,
        "the first dead period is min: {periods:?}"
    );
    for (i, p) in periods.iter().enumerate().skip(1) {
        let half = s * (1 << (i - 1));
        let (lo, hi) = (half.min(300 * s / 5), (2 * half).min(300 * s / 5));
        assert!(
            *p >= lo && *p <= hi + tol,
            "dead period {} lies in [h, 2h), h = 5 s * 2^(k-2), capped at 300 s: {periods:?}",
            i + 1
        );
    }
    assert!(
        periods[2] > periods[0],
        "a failed probe backs off longer: {periods:?}"
    );
    assert_eq!(
        b.stats().removals,
        9,
        "the first death and each of 8 failed probes is a removal"
    );
    assert_eq!(b.stats().revivals, 0, "nothing revived");
}

#[test]
fn probe_failure_kills_again_within_decorrelated_jitter_bounds() {
    let backoff = Backoff::Jittered {
        min: Duration::from_secs(1),
        max: Duration::from_secs(30),
    };
    let accrual = FailureAccrual::ConsecutiveFailures {
        failures: 1,
        backoff,
    };
    let (b, clock) = setup(p2c(), accrual, &[(1, 1.0), (2, 1.0)]);
    fail(&b, 1, 1);
    let tol = Duration::from_millis(10);
    let mut periods = Vec::new();
    for _ in 0..10 {
        periods.push(time_until_probing(&b, &clock, 1));
        pick_port(&b, 1).finish(Outcome::Failure);
    }
    assert!(
        periods[0] <= Duration::from_secs(1) + tol,
        "first period is min: {periods:?}"
    );
    for w in periods.windows(2) {
        assert!(
            w[1] + tol >= w[0] && w[1] <= (3 * w[0]).min(Duration::from_secs(30)) + tol,
            "each period lies in [previous, min(3 * previous, max)]: {periods:?}"
        );
    }
}

#[test]
fn revival_restarts_the_backoff_sequence() {
    let (b, clock) = setup(p2c(), FailureAccrual::default(), &[(1, 1.0), (2, 1.0)]);
    fail(&b, 1, 5);
    for _ in 0..3 {
        time_until_probing(&b, &clock, 1);
        pick_port(&b, 1).finish(Outcome::Failure);
    }
    time_until_probing(&b, &clock, 1);
    pick_port(&b, 1).finish(Outcome::Success);
    fail(&b, 1, 4);
    assert_eq!(
        state(&b, 1),
        "alive",
        "revival resets the failure count too"
    );
    fail(&b, 1, 1);
    let p = time_until_probing(&b, &clock, 1);
    assert!(
        p <= Duration::from_millis(5_010),
        "after a revival the next dead period starts again at min: {p:?}"
    );
}

#[test]
fn success_rate_accrual_marks_dead_when_the_rate_falls_below_threshold() {
    let accrual = FailureAccrual::SuccessRate {
        success_rate: 0.9,
        requests: 10,
        backoff: Backoff::Constant(Duration::from_secs(10)),
    };
    let (b, _) = setup(p2c(), accrual, &[(1, 1.0), (2, 1.0)]);
    for _ in 0..10 {
        pick_port(&b, 1).finish(Outcome::Success);
    }
    fail(&b, 1, 1);
    assert_eq!(
        state(&b, 1),
        "alive",
        "one failure leaves the EWMA at exp(-1/10) = 0.905 >= 0.9"
    );
    fail(&b, 1, 1);
    assert_eq!(
        state(&b, 1),
        "dead",
        "a second failure brings it to exp(-2/10) = 0.819 < 0.9"
    );
}

#[test]
fn success_rate_accrual_waits_for_a_full_window_of_requests() {
    let accrual = FailureAccrual::SuccessRate {
        success_rate: 0.9,
        requests: 10,
        backoff: Backoff::Constant(Duration::from_secs(10)),
    };
    let (b, _) = setup(p2c(), accrual, &[(1, 1.0), (2, 1.0)]);
    fail(&b, 1, 9);
    assert_eq!(
        state(&b, 1),
        "alive",
        "nothing is judged before `requests` requests"
    );
    fail(&b, 1, 1);
    assert_eq!(
        state(&b, 1),
        "dead",
        "the tenth failure completes the window"
    );
}

#[test]
fn windowed_success_rate_accrual_marks_dead_when_the_rate_falls_below_threshold() {
    let accrual = FailureAccrual::SuccessRateWindowed {
        success_rate: 0.9,
        window: Duration::from_secs(10),
        backoff: Backoff::Constant(Duration::from_secs(10)),
    };
    let (b, clock) = setup(p2c(), accrual, &[(1, 1.0), (2, 1.0)]);
    for _ in 0..=10 {
        pick_port(&b, 1).finish(Outcome::Success);
        clock.advance(Duration::from_secs(1));
    }
    fail(&b, 1, 1);
    assert_eq!(
        state(&b, 1),
        "alive",
        "a failure 1 s after the last success leaves exp(-1/10) = 0.905 >= 0.9"
    );
    clock.advance(Duration::from_secs(1));
    fail(&b, 1, 1);
    assert_eq!(
        state(&b, 1),
        "dead",
        "a second one 1 s later gives 0.819 < 0.9"
    );
}

#[test]
fn windowed_success_rate_accrual_never_marks_dead_within_the_first_window() {
    let accrual = FailureAccrual::SuccessRateWindowed {
        success_rate: 0.9,
        window: Duration::from_secs(10),
        backoff: Backoff::Constant(Duration::from_secs(10)),
    };
    let (b, clock) = setup(p2c(), accrual, &[(1, 1.0), (2, 1.0)]);
    for _ in 0..10 {
        fail(&b, 1, 3);
        clock.advance(Duration::from_millis(999));
    }
    assert_eq!(
        state(&b, 1),
        "alive",
        "no verdict until one window has passed"
    );
    clock.advance(Duration::from_millis(10));
    fail(&b, 1, 1);
    assert_eq!(
        state(&b, 1),
        "dead",
        "the first failure after the window judges"
    );
}

#[test]
fn accrual_none_never_marks_dead() {
    let (b, _) = setup(p2c(), FailureAccrual::None, &[(1, 1.0), (2, 1.0)]);
    fail(&b, 1, 1000);
    assert_eq!(
        (state(&b, 1), b.stats().removals),
        ("alive", 0),
        "with accrual `none` failures never remove an endpoint"
    );
}

// ---- panic mode ---------------------------------------------------------

#[test]
fn panic_mode_still_picks_when_every_endpoint_is_dead() {
    for lb in all_kinds() {
        let (b, _) = setup(
            lb,
            consecutive(1, Duration::from_secs(60)),
            &[(1, 1.0), (2, 1.0), (3, 1.0)],
        );
        for port in 1..=3 {
            fail(&b, port, 1);
        }
        assert_eq!(b.stats().available, 0, "{lb:?}: all three are dead");
        let picks: Vec<_> = (0..30).map(|_| b.pick(None)).collect();
        assert!(
            picks
                .iter()
                .all(|p| p.as_ref().is_some_and(|l| !l.is_probe())),
            "{lb:?}: fail open: every pick still returns an endpoint, none of them a probe"
        );
        for lease in picks.into_iter().flatten() {
            lease.finish(Outcome::Failure);
        }
        assert_eq!(
            b.stats().removals,
            3,
            "{lb:?}: outcomes of panic picks do not extend a dead period"
        );
    }
}

#[test]
fn panic_mode_still_balances_by_load() {
    let (b, _) = setup(
        p2c(),
        consecutive(1, Duration::from_secs(60)),
        &[(1, 1.0), (2, 1.0)],
    );
    fail(&b, 1, 1);
    fail(&b, 2, 1);
    let held: Vec<_> = (0..100).map(|_| b.pick(None).unwrap()).collect();
    let on_1 = held.iter().filter(|l| l.addr().port() == 1).count();
    assert!(
        (45..=55).contains(&on_1),
        "a panic pick is the less loaded of its draw, so load stays even: {on_1}/100"
    );
}

#[test]
fn empty_set_picks_nothing() {
    for lb in all_kinds() {
        let (b, _) = setup(lb, FailureAccrual::default(), &[]);
        assert!(b.pick(None).is_none(), "{lb:?}: None only for an empty set");
    }
}

// ---- where Strait differs from Finagle: success revives, refusal kills ----

#[test]
fn after_an_outage_the_first_success_of_each_endpoint_revives_it_then_a_crash_is_avoided() {
    for lb in all_kinds() {
        let (b, clock) = setup(
            lb,
            FailureAccrual::default(),
            &[(1, 1.0), (2, 1.0), (3, 1.0)],
        );
        // The outage: every endpoint refuses connections, all three marked dead.
        for port in 1..=3 {
            pick_port(&b, port).finish(Outcome::NotConnected);
        }
        assert_eq!(b.stats().available, 0, "{lb:?}: all three are dead");
        // They are back 1 s later, long before the 5 s backoff ends. Traffic
        // still flows in panic mode, to all three at once.
        clock.advance(Duration::from_secs(1));
        let held: Vec<_> = (0..30).map(|_| b.pick(None).unwrap()).collect();
        assert!(
            held.iter().all(|l| !l.is_probe()),
            "{lb:?}: panic picks, not probes"
        );
        let mut successes: HashMap<u16, usize> = HashMap::new();
        for lease in held {
            let port = lease.addr().port();
            let was = state(&b, port);
            clock.advance(Duration::from_millis(1));
            lease.finish(Outcome::Success);
            *successes.entry(port).or_default() += 1;
            if successes[&port] == 1 {
                assert_eq!(
                    (was, state(&b, port)),
                    ("dead", "alive"),
                    "{lb:?}: the first success of :{port} revives it, without waiting for the backoff"
                );
            }
        }
        let s = b.stats();
        assert_eq!(
            (s.available, s.revivals, s.probes, s.removals),
            (3, 3, 0, 3),
            "{lb:?}: three revivals by ordinary successes, no probe"
        );
        // Then :3 crashes: one refused connection and it is out.
        clock.advance(Duration::from_secs(2));
        pick_port(&b, 3).finish(Outcome::NotConnected);
        assert_eq!(state(&b, 3), "dead", "{lb:?}: a refusal marks dead at once");
        let seen = spread(&b, 1000);
        assert_eq!(
            seen.get(&3),
            None,
            "{lb:?}: no pick goes to the crashed endpoint: {seen:?}"
        );
    }
}

#[test]
fn not_connected_marks_dead_at_once_and_picks_avoid_it_for_its_dead_period() {
    for lb in all_kinds() {
        let (b, clock) = setup(
            lb,
            FailureAccrual::default(),
            &[(1, 1.0), (2, 1.0), (3, 1.0)],
        );
        pick_port(&b, 2).finish(Outcome::NotConnected);
        let s = b.stats();
        assert_eq!(
            (state(&b, 2), s.removals, s.available),
            ("dead", 1, 2),
            "{lb:?}: one refused connection is a removal, not one failure of five"
        );
        let seen = spread(&b, 1000);
        assert_eq!(seen.get(&2), None, "{lb:?}: none of 1,000 picks: {seen:?}");
        // The default backoff's first dead period is its minimum, 5 s.
        clock.advance(Duration::from_millis(4_990));
        let seen = spread(&b, 1000);
        assert_eq!(
            seen.get(&2),
            None,
            "{lb:?}: still none 10 ms before the dead period ends: {seen:?}"
        );
        clock.advance(Duration::from_millis(10));
        assert_eq!(state(&b, 2), "probing", "{lb:?}: then it gets its probe");
        let probe = pick_port(&b, 2);
        assert!(
            probe.is_probe(),
            "{lb:?}: the next request to it is the probe"
        );
    }
}

#[test]
fn not_connected_on_a_dead_endpoint_changes_nothing_unless_it_is_the_probe() {
    let (b, clock) = setup(
        p2c(),
        consecutive(5, Duration::from_secs(10)),
        &[(1, 1.0), (2, 1.0)],
    );
    pick_port(&b, 1).finish(Outcome::NotConnected);
    clock.advance(Duration::from_secs(1));
    // A panic-mode-like pick (the other endpoint avoided) refused again.
    pick_port(&b, 1).finish(Outcome::NotConnected);
    assert_eq!(
        (b.stats().removals, time_until_probing(&b, &clock, 1)),
        (1, Duration::from_secs(9)),
        "a refusal on a dead endpoint neither counts nor extends its dead period"
    );
    let probe = pick_port(&b, 1);
    assert!(probe.is_probe());
    probe.finish(Outcome::NotConnected);
    assert_eq!(
        (state(&b, 1), b.stats().removals, b.stats().revivals),
        ("dead", 2, 0),
        "a refused probe is a failed probe: dead again"
    );
}

#[test]
fn a_success_picked_before_the_endpoint_died_does_not_revive_it() {
    let (b, clock) = setup(
        p2c(),
        consecutive(5, Duration::from_secs(10)),
        &[(1, 1.0), (2, 1.0)],
    );
    let stale = pick_port(&b, 1);
    clock.advance(Duration::from_millis(5));
    pick_port(&b, 1).finish(Outcome::NotConnected);
    clock.advance(Duration::from_millis(5));
    stale.finish(Outcome::Success);
    assert_eq!(
        (state(&b, 1), b.stats().revivals),
        ("dead", 0),
        "only a request sent while it was dead (panic pick or probe) revives it"
    );
}

#[test]
fn all_dead_for_good_leaves_no_usable_endpoint_and_picks_still_fail_open() {
    for lb in all_kinds() {
        let (b, clock) = setup(
            lb,
            consecutive(5, Duration::from_secs(10)),
            &[(1, 1.0), (2, 1.0), (3, 1.0)],
        );
        for port in 1..=3 {
            pick_port(&b, port).finish(Outcome::NotConnected);
        }
        assert!(
            !b.has_usable_except(None) && !b.has_usable_except(Some(addr(1))),
            "{lb:?}: every endpoint is known to be failing"
        );
        clock.advance(Duration::from_secs(1));
        let picks: Vec<_> = (0..30).map(|_| b.pick(None)).collect();
        assert!(
            picks
                .iter()
                .all(|p| p.as_ref().is_some_and(|l| !l.is_probe())),
            "{lb:?}: fail open: every pick still returns an endpoint (panic mode)"
        );
        for (i, lease) in picks.into_iter().flatten().enumerate() {
            lease.finish(if i % 2 == 0 {
                Outcome::NotConnected
            } else {
                Outcome::Failure
            });
        }
        let s = b.stats();
        assert_eq!(
            (s.removals, s.revivals, s.available),
            (3, 0, 0),
            "{lb:?}: failed panic picks neither revive nor extend a dead period"
        );
        clock.advance(Duration::from_secs(9));
        assert!(
            b.has_usable_except(None),
            "{lb:?}: after the backoff each has a free probe slot"
        );
        let probes: Vec<_> = (1..=3).map(|port| pick_port(&b, port)).collect();
        assert!(
            probes.iter().all(strait_balancer::Lease::is_probe) && !b.has_usable_except(None),
            "{lb:?}: with every probe in flight nothing is usable again"
        );
        for probe in probes {
            probe.finish(Outcome::NotConnected);
        }
        assert_eq!(
            (b.stats().removals, b.has_usable_except(None)),
            (6, false),
            "{lb:?}: three refused probes, three more removals"
        );
    }
}

#[test]
fn a_flapping_endpoint_is_revived_by_success_and_killed_by_not_connected() {
    let (b, clock) = setup(
        p2c(),
        FailureAccrual::default(),
        &[(1, 1.0), (2, 1.0), (3, 1.0)],
    );
    // :2 and :3 are down for good, so :1 is picked in panic mode while dead.
    for port in 2..=3 {
        pick_port(&b, port).finish(Outcome::NotConnected);
    }
    for round in 1..=5 {
        pick_port(&b, 1).finish(Outcome::NotConnected);
        assert_eq!(state(&b, 1), "dead", "round {round}: refused, dead at once");
        clock.advance(Duration::from_millis(100));
        let lease = pick_port(&b, 1);
        assert!(
            !lease.is_probe(),
            "round {round}: a panic pick, not a probe"
        );
        lease.finish(Outcome::Success);
        assert_eq!(state(&b, 1), "alive", "round {round}: served, alive again");
    }
    let s = b.stats();
    assert_eq!(
        (s.removals, s.revivals, s.removed_for_ms, s.probes),
        (2 + 5, 5, 500, 0),
        "five deaths and five revivals of :1 (after 100 ms each), no probe"
    );
    pick_port(&b, 1).finish(Outcome::NotConnected);
    assert!(
        time_until_probing(&b, &clock, 1) <= Duration::from_millis(5_010),
        "each revival restarts the backoff: the dead period is the minimum again"
    );
}

#[test]
fn accrual_none_never_marks_dead_on_not_connected() {
    let (b, _) = setup(p2c(), FailureAccrual::None, &[(1, 1.0), (2, 1.0)]);
    for _ in 0..100 {
        pick_port(&b, 1).finish(Outcome::NotConnected);
    }
    assert_eq!(
        (
            state(&b, 1),
            b.stats().removals,
            b.has_usable_except(Some(addr(2)))
        ),
        ("alive", 0, true),
        "with accrual `none` a refused connection is only a failure"
    );
}

#[test]
fn has_usable_except_skips_avoid_dead_and_probing_endpoints() {
    let (b, clock) = setup(p2c(), consecutive(1, Duration::from_secs(10)), &[]);
    assert!(!b.has_usable_except(None), "an empty set has none");
    update(&b, &[(1, 1.0)]);
    assert!(b.has_usable_except(None), "one alive endpoint");
    assert!(
        !b.has_usable_except(Some(addr(1))),
        "the only endpoint, avoided"
    );
    update(&b, &[(1, 1.0), (2, 1.0)]);
    assert!(b.has_usable_except(Some(addr(1))), "the other one is alive");
    fail(&b, 2, 1);
    assert!(
        b.has_usable_except(None) && b.has_usable_except(Some(addr(2))),
        ":1 is alive"
    );
    assert!(
        !b.has_usable_except(Some(addr(1))),
        "avoiding :1 leaves only dead :2"
    );
    clock.advance(Duration::from_secs(10));
    assert!(
        b.has_usable_except(Some(addr(1))),
        "probe-open with its slot free counts as usable"
    );
    let probe = pick_port(&b, 2);
    assert!(probe.is_probe());
    assert!(
        !b.has_usable_except(Some(addr(1))),
        "with its probe in flight it does not"
    );
    drop(probe);
    assert!(
        b.has_usable_except(Some(addr(1))),
        "a dropped probe frees the slot again"
    );
    b.pick(Some(addr(1))).unwrap().finish(Outcome::Success);
    assert!(
        b.has_usable_except(Some(addr(1))) && state(&b, 2) == "alive",
        "a successful probe revives"
    );
}

// ---- updates ------------------------------------------------------------

#[test]
fn update_keeps_the_state_of_surviving_endpoints() {
    let (b, _) = setup(
        p2c(),
        consecutive(5, Duration::from_secs(10)),
        &[(1, 1.0), (2, 1.0)],
    );
    fail(&b, 1, 3);
    let held = pick_port(&b, 1);
    update(&b, &[(1, 2.0), (3, 1.0)]);
    let info = b.endpoints_state();
    assert_eq!(
        info.iter()
            .map(|e| (e.addr.port(), e.weight, e.inflight))
            .collect::<Vec<_>>(),
        [(1, 2.0, 1), (3, 1.0, 0)],
        ":1 keeps its in-flight request and takes its new weight; :3 is new"
    );
    drop(held);
    fail(&b, 1, 2);
    assert_eq!(
        state(&b, 1),
        "dead",
        "the three failures before the update still count"
    );
}

#[test]
fn leases_of_removed_endpoints_still_finish() {
    let (b, _) = setup(
        p2c(),
        consecutive(1, Duration::from_secs(10)),
        &[(1, 1.0), (2, 1.0)],
    );
    let on_2 = pick_port(&b, 2);
    let probe_like = pick_port(&b, 2);
    update(&b, &[(1, 1.0)]);
    on_2.finish(Outcome::Failure);
    drop(probe_like);
    let s = b.stats();
    assert_eq!(
        (s.size, s.removals, s.removes),
        (1, 0, 1),
        "a removed endpoint's lease finishes quietly, without touching the new set"
    );
    update(&b, &[(1, 1.0), (2, 1.0)]);
    assert_eq!(
        (state(&b, 2), b.endpoints_state()[1].inflight),
        ("alive", 0),
        "an endpoint added back starts fresh"
    );
}

#[test]
fn stats_count_adds_removes_removals_revivals_and_probes() {
    let (b, clock) = setup(
        p2c(),
        consecutive(2, Duration::from_secs(3)),
        &[(1, 1.0), (2, 1.0), (3, 1.0)],
    );
    update(&b, &[(1, 1.0), (2, 1.0), (4, 1.0)]);
    fail(&b, 1, 2);
    clock.advance(Duration::from_secs(3));
    pick_port(&b, 1).finish(Outcome::Failure);
    clock.advance(Duration::from_secs(3));
    pick_port(&b, 1).finish(Outcome::Success);
    let s = b.stats();
    assert_eq!(
        s,
        strait_balancer::BalancerStats {
            size: 3,
            available: 3,
            removals: 2,
            revivals: 1,
            probes: 2,
            removed_for_ms: 6_000,
            adds: 4,
            removes: 1,
        },
        "4 adds (3 + :4), 1 remove (:3), 2 removals (failures, failed probe), \
         2 probes, 1 revival after a 6 s outage"
    );
}

// ---- determinism and sharing --------------------------------------------

#[test]
fn the_same_seed_gives_the_same_picks() {
    let run = || {
        let (b, _) = setup(
            p2c(),
            FailureAccrual::None,
            &[(1, 1.0), (2, 1.0), (3, 1.0), (4, 1.0)],
        );
        (0..50)
            .map(|_| b.pick(None).unwrap().addr().port())
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run(), "picks depend only on the seed and the clock");
}

#[test]
fn concurrent_picks_and_finishes_leave_no_request_in_flight() {
    let (b, _) = setup(
        LoadBalancer::ewma(),
        FailureAccrual::default(),
        &[(1, 1.0), (2, 1.0), (3, 1.0)],
    );
    let b = Arc::new(b);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let b = b.clone();
            std::thread::spawn(move || {
                for i in 0..2000 {
                    let lease = b.pick(None).unwrap();
                    match (t + i) % 3 {
                        0 => lease.finish(Outcome::Success),
                        1 => lease.finish(Outcome::Failure),
                        _ => drop(lease),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(
        b.endpoints_state().iter().all(|e| e.inflight == 0),
        "every lease released exactly once: {:?}",
        b.endpoints_state()
    );
}

//! Retry policy: response classifiers, retry budgets and backoff.
//!
//! Two kinds of second attempt exist, as in Linkerd 1:
//!
//! * a **requeue** re-sends a request that certainly never reached a
//!   backend (the connection could not be made). It is safe for every
//!   method and is bounded by the client's `requeueBudget`;
//! * a **retry** re-sends a request whose response the classifier calls a
//!   retryable failure. It happens only when the body was small enough to
//!   keep (the replay buffer), and is bounded by the service's
//!   `retries.budget` and spaced by `retries.backoff`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::{HeaderMap, Method, StatusCode};

use crate::policy::BudgetParams;

/// Linkerd 1's HTTP response classifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Classifier {
    /// 5xx is a failure, never retried (the default).
    #[default]
    NonRetryable5XX,
    /// 5xx is a failure, retryable for GET, HEAD, OPTIONS, TRACE.
    RetryableRead5XX,
    /// ... and PUT, DELETE.
    RetryableIdempotent5XX,
    /// ... and POST, PATCH (any method).
    RetryableAll5XX,
    /// Every response is a success.
    AllSuccessful,
    /// Linkerd's `io.l5d.h2.grpc.*` classifiers: on `grpc-status` (in
    /// the trailers, or in the headers of a trailers-only response).
    Grpc(GrpcClassifier),
}

/// A set of gRPC status codes (0 to 16; a bit each; codes past 31 are
/// never in a set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrpcCodes(pub u32);

impl GrpcCodes {
    /// The set of `codes`.
    pub fn of(codes: &[u32]) -> GrpcCodes {
        GrpcCodes(
            codes
                .iter()
                .filter(|c| **c < 32)
                .fold(0, |set, c| set | (1 << c)),
        )
    }

    /// Every code.
    pub const ALL: GrpcCodes = GrpcCodes(u32::MAX);

    /// Whether `code` is in the set.
    pub fn contains(self, code: u32) -> bool {
        code < 32 && self.0 & (1 << code) != 0
    }
}

/// A gRPC classifier: which `grpc-status` codes are successes (default
/// `[0]`), which failures may be retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrpcClassifier {
    /// `successStatusCodes`.
    pub success: GrpcCodes,
    /// Failures that may be retried: `grpc.default` and `grpc.compliant`
    /// 14 (UNAVAILABLE), `grpc.alwaysRetryable` all, `grpc.neverRetryable`
    /// none, `grpc.retryableStatusCodes` its list.
    pub retryable: GrpcCodes,
    /// `grpc.compliant`: also HTTP 429, 502, 503, 504 and a stream refused
    /// by the endpoint are retryable (as documented; Linkerd 1.7.5 wired
    /// it to `grpc.default` by mistake).
    pub compliant: bool,
}

impl GrpcClassifier {
    /// `io.l5d.h2.grpc.default`.
    pub fn default_kind() -> GrpcClassifier {
        GrpcClassifier {
            success: GrpcCodes::of(&[0]),
            retryable: GrpcCodes::of(&[14]),
            compliant: false,
        }
    }
}

/// What a response (or an error) means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseClass {
    /// A success.
    Success,
    /// A failure; `retryable` says whether it may be tried again.
    Failure {
        /// May the request be sent again?
        retryable: bool,
    },
    /// Not known from the response head: an HTTP/2 stream is classified
    /// when it ends (its trailers' `grpc-status`, a reset), and the
    /// response is given to the caller at once, never held back for it.
    Pending,
}

impl ResponseClass {
    /// Whether this is a success.
    pub fn is_success(self) -> bool {
        matches!(self, ResponseClass::Success)
    }
}

impl Classifier {
    fn retryable_method(self, m: &Method) -> bool {
        let read = matches!(
            *m,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
        );
        match self {
            Classifier::NonRetryable5XX | Classifier::AllSuccessful | Classifier::Grpc(_) => false,
            Classifier::RetryableRead5XX => read,
            Classifier::RetryableIdempotent5XX => {
                read || matches!(*m, Method::PUT | Method::DELETE)
            }
            Classifier::RetryableAll5XX => true,
        }
    }

    /// Classifies a response to a request with `method`. Linkerd's two
    /// wrappers apply: a request whose body was not kept (chunked or too
    /// large: `replayable == false`) is never retryable, and a failure
    /// carrying `l5d-retryable: true` from a downstream router is
    /// retryable (it never reached the application).
    pub fn classify(
        self,
        method: &Method,
        status: StatusCode,
        headers: &HeaderMap,
        replayable: bool,
    ) -> ResponseClass {
        self.classify_with(
            method,
            status,
            || headers.get("l5d-retryable").map(|v| v.as_bytes()),
            replayable,
        )
    }

    /// [`Classifier::classify`], `l5d-retryable`'s value read by `marked`
    /// (only for a 5xx).
    pub fn classify_with<'a>(
        self,
        method: &Method,
        status: StatusCode,
        marked: impl FnOnce() -> Option<&'a [u8]>,
        replayable: bool,
    ) -> ResponseClass {
        if self == Classifier::AllSuccessful || !status.is_server_error() {
            return ResponseClass::Success;
        }
        let marked = marked().is_some_and(|v| v.eq_ignore_ascii_case(b"true"));
        ResponseClass::Failure {
            retryable: replayable && (marked || self.retryable_method(method)),
        }
    }

    /// Classifies a request that failed without a response after it may
    /// have been written (a reset, a timeout).
    pub fn classify_error(self, method: &Method, replayable: bool) -> ResponseClass {
        ResponseClass::Failure {
            retryable: replayable && self.retryable_method(method),
        }
    }
}

/// Finagle's `RetryBudget`: over a sliding `ttl`, retries may be at most
/// `percent_can_retry` of requests, plus a floor of `min_per_sec` retries
/// per second so that low traffic can still retry.
///
/// `balance = min_per_sec * ttl + percent_can_retry * deposits - withdrawals`,
/// where deposits and withdrawals are counted over the last `ttl`; a
/// withdrawal succeeds when the balance is at least 1.
#[derive(Debug)]
pub struct Budget {
    ttl: Duration,
    /// A slot's width (`ttl` / `SLOTS`) in nanoseconds: a slot is found
    /// with one 64-bit division per request, not a 128-bit one.
    width_ns: u64,
    min_per_sec: u32,
    percent: f64,
    slots: Mutex<Slots>,
}

#[derive(Debug)]
struct Slots {
    start: Instant,
    /// `(slot index, deposits, withdrawals)` ring of 10 slots over `ttl`.
    ring: [(u64, u64, u64); SLOTS],
}

const SLOTS: usize = 10;

/// `ttl` / `SLOTS` in nanoseconds, at least 1 (`ttl` is at most 60 s).
fn slot_width_ns(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_nanos() / SLOTS as u128)
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Budget parameters out of range.
#[derive(Debug, PartialEq, Eq)]
pub struct BudgetError(pub String);

impl Budget {
    /// A budget; `ttl` in 1..=60 s, `percent_can_retry` in 0..=1000
    /// (tower's `TpsBudget` panics outside its ranges; this refuses).
    pub fn new(
        ttl: Duration,
        min_per_sec: u32,
        percent_can_retry: f64,
    ) -> Result<Budget, BudgetError> {
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&ttl) {
            return Err(BudgetError(format!("ttl must be 1 to 60 s, got {ttl:?}")));
        }
        if !(0.0..=1000.0).contains(&percent_can_retry) {
            return Err(BudgetError(format!(
                "percentCanRetry must be 0 to 1000, got {percent_can_retry}"
            )));
        }
        Ok(Budget {
            ttl,
            width_ns: slot_width_ns(ttl),
            min_per_sec,
            percent: percent_can_retry,
            slots: Mutex::new(Slots {
                start: Instant::now(),
                ring: [(u64::MAX, 0, 0); SLOTS],
            }),
        })
    }

    /// Linkerd's default budget ([`BudgetParams::LINKERD_DEFAULT`]).
    pub fn linkerd_default() -> Budget {
        let d = BudgetParams::LINKERD_DEFAULT;
        Budget {
            ttl: d.ttl,
            width_ns: slot_width_ns(d.ttl),
            min_per_sec: d.min_per_sec,
            percent: d.percent_can_retry,
            slots: Mutex::new(Slots {
                start: Instant::now(),
                ring: [(u64::MAX, 0, 0); SLOTS],
            }),
        }
    }

    fn slot_at(&self, now: Instant, slots: &Slots) -> u64 {
        let d = now.saturating_duration_since(slots.start);
        let ns = d
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(d.subsec_nanos()));
        ns / self.width_ns
    }

    fn with_slot<T>(
        &self,
        now: Instant,
        f: impl FnOnce(&mut (u64, u64, u64), u64, &mut [(u64, u64, u64); SLOTS]) -> T,
    ) -> T {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let idx = self.slot_at(now, &slots);
        let i = (idx % SLOTS as u64) as usize;
        let ring = &mut slots.ring;
        if ring[i].0 != idx {
            ring[i] = (idx, 0, 0);
        }
        let mut cur = ring[i];
        let out = f(&mut cur, idx, ring);
        ring[i] = cur;
        out
    }

    /// Counts one request.
    pub fn deposit(&self) {
        self.deposit_at(Instant::now());
    }

    /// Counts one request at `now` (for tests).
    pub fn deposit_at(&self, now: Instant) {
        self.with_slot(now, |cur, _, _| cur.1 += 1);
    }

    /// Takes one retry from the budget if the balance allows.
    pub fn try_withdraw(&self) -> bool {
        self.try_withdraw_at(Instant::now())
    }

    /// [`Budget::try_withdraw`] at `now` (for tests).
    pub fn try_withdraw_at(&self, now: Instant) -> bool {
        let floor = f64::from(self.min_per_sec) * self.ttl.as_secs_f64();
        let percent = self.percent;
        self.with_slot(now, |cur, idx, ring| {
            let live =
                |s: &(u64, u64, u64)| s.0 != u64::MAX && s.0 + (SLOTS as u64) > idx && s.0 != idx;
            let (mut dep, mut wd) = (cur.1, cur.2);
            for s in ring.iter().filter(|s| live(s)) {
                dep += s.1;
                wd += s.2;
            }
            let balance = floor + percent * dep as f64 - wd as f64;
            if balance >= 1.0 {
                cur.2 += 1;
                true
            } else {
                false
            }
        })
    }

    /// The current balance, rounded down (the `retries/budget` gauge).
    pub fn balance(&self) -> i64 {
        let now = Instant::now();
        let floor = f64::from(self.min_per_sec) * self.ttl.as_secs_f64();
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let idx = self.slot_at(now, &slots);
        let (dep, wd) = slots
            .ring
            .iter()
            .filter(|s| s.0 != u64::MAX && s.0 + (SLOTS as u64) > idx)
            .fold((0u64, 0u64), |(d, w), s| (d + s.1, w + s.2));
        (floor + self.percent * dep as f64 - wd as f64).floor() as i64
    }
}

/// Pause between retries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RetryBackoff {
    /// The same pause every time (Linkerd's default: 0 ms).
    Constant(Duration),
    /// Decorrelated jitter between `min` and `max`.
    Jittered {
        /// Smallest pause.
        min: Duration,
        /// Largest pause.
        max: Duration,
    },
}

impl Default for RetryBackoff {
    fn default() -> Self {
        RetryBackoff::Constant(Duration::ZERO)
    }
}

impl RetryBackoff {
    /// The pause before retry number `attempt` (1-based), given the previous
    /// pause.
    pub fn next(&self, prev: Duration) -> Duration {
        match *self {
            RetryBackoff::Constant(d) => d,
            RetryBackoff::Jittered { min, max } => {
                // Decorrelated jitter: uniform in [min, 3 * prev], capped.
                let hi = (prev * 3).max(min).min(max);
                let span = hi.saturating_sub(min).as_nanos() as u64;
                let extra = if span == 0 { 0 } else { fastrand::u64(..=span) };
                min + Duration::from_nanos(extra)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hm(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap_or(http::header::WARNING),
                v.parse().unwrap_or(http::HeaderValue::from_static("")),
            );
        }
        h
    }

    #[test]
    fn classifier_table_matches_linkerd() {
        let e = HeaderMap::new();
        let s503 = StatusCode::SERVICE_UNAVAILABLE;
        let cases = [
            (Classifier::NonRetryable5XX, Method::GET, false),
            (Classifier::RetryableRead5XX, Method::GET, true),
            (Classifier::RetryableRead5XX, Method::HEAD, true),
            (Classifier::RetryableRead5XX, Method::PUT, false),
            (Classifier::RetryableRead5XX, Method::POST, false),
            (Classifier::RetryableIdempotent5XX, Method::PUT, true),
            (Classifier::RetryableIdempotent5XX, Method::DELETE, true),
            (Classifier::RetryableIdempotent5XX, Method::POST, false),
            (Classifier::RetryableAll5XX, Method::POST, true),
            (Classifier::RetryableAll5XX, Method::PATCH, true),
        ];
        for (c, m, retryable) in cases {
            assert_eq!(
                c.classify(&m, s503, &e, true),
                ResponseClass::Failure { retryable },
                "{c:?} {m}"
            );
        }
        assert_eq!(
            Classifier::RetryableAll5XX.classify(&Method::GET, StatusCode::NOT_FOUND, &e, true),
            ResponseClass::Success,
            "4xx is a success"
        );
        assert_eq!(
            Classifier::AllSuccessful.classify(&Method::GET, s503, &e, true),
            ResponseClass::Success
        );
    }

    #[test]
    fn unreplayable_bodies_are_never_retryable_and_l5d_retryable_marks_failures() {
        let e = HeaderMap::new();
        let s = StatusCode::BAD_GATEWAY;
        assert_eq!(
            Classifier::RetryableAll5XX.classify(&Method::POST, s, &e, false),
            ResponseClass::Failure { retryable: false }
        );
        let marked = hm(&[("l5d-retryable", "true")]);
        assert_eq!(
            Classifier::NonRetryable5XX.classify(&Method::POST, s, &marked, true),
            ResponseClass::Failure { retryable: true },
            "a downstream router says the request never reached the app"
        );
    }

    #[test]
    fn budget_allows_the_floor_plus_a_percentage_of_requests() {
        let b = Budget::new(Duration::from_secs(10), 1, 0.5).unwrap_or_else(|e| panic!("{e:?}"));
        let t0 = Instant::now();
        // Floor: 1 per second over 10 s = 10 retries with no traffic.
        let floor = (0..100).take_while(|_| b.try_withdraw_at(t0)).count();
        assert_eq!(floor, 10, "min_per_sec * ttl retries are always allowed");
        for _ in 0..20 {
            b.deposit_at(t0);
        }
        let more = (0..100).take_while(|_| b.try_withdraw_at(t0)).count();
        assert_eq!(
            more, 10,
            "then percentCanRetry of the requests (50 % of 20)"
        );
        // After the ttl the window is empty again.
        let later = t0 + Duration::from_secs(11);
        assert!(b.try_withdraw_at(later), "the window slides");
    }

    #[test]
    fn deposits_count_for_the_ttl_and_then_expire() {
        let b = Budget::new(Duration::from_secs(10), 0, 0.5).unwrap_or_else(|e| panic!("{e:?}"));
        let t0 = Instant::now();
        for _ in 0..20 {
            b.deposit_at(t0);
        }
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        // One withdrawal at a time, from slots nearer the end of the ttl.
        assert!(b.try_withdraw_at(at(0.5)));
        assert!(b.try_withdraw_at(at(4.2)));
        assert!(b.try_withdraw_at(at(8.5)), "within the ttl");
        assert!(!b.try_withdraw_at(at(11.0)), "past the ttl: nothing left");
    }

    #[test]
    fn budget_parameters_are_validated_not_panicking() {
        assert!(Budget::new(Duration::ZERO, 10, 0.2).is_err());
        assert!(Budget::new(Duration::from_secs(61), 10, 0.2).is_err());
        assert!(Budget::new(Duration::from_secs(10), 10, -0.1).is_err());
        assert!(Budget::new(Duration::from_secs(10), 10, 1000.5).is_err());
        assert!(Budget::new(Duration::from_secs(10), 0, 0.0).is_ok());
    }

    #[test]
    fn jittered_backoff_stays_within_bounds() {
        let b = RetryBackoff::Jittered {
            min: Duration::from_millis(5),
            max: Duration::from_millis(50),
        };
        let mut prev = Duration::from_millis(5);
        for _ in 0..1000 {
            prev = b.next(prev);
            assert!(
                prev >= Duration::from_millis(5) && prev <= Duration::from_millis(50),
                "{prev:?}"
            );
        }
    }
}

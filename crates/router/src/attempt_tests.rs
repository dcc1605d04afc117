#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The decision function case by case, and the attempt loop over a
//! scripted exchange with tokio's paused clock (attempt timeouts and retry
//! pauses pass instantly, in order).

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method, StatusCode};
use strait_dtab::Path;
use strait_naming::{Addr, Endpoint};

use super::*;
use crate::policy::{BudgetParams, ClientPolicy, ServicePolicy};
use crate::retry::Classifier;
use crate::stats::{Registry, Scope};

/// Budgets with a fixed number of withdrawals left, counting the asks.
#[derive(Default)]
struct Fixed {
    retries: u32,
    requeues: u32,
    asked_retry: u32,
    asked_requeue: u32,
}

impl Budgets for Fixed {
    fn retry(&mut self) -> bool {
        self.asked_retry += 1;
        self.retries
            .checked_sub(1)
            .map(|n| self.retries = n)
            .is_some()
    }
    fn requeue(&mut self) -> bool {
        self.asked_requeue += 1;
        self.requeues
            .checked_sub(1)
            .map(|n| self.requeues = n)
            .is_some()
    }
}

fn plenty() -> Fixed {
    Fixed {
        retries: 100,
        requeues: 100,
        ..Fixed::default()
    }
}

const NO_PAUSE: RetryBackoff = RetryBackoff::Constant(Duration::ZERO);
const RETRYABLE: ResponseClass = ResponseClass::Failure { retryable: true };
const FINAL: ResponseClass = ResponseClass::Failure { retryable: false };

fn decide1(attempt: Attempted, replayable: bool, budgets: &mut Fixed) -> (Decision, Tries) {
    let mut tries = Tries::default();
    let d = decide(attempt, replayable, &mut tries, &NO_PAUSE, budgets);
    (d, tries)
}

#[test]
fn a_success_is_returned_without_touching_a_budget() {
    let mut b = plenty();
    let (d, t) = decide1(Attempted::Responded(ResponseClass::Success), true, &mut b);
    assert_eq!(d, Decision::Return);
    assert_eq!(t, Tries::default());
    assert_eq!((b.asked_retry, b.asked_requeue), (0, 0));
}

#[test]
fn connect_refused_is_requeued_when_the_body_was_kept() {
    let mut b = plenty();
    let (d, t) = decide1(Attempted::NotSent { elsewhere: false }, true, &mut b);
    assert_eq!(d, Decision::Requeue);
    assert_eq!(t.requeues, 1);
    assert_eq!(
        b.asked_requeue, 1,
        "every endpoint failing: the budget pays"
    );
    assert_eq!(
        b.asked_retry, 0,
        "a requeue never draws on the retry budget"
    );
}

#[test]
fn an_unsent_request_is_requeued_free_while_another_endpoint_is_alive() {
    let mut empty = Fixed::default();
    let (d, t) = decide1(Attempted::NotSent { elsewhere: true }, true, &mut empty);
    assert_eq!(
        d,
        Decision::Requeue,
        "a live endpoint exists: never fail it"
    );
    assert_eq!(t.requeues, 1);
    assert_eq!(
        empty.asked_requeue, 0,
        "the budget is kept for when all fail"
    );
    // The per-request cap still holds.
    let mut tries = Tries {
        requeues: MAX_REQUEUES,
        ..Tries::default()
    };
    let unsent = Attempted::NotSent { elsewhere: true };
    assert_eq!(
        decide(unsent, true, &mut tries, &NO_PAUSE, &mut empty),
        Decision::Fail
    );
    // A streamed body cannot be sent again, live endpoint or not.
    assert_eq!(decide1(unsent, false, &mut empty).0, Decision::Fail);
}

#[test]
fn connect_refused_with_a_streamed_body_fails() {
    let mut b = plenty();
    let (d, _) = decide1(Attempted::NotSent { elsewhere: true }, false, &mut b);
    assert_eq!(d, Decision::Fail);
    assert_eq!(b.asked_requeue, 0);
}

#[test]
fn connect_refused_with_the_requeue_budget_spent_fails() {
    let mut b = Fixed::default();
    let (d, _) = decide1(Attempted::NotSent { elsewhere: false }, true, &mut b);
    assert_eq!(d, Decision::Fail);
    assert_eq!(
        b.asked_requeue, 1,
        "the refusal is the budget's, and counted"
    );
}

#[test]
fn requeues_stop_at_the_per_request_cap_whatever_the_budget() {
    let mut b = plenty();
    let mut tries = Tries::default();
    let mut n = 0;
    let unsent = Attempted::NotSent { elsewhere: false };
    while decide(unsent, true, &mut tries, &NO_PAUSE, &mut b) == Decision::Requeue {
        n += 1;
    }
    assert_eq!(n, MAX_REQUEUES);
    assert_eq!(
        b.asked_requeue, MAX_REQUEUES,
        "the budget is not asked past the cap"
    );
}

#[test]
fn a_retryable_failed_response_is_retried_after_the_backoff() {
    let mut b = plenty();
    let mut tries = Tries::default();
    let backoff = RetryBackoff::Constant(Duration::from_millis(250));
    let d = decide(
        Attempted::Responded(RETRYABLE),
        true,
        &mut tries,
        &backoff,
        &mut b,
    );
    assert_eq!(d, Decision::Retry(Duration::from_millis(250)));
    assert_eq!(tries.retries, 1);
    assert_eq!(b.asked_requeue, 0);
}

#[test]
fn jittered_pauses_grow_within_their_bounds() {
    let mut b = plenty();
    let mut tries = Tries::default();
    let (min, max) = (Duration::from_millis(10), Duration::from_millis(200));
    let backoff = RetryBackoff::Jittered { min, max };
    for _ in 0..50 {
        let Decision::Retry(p) = decide(
            Attempted::Lost(RETRYABLE),
            true,
            &mut tries,
            &backoff,
            &mut b,
        ) else {
            panic!("a retryable loss with budget left is retried");
        };
        assert!((min..=max).contains(&p), "{p:?}");
    }
    assert_eq!(tries.retries, 50);
}

#[test]
fn a_retryable_failed_response_with_the_budget_spent_is_returned_as_is() {
    let mut b = Fixed::default();
    let (d, t) = decide1(Attempted::Responded(RETRYABLE), true, &mut b);
    assert_eq!(d, Decision::Return, "the caller gets the backend's 5xx");
    assert_eq!(t.retries, 0);
    assert_eq!(b.asked_retry, 1);
}

#[test]
fn a_final_failed_response_is_returned_without_asking_the_budget() {
    let mut b = plenty();
    let (d, _) = decide1(Attempted::Responded(FINAL), true, &mut b);
    assert_eq!(d, Decision::Return);
    assert_eq!(b.asked_retry, 0);
}

#[test]
fn a_lost_request_is_retried_only_when_retryable_and_budgeted() {
    let mut b = plenty();
    assert!(matches!(
        decide1(Attempted::Lost(RETRYABLE), true, &mut b).0,
        Decision::Retry(_)
    ));
    assert_eq!(
        decide1(Attempted::Lost(FINAL), true, &mut b).0,
        Decision::Fail
    );
    let mut empty = Fixed::default();
    assert_eq!(
        decide1(Attempted::Lost(RETRYABLE), true, &mut empty).0,
        Decision::Fail
    );
}

/// What the classifier makes of a 503 or a reset after the request was
/// written, per method, decided with budget to spare.
#[test]
fn classifications_per_method_decide_retries() {
    let s503 = StatusCode::SERVICE_UNAVAILABLE;
    let none = HeaderMap::new();
    let mut marked = HeaderMap::new();
    marked.insert("l5d-retryable", HeaderValue::from_static("true"));
    let retried = |class| {
        let mut b = plenty();
        matches!(
            decide1(Attempted::Responded(class), true, &mut b).0,
            Decision::Retry(_)
        )
    };
    let lost_retried = |class| {
        let mut b = plenty();
        matches!(
            decide1(Attempted::Lost(class), true, &mut b).0,
            Decision::Retry(_)
        )
    };
    let cases = [
        // classifier, method, 503 retried, reset retried
        (Classifier::NonRetryable5XX, Method::GET, false, false),
        (Classifier::RetryableRead5XX, Method::GET, true, true),
        (Classifier::RetryableRead5XX, Method::HEAD, true, true),
        (Classifier::RetryableRead5XX, Method::POST, false, false),
        (Classifier::RetryableRead5XX, Method::PUT, false, false),
        (Classifier::RetryableIdempotent5XX, Method::PUT, true, true),
        (
            Classifier::RetryableIdempotent5XX,
            Method::DELETE,
            true,
            true,
        ),
        (
            Classifier::RetryableIdempotent5XX,
            Method::POST,
            false,
            false,
        ),
        (Classifier::RetryableAll5XX, Method::POST, true, true),
        (Classifier::RetryableAll5XX, Method::PATCH, true, true),
        (Classifier::AllSuccessful, Method::GET, false, false),
    ];
    for (c, m, on_503, on_reset) in cases {
        let class = c.classify(&m, s503, &none, true);
        assert_eq!(retried(class), on_503, "{c:?} {m} 503");
        assert_eq!(
            lost_retried(c.classify_error(&m, true)),
            on_reset,
            "{c:?} {m} reset"
        );
        // A streamed body is never sent twice.
        assert!(
            !retried(c.classify(&m, s503, &none, false)),
            "{c:?} {m} streamed"
        );
    }
    // `l5d-retryable: true` from a downstream router: never reached the
    // application, so even a POST under the default classifier is retried.
    let class = Classifier::NonRetryable5XX.classify(&Method::POST, s503, &marked, true);
    assert!(retried(class));
    assert!(!retried(Classifier::NonRetryable5XX.classify(
        &Method::POST,
        s503,
        &marked,
        false
    )));
}

// ------------------------------------------------------------- the loop

/// What an endpoint does with an attempt.
#[derive(Clone, Copy, Debug)]
enum Script {
    /// Answers with this status after this long.
    Answer(u16, Duration),
    /// Refuses the connection.
    Refuse,
    /// Resets after the request was written.
    Reset,
    /// Never answers.
    Hang,
}

struct Scripted {
    method: Method,
    classifier: Classifier,
    replayable: bool,
    script: HashMap<SocketAddr, Script>,
    sent: Vec<SocketAddr>,
}

impl Exchange for Scripted {
    type Response = u16;

    fn replayable(&self) -> bool {
        self.replayable
    }

    fn send(
        &mut self,
        addr: SocketAddr,
        deadline: tokio::time::Instant,
    ) -> impl Future<Output = Result<u16, SendFailure>> + Send {
        self.sent.push(addr);
        let script = self.script[&addr];
        let sent = async move {
            match script {
                Script::Answer(code, after) => {
                    tokio::time::sleep(after).await;
                    Ok(code)
                }
                Script::Refuse => Err(SendFailure::NotSent(None)),
                Script::Reset => Err(SendFailure::Lost("connection reset".into())),
                Script::Hang => std::future::pending().await,
            }
        };
        async move {
            tokio::time::timeout_at(deadline, sent)
                .await
                .unwrap_or(Err(SendFailure::TimedOut))
        }
    }

    fn classify(&self, code: &u16) -> (u16, ResponseClass) {
        let status = StatusCode::from_u16(*code).unwrap();
        let class =
            self.classifier
                .classify(&self.method, status, &HeaderMap::new(), self.replayable);
        (*code, class)
    }

    fn classify_error(&self) -> ResponseClass {
        self.classifier
            .classify_error(&self.method, self.replayable)
    }
}

struct Fixture {
    client: Arc<Client>,
    service: Arc<Service>,
    registry: Registry,
    addrs: Vec<SocketAddr>,
    _addr: tokio::sync::watch::Sender<Addr>,
}

fn fixture(n: usize, client: ClientPolicy, service: ServicePolicy) -> Fixture {
    let addrs: Vec<SocketAddr> = (0..n)
        .map(|i| SocketAddr::from(([127, 0, 0, 1], 9000 + i as u16)))
        .collect();
    let eps: Arc<[Endpoint]> = addrs.iter().map(|a| Endpoint::new(*a)).collect();
    let (tx, rx) = tokio::sync::watch::channel(Addr::Bound(eps));
    let registry = Registry::default();
    let id = Path::read("/#/io.l5d.fs/hello").unwrap();
    let name = Path::read("/svc/hello").unwrap();
    let scope = Scope::Service {
        router: "out".into(),
        name: "/svc/hello".into(),
    };
    Fixture {
        client: Client::new(id, rx, client, None, &registry, "out"),
        service: Service::new(&registry, &scope, &name, service),
        registry,
        addrs,
        _addr: tx,
    }
}

fn scripted(method: Method, classifier: Classifier, script: &[(SocketAddr, Script)]) -> Scripted {
    Scripted {
        method,
        classifier,
        replayable: true,
        script: script.iter().copied().collect(),
        sent: Vec::new(),
    }
}

fn metric(f: &Fixture, name: &str) -> i64 {
    let json = f.registry.to_json();
    json.get(name)
        .and_then(|v| v.as_i64())
        .unwrap_or_else(|| panic!("no metric {name} in {:?}", json.keys().collect::<Vec<_>>()))
}

const CLIENT: &str = "rt/out/client/#/io.l5d.fs/hello";
const SERVICE: &str = "rt/out/service/svc/hello";

#[tokio::test(start_paused = true)]
async fn a_refused_connection_is_requeued_to_the_other_endpoint() {
    let f = fixture(2, ClientPolicy::default(), ServicePolicy::default());
    let (a, b) = (f.addrs[0], f.addrs[1]);
    // Until the balancer has tried the refusing one (its picks are random),
    // every request ends, answered, on the other.
    let mut tried = false;
    for _ in 0..64 {
        let mut ex = scripted(
            Method::POST,
            Classifier::NonRetryable5XX,
            &[
                (a, Script::Refuse),
                (b, Script::Answer(200, Duration::ZERO)),
            ],
        );
        let answered = run(&mut ex, &f.client, &f.service, None).await.unwrap();
        assert_eq!(answered.response, 200);
        assert_eq!(*ex.sent.last().unwrap(), b);
        tried |= ex.sent.contains(&a);
        if tried {
            assert_eq!(ex.sent, [a, b], "refused, then requeued to the other");
            break;
        }
    }
    assert!(
        tried,
        "the balancer tried the refusing endpoint in 64 picks"
    );
    assert_eq!(metric(&f, &format!("{CLIENT}/retries/requeues")), 1);
    assert_eq!(metric(&f, &format!("{CLIENT}/connect_failures")), 1);
    assert_eq!(metric(&f, &format!("{SERVICE}/retries/total")), 0);
}

#[tokio::test(start_paused = true)]
async fn every_endpoint_refusing_fails_after_the_requeue_cap() {
    let f = fixture(2, ClientPolicy::default(), ServicePolicy::default());
    let mut ex = scripted(
        Method::GET,
        Classifier::RetryableRead5XX,
        &[(f.addrs[0], Script::Refuse), (f.addrs[1], Script::Refuse)],
    );
    let err = run(&mut ex, &f.client, &f.service, None)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, AttemptError::ConnectFailed(..)), "{err:?}");
    assert_eq!(ex.sent.len(), MAX_REQUEUES as usize + 1);
    assert_eq!(
        metric(&f, &format!("{CLIENT}/connect_failures")),
        i64::from(MAX_REQUEUES) + 1
    );
}

#[tokio::test(start_paused = true)]
async fn an_empty_requeue_budget_fails_once_no_endpoint_is_left() {
    let client = ClientPolicy {
        requeue_budget: BudgetParams {
            ttl: Duration::from_secs(10),
            min_per_sec: 0,
            percent_can_retry: 0.0,
        },
        ..ClientPolicy::default()
    };
    let f = fixture(2, client, ServicePolicy::default());
    let mut ex = scripted(
        Method::GET,
        Classifier::NonRetryable5XX,
        &[(f.addrs[0], Script::Refuse), (f.addrs[1], Script::Refuse)],
    );
    let err = run(&mut ex, &f.client, &f.service, None)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, AttemptError::ConnectFailed(..)), "{err:?}");
    // The first refusal marks its endpoint dead and goes, free, to the
    // other; the second finds nothing alive, and the empty budget fails it.
    assert_eq!(ex.sent.len(), 2);
    assert_ne!(ex.sent[0], ex.sent[1]);
    assert_eq!(metric(&f, &format!("{CLIENT}/retries/budget_exhausted")), 1);
}

#[tokio::test(start_paused = true)]
async fn a_reset_after_writing_is_retried_for_a_read_and_reported_for_a_post() {
    let service = ServicePolicy {
        classifier: Classifier::RetryableRead5XX,
        backoff: RetryBackoff::Constant(Duration::from_secs(1)),
        ..ServicePolicy::default()
    };
    let f = fixture(2, ClientPolicy::default(), service);
    let (a, b) = (f.addrs[0], f.addrs[1]);
    // GET: the reset one is retried on the other, after the backoff.
    let script = [(a, Script::Reset), (b, Script::Reset)];
    let mut ex = scripted(Method::GET, Classifier::RetryableRead5XX, &script);
    ex.script.insert(b, Script::Answer(200, Duration::ZERO));
    ex.script.insert(a, Script::Reset);
    let start = tokio::time::Instant::now();
    let mut answered = None;
    for _ in 0..20 {
        ex.sent.clear();
        let r = run(&mut ex, &f.client, &f.service, None).await.unwrap();
        if ex.sent[0] == a {
            answered = Some((r.response, ex.sent.clone(), start.elapsed()));
            break;
        }
    }
    let (code, sent, took) = answered.expect("the balancer picked the resetting endpoint first");
    assert_eq!((code, sent), (200, vec![a, b]));
    assert!(
        took >= Duration::from_secs(1),
        "the retry waited for the backoff: {took:?}"
    );
    assert!(metric(&f, &format!("{SERVICE}/retries/total")) >= 1);
    // POST: a reset may have reached the application; reported, not retried.
    let mut ex = scripted(Method::POST, Classifier::RetryableRead5XX, &script);
    let err = run(&mut ex, &f.client, &f.service, None)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, AttemptError::Lost { .. }), "{err:?}");
    assert_eq!(ex.sent.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_retryable_response_with_no_budget_left_is_returned() {
    let service = ServicePolicy {
        classifier: Classifier::RetryableRead5XX,
        budget: BudgetParams {
            ttl: Duration::from_secs(10),
            min_per_sec: 0,
            percent_can_retry: 0.0,
        },
        ..ServicePolicy::default()
    };
    let f = fixture(2, ClientPolicy::default(), service);
    let busy = Script::Answer(503, Duration::ZERO);
    let mut ex = scripted(
        Method::GET,
        Classifier::RetryableRead5XX,
        &[(f.addrs[0], busy), (f.addrs[1], busy)],
    );
    let answered = run(&mut ex, &f.client, &f.service, None).await.unwrap();
    assert_eq!(answered.response, 503);
    assert_eq!(answered.outcome, Outcome::Failure);
    assert_eq!(ex.sent.len(), 1);
    assert_eq!(
        metric(&f, &format!("{SERVICE}/retries/budget_exhausted")),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn the_attempt_timeout_cuts_a_hung_endpoint() {
    let client = ClientPolicy {
        attempt_timeout: Some(Duration::from_millis(300)),
        ..ClientPolicy::default()
    };
    let f = fixture(1, client, ServicePolicy::default());
    let mut ex = scripted(
        Method::GET,
        Classifier::RetryableRead5XX,
        &[(f.addrs[0], Script::Hang)],
    );
    let start = tokio::time::Instant::now();
    let err = run(&mut ex, &f.client, &f.service, None)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, AttemptError::TimedOut(t) if t == Duration::from_millis(300)));
    // Retried (GET, retryable), each attempt cut at 300 ms, until the
    // budget's floor ran out; never waits forever.
    assert!(ex.sent.len() > 1);
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(300) * ex.sent.len() as u32
    );
    assert_eq!(metric(&f, &format!("{CLIENT}/pending")), 0);
}

/// A total timeout (or a client gone) drops the loop mid-attempt: nothing
/// stays counted as in flight, in the client's gauge or the balancer's.
#[tokio::test(start_paused = true)]
async fn dropping_the_loop_mid_attempt_leaves_nothing_in_flight() {
    let f = fixture(1, ClientPolicy::default(), ServicePolicy::default());
    let mut ex = scripted(
        Method::GET,
        Classifier::NonRetryable5XX,
        &[(f.addrs[0], Script::Hang)],
    );
    let cut = tokio::time::timeout(
        Duration::from_secs(2),
        run(&mut ex, &f.client, &f.service, None),
    )
    .await;
    assert!(cut.is_err());
    assert_eq!(ex.sent.len(), 1);
    assert_eq!(metric(&f, &format!("{CLIENT}/pending")), 0);
    let eps = f.client.balancer.endpoints_state();
    assert_eq!(eps.len(), 1);
    assert_eq!(
        eps[0].inflight, 0,
        "the lease went with the dropped attempt"
    );
}

// ------------------------------------- outages (paused time, real balancer)

const OK: Script = Script::Answer(200, Duration::ZERO);

/// Sends `n` GETs (RetryableRead5XX), endpoint `i` doing `script(k)[i]` on
/// request `k`; returns how many failed.
async fn failed_of(f: &Fixture, n: usize, script: impl Fn(usize) -> Vec<Script>) -> usize {
    let mut failed = 0;
    for k in 0..n {
        let s: Vec<(SocketAddr, Script)> = f.addrs.iter().copied().zip(script(k)).collect();
        let mut ex = scripted(Method::GET, Classifier::RetryableRead5XX, &s);
        match run(&mut ex, &f.client, &f.service, None).await {
            Ok(a) if a.response == 200 => a.lease.finish(a.outcome),
            _ => failed += 1,
        }
    }
    failed
}

fn states(f: &Fixture) -> Vec<&'static str> {
    f.client
        .balancer
        .endpoints_state()
        .iter()
        .map(|e| e.state)
        .collect()
}

/// The deploy of the issue: every instance down for a moment (all marked
/// dead), back and serving, then one crashes: no request fails after they
/// are back.
#[tokio::test(start_paused = true)]
async fn after_an_outage_one_crash_fails_nothing() {
    let f = fixture(3, ClientPolicy::default(), ServicePolicy::default());
    let down = failed_of(&f, 20, |_| vec![Script::Refuse; 3]).await;
    assert_eq!(down, 20, "nothing serves: every request fails");
    assert_eq!(states(&f), ["dead"; 3]);
    // Back: the first success revives its endpoint, no waiting for a
    // probe; with one alive, the others wait for their probes, unpicked.
    assert_eq!(failed_of(&f, 100, |_| vec![OK; 3]).await, 0);
    let alive = states(&f).iter().position(|s| *s == "alive").unwrap();
    // The worst crash: the one endpoint known alive. The others are dead
    // but serving: panic mode reaches them, and their successes revive.
    let crash = |_| {
        (0..3)
            .map(|i| if i == alive { Script::Refuse } else { OK })
            .collect()
    };
    assert_eq!(failed_of(&f, 1_000, crash).await, 0);
    let after = states(&f);
    assert_eq!(after[alive], "dead", "{after:?}");
    assert!(after.contains(&"alive"), "{after:?}");
    assert!(metric(&f, &format!("{CLIENT}/failure_accrual/revivals")) >= 2);
}

/// The plain crash of one of three, never an outage before: nothing fails,
/// and the crashed one is shed at its first refused connection.
#[tokio::test(start_paused = true)]
async fn one_crash_of_three_fails_nothing() {
    let f = fixture(3, ClientPolicy::default(), ServicePolicy::default());
    assert_eq!(failed_of(&f, 100, |_| vec![OK; 3]).await, 0);
    let crashed = failed_of(&f, 1_000, |_| vec![Script::Refuse, OK, OK]).await;
    assert_eq!(crashed, 0);
    assert_eq!(metric(&f, &format!("{CLIENT}/connect_failures")), 1);
    assert_eq!(states(&f), ["dead", "alive", "alive"]);
}

/// Everything down for good: requests fail fast, and requeues stay within
/// the requeue budget (no storm against a dead service).
#[tokio::test(start_paused = true)]
async fn all_dead_for_good_fails_fast_within_the_requeue_budget() {
    let client = ClientPolicy {
        requeue_budget: BudgetParams {
            ttl: Duration::from_secs(10),
            min_per_sec: 1,
            percent_can_retry: 0.2,
        },
        ..ClientPolicy::default()
    };
    let f = fixture(3, client, ServicePolicy::default());
    let n = 200;
    assert_eq!(failed_of(&f, n, |_| vec![Script::Refuse; 3]).await, n);
    let requeues = metric(&f, &format!("{CLIENT}/retries/requeues"));
    // Two are free (the first and second refusals of the first request
    // each leave another endpoint not yet known dead); the rest are the
    // budget's: 1/s over 10 s plus 20 % of 200 requests.
    assert!(requeues <= 2 + 10 + 40, "{requeues} requeues");
    assert!(metric(&f, &format!("{CLIENT}/retries/budget_exhausted")) > 0);
}

/// An endpoint that refuses one connection and serves the next, over and
/// over: killed by each refusal, revived by each success, and no request
/// fails while the other endpoint serves.
#[tokio::test(start_paused = true)]
async fn a_flapping_endpoint_fails_nothing() {
    let f = fixture(2, ClientPolicy::default(), ServicePolicy::default());
    let flap = |k: usize| {
        vec![
            OK,
            if k.is_multiple_of(2) {
                Script::Refuse
            } else {
                OK
            },
        ]
    };
    assert_eq!(failed_of(&f, 500, flap).await, 0);
    assert!(metric(&f, &format!("{CLIENT}/failure_accrual/removals")) >= 1);
}

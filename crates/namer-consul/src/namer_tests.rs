//! The loop as a state machine: a scripted Consul ([`Fake`]) and paused
//! tokio time, so every backoff, timeout and sweep is exact and instant.

use std::collections::VecDeque;

use strait_dtab::Dtab;
use strait_naming::inet::InetResolver;
use strait_naming::{AddrVar, Interpreter};

use super::*;
use crate::client::{AGENT_SELF, BoxFuture, RawResponse, TransportError};

const WEB: &str = "/v1/health/service/web";
const MS: Duration = Duration::from_millis(1);

const AGENT_SELF_DC1: &str = r#"{"Config": {"Datacenter": "dc1", "NodeName": "host-a", "Server": false},
  "Member": {"Name": "host-a", "Addr": "127.0.0.11", "Port": 8301}, "Meta": {}}"#;

// ---------------------------------------------------------------------------
// The scripted Consul.

enum Step {
    Reply(RawResponse),
    Fail { connect: bool },
}

#[derive(Clone, Debug)]
struct Req {
    url: String,
    token: Option<String>,
    at: Instant,
}

#[derive(Default)]
struct FakeState {
    /// Per URL path: what the next requests get, in order. A request with
    /// nothing scripted waits (a long poll) until something is.
    scripts: HashMap<String, VecDeque<Step>>,
    log: Vec<Req>,
    dns: HashMap<String, Vec<IpAddr>>,
    in_flight: usize,
    cancelled: usize,
}

struct Fake {
    state: Mutex<FakeState>,
    version: watch::Sender<u64>,
}

impl Fake {
    fn new() -> Arc<Fake> {
        Arc::new(Fake {
            state: Mutex::default(),
            version: watch::channel(0).0,
        })
    }

    fn push(&self, path: &str, step: Step) {
        self.state
            .lock()
            .unwrap()
            .scripts
            .entry(path.to_owned())
            .or_default()
            .push_back(step);
        self.version.send_modify(|v| *v += 1);
    }

    fn reply(&self, path: &str, index: Option<&str>, body: &str) {
        self.push(
            path,
            Step::Reply(RawResponse::new(200, index, body.to_owned())),
        );
    }

    fn status(&self, path: &str, status: u16, body: &str) {
        self.push(
            path,
            Step::Reply(RawResponse::new(status, Some("3"), body.to_owned())),
        );
    }

    fn fail(&self, path: &str, connect: bool) {
        self.push(path, Step::Fail { connect });
    }

    fn dns(&self, host: &str, ips: &[&str]) {
        self.state.lock().unwrap().dns.insert(
            host.to_owned(),
            ips.iter().map(|i| i.parse().unwrap()).collect(),
        );
    }

    fn requests(&self, path: &str) -> Vec<Req> {
        self.state
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|r| r.url.split('?').next() == Some(path))
            .cloned()
            .collect()
    }

    fn all_requests(&self) -> usize {
        self.state.lock().unwrap().log.len()
    }

    fn in_flight(&self) -> usize {
        self.state.lock().unwrap().in_flight
    }

    fn cancelled(&self) -> usize {
        self.state.lock().unwrap().cancelled
    }
}

/// Counts a request as cancelled if its future is dropped unanswered.
struct InFlight<'a> {
    fake: &'a Fake,
    done: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut st = self.fake.state.lock().unwrap();
        st.in_flight -= 1;
        if !self.done {
            st.cancelled += 1;
        }
    }
}

impl Transport for Fake {
    fn get<'a>(
        &'a self,
        path_and_query: &'a str,
        token: Option<&'a str>,
    ) -> BoxFuture<'a, Result<RawResponse, TransportError>> {
        Box::pin(async move {
            let path = path_and_query
                .split('?')
                .next()
                .unwrap_or_default()
                .to_owned();
            {
                let mut st = self.state.lock().unwrap();
                st.log.push(Req {
                    url: path_and_query.to_owned(),
                    token: token.map(str::to_owned),
                    at: Instant::now(),
                });
                st.in_flight += 1;
            }
            let mut guard = InFlight {
                fake: self,
                done: false,
            };
            loop {
                let mut changed = {
                    let mut st = self.state.lock().unwrap();
                    if let Some(step) = st.scripts.get_mut(&path).and_then(VecDeque::pop_front) {
                        drop(st);
                        guard.done = true;
                        return match step {
                            Step::Reply(r) => Ok(r),
                            Step::Fail { connect } => Err(TransportError {
                                connect,
                                message: if connect {
                                    "connection refused".into()
                                } else {
                                    "connection reset".into()
                                },
                            }),
                        };
                    }
                    self.version.subscribe()
                };
                let _ = changed.changed().await;
            }
        })
    }

    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>> {
        let ips = self.state.lock().unwrap().dns.get(host).cloned();
        Box::pin(async move {
            ips.map(|ips| {
                ips.into_iter()
                    .map(|ip| SocketAddr::new(ip, port))
                    .collect()
            })
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"))
        })
    }
}

// ---------------------------------------------------------------------------
// Helpers.

fn cfg() -> ConsulConfig {
    ConsulConfig {
        use_health_check: true,
        wait: Duration::from_secs(1),
        watch_idle_ttl: Duration::from_secs(10),
        max_watches: 100,
        ..ConsulConfig::default()
    }
}

fn setup(cfg: ConsulConfig) -> (ConsulNamer, Arc<Fake>) {
    let fake = Fake::new();
    let namer = ConsulNamer::with_transport(cfg, fake.clone()).unwrap();
    (namer, fake)
}

fn prefix() -> Path {
    Path::read("/#/io.l5d.consul").unwrap()
}

fn path(s: &str) -> Path {
    Path::read(s).unwrap()
}

fn entry(addr: &str, port: u16, tags: &[&str]) -> serde_json::Value {
    json!({
        "Node": {"Node": format!("node-{addr}"), "Address": addr, "Meta": {"rack": "r1"}},
        "Service": {"ID": format!("web-{port}"), "Service": "web", "Tags": tags, "Address": "",
                    "Port": port, "Meta": {"version": "1.2"}},
        "Checks": [{"CheckID": "serfHealth", "Status": "passing"}]
    })
}

fn body(eps: &[(&str, u16)]) -> String {
    serde_json::Value::Array(eps.iter().map(|(a, p)| entry(a, *p, &[])).collect()).to_string()
}

/// Lets the loops run without moving time noticeably.
async fn settle() {
    tokio::time::sleep(MS).await;
}

async fn sleep(d: Duration) {
    tokio::time::sleep(d).await;
}

fn addrs(addr: &Addr) -> Vec<String> {
    match addr {
        Addr::Bound(eps) => eps.iter().map(|e| e.addr.to_string()).collect(),
        other => panic!("expected a bound address set, got {other}"),
    }
}

fn bound(state: &State<LookupTree>) -> &Bound<AddrVar> {
    match state {
        State::Ok(NameTree::Leaf(Name::Bound(b))) => b,
        other => panic!("expected a bound leaf, got {other:?}"),
    }
}

fn is_neg(state: &State<LookupTree>) -> bool {
    matches!(state, State::Ok(NameTree::Neg))
}

fn is_pending(state: &State<LookupTree>) -> bool {
    matches!(state, State::Pending)
}

/// The address set behind a bound lookup.
fn var_of(act: &Activity) -> AddrVar {
    bound(&act.borrow()).addr.clone()
}

// ---------------------------------------------------------------------------
// Errors, Neg and the last good answer.

#[tokio::test(start_paused = true)]
async fn a_first_error_makes_a_new_name_neg_at_once_then_it_binds() {
    let (namer, fake) = setup(cfg());
    fake.fail(WEB, true);
    let mut act = namer.lookup(&prefix(), &path("/dc1/web"));
    assert!(
        is_pending(&act.borrow_and_update()),
        "nothing is known before Consul answers"
    );
    settle().await;
    assert!(
        is_neg(&act.borrow_and_update()),
        "a name that never resolved is Neg on its first error, so dtab alternatives engage"
    );
    assert_eq!(fake.requests(WEB).len(), 1);
    sleep(11 * MS).await;
    let reqs = fake.requests(WEB);
    assert_eq!(
        reqs.len(),
        2,
        "the loop retries after the first backoff step"
    );
    assert!(
        !reqs[1].url.contains("index="),
        "a retry reads afresh: {}",
        reqs[1].url
    );

    fake.reply(WEB, Some("5"), &body(&[("10.0.0.1", 80)]));
    settle().await;
    assert!(act.has_changed().unwrap(), "the answer wakes the lookup");
    let var = var_of(&act);
    assert_eq!(
        addrs(&var.borrow()),
        ["10.0.0.1:80"],
        "Consul answering later binds the name"
    );
    assert_eq!(namer.stats().errors, 1);
}

#[tokio::test(start_paused = true)]
async fn an_unknown_datacenter_is_neg_not_pending() {
    let (namer, fake) = setup(cfg());
    fake.status("/v1/health/service/web", 500, "No path to datacenter");
    let act = namer.lookup(&prefix(), &path("/nowhere/web"));
    settle().await;
    assert!(
        is_neg(&act.borrow()),
        "500 No path to datacenter makes a new name Neg at once (linkerd#1836), not a binding timeout"
    );
    let state = namer.state();
    let w = &state["watches"]["/nowhere/web"];
    assert_eq!(
        w["error"]["message"],
        "consul answered 500: No path to datacenter"
    );
    assert_eq!(w["response"]["status"], 500);
}

#[tokio::test(start_paused = true)]
async fn errors_keep_the_last_good_set_and_retry_without_an_index() {
    let (namer, fake) = setup(cfg());
    fake.reply(WEB, Some("5"), &body(&[("10.0.0.1", 80)]));
    let mut act = namer.lookup(&prefix(), &path("/dc1/web"));
    settle().await;
    act.borrow_and_update();
    let mut var = var_of(&act);
    assert_eq!(addrs(&var.borrow_and_update()), ["10.0.0.1:80"]);
    let reqs = fake.requests(WEB);
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[1].url, "/v1/health/service/web?dc=dc1&index=5&wait=1000ms&passing=true",
        "after an answer the loop blocks on its index"
    );

    fake.status(WEB, 500, "No cluster leader");
    fake.status(WEB, 403, "ACL not found");
    fake.fail(WEB, true);
    fake.fail(WEB, false);
    fake.status(WEB, 500, "No path to datacenter");
    fake.reply(WEB, None, "[]");
    fake.reply(WEB, Some("x"), "[]");
    fake.reply(WEB, Some("6"), "not json");
    sleep(Duration::from_secs(3)).await;
    assert!(
        !act.has_changed().unwrap(),
        "errors never change a resolved lookup"
    );
    assert!(
        !var.has_changed().unwrap(),
        "errors keep the last good addresses (linkerd#1593, #2145, #2200)"
    );
    assert_eq!(namer.stats().errors, 8);
    let reqs = fake.requests(WEB);
    assert_eq!(reqs.len(), 2 + 8, "every error is retried");
    for r in &reqs[2..] {
        assert!(
            !r.url.contains("index="),
            "a retry after an error has no index: {}",
            r.url
        );
    }

    fake.reply(WEB, Some("9"), &body(&[("10.0.0.1", 80), ("10.0.0.2", 80)]));
    settle().await;
    assert_eq!(
        addrs(&var.borrow_and_update()),
        ["10.0.0.1:80", "10.0.0.2:80"],
        "the next answer applies"
    );
    assert_eq!(namer.state()["watches"]["/dc1/web"]["errorStreak"], 0);
}

#[tokio::test(start_paused = true)]
async fn an_empty_answer_is_neg_and_the_name_binds_again() {
    let (namer, fake) = setup(cfg());
    fake.reply(WEB, Some("3"), "[]");
    let mut act = namer.lookup(&prefix(), &path("/dc1/web"));
    settle().await;
    assert!(
        is_neg(&act.borrow_and_update()),
        "200 [] is an authoritative Neg, so a dtab fallback engages"
    );
    assert_eq!(namer.state()["watches"]["/dc1/web"]["addr"]["state"], "neg");

    fake.reply(WEB, Some("4"), &body(&[("10.0.0.1", 80)]));
    settle().await;
    assert!(act.has_changed().unwrap());
    let mut var = var_of(&act);
    act.borrow_and_update();
    assert_eq!(addrs(&var.borrow_and_update()), ["10.0.0.1:80"]);

    fake.reply(WEB, Some("5"), "[]");
    settle().await;
    assert!(
        is_neg(&act.borrow_and_update()),
        "instances all gone: Neg again"
    );
    assert_eq!(
        *var.borrow_and_update(),
        Addr::Neg,
        "holders of the address set see Neg"
    );

    sleep(Duration::from_millis(1100)).await;
    fake.reply(WEB, Some("6"), &body(&[("10.0.0.2", 80)]));
    sleep(Duration::from_millis(1100)).await;
    assert!(act.has_changed().unwrap());
    assert_eq!(
        addrs(&var_of(&act).borrow()),
        ["10.0.0.2:80"],
        "and bound again"
    );
}

#[tokio::test(start_paused = true)]
async fn a_missing_index_is_an_error_that_does_not_end_the_watch() {
    let (namer, fake) = setup(cfg());
    fake.reply(WEB, None, &body(&[("10.0.0.1", 80)]));
    let act = namer.lookup(&prefix(), &path("/dc1/web"));
    settle().await;
    assert!(
        is_neg(&act.borrow()),
        "an answer without an index is an error: Neg for a new name"
    );
    assert_eq!(
        namer.state()["watches"]["/dc1/web"]["error"]["message"],
        "consul did not return an index"
    );
    sleep(11 * MS).await;
    assert_eq!(
        fake.requests(WEB).len(),
        2,
        "the watch goes on (Linkerd 1 ended it here)"
    );

    fake.reply(WEB, Some("7"), &body(&[("10.0.0.1", 80)]));
    settle().await;
    let mut var = var_of(&act);
    assert_eq!(addrs(&var.borrow_and_update()), ["10.0.0.1:80"]);
    assert!(fake.requests(WEB)[2].url.contains("index=7"));

    fake.reply(WEB, None, &body(&[("10.0.0.2", 80)]));
    sleep(11 * MS).await;
    assert!(
        !var.has_changed().unwrap(),
        "a missing index keeps the last good set"
    );
    let reqs = fake.requests(WEB);
    assert_eq!(reqs.len(), 4);
    assert!(
        !reqs[3].url.contains("index="),
        "and retries without an index"
    );
}

// ---------------------------------------------------------------------------
// Pacing: backoff, churn, timeouts, indexes.

#[tokio::test(start_paused = true)]
async fn the_backoff_grows_with_jitter_and_resets_after_a_success() {
    let (namer, fake) = setup(cfg());
    for _ in 0..6 {
        fake.status(WEB, 500, "No cluster leader");
    }
    fake.reply(WEB, Some("5"), &body(&[("10.0.0.1", 80)]));
    fake.status(WEB, 500, "No cluster leader");
    fake.status(WEB, 500, "No cluster leader");
    let _act = namer.lookup(&prefix(), &path("/dc1/web"));
    sleep(Duration::from_secs(2)).await;
    let at: Vec<Instant> = fake.requests(WEB).iter().map(|r| r.at).collect();
    assert_eq!(
        at.len(),
        10,
        "6 errors, 1 answer, 2 errors, then a long poll"
    );
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    let within = |g: Duration, lo: u64, hi: u64| {
        (Duration::from_millis(lo)..=Duration::from_millis(hi + 1)).contains(&g)
    };
    for (i, (lo, hi)) in [
        (10, 10),
        (10, 20),
        (20, 40),
        (40, 80),
        (80, 160),
        (160, 320),
    ]
    .into_iter()
    .enumerate()
    {
        assert!(
            within(gaps[i], lo, hi),
            "retry {} waits {lo}..{hi} ms, waited {:?}",
            i + 1,
            gaps[i]
        );
    }
    assert!(
        gaps[6] < MS,
        "after an answer the next request goes at once: {:?}",
        gaps[6]
    );
    assert!(
        within(gaps[7], 10, 10),
        "a success resets the backoff: {:?}",
        gaps[7]
    );
    assert!(within(gaps[8], 10, 20), "and it grows again: {:?}", gaps[8]);
}

#[tokio::test(start_paused = true)]
async fn a_churning_loop_is_paced_by_a_token_bucket() {
    let (namer, fake) = setup(cfg());
    for i in 1..=14 {
        fake.reply(WEB, Some(&i.to_string()), &body(&[("10.0.0.1", 80)]));
    }
    let start = Instant::now();
    let _act = namer.lookup(&prefix(), &path("/dc1/web"));
    sleep(Duration::from_secs(3)).await;
    let at: Vec<u128> = fake
        .requests(WEB)
        .iter()
        .map(|r| (r.at - start).as_millis())
        .collect();
    assert_eq!(
        at,
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 100, 200, 300, 400],
        "a burst of ten goes at once, then one request per 100 ms; no sleep in the happy case"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stuck_long_poll_is_cut_by_the_request_timeout() {
    let (namer, fake) = setup(cfg());
    fake.reply(WEB, Some("5"), &body(&[("10.0.0.1", 80)]));
    let act = namer.lookup(&prefix(), &path("/dc1/web"));
    settle().await;
    let var = var_of(&act);
    sleep(Duration::from_secs(7)).await;
    let reqs = fake.requests(WEB);
    assert_eq!(reqs.len(), 3, "the stuck poll was abandoned and retried");
    let waited = reqs[2].at - reqs[1].at;
    let timeout = Duration::from_millis(1000 + 62) + crate::client::BLOCKING_SLACK;
    assert!(
        waited >= timeout && waited < timeout + 30 * MS,
        "a blocking request may take wait + wait/16 + slack: {waited:?}"
    );
    assert!(!reqs[2].url.contains("index="));
    assert_eq!(fake.cancelled(), 1, "the timed-out request was dropped");
    assert_eq!(
        addrs(&var.borrow()),
        ["10.0.0.1:80"],
        "a timeout keeps the last good set"
    );
}

#[tokio::test(start_paused = true)]
async fn an_index_going_backwards_starts_over_without_an_index() {
    let (namer, fake) = setup(cfg());
    fake.reply(WEB, Some("100"), &body(&[("10.0.0.1", 80)]));
    let act = namer.lookup(&prefix(), &path("/dc1/web"));
    settle().await;
    fake.reply(WEB, Some("50"), &body(&[("10.0.0.2", 80)]));
    settle().await;
    fake.reply(WEB, Some("50"), &body(&[("10.0.0.2", 80)]));
    sleep(Duration::from_millis(1100)).await;
    let urls: Vec<String> = fake.requests(WEB).into_iter().map(|r| r.url).collect();
    assert!(urls[1].contains("index=100"), "{urls:?}");
    assert!(
        !urls[2].contains("index="),
        "an index lower than the one sent resets to a fresh read: {urls:?}"
    );
    assert!(
        urls[3].contains("index=50"),
        "then blocks on the new index: {urls:?}"
    );
    assert_eq!(
        addrs(&var_of(&act).borrow()),
        ["10.0.0.2:80"],
        "the answer that went backwards is still the current state"
    );
}

#[tokio::test(start_paused = true)]
async fn index_zero_is_blocked_on_as_one() {
    let (namer, fake) = setup(cfg());
    fake.reply(WEB, Some("0"), "[]");
    let _act = namer.lookup(&prefix(), &path("/dc1/web"));
    settle().await;
    assert!(
        fake.requests(WEB)[1].url.contains("index=1&"),
        "never block on index 0"
    );
}

#[tokio::test(start_paused = true)]
async fn unchanged_answers_do_not_wake_anyone() {
    let (namer, fake) = setup(cfg());
    fake.reply(WEB, Some("5"), &body(&[("10.0.0.1", 80), ("10.0.0.2", 80)]));
    let mut act = namer.lookup(&prefix(), &path("/dc1/web"));
    settle().await;
    act.borrow_and_update();
    let mut var = var_of(&act);
    var.borrow_and_update();
    let updates = namer.stats().updates;
    // A wake without change, then the same set in another order at a new
    // index (an unrelated deregistration moved the index).
    fake.reply(WEB, Some("5"), &body(&[("10.0.0.1", 80), ("10.0.0.2", 80)]));
    fake.reply(WEB, Some("8"), &body(&[("10.0.0.2", 80), ("10.0.0.1", 80)]));
    settle().await;
    assert!(
        !var.has_changed().unwrap(),
        "results are compared, not indexes"
    );
    assert!(!act.has_changed().unwrap());
    assert_eq!(namer.stats().updates, updates);
    assert_eq!(namer.state()["watches"]["/dc1/web"]["index"], 8);
}

#[tokio::test(start_paused = true)]
async fn no_answer_within_pending_timeout_is_neg_while_the_request_goes_on() {
    let (namer, fake) = setup(cfg());
    let mut act = namer.lookup(&prefix(), &path("/dc1/web"));
    sleep(990 * MS).await;
    assert!(
        is_pending(&act.borrow_and_update()),
        "Pending until pendingTimeout"
    );
    sleep(20 * MS).await;
    assert!(
        is_neg(&act.borrow_and_update()),
        "no answer after pendingTimeout: Neg, not a binding timeout"
    );
    assert_eq!(fake.in_flight(), 1, "the request is still in flight");
    assert_eq!(fake.requests(WEB).len(), 1);
    fake.reply(WEB, Some("2"), &body(&[("10.0.0.1", 80)]));
    settle().await;
    assert!(
        act.has_changed().unwrap(),
        "a late answer still binds the name"
    );
    assert_eq!(addrs(&var_of(&act).borrow()), ["10.0.0.1:80"]);
}

// ---------------------------------------------------------------------------
// Sharing, bounds and idleness.

#[tokio::test(start_paused = true)]
async fn identical_names_share_one_watch() {
    let (namer, fake) = setup(cfg());
    fake.reply(WEB, Some("5"), &body(&[("10.0.0.1", 80)]));
    let a = namer.lookup(&prefix(), &path("/dc1/web"));
    let b = namer.lookup(&prefix(), &path("/dc1/web"));
    let c = namer.lookup(&prefix(), &path("/dc1/WEB/x/y"));
    settle().await;
    assert!(a.same_channel(&b), "one lookup channel per path");
    assert_eq!(
        namer.stats().opens,
        1,
        "one watch per (dc, tag, service), case-insensitive"
    );
    assert_eq!(
        fake.requests(WEB).len(),
        2,
        "one initial read and one long poll"
    );
    let (sa, sc) = (a.borrow().clone(), c.borrow().clone());
    assert!(
        bound(&sa).addr.same_channel(&bound(&sc).addr),
        "one address set per watch"
    );
    assert_eq!(bound(&sa).id, path("/#/io.l5d.consul/dc1/web"));
    assert_eq!(
        bound(&sc).id,
        path("/#/io.l5d.consul/dc1/web"),
        "the id uses the lower-cased service"
    );
    assert_eq!(bound(&sa).residual, Path::empty());
    assert_eq!(
        bound(&sc).residual,
        path("/x/y"),
        "the rest is the residual"
    );
}

#[tokio::test(start_paused = true)]
async fn tags_are_part_of_the_path_with_include_tag() {
    let (namer, fake) = setup(ConsulConfig {
        include_tag: true,
        ..cfg()
    });
    fake.reply(WEB, Some("5"), &body(&[("10.0.0.1", 80)]));
    let a = namer.lookup(&prefix(), &path("/dc1/Primary/Web/rest"));
    settle().await;
    assert_eq!(
        fake.requests(WEB)[0].url,
        "/v1/health/service/web?dc=dc1&tag=primary&passing=true"
    );
    let s = a.borrow().clone();
    assert_eq!(bound(&s).id, path("/#/io.l5d.consul/dc1/primary/web"));
    assert_eq!(bound(&s).residual, path("/rest"));
    assert!(
        is_neg(&namer.lookup(&prefix(), &path("/dc1/web")).borrow()),
        "with includeTag, <dc>/<service> is too short"
    );
}

#[tokio::test(start_paused = true)]
async fn too_short_and_non_utf8_paths_are_neg_at_once() {
    let (namer, fake) = setup(cfg());
    for p in [
        Path::empty(),
        path("/dc1"),
        Path::from_elems([&b"dc1"[..], &b"\xff"[..]]).unwrap(),
    ] {
        assert!(is_neg(&namer.lookup(&prefix(), &p).borrow()), "{p} is Neg");
    }
    settle().await;
    assert_eq!(namer.stats().watches, 0);
    assert_eq!(
        fake.all_requests(),
        0,
        "no request for a path that names no service"
    );
}

#[tokio::test(start_paused = true)]
async fn the_watch_bound_evicts_unobserved_watches_then_refuses() {
    let (namer, fake) = setup(ConsulConfig {
        max_watches: 2,
        ..cfg()
    });
    let a = namer.lookup(&prefix(), &path("/dc1/a"));
    drop(namer.lookup(&prefix(), &path("/dc1/b")));
    settle().await;
    assert_eq!(namer.stats().watches, 2);

    let c = namer.lookup(&prefix(), &path("/dc1/c"));
    settle().await;
    let s = namer.stats();
    assert_eq!(
        (s.watches, s.opens, s.closes),
        (2, 3, 1),
        "the unobserved watch b made room"
    );
    assert_eq!(fake.cancelled(), 1, "b's long poll was dropped");

    let mut d = namer.lookup(&prefix(), &path("/dc1/d"));
    match &*d.borrow_and_update() {
        State::Failed(m) => assert_eq!(
            m, "consul namer: too many watched names (maxWatches=2)",
            "with every watch observed a new name is refused, saying why"
        ),
        other => panic!("a name over the bound is refused, got {other:?}"),
    }
    settle().await;
    assert!(
        fake.requests("/v1/health/service/d").is_empty(),
        "a refused name sends nothing"
    );
    assert_eq!(namer.stats().refused, 1);
    assert_eq!(namer.state()["refusedLookups"], json!(["/dc1/d"]));

    drop(a);
    tokio::time::timeout(Duration::from_secs(5), d.changed())
        .await
        .expect("a refused lookup is admitted once a watch is unobserved")
        .unwrap();
    assert!(!matches!(*d.borrow(), State::Failed(_)));
    settle().await;
    assert_eq!(fake.requests("/v1/health/service/d").len(), 1);
    let s = namer.stats();
    assert_eq!((s.watches, s.closes), (2, 2), "a was evicted for d");
    drop(c);
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_bogus_names_do_not_open_ten_thousand_polls() {
    let (namer, fake) = setup(ConsulConfig {
        max_watches: 50,
        ..cfg()
    });
    let paths: Vec<Path> = (0..10_000)
        .map(|i| path(&format!("/dc1/bogus-{i}")))
        .collect();
    let held: Vec<Activity> = paths.iter().map(|p| namer.lookup(&prefix(), p)).collect();
    settle().await;
    let s = namer.stats();
    assert_eq!(s.watches, 50);
    assert_eq!(s.refused, 9_950);
    assert_eq!(fake.all_requests(), 50, "at most maxWatches long polls");
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn names_refused_and_let_go_do_not_pile_up_between_sweeps() {
    let (namer, _fake) = setup(ConsulConfig {
        max_watches: 5,
        ..cfg()
    });
    let held: Vec<Activity> = (0..5)
        .map(|i| namer.lookup(&prefix(), &path(&format!("/dc1/real-{i}"))))
        .collect();
    settle().await;
    // A flood of one-off names, each let go at once, with no time passing
    // (no sweep runs).
    for i in 0..20_000 {
        drop(namer.lookup(&prefix(), &path(&format!("/dc1/bogus-{i}"))));
    }
    let kept_held = namer.lookup(&prefix(), &path("/dc1/bogus-held"));
    for i in 20_000..40_000 {
        drop(namer.lookup(&prefix(), &path(&format!("/dc1/bogus-{i}"))));
    }
    assert_eq!(namer.stats().refused, 40_001);
    let refused = namer.state()["refusedLookups"].as_array().unwrap().len();
    assert!(
        refused <= 128,
        "refusals nobody holds are dropped as they come, not kept for the sweep: {refused}"
    );
    assert!(
        namer.state()["refusedLookups"]
            .as_array()
            .unwrap()
            .contains(&json!("/dc1/bogus-held")),
        "a held refusal is kept (it is admitted when there is room)"
    );
    drop((held, kept_held));
}

#[tokio::test(start_paused = true)]
async fn an_unobserved_watch_stops_polling_after_the_idle_ttl() {
    let (namer, fake) = setup(ConsulConfig {
        wait: Duration::from_secs(120),
        ..cfg()
    });
    fake.reply(WEB, Some("5"), &body(&[("10.0.0.1", 80)]));
    let act = namer.lookup(&prefix(), &path("/dc1/web"));
    settle().await;
    let var = var_of(&act);
    drop(act);
    sleep(Duration::from_secs(30)).await;
    assert_eq!(
        (namer.stats().watches, namer.stats().closes),
        (1, 0),
        "a held address set keeps the watch observed"
    );
    assert_eq!(namer.state()["watches"]["/dc1/web"]["observed"], true);
    assert_eq!(fake.in_flight(), 1);

    drop(var);
    sleep(Duration::from_millis(12_600)).await;
    assert_eq!(
        (namer.stats().watches, namer.stats().closes),
        (0, 1),
        "unobserved for watchIdleTtl (+ one sweep): stopped"
    );
    assert_eq!(fake.in_flight(), 0, "the in-flight long poll was aborted");
    assert_eq!(fake.cancelled(), 1);
    let n = fake.requests(WEB).len();
    sleep(Duration::from_secs(600)).await;
    assert_eq!(
        fake.requests(WEB).len(),
        n,
        "doesn't poll consul again after observation is closed"
    );

    // Looking the name up again starts a fresh watch.
    fake.reply(WEB, Some("9"), &body(&[("10.0.0.2", 80)]));
    let act = namer.lookup(&prefix(), &path("/dc1/web"));
    settle().await;
    assert_eq!(addrs(&var_of(&act).borrow()), ["10.0.0.2:80"]);
    assert!(!fake.requests(WEB)[n].url.contains("index="));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_namer_stops_every_poll() {
    let (namer, fake) = setup(cfg());
    let _a = namer.lookup(&prefix(), &path("/dc1/a"));
    let _b = namer.lookup(&prefix(), &path("/dc1/b"));
    settle().await;
    assert_eq!(fake.in_flight(), 2);
    drop(namer);
    settle().await;
    assert_eq!(fake.in_flight(), 0);
    assert_eq!(fake.cancelled(), 2);
}

// ---------------------------------------------------------------------------
// .local, failFast, addresses, token, state.

#[tokio::test(start_paused = true)]
async fn dot_local_is_the_agents_datacenter_fetched_once() {
    let (namer, fake) = setup(cfg());
    fake.fail(AGENT_SELF, true);
    fake.reply(AGENT_SELF, None, AGENT_SELF_DC1);
    fake.reply(WEB, Some("5"), &body(&[("10.0.0.1", 80)]));
    let act = namer.lookup(&prefix(), &path("/.local/web"));
    settle().await;
    assert!(
        is_neg(&act.borrow()),
        "agent/self failing is an error: Neg meanwhile"
    );
    sleep(11 * MS).await;
    let s = act.borrow().clone();
    assert_eq!(
        bound(&s).id,
        path("/#/io.l5d.consul/.local/web"),
        "the id keeps .local"
    );
    assert_eq!(addrs(&bound(&s).addr.borrow()), ["10.0.0.1:80"]);
    assert_eq!(
        fake.requests(WEB)[0].url,
        "/v1/health/service/web?dc=dc1&passing=true",
        ".local asks for the agent's datacenter by name"
    );
    let _other = namer.lookup(&prefix(), &path("/.local/other"));
    settle().await;
    assert!(
        fake.requests("/v1/health/service/other")[0]
            .url
            .contains("dc=dc1")
    );
    assert_eq!(
        fake.requests(AGENT_SELF).len(),
        2,
        "fetched once (after one failure), then reused"
    );
    let state = namer.state();
    assert_eq!(state["agentDatacenter"], "dc1");
    assert_eq!(state["watches"]["/.local/web"]["datacenter"], "dc1");
}

#[tokio::test(start_paused = true)]
async fn dot_local_stays_pending_while_agent_self_is_in_flight() {
    let (namer, fake) = setup(cfg());
    let mut act = namer.lookup(&prefix(), &path("/.local/web"));
    sleep(500 * MS).await;
    assert!(is_pending(&act.borrow_and_update()));
    sleep(600 * MS).await;
    assert!(
        is_neg(&act.borrow_and_update()),
        "pendingTimeout applies to .local too"
    );
    fake.reply(AGENT_SELF, None, AGENT_SELF_DC1);
    fake.reply(WEB, Some("5"), &body(&[("10.0.0.1", 80)]));
    settle().await;
    assert!(act.has_changed().unwrap());
    assert_eq!(addrs(&var_of(&act).borrow()), ["10.0.0.1:80"]);
}

#[tokio::test(start_paused = true)]
async fn fail_fast_holds_every_watch_after_a_connection_failure() {
    let backoff = (Duration::from_millis(100), Duration::from_secs(1));
    let (namer, fake) = setup(ConsulConfig {
        fail_fast: true,
        backoff,
        ..cfg()
    });
    let start = Instant::now();
    fake.fail(WEB, true);
    let _web = namer.lookup(&prefix(), &path("/dc1/web"));
    settle().await;
    let other = namer.lookup(&prefix(), &path("/dc1/other"));
    settle().await;
    assert!(
        is_neg(&other.borrow()),
        "a held name is Neg at once, without trying"
    );
    assert!(
        fake.requests("/v1/health/service/other").is_empty(),
        "nothing is sent while Consul is down"
    );
    assert_eq!(namer.state()["gate"]["consulDown"], true);
    sleep(200 * MS).await;
    let first = &fake.requests("/v1/health/service/other")[0];
    assert!(
        first.at - start >= 100 * MS,
        "the gate reopened after its backoff"
    );
    assert_eq!(
        namer.stats().errors,
        1,
        "held requests are not counted as errors"
    );

    // Without failFast each watch retries on its own.
    let (namer, fake) = setup(ConsulConfig { backoff, ..cfg() });
    fake.fail(WEB, true);
    let _web = namer.lookup(&prefix(), &path("/dc1/web"));
    settle().await;
    let _other = namer.lookup(&prefix(), &path("/dc1/other"));
    settle().await;
    assert_eq!(fake.requests("/v1/health/service/other").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn host_names_resolve_to_all_their_addresses_and_tags_give_weights() {
    let (namer, fake) = setup(ConsulConfig {
        weights: vec![("primary".into(), 5.0), ("big".into(), 2.0)],
        ..cfg()
    });
    fake.dns("backend.internal", &["10.0.0.2", "10.0.0.1"]);
    let entries = json!([
        entry("backend.internal", 80, &["primary", "big"]),
        entry("10.0.0.3", 81, &[]),
        entry("nowhere.invalid", 82, &["primary"]),
        entry("::1", 83, &["big"]),
    ]);
    fake.reply(WEB, Some("5"), &entries.to_string());
    let act = namer.lookup(&prefix(), &path("/dc1/web"));
    settle().await;
    let var = var_of(&act);
    let got: Vec<(String, f64)> = match &*var.borrow() {
        Addr::Bound(eps) => eps.iter().map(|e| (e.addr.to_string(), e.weight)).collect(),
        other => panic!("{other}"),
    };
    assert_eq!(
        got,
        [
            ("10.0.0.1:80".to_owned(), 5.0),
            ("10.0.0.2:80".to_owned(), 5.0),
            ("10.0.0.3:81".to_owned(), 1.0),
            ("[::1]:83".to_owned(), 2.0),
        ],
        "a host name stands for all its IPs; the highest tag weight wins, else 1.0"
    );
    assert_eq!(
        namer.state()["watches"]["/dc1/web"]["unresolved"],
        json!(["nowhere.invalid"])
    );
}

#[tokio::test(start_paused = true)]
async fn host_names_that_all_fail_to_resolve_are_an_error_not_an_empty_service() {
    let (namer, fake) = setup(cfg());
    fake.dns("backend.internal", &["10.0.0.1"]);
    fake.reply(
        WEB,
        Some("5"),
        &json!([entry("backend.internal", 80, &[])]).to_string(),
    );
    let mut act = namer.lookup(&prefix(), &path("/dc1/web"));
    settle().await;
    act.borrow_and_update();
    let mut var = var_of(&act);
    assert_eq!(addrs(&var.borrow_and_update()), ["10.0.0.1:80"]);
    fake.state.lock().unwrap().dns.clear();
    fake.reply(
        WEB,
        Some("6"),
        &json!([entry("backend.internal", 80, &[])]).to_string(),
    );
    settle().await;
    assert!(
        !var.has_changed().unwrap(),
        "a DNS failure keeps the last good set"
    );
    assert!(!act.has_changed().unwrap());
    assert_eq!(
        namer.state()["watches"]["/dc1/web"]["error"]["message"],
        "no instance address could be resolved: backend.internal"
    );
    sleep(11 * MS).await;
    assert!(
        !fake.requests(WEB)[2].url.contains("index="),
        "and is retried like any error"
    );
}

#[tokio::test(start_paused = true)]
async fn the_token_is_a_header_and_never_in_urls_or_state() {
    let (namer, fake) = setup(ConsulConfig {
        token: Some("s3cr3t".into()),
        ..cfg()
    });
    fake.reply(WEB, Some("5"), &body(&[("10.0.0.1", 80)]));
    let _act = namer.lookup(&prefix(), &path("/dc1/web"));
    settle().await;
    for r in fake.requests(WEB) {
        assert_eq!(r.token.as_deref(), Some("s3cr3t"));
        assert!(!r.url.contains("s3cr3t"));
    }
    assert!(!namer.state().to_string().contains("s3cr3t"));
}

#[tokio::test(start_paused = true)]
async fn state_reports_each_watch_and_the_counters() {
    let (namer, fake) = setup(ConsulConfig {
        transfer_metadata: true,
        ..cfg()
    });
    fake.reply(WEB, Some("1057"), &body(&[("10.0.0.1", 80)]));
    fake.status("/v1/health/service/api", 403, "ACL not found");
    let _web = namer.lookup(&prefix(), &path("/dc1/web"));
    let _api = namer.lookup(&prefix(), &path("/dc1/api"));
    settle().await;
    let state = namer.state();
    assert_eq!(state["consul"], "localhost:8500");
    assert_eq!(state["limits"]["maxWatches"], 100);
    assert_eq!(state["stats"]["watches"], 2);
    assert_eq!(state["stats"]["errors"], 1);
    let web = &state["watches"]["/dc1/web"];
    assert_eq!(
        web["addr"],
        json!({"state": "bound", "addresses": ["10.0.0.1:80"], "weights": [1.0]})
    );
    assert_eq!(web["observed"], true);
    assert_eq!(web["index"], 1057);
    assert_eq!(web["updates"], 1);
    assert_eq!(
        web["request"]["url"], "/v1/health/service/web?dc=dc1&index=1057&wait=1000ms&passing=true",
        "the last request is the long poll in flight"
    );
    assert!(web["request"]["atMs"].as_u64().unwrap() > 0);
    assert_eq!(web["response"]["status"], 200);
    assert_eq!(web["response"]["index"], 1057);
    assert_eq!(web["response"]["instances"], 1);
    assert_eq!(web["error"], serde_json::Value::Null);
    assert_eq!(web["metadata"]["service"], json!({"version": "1.2"}));
    assert_eq!(
        web["metadata"]["nodes"]["node-10.0.0.1"],
        json!({"rack": "r1"})
    );
    let api = &state["watches"]["/dc1/api"];
    assert_eq!(api["addr"]["state"], "neg");
    assert_eq!(
        api["error"]["message"],
        "consul answered 403: ACL not found"
    );
    assert_eq!(api["response"]["status"], 403);
    assert_eq!(api["errorStreak"], 1);
}

#[tokio::test(start_paused = true)]
async fn the_interpreter_falls_back_on_neg_and_rebinds_when_consul_answers() {
    let (namer, fake) = setup(cfg());
    fake.reply(WEB, Some("3"), "[]");
    let interp = Interpreter::new(
        vec![(prefix(), Arc::new(namer) as Arc<dyn Namer>)],
        InetResolver::default(),
    );
    let dtab = Dtab::read("/svc => /#/io.l5d.consul/dc1 | /$/inet/127.0.0.1/9999").unwrap();
    let first = interp.bind(&dtab, &path("/svc/web"), 100);
    assert!(
        matches!(first.state, State::Pending),
        "Pending before Consul answers"
    );
    settle().await;
    let binding = interp.bind(&dtab, &path("/svc/web"), 100);
    match &binding.state {
        State::Ok(NameTree::Leaf(b)) => assert_eq!(b.id, path("/$/inet/127.0.0.1/9999")),
        other => panic!("an empty service falls back to the next alternative, got {other:?}"),
    }
    fake.reply(WEB, Some("4"), &body(&[("10.0.0.1", 80)]));
    settle().await;
    assert!(
        binding.is_stale(),
        "the service appearing makes the binding stale"
    );
    let binding = interp.bind(&dtab, &path("/svc/web"), 100);
    match &binding.state {
        State::Ok(NameTree::Leaf(b)) => assert_eq!(b.id, path("/#/io.l5d.consul/dc1/web")),
        other => panic!("binding again finds the service, got {other:?}"),
    }
}

#[test]
fn needs_a_runtime() {
    let err = ConsulNamer::new(ConsulConfig::default()).unwrap_err();
    assert!(err.contains("tokio runtime"), "{err}");
}

#[tokio::test]
async fn invalid_config_is_refused() {
    let err = ConsulNamer::new(ConsulConfig {
        max_watches: 0,
        ..ConsulConfig::default()
    })
    .unwrap_err();
    assert!(err.contains("maxWatches"), "{err}");
}

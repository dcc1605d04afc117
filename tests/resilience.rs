//! End-to-end resilience with the real binary, real backends and a real load
//! generator: requeues and retries, retry budgets, total timeouts, failure
//! accrual.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use strait_test_kit::{Backend, Behavior, Strait, curl};

const BIN: &str = env!("CARGO_BIN_EXE_strait");

struct Mesh {
    _disco: tempfile::TempDir,
    _conf: tempfile::TempDir,
    strait: Strait,
}

fn start(services: &[(&str, &[&Backend])], router_extra: &str) -> Mesh {
    let disco = tempfile::tempdir().unwrap();
    for (name, backends) in services {
        let text: String = backends
            .iter()
            .map(|b| format!("{}\n", b.fs_line()))
            .collect();
        std::fs::write(disco.path().join(name), text).unwrap();
    }
    let conf = tempfile::tempdir().unwrap();
    let path = conf.path().join("linkerd.yaml");
    std::fs::write(
        &path,
        format!(
            "admin:\n  port: 0\nnamers:\n- kind: io.l5d.fs\n  rootDir: {}\nrouters:\n- protocol: http\n  label: out\n  dtab: /svc => /#/io.l5d.fs;\n  servers:\n  - port: 0\n{router_extra}",
            disco.path().display()
        ),
    )
    .unwrap();
    let strait = Strait::start(BIN, &path);
    Mesh {
        _disco: disco,
        _conf: conf,
        strait,
    }
}

impl Mesh {
    fn request(&self, method: &str, host: &str) -> strait_test_kit::Response {
        let mut args = vec!["-X", method, "-H"];
        let h = format!("Host: {host}");
        args.push(&h);
        if method == "POST" {
            args.extend(["--data", "x=1"]);
        }
        let url = format!("http://{}/", self.strait.router());
        args.push(&url);
        curl(&args, &[])
    }

    /// Each endpoint's balancer state (`alive`, `dead`, `probing`) of the
    /// client `id`, from `/client_state.json`.
    fn endpoint_states(&self, id: &str) -> std::collections::HashMap<String, String> {
        let r = curl(
            &[&format!("http://{}/client_state.json", self.strait.admin)],
            &[],
        );
        let j: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        j[id]["endpoints"]
            .as_array()
            .unwrap_or_else(|| panic!("no endpoints for {id} in {j}"))
            .iter()
            .map(|e| {
                let s = |k: &str| e[k].as_str().unwrap().to_owned();
                (s("address"), s("state"))
            })
            .collect()
    }

    fn metric(&self, name: &str) -> i64 {
        let r = curl(
            &[&format!("http://{}/admin/metrics.json", self.strait.admin)],
            &[],
        );
        let j: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        j[name].as_i64().unwrap_or(0)
    }
}

#[test]
fn killing_a_backend_under_load_gives_no_client_errors() {
    let a = Backend::scripted("a", Behavior::Ok);
    let b = Backend::scripted("b", Behavior::Ok);
    let mut c = Backend::scripted("c", Behavior::Ok);
    let mesh = start(
        &[("hello", &[&a, &b, &c])],
        "  service:\n    responseClassifier:\n      kind: io.l5d.http.retryableRead5XX\n",
    );
    let url = format!("http://{}/", mesh.strait.router());
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        c.kill();
        c
    });
    let load = strait_test_kit::wrk(&url, "hello", 4);
    let (total, non2xx, text) = (load.requests, load.non2xx, load.text);
    let _c = killer.join().unwrap();
    assert!(total > 100, "wrk ran a real load: {text}");
    assert_eq!(
        non2xx, 0,
        "no client saw an error while an instance died:\n{text}"
    );
    assert!(
        !text.contains("Socket errors"),
        "no connection errors either:\n{text}"
    );
    assert!(
        mesh.metric("rt/out/client/#/io.l5d.fs/hello/retries/requeues")
            + mesh.metric("rt/out/service/svc/hello/retries/total")
            >= 1,
        "the dead instance's requests went elsewhere (requeued or retried)"
    );
    // The refused connections are logged, but not one line each.
    let log = mesh.strait.proc.stderr();
    let refused = log
        .lines()
        .filter(|l| l.contains("cannot connect to an endpoint"))
        .count();
    let failures = mesh.metric("rt/out/client/#/io.l5d.fs/hello/connect_failures");
    assert!(
        refused >= 1 && (refused as i64) < failures.max(2),
        "{refused} lines for {failures} connect failures:\n{log}"
    );
}

#[test]
fn retryable_read_5xx_retries_gets_but_not_posts() {
    let flaky = Backend::scripted("flaky", Behavior::HalfUnavailable);
    let mesh = start(
        &[("flaky", &[&flaky])],
        "  service:\n    responseClassifier:\n      kind: io.l5d.http.retryableRead5XX\n",
    );
    for _ in 0..10 {
        let r = mesh.request("GET", "flaky");
        assert_eq!(
            r.status, 200,
            "a GET answered 503 is retried and succeeds: {r:?}"
        );
    }
    let before = flaky.count();
    let mut failed = 0;
    for _ in 0..10 {
        let r = mesh.request("POST", "flaky");
        if r.status == 503 {
            failed += 1;
            assert!(
                r.body.starts_with("unavailable"),
                "the backend's own 503 comes back: {r:?}"
            );
        }
    }
    assert_eq!(
        flaky.count() - before,
        10,
        "POSTs are never retried: one attempt each"
    );
    assert!(
        failed >= 4,
        "half the POSTs see the backend's 503 ({failed})"
    );
    assert!(
        mesh.metric("rt/out/service/svc/flaky/retries/total") >= 5,
        "the GET retries are counted"
    );
}

#[test]
fn total_timeout_answers_503_in_time_and_others_keep_serving() {
    let hang = Backend::scripted("hang", Behavior::Hang);
    let ok = Backend::scripted("ok", Behavior::Ok);
    let mesh = start(
        &[("hang", &[&hang]), ("ok", &[&ok])],
        "  service:\n    totalTimeoutMs: 500\n",
    );
    let start_t = Instant::now();
    let r = mesh.request("GET", "hang");
    let took = start_t.elapsed();
    assert_eq!(r.status, 503, "{r:?}");
    assert!(
        took < Duration::from_secs(3),
        "the timeout fires in time ({took:?})"
    );
    let err = r.header("l5d-err").unwrap_or_default().replace('+', " ");
    assert!(err.starts_with("exceeded 500.milliseconds to %2Fsvc%2Fhang while waiting for a response for the request"), "{err}");
    assert_eq!(
        mesh.request("GET", "ok").status,
        200,
        "other services keep serving"
    );
}

#[test]
fn flapping_backend_is_ejected_then_revived() {
    let flap = Backend::scripted("flap", Behavior::FailFirst(3));
    let good = Backend::scripted("good", Behavior::Ok);
    let mesh = start(
        &[("flap", &[&flap, &good])],
        "  client:\n    failureAccrual:\n      kind: io.l5d.consecutiveFailures\n      failures: 3\n      backoff:\n        kind: constant\n        ms: 300\n",
    );
    let removals = "rt/out/client/#/io.l5d.fs/flap/failure_accrual/removals";
    let revivals = "rt/out/client/#/io.l5d.fs/flap/failure_accrual/revivals";
    let deadline = Instant::now() + Duration::from_secs(10);
    while mesh.metric(removals) < 1 && Instant::now() < deadline {
        mesh.request("GET", "flap");
    }
    assert_eq!(
        mesh.metric(removals),
        1,
        "three consecutive failures eject the instance"
    );
    assert_eq!(
        mesh.metric("rt/out/client/#/io.l5d.fs/flap/loadbalancer/available"),
        1,
        "one of two is available"
    );
    std::thread::sleep(Duration::from_millis(400));
    while mesh.metric(revivals) < 1 && Instant::now() < deadline {
        mesh.request("GET", "flap");
    }
    assert_eq!(
        mesh.metric(revivals),
        1,
        "after the backoff a probe succeeds and revives it"
    );
    assert_eq!(
        mesh.metric("rt/out/client/#/io.l5d.fs/flap/loadbalancer/available"),
        2
    );
    // One log line each, naming the client and the endpoint.
    let log = mesh.strait.proc.stderr();
    let flap_addr = flap.fs_line().replace(' ', ":");
    let lines = |what: &str| {
        log.lines()
            .filter(|l| l.contains(what) && l.contains(&flap_addr))
            .count()
    };
    assert_eq!(lines("endpoint ejected"), 1, "{log}");
    assert_eq!(lines("endpoint revived"), 1, "{log}");
}

#[test]
fn retry_storm_is_capped_by_the_budget() {
    let down = Backend::scripted("down", Behavior::Unavailable);
    let mesh = start(
        &[("storm", &[&down])],
        "  client:\n    failureAccrual:\n      kind: none\n  service:\n    responseClassifier:\n      kind: io.l5d.http.retryableRead5XX\n    retries:\n      budget:\n        ttlSecs: 10\n        minRetriesPerSec: 1\n        percentCanRetry: 0.1\n",
    );
    let n = 100;
    for _ in 0..n {
        assert_eq!(mesh.request("GET", "storm").status, 503);
    }
    let seen = down.count();
    // Budget: 1/s * 10 s + 10 % of 100 requests = 20 retries at most.
    assert!(
        seen >= n && seen <= n + 20,
        "the backend sees at most the budgeted extra load: {seen}"
    );
    assert!(
        mesh.metric("rt/out/service/svc/storm/retries/budget_exhausted") >= 75,
        "budget exhaustion is counted"
    );
}

#[test]
fn only_bodies_that_fit_the_replay_buffer_are_retried() {
    let flaky = Backend::scripted("flaky", Behavior::HalfUnavailable);
    let mesh = start(
        &[("flaky", &[&flaky])],
        "  service:\n    responseClassifier:\n      kind: io.l5d.http.retryableAll5XX\n",
    );
    let url = format!("http://{}/", mesh.strait.router());
    let small = "x".repeat(1024);
    for _ in 0..6 {
        let r = curl(&["-H", "Host: flaky", "--data", &small, &url], &[]);
        assert_eq!(
            r.status, 200,
            "a small POST body is kept and the POST retried: {r:?}"
        );
    }
    // 100 KiB is more than the 64 KiB replay buffer: streamed, sent once.
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'y'; 100 * 1024]).unwrap();
    let before = flaky.count();
    let mut failed = 0;
    for _ in 0..6 {
        let r = curl(
            &[
                "-H",
                "Host: flaky",
                "--data-binary",
                &format!("@{}", big.display()),
                &url,
            ],
            &[],
        );
        failed += usize::from(r.status == 503);
    }
    assert_eq!(
        flaky.count() - before,
        6,
        "a body over the replay buffer is never sent twice"
    );
    assert!(
        failed >= 2,
        "so the backend's 503s reach the client ({failed})"
    );
}

/// Requests cut short every way a request can be (the client hangs up
/// while the backend is slow, `totalTimeoutMs`, `requestAttemptTimeoutMs`,
/// the backend dying mid-request) leave no request counted as in flight:
/// every `pending` and `connections` gauge goes back to 0.
#[test]
fn requests_cut_short_leave_no_gauge_in_flight() {
    let slow = Backend::scripted("slow", Behavior::Slow(3_000));
    let total = Backend::scripted("total", Behavior::Hang);
    let attempt = Backend::scripted("attempt", Behavior::Hang);
    let mut dying = Backend::scripted("dying", Behavior::Slow(2_000));
    let mesh = start(
        &[
            ("slow", &[&slow]),
            ("total", &[&total]),
            ("attempt", &[&attempt]),
            ("dying", &[&dying]),
        ],
        "  client:\n    kind: io.l5d.static\n    configs:\n    - prefix: /#/io.l5d.fs/attempt\n      requestAttemptTimeoutMs: 300\n  service:\n    kind: io.l5d.static\n    configs:\n    - prefix: /svc/total\n      totalTimeoutMs: 300\n",
    );
    let url = format!("http://{}/", mesh.strait.router());
    let mut clients = Vec::new();
    for (host, max_time) in [
        ("slow", "0.5"),
        ("total", "5"),
        ("attempt", "5"),
        ("dying", "5"),
    ] {
        for _ in 0..4 {
            let url = url.clone();
            clients.push(std::thread::spawn(move || {
                let h = format!("Host: {host}");
                (host, curl(&["--max-time", max_time, "-H", &h, &url], &[]))
            }));
        }
    }
    std::thread::sleep(Duration::from_millis(800));
    dying.kill();
    for c in clients {
        let (host, r) = c.join().unwrap();
        match host {
            // curl gave up (no status) while the backend was still busy.
            "slow" => assert_eq!(r.status, 0, "{host}: {r:?}"),
            "total" | "attempt" | "dying" => {
                assert!(r.status >= 500, "{host}: the caller gets an error: {r:?}")
            }
            _ => unreachable!(),
        }
    }
    let gauges = || -> Vec<(String, i64)> {
        let r = curl(
            &[&format!("http://{}/admin/metrics.json", mesh.strait.admin)],
            &[],
        );
        let j: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        j.as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.ends_with("/pending") || k.ends_with("/connections"))
            .map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(-1)))
            .collect()
    };
    // The slow backend answers the router 3 s after it was asked; until
    // then the router's attempt to it is rightly in flight.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut now = gauges();
    while now.iter().any(|(_, v)| *v != 0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        now = gauges();
    }
    for name in [
        "rt/out/service/svc/slow/pending",
        "rt/out/service/svc/total/pending",
        "rt/out/client/#/io.l5d.fs/attempt/pending",
        "rt/out/client/#/io.l5d.fs/dying/pending",
    ] {
        assert!(now.iter().any(|(k, _)| k == name), "{name} in {now:?}");
    }
    let stuck: Vec<_> = now.iter().filter(|(_, v)| *v != 0).collect();
    assert!(stuck.is_empty(), "gauges still in flight: {stuck:?}");
}

/// Three instances of `hello` behind a router; `classifier` is the
/// service's `responseClassifier` kind.
fn three(classifier: &str, behavior: Behavior) -> (Mesh, [Backend; 3]) {
    let bs = ["a", "b", "c"].map(|n| Backend::scripted(n, behavior));
    let mesh = start(
        &[("hello", &[&bs[0], &bs[1], &bs[2]])],
        &format!("  service:\n    responseClassifier:\n      kind: {classifier}\n"),
    );
    (mesh, bs)
}

const REQUEUES: &str = "rt/out/client/#/io.l5d.fs/hello/retries/requeues";

/// A deploy restarts every instance (or the router starts first): all three
/// are down for a moment, so failure accrual marks all three dead; they
/// come back and serve; then one crashes under load. No request may fail
/// once they are back: the live instances' successes revive them, and the
/// crashed one's refused connections go, at once, to a live one.
#[test]
fn after_an_outage_one_crash_under_load_fails_no_request() {
    let (mesh, mut bs) = three("io.l5d.http.retryableRead5XX", Behavior::Ok);
    for b in &mut bs {
        b.kill();
    }
    for _ in 0..8 {
        assert_eq!(mesh.request("GET", "hello").status, 502);
    }
    // A refused connection is not ambiguous: all three are marked dead.
    let states = mesh.endpoint_states("/#/io.l5d.fs/hello");
    assert!(states.values().all(|s| s == "dead"), "{states:?}");
    for b in &mut bs {
        b.restart();
    }
    let url = format!("http://{}/", mesh.strait.router());
    let [a, b, mut c] = bs;
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(2000));
        c.kill();
        c
    });
    let load = strait_test_kit::wrk(&url, "hello", 5);
    let c = killer.join().unwrap();
    assert!(load.requests > 100, "wrk ran a real load: {}", load.text);
    assert_eq!(load.non2xx, 0, "no request failed:\n{}", load.text);
    assert_eq!(load.socket_errors, 0, "{}", load.text);
    // The crashed one is shown dead, the two that serve alive.
    let states = mesh.endpoint_states("/#/io.l5d.fs/hello");
    assert_eq!(states[&c.addr.to_string()], "dead", "{states:?}");
    for live in [&a, &b] {
        assert_eq!(states[&live.addr.to_string()], "alive", "{states:?}");
    }
}

/// The same deploy with the default classifier (nonRetryable5XX): a GET in
/// flight on the instance when it is killed may have reached it, so it is
/// not retried; every other request still succeeds. wrk's four connections
/// each have at most one request in flight, so at most four can fail.
#[test]
fn after_an_outage_one_crash_fails_at_most_the_requests_in_flight() {
    let (mesh, mut bs) = three("io.l5d.http.nonRetryable5XX", Behavior::Slow(20));
    for b in &mut bs {
        b.kill();
    }
    for _ in 0..8 {
        assert_eq!(mesh.request("GET", "hello").status, 502);
    }
    for b in &mut bs {
        b.restart();
    }
    let url = format!("http://{}/", mesh.strait.router());
    let [a, b, mut c] = bs;
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(2000));
        let answered = c.count();
        c.kill();
        (c, answered)
    });
    let load = strait_test_kit::wrk(&url, "hello", 5);
    let (_c, answered_by_c) = killer.join().unwrap();
    assert!(answered_by_c > 0, "the killed instance was serving");
    assert!(load.requests > 100, "wrk ran a real load: {}", load.text);
    assert!(
        load.non2xx + load.socket_errors <= 4,
        "only the requests in flight on the killed instance may fail:\n{}",
        load.text
    );
    drop((a, b));
}

/// Every instance stopped for good: requests fail fast with 502, and the
/// requeues stay within the requeue budget (10/s over 10 s plus 20 % of
/// requests, and the two free requeues of the first request).
#[test]
fn all_instances_gone_fail_fast_within_the_requeue_budget() {
    let (mesh, mut bs) = three("io.l5d.http.retryableRead5XX", Behavior::Ok);
    for b in &mut bs {
        b.kill();
    }
    let url = format!("http://{}/", mesh.strait.router());
    let load = strait_test_kit::wrk(&url, "hello", 2);
    assert!(
        load.requests > 50,
        "failing fast, wrk got answers: {}",
        load.text
    );
    assert_eq!(
        load.non2xx, load.requests,
        "every answer is an error: {}",
        load.text
    );
    assert_eq!(mesh.request("GET", "hello").status, 502);
    let requeues = mesh.metric(REQUEUES) as f64;
    // Deposits: wrk's completed requests, the four it had in flight when
    // it stopped, and the curl above. Withdrawals: 10/s over 10 s plus
    // 20 % of deposits; two requeues of the first request were free.
    let deposits = load.requests as f64 + 4.0 + 1.0;
    // Free requeues besides: two for the first request, and a few more
    // each time an endpoint's dead period ends and it is due a probe (it
    // is "not known to be failing" until the probe fails): three each.
    let budget = 100.0 + 0.2 * deposits + 2.0 + 9.0;
    assert!(
        requeues <= budget.ceil(),
        "{requeues} requeues for {deposits} requests: more than the budget's {budget}"
    );
    // Without the budget every request would requeue up to 25 times.
    assert!(requeues < deposits, "{requeues} requeues for {deposits}");
}

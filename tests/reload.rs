//! Hot reload on SIGHUP and graceful shutdown, with the real binary, real
//! signals, real backends and a real load generator.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use strait_test_kit::{Backend, Behavior, Strait, curl, wrk_in_background};

const BIN: &str = env!("CARGO_BIN_EXE_strait");

fn router(label: &str, dtab: &str, extra: &str) -> String {
    format!("- protocol: http\n  label: {label}\n  dtab: {dtab}\n  servers:\n  - port: 0\n{extra}")
}

fn config(disco: &Path, routers: &[String]) -> String {
    format!(
        "admin:\n  port: 0\n  shutdownGraceMs: 3000\nnamers:\n- kind: io.l5d.fs\n  rootDir: {}\nrouters:\n{}",
        disco.display(),
        routers.concat()
    )
}

struct Setup {
    disco: tempfile::TempDir,
    _dir: tempfile::TempDir,
    conf: PathBuf,
    strait: Strait,
}

fn setup(backends: &[(&str, &Backend)], routers: &[String]) -> Setup {
    let disco = tempfile::tempdir().unwrap();
    for (name, b) in backends {
        std::fs::write(disco.path().join(name), format!("{}\n", b.fs_line())).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("linkerd.yaml");
    std::fs::write(&conf, config(disco.path(), routers)).unwrap();
    let strait = Strait::start(BIN, &conf);
    Setup {
        disco,
        _dir: dir,
        conf,
        strait,
    }
}

impl Setup {
    fn rewrite(&self, routers: &[String]) {
        let tmp = self.conf.with_extension("tmp");
        std::fs::write(&tmp, config(self.disco.path(), routers)).unwrap();
        std::fs::rename(&tmp, &self.conf).unwrap();
    }

    fn reload_status(&self) -> serde_json::Value {
        let r = curl(
            &[&format!("http://{}/admin/reload.json", self.strait.admin)],
            &[],
        );
        serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null)
    }

    /// Sends SIGHUP and waits until the reload outcome changes.
    fn hup(&self) -> serde_json::Value {
        let before = self.reload_status()["time"].clone();
        let before_count = self.metric("config/reloads/applied")
            + self.metric("config/reloads/rejected")
            + self.metric("config/reloads/unchanged");
        self.strait.proc.signal("HUP");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let count = self.metric("config/reloads/applied")
                + self.metric("config/reloads/rejected")
                + self.metric("config/reloads/unchanged");
            let status = self.reload_status();
            if count > before_count {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "no reload outcome after SIGHUP (was {before})"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn metric(&self, name: &str) -> i64 {
        let r = curl(
            &[&format!("http://{}/admin/metrics.json", self.strait.admin)],
            &[],
        );
        let j: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
        j[name].as_i64().unwrap_or(0)
    }

    fn get(&self, host: &str) -> strait_test_kit::Response {
        curl(
            &[
                "-H",
                &format!("Host: {host}"),
                &format!("http://{}/", self.strait.router()),
            ],
            &[],
        )
    }
}

#[test]
fn fifty_reloads_under_load_lose_no_request_and_move_traffic_each_time() {
    let a = Backend::scripted("a", Behavior::Ok);
    let b = Backend::scripted("b", Behavior::Ok);
    let to = |svc: &str| {
        vec![router(
            "out",
            &format!("/svc/hello => /#/io.l5d.fs/{svc};"),
            "",
        )]
    };
    let s = setup(&[("a", &a), ("b", &b)], &to("a"));
    let load = wrk_in_background(format!("http://{}/", s.strait.router()), "hello", 6);
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..50 {
        let (want, body) = if i % 2 == 0 {
            ("b", "instance b\n")
        } else {
            ("a", "instance a\n")
        };
        s.rewrite(&to(want));
        let outcome = s.hup();
        assert_eq!(outcome["result"], "applied", "reload {i}: {outcome}");
        let r = s.get("hello");
        assert_eq!(
            r.body, body,
            "reload {i}: traffic moves to the new backend set at once: {r:?}"
        );
    }
    let strait_test_kit::Load {
        requests: total,
        non2xx,
        text,
        ..
    } = load.join().unwrap();
    assert!(total > 100, "wrk ran a real load: {text}");
    assert_eq!(non2xx, 0, "no request failed across 50 reloads:\n{text}");
    assert!(
        !text.contains("Socket errors"),
        "no connection errors:\n{text}"
    );
    assert_eq!(s.metric("config/reloads/applied"), 50);
}

#[test]
fn a_broken_file_is_rejected_whole_and_the_old_routing_keeps_serving() {
    let a = Backend::scripted("a", Behavior::Ok);
    let routers = vec![router("out", "/svc/hello => /#/io.l5d.fs/a;", "")];
    let s = setup(&[("a", &a)], &routers);
    let load = wrk_in_background(format!("http://{}/", s.strait.router()), "hello", 2);
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(
        &s.conf,
        "routers:\n- protocol: http\n  dtab: /svc => ;\n  servers: [{port: 0}]\n  bogus: 1\n",
    )
    .unwrap();
    let outcome = s.hup();
    assert_eq!(outcome["result"], "rejected", "{outcome}");
    let errors: Vec<String> = outcome["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect();
    let file = s.conf.display().to_string();
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with(&format!("{file}:3:")) && e.contains("routers[0].dtab")),
        "errors carry file:line:col and key path, as strait check: {errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("routers[0].bogus: unknown key 'bogus'")),
        "every problem: {errors:?}"
    );
    assert_eq!(
        s.get("hello").body,
        "instance a\n",
        "the old routing keeps serving"
    );
    let strait_test_kit::Load {
        requests: total,
        non2xx,
        text,
        ..
    } = load.join().unwrap();
    assert!(
        total > 10 && non2xx == 0,
        "no failed request during the rejected reload:\n{text}"
    );
    assert!(
        s.strait.proc.stderr().contains("config reload rejected"),
        "the rejection is logged"
    );
}

#[test]
fn a_reload_that_adds_a_router_on_a_new_port_serves_it() {
    let a = Backend::scripted("a", Behavior::Ok);
    let b = Backend::scripted("b", Behavior::Ok);
    let one = router("out", "/svc/hello => /#/io.l5d.fs/a;", "");
    let two = router("extra", "/svc/hello => /#/io.l5d.fs/b;", "");
    let mut s = setup(&[("a", &a), ("b", &b)], std::slice::from_ref(&one));
    s.rewrite(&[one, two]);
    let outcome = s.hup();
    assert_eq!(outcome["result"], "applied", "{outcome}");
    assert!(
        outcome["changes"]
            .as_str()
            .unwrap()
            .contains("routers added: extra"),
        "{outcome}"
    );
    let extra: std::net::SocketAddr = s.strait.proc.wait_line(Duration::from_secs(5), |l| {
        l.strip_prefix("strait: router 'extra' listening on ")
            .and_then(|a| a.trim().parse().ok())
    });
    let r = curl(&["-H", "Host: hello", &format!("http://{extra}/")], &[]);
    assert_eq!(
        r.body, "instance b\n",
        "the new router serves on its new port: {r:?}"
    );
    assert_eq!(
        s.get("hello").body,
        "instance a\n",
        "the old router is untouched"
    );
}

#[test]
fn clients_and_watches_survive_a_reload_of_an_unrelated_router() {
    let bad = Backend::scripted("bad", Behavior::Unavailable);
    let good = Backend::scripted("good", Behavior::Ok);
    let accrual = "  client:\n    failureAccrual:\n      kind: io.l5d.consecutiveFailures\n      failures: 2\n      backoff: {kind: constant, ms: 600000}\n";
    let out = router("out", "/svc => /#/io.l5d.fs;", accrual);
    let s = setup(
        &[("hello", &bad)],
        &[
            out.clone(),
            router("other", "/svc => /$/inet/127.0.0.1/1;", ""),
        ],
    );
    std::fs::write(
        s.disco.path().join("hello"),
        format!("{}\n{}\n", bad.fs_line(), good.fs_line()),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.metric("rt/out/client/#/io.l5d.fs/hello/failure_accrual/removals") < 1 {
        assert!(Instant::now() < deadline, "the bad instance is ejected");
        s.get("hello");
    }
    assert_eq!(
        s.metric("rt/out/client/#/io.l5d.fs/hello/loadbalancer/available"),
        1
    );

    s.rewrite(&[out, router("other", "/svc => /$/inet/127.0.0.1/2;", "")]);
    let outcome = s.hup();
    assert_eq!(outcome["result"], "applied", "{outcome}");
    assert!(
        outcome["changes"]
            .as_str()
            .unwrap()
            .contains("dtabs changed: other"),
        "{outcome}"
    );
    assert_eq!(
        s.metric("rt/out/client/#/io.l5d.fs/hello/loadbalancer/available"),
        1,
        "the client (balancer and accrual state, connection pool) was kept, not rebuilt"
    );
    for _ in 0..10 {
        assert_eq!(
            s.get("hello").body,
            "instance good\n",
            "the ejected instance stays out after the reload"
        );
    }
    // The fs watch is still live: a third instance appears at once.
    let third = Backend::scripted("third", Behavior::Ok);
    std::fs::write(
        s.disco.path().join("hello"),
        format!(
            "{}\n{}\n{}\n",
            bad.fs_line(),
            good.fs_line(),
            third.fs_line()
        ),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.get("hello").body != "instance third\n" {
        assert!(
            Instant::now() < deadline,
            "the namer's watch survived the reload"
        );
    }
}

#[test]
fn sigterm_under_load_finishes_in_flight_requests_refuses_new_ones_and_exits_zero() {
    let slow = Backend::scripted("slow", Behavior::Slow(800));
    let mut s = setup(
        &[("hello", &slow)],
        &[router("out", "/svc => /#/io.l5d.fs;", "")],
    );
    let url = format!("http://{}/", s.strait.router());
    let inflight = {
        let url = url.clone();
        std::thread::spawn(move || curl(&["-H", "Host: hello", &url], &[]))
    };
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    s.strait.proc.signal("TERM");
    std::thread::sleep(Duration::from_millis(100));
    let refused = curl(&["-H", "Host: hello", &url], &[]);
    assert_eq!(
        refused.status, 0,
        "new connections are refused after SIGTERM: {refused:?}"
    );
    let r = inflight.join().unwrap();
    assert_eq!(r.status, 200, "the in-flight request completes: {r:?}");
    assert_eq!(r.body, "instance slow\n");
    let status = s
        .strait
        .proc
        .wait_exit(Duration::from_secs(5))
        .expect("strait exits");
    assert!(status.success(), "exit 0: {status:?}");
    assert!(
        t0.elapsed() < Duration::from_millis(3000 + 1000),
        "within the 3 s grace period"
    );
}

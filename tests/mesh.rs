//! The per-host mesh across real network namespaces: each "host" is a
//! namespace on a private test LAN (`strait_test_kit::netns`), with its own
//! Strait, its own `hello` instance bound to the host's address, and the
//! Consul simulator on the LAN. Clients run inside the namespaces (`curl`,
//! `wrk` through `ip netns exec`), so every request crosses real veths and
//! a real bridge. Needs root and iproute2.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use strait_test_kit::netns::{self, DOCKER_BRIDGE, Lab, LabConsul, Netns};
use strait_test_kit::{Backend, Behavior, Response, Strait, curl_in, write_temp, wrk_in};

const BIN: &str = env!("CARGO_BIN_EXE_strait");

/// Polls `f` every 10 ms until it is true; how long that took, or `None`
/// after `limit`.
fn time_until(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// `GET url` with `Host: host` (and `extra` curl arguments), from `ns`.
fn get(ns: &Netns, url: &str, host: &str, extra: &[&str]) -> Response {
    let host = format!("Host: {host}");
    let mut args = vec!["-H", &host];
    args.extend(extra);
    args.push(url);
    curl_in(&ns.place(), &args, &[])
}

/// A host's `hello` instance: a scripted Python HTTP/1.1 server on the
/// host's address answering `instance <label>`, registered in Consul as
/// `hello` (id `hello-<label>`).
fn hello(lab: &Lab, consul: &LabConsul, label: &str, behavior: Behavior) -> Backend {
    let host = lab.host(label);
    let b = Backend::scripted_in(&host.place(), label, behavior, host.ip());
    consul.register("hello", &format!("hello-{label}"), b.addr);
    b
}

/// A one-router Strait (what main has: the Consul namer straight to the
/// instances, no transformers) listening on each of `servers`.
fn direct_config(consul: SocketAddr, servers: &[SocketAddr]) -> String {
    let servers: String = servers
        .iter()
        .map(|s| format!("  - ip: {}\n    port: {}\n", s.ip(), s.port()))
        .collect();
    format!(
        "admin:
  ip: 127.0.0.1
  port: 9990
namers:
- kind: io.l5d.consul
  host: {}
  port: {}
  useHealthCheck: true
routers:
- protocol: http
  label: outgoing
  dtab: |
    /svc => /#/io.l5d.consul/dc1;
  service:
    responseClassifier:
      kind: io.l5d.http.retryableRead5XX
  servers:
{servers}",
        consul.ip(),
        consul.port()
    )
}

fn start_strait(ns: &Netns, config: &str) -> (tempfile::TempDir, Strait) {
    let (dir, path) = write_temp("linkerd.yaml", config);
    (dir, Strait::start_in(&ns.place(), BIN, &path))
}

const LOCAL_4140: &str = "http://127.0.0.1:4140/";

/// The harness proves itself with what main has: three hosts, Strait on A
/// only, Consul on the LAN; a client on A reaches the instances on B and C
/// across the bridge, C's instance dies under load without one failed
/// request, and dropping the lab leaves no namespace and no process.
#[test]
fn a_client_on_host_a_reaches_b_and_c_and_c_dying_fails_no_request() {
    let lab = Lab::new(&["a", "b", "c"]);
    let (a, b) = (lab.host("a"), lab.host("b"));
    let consul = lab.start_consul();
    let hb = hello(&lab, &consul, "b", Behavior::Ok);
    let mut hc = hello(&lab, &consul, "c", Behavior::Ok);
    let local: SocketAddr = "127.0.0.1:4140".parse().unwrap();
    let (_dir, strait) = start_strait(a, &direct_config(consul.addr, &[local]));
    assert_eq!(strait.router(), local, "a namespace has its own port space");

    // Both remote instances answer, across the bridge.
    let mut seen = std::collections::BTreeSet::new();
    let took = time_until(Duration::from_secs(10), || {
        let r = get(a, LOCAL_4140, "hello", &[]);
        assert_eq!(r.status, 200, "{r:?}\n{}", strait.proc.stderr());
        seen.insert(r.body);
        seen.len() == 2
    });
    assert!(took.is_some(), "hello on B and C both answer: {seen:?}");
    assert!(
        hb.count() > 0 && hc.count() > 0,
        "each instance saw requests"
    );
    // A's own loopback is not B's: B has no router on 4140.
    assert_eq!(get(b, LOCAL_4140, "hello", &[]).status, 0);

    // C's instance dies under load from A: no client sees it.
    let place = a.place();
    let load = std::thread::spawn(move || wrk_in(&place, LOCAL_4140, "hello", 3));
    let before = hc.count();
    let took = time_until(Duration::from_secs(10), || hc.count() > before + 20);
    assert!(took.is_some(), "the load reaches C before it dies");
    hc.kill();
    let load = load.join().unwrap();
    assert!(load.requests > 100, "wrk ran a real load: {}", load.text);
    assert_eq!(
        (load.non2xx, load.socket_errors),
        (0, 0),
        "no request failed while C's instance died:\n{}",
        load.text
    );
    for _ in 0..10 {
        let r = get(a, LOCAL_4140, "hello", &[]);
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "instance b\n"),
            "traffic stays on B"
        );
    }

    // Dropping the lab kills what runs in it and deletes its namespaces,
    // even while the test still holds the handles (as when a test panics).
    let names = lab.namespaces();
    assert_eq!(names.len(), 4, "the LAN and three hosts: {names:?}");
    assert!(names.iter().all(|n| netns::exists(n)));
    let pids = [strait.proc.pid(), hb.pid(), consul.proc.pid()];
    drop(lab);
    for n in &names {
        assert!(!netns::exists(n), "namespace {n} is deleted");
    }
    for pid in pids {
        assert!(!netns::alive(pid), "process {pid} is killed");
    }
}

/// A container on host A (its own namespace behind a docker0-like bridge)
/// reaches A's router on the bridge address; its `l5d-dtab` is ignored
/// (dtabOverride is off by default), and A's admin on A's loopback is out
/// of its reach.
#[test]
fn a_container_reaches_its_hosts_router_on_the_bridge_and_its_dtab_is_ignored() {
    let mut lab = Lab::new(&["a", "b"]);
    lab.add_container("a", "web");
    let (a, web) = (lab.host("a"), lab.container("web"));
    let consul = lab.start_consul();
    let _hb = hello(&lab, &consul, "b", Behavior::Ok);
    let bridge = SocketAddr::from((DOCKER_BRIDGE, 4140));
    let servers = ["127.0.0.1:4140".parse().unwrap(), bridge];
    let (_dir, strait) = start_strait(a, &direct_config(consul.addr, &servers));
    assert_eq!(strait.routers.len(), 2, "{:?}", strait.routers);

    let url = format!("http://{bridge}/");
    let r = get(web, &url, "hello", &[]);
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "instance b\n"),
        "{r:?}\n{}",
        strait.proc.stderr()
    );
    for dtab in [
        "/svc/hello => /$/inet/127.0.0.1/9990",
        "/svc/hello => /$/inet/10.0.0.1/80",
    ] {
        let r = get(web, &url, "hello", &["-H", &format!("l5d-dtab: {dtab}")]);
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "instance b\n"),
            "a container's l5d-dtab has no effect: {r:?}"
        );
    }
    let admin = get(
        web,
        &format!("http://{DOCKER_BRIDGE}:9990/admin/ping"),
        "x",
        &[],
    );
    assert_eq!(admin.status, 0, "the admin is on A's loopback: {admin:?}");
    let admin = get(a, "http://127.0.0.1:9990/admin/ping", "x", &[]);
    assert_eq!(admin.status, 200, "A itself reaches it: {admin:?}");
}

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

// ---------------------------------------------------------------------------
// The final shape (the per-host mesh issue's "Done when"): every host runs
// deploy/mesh/linkerd.yaml (outgoing 4140 with io.l5d.port 4141, incoming
// 4141 with io.l5d.localhost, the dtab from Consul KV). These tests need
// the `interpreter` key (io.l5d.consul.interpreter), `transformers`,
// W3C trace propagation with trace ids in access logs, `clientNetworks`,
// and KV in the Consul simulator.
// ---------------------------------------------------------------------------

/// The KV key both routers' interpreters read (pathPrefix + namespace).
const DTAB_KEY: &str = "/v1/kv/namerd/dtabs/default";
const DTAB_ALL: &str = "/svc => /#/io.l5d.consul/.local;";

/// One host of the mesh: its Strait (None once stopped), its `hello`, and
/// the directory holding its config and access logs.
struct Node {
    label: &'static str,
    strait: Option<Strait>,
    hello: Backend,
    dir: tempfile::TempDir,
}

/// Three hosts a, b, c, each with a container (`wa`, `wb`, `wc`, so each
/// has the docker bridge the config binds), Consul on the LAN, every hello
/// registered as `hello` and as `hello-<label>`, and the KV dtab
/// [`DTAB_ALL`]. Fields drop in order: processes first, the lab last.
struct Mesh {
    nodes: Vec<Node>,
    consul: LabConsul,
    lab: Lab,
}

/// A CA issuing the hosts' certificates.
struct Ca {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let pem = p.self_signed(&key).unwrap().pem();
        Ca {
            issuer: rcgen::Issuer::new(p, key),
            pem,
        }
    }

    /// `dir/ca.pem` (`trust`'s certificate), and `dir/host.pem` and
    /// `dir/host.key`: a certificate of this CA for `*.mesh.internal`, for
    /// server and client use, as deploy/mesh/linkerd.yaml expects.
    fn issue_host(&self, trust: &Ca, dir: &std::path::Path, host: &str) {
        use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["*.mesh.internal".to_owned()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, host);
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        std::fs::write(dir.join("host.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("host.key"), key.serialize_pem()).unwrap();
        std::fs::write(dir.join("ca.pem"), &trust.pem).unwrap();
    }
}

impl Mesh {
    fn start() -> Mesh {
        Mesh::start_with_rogue(None)
    }

    /// [`Mesh::start`], with host `rogue`'s certificate issued by another
    /// CA than the fleet's (its trust is still the fleet's CA).
    fn start_with_rogue(rogue: Option<&str>) -> Mesh {
        let (fleet_ca, other_ca) = (Ca::new("fleet"), Ca::new("elsewhere"));
        let mut lab = Lab::new(&["a", "b", "c"]);
        for h in ["a", "b", "c"] {
            lab.add_container(h, &format!("w{h}"));
        }
        let consul = lab.start_consul();
        consul.put(DTAB_KEY, DTAB_ALL);
        let nodes = ["a", "b", "c"]
            .into_iter()
            .map(|label| {
                let host = lab.host(label);
                let hello = hello(&lab, &consul, label, Behavior::Echo);
                consul.register(
                    &format!("hello-{label}"),
                    &format!("only-{label}"),
                    hello.addr,
                );
                let dir = tempfile::tempdir().unwrap();
                let issuer = if rogue == Some(label) {
                    &other_ca
                } else {
                    &fleet_ca
                };
                issuer.issue_host(&fleet_ca, dir.path(), label);
                let path = dir.path().join("linkerd.yaml");
                std::fs::write(&path, mesh_config(&lab, consul.addr, dir.path())).unwrap();
                let strait = Strait::start_in(&host.place(), BIN, &path);
                Node {
                    label,
                    strait: Some(strait),
                    hello,
                    dir,
                }
            })
            .collect();
        Mesh { nodes, consul, lab }
    }

    fn node(&self, label: &str) -> &Node {
        self.nodes.iter().find(|n| n.label == label).unwrap()
    }

    fn host(&self, label: &str) -> &Netns {
        self.lab.host(label)
    }

    /// `GET /` with `Host: hello` from `label`'s own processes, through its
    /// outgoing router.
    fn get(&self, label: &str, extra: &[&str]) -> Response {
        get(self.host(label), LOCAL_4140, "hello", extra)
    }

    /// Host `label`'s admin metrics.
    fn metrics(&self, label: &str) -> serde_json::Value {
        let r = get(
            self.host(label),
            "http://127.0.0.1:9990/admin/metrics.json",
            "admin",
            &[],
        );
        assert_eq!(r.status, 200, "{r:?}");
        serde_json::from_str(&r.body).unwrap()
    }

    /// The sum of `rt/<router>/server/*/requests` on host `label`.
    fn server_requests(&self, label: &str, router: &str) -> f64 {
        let prefix = format!("rt/{router}/server/");
        self.metrics(label)
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix) && k.ends_with("/requests"))
            .filter_map(|(_, v)| v.as_f64())
            .sum()
    }

    /// Host `label`'s access log of `router`, once it has a line containing
    /// `needle` (lines are written by a task: polled, bounded).
    fn access_log(&self, label: &str, router: &str, needle: &str) -> String {
        let path = self.node(label).dir.path().join(format!("{router}.log"));
        let mut text = String::new();
        let found = time_until(Duration::from_secs(5), || {
            text = std::fs::read_to_string(&path).unwrap_or_default();
            text.contains(needle)
        });
        assert!(
            found.is_some(),
            "{label}'s {router} log has {needle:?}:\n{text}"
        );
        text
    }

    /// [`until_answers`] from host `label`.
    fn until_answers(&self, label: &str, want: &str, n: usize) -> Option<Duration> {
        until_answers(self.host(label), want, n)
    }
}

/// Polls `ns`'s client (through its outgoing router) until `n` answers in
/// a row come from instance `want`; how long until the first one came.
fn until_answers(ns: &Netns, want: &str, n: usize) -> Option<Duration> {
    let start = Instant::now();
    let (mut first, mut run) = (None, 0);
    let done = time_until(Duration::from_secs(10), || {
        let r = get(ns, LOCAL_4140, "hello", &[]);
        if r.status == 200 && r.body.starts_with(&format!("instance {want}\n")) {
            first.get_or_insert(start.elapsed());
            run += 1;
        } else {
            run = 0;
        }
        run >= n
    });
    done.and(first)
}

/// deploy/mesh/linkerd.yaml for one host of `lab`: only the Consul address
/// (the simulator on the LAN), the fleet network, and the log and
/// certificate paths (all in `logs`) change.
fn mesh_config(lab: &Lab, consul: SocketAddr, logs: &std::path::Path) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/mesh/linkerd.yaml"
    ))
    .unwrap();
    assert_eq!(
        consul.port(),
        8500,
        "the simulator listens where an agent would"
    );
    let text = text
        .replace("host: 127.0.0.1\n", &format!("host: {}\n", consul.ip()))
        .replace("- 10.0.0.0/24\n", &format!("- {}\n", lab.fleet()))
        .replace("/var/log/strait/", &format!("{}/", logs.display()))
        .replace("/etc/strait/tls/", &format!("{}/", logs.display()));
    assert!(
        !text.contains("/var/log")
            && !text.contains("/etc/strait")
            && text.matches(&*consul.ip().to_string()).count() == 3,
        "{text}"
    );
    text
}

/// A W3C `traceparent` as a client would start it: (header, trace id,
/// parent id), random (std's hasher keys are random per process and per
/// `RandomState`).
fn traceparent() -> (String, String, String) {
    use std::hash::{BuildHasher, Hasher};
    let random = || {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    let (trace, span) = (
        format!("{:016x}{:016x}", random(), random()),
        format!("{:016x}", random()),
    );
    (format!("00-{trace}-{span}-01"), trace, span)
}

/// A client on A reaches the instances on B and C through their incoming
/// routers (their metrics and access logs show A's requests), and a
/// `traceparent` it sends arrives, continued, at the remote instance, with
/// the same trace id in both hosts' access logs.
#[test]
fn final_two_hops_reach_b_and_c_through_4141_and_carry_the_trace() {
    let mesh = Mesh::start();
    let mut seen = std::collections::BTreeSet::new();
    let took = time_until(Duration::from_secs(10), || {
        let r = mesh.get("a", &[]);
        assert_eq!(r.status, 200, "{r:?}");
        seen.insert(r.body.lines().next().unwrap().to_owned());
        seen.contains("instance b") && seen.contains("instance c")
    });
    assert!(took.is_some(), "A's client reaches B and C: {seen:?}");
    let a_ip = mesh.host("a").addr().to_string();
    for remote in ["b", "c"] {
        assert!(
            mesh.server_requests(remote, "incoming") > 0.0,
            "{remote}'s incoming router served A's requests"
        );
        // A's Strait is the incoming router's client.
        mesh.access_log(remote, "incoming", &format!("\"remote\":\"{a_ip}:"));
    }

    // The trace: retried until the balancer picks a remote host.
    let (header, trace, parent) = traceparent();
    let mut answer = None;
    let took = time_until(Duration::from_secs(10), || {
        let r = mesh.get("a", &["-H", &format!("traceparent: {header}")]);
        assert_eq!(r.status, 200, "{r:?}");
        let remote = ["b", "c"]
            .into_iter()
            .find(|h| r.body.starts_with(&format!("instance {h}\n")));
        answer = remote.map(|h| (h, r.body));
        answer.is_some()
    });
    assert!(took.is_some(), "a traced request reached B or C");
    let (remote, body) = answer.unwrap();
    let arrived = body
        .lines()
        .find_map(|l| l.strip_prefix("traceparent: "))
        .unwrap_or_else(|| panic!("no traceparent reached the backend:\n{body}"));
    let parts: Vec<&str> = arrived.split('-').collect();
    assert_eq!(parts.len(), 4, "{arrived}");
    assert_eq!(parts[1], trace, "the same trace arrives: {arrived}");
    assert_ne!(parts[2], parent, "continued: a new parent id ({arrived})");
    mesh.access_log("a", "outgoing", &trace);
    mesh.access_log(remote, "incoming", &trace);
}

/// Changing the dtab in Consul KV moves traffic on every host within a
/// second, with no reload.
#[test]
fn final_a_dtab_change_in_consul_kv_moves_traffic_on_every_host_within_a_second() {
    let mesh = Mesh::start();
    let to = |h: &str| format!("{DTAB_ALL} /svc/hello => /#/io.l5d.consul/.local/hello-{h};");
    mesh.consul.put(DTAB_KEY, &to("b"));
    for h in ["a", "b", "c"] {
        assert!(
            mesh.until_answers(h, "b", 5).is_some(),
            "{h}'s client follows the KV dtab to B"
        );
    }

    mesh.consul.put(DTAB_KEY, &to("c"));
    let hosts: Vec<(&str, Netns)> = ["a", "b", "c"]
        .into_iter()
        .map(|h| (h, mesh.host(h).clone()))
        .collect();
    let took: Vec<(&str, Option<Duration>)> = std::thread::scope(|s| {
        let polls: Vec<_> = hosts
            .iter()
            .map(|(h, ns)| (*h, s.spawn(move || until_answers(ns, "c", 5))))
            .collect();
        polls
            .into_iter()
            .map(|(h, p)| (h, p.join().unwrap()))
            .collect()
    });
    for (h, t) in &took {
        let t = t.unwrap_or_else(|| panic!("{h}'s client never moved to C: {took:?}"));
        assert!(
            t < Duration::from_secs(1),
            "{h} moved to C {t:?} after the KV write (limit 1 s): {took:?}"
        );
    }
    for h in ["a", "b", "c"] {
        let applied = mesh.metrics(h)["config/reloads/applied"]
            .as_f64()
            .unwrap_or(0.0);
        assert_eq!(applied, 0.0, "{h} moved without a reload");
    }
}

/// Stopping B's Strait: A's traffic to hello continues on C with zero
/// failed GETs (B's incoming port refuses, A's balancer goes elsewhere).
#[test]
fn final_stopping_b_strait_keeps_traffic_on_c_with_zero_failed_gets() {
    let mut mesh = Mesh::start();
    for h in ["b", "c"] {
        let hello = &mesh.node(h).hello;
        mesh.consul
            .register("hello-bc", &format!("bc-{h}"), hello.addr);
    }
    mesh.consul.put(
        DTAB_KEY,
        &format!("{DTAB_ALL} /svc/hello => /#/io.l5d.consul/.local/hello-bc;"),
    );
    let mut seen = std::collections::BTreeSet::new();
    let took = time_until(Duration::from_secs(10), || {
        let r = mesh.get("a", &[]);
        if r.status == 200 {
            seen.insert(r.body.lines().next().unwrap().to_owned());
        }
        seen.contains("instance b") && seen.contains("instance c")
    });
    assert!(took.is_some(), "A reaches B and C: {seen:?}");

    let place = mesh.host("a").place();
    let load = std::thread::spawn(move || wrk_in(&place, LOCAL_4140, "hello", 4));
    let before = mesh.node("b").hello.count();
    let took = time_until(Duration::from_secs(10), || {
        mesh.node("b").hello.count() > before + 20
    });
    assert!(took.is_some(), "the load reaches B before its Strait stops");
    let node_b = mesh.nodes.iter_mut().find(|n| n.label == "b").unwrap();
    let mut strait_b = node_b.strait.take().unwrap();
    strait_b.proc.signal("TERM");
    assert!(
        strait_b.proc.wait_exit(Duration::from_secs(15)).is_some(),
        "B's Strait stops"
    );
    let load = load.join().unwrap();
    assert!(load.requests > 100, "wrk ran a real load: {}", load.text);
    assert_eq!(
        (load.non2xx, load.socket_errors),
        (0, 0),
        "no GET failed while B's Strait stopped:\n{}",
        load.text
    );
    for _ in 0..10 {
        let r = mesh.get("a", &[]);
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.body.starts_with("instance c\n"), "traffic is on C: {r:?}");
    }
}

/// A process in a namespace outside the allowed networks (on the same LAN,
/// outside the fleet's /24) is refused by the incoming router, which the
/// fleet's hosts reach.
#[test]
fn final_a_host_outside_the_allowed_networks_is_refused() {
    let mut mesh = Mesh::start();
    let outsider_ip = mesh.lab.lan_ip(1, 9);
    mesh.lab.add_host("x", outsider_ip);
    // As A's outgoing router does: mutual TLS with A's certificate.
    let b = "https://hello.mesh.internal:4141/";
    let resolve = format!("hello.mesh.internal:4141:{}", mesh.host("b").addr());
    let a_dir = mesh.node("a").dir.path();
    let file = |f: &str| a_dir.join(f).display().to_string();
    let (ca, cert, key) = (file("ca.pem"), file("host.pem"), file("host.key"));
    let tls = [
        "--resolve",
        &resolve,
        "--cacert",
        &ca,
        "--cert",
        &cert,
        "--key",
        &key,
    ];
    let r = get(mesh.host("a"), b, "hello", &tls);
    assert_eq!(r.status, 200, "a fleet host is allowed: {r:?}");
    let r = get(mesh.lab.host("x"), b, "hello", &tls);
    assert!(
        r.status == 0 || r.status == 403,
        "{outsider_ip} is outside clientNetworks ({}): refused, not served: {r:?}",
        mesh.lab.fleet()
    );
    assert!(!r.body.contains("instance"), "{r:?}");
}

/// A container on host A reaches the router on the bridge address (two
/// hops to wherever hello lives), and its `l5d-dtab` has no effect under the
/// default security model.
#[test]
fn final_a_container_reaches_the_router_on_the_bridge_and_its_l5d_dtab_has_no_effect() {
    let mesh = Mesh::start();
    let web = mesh.lab.container("wa");
    let url = format!("http://{DOCKER_BRIDGE}:4140/");
    let r = get(web, &url, "hello", &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.starts_with("instance "), "{r:?}");
    for dtab in [
        "/svc/hello => /$/inet/127.0.0.1/9990",
        "/svc/hello => /#/io.l5d.consul/.local/hello-nope",
    ] {
        let r = get(web, &url, "hello", &["-H", &format!("l5d-dtab: {dtab}")]);
        assert_eq!(r.status, 200, "a container's l5d-dtab has no effect: {r:?}");
        assert!(r.body.starts_with("instance "), "{r:?}");
        assert!(
            !r.body.contains("l5d-dtab"),
            "the header is stripped, not forwarded: {r:?}"
        );
    }
    // The incoming port is for the fleet, not for containers.
    let r = get(web, &format!("http://{DOCKER_BRIDGE}:4141/"), "hello", &[]);
    assert!(r.status == 0 || r.status == 403, "{r:?}");
}

/// Hosts speak mutual TLS with the fleet's CA: host C, whose certificate
/// comes from another CA, is refused by A's outgoing router (counted as an
/// unknown CA in A's client metrics), and A's requests all go to B without
/// one failing.
#[test]
fn final_a_host_with_a_certificate_from_another_ca_is_refused_and_counted() {
    let mesh = Mesh::start_with_rogue(Some("c"));
    let mut answers = std::collections::BTreeMap::new();
    for _ in 0..30 {
        let r = mesh.get("a", &[]);
        assert_eq!(r.status, 200, "no request fails: {r:?}");
        *answers
            .entry(r.body.lines().next().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    assert!(
        answers.keys().all(|k| k != "instance c"),
        "C's incoming router is never trusted: {answers:?}"
    );
    assert!(answers.contains_key("instance b"), "{answers:?}");
    let m = mesh.metrics("a");
    let failures: f64 = m
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| {
            k.starts_with("rt/outgoing/client/")
                && k.ends_with("/tls/handshake_failures/unknown_ca")
        })
        .map(|(_, v)| v.as_f64().unwrap())
        .sum();
    assert!(failures >= 1.0, "counted on A as an unknown CA: {m}");
    assert_eq!(
        mesh.server_requests("c", "incoming"),
        0.0,
        "C served nothing over the refused connections"
    );
}

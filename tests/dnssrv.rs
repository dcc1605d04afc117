//! End-to-end: the real `strait` binary routing real `curl` requests to real
//! Python backends, discovered through DNS SRV records served by a real
//! `dnsmasq` (Debian's `dnsmasq-base`; `scripts/test` installs it) on a
//! loopback port, as a Consul agent's DNS interface would serve them.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use strait_test_kit::{Backend, Proc, Response, Strait, curl};

const BIN: &str = env!("CARGO_BIN_EXE_strait");

/// The namer's refresh interval in these tests.
const REFRESH_SECS: u64 = 1;

/// The `dnsmasq` binary: on `PATH`, or in the sbin directories that a
/// non-root `PATH` often lacks.
fn dnsmasq_bin() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into(), "/usr/local/sbin".into()])
        .map(|d| d.join("dnsmasq"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "dnsmasq is not installed: these tests need a real DNS server. Install Debian's \
                 dnsmasq-base (`apt-get install -y --no-install-recommends dnsmasq-base`; \
                 scripts/test installs it)"
            )
        })
}

/// A loopback port free for both UDP and TCP (dnsmasq takes both), chosen
/// below the kernel's ephemeral range (32768 and up): a port the kernel
/// handed out and got back could be handed to another socket (a resolver's
/// query, a test's client) before dnsmasq binds it, or while a test
/// restarts dnsmasq on it.
fn free_udp_port() -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        ^ u64::from(std::process::id()) << 20;
    for _ in 0..1000 {
        let n = seed
            .wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(17);
        let port = 20_000 + (n % 12_000) as u16;
        let free = UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
        if free {
            return port;
        }
    }
    panic!("no free loopback port for dnsmasq in 20000..32000")
}

/// One SRV record: `(name, target, port)`.
type Srv<'a> = (&'a str, &'a str, u16);

/// A running `dnsmasq` serving SRV and A records on `127.0.0.1:port`,
/// authoritative for `consul.` (unknown names there are NXDOMAIN). Killed
/// on drop.
struct Dns {
    port: u16,
    proc: Proc,
}

impl Dns {
    /// Starts dnsmasq with `srvs`, and `hosts` as `(name, ip)` A records,
    /// and waits until it answers.
    fn start(port: u16, srvs: &[Srv<'_>], hosts: &[(&str, &str)]) -> Dns {
        let mut cmd = Command::new(dnsmasq_bin());
        cmd.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--pid-file=",
            "--log-facility=-",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--user=root",
            "--local=/consul/",
        ])
        .arg(format!("--port={port}"));
        for (name, target, p) in srvs {
            cmd.arg(format!("--srv-host={name},{target},{p},1,1"));
        }
        for (name, ip) in hosts {
            cmd.arg(format!("--host-record={name},{ip}"));
        }
        let mut dns = Dns {
            port,
            proc: Proc::spawn(&mut cmd),
        };
        dns.wait_ready();
        dns
    }

    /// Waits until dnsmasq answers a query.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let query = srv_query(0x5a5a, "ready.consul");
        let mut buf = [0u8; 512];
        loop {
            if let Some(status) = self.proc.wait_exit(Duration::ZERO) {
                panic!(
                    "dnsmasq exited with {status} on port {}:\n{}",
                    self.port,
                    self.proc.stderr()
                );
            }
            let _ = sock.send_to(&query, ("127.0.0.1", self.port));
            if let Ok((n, _)) = sock.recv_from(&mut buf)
                && n >= 2
                && buf[..2] == query[..2]
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "dnsmasq did not answer on port {}:\n{}",
                self.port,
                self.proc.stderr()
            );
        }
    }
}

/// A DNS query for the SRV records of `name`.
fn srv_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::new();
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(u8::try_from(label.len()).unwrap());
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 33, 0, 1]);
    q
}

/// A config with the dnssrv namer asking `127.0.0.1:<port>`.
fn config(dns_port: u16, dtab: &str) -> String {
    format!(
        "admin:\n  ip: 127.0.0.1\n  port: 0\n\
         namers:\n\
         - kind: io.l5d.dnssrv\n  experimental: true\n  refreshIntervalSeconds: {REFRESH_SECS}\n\
         \x20 dnsHosts: [\"127.0.0.1:{dns_port}\"]\n\
         routers:\n- protocol: http\n  label: outgoing\n  dtab: |\n    {dtab}\n\
         \x20 servers:\n  - ip: 127.0.0.1\n    port: 0\n"
    )
}

struct Mesh {
    _conf_dir: tempfile::TempDir,
    strait: Strait,
}

impl Mesh {
    fn start(dns_port: u16, dtab: &str) -> Mesh {
        let conf_dir = tempfile::tempdir().unwrap();
        let conf = conf_dir.path().join("linkerd.yaml");
        std::fs::write(&conf, config(dns_port, dtab)).unwrap();
        let strait = Strait::start(BIN, &conf);
        Mesh {
            _conf_dir: conf_dir,
            strait,
        }
    }

    fn get(&self, host: &str) -> Response {
        curl(
            &[
                "-H",
                &format!("Host: {host}"),
                &format!("http://{}/", self.strait.router()),
            ],
            &[],
        )
    }

    fn admin_json(&self, path: &str) -> serde_json::Value {
        let r = curl(&[&format!("http://{}{path}", self.strait.admin)], &[]);
        assert_eq!(r.status, 200, "{path}: {r:?}");
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.body))
    }

    /// Which instances answer `host` over `n` requests.
    fn spread(&self, host: &str, n: usize) -> HashMap<String, usize> {
        let mut seen = HashMap::new();
        for _ in 0..n {
            let r = self.get(host);
            assert_eq!(r.status, 200, "Host: {host}: {r:?}");
            *seen.entry(r.body).or_default() += 1;
        }
        seen
    }
}

/// Two instances of `web.service.consul` on two Consul-style nodes, both
/// on 127.0.0.1.
fn web_records<'a>(a: &'a Backend, b: &'a Backend) -> (Vec<Srv<'a>>, Vec<(&'a str, &'a str)>) {
    (
        vec![
            ("web.service.consul", "node1.node.dc1.consul", a.addr.port()),
            ("web.service.consul", "node2.node.dc1.consul", b.addr.port()),
        ],
        vec![
            ("node1.node.dc1.consul", "127.0.0.1"),
            ("node2.node.dc1.consul", "127.0.0.1"),
        ],
    )
}

#[test]
fn srv_records_route_requests_to_every_instance() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let port = free_udp_port();
    let (srvs, hosts) = web_records(&a, &b);
    let _dns = Dns::start(port, &srvs, &hosts);
    let mesh = Mesh::start(port, "/svc => /#/io.l5d.dnssrv;");

    let seen = mesh.spread("web.service.consul", 30);
    assert!(
        seen.get("instance a\n").is_some_and(|n| *n > 0)
            && seen.get("instance b\n").is_some_and(|n| *n > 0),
        "both SRV instances take traffic: {seen:?}"
    );

    let state = mesh.admin_json("/namer_state/io.l5d.dnssrv.json");
    let web = &state["names"]["web.service.consul"];
    assert_eq!(web["state"], "bound", "{state}");
    let mut want = vec![a.addr.to_string(), b.addr.to_string()];
    want.sort();
    assert_eq!(
        web["addresses"],
        serde_json::json!(want),
        "the namer state lists the SRV targets' addresses: {state}"
    );
    assert!(web["lastRefresh"]["atMs"].as_u64().unwrap() > 0, "{state}");
    assert!(web["lastError"].is_null(), "{state}");
    assert_eq!(
        state["dnsHosts"],
        serde_json::json!([format!("127.0.0.1:{port}")]),
        "{state}"
    );

    let cs = mesh.admin_json("/client_state.json");
    assert_eq!(
        cs["/#/io.l5d.dnssrv/web.service.consul"]["state"], "bound",
        "the client is named by the SRV name: {cs}"
    );
}

#[test]
fn a_name_that_does_not_exist_falls_back_through_the_dtab() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let spare = Backend::start("spare");
    let port = free_udp_port();
    let (srvs, hosts) = web_records(&a, &b);
    let _dns = Dns::start(port, &srvs, &hosts);
    let spare_dst = format!("/$/inet/127.0.0.1/{}", spare.addr.port());
    let dtab = format!(
        "/svc => /#/io.l5d.dnssrv; \
         /svc/hello => /#/io.l5d.dnssrv/web.service.consul; \
         /svc/gone => /#/io.l5d.dnssrv/nope.service.consul | {spare_dst}; \
         /svc/first => /#/io.l5d.dnssrv/web.service.consul | {spare_dst};"
    );
    let mesh = Mesh::start(port, &dtab);

    let hello = mesh.spread("hello", 10);
    assert!(
        hello
            .keys()
            .all(|k| k == "instance a\n" || k == "instance b\n"),
        "/svc/hello is bound to the SRV name: {hello:?}"
    );
    let gone = mesh.spread("gone", 5);
    assert_eq!(
        gone.keys().collect::<Vec<_>>(),
        ["instance spare\n"],
        "an NXDOMAIN name is Neg, so the `|` alternative serves"
    );
    let first = mesh.spread("first", 10);
    assert!(
        !first.contains_key("instance spare\n"),
        "a name that resolves wins over its alternative: {first:?}"
    );
    let r = mesh.get("nope.service.consul");
    assert_eq!(
        r.status, 502,
        "an NXDOMAIN name with no alternative cannot be routed: {r:?}"
    );

    let state = mesh.admin_json("/namer_state/io.l5d.dnssrv.json");
    let nope = &state["names"]["nope.service.consul"];
    assert_eq!(nope["state"], "neg", "{state}");
    assert_eq!(nope["reason"], "NXDOMAIN", "{state}");
}

/// Waits until `host` is answered by the instance `want` alone, for up to
/// `limit`; how long that took.
fn wait_for_instance(mesh: &Mesh, host: &str, want: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let r = mesh.get(host);
        if r.status == 200 && r.body == format!("instance {want}\n") {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "instance {want} never answered {host}; last answer {r:?}\n{}",
            mesh.strait.proc.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_changed_record_set_is_picked_up_within_the_refresh_interval() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let port = free_udp_port();
    let nodes = [
        ("node1.node.dc1.consul", "127.0.0.1"),
        ("node2.node.dc1.consul", "127.0.0.1"),
    ];
    let dns = Dns::start(
        port,
        &[("web.service.consul", "node1.node.dc1.consul", a.addr.port())],
        &nodes,
    );
    let mesh = Mesh::start(port, "/svc => /#/io.l5d.dnssrv;");
    assert_eq!(
        mesh.spread("web.service.consul", 5)
            .keys()
            .collect::<Vec<_>>(),
        ["instance a\n"]
    );

    // dnsmasq reads --srv-host at start only: restart it with the new set.
    drop(dns);
    let _dns = Dns::start(
        port,
        &[("web.service.consul", "node2.node.dc1.consul", b.addr.port())],
        &nodes,
    );
    let took = wait_for_instance(&mesh, "web.service.consul", "b", Duration::from_secs(20));
    // One interval, plus one query attempt lost if a poll fell into the
    // restart, plus slack.
    assert!(
        took <= Duration::from_secs(REFRESH_SECS + 3),
        "a changed record set is used within about refreshIntervalSeconds ({REFRESH_SECS} s); \
         took {took:?}"
    );
    assert_eq!(
        mesh.spread("web.service.consul", 5)
            .keys()
            .collect::<Vec<_>>(),
        ["instance b\n"],
        "the old instance is gone from the set"
    );
}

#[test]
fn while_dns_is_down_the_last_answer_keeps_serving() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let port = free_udp_port();
    let dns = Dns::start(
        port,
        &[("web.service.consul", "node1.node.dc1.consul", a.addr.port())],
        &[("node1.node.dc1.consul", "127.0.0.1")],
    );
    let mesh = Mesh::start(port, "/svc => /#/io.l5d.dnssrv;");
    assert_eq!(mesh.get("web.service.consul").body, "instance a\n");

    drop(dns);
    let deadline = Instant::now() + Duration::from_secs(30);
    let state = loop {
        let state = mesh.admin_json("/namer_state/io.l5d.dnssrv.json");
        if state["names"]["web.service.consul"]["failing"] == true {
            break state;
        }
        assert!(
            Instant::now() < deadline,
            "the failing lookups never showed in the namer state: {state}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let web = &state["names"]["web.service.consul"];
    assert_eq!(web["state"], "bound", "{state}");
    assert!(web["lastError"]["error"].is_string(), "{state}");
    assert_eq!(
        mesh.spread("web.service.consul", 5)
            .keys()
            .collect::<Vec<_>>(),
        ["instance a\n"],
        "while DNS does not answer, the last good set keeps serving"
    );

    // DNS comes back, with another instance.
    let _dns = Dns::start(
        port,
        &[("web.service.consul", "node2.node.dc1.consul", b.addr.port())],
        &[("node2.node.dc1.consul", "127.0.0.1")],
    );
    wait_for_instance(&mesh, "web.service.consul", "b", Duration::from_secs(30));
    let state = mesh.admin_json("/namer_state/io.l5d.dnssrv.json");
    assert_eq!(
        state["names"]["web.service.consul"]["failing"], false,
        "{state}"
    );
}

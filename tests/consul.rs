//! `io.l5d.consul` end to end: the real `strait` binary, the test kit's
//! Consul simulator as a separate process (no real Consul can be installed
//! on these machines; the simulator obeys the rules of Consul's documented
//! HTTP API), real Python backends, real curl and wrk,
//! real signals.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use strait_test_kit::{
    Backend, Behavior, KeepAlive, Proc, Strait, consul_sim_bin, curl, rss_kib, write_temp,
    wrk_in_background,
};

const BIN: &str = env!("CARGO_BIN_EXE_strait");

/// A Consul simulator process.
struct Sim {
    proc: Proc,
    addr: SocketAddr,
}

impl Sim {
    fn start(args: &[&str]) -> Sim {
        Sim::spawn("0", args)
    }

    fn start_on(port: u16) -> Sim {
        Sim::spawn(&port.to_string(), &[])
    }

    fn spawn(port: &str, args: &[&str]) -> Sim {
        let mut proc = Proc::spawn(
            Command::new(consul_sim_bin())
                .args(["--port", port, "--datacenter", "dc1"])
                .args(args),
        );
        let addr = proc.wait_line(Duration::from_secs(20), |l| {
            l.strip_prefix("consul-sim: listening on ")
                .and_then(|a| a.trim().parse().ok())
        });
        Sim { proc, addr }
    }

    fn put(&self, path: &str, body: &str) {
        let r = curl(
            &[
                "-X",
                "PUT",
                "--data-binary",
                body,
                &format!("http://{}{path}", self.addr),
            ],
            &[],
        );
        assert_eq!(r.status, 200, "PUT {path}: {r:?}");
    }

    /// Registers `backend` as an instance of `service` with a TTL check in
    /// `status`.
    fn register(&self, service: &str, backend: &Backend, tags: &[&str], status: &str) -> String {
        let id = format!("{service}-{}", backend.addr.port());
        let tags: Vec<String> = tags.iter().map(|t| format!("\"{t}\"")).collect();
        self.put(
            "/v1/agent/service/register",
            &format!(
                r#"{{"Name":"{service}","ID":"{id}","Address":"127.0.0.1","Port":{},"Tags":[{}],
                    "Check":{{"CheckID":"check-{id}","TTL":"600s","Status":"{status}"}}}}"#,
                backend.addr.port(),
                tags.join(",")
            ),
        );
        id
    }

    fn deregister(&self, id: &str) {
        self.put(&format!("/v1/agent/service/deregister/{id}"), "");
    }
}

/// deploy/strait/linkerd.yaml (the compose file's config), pointed at the
/// simulator and at ephemeral loopback ports; nothing else changes.
fn deploy_config(sim: SocketAddr) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/strait/linkerd.yaml"
    ))
    .unwrap();
    let text = text
        .replace("host: consul\n", &format!("host: {}\n", sim.ip()))
        .replace("port: 8500\n", &format!("port: {}\n", sim.port()))
        .replace("port: 9990\n", "port: 0\n")
        .replace("port: 4140\n", "port: 0\n")
        .replace("ip: 0.0.0.0\n", "ip: 127.0.0.1\n");
    assert!(!text.contains("4140") && !text.contains("8500"), "{text}");
    text
}

fn start_strait(config: &str) -> (tempfile::TempDir, Strait) {
    let (dir, path) = write_temp("linkerd.yaml", config);
    (dir, Strait::start(BIN, &path))
}

fn get(strait: &Strait, host: &str) -> strait_test_kit::Response {
    curl(
        &[
            "-H",
            &format!("Host: {host}"),
            &format!("http://{}/", strait.router()),
        ],
        &[],
    )
}

fn admin_json(strait: &Strait, path: &str) -> serde_json::Value {
    let r = curl(&[&format!("http://{}{path}", strait.admin)], &[]);
    assert_eq!(r.status, 200, "{path}: {r:?}");
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.body))
}

fn metric(strait: &Strait, name: &str) -> Option<f64> {
    admin_json(strait, "/admin/metrics.json")
        .get(name)
        .and_then(|v| v.as_f64())
}

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

#[test]
fn the_walkthrough_reaches_hello_through_http_proxy() {
    let sim = Sim::start(&[]);
    let hello = Backend::start("hello-1");
    sim.register("hello", &hello, &["web"], "passing");
    let (_dir, strait) = start_strait(&deploy_config(sim.addr));

    // The README's step: the container's http_proxy points at Strait.
    let proxy = format!("http://{}", strait.router());
    let r = curl(&["http://hello/"], &[("http_proxy", &proxy)]);
    assert_eq!(r.status, 200, "{r:?}\n{}", strait.proc.stderr());
    assert_eq!(r.body, "instance hello-1\n");
    assert_eq!(
        r.header("l5d-dst-client"),
        None,
        "l5d-* context is for the backend, not the caller"
    );

    // The namer's own account of the watch.
    let state = admin_json(&strait, "/namer_state/io.l5d.consul.json");
    let watch = &state["watches"]["/dc1/hello"];
    assert_eq!(watch["addr"]["state"], "bound", "{state}");
    assert_eq!(
        watch["addr"]["addresses"][0],
        hello.addr.to_string(),
        "{state}"
    );
    assert!(
        watch["request"]["url"]
            .as_str()
            .unwrap()
            .starts_with("/v1/health/service/hello?dc=dc1"),
        "useHealthCheck asks the health endpoint: {state}"
    );

    // An unknown service is a clear 502 naming the service and the dtab.
    let r = get(&strait, "nope");
    assert_eq!(r.status, 502, "{r:?}");
    assert!(r.body.contains("/svc/nope"), "{}", r.body);
}

#[test]
fn strait_starts_without_consul_and_resolves_once_it_answers() {
    // A port nothing listens on yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_dir, strait) = start_strait(&deploy_config(SocketAddr::from(([127, 0, 0, 1], port))));
    let start = Instant::now();
    let r = get(&strait, "hello");
    assert_eq!(r.status, 502, "{r:?}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "a refused Consul makes the name negative quickly, not after bindingTimeoutMs"
    );

    let sim = Sim::start_on(port);
    let a = Backend::start("a");
    sim.register("hello", &a, &[], "passing");
    let took = time_until(Duration::from_secs(10), || {
        get(&strait, "hello").status == 200
    });
    assert!(took.is_some(), "hello resolves once Consul answers");
}

#[test]
fn local_datacenter_tags_and_the_dtab_fallback() {
    let sim = Sim::start(&[]);
    let canary = Backend::start("canary");
    let stable = Backend::start("stable");
    let fallback = Backend::start("fallback");
    sim.register("web", &canary, &["canary"], "passing");
    sim.register("web", &stable, &["stable"], "passing");
    let config = format!(
        "admin: {{ip: 127.0.0.1, port: 0}}
namers:
- kind: io.l5d.consul
  host: 127.0.0.1
  port: {port}
  includeTag: true
routers:
- protocol: http
  dtab: |
    /svc => /#/io.l5d.consul/.local/stable;
    /svc/canary-web => /#/io.l5d.consul/.local/CANARY/Web;
    /svc/other => /#/io.l5d.consul/.local/stable/other | /$/inet/127.0.0.1/{fb};
  servers:
  - port: 0
",
        port = sim.addr.port(),
        fb = fallback.addr.port()
    );
    let (_dir, strait) = start_strait(&config);

    // `.local` is the agent's datacenter; the tag picks the instance.
    for _ in 0..4 {
        assert_eq!(get(&strait, "web").body, "instance stable\n");
    }
    // Service and tag are matched case-insensitively.
    assert_eq!(get(&strait, "canary-web").body, "instance canary\n");
    // A service Consul does not know is Neg: the `|` alternative serves.
    let r = get(&strait, "other");
    assert_eq!(r.body, "instance fallback\n", "{r:?}");
}

#[test]
fn instances_come_and_go_under_load_within_a_second() {
    let sim = Sim::start(&[]);
    let a = Backend::scripted("a", Behavior::Ok);
    let b = Backend::scripted("b", Behavior::Ok);
    let c = Backend::scripted("c", Behavior::Ok);
    sim.register("hello", &a, &[], "passing");
    let b_id = sim.register("hello", &b, &[], "passing");
    let (_dir, strait) = start_strait(&deploy_config(sim.addr));
    assert_eq!(get(&strait, "hello").status, 200);

    let load = wrk_in_background(format!("http://{}/", strait.router()), "hello", 6);
    std::thread::sleep(Duration::from_millis(1000));

    // A third instance registered under load takes traffic within 1 s.
    let c_id = sim.register("hello", &c, &[], "passing");
    let took = time_until(Duration::from_secs(5), || c.count() > 0);
    assert!(
        took.is_some_and(|t| t < Duration::from_secs(1)),
        "the new instance got traffic after {took:?}"
    );

    // A deregistered instance stops getting traffic within 1 s.
    sim.deregister(&b_id);
    std::thread::sleep(Duration::from_millis(1000));
    let before = b.count();
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        b.count(),
        before,
        "b still gets traffic 1 s after deregistration"
    );

    // A failing health check takes an instance out (useHealthCheck: true).
    sim.put(&format!("/v1/agent/check/fail/check-{c_id}"), "");
    std::thread::sleep(Duration::from_millis(1000));
    let before = c.count();
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        c.count(),
        before,
        "c still gets traffic with a critical check"
    );

    let load = load.join().unwrap();
    assert!(load.requests > 500, "a real load ran: {}", load.text);
    assert_eq!(
        (load.non2xx, load.socket_errors),
        (0, 0),
        "no request failed while instances came and went: {}",
        load.text
    );
    assert!(a.count() > 0);
}

#[test]
fn consul_down_for_twenty_seconds_fails_no_resolved_request() {
    let sim = Sim::start(&[]);
    let a = Backend::scripted("a", Behavior::Ok);
    let b = Backend::scripted("b", Behavior::Ok);
    sim.register("hello", &a, &[], "passing");
    let (_dir, strait) = start_strait(&deploy_config(sim.addr));
    assert_eq!(get(&strait, "hello").body, "instance a\n");

    let load = wrk_in_background(format!("http://{}/", strait.router()), "hello", 22);
    std::thread::sleep(Duration::from_millis(500));
    // Consul stops answering (SIGSTOP: connections hang, nothing refuses).
    sim.proc.signal("STOP");
    std::thread::sleep(Duration::from_secs(2));

    // A name never resolved before gets a clear 502 quickly, not a hang.
    let start = Instant::now();
    let r = get(&strait, "newsvc");
    let took = start.elapsed();
    assert_eq!(r.status, 502, "{r:?}");
    assert!(r.body.contains("/svc/newsvc"), "{}", r.body);
    assert!(took < Duration::from_secs(3), "the 502 took {took:?}");

    std::thread::sleep(Duration::from_secs(18));
    sim.proc.signal("CONT");
    let load = load.join().unwrap();
    assert!(load.requests > 1000, "a real load ran: {}", load.text);
    assert_eq!(
        (load.non2xx, load.socket_errors),
        (0, 0),
        "every request to the resolved name succeeded during the outage: {}",
        load.text
    );

    // Consul is back: changes flow again, and the new name resolves.
    sim.register("hello", &b, &[], "passing");
    let took = time_until(Duration::from_secs(10), || {
        get(&strait, "hello").body == "instance b\n"
    });
    assert!(took.is_some(), "updates resumed after the outage");
    sim.register("newsvc", &a, &[], "passing");
    let took = time_until(Duration::from_secs(10), || {
        get(&strait, "newsvc").status == 200
    });
    assert!(took.is_some(), "the new name resolves once Consul answers");
}

#[test]
fn ten_thousand_bogus_hosts_stay_within_the_watch_bound() {
    let sim = Sim::start(&[]);
    let a = Backend::start("a");
    sim.register("hello", &a, &[], "passing");
    let config = deploy_config(sim.addr).replace(
        "  useHealthCheck: true\n",
        "  useHealthCheck: true\n  maxWatches: 50\n",
    );
    let (_dir, strait) = start_strait(&config);
    assert_eq!(get(&strait, "hello").status, 200);

    let mut conn = KeepAlive::connect(strait.router());
    let mut rss_at_2000 = 0;
    let mut max_watches = 0.0f64;
    for i in 0..10_000 {
        let status = conn.get(&format!("bogus-{i}"));
        assert_eq!(status, 502, "bogus-{i}");
        if i % 500 == 499 {
            let w = metric(&strait, "namer/#/io.l5d.consul/watches").unwrap();
            max_watches = max_watches.max(w);
        }
        if i == 1999 {
            rss_at_2000 = rss_kib(strait.proc.pid());
        }
    }
    assert!(max_watches <= 50.0, "watches went up to {max_watches}");
    assert_eq!(
        metric(&strait, "namer/#/io.l5d.consul/max_watches"),
        Some(50.0)
    );
    let rss = rss_kib(strait.proc.pid());
    assert!(
        rss < rss_at_2000 + 4 * 1024,
        "memory grew from {rss_at_2000} KiB after 2,000 names to {rss} KiB after 10,000"
    );
    // The real name still works, and its watch was never evicted for junk.
    assert_eq!(get(&strait, "hello").body, "instance a\n");
}

#[test]
fn tokens_are_sent_and_acl_answers_are_handled() {
    // ACLs on, anonymous denied; `good` reads everything, `other` only `db`.
    let sim = Sim::start(&[
        "--acl-default",
        "deny",
        "--acl-token",
        "good:*:write",
        "--acl-token",
        "other:db",
    ]);
    let a = Backend::start("a");
    let r = curl(
        &[
            "-X",
            "PUT",
            "-H",
            "X-Consul-Token: good",
            "--data-binary",
            &format!(
                r#"{{"Name":"hello","ID":"hello-a","Address":"127.0.0.1","Port":{},"Check":{{"TTL":"600s","Status":"passing"}}}}"#,
                a.addr.port()
            ),
            &format!("http://{}/v1/agent/service/register", sim.addr),
        ],
        &[],
    );
    assert_eq!(r.status, 200, "{r:?}");

    let with_token = |token: &str| {
        deploy_config(sim.addr).replace(
            "  useHealthCheck: true\n",
            &format!("  useHealthCheck: true\n  token: {token}\n"),
        )
    };

    // The right token: the name resolves, and it never shows in the admin.
    let (_d1, good) = start_strait(&with_token("good"));
    assert_eq!(get(&good, "hello").body, "instance a\n");
    let state = curl(
        &[&format!(
            "http://{}/namer_state/io.l5d.consul.json",
            good.admin
        )],
        &[],
    );
    assert!(
        !state.body.contains("good"),
        "the token leaks: {}",
        state.body
    );

    // A token Consul does not know: 403 "ACL not found", a clear 502, and
    // the error in the namer's state.
    let (_d2, unknown) = start_strait(&with_token("stale-token"));
    let r = get(&unknown, "hello");
    assert_eq!(r.status, 502, "{r:?}");
    assert!(r.body.contains("/svc/hello"), "{}", r.body);
    let state = admin_json(&unknown, "/namer_state/io.l5d.consul.json");
    let error = state["watches"]["/dc1/hello"]["error"]["message"].to_string();
    assert!(
        error.contains("403") && error.contains("ACL not found"),
        "{state}"
    );

    // A token without read on the service: Consul filters the answer to [].
    let (_d3, filtered) = start_strait(&with_token("other"));
    assert_eq!(get(&filtered, "hello").status, 502);
    let state = admin_json(&filtered, "/namer_state/io.l5d.consul.json");
    assert_eq!(
        state["watches"]["/dc1/hello"]["addr"]["state"], "neg",
        "{state}"
    );

    // Every request carried the token as a header, never in the URL.
    let log = curl(&[&format!("http://{}/_sim/requests", sim.addr)], &[]);
    assert!(log.body.contains("stale-token"), "{}", log.body);
    assert!(!log.body.contains("token="), "{}", log.body);
}

/// A real HTTP server that answers with the `Host` it was sent and a
/// redirect to that host.
const HOST_ECHO: &str = r#"
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        # Every Host it was sent: a second one would show.
        host = ",".join(self.headers.get_all("Host", []))
        body = host.encode()
        self.send_response(302)
        self.send_header("Location", "http://%s/next" % host)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
print("port %d" % srv.server_address[1], flush=True)
srv.serve_forever()
"#;

#[test]
fn set_host_rewrites_host_and_points_redirects_back() {
    let sim = Sim::start(&[]);
    let mut echo = Proc::spawn(Command::new("python3").args(["-u", "-c", HOST_ECHO]));
    let port: u16 = echo.wait_line(Duration::from_secs(20), |l| {
        l.strip_prefix("port ").and_then(|p| p.trim().parse().ok())
    });
    sim.put(
        "/v1/agent/service/register",
        &format!(
            r#"{{"Name":"web","ID":"web-1","Address":"127.0.0.1","Port":{port},"Tags":["canary"]}}"#
        ),
    );
    let config = |include_tag: bool, dtab: &str| {
        format!(
            "admin: {{ip: 127.0.0.1, port: 0}}
namers:
- kind: io.l5d.consul
  host: 127.0.0.1
  port: {}
  includeTag: {include_tag}
  setHost: true
routers:
- protocol: http
  dtab: {dtab}
  servers:
  - port: 0
",
            sim.addr.port()
        )
    };

    // The backend sees `<service>.service.<dc>.<domain>`, the domain being
    // the agent's; the caller's redirect names the host it asked for.
    let (_d1, strait) = start_strait(&config(false, "/svc => /#/io.l5d.consul/.local;"));
    let r = get(&strait, "web");
    assert_eq!(r.status, 302, "{r:?}");
    assert_eq!(r.body, "web.service.dc1.consul");
    assert_eq!(r.header("location"), Some("http://web/next"));

    // With a tag: `<tag>.<service>.service.<dc>.<domain>`.
    let (_d2, tagged) = start_strait(&config(true, "/svc => /#/io.l5d.consul/dc1/canary;"));
    let r = get(&tagged, "web");
    assert_eq!(r.body, "canary.web.service.dc1.consul", "{r:?}");
    assert_eq!(r.header("location"), Some("http://web/next"));
}

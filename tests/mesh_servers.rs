//! End-to-end: serving containers without opening the router (README,
//! "Security model"). A server bound off `127.0.0.1` serves only its
//! `clientNetworks`, and the per-request protections hold there too; and
//! in a linker-to-linker mesh, an incoming router that finds no local
//! instance answers `l5d-retryable: true`, so the outgoing one retries on
//! another host.
//!
//! Only loopback exists here: `127.0.0.2` stands for a bridge address, and
//! curl's `--interface 127.0.0.x` picks the source a container would have.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use strait_test_kit::{Backend, Response, Strait, curl};

const BIN: &str = env!("CARGO_BIN_EXE_strait");

fn metrics(strait: &Strait) -> serde_json::Value {
    let r = curl(
        &[&format!("http://{}/admin/metrics.json", strait.admin)],
        &[],
    );
    serde_json::from_str(&r.body).unwrap()
}

fn metric(strait: &Strait, name: &str) -> i64 {
    metrics(strait)[name].as_i64().unwrap_or(0)
}

/// A GET for `/svc/<host>` to `addr`, from source address `from`, with
/// `extra` curl arguments.
fn get(addr: SocketAddr, host: &str, from: &str, extra: &[&str]) -> Response {
    let host = format!("Host: {host}");
    let url = format!("http://{addr}/");
    let mut args = vec!["--interface", from, "-H", &host];
    args.extend_from_slice(extra);
    args.push(&url);
    curl(&args, &[])
}

/// The `http` router's listener on `ip`.
fn listener(strait: &Strait, ip: &str) -> SocketAddr {
    strait
        .routers
        .iter()
        .map(|(_, a)| *a)
        .find(|a| a.ip().to_string() == ip)
        .unwrap_or_else(|| panic!("no listener on {ip}: {:?}", strait.routers))
}

/// One Strait: an `io.l5d.fs` namer over `disco`, `router` text spliced
/// into the router (its `servers` list included), started.
fn start(dir: &Path, disco: &Path, label: &str, router: &str) -> Strait {
    let conf = dir.join(format!("{label}.yaml"));
    std::fs::write(
        &conf,
        format!(
            "admin:\n  ip: 127.0.0.1\n  port: 0\n\
             namers:\n- kind: io.l5d.fs\n  rootDir: {}\n\
             routers:\n- protocol: http\n  label: {label}\n  dtab: /svc => /#/io.l5d.fs;\n{router}",
            disco.display()
        ),
    )
    .unwrap();
    Strait::start(BIN, &conf)
}

#[test]
fn a_server_off_127_0_0_1_serves_only_its_client_networks() {
    let backend = Backend::start("web");
    let dir = tempfile::tempdir().unwrap();
    let disco = dir.path().join("disco");
    std::fs::create_dir(&disco).unwrap();
    std::fs::write(disco.join("web"), format!("{}\n", backend.fs_line())).unwrap();
    // One router, two addresses: the "bridge" one serves 127.0.0.3 only
    // and honours dtab overrides; the loopback one keeps the default.
    let mut strait = start(
        dir.path(),
        &disco,
        "http",
        "  servers:\n\
         \x20 - ip: 127.0.0.2\n    port: 0\n    clientNetworks: [127.0.0.3]\n    dtabOverride: true\n\
         \x20 - ip: 127.0.0.1\n    port: 0\n",
    );
    let bridge = listener(&strait, "127.0.0.2");
    let lo = listener(&strait, "127.0.0.1");

    // A client in the listed network is served.
    let r = get(bridge, "web", "127.0.0.3", &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, "instance web\n");

    // One outside it is closed before anything is read: no response.
    for _ in 0..3 {
        let r = get(bridge, "web", "127.0.0.1", &[]);
        assert_eq!(r.status, 0, "refused without an answer: {r:?}");
        assert!(
            r.curl_stderr.contains("Empty reply") || r.curl_stderr.contains("reset"),
            "{r:?}"
        );
    }
    let scope = format!("rt/http/server/127.0.0.2/{}", bridge.port());
    assert_eq!(metric(&strait, &format!("{scope}/connections_refused")), 3);
    assert_eq!(
        metric(&strait, &format!("{scope}/requests")),
        1,
        "refused connections never reach a request"
    );
    // Logged once, not once per connection.
    std::thread::sleep(Duration::from_millis(200));
    let logged = strait
        .proc
        .stderr()
        .matches("connection refused: its source is outside")
        .count();
    assert_eq!(logged, 1, "{}", strait.proc.stderr());

    // The same router on 127.0.0.1 keeps the default (loopback included).
    let r = get(lo, "web", "127.0.0.1", &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        metric(
            &strait,
            &format!("rt/http/server/127.0.0.1/{}/connections_refused", lo.port())
        ),
        0
    );

    // Off loopback too, an override never reaches Strait's own admin or
    // listeners...
    for target in [strait.admin, lo, bridge] {
        let dtab = format!(
            "l5d-dtab: /svc/web => /$/inet/{}/{}",
            target.ip(),
            target.port()
        );
        let r = get(bridge, "web", "127.0.0.3", &["-H", &dtab]);
        assert_eq!(r.status, 403, "{dtab}: {r:?}");
    }
    // ...and where overrides are off (the default), the header is ignored.
    let dtab = format!(
        "l5d-dtab: /svc/web => /$/inet/127.0.0.1/{}",
        strait.admin.port()
    );
    let r = get(lo, "web", "127.0.0.1", &["-H", &dtab]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, "instance web\n", "routed by the router's dtab");

    assert!(
        strait.proc.wait_exit(Duration::from_millis(10)).is_none(),
        "strait is still running"
    );
}

#[test]
fn an_incoming_router_without_the_service_is_retried_on_another_host() {
    let backend = Backend::start("b");
    let dir = tempfile::tempdir().unwrap();
    let disco = |name: &str, lines: Option<String>| {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).unwrap();
        if let Some(l) = lines {
            std::fs::write(d.join("web"), l).unwrap();
        }
        d
    };
    // Host A runs `web`; host B does not (its instance moved away).
    let a_disco = disco("a", Some(format!("{}\n", backend.fs_line())));
    let b_disco = disco("b", None);
    let server = "  servers:\n  - port: 0\n";
    let a = start(dir.path(), &a_disco, "incoming", server);
    let b = start(dir.path(), &b_disco, "incoming", server);

    // B's own answer: Linkerd's 502 for a name bound to nothing, marked
    // retryable (the request reached no application).
    let r = get(b.router(), "web", "127.0.0.1", &[]);
    assert_eq!(r.status, 502, "{r:?}");
    assert_eq!(r.header("l5d-retryable"), Some("true"), "{r:?}");
    assert!(r.body.starts_with("Unable to route request!"), "{r:?}");

    // The outgoing router sends `web` to both hosts' incoming routers,
    // in turn (round robin, so that B is certainly tried).
    let out_disco = disco(
        "out",
        Some(format!(
            "127.0.0.1 {}\n127.0.0.1 {}\n",
            a.router().port(),
            b.router().port()
        )),
    );
    let out = start(
        dir.path(),
        &out_disco,
        "outgoing",
        "  originator: true\n  client:\n    loadBalancer: {kind: roundRobin}\n  servers:\n  - port: 0\n",
    );
    for i in 0..10 {
        let r = get(out.router(), "web", "127.0.0.1", &[]);
        assert_eq!(r.status, 200, "request {i}: {r:?}");
        assert_eq!(r.body, "instance b\n");
    }
    let b_requests = metric(
        &b,
        &format!(
            "rt/incoming/server/127.0.0.1/{}/requests",
            b.router().port()
        ),
    );
    assert!(b_requests >= 1, "host B was tried");
    let m = metrics(&out);
    assert!(
        m["rt/outgoing/service/svc/web/retries/total"]
            .as_i64()
            .unwrap_or(0)
            >= 1,
        "B's answers were retried: {m:#?}"
    );
    assert_eq!(
        m["rt/outgoing/service/svc/web/failures"]
            .as_i64()
            .unwrap_or(0),
        0
    );
    assert_eq!(
        m["rt/outgoing/originator"], 1,
        "Linkerd's originator gauge on the outgoing router"
    );
    assert!(
        metrics(&a).get("rt/incoming/originator").is_none(),
        "and only there"
    );
}

#[test]
fn a_reload_changes_who_may_connect_without_restarting_the_listener() {
    let backend = Backend::start("web");
    let dir = tempfile::tempdir().unwrap();
    let disco = dir.path().join("disco");
    std::fs::create_dir(&disco).unwrap();
    std::fs::write(disco.join("web"), format!("{}\n", backend.fs_line())).unwrap();
    let router = |nets: &str| {
        format!("  servers:\n  - ip: 127.0.0.2\n    port: 0\n    clientNetworks: [{nets}]\n")
    };
    let strait = start(dir.path(), &disco, "http", &router("127.0.0.3"));
    let addr = listener(&strait, "127.0.0.2");
    assert_eq!(get(addr, "web", "127.0.0.4", &[]).status, 0, "not listed");

    let conf = dir.path().join("http.yaml");
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(
        &conf,
        text.replace(&router("127.0.0.3"), &router("127.0.0.3, 127.0.0.4/32")),
    )
    .unwrap();
    let r = curl(
        &[
            "-X",
            "POST",
            &format!("http://{}/admin/reload", strait.admin),
        ],
        &[],
    );
    assert_eq!(r.status, 200, "{r:?}");
    let r = get(addr, "web", "127.0.0.4", &[]);
    assert_eq!(r.status, 200, "listed now, on the same listener: {r:?}");
    assert_eq!(get(addr, "web", "127.0.0.5", &[]).status, 0);
}

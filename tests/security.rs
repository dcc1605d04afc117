//! End-to-end: the shared-node security model (README, "Security model").
//! Any local container can reach the router port, so a request through it
//! must never stop Strait, read its admin, or reach an address the
//! operator did not allow; the admin's own `security` block and control
//! token work as documented.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::time::Duration;

use strait_test_kit::{Backend, Response, Strait, curl};

const BIN: &str = env!("CARGO_BIN_EXE_strait");

struct Node {
    _dir: tempfile::TempDir,
    strait: Strait,
}

/// Strait with an `io.l5d.fs` namer naming `hello` as `backend`, plus
/// `extra_admin` under `admin:`, `extra_router` and `extra_server` on the
/// router and its server.
fn start(backend: Option<&Backend>, admin: &str, router: &str, server: &str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let disco = dir.path().join("disco");
    std::fs::create_dir(&disco).unwrap();
    if let Some(b) = backend {
        std::fs::write(disco.join("hello"), format!("{}\n", b.fs_line())).unwrap();
    }
    let conf = dir.path().join("linkerd.yaml");
    std::fs::write(&conf, config(&disco, admin, router, server)).unwrap();
    let strait = Strait::start(BIN, &conf);
    Node { _dir: dir, strait }
}

fn config(disco: &Path, admin: &str, router: &str, server: &str) -> String {
    format!(
        "admin:\n  ip: 127.0.0.1\n  port: 0\n{admin}\
         namers:\n- kind: io.l5d.fs\n  rootDir: {}\n  prefix: /io.l5d.fs\n\
         routers:\n- protocol: http\n  label: outgoing\n  dtab: /svc => /#/io.l5d.fs;\n{router}\
         \n  servers:\n  - ip: 127.0.0.1\n    port: 0\n{server}\n",
        disco.display()
    )
}

impl Node {
    fn through_router(&self, method: &str, dtab: &str, path: &str) -> Response {
        curl(
            &[
                "-X",
                method,
                "-H",
                "Host: x",
                "-H",
                &format!("l5d-dtab: {dtab}"),
                &format!("http://{}{path}", self.strait.router()),
            ],
            &[],
        )
    }

    fn admin(&self, args: &[&str], path: &str) -> Response {
        let url = format!("http://{}{path}", self.strait.admin);
        let mut all: Vec<&str> = args.to_vec();
        all.push(&url);
        curl(&all, &[])
    }

    /// Strait is still up: the admin answers and the process has not exited.
    fn assert_alive(&mut self) {
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(self.admin(&[], "/admin/ping").body, "pong", "admin alive");
        assert!(
            self.strait
                .proc
                .wait_exit(Duration::from_millis(10))
                .is_none(),
            "strait is still running"
        );
    }
}

fn l5d_err(r: &Response) -> String {
    let raw = r
        .header("l5d-err")
        .unwrap_or_else(|| panic!("no l5d-err in {r:?}"));
    raw.replace('+', " ")
        .replace("%3A", ":")
        .replace("%27", "'")
}

#[test]
fn shutdown_through_the_router_is_refused_by_default() {
    let mut node = start(None, "", "", "");
    let to_admin = format!("/svc=>/$/inet/127.0.0.1/{}", node.strait.admin.port());
    let r = node.through_router("POST", &to_admin, "/admin/shutdown");
    assert_ne!(r.status, 200, "the override is ignored: {r:?}");
    assert!(!r.body.contains("quitting"), "{r:?}");
    let r = node.through_router("GET", &to_admin, "/config.json");
    assert_ne!(r.status, 200, "{r:?}");
    node.assert_alive();
}

#[test]
fn dtab_override_can_never_reach_the_admin_or_the_router_itself() {
    let mut node = start(None, "", "", "    dtabOverride: true\n");
    let admin = node.strait.admin.port();
    let router = node.strait.router().port();
    for dtab in [
        format!("/svc=>/$/inet/127.0.0.1/{admin}"),
        format!("/svc=>/$/inet/0.0.0.0/{admin}"),
        format!("/svc=>/$/inet/localhost/{admin}"),
        format!("/svc=>/$/inet/127.0.0.1/{router}"),
    ] {
        // `localhost` resolves in the background: its first requests may
        // find its address still pending.
        let mut r = node.through_router("POST", &dtab, "/admin/shutdown");
        for _ in 0..50 {
            if !r.body.contains("addresses: pending") {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            r = node.through_router("POST", &dtab, "/admin/shutdown");
        }
        assert_eq!(r.status, 403, "{dtab}: {r:?}");
        let err = l5d_err(&r);
        assert!(
            err.contains("Strait's own admin or router address"),
            "{err}"
        );
    }
    node.assert_alive();
}

#[test]
fn dtab_override_reaches_only_inet_addresses_in_inet_allow() {
    let a = Backend::start("a");
    let port = a.fs_line().split_whitespace().nth(1).unwrap().to_owned();
    // Default inetAllow: loopback only.
    let node = start(None, "", "", "    dtabOverride: true\n");
    let ok = node.through_router("GET", &format!("/svc=>/$/inet/127.0.0.1/{port}"), "/");
    assert_eq!(ok.status, 200, "a loopback backend is allowed: {ok:?}");
    assert_eq!(ok.body, "instance a\n");
    let far = node.through_router("GET", "/svc=>/$/inet/192.0.2.1/80", "/");
    assert_eq!(far.status, 403, "{far:?}");
    assert!(l5d_err(&far).contains("inetAllow"), "{far:?}");
    drop(node);

    // An explicit list replaces the default.
    let node = start(
        None,
        "",
        "  inetAllow: [192.0.2.0/24, '127.0.0.1:1']\n",
        "    dtabOverride: true\n",
    );
    let r = node.through_router("GET", &format!("/svc=>/$/inet/127.0.0.1/{port}"), "/");
    assert_eq!(r.status, 403, "loopback is no longer listed: {r:?}");
    let r = node.through_router("GET", "/svc=>/$/inet/127.0.0.1/1", "/");
    assert_eq!(r.status, 502, "listed (nothing listens there): {r:?}");
}

#[test]
fn config_json_redacts_the_consul_token() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("linkerd.yaml");
    std::fs::write(
        &conf,
        "admin:\n  ip: 127.0.0.1\n  port: 0\n\
         namers:\n- kind: io.l5d.consul\n  host: 127.0.0.1\n  port: 1\n  token: s3cr3t-acl-token\n\
         routers:\n- protocol: http\n  dtab: /svc => /#/io.l5d.consul/dc1;\n  servers:\n  - ip: 127.0.0.1\n    port: 0\n",
    )
    .unwrap();
    let strait = Strait::start(BIN, &conf);
    let r = curl(&[&format!("http://{}/config.json", strait.admin)], &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        !r.body.contains("s3cr3t"),
        "the token never shows: {}",
        r.body
    );
    let j: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(j["namers"][0]["token"], "<redacted>", "{}", r.body);
    assert_eq!(j["namers"][0]["host"], "127.0.0.1", "the rest is shown");
}

#[test]
fn admin_security_hides_categories_and_honours_white_and_blacklists() {
    let node = start(
        None,
        "  security:\n    uiEnabled: false\n    diagnosticsEnabled: false\n    \
         pathWhitelist: ['/admin/ping', '/config\\.json']\n    pathBlacklist: ['/config.*']\n",
        "",
        "",
    );
    let ping = node.admin(&[], "/admin/ping");
    assert_eq!(ping.body, "pong", "whitelisted diagnostics stay: {ping:?}");
    for path in [
        "/config.json",
        "/client_state.json",
        "/admin/metrics.json",
        "/",
    ] {
        let r = node.admin(&[], path);
        assert_eq!(r.status, 404, "{path}: {r:?}");
        assert!(r.body.is_empty(), "a bare 404 for {path}: {r:?}");
    }
}

#[test]
fn control_endpoints_need_the_admin_token_when_one_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin.token");
    std::fs::write(&token, "t0ken-for-tests\n").unwrap();
    let mut node = start(None, &format!("  tokenFile: {}\n", token.display()), "", "");
    let r = node.admin(&["-X", "POST"], "/admin/reload");
    assert_eq!(r.status, 401, "no token: {r:?}");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = node.admin(&["-X", "POST"], "/admin/shutdown");
    assert_eq!(r.status, 401, "no token: {r:?}");
    let r = node.admin(
        &["-X", "POST", "-H", "Authorization: Bearer wrong"],
        "/admin/shutdown",
    );
    assert_eq!(r.status, 403, "wrong token: {r:?}");
    node.assert_alive();
    let r = node.admin(
        &["-X", "POST", "-H", "Authorization: Bearer t0ken-for-tests"],
        "/admin/reload",
    );
    assert_eq!(r.status, 200, "right token: {r:?}");
    assert_eq!(
        node.admin(&[], "/admin/ping").body,
        "pong",
        "diagnostics need no token"
    );
    let r = node.admin(
        &["-X", "POST", "-H", "Authorization: Bearer t0ken-for-tests"],
        "/admin/shutdown",
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, "quitting");
    assert!(
        node.strait
            .proc
            .wait_exit(Duration::from_secs(15))
            .is_some(),
        "the right token stops Strait"
    );
}

//! Stored-dtab interpreters end to end: the real `strait` binary, the test
//! kit's Consul simulator (in process), a watched dtab file, real Python
//! backends and curl. Changing the stored dtab moves traffic within a
//! second, without a reload; a bad edit keeps the last good routing and
//! shows its error in the admin.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;
use std::time::{Duration, Instant};

use strait_test_kit::consul::{ConsulSim, SimConfig};
use strait_test_kit::{Backend, Strait, curl, write_temp};

const BIN: &str = env!("CARGO_BIN_EXE_strait");
const KEY: &str = "namerd/dtabs/default";

fn to(backend: &Backend) -> String {
    format!("/svc/hello => /$/inet/127.0.0.1/{}", backend.addr.port())
}

fn hello(strait: &Strait, host: &str) -> String {
    let r = curl(
        &[
            "-H",
            &format!("Host: {host}"),
            &format!("http://{}/", strait.router()),
        ],
        &[],
    );
    format!("{} {}", r.status, r.body.trim())
}

fn admin(strait: &Strait, path: &str) -> serde_json::Value {
    let r = curl(&[&format!("http://{}{path}", strait.admin)], &[]);
    assert_eq!(r.status, 200, "{path}: {r:?}");
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.body))
}

/// Polls `f` every 10 ms for up to `limit`; whether it became true.
fn within(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn kv_put(sim: &ConsulSim, value: &str) {
    let r = curl(
        &[
            "-X",
            "PUT",
            "--data-binary",
            value,
            &format!("{}/v1/kv/{KEY}", sim.url()),
        ],
        &[],
    );
    assert_eq!((r.status, r.body.trim()), (200, "true"), "{r:?}");
}

fn consul_config(sim: &ConsulSim, pinned: &Backend, extra: &str) -> String {
    format!(
        "\
admin: {{ip: 127.0.0.1, port: 0}}
routers:
- protocol: http
  label: kv
  dtab: /svc/pinned => /$/inet/127.0.0.1/{pinned}{extra}
  interpreter:
    kind: io.l5d.consul.interpreter
    host: 127.0.0.1
    port: {port}
    token: kv-secret
    backoff: {{kind: constant, ms: 20}}
  servers: [{{ip: 127.0.0.1, port: 0}}]
",
        pinned = pinned.addr.port(),
        port = sim.addr().port(),
    )
}

#[test]
fn consul_kv_dtab_routes_and_moves_traffic_without_reload() {
    let sim = ConsulSim::start(SimConfig::default());
    let (a, b, c) = (
        Backend::start("a"),
        Backend::start("b"),
        Backend::start("c"),
    );
    kv_put(
        &sim,
        &format!(
            "{}; /svc/pinned => /$/inet/127.0.0.1/{}",
            to(&a),
            a.addr.port()
        ),
    );
    let (dir, path) = write_temp("linkerd.yaml", &consul_config(&sim, &c, ""));
    let strait = Strait::start(BIN, &path);

    assert_eq!(
        hello(&strait, "hello"),
        "200 instance a",
        "{}",
        strait.proc.stderr()
    );
    // stored ++ router dtab: the router's dentry wins.
    assert_eq!(hello(&strait, "pinned"), "200 instance c");

    // A PUT moves traffic within a second, no reload.
    kv_put(&sim, &to(&b));
    assert!(
        within(Duration::from_secs(1), || hello(&strait, "hello")
            == "200 instance b"),
        "{}",
        strait.proc.stderr()
    );

    // An invalid value keeps the last good dtab and says why in the admin.
    kv_put(&sim, "/svc/hello => ");
    let state_path = "/kv/interpreter_state/io.l5d.consul.interpreter.json";
    assert!(within(Duration::from_secs(1), || {
        admin(&strait, state_path)["default"]["state"]
            .as_str()
            .is_some_and(|s| s.contains("consul ns default dtab parsing failed"))
    }));
    assert_eq!(hello(&strait, "hello"), "200 instance b");
    let state = admin(&strait, state_path);
    assert_eq!(
        state["default"]["lastGood"]["dtab"],
        to(&b).replace(' ', "")
    );
    let index = curl(&[&format!("http://{}/admin/index.txt", strait.admin)], &[]).body;
    assert!(index.contains(state_path), "{index}");

    // The delegator binds through the stored dtab too; the token is redacted.
    let d = curl(
        &[&format!(
            "http://{}/delegator.json?namespace=kv&path=/svc/hello",
            strait.admin
        )],
        &[],
    );
    assert!(d.body.contains(&b.addr.port().to_string()), "{d:?}");
    let config = admin(&strait, "/config.json");
    assert_eq!(config["routers"][0]["interpreter"]["token"], "<redacted>");

    // A deleted key is the empty stored dtab: the router dtab alone.
    let r = curl(
        &["-X", "DELETE", &format!("{}/v1/kv/{KEY}", sim.url())],
        &[],
    );
    assert_eq!(r.status, 200);
    assert!(within(Duration::from_secs(1), || hello(&strait, "hello")
        .starts_with("502")
        || hello(&strait, "hello").starts_with("400")
        || hello(&strait, "hello").starts_with("404")));

    // A reload with the interpreter unchanged keeps its watch: no new
    // connection to Consul, and KV changes still apply.
    kv_put(&sim, &to(&a));
    assert!(within(Duration::from_secs(1), || hello(&strait, "hello")
        == "200 instance a"));
    let connections = sim.stats().connections;
    std::fs::write(
        &path,
        consul_config(&sim, &c, "; /svc/x => /$/inet/127.0.0.1/1"),
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
    // (In process: a curl PUT would be a connection of its own.)
    sim.kv_put(KEY, to(&b).as_bytes());
    assert!(within(Duration::from_secs(1), || hello(&strait, "hello")
        == "200 instance b"));
    assert_eq!(sim.stats().connections, connections, "the watch was kept");
    drop(dir);
}

#[test]
fn a_dtab_file_routes_and_follows_rewrites() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let dtabs = tempfile::tempdir().unwrap();
    let file = dtabs.path().join("dtab");
    let config = format!(
        "\
admin: {{ip: 127.0.0.1, port: 0}}
routers:
- protocol: http
  interpreter: {{kind: io.l5d.fs, dtabFile: {}}}
  servers: [{{ip: 127.0.0.1, port: 0}}]
",
        file.display()
    );
    let (_dir, path) = write_temp("linkerd.yaml", &config);

    // The file must exist at start.
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{} is not a file", file.display())),
        "{stderr}"
    );

    std::fs::write(&file, to(&a)).unwrap();
    let strait = Strait::start(BIN, &path);
    assert_eq!(
        hello(&strait, "hello"),
        "200 instance a",
        "{}",
        strait.proc.stderr()
    );

    std::fs::write(&file, to(&b)).unwrap();
    assert!(within(Duration::from_secs(1), || hello(&strait, "hello")
        == "200 instance b"));

    std::fs::write(&file, "/svc/hello => ").unwrap();
    let state_path = "/http/interpreter_state/io.l5d.fs.json";
    let key = file.display().to_string();
    assert!(within(Duration::from_secs(1), || {
        admin(&strait, state_path)[&key]["state"]
            .as_str()
            .is_some_and(|s| s.contains("dtab parsing failed"))
    }));
    assert_eq!(hello(&strait, "hello"), "200 instance b");
}

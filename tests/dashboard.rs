//! The admin pages in a real browser: headless Debian `chromium` loads the
//! dashboard (`/`) and the dtab playground (`/delegator`) of a real Strait
//! routing real traffic to real Python backends, lets their scripts poll
//! and draw (`--virtual-time-budget`), and the test reads the DOM they
//! built (`--dump-dom`). Screenshots of both pages (1280×800; the
//! dashboard at phone width too; the playground with an edited dtab and
//! with a broken one) are saved under the test's target directory
//! and their paths printed; with `STRAIT_DOCS_SCREENSHOTS=1` they are also
//! copied to `docs/dashboard.png` and `docs/delegator.png`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use strait_test_kit::{Backend, KeepAlive, Strait, curl};

const BIN: &str = env!("CARGO_BIN_EXE_strait");

/// The client of `/svc/hello` (two backends, one of them killed).
const HELLO: &str = "/#/io.l5d.fs/hello";
/// The client of `/svc/world` (two healthy backends).
const WORLD: &str = "/#/io.l5d.fs/world";

/// Headless chromium, isolated from this machine's profile, network
/// services and proxies.
fn chromium(profile: &Path, args: &[&str]) -> String {
    let out = Command::new("timeout")
        .arg("120")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--no-proxy-server",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium must be installed (scripts/test installs it)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The DOM of `url` after its scripts ran for 8 s of virtual time.
fn dom(profile: &Path, url: &str) -> String {
    chromium(profile, &["--virtual-time-budget=8000", "--dump-dom", url])
}

/// A PNG of `url` at `size` (`1280,800`) after 8 s of virtual time.
fn screenshot(profile: &Path, url: &str, size: &str, file: &Path) {
    chromium(
        profile,
        &[
            "--virtual-time-budget=8000",
            &format!("--window-size={size}"),
            &format!("--screenshot={}", file.display()),
            url,
        ],
    );
    let png = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} is a real screenshot ({} bytes)",
        file.display(),
        png.len()
    );
    println!("screenshot: {}", file.display());
}

/// The element that starts with `start` (e.g. `<tr data-client="/x"`),
/// up to its `end` tag.
fn element<'a>(dom: &'a str, start: &str, end: &str) -> &'a str {
    let from = dom
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in the page:\n{dom}"));
    let rest = &dom[from..];
    &rest[..rest.find(end).map_or(rest.len(), |i| i + end.len())]
}

/// The text of the cell `data-col="<col>"` in `row`.
fn cell<'a>(row: &'a str, col: &str) -> &'a str {
    let key = format!("data-col=\"{col}\"");
    let at = row
        .find(&key)
        .unwrap_or_else(|| panic!("no {col} cell in {row}"));
    let rest = &row[at..];
    let open = rest.find('>').map_or(rest.len(), |i| i + 1);
    let text = &rest[open..];
    &text[..text.find('<').unwrap_or(text.len())]
}

/// Every `data-points="N"` of the page's charts.
fn chart_points(dom: &str) -> Vec<u64> {
    dom.split("data-points=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next()?.parse().ok())
        .collect()
}

/// `s` percent-encoded for a query string.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where the screenshots go: a directory under the test target dir.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn metric(admin: std::net::SocketAddr, name: &str) -> i64 {
    let r = curl(&[&format!("http://{admin}/admin/metrics.json")], &[]);
    let j: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    j[name].as_i64().unwrap_or(0)
}

/// Requests to `hosts` in turn, a few hundred a second, until `stop`; a
/// connection the router closes is opened again.
fn traffic(
    router: std::net::SocketAddr,
    hosts: &'static [&'static str],
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let stop = Arc::clone(&stop);
            let _ = std::panic::catch_unwind(move || {
                let mut c = KeepAlive::connect(router);
                while !stop.load(Ordering::Relaxed) {
                    for h in hosts {
                        c.get(h);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
        }
    })
}

#[test]
fn dashboard_and_playground_in_chromium() {
    let a = Backend::start("a");
    let mut b = Backend::start("b");
    let c = Backend::start("c");
    let d = Backend::start("d");
    let disco = tempfile::tempdir().unwrap();
    let fs_file = |backends: &[&Backend]| -> String {
        backends
            .iter()
            .map(|b| format!("{}\n", b.fs_line()))
            .collect()
    };
    std::fs::write(disco.path().join("hello"), fs_file(&[&a, &b])).unwrap();
    std::fs::write(disco.path().join("world"), fs_file(&[&c, &d])).unwrap();
    let conf = tempfile::tempdir().unwrap();
    let config = conf.path().join("linkerd.yaml");
    std::fs::write(
        &config,
        format!(
            "admin:\n  port: 0\nnamers:\n- kind: io.l5d.fs\n  rootDir: {}\nrouters:\n- protocol: http\n  label: out\n  dtab: /svc => /#/io.l5d.fs;\n  servers:\n  - port: 0\n  client:\n    failureAccrual:\n      kind: io.l5d.consecutiveFailures\n      failures: 3\n      backoff:\n        kind: constant\n        ms: 600000\n",
            disco.path().display()
        ),
    )
    .unwrap();
    let strait = Strait::start(BIN, &config);
    let admin = strait.admin;

    // Both services answer; then one of hello's backends dies and failure
    // accrual ejects it (it stays out: the backoff is ten minutes).
    for host in ["hello", "world"] {
        let h = format!("Host: {host}");
        let r = curl(&["-H", &h, &format!("http://{}/", strait.router())], &[]);
        assert_eq!(r.status, 200, "{host}: {r:?}");
    }
    b.kill();
    let removals = format!("rt/out/client/{}/failure_accrual/removals", &HELLO[1..]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(admin, &removals) < 1 {
        assert!(
            Instant::now() < deadline,
            "the dead backend was never ejected"
        );
        curl(
            &["-H", "Host: hello", &format!("http://{}/", strait.router())],
            &[],
        );
    }

    // Traffic while the browser watches.
    let stop = Arc::new(AtomicBool::new(false));
    let load = traffic(strait.router(), &["hello", "world"], Arc::clone(&stop));

    let profile = tempfile::tempdir().unwrap();
    let out = artifacts();
    let base = format!("http://{admin}");

    // The dashboard.
    let page = dom(profile.path(), &format!("{base}/"));
    assert!(page.contains(r#"data-router="out""#), "{page}");
    let hello = element(&page, &format!(r#"<tr data-client="{HELLO}""#), "</tr>");
    let world = element(&page, &format!(r#"<tr data-client="{WORLD}""#), "</tr>");
    assert_eq!(
        cell(hello, "endpoints"),
        "1/2",
        "hello: one of two endpoints available: {hello}"
    );
    assert_eq!(cell(world, "endpoints"), "2/2", "world: both: {world}");
    let ejected_endpoint = format!("{} ejected", b.addr);
    assert!(
        hello.contains(r#"data-ejected="1""#) && hello.contains(&ejected_endpoint),
        "the killed backend shows as ejected: {hello}"
    );
    assert!(
        !world.contains("ejected<"),
        "world's endpoints are not: {world}"
    );
    assert_ne!(cell(hello, "ejections"), "0", "{hello}");
    let service = element(&page, r#"<tr data-service="/svc/world""#, "</tr>");
    let rate: f64 = cell(service, "rate").parse().unwrap_or(0.0);
    assert!(rate > 0.0, "a non-zero request rate: {service}");
    let points = chart_points(&page);
    assert_eq!(points.len(), 3, "three charts: {page}");
    assert!(
        points.iter().all(|n| *n > 0),
        "every chart has drawn points: {points:?}"
    );
    let rate_line = element(&page, r#"<polyline points=""#, "</polyline>");
    let peak: f64 = rate_line
        .split("data-peak=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    assert!(
        rate_line.contains(r#"data-series="rate""#) && peak > 0.0,
        "the request rate chart rises above zero: {rate_line}"
    );
    assert!(
        page.contains(r#"data-result="started""#) || page.contains(r#"data-result="applied""#),
        "the last reload's outcome is shown: {page}"
    );
    assert!(
        page.contains("/namer_state/io.l5d.fs.json"),
        "the namer state is shown: {page}"
    );

    // The playground: /svc/hello down to its endpoints.
    let play = dom(profile.path(), &format!("{base}/delegator?path=/svc/hello"));
    let tree = element(&play, r#"<ul class="tree""#, "</section>");
    assert!(tree.contains(r#"data-type="leaf""#), "{tree}");
    for backend in [&a, &b] {
        assert!(
            tree.contains(&format!(r#"data-endpoint="{}""#, backend.addr)),
            "the tree ends in {}: {tree}",
            backend.addr
        );
    }
    assert!(
        tree.contains("/svc =&gt; /#/io.l5d.fs"),
        "each step names its dentry: {tree}"
    );
    // An edited dtab: alternatives, union weights, and why a branch did
    // not bind.
    let edited = "/svc=>/#/io.l5d.fs;/svc/hello=>/#/io.l5d.fs/nope|(0.25*/#/io.l5d.fs/hello&0.75*/#/io.l5d.fs/world)";
    let play = dom(
        profile.path(),
        &format!("{base}/delegator?path=/svc/hello&dtab={}", encode(edited)),
    );
    let tree = element(&play, r#"<ul class="tree""#, "</section>");
    for want in [
        r#"data-type="alt""#,
        r#"data-type="union""#,
        r#"data-type="neg""#,
        "no match",
        "0.25 \u{d7}",
        "0.75 \u{d7}",
    ] {
        assert!(tree.contains(want), "the tree shows {want}: {tree}");
    }
    for backend in [&a, &b, &c, &d] {
        assert!(
            tree.contains(&format!(r#"data-endpoint="{}""#, backend.addr)),
            "both union branches end in their endpoints ({}): {tree}",
            backend.addr
        );
    }
    assert!(
        play.contains("/svc/hello =&gt; /#/io.l5d.fs/nope"),
        "the edited dentry is named where it applied: {tree}"
    );

    // A broken dtab: the parse error, with where it stopped.
    let broken = dom(
        profile.path(),
        &format!(
            "{base}/delegator?path=/svc/hello&dtab=%2Fsvc%3D%3E%2F%23%2Fio.l5d.fs%3B%2Fa%3D%3E"
        ),
    );
    let error = element(&broken, r#"<p class="error""#, "</p>");
    assert!(
        error.contains(r#"data-status="400""#) && error.contains("Invalid dtab: "),
        "a broken dtab shows the parse error: {error}"
    );
    assert!(error.contains(" at '"), "with the position: {error}");

    // Screenshots, with traffic still flowing.
    let dash_png = out.join("dashboard.png");
    let play_png = out.join("delegator.png");
    screenshot(profile.path(), &format!("{base}/"), "1280,800", &dash_png);
    screenshot(
        profile.path(),
        &format!("{base}/delegator?path=/svc/hello&dtab={}", encode(edited)),
        "1280,800",
        &play_png,
    );
    screenshot(
        profile.path(),
        &format!(
            "{base}/delegator?path=/svc/hello&dtab=%2Fsvc%3D%3E%2F%23%2Fio.l5d.fs%3B%2Fa%3D%3E"
        ),
        "1280,800",
        &out.join("delegator-error.png"),
    );
    screenshot(
        profile.path(),
        &format!("{base}/"),
        "390,844",
        &out.join("dashboard-phone.png"),
    );
    if std::env::var_os("STRAIT_DOCS_SCREENSHOTS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
        std::fs::copy(&dash_png, docs.join("dashboard.png")).unwrap();
        std::fs::copy(&play_png, docs.join("delegator.png")).unwrap();
    }

    stop.store(true, Ordering::Relaxed);
    let _ = load.join();
}

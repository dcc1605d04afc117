//! End-to-end: the real `strait` binary routing real `curl` requests to real
//! Python backends, discovered through a real `io.l5d.fs` directory.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use strait_test_kit::{Backend, Response, Strait, curl, rss_kib};

const BIN: &str = env!("CARGO_BIN_EXE_strait");

/// A disco directory, a config using it, and a running Strait.
struct Mesh {
    disco: tempfile::TempDir,
    _conf_dir: tempfile::TempDir,
    strait: Strait,
}

fn config(disco: &Path, extra_router: &str, extra_server: &str) -> String {
    format!(
        "admin:\n  ip: 127.0.0.1\n  port: 0\n\
         namers:\n- kind: io.l5d.fs\n  rootDir: {}\n\
         routers:\n- protocol: http\n  label: outgoing\n  dtab: /svc => /#/io.l5d.fs;\n{extra_router}\
         \n  servers:\n  - ip: 127.0.0.1\n    port: 0\n{extra_server}\n\
         telemetry:\n- kind: io.l5d.prometheus\n",
        disco.display()
    )
}

impl Mesh {
    fn start(services: &[(&str, &[&Backend])]) -> Mesh {
        Mesh::start_with(services, "", "")
    }

    fn start_with(
        services: &[(&str, &[&Backend])],
        extra_router: &str,
        extra_server: &str,
    ) -> Mesh {
        let disco = tempfile::tempdir().unwrap();
        for (name, backends) in services {
            write_disco(disco.path(), name, backends);
        }
        let conf_dir = tempfile::tempdir().unwrap();
        let conf = conf_dir.path().join("linkerd.yaml");
        std::fs::write(&conf, config(disco.path(), extra_router, extra_server)).unwrap();
        let strait = Strait::start(BIN, &conf);
        Mesh {
            disco,
            _conf_dir: conf_dir,
            strait,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.strait.router())
    }

    fn get(&self, host: &str, path: &str) -> Response {
        curl(&["-H", &format!("Host: {host}"), &self.url(path)], &[])
    }

    fn admin(&self, path: &str) -> Response {
        curl(&[&format!("http://{}{path}", self.strait.admin)], &[])
    }
}

fn write_disco(dir: &Path, name: &str, backends: &[&Backend]) {
    let text: String = backends
        .iter()
        .map(|b| format!("{}\n", b.fs_line()))
        .collect();
    // Write then rename, as configuration management does.
    let tmp: PathBuf = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

fn l5d_err(r: &Response) -> String {
    let raw = r
        .header("l5d-err")
        .unwrap_or_else(|| panic!("no l5d-err header in {r:?}"));
    // URL-decoding of application/x-www-form-urlencoded text.
    let bytes = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() + 1 => {
                out.push(u8::from_str_radix(&raw[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn origin_form_request_reaches_the_backend_named_by_host() {
    let a = Backend::start("a");
    let mesh = Mesh::start(&[("hello", &[&a])]);
    let r = mesh.get("hello", "/");
    assert_eq!(
        r.status, 200,
        "Host: hello routes to the hello service: {r:?}"
    );
    assert_eq!(r.body, "instance a\n", "the backend's own page comes back");
    assert!(
        r.header("via").is_some_and(|v| v.contains("1.1 strait")),
        "responses carry Via: 1.1 strait"
    );
}

#[test]
fn http_proxy_form_request_is_routed_by_the_uri_authority() {
    let a = Backend::start("a");
    let mesh = Mesh::start(&[("hello", &[&a])]);
    let proxy = format!("http://{}", mesh.strait.router());
    let r = curl(&["http://hello/"], &[("http_proxy", &proxy)]);
    assert_eq!(
        r.status, 200,
        "http_proxy=... curl http://hello/ works: {r:?}"
    );
    assert_eq!(r.body, "instance a\n");
}

#[test]
fn load_is_spread_over_every_instance() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let mesh = Mesh::start(&[("hello", &[&a, &b])]);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for _ in 0..40 {
        let r = mesh.get("hello", "/");
        assert_eq!(r.status, 200, "{r:?}");
        *seen.entry(r.body).or_default() += 1;
    }
    assert_eq!(seen.len(), 2, "both instances get traffic: {seen:?}");
    assert!(
        seen.values().all(|&n| n >= 5),
        "neither instance is starved: {seen:?}"
    );
}

#[test]
fn editing_the_disco_file_moves_traffic_without_errors() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let mesh = Mesh::start(&[("hello", &[&a])]);
    assert_eq!(mesh.get("hello", "/").body, "instance a\n");

    // Traffic flows while the file changes from [a] to [a, b] to [b].
    write_disco(mesh.disco.path(), "hello", &[&a, &b]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut saw_b = false;
    while Instant::now() < deadline && !saw_b {
        let r = mesh.get("hello", "/");
        assert_eq!(
            r.status, 200,
            "no request fails while instances are added: {r:?}"
        );
        saw_b = r.body == "instance b\n";
    }
    assert!(saw_b, "the added instance gets traffic");

    write_disco(mesh.disco.path(), "hello", &[&b]);
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..20 {
        let r = mesh.get("hello", "/");
        assert_eq!(
            r.status, 200,
            "no request fails while instances are removed: {r:?}"
        );
        assert_eq!(
            r.body, "instance b\n",
            "the removed instance gets no more traffic"
        );
    }
}

#[test]
fn l5d_dtab_header_overrides_routing_for_one_request() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let services: &[(&str, &[&Backend])] = &[("hello", &[&a]), ("canary", &[&b])];
    let mesh = Mesh::start_with(services, "", "    dtabOverride: true\n");
    let r = curl(
        &[
            "-H",
            "Host: hello",
            "-H",
            "l5d-dtab: /svc/hello => /#/io.l5d.fs/canary",
            &mesh.url("/"),
        ],
        &[],
    );
    assert_eq!(
        r.body, "instance b\n",
        "a per-request dtab entry wins over the router's dtab: {r:?}"
    );
    assert_eq!(
        mesh.get("hello", "/").body,
        "instance a\n",
        "other requests are unaffected"
    );
}

#[test]
fn headers_downstream_name_the_route_and_hop_by_hop_headers_are_stripped() {
    let a = Backend::start("a");
    // Python's http.server echoes nothing, so look at what Strait sends with
    // a raw listener standing in for the backend.
    let (listener, strait, _dirs) = routed_to_listener("    dtabOverride: true\n");
    let url = format!("http://{}/x", strait.router());
    let t = std::thread::spawn(move || {
        curl(
            &[
                "-H",
                "Host: echo",
                "-H",
                "Connection: x-private",
                "-H",
                "x-private: 1",
                "-H",
                "l5d-dtab: /a=>/b",
                &url,
            ],
            &[],
        )
    });
    let got = first_head(listener);
    let r = t.join().unwrap();
    assert_eq!(r.status, 200);
    let lower = got.to_ascii_lowercase();
    assert!(lower.contains("\r\nhost: echo\r\n"), "Host is kept: {got}");
    assert!(
        lower.contains("\r\nl5d-dst-service: /svc/echo\r\n"),
        "l5d-dst-service names the logical name: {got}"
    );
    assert!(
        lower.contains("\r\nl5d-dst-client: /#/io.l5d.fs/echo\r\n"),
        "l5d-dst-client names the concrete name: {got}"
    );
    assert!(
        lower.contains("\r\nl5d-ctx-dtab: /a=>/b\r\n"),
        "the local dtab is re-emitted as l5d-ctx-dtab: {got}"
    );
    assert!(
        !lower.contains("\r\nl5d-dtab:"),
        "l5d-dtab is consumed: {got}"
    );
    assert!(
        lower.contains("\r\nl5d-reqid: "),
        "a request id is added: {got}"
    );
    assert!(
        lower.contains("\r\nvia: 1.1 strait\r\n"),
        "Via is appended: {got}"
    );
    assert!(
        !lower.contains("x-private"),
        "headers named by Connection are hop-by-hop: {got}"
    );
    drop(a);
}

/// Strait (with `extra_server` keys) routing `echo` to a listener that
/// stands in for its backend; the directories it reads live as long as
/// the third value.
fn routed_to_listener(
    extra_server: &str,
) -> (std::net::TcpListener, Strait, [tempfile::TempDir; 2]) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let disco = tempfile::tempdir().unwrap();
    std::fs::write(
        disco.path().join("echo"),
        format!("{} {}\n", addr.ip(), addr.port()),
    )
    .unwrap();
    let conf_dir = tempfile::tempdir().unwrap();
    let conf = conf_dir.path().join("l.yaml");
    std::fs::write(&conf, config(disco.path(), "", extra_server)).unwrap();
    let strait = Strait::start(BIN, &conf);
    (listener, strait, [disco, conf_dir])
}

/// A listener standing in for a backend: the head of the first request
/// it gets, answered `200 ok`.
fn first_head(listener: std::net::TcpListener) -> String {
    let (mut sock, _) = listener.accept().unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = vec![0u8; 8192];
    let mut got = String::new();
    while !got.contains("\r\n\r\n") {
        let n = std::io::Read::read(&mut sock, &mut buf).unwrap();
        assert!(n > 0, "backend connection closed early");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    std::io::Write::write_all(
        &mut sock,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    )
    .unwrap();
    got
}

/// Writes `req` on a fresh connection to `addr`; the whole answer (the
/// router closes after it: the request says `Connection: close`).
fn raw_exchange(addr: SocketAddr, req: &str) -> String {
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    std::io::Write::write_all(&mut c, req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = std::io::Read::read_to_end(&mut c, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// `req` written raw to a router (with `extra_server` keys) in front of a
/// listener standing in for `echo`'s backend: the router's answer, and
/// the head the backend got.
fn through_listener(extra_server: &str, req: &str) -> (String, String) {
    let (listener, strait, _dirs) = routed_to_listener(extra_server);
    let backend = std::thread::spawn(move || first_head(listener));
    let answer = raw_exchange(strait.router(), req);
    (answer, backend.join().unwrap())
}

#[test]
fn fields_the_router_does_not_read_reach_the_backend_as_written() {
    // Names in their own case, a value with the spaces around it, two
    // fields of one name with Forwarded (which the router reads) between.
    let (answer, got) = through_listener(
        "",
        "GET /x?y=1 HTTP/1.1\r\nUser-Agent: raw/1\r\nHost: echo\r\nX-Request-ID:   abc  \r\n\
         Cookie: a=1\r\nForwarded: for=5.6.7.8\r\n\
         Cookie: b=2\r\nForwarded: for=1.2.3.4\r\nACCEPT: */*\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    for line in [
        "\r\nUser-Agent: raw/1\r\n",
        "\r\nACCEPT: */*\r\n",
        "\r\nHost: echo\r\n",
        "\r\nvia: 1.1 strait\r\n",
    ] {
        assert!(got.contains(line), "{line:?} reaches the backend: {got}");
    }
    assert_eq!(hosts(&got), ["echo"], "one Host: {got}");
    assert!(
        got.starts_with("GET /x?y=1 HTTP/1.1\r\n"),
        "the request line: {got}"
    );
    let id: Vec<&str> = got
        .lines()
        .filter_map(|l| Some(l.strip_prefix("X-Request-ID:")?.trim()))
        .collect();
    assert_eq!(id, ["abc"], "the name in its case: {got}");
    let cookies: Vec<&str> = got.lines().filter(|l| l.starts_with("Cookie")).collect();
    assert_eq!(cookies, ["Cookie: a=1", "Cookie: b=2"], "in order: {got}");
    let forwarded: Vec<&str> = got.lines().filter(|l| l.starts_with("forwarded")).collect();
    assert_eq!(
        forwarded,
        ["forwarded: for=5.6.7.8", "forwarded: for=1.2.3.4"],
        "in order: {got}"
    );
    assert_eq!(
        got.matches("\r\n").count(),
        got.lines().count(),
        "CRLF lines: {got}"
    );
    assert!(
        !got.to_ascii_lowercase().contains("connection: close"),
        "the client's Connection is hop-by-hop: {got}"
    );
}

/// The values of the `Host` lines of `head`, any case.
fn hosts(head: &str) -> Vec<&str> {
    head.lines()
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("host").then(|| v.trim())
        })
        .collect()
}

/// The `Host` a client writes is passed on as written; what changes it
/// (an absolute URI's authority, `addForwardedHeader`'s `host=`) takes it
/// out of the passed-on fields first: the backend sees one `Host`.
#[test]
fn the_host_is_changed_in_one_place_only() {
    let (answer, got) = through_listener(
        "",
        "GET http://echo/x HTTP/1.1\r\nUser-Agent: raw/1\r\nHost: other\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(got.starts_with("GET /x HTTP/1.1\r\n"), "origin-form: {got}");
    assert_eq!(hosts(&got), ["echo"], "the URI's authority, once: {got}");

    let (answer, got) = through_listener(
        "    addForwardedHeader: {}\n",
        "GET /y HTTP/1.1\r\nHost: echo\r\nAccept: */*\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert_eq!(hosts(&got), ["echo"], "one Host: {got}");
    let forwarded: Vec<&str> = got
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("forwarded:"))
        .collect();
    assert_eq!(forwarded.len(), 1, "{got}");
    assert!(forwarded[0].contains(";host=\"echo\""), "{got}");
}

#[test]
fn a_header_identifier_finds_any_field() {
    let a = Backend::start("a");
    let mesh = Mesh::start_with(
        &[("hello", &[&a])],
        "  identifier:\n    kind: io.l5d.header.token\n    header: X-Service\n",
        "",
    );
    let r = curl(&["-H", "x-service: hello", &mesh.url("/")], &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, "instance a\n");
    let r = curl(&["-H", "X-Servic: hello", &mesh.url("/")], &[]);
    assert_eq!(r.status, 400, "{r:?}");
    assert!(l5d_err(&r).contains("x-service header is absent"), "{r:?}");
}

#[test]
fn unidentifiable_request_is_400_with_l5d_err() {
    let mesh = Mesh::start(&[]);
    // HTTP/1.0 without Host: nothing to name the request by.
    let r = curl(&["-0", "-H", "Host:", &mesh.url("/path")], &[]);
    assert_eq!(r.status, 400, "{r:?}");
    let err = l5d_err(&r);
    assert!(
        err.starts_with("Unknown destination: Request(\"GET /path\", from /127.0.0.1:")
            && err.ends_with(" / Host header is absent"),
        "Linkerd's message: {err}"
    );
    assert_eq!(r.body, err, "the body carries the same message");
}

#[test]
fn bad_l5d_dtab_is_400_with_the_parse_error() {
    let mesh = Mesh::start_with(&[], "", "    dtabOverride: true\n");
    let r = curl(
        &[
            "-H",
            "Host: hello",
            "-H",
            "l5d-dtab: /svc=>;",
            &mesh.url("/"),
        ],
        &[],
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(l5d_err(&r), "simple expected but ';' found at '/svc=>[;]'");
}

/// The dtab bomb of the hardening report, 21 dentries deep: with `same`,
/// `/a<i>=>/a<i+1> & /a<i+1>` (371 bytes; Strait merges the identical
/// branches), else `/a<i>` and `/b<i>` both `=>/a<i+1> & /b<i+1>`, which
/// only the caps stop. Either doubles the tree at each level: 2^20 leaves,
/// 20 s of CPU and 2 GB of RSS before `bindingLimits`.
fn dtab_bomb(same: bool, end: SocketAddr) -> String {
    let mut s = String::from("/svc=>/a0");
    for i in 0..20 {
        let n = i + 1;
        if same {
            s.push_str(&format!(";/a{i}=>/a{n} & /a{n}"));
        } else {
            s.push_str(&format!(";/a{i}=>/a{n} & /b{n};/b{i}=>/a{n} & /b{n}"));
        }
    }
    let end = format!("/$/inet/{}/{}", end.ip(), end.port());
    s.push_str(&format!(";/a20=>{end}"));
    if !same {
        s.push_str(&format!(";/b20=>{end}"));
    }
    s
}

#[test]
fn l5d_dtab_bomb_is_400_at_once_naming_the_cap_and_keeps_no_memory() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let mesh = Mesh::start_with(&[("hello", &[&a])], "", "    dtabOverride: true\n");
    let pid = mesh.strait.proc.pid();
    assert_eq!(mesh.get("hello", "/").status, 200);
    let before = rss_kib(pid);
    let with_dtab = |dtab: &str| {
        let start = Instant::now();
        let r = curl(
            &[
                "-H",
                "Host: hello",
                "-H",
                &format!("l5d-dtab: {dtab}"),
                &mesh.url("/"),
            ],
            &[],
        );
        (r, start.elapsed())
    };
    let same = dtab_bomb(true, b.addr);
    assert!(same.len() <= 371, "{} bytes", same.len());
    // Identical branches merge: the report's bomb binds one path per level.
    let (r, took) = with_dtab(&same);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, "instance b\n");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    // Distinct branches: stopped at the leaf cap, a 400 naming it.
    let bomb = dtab_bomb(false, b.addr);
    for _ in 0..10 {
        let (r, took) = with_dtab(&bomb);
        assert_eq!(r.status, 400, "{r:?}");
        assert!(took < Duration::from_secs(2), "took {took:?}");
        let err = l5d_err(&r);
        assert!(
            err.contains("binding failed: binding too large: more than 1000 bound names (bindingLimits.maxLeaves)"),
            "{err}"
        );
        assert!(err.contains("l5d-dtab"), "{err}");
    }
    // An unrelated request right after is served.
    let start = Instant::now();
    let r = mesh.get("hello", "/");
    assert_eq!((r.status, r.body.as_str()), (200, "instance a\n"));
    assert!(start.elapsed() < Duration::from_secs(1));
    let after = rss_kib(pid);
    assert!(
        after < before + 32 * 1024,
        "RSS went from {before} KiB to {after} KiB"
    );
    // Nothing over the cap was cached: the only bindings made are the two
    // served (`hello`, and `hello` under the merged bomb).
    let m = metrics(&mesh);
    assert_eq!(m["rt/outgoing/bindcache/path/misses"], 2, "{m}");
}

#[test]
fn l5d_dtab_headers_over_4_kib_are_400() {
    let a = Backend::start("a");
    let mesh = Mesh::start_with(&[("hello", &[&a])], "", "    dtabOverride: true\n");
    let big = vec!["/x=>/y"; 600].join(";");
    let r = curl(
        &[
            "-H",
            "Host: hello",
            "-H",
            &format!("l5d-dtab: {big}"),
            &mesh.url("/"),
        ],
        &[],
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(
        l5d_err(&r),
        "l5d-dtab and l5d-ctx-dtab: 4199 bytes, more than the 4096 allowed (bindingLimits.maxDtabHeaderBytes)"
    );
}

#[test]
fn proxy_loops_are_refused_past_max_call_depth() {
    let mesh = Mesh::start_with(&[], "", "    maxCallDepth: 2\n");
    let r = curl(
        &[
            "-H",
            "Host: hello",
            "-H",
            "Via: 1.1 a, 1.1 b, 1.1 c",
            &mesh.url("/"),
        ],
        &[],
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(
        l5d_err(&r),
        "Maximum number of calls (2) has been exceeded. Please check for proxy loops."
    );
}

#[test]
fn connect_is_405_with_a_clear_body() {
    let mesh = Mesh::start(&[]);
    let r = curl(
        &["-X", "CONNECT", "-H", "Host: hello:443", &mesh.url("/")],
        &[],
    );
    assert_eq!(r.status, 405, "{r:?}");
    assert!(
        r.body
            .contains("CONNECT is only for names this router routes"),
        "{r:?}"
    );
}

#[test]
fn unknown_service_is_502_unable_to_route_with_the_dtabs() {
    let mesh = Mesh::start(&[]);
    let r = mesh.get("nosuch", "/");
    assert_eq!(r.status, 502, "{r:?}");
    let err = l5d_err(&r);
    assert!(
        err.starts_with(
            "Unable to route request!\n\nservice name: /svc/nosuch\ndtab:\n  /svc => /#/io.l5d.fs\n"
        ),
        "{err}"
    );
    assert!(
        err.contains("base dtab:\n  /svc => /#/io.l5d.fs\noverride dtab:"),
        "{err}"
    );
}

#[test]
fn dead_instance_is_502_unable_to_establish_connection() {
    // A port nobody listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let disco = tempfile::tempdir().unwrap();
    std::fs::write(disco.path().join("dead"), format!("127.0.0.1 {port}\n")).unwrap();
    let conf_dir = tempfile::tempdir().unwrap();
    let conf = conf_dir.path().join("l.yaml");
    std::fs::write(&conf, config(disco.path(), "", "")).unwrap();
    let strait = Strait::start(BIN, &conf);
    let r = curl(
        &["-H", "Host: dead", &format!("http://{}/", strait.router())],
        &[],
    );
    assert_eq!(r.status, 502, "{r:?}");
    let err = l5d_err(&r);
    assert!(
        err.starts_with(&format!("Unable to establish connection to 127.0.0.1:{port}.\n\nservice name: /svc/dead\nclient name: /#/io.l5d.fs/dead\naddresses: [127.0.0.1:{port}]")),
        "{err}"
    );
    assert_eq!(
        r.header("l5d-retryable"),
        Some("true"),
        "the request never reached a backend"
    );
}

#[test]
fn clear_context_strips_l5d_headers_and_empties_error_bodies() {
    // Overrides accepted, yet clearContext strips them first.
    let mesh = Mesh::start_with(&[], "", "    clearContext: true\n    dtabOverride: true\n");
    let r = curl(
        &[
            "-H",
            "Host: nosuch",
            "-H",
            "l5d-dtab: /svc=>/$/inet/127.0.0.1/1",
            &mesh.url("/"),
        ],
        &[],
    );
    assert_eq!(
        r.status, 502,
        "the l5d-dtab override is ignored at an edge: {r:?}"
    );
    assert!(
        r.header("l5d-err").is_none(),
        "no l5d-* header leaves an edge: {r:?}"
    );
    assert!(r.body.is_empty(), "error bodies are emptied: {r:?}");
}

#[test]
fn admin_serves_ping_metrics_and_client_state() {
    let a = Backend::start("a");
    let mesh = Mesh::start(&[("hello", &[&a])]);
    for _ in 0..3 {
        assert_eq!(mesh.get("hello", "/").status, 200);
    }
    assert_eq!(mesh.admin("/admin/ping").body, "pong");
    let m = mesh.admin("/admin/metrics.json");
    let j: serde_json::Value = serde_json::from_str(&m.body).unwrap();
    let server = format!(
        "rt/outgoing/server/127.0.0.1/{}/requests",
        mesh.strait.router().port()
    );
    assert_eq!(
        j[&server], 3,
        "server requests counted under ip/port: {}",
        m.body
    );
    assert_eq!(j["rt/outgoing/service/svc/hello/requests"], 3, "{}", m.body);
    assert_eq!(
        j["rt/outgoing/client/#/io.l5d.fs/hello/status/200"], 3,
        "{}",
        m.body
    );
    assert_eq!(
        j["rt/outgoing/client/#/io.l5d.fs/hello/loadbalancer/size"], 1,
        "{}",
        m.body
    );
    let cs: serde_json::Value =
        serde_json::from_str(&mesh.admin("/client_state.json").body).unwrap();
    assert_eq!(cs["/#/io.l5d.fs/hello"]["state"], "bound");
    assert_eq!(cs["/#/io.l5d.fs/hello"]["addresses"][0], a.addr.to_string());
    assert_eq!(cs["/#/io.l5d.fs/hello"]["protocol"], "http/1.1");
}

fn promtool(text: &str) -> (i32, String) {
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool must be installed (scripts/test installs Debian's prometheus)");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), said)
}

#[test]
fn prometheus_metrics_pass_promtool() {
    let a = Backend::start("a");
    let mesh = Mesh::start(&[("hello", &[&a])]);
    assert_eq!(mesh.get("hello", "/").status, 200);
    assert_eq!(mesh.get("nosuch", "/").status, 502);

    let r = mesh.admin("/metrics");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.body
            .contains("rt_service_requests_total{rt=\"outgoing\", service=\"svc/hello\"} 1"),
        "{}",
        r.body
    );
    let (code, said) = promtool(&r.body);
    assert_eq!(
        code, 0,
        "promtool check metrics accepts /metrics without a lint problem:\n{said}"
    );

    // Linkerd 1's own names, for its dashboards: valid exposition (promtool
    // parses it; exit 1 would be a parse error), linted only for what
    // Linkerd chose: `:` in names, counters without `_total`, `_ms`.
    let r = mesh.admin("/admin/metrics/prometheus");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.body
            .contains("rt:service:requests{rt=\"outgoing\", service=\"svc/hello\"} 1"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("rt:client:status:200{rt=\"outgoing\", client=\"#/io.l5d.fs/hello\"} 1"),
        "{}",
        r.body
    );
    let (code, said) = promtool(&r.body);
    assert_ne!(code, 1, "Linkerd-style exposition parses:\n{said}");
    for line in said.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.contains("should not contain ':'")
                || line.contains("\"_total\" suffix")
                || line.contains("no help text")
                || line.contains("abbreviated units"),
            "only Linkerd's naming choices are linted: {line}"
        );
    }
}

#[test]
fn sigterm_exits_zero() {
    let mut mesh = Mesh::start(&[]);
    mesh.strait.proc.signal("TERM");
    let status = mesh
        .strait
        .proc
        .wait_exit(Duration::from_secs(15))
        .expect("strait exits after SIGTERM");
    assert!(status.success(), "SIGTERM is a clean shutdown: {status:?}");
}

#[test]
fn access_log_has_one_line_per_forwarded_request() {
    let a = Backend::start("a");
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("access.log");
    let extra = format!("  httpAccessLog: {}\n", log.display());
    let mesh = Mesh::start_with(&[("hello", &[&a])], &extra, "");
    let r = curl(
        &[
            "-H",
            "Host: hello",
            "-A",
            "tester/1.0",
            &mesh.url("/index.html?x=1"),
        ],
        &[],
    );
    assert_eq!(r.status, 200, "{r:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut text = String::new();
    while Instant::now() < deadline && !text.ends_with('\n') {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        std::thread::sleep(Duration::from_millis(20));
    }
    let line = text.lines().next().unwrap_or_default();
    assert!(
        line.starts_with("hello 127.0.0.1 - - ["),
        "Linkerd's access log format: {line}"
    );
    // Exactly Linkerd's line: its date (`dd/MM/yyyy:HH:mm:ss z`, UTC) and
    // fields, nothing after them.
    let date = line
        .split_once('[')
        .and_then(|(_, r)| r.split_once(']'))
        .map(|(d, _)| d)
        .unwrap_or_default();
    assert!(date.len() == 23 && date.ends_with(" UTC"), "{line}");
    assert!(
        line.ends_with("] \"GET /index.html?x=1 HTTP/1.1\" 200 11 \"-\" \"tester/1.0\""),
        "{line}"
    );
}

fn metrics(mesh: &Mesh) -> serde_json::Value {
    serde_json::from_str(&mesh.admin("/admin/metrics.json").body).unwrap()
}

fn clients(mesh: &Mesh) -> Vec<String> {
    let cs: serde_json::Value =
        serde_json::from_str(&mesh.admin("/client_state.json").body).unwrap();
    let mut ids: Vec<String> = cs.as_object().unwrap().keys().cloned().collect();
    ids.sort();
    ids
}

#[test]
fn binding_cache_clients_bounds_the_clients_evicting_the_least_recently_used() {
    let a = Backend::start("a");
    let names = ["one", "two", "three"];
    let only_a: &[&Backend] = &[&a];
    let services: Vec<(&str, &[&Backend])> = names.iter().map(|n| (*n, only_a)).collect();
    let mesh = Mesh::start_with(&services, "  bindingCache:\n    clients: 2\n", "");
    assert_eq!(mesh.get("one", "/").status, 200);
    assert_eq!(mesh.get("two", "/").status, 200);
    assert_eq!(
        clients(&mesh),
        ["/#/io.l5d.fs/one", "/#/io.l5d.fs/two"],
        "one client per concrete name"
    );
    assert_eq!(mesh.get("three", "/").status, 200);
    assert_eq!(
        clients(&mesh),
        ["/#/io.l5d.fs/three", "/#/io.l5d.fs/two"],
        "the third client evicts the least recently used"
    );
    let m = metrics(&mesh);
    assert_eq!(m["rt/outgoing/bindcache/client/misses"], 3, "{m}");
    assert_eq!(m["rt/outgoing/bindcache/client/evicts"], 1, "{m}");
    assert!(
        m.get("rt/outgoing/client/#/io.l5d.fs/one/requests")
            .is_none(),
        "an evicted client's metrics go with it: {m}"
    );
    assert_eq!(m["rt/outgoing/client/#/io.l5d.fs/two/requests"], 1, "{m}");

    // The evicted name still routes: it binds again and evicts in turn.
    assert_eq!(mesh.get("one", "/").status, 200);
    assert_eq!(clients(&mesh), ["/#/io.l5d.fs/one", "/#/io.l5d.fs/three"]);
    assert_eq!(metrics(&mesh)["rt/outgoing/bindcache/client/evicts"], 2);
}

#[test]
fn binding_cache_trees_bounds_the_bindings_like_paths() {
    let a = Backend::start("a");
    let names = ["one", "two", "three"];
    let only_a: &[&Backend] = &[&a];
    let services: Vec<(&str, &[&Backend])> = names.iter().map(|n| (*n, only_a)).collect();
    let mesh = Mesh::start_with(
        &services,
        "  bindingCache:\n    paths: 100\n    trees: 2\n",
        "",
    );
    for n in names {
        assert_eq!(mesh.get(n, "/").status, 200);
    }
    let m = metrics(&mesh);
    assert_eq!(m["rt/outgoing/bindcache/path/misses"], 3, "{m}");
    assert_eq!(
        m["rt/outgoing/bindcache/path/evicts"], 1,
        "the smallest of paths, trees and bounds caps the bindings: {m}"
    );
    assert_eq!(m["rt/outgoing/bindcache/client/evicts"], 0, "{m}");
    // A cached binding is not a miss.
    assert_eq!(mesh.get("three", "/").status, 200);
    assert_eq!(metrics(&mesh)["rt/outgoing/bindcache/path/misses"], 3);
}

#[test]
fn ten_thousand_bogus_hosts_leave_memory_flat() {
    let a = Backend::start("a");
    let mesh = Mesh::start(&[("hello", &[&a])]);
    assert_eq!(mesh.get("hello", "/").status, 200);
    let mut conn = strait_test_kit::KeepAlive::connect(mesh.strait.router());
    let pid = mesh.strait.proc.pid();
    let mut rss_at_2000 = 0;
    for i in 0..10_000 {
        assert_eq!(conn.get(&format!("bogus-{i}")), 502, "bogus-{i}");
        if i == 1999 {
            rss_at_2000 = strait_test_kit::rss_kib(pid);
        }
    }
    let rss = strait_test_kit::rss_kib(pid);
    assert!(
        rss < rss_at_2000 + 4 * 1024,
        "memory grew from {rss_at_2000} KiB after 2,000 names to {rss} KiB after 10,000"
    );
    let m = metrics(&mesh);
    assert_eq!(
        m["rt/outgoing/bindcache/path/evicts"], 9_001,
        "the binding cache holds 1,000 paths: {m}"
    );
    assert_eq!(mesh.get("hello", "/").status, 200);
}

/// A keep-alive HTTP/1.1 backend that counts the connections it accepts.
/// A backend that answers every request `200 ok` and logs, in the order it
/// answers them, the connection (numbered as accepted) each came on.
fn counting_backend() -> (SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<usize>>>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let served = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&served);
    std::thread::spawn(move || {
        for (conn, s) in l.incoming().enumerate() {
            let Ok(mut s) = s else { return };
            let log = std::sync::Arc::clone(&log);
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    buf.drain(..end);
                    log.lock().unwrap().push(conn);
                    if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (addr, served)
}

#[test]
fn host_connection_pool_max_size_bounds_the_connections_to_an_endpoint() {
    for (max_size, bound) in [(Some(1), 1), (None, 4)] {
        let (addr, served) = counting_backend();
        let extra = match max_size {
            Some(n) => format!("  client:\n    hostConnectionPool:\n      maxSize: {n}\n"),
            None => String::new(),
        };
        let mesh = Mesh::start_with(&[], &extra, "");
        std::fs::write(
            mesh.disco.path().join("pooled"),
            format!("127.0.0.1 {}\n", addr.port()),
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while mesh.get("pooled", "/").status != 200 {
            assert!(Instant::now() < deadline, "the disco file is picked up");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Four concurrent connections from wrk.
        let load = strait_test_kit::wrk(&mesh.url("/"), "pooled", 2);
        assert!(load.requests > 100, "{}", load.text);
        assert_eq!(
            (load.non2xx, load.socket_errors),
            (0, 0),
            "requests wait for a connection, none fails: {}",
            load.text
        );
        let served = served.lock().unwrap().clone();
        // The connections in the order they served: a run per connection.
        let mut runs = served.clone();
        runs.dedup();
        let mut conns = runs.clone();
        conns.sort_unstable();
        conns.dedup();
        match max_size {
            // One at a time: a connection, once another has served, never
            // serves again. (A connection may close and another open: a
            // request cancelled mid-exchange when wrk stops leaves its
            // connection unusable; that is not two at once.)
            Some(_) => assert_eq!(
                runs.len(),
                conns.len(),
                "maxSize {max_size:?}: connections took turns: {runs:?}"
            ),
            None => assert!(
                (2..=bound).contains(&conns.len()),
                "without maxSize concurrent requests open their own connections: {conns:?}"
            ),
        }
    }
}

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    let a = Backend::start("a");
    let disco = tempfile::tempdir().unwrap();
    write_disco(disco.path(), "hello", &[&a]);
    let conf = tempfile::tempdir().unwrap();
    let path = conf.path().join("linkerd.yaml");
    // A second name whose only endpoint refuses connections: a logged
    // connect failure.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    std::fs::write(
        disco.path().join("gone"),
        format!("{} {}\n", dead_addr.ip(), dead_addr.port()),
    )
    .unwrap();
    std::fs::write(&path, config(disco.path(), "", "")).unwrap();
    let strait = Strait::start_with_args(BIN, &path, &["--log-format", "json"]);
    let url = format!("http://{}/", strait.router());
    let r = curl(&["-H", "Host: gone", &url], &[]);
    assert_eq!(r.status, 502);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !strait.proc.stderr().contains("cannot connect") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = strait.proc.stderr();
    let mut messages = Vec::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        messages.push((v["fields"]["message"].as_str().unwrap_or("").to_owned(), v));
    }
    assert!(
        messages
            .iter()
            .any(|(m, v)| m == "router listening"
                && v["fields"]["addr"] == strait.router().to_string()),
        "the listening line, timestamped and with its fields: {log}"
    );
    let (_, failed) = messages
        .iter()
        .find(|(m, _)| m.starts_with("cannot connect to an endpoint"))
        .unwrap_or_else(|| panic!("the refused connect is logged: {log}"));
    assert_eq!(failed["level"], "WARN");
    assert_eq!(failed["fields"]["endpoint"], dead_addr.to_string());
    assert_eq!(failed["fields"]["client"], "/#/io.l5d.fs/gone");
}

/// Nanoseconds on CPU (`/proc/.../schedstat`) of each of `pid`'s threads
/// named `prefix*`, by name.
fn thread_cpu_ns(pid: u32, prefix: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = t.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let comm = comm.trim().to_owned();
        if !comm.starts_with(prefix) {
            continue;
        }
        let ns = std::fs::read_to_string(dir.join("schedstat"))
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        out.push((comm, ns));
    }
    out.sort();
    out
}

#[test]
fn workers_each_accept_on_their_own_listener_and_survive_reload_and_shutdown() {
    let a = Backend::start("a");
    let disco = tempfile::tempdir().unwrap();
    write_disco(disco.path(), "hello", &[&a]);
    let conf = tempfile::tempdir().unwrap();
    let path = conf.path().join("linkerd.yaml");
    std::fs::write(&path, config(disco.path(), "", "")).unwrap();
    let mut strait = Strait::start_with_args(BIN, &path, &["--workers", "2"]);
    let pid = strait.proc.pid();
    let workers = thread_cpu_ns(pid, "strait-worker-");
    assert_eq!(
        workers.iter().map(|w| w.0.as_str()).collect::<Vec<_>>(),
        ["strait-worker-0", "strait-worker-1"],
        "two worker threads"
    );
    let url = format!("http://{}/", strait.router());
    // Each request on a new connection: the kernel spreads them over the
    // workers' SO_REUSEPORT listeners.
    let load = |n: usize| {
        for _ in 0..n {
            let r = curl(&["-H", "Host: hello", &url], &[]);
            assert_eq!(r.status, 200, "{r:?}");
        }
    };
    load(60);
    // An idle worker (no connection) never wakes: each one's CPU time grew,
    // so each accepted and served some of the connections.
    let busy = thread_cpu_ns(pid, "strait-worker-");
    assert!(
        busy.iter()
            .zip(&workers)
            .all(|(after, before)| after.1 > before.1),
        "both workers served connections: before {workers:?}, after {busy:?}"
    );
    // A reload that adds a second server: the workers serve it too.
    std::fs::write(
        &path,
        config(disco.path(), "", "  - ip: 127.0.0.1\n    port: 0\n"),
    )
    .unwrap();
    strait.proc.signal("HUP");
    let first = strait.router().to_string();
    let second = strait.proc.wait_line(Duration::from_secs(10), |l| {
        let (_, addr) = l.split_once("' listening on ")?;
        let addr = addr.trim();
        (addr != first).then(|| addr.to_owned())
    });
    for _ in 0..20 {
        let r = curl(&["-H", "Host: hello", &format!("http://{second}/")], &[]);
        assert_eq!(r.status, 200, "the server added on reload: {r:?}");
    }
    load(5);
    strait.proc.signal("TERM");
    let status = strait.proc.wait_exit(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "graceful exit with workers: {status:?}"
    );
}

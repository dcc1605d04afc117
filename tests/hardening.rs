//! A shared node no local client can stall or confuse: the request path's
//! defences, driven with raw sockets where curl cannot say the request, and
//! raw backends where a well-behaved server would hide the problem.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use strait_test_kit::{Backend, Behavior, KeepAlive, Proc, Strait, curl};

fn metrics(mesh: &Mesh) -> serde_json::Value {
    let r = curl(
        &[&format!("http://{}/admin/metrics.json", mesh.strait.admin)],
        &[],
    );
    serde_json::from_str(&r.body).unwrap()
}

const BIN: &str = env!("CARGO_BIN_EXE_strait");

/// When a raw backend answers.
#[derive(Clone, Copy, PartialEq)]
enum When {
    /// As soon as the head is read; then it reads (and drops) the body.
    AfterHead,
    /// Once the whole body is read (`Content-Length` or chunked).
    AfterBody,
}

/// A backend on raw sockets: Python answers each request with `reply` (a
/// whole HTTP response, `\r\n` escapes allowed), `when` says when; `{host}`
/// in the reply is the request's Host header.
fn raw_backend(reply: &str, when: When) -> (Proc, SocketAddr) {
    let script = format!(
        r#"
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(64)
print("Serving HTTP on 127.0.0.1 port %d (raw)" % s.getsockname()[1], flush=True)
REPLY = {reply:?}.encode().decode("unicode_escape").encode("latin-1")
def reply(host):
    r = REPLY.replace(b"{{host}}", host)
    head, _, body = r.partition(b"\r\n\r\n")
    return head.replace(b"{{len}}", str(len(body)).encode()) + b"\r\n\r\n" + body
def serve(c):
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d: return
                buf += d
            head, buf = buf.split(b"\r\n\r\n", 1)
            hl = head.lower()
            host = b""
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"host": host = v.strip()
            if {after_body}:
                if b"transfer-encoding: chunked" in hl:
                    while b"0\r\n\r\n" not in buf:
                        d = c.recv(65536)
                        if not d: return
                        buf += d
                    buf = buf.split(b"0\r\n\r\n", 1)[1]
                else:
                    n = 0
                    for line in head.split(b"\r\n")[1:]:
                        k, _, v = line.partition(b":")
                        if k.strip().lower() == b"content-length": n = int(v)
                    while len(buf) < n:
                        d = c.recv(65536)
                        if not d: return
                        buf += d
                    buf = buf[n:]
                c.sendall(reply(host))
            else:
                c.sendall(reply(host))
                while True:
                    d = c.recv(65536)
                    if not d: return
    except OSError:
        pass
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#,
        after_body = if when == When::AfterBody {
            "True"
        } else {
            "False"
        }
    );
    python_server(&script)
}

/// Runs a Python `script` that listens on loopback and prints
/// `Serving HTTP on 127.0.0.1 port <port> ...`; its process and address.
fn python_server(script: &str) -> (Proc, SocketAddr) {
    let mut proc = Proc::spawn(Command::new("python3").args(["-u", "-c", script]));
    let port: u16 = proc.wait_line(Duration::from_secs(20), |l| {
        l.strip_prefix("Serving HTTP on 127.0.0.1 port ")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    });
    (proc, SocketAddr::from(([127, 0, 0, 1], port)))
}

struct Mesh {
    _disco: tempfile::TempDir,
    _conf: tempfile::TempDir,
    strait: Strait,
}

/// Strait routing `/svc/<name>` to the addresses given, with `router`
/// keys added to the router and `server` keys to its server.
fn start(services: &[(&str, &[SocketAddr])], router: &str, server: &str) -> Mesh {
    start_as(services, router, server, |path| Strait::start(BIN, path))
}

/// [`start`], with Strait started by `spawn` (given the config's path).
fn start_as(
    services: &[(&str, &[SocketAddr])],
    router: &str,
    server: &str,
    spawn: impl FnOnce(&std::path::Path) -> Strait,
) -> Mesh {
    let disco = tempfile::tempdir().unwrap();
    for (name, addrs) in services {
        let lines: String = addrs
            .iter()
            .map(|a| format!("{} {}\n", a.ip(), a.port()))
            .collect();
        std::fs::write(disco.path().join(name), lines).unwrap();
    }
    let conf = tempfile::tempdir().unwrap();
    let path = conf.path().join("linkerd.yaml");
    std::fs::write(
        &path,
        format!(
            "admin:\n  port: 0\nnamers:\n- kind: io.l5d.fs\n  rootDir: {}\nrouters:\n- protocol: http\n  label: out\n  dtab: /svc => /#/io.l5d.fs;\n{router}  servers:\n  - port: 0\n{server}",
            disco.path().display()
        ),
    )
    .unwrap();
    let strait = spawn(&path);
    Mesh {
        _disco: disco,
        _conf: conf,
        strait,
    }
}

/// Writes `bytes` on a fresh connection to `addr` and reads the answer
/// until the peer closes or `wait` passes.
fn raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads a response head (through its blank line) and nothing more.
fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn status_of(text: &str) -> u16 {
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Finding 3: a backend that answers before reading the request body used
/// to hand its connection back to the pool while client A was still
/// uploading; client B's request then waited behind A's upload.
#[test]
fn another_clients_upload_never_stalls_a_request() {
    let (_b, addr) = raw_backend(
        "HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok",
        When::AfterHead,
    );
    let mesh = start(&[("up", &[addr])], "", "");
    // A: announces 1 MB, sends 10 bytes, then stalls.
    let mut a = TcpStream::connect(mesh.strait.router()).unwrap();
    a.write_all(b"POST / HTTP/1.1\r\nHost: up\r\nContent-Length: 1000000\r\n\r\n0123456789")
        .unwrap();
    a.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = [0u8; 12];
    a.read_exact(&mut got).unwrap();
    assert_eq!(
        &got, b"HTTP/1.1 200",
        "A is answered before its upload ends"
    );
    // B, on its own connection, while A's upload is stalled.
    let r = curl(
        &[
            "--max-time",
            "5",
            "-H",
            "Host: up",
            &format!("http://{}/", mesh.strait.router()),
        ],
        &[],
    );
    assert_eq!(r.status, 200, "B is served at once: {r:?}");
    drop(a);
}

const ECHO_HOST: &str = "HTTP/1.1 200 OK\\r\\nContent-Length: {len}\\r\\n\\r\\nhost=[{host}]";

/// Finding 9: a request a proxy must not pass on is refused with 400, as
/// nginx and HAProxy do (RFC 9112 §3.2), and `Connection: Host` never
/// leaves the backend without a Host.
#[test]
fn ambiguous_hosts_are_refused_and_host_is_never_dropped() {
    let (_b, addr) = raw_backend(ECHO_HOST, When::AfterBody);
    let mesh = start(&[("h", &[addr])], "", "");
    let router = mesh.strait.router();
    let wait = Duration::from_secs(5);
    for (what, req) in [
        (
            "two Host headers",
            "GET / HTTP/1.1\r\nHost: h\r\nHost: other\r\n\r\n",
        ),
        ("a path in Host", "GET / HTTP/1.1\r\nHost: h/b\r\n\r\n"),
        ("userinfo in Host", "GET / HTTP/1.1\r\nHost: user@h\r\n\r\n"),
        (
            "userinfo in the target",
            "GET http://user:pw@h/ HTTP/1.1\r\nHost: h\r\n\r\n",
        ),
    ] {
        let answer = raw(
            router,
            format!("{}Connection: close\r\n\r\n", &req[..req.len() - 2]).as_bytes(),
            wait,
        );
        assert_eq!(status_of(&answer), 400, "{what}: {answer}");
        assert!(
            answer.to_ascii_lowercase().contains("l5d-err"),
            "{what} says why: {answer}"
        );
    }
    let answer = raw(
        router,
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Host, close\r\n\r\n",
        wait,
    );
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert!(
        answer.contains("host=[h]"),
        "the backend got the Host: {answer}"
    );
}

/// Finding 10: a transfer coding Strait would strip with the framing is
/// refused (501), not silently lost.
#[test]
fn transfer_codings_other_than_chunked_are_not_implemented() {
    let (_b, addr) = raw_backend(ECHO_HOST, When::AfterBody);
    let mesh = start(&[("h", &[addr])], "", "");
    let answer = raw(
        mesh.strait.router(),
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n2\r\nab\r\n0\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(status_of(&answer), 501, "{answer}");
    let ok = raw(
        mesh.strait.router(),
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nab\r\n0\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(status_of(&ok), 200, "plain chunked passes: {ok}");
}

/// `GET /` through a Strait routing `h` to a backend that answers `reply`
/// (a Python string literal) after reading the request.
fn get_through_raw_backend(reply: &str) -> strait_test_kit::Response {
    let (_b, addr) = raw_backend(reply, When::AfterBody);
    let mesh = start(&[("h", &[addr])], "", "");
    curl(
        &[
            "-H",
            "Host: h",
            &format!("http://{}/", mesh.strait.router()),
        ],
        &[],
    )
}

/// Finding 7: a backend response with both `Content-Length` and
/// `Transfer-Encoding: chunked` is framed by the chunked coding (RFC 9112
/// §6.3); the client gets the whole body, never one cut at the length.
#[test]
fn a_response_with_both_framings_reaches_the_client_whole() {
    let r = get_through_raw_backend(
        "HTTP/1.1 200 OK\\r\\nContent-Length: 3\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5\\r\\nhello\\r\\n0\\r\\n\\r\\n",
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, "hello", "{r:?}");
    assert_ne!(r.header("content-length"), Some("3"), "{r:?}");
}

/// A response whose length cannot be trusted (two different
/// `Content-Length`s: which one frames it depends on who reads it) is not
/// passed on: the caller gets a 502 saying why, not a head and a guess.
#[test]
fn a_response_with_differing_lengths_is_a_502() {
    let r = get_through_raw_backend(
        "HTTP/1.1 200 OK\\r\\nContent-Length: 3\\r\\nContent-Length: 5\\r\\n\\r\\nhello",
    );
    assert_eq!(r.status, 502, "{r:?}");
    assert!(
        r.body
            .contains("invalid response: differing Content-Length values"),
        "{r:?}"
    );
    assert!(r.header("l5d-err").is_some(), "{r:?}");
}

/// Finding 6: bodies the client breaks (malformed chunked framing) are the
/// client's fault: 400, and the healthy endpoints are never ejected.
#[test]
fn client_body_faults_are_400_and_eject_no_endpoint() {
    let (_a, a) = raw_backend(ECHO_HOST, When::AfterBody);
    let (_b, b) = raw_backend(ECHO_HOST, When::AfterBody);
    let mesh = start(&[("h", &[a, b])], "", "");
    for _ in 0..12 {
        let answer = raw(
            mesh.strait.router(),
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\nabcd\r\nzz\r\n",
            Duration::from_secs(5),
        );
        assert_eq!(status_of(&answer), 400, "{answer}");
    }
    let r = curl(
        &[&format!("http://{}/admin/metrics.json", mesh.strait.admin)],
        &[],
    );
    let j: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        j["rt/out/client/#/io.l5d.fs/h/failure_accrual/removals"].as_i64(),
        Some(0),
        "no endpoint ejected"
    );
    let r = curl(
        &[
            "-H",
            "Host: h",
            &format!("http://{}/", mesh.strait.router()),
        ],
        &[],
    );
    assert_eq!(r.status, 200, "{r:?}");
}

/// Finding 4: a backend that never answers no longer holds the client for
/// ever: `responseTimeoutMs` (default 60 s, set short here) answers 504.
/// Its default shows in `/config.json`.
#[test]
fn a_backend_that_never_answers_gets_504_after_the_response_timeout() {
    let hang = Backend::scripted("hang", Behavior::Hang);
    let mesh = start(
        &[("hang", &[hang.addr])],
        "  client:\n    responseTimeoutMs: 400\n",
        "",
    );
    let r = curl(
        &[
            "--max-time",
            "10",
            "-H",
            "Host: hang",
            &format!("http://{}/", mesh.strait.router()),
        ],
        &[],
    );
    assert_eq!(r.status, 504, "{r:?}");
    assert!(
        r.header("l5d-err")
            .is_some_and(|e| e.contains("responseTimeoutMs")),
        "{r:?}"
    );
    let plain = start(&[("hang", &[hang.addr])], "", "");
    let c = curl(
        &[&format!("http://{}/config.json", plain.strait.admin)],
        &[],
    );
    let j: serde_json::Value = serde_json::from_str(&c.body).unwrap();
    assert_eq!(
        j["routers"][0]["client"]["responseTimeoutMs"], 60000,
        "the default: {}",
        c.body
    );
}

/// Finding 4: a request body that stalls is cut after
/// `requestBodyIdleTimeoutMs` with 408, and holds no backend connection
/// or gauge afterwards.
#[test]
fn a_stalled_request_body_is_cut_with_408() {
    let (_b, addr) = raw_backend(ECHO_HOST, When::AfterBody);
    let mesh = start(&[("h", &[addr])], "", "    requestBodyIdleTimeoutMs: 300\n");
    for body in [
        // Kept for replay (small, with a length) and streamed (chunked).
        &b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n01234"[..],
        &b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n"[..],
    ] {
        let answer = raw(mesh.strait.router(), body, Duration::from_secs(10));
        assert_eq!(status_of(&answer), 408, "{answer}");
    }
    let m = metrics(&mesh);
    for (k, v) in m.as_object().unwrap() {
        if k.ends_with("/pending") {
            assert_eq!(v.as_i64(), Some(0), "{k}");
        }
    }
    assert_eq!(
        m["rt/out/client/#/io.l5d.fs/h/failure_accrual/removals"]
            .as_i64()
            .unwrap_or(0),
        0,
        "a slow client is not the endpoint's failure"
    );
}

/// The body of every answer of [`big_backend`]: 256 MiB.
const BIG_BODY: usize = 256 << 20;

/// A backend that answers every request with [`BIG_BODY`] bytes, written a
/// MiB at a time.
fn big_backend() -> (Proc, SocketAddr) {
    python_server(
        r#"
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(256)
print("Serving HTTP on 127.0.0.1 port %d (big)" % s.getsockname()[1], flush=True)
BLOCK = b"x" * (1 << 20)
def serve(c):
    try:
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d: return
            buf += d
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (256 << 20))
        for _ in range(256):
            c.sendall(BLOCK)
    except OSError:
        pass
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#,
    )
}

/// A client that stops reading a response is cut after
/// `responseSendTimeoutMs` (nginx's `send_timeout`): it holds neither its
/// connection nor the backend's for ever.
#[test]
fn a_client_that_stops_reading_is_cut_after_the_send_timeout() {
    let (_b, addr) = big_backend();
    let mesh = start(&[("h", &[addr])], "", "    responseSendTimeoutMs: 300\n");
    let mut c = std::net::TcpStream::connect(mesh.strait.router()).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    let mut first = [0u8; 1024];
    c.read_exact(&mut first).unwrap();
    assert!(first.starts_with(b"HTTP/1.1 200 OK\r\n"));
    // Stop reading well past the timeout; then whatever the buffers held,
    // and the end: the body is cut short.
    std::thread::sleep(Duration::from_secs(2));
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest)
        .expect("the router closed the connection");
    assert!(
        1024 + rest.len() < BIG_BODY,
        "{} bytes arrived",
        1024 + rest.len()
    );
    let m = metrics(&mesh);
    for (k, v) in m.as_object().unwrap() {
        if k.ends_with("/pending") || k.ends_with("/connections") {
            assert_eq!(v.as_i64(), Some(0), "{k}");
        }
    }
}

/// `maxRequestBodyKB`: off by default (a 64 KiB body passes); when set, a
/// declared or streamed body past it is refused with 413.
#[test]
fn request_bodies_past_the_limit_get_413() {
    let (_b, addr) = raw_backend(ECHO_HOST, When::AfterBody);
    let big = "x".repeat(2048);
    let open = start(&[("h", &[addr])], "", "");
    let r = curl(
        &[
            "-H",
            "Host: h",
            "--data-binary",
            &"y".repeat(65_536),
            &format!("http://{}/", open.strait.router()),
        ],
        &[],
    );
    assert_eq!(r.status, 200, "no limit by default: {r:?}");
    let mesh = start(&[("h", &[addr])], "", "    maxRequestBodyKB: 1\n");
    let url = format!("http://{}/", mesh.strait.router());
    let r = curl(&["-H", "Host: h", "--data-binary", &big, &url], &[]);
    assert_eq!(r.status, 413, "declared length: {r:?}");
    let r = curl(
        &[
            "-H",
            "Host: h",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &big,
            &url,
        ],
        &[],
    );
    assert_eq!(r.status, 413, "streamed: {r:?}");
    let r = curl(&["-H", "Host: h", "--data-binary", "small", &url], &[]);
    assert_eq!(r.status, 200, "{r:?}");
}

/// Finding 11: `maxHeadersKB` and `maxInitialLineKB` are enforced exactly
/// and separately, however the bytes arrive; a hundred small headers pass.
#[test]
fn head_limits_are_exact_and_separate() {
    let (_b, addr) = raw_backend(ECHO_HOST, When::AfterBody);
    let mesh = start(
        &[("h", &[addr])],
        "  maxHeadersKB: 1\n  maxInitialLineKB: 1\n",
        "",
    );
    let router = mesh.strait.router();
    let wait = Duration::from_secs(5);
    let headers = format!("X-Big: {}\r\n", "a".repeat(1100));
    let over = format!("GET / HTTP/1.1\r\nHost: h\r\n{headers}Connection: close\r\n\r\n");
    assert_eq!(
        status_of(&raw(router, over.as_bytes(), wait)),
        431,
        "in one write"
    );
    // The same head, 100 bytes at a time.
    let mut s = TcpStream::connect(router).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    for chunk in over.as_bytes().chunks(100) {
        s.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert_eq!(status_of(&out), 431, "in small writes: {out}");
    let long = format!(
        "GET /{} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        "p".repeat(1100)
    );
    assert_eq!(status_of(&raw(router, long.as_bytes(), wait)), 414);
    let fits = format!(
        "GET /{} HTTP/1.1\r\nHost: h\r\nX-Ok: {}\r\nConnection: close\r\n\r\n",
        "p".repeat(900),
        "a".repeat(900)
    );
    assert_eq!(
        status_of(&raw(router, fits.as_bytes(), wait)),
        200,
        "each within its own limit"
    );
    let plain = start(&[("h", &[addr])], "", "");
    let many: String = (0..150).map(|i| format!("X-{i}: 1\r\n")).collect();
    let req = format!("GET / HTTP/1.1\r\nHost: h\r\n{many}Connection: close\r\n\r\n");
    assert_eq!(
        status_of(&raw(plain.strait.router(), req.as_bytes(), wait)),
        200,
        "150 small headers"
    );
}

/// Finding 8: clients that read a large response slowly cost a small,
/// fixed buffer each, not the ~1 MiB hyper's default read buffer grows to.
#[test]
fn slow_readers_of_large_responses_hold_little_memory() {
    let (_backend, addr) = big_backend();
    let mesh = start(&[("big", &[addr])], "", "");
    let pid = mesh.strait.proc.pid();
    // Warm up one connection's worth of allocations first.
    let before = strait_test_kit::rss_kib(pid);
    let n = 60;
    let mut readers = Vec::new();
    for _ in 0..n {
        let mut s = TcpStream::connect(mesh.strait.router()).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: big\r\n\r\n").unwrap();
        let mut head = [0u8; 16 * 1024];
        s.read_exact(&mut head).unwrap();
        readers.push(s); // and read no more
    }
    std::thread::sleep(Duration::from_secs(3));
    let after = strait_test_kit::rss_kib(pid);
    let per = after.saturating_sub(before) / n;
    eprintln!("slow readers: {before} -> {after} KiB, {per} KiB each");
    assert!(
        per < 400,
        "{per} KiB of RSS per slow reader ({before} -> {after} KiB for {n})"
    );
    drop(readers);
}

/// A WebSocket backend: answers an upgrade with 101, then echoes each read
/// as `echo:<bytes>`, and prints `backend saw EOF` when its client ends.
const WS_BACKEND: &str = r#"
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(16)
print("Serving HTTP on 127.0.0.1 port %d (ws)" % s.getsockname()[1], flush=True)
def serve(c):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = c.recv(4096)
        if not d: return
        buf += d
    head = buf.split(b"\r\n\r\n")[0].lower()
    if b"upgrade: websocket" not in head:
        c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 10\r\n\r\nno upgrade")
        return
    c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n")
    while True:
        d = c.recv(4096)
        if not d:
            print("backend saw EOF", flush=True)
            c.close()
            return
        c.sendall(b"echo:" + d)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// A WebSocket opened through `mesh` to `/svc/ws`: the 101 read and
/// checked.
fn ws_open(mesh: &Mesh) -> TcpStream {
    let mut s = TcpStream::connect(mesh.strait.router()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /chat HTTP/1.1\r\nHost: ws\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").unwrap();
    let head = read_head(&mut s).to_ascii_lowercase();
    assert_eq!(status_of(&head), 101, "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    assert!(head.contains("sec-websocket-accept: x"), "{head}");
    s
}

/// Sends `msg` on a WebSocket to [`WS_BACKEND`] and reads its echo.
fn ws_echo(s: &mut TcpStream, msg: &str) {
    s.write_all(msg.as_bytes()).unwrap();
    let mut back = vec![0u8; 5 + msg.len()];
    s.read_exact(&mut back).unwrap();
    assert_eq!(String::from_utf8_lossy(&back), format!("echo:{msg}"));
}

/// The server-scope metric `name` of `mesh`'s server in
/// `/admin/metrics.json` once it equals `want`, or its value after 5 s.
fn server_metric(mesh: &Mesh, name: &str, want: i64) -> Option<i64> {
    let a = mesh.strait.router();
    let key = format!("rt/out/server/{}/{}/{name}", a.ip(), a.port());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let v = metrics(mesh)[&key].as_i64();
        if v == Some(want) || std::time::Instant::now() >= deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Finding 12: a WebSocket upgrade reaches the backend with its `Upgrade`
/// header, the backend's 101 reaches the client with its headers, and the
/// connection then carries bytes both ways.
#[test]
fn a_websocket_upgrade_is_tunnelled_after_the_101() {
    let (_backend, addr) = python_server(WS_BACKEND);
    let mesh = start(&[("ws", &[addr])], "", "");
    let mut s = ws_open(&mesh);
    for msg in ["ping", "pong"] {
        ws_echo(&mut s, msg);
    }
}

/// `upgradeIdleTimeoutMs`: a tunnel that carries bytes keeps going past
/// it; one where neither side sends anything for that long is closed on
/// both sides, and counted.
#[test]
fn an_idle_upgraded_connection_is_closed_on_both_sides() {
    let (mut backend, addr) = python_server(WS_BACKEND);
    let mesh = start(&[("ws", &[addr])], "", "    upgradeIdleTimeoutMs: 500\n");
    let mut s = ws_open(&mesh);
    assert_eq!(server_metric(&mesh, "upgraded", 1), Some(1));
    let opened = std::time::Instant::now();
    for i in 0..10 {
        std::thread::sleep(Duration::from_millis(200));
        ws_echo(&mut s, &format!("tick{i}"));
    }
    assert!(
        opened.elapsed() > Duration::from_millis(1500),
        "bytes every 200 ms keep it open well past 500 ms"
    );
    assert_eq!(server_metric(&mesh, "upgraded", 1), Some(1));
    assert_eq!(server_metric(&mesh, "upgrade_idle_closes", 0), Some(0));
    // Now nobody says anything.
    let quiet = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let read = s.read(&mut buf);
    assert!(
        matches!(read, Ok(0)),
        "the client sees the tunnel end: {read:?}"
    );
    let after = quiet.elapsed();
    assert!(
        after >= Duration::from_millis(400) && after < Duration::from_secs(4),
        "closed after about 500 ms of quiet, not {after:?}"
    );
    backend.wait_line(Duration::from_secs(5), |l| {
        (l == "backend saw EOF").then_some(())
    });
    assert_eq!(server_metric(&mesh, "upgraded", 0), Some(0));
    assert_eq!(server_metric(&mesh, "upgrade_idle_closes", 1), Some(1));
    let a = mesh.strait.router();
    let labels = format!("{{rt=\"out\", server=\"{}/{}\"}}", a.ip(), a.port());
    let r = curl(&[&format!("http://{}/metrics", mesh.strait.admin)], &[]);
    for series in [
        format!("rt_server_upgraded{labels} 0"),
        format!("rt_server_upgrade_idle_closes_total{labels} 1"),
    ] {
        assert!(r.body.contains(&series), "{series} in:\n{}", r.body);
    }
}

/// The server's `upgraded` gauge counts tunnels while they are open, and
/// a tunnel its client ends leaves it; the idle timeout is an hour unless
/// set.
#[test]
fn the_upgraded_gauge_counts_open_tunnels() {
    let (mut backend, addr) = python_server(WS_BACKEND);
    let mesh = start(&[("ws", &[addr])], "", "");
    assert_eq!(server_metric(&mesh, "upgraded", 0), Some(0));
    let mut one = ws_open(&mesh);
    let mut two = ws_open(&mesh);
    ws_echo(&mut one, "a");
    ws_echo(&mut two, "b");
    assert_eq!(server_metric(&mesh, "upgraded", 2), Some(2));
    one.shutdown(std::net::Shutdown::Write).unwrap();
    backend.wait_line(Duration::from_secs(5), |l| {
        (l == "backend saw EOF").then_some(())
    });
    let mut rest = Vec::new();
    one.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(server_metric(&mesh, "upgraded", 1), Some(1));
    ws_echo(&mut two, "still here");
    drop(two);
    assert_eq!(server_metric(&mesh, "upgraded", 0), Some(0));
    assert_eq!(server_metric(&mesh, "upgrade_idle_closes", 0), Some(0));
    let c = curl(&[&format!("http://{}/config.json", mesh.strait.admin)], &[]);
    let j: serde_json::Value = serde_json::from_str(&c.body).unwrap();
    assert_eq!(
        j["routers"][0]["servers"][0]["upgradeIdleTimeoutMs"],
        3_600_000
    );
}

/// An upgraded connection keeps its place in the descriptor budget: with
/// 128 descriptors (24 client connections), 24 open WebSockets leave a new
/// client waiting in the accept queue until one of them closes.
#[test]
fn upgraded_connections_keep_their_place_in_the_descriptor_budget() {
    let (_backend, addr) = python_server(WS_BACKEND);
    let (_b, plain) = raw_backend(ECHO_HOST, When::AfterBody);
    let mesh = start_as(&[("ws", &[addr]), ("h", &[plain])], "", "", |path| {
        Strait::start_with_nofile(BIN, path, 128)
    });
    let stderr = mesh.strait.proc.stderr();
    assert!(
        stderr.contains("descriptor limit 128: up to 24 client connections"),
        "{stderr}"
    );
    let mut tunnels: Vec<TcpStream> = (0..24).map(|_| ws_open(&mesh)).collect();
    for (i, t) in tunnels.iter_mut().enumerate() {
        ws_echo(t, &format!("t{i}"));
    }
    let mut late = TcpStream::connect(mesh.strait.router()).unwrap();
    late.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .unwrap();
    late.set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    let mut byte = [0u8; 1];
    let early = late.read(&mut byte);
    assert!(
        early.is_err(),
        "not served while 24 tunnels hold every place: {early:?}"
    );
    drop(tunnels.pop());
    late.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = Vec::new();
    late.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(
        status_of(&answer),
        200,
        "served once a tunnel closed: {answer}"
    );
    for (i, t) in tunnels.iter_mut().enumerate() {
        ws_echo(t, &format!("still {i}"));
    }
}

/// Finding 12: `CONNECT` to a name the router routes (what Node's
/// `ProxyAgent` does for every request through `http_proxy`) is answered
/// 200 and the requests inside the tunnel are routed as any other; CONNECT
/// to anything else is still refused.
#[test]
fn connect_to_a_mesh_name_routes_the_requests_inside() {
    let (_b, addr) = raw_backend(ECHO_HOST, When::AfterBody);
    let mesh = start(&[("h", &[addr])], "", "");
    let proxy = format!("http://{}", mesh.strait.router());
    let r = curl(&["-p", "-x", &proxy, "http://h/"], &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("host=[h]"), "{r:?}");
    let r = curl(&["-p", "-x", &proxy, "http://elsewhere:8080/"], &[]);
    assert_eq!(
        r.status, 405,
        "no tunnel to a name that does not route: {r:?}"
    );
    assert!(r.curl_stderr.contains("CONNECT tunnel failed"), "{r:?}");
    // A tunnel inside the tunnel is refused: one client could otherwise
    // stack tasks and buffers without end on one connection.
    let mut t = TcpStream::connect(mesh.strait.router()).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    t.write_all(b"CONNECT h:80 HTTP/1.1\r\nHost: h:80\r\n\r\n")
        .unwrap();
    assert_eq!(status_of(&read_head(&mut t)), 200, "the first tunnel opens");
    t.write_all(b"CONNECT h:80 HTTP/1.1\r\nHost: h:80\r\n\r\n")
        .unwrap();
    assert_eq!(
        status_of(&read_head(&mut t)),
        405,
        "no tunnel inside a tunnel"
    );
}

/// Finding 4: a client that never finishes its request head is cut after
/// `requestHeaderTimeoutMs` (default 30 s, in `/config.json`; set short
/// here), and a complete head within it is served.
#[test]
fn a_request_head_that_never_ends_is_cut() {
    let (_b, addr) = raw_backend(ECHO_HOST, When::AfterBody);
    let mesh = start(&[("h", &[addr])], "", "    requestHeaderTimeoutMs: 300\n");
    let mut s = TcpStream::connect(mesh.strait.router()).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let began = std::time::Instant::now();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "the connection was closed, not left open"
    );
    let ok = raw(
        mesh.strait.router(),
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(status_of(&ok), 200, "{ok}");
    let plain = start(&[("h", &[addr])], "", "");
    let c = curl(
        &[&format!("http://{}/config.json", plain.strait.admin)],
        &[],
    );
    let j: serde_json::Value = serde_json::from_str(&c.body).unwrap();
    assert_eq!(
        j["routers"][0]["servers"][0]["requestHeaderTimeoutMs"],
        30000
    );
}

/// Finding 12: an HTTP/2 client with prior knowledge (h2c) gets a 400 that
/// says why, not a silent close; an HTTP/1 request whose first bytes
/// arrive alone ("P", then "OST ...") is served as before.
#[test]
fn an_h2c_preface_gets_a_400_that_says_why() {
    let b = Backend::start("b");
    let mesh = start(&[("h", &[b.addr])], "", "");
    let router = mesh.strait.router();
    // The preface and an empty SETTINGS frame, as an h2c client sends.
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    let answer = raw(router, &hello, Duration::from_secs(5));
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert!(
        answer.contains("HTTP/2 with prior knowledge (h2c)"),
        "{answer}"
    );
    assert!(answer.contains("protocol: h2"), "{answer}");

    let mut s = TcpStream::connect(router).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(b"P").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    s.write_all(b"OST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    let head = read_head(&mut s);
    // http.server answers POST with 501: what matters is that it answered.
    assert_eq!(status_of(&head), 501, "{head}");
    assert!(head.contains("SimpleHTTP"), "the backend answered: {head}");
}

/// An HTTP/1.1 backend on tokio answering `200 ok` to each request after
/// `delay` (Python's accept queue of five would be the bottleneck).
fn tokio_backend(delay: Duration) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut buf, mut chunk) = (Vec::new(), [0u8; 4096]);
                    loop {
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            tokio::time::sleep(delay).await;
                            let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
                            if s.write_all(ok).await.is_err() {
                                return;
                            }
                        }
                        match s.read(&mut chunk).await {
                            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                            _ => return,
                        }
                    }
                });
            }
        });
    });
    rx.recv().unwrap()
}

/// Finding 5: with 256 descriptors and 400 clients connecting at once,
/// Strait accepts no more than its budget allows, every client is served
/// in turn, a keep-alive client connected before the flood keeps being
/// served, and no backend is blamed for the shortage.
#[test]
fn a_connection_flood_past_the_descriptor_limit_serves_everyone_in_turn() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let backend = tokio_backend(Duration::from_millis(50));
    let other = tokio_backend(Duration::from_millis(50));
    let mesh = start_as(&[("h", &[backend, other])], "", "", |path| {
        Strait::start_with_nofile(BIN, path, 256)
    });
    let router = mesh.strait.router();
    let mut steady = KeepAlive::connect(router);
    assert_eq!(steady.get("h"), 200);

    let flood = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut tasks = Vec::new();
            for _ in 0..400 {
                tasks.push(tokio::spawn(async move {
                    let mut s = tokio::net::TcpStream::connect(router).await.ok()?;
                    s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
                        .await
                        .ok()?;
                    let mut answer = Vec::new();
                    let read = s.read_to_end(&mut answer);
                    tokio::time::timeout(Duration::from_secs(60), read)
                        .await
                        .ok()?
                        .ok()?;
                    Some(status_of(&String::from_utf8_lossy(&answer)))
                }));
            }
            let mut statuses = Vec::new();
            for t in tasks {
                statuses.push(t.await.unwrap());
            }
            statuses
        })
    });
    // Meanwhile the client connected before the flood goes on.
    let steady_statuses: Vec<u16> = (0..100).map(|_| steady.get("h")).collect();
    let statuses = flood.join().unwrap();

    let served = statuses.iter().filter(|s| **s == Some(200)).count();
    assert_eq!(served, 400, "every flood client served: {statuses:?}");
    assert!(
        steady_statuses.iter().all(|s| *s == 200),
        "the keep-alive client: {steady_statuses:?}"
    );
    let m = metrics(&mesh);
    let (server, client) = ("rt/out/server/127.0.0.1", "rt/out/client/#/io.l5d.fs/h");
    let reached = m
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.starts_with(server) && k.ends_with("/descriptor_limit_reached"))
        .and_then(|(_, v)| v.as_i64());
    assert!(reached > Some(0), "the budget was reached: {reached:?}");
    assert_eq!(
        m[format!("{client}/failure_accrual/removals").as_str()].as_i64(),
        Some(0),
        "no endpoint ejected for the host's own shortage"
    );
    let stderr = mesh.strait.proc.stderr();
    assert!(
        stderr.contains("descriptor limit 256: up to 72 client connections"),
        "{stderr}"
    );
    assert!(!stderr.contains("Too many open files"), "{stderr}");
}

/// The router's own HTTP/1.1 server (issue 13): a request whose framing
/// two parsers could read differently (request smuggling: a length beside
/// chunked, two lengths, chunked not last, chunked on HTTP/1.0) gets a 400
/// that says why and never reaches a backend; pipelined requests are each
/// routed and answered in order; `Expect: 100-continue` gets its 100 when
/// the body is wanted, and the body then reaches the backend.
#[test]
fn smuggling_framings_never_reach_a_backend_and_pipelines_are_answered_in_order() {
    let b = Backend::scripted("b", Behavior::Ok);
    let mesh = start(&[("h", &[b.addr])], "", "");
    let router = mesh.strait.router();
    let wait = Duration::from_secs(5);
    for (req, why) in [
        (
            &b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"[..],
            "Content-Length with Transfer-Encoding",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhello",
            "differing Content-Length",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
            "chunked must be the last coding",
        ),
        (
            b"POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "HTTP/1.0",
        ),
    ] {
        let answer = raw(router, req, wait);
        assert_eq!(status_of(&answer), 400, "{why}: {answer}");
        assert!(answer.contains(why), "{why}: {answer}");
        assert_eq!(
            answer.matches("HTTP/1.1 ").count(),
            1,
            "nothing after it is read: {answer}"
        );
    }
    assert_eq!(b.count(), 0, "no refused request reached the backend");

    let answer = raw(
        router,
        b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\nGET /3 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        wait,
    );
    assert_eq!(
        answer.matches("HTTP/1.1 200 OK").count(),
        3,
        "three pipelined requests, three answers: {answer}"
    );
    assert_eq!(b.count(), 3);

    let mut s = TcpStream::connect(router).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(
        b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(read_head(&mut s), "HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"body").unwrap();
    let mut rest = String::new();
    let _ = s.read_to_string(&mut rest);
    assert_eq!(status_of(&rest), 200, "{rest}");
    assert_eq!(b.count(), 4, "the body's request reached the backend");
}

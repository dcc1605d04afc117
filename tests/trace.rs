//! Trace context across a real Strait: the backend sees the caller's trace
//! continued with this hop's span in every format, and the access log (in
//! Strait's JSON format) has the trace id and one line for every request,
//! routed or not.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use strait_router::trace::{parse_l5d_ctx_trace, parse_traceparent};
use strait_test_kit::{Proc, Strait, curl};

const BIN: &str = env!("CARGO_BIN_EXE_strait");

/// A backend whose body is the request's header lines, `name: value`,
/// names lower-cased (one line per header line received).
const ECHO_HEADERS: &str = r#"
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        body = "".join("%s: %s\n" % (k.lower(), v) for k, v in self.headers.items()).encode()
        # /reason answers with a reason phrase of its own.
        self.send_response(200, "Fine Thanks" if self.path == "/reason" else None)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
s.daemon_threads = True
print("Serving HTTP on 127.0.0.1 port %d (echo)" % s.server_address[1], flush=True)
s.serve_forever()
"#;

fn echo_backend() -> (Proc, SocketAddr) {
    let mut proc = Proc::spawn(Command::new("python3").args(["-u", "-c", ECHO_HEADERS]));
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
    dir: tempfile::TempDir,
    strait: Strait,
}

impl Mesh {
    /// Strait routing `/svc/echo` to `backend`, with an access log and
    /// `server` keys on its server.
    fn start(backend: SocketAddr, server: &str) -> Mesh {
        let dir = tempfile::tempdir().unwrap();
        let disco = dir.path().join("disco");
        std::fs::create_dir(&disco).unwrap();
        std::fs::write(
            disco.join("echo"),
            format!("{} {}\n", backend.ip(), backend.port()),
        )
        .unwrap();
        let path = dir.path().join("linkerd.yaml");
        std::fs::write(
            &path,
            format!(
                "admin:\n  port: 0\nnamers:\n- kind: io.l5d.fs\n  rootDir: {}\nrouters:\n- protocol: http\n  label: out\n  dtab: /svc => /#/io.l5d.fs;\n  httpAccessLog: {}\n  httpAccessLogFormat: json\n  servers:\n  - port: 0\n{server}",
                disco.display(),
                dir.path().join("access.log").display(),
            ),
        )
        .unwrap();
        let strait = Strait::start(BIN, &path);
        Mesh { dir, strait }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("access.log")
    }
}

/// The access log's lines once there are `n` (the writer is a thread);
/// then waits a little more, so an extra line would be seen.
fn log_lines(path: &Path, n: usize) -> Vec<String> {
    let read = || {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let start = Instant::now();
    while read().len() < n && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    read()
}

/// An access-log line, parsed.
fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// The header `name` of the echoed request.
fn echoed<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

/// Writes `bytes` on a fresh connection and reads until it closes.
fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER: &str = "00f067aa0ba902b7";

#[test]
fn a_traceparent_is_continued_to_the_backend_and_logged() {
    let (_b, backend) = echo_backend();
    let mesh = Mesh::start(backend, "");
    let url = format!("http://{}/x", mesh.strait.router());
    let r = curl(
        &[
            &url,
            "-H",
            "Host: echo",
            "-H",
            &format!("traceparent: 00-{TRACE}-{CALLER}-01"),
            "-H",
            "tracestate: congo=t61rcWkgMzE",
            "-H",
            "User-Agent: trace-test",
        ],
        &[],
    );
    assert_eq!(r.status, 200, "{r:?}");
    let body = &r.body;
    let tp = echoed(body, "traceparent").expect("traceparent sent on");
    let (out, flags) = parse_traceparent(tp.as_bytes()).expect("a valid traceparent");
    assert_eq!(out.trace.hex().as_str(), TRACE, "{tp}");
    assert_eq!(flags, 1, "flags kept: {tp}");
    let caller = u64::from_str_radix(CALLER, 16).unwrap();
    assert_ne!(out.span, caller, "a new span for this hop: {tp}");
    assert_eq!(echoed(body, "tracestate"), Some("congo=t61rcWkgMzE"));
    assert_eq!(
        echoed(body, "l5d-reqid"),
        Some(&TRACE[16..]),
        "l5d-reqid is the trace id's low 64 bits: {body}"
    );
    let ctx = parse_l5d_ctx_trace(echoed(body, "l5d-ctx-trace").unwrap().as_bytes())
        .expect("l5d-ctx-trace decodes");
    assert_eq!(ctx.trace, out.trace, "the same trace in both formats");
    assert_eq!(ctx.span, out.span);
    assert_eq!(
        ctx.parent,
        Some(caller),
        "this hop's parent is the caller's span"
    );
    assert_eq!(ctx.sampled, Some(true));
    assert!(
        echoed(body, "b3").is_none() && echoed(body, "x-b3-traceid").is_none(),
        "no B3 invented: {body}"
    );

    // Without trace headers: Linkerd's headers, and no W3C ones invented.
    let r = curl(&[&url, "-H", "Host: echo"], &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(echoed(&r.body, "traceparent").is_none(), "{}", r.body);
    let reqid = echoed(&r.body, "l5d-reqid").expect("l5d-reqid").to_owned();
    let ctx = parse_l5d_ctx_trace(echoed(&r.body, "l5d-ctx-trace").unwrap().as_bytes()).unwrap();
    assert_eq!(ctx.trace.hex().as_str(), reqid);

    let lines = log_lines(&mesh.log_path(), 2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let first = json(&lines[0]);
    assert_eq!(first["host"], "echo", "{first}");
    assert!(first["remote"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(first["method"], "GET");
    assert_eq!(first["uri"], "/x");
    assert_eq!(first["status"], 200);
    assert_eq!(first["bytes"], body.len());
    assert_eq!(first["user_agent"], "trace-test");
    assert_eq!(first["trace_id"], TRACE, "{first}");
    assert_eq!(first["l5d_reqid"], &TRACE[16..]);
    assert_eq!(
        json(&lines[1])["trace_id"],
        reqid.as_str(),
        "a 64-bit trace id is 16 digits: {}",
        lines[1]
    );
}

#[test]
fn requests_strait_answers_itself_are_logged_once_each() {
    let (_b, backend) = echo_backend();
    let mesh = Mesh::start(backend, "");
    let router = mesh.strait.router();
    let url = format!("http://{router}/");
    let mut want = Vec::new();
    let r = curl(&[&url, "-H", "Host: echo"], &[]);
    want.push(("echo", r.status));
    // No such service: 502 from the binding.
    let r = curl(
        &[
            &url,
            "-H",
            "Host: nosuch",
            "-H",
            &format!("traceparent: 00-{TRACE}-{CALLER}-00"),
        ],
        &[],
    );
    assert_eq!(r.status, 502, "{r:?}");
    want.push(("nosuch", 502));
    // Refused by the request checks: 400.
    let answer = raw(
        router,
        b"GET / HTTP/1.1\r\nHost: h/b\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    want.push(("h/b", 400));
    // Unidentified (HTTP/1.0 without Host): 400.
    let answer = raw(router, b"GET / HTTP/1.0\r\n\r\n");
    assert!(
        answer.starts_with("HTTP/1.") && answer[8..].starts_with(" 400"),
        "{answer}"
    );
    want.push(("-", 400));
    // Unroutable again.
    let r = curl(&[&url, "-H", "Host: nosuch"], &[]);
    want.push(("nosuch", r.status));

    let lines = log_lines(&mesh.log_path(), want.len());
    assert_eq!(lines.len(), want.len(), "one line per request: {lines:?}");
    for (line, (host, status)) in lines.iter().zip(&want) {
        let v = json(line);
        match *host {
            "-" => assert!(v["host"].is_null(), "{line}"),
            host => assert_eq!(v["host"], host, "{line}"),
        }
        assert_eq!(v["status"], *status, "{line}");
        let id = v["trace_id"].as_str().unwrap();
        assert!(id.len() == 16 || id.len() == 32, "the trace id: {line}");
        assert!(v["endpoint"].is_null() || v["status"] == 200, "{line}");
    }
    assert_eq!(
        json(&lines[1])["trace_id"],
        TRACE,
        "an unroutable request logs the caller's trace: {}",
        lines[1]
    );
}

#[test]
fn clear_context_starts_a_new_trace_but_keeps_w3c() {
    let (_b, backend) = echo_backend();
    let mesh = Mesh::start(backend, "    clearContext: true\n");
    let url = format!("http://{}/", mesh.strait.router());
    // A caller's l5d-ctx-trace is not trusted on a clearContext server.
    let first = curl(&[&url, "-H", "Host: echo"], &[]);
    let ctx = echoed(&first.body, "l5d-ctx-trace").unwrap().to_owned();
    let r = curl(
        &[
            &url,
            "-H",
            "Host: echo",
            "-H",
            &format!("l5d-ctx-trace: {ctx}"),
        ],
        &[],
    );
    let again = parse_l5d_ctx_trace(echoed(&r.body, "l5d-ctx-trace").unwrap().as_bytes()).unwrap();
    let before = parse_l5d_ctx_trace(ctx.as_bytes()).unwrap();
    assert_ne!(again.trace, before.trace, "a new root trace: {}", r.body);
    assert!(
        echoed(&r.body, "l5d-reqid").is_some(),
        "l5d-reqid still goes to the backend"
    );
    assert!(
        !r.headers.iter().any(|(k, _)| k.starts_with("l5d-")),
        "no l5d-* back to the caller: {r:?}"
    );
    // traceparent is not Linkerd context: it is continued.
    let r = curl(
        &[
            &url,
            "-H",
            "Host: echo",
            "-H",
            &format!("traceparent: 00-{TRACE}-{CALLER}-01"),
        ],
        &[],
    );
    let tp = echoed(&r.body, "traceparent").unwrap();
    assert!(tp.starts_with(&format!("00-{TRACE}-")), "{tp}");
}

#[test]
fn this_hops_headers_replace_the_callers_once_each_and_the_reason_phrase_comes_back() {
    let (_b, backend) = echo_backend();
    let mesh = Mesh::start(backend, "");
    let url = format!("http://{}/x", mesh.strait.router());
    // A caller that forges what Strait writes: its own l5d-reqid and
    // l5d-dst-*, and a Via from a proxy before.
    let r = curl(
        &[
            &url,
            "-H",
            "Host: echo",
            "-H",
            "l5d-reqid: forged",
            "-H",
            "l5d-dst-service: /svc/forged",
            "-H",
            "l5d-dst-client: /#/forged",
            "-H",
            "Via: 1.0 upstream",
        ],
        &[],
    );
    assert_eq!(r.status, 200, "{r:?}");
    let lines = |name: &str| -> Vec<String> {
        r.body
            .lines()
            .filter_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(lines("l5d-dst-service"), ["/svc/echo"], "{}", r.body);
    assert_eq!(lines("l5d-dst-client"), ["/#/io.l5d.fs/echo"], "{}", r.body);
    let reqid = lines("l5d-reqid");
    assert_eq!(reqid.len(), 1, "{}", r.body);
    assert_ne!(reqid[0], "forged");
    assert_eq!(lines("l5d-ctx-trace").len(), 1, "{}", r.body);
    // Via is a list: the caller's entry stays, this hop's follows it.
    assert_eq!(lines("via"), ["1.0 upstream", "1.1 strait"], "{}", r.body);
    assert_eq!(lines("host"), ["echo"], "{}", r.body);

    // A backend's own reason phrase reaches the caller.
    let answer = raw(
        mesh.strait.router(),
        b"GET /reason HTTP/1.1\r\nHost: echo\r\nConnection: close\r\n\r\n",
    );
    assert!(
        answer.starts_with("HTTP/1.1 200 Fine Thanks\r\n"),
        "{answer}"
    );
}

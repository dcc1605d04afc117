//! A shared node no local client can stall or confuse: the request path's
//! defences, driven with raw sockets where curl cannot say the request, and
//! raw backends where a well-behaved server would hide the problem.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use strait_test_kit::{Backend, Behavior, Proc, Strait, curl};

const BIN: &str = env!("CARGO_BIN_EXE_strait");

/// A backend on raw sockets: Python answers each request head with
/// `reply` (a whole HTTP response, `\r\n` escapes allowed) as soon as the
/// head is read, never reading a request body unless `drain` is true.
fn raw_backend(reply: &str, drain: bool) -> (Proc, SocketAddr) {
    let script = format!(
        r#"
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(64)
print("Serving HTTP on 127.0.0.1 port %d (raw)" % s.getsockname()[1], flush=True)
REPLY = {reply:?}.encode().decode("unicode_escape").encode("latin-1")
def serve(c):
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d: return
                buf += d
            head, buf = buf.split(b"\r\n\r\n", 1)
            c.sendall(REPLY)
            if {drain}:
                while True:
                    d = c.recv(65536)
                    if not d: return
            buf = b""
    except OSError:
        pass
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#,
        drain = if drain { "True" } else { "False" }
    );
    let mut proc = Proc::spawn(Command::new("python3").args(["-u", "-c", &script]));
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
fn start(services: &[(&str, SocketAddr)], router: &str, server: &str) -> Mesh {
    let disco = tempfile::tempdir().unwrap();
    for (name, addr) in services {
        std::fs::write(
            disco.path().join(name),
            format!("{} {}\n", addr.ip(), addr.port()),
        )
        .unwrap();
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
    let strait = Strait::start(BIN, &path);
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
    let (_b, addr) = raw_backend("HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok", true);
    let mesh = start(&[("up", addr)], "", "");
    // A: announces 1 MB, sends 10 bytes, then stalls.
    let mut a = TcpStream::connect(mesh.strait.router()).unwrap();
    a.write_all(b"POST / HTTP/1.1\r\nHost: up\r\nContent-Length: 1000000\r\n\r\n0123456789")
        .unwrap();
    a.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = [0u8; 12];
    a.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"HTTP/1.1 200", "A is answered before its upload ends");
    // B, on its own connection, while A's upload is stalled.
    let r = curl(
        &["--max-time", "5", "-H", "Host: up", &format!("http://{}/", mesh.strait.router())],
        &[],
    );
    assert_eq!(r.status, 200, "B is served at once: {r:?}");
    drop(a);
}

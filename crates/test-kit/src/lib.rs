//! Strait's test kit (dev-only): real processes and real tools for
//! end-to-end tests.
//!
//! * [`Backend`]: a real `python3 -m http.server` on an ephemeral loopback
//!   port, serving a directory whose `/` says which instance answered.
//! * [`Strait`]: the `strait` binary running a config, with the addresses
//!   it reports it listens on.
//! * [`curl`]: the real `curl`, with the response split into status,
//!   headers and body.
//! * [`consul`]: a Consul HTTP API simulator, in-process
//!   ([`consul::ConsulSim`]) or as the `consul-sim` binary.
//! * [`netns`]: network namespaces as hosts on a test LAN (Linux, root),
//!   for multi-host tests; [`Place`] says in which namespace a process
//!   runs (each harness has an `_in` variant taking one).
//!
//! Every child process is killed when its handle is dropped, so a failing
//! test leaves nothing behind. Ports are always 0 (the kernel picks).
//! This crate depends on no Strait crate: it speaks to Strait only over
//! sockets and the command line, so the types under test never leak in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod consul;
pub mod netns;

pub use netns::consul_sim_bin;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Where a child process runs: in the test's own network namespace, or in
/// a named one through `ip netns exec <name>` (which execs the program, so
/// the [`Proc`]'s pid is the program's own and killing it kills the
/// program).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Place {
    /// The test process's own network namespace.
    #[default]
    Here,
    /// The network namespace `ip netns` knows by this name.
    Netns(String),
}

impl Place {
    /// A [`Command`] that runs `program` here or in the namespace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        match self {
            Place::Here => Command::new(program),
            Place::Netns(name) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", name]).arg(program);
                cmd
            }
        }
    }
}

/// A child process killed on drop, with its stdout lines on a channel and
/// its stderr kept for failure messages.
pub struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Proc {
    /// Starts `cmd` with piped stdout/stderr.
    pub fn spawn(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let err = child.stderr.take().expect("piped stderr");
        let sink = std::sync::Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut r = BufReader::new(err);
            let mut line = String::new();
            while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        Proc {
            child,
            lines,
            stderr,
        }
    }

    /// Waits up to `timeout` for a stdout line for which `f` returns
    /// `Some`, returning that value. Panics with the process's stderr if the
    /// line never comes.
    pub fn wait_line<T>(&mut self, timeout: Duration, mut f: impl FnMut(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(v) = f(&line) {
                        return v;
                    }
                }
                Err(_) => panic!(
                    "expected output did not come within {timeout:?}; exit: {:?}; stderr:\n{}",
                    self.child.try_wait().ok().flatten(),
                    self.stderr()
                ),
            }
        }
    }

    /// Everything the process wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. `"TERM"`, `"HUP"`) with the real `kill`.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .map(|s| s.success());
        assert_eq!(ok.ok(), Some(true), "kill -{signal} {} failed", self.pid());
    }

    /// Waits up to `timeout` for the process to exit; its status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real Python HTTP server on `127.0.0.1:<ephemeral>`, whose `/` answers
/// `instance <name>\n` and which serves any file written into [`Backend::dir`].
pub struct Backend {
    /// The instance's name (what `/` answers).
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    _proc: Proc,
    /// A scripted backend's mode and argument, to restart it.
    script: Option<(&'static str, u32)>,
    /// Where it runs (its address is in that namespace).
    place: Place,
}

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

impl Backend {
    /// Starts a backend named `name`.
    pub fn start(name: &str) -> Backend {
        Backend::start_in(&Place::Here, name, LOOPBACK)
    }

    /// [`Backend::start`] at `place`, listening on `ip` (an address of
    /// that namespace).
    pub fn start_in(place: &Place, name: &str, ip: IpAddr) -> Backend {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), format!("instance {name}\n")).unwrap();
        let proc = Proc::spawn(
            place
                .command("python3")
                .args(["-u", "-m", "http.server", "0", "--bind"])
                .arg(ip.to_string())
                .arg("--directory")
                .arg(dir.path()),
        );
        Backend::announced(place, ip, name, dir, proc)
    }

    /// Starts a threaded HTTP/1.1 backend named `name` behaving as `b`.
    pub fn scripted(name: &str, b: Behavior) -> Backend {
        Backend::scripted_in(&Place::Here, name, b, LOOPBACK)
    }

    /// [`Backend::scripted`] at `place`, listening on `ip`.
    pub fn scripted_in(place: &Place, name: &str, b: Behavior, ip: IpAddr) -> Backend {
        let (mode, arg) = match b {
            Behavior::Ok => ("ok", 0),
            Behavior::HalfUnavailable => ("half", 0),
            Behavior::Unavailable => ("unavailable", 0),
            Behavior::Hang => ("hang", 0),
            Behavior::FailFirst(n) => ("failfirst", n),
            Behavior::Slow(ms) => ("slow", ms),
            Behavior::Echo => ("echo", 0),
        };
        let dir = tempfile::tempdir().unwrap();
        let proc = scripted_proc(place, ip, name, mode, arg, 0);
        let mut b = Backend::announced(place, ip, name, dir, proc);
        b.script = Some((mode, arg));
        b
    }

    /// Starts a scripted backend again on the same port (after [`kill`]),
    /// as an instance restarted by a deploy.
    ///
    /// [`kill`]: Backend::kill
    pub fn restart(&mut self) {
        let (mode, arg) = self.script.expect("only scripted backends restart");
        self.kill();
        let mut proc = scripted_proc(
            &self.place,
            self.addr.ip(),
            &self.name,
            mode,
            arg,
            self.addr.port(),
        );
        proc.wait_line(Duration::from_secs(20), |l| {
            l.starts_with("Serving HTTP on ").then_some(())
        });
        self._proc = proc;
    }

    /// Waits for the server's "Serving HTTP on <ip> port <port> ..." line
    /// (http.server's, which the scripted server imitates).
    fn announced(
        place: &Place,
        ip: IpAddr,
        name: &str,
        dir: tempfile::TempDir,
        mut proc: Proc,
    ) -> Backend {
        let port: u16 = proc.wait_line(Duration::from_secs(20), |l| {
            l.strip_prefix("Serving HTTP on ")
                .and_then(|r| r.split(" port ").nth(1))
                .and_then(|r| r.split_whitespace().next())
                .and_then(|p| p.parse().ok())
        });
        Backend {
            name: name.to_owned(),
            addr: SocketAddr::new(ip, port),
            dir,
            _proc: proc,
            script: None,
            place: place.clone(),
        }
    }

    /// Kills the backend process now (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self._proc.child.kill();
        let _ = self._proc.child.wait();
    }

    /// How many requests a scripted backend has answered (`GET /__count`).
    pub fn count(&self) -> u64 {
        let r = curl_in(
            &self.place,
            &[&format!("http://{}/__count", self.addr)],
            &[],
        );
        r.body
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("bad /__count answer: {r:?}"))
    }

    /// The pid of its process (for cleanup checks).
    pub fn pid(&self) -> u32 {
        self._proc.pid()
    }

    /// The directory it serves.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `host port` for an `io.l5d.fs` file.
    pub fn fs_line(&self) -> String {
        format!("{} {}", self.addr.ip(), self.addr.port())
    }
}

fn scripted_proc(place: &Place, ip: IpAddr, name: &str, mode: &str, arg: u32, port: u16) -> Proc {
    Proc::spawn(place.command("python3").args([
        "-u",
        "-c",
        SCRIPT,
        name,
        mode,
        &arg.to_string(),
        &port.to_string(),
        &ip.to_string(),
    ]))
}

/// What a scripted backend does with each request (see [`Backend::scripted`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// Always `200 instance <name>`.
    Ok,
    /// Every other request (2nd, 4th, ...) is `503`.
    HalfUnavailable,
    /// Always `503`.
    Unavailable,
    /// Never answers (holds the connection).
    Hang,
    /// The first `n` requests fail with `503`, then `200`.
    FailFirst(u32),
    /// Answers `200` after `n` milliseconds.
    Slow(u32),
    /// `200 instance <name>`, then one line per request header as
    /// `name: value` (names lower-cased), so a test sees what arrived.
    Echo,
}

/// A threaded Python HTTP/1.1 server whose answers follow a [`Behavior`];
/// `GET /__count` answers how many other requests it has seen.
const SCRIPT: &str = r#"
import sys, threading, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
name, mode, arg = sys.argv[1], sys.argv[2], int(sys.argv[3])
lock = threading.Lock()
count = [0]
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n: self.rfile.read(n)
        if self.path == "/__count":
            return self.reply(200, str(count[0]))
        with lock:
            count[0] += 1
            k = count[0]
        if mode == "hang":
            time.sleep(3600)
        if mode == "slow":
            time.sleep(arg / 1000.0)
        fail = (mode == "unavailable") or (mode == "half" and k % 2 == 0) or (mode == "failfirst" and k <= arg)
        text = ("unavailable " if fail else "instance ") + name + "\n"
        if mode == "echo":
            text += "".join("%s: %s\n" % (k.lower(), v) for k, v in self.headers.items())
        self.reply(503 if fail else 200, text)
    def reply(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any
srv = ThreadingHTTPServer((sys.argv[5], int(sys.argv[4])), H)
srv.daemon_threads = True
print("Serving HTTP on %s port %d (scripted)" % (sys.argv[5], srv.server_address[1]), flush=True)
srv.serve_forever()
"#;

/// A running `strait run --config ...`.
pub struct Strait {
    /// The process.
    pub proc: Proc,
    /// Router listeners, in the order Strait reported them, as
    /// `(router label, address)`.
    pub routers: Vec<(String, SocketAddr)>,
    /// The admin server.
    pub admin: SocketAddr,
}

impl Strait {
    /// Starts `bin run --config <config>` and waits until the admin server
    /// listens (which Strait reports after every router listener).
    pub fn start(bin: &str, config: &Path) -> Strait {
        Strait::start_in(&Place::Here, bin, config)
    }

    /// [`Strait::start`] at `place` (the addresses it reports are that
    /// namespace's).
    pub fn start_in(place: &Place, bin: &str, config: &Path) -> Strait {
        let mut cmd = place.command(bin);
        cmd.args(["run", "--config"]).arg(config);
        Strait::spawn(cmd)
    }

    /// `bin run <args> --config <config>` (e.g. `--log-format json`).
    pub fn start_with_args(bin: &str, config: &Path, args: &[&str]) -> Strait {
        let mut cmd = Command::new(bin);
        cmd.arg("run").args(args).arg("--config").arg(config);
        Strait::spawn(cmd)
    }

    /// [`Strait::start`] with at most `n` open descriptors (`prlimit
    /// --nofile`, soft and hard), as a host with a low `LimitNOFILE` would.
    pub fn start_with_nofile(bin: &str, config: &Path, n: u32) -> Strait {
        let mut cmd = Command::new("prlimit");
        cmd.arg(format!("--nofile={n}:{n}"))
            .args([bin, "run", "--config"])
            .arg(config);
        Strait::spawn(cmd)
    }

    fn spawn(mut cmd: Command) -> Strait {
        let mut proc = Proc::spawn(cmd.env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        ));
        let mut routers = Vec::new();
        let admin = proc.wait_line(Duration::from_secs(30), |l| {
            if let Some(rest) = l.strip_prefix("strait: router '") {
                let (label, addr) = rest.split_once("' listening on ")?;
                routers.push((label.to_owned(), addr.trim().parse().ok()?));
                None
            } else {
                l.strip_prefix("strait: admin listening on ")
                    .and_then(|a| a.trim().parse().ok())
            }
        });
        Strait {
            proc,
            routers,
            admin,
        }
    }

    /// The first router listener.
    pub fn router(&self) -> SocketAddr {
        self.routers
            .first()
            .map(|r| r.1)
            .expect("strait reported no router listener")
    }
}

/// What `curl -i` got back.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code (0 when curl failed to get a response).
    pub status: u16,
    /// Header lines as `(lower-cased name, value)`.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
    /// curl's stderr.
    pub curl_stderr: String,
}

impl Response {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Runs the real `curl -s -S -i <args>` (proxy variables cleared unless
/// given through `env`) and parses the response.
pub fn curl(args: &[&str], env: &[(&str, &str)]) -> Response {
    curl_in(&Place::Here, args, env)
}

/// [`curl`] run at `place`.
pub fn curl_in(place: &Place, args: &[&str], env: &[(&str, &str)]) -> Response {
    let mut cmd = place.command("curl");
    cmd.args(["-s", "-S", "-i", "--max-time", "20"]).args(args);
    for k in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "no_proxy",
        "NO_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .expect("curl must be installed (scripts/test installs it)");
    let raw = String::from_utf8_lossy(&out.stdout).into_owned();
    let curl_stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
        curl_stderr,
    }
}

/// Writes `text` to a fresh file named `name` in a new temporary directory.
pub fn write_temp(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// Reads a whole stream (for raw socket tests).
pub fn read_all(mut r: impl Read) -> String {
    let mut s = String::new();
    let _ = r.read_to_string(&mut s);
    s
}

/// What the real `wrk` reported.
#[derive(Debug, Clone)]
pub struct Load {
    /// Requests completed.
    pub requests: u64,
    /// Responses that were not 2xx or 3xx.
    pub non2xx: u64,
    /// Connect, read, write and timeout errors together.
    pub socket_errors: u64,
    /// wrk's whole output, for failure messages.
    pub text: String,
}

/// Runs `wrk -t1 -c4 -d<secs>s -H 'Host: <host>' <url>` (installed by
/// scripts/test) and parses its totals.
pub fn wrk(url: &str, host: &str, secs: u32) -> Load {
    wrk_in(&Place::Here, url, host, secs)
}

/// [`wrk`] run at `place`.
pub fn wrk_in(place: &Place, url: &str, host: &str, secs: u32) -> Load {
    let out = place
        .command("wrk")
        .args([
            "-t1",
            "-c4",
            &format!("-d{secs}s"),
            "-H",
            &format!("Host: {host}"),
            url,
        ])
        .output()
        .expect("wrk must be installed (scripts/test installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let after =
        |key: &str| -> Option<&str> { text.lines().find(|l| l.contains(key))?.split(key).nth(1) };
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let non2xx = after("Non-2xx or 3xx responses:")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    // "Socket errors: connect 0, read 0, write 0, timeout 0"
    let socket_errors = after("Socket errors:")
        .map(|s| {
            s.split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Load {
        requests,
        non2xx,
        socket_errors,
        text,
    }
}

/// [`wrk`] on a background thread.
pub fn wrk_in_background(url: String, host: &str, secs: u32) -> std::thread::JoinHandle<Load> {
    let host = host.to_owned();
    std::thread::spawn(move || wrk(&url, &host, secs))
}

/// One keep-alive HTTP/1.1 connection for many small requests (curl would
/// cost a process per request).
pub struct KeepAlive(std::io::BufReader<std::net::TcpStream>);

impl KeepAlive {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> KeepAlive {
        let stream = std::net::TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        KeepAlive(std::io::BufReader::new(stream))
    }

    /// Sends `GET /` with `Host: <host>`, reads the whole response; its
    /// status code.
    pub fn get(&mut self, host: &str) -> u16 {
        use std::io::{BufRead, Write};
        // One write per request: split writes would meet Nagle's algorithm
        // and delayed ACKs (40 ms per request).
        let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: strait-test-kit\r\n\r\n");
        self.0.get_mut().write_all(req.as_bytes()).expect("write");
        let mut line = String::new();
        self.0.read_line(&mut line).expect("status line");
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut len = 0usize;
        loop {
            line.clear();
            self.0.read_line(&mut line).expect("header line");
            if line == "\r\n" {
                break;
            }
            if let Some((_, v)) = line
                .split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            {
                len = v.trim().parse().expect("content-length");
            }
        }
        let mut body = vec![0; len];
        self.0.read_exact(&mut body).expect("body");
        status
    }
}

/// A process's resident set size (VmRSS), KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("/proc/<pid>/status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

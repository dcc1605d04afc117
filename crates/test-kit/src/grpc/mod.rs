//! Real gRPC peers (Python `grpcio`) and raw HTTP/2 requests (`curl`),
//! for the h2 router's end-to-end tests.
//!
//! * [`GrpcBackend`]: `backend.py`, a grpcio server on an ephemeral
//!   loopback port serving `strait.test.Echo` (`Unary`, `ServerStream`,
//!   `ClientStream`, `Bidi`, `Slow`, `Fail`, `Big`, `Stats`) on raw bytes,
//!   each reply carrying the backend's name.
//! * [`grpc_client`] / [`GrpcLoad`]: `client.py`, a grpcio client making
//!   many calls of one kind on ONE channel, reporting status codes,
//!   details and the backends that answered.
//! * [`h2_curl`]: the real `curl` over HTTP/2, with response headers and
//!   trailers apart; [`grpc_frame`] makes a request body for it.
//!
//! grpcio comes from PyPI: `scripts/test` installs a pinned version into
//! a venv at `target/test-venv` and names its python in
//! `STRAIT_TEST_PYTHON`. Without it these helpers panic saying so (a test
//! that needs gRPC fails; it never skips).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{LOOPBACK, Proc};

const BACKEND_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/grpc/backend.py");
const CLIENT_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/grpc/client.py");

/// Where `scripts/test` makes the venv: the workspace's `target/test-venv`.
fn default_venv() -> PathBuf {
    let kit = Path::new(env!("CARGO_MANIFEST_DIR"));
    kit.ancestors()
        .nth(2)
        .unwrap_or(kit)
        .join("target")
        .join("test-venv")
}

/// The service every [`GrpcBackend`] serves.
pub const SERVICE: &str = "strait.test.Echo";

/// The python that has grpcio: `$STRAIT_TEST_PYTHON`, else the venv
/// `scripts/test` makes. Panics, saying how to get it, when grpcio is not
/// importable there.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let venv = default_venv();
            let (py, from) = match std::env::var_os("STRAIT_TEST_PYTHON") {
                Some(p) => (PathBuf::from(p), "STRAIT_TEST_PYTHON"),
                None => (venv.join("bin").join("python"), "the default venv"),
            };
            let out = Command::new(&py)
                .args(["-c", "import grpc; print(grpc.__version__)"])
                .output();
            match out {
                Ok(o) if o.status.success() => Ok(py),
                other => Err(format!(
                    "the gRPC tests need Python with grpcio, and {} ({from}) has none ({}): \
                     run scripts/test, which installs grpcio into {venv} and sets \
                     STRAIT_TEST_PYTHON",
                    py.display(),
                    match other {
                        Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
                        Err(e) => e.to_string(),
                    },
                    venv = venv.display(),
                )),
            }
        })
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A real grpcio server named `name` on `127.0.0.1:<ephemeral>` (see
/// `backend.py` for its methods). Killed on drop.
pub struct GrpcBackend {
    /// Its name (in every reply).
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    proc: Proc,
}

impl GrpcBackend {
    /// Starts a backend named `name` and waits until it serves.
    pub fn start(name: &str) -> GrpcBackend {
        let mut proc = Proc::spawn(Command::new(python()).args(["-u", BACKEND_PY, name, "0"]));
        let port: u16 = proc.wait_line(Duration::from_secs(30), |l| {
            l.strip_prefix("gRPC backend ")?
                .rsplit_once(" port ")?
                .1
                .trim()
                .parse()
                .ok()
        });
        GrpcBackend {
            name: name.to_owned(),
            addr: SocketAddr::new(LOOPBACK, port),
            proc,
        }
    }

    /// Kills it now (SIGKILL), as a crash would: its connections are
    /// reset, its port refuses.
    pub fn kill(&mut self) {
        let _ = self.proc.child.kill();
        let _ = self.proc.child.wait();
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// `host port` for an `io.l5d.fs` file.
    pub fn fs_line(&self) -> String {
        format!("{} {}", self.addr.ip(), self.addr.port())
    }

    /// What it has served, asked directly (its `Stats` method).
    pub fn stats(&self) -> BackendStats {
        let run = grpc_client(self.addr, &["--kind", "stats"]);
        assert_eq!(
            run.ok(),
            1,
            "Stats call to backend {} failed: {run:?}",
            self.name
        );
        let raw = run.raw["stats"].clone();
        let calls = raw["calls"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        let deadline_ms = raw["deadline_ms"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_f64())).collect())
            .unwrap_or_default();
        BackendStats {
            calls,
            deadline_ms,
            raw,
        }
    }
}

/// A backend's account of the calls it served.
#[derive(Debug, Clone)]
pub struct BackendStats {
    /// Calls per method (`Unary`, `Bidi`, ...), not counting `Stats`.
    pub calls: BTreeMap<String, u64>,
    /// Per method, the milliseconds its last call had left when it arrived
    /// (`None`: the call came without a deadline, no `grpc-timeout`).
    pub deadline_ms: BTreeMap<String, Option<f64>>,
    /// The whole answer (also each method's last request metadata).
    pub raw: Value,
}

impl BackendStats {
    /// Calls of `method` served.
    pub fn calls(&self, method: &str) -> u64 {
        self.calls.get(method).copied().unwrap_or(0)
    }

    /// The text metadata (`name -> value`) of the last `method` call.
    pub fn metadata(&self, method: &str) -> BTreeMap<String, String> {
        self.raw["metadata"][method]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One call as the client saw it.
#[derive(Debug, Clone)]
pub struct CallResult {
    /// Its number in the run.
    pub index: u64,
    /// The gRPC status code's name (`OK`, `UNAVAILABLE`, ...), or
    /// `MISMATCH` when the reply was wrong (a bad echo, count or size).
    pub code: String,
    /// The status details (`grpc-message`), for failed calls.
    pub details: Option<String>,
    /// The backend whose name the reply carried.
    pub backend: Option<String>,
    /// Payload bytes the call moved (as the kind counts them).
    pub bytes: u64,
    /// Messages received (streams) or sent (client streams).
    pub messages: u64,
    /// How long the call took, ms.
    pub ms: f64,
}

/// What a [`grpc_client`] run reported.
#[derive(Debug, Clone)]
pub struct GrpcRun {
    /// Calls finished.
    pub calls: u64,
    /// Calls per status code name.
    pub codes: BTreeMap<String, u64>,
    /// Successful calls per backend name.
    pub backends: BTreeMap<String, u64>,
    /// The failed calls (the first 100).
    pub failures: Vec<CallResult>,
    /// The first calls in detail (200 unless `--keep` says otherwise).
    pub results: Vec<CallResult>,
    /// The run's wall time, ms.
    pub elapsed_ms: f64,
    /// The client's whole JSON report.
    pub raw: Value,
}

impl GrpcRun {
    /// Calls that ended `OK`.
    pub fn ok(&self) -> u64 {
        self.codes.get("OK").copied().unwrap_or(0)
    }

    /// Calls that did not end `OK`.
    pub fn failed(&self) -> u64 {
        self.calls - self.ok()
    }

    fn parse(json: &str) -> GrpcRun {
        let raw: Value = serde_json::from_str(json)
            .unwrap_or_else(|e| panic!("bad client report ({e}): {json}"));
        let counts = |v: &Value| -> BTreeMap<String, u64> {
            v.as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let list = |v: &Value| -> Vec<CallResult> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .map(|r| CallResult {
                            index: r["i"].as_u64().unwrap_or(0),
                            code: r["code"].as_str().unwrap_or("").to_owned(),
                            details: r["details"].as_str().map(str::to_owned),
                            backend: r["backend"].as_str().map(str::to_owned),
                            bytes: r["bytes"].as_u64().unwrap_or(0),
                            messages: r["messages"].as_u64().unwrap_or(0),
                            ms: r["ms"].as_f64().unwrap_or(0.0),
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        GrpcRun {
            calls: raw["calls"].as_u64().unwrap_or(0),
            codes: counts(&raw["codes"]),
            backends: counts(&raw["backends"]),
            failures: list(&raw["failures"]),
            results: list(&raw["results"]),
            elapsed_ms: raw["elapsed_ms"].as_f64().unwrap_or(0.0),
            raw,
        }
    }
}

fn client_command(target: SocketAddr, args: &[&str]) -> Command {
    let mut cmd = Command::new(python());
    cmd.args(["-u", CLIENT_PY, "--target", &target.to_string()])
        .args(args);
    cmd
}

fn wait_result(proc: &mut Proc, timeout: Duration) -> GrpcRun {
    let json = proc.wait_line(timeout, |l| l.strip_prefix("result ").map(str::to_owned));
    GrpcRun::parse(&json)
}

/// Runs `client.py --target <target> <args>` to the end (at most two
/// minutes) and returns its report. `args` as `client.py` takes them:
/// `--kind unary|server_stream|client_stream|bidi|slow|fail|big|stats`,
/// `--calls N`, `--parallel K` (threads on the one channel),
/// `--timeout-ms MS`, `--metadata k=v`, `--size BYTES`, `--chunk BYTES`,
/// `--messages N`, `--arg A` (slow: ms; fail: code), `--service NAME`.
pub fn grpc_client(target: SocketAddr, args: &[&str]) -> GrpcRun {
    let mut proc = Proc::spawn(&mut client_command(target, args));
    wait_result(&mut proc, Duration::from_secs(120))
}

/// A client calling until told to stop, for load while a test changes
/// something (see [`GrpcLoad::start`]).
pub struct GrpcLoad {
    proc: Proc,
    stop_dir: tempfile::TempDir,
    done: u64,
}

impl GrpcLoad {
    /// Starts `client.py --target <target> <args>` calling until
    /// [`GrpcLoad::stop`] (it reports progress every 10 calls).
    pub fn start(target: SocketAddr, args: &[&str]) -> GrpcLoad {
        let stop_dir = tempfile::tempdir().unwrap();
        let stop = stop_dir.path().join("stop");
        let mut cmd = client_command(target, args);
        cmd.args(["--progress", "10", "--until"]).arg(&stop);
        GrpcLoad {
            proc: Proc::spawn(&mut cmd),
            stop_dir,
            done: 0,
        }
    }

    /// Waits (at most a minute) until at least `n` calls have finished,
    /// whatever their outcome; how many have.
    pub fn wait_calls(&mut self, n: u64) -> u64 {
        if self.done >= n {
            return self.done;
        }
        self.done = self.proc.wait_line(Duration::from_secs(60), |l| {
            l.strip_prefix("progress ")
                .and_then(|d| d.trim().parse().ok())
                .filter(|d| *d >= n)
        });
        self.done
    }

    /// Stops it (calls under way finish) and returns its report.
    pub fn stop(mut self) -> GrpcRun {
        std::fs::write(self.stop_dir.path().join("stop"), "").unwrap();
        wait_result(&mut self.proc, Duration::from_secs(60))
    }
}

/// A gRPC message framed for the wire (a request body for [`h2_curl`]):
/// the uncompressed flag, the 4-byte big-endian length, the message.
pub fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let len = u32::try_from(message.len()).expect("message under 4 GiB");
    let mut f = vec![0];
    f.extend_from_slice(&len.to_be_bytes());
    f.extend_from_slice(message);
    f
}

/// What [`h2_curl`] got.
#[derive(Debug, Clone)]
pub struct H2Response {
    /// The HTTP status (0 when curl got no response).
    pub status: u16,
    /// curl's `%{http_version}`: `2` for HTTP/2, `1.1`, ...
    pub http_version: String,
    /// Response header lines as `(lower-cased name, value)`.
    pub headers: Vec<(String, String)>,
    /// Trailer lines, the same way.
    pub trailers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// curl's exit code.
    pub exit: i32,
    /// curl's stderr.
    pub curl_stderr: String,
    /// How long curl ran.
    pub elapsed: Duration,
}

impl H2Response {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }

    /// The first value of trailer `name`.
    pub fn trailer(&self, name: &str) -> Option<&str> {
        find(&self.trailers, name)
    }

    /// `grpc-status` (from the trailers, or the headers of a
    /// trailers-only response).
    pub fn grpc_status(&self) -> Option<&str> {
        self.trailer("grpc-status")
            .or_else(|| self.header("grpc-status"))
    }

    /// `grpc-message`, percent-decoded (gRPC's encoding of it).
    pub fn grpc_message(&self) -> Option<String> {
        self.trailer("grpc-message")
            .or_else(|| self.header("grpc-message"))
            .map(percent_decode)
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn find<'a>(list: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    list.iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
}

/// `%XX` decoding (gRPC's `grpc-message` and URL-encoded `l5d-err`; `+`
/// is kept: decode it separately where form encoding applies).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = || std::str::from_utf8(b.get(i + 1..i + 3)?).ok();
        match (b[i], hex().and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs the real `curl -s -S <args>` (proxy variables cleared), keeping
/// response headers, trailers and body apart; `body` (when given) is sent
/// with `--data-binary`. Pass `--http2-prior-knowledge` (h2c) or
/// `--http2` (ALPN over TLS) in `args` as the test needs.
pub fn h2_curl(args: &[&str], body: Option<&[u8]>) -> H2Response {
    let dir = tempfile::tempdir().unwrap();
    let heads = dir.path().join("headers");
    let out = dir.path().join("body");
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-S", "--max-time", "20", "-w", "%{http_version}"])
        .arg("-D")
        .arg(&heads)
        .arg("-o")
        .arg(&out);
    if let Some(b) = body {
        let req = dir.path().join("request");
        std::fs::write(&req, b).unwrap();
        cmd.arg("--data-binary").arg(format!("@{}", req.display()));
    }
    cmd.args(args);
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
    let t0 = Instant::now();
    let o = cmd
        .output()
        .expect("curl must be installed (scripts/test installs it)");
    let elapsed = t0.elapsed();
    let head = std::fs::read_to_string(&heads).unwrap_or_default();
    // `-D` holds the status line and headers, a blank line, then the
    // trailers (curl passes both to its header output). 1xx heads come
    // first; the final head is the last one with a status line.
    let mut status = 0;
    let mut headers = Vec::new();
    let mut trailers = Vec::new();
    let mut in_trailers = false;
    for line in head.split("\r\n").flat_map(|l| l.split('\n')) {
        if line.starts_with("HTTP/") {
            status = line
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            headers.clear();
            in_trailers = false;
        } else if line.is_empty() {
            if status >= 200 {
                in_trailers = true;
            }
        } else if let Some((k, v)) = line.split_once(':') {
            let kv = (k.trim().to_ascii_lowercase(), v.trim().to_owned());
            if in_trailers {
                trailers.push(kv);
            } else {
                headers.push(kv);
            }
        }
    }
    H2Response {
        status,
        http_version: String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        headers,
        trailers,
        body: std::fs::read(&out).unwrap_or_default(),
        exit: o.status.code().unwrap_or(-1),
        curl_stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        elapsed,
    }
}

//! Feeds arbitrary bytes to the HTTP request path: one client connection of
//! an in-process router ([`Server::connection`]) over an in-memory duplex
//! stream. The input is written, and whatever the router answers is read
//! until EOF or [`BUDGET`]; the write side is shut once the answers pause
//! for [`IDLE`] (shut at once, it would cancel the requests in flight). Nothing may panic (a
//! panic in any task aborts the process: libfuzzer-sys installs an aborting
//! panic hook), and whatever comes back is an HTTP/1.x response.
//!
//! The router's dtab sends `/svc` to a small in-process backend
//! (`/$/inet/127.0.0.1/<port>`, answers 200 `ok` to everything) and a few
//! names elsewhere: `down` to a port where nothing listens, `fail` to `!`
//! (binds nowhere: 502 "Unable to route request"), `neg` to `~` (which
//! falls back to the `/svc` dentry, as in Finagle). The seeds use each as a
//! `Host`; `STRAIT_FUZZ_SHOW=1` prints what the router answered when
//! replaying them.
//!
//! Requests may carry `l5d-dtab`, which can route to any address the host
//! can reach (issue 12, finding 1), so the target refuses to run unless it
//! is in a network namespace of its own, with loopback only (run it under
//! `unshare -rn`; see the README), or `STRAIT_FUZZ_ALLOW_NETWORK=1` is set.

#![no_main]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use libfuzzer_sys::fuzz_target;
use strait_dtab::{Dtab, Path};
use strait_naming::Interpreter;
use strait_naming::inet::InetResolver;
use strait_router::identify::Identifier;
use strait_router::server::Server;
use strait_router::stats::Registry;
use strait_router::{Router, RouterParams, ServerParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

/// The longest one input may take, from the first byte written to the last
/// byte read. Inputs that leave a request waiting (a retry backoff, a
/// binding that never completes) end here.
const BUDGET: Duration = Duration::from_millis(50);

/// How long the answers may pause before the client shuts its write side.
const IDLE: Duration = Duration::from_millis(5);

/// Most response bytes kept per input.
const MAX_OUT: usize = 1 << 20;

struct World {
    rt: Runtime,
    server: Arc<Server>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        isolated_or_exit();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let server = rt.block_on(async {
            let backend = backend().await;
            router(backend)
        });
        World { rt, server }
    })
}

/// `STRAIT_FUZZ_SHOW=1`: print each answer to stderr.
fn show() -> bool {
    static SHOW: OnceLock<bool> = OnceLock::new();
    *SHOW.get_or_init(|| std::env::var_os("STRAIT_FUZZ_SHOW").is_some_and(|v| v == "1"))
}

/// Exits unless the process sees no network interface but loopback.
fn isolated_or_exit() {
    if std::env::var_os("STRAIT_FUZZ_ALLOW_NETWORK").is_some_and(|v| v == "1") {
        return;
    }
    let ifaces: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    // /sys/class/net shows the namespace of whoever mounted /sys, so ask the
    // kernel for this process's own view too.
    let dev = std::fs::read_to_string("/proc/self/net/dev").unwrap_or_default();
    let own: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    if own.is_empty() || own.iter().any(|i| *i != "lo") {
        eprintln!(
            "http fuzz target: this process can reach the network ({own:?}, {ifaces:?}); \
             l5d-dtab lets an input route to any address. Run it under `unshare -rn` \
             (see the README), or set STRAIT_FUZZ_ALLOW_NETWORK=1."
        );
        std::process::exit(2);
    }
}

/// A backend on 127.0.0.1 that answers every request 200 `ok`, after
/// reading its body.
async fn backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let svc = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    let _ = req.into_body().collect().await;
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                        b"ok",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

fn router(backend: SocketAddr) -> Arc<Server> {
    let interp = Interpreter::new(vec![], InetResolver::default());
    let registry = Registry::default();
    let dtab = format!(
        "/svc=>/$/inet/127.0.0.1/{};/svc/down=>/$/inet/127.0.0.1/1;/svc/neg=>~;/svc/fail=>!",
        backend.port()
    );
    let params = RouterParams {
        label: "fuzz".into(),
        dtab: Dtab::read(&dtab).expect("dtab"),
        dst_prefix: Path::read("/svc").expect("prefix"),
        identifiers: vec![Identifier::HeaderToken {
            header: http::header::HOST,
        }],
        binding_timeout: Duration::from_millis(20),
        binding_limits: Default::default(),
        cache_capacity: 100,
        client_capacity: 100,
        // Short, so that the expiry task below (the daemon's, every
        // idle_ttl / 4) keeps bindings, clients and their metrics bounded.
        idle_ttl: Duration::from_secs(4),
        max_headers_bytes: 8192,
        max_initial_line_bytes: 4096,
        max_err_bytes: 5 << 20,
        max_call_depth: 1000,
        access_log: None,
        policies: Default::default(),
        protocol: strait_router::Protocol::Http1,
        interpreter: None,
        telemeters: None,
    };
    let router = Router::new(params, interp, registry.clone());
    let r = Arc::clone(&router);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            r.expire_idle();
        }
    });
    let local: SocketAddr = "127.0.0.1:4140".parse().expect("addr");
    let sp = ServerParams {
        label: "127.0.0.1/4140".into(),
        clear_context: false,
        add_forwarded: true,
        local,
        // Overrides on (to loopback only), so that l5d-dtab paths are fuzzed.
        dtab_override: Some(Arc::new(strait_router::guard::OverrideGuard::new(
            &[local],
            strait_router::guard::InetRule::loopback(),
            &Dtab::read(&dtab).expect("dtab"),
        ))),
        client_networks: std::sync::Arc::new(strait_router::clients::ClientNetworks::any()),
        limits: Default::default(),
        h2: Default::default(),
    };
    Server::new(sp, router, &registry, None, 12 * 1024)
}

async fn one(server: &Arc<Server>, data: &[u8]) -> Vec<u8> {
    let (client, io) = tokio::io::duplex(1 << 20);
    let remote: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
    let conn = tokio::spawn(server.connection(io, remote));
    let (mut rd, mut wr) = tokio::io::split(client);
    let mut out = Vec::new();
    let exchange = async {
        // The duplex holds any input libFuzzer makes (-max_len 4096 by
        // default) without the server reading, so writing first is safe.
        let _ = wr.write_all(data).await;
        let read = async {
            let mut buf = [0u8; 16 * 1024];
            let mut shut = false;
            loop {
                // The server answers a client that half-closes with nothing
                // (hyper's `half_close(false)`: EOF cancels the request in
                // flight), so the write side stays open until the answers
                // stop coming, then shuts for the server to finish.
                let read = if shut {
                    rd.read(&mut buf).await
                } else {
                    match tokio::time::timeout(IDLE, rd.read(&mut buf)).await {
                        Ok(r) => r,
                        Err(_) => {
                            shut = true;
                            let _ = wr.shutdown().await;
                            continue;
                        }
                    }
                };
                match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) if out.len() < MAX_OUT => out.extend_from_slice(&buf[..n]),
                    Ok(_) => {}
                }
            }
        };
        read.await;
    };
    let _ = tokio::time::timeout(BUDGET, exchange).await;
    conn.abort();
    let _ = conn.await;
    out
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let out = w.rt.block_on(one(&w.server, data));
    if show() {
        // Replaying seeds or artifacts: what the router answered.
        eprintln!("{}", String::from_utf8_lossy(&out[..out.len().min(4096)]));
    }
    // A response carries the request's minor version (1.0 or 1.1).
    let n = out.len().min(9);
    assert!(
        out[..n] == b"HTTP/1.1 "[..n] || out[..n] == b"HTTP/1.0 "[..n],
        "not an HTTP/1.x response: {:?}",
        String::from_utf8_lossy(&out[..out.len().min(200)])
    );
});

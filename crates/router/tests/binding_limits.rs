//! `bindingLimits`: a per-request dtab that expands too far (the "dtab
//! bomb": each level a union of two paths to the next) is a 400 naming the
//! cap, is not cached, and cannot hold the async workers meanwhile; the
//! `l5d-dtab` headers are capped in size; `bindingTimeoutMs` stops binding
//! work that runs long.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strait_dtab::{Dtab, Path};
use strait_naming::Interpreter;
use strait_naming::inet::InetResolver;
use strait_router::identify::Identifier;
use strait_router::server::Server;
use strait_router::stats::Registry;
use strait_router::{BindingLimits, Router, RouterParams, ServerParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A backend answering `200 ok` to every request.
async fn backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0; 16 * 1024];
                let mut seen = Vec::new();
                loop {
                    let Ok(n) = s.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.drain(..end + 4);
                        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if s.write_all(ok).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// A router whose dtab sends every name to `backend`.
async fn start(
    backend: SocketAddr,
    limits: BindingLimits,
    timeout: Duration,
) -> (SocketAddr, Arc<Router>) {
    let registry = Registry::default();
    let params = RouterParams {
        protocol: strait_router::Protocol::Http1,
        label: "http".into(),
        dtab: Dtab::read(&format!(
            "/svc=>/$/inet/{}/{}",
            backend.ip(),
            backend.port()
        ))
        .unwrap(),
        dst_prefix: Path::read("/svc").unwrap(),
        identifiers: vec![Identifier::HeaderToken {
            header: http::header::HOST,
        }],
        binding_timeout: timeout,
        binding_limits: limits,
        cache_capacity: 100,
        client_capacity: 100,
        idle_ttl: Duration::from_secs(600),
        max_headers_bytes: 64 * 1024,
        max_initial_line_bytes: 4096,
        max_err_bytes: 5 << 20,
        max_call_depth: 1000,
        access_log: None,
        policies: Default::default(),
        interpreter: None,
        telemeters: None,
    };
    let interp = Interpreter::new(Vec::new(), InetResolver::default());
    let router = Router::new(params, interp, registry.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    let sp = ServerParams {
        h2: Default::default(),
        label: format!("127.0.0.1/{}", local.port()),
        clear_context: false,
        add_forwarded: false,
        local,
        // The bombs come in `l5d-dtab`: overrides on, to loopback only.
        dtab_override: Some(Arc::new(strait_router::guard::OverrideGuard::new(
            &[local],
            strait_router::guard::InetRule::loopback(),
            &strait_dtab::Dtab::empty(),
        ))),
        client_networks: std::sync::Arc::new(strait_router::clients::ClientNetworks::any()),
        limits: Default::default(),
    };
    let server = Server::new(sp, Arc::clone(&router), &registry, None, 64 * 1024);
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let _keep = tx;
        server.serve(listener, rx, Duration::from_secs(1)).await;
    });
    (local, router)
}

async fn get(addr: SocketAddr, host: &str, dtab: Option<&str>) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let dtab = dtab.map_or(String::new(), |d| format!("l5d-dtab: {d}\r\n"));
    s.write_all(
        format!("GET / HTTP/1.1\r\nHost: {host}\r\n{dtab}Connection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// `levels` levels of `/a<i>` and `/b<i>` both rewriting to
/// `/a<i+1> & /b<i+1>`, ending at `end`: 2^levels leaves.
fn bomb(levels: usize, end: SocketAddr) -> String {
    let mut s = String::from("/svc=>/a0");
    for i in 0..levels {
        let n = i + 1;
        s.push_str(&format!(";/a{i}=>/a{n} & /b{n};/b{i}=>/a{n} & /b{n}"));
    }
    let end = format!("/$/inet/{}/{}", end.ip(), end.port());
    s.push_str(&format!(";/a{levels}=>{end};/b{levels}=>{end}"));
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dtab_bomb_is_a_400_naming_the_cap_and_is_not_cached() {
    let be = backend().await;
    let (addr, router) = start(be, BindingLimits::default(), Duration::from_secs(10)).await;
    let start = Instant::now();
    let resp = get(addr, "web", Some(&bomb(20, be))).await;
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(
        resp.contains("l5d-err: Unable+to+route+request%21")
            && resp.contains("bindingLimits.maxLeaves"),
        "{resp}"
    );
    assert!(
        resp.contains("more than 1000 bound names (bindingLimits.maxLeaves); the request's dtab"),
        "{resp}"
    );
    assert_eq!(
        router.binding_count(),
        0,
        "an over-limit binding is not cached"
    );
    // The same shape with identical branches binds once per level, and is
    // served.
    let same = (0..20)
        .map(|i| format!("/a{i}=>/a{n} & /a{n}", n = i + 1))
        .collect::<Vec<_>>()
        .join(";");
    let dtab = format!("/svc=>/a0;{same};/a20=>/$/inet/{}/{}", be.ip(), be.port());
    let resp = get(addr, "web", Some(&dtab)).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let resp = get(addr, "web", None).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert_eq!(router.binding_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dtab_header_over_the_cap_is_a_400() {
    let be = backend().await;
    let limits = BindingLimits {
        max_dtab_header_bytes: 100,
        ..BindingLimits::default()
    };
    let (addr, _router) = start(be, limits, Duration::from_secs(10)).await;
    let fits = format!("/svc=>/$/inet/{}/{}", be.ip(), be.port());
    let resp = get(addr, "web", Some(&fits)).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let too_big = format!("{fits};{}", "/x=>/y;".repeat(20));
    let resp = get(addr, "web", Some(too_big.trim_end_matches(';'))).await;
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(resp.contains("bindingLimits.maxDtabHeaderBytes"), "{resp}");
}

/// [`get`] from a thread of its own, with blocking sockets: its timing does
/// not depend on the runtime under test being free to run timers.
fn get_blocking(addr: SocketAddr, host: &str, dtab: Option<&str>) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let dtab = dtab.map_or(String::new(), |d| format!("l5d-dtab: {d}\r\n"));
    s.write_all(
        format!("GET / HTTP/1.1\r\nHost: {host}\r\n{dtab}Connection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn binding_work_neither_holds_the_worker_nor_outlives_the_binding_timeout() {
    // Caps raised out of the way: the bomb would bind for seconds.
    let be = backend().await;
    let limits = BindingLimits {
        max_nodes: usize::MAX,
        max_leaves: usize::MAX,
        ..BindingLimits::default()
    };
    let (addr, _router) = start(be, limits, Duration::from_millis(500)).await;
    // Bound once, so that the unrelated request below needs no binding.
    assert!(get(addr, "web", None).await.starts_with("HTTP/1.1 200"));
    // The clients run on threads of their own; the router has one worker.
    let clients = std::thread::spawn(move || {
        let bomb = std::thread::spawn(move || {
            let start = Instant::now();
            let resp = get_blocking(addr, "web", Some(&bomb(24, be)));
            (start.elapsed(), resp)
        });
        std::thread::sleep(Duration::from_millis(100));
        let start = Instant::now();
        let resp = get_blocking(addr, "web", None);
        ((start.elapsed(), resp), bomb.join().unwrap())
    });
    let ((unrelated, resp), (took, bomb_resp)) =
        tokio::task::spawn_blocking(move || clients.join().unwrap())
            .await
            .unwrap();
    // An unrelated request is served while the bomb binds.
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(unrelated < Duration::from_millis(250), "{unrelated:?}");
    // bindingTimeoutMs stops the binding work itself.
    assert!(bomb_resp.starts_with("HTTP/1.1 503"), "{bomb_resp}");
    assert!(
        bomb_resp.contains("exceeded 500.milliseconds to unspecified while dyn binding /svc/web"),
        "{bomb_resp}"
    );
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

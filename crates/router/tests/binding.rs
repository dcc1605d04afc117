//! Binding through a namer whose answer is not known yet: the router waits
//! up to `bindingTimeoutMs`, then answers 503 as Linkerd 1 does.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use strait_dtab::{Bound, Dtab, Name, NameTree, Path, State};
use strait_naming::inet::InetResolver;
use strait_naming::{Activity, Addr, Endpoint, Interpreter, LookupTree, Namer, const_addr};
use strait_router::identify::Identifier;
use strait_router::server::Server;
use strait_router::stats::Registry;
use strait_router::{Router, RouterParams, ServerParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A namer whose single answer the test controls.
struct Controlled(watch::Sender<State<LookupTree>>);

impl Namer for Controlled {
    fn lookup(&self, _prefix: &Path, _path: &Path) -> Activity {
        self.0.subscribe()
    }
}

async fn start(namer: Arc<Controlled>, timeout: Duration) -> std::net::SocketAddr {
    let interp = Interpreter::new(
        vec![(Path::read("/#/ctl").unwrap(), namer as Arc<dyn Namer>)],
        InetResolver::default(),
    );
    let registry = Registry::default();
    let params = RouterParams {
        protocol: strait_router::Protocol::Http1,
        label: "http".into(),
        dtab: Dtab::read("/svc=>/#/ctl").unwrap(),
        dst_prefix: Path::read("/svc").unwrap(),
        identifiers: vec![Identifier::HeaderToken {
            header: http::header::HOST,
        }],
        binding_timeout: timeout,
        binding_limits: Default::default(),
        cache_capacity: 100,
        client_capacity: 100,
        idle_ttl: Duration::from_secs(600),
        max_headers_bytes: 8192,
        max_initial_line_bytes: 4096,
        max_err_bytes: 5 << 20,
        max_call_depth: 1000,
        access_log: None,
        policies: Default::default(),
        interpreter: None,
        telemeters: None,
    };
    let router = Router::new(params, interp, registry.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    let sp = ServerParams {
        h2: Default::default(),
        label: format!("127.0.0.1/{}", local.port()),
        clear_context: false,
        dtab_override: None,
        add_forwarded: false,
        local,
        client_networks: std::sync::Arc::new(strait_router::clients::ClientNetworks::any()),
        limits: Default::default(),
    };
    let server = Server::new(sp, router, &registry, None, 12 * 1024);
    let (_tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let _keep = _tx;
        server.serve(listener, rx, Duration::from_secs(1)).await;
    });
    local
}

async fn get(addr: std::net::SocketAddr, host: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_binding_times_out_with_503_and_finagles_message() {
    let (tx, _rx) = watch::channel(State::Pending);
    let addr = start(Arc::new(Controlled(tx)), Duration::from_millis(200)).await;
    let resp = get(addr, "slow").await;
    assert!(
        resp.starts_with("HTTP/1.1 503"),
        "binding timeout is 503: {resp}"
    );
    assert!(
        resp.contains("exceeded 200.milliseconds to unspecified while dyn binding /svc/slow"),
        "Linkerd's binding timeout message: {resp}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_binding_that_resolves_in_time_is_served() {
    // The backend: answers one request.
    let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let baddr = backend.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = backend.accept().await.unwrap();
        let mut buf = vec![0; 4096];
        let _ = s.read(&mut buf).await.unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
            .await
            .unwrap();
    });
    let (tx, _rx) = watch::channel(State::Pending);
    let namer = Arc::new(Controlled(tx));
    let addr = start(Arc::clone(&namer), Duration::from_secs(5)).await;
    let n2 = Arc::clone(&namer);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let bound = Bound::new(
            Path::read("/#/ctl/late").unwrap(),
            Path::empty(),
            const_addr(Addr::Bound(Arc::from([Endpoint::new(baddr)]))),
        );
        n2.0.send_replace(State::Ok(NameTree::Leaf(Name::Bound(bound))));
    });
    let resp = get(addr, "late").await;
    assert!(
        resp.starts_with("HTTP/1.1 200"),
        "a binding that becomes known within the timeout serves: {resp}"
    );
    assert!(resp.ends_with("hello"), "{resp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_namer_is_502_with_the_namers_message() {
    let (tx, _rx) = watch::channel(State::Failed("consul said no".into()));
    let addr = start(Arc::new(Controlled(tx)), Duration::from_secs(1)).await;
    let resp = get(addr, "x").await;
    assert!(resp.starts_with("HTTP/1.1 502"), "{resp}");
    assert!(resp.contains("binding failed: consul said no"), "{resp}");
}

/// A router over a namer answering `/#/ctl/<name>` with `backend`, with
/// idle TTL `ttl`, reporting into `registry`.
fn router_over(namer: &Arc<Controlled>, registry: &Registry, ttl: Duration) -> Arc<Router> {
    let interp = Interpreter::new(
        vec![(
            Path::read("/#/ctl").unwrap(),
            Arc::clone(namer) as Arc<dyn Namer>,
        )],
        InetResolver::default(),
    );
    let params = RouterParams {
        protocol: strait_router::Protocol::Http1,
        label: "http".into(),
        dtab: Dtab::read("/svc=>/#/ctl").unwrap(),
        dst_prefix: Path::read("/svc").unwrap(),
        identifiers: vec![Identifier::HeaderToken {
            header: http::header::HOST,
        }],
        binding_timeout: Duration::from_secs(5),
        binding_limits: Default::default(),
        cache_capacity: 100,
        client_capacity: 100,
        idle_ttl: ttl,
        max_headers_bytes: 8192,
        max_initial_line_bytes: 4096,
        max_err_bytes: 5 << 20,
        max_call_depth: 1000,
        access_log: None,
        policies: Default::default(),
        interpreter: None,
        telemeters: None,
    };
    Router::new(params, interp, registry.clone())
}

fn has_service_series(registry: &Registry) -> bool {
    registry
        .to_json()
        .contains_key("rt/http/service/svc/hello/requests")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_series_of_an_idle_name_that_still_routes() {
    let bound = Bound::new(
        Path::read("/#/ctl/hello").unwrap(),
        Path::empty(),
        const_addr(Addr::Bound(Arc::from([Endpoint::new(
            "127.0.0.1:9".parse().unwrap(),
        )]))),
    );
    let (tx, _rx) = watch::channel(State::Ok(NameTree::Leaf(Name::Bound(bound))));
    let namer = Arc::new(Controlled(tx));
    let registry = Registry::default();
    let ttl = Duration::from_millis(600);

    let old = router_over(&namer, &registry, ttl);
    assert!(old.routes("hello").await, "/svc/hello binds");
    assert!(has_service_series(&registry));

    // The reload: a new router takes over, the old one goes.
    let new = router_over(&namer, &registry, ttl);
    new.adopt(&old, |_| true);
    drop(old);
    // Sweeps within the TTL (the daemon sweeps every TTL/4): no binding
    // holds the service any more, but its name was used just now.
    for _ in 0..3 {
        tokio::time::sleep(ttl / 5).await;
        new.expire_idle();
        assert!(
            has_service_series(&registry),
            "a sweep right after a reload keeps the series of a name idle for less than the TTL"
        );
    }
    // Routed again, then idle past the TTL: gone, as without a reload.
    assert!(new.routes("hello").await);
    tokio::time::sleep(ttl + ttl / 2).await;
    new.expire_idle();
    assert!(
        !has_service_series(&registry),
        "a name idle for longer than the TTL is swept: {:?}",
        registry.to_json().keys().collect::<Vec<_>>()
    );
}

//! The namer against a tiny Consul served over real HTTP on 127.0.0.1:
//! the hyper client, the token header, blocking queries and a Consul that
//! is not there at first.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use strait_dtab::{Name, NameTree, Path, State};
use strait_namer_consul::{ConsulConfig, ConsulNamer};
use strait_naming::{Activity, Addr, Namer};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A Consul with one service, `web`, whose instances the test sets.
#[derive(Clone)]
struct TinyConsul {
    state: Arc<Mutex<Sim>>,
    /// The current index; waiters block on it.
    index: Arc<watch::Sender<u64>>,
}

#[derive(Default)]
struct Sim {
    web: Vec<(String, u16)>,
    /// Every request: URL and token header.
    seen: Vec<(String, Option<String>)>,
}

impl TinyConsul {
    fn new(web: &[(&str, u16)]) -> TinyConsul {
        let c = TinyConsul {
            state: Arc::default(),
            index: Arc::new(watch::channel(10).0),
        };
        c.set(web);
        c
    }

    fn set(&self, web: &[(&str, u16)]) {
        self.state.lock().unwrap().web = web.iter().map(|(a, p)| (a.to_string(), *p)).collect();
        self.index.send_modify(|i| *i += 1);
    }

    fn seen(&self) -> Vec<(String, Option<String>)> {
        self.state.lock().unwrap().seen.clone()
    }

    async fn serve(self, listener: TcpListener) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let c = self.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let c = c.clone();
                    async move { Ok::<_, Infallible>(c.handle(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let uri = req.uri().clone();
        let token = req
            .headers()
            .get("x-consul-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.state
            .lock()
            .unwrap()
            .seen
            .push((uri.to_string(), token));
        let query = uri.query().unwrap_or("");
        let param = |name: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_owned)
        };
        match uri.path() {
            "/v1/agent/self" => Response::new(Full::from(r#"{"Config": {"Datacenter": "dc1"}}"#)),
            "/v1/health/service/web" => {
                if let Some(sent) = param("index").and_then(|i| i.parse::<u64>().ok()) {
                    let wait = param("wait")
                        .and_then(|w| w.strip_suffix("ms")?.parse::<u64>().ok())
                        .unwrap_or(300_000);
                    let mut rx = self.index.subscribe();
                    let _ = tokio::time::timeout(
                        Duration::from_millis(wait),
                        rx.wait_for(|i| *i > sent),
                    )
                    .await;
                }
                let index = *self.index.borrow();
                let web = self.state.lock().unwrap().web.clone();
                let body: Vec<serde_json::Value> = web
                    .iter()
                    .map(|(a, p)| {
                        serde_json::json!({
                            "Node": {"Node": "n", "Address": a},
                            "Service": {"Service": "web", "Address": "", "Port": p, "Tags": []},
                            "Checks": [],
                        })
                    })
                    .collect();
                Response::builder()
                    .header("content-type", "application/json")
                    .header("x-consul-index", index.to_string())
                    .body(Full::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap()
            }
            _ => Response::builder()
                .status(404)
                .body(Full::from(
                    "Invalid URL path: not a recognized HTTP API endpoint",
                ))
                .unwrap(),
        }
    }
}

fn cfg(port: u16) -> ConsulConfig {
    ConsulConfig {
        host: "127.0.0.1".into(),
        port,
        use_health_check: true,
        wait: Duration::from_millis(300),
        backoff: (Duration::from_millis(10), Duration::from_millis(50)),
        ..ConsulConfig::default()
    }
}

fn path(s: &str) -> Path {
    Path::read(s).unwrap()
}

/// Waits (up to a second) for the lookup to satisfy `want`.
async fn wait_for(
    act: &mut Activity,
    what: &str,
    want: impl Fn(&State<strait_naming::LookupTree>) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        if want(&act.borrow_and_update()) {
            return;
        }
        if tokio::time::timeout_at(deadline, act.changed())
            .await
            .is_err()
        {
            panic!(
                "timed out waiting for {what}; the lookup is {:?}",
                *act.borrow()
            );
        }
    }
}

fn addrs(act: &Activity) -> Vec<String> {
    match &*act.borrow() {
        State::Ok(NameTree::Leaf(Name::Bound(b))) => match &*b.addr.borrow() {
            Addr::Bound(eps) => eps.iter().map(|e| e.addr.to_string()).collect(),
            other => panic!("expected bound addresses, got {other}"),
        },
        other => panic!("expected a bound leaf, got {other:?}"),
    }
}

fn is_bound(s: &State<strait_naming::LookupTree>) -> bool {
    matches!(s, State::Ok(NameTree::Leaf(_)))
}

async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

#[tokio::test]
async fn binds_over_http_and_follows_changes_by_long_polling() {
    let (l, a) = listener().await;
    let consul = TinyConsul::new(&[("127.0.0.1", 8080)]);
    let server = tokio::spawn(consul.clone().serve(l));
    let namer = ConsulNamer::new(ConsulConfig {
        token: Some("tok-123".into()),
        ..cfg(a.port())
    })
    .unwrap();
    let prefix = path("/#/io.l5d.consul");
    let mut act = namer.lookup(&prefix, &path("/dc1/web"));
    wait_for(&mut act, "the first answer", is_bound).await;
    assert_eq!(addrs(&act), ["127.0.0.1:8080"]);

    let State::Ok(NameTree::Leaf(Name::Bound(b))) = act.borrow().clone() else {
        unreachable!()
    };
    let mut var = b.addr.clone();
    var.borrow_and_update();
    consul.set(&[("127.0.0.1", 8080), ("127.0.0.2", 8080)]);
    tokio::time::timeout(Duration::from_secs(1), var.changed())
        .await
        .expect("a change reaches the namer through the long poll")
        .unwrap();
    assert_eq!(addrs(&act), ["127.0.0.1:8080", "127.0.0.2:8080"]);

    let seen = consul.seen();
    assert!(
        seen.iter().all(|(_, t)| t.as_deref() == Some("tok-123")),
        "the token is sent as X-Consul-Token: {seen:?}"
    );
    assert!(
        seen.iter().all(|(u, _)| !u.contains("tok-123")),
        "and never in the URL"
    );
    assert!(
        seen.iter().any(|(u, _)| u.contains("index=11&wait=300ms")),
        "blocking queries carry the index and the wait: {seen:?}"
    );
    assert_eq!(namer.stats().errors, 0);
    server.abort();
}

#[tokio::test]
async fn consul_down_at_start_is_neg_quickly_then_binds_when_it_comes_up() {
    // A port with nothing listening (yet).
    let (l, a) = listener().await;
    drop(l);
    let namer = ConsulNamer::new(cfg(a.port())).unwrap();
    let prefix = path("/#/io.l5d.consul");
    let mut act = namer.lookup(&prefix, &path("/dc1/web"));
    wait_for(&mut act, "Neg after the connection is refused", |s| {
        matches!(s, State::Ok(NameTree::Neg))
    })
    .await;
    assert!(namer.stats().errors >= 1);

    let l = TcpListener::bind(a).await.unwrap();
    let consul = TinyConsul::new(&[("127.0.0.1", 8080)]);
    let server = tokio::spawn(consul.serve(l));
    wait_for(&mut act, "the name to bind once Consul is up", is_bound).await;
    assert_eq!(addrs(&act), ["127.0.0.1:8080"]);
    server.abort();
}

#[tokio::test]
async fn dot_local_and_unknown_paths_over_http() {
    let (l, a) = listener().await;
    let consul = TinyConsul::new(&[("127.0.0.1", 8080)]);
    let server = tokio::spawn(consul.clone().serve(l));
    let namer = ConsulNamer::new(cfg(a.port())).unwrap();
    let prefix = path("/#/io.l5d.consul");
    let mut act = namer.lookup(&prefix, &path("/.local/web"));
    wait_for(&mut act, ".local to bind", is_bound).await;
    assert!(
        consul
            .seen()
            .iter()
            .any(|(u, _)| u == "/v1/health/service/web?dc=dc1&passing=true")
    );

    // Our tiny Consul knows no other service: 404 is an error, so Neg.
    let mut other = namer.lookup(&prefix, &path("/dc1/other"));
    wait_for(&mut other, "an erroring name to be Neg", |s| {
        matches!(s, State::Ok(NameTree::Neg))
    })
    .await;
    let state = namer.state();
    assert_eq!(state["watches"]["/dc1/other"]["response"]["status"], 404);
    server.abort();
}

#[tokio::test]
async fn a_large_answer_streams_through_the_small_read_buffer() {
    let (l, a) = listener().await;
    let ips: Vec<String> = (0..500)
        .map(|i| format!("10.0.{}.{}", i / 250, i % 250 + 1))
        .collect();
    let web: Vec<(&str, u16)> = ips.iter().map(|ip| (ip.as_str(), 8080)).collect();
    let consul = TinyConsul::new(&web);
    let server = tokio::spawn(consul.clone().serve(l));
    let namer = ConsulNamer::new(cfg(a.port())).unwrap();
    let mut act = namer.lookup(&path("/#/io.l5d.consul"), &path("/dc1/web"));
    wait_for(&mut act, "the first answer", is_bound).await;
    let got = addrs(&act);
    assert_eq!(got.len(), 500, "every instance of a ~60 KB answer");
    assert_eq!(got[499], "10.0.1.250:8080");
    assert_eq!(namer.stats().errors, 0);
    server.abort();
}

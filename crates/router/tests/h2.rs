//! The h2 router in process: a hyper HTTP/2 client over one connection,
//! through a Strait `h2` router, to hyper HTTP/2 backends. Each request is
//! balanced on its own; streamed responses are never held back; trailers
//! pass; gRPC failures are classified from `grpc-status` and retried;
//! router errors reach gRPC callers as gRPC errors.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use strait_dtab::{Bound, Dtab, Name, NameTree, Path, State};
use strait_naming::inet::InetResolver;
use strait_naming::{Activity, Addr, Endpoint, Interpreter, Namer, const_addr};
use strait_router::identify::{Field, Identifier};
use strait_router::policy::Policies;
use strait_router::retry::{Classifier, GrpcClassifier};
use strait_router::server::Server;
use strait_router::stats::Registry;
use strait_router::{Protocol, Router, RouterParams, ServerParams};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// A namer answering `/#/ctl/<name>` with fixed endpoints.
struct Fixed(HashMap<String, Vec<SocketAddr>>);

impl Namer for Fixed {
    fn lookup(&self, _prefix: &Path, path: &Path) -> Activity {
        let name = path.show();
        let name = name.trim_start_matches('/');
        let first = name.split('/').next().unwrap_or_default();
        let state = match self.0.get(first) {
            Some(addrs) => {
                let eps: Vec<Endpoint> = addrs.iter().map(|a| Endpoint::new(*a)).collect();
                let bound = Bound::new(
                    Path::read(&format!("/#/ctl/{first}")).unwrap(),
                    Path::empty(),
                    const_addr(Addr::Bound(Arc::from(eps))),
                );
                State::Ok(NameTree::Leaf(Name::Bound(bound)))
            }
            None => State::Ok(NameTree::Neg),
        };
        watch::channel(state).1
    }
}

/// What a backend does with a request.
type Handler = Arc<dyn Fn(String, Request<Incoming>) -> Reply + Send + Sync>;

/// A backend's answer: a head, then frames sent as the test allows.
struct Reply {
    head: Response<()>,
    frames: mpsc::Receiver<Frame<Bytes>>,
}

/// Starts an h2c backend named `name`; returns its address.
async fn backend(name: &str, handler: Handler) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let name = name.to_owned();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let (name, handler) = (name.clone(), Arc::clone(&handler));
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let reply = handler(name.clone(), req);
                    async move {
                        let (parts, ()) = reply.head.into_parts();
                        Ok::<_, Infallible>(Response::from_parts(parts, ChanBody(reply.frames)))
                    }
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

/// A response body fed by a channel.
struct ChanBody(mpsc::Receiver<Frame<Bytes>>);

impl http_body::Body for ChanBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|f| f.map(Ok))
    }
}

/// A reply of `body` with the backend's name in `x-backend`, ended by
/// `trailers` if given.
fn reply(name: &str, body: &str, trailers: Option<HeaderMap>) -> Reply {
    let (tx, rx) = mpsc::channel(4);
    let head = Response::builder()
        .header("x-backend", name)
        .header("content-type", "application/grpc")
        .body(())
        .unwrap();
    let body = Bytes::from(body.to_owned());
    tokio::spawn(async move {
        let _ = tx.send(Frame::data(body)).await;
        if let Some(t) = trailers {
            let _ = tx.send(Frame::trailers(t)).await;
        }
    });
    Reply { head, frames: rx }
}

fn grpc_status(code: &'static str) -> HeaderMap {
    let mut t = HeaderMap::new();
    t.insert("grpc-status", HeaderValue::from_static(code));
    t
}

/// A Strait h2 router over `names`, identifying by `:path`'s first
/// segment, with `classifier`; returns its address and stats registry.
async fn strait(
    names: HashMap<String, Vec<SocketAddr>>,
    classifier: Classifier,
) -> (SocketAddr, Registry) {
    let (addr, registry, stop) = strait_stoppable(names, classifier).await;
    // Never stopped: the server runs until the test's runtime ends.
    std::mem::forget(stop);
    (addr, registry)
}

/// [`strait`], with the sender that shuts the server down (`true`).
async fn strait_stoppable(
    names: HashMap<String, Vec<SocketAddr>>,
    classifier: Classifier,
) -> (SocketAddr, Registry, watch::Sender<bool>) {
    strait_with_limits(names, classifier, Default::default()).await
}

/// [`strait_stoppable`] with the server's `limits`.
async fn strait_with_limits(
    names: HashMap<String, Vec<SocketAddr>>,
    classifier: Classifier,
    limits: strait_router::ServerLimits,
) -> (SocketAddr, Registry, watch::Sender<bool>) {
    let interp = Interpreter::new(
        vec![(
            Path::read("/#/ctl").unwrap(),
            Arc::new(Fixed(names)) as Arc<dyn Namer>,
        )],
        InetResolver::default(),
    );
    let registry = Registry::default();
    let policies = Policies {
        client: strait_router::policy::PolicyTable::global(strait_router::policy::ClientPolicy {
            h2: Some(Default::default()),
            ..Default::default()
        }),
        service: strait_router::policy::PolicyTable::global(strait_router::policy::ServicePolicy {
            classifier,
            ..Default::default()
        }),
    };
    let params = RouterParams {
        protocol: Protocol::H2,
        label: "h2".into(),
        dtab: Dtab::read("/svc=>/#/ctl").unwrap(),
        dst_prefix: Path::read("/svc").unwrap(),
        identifiers: vec![Identifier::HeaderPath {
            field: Field::Path,
            segments: Some(1),
        }],
        binding_timeout: Duration::from_secs(2),
        binding_limits: Default::default(),
        cache_capacity: 100,
        client_capacity: 100,
        idle_ttl: Duration::from_secs(600),
        max_headers_bytes: 8192,
        max_initial_line_bytes: 4096,
        max_err_bytes: 5 << 20,
        max_call_depth: 1000,
        access_log: None,
        policies,
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
        client_networks: Arc::new(strait_router::clients::ClientNetworks::any()),
        limits,
    };
    let server = Server::new(sp, router, &registry, None, 12 * 1024);
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        server.serve(listener, rx, Duration::from_secs(10)).await;
    });
    (local, registry, tx)
}

type Client = hyper::client::conn::http2::SendRequest<Full<Bytes>>;

/// One h2c connection to `addr`.
async fn connect(addr: SocketAddr) -> Client {
    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (tx, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    tx
}

fn call(path: &str, body: &'static str) -> Request<Full<Bytes>> {
    Request::post(format!("http://strait.test{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

fn echo_ok() -> Handler {
    Arc::new(|name, _req| reply(&name, "ok", Some(grpc_status("0"))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_on_one_connection_are_spread_over_every_endpoint() {
    let mut addrs = Vec::new();
    for n in ["a", "b", "c"] {
        addrs.push(backend(n, echo_ok()).await);
    }
    let names = HashMap::from([("pkg.Echo".to_owned(), addrs)]);
    let (router, _) = strait(names, Classifier::Grpc(GrpcClassifier::default_kind())).await;
    let mut tx = connect(router).await;
    let mut seen: HashMap<String, u32> = HashMap::new();
    for _ in 0..90 {
        tx.ready().await.unwrap();
        let resp = tx
            .send_request(call("/pkg.Echo/Unary", "hi"))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let backend = resp.headers()["x-backend"].to_str().unwrap().to_owned();
        let body = resp.into_body().collect().await.unwrap();
        let trailers = body.trailers().cloned().expect("trailers pass through");
        assert_eq!(trailers["grpc-status"], "0");
        assert_eq!(body.to_bytes(), "ok");
        *seen.entry(backend).or_default() += 1;
    }
    assert_eq!(seen.len(), 3, "every endpoint served some: {seen:?}");
    assert!(
        seen.values().all(|n| *n >= 10),
        "each got a share of 90 calls on one connection: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_response_reaches_the_caller_before_it_ends() {
    // The backend sends its head and a first message, then waits until the
    // test has read that message through Strait before it ends the call.
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let handler: Handler = Arc::new(move |name, _req| {
        let (tx, rx) = mpsc::channel(4);
        let release = Arc::clone(&release_rx);
        tokio::spawn(async move {
            tx.send(Frame::data(Bytes::from_static(b"first")))
                .await
                .unwrap();
            tokio::task::spawn_blocking(move || {
                let _ = release
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(20));
            })
            .await
            .unwrap();
            let _ = tx.send(Frame::data(Bytes::from_static(b"last"))).await;
            let _ = tx.send(Frame::trailers(grpc_status("0"))).await;
        });
        let head = Response::builder()
            .header("x-backend", name)
            .header("content-type", "application/grpc")
            .body(())
            .unwrap();
        Reply { head, frames: rx }
    });
    let addr = backend("s", handler).await;
    let names = HashMap::from([("pkg.Stream".to_owned(), vec![addr])]);
    let (router, _) = strait(names, Classifier::Grpc(GrpcClassifier::default_kind())).await;
    let mut tx = connect(router).await;
    let resp = tx
        .send_request(call("/pkg.Stream/Watch", ""))
        .await
        .unwrap();
    let mut body = resp.into_body();
    let first = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .expect("the first message arrives while the backend still holds the call open")
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), "first");
    release_tx.send(()).unwrap();
    let rest = body.collect().await.unwrap();
    assert_eq!(rest.trailers().unwrap()["grpc-status"], "0");
    assert_eq!(rest.to_bytes(), "last");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_endpoint_is_retried_on_another_and_stats_follow_grpc_status() {
    // "bad" answers trailers-only UNAVAILABLE; the default gRPC classifier
    // retries that on "good".
    let bad: Handler = Arc::new(|name, _req| {
        let (_tx, rx) = mpsc::channel(1);
        let head = Response::builder()
            .header("x-backend", name)
            .header("content-type", "application/grpc")
            .header("grpc-status", "14")
            .body(())
            .unwrap();
        Reply { head, frames: rx }
    });
    let bad = backend("bad", bad).await;
    let good = backend("good", echo_ok()).await;
    let names = HashMap::from([("pkg.Echo".to_owned(), vec![bad, good])]);
    let (router, registry) = strait(names, Classifier::Grpc(GrpcClassifier::default_kind())).await;
    let mut tx = connect(router).await;
    for _ in 0..20 {
        tx.ready().await.unwrap();
        let resp = tx.send_request(call("/pkg.Echo/Unary", "x")).await.unwrap();
        assert_eq!(resp.headers()["x-backend"], "good");
        let body = resp.into_body().collect().await.unwrap();
        assert_eq!(body.trailers().unwrap()["grpc-status"], "0");
    }
    let json = registry.to_json();
    let get = |k: &str| {
        json.get(k)
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(-1)
    };
    assert_eq!(get("rt/h2/service/svc/pkg.Echo/success"), 20, "{json:?}");
    assert_eq!(get("rt/h2/service/svc/pkg.Echo/failures"), 0);
    assert!(get("rt/h2/service/svc/pkg.Echo/retries/total") >= 1);
    assert_eq!(
        get("rt/h2/service/svc/pkg.Echo/stream/total_latency_ms.count"),
        20,
        "every stream's end is timed: {json:?}"
    );

    // A call that ends with a failed grpc-status in its trailers is a
    // failure, counted when the stream ends.
    let fails: Handler = Arc::new(|name, _req| reply(&name, "", Some(grpc_status("13"))));
    let f = backend("f", fails).await;
    let names = HashMap::from([("pkg.Fail".to_owned(), vec![f])]);
    let (router, registry) = strait(names, Classifier::Grpc(GrpcClassifier::default_kind())).await;
    let mut tx = connect(router).await;
    let resp = tx.send_request(call("/pkg.Fail/Unary", "x")).await.unwrap();
    let body = resp.into_body().collect().await.unwrap();
    assert_eq!(body.trailers().unwrap()["grpc-status"], "13");
    let json = registry.to_json();
    let get = |k: &str| {
        json.get(k)
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(-1)
    };
    assert_eq!(get("rt/h2/service/svc/pkg.Fail/failures"), 1, "{json:?}");
    assert_eq!(get("rt/h2/service/svc/pkg.Fail/success"), 0);
    assert_eq!(get("rt/h2/client/#/ctl/pkg.Fail/failures"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unroutable_grpc_call_gets_unavailable_with_linkerds_text() {
    let (router, _) = strait(
        HashMap::new(),
        Classifier::Grpc(GrpcClassifier::default_kind()),
    )
    .await;
    let mut tx = connect(router).await;
    let resp = tx
        .send_request(call("/pkg.Nowhere/Unary", "x"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "gRPC errors ride a 200");
    let h = resp.headers().clone();
    assert_eq!(h["grpc-status"], "14");
    let msg = h["grpc-message"].to_str().unwrap();
    assert!(
        msg.contains("Unable to route request!") || msg.contains("No hosts are available"),
        "{msg}"
    );
    assert!(h.contains_key("l5d-err"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_timeout_is_a_deadline_that_strait_enforces_and_passes_on() {
    // The backend reports the grpc-timeout it was given, and never answers
    // calls to Slow.
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<String>();
    let handler: Handler = Arc::new(move |name, req| {
        let t = req
            .headers()
            .get("grpc-timeout")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let _ = seen_tx.send(t);
        if req.uri().path().ends_with("/Slow") {
            let (tx, rx) = mpsc::channel(1);
            // Held open, never answered.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(30)).await;
                drop(tx);
            });
            let head = Response::builder().body(()).unwrap();
            let _ = name;
            return Reply { head, frames: rx };
        }
        reply(&name, "ok", Some(grpc_status("0")))
    });
    let addr = backend("t", handler).await;
    let names = HashMap::from([("pkg.T".to_owned(), vec![addr])]);
    let (router, _) = strait(names, Classifier::Grpc(GrpcClassifier::default_kind())).await;
    let mut tx = connect(router).await;

    let mut fast = call("/pkg.T/Fast", "x");
    fast.headers_mut()
        .insert("grpc-timeout", HeaderValue::from_static("5S"));
    let resp = tx.send_request(fast).await.unwrap();
    let _ = resp.into_body().collect().await.unwrap();
    let passed = seen_rx.recv().await.unwrap();
    let left = {
        let mut h = HeaderMap::new();
        h.insert("grpc-timeout", HeaderValue::from_str(&passed).unwrap());
        strait_router::h2::grpc::read_timeout(&h).unwrap()
    };
    assert!(
        left <= Duration::from_secs(5) && left > Duration::from_secs(4),
        "the backend gets what is left of the caller's 5 s: {passed}"
    );

    let mut slow = call("/pkg.T/Slow", "x");
    slow.headers_mut()
        .insert("grpc-timeout", HeaderValue::from_static("200m"));
    let started = std::time::Instant::now();
    tx.ready().await.unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), tx.send_request(slow))
        .await
        .expect("Strait answers once the deadline has passed")
        .unwrap();
    // The backend sent its head at once and then nothing: Strait cuts the
    // stream at the deadline and ends it with DEADLINE_EXCEEDED.
    let body = tokio::time::timeout(Duration::from_secs(10), resp.into_body().collect())
        .await
        .expect("the stream ends at the deadline")
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        body.trailers().unwrap()["grpc-status"],
        "4",
        "DEADLINE_EXCEEDED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_goaway_and_lets_streams_in_flight_finish() {
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let (started_tx, mut started_rx) = mpsc::unbounded_channel::<()>();
    let handler: Handler = Arc::new(move |name, _req| {
        let (tx, rx) = mpsc::channel(4);
        let release = Arc::clone(&release_rx);
        let _ = started_tx.send(());
        tokio::spawn(async move {
            tokio::task::spawn_blocking(move || {
                let _ = release
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(20));
            })
            .await
            .unwrap();
            let _ = tx.send(Frame::data(Bytes::from_static(b"done"))).await;
            let _ = tx.send(Frame::trailers(grpc_status("0"))).await;
        });
        let head = Response::builder()
            .header("x-backend", name)
            .header("content-type", "application/grpc")
            .body(())
            .unwrap();
        Reply { head, frames: rx }
    });
    let addr = backend("g", handler).await;
    let names = HashMap::from([("pkg.G".to_owned(), vec![addr])]);
    let (router, _, stop) =
        strait_stoppable(names, Classifier::Grpc(GrpcClassifier::default_kind())).await;
    let mut tx = connect(router).await;
    let in_flight = tokio::spawn({
        let mut tx = tx.clone();
        async move {
            let resp = tx.send_request(call("/pkg.G/Long", "x")).await.unwrap();
            resp.into_body().collect().await.unwrap()
        }
    });
    started_rx.recv().await.unwrap();
    stop.send_replace(true);
    // GOAWAY reaches the client: the connection takes no new stream.
    let refused = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if tx.ready().await.is_err() {
                return true;
            }
            match tx.send_request(call("/pkg.G/Long", "y")).await {
                Err(_) => return true,
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await
    .expect("a draining server takes no new streams");
    assert!(refused);
    release_tx.send(()).unwrap();
    let body = in_flight.await.unwrap();
    assert_eq!(body.trailers().unwrap()["grpc-status"], "0");
    assert_eq!(body.to_bytes(), "done", "the stream in flight finished");
}

/// An h2c backend that refuses every stream (`RST_STREAM REFUSED_STREAM`,
/// as a server at its stream limit does).
async fn refusing_backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req: Request<Incoming>| async {
                    Err::<Response<Full<Bytes>>, _>(h2::Error::from(h2::Reason::REFUSED_STREAM))
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_stream_is_sent_elsewhere_even_when_not_retryable() {
    let refusing = refusing_backend().await;
    let good = backend("good", echo_ok()).await;
    let names = HashMap::from([("pkg.R".to_owned(), vec![refusing, good])]);
    // Never retryable: only a requeue (nothing was processed) can save it.
    let (router, registry) = strait(
        names,
        Classifier::Grpc(GrpcClassifier {
            retryable: strait_router::retry::GrpcCodes::default(),
            ..GrpcClassifier::default_kind()
        }),
    )
    .await;
    let mut tx = connect(router).await;
    for _ in 0..20 {
        tx.ready().await.unwrap();
        let resp = tx.send_request(call("/pkg.R/Write", "x")).await.unwrap();
        assert_eq!(resp.headers()["x-backend"], "good");
        let body = resp.into_body().collect().await.unwrap();
        assert_eq!(body.trailers().unwrap()["grpc-status"], "0");
    }
    let json = registry.to_json();
    let get = |k: &str| {
        json.get(k)
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(-1)
    };
    assert!(
        get("rt/h2/client/#/ctl/pkg.R/stream/reset/refused_stream") >= 1,
        "refused streams are counted by code: {json:?}"
    );
    assert_eq!(
        get("rt/h2/service/svc/pkg.R/retries/total"),
        0,
        "requeued, not retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_h2_connection_gets_goaway_after_the_header_timeout() {
    let addr = backend("a", echo_ok()).await;
    let names = HashMap::from([("pkg.I".to_owned(), vec![addr])]);
    let limits = strait_router::ServerLimits {
        header_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let (router, _, _stop) = strait_with_limits(
        names,
        Classifier::Grpc(GrpcClassifier::default_kind()),
        limits,
    )
    .await;
    let mut tx = connect(router).await;
    let resp = tx.send_request(call("/pkg.I/Unary", "x")).await.unwrap();
    let _ = resp.into_body().collect().await.unwrap();
    // Requests keep it open...
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        tx.ready().await.unwrap();
        let resp = tx.send_request(call("/pkg.I/Unary", "x")).await.unwrap();
        let _ = resp.into_body().collect().await.unwrap();
    }
    // ...and none for longer than the timeout closes it.
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while !tx.is_closed() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(closed.is_ok(), "an idle h2 connection is closed");
}

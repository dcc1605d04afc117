//! Accepting connections and serving HTTP/1.1 on them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::body::RequestBody;
use crate::clients::ClientNetworks;
use crate::descriptors;
use crate::error::RouteError;
use crate::http1::{UpgradeStats, serve};
use crate::params::Protocol;
use crate::router::{Body, Router, ServerParams};
use crate::service::RequestStats;
use crate::stats::{Counter, Gauge, Registry, Scope};
use crate::tls::{HandshakeFailure, HandshakeLog, ServerTls};

/// One listening address of a router.
pub struct Server {
    /// Everything a request reads, swapped as one on reload: a request
    /// never sees a new router with old settings or the other way round.
    state: ArcSwap<ServerState>,
    stats: Arc<RequestStats>,
    connections: Arc<Gauge>,
    /// Times it stopped accepting because the descriptor budget's client
    /// connections were all open.
    descriptors_full: Arc<Counter>,
    /// `upgraded` and `upgrade_idle_closes`: its tunnels after a 101.
    upgrades: Arc<UpgradeStats>,
    /// `connections_refused`: connections closed on accept because their
    /// source is outside `clientNetworks`; and the log of them.
    refused: Arc<Counter>,
    refusals: RefusalLog,
    /// Where `tls/handshake_failures/<class>` are counted (registered
    /// when the server gets TLS, so plaintext servers show none), and the
    /// log of them.
    registry: Registry,
    scope: Scope,
    handshakes: HandshakeLog,
    max_buf: usize,
}

/// Refused connections are logged at most once a minute per server (with
/// the number refused since the last line), so that a client retrying in
/// a loop cannot flood the log.
#[derive(Default)]
struct RefusalLog {
    last: Mutex<Option<Instant>>,
    since: AtomicU64,
}

/// How often a server logs refused connections at most.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

impl RefusalLog {
    fn refused(&self, server: &str, peer: SocketAddr, networks: &ClientNetworks) {
        let n = self.since.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| now.duration_since(t) < REFUSAL_LOG_EVERY) {
            tracing::debug!(server, %peer, "connection refused: source outside clientNetworks");
            return;
        }
        *last = Some(now);
        self.since.fetch_sub(n, Ordering::Relaxed);
        tracing::warn!(
            server,
            %peer,
            refused = n,
            "connection refused: its source is outside this server's clientNetworks ({networks}); \
             add its network to clientNetworks to serve it (logged at most once a minute; \
             refused counts the connections refused since the last line)"
        );
    }
}

/// What a request on a server reads: its router, the server's settings
/// and its concurrency limit; and what a new connection reads: its TLS.
struct ServerState {
    router: Arc<Router>,
    params: ServerParams,
    limit: Option<Arc<ConcurrencyLimit>>,
    /// `tls`: certificates and settings for connections accepted from
    /// now on (a reload swaps renewed ones in; open connections keep
    /// theirs). `None`: plaintext.
    tls: Option<Arc<ServerTls>>,
}

/// `maxConcurrentRequests`: permits, and the number configured (for the
/// error text and to tell whether a reload changed it).
struct ConcurrencyLimit {
    permits: Arc<Semaphore>,
    max: u32,
}

impl ConcurrencyLimit {
    fn new(max: Option<u32>) -> Option<Arc<ConcurrencyLimit>> {
        max.map(|max| {
            Arc::new(ConcurrencyLimit {
                permits: Arc::new(Semaphore::new(max as usize)),
                max,
            })
        })
    }
}

impl Server {
    /// A server for `router`, with `max_concurrent` requests at most
    /// (none: unlimited) and header buffers sized from `maxHeadersKB` plus
    /// `maxInitialLineKB`.
    pub fn new(
        params: ServerParams,
        router: Arc<Router>,
        registry: &Registry,
        max_concurrent: Option<u32>,
        max_head_bytes: usize,
    ) -> Arc<Server> {
        let scope = Scope::Server {
            router: router.params().label.clone().into(),
            addr: params.label.clone().into(),
        };
        Arc::new(Server {
            stats: Arc::new(RequestStats::new(registry, &scope)),
            connections: registry.gauge(&scope, "connections"),
            descriptors_full: registry.counter(&scope, "descriptor_limit_reached"),
            upgrades: Arc::new(UpgradeStats::new(registry, &scope)),
            refused: registry.counter(&scope, "connections_refused"),
            refusals: RefusalLog::default(),
            registry: registry.clone(),
            scope: scope.clone(),
            handshakes: HandshakeLog::default(),
            max_buf: max_head_bytes.max(8192),
            state: ArcSwap::from_pointee(ServerState {
                router,
                params,
                limit: ConcurrencyLimit::new(max_concurrent),
                tls: None,
            }),
        })
    }

    /// The address it listens on.
    pub fn local(&self) -> std::net::SocketAddr {
        self.state.load().params.local
    }

    /// Hands the server a new router and settings (on reload), in one
    /// store: requests that arrive from now on see both. An unchanged
    /// `maxConcurrentRequests` keeps counting the requests in flight; a
    /// changed one starts a fresh count.
    pub fn update(&self, router: Arc<Router>, params: ServerParams, max_concurrent: Option<u32>) {
        let old = self.state.load();
        let limit = match &old.limit {
            Some(l) if Some(l.max) == max_concurrent => Some(Arc::clone(l)),
            _ => ConcurrencyLimit::new(max_concurrent),
        };
        self.state.store(Arc::new(ServerState {
            router,
            params,
            limit,
            tls: old.tls.clone(),
        }));
    }

    /// Hands the server the TLS of connections accepted from now on
    /// (`None`: plaintext); open connections keep theirs.
    pub fn set_tls(&self, tls: Option<Arc<ServerTls>>) {
        if tls.is_some() {
            for class in HandshakeFailure::ALL {
                self.handshake_counter(class);
            }
        }
        let old = self.state.load();
        self.state.store(Arc::new(ServerState {
            router: Arc::clone(&old.router),
            params: old.params.clone(),
            limit: old.limit.clone(),
            tls,
        }));
    }

    /// Hands the server new `clientNetworks` and nothing else (a reload
    /// of an unchanged config re-reads the host's interfaces).
    pub fn set_client_networks(&self, networks: Arc<ClientNetworks>) {
        let old = self.state.load();
        if *old.params.client_networks == *networks {
            return;
        }
        let mut params = old.params.clone();
        params.client_networks = networks;
        self.state.store(Arc::new(ServerState {
            router: Arc::clone(&old.router),
            params,
            limit: old.limit.clone(),
            tls: old.tls.clone(),
        }));
    }

    /// The networks whose connections it serves now.
    pub fn client_networks(&self) -> Arc<ClientNetworks> {
        Arc::clone(&self.state.load().params.client_networks)
    }

    /// One client connection served over HTTP/1.1, on any byte stream (a
    /// TCP connection, or in tests and fuzzing an in-memory duplex). It
    /// can be upgraded (a WebSocket after a backend's 101).
    pub fn connection<I>(
        self: &Arc<Self>,
        io: I,
        remote: SocketAddr,
    ) -> impl std::future::Future<Output = ()> + Send + 'static
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let server = Arc::clone(self);
        async move { server.serve_h1(Box::new(io), remote, false, None).await }
    }

    /// Serves HTTP/1.1 on `io` until it ends, or (with `draining`)
    /// between requests once `draining` turns true; `tunnelled` for one
    /// inside a CONNECT tunnel, which may not open another (tunnels in
    /// tunnels would let one client stack tasks and buffers without end).
    async fn serve_h1(
        self: &Arc<Self>,
        io: serve::BoxStream,
        remote: SocketAddr,
        tunnelled: bool,
        draining: Option<&mut watch::Receiver<bool>>,
    ) {
        let limits = {
            let l = &self.state.load().params.limits;
            serve::Limits {
                header_timeout: l.header_timeout,
                max_headers: l.max_header_count,
                max_head: self.max_buf,
                send_timeout: l.send_timeout,
            }
        };
        let svc = H1 {
            server: Arc::clone(self),
            remote,
            tunnelled,
        };
        serve::serve(&svc, io, limits, draining).await;
    }

    /// Serves `listener` until `shutdown` turns true, then stops accepting
    /// and waits up to `grace` for in-flight requests to finish.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        mut shutdown: watch::Receiver<bool>,
        grace: Duration,
    ) {
        // Connections still open, and the signal to finish them: each
        // ends after its request in flight once `drain` turns true.
        let (drain, draining) = watch::channel(false);
        let open = Arc::new(());
        loop {
            // A place in the descriptor budget before accepting: when every
            // one is taken, clients wait in the accept queue, and the ones
            // already connected keep the descriptors their backends need.
            let slot = match descriptors::try_client() {
                Some(s) => s,
                None => {
                    self.descriptors_full.add(1);
                    tracing::warn!(
                        server = %self.state.load().params.label,
                        "every client connection the descriptor limit allows is open; \
                         accepting again as one closes (raise LimitNOFILE for more)"
                    );
                    tokio::select! {
                        s = descriptors::client() => s,
                        res = shutdown.changed() => {
                            if res.is_err() || *shutdown.borrow() {
                                break;
                            }
                            continue;
                        }
                    }
                }
            };
            tokio::select! {
                res = listener.accept() => {
                    let (mut stream, remote) = match res {
                        Ok(c) => c,
                        Err(e) => {
                            // EMFILE and friends: back off instead of spinning.
                            tracing::warn!(server = %self.state.load().params.label, error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    // `clientNetworks`: a source outside them is closed
                    // before anything is read (its descriptor slot goes
                    // back with it).
                    let state = self.state.load();
                    if !state.params.client_networks.allows(remote.ip()) {
                        drop(stream);
                        self.refused.add(1);
                        self.refusals.refused(&state.params.label, remote, &state.params.client_networks);
                        continue;
                    }
                    drop(state);
                    let _ = stream.set_nodelay(true);
                    let server = Arc::clone(&self);
                    let (open, mut draining) = (Arc::clone(&open), draining.clone());
                    tokio::spawn(async move {
                        let _open = (open, server.connections.enter());
                        let (header_timeout, tls) = {
                            let state = server.state.load();
                            (state.params.limits.header_timeout, state.tls.clone())
                        };
                        let h2 = server.speaks_h2();
                        let Some(tls) = tls else {
                            if refused_wrong_protocol(&mut stream, header_timeout, h2).await {
                                return;
                            }
                            let io = descriptors::Counted::new(stream, slot);
                            return server.drive(io, remote, &mut draining).await;
                        };
                        // The handshake, here and not in the accept loop,
                        // bounded like a request head; the descriptor slot
                        // stays with the stream.
                        let io = descriptors::Counted::new(stream, slot);
                        let acceptor = if h2 { tls.acceptor_h2() } else { tls.acceptor() };
                        let handshake = acceptor.accept(io);
                        match tokio::time::timeout(header_timeout, handshake).await {
                            Ok(Ok(io)) => server.drive(io, remote, &mut draining).await,
                            Ok(Err(e)) => {
                                server.handshake_failed(remote, HandshakeFailure::of(&e), &e);
                            }
                            Err(_) => {
                                let why = "timed out (requestHeaderTimeoutMs)";
                                server.handshake_failed(remote, HandshakeFailure::Other, &why);
                            }
                        }
                    });
                }
                res = shutdown.changed() => {
                    if res.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
            }
        }
        drop(listener);
        drain.send_replace(true);
        let deadline = tokio::time::Instant::now() + grace;
        while Arc::strong_count(&open) > 1 {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(server = %self.state.load().params.label, "grace period over; dropping remaining connections");
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the server's router is an `h2` router.
    fn speaks_h2(&self) -> bool {
        self.state.load().router.params().protocol == Protocol::H2
    }

    /// Serves one accepted connection (plaintext or after its TLS
    /// handshake) until it ends, or gracefully once `draining` turns true.
    async fn drive<I>(
        self: &Arc<Self>,
        io: I,
        remote: SocketAddr,
        draining: &mut watch::Receiver<bool>,
    ) where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        if self.speaks_h2() {
            return self.drive_h2(io, remote, draining).await;
        }
        self.serve_h1(Box::new(io), remote, false, Some(draining))
            .await;
    }

    /// Serves one HTTP/2 connection: each stream is a request routed on
    /// its own. Draining sends GOAWAY and lets the streams in flight end.
    async fn drive_h2<I>(
        self: &Arc<Self>,
        io: I,
        remote: SocketAddr,
        draining: &mut watch::Receiver<bool>,
    ) where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (s, idle) = {
            let state = self.state.load();
            (state.params.h2, state.params.limits.header_timeout)
        };
        let mut b = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        b.timer(TokioTimer::new())
            .initial_stream_window_size(s.initial_stream_window)
            .max_frame_size(s.max_frame)
            .header_table_size(s.header_table)
            .max_concurrent_streams(s.max_concurrent_streams.or(Some(DEFAULT_MAX_STREAMS)));
        if let Some(n) = s.max_header_list {
            b.max_header_list_size(n);
        }
        let activity = Arc::new(Activity::new());
        let handler = Handler {
            server: Arc::clone(self),
            remote,
            activity: Some(Arc::clone(&activity)),
        };
        let conn = b.serve_connection(TokioIo::new(io), handler);
        let mut conn = std::pin::pin!(conn);
        // A connection that starts no request for `requestHeaderTimeoutMs`
        // gets GOAWAY, as an idle HTTP/1 keep-alive connection is closed:
        // nobody holds a descriptor place for nothing. Its open streams
        // (a long gRPC stream) finish first.
        let ended = loop {
            let quiet_until = activity.last() + idle;
            tokio::select! {
                r = conn.as_mut() => break Some(r),
                _ = draining.wait_for(|d| *d) => break None,
                () = tokio::time::sleep_until(quiet_until.into()) => {
                    if activity.last() + idle <= Instant::now() {
                        break None;
                    }
                }
            }
        };
        let ended = match ended {
            Some(r) => r,
            None => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = ended {
            tracing::debug!(error = %e, "h2 connection ended with an error");
        }
    }

    /// Counts a failed TLS handshake by class, and logs it at most once a
    /// minute per peer IP.
    fn handshake_failed(
        &self,
        remote: SocketAddr,
        class: HandshakeFailure,
        error: &dyn std::fmt::Display,
    ) {
        self.handshake_counter(class).incr();
        let server = self.state.load().params.label.clone();
        if self.handshakes.should_log(remote.ip()) {
            tracing::warn!(
                server,
                peer = %remote,
                reason = class.label(),
                %error,
                "TLS handshake failed (logged at most once a minute per peer; \
                 tls/handshake_failures counts them all)"
            );
        } else {
            let reason = class.label();
            tracing::debug!(server, peer = %remote, reason, %error, "TLS handshake failed");
        }
    }

    fn handshake_counter(&self, class: HandshakeFailure) -> Arc<Counter> {
        let name = format!("tls/handshake_failures/{}", class.label());
        self.registry.counter(&self.scope, &name)
    }

    /// `CONNECT host:port` to a name this router routes (what Node's
    /// `ProxyAgent` sends for every request through an `http_proxy`): 200,
    /// then the tunnel is served as another client connection, so each
    /// request inside is routed like any other. Any other CONNECT: 405.
    async fn connect(
        self: &Arc<Self>,
        req: &mut hyper::Request<RequestBody>,
        remote: SocketAddr,
        state: &ServerState,
    ) -> Option<hyper::Response<Body>> {
        let authority = req.uri().authority()?.as_str().to_owned();
        if !state.router.routes(&authority).await {
            return None;
        }
        let tunnel = req.extensions_mut().remove::<serve::OnUpgrade>()?;
        let server = Arc::clone(self);
        tokio::spawn(async move {
            // The tunnel is a client connection like any other.
            let _open = server.connections.enter();
            match tunnel.upgraded().await {
                Ok(io) => server.serve_h1(Box::new(io), remote, true, None).await,
                Err(e) => tracing::debug!(error = %e, "CONNECT tunnel not opened"),
            }
        });
        let mut resp = hyper::Response::new(http_body_util::Either::Right(
            http_body_util::Full::new(bytes::Bytes::new()),
        ));
        *resp.status_mut() = http::StatusCode::OK;
        Some(resp)
    }

    async fn handle(
        self: &Arc<Self>,
        mut req: Box<hyper::Request<RequestBody>>,
        remote: SocketAddr,
        tunnelled: bool,
    ) -> Box<hyper::Response<Body>> {
        let start = Instant::now();
        let state = self.state.load_full();
        if req.method() == http::Method::CONNECT
            && !tunnelled
            && let Some(resp) = self.connect(&mut req, remote, &state).await
        {
            state.router.log_answered(&mut req, remote, &resp);
            return Box::new(resp);
        }
        let _permit = match &state.limit {
            None => None,
            Some(limit) => match Arc::clone(&limit.permits).try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    let p = state.router.params();
                    let resp = RouteError::Overloaded(limit.max)
                        .to_response(
                            p.max_headers_bytes,
                            p.max_err_bytes,
                            state.params.clear_context,
                        )
                        .map(|b| http_body_util::Either::Right(http_body_util::Full::new(b)));
                    self.stats.record(resp.status().as_u16(), start.elapsed());
                    state.router.log_answered(&mut req, remote, &resp);
                    return Box::new(resp);
                }
            },
        };
        let pending = self.stats.pending.enter();
        let router = &state.router;
        let mut routing = router.begin(&mut req, &state.params, remote, start);
        let result = std::pin::pin!(router.forward(
            req,
            &state.params,
            &self.stats,
            &self.upgrades,
            remote,
            &mut routing,
        ))
        .await;
        let took = routing.took();
        let resp = router.finish(routing, result, remote);
        drop(pending);
        crate::h2::record(&self.stats, &resp, took);
        resp
    }
}

/// The service of an HTTP/1.1 client connection: each request goes to
/// the server's current router.
struct H1 {
    server: Arc<Server>,
    remote: SocketAddr,
    /// Inside a CONNECT tunnel: no CONNECT again.
    tunnelled: bool,
}

impl serve::Service for H1 {
    type Body = Body;

    fn call(
        &self,
        req: Box<hyper::Request<RequestBody>>,
    ) -> impl std::future::Future<Output = Box<hyper::Response<Body>>> + Send {
        self.server.handle(req, self.remote, self.tunnelled)
    }

    fn take_fields(body: &mut Body) -> Option<crate::http1::wire::Fields> {
        match body {
            http_body_util::Either::Left(b) => b.h1_mut()?.take_fields(),
            http_body_util::Either::Right(_) => None,
        }
    }
}

/// The service of an HTTP/2 client connection: each stream goes to the
/// server's current router.
pub struct Handler {
    server: Arc<Server>,
    remote: SocketAddr,
    /// An h2 connection's last request (for its idle timeout).
    activity: Option<Arc<Activity>>,
}

/// When an h2 connection last started a request.
struct Activity {
    epoch: Instant,
    /// Milliseconds after `epoch`.
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for Handler {
    type Response = hyper::Response<Body>;
    type Error = Infallible;
    // Boxed: the routing future is a few KiB, and hyper moves the
    // connection's service future several times per request; moving a
    // pointer is cheaper than copying the state machine each time.
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>,
    >;

    fn call(&self, req: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        if let Some(a) = &self.activity {
            a.touch();
        }
        let (server, remote) = (Arc::clone(&self.server), self.remote);
        // An h2 CONNECT is never a tunnel here (405).
        Box::pin(async move {
            let req = Box::new(req.map(RequestBody::H2));
            Ok(*server.handle(req, remote, true).await)
        })
    }
}

/// Linkerd's `maxConcurrentStreamsPerConnection` default.
const DEFAULT_MAX_STREAMS: u32 = 1000;

/// What an HTTP/2 client with prior knowledge (h2c) sends first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Why an HTTP/2 preface is refused.
const H2_REFUSAL: &str = "This port speaks HTTP/1.1, and HTTP/2 with prior knowledge (h2c) \
was sent: send HTTP/1.1 here, or HTTP/2 to a router with protocol: h2.\n";

/// Why HTTP/1 is refused on an `h2` router's plaintext server.
const H1_REFUSAL: &str = "This port speaks HTTP/2 (an h2 router): send HTTP/2 with prior \
knowledge (h2c; curl --http2-prior-knowledge, a gRPC client), or HTTP/1.1 to a router with \
protocol: http.\n";

/// What a connection's first bytes are.
#[derive(PartialEq, Eq)]
enum Opening {
    /// HTTP/2's preface, whole.
    Preface,
    /// Anything else (HTTP/1, most likely).
    Other,
    /// Nothing yet, within the head timeout, or the client closed.
    Nothing,
}

/// Looks (without reading) at what the client sends first; gives up, as
/// hyper's head timeout would, after `timeout`.
async fn opening(stream: &mut tokio::net::TcpStream, timeout: Duration) -> Opening {
    let sniff = async {
        let mut buf = [0u8; H2_PREFACE.len()];
        loop {
            let n = stream.peek(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return Opening::Nothing;
            }
            if !H2_PREFACE.starts_with(&buf[..n]) {
                return Opening::Other;
            }
            if n == H2_PREFACE.len() {
                return Opening::Preface;
            }
            // Part of the preface so far ("P" may yet be "POST"): peeking
            // again would see the same bytes at once, so pause.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(timeout, sniff)
        .await
        .unwrap_or(Opening::Nothing)
}

/// Whether the client opened with the other protocol than the server's
/// (HTTP/2's preface on an HTTP/1.1 server, anything else on an h2
/// server), which is then answered with an HTTP/1.1 400 saying why and
/// the connection closed (hyper would close it without a word). An
/// opening in the server's own protocol is left whole for hyper.
async fn refused_wrong_protocol(
    stream: &mut tokio::net::TcpStream,
    timeout: Duration,
    h2: bool,
) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let text = match (opening(stream, timeout).await, h2) {
        (Opening::Preface, false) => H2_REFUSAL,
        (Opening::Other, true) => H1_REFUSAL,
        _ => return false,
    };
    tracing::debug!(h2, "a connection in the other HTTP version: 400");
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
    // Read what the client sent (the preface, its first frames) until it
    // closes, briefly: closing with bytes unread would reset the
    // connection, and the client could lose the answer.
    let mut sink = [0u8; 1024];
    let drain = async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    true
}

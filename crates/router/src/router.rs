//! One router: a request is identified (named `/svc/hello`), routed
//! through the binding cache (logical name -> concrete name -> client, in
//! [`crate::binding`]), sent by the attempt loop (client -> endpoint, in
//! [`crate::attempt`]) over HTTP/1 ([`crate::http1`]), and any failure on
//! the way becomes one error response ([`crate::error`]).
//!
//! A router's settings never change; a reload builds a new router, which
//! takes over the old one's clients and services where their policies are
//! unchanged, and each server swaps it in with its own settings at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::body::RequestBody;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Either, Full};
use strait_dtab::{Dtab, Path};
use strait_naming::{Addr, Interpreter};

use crate::accesslog::Fields;
use crate::attempt::{self, AttemptError};
use crate::binding::{BindError, BindingCache, CacheParams, Route};
use crate::body::Observed;
use crate::error::RouteError;
use crate::h2::{self as h2, H2, grpc};
use crate::headers::LocalDtab;
use crate::http1::{self, Http1, UpgradeStats};
use crate::identify::is_connect;
use crate::params::Protocol;
use crate::recent::Sample;
use crate::service::RequestStats;
use crate::stats::Registry;
use crate::trace::Trace;
use crate::{deadline, headers};

/// The body of every response the router gives.
pub type Body = Either<Observed, Full<Bytes>>;

pub use crate::params::{RouterParams, ServerLimits, ServerParams};

/// What [`Router::begin`] keeps of a request for [`Router::finish`].
pub struct Routing {
    /// When the server had the request (the service's latency counts
    /// from it).
    start: Instant,
    /// How long the routed request took to its response (or error), as
    /// the service's stats counted it: the server's count the same.
    took: Option<Duration>,
    grpc: bool,
    clear: bool,
    trace: Trace,
    sample: Option<Arc<Sample>>,
    /// The access-log fields (when there is an access log), following
    /// the request's rewrites (boxed: ~370 bytes each request's routing
    /// would otherwise carry and move with no access log).
    logged: Option<Box<Fields>>,
}

impl Routing {
    /// How long the request took, as its service's stats counted it
    /// (one clock reading for both); from now when it was not routed.
    pub fn took(&self) -> Duration {
        self.took.unwrap_or_else(|| self.start.elapsed())
    }
}

/// One router.
pub struct Router {
    params: RouterParams,
    cache: BindingCache,
}

/// What a request carries to the forwarding step, besides its route.
pub(crate) struct Forwarding<'a> {
    /// The server it came in on.
    pub server: &'a ServerParams,
    /// That server's count of upgraded connections.
    pub upgrades: &'a Arc<UpgradeStats>,
    /// Its client's address.
    pub remote: SocketAddr,
    /// Its local dtab (`l5d-ctx-dtab` and `l5d-dtab`): the header text and
    /// the parsed dtab.
    pub local: Option<&'a LocalDtab>,
    /// Its `l5d-ctx-deadline` (ns since the epoch).
    pub deadline: Option<u128>,
    /// The total timeout that applies: `totalTimeoutMs` cut to the
    /// deadline.
    pub total: Option<Duration>,
    /// Its trace context.
    pub trace: &'a Trace,
    /// What the request telemeters keep of it, when it is sampled.
    pub sample: Option<&'a Sample>,
    /// The server's stats (an h2 stream's success is counted there when
    /// it ends).
    pub server_stats: &'a Arc<RequestStats>,
}

impl Router {
    /// A router over `interp`, reporting into `registry`.
    pub fn new(params: RouterParams, interp: Interpreter, registry: Registry) -> Arc<Router> {
        let cache = CacheParams {
            label: params.label.as_str().into(),
            dtab: params.dtab.clone(),
            binding_timeout: params.binding_timeout,
            limits: params.binding_limits,
            path_capacity: params.cache_capacity,
            client_capacity: params.client_capacity,
            idle_ttl: params.idle_ttl,
            policies: params.policies.clone(),
            stored: params.interpreter.as_ref().map(|i| i.subscribe()),
        };
        Arc::new(Router {
            cache: BindingCache::new(cache, interp, registry),
            params,
        })
    }

    /// Takes over `prev`'s clients (connection pools, balancer and accrual
    /// state) and services (retry budgets, stats) whose policy is
    /// unchanged, for a reload. Clients whose concrete name `keep` refuses
    /// (their namer changed) are left behind. Bindings are not taken over:
    /// the dtab may have changed.
    pub fn adopt(&self, prev: &Router, keep: impl Fn(&Path) -> bool) {
        self.cache.adopt(&prev.cache, keep);
    }

    /// How many clients this router has.
    pub fn client_count(&self) -> usize {
        self.cache.client_count()
    }

    /// How many bindings this router has cached.
    pub fn binding_count(&self) -> usize {
        self.cache.binding_count()
    }

    /// The router's settings.
    pub fn params(&self) -> &RouterParams {
        &self.params
    }

    /// The dtab bindings start from: the interpreter's stored dtab (if
    /// any) ++ the router's `dtab`.
    pub fn base_dtab(&self) -> Dtab {
        self.cache.stored_dtab().concat(&self.params.dtab)
    }

    /// The interpreter's stored dtab alone (empty for `default`).
    pub fn stored_dtab(&self) -> Arc<Dtab> {
        self.cache.stored_dtab()
    }

    /// The interpreter (for the delegation explorer).
    pub fn interpreter(&self) -> &Interpreter {
        self.cache.interpreter()
    }

    /// The concrete names this router has clients for, with their current
    /// address sets, their endpoints' balancer state (alive, dead or
    /// probing; requests in flight) and, for an h2 client, its open
    /// connections, for `/client_state.json`.
    pub fn client_states(
        &self,
    ) -> Vec<(
        Path,
        Addr,
        Vec<strait_balancer::EndpointInfo>,
        Option<usize>,
    )> {
        self.cache.client_states()
    }

    /// Removes bindings, clients and services idle for longer than the TTL,
    /// with their metrics. Called periodically.
    pub fn expire_idle(&self) {
        self.cache.expire_idle();
    }

    /// Whether requests to `authority` (a `CONNECT` target) are routed
    /// here: an identifier names a plain request to it, and the name binds
    /// to a client.
    pub async fn routes(&self, authority: &str) -> bool {
        // `host:80` is what a client tunnels for `http://host/`, whose
        // requests inside say `Host: host`.
        let host = authority.strip_suffix(":80").unwrap_or(authority);
        let Ok(req) = Request::get("/").header(http::header::HOST, host).body(()) else {
            return false;
        };
        for id in &self.params.identifiers {
            if let Ok(i) = id.identify(&self.params.dst_prefix, &req) {
                return self
                    .cache
                    .route(&i.dst, None, crate::clock::now_ms())
                    .await
                    .is_ok();
            }
        }
        false
    }

    /// Starts handling one request from a client of `server`: strips what
    /// the server does not take from clients, reads the trace context,
    /// samples. [`Router::forward`] then sends the request and
    /// [`Router::finish`] makes the response; every request, answered by a
    /// backend or by the router, gets its one access-log line there.
    ///
    /// Three calls rather than one `async fn`: the caller awaits `forward`
    /// in its own state, so the request's future is one level shallower
    /// (each level is a copy of the whole state machine when it starts).
    pub fn begin(
        &self,
        req: &mut Request<RequestBody>,
        server: &ServerParams,
        remote: SocketAddr,
        start: Instant,
    ) -> Routing {
        let h2 = self.params.protocol == Protocol::H2;
        let grpc = h2 && grpc::is_grpc(req.headers());
        // What the client's head held: what it did not, nothing looks for.
        let seen = req.body().seen();
        if server.clear_context && seen.l5d() {
            headers::strip_l5d(req.headers_mut());
        }
        let trace = if seen.trace() {
            Trace::take(req.headers_mut())
        } else {
            Trace::fresh()
        };
        let sample = self.sample(req, &trace, server, remote);
        let logged = self.params.access_log.as_ref().map(|_| {
            Box::new(
                Fields::of(req.method(), req.uri().clone(), req.headers())
                    .opaque(req.body().opaque())
                    .version(req.version()),
            )
        });
        Routing {
            start,
            took: None,
            grpc,
            clear: server.clear_context,
            trace,
            sample,
            logged,
        }
    }

    /// The response to a request [`Router::begin`] started, from what
    /// [`Router::forward`] came to; its access-log line and telemetry.
    pub fn finish(
        &self,
        routing: Routing,
        result: Result<Box<Response<Body>>, RouteError>,
        remote: SocketAddr,
    ) -> Box<Response<Body>> {
        let Routing {
            start: _,
            took: _,
            grpc,
            clear,
            trace,
            sample,
            logged,
        } = routing;
        let h2 = self.params.protocol == Protocol::H2;
        let resp = match result {
            Ok(mut resp) => {
                // An HTTP/1 backend's fields are written as they came, by
                // the HTTP/1 server; a map only when they must change or
                // another protocol writes them.
                if h2 || (clear && fields(&resp).is_some_and(http1::wire::Fields::has_l5d)) {
                    materialize(&mut resp);
                }
                if clear {
                    headers::strip_l5d(resp.headers_mut());
                }
                resp
            }
            Err(e) => {
                tracing::debug!(router = %self.params.label, error = %e, "request failed");
                if grpc {
                    let resp = grpc::error_response(&e, self.params.max_headers_bytes, clear);
                    let mut resp = resp.map(|b| Either::Right(Full::new(b)));
                    resp.extensions_mut().insert(h2::GrpcFailure);
                    h2::append_via(resp.headers_mut());
                    Box::new(resp)
                } else {
                    let resp = e.to_response(
                        self.params.max_headers_bytes,
                        self.params.max_err_bytes,
                        clear,
                    );
                    let mut resp = resp.map(|b| Either::Right(Full::new(b)));
                    if h2 {
                        // Linkerd's h2 router has no l5d-retryable (an h2
                        // client retries a refused stream on its own).
                        resp.headers_mut().remove("l5d-retryable");
                        h2::append_via(resp.headers_mut());
                    } else {
                        http1::append_via(resp.headers_mut());
                    }
                    Box::new(resp)
                }
            }
        };
        if let (Some(t), Some(s)) = (&self.params.telemeters, &sample) {
            t.finish(s, resp.status().as_u16());
        }
        if let (Some(log), Some(fields)) = (&self.params.access_log, logged) {
            fields.log(
                log,
                remote,
                resp.status().as_u16(),
                body_bytes(&resp),
                &trace.id,
            );
        }
        resp
    }

    /// Whether the request telemeters sample this request; a sampled one
    /// carries its [`Sample`] in its extensions to [`Router::forward`].
    fn sample(
        &self,
        req: &mut Request<RequestBody>,
        trace: &Trace,
        server: &ServerParams,
        remote: SocketAddr,
    ) -> Option<Arc<Sample>> {
        let s = self.params.telemeters.as_ref()?.sample(
            req,
            trace,
            remote,
            &server.label,
            &self.params.label,
        )?;
        req.extensions_mut().insert(Arc::clone(&s));
        Some(s)
    }

    /// Writes the access-log line of a request the server answered without
    /// routing it (`maxConcurrentRequests`, an opened CONNECT tunnel).
    pub(crate) fn log_answered(
        &self,
        req: &mut Request<RequestBody>,
        remote: SocketAddr,
        resp: &Response<Body>,
    ) {
        if let Some(log) = &self.params.access_log {
            let trace = Trace::take(req.headers_mut());
            let fields = Fields::of(req.method(), req.uri().clone(), req.headers())
                .opaque(req.body().opaque())
                .version(req.version());
            fields.log(
                log,
                remote,
                resp.status().as_u16(),
                body_bytes(resp),
                &trace.id,
            );
        }
    }

    /// Names the request, routes it and sends it, within the service's
    /// total timeout; counts it in the service's stats. `logged` (when
    /// there is an access log) follows the request's rewrites.
    #[allow(clippy::too_many_arguments)]
    pub async fn forward(
        &self,
        mut req: Box<Request<RequestBody>>,
        server: &ServerParams,
        server_stats: &Arc<RequestStats>,
        upgrades: &Arc<UpgradeStats>,
        remote: SocketAddr,
        routing: &mut Routing,
    ) -> Result<Box<Response<Body>>, RouteError> {
        let (trace, logged) = (&routing.trace, &mut routing.logged);
        if is_connect(&req) {
            return Err(RouteError::Connect);
        }
        let seen = req.body().seen();
        if seen.via() && http1::via_depth(req.headers()) > self.params.max_call_depth as usize {
            return Err(RouteError::CallDepth(self.params.max_call_depth));
        }
        let h2 = self.params.protocol == Protocol::H2;
        if !h2 {
            // HTTP/2's framing has none of HTTP/1's ambiguities, and hyper
            // bounds its header list (maxHeaderListBytes).
            let limits = &server.limits;
            let checked = seen.checked_block().map(|block| http1::Checked {
                block,
                // Before any of the body is read: what the head declared.
                length: http_body::Body::size_hint(req.body()).exact(),
            });
            http1::check_request(
                &req,
                checked,
                self.params.max_initial_line_bytes,
                self.params.max_headers_bytes,
                limits.max_body_bytes,
            )?;
            if req.uri().scheme().is_some() {
                // The authority replaces the `Host` (in the map).
                http1::host_to_map(&mut req);
                http1::absolute_to_origin_form(&mut req);
            }
        }
        let local = match (&server.dtab_override, seen.l5d()) {
            (_, false) => None,
            (Some(_), true) => headers::take_local_dtab_within(
                req.headers_mut(),
                self.params.binding_limits.max_dtab_header_bytes,
            )
            .map_err(RouteError::BadDtab)?,
            (None, true) => {
                headers::drop_local_dtab(req.headers_mut());
                None
            }
        };
        // Read before the binding is awaited: `seen` need not be kept.
        let incoming = if seen.l5d() {
            deadline::read(req.headers())
        } else {
            None
        };
        let dst = self.identify(&mut req, remote);
        if let Some(l) = logged {
            // Absolute-form cut to origin-form, an identifier's rewrite.
            l.refine(
                Fields::of(req.method(), req.uri().clone(), req.headers())
                    .opaque(req.body().opaque()),
            );
        }
        let dst = dst?;
        let sample = req.extensions().get::<Arc<Sample>>().cloned();
        if let Some(s) = &sample {
            s.set_logical(&dst);
        }
        let start = routing.start;
        let route = match self
            .cache
            .route(&dst, local.as_ref(), crate::clock::ms(start))
            .await
        {
            Ok(route) => route,
            Err(e) => {
                if let Some(l) = logged {
                    // The error path only: a bound name's is made once.
                    l.service = http::HeaderValue::from_str(&dst.show()).ok();
                }
                return Err(self.bind_error(e, &dst, local.as_ref()));
            }
        };
        if let Some(s) = &sample {
            s.set_concrete(&route.client.id);
        }
        let svc = &route.service;
        if let Some(l) = logged {
            l.service.clone_from(&svc.l5d_dst);
            l.client.clone_from(&route.client.l5d_dst);
        }
        let pending = svc.stats.pending.enter();
        let mut incoming = incoming;
        // gRPC's own deadline: the call's total timeout is cut to it,
        // and each attempt carries what is left of it.
        let grpc_deadline = if h2 {
            grpc::read_timeout(req.headers()).map(|t| deadline::now_ns() + t.as_nanos())
        } else {
            None
        };
        if let Some(g) = grpc_deadline {
            incoming = Some(incoming.map_or(g, |d| d.min(g)));
        }
        let fwd = Forwarding {
            server,
            upgrades,
            remote,
            local: local.as_ref(),
            deadline: incoming,
            total: deadline::total_timeout(svc.policy.total_timeout, incoming),
            trace,
            server_stats,
            sample: sample.as_deref(),
        };
        // Pinned in place: awaited (or timed) through a pointer, not
        // copied into the awaiting state.
        let sent =
            std::pin::pin!(self.send(req, &route, &fwd, &dst, logged, grpc_deadline.and(incoming)));
        let result = match fwd.total {
            None => sent.await,
            Some(t) => tokio::time::timeout(t, sent).await.unwrap_or_else(|_| {
                Err(RouteError::TotalTimeout {
                    service: dst.clone(),
                    timeout: t,
                })
            }),
        };
        drop(pending);
        let took = start.elapsed();
        routing.took = Some(took);
        match &result {
            Ok(r) => h2::record(&svc.stats, r, took),
            Err(e) => svc.stats.record(e.status().as_u16(), took),
        }
        result
    }

    /// The logical name of `req`, from the first identifier that names it;
    /// sets the URI an identifier rewrote.
    fn identify(
        &self,
        req: &mut Request<RequestBody>,
        remote: SocketAddr,
    ) -> Result<Path, RouteError> {
        let mut first_err = None;
        for id in &self.params.identifiers {
            match id.identify(&self.params.dst_prefix, req) {
                Ok(i) => {
                    if let Some(uri) = i.uri {
                        *req.uri_mut() = uri;
                    }
                    return Ok(i.dst);
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(RouteError::Unidentified {
            request: format!("{} {}", req.method(), req.uri().path()),
            from: remote,
            reason: first_err.unwrap_or_else(|| "no identifier configured".to_owned()),
        })
    }

    /// Sends the request on `route` over HTTP/1 through the attempt loop;
    /// `logged` takes the request as the backend sees it (`setHost`).
    async fn send(
        &self,
        req: Box<Request<RequestBody>>,
        route: &Route,
        fwd: &Forwarding<'_>,
        dst: &Path,
        logged: &mut Option<Box<Fields>>,
        grpc_deadline: Option<u128>,
    ) -> Result<Box<Response<Body>>, RouteError> {
        // Only a request whose route an override chose is checked.
        let guard = match (fwd.local, &fwd.server.dtab_override) {
            (Some(_), Some(g)) => Some(&**g),
            _ => None,
        };
        if let Some(pool) = &route.client.h2 {
            // Boxed: the h2 exchange's state machine would otherwise sit
            // inside every HTTP/1 request's future and be copied with it.
            return Box::pin(self.send_h2(
                req,
                route,
                pool,
                fwd,
                dst,
                logged,
                guard,
                grpc_deadline,
            ))
            .await;
        }
        let mut ex = Http1::new(req, route, fwd);
        if let Some(l) = logged {
            l.refine(ex.log_fields());
        }
        ex.keep_body().await?;
        match attempt::run(&mut ex, &route.client, &route.service, guard).await {
            Ok(answered) => {
                if let Some(s) = fwd.sample {
                    s.set_endpoint(answered.lease.addr());
                }
                if let Some(l) = logged {
                    l.endpoint = Some(answered.lease.addr());
                }
                Ok(ex.finish(answered))
            }
            Err(e) => Err(self.attempt_error(e, route, fwd, dst)),
        }
    }

    /// [`Router::send`] over HTTP/2.
    #[allow(clippy::too_many_arguments)]
    async fn send_h2(
        &self,
        req: Box<Request<RequestBody>>,
        route: &Route,
        pool: &h2::H2Pool,
        fwd: &Forwarding<'_>,
        dst: &Path,
        logged: &mut Option<Box<Fields>>,
        guard: Option<&crate::guard::OverrideGuard>,
        grpc_deadline: Option<u128>,
    ) -> Result<Box<Response<Body>>, RouteError> {
        let mut ex = H2::new(req, route, pool, fwd, grpc_deadline);
        if let Some(l) = logged {
            l.refine(ex.log_fields());
        }
        ex.read_ahead().await?;
        match attempt::run(&mut ex, &route.client, &route.service, guard).await {
            Ok(answered) => {
                if let Some(s) = fwd.sample {
                    s.set_endpoint(answered.lease.addr());
                }
                if let Some(l) = logged {
                    l.endpoint = Some(answered.lease.addr());
                }
                Ok(Box::new(ex.finish(answered)))
            }
            Err(e) => Err(self.attempt_error(e, route, fwd, dst)),
        }
    }

    /// The error of a name that has no route.
    fn bind_error(&self, e: BindError, dst: &Path, local: Option<&LocalDtab>) -> RouteError {
        match e {
            BindError::NoRoute => self.no_route(dst, local),
            BindError::Failed(message) => RouteError::BindingFailed {
                service: dst.clone(),
                message,
            },
            BindError::Timeout(timeout) => RouteError::BindingTimeout {
                service: dst.clone(),
                timeout,
            },
            BindError::Limit(limit) => RouteError::BindingLimit {
                service: dst.clone(),
                limit,
                local: local.is_some(),
            },
        }
    }

    /// `No hosts are available for /svc/x, Dtab.base=[...], Dtab.local=[...]`.
    fn no_route(&self, dst: &Path, local: Option<&LocalDtab>) -> RouteError {
        RouteError::NoRoute {
            service: dst.clone(),
            base: self.params.dtab.clone(),
            local: local.map(|l| l.dtab.clone()).unwrap_or_default(),
        }
    }

    /// The error of a request whose last attempt failed.
    fn attempt_error(
        &self,
        e: AttemptError,
        route: &Route,
        fwd: &Forwarding<'_>,
        dst: &Path,
    ) -> RouteError {
        let client = &route.client;
        if let (Some(s), AttemptError::ConnectFailed(addr, _) | AttemptError::Lost { addr, .. }) =
            (fwd.sample, &e)
        {
            s.set_endpoint(*addr);
        }
        match e {
            AttemptError::NoEndpoints => match &*client.addr() {
                Addr::Neg => self.no_route(dst, fwd.local),
                other => RouteError::NoEndpoints {
                    service: dst.clone(),
                    client: client.id.clone(),
                    state: other.to_string(),
                },
            },
            AttemptError::ConnectFailed(selected, reason) => RouteError::ConnectFailed {
                selected,
                reason: reason.map(String::into_boxed_str),
                service: dst.clone(),
                client: client.id.clone(),
                addresses: client.addresses(),
            },
            AttemptError::Lost { addr, message } => RouteError::Upstream {
                message: format!("Failed to get a response from {addr} for {dst}: {message}"),
                retryable: false,
            },
            AttemptError::Local { status, message } => RouteError::Refused { status, message },
            AttemptError::NoResponse(timeout) => RouteError::ResponseTimeout {
                client: client.id.clone(),
                timeout,
            },
            AttemptError::TimedOut(timeout) => RouteError::AttemptTimeout {
                client: client.id.clone(),
                timeout,
            },
            AttemptError::Forbidden(why) => RouteError::Forbidden(why),
        }
    }
}

/// The length of a response body, for the access log: its
/// `Content-Length`, or the size of a body the router made.
fn body_bytes(resp: &Response<Body>) -> Option<u64> {
    use http_body::Body as _;
    if let Some(f) = fields(resp) {
        return f.length();
    }
    http1::content_length(resp.headers()).or_else(|| match resp.body() {
        Either::Right(b) => b.size_hint().exact(),
        Either::Left(_) => None,
    })
}

/// An HTTP/1 backend's response fields, still as written (not in the
/// response's map).
pub(crate) fn fields(resp: &Response<Body>) -> Option<&http1::wire::Fields> {
    match resp.body() {
        Either::Left(b) => b.h1()?.fields(),
        Either::Right(_) => None,
    }
}

/// Moves an HTTP/1 backend's response fields into the response's map.
pub(crate) fn materialize(resp: &mut Response<Body>) {
    if let Either::Left(b) = resp.body_mut()
        && let Some(f) = b.h1_mut().and_then(|b| b.take_fields())
    {
        f.into_map(resp.headers_mut());
    }
}

//! One router: identify -> bind (logical -> concrete) -> pick an endpoint ->
//! forward. A router is immutable once built; reloading builds a new one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HOST, HeaderValue};
use http::uri::PathAndQuery;
use http::{Request, Response, Uri};
use http_body::Body as _;
use http_body_util::BodyExt;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use strait_balancer::Outcome;
use strait_dtab::{Dtab, NameTree, Path, State};
use strait_naming::{Addr, Binding, BoundName, Interpreter};

use crate::body::Observed;
use crate::client::{Client, ReqBody};
use crate::error::RouteError;
use crate::identify::{Identifier, is_connect};
use crate::policy::Policies;
use crate::pool::SendError;
use crate::retry::ResponseClass;
use crate::service::Service;
use crate::stats::{Counter, Registry, Scope};
use crate::{deadline, headers};

/// The body of every response the router gives.
pub type Body = Either<Observed, Full<Bytes>>;

/// Request bodies up to this size (with a `Content-Length`) are kept so the
/// request can be requeued or retried; larger or chunked bodies stream
/// through once and are never sent twice.
pub(crate) const REPLAY_LIMIT: u64 = 64 * 1024;

/// Requeues of one request at most (Finagle's `RequeueFilter` cap), besides
/// the budget.
const MAX_REQUEUES: u32 = 25;

/// A router's settings, from `linkerd.yaml`'s `routers[]`.
#[derive(Clone, Debug)]
pub struct RouterParams {
    /// `label`: the metrics scope `rt/<label>`.
    pub label: String,
    /// The base dtab.
    pub dtab: Dtab,
    /// `dstPrefix` (default `/svc`).
    pub dst_prefix: Path,
    /// Tried in order; the first that names the request wins.
    pub identifiers: Vec<Identifier>,
    /// `bindingTimeoutMs`.
    pub binding_timeout: Duration,
    /// Most bindings kept (`bindingCache.paths`, and `trees` and `bounds`:
    /// each binding holds its bound tree and bound names).
    pub cache_capacity: usize,
    /// Most clients kept (`bindingCache.clients`).
    pub client_capacity: usize,
    /// Idle bindings, services and clients expire after this.
    pub idle_ttl: Duration,
    /// `maxHeadersKB`, for the `l5d-err` cap.
    pub max_headers_bytes: usize,
    /// `maxErrResponseKB`.
    pub max_err_bytes: usize,
    /// `maxCallDepth` (the `Via` loop guard).
    pub max_call_depth: u32,
    /// `httpAccessLog`: one line per request forwarded to a backend.
    pub access_log: Option<crate::accesslog::AccessLog>,
    /// `client` and `service` policies, by name.
    pub policies: Policies,
}

/// Per-server settings that change how a request is handled.
#[derive(Clone, Debug)]
pub struct ServerParams {
    /// `ip/port`, the server's metrics scope.
    pub label: String,
    /// `clearContext`.
    pub clear_context: bool,
    /// `addForwardedHeader`.
    pub add_forwarded: bool,
    /// The local address the server listens on.
    pub local: SocketAddr,
}

/// One router.
pub struct Router {
    params: RouterParams,
    interp: Interpreter,
    registry: Registry,
    bindings: Mutex<HashMap<BindKey, Arc<BindEntry>>>,
    clients: Mutex<HashMap<Path, Arc<Client>>>,
    services: Mutex<HashMap<Path, Arc<Service>>>,
    epoch: Instant,
    cache_stats: CacheStats,
}

/// `rt/<router>/bindcache/{path,client}/{misses,evicts}`, as Finagle's
/// `ServiceFactoryCache` reports them.
struct CacheStats {
    path_misses: Arc<Counter>,
    path_evicts: Arc<Counter>,
    client_misses: Arc<Counter>,
    client_evicts: Arc<Counter>,
}

impl CacheStats {
    fn new(registry: &Registry, router: &str) -> CacheStats {
        let scope = |layer: &str| Scope::Root(format!("rt/{router}/bindcache/{layer}").into());
        let (path, client) = (scope("path"), scope("client"));
        CacheStats {
            path_misses: registry.counter(&path, "misses"),
            path_evicts: registry.counter(&path, "evicts"),
            client_misses: registry.counter(&client, "misses"),
            client_evicts: registry.counter(&client, "evicts"),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct BindKey {
    local: Option<Arc<str>>,
    dst: Path,
}

struct BindEntry {
    binding: Binding,
    clients: Vec<Arc<Client>>,
    /// Only for a name that binds to some client: a flood of Host values
    /// naming nothing must not make a service (and its metrics) each.
    service: Option<Arc<Service>>,
    last_used: std::sync::atomic::AtomicU64,
}

/// What the request was routed to, for headers and errors.
struct Target {
    service: Path,
    client: Arc<Client>,
    residual: Path,
}

impl Router {
    /// A router over `interp`, reporting into `registry`.
    pub fn new(params: RouterParams, interp: Interpreter, registry: Registry) -> Arc<Router> {
        Arc::new(Router {
            cache_stats: CacheStats::new(&registry, &params.label),
            params,
            interp,
            registry,
            bindings: Mutex::default(),
            clients: Mutex::default(),
            services: Mutex::default(),
            epoch: Instant::now(),
        })
    }

    /// Takes over `prev`'s clients (connection pools, balancer and accrual
    /// state) and services (retry budgets, stats) whose policy is
    /// unchanged, for a reload. Clients whose concrete name `keep` refuses
    /// (their namer changed) are left behind. Bindings are not taken over:
    /// the dtab may have changed.
    pub fn adopt(&self, prev: &Router, keep: impl Fn(&Path) -> bool) {
        let old = prev.clients.lock().unwrap_or_else(|e| e.into_inner());
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        for (id, c) in old.iter() {
            if keep(id) && self.params.policies.client_for(id) == c.policy {
                clients.insert(id.clone(), Arc::clone(c));
            }
        }
        let old = prev.services.lock().unwrap_or_else(|e| e.into_inner());
        let mut services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        for (name, s) in old.iter() {
            if self.params.policies.service_for(name) == s.policy {
                services.insert(name.clone(), Arc::clone(s));
            }
        }
    }

    /// How many clients this router has.
    pub fn client_count(&self) -> usize {
        self.clients.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The router's settings.
    pub fn params(&self) -> &RouterParams {
        &self.params
    }

    /// The interpreter (for the delegation explorer).
    pub fn interpreter(&self) -> &Interpreter {
        &self.interp
    }

    /// The concrete names this router has clients for, with their current
    /// address sets (for `/client_state.json`).
    pub fn client_states(&self) -> Vec<(Path, Addr)> {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(Path, Addr)> = clients
            .values()
            .map(|c| (c.id.clone(), (*c.addr()).clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Handles one request from a client of `server`.
    pub async fn route(
        &self,
        mut req: Request<Incoming>,
        server: &ServerParams,
        remote: SocketAddr,
    ) -> Response<Body> {
        let clear = server.clear_context;
        if clear {
            headers::strip_l5d(req.headers_mut());
        }
        match self.route0(req, server, remote).await {
            Ok(mut resp) => {
                if clear {
                    headers::strip_l5d(resp.headers_mut());
                }
                resp
            }
            Err(e) => {
                tracing::debug!(router = %self.params.label, error = %e, "request failed");
                let resp = e.to_response(
                    self.params.max_headers_bytes,
                    self.params.max_err_bytes,
                    clear,
                );
                let mut resp = resp.map(|b| Either::Right(Full::new(b)));
                headers::append_via(resp.headers_mut());
                resp
            }
        }
    }

    async fn route0(
        &self,
        mut req: Request<Incoming>,
        server: &ServerParams,
        remote: SocketAddr,
    ) -> Result<Response<Body>, RouteError> {
        if is_connect(&req) {
            return Err(RouteError::Connect);
        }
        if headers::via_depth(req.headers()) > self.params.max_call_depth as usize {
            return Err(RouteError::CallDepth(self.params.max_call_depth));
        }
        headers::absolute_to_origin_form(&mut req);
        let local = headers::take_local_dtab(req.headers_mut()).map_err(RouteError::BadDtab)?;

        let mut identified = None;
        let mut first_err = None;
        for id in &self.params.identifiers {
            match id.identify(&self.params.dst_prefix, &req) {
                Ok(i) => {
                    identified = Some(i);
                    break;
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        let Some(identified) = identified else {
            return Err(RouteError::Unidentified {
                request: format!("{} {}", req.method(), req.uri().path()),
                from: remote,
                reason: first_err.unwrap_or_else(|| "no identifier configured".to_owned()),
            });
        };
        if let Some(uri) = identified.uri {
            *req.uri_mut() = uri;
        }
        let dst = identified.dst;
        let start = Instant::now();
        let entry = self.bind(&dst, local.as_ref()).await?;
        let Some(service) = entry.service.clone() else {
            return Err(self
                .pick(&entry, &dst, local.as_ref())
                .err()
                .unwrap_or_else(|| RouteError::NoRoute {
                    service: dst.clone(),
                    base: self.params.dtab.clone(),
                    local: Dtab::empty(),
                }));
        };
        let pending = service.stats.pending.enter();
        let result = self
            .dispatch(req, &entry, &service, &dst, local.as_ref(), server, remote)
            .await;
        drop(pending);
        let code = match &result {
            Ok(r) => r.status().as_u16(),
            Err(e) => e.status().as_u16(),
        };
        service.stats.record(code, start.elapsed());
        result
    }

    /// The binding of `dst` under the request's local dtab: from the cache
    /// while it is fresh, else bound again, waiting up to
    /// `bindingTimeoutMs` while it is pending.
    async fn bind(
        &self,
        dst: &Path,
        local: Option<&(Arc<str>, Dtab)>,
    ) -> Result<Arc<BindEntry>, RouteError> {
        let key = BindKey {
            local: local.map(|(s, _)| Arc::clone(s)),
            dst: dst.clone(),
        };
        let now = self.now_ms();
        if let Some(e) = self
            .bindings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .filter(|e| !e.binding.is_stale() && !matches!(e.binding.state, State::Pending))
        {
            e.last_used.store(now, std::sync::atomic::Ordering::Relaxed);
            return Ok(Arc::clone(e));
        }
        let dtab = match local {
            Some((_, l)) => self.params.dtab.concat(l),
            None => self.params.dtab.clone(),
        };
        let deadline = tokio::time::Instant::now() + self.params.binding_timeout;
        let mut binding = self.interp.bind(&dtab, dst, strait_dtab::DEFAULT_MAX_DEPTH);
        while matches!(binding.state, State::Pending) {
            let mut waiting = binding.clone();
            if tokio::time::timeout_at(deadline, waiting.changed())
                .await
                .is_err()
            {
                return Err(RouteError::BindingTimeout {
                    service: dst.clone(),
                    timeout: self.params.binding_timeout,
                });
            }
            binding = self.interp.bind(&dtab, dst, strait_dtab::DEFAULT_MAX_DEPTH);
        }
        self.cache_stats.path_misses.incr();
        let mut clients = Vec::new();
        let mut evicted_clients = Vec::new();
        if let State::Ok(tree) = &binding.state {
            tree.for_each_leaf(&mut |b: &BoundName| {
                if !clients.iter().any(|c: &Arc<Client>| c.id == b.id) {
                    let (c, evicted) = self.client(b, &clients);
                    clients.push(c);
                    evicted_clients.extend(evicted);
                }
            });
        }
        if !evicted_clients.is_empty() {
            self.unbind_clients(&evicted_clients);
        }
        let service = (!clients.is_empty()).then(|| self.service(dst));
        let entry = Arc::new(BindEntry {
            binding,
            clients,
            service,
            last_used: std::sync::atomic::AtomicU64::new(now),
        });
        let mut map = self.bindings.lock().unwrap_or_else(|e| e.into_inner());
        let mut evicted = None;
        if map.len() >= self.params.cache_capacity && !map.contains_key(&key) {
            // Evict the least recently used binding.
            if let Some(k) = map
                .iter()
                .min_by_key(|(_, v)| v.last_used.load(std::sync::atomic::Ordering::Relaxed))
                .map(|(k, _)| k.clone())
            {
                evicted = map.remove(&k).map(|e| (k.dst, e));
                self.cache_stats.path_evicts.incr();
            }
        }
        map.insert(key, Arc::clone(&entry));
        drop(map);
        if let Some((dst, e)) = evicted {
            drop(e);
            self.forget_service(&dst);
        }
        Ok(entry)
    }

    /// Drops the service of `dst` (and its metrics) if nothing uses it any
    /// more: Host headers come from clients, so a flood of distinct names
    /// must not keep a service per name until the next idle sweep.
    fn forget_service(&self, dst: &Path) {
        let mut services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        if services.get(dst).is_some_and(|s| Arc::strong_count(s) == 1) {
            services.remove(dst);
            drop(services);
            self.registry.remove_scope(&Scope::Service {
                router: self.params.label.as_str().into(),
                name: dst.show().into(),
            });
        }
    }

    /// The client of `b`'s concrete id, made if there is none. Making one
    /// when `bindingCache.clients` are cached already evicts the least
    /// recently used, preferring one no binding holds, never one of
    /// `needed` (the other clients of the binding being made): their ids
    /// are returned so the bindings holding them can be dropped.
    fn client(&self, b: &BoundName, needed: &[Arc<Client>]) -> (Arc<Client>, Vec<Path>) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(&b.id) {
            c.touch();
            return (Arc::clone(c), Vec::new());
        }
        self.cache_stats.client_misses.incr();
        let mut evicted = Vec::new();
        while clients.len() >= self.params.client_capacity.max(1) {
            let victim = clients
                .iter()
                .filter(|(id, _)| !needed.iter().any(|n| &n.id == *id))
                .max_by_key(|(_, c)| (Arc::strong_count(c) == 1, c.idle_for()))
                .map(|(id, _)| id.clone());
            // A binding needing more clients than the cache holds keeps
            // them all until its next rebinding.
            let Some(id) = victim else { break };
            clients.remove(&id);
            self.cache_stats.client_evicts.incr();
            evicted.push(id);
        }
        let policy = self.params.policies.client_for(&b.id);
        let host = self
            .interp
            .authority(&b.id)
            .and_then(|h| HeaderValue::from_str(&h).ok());
        let c = Client::new(
            b.id.clone(),
            b.addr.clone(),
            policy,
            host,
            &self.registry,
            &self.params.label,
        );
        c.touch();
        clients.insert(b.id.clone(), Arc::clone(&c));
        drop(clients);
        for id in &evicted {
            self.registry.remove_scope(&Scope::Client {
                router: self.params.label.as_str().into(),
                id: id.show().into(),
            });
        }
        (c, evicted)
    }

    /// Drops the bindings that hold an evicted client, so the next request
    /// for their names binds again and gets a cached client. Requests in
    /// flight keep theirs until they finish.
    fn unbind_clients(&self, evicted: &[Path]) {
        let mut dropped = Vec::new();
        self.bindings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, e| {
                let holds = e.clients.iter().any(|c| evicted.contains(&c.id));
                if holds {
                    dropped.push(k.dst.clone());
                }
                !holds
            });
        for dst in dropped {
            self.forget_service(&dst);
        }
    }

    fn service(&self, dst: &Path) -> Arc<Service> {
        let mut services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(services.entry(dst.clone()).or_insert_with(|| {
            let scope = Scope::Service {
                router: self.params.label.as_str().into(),
                name: dst.show().into(),
            };
            Service::new(
                &self.registry,
                &scope,
                dst,
                self.params.policies.service_for(dst),
            )
        }))
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Removes bindings, clients and services idle for longer than the TTL,
    /// with their metrics. Called periodically.
    pub fn expire_idle(&self) {
        let ttl = self.params.idle_ttl.as_millis() as u64;
        let now = self.now_ms();
        self.bindings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, e| {
                now.saturating_sub(e.last_used.load(std::sync::atomic::Ordering::Relaxed)) < ttl
            });
        let idle = self.params.idle_ttl;
        for c in self
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            c.pool.sweep(None);
        }
        for id in drain_where(&self.clients, |c| c.idle_for() >= idle) {
            self.registry.remove_scope(&Scope::Client {
                router: self.params.label.as_str().into(),
                id: id.show().into(),
            });
        }
        let dead = drain_where(&self.services, |_| true);
        for name in dead {
            self.registry.remove_scope(&Scope::Service {
                router: self.params.label.as_str().into(),
                name: name.show().into(),
            });
        }
    }

    /// The bound name a request goes to and its client, or why there is
    /// none.
    fn pick<'e>(
        &self,
        entry: &'e BindEntry,
        dst: &Path,
        local: Option<&(Arc<str>, Dtab)>,
    ) -> Result<(&'e BoundName, &'e Arc<Client>), RouteError> {
        let no_route = || RouteError::NoRoute {
            service: dst.clone(),
            base: self.params.dtab.clone(),
            local: local.map(|(_, d)| d.clone()).unwrap_or_default(),
        };
        let tree = match &entry.binding.state {
            State::Ok(t) => t,
            State::Failed(m) => {
                return Err(RouteError::BindingFailed {
                    service: dst.clone(),
                    message: m.clone(),
                });
            }
            State::Pending => return Err(no_route()),
        };
        let Some(bound) = choose(tree) else {
            return Err(no_route());
        };
        let Some(client) = entry.clients.iter().find(|c| c.id == bound.id) else {
            return Err(no_route());
        };
        Ok((bound, client))
    }

    #[allow(clippy::too_many_arguments)]
    async fn dispatch(
        &self,
        req: Request<Incoming>,
        entry: &BindEntry,
        svc: &Service,
        dst: &Path,
        local: Option<&(Arc<str>, Dtab)>,
        server: &ServerParams,
        remote: SocketAddr,
    ) -> Result<Response<Body>, RouteError> {
        let (bound, client) = self.pick(entry, dst, local)?;
        client.touch();
        let target = Target {
            service: dst.clone(),
            client: Arc::clone(client),
            residual: bound.residual.clone(),
        };
        let incoming = deadline::read(req.headers());
        let total = match (svc.policy.total_timeout, incoming.map(deadline::remaining)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let fut = self.forward(req, &target, svc, local, server, remote, incoming, total);
        match total {
            None => fut.await,
            Some(t) => match tokio::time::timeout(t, fut).await {
                Ok(r) => r,
                Err(_) => Err(RouteError::TotalTimeout {
                    service: dst.clone(),
                    timeout: t,
                }),
            },
        }
    }

    /// Sends the request, requeueing it on connection failures and retrying
    /// it on retryable failures as the budgets allow.
    #[allow(clippy::too_many_arguments)]
    async fn forward(
        &self,
        req: Request<Incoming>,
        target: &Target,
        svc: &Service,
        local: Option<&(Arc<str>, Dtab)>,
        server: &ServerParams,
        remote: SocketAddr,
        incoming_deadline: Option<u128>,
        total: Option<Duration>,
    ) -> Result<Response<Body>, RouteError> {
        let client = &target.client;
        let (mut parts, body) = req.into_parts();
        let h = &mut parts.headers;
        headers::strip_hop_by_hop(h);
        headers::append_via(h);
        if server.add_forwarded {
            headers::add_forwarded(h, remote, server.local);
        }
        if h.get(HOST).is_none() {
            h.insert(HOST, HeaderValue::from_static(""));
        }
        // setHost: the backend sees the namer's host; redirects it sends
        // back are pointed at the caller's.
        let rewritten = client
            .host
            .as_ref()
            .and_then(|new| Some((new, h.insert(HOST, new.clone())?)));
        headers::set_l5d(
            h,
            svc.l5d_dst.as_ref(),
            client.l5d_dst.as_ref(),
            &target.residual,
            local.map(|(s, _)| &**s),
        );
        deadline::write(h, incoming_deadline, total);
        let pq = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));

        // Keep small bodies so the request can be sent again.
        let replayable =
            body.is_end_stream() || body.size_hint().exact().is_some_and(|n| n <= REPLAY_LIMIT);
        let mut body = if replayable {
            let bytes = body.collect().await.map_err(|e| RouteError::Upstream {
                message: format!("reading the request body: {e}"),
                retryable: true,
            })?;
            BodyState::Kept(bytes.to_bytes())
        } else {
            BodyState::Stream(Some(body))
        };

        let logged = self.params.access_log.as_ref().map(|_| {
            let text = |n: http::header::HeaderName| {
                parts
                    .headers
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            };
            (
                text(HOST),
                parts.method.to_string(),
                pq.as_str().to_owned(),
                text(http::header::REFERER),
                text(http::header::USER_AGENT),
            )
        });

        svc.budget.deposit();
        client.requeue_budget.deposit();
        let classifier = svc.policy.classifier;
        let mut avoid: Option<SocketAddr> = None;
        let (mut retries, mut requeues) = (0u32, 0u32);
        let mut pause = Duration::ZERO;
        loop {
            let Some(lease) = client.balancer.pick(avoid) else {
                return Err(match &*client.addr() {
                    Addr::Neg => RouteError::NoRoute {
                        service: target.service.clone(),
                        base: self.params.dtab.clone(),
                        local: local.map(|(_, d)| d.clone()).unwrap_or_default(),
                    },
                    other => RouteError::NoEndpoints {
                        service: target.service.clone(),
                        client: client.id.clone(),
                        state: other.to_string(),
                    },
                });
            };
            let addr = lease.addr();
            let Some(attempt_body) = body.next() else {
                return Err(RouteError::Upstream {
                    message: "the request body was already sent".into(),
                    retryable: false,
                });
            };
            let mut attempt = Request::new(attempt_body);
            *attempt.method_mut() = parts.method.clone();
            // Origin-form: the connection is to the endpoint itself.
            *attempt.uri_mut() = Uri::from(pq.clone());
            *attempt.version_mut() = http::Version::HTTP_11;
            *attempt.headers_mut() = parts.headers.clone();

            let stats = &client.stats;
            let pending = stats.pending.enter();
            let start = Instant::now();
            let sent = client.pool.send(addr, attempt);
            let res = match client.policy.attempt_timeout {
                None => Ok(sent.await),
                Some(t) => tokio::time::timeout(t, sent).await.map_err(|_| t),
            };
            drop(pending);
            stats.requests.incr();
            let retry_or = |class: ResponseClass, retries: &mut u32| -> bool {
                if let ResponseClass::Failure { retryable: true } = class {
                    if svc.budget.try_withdraw() {
                        *retries += 1;
                        svc.retries.incr();
                        return true;
                    }
                    svc.budget_exhausted.incr();
                }
                false
            };
            match res {
                Ok(Ok((resp, conn))) => {
                    let code = resp.status().as_u16();
                    let class = classifier.classify(
                        &parts.method,
                        resp.status(),
                        resp.headers(),
                        body.kept(),
                    );
                    stats.status(code);
                    stats.latency.record(start.elapsed());
                    if class.is_success() {
                        stats.success.incr();
                    } else {
                        stats.failures.incr();
                    }
                    if !class.is_success() && retry_or(class, &mut retries) {
                        lease.finish(Outcome::Failure);
                        avoid = Some(addr);
                        pause = svc.policy.backoff.next(pause);
                        tokio::time::sleep(pause).await;
                        continue;
                    }
                    svc.per_request
                        .record(Duration::from_millis(u64::from(retries)));
                    if let (Some(log), Some((host, method, uri, referer, ua))) =
                        (&self.params.access_log, &logged)
                    {
                        log.log(&crate::accesslog::Entry {
                            host,
                            remote,
                            method,
                            uri,
                            status: code,
                            bytes: resp
                                .headers()
                                .get(http::header::CONTENT_LENGTH)
                                .and_then(|v| v.to_str().ok()?.parse().ok()),
                            referer,
                            user_agent: ua,
                        });
                    }
                    let outcome = if class.is_success() {
                        Outcome::Success
                    } else {
                        Outcome::Failure
                    };
                    let mut lease = Some(lease);
                    let owner = Arc::clone(client);
                    let on_end: crate::body::OnEnd = Box::new(move |ok| {
                        if let Some(l) = lease.take() {
                            l.finish(if ok { outcome } else { Outcome::Failure });
                        }
                        // Read to the end: the connection can carry another.
                        if ok {
                            owner.pool.put(conn);
                        }
                    });
                    let mut resp = resp.map(|b| Either::Left(Observed::new(b, on_end)));
                    headers::strip_hop_by_hop(resp.headers_mut());
                    headers::append_via(resp.headers_mut());
                    if let Some((new, original)) = &rewritten {
                        headers::restore_host(resp.headers_mut(), new, original);
                    }
                    return Ok(resp);
                }
                Ok(Err(SendError::NotSent(_))) => {
                    stats.failures.incr();
                    stats.connect_failures.incr();
                    lease.finish(Outcome::Failure);
                    // Nothing reached a backend: safe to send elsewhere.
                    if body.kept() && requeues < MAX_REQUEUES {
                        if client.requeue_budget.try_withdraw() {
                            requeues += 1;
                            stats.requeues.incr();
                            avoid = Some(addr);
                            continue;
                        }
                        stats.requeue_budget_exhausted.incr();
                    }
                    return Err(RouteError::ConnectFailed {
                        selected: addr,
                        service: target.service.clone(),
                        client: client.id.clone(),
                        addresses: client.addresses(),
                    });
                }
                Ok(Err(SendError::Failed(e))) => {
                    stats.failures.incr();
                    lease.finish(Outcome::Failure);
                    let class = classifier.classify_error(&parts.method, body.kept());
                    if retry_or(class, &mut retries) {
                        avoid = Some(addr);
                        pause = svc.policy.backoff.next(pause);
                        tokio::time::sleep(pause).await;
                        continue;
                    }
                    return Err(RouteError::Upstream {
                        message: format!(
                            "Failed to get a response from {addr} for {}: {}",
                            target.service,
                            error_chain(&e)
                        ),
                        retryable: false,
                    });
                }
                Err(t) => {
                    stats.failures.incr();
                    lease.finish(Outcome::Failure);
                    let class = classifier.classify_error(&parts.method, body.kept());
                    if retry_or(class, &mut retries) {
                        avoid = Some(addr);
                        pause = svc.policy.backoff.next(pause);
                        tokio::time::sleep(pause).await;
                        continue;
                    }
                    return Err(RouteError::AttemptTimeout {
                        client: client.id.clone(),
                        timeout: t,
                    });
                }
            }
        }
    }
}

/// The request body across attempts.
enum BodyState {
    /// Kept in memory: every attempt sends a copy.
    Kept(Bytes),
    /// Streamed: only the first attempt can send it.
    Stream(Option<Incoming>),
}

impl BodyState {
    fn kept(&self) -> bool {
        matches!(self, BodyState::Kept(_))
    }

    fn next(&mut self) -> Option<ReqBody> {
        match self {
            BodyState::Kept(b) => Some(Either::Right(Full::new(b.clone()))),
            BodyState::Stream(s) => s.take().map(Either::Left),
        }
    }
}

/// Removes the entries nobody else holds (`Arc` count 1) that `expired`
/// accepts; returns their names.
fn drain_where<V>(
    map: &Mutex<HashMap<Path, Arc<V>>>,
    expired: impl Fn(&Arc<V>) -> bool,
) -> Vec<Path> {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    let dead: Vec<Path> = map
        .iter()
        .filter(|(_, v)| Arc::strong_count(v) == 1 && expired(v))
        .map(|(k, _)| k.clone())
        .collect();
    for k in &dead {
        map.remove(k);
    }
    dead
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Picks the bound name a request goes to: a union by weight, a leaf as
/// is; `None` for `Neg`, `Fail` and `Empty`.
fn choose(tree: &NameTree<BoundName>) -> Option<&BoundName> {
    match tree {
        NameTree::Leaf(b) => Some(b),
        NameTree::Union(ws) => {
            let total: f64 = ws.iter().map(|w| w.weight.max(0.0)).sum();
            if total <= 0.0 {
                return ws.iter().find_map(|w| choose(&w.tree));
            }
            let mut x = fastrand::f64() * total;
            for w in ws {
                let wt = w.weight.max(0.0);
                if x < wt {
                    return choose(&w.tree).or_else(|| ws.iter().find_map(|w| choose(&w.tree)));
                }
                x -= wt;
            }
            ws.iter().rev().find_map(|w| choose(&w.tree))
        }
        NameTree::Alt(ts) => ts.iter().find_map(choose),
        NameTree::Neg | NameTree::Fail | NameTree::Empty => None,
    }
}

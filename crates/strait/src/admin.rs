//! The admin server on `admin.ip:admin.port` (default `127.0.0.1:9990`):
//! Linkerd 1's endpoints, with its paths, texts and JSON shapes.
//!
//! | path | answer |
//! | --- | --- |
//! | `/` | the dashboard: live charts and tables polled from the JSON below |
//! | `/delegator` | the dtab playground (`?router=<label>&path=<path>&dtab=<dtab>`) |
//! | `/files/<name>` | the pages' stylesheet and scripts, embedded in the binary |
//! | `/admin`, `/admin/index.txt` | every path, one per line |
//! | `/admin/ping` | `pong` |
//! | `/admin/metrics.json` | flat metrics; `?q=` subtree, `?tree=1`, `?pretty=1` |
//! | `/metrics` | Prometheus text under Prometheus naming rules: latency histograms with buckets, status codes as labels |
//! | `/admin/metrics/prometheus` | Linkerd 1's Prometheus names and labels (latency: last minute's summaries), at the `io.l5d.prometheus` telemeter's `path` |
//! | `/config.json` | the running configuration |
//! | `/delegator.json` | the delegation tree of a path (GET params or POST JSON) |
//! | `/client_state.json` | each concrete name's address set |
//! | `/admin/tls.json` | each configured certificate: server, path, subject, SANs, serial, not-after, seconds left |
//! | `/namer_state/<prefix>.json` | a namer's own account of itself |
//! | `/admin/shutdown` | POST only: `quitting`, then shut down |
//! | `/admin/reload` | POST only: reload the config file now, answer the outcome (400 if rejected) |
//! | `/admin/reload.json` | the last reload's (or the start's) outcome |
//!
//! The state is read through an [`ArcSwap`] once per request, so a reload
//! that swaps in new routers and namers is seen by the next request. The
//! server logs nothing per request (debug level at most).
//!
//! Not served: Linkerd's JVM diagnostics (`/admin/threads`, `/admin/pprof`,
//! ...) and `/logging`.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::{Map, Value};
use strait_dtab::{Dtab, Path};
use strait_naming::delegate::{delegate_within, to_json as delegate_json};
use strait_naming::inet::InetResolver;
use strait_naming::{Addr, Interpreter, Namer};
use strait_router::Router;
use strait_router::stats::{PromStyle, Registry};
use strait_router::tls::{HandshakeLog, ServerTls};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admin_security::{AdminGuard, Verdict};
use crate::reload::ReloadOutcome;

/// Everything the admin server shows, as of one configuration.
#[derive(Clone)]
pub struct AdminState {
    /// The metrics of the process.
    pub registry: Registry,
    /// The routers, in configuration order; the first is the default
    /// namespace of `/delegator.json`.
    pub routers: Vec<Arc<ArcSwap<Router>>>,
    /// The configured namers, for `/namer_state/<prefix>.json`.
    pub namers: Vec<NamerEntry>,
    /// The running configuration, served by `/config.json`.
    pub config_json: Value,
    /// `(path, prefix)` of the `io.l5d.prometheus` telemeter, if configured.
    pub prometheus: Option<(String, String)>,
    /// Set to `true` by `POST /admin/shutdown`.
    pub shutdown: watch::Sender<bool>,
    /// `POST /admin/reload` and `GET /admin/reload.json`.
    pub reload: Option<ReloadHandle>,
    /// `admin.security` and `admin.tokenFile`.
    pub guard: Arc<AdminGuard>,
    /// `admin.tls`: the certificates of connections accepted from now on
    /// (`None`: plaintext).
    pub tls: Option<Arc<ServerTls>>,
    /// Every configured certificate, by where it serves, for
    /// `/admin/tls.json`.
    pub certificates: Vec<(String, Arc<ServerTls>)>,
    /// The certificates client `tls` blocks read (client certificates and
    /// trusted CAs), also listed in `/admin/tls.json`.
    pub client_certificates: Vec<crate::tls_client::ClientCertificate>,
}

/// How the admin asks the daemon to reload, and sees the last outcome.
#[derive(Clone)]
pub struct ReloadHandle {
    /// Each request carries where to send the outcome.
    pub requests: tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<ReloadOutcome>>,
    /// The last attempt (or the start): time, result, errors, config
    /// hash; `None` until the daemon has started.
    pub last: Arc<ArcSwapOption<ReloadOutcome>>,
}

/// One configured namer.
#[derive(Clone)]
pub struct NamerEntry {
    /// Its full prefix, e.g. `/#/io.l5d.fs`.
    pub prefix: Path,
    /// Its `kind`, e.g. `io.l5d.fs`.
    pub kind: String,
    /// The namer.
    pub namer: Arc<dyn Namer>,
}

/// Where the `io.l5d.prometheus` telemeter serves by default.
const DEFAULT_PROMETHEUS_PATH: &str = "/admin/metrics/prometheus";

/// The content type of the Prometheus text format.
const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// `/delegator.json` gives up after this (Linkerd's `within(2.seconds)`).
const DELEGATE_TIMEOUT: Duration = Duration::from_secs(2);

/// The largest `POST /delegator.json` body read.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long requests in flight (the `/admin/shutdown` answer among them)
/// get to finish once the server stops accepting.
const DRAIN: Duration = Duration::from_secs(1);

/// Histogram statistics: `<name>.<stat>` in the flat JSON.
const HISTOGRAM_STATS: [&str; 11] = [
    "count", "sum", "avg", "min", "max", "p50", "p90", "p95", "p99", "p9990", "p9999",
];

/// Metric names (last segments) that are gauges, for the `counter` /
/// `gauge` field names of `?tree=1`. The flat JSON the registry renders
/// does not say which numbers are gauges, so the tree form goes by
/// Finagle's names; anything else is a counter.
const GAUGE_NAMES: [&str; 10] = [
    "pending",
    "connections",
    "upgraded",
    "loadbalancer/size",
    "loadbalancer/available",
    "loadbalancer/busy",
    "loadbalancer/closed",
    "loadbalancer/load",
    "retries/budget",
    "failure_accrual/removed_for_ms",
];

/// Serves the admin endpoints on `listener` until `shutdown` turns true
/// (or its sender is gone), then stops accepting and gives requests in
/// flight a second to finish.
pub async fn serve(
    listener: TcpListener,
    state: Arc<ArcSwap<AdminState>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let handshakes = Arc::new(HandshakeLog::default());
    loop {
        tokio::select! {
            res = listener.accept() => {
                let (stream, peer) = match res {
                    Ok(c) => c,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "admin: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let state = Arc::clone(&state);
                let watcher = graceful.watcher();
                let handshakes = Arc::clone(&handshakes);
                // `admin.tls`: the handshake in the connection's task.
                tokio::spawn(async move {
                    // Only what the handshake needs: a snapshot kept for the
                    // connection's life (a scraper's keep-alive) would keep
                    // the routers of before a reload, and their services
                    // and clients, alive.
                    let (tls, registry) = {
                        let snapshot = state.load();
                        (snapshot.tls.clone(), snapshot.registry.clone())
                    };
                    match tls {
                        None => serve_connection(stream, state, watcher).await,
                        Some(tls) => {
                            let accepted = crate::tls::admin_handshake(
                                &tls, stream, peer, &registry, &handshakes,
                            );
                            if let Some(stream) = accepted.await {
                                serve_connection(stream, state, watcher).await;
                            }
                        }
                    }
                });
            }
            () = stopped(&mut shutdown) => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}

/// Serves admin requests on one connection (plaintext or TLS) until it
/// ends or the admin server shuts down.
async fn serve_connection<I>(
    io: I,
    state: Arc<ArcSwap<AdminState>>,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(
            TokioIo::new(io),
            service_fn(move |req| {
                let snapshot = state.load_full();
                async move { Ok::<_, Infallible>(handle(snapshot, req).await) }
            }),
        );
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "admin connection ended with an error");
    }
}

/// Returns once `shutdown` is true or can no longer change.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // Not in `select!` directly: the guard `wait_for` returns is not `Send`.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Answers one request from one snapshot of the state.
async fn handle(state: Arc<AdminState>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let query = Query::parse(req.uri().query());
    tracing::debug!(method = %req.method(), path = %path, "admin request");
    let auth = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match state.guard.check(&path, auth) {
        Verdict::Serve => {}
        // Linkerd's SecurityFilter: a bare 404, nothing said.
        Verdict::Hidden => return respond(StatusCode::NOT_FOUND, "text/plain", ""),
        Verdict::Unauthorized => {
            let mut resp = text(
                StatusCode::UNAUTHORIZED,
                "this control endpoint needs Authorization: Bearer <admin.tokenFile token>\n",
            );
            resp.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
            return resp;
        }
        Verdict::Forbidden(why) => return text(StatusCode::FORBIDDEN, why),
    }
    match path.as_str() {
        "/" => respond(StatusCode::OK, HTML, DASHBOARD),
        "/delegator" => delegator_page(&state),
        p if p.starts_with("/files/") => asset(p),
        "/admin" | "/admin/" | "/admin/index.txt" => text(StatusCode::OK, index(&state)),
        "/admin/ping" => text(StatusCode::OK, "pong"),
        "/admin/metrics.json" => metrics_json(&state.registry, &query),
        "/metrics" => prometheus(&state, PromStyle::Conventional),
        // Redacted when the state is built (admin_security::redact).
        "/config.json" => json(StatusCode::OK, &state.config_json, true),
        "/delegator.json" => delegator(&state, req, &query).await,
        "/client_state.json" => client_state(&state),
        "/admin/tls.json" => json(
            StatusCode::OK,
            &crate::tls::tls_json(&state.certificates, &state.client_certificates),
            true,
        ),
        "/admin/shutdown" => shutdown(&state, req.method()),
        "/admin/reload.json" => match &state.reload {
            Some(r) => {
                let last = r.last.load().as_ref().map_or(Value::Null, |o| o.to_json());
                json(StatusCode::OK, &last, true)
            }
            None => text(StatusCode::NOT_FOUND, "reload is not available\n"),
        },
        "/admin/reload" => reload(&state, req.method()).await,
        p if state.prometheus.as_ref().is_some_and(|(cp, _)| cp == p) => {
            prometheus(&state, PromStyle::Linkerd)
        }
        DEFAULT_PROMETHEUS_PATH => text(
            StatusCode::NOT_FOUND,
            "Prometheus metrics are not enabled here: add the io.l5d.prometheus telemeter \
             to `telemetry` (they are always served at /metrics)\n",
        ),
        p => match namer_state_name(p) {
            Some(name) => namer_state(&state, name),
            None if p.contains("/interpreter_state/") => interpreter_state(&state, p),
            None => text(
                StatusCode::NOT_FOUND,
                format!("Not found: {p} (see /admin/index.txt)\n"),
            ),
        },
    }
}

/// `/admin/index.txt`: every path served, one per line.
fn index(state: &AdminState) -> String {
    let mut paths: Vec<String> = [
        "/",
        "/admin",
        "/admin/index.txt",
        "/admin/ping",
        "/admin/metrics.json",
        "/metrics",
        "/config.json",
        "/delegator",
        "/delegator.json",
        "/files/dashboard.js",
        "/files/delegator.js",
        "/files/strait.css",
        "/client_state.json",
        "/admin/tls.json",
        "/admin/shutdown",
        "/admin/reload",
        "/admin/reload.json",
    ]
    .iter()
    .map(|p| (*p).to_owned())
    .collect();
    if let Some((p, _)) = &state.prometheus {
        paths.push(p.clone());
    }
    for n in &state.namers {
        paths.push(format!("/namer_state/{}.json", namer_name(&n.prefix)));
    }
    for r in &state.routers {
        let router = r.load_full();
        if let Some(i) = &router.params().interpreter {
            paths.push(interpreter_state_path(&router.params().label, i.kind()));
        }
    }
    paths.sort();
    paths.dedup();
    let mut out = String::new();
    for p in paths {
        let _ = writeln!(out, "{p}");
    }
    out
}

/// `/admin/metrics.json`, as Linkerd's `AdminMetricsExportTelemeter`:
/// `?q=a/b` keeps the subtree under `a/b` with names relative to it,
/// `?tree=1` nests on `/` (a node's own value under `counter`, `gauge` or
/// `stat.<stat>`), `?pretty=1` indents. Keys are always sorted.
fn metrics_json(registry: &Registry, query: &Query) -> Response<Full<Bytes>> {
    let pretty = query.flag("pretty");
    let tree = query.flag("tree");
    let q = query.get("q");
    let prefix = q.map(|q| q.trim_matches('/')).unwrap_or("");
    let mut flat: Vec<(String, Value)> = registry.to_json().into_iter().collect();
    flat.sort_by(|a, b| a.0.cmp(&b.0));

    let body = if tree {
        let mut root = TreeNode::default();
        let mut found = false;
        for (key, value) in &flat {
            let (base, field) = classify(key);
            let Some(rel) = under(base, prefix) else {
                continue;
            };
            found = true;
            let mut node = &mut root;
            for seg in rel.split('/').filter(|s| !s.is_empty()) {
                node = node.children.entry(seg.to_owned()).or_default();
            }
            node.fields.push((field, value.clone()));
        }
        found.then(|| root.into_json())
    } else {
        let map: Map<String, Value> = flat
            .iter()
            .filter_map(|(k, v)| under(k, prefix).map(|rel| (rel.to_owned(), v.clone())))
            .collect();
        (!map.is_empty() || prefix.is_empty()).then_some(Value::Object(map))
    };
    match body {
        Some(body) => json(StatusCode::OK, &body, pretty),
        None => {
            let err =
                serde_json::json!({ "error": format!("No such subtree: {}", q.unwrap_or("")) });
            json(StatusCode::NOT_FOUND, &err, pretty)
        }
    }
}

/// A node of `?tree=1`: its own value(s), then its children.
#[derive(Default)]
struct TreeNode {
    fields: Vec<(String, Value)>,
    children: std::collections::BTreeMap<String, TreeNode>,
}

impl TreeNode {
    fn into_json(self) -> Value {
        let mut map = Map::new();
        map.extend(self.fields);
        for (name, child) in self.children {
            map.insert(name, child.into_json());
        }
        Value::Object(map)
    }
}

/// The part of the flat key `key` below `prefix` (`""` for the node
/// itself; `.p50` and such for a histogram's own statistics), or `None` if
/// `key` is not under `prefix`.
fn under<'k>(key: &'k str, prefix: &str) -> Option<&'k str> {
    if prefix.is_empty() {
        return Some(key);
    }
    let rest = key.strip_prefix(prefix)?;
    if rest.is_empty() {
        Some(rest)
    } else if let Some(rel) = rest.strip_prefix('/') {
        Some(rel)
    } else if rest
        .strip_prefix('.')
        .is_some_and(|stat| HISTOGRAM_STATS.contains(&stat))
    {
        Some(rest)
    } else {
        None
    }
}

/// Splits a flat key into the metric's path and the field naming its
/// value in the tree form: `stat.p50` for `a/request_latency_ms.p50`,
/// `gauge` for `a/pending`, `counter` otherwise.
fn classify(key: &str) -> (&str, String) {
    if let Some((base, stat)) = key.rsplit_once('.')
        && HISTOGRAM_STATS.contains(&stat)
    {
        return (base, format!("stat.{stat}"));
    }
    let gauge = GAUGE_NAMES
        .iter()
        .any(|g| key == *g || key.strip_suffix(g).is_some_and(|head| head.ends_with('/')));
    (key, if gauge { "gauge" } else { "counter" }.to_owned())
}

/// Prometheus text, with the telemeter's prefix when there is one: Linkerd
/// 1's names at the telemeter's path (what its dashboards query), the same
/// series under Prometheus' own naming rules at `/metrics`, followed
/// there by the `process_*` series and `strait_build_info`.
fn prometheus(state: &AdminState, style: PromStyle) -> Response<Full<Bytes>> {
    let prefix = state.prometheus.as_ref().map_or("", |(_, p)| p.as_str());
    let mut body = state.registry.render_prometheus(prefix, style);
    if style == PromStyle::Conventional {
        // Linkerd 1 had none of these: only under Prometheus' own names.
        body.push_str(&crate::process::render());
    }
    respond(StatusCode::OK, PROMETHEUS_CONTENT_TYPE, body)
}

/// `POST /admin/reload`: reloads the config file now and answers with the
/// outcome (200 applied or unchanged, 400 rejected with the errors).
async fn reload(state: &AdminState, method: &Method) -> Response<Full<Bytes>> {
    if method != Method::POST {
        let mut resp = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "/admin/reload takes POST only\n",
        );
        resp.headers_mut()
            .insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
        return resp;
    }
    let Some(r) = &state.reload else {
        return text(StatusCode::NOT_FOUND, "reload is not available\n");
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    if r.requests.send(tx).await.is_err() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    }
    match rx.await {
        Ok(outcome) => {
            let status = if outcome.is_rejected() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            json(status, &outcome.to_json(), true)
        }
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
    }
}

/// `POST /admin/shutdown` answers `quitting` and flips the shutdown
/// signal; the connection is drained before the server task ends.
fn shutdown(state: &AdminState, method: &Method) -> Response<Full<Bytes>> {
    if method != Method::POST {
        let mut resp = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "/admin/shutdown takes POST only\n",
        );
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }
    state.shutdown.send_replace(true);
    text(StatusCode::OK, "quitting")
}

/// `/client_state.json`: every router's clients, their address sets and
/// (Strait's addition) each endpoint as the balancer sees it: `alive`,
/// `dead` (failure accrual removed it) or `probing`, and its requests in
/// flight.
fn client_state(state: &AdminState) -> Response<Full<Bytes>> {
    let mut out = Map::new();
    for router in &state.routers {
        for (id, addr, endpoints, h2) in router.load().client_states() {
            let mut v = addr_json(&addr);
            if let Value::Object(o) = &mut v {
                o.insert(
                    "protocol".into(),
                    Value::from(if h2.is_some() { "h2" } else { "http/1.1" }),
                );
                if let Some(n) = h2 {
                    // One multiplexed connection per endpoint at most.
                    o.insert("connections".into(), Value::from(n));
                }
            }
            if let (Value::Object(o), false) = (&mut v, endpoints.is_empty()) {
                let eps = endpoints
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "address": e.addr.to_string(),
                            "state": e.state,
                            "inflight": e.inflight,
                            "weight": e.weight,
                        })
                    })
                    .collect();
                o.insert("endpoints".into(), Value::Array(eps));
            }
            out.insert(id.show(), v);
        }
    }
    json(StatusCode::OK, &Value::Object(out), false)
}

/// One address set as `/client_state.json` shows it.
fn addr_json(addr: &Addr) -> Value {
    match addr {
        Addr::Bound(eps) => serde_json::json!({
            "state": "bound",
            "addresses": eps.iter().map(|e| e.addr.to_string()).collect::<Vec<_>>(),
        }),
        Addr::Neg => serde_json::json!({ "state": "neg" }),
        Addr::Pending => serde_json::json!({ "state": "pending" }),
        Addr::Failed(e) => serde_json::json!({ "state": "failed", "error": &**e }),
    }
}

/// The `<prefix>` of `/namer_state/<prefix>.json`.
fn namer_state_name(path: &str) -> Option<&str> {
    path.strip_prefix("/namer_state/")?
        .strip_suffix(".json")
        .filter(|n| !n.is_empty())
}

/// A namer's name in `/namer_state/<name>.json`: its prefix without `/#/`.
fn namer_name(prefix: &Path) -> String {
    let shown = prefix.show();
    match shown.strip_prefix("/#/") {
        Some(rest) => rest.to_owned(),
        None => shown.trim_start_matches('/').to_owned(),
    }
}

fn namer_state(state: &AdminState, name: &str) -> Response<Full<Bytes>> {
    match state.namers.iter().find(|n| namer_name(&n.prefix) == name) {
        Some(n) => json(StatusCode::OK, &n.namer.state(), false),
        None => text(
            StatusCode::NOT_FOUND,
            format!("No namer with prefix /#/{name}\n"),
        ),
    }
}

/// `/<router label>/interpreter_state/<kind>.json`: the stored dtab's
/// state (`{"<namespace or file>": {"state": …}}`).
fn interpreter_state(state: &AdminState, path: &str) -> Response<Full<Bytes>> {
    let found = state.routers.iter().find_map(|r| {
        let router = r.load_full();
        let i = router.params().interpreter.clone()?;
        (path == interpreter_state_path(&router.params().label, i.kind())).then_some(i)
    });
    match found {
        Some(i) => json(StatusCode::OK, &i.state(), true),
        None => text(
            StatusCode::NOT_FOUND,
            format!("Not found: {path} (no router with this label and interpreter)\n"),
        ),
    }
}

/// Where a router's interpreter state is served.
fn interpreter_state_path(label: &str, kind: &str) -> String {
    format!("/{label}/interpreter_state/{kind}.json")
}

/// The body of `POST /delegator.json`.
#[derive(serde::Deserialize)]
struct DelegationRequest {
    namespace: Option<String>,
    dtab: Option<String>,
    path: Option<String>,
}

/// `/delegator.json` (Linkerd's `DelegateApiHandler`): the delegation tree
/// of `path` through the interpreter's stored dtab plus `dtab` (which
/// stands for the router's dtab; see [`explain`]).
async fn delegator(
    state: &AdminState,
    req: Request<Incoming>,
    query: &Query,
) -> Response<Full<Bytes>> {
    let request = match *req.method() {
        Method::GET | Method::HEAD => DelegationRequest {
            namespace: query.get("namespace").map(str::to_owned),
            dtab: query.get("dtab").map(str::to_owned),
            path: query.get("path").map(str::to_owned),
        },
        Method::POST => match read_delegation_request(req).await {
            Ok(r) => r,
            Err(resp) => return resp,
        },
        _ => {
            let mut resp = text(
                StatusCode::METHOD_NOT_ALLOWED,
                "/delegator.json takes GET or POST\n",
            );
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, POST"));
            return resp;
        }
    };
    explain(state, request).await
}

/// Answers a delegation request with Linkerd 1's semantics: the `dtab`
/// parameter *replaces* the router's dtab (the page sends the full router
/// dtab, as shown or edited) while the router's interpreter still puts its
/// stored dtab in front; without `namespace` there is no router, so no
/// configured namers (only `/$/` names bind). 501 for an unknown
/// namespace, 400 for a bad dtab (checked first, as Linkerd does) or path,
/// 503 after 2 s of waiting on namers, 500 if the explanation fails.
async fn explain(state: &AdminState, request: DelegationRequest) -> Response<Full<Bytes>> {
    let router = match request.namespace.as_deref().filter(|n| !n.is_empty()) {
        Some(ns) => {
            let found = state
                .routers
                .iter()
                .map(|r| r.load_full())
                .find(|r| r.params().label == ns);
            match found {
                Some(r) => Some(r),
                None => {
                    return text(
                        StatusCode::NOT_IMPLEMENTED,
                        format!("Name Interpreter for {ns} cannot show delegations"),
                    );
                }
            }
        }
        None => None,
    };
    // Linkerd reports a bad dtab before a bad path.
    let given = match Dtab::read(request.dtab.as_deref().unwrap_or("")) {
        Ok(d) => d,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("Invalid dtab: {e}")),
    };
    let path = match request.path.as_deref().map(Path::read) {
        Some(Ok(p)) => p,
        Some(Err(e)) => return text(StatusCode::BAD_REQUEST, format!("Invalid path: {e}")),
        None => return text(StatusCode::BAD_REQUEST, "Invalid path: no path given"),
    };

    // The interpreter's stored dtab goes in front, as for requests; the
    // router's own dtab does not (the parameter replaces it).
    let no_namers;
    let (interpreter, dtab) = match &router {
        Some(r) => (r.interpreter(), r.stored_dtab().concat(&given)),
        None => {
            no_namers = Interpreter::new(Vec::new(), InetResolver::default());
            (&no_namers, given)
        }
    };
    // Like Linkerd, wait for namers and address sets that have not answered
    // yet, up to the deadline; the outer timeout also bounds the
    // (synchronous) explanation itself.
    let explained = tokio::time::timeout(
        DELEGATE_TIMEOUT,
        delegate_within(interpreter, &dtab, &path, DELEGATE_TIMEOUT),
    )
    .await;
    match explained {
        Ok(Ok(Some(tree))) => json(StatusCode::OK, &delegate_json(&tree), false),
        Ok(Ok(None)) | Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "Request timed out."),
        Ok(Err(message)) => text(StatusCode::INTERNAL_SERVER_ERROR, message),
    }
}

/// Reads a JSON `{namespace, dtab, path}` body; a missing `dtab` is empty.
async fn read_delegation_request(
    req: Request<Incoming>,
) -> Result<DelegationRequest, Response<Full<Bytes>>> {
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "POST /delegator.json takes Content-Type: application/json\n",
        ));
    }
    let body = match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => {
            return Err(text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Delegation request larger than {MAX_BODY_BYTES} bytes\n"),
            ));
        }
        Err(e) => {
            return Err(text(
                StatusCode::BAD_REQUEST,
                format!("Cannot read the delegation request: {e}\n"),
            ));
        }
    };
    match serde_json::from_slice::<DelegationRequest>(&body) {
        Ok(r) if r.path.is_some() => Ok(r),
        _ => Err(text(
            StatusCode::BAD_REQUEST,
            format!(
                "Malformed delegation request: {}",
                String::from_utf8_lossy(&body)
            ),
        )),
    }
}

/// A decoded `application/x-www-form-urlencoded` query string.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Query {
        Query(
            query
                .unwrap_or("")
                .split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (url_decode(k), url_decode(v))
                })
                .collect(),
        )
    }

    /// The first value of `name`.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Finagle's `getBooleanParam`: `1`, `t` and `true` are true.
    fn flag(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| {
            v == "1" || v.eq_ignore_ascii_case("t") || v.eq_ignore_ascii_case("true")
        })
    }
}

/// Decodes `%XX` escapes and `+` (a space); a `%` not followed by two hex
/// digits stays as it is, invalid UTF-8 becomes U+FFFD.
fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
                if let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) {
                    out.push((hi * 16 + lo) as u8);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    respond(status, "text/plain; charset=utf-8", body.into())
}

fn json(status: StatusCode, value: &Value, pretty: bool) -> Response<Full<Bytes>> {
    let body = if pretty {
        format!("{value:#}")
    } else {
        value.to_string()
    };
    respond(status, "application/json", body)
}

/// The content type of the pages.
const HTML: &str = "text/html; charset=utf-8";

/// `/`: per router, live charts and per service and per client tables,
/// drawn by `/files/dashboard.js` from the admin JSON it polls.
const DASHBOARD: &str = include_str!("../assets/dashboard.html");

/// `/delegator`: the dtab playground; `{{DTAB_DATA}}` and
/// `{{DTAB_BASE_DATA}}` are replaced by each router's stored and own dtab.
const DELEGATOR: &str = include_str!("../assets/delegator.html");

/// The files under `/files/`: name, content type, contents.
const ASSETS: [(&str, &str, &str); 3] = [
    (
        "strait.css",
        "text/css; charset=utf-8",
        include_str!("../assets/strait.css"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/dashboard.js"),
    ),
    (
        "delegator.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/delegator.js"),
    ),
];

/// How long browsers may keep `/files/...` (they change only with the
/// binary, and a restart within the hour is seen at most this late).
const ASSET_CACHE: &str = "public, max-age=3600";

/// `/files/<name>`: one of the embedded [`ASSETS`], or 404.
fn asset(path: &str) -> Response<Full<Bytes>> {
    let name = path.strip_prefix("/files/").unwrap_or(path);
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => {
            let mut resp = respond(StatusCode::OK, content_type, *body);
            resp.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static(ASSET_CACHE));
            resp
        }
        None => text(StatusCode::NOT_FOUND, format!("Not found: {path}\n")),
    }
}

/// `/delegator`: the playground page with Linkerd's two embedded JSON
/// blocks, `dtab-data` (each router's stored interpreter dtab) and
/// `dtab-base-data` (each router's own dtab), both
/// `{"<label>": [{"prefix": "/svc", "dst": "/#/io.l5d.fs"}, ...]}`.
fn delegator_page(state: &AdminState) -> Response<Full<Bytes>> {
    let mut stored = Map::new();
    let mut base = Map::new();
    for r in &state.routers {
        let router = r.load_full();
        let label = router.params().label.clone();
        stored.insert(label.clone(), dentries_json(&router.stored_dtab()));
        base.insert(label, dentries_json(&router.params().dtab));
    }
    let page = DELEGATOR
        .replace("{{DTAB_DATA}}", &script_json(&Value::Object(stored)))
        .replace("{{DTAB_BASE_DATA}}", &script_json(&Value::Object(base)));
    respond(StatusCode::OK, HTML, page)
}

/// A dtab as Linkerd's pages carry it: `[{"prefix", "dst"}, ...]`.
fn dentries_json(dtab: &Dtab) -> Value {
    dtab.dentries()
        .iter()
        .map(|d| serde_json::json!({ "prefix": d.prefix.show(), "dst": d.dst.show() }))
        .collect()
}

/// JSON safe inside `<script>`: every `<` is escaped (it can only occur
/// in strings, where `\u003c` means the same), so no `</script>` ends it.
fn script_json(value: &Value) -> String {
    value.to_string().replace('<', "\\u003c")
}

#[cfg(test)]
#[path = "admin_tests.rs"]
mod tests;

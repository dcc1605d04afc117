//! The HTTP side: the accept loop (with refusal windows), connections
//! (closable at will), and Consul's endpoints with its blocking, ACL,
//! consistency and error rules.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use super::catalog::{Catalog, CheckError, Listing, ServiceQuery};
use super::go::{self, Query};
use super::state::{Gauge, Shared};
use super::{AclPolicy, CheckStatus, RecordedRequest, ServiceSet, agent, control, kv};

/// Every answer is a small, fully built body.
pub(crate) type Reply = Response<Full<Bytes>>;

/// Accepts connections until `stop` fires (or its sender is dropped).
pub(crate) async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut stop: oneshot::Receiver<()>,
) {
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => return eprintln!("consul-sim: {e}"),
    };
    let mut listener = Some(listener);
    let mut connections = 0u64;
    loop {
        let refuse_until = shared
            .lock()
            .knobs
            .refuse_until
            .filter(|t| *t > Instant::now());
        if let Some(until) = refuse_until {
            listener = None;
            tokio::select! {
                _ = &mut stop => return,
                () = tokio::time::sleep_until(until.into()) => {}
                () = shared.listener.notified() => {}
            }
            continue;
        }
        if listener.is_none() {
            match TcpListener::bind(addr).await {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    eprintln!("consul-sim: cannot listen on {addr} again: {e}");
                    tokio::select! {
                        _ = &mut stop => return,
                        () = tokio::time::sleep(Duration::from_millis(10)) => {}
                    }
                    continue;
                }
            }
        }
        let Some(l) = &listener else { continue };
        tokio::select! {
            _ = &mut stop => return,
            () = shared.listener.notified() => {}
            accepted = l.accept() => match accepted {
                Ok((stream, _)) => {
                    connections += 1;
                    tokio::spawn(connection(Arc::clone(&shared), stream, connections));
                }
                // Out of file descriptors and the like: do not spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

/// Serves one connection until it ends or is dropped on purpose.
async fn connection(shared: Arc<Shared>, stream: TcpStream, id: u64) {
    {
        let mut inner = shared.lock();
        inner.stats.connections += 1;
        if inner
            .knobs
            .close_new_until
            .is_some_and(|t| t > Instant::now())
        {
            return;
        }
    }
    let _open = Gauge::new(&shared, |s| &mut s.connections_now);
    let _ = stream.set_nodelay(true);
    let for_service = Arc::clone(&shared);
    let service = service_fn(move |req| {
        let shared = Arc::clone(&for_service);
        async move { Ok::<_, Infallible>(handle(shared, id, req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .title_case_headers(true)
        .serve_connection(TokioIo::new(stream), service);
    let mut drops = shared.drops.subscribe();
    let dropped = async move {
        loop {
            if drops.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
            if drops.borrow_and_update().1 != Some(id) {
                return;
            }
        }
    };
    // Dropping the connection future closes the socket, mid-answer or not.
    tokio::select! {
        _ = conn => {}
        () = dropped => {}
    }
}

async fn handle(shared: Arc<Shared>, conn: u64, req: Request<Incoming>) -> Reply {
    let path = req.uri().path();
    let mut reply = if path == "/_sim" || path.starts_with("/_sim/") {
        control::handle(&shared, conn, req).await
    } else {
        shared.record(recorded(&shared, conn, &req));
        consul(&shared, req).await
    };
    let policy = shared
        .lock()
        .knobs
        .acl
        .as_ref()
        .map_or(AclPolicy::Allow, |a| a.default_policy);
    reply.headers_mut().insert(
        "x-consul-default-acl-policy",
        HeaderValue::from_static(policy.as_str()),
    );
    reply
}

fn recorded(shared: &Shared, conn: u64, req: &Request<Incoming>) -> RecordedRequest {
    RecordedRequest {
        method: req.method().to_string(),
        uri: req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().path().to_owned(), |pq| pq.as_str().to_owned()),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        at: shared.started.elapsed(),
        connection: conn,
    }
}

/// A Consul API route.
enum Endpoint {
    Health(String),
    CatalogService(String),
    CatalogServices,
    Datacenters,
    AgentSelf,
    Register,
    Deregister(String),
    CheckTtl(CheckStatus, String),
    CheckUpdate(String),
    ServiceMaintenance(String),
    NodeMaintenance,
}

/// Builds an endpoint from the rest of the path.
type ToEndpoint = fn(String) -> Endpoint;

/// The route for `path` (already percent-decoded) and its one method.
fn route(path: &str) -> Option<(Endpoint, &'static str)> {
    let prefixed: [(&str, ToEndpoint, &str); 8] = [
        ("/v1/health/service/", Endpoint::Health, "GET"),
        ("/v1/catalog/service/", Endpoint::CatalogService, "GET"),
        ("/v1/agent/service/deregister/", Endpoint::Deregister, "PUT"),
        (
            "/v1/agent/check/pass/",
            |id| Endpoint::CheckTtl(CheckStatus::Passing, id),
            "PUT",
        ),
        (
            "/v1/agent/check/warn/",
            |id| Endpoint::CheckTtl(CheckStatus::Warning, id),
            "PUT",
        ),
        (
            "/v1/agent/check/fail/",
            |id| Endpoint::CheckTtl(CheckStatus::Critical, id),
            "PUT",
        ),
        ("/v1/agent/check/update/", Endpoint::CheckUpdate, "PUT"),
        (
            "/v1/agent/service/maintenance/",
            Endpoint::ServiceMaintenance,
            "PUT",
        ),
    ];
    for (prefix, endpoint, method) in prefixed {
        if let Some(rest) = path.strip_prefix(prefix) {
            return Some((endpoint(rest.to_owned()), method));
        }
    }
    Some(match path {
        "/v1/catalog/services" => (Endpoint::CatalogServices, "GET"),
        "/v1/catalog/datacenters" => (Endpoint::Datacenters, "GET"),
        "/v1/agent/self" => (Endpoint::AgentSelf, "GET"),
        "/v1/agent/service/register" => (Endpoint::Register, "PUT"),
        "/v1/agent/maintenance" => (Endpoint::NodeMaintenance, "PUT"),
        _ => return None,
    })
}

/// A Consul request: faults first, then the route.
async fn consul(shared: &Arc<Shared>, req: Request<Incoming>) -> Reply {
    let _ = shared
        .stalled
        .subscribe()
        .wait_for(|stalled| !*stalled)
        .await;
    let delay = shared.lock().knobs.header_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some((status, body)) = take_failure(shared) {
        return text(status, body);
    }
    api(shared, req)
        .await
        .unwrap_or_else(|e| text(e.status, e.text))
}

/// Consul's answer to `req`.
async fn api(shared: &Arc<Shared>, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let path = go::unescape(req.uri().path(), false);
    if let Some(key) = path.strip_prefix("/v1/kv/") {
        let key = key.to_owned();
        let query = Query::parse(req.uri().query());
        let token = token(&req, &query);
        return kv::handle(shared, req, &key, &query, token).await;
    }
    let (endpoint, method) = route(&path).ok_or(ApiError::new(
        404,
        "Invalid URL path: not a recognized HTTP API endpoint",
    ))?;
    let allow = format!("OPTIONS,{method}");
    if req.method() == Method::OPTIONS {
        let mut r = empty();
        r.headers_mut().insert(ALLOW, header(&allow));
        return Ok(r);
    }
    if req.method().as_str() != method {
        let mut r = text(405, format!("method {} not allowed", req.method()));
        r.headers_mut().insert(ALLOW, header(&allow));
        return Ok(r);
    }
    let query = Query::parse(req.uri().query());
    let token = token(&req, &query);
    let own = shared.config.node_name.clone();
    match endpoint {
        Endpoint::Health(name) => read(shared, &query, token, Read::Health(name)).await,
        Endpoint::CatalogService(name) => {
            read(shared, &query, token, Read::CatalogService(name)).await
        }
        Endpoint::CatalogServices => read(shared, &query, token, Read::Services).await,
        Endpoint::Datacenters => {
            let mut dcs = vec![shared.config.datacenter.clone()];
            dcs.extend(shared.config.other_datacenters.iter().cloned());
            Ok(json_reply(&json!(dcs), query.has("pretty")))
        }
        Endpoint::AgentSelf => agent_self(shared, &query, token),
        Endpoint::Register => {
            let (def, checks) =
                agent::registration(&body(req).await?).map_err(|e| ApiError::new(400, e))?;
            if !authorize(shared, token)?.write {
                return Err(ApiError::new(403, "Permission denied"));
            }
            shared.write(|c| c.register(&own, def, checks, Instant::now()));
            Ok(empty())
        }
        Endpoint::Deregister(id) => service_write(shared, token, &id, |c| {
            c.deregister(&own, &id);
        }),
        Endpoint::CheckTtl(status, id) => {
            let note = query.get("note").unwrap_or_default();
            check_write(shared, token, &id, status, note)
        }
        Endpoint::CheckUpdate(id) => {
            let (status, output) =
                agent::check_update(&body(req).await?).map_err(|e| ApiError::new(400, e))?;
            check_write(shared, token, &id, status, &output)
        }
        Endpoint::ServiceMaintenance(id) => {
            if id.is_empty() {
                return Err(ApiError::new(400, "Missing service ID"));
            }
            let reason = maintenance_reason(&query)?;
            service_write(shared, token, &id, |c| {
                c.set_maintenance(&own, Some(&id), reason.as_deref())
            })
        }
        Endpoint::NodeMaintenance => {
            let reason = maintenance_reason(&query)?;
            if !authorize(shared, token)?.write {
                return Err(ApiError::new(403, "Permission denied"));
            }
            shared.write(|c| c.set_maintenance(&own, None, reason.as_deref()));
            Ok(empty())
        }
    }
}

/// An error answer: a status and Consul's text (Consul's `HTTPError`).
#[derive(Debug)]
pub(crate) struct ApiError {
    status: u16,
    text: String,
}

impl ApiError {
    pub(crate) fn new(status: u16, text: impl Into<String>) -> ApiError {
        ApiError {
            status,
            text: text.into(),
        }
    }

    /// The answer to send.
    pub(crate) fn reply(self) -> Reply {
        text(self.status, self.text)
    }
}

/// The scripted failure for this request, if any.
fn take_failure(shared: &Shared) -> Option<(u16, String)> {
    let mut inner = shared.lock();
    let failure = inner.knobs.failure.as_mut()?;
    let answer = (failure.status, failure.body.clone());
    match &mut failure.remaining {
        None => {}
        Some(0) => {
            inner.knobs.failure = None;
            return None;
        }
        Some(n) => {
            *n -= 1;
            if *n == 0 {
                inner.knobs.failure = None;
            }
        }
    }
    Some(answer)
}

/// The request's ACL token: `?token=`, then `X-Consul-Token`, then
/// `Authorization: Bearer`; empty values count as absent.
fn token(req: &Request<Incoming>, query: &Query) -> Option<String> {
    if let Some(t) = query.non_empty("token") {
        return Some(t.to_owned());
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if let Some(t) = header("x-consul-token") {
        return Some(t.to_owned());
    }
    let (scheme, rest) = header("authorization")?.split_once(' ')?;
    let t = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !t.is_empty()).then(|| t.to_owned())
}

/// What a request may do.
pub(crate) struct Authz {
    pub(crate) read: ServiceSet,
    pub(crate) write: bool,
    /// A real, non-anonymous token (only those see the "filtered" header).
    real: bool,
}

impl Authz {
    fn can_read(&self, service: &str) -> bool {
        self.write || self.read.contains(service)
    }
}

/// Resolves `token`: 403 "ACL not found" for a token ACLs do not know.
pub(crate) fn authorize(shared: &Shared, token: Option<String>) -> Result<Authz, ApiError> {
    let inner = shared.lock();
    let everything = |real| Authz {
        read: ServiceSet::All,
        write: true,
        real,
    };
    let Some(acl) = &inner.knobs.acl else {
        return Ok(everything(false));
    };
    match token {
        None => Ok(match acl.default_policy {
            AclPolicy::Allow => everything(false),
            AclPolicy::Deny => Authz {
                read: ServiceSet::Only(Default::default()),
                write: false,
                real: false,
            },
        }),
        Some(t) => acl
            .tokens
            .get(&t)
            .map(|rules| Authz {
                read: rules.read.clone(),
                write: rules.write,
                real: true,
            })
            .ok_or_else(|| ApiError::new(403, "ACL not found")),
    }
}

/// A blocking-capable read.
enum Read {
    Health(String),
    CatalogService(String),
    Services,
}

async fn read(
    shared: &Arc<Shared>,
    query: &Query,
    token: Option<String>,
    what: Read,
) -> Result<Reply, ApiError> {
    let bad = |text: &str| Err(ApiError::new(400, text));
    let stale = query.has("stale");
    let consistent = query.has("consistent");
    if stale && consistent {
        return bad("Cannot specify ?stale with ?consistent, conflicting semantics.");
    }
    let wait = match query.non_empty("wait").map(go::parse_duration) {
        None => None,
        Some(Some(ns)) => Some(ns),
        Some(None) => return bad("Invalid wait time"),
    };
    let min_index = match query.non_empty("index").map(str::parse::<u64>) {
        None => 0,
        Some(Ok(i)) => i,
        Some(Err(_)) => return bad("Invalid index"),
    };
    if query.has("filter") || query.has("node-meta") {
        return bad("consul-sim: ?filter and ?node-meta are not simulated");
    }
    let name = match &what {
        Read::Health(n) | Read::CatalogService(n) if n.is_empty() => {
            return bad("Missing service name");
        }
        Read::Health(n) | Read::CatalogService(n) => n.as_str(),
        Read::Services => "",
    };
    let passing = match (&what, query.get("passing")) {
        (Read::Health(_), Some("")) => true,
        (Read::Health(_), Some(v)) => match go::parse_bool(v) {
            Some(b) => b,
            None => return bad("Invalid value for ?passing"),
        },
        _ => false,
    };
    let dc = query.non_empty("dc").unwrap_or(&shared.config.datacenter);
    if dc != shared.config.datacenter && !shared.config.other_datacenters.iter().any(|d| d == dc) {
        return Err(ApiError::new(500, "No path to datacenter"));
    }
    if shared.lock().knobs.leader_lost.is_some() && !stale {
        return Err(ApiError::new(500, "No cluster leader"));
    }
    let authz = authorize(shared, token)?;
    let q = ServiceQuery {
        dc,
        name,
        tags: query.all("tag").map(str::to_owned).collect(),
        passing,
    };
    let can_read = |s: &str| authz.can_read(s);
    let run = |c: &Catalog| match &what {
        Read::Health(_) => c.health(&q, &can_read),
        Read::CatalogService(_) => c.catalog_service(&q, &can_read),
        Read::Services => c.services(dc, &can_read),
    };
    let listing = block(shared, min_index, timeout(shared, wait), run).await;
    let consistency = match (stale, consistent) {
        (true, _) => "stale",
        (_, true) => "consistent",
        _ => "leader",
    };
    Ok(listing_reply(
        shared,
        &listing,
        consistency,
        authz.real,
        query.has("pretty"),
    ))
}

/// How long a blocking query may hold: `wait` (≤ 0 or absent: the default),
/// at most the maximum, plus up to `wait/16` of jitter.
pub(crate) fn timeout(shared: &Shared, wait_ns: Option<i64>) -> Duration {
    let config = &shared.config;
    let wait = match wait_ns.and_then(|ns| u64::try_from(ns).ok()) {
        Some(ns) if ns > 0 => Duration::from_nanos(ns).min(config.max_wait),
        _ => config.default_wait.min(config.max_wait),
    };
    let spread = u64::try_from((wait / 16).as_nanos()).unwrap_or(u64::MAX);
    if config.jitter && spread > 0 {
        wait + Duration::from_nanos(fastrand::u64(0..spread))
    } else {
        wait
    }
}

/// Runs `query` now and, if the caller already has an index at least as
/// new (`min_index` > 0), again after every change until its index moves
/// past `min_index`, a snapshot restore happens, or `timeout` passes.
pub(crate) async fn block<T: Indexed>(
    shared: &Arc<Shared>,
    min_index: u64,
    timeout: Duration,
    query: impl Fn(&Catalog) -> T,
) -> T {
    let deadline = Instant::now() + timeout;
    let mut changes = shared.changes.subscribe();
    let restores = shared.lock().catalog.restores;
    let mut holding = None;
    loop {
        changes.borrow_and_update();
        let (listing, restored) = {
            let inner = shared.lock();
            (query(&inner.catalog), inner.catalog.restores != restores)
        };
        if min_index == 0 || listing.index() > min_index || restored || Instant::now() >= deadline {
            return listing;
        }
        holding.get_or_insert_with(|| Gauge::new(shared, |s| &mut s.blocked_now));
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return listing;
                }
            }
            () = tokio::time::sleep_until(deadline.into()) => {}
        }
    }
}

/// What a blocking query compares with the client's index.
pub(crate) trait Indexed {
    /// The result's index.
    fn index(&self) -> u64;
}

impl Indexed for Listing {
    fn index(&self) -> u64 {
        self.index
    }
}

/// A read's answer with Consul's query metadata headers.
fn listing_reply(
    shared: &Shared,
    listing: &Listing,
    consistency: &'static str,
    real_token: bool,
    pretty: bool,
) -> Reply {
    let mut reply = json_reply(&listing.body, pretty);
    query_meta(shared, &mut reply, listing.index, consistency);
    if listing.filtered && real_token {
        reply.headers_mut().insert(
            "x-consul-results-filtered-by-acls",
            HeaderValue::from_static("true"),
        );
    }
    reply
}

/// Consul's query metadata headers (`X-Consul-Index` and the leader
/// headers), with the index knobs applied.
pub(crate) fn query_meta(
    shared: &Shared,
    reply: &mut Reply,
    listing_index: u64,
    consistency: &'static str,
) {
    let (index, leader_lost) = {
        let mut inner = shared.lock();
        let knobs = &mut inner.knobs;
        let index = if knobs.no_index > 0 {
            knobs.no_index -= 1;
            None
        } else if knobs.index_zero > 0 {
            knobs.index_zero -= 1;
            Some(0)
        } else {
            Some(listing_index.max(1))
        };
        (index, knobs.leader_lost)
    };
    let headers = reply.headers_mut();
    if let Some(index) = index {
        headers.insert("x-consul-index", header(&index.to_string()));
    }
    headers.insert(
        "x-consul-knownleader",
        HeaderValue::from_static(if leader_lost.is_none() {
            "true"
        } else {
            "false"
        }),
    );
    let last_contact = leader_lost.map_or(0, |t| t.elapsed().as_millis());
    headers.insert("x-consul-lastcontact", header(&last_contact.to_string()));
    headers.insert(
        "x-consul-effective-consistency",
        HeaderValue::from_static(consistency),
    );
    headers.insert(
        "x-consul-query-backend",
        HeaderValue::from_static("blocking-query"),
    );
}

fn agent_self(shared: &Shared, query: &Query, token: Option<String>) -> Result<Reply, ApiError> {
    let authz = authorize(shared, token)?;
    if !authz.real && !authz.write {
        return Err(ApiError::new(403, "Permission denied"));
    }
    let c = &shared.config;
    let node_id = shared
        .lock()
        .catalog
        .node(&c.node_name)
        .map(|n| n.id.clone())
        .unwrap_or_default();
    let body = json!({
        "Config": {
            "Datacenter": c.datacenter,
            "PrimaryDatacenter": c.datacenter,
            "NodeName": c.node_name,
            "NodeID": node_id,
            "Domain": "consul.",
            "Server": true,
            "Revision": "consul-sim",
            "Version": "1.20.2",
        },
        "DebugConfig": {"Datacenter": c.datacenter, "DNSDomain": "consul.", "NodeName": c.node_name},
        "Coord": {"Adjustment": 0, "Error": 1.5, "Height": 1e-5, "Vec": [0, 0, 0, 0, 0, 0, 0, 0]},
        "Member": {
            "Name": c.node_name,
            "Addr": "127.0.0.1",
            "Port": 8301,
            "Tags": {"dc": c.datacenter, "role": "consul", "segment": ""},
            "Status": 1,
        },
        "Meta": {"consul-network-segment": ""},
    });
    Ok(json_reply(&body, query.has("pretty")))
}

/// A write to instance `id` on the agent's node: token, then existence
/// (404), then permission (403), then `f`.
fn service_write(
    shared: &Shared,
    token: Option<String>,
    id: &str,
    f: impl FnOnce(&mut Catalog),
) -> Result<Reply, ApiError> {
    let authz = authorize(shared, token)?;
    let exists = shared
        .lock()
        .catalog
        .service_name(&shared.config.node_name, id)
        .is_some();
    if !exists {
        return Err(ApiError::new(
            404,
            format!(
                "Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."
            ),
        ));
    }
    if !authz.write {
        return Err(ApiError::new(403, "Permission denied"));
    }
    shared.write(f);
    Ok(empty())
}

/// Sets agent check `id` (a TTL check) to `status` with `output`: token,
/// then existence (404), then permission (403).
fn check_write(
    shared: &Shared,
    token: Option<String>,
    id: &str,
    status: CheckStatus,
    output: &str,
) -> Result<Reply, ApiError> {
    let authz = authorize(shared, token)?;
    let own = &shared.config.node_name;
    let unknown = || {
        ApiError::new(
            404,
            format!(
                "Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name."
            ),
        )
    };
    if !shared.lock().catalog.has_check(own, id) {
        return Err(unknown());
    }
    if !authz.write {
        return Err(ApiError::new(403, "Permission denied"));
    }
    match shared.write(|c| c.update_check(own, id, status, Some(output), true, Instant::now())) {
        Ok(()) => Ok(empty()),
        Err(CheckError::Unknown) => Err(unknown()),
        Err(CheckError::NoTtl) => Err(ApiError::new(
            500,
            format!("CheckID {id:?} does not have associated TTL"),
        )),
    }
}

/// `?enable=` and `?reason=` of the maintenance endpoints: `Some(reason)`
/// to enable, `None` to disable.
fn maintenance_reason(query: &Query) -> Result<Option<String>, ApiError> {
    let raw = query
        .get("enable")
        .ok_or(ApiError::new(400, "Missing value for enable"))?;
    match go::parse_bool(raw) {
        Some(true) => Ok(Some(query.get("reason").unwrap_or_default().to_owned())),
        Some(false) => Ok(None),
        None => Err(ApiError::new(
            400,
            format!("Invalid value for enable: {raw:?}"),
        )),
    }
}

/// The request body (at most 1 MiB).
pub(crate) async fn body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    match Limited::new(req.into_body(), 1 << 20).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => Err(ApiError::new(400, format!("Request decode failed: {e}"))),
    }
}

pub(crate) fn header(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A plain-text answer, as Consul writes its errors.
pub(crate) fn text(status: u16, body: impl Into<String>) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(body.into())));
    *reply.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    reply.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    reply
}

/// 200 with an empty body (a successful agent write).
pub(crate) fn empty() -> Reply {
    Response::new(Full::new(Bytes::new()))
}

/// 200 with a JSON body.
pub(crate) fn json_reply(value: &Value, pretty: bool) -> Reply {
    let body = if pretty {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    };
    let mut reply = Response::new(Full::new(Bytes::from(body.unwrap_or_default())));
    reply
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    reply
}

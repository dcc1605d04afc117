//! A small typed client for the Consul reads the namer needs.
//!
//! * `GET /v1/health/service/<svc>?dc=&tag=&index=&wait=<ms>ms[&passing=true][&stale|&consistent]`
//!   (or `/v1/catalog/service/<svc>` without health checks), decoded into
//!   [`Instance`]s: the address to dial (service address, else node
//!   address), the port, tags, the worst health status and the metadata.
//! * `GET /v1/agent/self` for the agent's datacenter (`.local`).
//!
//! Consul's blocking-query rules are built in: the index comes from
//! `X-Consul-Index` (missing or unparsable is an error, 0 reads as 1, see
//! [`next_index`] for going backwards); `wait` is sent in milliseconds (a
//! sub-millisecond wait would otherwise read as Consul's 5-minute default);
//! a blocking request's timeout exceeds `wait + wait/16` (Consul's jitter)
//! plus [`BLOCKING_SLACK`]. JSON is read leniently: unknown fields are
//! ignored, missing fields and `null` take their defaults.
//!
//! The token goes in `X-Consul-Token`, never in the URL, so URLs can be
//! logged and shown. The HTTP exchange itself is behind [`Transport`], so
//! tests can script Consul; [`HyperTransport`] is the real one, one pooled
//! hyper-util client shared by every watch.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde::{Deserialize, Deserializer};

use crate::{Consistency, ConsulConfig, HealthStatus};

/// How long a request that does not block may take.
pub const NON_BLOCKING_TIMEOUT: Duration = Duration::from_secs(5);

/// What a blocking request may take beyond `wait + wait/16`.
pub const BLOCKING_SLACK: Duration = Duration::from_secs(5);

/// How long connecting to Consul may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The largest response body read (a service with thousands of instances
/// and checks is a few megabytes).
pub const MAX_BODY: usize = 64 << 20;

/// How much of an error body is kept for messages.
const MAX_ERROR_TEXT: usize = 512;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One HTTP exchange with Consul: the seam where tests script Consul.
pub trait Transport: Send + Sync + 'static {
    /// `GET <path_and_query>`, with `X-Consul-Token: <token>` when given.
    /// Timeouts are applied by the caller (dropping the future must cancel
    /// the request).
    fn get<'a>(
        &'a self,
        path_and_query: &'a str,
        token: Option<&'a str>,
    ) -> BoxFuture<'a, Result<RawResponse, TransportError>>;

    /// Every address of the host name `host` (the system resolver by
    /// default).
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// An HTTP response, body read.
#[derive(Clone, Debug)]
pub struct RawResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers (`X-Consul-Index` among them).
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl RawResponse {
    /// A response with one optional `X-Consul-Index` header (for tests and
    /// fakes).
    pub fn new(status: u16, index: Option<&str>, body: impl Into<Bytes>) -> RawResponse {
        let mut headers = HeaderMap::new();
        if let Some(i) = index.and_then(|i| http::HeaderValue::from_str(i).ok()) {
            headers.insert(INDEX_HEADER, i);
        }
        RawResponse {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            headers,
            body: body.into(),
        }
    }
}

/// Why an HTTP exchange failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportError {
    /// The connection could not be made: nothing was sent.
    pub connect: bool,
    /// What happened.
    pub message: String,
}

/// Why a Consul read failed. Every kind is retried by the namer; none ends
/// a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsulError {
    /// Consul could not be reached: nothing was sent.
    Connect(String),
    /// The exchange failed after the request was sent.
    Transport(String),
    /// No complete answer within the request timeout.
    Timeout(Duration),
    /// Consul answered with a status other than 200. The body is Consul's
    /// message, e.g. 403 "ACL not found" or "Permission denied", 500 "No
    /// path to datacenter" or "No cluster leader", 429 "RPC rate limit
    /// exceeded".
    Status {
        /// The status code.
        status: u16,
        /// The start of the body, trimmed.
        body: String,
    },
    /// A 200 without `X-Consul-Index`.
    MissingIndex,
    /// An `X-Consul-Index` that is not a decimal integer.
    InvalidIndex(String),
    /// A body that is not the expected JSON.
    Decode(String),
    /// `/v1/agent/self` named no datacenter.
    NoDatacenter,
    /// Consul listed instances, but none of their host names resolved.
    Resolve(String),
    /// With `failFast`, Consul was unreachable a moment ago: nothing was
    /// sent; the gate reopens after this long.
    FailFast(Duration),
}

impl ConsulError {
    /// The HTTP status, for [`ConsulError::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            ConsulError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether Consul was not reached at all.
    pub fn is_connect(&self) -> bool {
        matches!(self, ConsulError::Connect(_))
    }

    /// Whether this is Consul's 500 "No path to datacenter" (an unknown
    /// datacenter, or one cut off by a partition).
    pub fn is_no_path_to_datacenter(&self) -> bool {
        matches!(self, ConsulError::Status { status: 500, body } if body.contains("No path to datacenter"))
    }

    /// Whether Consul refused the token (403 "ACL not found", "Permission
    /// denied").
    pub fn is_forbidden(&self) -> bool {
        self.status() == Some(403)
    }
}

impl fmt::Display for ConsulError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsulError::Connect(e) => write!(f, "cannot connect to consul: {e}"),
            ConsulError::Transport(e) => write!(f, "consul request failed: {e}"),
            ConsulError::Timeout(t) => write!(f, "consul did not answer within {t:?}"),
            ConsulError::Status { status, body } if body.is_empty() => {
                write!(f, "consul answered {status}")
            }
            ConsulError::Status { status, body } => write!(f, "consul answered {status}: {body}"),
            ConsulError::MissingIndex => f.write_str("consul did not return an index"),
            ConsulError::InvalidIndex(v) => write!(f, "consul returned an invalid index {v:?}"),
            ConsulError::Decode(e) => write!(f, "cannot decode consul's answer: {e}"),
            ConsulError::NoDatacenter => f.write_str("consul's /v1/agent/self named no datacenter"),
            ConsulError::Resolve(hosts) => {
                write!(f, "no instance address could be resolved: {hosts}")
            }
            ConsulError::FailFast(t) => write!(
                f,
                "consul was unreachable; not trying for another {} ms (failFast)",
                t.as_millis()
            ),
        }
    }
}

impl std::error::Error for ConsulError {}

/// A decoded service read.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceAnswer {
    /// `X-Consul-Index`, at least 1.
    pub index: u64,
    /// How many entries Consul listed.
    pub entries: usize,
    /// The usable instances: address and port present, health status
    /// among the configured ones.
    pub instances: Vec<Instance>,
}

/// One service instance, as the namer needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// The node's name.
    pub node: String,
    /// What to dial: the service address, else the node address (an IP or
    /// a host name), never empty.
    pub address: String,
    /// The service port, never 0.
    pub port: u16,
    /// The service's tags.
    pub tags: Vec<String>,
    /// The worst status among the node's and the service's checks
    /// (always passing for catalog reads).
    pub status: HealthStatus,
    /// `Service.Meta` / `ServiceMeta`.
    pub service_meta: serde_json::Map<String, serde_json::Value>,
    /// `Node.Meta` / `NodeMeta`.
    pub node_meta: serde_json::Map<String, serde_json::Value>,
}

/// The Consul client: builds URLs, sends them through a [`Transport`] with
/// the right timeout, decodes the answers.
#[derive(Clone)]
pub struct ConsulClient {
    transport: Arc<dyn Transport>,
    token: Option<Arc<str>>,
    use_health_check: bool,
    /// `passing=true` goes to Consul: `healthStatuses` is exactly
    /// `[passing]`.
    server_passing: bool,
    statuses: Vec<HealthStatus>,
    consistency: Consistency,
    prefer_service_address: bool,
    wait: Duration,
    wait_param: String,
}

impl fmt::Debug for ConsulClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsulClient")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("use_health_check", &self.use_health_check)
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl ConsulClient {
    /// A client for `cfg` over `transport`.
    pub fn new(transport: Arc<dyn Transport>, cfg: &ConsulConfig) -> ConsulClient {
        let mut statuses = cfg.health_statuses.clone();
        statuses.sort();
        statuses.dedup();
        ConsulClient {
            transport,
            token: cfg
                .token
                .as_deref()
                .filter(|t| !t.is_empty())
                .map(Arc::from),
            use_health_check: cfg.use_health_check,
            server_passing: statuses == [HealthStatus::Passing],
            statuses,
            consistency: cfg.consistency,
            prefer_service_address: cfg.prefer_service_address,
            wait: cfg.wait,
            wait_param: format_wait(cfg.wait),
        }
    }

    /// The transport (for host-name resolution).
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    /// The path and query of a service read; `index` makes it a blocking
    /// query.
    pub fn service_url(
        &self,
        dc: &str,
        tag: Option<&str>,
        service: &str,
        index: Option<u64>,
    ) -> String {
        let mut url = String::with_capacity(64 + service.len() + dc.len());
        url.push_str(if self.use_health_check {
            "/v1/health/service/"
        } else {
            "/v1/catalog/service/"
        });
        encode_into(&mut url, service);
        url.push_str("?dc=");
        encode_into(&mut url, dc);
        if let Some(tag) = tag {
            url.push_str("&tag=");
            encode_into(&mut url, tag);
        }
        if let Some(index) = index {
            url.push_str("&index=");
            url.push_str(&index.to_string());
            url.push_str("&wait=");
            url.push_str(&self.wait_param);
        }
        if self.use_health_check && self.server_passing {
            url.push_str("&passing=true");
        }
        match self.consistency {
            Consistency::Default => {}
            Consistency::Stale => url.push_str("&stale"),
            Consistency::Consistent => url.push_str("&consistent"),
        }
        url
    }

    /// The request timeout: longer than Consul may hold a blocking query.
    pub fn timeout(&self, blocking: bool) -> Duration {
        if blocking {
            self.wait + self.wait / 16 + BLOCKING_SLACK
        } else {
            NON_BLOCKING_TIMEOUT
        }
    }

    /// Reads a service (`url` from [`ConsulClient::service_url`]).
    pub async fn service(
        &self,
        url: &str,
        timeout: Duration,
    ) -> Result<ServiceAnswer, ConsulError> {
        let raw = self.get(url, timeout).await?;
        check_status(&raw)?;
        let index = parse_index(&raw.headers)?;
        let (entries, instances) = if self.use_health_check {
            let entries = decode_list::<HealthEntry>(&raw.body)?;
            let n = entries.len();
            let kept = entries
                .into_iter()
                .filter_map(|e| e.into_instance(self.prefer_service_address))
                .filter(|i| self.statuses.contains(&i.status))
                .collect();
            (n, kept)
        } else {
            let entries = decode_list::<CatalogEntry>(&raw.body)?;
            let n = entries.len();
            let kept = entries
                .into_iter()
                .filter_map(|e| e.into_instance(self.prefer_service_address))
                .collect();
            (n, kept)
        };
        Ok(ServiceAnswer {
            index,
            entries,
            instances,
        })
    }

    /// The agent's datacenter, from `GET /v1/agent/self`.
    pub async fn agent_datacenter(&self) -> Result<String, ConsulError> {
        self.agent().await.map(|(dc, _)| dc)
    }

    /// The agent's datacenter and DNS domain (`Config.Domain` without its
    /// dots, `consul` when absent), from `GET /v1/agent/self`.
    pub async fn agent(&self) -> Result<(String, String), ConsulError> {
        let raw = self.get(AGENT_SELF, NON_BLOCKING_TIMEOUT).await?;
        check_status(&raw)?;
        let me: AgentSelf = decode(&raw.body)?;
        let dc = me.config.datacenter.trim();
        if dc.is_empty() {
            return Err(ConsulError::NoDatacenter);
        }
        let domain = me.config.domain.trim().trim_matches('.');
        let domain = if domain.is_empty() { "consul" } else { domain };
        Ok((dc.to_owned(), domain.to_owned()))
    }

    pub(crate) async fn get(
        &self,
        url: &str,
        timeout: Duration,
    ) -> Result<RawResponse, ConsulError> {
        match tokio::time::timeout(timeout, self.transport.get(url, self.token.as_deref())).await {
            Err(_) => Err(ConsulError::Timeout(timeout)),
            Ok(Err(e)) if e.connect => Err(ConsulError::Connect(e.message)),
            Ok(Err(e)) => Err(ConsulError::Transport(e.message)),
            Ok(Ok(r)) => Ok(r),
        }
    }
}

/// The path of the agent's self-description.
pub const AGENT_SELF: &str = "/v1/agent/self";

/// The blocking-query index header.
pub const INDEX_HEADER: &str = "x-consul-index";

/// The index to send next, given the one sent and the one received
/// (already at least 1): the received one, or `None` (a fresh,
/// non-blocking read) when it went backwards (a snapshot restore, a
/// server that lost state), as Consul's docs and Go watcher require.
pub fn next_index(sent: Option<u64>, received: u64) -> Option<u64> {
    match sent {
        Some(s) if received < s => None,
        _ => Some(received.max(1)),
    }
}

/// `X-Consul-Index`: required, decimal, and 0 (old servers) read as 1.
pub(crate) fn parse_index(headers: &HeaderMap) -> Result<u64, ConsulError> {
    let v = headers.get(INDEX_HEADER).ok_or(ConsulError::MissingIndex)?;
    let s = v.to_str().map_err(|_| {
        ConsulError::InvalidIndex(String::from_utf8_lossy(v.as_bytes()).into_owned())
    })?;
    let n: u64 = s
        .trim()
        .parse()
        .map_err(|_| ConsulError::InvalidIndex(s.to_owned()))?;
    Ok(n.max(1))
}

pub(crate) fn check_status(raw: &RawResponse) -> Result<(), ConsulError> {
    if raw.status == StatusCode::OK {
        return Ok(());
    }
    let end = raw.body.len().min(MAX_ERROR_TEXT);
    let text = String::from_utf8_lossy(&raw.body[..end]);
    Err(ConsulError::Status {
        status: raw.status.as_u16(),
        body: text.trim().to_owned(),
    })
}

/// `wait` as Consul's Go client sends it: whole milliseconds, a positive
/// sub-millisecond wait rounded up to `1ms` (`0ms` would mean 5 minutes).
pub(crate) fn format_wait(wait: Duration) -> String {
    let ms = wait.as_millis();
    let ms = if ms == 0 && !wait.is_zero() { 1 } else { ms };
    format!("{ms}ms")
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) fn encode_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

/// `host:port`, IPv6 literals bracketed, checked as a URI authority.
pub(crate) fn authority(host: &str, port: u16) -> Result<String, String> {
    let host = host.trim();
    let a = if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    a.parse::<http::uri::Authority>()
        .map(|_| a)
        .map_err(|e| e.to_string())
}

/// The weight of an instance with `tags`: the highest configured weight
/// among them, else 1.0.
pub(crate) fn weight_for(tags: &[String], weights: &[(String, f64)]) -> f64 {
    weights
        .iter()
        .filter(|(t, _)| tags.iter().any(|x| x == t))
        .map(|(_, w)| *w)
        .reduce(f64::max)
        .unwrap_or(1.0)
}

// ---------------------------------------------------------------------------
// JSON, leniently.

/// `null` reads as the default.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A port: any JSON; only an integer 1..=65535 counts, anything else is 0
/// (skipped).
fn lenient_port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(v.and_then(|v| v.as_u64())
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(0))
}

type Meta = serde_json::Map<String, serde_json::Value>;

#[derive(Deserialize, Default)]
#[serde(default)]
struct HealthEntry {
    #[serde(rename = "Node", deserialize_with = "nullable")]
    node: HealthNode,
    #[serde(rename = "Service", deserialize_with = "nullable")]
    service: HealthService,
    #[serde(rename = "Checks", deserialize_with = "nullable")]
    checks: Vec<Check>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct HealthNode {
    #[serde(rename = "Node", deserialize_with = "nullable")]
    node: String,
    #[serde(rename = "Address", deserialize_with = "nullable")]
    address: String,
    #[serde(rename = "Meta", deserialize_with = "nullable")]
    meta: Meta,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct HealthService {
    #[serde(rename = "Tags", deserialize_with = "nullable")]
    tags: Vec<String>,
    #[serde(rename = "Address", deserialize_with = "nullable")]
    address: String,
    #[serde(rename = "Port", deserialize_with = "lenient_port")]
    port: u16,
    #[serde(rename = "Meta", deserialize_with = "nullable")]
    meta: Meta,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Check {
    #[serde(rename = "CheckID", deserialize_with = "nullable")]
    check_id: String,
    #[serde(rename = "Status", deserialize_with = "nullable")]
    status: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CatalogEntry {
    #[serde(rename = "Node", deserialize_with = "nullable")]
    node: String,
    #[serde(rename = "Address", deserialize_with = "nullable")]
    address: String,
    #[serde(rename = "NodeMeta", deserialize_with = "nullable")]
    node_meta: Meta,
    #[serde(rename = "ServiceAddress", deserialize_with = "nullable")]
    service_address: String,
    #[serde(rename = "ServicePort", deserialize_with = "lenient_port")]
    service_port: u16,
    #[serde(rename = "ServiceTags", deserialize_with = "nullable")]
    service_tags: Vec<String>,
    #[serde(rename = "ServiceMeta", deserialize_with = "nullable")]
    service_meta: Meta,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AgentSelf {
    #[serde(rename = "Config", deserialize_with = "nullable")]
    config: AgentConfig,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AgentConfig {
    #[serde(rename = "Datacenter", deserialize_with = "nullable")]
    datacenter: String,
    #[serde(rename = "Domain", deserialize_with = "nullable")]
    domain: String,
}

impl Check {
    /// The check's status; unknown strings count as passing (Linkerd 1),
    /// Consul's maintenance checks as maintenance.
    fn health(&self) -> HealthStatus {
        let s = HealthStatus::parse(self.status.trim()).unwrap_or(HealthStatus::Passing);
        let maint = self.check_id == "_node_maintenance"
            || self.check_id.starts_with("_service_maintenance:");
        if maint && s >= HealthStatus::Critical {
            HealthStatus::Maintenance
        } else {
            s
        }
    }
}

/// The address to dial: the service's when preferred and present, else the
/// node's; `None` when empty.
fn pick_address(service: String, node: String, prefer_service: bool) -> Option<String> {
    let a = if prefer_service && !service.trim().is_empty() {
        service
    } else {
        node
    };
    let a = a.trim();
    (!a.is_empty()).then(|| a.to_owned())
}

impl HealthEntry {
    fn into_instance(self, prefer_service: bool) -> Option<Instance> {
        let status = self
            .checks
            .iter()
            .map(Check::health)
            .max()
            .unwrap_or(HealthStatus::Passing);
        if self.service.port == 0 {
            return None;
        }
        let address = pick_address(self.service.address, self.node.address, prefer_service)?;
        Some(Instance {
            node: self.node.node,
            address,
            port: self.service.port,
            tags: self.service.tags,
            status,
            service_meta: self.service.meta,
            node_meta: self.node.meta,
        })
    }
}

impl CatalogEntry {
    fn into_instance(self, prefer_service: bool) -> Option<Instance> {
        if self.service_port == 0 {
            return None;
        }
        let address = pick_address(self.service_address, self.address, prefer_service)?;
        Some(Instance {
            node: self.node,
            address,
            port: self.service_port,
            tags: self.service_tags,
            status: HealthStatus::Passing,
            service_meta: self.service_meta,
            node_meta: self.node_meta,
        })
    }
}

fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ConsulError> {
    serde_json::from_slice(body).map_err(|e| ConsulError::Decode(e.to_string()))
}

/// A JSON list; `null` (or an empty body) is the empty list.
fn decode_list<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<Vec<T>, ConsulError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    Ok(decode::<Option<Vec<T>>>(body)?.unwrap_or_default())
}

// ---------------------------------------------------------------------------
// The real transport.

/// The read buffer of each connection to the agent; also the largest
/// response head accepted.
const READ_BUF: usize = 4096;

/// HTTP/1 to the Consul agent over one pooled hyper-util client.
#[derive(Clone)]
pub struct HyperTransport {
    client: Client<crate::tls::Connector, Empty<Bytes>>,
    /// `http://host:port`.
    base: Arc<str>,
}

impl fmt::Debug for HyperTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperTransport")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl HyperTransport {
    /// A transport to `host:port`, over TLS when `tls` is given.
    pub fn new(
        host: &str,
        port: u16,
        tls: Option<&crate::ConsulTls>,
    ) -> Result<HyperTransport, String> {
        let authority = authority(host, port)?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            // Every watch holds a connection (a long poll) with its read
            // buffer: hyper's adaptive one starts at 8 KiB. Consul's
            // response heads are a few hundred bytes and bodies stream
            // through the buffer, so 4 KiB serves them at half the memory.
            .http1_read_buf_exact_size(READ_BUF)
            .build(crate::tls::Connector::new(connector, tls));
        Ok(HyperTransport {
            client,
            base: format!("http://{authority}").into(),
        })
    }
}

impl Transport for HyperTransport {
    fn get<'a>(
        &'a self,
        path_and_query: &'a str,
        token: Option<&'a str>,
    ) -> BoxFuture<'a, Result<RawResponse, TransportError>> {
        Box::pin(async move {
            let other = |message: String| TransportError {
                connect: false,
                message,
            };
            let uri: http::Uri = format!("{}{path_and_query}", self.base)
                .parse()
                .map_err(|e: http::uri::InvalidUri| other(format!("bad URL: {e}")))?;
            let mut req = http::Request::new(Empty::new());
            *req.uri_mut() = uri;
            if let Some(t) = token {
                let v = http::HeaderValue::from_str(t)
                    .map_err(|_| other("the token is not a valid header value".into()))?;
                req.headers_mut().insert("x-consul-token", v);
            }
            let resp = self.client.request(req).await.map_err(|e| TransportError {
                connect: e.is_connect(),
                message: error_chain(&e),
            })?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, MAX_BODY)
                .collect()
                .await
                .map_err(|e| other(format!("reading the body: {e}")))?
                .to_bytes();
            Ok(RawResponse {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        })
    }
}

/// An error and its sources, `a: b: c` (hyper-util's own message is terse).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;

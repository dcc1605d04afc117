//! The validated configuration: plain domain types with every default
//! filled in.
//!
//! They serialize (for `/config.json`) under Linkerd's key names, so the
//! JSON they print is itself a valid config that parses back to the same
//! value. Durations print as the integers of their `…Ms`/`…Secs` key, dtabs
//! and paths as their canonical `show()` strings.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Serialize, Serializer};
use strait_dtab::{Dtab, Path};

/// A whole `linkerd.yaml`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    /// The admin server (`admin:`).
    pub admin: AdminConfig,
    /// The routers, at least one, labels unique.
    pub routers: Vec<RouterConfig>,
    /// The namers, prefixes unique.
    pub namers: Vec<NamerConfig>,
    /// Telemeters beyond the always-on `/admin/metrics.json`.
    pub telemetry: Vec<TelemeterConfig>,
    /// Linkerd's usage reporting; accepted and ignored by Strait.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageConfig>,
}

/// The admin server.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminConfig {
    /// Listen address (`ip`, default `127.0.0.1`).
    pub ip: IpAddr,
    /// Listen port (`port`, default 9990).
    pub port: u16,
    /// Grace period for in-flight requests on shutdown
    /// (`shutdownGraceMs`, default 10 000).
    #[serde(rename = "shutdownGraceMs", serialize_with = "as_millis")]
    pub shutdown_grace: Duration,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            ip: LOOPBACK,
            port: 9990,
            shutdown_grace: Duration::from_millis(10_000),
        }
    }
}

/// The protocol a router speaks. Only `http` (HTTP/1.x) so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// `protocol: http`.
    Http,
}

impl Protocol {
    /// The name written in the config, also the default router label.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http => "http",
        }
    }

    /// The port a server of this protocol listens on by default.
    pub fn default_port(self) -> u16 {
        match self {
            Protocol::Http => 4140,
        }
    }
}

/// One router: servers that accept requests, an identifier that names them,
/// and a dtab that routes the names.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterConfig {
    /// The protocol (`protocol`, required).
    pub protocol: Protocol,
    /// The router's name in metrics and the admin UI (`label`, default the
    /// protocol name).
    pub label: String,
    /// The base dtab (`dtab`, default empty).
    #[serde(serialize_with = "dtab_show")]
    pub dtab: Dtab,
    /// Prefix of the names identifiers produce (`dstPrefix`, default `/svc`).
    #[serde(serialize_with = "path_show")]
    pub dst_prefix: Path,
    /// Identifiers tried in order (`identifier`: one object or a list;
    /// default `io.l5d.header.token` on `Host`).
    #[serde(rename = "identifier")]
    pub identifiers: Vec<IdentifierConfig>,
    /// Listeners, at least one.
    pub servers: Vec<ServerConfig>,
    /// How long binding a name may take (`bindingTimeoutMs`, default 10 000).
    #[serde(rename = "bindingTimeoutMs", serialize_with = "as_millis")]
    pub binding_timeout: Duration,
    /// Binding cache sizes (`bindingCache`).
    pub binding_cache: BindingCacheConfig,
    /// Largest request header block accepted (`maxHeadersKB`, default 8).
    #[serde(rename = "maxHeadersKB")]
    pub max_headers_kb: u32,
    /// Largest request line accepted (`maxInitialLineKB`, default 4).
    #[serde(rename = "maxInitialLineKB")]
    pub max_initial_line_kb: u32,
    /// Cap on the `l5d-err` text (`maxErrResponseKB`, default 5120).
    #[serde(rename = "maxErrResponseKB")]
    pub max_err_response_kb: u32,
    /// Access log file (`httpAccessLog`, default none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_access_log: Option<PathBuf>,
}

/// The four binding cache layers (`bindingCache`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BindingCacheConfig {
    /// Logical paths (`paths`, default 1000).
    pub paths: u32,
    /// Name trees (`trees`, default 1000).
    pub trees: u32,
    /// Bound names (`bounds`, default 1000).
    pub bounds: u32,
    /// Clients (`clients`, default 1000).
    pub clients: u32,
    /// Idle entries are evicted after this (`idleTtlSecs`, default 600).
    #[serde(rename = "idleTtlSecs", serialize_with = "as_secs")]
    pub idle_ttl: Duration,
}

impl Default for BindingCacheConfig {
    fn default() -> Self {
        BindingCacheConfig {
            paths: 1000,
            trees: 1000,
            bounds: 1000,
            clients: 1000,
            idle_ttl: Duration::from_secs(600),
        }
    }
}

/// How an HTTP router names a request (`identifier`, dispatched on `kind`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all_fields = "camelCase")]
pub enum IdentifierConfig {
    /// `io.l5d.header.token`: `dstPrefix` + the header's value as one
    /// segment.
    #[serde(rename = "io.l5d.header.token")]
    HeaderToken {
        /// The header (default `Host`).
        header: String,
    },
    /// `io.l5d.methodAndHost`: `dstPrefix/1.1/<METHOD>/<host>[/<uri>]`.
    #[serde(rename = "io.l5d.methodAndHost")]
    MethodAndHost {
        /// Append the URI path (`httpUriInDst`, default false).
        http_uri_in_dst: bool,
    },
    /// `io.l5d.path`: `dstPrefix` + the first `segments` path segments.
    #[serde(rename = "io.l5d.path")]
    Path {
        /// How many segments (default 1, at least 1).
        segments: u32,
        /// Strip them before forwarding (default false).
        consume: bool,
    },
    /// `io.l5d.header`: `dstPrefix` + the header's value read as a path.
    #[serde(rename = "io.l5d.header")]
    Header {
        /// The header (default `l5d-name`).
        header: String,
    },
    /// `io.l5d.static`: `dstPrefix` + a fixed path.
    #[serde(rename = "io.l5d.static")]
    Static {
        /// The path (required).
        #[serde(serialize_with = "path_show")]
        path: Path,
    },
}

impl Default for IdentifierConfig {
    fn default() -> Self {
        IdentifierConfig::HeaderToken {
            header: "Host".to_owned(),
        }
    }
}

/// One listener of a router.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerConfig {
    /// Listen address (`ip`, default `127.0.0.1`).
    pub ip: IpAddr,
    /// Listen port (`port`, default the protocol's: 4140 for http; 0 picks
    /// an ephemeral port).
    pub port: u16,
    /// Strip `l5d-*` context headers in and out (`clearContext`, default
    /// false).
    pub clear_context: bool,
    /// Requests served at once before refusing (`maxConcurrentRequests`,
    /// default unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent_requests: Option<u32>,
    /// Add an RFC 7239 `Forwarded` header (`addForwardedHeader`, default
    /// off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add_forwarded_header: Option<ForwardedConfig>,
    /// Refuse requests whose `Via` has more entries (`maxCallDepth`,
    /// default 1000).
    pub max_call_depth: u32,
}

/// The `Forwarded` header's `by` and `for` labels (`addForwardedHeader`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ForwardedConfig {
    /// Labels this proxy (`by`, default `requestRandom`).
    pub by: ForwardedLabeler,
    /// Labels the client (`for`, default `requestRandom`).
    #[serde(rename = "for")]
    pub for_: ForwardedLabeler,
}

/// How a `Forwarded` node is labelled (`{kind: …}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind")]
pub enum ForwardedLabeler {
    /// `ip`: the peer's IP address.
    #[serde(rename = "ip")]
    Ip,
    /// `ip:port`: the peer's IP address and port.
    #[serde(rename = "ip:port")]
    IpPort,
    /// `connectionRandom`: an obfuscated label, one per connection.
    #[serde(rename = "connectionRandom")]
    ConnectionRandom,
    /// `requestRandom`: an obfuscated label, one per request.
    #[serde(rename = "requestRandom")]
    RequestRandom,
    /// `router`: the router's label, obfuscated.
    #[serde(rename = "router")]
    Router,
    /// `static`: a fixed obfuscated label.
    #[serde(rename = "static")]
    Static {
        /// The label (required).
        label: String,
    },
}

/// A namer: resolves concrete names under `/#/<prefix>` to addresses.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind")]
pub enum NamerConfig {
    /// `io.l5d.fs`: one file per service in a watched directory.
    #[serde(rename = "io.l5d.fs")]
    Fs(FsNamerConfig),
    /// `io.l5d.consul`: Consul's catalog or health API.
    #[serde(rename = "io.l5d.consul")]
    Consul(ConsulConfig),
}

impl NamerConfig {
    /// The configured `prefix` (without `/#`).
    pub fn prefix(&self) -> &Path {
        match self {
            NamerConfig::Fs(c) => &c.prefix,
            NamerConfig::Consul(c) => &c.prefix,
        }
    }

    /// The namer's kind as written in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            NamerConfig::Fs(_) => "io.l5d.fs",
            NamerConfig::Consul(_) => "io.l5d.consul",
        }
    }

    /// The prefix dtabs use to reach this namer: `/#` ++ `prefix`, e.g.
    /// `/#/io.l5d.consul`.
    pub fn full_prefix(&self) -> Path {
        Path::utf8(&["#"]).concat(self.prefix())
    }
}

/// `io.l5d.fs` settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FsNamerConfig {
    /// Names live under `/#` ++ this (`prefix`, default `/io.l5d.fs`).
    #[serde(serialize_with = "path_show")]
    pub prefix: Path,
    /// The watched directory (`rootDir`, required).
    pub root_dir: PathBuf,
}

/// `io.l5d.consul` settings (linkerd1.md §2.1).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsulConfig {
    /// Names live under `/#` ++ this (`prefix`, default `/io.l5d.consul`).
    #[serde(serialize_with = "path_show")]
    pub prefix: Path,
    /// Consul agent host (`host`, default `localhost`).
    pub host: String,
    /// Consul agent port (`port`, default 8500).
    pub port: u16,
    /// Paths carry a tag segment: `/<dc>/<tag>/<service>` (`includeTag`,
    /// default false).
    pub include_tag: bool,
    /// Ask `/v1/health/service` and filter on `health_statuses`
    /// instead of `/v1/catalog/service` (`useHealthCheck`, default false).
    pub use_health_check: bool,
    /// Statuses that count as up (`healthStatuses`, default `[passing]`).
    pub health_statuses: Vec<HealthStatus>,
    /// ACL token, sent as `X-Consul-Token` (`token`, default none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Rewrite `Host` to `<svc>.service.<dc>.<domain>` (`setHost`, default
    /// false).
    pub set_host: bool,
    /// Read consistency (`consistencyMode`, default `default`).
    pub consistency_mode: ConsistencyMode,
    /// Fail fast on the Consul client (`failFast`, default false).
    pub fail_fast: bool,
    /// Use `ServiceAddress` when set, else the node's `Address`
    /// (`preferServiceAddress`, default true).
    pub prefer_service_address: bool,
    /// Endpoint weights by tag (`weights`, default none).
    pub weights: Vec<TagWeight>,
    /// Copy service and node metadata onto addresses (`transferMetadata`,
    /// default false).
    pub transfer_metadata: bool,
    /// Consul responses above this many KB are streamed
    /// (`fixedLengthStreamedAfterKB`, default 5120).
    #[serde(rename = "fixedLengthStreamedAfterKB")]
    pub fixed_length_streamed_after_kb: u64,
}

/// A Consul health status (`healthStatuses` items).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// `passing`.
    Passing,
    /// `warning`.
    Warning,
    /// `critical`.
    Critical,
    /// `maintenance`.
    Maintenance,
}

/// Consul read consistency (`consistencyMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsistencyMode {
    /// `default`: no query parameter.
    Default,
    /// `stale`: `?stale=true`.
    Stale,
    /// `consistent`: `?consistent=true`.
    Consistent,
}

/// One `weights` item: instances with `tag` get `weight`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TagWeight {
    /// The Consul tag.
    pub tag: String,
    /// The weight (greater than 0; untagged instances weigh 1.0).
    pub weight: f64,
}

/// A telemeter (`telemetry` items, dispatched on `kind`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind")]
pub enum TelemeterConfig {
    /// `io.l5d.prometheus`: metrics in Prometheus text format on the admin
    /// server.
    #[serde(rename = "io.l5d.prometheus")]
    Prometheus {
        /// Admin path (`path`, default `/admin/metrics/prometheus`).
        path: String,
        /// Prepended to every metric name (`prefix`, default empty).
        prefix: String,
    },
}

/// Linkerd's usage reporting (`usage`). Strait sends nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageConfig {
    /// `orgId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// `enabled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `127.0.0.1`, the default listen address of admin and servers.
pub(crate) const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn as_millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn as_secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

fn dtab_show<S: Serializer>(d: &Dtab, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&d.show())
}

fn path_show<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.show())
}

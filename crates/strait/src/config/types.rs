//! The validated configuration: plain domain types with every default
//! filled in.
//!
//! They serialize (for `/config.json`) under Linkerd's key names, so the
//! JSON they print is itself a valid config that parses back to the same
//! value. Durations print as the integers of their `…Ms`/`…Secs` key, dtabs
//! and paths as their canonical `show()` strings.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::tls::ServerTlsConfig;
use serde::{Serialize, Serializer};
use strait_dtab::{Dtab, Path};
use strait_naming::pathmatch::PathMatcher;
use strait_naming::transform::TransformerKind;
use strait_router::clients::Network;
use strait_router::guard::InetRule;
use strait_router::policy::BudgetParams;

use super::client_tls::ClientTlsConfig;

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
    /// Which admin paths are served (`security`, Linkerd's block; default
    /// everything).
    #[serde(skip_serializing_if = "AdminSecurityConfig::is_default")]
    pub security: AdminSecurityConfig,
    /// Strait's own key: a file holding the bearer token the control
    /// endpoints (`/admin/shutdown`, `/admin/reload`) require
    /// (`tokenFile`, default none: control is open on a loopback admin and
    /// refused on any other).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Serve the admin over TLS (`tls`, the server form; default
    /// plaintext).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTlsConfig>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            ip: LOOPBACK,
            port: 9990,
            shutdown_grace: Duration::from_millis(10_000),
            security: AdminSecurityConfig::default(),
            token_file: None,
            tls: None,
        }
    }
}

/// Linkerd's admin `security` block: each path is UI, control or
/// diagnostics; a path is served when not blacklisted and its category is
/// on, or whitelisted; anything else is a bare 404.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminSecurityConfig {
    /// `uiEnabled` (default true).
    pub ui_enabled: bool,
    /// `controlEnabled` (default true).
    pub control_enabled: bool,
    /// `diagnosticsEnabled` (default true).
    pub diagnostics_enabled: bool,
    /// `pathWhitelist`: regexes over the whole path (no query).
    pub path_whitelist: Vec<String>,
    /// `pathBlacklist`: regexes over the whole path, checked first.
    pub path_blacklist: Vec<String>,
}

impl Default for AdminSecurityConfig {
    fn default() -> Self {
        AdminSecurityConfig {
            ui_enabled: true,
            control_enabled: true,
            diagnostics_enabled: true,
            path_whitelist: Vec::new(),
            path_blacklist: Vec::new(),
        }
    }
}

impl AdminSecurityConfig {
    fn is_default(&self) -> bool {
        *self == AdminSecurityConfig::default()
    }
}

/// The protocol a router speaks: `http` (HTTP/1.x) or `h2` (HTTP/2,
/// gRPC among it). The keys a router, its servers, clients and services
/// accept depend on it, as in Linkerd 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// `protocol: http`.
    Http,
    /// `protocol: h2`.
    H2,
}

impl Protocol {
    /// The name written in the config, also the default router label.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::H2 => "h2",
        }
    }

    /// The port a server of this protocol listens on by default (Linkerd's:
    /// 4140 for http, 4142 for h2).
    pub fn default_port(self) -> u16 {
        match self {
            Protocol::Http => 4140,
            Protocol::H2 => 4142,
        }
    }
}

/// `maxHeadersKB`'s default (http routers).
pub const DEFAULT_MAX_HEADERS_KB: u32 = 8;
/// `maxInitialLineKB`'s default (http routers).
pub const DEFAULT_MAX_INITIAL_LINE_KB: u32 = 4;
/// `maxErrResponseKB`'s default (http routers; h2 routers cap `l5d-err` at
/// the same).
pub const DEFAULT_MAX_ERR_RESPONSE_KB: u32 = 5120;
/// `maxHeaderCount`'s default (http servers).
pub const DEFAULT_MAX_HEADER_COUNT: u32 = 500;
/// `upgradeIdleTimeoutMs`'s default (http servers).
pub const DEFAULT_UPGRADE_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
/// `responseSendTimeoutMs`'s default (http servers; nginx's `send_timeout`).
pub const DEFAULT_RESPONSE_SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// `maxConcurrentStreamsPerConnection`'s default (h2 servers; Linkerd's).
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 1000;

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
    /// default `io.l5d.header.token` on `Host`, on `:authority` for h2).
    #[serde(rename = "identifier")]
    pub identifiers: Vec<IdentifierConfig>,
    /// Listeners, at least one.
    pub servers: Vec<ServerConfig>,
    /// How long binding a name may take (`bindingTimeoutMs`, default 10 000).
    #[serde(rename = "bindingTimeoutMs", serialize_with = "as_millis")]
    pub binding_timeout: Duration,
    /// Binding cache sizes (`bindingCache`).
    pub binding_cache: BindingCacheConfig,
    /// What binding one name may cost (`bindingLimits`; Strait's own).
    pub binding_limits: BindingLimitsConfig,
    /// How clients of concrete names behave (`client`, default
    /// `io.l5d.global` with Linkerd's defaults); see
    /// [`ClientConfig::params_for`].
    pub client: ClientConfig,
    /// How requests to logical names are classified, retried and timed out
    /// (`service`, default `io.l5d.global` with Linkerd's defaults); see
    /// [`ServiceConfig::params_for`].
    pub service: ServiceConfig,
    /// Largest request header block accepted (`maxHeadersKB`, default 8;
    /// http routers only: `None` on h2).
    #[serde(rename = "maxHeadersKB", skip_serializing_if = "Option::is_none")]
    pub max_headers_kb: Option<u32>,
    /// Largest request line accepted (`maxInitialLineKB`, default 4; http
    /// routers only: `None` on h2).
    #[serde(rename = "maxInitialLineKB", skip_serializing_if = "Option::is_none")]
    pub max_initial_line_kb: Option<u32>,
    /// Cap on the `l5d-err` text (`maxErrResponseKB`, default 5120; http
    /// routers only: `None` on h2, which caps at the same default).
    #[serde(rename = "maxErrResponseKB", skip_serializing_if = "Option::is_none")]
    pub max_err_response_kb: Option<u32>,
    /// Access log file of an http router (`httpAccessLog`, default none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_access_log: Option<PathBuf>,
    /// Access log file of an h2 router (`h2AccessLog`, default none).
    #[serde(rename = "h2AccessLog", skip_serializing_if = "Option::is_none")]
    pub h2_access_log: Option<PathBuf>,
    /// How the access log is kept and written: `…AccessLogRollPolicy`,
    /// `…Append`, `…RotateCount` and Strait's `…Format` (shown with the
    /// router's prefix, `http` or `h2`, when it has an access log).
    #[serde(flatten)]
    pub access_log_options: AccessLogOptions,
    /// Strait's own key: the addresses a `/$/inet` (or `/$/fixedinet`) name
    /// may reach when a per-request dtab override chose it (`inetAllow`,
    /// default loopback: `127.0.0.0/8`, `::1`). Addresses the router's own
    /// dtab names literally are always allowed; Strait's own admin and
    /// listener addresses never are.
    #[serde(serialize_with = "display_list")]
    pub inet_allow: Vec<InetRule>,
    /// The first hop of a linker-to-linker setup (`originator`, default
    /// false): as in Linkerd 1, the router's stats get an
    /// `rt/<label>/originator` gauge of 1, so that dashboards summing both
    /// hops can count each request once.
    pub originator: bool,
    /// Where the stored dtab comes from (`interpreter`, default
    /// `default`: none).
    pub interpreter: super::InterpreterConfig,
}

impl RouterConfig {
    /// The access log (`httpAccessLog` or `h2AccessLog`) and the key that
    /// named it.
    pub fn access_log(&self) -> Option<(&'static str, &PathBuf)> {
        match (&self.http_access_log, &self.h2_access_log) {
            (Some(p), _) => Some(("httpAccessLog", p)),
            (None, Some(p)) => Some(("h2AccessLog", p)),
            (None, None) => None,
        }
    }
}

/// An access log's options (`httpAccessLog*` on an http router,
/// `h2AccessLog*` on an h2 one).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AccessLogOptions {
    /// Whether the router has an access log (the keys are shown only then).
    pub shown: bool,
    /// `h2AccessLog*` rather than `httpAccessLog*`.
    pub h2: bool,
    /// `…RollPolicy` (default `never`), `…Append` (true), `…RotateCount`
    /// (-1: keep all).
    pub file: strait_router::accesslog::FileOptions,
    /// Strait's `…Format`: `linkerd` (default) or `json`.
    pub format: strait_router::accesslog::Format,
}

impl Serialize for AccessLogOptions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        if !self.shown {
            return s.serialize_map(Some(0))?.end();
        }
        let p = if self.h2 { "h2" } else { "http" };
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry(
            &format!("{p}AccessLogRollPolicy"),
            &self.file.roll.to_string(),
        )?;
        m.serialize_entry(&format!("{p}AccessLogAppend"), &self.file.append)?;
        m.serialize_entry(&format!("{p}AccessLogRotateCount"), &self.file.rotate_count)?;
        m.serialize_entry(&format!("{p}AccessLogFormat"), self.format.name())?;
        m.end()
    }
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

/// Bounds on binding a name (`bindingLimits`, not in Linkerd 1, whose only
/// bound is the depth of a chain of lookups, 100). A per-request dtab whose
/// every level is a union of two paths to the next doubles the tree at each
/// level; these stop it where it crosses them.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BindingLimitsConfig {
    /// Name-tree nodes one binding may expand, every lookup's answer
    /// counted (`maxNodes`, default 10,000).
    pub max_nodes: u32,
    /// Bound names one binding may reach (`maxLeaves`, default 1,000).
    pub max_leaves: u32,
    /// `l5d-ctx-dtab` and `l5d-dtab` together, in bytes
    /// (`maxDtabHeaderBytes`, default 4,096).
    pub max_dtab_header_bytes: u32,
}

impl Default for BindingLimitsConfig {
    fn default() -> Self {
        let d = strait_router::BindingLimits::default();
        let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        BindingLimitsConfig {
            max_nodes: n(d.max_nodes),
            max_leaves: n(d.max_leaves),
            max_dtab_header_bytes: n(d.max_dtab_header_bytes),
        }
    }
}

/// How a router names a request (`identifier`, dispatched on `kind`). An
/// http router takes every kind but `io.l5d.header.path`; an h2 router
/// `io.l5d.header.token` and `io.l5d.header.path` only.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all_fields = "camelCase")]
pub enum IdentifierConfig {
    /// `io.l5d.header.token`: `dstPrefix` + the header's value as one
    /// segment.
    #[serde(rename = "io.l5d.header.token")]
    HeaderToken {
        /// The header (default `Host`; on h2 `:authority`, and any header
        /// or pseudo-header, matched lower-cased).
        header: String,
    },
    /// `io.l5d.header.path` (h2 routers): `dstPrefix` + the header's value
    /// cut at `?` and one trailing `/`, read as a path, its first
    /// `segments` segments.
    #[serde(rename = "io.l5d.header.path")]
    HeaderPath {
        /// The header (default `:path`).
        header: String,
        /// How many segments (default all; at least 1).
        #[serde(skip_serializing_if = "Option::is_none")]
        segments: Option<u32>,
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

impl IdentifierConfig {
    /// A router's identifier when it names none: `io.l5d.header.token` on
    /// `Host` (http) or `:authority` (h2).
    pub fn default_for(protocol: Protocol) -> Self {
        match protocol {
            Protocol::Http => IdentifierConfig::default(),
            Protocol::H2 => IdentifierConfig::HeaderToken {
                header: ":authority".to_owned(),
            },
        }
    }
}

/// One listener of a router.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerConfig {
    /// Listen address (`ip`, default `127.0.0.1`).
    pub ip: IpAddr,
    /// Listen port (`port`, default the protocol's: 4140 for http, 4142
    /// for h2; 0 picks an ephemeral port).
    pub port: u16,
    /// Strip `l5d-*` context headers in and out (`clearContext`, default
    /// false).
    pub clear_context: bool,
    /// Strait's own key: honour per-request dtab overrides (`l5d-dtab`,
    /// `l5d-ctx-dtab`) on this server (`dtabOverride`, default false: the
    /// headers are stripped and ignored). `true` is Linkerd 1's behaviour.
    pub dtab_override: bool,
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
    /// Strait's own: how long a request head may take to arrive
    /// (`requestHeaderTimeoutMs`, default 30 000).
    #[serde(rename = "requestHeaderTimeoutMs", serialize_with = "as_millis")]
    pub request_header_timeout: Duration,
    /// Strait's own: how long a request body may pause between bytes
    /// (`requestBodyIdleTimeoutMs`, default 60 000; 408 after).
    #[serde(rename = "requestBodyIdleTimeoutMs", serialize_with = "as_millis")]
    pub request_body_idle_timeout: Duration,
    /// Strait's own: the largest request body (`maxRequestBodyKB`, default
    /// none; 413 beyond). Linkerd 1's `maxRequestKB` was removed in 1.7
    /// and stays refused.
    #[serde(rename = "maxRequestBodyKB", skip_serializing_if = "Option::is_none")]
    pub max_request_body_kb: Option<u64>,
    /// Strait's own: the most request headers (`maxHeaderCount`, default
    /// 500; 431 beyond). http servers only: `None` on h2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_header_count: Option<u32>,
    /// Strait's own: how long an upgraded connection (a WebSocket) may
    /// carry no byte either way before both sides are closed
    /// (`upgradeIdleTimeoutMs`, default 3 600 000). http servers only:
    /// `None` on h2.
    #[serde(
        rename = "upgradeIdleTimeoutMs",
        serialize_with = "opt_as_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub upgrade_idle_timeout: Option<Duration>,
    /// Strait's own: how long a response may wait for the client to take
    /// its next byte before the connection closes
    /// (`responseSendTimeoutMs`, default 60 000, nginx's `send_timeout`).
    /// http servers only: `None` on h2.
    #[serde(
        rename = "responseSendTimeoutMs",
        serialize_with = "opt_as_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_send_timeout: Option<Duration>,
    /// An h2 server's HTTP/2 settings (all `None` on http).
    #[serde(flatten)]
    pub h2: H2EndpointConfig,
    /// Streams one h2 connection may carry at once, advertised
    /// (`maxConcurrentStreamsPerConnection`, default 1000; h2 servers
    /// only: `None` on http).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent_streams_per_connection: Option<u32>,
    /// Strait's own: the source networks whose connections are served
    /// (`clientNetworks`); others are closed on accept. `None` (not
    /// written): loopback, this host's addresses and the private subnets
    /// attached to its interfaces, read at start and on every reload.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_display_list"
    )]
    pub client_networks: Option<Vec<Network>>,
    /// Terminate TLS on this server (`tls`; default plaintext).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTlsConfig>,
}

/// The HTTP/2 settings an h2 router's servers and clients take
/// (`None`: not written; hyper's default applies).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct H2EndpointConfig {
    /// `SETTINGS_INITIAL_WINDOW_SIZE` (`initialStreamWindowBytes`, 1 to
    /// 2^31-1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_stream_window_bytes: Option<u32>,
    /// `SETTINGS_MAX_FRAME_SIZE` (`maxFrameBytes`, 16 384 to 16 777 215).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_frame_bytes: Option<u32>,
    /// `SETTINGS_HEADER_TABLE_SIZE` (`headerTableBytes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_table_bytes: Option<u32>,
    /// `SETTINGS_MAX_HEADER_LIST_SIZE` (`maxHeaderListBytes`, at least 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_header_list_bytes: Option<u32>,
}

impl H2EndpointConfig {
    /// Overwrites in `self` every setting `patch` writes.
    pub fn apply(&mut self, patch: &H2EndpointConfig) {
        let or = |w: Option<u32>, old: Option<u32>| w.or(old);
        self.initial_stream_window_bytes = or(
            patch.initial_stream_window_bytes,
            self.initial_stream_window_bytes,
        );
        self.max_frame_bytes = or(patch.max_frame_bytes, self.max_frame_bytes);
        self.header_table_bytes = or(patch.header_table_bytes, self.header_table_bytes);
        self.max_header_list_bytes = or(patch.max_header_list_bytes, self.max_header_list_bytes);
    }
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

// ------------------------------------------------------------ client

/// Per-concrete-name client settings (`client`, Linkerd 1's "Client
/// Configuration" docs),
/// dispatched on `kind`.
// Built once per load, and `Global` is by far the common kind: boxing it
// would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind")]
pub enum ClientConfig {
    /// `io.l5d.global` (the default): one set of parameters, written
    /// directly in the `client` block, for every client.
    #[serde(rename = "io.l5d.global")]
    Global(ClientParams),
    /// `io.l5d.static`: `configs`, a list of `{prefix, …params}`; every
    /// item whose prefix matches a concrete name applies, in order, over
    /// the defaults, so later matches override earlier ones key by key.
    #[serde(rename = "io.l5d.static")]
    Static {
        /// The prefixed parameter sets, in the order written.
        configs: Vec<ClientPrefixConfig>,
    },
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig::Global(ClientParams::default())
    }
}

impl ClientConfig {
    /// The parameters of the client for the concrete (bound) name
    /// `concrete`, such as `/#/io.l5d.fs/web` or `/$/inet/127.1/8080`:
    /// the global parameters, or the defaults with every matching static
    /// item applied in order.
    pub fn params_for(&self, concrete: &Path) -> ClientParams {
        match self {
            ClientConfig::Global(params) => params.clone(),
            ClientConfig::Static { configs } => {
                let mut params = ClientParams::default();
                for c in configs.iter().filter(|c| c.prefix.matches(concrete)) {
                    c.params.apply_to(&mut params);
                }
                params
            }
        }
    }
}

/// One `io.l5d.static` client item: a prefix and the keys it sets.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClientPrefixConfig {
    /// Concrete names this item applies to (`prefix`, required), such as
    /// `/#/io.l5d.fs/*` or `/#/io.l5d.consul/{dc}/{service}`: a
    /// Linkerd path matcher (`*` matches any one element, `{name}`
    /// captures; see [`strait_naming::pathmatch`]), printed as written.
    #[serde(serialize_with = "matcher_show")]
    pub prefix: PathMatcher,
    /// The keys written in this item; absent keys leave what earlier items
    /// (or the defaults) set.
    #[serde(flatten)]
    pub params: ClientParamsPatch,
}

/// A client's parameters, every default filled in.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientParams {
    /// How an endpoint is picked (`loadBalancer`, default `p2c` with
    /// `maxEffort` 5).
    pub load_balancer: LoadBalancerConfig,
    /// When an endpoint is marked dead (`failureAccrual`, default 5
    /// consecutive failures with jittered backoff 5 s → 300 s).
    pub failure_accrual: FailureAccrualConfig,
    /// Budget for connection-level retries (`requeueBudget`, default
    /// `ttlSecs` 10, `minRetriesPerSec` 10, `percentCanRetry` 0.2).
    pub requeue_budget: BudgetConfig,
    /// The per-endpoint connection pool (`hostConnectionPool`, default
    /// unbounded). Printed only when not the default: an h2 router's
    /// clients have no pool (one multiplexed connection per endpoint) and
    /// refuse the key.
    #[serde(skip_serializing_if = "PoolConfig::is_default")]
    pub host_connection_pool: PoolConfig,
    /// Timeout of one attempt, retries excluded (`requestAttemptTimeoutMs`,
    /// default none).
    #[serde(
        rename = "requestAttemptTimeoutMs",
        serialize_with = "opt_as_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub request_attempt_timeout: Option<Duration>,
    /// How long opening a connection may take (`connectTimeoutMs`, at
    /// least 1). Not a Linkerd 1 key (Finagle's connect timeout was not
    /// configurable there): a Strait extension, default 10 000 ms.
    #[serde(rename = "connectTimeoutMs", serialize_with = "as_millis")]
    pub connect_timeout: Duration,
    /// How long a backend may take to begin its response, per attempt
    /// (`responseTimeoutMs`, at least 1). Not a Linkerd 1 key: a Strait
    /// extension so that a backend that never answers cannot hold a
    /// client forever, default 60 000 ms (nginx's `proxy_read_timeout`,
    /// HAProxy's `timeout server` in their examples). Answered 504.
    #[serde(rename = "responseTimeoutMs", serialize_with = "as_millis")]
    pub response_timeout: Duration,
    /// Mark an endpoint down as soon as a connection to it fails
    /// (`failFast`, default false).
    pub fail_fast: bool,
    /// TLS to the endpoints (`tls`, default none: plain TCP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Box<ClientTlsConfig>>,
    /// An h2 router's client's HTTP/2 settings (none on http).
    #[serde(flatten)]
    pub h2: H2EndpointConfig,
}

/// Strait's default connect timeout (`connectTimeoutMs`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = strait_router::policy::DEFAULT_CONNECT_TIMEOUT;

impl Default for ClientParams {
    fn default() -> Self {
        ClientParams {
            load_balancer: LoadBalancerConfig::default(),
            failure_accrual: FailureAccrualConfig::default(),
            requeue_budget: BudgetConfig::default(),
            host_connection_pool: PoolConfig::default(),
            request_attempt_timeout: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: strait_router::policy::DEFAULT_RESPONSE_TIMEOUT,
            fail_fast: false,
            tls: None,
            h2: H2EndpointConfig::default(),
        }
    }
}

/// The client keys one block sets: `None` for a key not written. Blocks
/// (`loadBalancer`, `hostConnectionPool`, …) are whole values: a block
/// written with some keys has Linkerd's defaults for the others, as in
/// Linkerd, where each is one Finagle stack parameter.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientParamsPatch {
    /// `loadBalancer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerConfig>,
    /// `failureAccrual`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_accrual: Option<FailureAccrualConfig>,
    /// `requeueBudget`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requeue_budget: Option<BudgetConfig>,
    /// `hostConnectionPool`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_connection_pool: Option<PoolConfig>,
    /// `requestAttemptTimeoutMs`.
    #[serde(
        rename = "requestAttemptTimeoutMs",
        serialize_with = "opt_as_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub request_attempt_timeout: Option<Duration>,
    /// `connectTimeoutMs`.
    #[serde(
        rename = "connectTimeoutMs",
        serialize_with = "opt_as_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub connect_timeout: Option<Duration>,
    /// `responseTimeoutMs`.
    #[serde(
        rename = "responseTimeoutMs",
        serialize_with = "opt_as_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_timeout: Option<Duration>,
    /// `failFast`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_fast: Option<bool>,
    /// `tls`, a whole block: replaces an earlier item's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Box<ClientTlsConfig>>,
    /// An h2 client's settings, each on its own.
    #[serde(flatten)]
    pub h2: H2EndpointConfig,
}

impl ClientParamsPatch {
    /// Overwrites in `params` every key this patch sets.
    pub fn apply_to(&self, params: &mut ClientParams) {
        if let Some(lb) = &self.load_balancer {
            params.load_balancer = lb.clone();
        }
        if let Some(fa) = &self.failure_accrual {
            params.failure_accrual = fa.clone();
        }
        if let Some(b) = &self.requeue_budget {
            params.requeue_budget = b.clone();
        }
        if let Some(p) = &self.host_connection_pool {
            params.host_connection_pool = p.clone();
        }
        if let Some(t) = self.request_attempt_timeout {
            params.request_attempt_timeout = Some(t);
        }
        if let Some(t) = self.connect_timeout {
            params.connect_timeout = t;
        }
        if let Some(t) = self.response_timeout {
            params.response_timeout = t;
        }
        if let Some(f) = self.fail_fast {
            params.fail_fast = f;
        }
        if let Some(t) = &self.tls {
            params.tls = Some(t.clone());
        }
        params.h2.apply(&self.h2);
    }
}

/// A load balancer (`loadBalancer`, dispatched on `kind`). Every kind
/// takes `enableProbation` (default false). Linkerd's `aperture` and
/// `heap` are refused as not supported yet.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all_fields = "camelCase")]
pub enum LoadBalancerConfig {
    /// `p2c`: power of two choices, least loaded.
    #[serde(rename = "p2c")]
    P2c {
        /// Re-picks after drawing a dead endpoint (`maxEffort`, default 5).
        max_effort: u32,
        /// `enableProbation` (default false).
        enable_probation: bool,
    },
    /// `ewma`: power of two choices, least peak-EWMA latency.
    #[serde(rename = "ewma")]
    Ewma {
        /// Re-picks after drawing a dead endpoint (`maxEffort`, default 5).
        max_effort: u32,
        /// Latency decay window (`decayTimeMs`, default 10 000).
        #[serde(rename = "decayTimeMs", serialize_with = "as_millis")]
        decay_time: Duration,
        /// `enableProbation` (default false).
        enable_probation: bool,
    },
    /// `roundRobin`.
    #[serde(rename = "roundRobin")]
    RoundRobin {
        /// Re-picks after drawing a dead endpoint (`maxEffort`, default 5).
        max_effort: u32,
        /// `enableProbation` (default false).
        enable_probation: bool,
    },
}

impl Default for LoadBalancerConfig {
    fn default() -> Self {
        LoadBalancerConfig::P2c {
            max_effort: 5,
            enable_probation: false,
        }
    }
}

impl LoadBalancerConfig {
    /// `maxEffort`, whatever the kind.
    pub fn max_effort(&self) -> u32 {
        match self {
            LoadBalancerConfig::P2c { max_effort, .. }
            | LoadBalancerConfig::Ewma { max_effort, .. }
            | LoadBalancerConfig::RoundRobin { max_effort, .. } => *max_effort,
        }
    }

    /// `enableProbation`, whatever the kind.
    pub fn enable_probation(&self) -> bool {
        match self {
            LoadBalancerConfig::P2c {
                enable_probation, ..
            }
            | LoadBalancerConfig::Ewma {
                enable_probation, ..
            }
            | LoadBalancerConfig::RoundRobin {
                enable_probation, ..
            } => *enable_probation,
        }
    }
}

/// When an endpoint is marked dead (`failureAccrual`, dispatched on
/// `kind`). Each kind but `none` takes a `backoff`: how long a dead
/// endpoint stays dead before one probe request (default jittered
/// 5 000 → 300 000 ms).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all_fields = "camelCase")]
pub enum FailureAccrualConfig {
    /// `io.l5d.consecutiveFailures`: dead after `failures` failures in a
    /// row.
    #[serde(rename = "io.l5d.consecutiveFailures")]
    ConsecutiveFailures {
        /// `failures` (default 5, at least 1).
        failures: u32,
        /// `backoff`.
        backoff: BackoffConfig,
    },
    /// `io.l5d.successRate`: dead when the success rate, an EWMA over
    /// `requests` requests, falls below `success_rate`.
    #[serde(rename = "io.l5d.successRate")]
    SuccessRate {
        /// `successRate` (required, in (0, 1]).
        success_rate: f64,
        /// `requests` (required, at least 1).
        requests: u32,
        /// `backoff`.
        backoff: BackoffConfig,
    },
    /// `io.l5d.successRateWindowed`: dead when the success rate over the
    /// last `window` falls below `success_rate`.
    #[serde(rename = "io.l5d.successRateWindowed")]
    SuccessRateWindowed {
        /// `successRate` (required, in (0, 1]).
        success_rate: f64,
        /// `window` in seconds (required, at least 1).
        #[serde(serialize_with = "as_secs")]
        window: Duration,
        /// `backoff`.
        backoff: BackoffConfig,
    },
    /// `none`: endpoints are never marked dead.
    #[serde(rename = "none")]
    Disabled,
}

impl FailureAccrualConfig {
    /// Linkerd's backoff when a policy has no `backoff`: 5 s to 300 s,
    /// jittered. (Linkerd uses Finagle's equal jitter here and decorrelated
    /// jitter for `kind: jittered`; Strait has one jittered backoff.)
    pub fn default_backoff() -> BackoffConfig {
        BackoffConfig::Jittered {
            min: Duration::from_millis(5_000),
            max: Duration::from_millis(300_000),
        }
    }
}

impl Default for FailureAccrualConfig {
    /// Linkerd's default: 5 consecutive failures, jittered 5 s → 300 s.
    fn default() -> Self {
        FailureAccrualConfig::ConsecutiveFailures {
            failures: 5,
            backoff: FailureAccrualConfig::default_backoff(),
        }
    }
}

/// A backoff (`backoff`, dispatched on `kind`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind")]
pub enum BackoffConfig {
    /// `constant`: the same pause every time.
    #[serde(rename = "constant")]
    Constant {
        /// The pause (`ms`, default 0).
        #[serde(rename = "ms", serialize_with = "as_millis")]
        delay: Duration,
    },
    /// `jittered`: decorrelated jitter between `min` and `max`.
    #[serde(rename = "jittered")]
    Jittered {
        /// Smallest pause (`minMs`, required, at least 1).
        #[serde(rename = "minMs", serialize_with = "as_millis")]
        min: Duration,
        /// Largest pause (`maxMs`, required, at least `minMs`).
        #[serde(rename = "maxMs", serialize_with = "as_millis")]
        max: Duration,
    },
}

impl Default for BackoffConfig {
    /// Constant 0 ms, Linkerd's retry backoff.
    fn default() -> Self {
        BackoffConfig::Constant {
            delay: Duration::ZERO,
        }
    }
}

/// A retry budget (`requeueBudget`, `retries.budget`): retries allowed as
/// `percent_can_retry` of the requests of the last `ttl`, plus
/// `min_retries_per_sec`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetConfig {
    /// The window (`ttlSecs`, default 10, 1 to 60).
    #[serde(rename = "ttlSecs", serialize_with = "as_secs")]
    pub ttl: Duration,
    /// Retries always allowed per second (`minRetriesPerSec`, default 10).
    pub min_retries_per_sec: u32,
    /// Retries allowed per request (`percentCanRetry`, default 0.2, 0 to
    /// 1000).
    pub percent_can_retry: f64,
}

impl Default for BudgetConfig {
    /// Linkerd's default budget, as the router defines it
    /// ([`BudgetParams::LINKERD_DEFAULT`]).
    fn default() -> Self {
        let d = BudgetParams::LINKERD_DEFAULT;
        BudgetConfig {
            ttl: d.ttl,
            min_retries_per_sec: d.min_per_sec,
            percent_can_retry: d.percent_can_retry,
        }
    }
}

/// The per-endpoint connection pool (`hostConnectionPool`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolConfig {
    /// Connections kept open even when idle (`minSize`, default 0).
    pub min_size: u32,
    /// Most connections (`maxSize`, default unbounded; at least 1 and at
    /// least `minSize`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u32>,
    /// Idle connections above `minSize` close after this (`idleTimeMs`,
    /// default never).
    #[serde(
        rename = "idleTimeMs",
        serialize_with = "opt_as_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub idle_time: Option<Duration>,
    /// Requests that may wait for a connection (`maxWaiters`, default
    /// unbounded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_waiters: Option<u32>,
}

impl PoolConfig {
    fn is_default(&self) -> bool {
        *self == PoolConfig::default()
    }
}

// ----------------------------------------------------------- service

/// Per-logical-name service settings (`service`, Linkerd 1's "Service
/// Configuration" docs),
/// dispatched on `kind`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind")]
pub enum ServiceConfig {
    /// `io.l5d.global` (the default): one set of parameters, written
    /// directly in the `service` block, for every service.
    #[serde(rename = "io.l5d.global")]
    Global(ServiceParams),
    /// `io.l5d.static`: `configs`, a list of `{prefix, …params}` matched
    /// against service names such as `/svc/foo`; matching items apply in
    /// order over the defaults, so later matches win key by key.
    #[serde(rename = "io.l5d.static")]
    Static {
        /// The prefixed parameter sets, in the order written.
        configs: Vec<ServicePrefixConfig>,
    },
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig::Global(ServiceParams::default())
    }
}

impl ServiceConfig {
    /// The parameters for the service (logical) name `service`, such as
    /// `/svc/foo`, of an http router: the global parameters, or the
    /// defaults with every matching static item applied in order.
    pub fn params_for(&self, service: &Path) -> ServiceParams {
        self.params_for_protocol(Protocol::Http, service)
    }

    /// [`ServiceConfig::params_for`] for a router of `protocol` (whose
    /// defaults differ: see [`ServiceParams::default_for`]).
    pub fn params_for_protocol(&self, protocol: Protocol, service: &Path) -> ServiceParams {
        match self {
            ServiceConfig::Global(params) => params.clone(),
            ServiceConfig::Static { configs } => {
                let mut params = ServiceParams::default_for(protocol);
                for c in configs.iter().filter(|c| c.prefix.matches(service)) {
                    c.params.apply_to(&mut params);
                }
                params
            }
        }
    }
}

/// One `io.l5d.static` service item: a prefix and the keys it sets.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServicePrefixConfig {
    /// Service names this item applies to (`prefix`, required), such as
    /// `/svc/foo`; a Linkerd path matcher (`*` matches any one element,
    /// `{name}` captures), printed as written.
    #[serde(serialize_with = "matcher_show")]
    pub prefix: PathMatcher,
    /// The keys written in this item.
    #[serde(flatten)]
    pub params: ServiceParamsPatch,
}

/// A service's parameters, every default filled in.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceParams {
    /// What is a failure and what may be retried (`responseClassifier`,
    /// default `io.l5d.http.nonRetryable5XX`, on h2
    /// `io.l5d.h2.nonRetryable5XX`).
    pub response_classifier: ClassifierKind,
    /// Retry budget and backoff (`retries`).
    pub retries: RetriesConfig,
    /// Timeout of the whole request, retries included (`totalTimeoutMs`,
    /// default none).
    #[serde(
        rename = "totalTimeoutMs",
        serialize_with = "opt_as_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub total_timeout: Option<Duration>,
    /// What is kept of a request for a retry (`retryBufferSize`, h2
    /// routers only: default `requestBytes` 16 383; `None` on http).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_buffer_size: Option<RetryBufferConfig>,
}

impl ServiceParams {
    /// The defaults of a service of a `protocol` router.
    pub fn default_for(protocol: Protocol) -> Self {
        match protocol {
            Protocol::Http => ServiceParams::default(),
            Protocol::H2 => ServiceParams {
                response_classifier: ClassifierKind::H2NonRetryable5XX,
                retry_buffer_size: Some(RetryBufferConfig::default()),
                ..ServiceParams::default()
            },
        }
    }
}

/// An h2 service's `retryBufferSize` (Linkerd's `responseBytes` is
/// refused: Strait never holds a response back to classify it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryBufferConfig {
    /// The request body kept for a retry; a longer one is not retried
    /// (`requestBytes`, default 16 383).
    pub request_bytes: u64,
}

impl Default for RetryBufferConfig {
    fn default() -> Self {
        RetryBufferConfig {
            request_bytes: strait_router::policy::DEFAULT_REQUEST_BUFFER_BYTES,
        }
    }
}

/// Retries of one service (`retries`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RetriesConfig {
    /// `budget` (default `ttlSecs` 10, `minRetriesPerSec` 10,
    /// `percentCanRetry` 0.2), per service.
    pub budget: BudgetConfig,
    /// Pause before each retry (`backoff`, default constant 0 ms).
    pub backoff: BackoffConfig,
}

/// The service keys one block sets: `None` for a key not written.
/// `retries.budget` and `retries.backoff` apply separately (each is one
/// Finagle stack parameter in Linkerd); other blocks are whole values.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceParamsPatch {
    /// `responseClassifier`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_classifier: Option<ClassifierKind>,
    /// `retries`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<RetriesPatch>,
    /// `totalTimeoutMs`.
    #[serde(
        rename = "totalTimeoutMs",
        serialize_with = "opt_as_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub total_timeout: Option<Duration>,
    /// `retryBufferSize` (h2), a whole block.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_buffer_size: Option<RetryBufferConfig>,
}

impl ServiceParamsPatch {
    /// Overwrites in `params` every key this patch sets.
    pub fn apply_to(&self, params: &mut ServiceParams) {
        if let Some(b) = self.retry_buffer_size {
            params.retry_buffer_size = Some(b);
        }
        if let Some(c) = self.response_classifier {
            params.response_classifier = c;
        }
        if let Some(r) = &self.retries {
            if let Some(b) = &r.budget {
                params.retries.budget = b.clone();
            }
            if let Some(b) = &r.backoff {
                params.retries.backoff = b.clone();
            }
        }
        if let Some(t) = self.total_timeout {
            params.total_timeout = Some(t);
        }
    }
}

/// The `retries` keys one block sets.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RetriesPatch {
    /// `budget`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetConfig>,
    /// `backoff`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff: Option<BackoffConfig>,
}

/// A response classifier (`responseClassifier: {kind: …}`): an http
/// router takes the `io.l5d.http.*` kinds, an h2 router the `io.l5d.h2.*`
/// ones, as in Linkerd. Every 5XX kind treats 5xx (and errors) as failures;
/// they differ in which methods may be retried. The gRPC kinds classify on
/// `grpc-status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all_fields = "camelCase")]
pub enum ClassifierKind {
    /// `io.l5d.http.nonRetryable5XX` (the default): never retried.
    #[default]
    #[serde(rename = "io.l5d.http.nonRetryable5XX")]
    NonRetryable5XX,
    /// `io.l5d.http.retryableRead5XX`: GET, HEAD, OPTIONS, TRACE retried.
    #[serde(rename = "io.l5d.http.retryableRead5XX")]
    RetryableRead5XX,
    /// `io.l5d.http.retryableIdempotent5XX`: … and PUT, DELETE.
    #[serde(rename = "io.l5d.http.retryableIdempotent5XX")]
    RetryableIdempotent5XX,
    /// `io.l5d.http.retryableAll5XX`: any method retried.
    #[serde(rename = "io.l5d.http.retryableAll5XX")]
    RetryableAll5XX,
    /// `io.l5d.http.allSuccessful`: every response is a success.
    #[serde(rename = "io.l5d.http.allSuccessful")]
    AllSuccessful,
    /// `io.l5d.h2.nonRetryable5XX` (the h2 default).
    #[serde(rename = "io.l5d.h2.nonRetryable5XX")]
    H2NonRetryable5XX,
    /// `io.l5d.h2.retryableRead5XX`.
    #[serde(rename = "io.l5d.h2.retryableRead5XX")]
    H2RetryableRead5XX,
    /// `io.l5d.h2.retryableIdempotent5XX`.
    #[serde(rename = "io.l5d.h2.retryableIdempotent5XX")]
    H2RetryableIdempotent5XX,
    /// `io.l5d.h2.retryableAll5XX`.
    #[serde(rename = "io.l5d.h2.retryableAll5XX")]
    H2RetryableAll5XX,
    /// `io.l5d.h2.allSuccessful`.
    #[serde(rename = "io.l5d.h2.allSuccessful")]
    H2AllSuccessful,
    /// `io.l5d.h2.grpc.default`: `UNAVAILABLE` (14) is retried.
    #[serde(rename = "io.l5d.h2.grpc.default")]
    GrpcDefault {
        /// `successStatusCodes` (default `[0]`; must list 0).
        success_status_codes: GrpcCodeSet,
    },
    /// `io.l5d.h2.grpc.compliant`: 14, a refused stream and HTTP 429,
    /// 502, 503, 504 are retried (as documented; Linkerd 1.7.5 behaved as
    /// `grpc.default`).
    #[serde(rename = "io.l5d.h2.grpc.compliant")]
    GrpcCompliant {
        /// `successStatusCodes`.
        success_status_codes: GrpcCodeSet,
    },
    /// `io.l5d.h2.grpc.alwaysRetryable`: every failure is retried.
    #[serde(rename = "io.l5d.h2.grpc.alwaysRetryable")]
    GrpcAlwaysRetryable {
        /// `successStatusCodes`.
        success_status_codes: GrpcCodeSet,
    },
    /// `io.l5d.h2.grpc.neverRetryable`: no failure is retried.
    #[serde(rename = "io.l5d.h2.grpc.neverRetryable")]
    GrpcNeverRetryable {
        /// `successStatusCodes`.
        success_status_codes: GrpcCodeSet,
    },
    /// `io.l5d.h2.grpc.retryableStatusCodes`: the listed codes are retried.
    #[serde(rename = "io.l5d.h2.grpc.retryableStatusCodes")]
    GrpcRetryableStatusCodes {
        /// `successStatusCodes`.
        success_status_codes: GrpcCodeSet,
        /// `retryableStatusCodes` (required).
        retryable_status_codes: GrpcCodeSet,
    },
}

impl ClassifierKind {
    /// Every http kind, in the order of Linkerd's docs.
    pub const ALL: [ClassifierKind; 5] = [
        ClassifierKind::NonRetryable5XX,
        ClassifierKind::RetryableRead5XX,
        ClassifierKind::RetryableIdempotent5XX,
        ClassifierKind::RetryableAll5XX,
        ClassifierKind::AllSuccessful,
    ];

    /// Every h2 kind without options, in the order of Linkerd's docs.
    pub const H2_ALL: [ClassifierKind; 5] = [
        ClassifierKind::H2NonRetryable5XX,
        ClassifierKind::H2RetryableRead5XX,
        ClassifierKind::H2RetryableIdempotent5XX,
        ClassifierKind::H2RetryableAll5XX,
        ClassifierKind::H2AllSuccessful,
    ];

    /// The gRPC kinds' names.
    pub const GRPC_NAMES: [&'static str; 5] = [
        "io.l5d.h2.grpc.default",
        "io.l5d.h2.grpc.compliant",
        "io.l5d.h2.grpc.alwaysRetryable",
        "io.l5d.h2.grpc.neverRetryable",
        "io.l5d.h2.grpc.retryableStatusCodes",
    ];

    /// The kind as written in the config.
    pub fn name(self) -> &'static str {
        match self {
            ClassifierKind::NonRetryable5XX => "io.l5d.http.nonRetryable5XX",
            ClassifierKind::RetryableRead5XX => "io.l5d.http.retryableRead5XX",
            ClassifierKind::RetryableIdempotent5XX => "io.l5d.http.retryableIdempotent5XX",
            ClassifierKind::RetryableAll5XX => "io.l5d.http.retryableAll5XX",
            ClassifierKind::AllSuccessful => "io.l5d.http.allSuccessful",
            ClassifierKind::H2NonRetryable5XX => "io.l5d.h2.nonRetryable5XX",
            ClassifierKind::H2RetryableRead5XX => "io.l5d.h2.retryableRead5XX",
            ClassifierKind::H2RetryableIdempotent5XX => "io.l5d.h2.retryableIdempotent5XX",
            ClassifierKind::H2RetryableAll5XX => "io.l5d.h2.retryableAll5XX",
            ClassifierKind::H2AllSuccessful => "io.l5d.h2.allSuccessful",
            ClassifierKind::GrpcDefault { .. } => Self::GRPC_NAMES[0],
            ClassifierKind::GrpcCompliant { .. } => Self::GRPC_NAMES[1],
            ClassifierKind::GrpcAlwaysRetryable { .. } => Self::GRPC_NAMES[2],
            ClassifierKind::GrpcNeverRetryable { .. } => Self::GRPC_NAMES[3],
            ClassifierKind::GrpcRetryableStatusCodes { .. } => Self::GRPC_NAMES[4],
        }
    }
}

/// A set of gRPC status codes (0 to 16), printed as a sorted list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrpcCodeSet(u32);

impl GrpcCodeSet {
    /// The largest gRPC status code (`UNAUTHENTICATED`).
    pub const MAX_CODE: u32 = 16;

    /// The set of `codes` (codes above [`Self::MAX_CODE`] are left out;
    /// the reader refuses them).
    pub fn of(codes: &[u32]) -> GrpcCodeSet {
        GrpcCodeSet(
            codes
                .iter()
                .filter(|c| **c <= Self::MAX_CODE)
                .fold(0, |set, c| set | (1 << c)),
        )
    }

    /// Whether `code` is in the set.
    pub fn contains(self, code: u32) -> bool {
        code <= Self::MAX_CODE && self.0 & (1 << code) != 0
    }

    /// The codes, ascending.
    pub fn codes(self) -> Vec<u32> {
        (0..=Self::MAX_CODE).filter(|c| self.contains(*c)).collect()
    }
}

impl Serialize for GrpcCodeSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.codes())
    }
}

// ------------------------------------------------------------ namers

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
    /// `io.l5d.dnssrv`: DNS SRV records, polled.
    #[serde(rename = "io.l5d.dnssrv")]
    DnsSrv(DnsSrvNamerConfig),
    /// `io.l5d.rewrite`: matching paths become other paths.
    #[serde(rename = "io.l5d.rewrite")]
    Rewrite(RewriteNamerConfig),
}

impl NamerConfig {
    /// The configured `prefix` (without `/#`).
    pub fn prefix(&self) -> &Path {
        match self {
            NamerConfig::Fs(c) => &c.prefix,
            NamerConfig::Consul(c) => &c.prefix,
            NamerConfig::DnsSrv(c) => &c.prefix,
            NamerConfig::Rewrite(c) => &c.prefix,
        }
    }

    /// The configured `transformers`, in order.
    pub fn transformers(&self) -> &[TransformerConfig] {
        match self {
            NamerConfig::Fs(c) => &c.transformers,
            NamerConfig::Consul(c) => &c.transformers,
            NamerConfig::DnsSrv(c) => &c.transformers,
            NamerConfig::Rewrite(c) => &c.transformers,
        }
    }

    /// The namer's kind as written in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            NamerConfig::Fs(_) => "io.l5d.fs",
            NamerConfig::Consul(_) => "io.l5d.consul",
            NamerConfig::DnsSrv(_) => "io.l5d.dnssrv",
            NamerConfig::Rewrite(_) => "io.l5d.rewrite",
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
    /// Applied in order to the namer's bound answers (`transformers`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transformers: Vec<TransformerConfig>,
}

/// `io.l5d.rewrite` settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RewriteNamerConfig {
    /// Names live under `/#` ++ this (`prefix`, required).
    #[serde(serialize_with = "path_show")]
    pub prefix: Path,
    /// Matched against the path below the prefix (`pattern`, required).
    #[serde(serialize_with = "matcher_show")]
    pub pattern: PathMatcher,
    /// The path a match becomes, `{capture}`s substituted (`name`,
    /// required).
    pub name: String,
    /// Applied in order to the namer's bound answers (`transformers`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transformers: Vec<TransformerConfig>,
}

/// One transformer (`transformers` items; see
/// [`strait_naming::transform`]).
#[derive(Clone, Debug, PartialEq)]
pub struct TransformerConfig {
    /// The kind and its parameter (`kind`, `port`, `host`, `path`).
    pub kind: TransformerKind,
    /// `prefix`: the bound ids get `/%` ++ this instead of the kind's
    /// default.
    pub prefix: Option<Path>,
}

impl Serialize for TransformerConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("kind", self.kind.name())?;
        match &self.kind {
            TransformerKind::Port(p) => m.serialize_entry("port", p)?,
            TransformerKind::SpecificHost(h) => m.serialize_entry("host", &h.to_string())?,
            TransformerKind::Replace(p) | TransformerKind::Const(p) => {
                m.serialize_entry("path", &p.show())?;
            }
            TransformerKind::Localhost => {}
        }
        if let Some(p) = &self.prefix {
            m.serialize_entry("prefix", &p.show())?;
        }
        m.end()
    }
}

/// `io.l5d.dnssrv` settings (Linkerd 1's experimental DNS SRV namer).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsSrvNamerConfig {
    /// Names live under `/#` ++ this (`prefix`, default `/io.l5d.dnssrv`).
    #[serde(serialize_with = "path_show")]
    pub prefix: Path,
    /// How often each SRV name is asked again (`refreshIntervalSeconds`,
    /// default 5).
    #[serde(rename = "refreshIntervalSeconds", serialize_with = "as_secs")]
    pub refresh_interval: Duration,
    /// The DNS servers to ask, in order (`dnsHosts`, default none: the
    /// system resolver). Written as `ip`, `ip:port` or `[ipv6]:port`; the
    /// port (default 53) is a Strait extension.
    pub dns_hosts: Vec<SocketAddr>,
    /// Applied in order to the namer's bound answers (`transformers`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transformers: Vec<TransformerConfig>,
    /// `experimental: true`, which Linkerd 1 (and so Strait) requires of
    /// this namer; shown in `/config.json`, so that it reads back.
    pub experimental: Experimental,
}

/// The `experimental: true` an experimental plugin must carry: a config
/// without it is refused, so the value is always `true`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Experimental;

impl Serialize for Experimental {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(true)
    }
}

/// `io.l5d.consul` settings (Linkerd 1's Consul namer parameters).
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
    /// At most this many names are watched at once (`maxWatches`, a Strait
    /// extension, default 100): Host headers come from clients, and each
    /// watch holds one long-poll connection to the agent, which accepts 200
    /// per client address by default.
    pub max_watches: u32,
    /// A watch nobody has used for this long is stopped
    /// (`watchIdleTtlSecs`, a Strait extension, default 60).
    #[serde(rename = "watchIdleTtlSecs", serialize_with = "as_secs")]
    pub watch_idle_ttl: Duration,
    /// HTTPS to the agent (`tls`, a client `tls` block without `{var}`s;
    /// its `commonName` defaults to `host`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Box<ClientTlsConfig>>,
    /// Applied in order to the namer's bound answers (`transformers`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transformers: Vec<TransformerConfig>,
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
    /// `io.l5d.recentRequests`: the last sampled requests, on the admin's
    /// `/requests` (and `/requests.json`).
    #[serde(rename = "io.l5d.recentRequests")]
    RecentRequests {
        /// `sampleRate` (required, 0 to 1).
        #[serde(rename = "sampleRate")]
        sample_rate: f64,
        /// `capacity` (default 10): how many are kept.
        capacity: u32,
    },
    /// `io.l5d.tracelog`: a log line per sampled request, on the logger
    /// `io.l5d.tracelog`.
    #[serde(rename = "io.l5d.tracelog")]
    TraceLog {
        /// `sampleRate` (default 1.0, clamped to 0 to 1).
        #[serde(rename = "sampleRate")]
        sample_rate: f64,
        /// `level` (default `INFO`), upper case.
        level: String,
    },
    /// `io.l5d.statsd` (experimental in Linkerd): metrics sent to a StatsD
    /// server over UDP.
    #[serde(rename = "io.l5d.statsd")]
    Statsd {
        /// `prefix` (default `linkerd`).
        prefix: String,
        /// `hostname` (default `127.0.0.1`).
        hostname: String,
        /// `port` (default 8125).
        port: u16,
        /// `gaugeIntervalMs` (default 10000): how often metrics are sent.
        #[serde(rename = "gaugeIntervalMs")]
        gauge_interval_ms: u64,
        /// `sampleRate` (default 0.01): the fraction of latency samples
        /// sent as timers.
        #[serde(rename = "sampleRate")]
        sample_rate: f64,
    },
    /// `io.l5d.influxdb`: metrics in InfluxDB line protocol on the admin's
    /// `/admin/metrics/influxdb`.
    #[serde(rename = "io.l5d.influxdb")]
    InfluxDb,
}

impl TelemeterConfig {
    /// The admin path the telemeter serves, if it serves one.
    pub fn admin_path(&self) -> Option<&str> {
        match self {
            TelemeterConfig::Prometheus { path, .. } => Some(path),
            TelemeterConfig::RecentRequests { .. } => Some("/requests"),
            TelemeterConfig::InfluxDb => Some("/admin/metrics/influxdb"),
            TelemeterConfig::TraceLog { .. } | TelemeterConfig::Statsd { .. } => None,
        }
    }
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

fn opt_as_millis<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => as_millis(d, s),
        None => s.serialize_none(),
    }
}

fn matcher_show<S: Serializer>(p: &PathMatcher, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.pattern())
}

fn display_list<S: Serializer, T: std::fmt::Display>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(ToString::to_string))
}

fn opt_display_list<S: Serializer, T: std::fmt::Display>(
    v: &Option<Vec<T>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => display_list(v, s),
        None => s.serialize_none(),
    }
}

fn dtab_show<S: Serializer>(d: &Dtab, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&d.show())
}

fn path_show<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.show())
}

//! A router's settings and a server's: what the daemon lowers
//! `linkerd.yaml` into, and nothing else.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use strait_dtab::{Dtab, Path};
use strait_naming::stored::DtabInterpreter;

use crate::binding::BindingLimits;
use crate::clients::ClientNetworks;
use crate::guard::OverrideGuard;
use crate::identify::Identifier;
use crate::policy::Policies;

/// What a router speaks on its servers and to its clients (Linkerd keeps
/// the two protocols apart: an `http` router's clients speak HTTP/1.1, an
/// `h2` router's HTTP/2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// `protocol: http`: HTTP/1.x.
    #[default]
    Http1,
    /// `protocol: h2`: HTTP/2 (h2c with prior knowledge, or TLS with ALPN
    /// `h2`), gRPC among it.
    H2,
}

/// Linkerd's HTTP/2 settings of an `h2` router's servers and clients
/// (`None`: hyper's default, which is Linkerd's unless said otherwise).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct H2Settings {
    /// `initialStreamWindowBytes`: `SETTINGS_INITIAL_WINDOW_SIZE`.
    pub initial_stream_window: Option<u32>,
    /// `maxFrameBytes`: `SETTINGS_MAX_FRAME_SIZE`.
    pub max_frame: Option<u32>,
    /// `headerTableBytes`: `SETTINGS_HEADER_TABLE_SIZE`.
    pub header_table: Option<u32>,
    /// `maxHeaderListBytes`: `SETTINGS_MAX_HEADER_LIST_SIZE`.
    pub max_header_list: Option<u32>,
    /// `maxConcurrentStreamsPerConnection` (servers only; Linkerd's
    /// default 1000): advertised, and streams beyond are refused.
    pub max_concurrent_streams: Option<u32>,
}

/// A router's settings, from `linkerd.yaml`'s `routers[]`.
#[derive(Clone, Debug)]
pub struct RouterParams {
    /// `protocol`.
    pub protocol: Protocol,
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
    /// `bindingLimits`: what binding one name, and a request's local dtab,
    /// may cost.
    pub binding_limits: BindingLimits,
    /// Most bindings kept (`bindingCache.paths`, and `trees` and `bounds`:
    /// each binding holds its bound tree and bound names).
    pub cache_capacity: usize,
    /// Most clients kept (`bindingCache.clients`).
    pub client_capacity: usize,
    /// Idle bindings, services and clients expire after this.
    pub idle_ttl: Duration,
    /// `maxHeadersKB`: the request's header block (names, values and
    /// separators), exactly; also the `l5d-err` cap.
    pub max_headers_bytes: usize,
    /// `maxInitialLineKB`: the request line, exactly.
    pub max_initial_line_bytes: usize,
    /// `maxErrResponseKB`.
    pub max_err_bytes: usize,
    /// `maxCallDepth` (the `Via` loop guard).
    pub max_call_depth: u32,
    /// `httpAccessLog`: one line per request forwarded to a backend.
    pub access_log: Option<crate::accesslog::AccessLog>,
    /// `client` and `service` policies, by name.
    pub policies: Policies,
    /// `interpreter`: one with a stored dtab (`io.l5d.fs`,
    /// `io.l5d.consul.interpreter`) puts it in front of `dtab`: bindings
    /// use **stored ++ dtab ++ l5d-ctx-dtab ++ l5d-dtab**, and every cached
    /// binding is stale once the stored dtab changes. `None` is `default`.
    pub interpreter: Option<Arc<dyn DtabInterpreter>>,
    /// `io.l5d.recentRequests` and `io.l5d.tracelog`: the telemeters that
    /// see sampled requests (shared by the configuration's routers).
    pub telemeters: Option<Arc<crate::recent::RequestTelemeters>>,
}

/// Per-server settings that change how a request is handled.
#[derive(Clone, Debug)]
pub struct ServerParams {
    /// `ip/port`, the server's metrics scope.
    pub label: String,
    /// `clearContext`.
    pub clear_context: bool,
    /// `dtabOverride` (a Strait key): `Some` when the server honours
    /// per-request dtab overrides (`l5d-dtab`, `l5d-ctx-dtab`), with what a
    /// request bound under one may reach; `None` (the default) strips and
    /// ignores those headers.
    pub dtab_override: Option<Arc<OverrideGuard>>,
    /// `addForwardedHeader`.
    pub add_forwarded: bool,
    /// `clientNetworks` (a Strait key): the source networks whose
    /// connections are served; any other connection is closed as soon as
    /// it is accepted.
    pub client_networks: Arc<ClientNetworks>,
    /// The local address the server listens on.
    pub local: SocketAddr,
    /// Timeouts and limits for its clients.
    pub limits: ServerLimits,
    /// HTTP/2 settings (an `h2` router's servers only).
    pub h2: H2Settings,
}

/// What a server allows its clients: Strait's defaults are nginx's and
/// HAProxy's kind, so that no client can hold a connection, a backend or
/// memory for ever.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerLimits {
    /// `requestHeaderTimeoutMs`: a request head must arrive within this
    /// (default 30 s); the connection closes otherwise.
    pub header_timeout: Duration,
    /// `requestBodyIdleTimeoutMs`: a request body may pause this long
    /// between bytes (default 60 s); 408 otherwise.
    pub body_idle_timeout: Duration,
    /// `maxRequestBodyKB`: the largest request body (default none); 413
    /// beyond.
    pub max_body_bytes: Option<u64>,
    /// `maxHeaderCount`: the most request headers (default 500); 431
    /// beyond.
    pub max_header_count: usize,
    /// `upgradeIdleTimeoutMs`: an upgraded connection (a WebSocket after a
    /// 101) may carry no byte either way for this long (default one hour);
    /// both sides are closed after.
    pub upgrade_idle_timeout: Duration,
    /// `responseSendTimeoutMs`: a response may wait this long for the
    /// client to take its next byte (default 60 s, nginx's
    /// `send_timeout`); the connection closes after (HTTP/1 servers).
    pub send_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_secs(60),
            max_body_bytes: None,
            max_header_count: 500,
            upgrade_idle_timeout: Duration::from_secs(3600),
            send_timeout: Duration::from_secs(60),
        }
    }
}

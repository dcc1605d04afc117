//! The `linkerd.yaml` schema: the walk from [`Node`] to [`Config`], then
//! Linkerd's cross-field checks.
//!
//! One function per block, each reading its keys with a [`MapReader`] in
//! the order of Linkerd 1's config docs. Keys Linkerd 1 has and Strait does not
//! implement yet are refused by name, never ignored; a later issue that
//! implements one replaces its name in a `not_implemented` list with a
//! getter.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use strait_dtab::{Dtab, Path};
use strait_naming::dnssrv::{DEFAULT_REFRESH_INTERVAL, parse_dns_host};
use strait_naming::pathmatch::PathMatcher;
use strait_naming::transform::TransformerKind;
use strait_router::accesslog::{FileOptions, Format as AccessLogFormat, RollPolicy};
use strait_router::clients::Network;
use strait_router::guard::InetRule;

use super::policy;
use super::read::{
    Ctx, MapReader, boolean, dtab, file_path, integer, ip, items, list, name_path, non_empty,
    number, one_of, port, positive_number, string, u32_any, u32_positive, u64_any, u64_positive,
};
use super::tls;
use super::tree::{Node, Pos, Value, child};
use super::types::AccessLogOptions;
use super::types::{
    AdminConfig, AdminSecurityConfig, BindingCacheConfig, BindingLimitsConfig, Config,
    ConsistencyMode, ConsulConfig, DnsSrvNamerConfig, Experimental, ForwardedConfig,
    ForwardedLabeler, FsNamerConfig, HealthStatus, IdentifierConfig, LOOPBACK, NamerConfig,
    Protocol, RewriteNamerConfig, RouterConfig, ServerConfig, TagWeight, TelemeterConfig,
    TransformerConfig, UsageConfig,
};
use super::types::{
    DEFAULT_MAX_CONCURRENT_STREAMS, DEFAULT_MAX_ERR_RESPONSE_KB, DEFAULT_MAX_HEADER_COUNT,
    DEFAULT_MAX_HEADERS_KB, DEFAULT_MAX_INITIAL_LINE_KB, DEFAULT_RESPONSE_SEND_TIMEOUT,
    DEFAULT_UPGRADE_IDLE_TIMEOUT, H2EndpointConfig, ServiceConfig, ServiceParams,
};

/// Where a router's parts were written, for the cross-field checks.
struct RouterSite {
    path: String,
    pos: Pos,
    label_pos: Pos,
    /// The servers' key paths and positions, in order, and whether each
    /// read without error (a defaulted bad port must not "conflict").
    servers: Vec<(String, Pos, bool)>,
    /// Whether the label read without error.
    label_clean: bool,
    /// Where `servers` was written, if it was, and how many items it has.
    servers_pos: Option<Pos>,
    servers_written: usize,
}

/// Reads the whole document. Always returns a value (defaults stand in for
/// bad parts); the caller decides by `cx.errors` whether it is valid.
pub(crate) fn config(cx: &mut Ctx<'_>, root: &Node) -> Option<Config> {
    let mut r = MapReader::new(cx, root, "")?;
    let admin = match r.get("admin") {
        Some(n) => admin(cx, n, "admin"),
        None => AdminConfig::default(),
    };

    let mut routers = Vec::new();
    let mut sites = Vec::new();
    match r.entry("routers") {
        None => cx.error(
            r.pos(),
            "routers",
            "missing required key 'routers'; a config needs at least one router",
        ),
        Some((_, n)) if n.is_null() || matches!(&n.value, Value::Seq(v) if v.is_empty()) => {
            cx.error(
                n.pos,
                "routers",
                "no routers specified; a config needs at least one router",
            );
        }
        Some((_, n)) => {
            for (node, path) in items(cx, n, "routers", false).unwrap_or_default() {
                if let Some((router, site)) = router(cx, node, &path) {
                    routers.push(router);
                    sites.push(site);
                }
            }
        }
    }

    let mut namers = Vec::new();
    if let Some(n) = r.get("namers") {
        for (node, path) in items(cx, n, "namers", false).unwrap_or_default() {
            namers.extend(namer(cx, node, &path));
        }
    }

    let mut telemetry = Vec::new();
    let mut telemeter_sites = Vec::new();
    if let Some(n) = r.get("telemetry") {
        for (node, path) in items(cx, n, "telemetry", false).unwrap_or_default() {
            if let Some(t) = telemeter(cx, node, &path) {
                telemetry.push(t);
                telemeter_sites.push((path, node.pos));
            }
        }
    }
    let usage = r.opt(cx, "usage", usage);
    r.finish(cx);

    check_labels(cx, &routers, &sites);
    check_servers(cx, &routers, &sites);
    check_addresses(cx, &admin, &routers, &sites);
    check_telemeter_paths(cx, &telemetry, &telemeter_sites);

    Some(Config {
        admin,
        routers,
        namers,
        telemetry,
        usage,
    })
}

fn not_implemented_kind(cx: &mut Ctx<'_>, node: &Node, path: &str, what: &str, kind: &str) {
    cx.error(
        node.pos,
        path,
        format!("{what} `{kind}` is a Linkerd 1 feature Strait does not implement yet"),
    );
}

pub(super) fn unknown_kind(
    cx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    what: &str,
    kind: &str,
    known: &[&str],
) {
    cx.error(
        node.pos,
        path,
        format!(
            "unknown {what} kind '{kind}'; known kinds: {}",
            known.join(", ")
        ),
    );
}

/// Reads `kind` (required) from a plugin block.
pub(super) fn kind(cx: &mut Ctx<'_>, r: &mut MapReader<'_>) -> Option<(String, Node)> {
    let node = r.get("kind").cloned();
    let kind = r.req(cx, "kind", non_empty)?;
    node.map(|n| (kind, n))
}

// ---------------------------------------------------------------- admin

fn admin(cx: &mut Ctx<'_>, node: &Node, path: &str) -> AdminConfig {
    let d = AdminConfig::default();
    let Some(mut r) = MapReader::new(cx, node, path) else {
        return d;
    };
    let ip_pos = r.get("ip").map(|n| n.pos);
    let admin = AdminConfig {
        ip: r.or(cx, "ip", ip, d.ip),
        port: r.or(cx, "port", port, d.port),
        shutdown_grace: r
            .opt(cx, "shutdownGraceMs", u64_any)
            .map_or(d.shutdown_grace, Duration::from_millis),
        security: r.or(cx, "security", admin_security, d.security),
        token_file: r.opt(cx, "tokenFile", file_path),
        tls: r.opt(cx, "tls", tls::server_tls),
    };
    r.not_implemented(
        cx,
        &["socketOptions", "httpIdentifierPort", "workerThreads"],
    );
    r.finish(cx);
    if !admin.ip.is_loopback() {
        let pos = ip_pos.unwrap_or(node.pos);
        let control = if admin.token_file.is_some() {
            "control endpoints need the admin.tokenFile token"
        } else {
            "without admin.tokenFile its control endpoints (/admin/shutdown, /admin/reload) are \
             refused"
        };
        cx.warn(
            pos,
            &format!("{path}.ip"),
            format!(
                "the admin listens off loopback ({}): anyone who can reach {}:{} reads metrics, \
                 config and routing state; {control}. Prefer 127.0.0.1",
                admin.ip, admin.ip, admin.port
            ),
        );
    }
    admin
}

/// `admin.security`.
fn admin_security(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<AdminSecurityConfig> {
    let d = AdminSecurityConfig::default();
    let mut r = MapReader::new(cx, node, path)?;
    let s = AdminSecurityConfig {
        ui_enabled: r.or(cx, "uiEnabled", boolean, d.ui_enabled),
        control_enabled: r.or(cx, "controlEnabled", boolean, d.control_enabled),
        diagnostics_enabled: r.or(cx, "diagnosticsEnabled", boolean, d.diagnostics_enabled),
        path_whitelist: r
            .opt(cx, "pathWhitelist", |cx, n, p| list(cx, n, p, path_regex))
            .unwrap_or_default(),
        path_blacklist: r
            .opt(cx, "pathBlacklist", |cx, n, p| list(cx, n, p, path_regex))
            .unwrap_or_default(),
    };
    r.finish(cx);
    Some(s)
}

/// A regex over a whole admin path.
fn path_regex(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<String> {
    let text = string(cx, node, path)?;
    match regex::Regex::new(&format!("^(?:{text})$")) {
        Ok(_) => Some(text),
        Err(e) => {
            cx.error(node.pos, path, format!("invalid regex '{text}': {e}"));
            None
        }
    }
}

// -------------------------------------------------------------- routers

/// Linkerd 1's protocols Strait does not route.
const OTHER_PROTOCOLS: &[&str] = &["thrift", "mux", "thriftmux"];

/// The router keys of Linkerd's http router that its h2 router lacks
/// (`httpAccessLog*` are refused on their own, with a pointer to
/// `h2AccessLog`).
const HTTP1_ROUTER_KEYS: &[&str] = &[
    "maxHeadersKB",
    "maxInitialLineKB",
    "maxErrResponseKB",
    "maxRequestKB",
    "maxResponseKB",
    "maxChunkKB",
    "streamAfterContentLengthKB",
    "streamingEnabled",
    "compressionLevel",
];

/// The router keys of Linkerd's h2 router that its http router lacks.
const H2_ROUTER_KEYS: &[&str] = &[
    "h2AccessLog",
    "h2AccessLogRollPolicy",
    "h2AccessLogAppend",
    "h2AccessLogRotateCount",
    "h2AccessLogFormat",
];

/// The message for a key of the other protocol's routers.
pub(super) fn http1_only(key: &str) -> String {
    format!("unknown key '{key}' on an h2 router (HTTP/1 routers only)")
}

/// The message for a key of the other protocol's routers.
pub(super) fn h2_only(key: &str) -> String {
    format!("unknown key '{key}' on an http router (h2 routers only)")
}

/// The access log's options: Linkerd's `…RollPolicy` (TwitterServer's
/// `Policy.parse`, its message on a bad one), `…Append`, `…RotateCount`,
/// and Strait's `…Format`; `http…` keys on an http router, `h2…` on h2.
/// Without the log itself they have no effect (a warning, as Linkerd
/// ignores them).
fn access_log_options(
    cx: &mut Ctx<'_>,
    r: &mut MapReader<'_>,
    protocol: Protocol,
) -> AccessLogOptions {
    let h2 = protocol == Protocol::H2;
    let [log, roll, append, rotate, format] = if h2 {
        [
            "h2AccessLog",
            "h2AccessLogRollPolicy",
            "h2AccessLogAppend",
            "h2AccessLogRotateCount",
            "h2AccessLogFormat",
        ]
    } else {
        [
            "httpAccessLog",
            "httpAccessLogRollPolicy",
            "httpAccessLogAppend",
            "httpAccessLogRotateCount",
            "httpAccessLogFormat",
        ]
    };
    let defaults = FileOptions::default();
    let options = AccessLogOptions {
        shown: r.get(log).is_some(),
        h2,
        file: FileOptions {
            roll: r.or(cx, roll, roll_policy, defaults.roll),
            append: r.or(cx, append, boolean, defaults.append),
            rotate_count: r
                .opt(cx, rotate, |cx, n, p| {
                    integer(cx, n, p, i128::from(i32::MIN), i128::from(i32::MAX))
                })
                .and_then(|n| i64::try_from(n).ok())
                .unwrap_or(defaults.rotate_count),
        },
        format: r.or(cx, format, access_log_format, AccessLogFormat::default()),
    };
    if !options.shown {
        for key in [roll, append, rotate, format] {
            if let Some((k, _)) = r.entry(key).filter(|(_, v)| !v.is_null()) {
                let pos = k.pos;
                cx.warn(
                    pos,
                    &r.path_of(key),
                    format!("`{key}` has no effect without `{log}`"),
                );
            }
        }
    }
    options
}

/// `httpAccessLogRollPolicy`: `never`, `hourly`, `daily`, `weekly(n)`,
/// `sighup` or a size such as `100.megabytes`.
fn roll_policy(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<RollPolicy> {
    let text = string(cx, node, path)?;
    match RollPolicy::parse(&text) {
        Ok(p) => Some(p),
        Err(e) => {
            cx.error(node.pos, path, e);
            None
        }
    }
}

/// Strait's `httpAccessLogFormat`: `linkerd` or `json`.
fn access_log_format(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<AccessLogFormat> {
    let text = string(cx, node, path)?;
    let f = AccessLogFormat::parse(&text);
    if f.is_none() {
        cx.error(
            node.pos,
            path,
            format!("expected linkerd or json, found '{text}' (Strait's own key)"),
        );
    }
    f
}

fn router(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<(RouterConfig, RouterSite)> {
    let mut r = MapReader::new(cx, node, path)?;
    let protocol_node = r.get("protocol").cloned();
    let name = r.req(cx, "protocol", non_empty)?;
    let protocol = match name.as_str() {
        "http" => Protocol::Http,
        "h2" => Protocol::H2,
        other => {
            let pos = protocol_node.map_or(r.pos(), |n| n.pos);
            let message = if OTHER_PROTOCOLS.contains(&other) {
                format!(
                    "protocol `{other}` is a Linkerd 1 feature Strait does not implement yet; \
                     Strait routes `http` (HTTP/1.x) and `h2` (HTTP/2, gRPC) only"
                )
            } else {
                format!(
                    "unknown protocol '{other}'; Linkerd 1's protocols are http, h2, thrift, mux"
                )
            };
            // The other keys depend on the protocol: do not guess.
            cx.error(pos, &r.path_of("protocol"), message);
            return None;
        }
    };

    let label_pos = r.get("label").map_or(r.pos(), |n| n.pos);
    let before = cx.errors.len();
    let label = r.or(cx, "label", non_empty, protocol.name().to_owned());
    let label_clean = cx.errors.len() == before;
    let dtab = r.or(cx, "dtab", dtab, Dtab::empty());
    let dst_prefix = r.or(cx, "dstPrefix", name_path, Path::utf8(&["svc"]));
    let identifiers = match r.get("identifier") {
        Some(n) => identifier_list(cx, n, &r.path_of("identifier"), protocol),
        None => vec![IdentifierConfig::default_for(protocol)],
    };

    let mut servers = Vec::new();
    let mut server_sites = Vec::new();
    let servers_pos = r
        .entry("servers")
        .map(|(k, v)| if v.is_null() { k.pos } else { v.pos });
    let mut servers_written = 0;
    if let Some(n) = r.get("servers") {
        let written = items(cx, n, &r.path_of("servers"), false).unwrap_or_default();
        servers_written = written.len();
        for (node, path) in written {
            let before = cx.errors.len();
            if let Some(server) = server(cx, node, &path, protocol) {
                servers.push(server);
                server_sites.push((path, node.pos, cx.errors.len() == before));
            }
        }
    }

    let bc = BindingCacheConfig::default();
    let router = RouterConfig {
        protocol,
        label,
        dtab,
        dst_prefix,
        identifiers,
        servers,
        binding_timeout: r
            .opt(cx, "bindingTimeoutMs", u64_any)
            .map_or(Duration::from_millis(10_000), Duration::from_millis),
        binding_cache: r.or(cx, "bindingCache", binding_cache, bc),
        binding_limits: r.or(
            cx,
            "bindingLimits",
            binding_limits,
            BindingLimitsConfig::default(),
        ),
        client: r
            .get("client")
            .map(|n| policy::client(cx, n, &r.path_of("client"), protocol))
            .unwrap_or_default(),
        service: match r.get("service") {
            Some(n) => policy::service(cx, n, &r.path_of("service"), protocol),
            None => ServiceConfig::Global(ServiceParams::default_for(protocol)),
        },
        max_headers_kb: (protocol == Protocol::Http)
            .then(|| r.or(cx, "maxHeadersKB", u32_positive, DEFAULT_MAX_HEADERS_KB)),
        max_initial_line_kb: (protocol == Protocol::Http).then(|| {
            r.or(
                cx,
                "maxInitialLineKB",
                u32_positive,
                DEFAULT_MAX_INITIAL_LINE_KB,
            )
        }),
        max_err_response_kb: (protocol == Protocol::Http)
            .then(|| r.or(cx, "maxErrResponseKB", u32_any, DEFAULT_MAX_ERR_RESPONSE_KB)),
        http_access_log: match protocol {
            Protocol::Http => r.opt(cx, "httpAccessLog", file_path),
            Protocol::H2 => None,
        },
        h2_access_log: match protocol {
            Protocol::Http => None,
            Protocol::H2 => r.opt(cx, "h2AccessLog", file_path),
        },
        access_log_options: access_log_options(cx, &mut r, protocol),
        inet_allow: r
            .opt(cx, "inetAllow", |cx, n, p| list(cx, n, p, inet_rule))
            .unwrap_or_else(InetRule::loopback),
        originator: r.or(cx, "originator", boolean, false),
        interpreter: r
            .opt(cx, "interpreter", super::interpreter::interpreter)
            .unwrap_or_default(),
    };
    // Every Linkerd router accepts it; only `thriftmux` (which Strait does
    // not have) needs it.
    let _experimental = r.opt(cx, "experimental", boolean);

    match protocol {
        Protocol::Http => {
            r.refuse(cx, &["maxRequestKB", "maxResponseKB"], |key| {
                format!("`{key}` was removed in Linkerd 1.7 (bodies are streamed); remove the key")
            });
            r.not_implemented(
                cx,
                &[
                    "streamAfterContentLengthKB",
                    "streamingEnabled",
                    "compressionLevel",
                    "maxChunkKB",
                ],
            );
            r.refuse(cx, H2_ROUTER_KEYS, h2_only);
        }
        Protocol::H2 => {
            r.refuse(cx, HTTP1_ROUTER_KEYS, http1_only);
            r.refuse(
                cx,
                &[
                    "httpAccessLog",
                    "httpAccessLogRollPolicy",
                    "httpAccessLogAppend",
                    "httpAccessLogRotateCount",
                    "httpAccessLogFormat",
                ],
                |key| {
                    format!(
                        "unknown key '{key}' on an h2 router (HTTP/1 routers only); an h2 \
                         router's access log is `{}`",
                        key.replacen("http", "h2", 1)
                    )
                },
            );
        }
    }
    r.not_implemented(cx, &["announcers", "tracePropagator", "loggers"]);
    r.finish(cx);

    let site = RouterSite {
        path: path.to_owned(),
        pos: node.pos,
        label_pos,
        label_clean,
        servers: server_sites,
        servers_pos,
        servers_written,
    };
    Some((router, site))
}

/// An `inetAllow` item: an IP or CIDR block, optionally with a port.
fn inet_rule(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<InetRule> {
    let text = string(cx, node, path)?;
    match InetRule::parse(&text) {
        Ok(r) => Some(r),
        Err(e) => {
            cx.error(node.pos, path, e);
            None
        }
    }
}

fn binding_cache(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<BindingCacheConfig> {
    let d = BindingCacheConfig::default();
    let mut r = MapReader::new(cx, node, path)?;
    let bc = BindingCacheConfig {
        paths: r.or(cx, "paths", u32_positive, d.paths),
        trees: r.or(cx, "trees", u32_positive, d.trees),
        bounds: r.or(cx, "bounds", u32_positive, d.bounds),
        clients: r.or(cx, "clients", u32_positive, d.clients),
        idle_ttl: r
            .opt(cx, "idleTtlSecs", u64_any)
            .map_or(d.idle_ttl, Duration::from_secs),
    };
    r.finish(cx);
    Some(bc)
}

fn binding_limits(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<BindingLimitsConfig> {
    let d = BindingLimitsConfig::default();
    let mut r = MapReader::new(cx, node, path)?;
    let bl = BindingLimitsConfig {
        max_nodes: r.or(cx, "maxNodes", u32_positive, d.max_nodes),
        max_leaves: r.or(cx, "maxLeaves", u32_positive, d.max_leaves),
        max_dtab_header_bytes: r.or(
            cx,
            "maxDtabHeaderBytes",
            u32_positive,
            d.max_dtab_header_bytes,
        ),
    };
    r.finish(cx);
    Some(bl)
}

// ---------------------------------------------------------- identifiers

const IDENTIFIER_KINDS: &[&str] = &[
    "io.l5d.header.token",
    "io.l5d.methodAndHost",
    "io.l5d.path",
    "io.l5d.header",
    "io.l5d.static",
];

const OTHER_IDENTIFIER_KINDS: &[&str] = &[
    "io.l5d.ingress",
    "io.l5d.k8s.istio",
    "io.l5d.k8s.istio-ingress",
    "io.l5d.header.path",
];

/// The identifier kinds of Linkerd's h2 router that Strait has.
const H2_IDENTIFIER_KINDS: &[&str] = &["io.l5d.header.token", "io.l5d.header.path"];

/// Linkerd's h2 identifier kinds Strait does not have.
const OTHER_H2_IDENTIFIER_KINDS: &[&str] = &[
    "io.l5d.ingress",
    "io.l5d.k8s.istio",
    "io.l5d.k8s.istio-ingress",
];

/// `identifier:` is one object or a list of them.
fn identifier_list(
    cx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    protocol: Protocol,
) -> Vec<IdentifierConfig> {
    if matches!(&node.value, Value::Seq(v) if v.is_empty()) {
        cx.error(node.pos, path, "needs at least one identifier");
    }
    let found: Vec<IdentifierConfig> = items(cx, node, path, true)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(n, p)| match protocol {
            Protocol::Http => identifier(cx, n, &p),
            Protocol::H2 => h2_identifier(cx, n, &p),
        })
        .collect();
    if found.is_empty() {
        vec![IdentifierConfig::default_for(protocol)]
    } else {
        found
    }
}

/// An h2 router's identifier.
fn h2_identifier(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<IdentifierConfig> {
    let mut r = MapReader::new(cx, node, path)?;
    let (kind, kind_node) = kind(cx, &mut r)?;
    let kind_path = r.path_of("kind");
    let id = match kind.as_str() {
        "io.l5d.header.token" => IdentifierConfig::HeaderToken {
            header: r.or(cx, "header", h2_field, ":authority".to_owned()),
        },
        "io.l5d.header.path" => IdentifierConfig::HeaderPath {
            header: r.or(cx, "header", h2_field, ":path".to_owned()),
            segments: r.opt(cx, "segments", path_segments),
        },
        k if OTHER_H2_IDENTIFIER_KINDS.contains(&k) => {
            not_implemented_kind(cx, &kind_node, &kind_path, "identifier", k);
            return None;
        }
        k if IDENTIFIER_KINDS.contains(&k) => {
            let hint = if k == "io.l5d.header" {
                "; Linkerd has no h2 `io.l5d.header`: use `io.l5d.header.path` with \
                 `header: l5d-name`"
            } else {
                ""
            };
            cx.error(
                kind_node.pos,
                &kind_path,
                format!(
                    "identifier `{k}` is for http routers; an h2 router's identifiers are {}{hint}",
                    H2_IDENTIFIER_KINDS.join(", ")
                ),
            );
            return None;
        }
        k => {
            unknown_kind(
                cx,
                &kind_node,
                &kind_path,
                "identifier",
                k,
                H2_IDENTIFIER_KINDS,
            );
            return None;
        }
    };
    r.finish(cx);
    Some(id)
}

/// An h2 identifier's `header`: a header or pseudo-header name (matched
/// lower-cased, as h2 names are).
fn h2_field(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<String> {
    let name = non_empty(cx, node, path)?;
    match strait_router::identify::Field::parse(&name) {
        Ok(_) => Some(name),
        Err(e) => {
            cx.error(node.pos, path, e);
            None
        }
    }
}

/// `io.l5d.header.path`'s `segments`: at least 1 (Linkerd's words).
fn path_segments(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<u32> {
    let n = integer(cx, node, path, i128::from(i64::MIN), i128::from(u32::MAX))?;
    if n < 1 {
        cx.error(node.pos, path, "`segments` must be >= 1");
        return None;
    }
    u32::try_from(n).ok()
}

fn identifier(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<IdentifierConfig> {
    let mut r = MapReader::new(cx, node, path)?;
    let (kind, kind_node) = kind(cx, &mut r)?;
    let kind_path = r.path_of("kind");
    let id = match kind.as_str() {
        "io.l5d.header.token" => Some(IdentifierConfig::HeaderToken {
            header: r.or(cx, "header", header_name, "Host".to_owned()),
        }),
        "io.l5d.methodAndHost" => Some(IdentifierConfig::MethodAndHost {
            http_uri_in_dst: r.or(cx, "httpUriInDst", boolean, false),
        }),
        "io.l5d.path" => Some(IdentifierConfig::Path {
            segments: r.or(cx, "segments", u32_positive, 1),
            consume: r.or(cx, "consume", boolean, false),
        }),
        "io.l5d.header" => Some(IdentifierConfig::Header {
            header: r.or(cx, "header", header_name, "l5d-name".to_owned()),
        }),
        "io.l5d.static" => r
            .req(cx, "path", name_path)
            .map(|path| IdentifierConfig::Static { path }),
        k if OTHER_IDENTIFIER_KINDS.contains(&k) => {
            not_implemented_kind(cx, &kind_node, &kind_path, "identifier", k);
            return None;
        }
        k => {
            unknown_kind(
                cx,
                &kind_node,
                &kind_path,
                "identifier",
                k,
                IDENTIFIER_KINDS,
            );
            return None;
        }
    };
    r.finish(cx);
    id
}

/// An HTTP header name (an RFC 9110 token).
fn header_name(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<String> {
    let name = non_empty(cx, node, path)?;
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.chars().all(tchar) {
        Some(name)
    } else {
        cx.error(
            node.pos,
            path,
            format!("'{name}' is not a valid HTTP header name"),
        );
        None
    }
}

// -------------------------------------------------------------- servers

fn server(cx: &mut Ctx<'_>, node: &Node, path: &str, protocol: Protocol) -> Option<ServerConfig> {
    let mut r = MapReader::new(cx, node, path)?;
    let server = ServerConfig {
        ip: r.or(cx, "ip", ip, LOOPBACK),
        port: r.or(cx, "port", port, protocol.default_port()),
        clear_context: r.or(cx, "clearContext", boolean, false),
        dtab_override: r.or(cx, "dtabOverride", boolean, false),
        max_concurrent_requests: r.opt(cx, "maxConcurrentRequests", u32_positive),
        add_forwarded_header: r.opt(cx, "addForwardedHeader", forwarded),
        max_call_depth: r.or(cx, "maxCallDepth", u32_positive, 1000),
        request_header_timeout: r
            .opt(cx, "requestHeaderTimeoutMs", u64_positive)
            .map_or(Duration::from_secs(30), Duration::from_millis),
        request_body_idle_timeout: r
            .opt(cx, "requestBodyIdleTimeoutMs", u64_positive)
            .map_or(Duration::from_secs(60), Duration::from_millis),
        max_request_body_kb: r.opt(cx, "maxRequestBodyKB", u64_positive),
        max_header_count: (protocol == Protocol::Http)
            .then(|| r.or(cx, "maxHeaderCount", u32_positive, DEFAULT_MAX_HEADER_COUNT)),
        upgrade_idle_timeout: (protocol == Protocol::Http).then(|| {
            r.opt(cx, "upgradeIdleTimeoutMs", u64_positive)
                .map_or(DEFAULT_UPGRADE_IDLE_TIMEOUT, Duration::from_millis)
        }),
        response_send_timeout: (protocol == Protocol::Http).then(|| {
            r.opt(cx, "responseSendTimeoutMs", u64_positive)
                .map_or(DEFAULT_RESPONSE_SEND_TIMEOUT, Duration::from_millis)
        }),
        h2: match protocol {
            Protocol::Http => H2EndpointConfig::default(),
            Protocol::H2 => h2_endpoint(cx, &mut r),
        },
        max_concurrent_streams_per_connection: (protocol == Protocol::H2).then(|| {
            r.or(
                cx,
                "maxConcurrentStreamsPerConnection",
                u32_positive,
                DEFAULT_MAX_CONCURRENT_STREAMS,
            )
        }),
        client_networks: r.opt(cx, "clientNetworks", client_networks),
        tls: r.opt(cx, "tls", tls::server_tls),
    };
    r.not_implemented(cx, &["socketOptions", "serverSession", "announce"]);
    match protocol {
        Protocol::Http => {
            r.not_implemented(cx, &["timestampHeader"]);
            r.refuse(cx, H2_ENDPOINT_KEYS, h2_only);
            r.refuse(cx, &["maxConcurrentStreamsPerConnection"], h2_only);
        }
        Protocol::H2 => {
            r.refuse(
                cx,
                &[
                    "upgradeIdleTimeoutMs",
                    "responseSendTimeoutMs",
                    "maxHeaderCount",
                    "timestampHeader",
                ],
                http1_only,
            );
        }
    }
    r.finish(cx);
    Some(server)
}

/// The HTTP/2 settings keys servers and clients of an h2 router share.
pub(super) const H2_ENDPOINT_KEYS: &[&str] = &[
    "initialStreamWindowBytes",
    "maxFrameBytes",
    "headerTableBytes",
    "maxHeaderListBytes",
    "windowUpdateRatio",
];

/// An h2 server's or client's HTTP/2 settings, checked against HTTP/2's
/// ranges (RFC 9113 §6.5.2); `windowUpdateRatio` is refused.
pub(super) fn h2_endpoint(cx: &mut Ctx<'_>, r: &mut MapReader<'_>) -> H2EndpointConfig {
    let c = H2EndpointConfig {
        initial_stream_window_bytes: r.opt(cx, "initialStreamWindowBytes", stream_window),
        max_frame_bytes: r.opt(cx, "maxFrameBytes", frame_size),
        header_table_bytes: r.opt(cx, "headerTableBytes", u32_any),
        max_header_list_bytes: r.opt(cx, "maxHeaderListBytes", u32_positive),
    };
    r.refuse(cx, &["windowUpdateRatio"], |_| {
        "Strait cannot honour windowUpdateRatio: hyper's HTTP/2 sends WINDOW_UPDATE on its own \
         schedule; remove the key"
            .to_owned()
    });
    c
}

/// `initialStreamWindowBytes`: 1 to 2^31-1.
fn stream_window(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<u32> {
    let n = integer(cx, node, path, i128::from(i64::MIN), i128::from(u64::MAX))?;
    if !(1..=0x7fff_ffff).contains(&n) {
        cx.error(
            node.pos,
            path,
            format!(
                "initialStreamWindowBytes must be from 1 to 2147483647 (2^31-1, HTTP/2's largest \
                 flow-control window, RFC 9113 §6.9.1; 0 would stall every body), found {n}"
            ),
        );
        return None;
    }
    u32::try_from(n).ok()
}

/// `maxFrameBytes`: 16 384 to 16 777 215.
fn frame_size(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<u32> {
    let n = integer(cx, node, path, i128::from(i64::MIN), i128::from(u64::MAX))?;
    if !(16_384..=16_777_215).contains(&n) {
        cx.error(
            node.pos,
            path,
            format!(
                "maxFrameBytes must be from 16384 to 16777215 (HTTP/2's SETTINGS_MAX_FRAME_SIZE \
                 range, RFC 9113 §6.5.2), found {n}"
            ),
        );
        return None;
    }
    u32::try_from(n).ok()
}

/// `clientNetworks`: a non-empty list of networks (an empty one would
/// refuse every client, which is never what was meant).
fn client_networks(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<Vec<Network>> {
    if matches!(&node.value, Value::Seq(v) if v.is_empty()) {
        cx.error(
            node.pos,
            path,
            "an empty clientNetworks would refuse every connection; list the networks to \
             serve (0.0.0.0/0 and ::/0 for any), or remove the key for the default (loopback, \
             this host's addresses and its private attached subnets)",
        );
        return None;
    }
    list(cx, node, path, |cx, n, p| {
        let text = string(cx, n, p)?;
        match Network::parse(&text) {
            Ok(net) => Some(net),
            Err(e) => {
                cx.error(n.pos, p, e);
                None
            }
        }
    })
}

fn forwarded(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<ForwardedConfig> {
    if let Value::Scalar(s) = &node.value {
        cx.error(
            node.pos,
            path,
            format!(
                "expected a mapping, found '{}'; write `addForwardedHeader: {{}}` to add the \
                 header with the default labels",
                s.text
            ),
        );
        return None;
    }
    let mut r = MapReader::new(cx, node, path)?;
    let f = ForwardedConfig {
        by: r.or(cx, "by", labeler, ForwardedLabeler::RequestRandom),
        for_: r.or(cx, "for", labeler, ForwardedLabeler::RequestRandom),
    };
    r.finish(cx);
    Some(f)
}

const LABELER_KINDS: &[&str] = &[
    "ip",
    "ip:port",
    "connectionRandom",
    "requestRandom",
    "router",
    "static",
];

fn labeler(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<ForwardedLabeler> {
    let mut r = MapReader::new(cx, node, path)?;
    let (kind, kind_node) = kind(cx, &mut r)?;
    let l = match kind.as_str() {
        "ip" => Some(ForwardedLabeler::Ip),
        "ip:port" => Some(ForwardedLabeler::IpPort),
        "connectionRandom" => Some(ForwardedLabeler::ConnectionRandom),
        "requestRandom" => Some(ForwardedLabeler::RequestRandom),
        "router" => Some(ForwardedLabeler::Router),
        "static" => r
            .req(cx, "label", non_empty)
            .map(|label| ForwardedLabeler::Static { label }),
        k => {
            let kind_path = r.path_of("kind");
            unknown_kind(cx, &kind_node, &kind_path, "labeler", k, LABELER_KINDS);
            return None;
        }
    };
    r.finish(cx);
    l
}

// --------------------------------------------------------------- namers

const NAMER_KINDS: &[&str] = &[
    "io.l5d.fs",
    "io.l5d.consul",
    "io.l5d.dnssrv",
    "io.l5d.rewrite",
];

/// The namers Linkerd 1 marks experimental (of those Strait has): they
/// need `experimental: true`, as in Linkerd.
const EXPERIMENTAL_NAMER_KINDS: &[&str] = &["io.l5d.dnssrv"];

const OTHER_NAMER_KINDS: &[&str] = &[
    "io.l5d.k8s",
    "io.l5d.k8s.external",
    "io.l5d.k8s.ns",
    "io.l5d.istio",
    "io.l5d.marathon",
    "io.l5d.zk",
    "io.l5d.zkLeader",
    "io.l5d.serversets",
    "io.l5d.curator",
];

fn namer(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<NamerConfig> {
    let mut r = MapReader::new(cx, node, path)?;
    let (kind, kind_node) = kind(cx, &mut r)?;
    let namer = match kind.as_str() {
        "io.l5d.fs" => {
            let prefix = namer_prefix(cx, &mut r, "io.l5d.fs");
            r.req(cx, "rootDir", file_path).map(|root_dir| {
                NamerConfig::Fs(FsNamerConfig {
                    prefix,
                    root_dir,
                    transformers: Vec::new(),
                })
            })
        }
        "io.l5d.consul" => Some(NamerConfig::Consul(consul(cx, &mut r))),
        "io.l5d.dnssrv" => Some(NamerConfig::DnsSrv(dnssrv(cx, &mut r))),
        "io.l5d.rewrite" => rewrite(cx, &mut r, path).map(NamerConfig::Rewrite),
        k => {
            let kind_path = r.path_of("kind");
            if OTHER_NAMER_KINDS.contains(&k) {
                not_implemented_kind(cx, &kind_node, &kind_path, "namer", k);
            } else {
                unknown_kind(cx, &kind_node, &kind_path, "namer", k, NAMER_KINDS);
            }
            return None;
        }
    };
    // Every Linkerd namer accepts these two.
    let experimental_node = r.get("experimental").cloned();
    let experimental = r.opt(cx, "experimental", boolean);
    if let Some(n) = &namer
        && EXPERIMENTAL_NAMER_KINDS.contains(&n.kind())
        && experimental != Some(true)
        // A value that did not read is reported already.
        && (experimental_node.is_none() || experimental.is_some())
    {
        // Linkerd's `Linker.mkNamers`, word for word: the namer's prefix
        // (`/#` ++ `prefix`) names it.
        let (pos, at) = match &experimental_node {
            Some(e) => (e.pos, r.path_of("experimental")),
            None => (node.pos, path.to_owned()),
        };
        cx.error(
            pos,
            &at,
            format!(
                "The /#{} namer is experimental and must be explicitly enabled by setting the \
                 `experimental' parameter to `true'.",
                n.prefix().show()
            ),
        );
    }
    let transformers = r.opt(cx, "transformers", transformers).unwrap_or_default();
    r.finish(cx);
    namer.map(|mut n| {
        match &mut n {
            NamerConfig::Fs(c) => c.transformers = transformers,
            NamerConfig::Consul(c) => c.transformers = transformers,
            NamerConfig::DnsSrv(c) => c.transformers = transformers,
            NamerConfig::Rewrite(c) => c.transformers = transformers,
        }
        n
    })
}

/// `io.l5d.rewrite`: `prefix`, `pattern` and `name`, all required.
fn rewrite(cx: &mut Ctx<'_>, r: &mut MapReader<'_>, path: &str) -> Option<RewriteNamerConfig> {
    let prefix = if r.get("prefix").is_some() {
        Some(namer_prefix(cx, r, "io.l5d.rewrite"))
    } else {
        cx.error(
            r.pos(),
            &child(path, "prefix"),
            "The 'prefix' property is required for the io.l5d.rewrite namer.",
        );
        None
    };
    let pattern = r.req(cx, "pattern", path_matcher);
    let name = r.req(cx, "name", rewrite_name);
    Some(RewriteNamerConfig {
        prefix: prefix?,
        pattern: pattern?,
        name: name?,
        transformers: Vec::new(),
    })
}

/// A rewrite `pattern`: a path matcher starting with `/`.
fn path_matcher(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<PathMatcher> {
    let text = non_empty(cx, node, path)?;
    if !text.starts_with('/') {
        cx.error(
            node.pos,
            path,
            format!("'{text}' is not a path pattern: it must start with '/'"),
        );
        return None;
    }
    match PathMatcher::new(&text) {
        Ok(m) => Some(m),
        Err(e) => {
            cx.error(node.pos, path, e);
            None
        }
    }
}

/// A rewrite `name`: a path once its `{capture}`s are substituted.
fn rewrite_name(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<String> {
    let text = non_empty(cx, node, path)?;
    let probe = placeholder_captures(&text, "x");
    match Path::read(&probe) {
        Ok(_) => Some(text),
        Err(e) => {
            cx.error(
                node.pos,
                path,
                format!(
                    "'{text}' is not a path (with its {{captures}} filled in): {}",
                    e.message()
                ),
            );
            None
        }
    }
}

/// `text` with every `{name}` replaced by `with`.
fn placeholder_captures(text: &str, with: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        match rest[open..].find('}') {
            Some(close) => {
                out.push_str(&rest[..open]);
                out.push_str(with);
                rest = &rest[open + close + 1..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

// --------------------------------------------------------- transformers

const TRANSFORMER_KINDS: &[&str] = &[
    "io.l5d.localhost",
    "io.l5d.specificHost",
    "io.l5d.port",
    "io.l5d.replace",
    "io.l5d.const",
];

const OTHER_TRANSFORMER_KINDS: &[&str] = &["io.l5d.k8s.daemonset", "io.l5d.k8s.localnode"];

/// A `transformers` list (of a namer, or of a router's `interpreter`),
/// each item checked; bad items are dropped (and recorded).
pub(crate) fn transformers(
    cx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
) -> Option<Vec<TransformerConfig>> {
    list(cx, node, path, transformer)
}

fn transformer(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<TransformerConfig> {
    let mut r = MapReader::new(cx, node, path)?;
    let (kind, kind_node) = kind(cx, &mut r)?;
    let kind = match kind.as_str() {
        "io.l5d.localhost" => Some(TransformerKind::Localhost),
        "io.l5d.specificHost" => r.req(cx, "host", ip).map(TransformerKind::SpecificHost),
        "io.l5d.port" => r
            .req(cx, "port", |cx, n, p| {
                // Port 0 means "any" for a listener; as a destination it is
                // nothing a request could reach.
                integer(cx, n, p, 1, i128::from(u16::MAX)).and_then(|n| u16::try_from(n).ok())
            })
            .map(TransformerKind::Port),
        "io.l5d.replace" => r.req(cx, "path", system_path).map(TransformerKind::Replace),
        "io.l5d.const" => r.req(cx, "path", system_path).map(TransformerKind::Const),
        k => {
            let kind_path = r.path_of("kind");
            if OTHER_TRANSFORMER_KINDS.contains(&k) {
                not_implemented_kind(cx, &kind_node, &kind_path, "transformer", k);
            } else {
                unknown_kind(
                    cx,
                    &kind_node,
                    &kind_path,
                    "transformer",
                    k,
                    TRANSFORMER_KINDS,
                );
            }
            return None;
        }
    };
    let prefix = r.opt(cx, "prefix", transformer_prefix);
    r.finish(cx);
    Some(TransformerConfig {
        kind: kind?,
        prefix,
    })
}

/// The `path` of `io.l5d.replace`/`io.l5d.const`: bound without the dtab
/// and the configured namers (as Linkerd does), so only `/$/…` paths can
/// bind.
fn system_path(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<Path> {
    let p = name_path(cx, node, path)?;
    if p.elems().first().is_none_or(|e| e.as_ref() != b"$") {
        cx.error(
            node.pos,
            path,
            format!(
                "{p} is bound without the dtab or the configured namers, so it must be a \
                 /$/ path such as /$/inet/127.0.0.1/4140"
            ),
        );
        return None;
    }
    Some(p)
}

/// A transformer `prefix`: a non-empty path.
fn transformer_prefix(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<Path> {
    let p = name_path(cx, node, path)?;
    if p.is_empty() {
        cx.error(node.pos, path, "a transformer prefix must not be empty");
        return None;
    }
    Some(p)
}

/// `prefix`: a non-empty path, default `/<kind>`.
fn namer_prefix(cx: &mut Ctx<'_>, r: &mut MapReader<'_>, kind: &str) -> Path {
    let default = Path::utf8(&[kind]);
    let Some(node) = r.get("prefix") else {
        return default;
    };
    let path = r.path_of("prefix");
    match name_path(cx, node, &path) {
        Some(p) if p.is_empty() => {
            cx.error(node.pos, &path, "a namer prefix must not be empty");
            default
        }
        Some(p) => p,
        None => default,
    }
}

fn consul(cx: &mut Ctx<'_>, r: &mut MapReader<'_>) -> ConsulConfig {
    ConsulConfig {
        prefix: namer_prefix(cx, r, "io.l5d.consul"),
        host: r.or(cx, "host", non_empty, "localhost".to_owned()),
        port: r.or(cx, "port", port, 8500),
        include_tag: r.or(cx, "includeTag", boolean, false),
        use_health_check: r.or(cx, "useHealthCheck", boolean, false),
        health_statuses: r
            .opt(cx, "healthStatuses", health_statuses)
            .unwrap_or_else(|| vec![HealthStatus::Passing]),
        token: r.opt(cx, "token", non_empty),
        set_host: r.or(cx, "setHost", boolean, false),
        consistency_mode: r.or(
            cx,
            "consistencyMode",
            consistency_mode,
            ConsistencyMode::Default,
        ),
        fail_fast: r.or(cx, "failFast", boolean, false),
        prefer_service_address: r.or(cx, "preferServiceAddress", boolean, true),
        weights: r
            .opt(cx, "weights", |cx, n, p| list(cx, n, p, tag_weight))
            .unwrap_or_default(),
        transfer_metadata: r.or(cx, "transferMetadata", boolean, false),
        fixed_length_streamed_after_kb: r.or(cx, "fixedLengthStreamedAfterKB", u64_any, 5120),
        max_watches: r.or(cx, "maxWatches", u32_positive, 100),
        watch_idle_ttl: Duration::from_secs(r.or(cx, "watchIdleTtlSecs", u64_positive, 60)),
        tls: r
            .opt(cx, "tls", super::client_tls::consul_tls)
            .map(Box::new),
        transformers: Vec::new(),
    }
}

/// `io.l5d.dnssrv` (Linkerd 1's DNS SRV namer). Like Linkerd 1, Strait
/// wants `experimental: true` for it (checked in [`namer`]).
fn dnssrv(cx: &mut Ctx<'_>, r: &mut MapReader<'_>) -> DnsSrvNamerConfig {
    let default_secs = DEFAULT_REFRESH_INTERVAL.as_secs() as u32;
    DnsSrvNamerConfig {
        prefix: namer_prefix(cx, r, "io.l5d.dnssrv"),
        refresh_interval: Duration::from_secs(u64::from(r.or(
            cx,
            "refreshIntervalSeconds",
            u32_positive,
            default_secs,
        ))),
        dns_hosts: r
            .opt(cx, "dnsHosts", |cx, n, p| list(cx, n, p, dns_host))
            .unwrap_or_default(),
        transformers: Vec::new(),
        experimental: Experimental,
    }
}

/// A `dnsHosts` item: `ip`, `ip:port` or `[ipv6]:port` (port 53 when not
/// written; the port is a Strait extension).
fn dns_host(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<SocketAddr> {
    let text = string(cx, node, path)?;
    match parse_dns_host(&text) {
        Ok(addr) => Some(addr),
        Err(e) => {
            cx.error(node.pos, path, e);
            None
        }
    }
}

fn health_statuses(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<Vec<HealthStatus>> {
    let statuses = list(cx, node, path, |cx, n, p| {
        let s = one_of(cx, n, p, &["passing", "warning", "critical", "maintenance"])?;
        Some(match s {
            "passing" => HealthStatus::Passing,
            "warning" => HealthStatus::Warning,
            "critical" => HealthStatus::Critical,
            _ => HealthStatus::Maintenance,
        })
    })?;
    if statuses.is_empty() && matches!(&node.value, Value::Seq(v) if v.is_empty()) {
        cx.error(
            node.pos,
            path,
            "needs at least one status (an empty list would mark every instance down)",
        );
        return None;
    }
    Some(statuses)
}

pub(super) fn consistency_mode(
    cx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
) -> Option<ConsistencyMode> {
    Some(
        match one_of(cx, node, path, &["default", "stale", "consistent"])? {
            "stale" => ConsistencyMode::Stale,
            "consistent" => ConsistencyMode::Consistent,
            _ => ConsistencyMode::Default,
        },
    )
}

fn tag_weight(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<TagWeight> {
    let mut r = MapReader::new(cx, node, path)?;
    let tag = r.req(cx, "tag", non_empty);
    let weight = r.req(cx, "weight", positive_number);
    r.finish(cx);
    Some(TagWeight {
        tag: tag?,
        weight: weight?,
    })
}

// ------------------------------------------------------------ telemetry

const TELEMETER_KINDS: &[&str] = &[
    "io.l5d.prometheus",
    "io.l5d.recentRequests",
    "io.l5d.tracelog",
    "io.l5d.statsd",
    "io.l5d.influxdb",
];

const OTHER_TELEMETER_KINDS: &[&str] = &["io.l5d.adminMetricsExport", "io.l5d.commonMetrics"];

/// Linkerd's log levels (`io.l5d.tracelog`'s `level`).
pub(crate) const LOG_LEVELS: &[&str] = &[
    "ALL", "CRITICAL", "DEBUG", "ERROR", "FATAL", "INFO", "OFF", "TRACE", "WARNING",
];

fn telemeter(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<TelemeterConfig> {
    let mut r = MapReader::new(cx, node, path)?;
    let (kind, kind_node) = kind(cx, &mut r)?;
    let t = match kind.as_str() {
        "io.l5d.prometheus" => Some(TelemeterConfig::Prometheus {
            path: r.or(
                cx,
                "path",
                admin_path,
                "/admin/metrics/prometheus".to_owned(),
            ),
            prefix: r.or(cx, "prefix", metric_prefix, String::new()),
        }),
        "io.l5d.recentRequests" => {
            let sample_rate = r.req(cx, "sampleRate", unit_rate);
            let capacity = r.or(cx, "capacity", u32_positive, 10);
            sample_rate.map(|sample_rate| TelemeterConfig::RecentRequests {
                sample_rate,
                capacity,
            })
        }
        "io.l5d.tracelog" => Some(TelemeterConfig::TraceLog {
            // Linkerd clamps it.
            sample_rate: r.or(cx, "sampleRate", number, 1.0).clamp(0.0, 1.0),
            level: r.or(cx, "level", log_level, "INFO".to_owned()),
        }),
        "io.l5d.statsd" => Some(TelemeterConfig::Statsd {
            prefix: r.or(cx, "prefix", string, "linkerd".to_owned()),
            hostname: r.or(cx, "hostname", non_empty, "127.0.0.1".to_owned()),
            port: r.or(cx, "port", port, 8125),
            gauge_interval_ms: r.or(cx, "gaugeIntervalMs", u64_positive, 10_000),
            sample_rate: r.or(cx, "sampleRate", unit_rate, 0.01),
        }),
        "io.l5d.influxdb" => Some(TelemeterConfig::InfluxDb),
        "io.l5d.zipkin" => {
            let kind_path = r.path_of("kind");
            cx.error(
                kind_node.pos,
                &kind_path,
                "telemeter `io.l5d.zipkin` is a Linkerd 1 feature Strait does not implement: \
                 Linkerd sends its spans to a Scribe collector (Thrift on port 9410), and \
                 Strait has none to test against; trace context still passes on in \
                 l5d-ctx-trace, B3 and traceparent headers, and io.l5d.tracelog or \
                 io.l5d.recentRequests show sampled requests",
            );
            return None;
        }
        k => {
            let kind_path = r.path_of("kind");
            if OTHER_TELEMETER_KINDS.contains(&k) {
                not_implemented_kind(cx, &kind_node, &kind_path, "telemeter", k);
            } else {
                unknown_kind(cx, &kind_node, &kind_path, "telemeter", k, TELEMETER_KINDS);
            }
            return None;
        }
    };
    if kind == "io.l5d.statsd"
        && let Some(host) = r.get("host")
    {
        cx.error(
            host.pos,
            &r.path_of("host"),
            "io.l5d.statsd has no key 'host' (Linkerd's docs are wrong): the StatsD \
             server's name is `hostname`",
        );
    }
    let experimental_node = r.get("experimental").cloned();
    let experimental = r.opt(cx, "experimental", boolean);
    if kind == "io.l5d.statsd"
        && experimental != Some(true)
        // A value that did not read is reported already.
        && (experimental_node.is_none() || experimental.is_some())
    {
        // Linkerd's `TelemeterConfig` check, word for word.
        let (pos, at) = match &experimental_node {
            Some(e) => (e.pos, r.path_of("experimental")),
            None => (node.pos, path.to_owned()),
        };
        cx.error(
            pos,
            &at,
            "The io.l5d.statsd telemeter is experimental and must be explicitly enabled by \
             setting the `experimental' parameter to `true'.",
        );
    }
    r.finish(cx);
    t
}

/// A sampling rate: Linkerd's `sampleRate must be between 0.0 and 1.0`.
fn unit_rate(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<f64> {
    let n = number(cx, node, path)?;
    if (0.0..=1.0).contains(&n) {
        Some(n)
    } else {
        cx.error(node.pos, path, "sampleRate must be between 0.0 and 1.0");
        None
    }
}

/// A Linkerd log level, any case; kept upper case.
fn log_level(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<String> {
    let s = string(cx, node, path)?;
    let up = s.to_ascii_uppercase();
    if LOG_LEVELS.contains(&up.as_str()) {
        Some(up)
    } else {
        cx.error(
            node.pos,
            path,
            format!(
                "unknown log level '{s}'; known levels: {}",
                LOG_LEVELS.join(", ")
            ),
        );
        None
    }
}

/// An admin server path: starts with `/`.
fn admin_path(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<String> {
    let p = string(cx, node, path)?;
    if p.starts_with('/') && !p.contains(char::is_whitespace) {
        Some(p)
    } else {
        cx.error(
            node.pos,
            path,
            format!("'{p}' is not an admin path; it must start with '/'"),
        );
        None
    }
}

/// A Prometheus metric name prefix: `[a-zA-Z_:][a-zA-Z0-9_:]*` or empty.
fn metric_prefix(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<String> {
    let p = string(cx, node, path)?;
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':';
    let ok_rest = |c: char| ok_first(c) || c.is_ascii_digit();
    let mut chars = p.chars();
    let valid = chars.next().is_none_or(ok_first) && chars.all(ok_rest);
    if valid {
        Some(p)
    } else {
        cx.error(
            node.pos,
            path,
            format!("'{p}' is not a valid Prometheus metric prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)"),
        );
        None
    }
}

fn usage(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<UsageConfig> {
    let mut r = MapReader::new(cx, node, path)?;
    let u = UsageConfig {
        org_id: r.opt(cx, "orgId", string),
        enabled: r.opt(cx, "enabled", boolean),
    };
    r.finish(cx);
    Some(u)
}

// ------------------------------------------------- cross-field checks

/// Linkerd's `ConflictingLabels`: router labels are unique.
fn check_labels(cx: &mut Ctx<'_>, routers: &[RouterConfig], sites: &[RouterSite]) {
    for (i, router) in routers.iter().enumerate() {
        if !sites[i].label_clean {
            continue;
        }
        let same =
            |(j, r): &(usize, &RouterConfig)| sites[*j].label_clean && r.label == router.label;
        if let Some((first, _)) = routers[..i].iter().enumerate().find(same) {
            cx.error(
                sites[i].label_pos,
                &child(&sites[i].path, "label"),
                format!(
                    "router label '{}' is used by {} and {}; give each router a unique `label`",
                    router.label, sites[first].path, sites[i].path
                ),
            );
        }
    }
}

/// Linkerd's `ProtocolInitializer`: every router has a server.
fn check_servers(cx: &mut Ctx<'_>, routers: &[RouterConfig], sites: &[RouterSite]) {
    for (router, site) in routers.iter().zip(sites) {
        if router.servers.is_empty() && site.servers_written == 0 {
            cx.error(
                site.servers_pos.unwrap_or(site.pos),
                &child(&site.path, "servers"),
                format!("router '{}' has no servers", router.label),
            );
        }
    }
}

fn overlaps(a: (IpAddr, u16), b: (IpAddr, u16)) -> bool {
    a.1 != 0 && a.1 == b.1 && (a.0 == b.0 || a.0.is_unspecified() || b.0.is_unspecified())
}

/// Linkerd's `ConflictingPorts`: no two listeners on one address (port 0,
/// an ephemeral port, never clashes). A wildcard address clashes with every
/// address on its port.
fn check_addresses(
    cx: &mut Ctx<'_>,
    admin: &AdminConfig,
    routers: &[RouterConfig],
    sites: &[RouterSite],
) {
    let mut seen: Vec<((IpAddr, u16), String)> =
        vec![((admin.ip, admin.port), "the admin server".to_owned())];
    for (router, site) in routers.iter().zip(sites) {
        for (server, (path, pos, clean)) in router.servers.iter().zip(&site.servers) {
            if !clean {
                continue;
            }
            let addr = (server.ip, server.port);
            if let Some((other, owner)) = seen.iter().find(|(a, _)| overlaps(*a, addr)) {
                cx.error(
                    *pos,
                    path,
                    format!(
                        "server address {} conflicts with {owner} on {}",
                        show_addr(addr),
                        show_addr(*other)
                    ),
                );
            }
            seen.push((addr, path.clone()));
        }
    }
}

fn show_addr((ip, port): (IpAddr, u16)) -> String {
    std::net::SocketAddr::new(ip, port).to_string()
}

/// Two telemeters serving one admin path would shadow each other; one
/// `io.l5d.tracelog` is enough.
fn check_telemeter_paths(cx: &mut Ctx<'_>, telemetry: &[TelemeterConfig], sites: &[(String, Pos)]) {
    for (i, t) in telemetry.iter().enumerate() {
        if let Some(path) = t.admin_path() {
            let first = telemetry[..i]
                .iter()
                .position(|o| o.admin_path() == Some(path));
            if let Some(first) = first {
                cx.error(
                    sites[i].1,
                    &sites[i].0,
                    format!("admin path {path} is also served by {}", sites[first].0),
                );
            }
        }
        if matches!(t, TelemeterConfig::TraceLog { .. }) {
            let first = telemetry[..i]
                .iter()
                .position(|o| matches!(o, TelemeterConfig::TraceLog { .. }));
            if let Some(first) = first {
                cx.error(
                    sites[i].1,
                    &sites[i].0,
                    format!(
                        "a second io.l5d.tracelog telemeter; {} logs sampled requests already",
                        sites[first].0
                    ),
                );
            }
        }
    }
}

//! The router's `interpreter` block: its config type, its reader and its
//! lowering.
//!
//! | kind | Strait |
//! | --- | --- |
//! | `default` | the router dtab, the namers and `/$/` (the default) |
//! | `io.l5d.fs` | `dtabFile` (required): a stored dtab from a watched file |
//! | `io.l5d.consul.interpreter` | a stored dtab from Consul KV `<pathPrefix>/<namespace>` |
//! | `io.l5d.namerd`, `io.l5d.namerd.http`, `io.l5d.mesh` | refused: they need Namerd |
//!
//! Every kind accepts `experimental` and `transformers` (applied, in
//! order, to every name the router binds). The Consul interpreter's key is per `namespace`
//! (default `default`, as Linkerd 1's): routers sharing one namespace share
//! one stored dtab, and a router wanting its own sets `namespace` (its
//! label, say) explicitly.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::read::{Ctx, MapReader, boolean, file_path, non_empty, port};
use super::schema::{consistency_mode, kind, transformers, unknown_kind};
use super::tree::Node;
use super::types::{BackoffConfig, ConsistencyMode, TransformerConfig};

/// A router's `interpreter`: where its stored dtab comes from, and the
/// `transformers` applied to every name it binds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct InterpreterConfig {
    /// `kind` and its keys.
    #[serde(flatten)]
    pub kind: InterpreterKind,
    /// `transformers`, applied in order to the router's bound names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transformers: Vec<TransformerConfig>,
}

/// An `interpreter`'s `kind`, with the keys that kind takes.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(tag = "kind")]
pub enum InterpreterKind {
    /// `default`: no stored dtab.
    #[default]
    #[serde(rename = "default")]
    Default,
    /// `io.l5d.fs`: the stored dtab is a watched file.
    #[serde(rename = "io.l5d.fs")]
    Fs {
        /// `dtabFile` (required): an existing regular file at start.
        #[serde(rename = "dtabFile")]
        dtab_file: PathBuf,
    },
    /// `io.l5d.consul.interpreter`: the stored dtab is a Consul KV value.
    #[serde(rename = "io.l5d.consul.interpreter")]
    Consul(ConsulInterpreterConfig),
}

/// `io.l5d.consul.interpreter`'s keys.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsulInterpreterConfig {
    /// `host` (default `localhost`).
    pub host: String,
    /// `port` (default 8500).
    pub port: u16,
    /// `pathPrefix` (default `/namerd/dtabs`).
    pub path_prefix: String,
    /// `namespace` (default `default`), `[A-Za-z0-9_-]+`.
    pub namespace: String,
    /// `token`, sent as `X-Consul-Token` (redacted in `/config.json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// `datacenter` (default the agent's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datacenter: Option<String>,
    /// `readConsistencyMode` (default `default`).
    pub read_consistency_mode: ConsistencyMode,
    /// `writeConsistencyMode` (accepted; Strait never writes).
    pub write_consistency_mode: ConsistencyMode,
    /// `failFast` (default false).
    pub fail_fast: bool,
    /// `backoff` (default jittered 10 ms to 5 s, the Consul namer's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff: Option<BackoffConfig>,
    /// HTTPS to the agent (`tls`, as the namer's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Box<super::ClientTlsConfig>>,
}

const INTERPRETER_KINDS: &[&str] = &["default", "io.l5d.fs", "io.l5d.consul.interpreter"];

const NAMERD_KINDS: &[&str] = &["io.l5d.namerd", "io.l5d.namerd.http", "io.l5d.mesh"];

/// Reads `interpreter`.
pub(super) fn interpreter(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<InterpreterConfig> {
    let mut r = MapReader::new(cx, node, path)?;
    let (kind, kind_node) = kind(cx, &mut r)?;
    let kind_path = r.path_of("kind");
    let config = match kind.as_str() {
        "default" => Some(InterpreterKind::Default),
        "io.l5d.fs" => r
            .req(cx, "dtabFile", file_path)
            .map(|dtab_file| InterpreterKind::Fs { dtab_file }),
        "io.l5d.consul.interpreter" => Some(InterpreterKind::Consul(consul(cx, &mut r))),
        k if NAMERD_KINDS.contains(&k) => {
            cx.error(
                kind_node.pos,
                &kind_path,
                format!(
                    "interpreter `{k}` needs namerd, not supported: Strait has no Namerd; \
                     use `default`, `io.l5d.fs` or `io.l5d.consul.interpreter`"
                ),
            );
            return None;
        }
        k => {
            unknown_kind(
                cx,
                &kind_node,
                &kind_path,
                "interpreter",
                k,
                INTERPRETER_KINDS,
            );
            return None;
        }
    };
    let _experimental = r.opt(cx, "experimental", boolean);
    let transformers = r.opt(cx, "transformers", transformers).unwrap_or_default();
    r.finish(cx);
    config.map(|kind| InterpreterConfig { kind, transformers })
}

fn consul(cx: &mut Ctx<'_>, r: &mut MapReader<'_>) -> ConsulInterpreterConfig {
    ConsulInterpreterConfig {
        host: r.or(cx, "host", non_empty, "localhost".to_owned()),
        port: r.or(cx, "port", port, 8500),
        path_prefix: r.or(cx, "pathPrefix", path_prefix, "/namerd/dtabs".to_owned()),
        namespace: r.or(cx, "namespace", namespace, "default".to_owned()),
        token: r.opt(cx, "token", non_empty),
        datacenter: r.opt(cx, "datacenter", non_empty),
        read_consistency_mode: r.or(
            cx,
            "readConsistencyMode",
            consistency_mode,
            ConsistencyMode::Default,
        ),
        write_consistency_mode: r.or(
            cx,
            "writeConsistencyMode",
            consistency_mode,
            ConsistencyMode::Default,
        ),
        fail_fast: r.or(cx, "failFast", boolean, false),
        backoff: r.opt(cx, "backoff", super::policy::backoff),
        tls: r
            .opt(cx, "tls", super::client_tls::consul_tls)
            .map(Box::new),
    }
}

fn path_prefix(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<String> {
    let p = non_empty(cx, node, path)?;
    if p.starts_with('/') {
        Some(p)
    } else {
        cx.error(
            node.pos,
            path,
            format!("pathPrefix '{p}' must start with '/'"),
        );
        None
    }
}

fn namespace(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<String> {
    let ns = non_empty(cx, node, path)?;
    if strait_namer_consul::valid_namespace(&ns) {
        Some(ns)
    } else {
        cx.error(
            node.pos,
            path,
            format!("namespace '{ns}' must match [A-Za-z0-9_-]+"),
        );
        None
    }
}

/// The Consul interpreter's settings for `strait-namer-consul`.
pub fn consul_kv_config(
    c: &ConsulInterpreterConfig,
) -> Result<strait_namer_consul::KvConfig, String> {
    use strait_namer_consul::Consistency;
    let mut consul = strait_namer_consul::ConsulConfig {
        host: c.host.clone(),
        port: c.port,
        token: c.token.clone(),
        consistency: match c.read_consistency_mode {
            ConsistencyMode::Default => Consistency::Default,
            ConsistencyMode::Stale => Consistency::Stale,
            ConsistencyMode::Consistent => Consistency::Consistent,
        },
        fail_fast: c.fail_fast,
        tls: super::lower::consul_tls(c.tls.as_deref(), &c.host)?,
        ..strait_namer_consul::ConsulConfig::default()
    };
    match c.backoff {
        Some(BackoffConfig::Constant { delay }) => {
            let d = delay.max(Duration::from_millis(1));
            consul.backoff = (d, d);
        }
        Some(BackoffConfig::Jittered { min, max }) => consul.backoff = (min, max),
        None => {}
    }
    Ok(strait_namer_consul::KvConfig {
        consul,
        path_prefix: c.path_prefix.clone(),
        namespace: c.namespace.clone(),
        datacenter: c.datacenter.clone(),
    })
}

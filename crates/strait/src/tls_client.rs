//! The daemon's side of client TLS expiry: every certificate a client
//! `tls` block reads (a router's `client.tls` and `client.configs[].tls`,
//! its Consul interpreter's `tls`, a Consul namer's `tls`) — the client
//! certificate (`clientAuth.certPath`) and each trusted CA — with a gauge
//! of the seconds to its expiry and an entry in `/admin/tls.json`.
//!
//! Gauges, named like the servers' `tls/expires_in_seconds`, one per
//! certificate (`<cert>` is `client_auth`, or `trust/<n>` for the n-th CA
//! of the block):
//!
//! - `rt/<router>/client_tls/default/<cert>/expires_in_seconds` (the
//!   global `client.tls`), `rt/<router>/client_tls/configs/<i>/<cert>/…`
//!   (`client.configs[i].tls`);
//! - `rt/<router>/interpreter/tls/<cert>/expires_in_seconds`;
//! - `namer/<prefix>/tls/<cert>/expires_in_seconds`.

use std::sync::Arc;

use serde_json::Value;
use strait_router::stats::{Registry, Scope};
use strait_router::tls::CertInfo;
use strait_router::tls_client::TlsClientTemplate;

use crate::config::{ClientConfig, ClientTlsConfig, Config, InterpreterKind, NamerConfig};

/// A certificate a client `tls` block uses, and who uses it.
#[derive(Clone, Debug)]
pub struct ClientCertificate {
    /// Who uses it: `rt/<router>/client_tls/default`,
    /// `rt/<router>/client_tls/configs/<i>`, `rt/<router>/interpreter` or
    /// `namer/<prefix>`.
    pub used_by: String,
    /// The config key of its file, e.g.
    /// `routers[0].client.configs[1].tls.clientAuth.certPath`.
    pub config_key: String,
    /// `clientAuth` (the certificate presented) or `trust` (a CA).
    pub role: &'static str,
    /// The scope of its expiry gauge.
    pub scope: Scope,
    /// The name of its expiry gauge in `scope`.
    pub gauge: String,
    /// What the certificate says.
    pub cert: CertInfo,
}

impl ClientCertificate {
    /// The gauge's full name, as `/admin/metrics.json` shows it.
    fn metric(&self) -> String {
        match &self.scope {
            Scope::Router { router } => format!("rt/{router}/{}", self.gauge),
            Scope::Root(s) => format!("{s}/{}", self.gauge),
            _ => self.gauge.clone(),
        }
    }

    /// Its entry in `/admin/tls.json`.
    pub fn to_json(&self) -> Value {
        let mut v = self.cert.to_json();
        if let Value::Object(m) = &mut v {
            m.insert("usedBy".to_owned(), Value::String(self.used_by.clone()));
            m.insert("role".to_owned(), Value::String(self.role.to_owned()));
            m.insert(
                "configKey".to_owned(),
                Value::String(self.config_key.clone()),
            );
            m.insert("gauge".to_owned(), Value::String(self.metric()));
        }
        v
    }
}

/// Every certificate the client `tls` blocks of `cfg` read, in config
/// order. The files were checked when the config was read; one that no
/// longer loads is left out (and logged).
pub fn client_certificates(cfg: &Config) -> Vec<ClientCertificate> {
    let mut out = Vec::new();
    for (i, rc) in cfg.routers.iter().enumerate() {
        let router = Scope::Router {
            router: rc.label.as_str().into(),
        };
        let rt = format!("rt/{}", rc.label);
        match &rc.client {
            ClientConfig::Global(p) => {
                if let Some(t) = &p.tls {
                    let key = format!("routers[{i}].client.tls");
                    let used_by = format!("{rt}/client_tls/default");
                    block(&mut out, t, &key, &used_by, &router, "client_tls/default/");
                }
            }
            ClientConfig::Static { configs } => {
                for (j, c) in configs.iter().enumerate() {
                    if let Some(t) = &c.params.tls {
                        let key = format!("routers[{i}].client.configs[{j}].tls");
                        let block_name = format!("client_tls/configs/{j}/");
                        let used_by = format!("{rt}/client_tls/configs/{j}");
                        block(&mut out, t, &key, &used_by, &router, &block_name);
                    }
                }
            }
        }
        if let InterpreterKind::Consul(c) = &rc.interpreter.kind
            && let Some(t) = &c.tls
        {
            let key = format!("routers[{i}].interpreter.tls");
            let used_by = format!("{rt}/interpreter");
            block(&mut out, t, &key, &used_by, &router, "interpreter/tls/");
        }
    }
    for (k, n) in cfg.namers.iter().enumerate() {
        if let NamerConfig::Consul(c) = n
            && let Some(t) = &c.tls
        {
            let used_by = format!("namer{}", c.prefix.show());
            let scope = Scope::Root(used_by.as_str().into());
            let key = format!("namers[{k}].tls");
            block(&mut out, t, &key, &used_by, &scope, "tls/");
        }
    }
    out
}

/// Adds the certificates of the block `t` (at `key`) to `out`, their
/// gauges named `<prefix><cert>/expires_in_seconds` in `scope`.
fn block(
    out: &mut Vec<ClientCertificate>,
    t: &ClientTlsConfig,
    key: &str,
    used_by: &str,
    scope: &Scope,
    prefix: &str,
) {
    if !t.enabled {
        return;
    }
    let loaded = match TlsClientTemplate::load(&t.spec()) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(key, error = %e, "client tls: cannot read the certificates for expiry");
            return;
        }
    };
    for c in loaded.certificates() {
        out.push(ClientCertificate {
            used_by: used_by.to_owned(),
            config_key: format!("{key}.{}", c.key),
            role: if c.name == "client_auth" {
                "clientAuth"
            } else {
                "trust"
            },
            scope: scope.clone(),
            gauge: format!("{prefix}{}/expires_in_seconds", c.name),
            cert: c.info.clone(),
        });
    }
}

/// Registers the expiry gauge of each of `certs` (seconds left, computed
/// when the metrics are read) and removes those of `old` no longer
/// among them.
pub fn expiry_gauges(registry: &Registry, certs: &[ClientCertificate], old: &[ClientCertificate]) {
    for o in old {
        if !certs
            .iter()
            .any(|c| c.scope == o.scope && c.gauge == o.gauge)
        {
            registry.remove(&o.scope, &o.gauge);
        }
    }
    for c in certs {
        let cert = c.cert.clone();
        registry.read_fn(
            &c.scope,
            &c.gauge,
            false,
            Arc::new(move || cert.seconds_left()),
        );
    }
}

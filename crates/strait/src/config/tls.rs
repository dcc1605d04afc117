//! The server form of a `tls` block (`routers[].servers[].tls`,
//! `admin.tls`): its keys, and the checks of its files that `strait check`,
//! `strait run` and every reload make.
//!
//! The files are read here too, so a missing file, a key that is not the
//! certificate's or a certificate that does not parse is an error at the
//! key that names it (`routers[0].servers[0].tls.keyPath`), with the path;
//! a certificate expiring within [`EXPIRY_WARNING`] is a warning.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use strait_router::tls::{
    CertInfo, ServerTls, ServerTlsSettings, TlsProtocol, cipher_suite, expiry_warning,
};

use super::read::{Ctx, MapReader, boolean, file_path, list, non_empty};
use super::tree::{Node, Pos};

/// A certificate expiring within this is warned about.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);

/// A server's `tls` block, as written (paths as given).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerTlsConfig {
    /// `certPath` (required): the PEM certificate, leaf first.
    pub cert_path: PathBuf,
    /// `keyPath` (required): its PEM key, PKCS#8, PKCS#1 or SEC1.
    pub key_path: PathBuf,
    /// `intermediateCertsPath`: PEM certificates sent after the leaf.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intermediate_certs_path: Option<PathBuf>,
    /// `caCertPath`: the CAs client certificates must chain to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_cert_path: Option<PathBuf>,
    /// `requireClientAuth` (default false: no client certificate asked).
    pub require_client_auth: bool,
    /// `protocols` (default TLSv1.2 and TLSv1.3).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub protocols: Vec<String>,
    /// `ciphers`: IANA names (default rustls's suites).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ciphers: Vec<String>,
}

impl ServerTlsConfig {
    /// The router's plain settings.
    pub fn settings(&self) -> ServerTlsSettings {
        ServerTlsSettings {
            cert_path: self.cert_path.clone(),
            key_path: self.key_path.clone(),
            intermediate_certs_path: self.intermediate_certs_path.clone(),
            ca_cert_path: self.ca_cert_path.clone(),
            require_client_auth: self.require_client_auth,
            // Checked when read.
            protocols: self
                .protocols
                .iter()
                .filter_map(|p| TlsProtocol::parse(p).ok())
                .collect(),
            ciphers: self.ciphers.clone(),
        }
    }

    /// Reads its files into a server's TLS; the error is `key: message`.
    pub fn load(&self) -> Result<ServerTls, String> {
        ServerTls::load(&self.settings()).map_err(|e| e.to_string())
    }
}

/// Reads a server `tls` block, then its files.
pub(super) fn server_tls(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<ServerTlsConfig> {
    let mut r = MapReader::new(cx, node, path)?;
    // Where each file key was written: its file's errors point there.
    let mut nodes = Vec::new();
    let mut file = |cx: &mut Ctx<'_>, r: &mut MapReader<'_>, key: &'static str| {
        let n = r.get(key)?;
        nodes.push((key, n.pos));
        file_path(cx, n, &r.path_of(key))
    };
    let cert_path = file(cx, &mut r, "certPath");
    let key_path = file(cx, &mut r, "keyPath");
    let intermediate_certs_path = file(cx, &mut r, "intermediateCertsPath");
    let ca_cert_path = file(cx, &mut r, "caCertPath");
    for (key, found) in [("certPath", &cert_path), ("keyPath", &key_path)] {
        if found.is_none() && !nodes.iter().any(|(k, _)| *k == key) {
            cx.error(
                r.pos(),
                &r.path_of(key),
                format!("missing required key '{key}'"),
            );
        }
    }
    let tls = ServerTlsConfig {
        cert_path: cert_path.unwrap_or_default(),
        key_path: key_path.unwrap_or_default(),
        intermediate_certs_path,
        ca_cert_path,
        require_client_auth: r.or(cx, "requireClientAuth", boolean, false),
        protocols: r
            .opt(cx, "protocols", |cx, n, p| list(cx, n, p, protocol))
            .unwrap_or_default(),
        ciphers: r
            .opt(cx, "ciphers", |cx, n, p| list(cx, n, p, cipher))
            .unwrap_or_default(),
    };
    r.refuse(cx, &["enabled"], |_| {
        "`enabled` is not a key of a server's tls (Linkerd's docs list it, its code has \
         no such field): remove the block to serve plaintext"
            .to_owned()
    });
    r.finish(cx);
    let errors = cx.errors.len();
    if tls.require_client_auth && tls.ca_cert_path.is_none() {
        cx.error(
            node.pos,
            &format!("{path}.requireClientAuth"),
            "requireClientAuth: true needs caCertPath, the CAs client certificates must chain \
             to (Strait has no default trust store)",
        );
    }
    if cx.errors.len() > errors
        || tls.cert_path.as_os_str().is_empty()
        || tls.key_path.as_os_str().is_empty()
    {
        return Some(tls);
    }
    let at = |key: &str| {
        nodes
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(node.pos, |(_, p)| *p)
    };
    match ServerTls::load(&tls.settings()) {
        Ok(loaded) => warn_expiry(
            cx,
            at("certPath"),
            &format!("{path}.certPath"),
            loaded.certificate(),
        ),
        Err(e) => cx.error(at(e.key), &format!("{path}.{}", e.key), e.message),
    }
    Some(tls)
}

/// A warning at `path` when `cert` expires within [`EXPIRY_WARNING`] (or
/// has expired); server and client certificates alike.
pub(super) fn warn_expiry(cx: &mut Ctx<'_>, pos: Pos, path: &str, cert: &CertInfo) {
    if let Some(when) = expiry_warning(cert.seconds_left(), EXPIRY_WARNING.as_secs() as i64) {
        cx.warn(
            pos,
            path,
            format!(
                "the certificate in {} ({}) {when}: renew it and reload",
                cert.path.display(),
                cert.subject
            ),
        );
    }
}

fn protocol(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<String> {
    let name = non_empty(cx, node, path)?;
    match TlsProtocol::parse(&name) {
        Ok(_) => Some(name),
        Err(e) => {
            cx.error(node.pos, path, e);
            None
        }
    }
}

fn cipher(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<String> {
    let name = non_empty(cx, node, path)?;
    match cipher_suite(&name) {
        Ok(_) => Some(name),
        Err(e) => {
            cx.error(node.pos, path, e);
            None
        }
    }
}

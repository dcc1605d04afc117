//! A client `tls` block (Linkerd 1's client TLS): `client.tls` and
//! `client.configs[].tls` of a router.
//!
//! Read strictly, with Linkerd's startup checks; then its files are
//! checked as a server's are (exist, parse, the key is the certificate's,
//! a certificate near expiry is warned about: [`super::client_tls_files`]),
//! so `strait check` reports a bad file at its key
//! (`routers[0].client.tls.clientAuth.keyPath: …`). They are loaded again
//! when the config is lowered, at start and on reload.

use std::path::PathBuf;

use serde::Serialize;
use strait_router::tls_client::{ClientAuthSpec, TlsClientSpec, TlsVersion};

use super::read::{Ctx, MapReader, boolean, file_path, list, non_empty, string};
use super::tree::Node;

/// A client `tls` block, as written (defaults filled in).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientTlsConfig {
    /// `enabled` (default true): `false` turns TLS off for the clients
    /// this block covers (a later `configs[]` item over an earlier one).
    pub enabled: bool,
    /// `commonName`: the name the backend's certificate must match, sent
    /// as SNI; `{var}`s are filled from the `configs[].prefix` captures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
    /// `trustCerts`: PEM CA files (Linkerd deprecates it for
    /// `trustCertsBundle`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trust_certs: Vec<PathBuf>,
    /// `trustCertsBundle`: one PEM file of CAs. Without either, Mozilla's
    /// roots (compiled in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_certs_bundle: Option<PathBuf>,
    /// `disableValidation`: accept any certificate.
    pub disable_validation: bool,
    /// `clientAuth`: the certificate Strait presents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<ClientAuthConfig>,
    /// `protocols`: `TLSv1.2`, `TLSv1.3` (default both).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub protocols: Vec<String>,
}

/// `clientAuth`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientAuthConfig {
    /// `certPath`: PEM certificate.
    pub cert_path: PathBuf,
    /// `keyPath`: PEM key, PKCS#8 (Linkerd), PKCS#1 or SEC1.
    pub key_path: PathBuf,
    /// `intermediateCertsPath`: PEM chain sent after the certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intermediate_certs_path: Option<PathBuf>,
}

impl ClientTlsConfig {
    /// The router's form (paths, not contents).
    pub fn spec(&self) -> TlsClientSpec {
        TlsClientSpec {
            common_name: self.common_name.clone(),
            trust_certs: self.trust_certs.clone(),
            trust_certs_bundle: self.trust_certs_bundle.clone(),
            disable_validation: self.disable_validation,
            client_auth: self.client_auth.as_ref().map(|a| ClientAuthSpec {
                cert_path: a.cert_path.clone(),
                key_path: a.key_path.clone(),
                intermediate_certs_path: a.intermediate_certs_path.clone(),
            }),
            protocols: self.protocols.iter().filter_map(|p| version(p)).collect(),
        }
    }
}

/// A `protocols` item.
fn version(name: &str) -> Option<TlsVersion> {
    match name {
        "TLSv1.2" => Some(TlsVersion::Tls12),
        "TLSv1.3" => Some(TlsVersion::Tls13),
        _ => None,
    }
}

fn protocol(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<String> {
    let p = string(cx, node, path)?;
    if version(&p).is_none() {
        cx.error(
            node.pos,
            path,
            format!("unsupported TLS protocol '{p}'; Strait speaks TLSv1.2 and TLSv1.3"),
        );
        return None;
    }
    Some(p)
}

fn client_auth(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<ClientAuthConfig> {
    let mut r = MapReader::new(cx, node, path)?;
    let cert_path = r.req(cx, "certPath", file_path);
    let key_path = r.req(cx, "keyPath", file_path);
    let intermediate_certs_path = r.opt(cx, "intermediateCertsPath", file_path);
    r.finish(cx);
    Some(ClientAuthConfig {
        cert_path: cert_path?,
        key_path: key_path?,
        intermediate_certs_path,
    })
}

/// Reads a router client's `tls` block; `None` (recorded) when it is bad.
pub(crate) fn client_tls(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<ClientTlsConfig> {
    read(cx, node, path, true)
}

/// Reads the `tls` of the Consul namer or interpreter: `commonName` may be
/// left out (the agent's `host` is the name).
pub(crate) fn consul_tls(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<ClientTlsConfig> {
    read(cx, node, path, false)
}

/// A client `tls` block; `common_name_required` unless `disableValidation`.
fn read(
    cx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    common_name_required: bool,
) -> Option<ClientTlsConfig> {
    let mut r = MapReader::new(cx, node, path)?;
    let errors = cx.errors.len();
    let enabled = r.or(cx, "enabled", boolean, true);
    let common_name = r.opt(cx, "commonName", non_empty);
    let bundle_pos = r.get("trustCertsBundle").map(|n| n.pos);
    let trust_certs_bundle = r.opt(cx, "trustCertsBundle", file_path);
    let trust_pos = r.get("trustCerts").map(|n| n.pos);
    let trust_certs = r
        .opt(cx, "trustCerts", |cx, n, p| list(cx, n, p, file_path))
        .unwrap_or_default();
    let disable_pos = r.get("disableValidation").map(|n| n.pos);
    let disable_validation = r.or(cx, "disableValidation", boolean, false);
    let client_auth = r.opt(cx, "clientAuth", client_auth);
    let protocols = r
        .opt(cx, "protocols", |cx, n, p| list(cx, n, p, protocol))
        .unwrap_or_default();
    r.finish(cx);
    if let Some(pos) = trust_pos {
        cx.warn(
            pos,
            &format!("{path}.trustCerts"),
            "trustCerts is deprecated in Linkerd 1; prefer trustCertsBundle",
        );
    }
    if let (Some(pos), Some(_)) = (bundle_pos, trust_pos) {
        cx.error(
            pos,
            &format!("{path}.trustCertsBundle"),
            "Both trustCerts and trustCertsBundle have been set. Please use only trustCertsBundle.",
        );
    }
    if common_name_required && enabled && common_name.is_none() && !disable_validation {
        cx.error(
            node.pos,
            &format!("{path}.commonName"),
            "tls is configured with validation but `commonName` is not set",
        );
    }
    if let (Some(pos), true, Some(_)) = (disable_pos, disable_validation, &client_auth) {
        cx.error(
            pos,
            &format!("{path}.disableValidation"),
            "disableValidation: true is incompatible with clientAuth",
        );
    }
    if let (Some(pos), true) = (disable_pos, disable_validation) {
        cx.warn(
            pos,
            &format!("{path}.disableValidation"),
            "backends' certificates are not verified: anyone on the path can read and change \
             this traffic",
        );
    }
    if cx.errors.len() > errors {
        return None;
    }
    let tls = ClientTlsConfig {
        enabled,
        common_name,
        trust_certs,
        trust_certs_bundle,
        disable_validation,
        client_auth,
        protocols,
    };
    super::client_tls_files::check(cx, node, path, &tls);
    if cx.errors.len() > errors {
        return None;
    }
    Some(tls)
}

//! TLS to backends: a client's `tls` block (Linkerd 1's client TLS).
//!
//! A block is loaded once per config load ([`TlsClientTemplate::load`]):
//! its PEM files are read and parsed and one `rustls::ClientConfig` is
//! built, shared (an `Arc`) by every client and connection the block
//! covers. The name a server's certificate must match (`commonName`, also
//! sent as SNI) is a template: [`TlsClientTemplate::resolve`] fills its
//! `{var}`s with the captures of the `configs[].prefix` that matched the
//! concrete name, once per client. Connections then only pay for the
//! handshake ([`TlsConnect::handshake`]).
//!
//! Trust: `trustCertsBundle` and `trustCerts` (PEM CA files), else the
//! Mozilla roots compiled in (`webpki-roots`): the same on every host and
//! in every container, with no dependency on the system's store.
//! `disableValidation` accepts any certificate (the handshake signature is
//! still checked against the certificate presented).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use strait_naming::pathmatch::{Captures, substitute};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::stats::{Counter, Registry, Scope};
use crate::tls::{CertInfo, certs_from_pem, key_from_pem, key_matches, read_file};

/// A client certificate (`clientAuth`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientAuthSpec {
    /// `certPath`: the PEM certificate.
    pub cert_path: PathBuf,
    /// `keyPath`: the PEM key (PKCS#8, PKCS#1 or SEC1).
    pub key_path: PathBuf,
    /// `intermediateCertsPath`: PEM certificates sent after the leaf.
    pub intermediate_certs_path: Option<PathBuf>,
}

/// TLS versions a client may speak (`protocols`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlsVersion {
    /// `TLSv1.2`.
    Tls12,
    /// `TLSv1.3`.
    Tls13,
}

/// A client `tls` block as written (paths, not their contents).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlsClientSpec {
    /// `commonName`: the name verified and sent as SNI, with `{var}`s.
    pub common_name: Option<String>,
    /// `trustCerts`: PEM CA files.
    pub trust_certs: Vec<PathBuf>,
    /// `trustCertsBundle`: one PEM file of CAs.
    pub trust_certs_bundle: Option<PathBuf>,
    /// `disableValidation`: accept any certificate.
    pub disable_validation: bool,
    /// `clientAuth`.
    pub client_auth: Option<ClientAuthSpec>,
    /// `protocols` (empty: TLS 1.2 and 1.3).
    pub protocols: Vec<TlsVersion>,
}

/// A loaded `tls` block: one shared rustls config, and `commonName` still
/// a template.
#[derive(Clone)]
pub struct TlsClientTemplate {
    config: Arc<ClientConfig>,
    common_name: Option<String>,
    /// The spec and the bytes of every file read: equal fingerprints, same
    /// config (a reload with unchanged files keeps clients).
    fingerprint: u64,
    /// The client certificate and the trusted CAs read from files.
    certificates: Arc<[BlockCertificate]>,
}

/// A certificate a client `tls` block read from a file: its client
/// certificate (`clientAuth.certPath`'s leaf) or one of its trusted CAs,
/// for `strait check`'s expiry warning, the expiry gauges and
/// `/admin/tls.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockCertificate {
    /// The key of the block it was read from: `clientAuth.certPath`,
    /// `trustCertsBundle` or `trustCerts[<i>]`.
    pub key: String,
    /// Its name among the block's certificates: `client_auth`, or
    /// `trust/<n>` for the n-th CA (from 0, in the order read).
    pub name: String,
    /// What the certificate says.
    pub info: CertInfo,
}

impl std::fmt::Debug for TlsClientTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClientTemplate")
            .field("common_name", &self.common_name)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl PartialEq for TlsClientTemplate {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint
    }
}

/// The TLS of one client: its config and the name its endpoints must
/// present.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientTls {
    template: TlsClientTemplate,
    /// `commonName` with the client's captures filled in.
    pub common_name: Option<String>,
}

/// Reads a file for a key, the error naming both.
fn read(key: &str, path: &Path, hasher: &mut DefaultHasher) -> Result<Vec<u8>, String> {
    let bytes = read_file(path).map_err(|e| format!("{key}: {e}"))?;
    bytes.hash(hasher);
    Ok(bytes)
}

/// The certificates of a PEM file (at least one).
fn certs(
    key: &str,
    path: &Path,
    hasher: &mut DefaultHasher,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read(key, path, hasher)?;
    certs_from_pem(path, &bytes).map_err(|e| format!("{key}: {e}"))
}

/// The provider every TLS config uses: [`crate::tls::ring_provider`].
fn provider() -> Arc<CryptoProvider> {
    Arc::new(crate::tls::ring_provider())
}

impl TlsClientTemplate {
    /// Reads the block's files and builds its rustls config. Errors begin
    /// with the key they are about (`trustCerts[1]: cannot read …`).
    pub fn load(spec: &TlsClientSpec) -> Result<TlsClientTemplate, String> {
        let mut hasher = DefaultHasher::new();
        spec.hash(&mut hasher);
        let provider = provider();
        let versions: Vec<&'static rustls::SupportedProtocolVersion> = if spec.protocols.is_empty()
        {
            rustls::DEFAULT_VERSIONS.to_vec()
        } else {
            spec.protocols
                .iter()
                .map(|v| match v {
                    TlsVersion::Tls12 => &rustls::version::TLS12,
                    TlsVersion::Tls13 => &rustls::version::TLS13,
                })
                .collect()
        };
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&versions)
            .map_err(|e| format!("protocols: {e}"))?;
        let mut certificates = Vec::new();
        let builder = if spec.disable_validation {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAny(Arc::clone(&provider))))
        } else {
            builder.with_root_certificates(roots(spec, &mut hasher, &mut certificates)?)
        };
        let mut config = match &spec.client_auth {
            None => builder.with_no_client_auth(),
            Some(auth) => {
                let mut chain = certs("clientAuth.certPath", &auth.cert_path, &mut hasher)?;
                if let Some(p) = &auth.intermediate_certs_path {
                    chain.extend(certs("clientAuth.intermediateCertsPath", p, &mut hasher)?);
                }
                let key_bytes = read("clientAuth.keyPath", &auth.key_path, &mut hasher)?;
                let key = key_from_pem(&auth.key_path, &key_bytes)
                    .map_err(|e| format!("clientAuth.keyPath: {e}"))?;
                key_matches(&provider, &chain, &key, &auth.cert_path, &auth.key_path)
                    .map_err(|e| format!("clientAuth.keyPath: {e}"))?;
                certificates.insert(
                    0,
                    BlockCertificate {
                        key: "clientAuth.certPath".to_owned(),
                        name: "client_auth".to_owned(),
                        info: CertInfo::of(&auth.cert_path, &chain[0])
                            .map_err(|e| format!("clientAuth.certPath: {e}"))?,
                    },
                );
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("clientAuth: the key does not fit the certificate: {e}"))?
            }
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsClientTemplate {
            config: Arc::new(config),
            common_name: spec.common_name.clone(),
            fingerprint: hasher.finish(),
            certificates: certificates.into(),
        })
    }

    /// The certificates read from the block's files: the client
    /// certificate first, then the trusted CAs (none for Mozilla's roots).
    pub fn certificates(&self) -> &[BlockCertificate] {
        &self.certificates
    }

    /// The shared rustls config.
    pub fn config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.config)
    }

    /// Identifies the settings and file contents the config was built
    /// from.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The name to verify: `commonName` as written (no `{var}`s filled),
    /// else `default`.
    pub fn server_name(&self, default: &str) -> Result<ServerName<'static>, String> {
        let name = self.common_name.as_deref().unwrap_or(default);
        ServerName::try_from(name.to_owned())
            .map_err(|_| format!("commonName: '{name}' is not a DNS name or an IP address"))
    }

    /// This block for one client: `commonName` with `captures` filled in
    /// (a `{var}` with no capture stays as written).
    pub fn resolve(&self, captures: &Captures) -> ClientTls {
        ClientTls {
            template: self.clone(),
            common_name: self.common_name.as_deref().map(|t| substitute(t, captures)),
        }
    }
}

/// The trust roots: the configured CA files (each CA also added to
/// `read`), or Mozilla's.
fn roots(
    spec: &TlsClientSpec,
    hasher: &mut DefaultHasher,
    read: &mut Vec<BlockCertificate>,
) -> Result<RootCertStore, String> {
    let mut files: Vec<(String, &Path)> = spec
        .trust_certs
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("trustCerts[{i}]"), p.as_path()))
        .collect();
    if let Some(b) = &spec.trust_certs_bundle {
        files.push(("trustCertsBundle".to_owned(), b.as_path()));
    }
    let mut store = RootCertStore::empty();
    if files.is_empty() {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(store);
    }
    for (key, path) in files {
        for cert in certs(&key, path, hasher)? {
            let info = CertInfo::of(path, &cert).map_err(|e| format!("{key}: {e}"))?;
            read.push(BlockCertificate {
                key: key.clone(),
                name: format!("trust/{}", read.len()),
                info,
            });
            store
                .add(cert)
                .map_err(|e| format!("{key}: {}: not a usable CA: {e}", path.display()))?;
        }
    }
    Ok(store)
}

/// `disableValidation`: any certificate for any name, as long as the
/// handshake is signed with its key.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Why a handshake failed, as counted under `tls/handshake_failures/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureReason {
    /// The certificate is not signed by a trusted CA (or the server did
    /// not trust ours).
    UnknownCa,
    /// The certificate is not for `commonName`.
    NameMismatch,
    /// Expired, not yet valid, revoked, malformed, wrong purpose; or the
    /// server refused our certificate.
    BadCertificate,
    /// Not TLS, no common version or cipher, a misbehaving peer.
    Protocol,
    /// Anything else (the connection closed or stalled mid-handshake).
    Other,
}

impl FailureReason {
    const ALL: [FailureReason; 5] = [
        FailureReason::UnknownCa,
        FailureReason::NameMismatch,
        FailureReason::BadCertificate,
        FailureReason::Protocol,
        FailureReason::Other,
    ];

    /// The stat name's last element.
    pub fn name(self) -> &'static str {
        match self {
            FailureReason::UnknownCa => "unknown_ca",
            FailureReason::NameMismatch => "name_mismatch",
            FailureReason::BadCertificate => "bad_certificate",
            FailureReason::Protocol => "protocol",
            FailureReason::Other => "other",
        }
    }
}

/// The class and a message for a failed handshake.
pub fn classify(e: &std::io::Error) -> (FailureReason, String) {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<E>()) else {
        return (
            FailureReason::Other,
            format!("the connection failed during the TLS handshake: {e}"),
        );
    };
    let reason = match tls {
        E::InvalidCertificate(C::UnknownIssuer) | E::AlertReceived(A::UnknownCA) => {
            FailureReason::UnknownCa
        }
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            FailureReason::NameMismatch
        }
        E::InvalidCertificate(_)
        | E::NoCertificatesPresented
        | E::AlertReceived(
            A::BadCertificate
            | A::CertificateRequired
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::AccessDenied,
        ) => FailureReason::BadCertificate,
        E::InvalidMessage(_)
        | E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. }
        | E::PeerIncompatible(_)
        | E::PeerMisbehaved(_)
        | E::AlertReceived(_)
        | E::NoApplicationProtocol
        | E::DecryptError => FailureReason::Protocol,
        _ => FailureReason::Other,
    };
    let message = match tls {
        E::InvalidCertificate(C::NotValidForNameContext {
            expected,
            presented,
        }) => format!(
            "certificate name mismatch: expected {}, got {}",
            expected.to_str(),
            if presented.is_empty() {
                "no names".to_owned()
            } else {
                presented
                    .iter()
                    .map(|n| shown_name(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        E::InvalidCertificate(C::NotValidForName) => "certificate name mismatch".to_owned(),
        E::InvalidCertificate(C::UnknownIssuer) => {
            "certificate signed by an unknown CA (not in trustCerts/trustCertsBundle)".to_owned()
        }
        E::AlertReceived(a) => format!("the server refused the handshake: {a:?}"),
        other => other.to_string(),
    };
    (reason, message)
}

/// A name rustls reports a certificate presents (`DnsName("web.test")`,
/// `IpAddress(127.0.0.1)`) as the name alone.
fn shown_name(n: &str) -> &str {
    n.strip_prefix("DnsName(\"")
        .and_then(|s| s.strip_suffix("\")"))
        .or_else(|| {
            n.strip_prefix("IpAddress(")
                .and_then(|s| s.strip_suffix(')'))
        })
        .unwrap_or(n)
}

/// How often a failing endpoint's handshake failures are logged.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// A client's TLS on its connections: the handshake, its stats, its log.
pub struct TlsConnect {
    connector: TlsConnector,
    /// The name to verify; `Err` when `commonName` is not a DNS name or
    /// an IP address (every connection fails with this).
    name: Result<Option<ServerName<'static>>, String>,
    failures: Arc<Counter>,
    by_reason: Vec<Arc<Counter>>,
    logged: Mutex<HashMap<SocketAddr, Instant>>,
}

impl TlsConnect {
    /// The TLS of a client whose stats are under `scope`, offering ALPN
    /// `h2` (an h2 router's client) or `http/1.1`.
    pub fn new(tls: &ClientTls, registry: &Registry, scope: &Scope, h2: bool) -> TlsConnect {
        let name = match &tls.common_name {
            None => Ok(None),
            Some(cn) => ServerName::try_from(cn.clone())
                .map(Some)
                .map_err(|_| format!("tls commonName '{cn}' is not a DNS name or an IP address")),
        };
        if let Err(e) = &name {
            tracing::error!(error = %e, "client tls cannot connect");
        }
        TlsConnect {
            connector: if h2 {
                let mut config = (*tls.template.config).clone();
                config.alpn_protocols = vec![b"h2".to_vec()];
                TlsConnector::from(Arc::new(config))
            } else {
                TlsConnector::from(Arc::clone(&tls.template.config))
            },
            name,
            failures: registry.counter(scope, "tls/handshake_failures"),
            by_reason: FailureReason::ALL
                .iter()
                .map(|r| registry.counter(scope, &format!("tls/handshake_failures/{}", r.name())))
                .collect(),
            logged: Mutex::default(),
        }
    }

    /// The handshake on `tcp` to `addr`, before `deadline`. The error is
    /// the reason for `l5d-err`; it is counted and (once a minute per
    /// endpoint) logged.
    pub async fn handshake(
        &self,
        tcp: TcpStream,
        addr: SocketAddr,
        deadline: tokio::time::Instant,
    ) -> Result<TlsStream<TcpStream>, String> {
        let name = match &self.name {
            Ok(Some(n)) => n.clone(),
            // disableValidation without commonName: no SNI, any name.
            Ok(None) => ServerName::IpAddress(addr.ip().into()),
            Err(e) => return Err(e.clone()),
        };
        let (reason, message) =
            match tokio::time::timeout_at(deadline, self.connector.connect(name, tcp)).await {
                Ok(Ok(s)) => return Ok(s),
                Ok(Err(e)) => classify(&e),
                Err(_) => (
                    FailureReason::Other,
                    "the TLS handshake did not finish within connectTimeoutMs".to_owned(),
                ),
            };
        self.failures.incr();
        if let Some(c) = FailureReason::ALL
            .iter()
            .position(|r| *r == reason)
            .and_then(|i| self.by_reason.get(i))
        {
            c.incr();
        }
        if self.should_log(addr) {
            tracing::warn!(%addr, reason = reason.name(), error = %message, "TLS handshake failed");
        }
        Err(message)
    }

    /// Whether a failure with `addr` is logged now (once a minute each).
    fn should_log(&self, addr: SocketAddr) -> bool {
        let now = Instant::now();
        let mut logged = self.logged.lock().unwrap_or_else(|e| e.into_inner());
        if logged.len() > 1024 {
            logged.retain(|_, at| now.duration_since(*at) < LOG_EVERY);
        }
        match logged.get(&addr) {
            Some(at) if now.duration_since(*at) < LOG_EVERY => false,
            _ => {
                logged.insert(addr, now);
                true
            }
        }
    }
}

#[cfg(test)]
#[path = "tls_client_tests.rs"]
mod tests;

//! Server-side TLS (router servers' `tls`, `admin.tls`), and the PEM
//! helpers both halves of Strait's TLS share.
//!
//! What a server needs is built once per load or reload into a
//! [`ServerTls`]: the rustls config (certificate chain, key, client
//! verification, protocol versions, cipher suites, ALPN `http/1.1`) and
//! what was read from the leaf certificate for `/admin/tls.json` and the
//! expiry gauge. A server holds it in its swappable state, so a reload
//! hands new connections renewed certificates while open ones keep theirs.
//!
//! Keys may be PKCS#8 (`BEGIN PRIVATE KEY`, Linkerd's only form), PKCS#1
//! (`BEGIN RSA PRIVATE KEY`) or SEC1 (`BEGIN EC PRIVATE KEY`). Every error
//! names the file it is about, and the config key it came from.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, SupportedCipherSuite, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// The TLS versions a `protocols` list may name (rustls has no other).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsProtocol {
    /// `TLSv1.2`.
    Tls12,
    /// `TLSv1.3`.
    Tls13,
}

impl TlsProtocol {
    /// The protocol named `name` as Linkerd (the JVM) names it, or why not.
    pub fn parse(name: &str) -> Result<TlsProtocol, String> {
        match name {
            "TLSv1.2" => Ok(TlsProtocol::Tls12),
            "TLSv1.3" => Ok(TlsProtocol::Tls13),
            "TLSv1" | "TLSv1.1" | "SSLv3" | "SSLv2Hello" => Err(format!(
                "'{name}' is refused: Strait's TLS (rustls) speaks only TLSv1.2 and TLSv1.3, \
                 older versions are insecure"
            )),
            _ => Err(format!(
                "unknown TLS protocol '{name}'; known: TLSv1.2, TLSv1.3"
            )),
        }
    }

    fn version(self) -> &'static SupportedProtocolVersion {
        match self {
            TlsProtocol::Tls12 => &rustls::version::TLS12,
            TlsProtocol::Tls13 => &rustls::version::TLS13,
        }
    }
}

/// rustls's crypto on *ring*: the one provider Strait's TLS uses, client
/// and server.
///
/// rustls 0.23.48 deprecates it for lacking post-quantum key exchange
/// (ML-KEM, which only the aws-lc-rs provider has); aws-lc-rs is a C build
/// with cmake that takes minutes, so Strait stays on *ring* until rustls
/// ships a pure-Rust post-quantum group.
#[allow(deprecated)]
pub fn ring_provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The cipher suite with IANA name `name` (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`,
/// `TLS_AES_128_GCM_SHA256`; rustls's `TLS13_` spelling is accepted too), or
/// the names Strait knows.
pub fn cipher_suite(name: &str) -> Result<SupportedCipherSuite, String> {
    let provider = ring_provider();
    let found = provider
        .cipher_suites
        .iter()
        .find(|s| suite_names(s).iter().any(|n| n == name));
    match found {
        Some(s) => Ok(*s),
        None => Err(format!(
            "unknown or unsupported cipher suite '{name}'; supported: {}",
            provider
                .cipher_suites
                .iter()
                .filter_map(|s| suite_names(s).into_iter().next())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// A suite's IANA name first, then rustls's own if it differs.
fn suite_names(s: &SupportedCipherSuite) -> Vec<String> {
    let own = format!("{:?}", s.suite());
    match own.strip_prefix("TLS13_") {
        Some(rest) => vec![format!("TLS_{rest}"), own],
        None => vec![own],
    }
}

/// A problem with a TLS block: the config key it is about (`certPath`,
/// `keyPath`, ...) and what is wrong, naming the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsError {
    /// The key of the `tls` block, e.g. `keyPath`.
    pub key: &'static str,
    /// What is wrong, with the file's path.
    pub message: String,
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for TlsError {}

/// Every PEM certificate in `path`, in order; an error (naming the path)
/// when the file cannot be read or holds none.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    certs_from_pem(path, &read_file(path)?)
}

/// The first private key in `path`: PKCS#8, PKCS#1 (RSA) or SEC1 (EC); an
/// error (naming the path) otherwise.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    key_from_pem(path, &read_file(path)?)
}

/// The bytes of `path`, or an error naming it.
pub fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Every PEM certificate in `bytes` (read from `path`), in order; an error
/// (naming the path) when they do not parse or there is none. Server and
/// client TLS read their certificate files with it.
pub fn certs_from_pem(path: &Path, bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no certificate (-----BEGIN CERTIFICATE-----) in the file",
            path.display()
        ));
    }
    Ok(certs)
}

/// The first private key in `bytes` (read from `path`): PKCS#8, PKCS#1
/// (RSA) or SEC1 (EC); an error (naming the path) otherwise.
pub fn key_from_pem(path: &Path, bytes: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(bytes).map_err(|e| {
        format!(
            "{}: no private key found (PEM PKCS#8 `BEGIN PRIVATE KEY`, PKCS#1 \
             `BEGIN RSA PRIVATE KEY` or SEC1 `BEGIN EC PRIVATE KEY`): {e}",
            path.display()
        )
    })
}

/// What a certificate says about itself, for `/admin/tls.json`, the expiry
/// gauge and `strait check`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// The file it was read from.
    pub path: PathBuf,
    /// The subject, e.g. `CN=localhost`.
    pub subject: String,
    /// Subject alternative names: DNS names and IP addresses.
    pub sans: Vec<String>,
    /// The serial number in hex, `01:a2:...`.
    pub serial: String,
    /// The end of its validity, in seconds since the Unix epoch.
    pub not_after: i64,
}

impl CertInfo {
    /// Reads the certificate `der` (from `path`).
    pub fn of(path: &Path, der: &CertificateDer<'_>) -> Result<CertInfo, String> {
        use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
        let (_, cert) = X509Certificate::from_der(der.as_ref())
            .map_err(|e| format!("{}: not a valid X.509 certificate: {e}", path.display()))?;
        let sans = match cert.subject_alternative_name() {
            Ok(Some(ext)) => ext
                .value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(format!("DNS:{d}")),
                    GeneralName::IPAddress(b) => ip_of(b).map(|ip| format!("IP:{ip}")),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok(CertInfo {
            path: path.to_owned(),
            subject: cert.subject().to_string(),
            sans,
            serial: cert.raw_serial_as_string(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }

    /// Seconds from now until it expires (negative once expired).
    pub fn seconds_left(&self) -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.not_after - now
    }

    /// The JSON of `/admin/tls.json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "path": self.path.display().to_string(),
            "subject": self.subject,
            "sans": self.sans,
            "serial": self.serial,
            "notAfter": self.not_after,
            "secondsLeft": self.seconds_left(),
        })
    }
}

/// Every certificate of the PEM file `path`, read: a CA bundle's CAs, or
/// a leaf and its chain.
pub fn cert_infos(path: &Path) -> Result<Vec<CertInfo>, String> {
    load_certs(path)?
        .iter()
        .map(|der| CertInfo::of(path, der))
        .collect()
}

/// How a certificate `seconds_left` from expiry reads in a warning
/// (`expires in 3 days 2 hours`, `has expired`), or `None` when it is
/// further away than `warn_within` seconds.
pub fn expiry_warning(seconds_left: i64, warn_within: i64) -> Option<String> {
    if seconds_left >= warn_within {
        return None;
    }
    Some(if seconds_left < 0 {
        "has expired".to_owned()
    } else {
        format!(
            "expires in {} days {} hours",
            seconds_left / 86_400,
            seconds_left % 86_400 / 3600
        )
    })
}

fn ip_of(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
        _ => None,
    }
}

/// A server's `tls` block, as plain values (the config lowers into it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerTlsSettings {
    /// `certPath`: the PEM certificate (the leaf first).
    pub cert_path: PathBuf,
    /// `keyPath`: its PEM private key.
    pub key_path: PathBuf,
    /// `intermediateCertsPath`: PEM certificates sent after the leaf.
    pub intermediate_certs_path: Option<PathBuf>,
    /// `caCertPath`: the CAs client certificates must chain to.
    pub ca_cert_path: Option<PathBuf>,
    /// `requireClientAuth`: a client certificate is required (and
    /// verified against `caCertPath`); otherwise none is requested.
    pub require_client_auth: bool,
    /// `protocols`: the versions offered (empty: TLSv1.2 and TLSv1.3).
    pub protocols: Vec<TlsProtocol>,
    /// `ciphers`: IANA names of the suites offered (empty: rustls's).
    pub ciphers: Vec<String>,
}

/// A server's TLS, built from its files: the acceptor and the leaf
/// certificate's particulars.
pub struct ServerTls {
    acceptor: TlsAcceptor,
    /// The same, offering ALPN `h2` only (an `h2` router's servers: no
    /// HTTP/1.1 fallback, as Linkerd's).
    acceptor_h2: TlsAcceptor,
    leaf: CertInfo,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("leaf", &self.leaf)
            .finish()
    }
}

impl ServerTls {
    /// Reads the files of `s` and builds the server config; checks that
    /// the key is the certificate's.
    pub fn load(s: &ServerTlsSettings) -> Result<ServerTls, TlsError> {
        let err = |key: &'static str| move |message: String| TlsError { key, message };
        let mut provider = ring_provider();
        if !s.ciphers.is_empty() {
            provider.cipher_suites = s
                .ciphers
                .iter()
                .map(|c| cipher_suite(c))
                .collect::<Result<_, _>>()
                .map_err(err("ciphers"))?;
        }
        let provider = Arc::new(provider);
        let versions: Vec<_> = if s.protocols.is_empty() {
            rustls::ALL_VERSIONS.to_vec()
        } else {
            s.protocols.iter().map(|p| p.version()).collect()
        };
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&versions)
            .map_err(|e| {
                err("ciphers")(format!(
                    "no cipher suite of `ciphers` works with `protocols`: {e}"
                ))
            })?;
        let builder = match (&s.ca_cert_path, s.require_client_auth) {
            (Some(ca), true) => {
                let mut roots = RootCertStore::empty();
                for c in load_certs(ca).map_err(err("caCertPath"))? {
                    roots.add(c).map_err(|e| {
                        err("caCertPath")(format!(
                            "{}: a CA certificate is invalid: {e}",
                            ca.display()
                        ))
                    })?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::clone(&provider),
                )
                .build()
                .map_err(|e| err("caCertPath")(format!("{}: {e}", ca.display())))?;
                builder.with_client_cert_verifier(verifier)
            }
            (None, true) => {
                return Err(err("requireClientAuth")(
                    "requireClientAuth: true needs caCertPath, the CAs client certificates must \
                     chain to (Strait has no default trust store)"
                        .to_owned(),
                ));
            }
            (_, false) => builder.with_no_client_auth(),
        };
        let mut chain = load_certs(&s.cert_path).map_err(err("certPath"))?;
        let leaf = CertInfo::of(&s.cert_path, &chain[0]).map_err(err("certPath"))?;
        if let Some(p) = &s.intermediate_certs_path {
            chain.extend(load_certs(p).map_err(err("intermediateCertsPath"))?);
        }
        let key = load_key(&s.key_path).map_err(err("keyPath"))?;
        check_key_matches(&provider, &chain, &key, s)?;
        let mut config = builder.with_single_cert(chain, key).map_err(|e| {
            err("keyPath")(format!(
                "{} with {}: {e}",
                s.key_path.display(),
                s.cert_path.display()
            ))
        })?;
        let mut h2 = config.clone();
        h2.alpn_protocols = vec![b"h2".to_vec()];
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            acceptor_h2: TlsAcceptor::from(Arc::new(h2)),
            leaf,
        })
    }

    /// What accepts a connection's handshake.
    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// What accepts a connection's handshake on an `h2` router's server.
    pub fn acceptor_h2(&self) -> &TlsAcceptor {
        &self.acceptor_h2
    }

    /// The leaf certificate served.
    pub fn certificate(&self) -> &CertInfo {
        &self.leaf
    }
}

/// An error unless `key` is the private key of the leaf of `chain`.
fn check_key_matches(
    provider: &CryptoProvider,
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
    s: &ServerTlsSettings,
) -> Result<(), TlsError> {
    key_matches(provider, chain, key, &s.cert_path, &s.key_path).map_err(|message| TlsError {
        key: "keyPath",
        message,
    })
}

/// An error (naming both files) unless `key`, read from `key_path`, is the
/// private key of the leaf of `chain`, read from `cert_path`: rustls's
/// `CertifiedKey::keys_match`. Server and client certificates are checked
/// with it alike.
pub fn key_matches(
    provider: &CryptoProvider,
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
    cert_path: &Path,
    key_path: &Path,
) -> Result<(), String> {
    let signing = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| format!("{}: unusable private key: {e}", key_path.display()))?;
    match CertifiedKey::new(chain.to_vec(), signing).keys_match() {
        Ok(()) => Ok(()),
        // The provider cannot tell (no public key to compare): let the
        // handshake decide.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(()),
        Err(e) => Err(format!(
            "{} is not the private key of the certificate in {}: {e}",
            key_path.display(),
            cert_path.display()
        )),
    }
}

/// Why a handshake failed, in the few classes counted as
/// `tls/handshake_failures/<class>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// A certificate (the client's, or ours as the client saw it) is not
    /// signed by a trusted CA.
    UnknownCa,
    /// A certificate is missing, expired, for another name or malformed.
    BadCertificate,
    /// No common version, suite or ALPN protocol, or not TLS at all.
    Protocol,
    /// Anything else: a reset, a timeout, an early close.
    Other,
}

impl HandshakeFailure {
    /// Every class, in the order shown.
    pub const ALL: [HandshakeFailure; 4] = [
        HandshakeFailure::UnknownCa,
        HandshakeFailure::BadCertificate,
        HandshakeFailure::Protocol,
        HandshakeFailure::Other,
    ];

    /// The class of a failed handshake's error.
    pub fn of(e: &std::io::Error) -> HandshakeFailure {
        use rustls::{AlertDescription as A, CertificateError as C, Error as E};
        let Some(e) = e.get_ref().and_then(|i| i.downcast_ref::<E>()) else {
            return HandshakeFailure::Other;
        };
        match e {
            E::InvalidCertificate(C::UnknownIssuer) | E::AlertReceived(A::UnknownCA) => {
                HandshakeFailure::UnknownCa
            }
            E::InvalidCertificate(_)
            | E::NoCertificatesPresented
            | E::AlertReceived(
                A::BadCertificate
                | A::CertificateExpired
                | A::CertificateRequired
                | A::CertificateUnknown
                | A::CertificateRevoked
                | A::UnsupportedCertificate,
            ) => HandshakeFailure::BadCertificate,
            E::InappropriateMessage { .. }
            | E::InappropriateHandshakeMessage { .. }
            | E::InvalidMessage(_)
            | E::PeerIncompatible(_)
            | E::PeerMisbehaved(_)
            | E::NoApplicationProtocol
            | E::AlertReceived(_) => HandshakeFailure::Protocol,
            _ => HandshakeFailure::Other,
        }
    }

    /// Its name in metrics: `unknown_ca`, `bad_certificate`, `protocol`,
    /// `other`.
    pub fn label(self) -> &'static str {
        match self {
            HandshakeFailure::UnknownCa => "unknown_ca",
            HandshakeFailure::BadCertificate => "bad_certificate",
            HandshakeFailure::Protocol => "protocol",
            HandshakeFailure::Other => "other",
        }
    }
}

/// Handshake failures are logged at most once a minute per peer IP, so a
/// misconfigured client retrying in a loop cannot flood the log; the map
/// of peers is bounded.
#[derive(Default)]
pub struct HandshakeLog {
    last: Mutex<HashMap<IpAddr, Instant>>,
}

/// How often one peer's failures are logged at most.
const HANDSHAKE_LOG_EVERY: Duration = Duration::from_secs(60);
/// How many peers are remembered at most.
const HANDSHAKE_LOG_PEERS: usize = 1024;

impl HandshakeLog {
    /// Whether a failure from `peer` now should be logged (at warn); the
    /// others go to debug.
    pub fn should_log(&self, peer: IpAddr) -> bool {
        self.should_log_at(peer, Instant::now())
    }

    fn should_log_at(&self, peer: IpAddr, now: Instant) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last
            .get(&peer)
            .is_some_and(|t| now.duration_since(*t) < HANDSHAKE_LOG_EVERY)
        {
            return false;
        }
        if last.len() >= HANDSHAKE_LOG_PEERS {
            last.retain(|_, t| now.duration_since(*t) < HANDSHAKE_LOG_EVERY);
            if last.len() >= HANDSHAKE_LOG_PEERS {
                // Many peers failing at once: one line per minute is
                // enough to tell; stay bounded.
                return false;
            }
        }
        last.insert(peer, now);
        true
    }
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// A self-signed certificate for `localhost` and its PKCS#8 key, in PEM.
fn self_signed() -> (String, String) {
    let c =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    (c.cert.pem(), c.signing_key.serialize_pem())
}

fn settings(dir: &Path, cert: &str, key: &str) -> ServerTlsSettings {
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
    ServerTlsSettings {
        cert_path: dir.join("cert.pem"),
        key_path: dir.join("key.pem"),
        ..ServerTlsSettings::default()
    }
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("strait-tls-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn server_tls_loads_a_pkcs8_key_and_reads_the_leaf() {
    let dir = tempdir("load");
    let (cert, key) = self_signed();
    let tls = ServerTls::load(&settings(&dir, &cert, &key)).unwrap();
    let leaf = tls.certificate();
    assert!(leaf.sans.contains(&"DNS:localhost".to_owned()), "{leaf:?}");
    assert!(leaf.sans.contains(&"IP:127.0.0.1".to_owned()), "{leaf:?}");
    assert!(
        leaf.seconds_left() > 86_400,
        "rcgen's default validity is years: {leaf:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_key_of_another_certificate_is_refused_naming_both_files() {
    let dir = tempdir("mismatch");
    let (cert, _) = self_signed();
    let (_, other_key) = self_signed();
    let e = ServerTls::load(&settings(&dir, &cert, &other_key)).unwrap_err();
    assert_eq!(e.key, "keyPath");
    assert!(
        e.message
            .contains("key.pem is not the private key of the certificate in")
            && e.message.contains("cert.pem"),
        "the error names both files: {e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_and_empty_files_are_errors_naming_the_path() {
    let dir = tempdir("missing");
    let (cert, key) = self_signed();
    let mut s = settings(&dir, &cert, &key);
    s.key_path = dir.join("nope.pem");
    let e = ServerTls::load(&s).unwrap_err();
    assert_eq!(e.key, "keyPath");
    assert!(e.message.contains("nope.pem"), "{e}");
    std::fs::write(dir.join("empty.pem"), "").unwrap();
    let e = load_certs(&dir.join("empty.pem")).unwrap_err();
    assert!(
        e.contains("empty.pem") && e.contains("no certificate"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn require_client_auth_needs_a_ca() {
    let dir = tempdir("ca");
    let (cert, key) = self_signed();
    let mut s = settings(&dir, &cert, &key);
    s.require_client_auth = true;
    assert_eq!(ServerTls::load(&s).unwrap_err().key, "requireClientAuth");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn protocols_and_ciphers_are_read_by_their_iana_names() {
    assert_eq!(TlsProtocol::parse("TLSv1.3"), Ok(TlsProtocol::Tls13));
    assert!(
        TlsProtocol::parse("TLSv1.1")
            .unwrap_err()
            .contains("refused")
    );
    assert!(
        cipher_suite("TLS_AES_128_GCM_SHA256").is_ok(),
        "IANA TLS 1.3 name"
    );
    assert!(
        cipher_suite("TLS13_AES_128_GCM_SHA256").is_ok(),
        "rustls's spelling"
    );
    assert!(cipher_suite("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256").is_ok());
    let e = cipher_suite("TLS_RSA_WITH_RC4_128_MD5").unwrap_err();
    assert!(e.contains("supported: TLS_"), "{e}");
}

#[test]
fn handshake_failures_are_logged_once_a_minute_per_peer() {
    let log = HandshakeLog::default();
    let t = Instant::now();
    let a: IpAddr = "10.0.0.1".parse().unwrap();
    assert!(log.should_log_at(a, t));
    assert!(
        !log.should_log_at(a, t + Duration::from_secs(30)),
        "not again within a minute"
    );
    assert!(
        log.should_log_at(a, t + Duration::from_secs(61)),
        "again after a minute"
    );
    for i in 0..(HANDSHAKE_LOG_PEERS as u32 + 10) {
        log.should_log_at(IpAddr::from(i.to_be_bytes()), t + Duration::from_secs(61));
    }
    assert!(
        log.last.lock().unwrap().len() <= HANDSHAKE_LOG_PEERS,
        "the map of peers stays bounded"
    );
}

#[test]
fn handshake_errors_fall_in_four_classes() {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    let class =
        |e: E| HandshakeFailure::of(&std::io::Error::new(std::io::ErrorKind::InvalidData, e));
    assert_eq!(
        class(E::InvalidCertificate(C::UnknownIssuer)),
        HandshakeFailure::UnknownCa
    );
    assert_eq!(
        class(E::AlertReceived(A::UnknownCA)),
        HandshakeFailure::UnknownCa,
        "the client distrusts ours"
    );
    assert_eq!(
        class(E::NoCertificatesPresented),
        HandshakeFailure::BadCertificate
    );
    assert_eq!(
        class(E::InvalidCertificate(C::Expired)),
        HandshakeFailure::BadCertificate
    );
    assert_eq!(
        class(E::AlertReceived(A::BadCertificate)),
        HandshakeFailure::BadCertificate
    );
    assert_eq!(
        class(E::AlertReceived(A::ProtocolVersion)),
        HandshakeFailure::Protocol
    );
    assert_eq!(
        class(E::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType
        )),
        HandshakeFailure::Protocol,
        "plaintext to a TLS port"
    );
    let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
    assert_eq!(HandshakeFailure::of(&reset), HandshakeFailure::Other);
}

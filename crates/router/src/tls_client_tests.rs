#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use super::*;

/// A fresh directory with `ca.pem`, `cert.pem` and `key.pem` (a CA and a
/// leaf it signed).
fn files(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strait-tls-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["client.test".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    dir
}

#[test]
fn loads_trust_and_client_auth() {
    let dir = files("load");
    let spec = TlsClientSpec {
        common_name: Some("{service}.test".into()),
        trust_certs: vec![dir.join("ca.pem")],
        client_auth: Some(ClientAuthSpec {
            cert_path: dir.join("cert.pem"),
            key_path: dir.join("key.pem"),
            intermediate_certs_path: None,
        }),
        ..TlsClientSpec::default()
    };
    let t = TlsClientTemplate::load(&spec).unwrap();
    assert_eq!(t.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    // Same files, same config: a reload keeps the clients.
    assert_eq!(t, TlsClientTemplate::load(&spec).unwrap());
    let caps = Captures::from([("service".to_owned(), "web".to_owned())]);
    assert_eq!(t.resolve(&caps).common_name.as_deref(), Some("web.test"));
    assert_eq!(
        t.resolve(&Captures::new()).common_name.as_deref(),
        Some("{service}.test")
    );
}

#[test]
fn errors_name_the_key() {
    let dir = files("errors");
    let missing = TlsClientSpec {
        trust_certs: vec![dir.join("ca.pem"), dir.join("nope.pem")],
        ..TlsClientSpec::default()
    };
    let e = TlsClientTemplate::load(&missing).unwrap_err();
    assert!(e.starts_with("trustCerts[1]: cannot read"), "{e}");
    let not_a_cert = TlsClientSpec {
        trust_certs_bundle: Some(dir.join("key.pem")),
        ..TlsClientSpec::default()
    };
    let e = TlsClientTemplate::load(&not_a_cert).unwrap_err();
    assert!(
        e.contains("trustCertsBundle") && e.contains("no certificate"),
        "{e}"
    );
    let bad_key = TlsClientSpec {
        client_auth: Some(ClientAuthSpec {
            cert_path: dir.join("cert.pem"),
            key_path: dir.join("ca.pem"),
            intermediate_certs_path: None,
        }),
        ..TlsClientSpec::default()
    };
    let e = TlsClientTemplate::load(&bad_key).unwrap_err();
    assert!(e.starts_with("clientAuth.keyPath"), "{e}");
}

#[test]
fn a_client_key_of_another_certificate_is_refused() {
    let dir = files("mismatch");
    let other = files("mismatch-other");
    let spec = TlsClientSpec {
        trust_certs_bundle: Some(dir.join("ca.pem")),
        client_auth: Some(ClientAuthSpec {
            cert_path: dir.join("cert.pem"),
            key_path: other.join("key.pem"),
            intermediate_certs_path: None,
        }),
        ..TlsClientSpec::default()
    };
    let e = TlsClientTemplate::load(&spec).unwrap_err();
    assert!(
        e.starts_with("clientAuth.keyPath: ")
            && e.contains(&other.join("key.pem").display().to_string())
            && e.contains("is not the private key of the certificate"),
        "{e}"
    );
}

#[test]
fn lists_the_client_certificate_and_the_cas_it_read() {
    let dir = files("listed");
    let spec = TlsClientSpec {
        trust_certs: vec![dir.join("ca.pem"), dir.join("ca.pem")],
        client_auth: Some(ClientAuthSpec {
            cert_path: dir.join("cert.pem"),
            key_path: dir.join("key.pem"),
            intermediate_certs_path: None,
        }),
        ..TlsClientSpec::default()
    };
    let t = TlsClientTemplate::load(&spec).unwrap();
    let listed: Vec<(&str, &str)> = t
        .certificates()
        .iter()
        .map(|c| (c.key.as_str(), c.name.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            ("clientAuth.certPath", "client_auth"),
            ("trustCerts[0]", "trust/0"),
            ("trustCerts[1]", "trust/1"),
        ]
    );
    assert_eq!(t.certificates()[0].info.sans, ["DNS:client.test"]);
    assert!(t.certificates()[0].info.seconds_left() > 0);
    // Mozilla's roots are not listed.
    let roots = TlsClientTemplate::load(&TlsClientSpec::default()).unwrap();
    assert!(roots.certificates().is_empty());
}

#[test]
fn classifies_rustls_errors() {
    use rustls::{CertificateError as C, Error as E};
    let io = |e: E| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    let (r, m) = classify(&io(E::InvalidCertificate(C::NotValidForNameContext {
        expected: ServerName::try_from("web.example").unwrap(),
        presented: vec![
            "DnsName(\"web.test\")".into(),
            "IpAddress(127.0.0.1)".into(),
        ],
    })));
    assert_eq!(r, FailureReason::NameMismatch);
    assert_eq!(
        m,
        "certificate name mismatch: expected web.example, got web.test, 127.0.0.1"
    );
    let (r, _) = classify(&io(E::InvalidCertificate(C::UnknownIssuer)));
    assert_eq!(r, FailureReason::UnknownCa);
    let (r, _) = classify(&io(E::InvalidCertificate(C::Expired)));
    assert_eq!(r, FailureReason::BadCertificate);
    let (r, _) = classify(&io(E::AlertReceived(
        rustls::AlertDescription::ProtocolVersion,
    )));
    assert_eq!(r, FailureReason::Protocol);
    let (r, _) = classify(&std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
    assert_eq!(r, FailureReason::Other);
}

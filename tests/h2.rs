//! Plain HTTP/2 through the h2 router, end to end, with the real `curl`:
//! h2c with prior knowledge, h2 over TLS (ALPN), and an HTTP/1.1 request
//! refused. The backend is a real nginx speaking h2c (Debian's
//! nginx-light; scripts/test installs it), as Linkerd's h2 client speaks
//! to plaintext backends (prior knowledge). The router names requests
//! with the h2 default identifier, `io.l5d.header.token` on `:authority`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use strait_test_kit::Strait;
use strait_test_kit::grpc::{H2Response, h2_curl};
use strait_test_kit::nginx::Nginx;

const BIN: &str = env!("CARGO_BIN_EXE_strait");

/// nginx answering which protocol the request reached it over.
fn nginx() -> Nginx {
    Nginx::h2c(
        "default_type text/plain; return 200 \"hello from nginx over $server_protocol\\n\";",
        "",
    )
}

/// Strait with one h2 router whose server has `server_extra` (e.g. a
/// `tls` block), the service `web` at `backend`.
struct Mesh {
    _dir: tempfile::TempDir,
    strait: Strait,
}

impl Mesh {
    fn start(backend: &Nginx, server_extra: &str) -> Mesh {
        let dir = tempfile::tempdir().unwrap();
        let disco = dir.path().join("disco");
        std::fs::create_dir(&disco).unwrap();
        std::fs::write(disco.join("web"), format!("{}\n", backend.fs_line())).unwrap();
        let path = dir.path().join("linkerd.yaml");
        std::fs::write(
            &path,
            format!(
                "admin: {{port: 0}}\n\
                 namers:\n\
                 - kind: io.l5d.fs\n  rootDir: {}\n\
                 routers:\n\
                 - protocol: h2\n  label: h2\n  \
                 dtab: /svc => /#/io.l5d.fs;\n  \
                 servers:\n  - port: 0\n{server_extra}",
                disco.display()
            ),
        )
        .unwrap();
        let strait = Strait::start(BIN, &path);
        Mesh { _dir: dir, strait }
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it, as
/// `ca.pem`, `server.pem` and `server.key` in `dir`.
fn certs(dir: &Path) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Strait h2 test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "web".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
}

fn routed(what: &str, r: &H2Response) {
    assert_eq!(r.status, 200, "{what}: {r:?}");
    assert_eq!(
        r.http_version, "2",
        "{what}: curl spoke HTTP/{}: {r:?}",
        r.http_version
    );
    assert_eq!(
        r.text(),
        "hello from nginx over HTTP/2.0\n",
        "{what}: the backend's answer, which it got over HTTP/2"
    );
}

#[test]
fn curl_with_http2_prior_knowledge_is_routed_to_an_h2c_backend() {
    let backend = nginx();
    let mesh = Mesh::start(&backend, "");
    let url = format!("http://{}/", mesh.strait.router());
    let r = h2_curl(&["--http2-prior-knowledge", "-H", "Host: web", &url], None);
    routed("h2c GET", &r);
}

#[test]
fn curl_with_http2_over_tls_negotiates_h2_and_is_routed() {
    let backend = nginx();
    let dir = tempfile::tempdir().unwrap();
    certs(dir.path());
    let tls = format!(
        "    tls: {{certPath: {}, keyPath: {}}}\n",
        dir.path().join("server.pem").display(),
        dir.path().join("server.key").display()
    );
    let mesh = Mesh::start(&backend, &tls);
    let ca = dir.path().join("ca.pem");
    let url = format!("https://{}/", mesh.strait.router());
    let r = h2_curl(
        &[
            "--http2",
            "--cacert",
            ca.to_str().unwrap(),
            "-H",
            "Host: web",
            &url,
        ],
        None,
    );
    assert_eq!(r.exit, 0, "curl failed: {}", r.curl_stderr);
    routed("h2 over TLS (ALPN)", &r);
}

#[test]
fn an_http1_request_to_an_h2_server_is_refused_saying_it_speaks_http2() {
    let backend = nginx();
    let mesh = Mesh::start(&backend, "");
    let url = format!("http://{}/", mesh.strait.router());
    let r = h2_curl(&["--http1.1", "-H", "Host: web", &url], None);
    assert_eq!(r.http_version, "1.1", "{r:?}");
    assert_eq!(r.status, 400, "HTTP/1.1 to an h2 server: {r:?}");
    assert!(
        r.text().contains("HTTP/2"),
        "the refusal should say the port speaks HTTP/2: {:?}",
        r.text()
    );
    // The same port still serves HTTP/2.
    routed(
        "h2c after the refusal",
        &h2_curl(&["--http2-prior-knowledge", "-H", "Host: web", &url], None),
    );
}

#[test]
fn a_reload_keeps_the_h2_connection_of_an_unchanged_client() {
    // nginx says which of its connections served the request.
    let backend = Nginx::h2c(
        "default_type text/plain; return 200 \"connection $connection\\n\";",
        "",
    );
    let dir = tempfile::tempdir().unwrap();
    let disco = dir.path().join("disco");
    std::fs::create_dir(&disco).unwrap();
    std::fs::write(disco.join("web"), format!("{}\n", backend.fs_line())).unwrap();
    let path = dir.path().join("linkerd.yaml");
    let config = |dtab: &str| {
        format!(
            "admin: {{port: 0}}\n\
             namers:\n\
             - kind: io.l5d.fs\n  rootDir: {}\n\
             routers:\n\
             - protocol: h2\n  label: h2\n  \
             dtab: {dtab}\n  \
             servers:\n  - port: 0\n",
            disco.display()
        )
    };
    std::fs::write(&path, config("/svc => /#/io.l5d.fs;")).unwrap();
    let strait = Strait::start(BIN, &path);
    let url = format!("http://{}/", strait.router());
    let get = || {
        let r = h2_curl(&["--http2-prior-knowledge", "-H", "Host: web", &url], None);
        assert_eq!(r.status, 200, "{r:?}");
        r.text()
    };
    let before = get();
    assert_eq!(get(), before, "one multiplexed connection to the endpoint");
    // A new dtab (another entry), the same client policy.
    std::fs::write(
        &path,
        config("/svc => /#/io.l5d.fs; /other => /#/io.l5d.fs;"),
    )
    .unwrap();
    strait.proc.signal("HUP");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !strait.proc.stderr().contains("config reload applied")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        strait.proc.stderr().contains("config reload applied"),
        "{}",
        strait.proc.stderr()
    );
    assert_eq!(
        get(),
        before,
        "after the reload the request rides the same upstream connection"
    );
}

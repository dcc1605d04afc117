//! Server-side TLS with the real binary: certificates made in the test
//! (rcgen), real curl, openssl and wrk as clients, real Python backends.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use strait_test_kit::{Backend, Behavior, Strait, curl, wrk_in_background};

const BIN: &str = env!("CARGO_BIN_EXE_strait");

/// A test CA that issues server and client certificates into `dir`.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let pem = p.self_signed(&key).unwrap().pem();
        Ca {
            issuer: Issuer::new(p, key),
            pem,
        }
    }

    /// Writes `<name>.pem` and `<name>.key` (PKCS#8) into `dir`: a leaf for
    /// localhost and 127.0.0.1 with `serial`, valid `days` from now.
    fn issue(
        &self,
        dir: &Path,
        name: &str,
        serial: u64,
        days: u64,
        client: bool,
    ) -> (PathBuf, PathBuf) {
        self.issue_for(
            KeyPair::generate().unwrap(),
            dir,
            name,
            serial,
            days,
            client,
        )
    }

    /// [`Ca::issue`] for `key`.
    fn issue_for(
        &self,
        key: KeyPair,
        dir: &Path,
        name: &str,
        serial: u64,
        days: u64,
        client: bool,
    ) -> (PathBuf, PathBuf) {
        let mut p =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.serial_number = Some(SerialNumber::from(serial));
        p.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        p.not_before = epoch + (now - Duration::from_secs(3600));
        p.not_after = epoch + (now + Duration::from_secs(days * 86_400));
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        let (c, k) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        // Written beside and renamed: a reload never reads half a file.
        for (path, text) in [(&k, key.serialize_pem()), (&c, cert.pem())] {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, path).unwrap();
        }
        (c, k)
    }

    fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, &self.pem).unwrap();
        p
    }
}

struct Setup {
    dir: tempfile::TempDir,
    conf: PathBuf,
    strait: Strait,
    ca: PathBuf,
}

/// Strait with one router `web` whose server has `server_tls`, and an
/// admin with `admin_extra`; `/svc/web` goes to `backend`.
fn start(backend: &Backend, dir: tempfile::TempDir, server_tls: &str, admin_extra: &str) -> Setup {
    let disco = dir.path().join("disco");
    std::fs::create_dir_all(&disco).unwrap();
    std::fs::write(disco.join("web"), format!("{}\n", backend.fs_line())).unwrap();
    let conf = dir.path().join("linkerd.yaml");
    std::fs::write(
        &conf,
        format!(
            concat!(
                "admin:\n  port: 0\n{admin_extra}namers:\n- kind: io.l5d.fs\n  rootDir: {}\n",
                "routers:\n- protocol: http\n  label: web\n  dtab: /svc => /#/io.l5d.fs;\n",
                "  servers:\n  - port: 0\n    tls: {}\n",
            ),
            disco.display(),
            server_tls,
            admin_extra = admin_extra,
        ),
    )
    .unwrap();
    let strait = Strait::start(BIN, &conf);
    let ca = dir.path().join("ca.pem");
    Setup {
        dir,
        conf,
        strait,
        ca,
    }
}

impl Setup {
    fn url(&self) -> String {
        format!("https://{}/", self.strait.router())
    }

    fn get(&self, extra: &[&str]) -> strait_test_kit::Response {
        let ca = self.ca.display().to_string();
        let url = self.url();
        let mut args = vec!["--cacert", &ca, "-H", "Host: web"];
        args.extend_from_slice(extra);
        args.push(&url);
        curl(&args, &[])
    }

    fn metrics(&self) -> serde_json::Value {
        let r = curl(
            &[&format!("http://{}/admin/metrics.json", self.strait.admin)],
            &[],
        );
        serde_json::from_str(&r.body).unwrap()
    }

    fn server_metric(&self, name: &str) -> i64 {
        let a = self.strait.router();
        let key = format!("rt/web/server/{}/{}/{name}", a.ip(), a.port());
        self.metrics()[&key].as_i64().unwrap_or(-1)
    }

    /// Sends SIGHUP and waits for the next reload outcome.
    fn hup(&self) -> serde_json::Value {
        let status = || {
            let r = curl(
                &[&format!("http://{}/admin/reload.json", self.strait.admin)],
                &[],
            );
            serde_json::from_str::<serde_json::Value>(&r.body).unwrap_or_default()
        };
        // Each outcome here differs from the one before (the start has no
        // source; an applied one no errors).
        let before = status();
        self.strait.proc.signal("HUP");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = status();
            if now != before {
                return now;
            }
            assert!(Instant::now() < deadline, "no reload outcome after SIGHUP");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The serial number of the certificate the server presents now.
    fn serial(&self) -> String {
        let a = self.strait.router();
        let s_client = Command::new("openssl")
            .args(["s_client", "-connect", &a.to_string()])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl must be installed (scripts/test installs it)");
        let mut x509 = Command::new("openssl")
            .args(["x509", "-noout", "-serial"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        x509.stdin
            .take()
            .unwrap()
            .write_all(&s_client.stdout)
            .unwrap();
        let out = x509.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

fn server_tls(dir: &Path, ca: &Ca, extra: &str) -> String {
    let (cert, key) = ca.issue(dir, "server", 1, 90, false);
    ca.write(dir, "ca.pem");
    format!(
        "{{certPath: {}, keyPath: {}{extra}}}",
        cert.display(),
        key.display()
    )
}

#[test]
fn a_tls_server_terminates_and_routes_to_a_plaintext_backend() {
    let backend = Backend::start("web");
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Strait test CA");
    let tls = server_tls(dir.path(), &ca, "");
    let s = start(&backend, dir, &tls, "");
    let r = s.get(&[]);
    assert_eq!(r.status, 200, "curl --cacert through the TLS server: {r:?}");
    assert_eq!(r.body, "instance web\n");

    // Plaintext HTTP to the TLS port: no answer, counted as a protocol failure.
    let plain = curl(
        &["-H", "Host: web", &format!("http://{}/", s.strait.router())],
        &[],
    );
    assert_eq!(
        plain.status, 0,
        "plaintext is not served on a TLS port: {plain:?}"
    );
    assert!(
        s.server_metric("tls/handshake_failures/protocol") >= 1,
        "a non-TLS client is a protocol failure: {}",
        s.metrics()
    );
    let left = s.server_metric("tls/expires_in_seconds");
    assert!(
        (89 * 86_400..=90 * 86_400).contains(&left),
        "the expiry gauge counts the seconds to not-after (90 days): {left}"
    );
    let r = curl(&[&format!("http://{}/admin/tls.json", s.strait.admin)], &[]);
    let list: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let cert = &list[0];
    assert_eq!(cert["subject"], "CN=server", "{list}");
    assert_eq!(cert["serial"], "01", "{list}");
    assert_eq!(
        cert["sans"],
        serde_json::json!(["DNS:localhost", "IP:127.0.0.1"]),
        "{list}"
    );
    assert!(
        cert["server"]
            .as_str()
            .unwrap()
            .starts_with("rt/web/server/127.0.0.1/"),
        "{list}"
    );
    assert!(
        cert["secondsLeft"].as_i64().unwrap() > 89 * 86_400,
        "{list}"
    );
    let r = curl(&[&format!("http://{}/config.json", s.strait.admin)], &[]);
    let config: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let shown = &config["routers"][0]["servers"][0]["tls"];
    assert_eq!(
        shown["certPath"],
        s.dir.path().join("server.pem").display().to_string(),
        "/config.json shows the tls block with Linkerd's keys: {shown}"
    );
    assert_eq!(shown["requireClientAuth"], false, "{shown}");
}

#[test]
fn require_client_auth_refuses_clients_without_a_certificate_of_the_ca() {
    let backend = Backend::start("web");
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Strait test CA");
    let tls = server_tls(
        dir.path(),
        &ca,
        &format!(
            ", caCertPath: {}, requireClientAuth: true",
            dir.path().join("ca.pem").display()
        ),
    );
    let (cert, key) = ca.issue(dir.path(), "client", 7, 30, true);
    let other = Ca::new("Another CA");
    let (ocert, okey) = other.issue(dir.path(), "stranger", 8, 30, true);
    let s = start(&backend, dir, &tls, "");

    let r = s.get(&[]);
    assert_ne!(r.status, 200, "no client certificate: refused: {r:?}");
    let r = s.get(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(
        r.status, 200,
        "a client certificate of the CA is served: {r:?}"
    );
    assert_eq!(r.body, "instance web\n");
    let r = s.get(&[
        "--cert",
        ocert.to_str().unwrap(),
        "--key",
        okey.to_str().unwrap(),
    ]);
    assert_ne!(r.status, 200, "a certificate of another CA: refused: {r:?}");
    assert!(
        s.server_metric("tls/handshake_failures/unknown_ca") >= 1,
        "another CA's certificate is counted as unknown_ca: {}",
        s.metrics()
    );
    assert!(
        s.server_metric("tls/handshake_failures/bad_certificate") >= 1,
        "a missing certificate is counted as bad_certificate: {}",
        s.metrics()
    );
    let log = s.strait.proc.stderr();
    assert_eq!(
        log.matches("TLS handshake failed").count(),
        1,
        "one line per peer IP per minute, though 2 handshakes failed from 127.0.0.1: {log}"
    );
}

#[test]
fn a_reload_swaps_in_a_renewed_certificate_without_failing_a_request() {
    let backend = Backend::scripted("web", Behavior::Ok);
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Strait test CA");
    let tls = server_tls(dir.path(), &ca, "");
    let s = start(&backend, dir, &tls, "");
    assert!(
        s.serial().ends_with("=01"),
        "the first certificate: {}",
        s.serial()
    );

    let load = wrk_in_background(s.url(), "web", 4);
    std::thread::sleep(Duration::from_millis(500));
    ca.issue(s.dir.path(), "server", 2, 90, false);
    let outcome = s.hup();
    assert_eq!(
        outcome["result"], "applied",
        "the same config re-reads its files: {outcome}"
    );
    assert!(
        s.serial().ends_with("=02"),
        "new connections get the renewed certificate: {}",
        s.serial()
    );
    assert_eq!(s.get(&[]).status, 200);

    // A bad file: the reload is refused naming it, the renewed one serves on.
    let key = s.dir.path().join("server.key");
    std::fs::write(&key, "not a key").unwrap();
    let outcome = s.hup();
    assert_eq!(outcome["result"], "rejected", "{outcome}");
    assert!(
        outcome.to_string().contains(&key.display().to_string()),
        "the error names the file: {outcome}"
    );
    assert!(
        s.serial().ends_with("=02"),
        "the old certificate keeps serving: {}",
        s.serial()
    );

    let load = load.join().unwrap();
    assert!(load.requests > 100, "wrk ran over https: {}", load.text);
    assert_eq!(
        (load.non2xx, load.socket_errors),
        (0, 0),
        "no request fails across the reloads (open connections keep their TLS): {}",
        load.text
    );
    let _ = &s.conf;
}

#[test]
fn the_admin_serves_over_tls() {
    let backend = Backend::start("web");
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Strait test CA");
    let tls = server_tls(dir.path(), &ca, "");
    let admin = format!("  tls: {tls}\n");
    let s = start(&backend, dir, &tls, &admin);
    let ca = s.ca.display().to_string();
    let r = curl(
        &[
            "--cacert",
            &ca,
            &format!("https://{}/admin/ping", s.strait.admin),
        ],
        &[],
    );
    assert_eq!((r.status, r.body.as_str()), (200, "pong"), "{r:?}");
    let plain = curl(&[&format!("http://{}/admin/ping", s.strait.admin)], &[]);
    assert_eq!(plain.status, 0, "no plaintext on a TLS admin: {plain:?}");

    let admin = |path: &str| {
        curl(
            &[
                "--cacert",
                &ca,
                &format!("https://{}{path}", s.strait.admin),
            ],
            &[],
        )
    };
    let m: serde_json::Value = serde_json::from_str(&admin("/admin/metrics.json").body).unwrap();
    assert_eq!(m["admin/tls/handshake_failures/protocol"], 1, "{m}");
    assert!(
        m["admin/tls/expires_in_seconds"].as_i64().unwrap() > 89 * 86_400,
        "{m}"
    );
    let list: serde_json::Value = serde_json::from_str(&admin("/admin/tls.json").body).unwrap();
    let servers: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["server"].as_str().unwrap())
        .collect();
    assert_eq!(
        servers.len(),
        2,
        "the admin's certificate and the router server's: {list}"
    );
    assert_eq!(servers[0], "admin", "{list}");

    // The TLS series are clean Prometheus text.
    let prom = admin("/metrics");
    assert!(prom.body.contains("handshake_failures"), "{}", prom.body);
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool must be installed (scripts/test installs Debian's prometheus)");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), prom.body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        prom.body
    );
}

fn check(dir: &Path, tls: &str) -> (bool, String) {
    let conf = dir.join("check.yaml");
    std::fs::write(
        &conf,
        format!("routers:\n- protocol: http\n  servers:\n  - port: 0\n    tls: {tls}\n"),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn check_reports_missing_and_mismatched_keys_and_warns_of_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new("Strait test CA");
    let (cert, key) = ca.issue(d, "server", 1, 90, false);
    let (_, other_key) = ca.issue(d, "other", 2, 90, false);
    let (soon, soon_key) = ca.issue(d, "soon", 3, 3, false);

    let missing = d.join("missing.key");
    let (ok, out) = check(
        d,
        &format!(
            "{{certPath: {}, keyPath: {}}}",
            cert.display(),
            missing.display()
        ),
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("routers[0].servers[0].tls.keyPath")
            && out.contains(&missing.display().to_string()),
        "a missing key file: the key path and the file: {out}"
    );

    let (ok, out) = check(
        d,
        &format!(
            "{{certPath: {}, keyPath: {}}}",
            cert.display(),
            other_key.display()
        ),
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("routers[0].servers[0].tls.keyPath")
            && out.contains("is not the private key of the certificate"),
        "a key of another certificate: {out}"
    );

    let (ok, out) = check(
        d,
        &format!(
            "{{certPath: {}, keyPath: {}}}",
            soon.display(),
            soon_key.display()
        ),
    );
    assert!(ok, "expiring soon is a warning, not an error: {out}");
    assert!(
        out.contains("routers[0].servers[0].tls.certPath: warning: the certificate in")
            && (out.contains("expires in 2 days 23 hours")
                || out.contains("expires in 3 days 0 hours")),
        "{out}"
    );

    let (ok, out) = check(
        d,
        &format!(
            "{{certPath: {}, keyPath: {}}}",
            cert.display(),
            key.display()
        ),
    );
    assert!(ok && !out.contains("warning"), "{out}");
}

#[test]
fn check_refuses_old_protocols_unknown_ciphers_and_keys_linkerd_servers_lack() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new("Strait test CA");
    let (cert, key) = ca.issue(d, "server", 1, 90, false);
    let (ok, out) = check(
        d,
        &format!(
            "{{certPath: {}, keyPath: {}, protocols: [TLSv1.1, TLSv1.3], \
             ciphers: [TLS_RSA_WITH_RC4_128_MD5, TLS_AES_128_GCM_SHA256], enabled: true, \
             requireClientAuth: true}}",
            cert.display(),
            key.display()
        ),
    );
    assert!(!ok, "{out}");
    for want in [
        "routers[0].servers[0].tls.protocols[0]: 'TLSv1.1' is refused: Strait's TLS (rustls) speaks only TLSv1.2 and TLSv1.3",
        "routers[0].servers[0].tls.ciphers[0]: unknown or unsupported cipher suite 'TLS_RSA_WITH_RC4_128_MD5'; supported: TLS_",
        "routers[0].servers[0].tls.enabled: `enabled` is not a key of a server's tls",
        "routers[0].servers[0].tls.requireClientAuth: requireClientAuth: true needs caCertPath",
    ] {
        assert!(out.contains(want), "wanted {want:?} in:\n{out}");
    }
    let (ok, out) = check(d, "{certPath: /nonexistent/cert.pem}");
    assert!(!ok, "{out}");
    assert!(
        out.contains("routers[0].servers[0].tls.keyPath: missing required key 'keyPath'"),
        "{out}"
    );
}

#[test]
fn handshakes_run_in_their_own_task_bounded_by_request_header_timeout() {
    let backend = Backend::start("web");
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Strait test CA");
    let tls = server_tls(dir.path(), &ca, "") + "\n    requestHeaderTimeoutMs: 1000";
    let s = start(&backend, dir, &tls, "");
    // Clients that connect and never say hello.
    let connected = Instant::now();
    let silent: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(s.strait.router()).unwrap())
        .collect();
    let r = s.get(&[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        connected.elapsed() < Duration::from_millis(2500),
        "silent clients do not hold up the accept loop: {:?}",
        connected.elapsed()
    );
    for mut c in silent {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let n = c.read(&mut [0u8; 16]);
        assert!(
            matches!(n, Ok(0)) || n.is_err(),
            "a silent client is closed: {n:?}"
        );
    }
    assert!(
        connected.elapsed() >= Duration::from_millis(900),
        "closed at requestHeaderTimeoutMs, not before: {:?}",
        connected.elapsed()
    );
    assert_eq!(
        s.server_metric("tls/handshake_failures/other"),
        3,
        "a handshake timeout counts as other: {}",
        s.metrics()
    );
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be installed (scripts/test installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pkcs1_and_sec1_keys_serve_as_well_as_pkcs8() {
    let backend = Backend::start("web");
    let ca = Ca::new("Strait test CA");
    // SEC1 (`BEGIN EC PRIVATE KEY`): rcgen's P-256 key in OpenSSL's
    // traditional form.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ca.write(d, "ca.pem");
    let (cert, key) = ca.issue(d, "server", 1, 90, false);
    let sec1 = d.join("sec1.key");
    openssl(&[
        "pkey",
        "-in",
        key.to_str().unwrap(),
        "-traditional",
        "-out",
        sec1.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read_to_string(&sec1)
            .unwrap()
            .starts_with("-----BEGIN EC PRIVATE KEY-----")
    );
    let tls = format!(
        "{{certPath: {}, keyPath: {}}}",
        cert.display(),
        sec1.display()
    );
    let s = start(&backend, dir, &tls, "");
    assert_eq!(s.get(&[]).status, 200, "served with a SEC1 key");
    drop(s);

    // PKCS#1 (`BEGIN RSA PRIVATE KEY`): an RSA key from openssl, its
    // certificate from the test CA.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ca.write(d, "ca.pem");
    let (pkcs1, pkcs8) = (d.join("rsa1.key"), d.join("rsa8.key"));
    openssl(&[
        "genrsa",
        "-traditional",
        "-out",
        pkcs1.to_str().unwrap(),
        "2048",
    ]);
    openssl(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        pkcs1.to_str().unwrap(),
        "-out",
        pkcs8.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read_to_string(&pkcs1)
            .unwrap()
            .starts_with("-----BEGIN RSA PRIVATE KEY-----")
    );
    let rsa = KeyPair::from_pem(&std::fs::read_to_string(&pkcs8).unwrap()).unwrap();
    let (cert, _) = ca.issue_for(rsa, d, "rsa", 2, 90, false);
    let tls = format!(
        "{{certPath: {}, keyPath: {}}}",
        cert.display(),
        pkcs1.display()
    );
    let s = start(&backend, dir, &tls, "");
    assert_eq!(s.get(&[]).status, 200, "served with a PKCS#1 key");
}

/// `strait check` on a router whose `client` block is `client`.
fn check_client(dir: &Path, client: &str) -> (bool, String) {
    let conf = dir.join("client.yaml");
    std::fs::write(
        &conf,
        format!(
            "routers:\n- protocol: http\n  dtab: /svc => /$/inet/127.1/1;\n  servers: [{{port: 0}}]\n  \
             client:\n{client}"
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The line of `out` that names `key`, checked to be `file:line:col: key`.
fn line_of<'a>(out: &'a str, key: &str) -> &'a str {
    let line = out
        .lines()
        .find(|l| l.contains(&format!(": {key}: ")))
        .unwrap_or_else(|| panic!("no line for {key}: {out}"));
    let before = &line[..line.find(&format!(": {key}: ")).unwrap()];
    let mut parts = before.rsplit(':');
    let col = parts.next().unwrap();
    let row = parts.next().unwrap();
    assert!(
        col.parse::<usize>().is_ok() && row.parse::<usize>().is_ok(),
        "line:column before the key path: {line}"
    );
    line
}

#[test]
fn check_checks_client_tls_files_like_server_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new("Strait client test CA");
    let bundle = ca.write(d, "ca.pem");
    let (cert, key) = ca.issue(d, "client", 1, 90, true);
    let (_, other_key) = ca.issue(d, "other", 2, 90, true);
    let (soon, soon_key) = ca.issue(d, "soon", 3, 3, true);
    let block = |cert: &Path, key: &Path| {
        format!(
            "{{commonName: web, trustCertsBundle: {}, clientAuth: {{certPath: {}, keyPath: {}}}}}",
            bundle.display(),
            cert.display(),
            key.display()
        )
    };

    // A key that is not the certificate's, in the second static item.
    let (ok, out) = check_client(
        d,
        &format!(
            "    kind: io.l5d.static\n    configs:\n    - prefix: /\n      tls: {}\n    \
             - prefix: /$\n      tls: {}\n",
            block(&cert, &key),
            block(&cert, &other_key)
        ),
    );
    assert!(!ok, "{out}");
    let line = line_of(&out, "routers[0].client.configs[1].tls.clientAuth.keyPath");
    assert!(
        line.contains(&other_key.display().to_string())
            && line.contains("is not the private key of the certificate"),
        "{out}"
    );

    // A trust bundle that does not exist.
    let missing = d.join("missing-ca.pem");
    let (ok, out) = check_client(
        d,
        &format!(
            "    tls: {{commonName: web, trustCertsBundle: {}}}\n",
            missing.display()
        ),
    );
    assert!(!ok, "{out}");
    let line = line_of(&out, "routers[0].client.tls.trustCertsBundle");
    assert!(
        line.contains(&format!("cannot read {}", missing.display())),
        "{out}"
    );

    // A client certificate expiring in 3 days: a warning only.
    let (ok, out) = check_client(d, &format!("    tls: {}\n", block(&soon, &soon_key)));
    assert!(ok, "expiring soon is a warning, not an error: {out}");
    assert!(
        out.contains("routers[0].client.tls.clientAuth.certPath: warning: the certificate in")
            && out.contains(&soon.display().to_string())
            && (out.contains("expires in 2 days 23 hours")
                || out.contains("expires in 3 days 0 hours")),
        "{out}"
    );

    let (ok, out) = check_client(d, &format!("    tls: {}\n", block(&cert, &key)));
    assert!(ok && !out.contains("warning"), "{out}");
}

#[test]
fn check_checks_the_consul_namers_and_interpreters_tls_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let missing = d.join("missing-ca.pem");
    let conf = d.join("consul.yaml");
    std::fs::write(
        &conf,
        format!(
            "namers:\n- kind: io.l5d.consul\n  tls: {{trustCertsBundle: {0}}}\n\
             routers:\n- protocol: http\n  dtab: /svc => /#/io.l5d.consul/dc1;\n  \
             interpreter:\n    kind: io.l5d.consul.interpreter\n    \
             tls: {{trustCertsBundle: {0}}}\n  servers: [{{port: 0}}]\n",
            missing.display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    for key in [
        "namers[0].tls.trustCertsBundle",
        "routers[0].interpreter.tls.trustCertsBundle",
    ] {
        let line = line_of(&text, key);
        assert!(
            line.contains(&format!("cannot read {}", missing.display())),
            "{text}"
        );
    }
}

/// The client certificate and the CA a client `tls` block reads are in
/// `/admin/tls.json` with who uses them, and each has an expiry gauge,
/// clean in Prometheus text.
#[test]
fn client_certificates_are_listed_with_expiry_gauges() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new("Strait client test CA");
    let bundle = ca.write(d, "ca.pem");
    let (cert, key) = ca.issue(d, "client", 1, 90, true);
    let conf = d.join("linkerd.yaml");
    std::fs::write(
        &conf,
        format!(
            "admin: {{port: 0}}\nrouters:\n- protocol: http\n  label: out\n  \
             dtab: /svc => /$/inet/127.1/1;\n  servers: [{{port: 0}}]\n  client:\n    \
             tls: {{commonName: web, trustCertsBundle: {}, clientAuth: {{certPath: {}, keyPath: {}}}}}\n",
            bundle.display(),
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let strait = Strait::start(BIN, &conf);
    let admin = |path: &str| curl(&[&format!("http://{}{path}", strait.admin)], &[]);

    let list: serde_json::Value = serde_json::from_str(&admin("/admin/tls.json").body).unwrap();
    let entries = list.as_array().unwrap();
    let find = |role: &str| {
        entries
            .iter()
            .find(|e| e["role"] == role)
            .unwrap_or_else(|| panic!("no {role} entry: {list}"))
    };
    let client = find("clientAuth");
    assert_eq!(client["path"], cert.display().to_string(), "{list}");
    assert_eq!(client["usedBy"], "rt/out/client_tls/default", "{list}");
    assert_eq!(
        client["configKey"], "routers[0].client.tls.clientAuth.certPath",
        "{list}"
    );
    assert!(
        client["secondsLeft"].as_i64().unwrap() > 89 * 86_400,
        "{list}"
    );
    let trust = find("trust");
    assert_eq!(trust["path"], bundle.display().to_string(), "{list}");
    assert_eq!(trust["subject"], "CN=Strait client test CA", "{list}");
    assert!(trust["secondsLeft"].as_i64().unwrap() > 0, "{list}");

    let m: serde_json::Value = serde_json::from_str(&admin("/admin/metrics.json").body).unwrap();
    let left = m["rt/out/client_tls/default/client_auth/expires_in_seconds"]
        .as_i64()
        .unwrap_or_else(|| panic!("no client gauge: {m}"));
    assert!(left > 89 * 86_400 && left <= 90 * 86_400, "{left}");
    assert!(
        m["rt/out/client_tls/default/trust/0/expires_in_seconds"]
            .as_i64()
            .is_some(),
        "{m}"
    );

    let prom = admin("/metrics");
    assert!(
        prom.body
            .contains("rt_client_tls_default_client_auth_expires_in_seconds{rt=\"out\"}"),
        "{}",
        prom.body
    );
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool must be installed (scripts/test installs Debian's prometheus)");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), prom.body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        prom.body
    );
}

//! TLS to backends, end to end: the real binary in front of a real nginx
//! TLS server, with certificates made here (rcgen): a CA, a server
//! certificate for `web.test` and 127.0.0.1, a client certificate, and a
//! self-signed one. Needs `nginx` (Debian's nginx-light; scripts/test
//! installs it).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strait_test_kit::{Strait, curl};

const BIN: &str = env!("CARGO_BIN_EXE_strait");

/// The certificates of one test, as PEM files in `dir`: `ca.pem`,
/// `server.pem`/`server.key` (for `web.test`, 127.0.0.1, signed by the
/// CA), `client.pem`/`client.key` (signed by the CA), `self.pem`/
/// `self.key` (self-signed, `web.test`).
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn new() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        // Each CA its own name: a CA with another's name but another key
        // would be a bad signature rather than an unknown CA.
        static CAS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = CAS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, format!("Strait test CA {n}"));
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
        write("ca.pem", ca_cert.pem());
        let leaf = |names: &[&str], file: &str| {
            let key = rcgen::KeyPair::generate().unwrap();
            let params = rcgen::CertificateParams::new(
                names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            )
            .unwrap();
            let cert = params.signed_by(&key, &issuer).unwrap();
            write(&format!("{file}.pem"), cert.pem());
            write(&format!("{file}.key"), key.serialize_pem());
        };
        leaf(&["web.test", "127.0.0.1"], "server");
        leaf(&["client.test"], "client");
        let key = rcgen::KeyPair::generate().unwrap();
        let own = rcgen::CertificateParams::new(vec!["web.test".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        write("self.pem", own.pem());
        write("self.key", key.serialize_pem());
        Certs { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A real nginx TLS server answering `hello from nginx` on 127.0.0.1.
struct Nginx {
    child: Child,
    addr: SocketAddr,
    _prefix: tempfile::TempDir,
}

impl Drop for Nginx {
    /// SIGTERM to the master, which stops its worker (SIGKILL would leave
    /// the worker running).
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
    }
}

/// A port free now (bound to 0, then released): nginx cannot listen on 0.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Nginx {
    /// nginx presenting `cert`/`key`; with `client_ca`, it requires a
    /// client certificate signed by it.
    fn start(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Nginx {
        Nginx::serving(cert, key, client_ca, "return 200 \"hello from nginx\\n\";")
    }

    /// nginx with `location` as its `location /` block's body.
    fn serving(cert: &Path, key: &Path, client_ca: Option<&Path>, location: &str) -> Nginx {
        let nginx = ["nginx", "/usr/sbin/nginx"]
            .into_iter()
            .find(|n| Command::new(n).arg("-v").output().is_ok())
            .expect("nginx must be installed (Debian's nginx-light; scripts/test installs it)");
        let prefix = tempfile::tempdir().unwrap();
        let port = free_port();
        let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
        let verify = client_ca.map_or(String::new(), |ca| {
            format!(
                "ssl_verify_client on; ssl_client_certificate {};",
                ca.display()
            )
        });
        let conf = format!(
            "{user}worker_processes 1;\nevents {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  server {{\n    listen 127.0.0.1:{port} ssl;\n    \
             ssl_certificate {cert};\n    ssl_certificate_key {key};\n    {verify}\n    \
             location / {{ {location} }}\n  }}\n}}\n",
            user = if root { "user root;\n" } else { "" },
            cert = cert.display(),
            key = key.display(),
        );
        let conf_path = prefix.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(nginx)
            .arg("-p")
            .arg(prefix.path())
            .arg("-e")
            .arg(prefix.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .arg("-g")
            .arg(format!(
                "daemon off; pid {dir}/nginx.pid; error_log {dir}/error.log;",
                dir = prefix.path().display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx {
            child,
            addr,
            _prefix: prefix,
        }
    }
}

/// Strait with one router `out` (`/svc => /#/io.l5d.fs`), the services
/// `names` all at `backend`, and `client` as the router's `client` block.
struct Mesh {
    _dir: tempfile::TempDir,
    strait: Strait,
}

impl Mesh {
    fn start(backend: SocketAddr, names: &[&str], client: &str) -> Mesh {
        let dir = tempfile::tempdir().unwrap();
        let disco = dir.path().join("disco");
        std::fs::create_dir(&disco).unwrap();
        for n in names {
            let line = format!("{} {}\n", backend.ip(), backend.port());
            std::fs::write(disco.join(n), line).unwrap();
        }
        let path = dir.path().join("linkerd.yaml");
        std::fs::write(
            &path,
            format!(
                "admin:\n  port: 0\nnamers:\n- kind: io.l5d.fs\n  rootDir: {}\nrouters:\n\
                 - protocol: http\n  label: out\n  dtab: /svc => /#/io.l5d.fs;\n  servers:\n  \
                 - port: 0\n  client:\n{client}",
                disco.display()
            ),
        )
        .unwrap();
        let strait = Strait::start(BIN, &path);
        Mesh { _dir: dir, strait }
    }

    fn get(&self, host: &str) -> strait_test_kit::Response {
        let url = format!("http://{}/", self.strait.router());
        curl(&["-H", &format!("Host: {host}"), &url], &[])
    }

    fn metric(&self, name: &str) -> i64 {
        let url = format!("http://{}/admin/metrics.json", self.strait.admin);
        let j: serde_json::Value = serde_json::from_str(&curl(&[&url], &[]).body).unwrap();
        j[name].as_i64().unwrap_or(0)
    }

    /// `l5d-err`, URL-decoded (form encoding: `+` is a space).
    fn err(r: &strait_test_kit::Response) -> String {
        let raw = r.header("l5d-err").unwrap_or("").as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < raw.len() {
            match raw[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < raw.len() => {
                    let hex = std::str::from_utf8(&raw[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    }
}

/// The block of a global client with `tls` keys `keys` (flow mapping body).
fn global(keys: &str) -> String {
    format!("    tls: {{{keys}}}\n")
}

#[test]
fn verified_backend_answers_and_a_wrong_common_name_is_a_502() {
    let certs = Certs::new();
    let nginx = Nginx::start(&certs.path("server.pem"), &certs.path("server.key"), None);
    let ca = certs.path("ca.pem");

    let ok = Mesh::start(
        nginx.addr,
        &["web"],
        &global(&format!(
            "commonName: web.test, trustCerts: [{}]",
            ca.display()
        )),
    );
    let r = ok.get("web");
    assert_eq!(r.status, 200, "{r:?}\n{}", ok.strait.proc.stderr());
    assert_eq!(r.body, "hello from nginx\n");

    let wrong = Mesh::start(
        nginx.addr,
        &["web"],
        &global(&format!(
            "commonName: web.example, trustCertsBundle: {}",
            ca.display()
        )),
    );
    let r = wrong.get("web");
    assert_eq!(r.status, 502, "{r:?}");
    let err = Mesh::err(&r);
    assert!(
        err.contains("certificate name mismatch: expected web.example, got"),
        "{err}"
    );
    let client = "rt/out/client/#/io.l5d.fs/web";
    assert!(wrong.metric(&format!("{client}/tls/handshake_failures")) >= 1);
    assert!(wrong.metric(&format!("{client}/tls/handshake_failures/name_mismatch")) >= 1);
    assert_eq!(
        wrong.metric(&format!("{client}/tls/handshake_failures/unknown_ca")),
        0
    );
    // Logged, at most once a minute for the endpoint.
    let _ = wrong.get("web");
    let logs = wrong.strait.proc.stderr();
    assert_eq!(logs.matches("TLS handshake failed").count(), 1, "{logs}");
}

#[test]
fn client_certificates_for_a_backend_that_requires_them() {
    let certs = Certs::new();
    let ca = certs.path("ca.pem");
    let nginx = Nginx::start(
        &certs.path("server.pem"),
        &certs.path("server.key"),
        Some(&ca),
    );
    let with = Mesh::start(
        nginx.addr,
        &["web"],
        &global(&format!(
            "commonName: web.test, trustCertsBundle: {}, clientAuth: {{certPath: {}, keyPath: {}}}",
            ca.display(),
            certs.path("client.pem").display(),
            certs.path("client.key").display()
        )),
    );
    let r = with.get("web");
    assert_eq!(r.status, 200, "{r:?}\n{}", with.strait.proc.stderr());

    // nginx finishes the handshake without a client certificate and
    // answers 400 itself; Strait passes that on.
    let without = Mesh::start(
        nginx.addr,
        &["web"],
        &global(&format!(
            "commonName: web.test, trustCertsBundle: {}",
            ca.display()
        )),
    );
    let r = without.get("web");
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("No required SSL certificate"), "{r:?}");
}

#[test]
fn self_signed_backends_need_disable_validation() {
    let certs = Certs::new();
    let nginx = Nginx::start(&certs.path("self.pem"), &certs.path("self.key"), None);
    let any = Mesh::start(nginx.addr, &["web"], &global("disableValidation: true"));
    let r = any.get("web");
    assert_eq!(r.status, 200, "{r:?}\n{}", any.strait.proc.stderr());
    assert!(any.strait.proc.stderr().contains("NOT verified"));

    let ca = certs.path("ca.pem");
    let strict = Mesh::start(
        nginx.addr,
        &["web"],
        &global(&format!(
            "commonName: web.test, trustCertsBundle: {}",
            ca.display()
        )),
    );
    let r = strict.get("web");
    assert_eq!(r.status, 502, "{r:?}");
    assert!(Mesh::err(&r).contains("unknown CA"), "{r:?}");
    let failures = "rt/out/client/#/io.l5d.fs/web/tls/handshake_failures/unknown_ca";
    assert!(strict.metric(failures) >= 1);
}

#[test]
fn static_configs_verify_each_destination_by_its_own_name() {
    let certs = Certs::new();
    let nginx = Nginx::start(&certs.path("server.pem"), &certs.path("server.key"), None);
    let ca = certs.path("ca.pem");
    let client = format!(
        "    kind: io.l5d.static\n    configs:\n    - prefix: /#/io.l5d.fs/{{service}}\n      \
         tls: {{commonName: \"{{service}}.test\", trustCertsBundle: {}}}\n    \
         - prefix: /#/io.l5d.fs/plain\n      tls: {{enabled: false}}\n",
        ca.display()
    );
    let mesh = Mesh::start(nginx.addr, &["web", "api", "plain"], &client);
    let r = mesh.get("web");
    assert_eq!(r.status, 200, "{r:?}\n{}", mesh.strait.proc.stderr());
    let r = mesh.get("api");
    assert_eq!(r.status, 502, "{r:?}");
    assert!(
        Mesh::err(&r).contains("expected api.test"),
        "the name is api's own: {r:?}"
    );
    // `enabled: false` in a later item: plain HTTP to a TLS port, which
    // nginx answers with a 400 of its own.
    let r = mesh.get("plain");
    assert_eq!(r.status, 400, "{r:?}");
}

/// A one-router config with `client` as its client block.
fn config_text(client: &str) -> String {
    format!(
        "routers:\n- protocol: http\n  dtab: /svc => /#/io.l5d.fs;\n  servers: [{{}}]\n  \
         client:\n{client}"
    )
}

fn config_errors(client: &str) -> Vec<String> {
    match strait::config::parse(&config_text(client), "linkerd.yaml") {
        Ok(c) => panic!("expected errors, got {c:#?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn config_errors_carry_key_paths() {
    assert_eq!(
        config_errors(
            "    kind: io.l5d.static\n    configs:\n    - prefix: /\n      \
             tls: {commonName: a, trustCerts: [/ca.pem], trustCertsBundle: /ca.pem}\n    \
             - prefix: /#\n      tls: {disableValidation: true, clientAuth: {certPath: /c, keyPath: /k}}\n    \
             - prefix: /#/x\n      tls: {commonName: a, clientAuth: {certPath: /c}, protocols: [TLSv1.1]}\n    \
             - prefix: /#/y\n      tls: {trustCertsBundle: /ca.pem, enabled: yes}\n"
        ),
        [
            "linkerd.yaml:9:69: routers[0].client.configs[0].tls.trustCertsBundle: Both trustCerts and trustCertsBundle have been set. Please use only trustCertsBundle.",
            "linkerd.yaml:11:32: routers[0].client.configs[1].tls.disableValidation: disableValidation: true is incompatible with clientAuth",
            "linkerd.yaml:13:40: routers[0].client.configs[2].tls.clientAuth.keyPath: missing required key 'keyPath'",
            "linkerd.yaml:13:68: routers[0].client.configs[2].tls.protocols[0]: unsupported TLS protocol 'TLSv1.1'; Strait speaks TLSv1.2 and TLSv1.3",
            "linkerd.yaml:15:12: routers[0].client.configs[3].tls.commonName: tls is configured with validation but `commonName` is not set",
            "linkerd.yaml:15:49: routers[0].client.configs[3].tls.enabled: expected true or false, found 'yes'",
        ]
    );
}

/// `strait run` with bad certificate files: it does not start, and says
/// which key of which router (the config's check of the files).
#[test]
fn missing_or_bad_files_stop_the_start_with_the_key_path() {
    let certs = Certs::new();
    for (tls, want) in [
        (
            "{commonName: a, trustCertsBundle: /nonexistent/ca.pem}".to_owned(),
            "routers[0].client.tls.trustCertsBundle: cannot read /nonexistent/ca.pem".to_owned(),
        ),
        (
            format!(
                "{{commonName: a, trustCerts: [{}]}}",
                certs.path("client.key").display()
            ),
            format!(
                "routers[0].client.tls.trustCerts[0]: {}: no certificate",
                certs.path("client.key").display()
            ),
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("linkerd.yaml");
        let text = config_text(&format!("    tls: {tls}\n"))
            .replace("servers: [{}]", "servers: [{port: 0}]");
        std::fs::write(
            &path,
            format!(
                "admin: {{port: 0}}\n{}",
                text.replace(
                    "routers:\n- protocol: http\n",
                    "routers:\n- protocol: http\n  label: out\n"
                )
            ),
        )
        .unwrap();
        let out = Command::new(BIN)
            .args(["run", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains(&want), "{want}\n{stderr}");
    }
}

#[test]
fn config_is_shown_and_lowered_per_destination() {
    let certs = Certs::new();
    let ca = certs.path("ca.pem").display().to_string();
    let text = config_text(&format!(
        "    kind: io.l5d.static\n    configs:\n    - prefix: /#/io.l5d.fs/{{service}}\n      \
         tls: {{commonName: \"{{service}}.test\", trustCertsBundle: {ca}}}\n    \
         - prefix: /#/io.l5d.fs/plain\n      tls: {{enabled: false}}\n"
    ));
    let config = strait::config::parse(&text, "linkerd.yaml").unwrap();
    let shown = serde_json::to_value(&config).unwrap();
    let tls = &shown["routers"][0]["client"]["configs"][0]["tls"];
    assert_eq!(tls["commonName"], "{service}.test", "{shown}");
    assert_eq!(tls["trustCertsBundle"], ca.as_str());
    assert_eq!(tls["enabled"], true);
    // What /config.json prints reads back as the same config.
    let again = strait::config::parse(&shown.to_string(), "config.json").unwrap();
    assert_eq!(again, config);

    let policies = strait::config::lower::policies(&config.routers[0]).unwrap();
    let name = |p: &str| {
        let tls = policies
            .client_for(&strait_dtab::Path::read(p).unwrap())
            .tls;
        tls.map(|t| t.common_name.unwrap_or_default())
    };
    assert_eq!(name("/#/io.l5d.fs/web"), Some("web.test".to_owned()));
    assert_eq!(name("/#/io.l5d.fs/api/v1"), Some("api.test".to_owned()));
    assert_eq!(name("/#/io.l5d.fs/plain"), None, "enabled: false wins");
    assert_eq!(name("/$/inet/127.1/80"), None, "no prefix matches");
}

/// A reload of an unchanged config still reads the certificate files: a
/// new CA bundle on disk takes effect for new connections.
#[test]
fn a_reload_takes_new_certificate_files() {
    let certs = Certs::new();
    let other = Certs::new();
    let nginx = Nginx::start(&certs.path("server.pem"), &certs.path("server.key"), None);
    let bundle_dir = tempfile::tempdir().unwrap();
    let bundle = bundle_dir.path().join("bundle.pem");
    std::fs::copy(certs.path("ca.pem"), &bundle).unwrap();
    let mesh = Mesh::start(
        nginx.addr,
        &["web"],
        &global(&format!(
            "commonName: web.test, trustCertsBundle: {}",
            bundle.display()
        )),
    );
    assert_eq!(mesh.get("web").status, 200);

    std::fs::copy(other.path("ca.pem"), &bundle).unwrap();
    mesh.strait.proc.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while mesh.metric("config/reloads/applied") < 1 {
        assert!(
            Instant::now() < deadline,
            "no reload applied: {}",
            mesh.strait.proc.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = mesh.get("web");
    assert_eq!(r.status, 502, "the new bundle does not trust nginx: {r:?}");
    assert!(Mesh::err(&r).contains("unknown CA"), "{r:?}");
}

/// The Consul namer reaches its agent over HTTPS: the simulator behind an
/// nginx TLS proxy, verified with the test CA and a client certificate.
#[test]
fn consul_namer_over_tls() {
    let certs = Certs::new();
    let mut sim =
        strait_test_kit::Proc::spawn(Command::new(strait_test_kit::consul_sim_bin()).args([
            "--port",
            "0",
            "--datacenter",
            "dc1",
        ]));
    let sim_addr: SocketAddr = sim.wait_line(Duration::from_secs(20), |l| {
        l.strip_prefix("consul-sim: listening on ")
            .and_then(|a| a.trim().parse().ok())
    });
    let ca = certs.path("ca.pem");
    let proxy = Nginx::serving(
        &certs.path("server.pem"),
        &certs.path("server.key"),
        Some(&ca),
        &format!(
            "proxy_pass http://{sim_addr}; proxy_http_version 1.1; proxy_buffering off; \
             proxy_read_timeout 600s;"
        ),
    );
    let backend = strait_test_kit::Backend::start("consul-web");
    let register = format!(
        r#"{{"Name":"web","ID":"web-1","Address":"127.0.0.1","Port":{}}}"#,
        backend.addr.port()
    );
    let url = format!("http://{sim_addr}/v1/agent/service/register");
    let r = curl(&["-X", "PUT", "--data-binary", &register, &url], &[]);
    assert_eq!(r.status, 200, "{r:?}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("linkerd.yaml");
    std::fs::write(
        &path,
        format!(
            "admin: {{port: 0}}\nnamers:\n- kind: io.l5d.consul\n  host: 127.0.0.1\n  port: {}\n  \
             tls: {{commonName: web.test, trustCertsBundle: {}, clientAuth: {{certPath: {}, keyPath: {}}}}}\n\
             routers:\n- protocol: http\n  label: out\n  dtab: /svc => /#/io.l5d.consul/dc1;\n  \
             servers: [{{port: 0}}]\n",
            proxy.addr.port(),
            ca.display(),
            certs.path("client.pem").display(),
            certs.path("client.key").display(),
        ),
    )
    .unwrap();
    let strait = Strait::start(BIN, &path);
    let url = format!("http://{}/", strait.router());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = curl(&["-H", "Host: web", &url], &[]);
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{r:?}\n{}\n{}",
            strait.proc.stderr(),
            std::fs::read_to_string(proxy._prefix.path().join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

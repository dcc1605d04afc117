//! Transformers end to end: a namer's `io.l5d.port` transformer sends
//! traffic to the rewritten port, and the transformed client has its own
//! `/%/io.l5d.port/<port>/…` metrics scope.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use strait_test_kit::{Backend, Strait, curl};

const BIN: &str = env!("CARGO_BIN_EXE_strait");

#[test]
fn a_port_transformer_routes_to_the_rewritten_port_under_its_own_client_scope() {
    let backend = Backend::start("web");
    let port = backend.addr.port();
    let disco = tempfile::tempdir().unwrap();
    // The namer says port 1 (nothing listens there); the transformer fixes it.
    std::fs::write(disco.path().join("web"), "127.0.0.1 1\n").unwrap();
    let conf = tempfile::tempdir().unwrap();
    let path = conf.path().join("linkerd.yaml");
    std::fs::write(
        &path,
        format!(
            "admin:\n  port: 0\nnamers:\n- kind: io.l5d.fs\n  rootDir: {}\n  transformers:\n  - kind: io.l5d.port\n    port: {port}\nrouters:\n- protocol: http\n  label: out\n  dtab: /svc => /#/io.l5d.fs;\n  servers:\n  - port: 0\n",
            disco.path().display()
        ),
    )
    .unwrap();
    let strait = Strait::start(BIN, &path);

    let url = format!("http://{}/", strait.router());
    let r = curl(&["-H", "Host: web", &url], &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, "instance web\n");

    let m = curl(
        &[&format!("http://{}/admin/metrics.json", strait.admin)],
        &[],
    );
    let scope = format!("/%/io.l5d.port/{port}/#/io.l5d.fs/web/");
    assert!(
        m.body.contains(&scope),
        "no client scope {scope} in {}",
        m.body
    );
    let cs = curl(
        &[&format!("http://{}/client_state.json", strait.admin)],
        &[],
    );
    let id = format!("/%/io.l5d.port/{port}/#/io.l5d.fs/web");
    assert!(
        cs.body.contains(&id) && cs.body.contains(&format!("127.0.0.1:{port}")),
        "client_state.json lists the transformed client: {}",
        cs.body
    );
}

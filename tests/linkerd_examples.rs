//! Linkerd 1's own example configs, run through `strait check` unchanged.
//!
//! The fixtures in `tests/linkerd_examples/` are byte-for-byte copies of the
//! http and h2 configs in `linkerd/linkerd` (`linkerd/examples/`) and
//! `linkerd/linkerd-examples` that use only features Strait implements; the
//! README there lists every config looked at, the verdict and why, and the
//! upstream commits. Each test is named after its file: repository, then path.
//!
//! The check runs from `tests/linkerd_examples/`, which holds the upstream
//! `linkerd/examples/example.dtab` and `linkerd/examples/io.l5d.fs/` too, so the
//! relative `rootDir` and `dtabFile` paths of the `linkerd/linkerd` examples
//! resolve as they do from a Linkerd checkout (where Linkerd's own
//! `ExamplesTest` loads them).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_strait");
const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/linkerd_examples");

/// `strait check --config <fixture>` exits 0 and says `ok`.
fn checks_clean(fixture: &str) {
    let dir = Path::new(DIR);
    assert!(dir.join(fixture).is_file(), "missing fixture {fixture}");
    let out = Command::new(BIN)
        .current_dir(dir)
        .args(["check", "--config", fixture])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{fixture} fails `strait check`:\n{stderr}{stdout}"
    );
    assert!(stdout.contains("ok ("), "{fixture}: {stdout}");
}

// linkerd/linkerd, linkerd/examples/

#[test]
fn linkerd_linkerd_examples_access_logs_yaml_checks_clean() {
    checks_clean("linkerd__linkerd__examples__access-logs.yaml");
}

#[test]
fn linkerd_linkerd_examples_h2_yaml_checks_clean() {
    checks_clean("linkerd__linkerd__examples__h2.yaml");
}

#[test]
fn linkerd_linkerd_examples_influxdb_yaml_checks_clean() {
    checks_clean("linkerd__linkerd__examples__influxdb.yaml");
}

#[test]
fn linkerd_linkerd_examples_recent_requests_yaml_checks_clean() {
    checks_clean("linkerd__linkerd__examples__recent-requests.yaml");
}

#[test]
fn linkerd_linkerd_examples_statsd_yaml_checks_clean() {
    checks_clean("linkerd__linkerd__examples__statsd.yaml");
}

#[test]
fn linkerd_linkerd_examples_tracelog_yaml_checks_clean() {
    checks_clean("linkerd__linkerd__examples__tracelog.yaml");
}

#[test]
fn linkerd_linkerd_examples_consul_yaml_checks_clean() {
    checks_clean("linkerd__linkerd__examples__consul.yaml");
}

#[test]
fn linkerd_linkerd_examples_disable_tls_yaml_checks_clean() {
    checks_clean("linkerd__linkerd__examples__disable-tls.yaml");
}

#[test]
fn linkerd_linkerd_examples_h2spec_yaml_checks_clean() {
    checks_clean("linkerd__linkerd__examples__h2spec.yaml");
}

#[test]
fn linkerd_linkerd_examples_prometheus_yaml_checks_clean() {
    checks_clean("linkerd__linkerd__examples__prometheus.yaml");
}

#[test]
fn linkerd_linkerd_examples_retries_yaml_checks_clean() {
    checks_clean("linkerd__linkerd__examples__retries.yaml");
}

#[test]
fn linkerd_linkerd_examples_service_options_yaml_checks_clean() {
    checks_clean("linkerd__linkerd__examples__service-options.yaml");
}

#[test]
fn linkerd_linkerd_examples_static_namer_yaml_checks_clean() {
    checks_clean("linkerd__linkerd__examples__static_namer.yaml");
}

// linkerd/linkerd, linkerd/examples/, using interpreters, transformers and
// io.l5d.rewrite

#[test]
fn linkerd_linkerd_examples_consul_interpreter_yaml_checks_clean() {
    checks_clean("linkerd__linkerd__examples__consul-interpreter.yaml");
}

#[test]
fn linkerd_linkerd_examples_fs_yaml_checks_clean() {
    checks_clean("linkerd__linkerd__examples__fs.yaml");
}

#[test]
fn linkerd_linkerd_examples_rewriting_yaml_checks_clean() {
    checks_clean("linkerd__linkerd__examples__rewriting.yaml");
}

#[test]
fn linkerd_linkerd_examples_servicemesh_yaml_checks_clean() {
    checks_clean("linkerd__linkerd__examples__servicemesh.yaml");
}

// linkerd/linkerd-examples

#[test]
fn linkerd_examples_add_steps_linkerd_yml_checks_clean() {
    checks_clean("linkerd-examples__add-steps__linkerd.yml");
}

#[test]
fn linkerd_examples_failure_accrual_linkerd_yml_checks_clean() {
    checks_clean("linkerd-examples__failure-accrual__linkerd.yml");
}

#[test]
fn linkerd_examples_influxdb_linkerd1_yml_checks_clean() {
    checks_clean("linkerd-examples__influxdb__linkerd1.yml");
}

#[test]
fn linkerd_examples_influxdb_linkerd2_yml_checks_clean() {
    checks_clean("linkerd-examples__influxdb__linkerd2.yml");
}

#[test]
fn linkerd_examples_consul_linkerd_yml_checks_clean() {
    checks_clean("linkerd-examples__consul__linkerd.yml");
}

#[test]
fn linkerd_examples_getting_started_docker_linkerd_yaml_checks_clean() {
    checks_clean("linkerd-examples__getting-started__docker__linkerd.yaml");
}

#[test]
fn linkerd_examples_getting_started_local_linkerd_yaml_checks_clean() {
    checks_clean("linkerd-examples__getting-started__local__linkerd.yaml");
}

#[test]
fn linkerd_examples_http_proxy_linkerd_yaml_checks_clean() {
    checks_clean("linkerd-examples__http-proxy__linkerd.yaml");
}

/// Every fixture in the folder has a test here, so a copied config cannot sit
/// untested.
#[test]
fn every_fixture_has_a_test() {
    let src = include_str!("linkerd_examples.rs");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(DIR).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let is_config = name.ends_with(".yaml") || name.ends_with(".yml");
        if is_config && !src.contains(&format!("checks_clean(\"{name}\")")) {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "fixtures without a test: {missing:?}");
}

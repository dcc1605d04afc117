//! `strait check` and `strait run` on good and bad files, through the real
//! binary: exit status, and every problem with file:line:col and key path.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_strait");

fn strait(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn repo_linkerd_yaml_passes_check() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../linkerd.yaml");
    let (code, out, err) = strait(&["check", "--config", path]);
    assert_eq!(code, 0, "the reference linkerd.yaml is valid: {err}");
    assert!(out.trim_end().ends_with("ok (1 router, 1 namer)"), "{out}");
}

#[test]
fn check_lists_every_problem_with_line_column_and_key_path() {
    let (dir, path) = strait_test_kit::write_temp(
        "bad.yaml",
        "admin:\n  port: \"9990\"\nrouters:\n- protocol: http\n  dtab: /svc => ;\n  servers:\n  - port: 4140\n    prot: 1\nnamerz: []\n",
    );
    let file = path.display().to_string();
    let (code, out, err) = strait(&["check", "--config", &file]);
    assert_eq!(code, 1, "a bad file fails the check: {out}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "all four problems at once:\n{err}");
    assert!(
        lines[0].starts_with(&format!("{file}:2:9: admin.port: ")),
        "{err}"
    );
    assert!(
        lines[1].starts_with(&format!("{file}:5:17: routers[0].dtab: ")),
        "{err}"
    );
    assert!(
        lines[1].contains("simple expected but ';' found"),
        "the dtab error is Finagle's, at the bad character: {err}"
    );
    assert!(
        lines[2].starts_with(&format!(
            "{file}:8:5: routers[0].servers[0].prot: unknown key 'prot'"
        )),
        "{err}"
    );
    assert!(lines[2].contains("did you mean 'port'?"), "{err}");
    assert!(
        lines[3].starts_with(&format!("{file}:9:1: namerz: unknown key 'namerz'")),
        "{err}"
    );
    drop(dir);
}

#[test]
fn run_refuses_a_bad_file_with_the_same_errors() {
    let (_dir, path) = strait_test_kit::write_temp("bad.yaml", "routers: []\n");
    let (code, _, err) = strait(&["run", "--config", &path.display().to_string()]);
    assert_eq!(code, 1, "run never starts on a bad file: {err}");
    assert!(err.contains("routers"), "{err}");
}

#[test]
fn json_configs_are_accepted() {
    let json = r#"{"routers":[{"protocol":"http","dtab":"/svc=>/$/inet/127.0.0.1/1;","servers":[{"port":4141}]}]}"#;
    let (_dir, path) = strait_test_kit::write_temp("l.json", json);
    let (code, out, err) = strait(&["check", "--config", &path.display().to_string()]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn check_warns_about_an_admin_off_loopback_but_passes() {
    let (_dir, path) = strait_test_kit::write_temp(
        "open.yaml",
        "admin:\n  ip: 0.0.0.0\n  port: 9990\nrouters:\n- protocol: http\n  servers:\n  - port: 4140\n",
    );
    let file = path.display().to_string();
    let (code, out, err) = strait(&["check", "--config", &file]);
    assert_eq!(code, 0, "a warning does not fail the check: {out}{err}");
    let first = out.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!(
            "{file}:2:7: admin.ip: warning: the admin listens off loopback (0.0.0.0)"
        )),
        "{out}"
    );
    assert!(first.contains("admin.tokenFile"), "says what to do: {out}");
    assert!(out.trim_end().ends_with("ok (1 router, 0 namers)"), "{out}");

    let (_dir, path) = strait_test_kit::write_temp(
        "closed.yaml",
        "admin:\n  ip: 127.0.0.1\nrouters:\n- protocol: http\n  servers:\n  - port: 4140\n",
    );
    let (code, out, _) = strait(&["check", "--config", &path.display().to_string()]);
    assert_eq!(code, 0);
    assert!(!out.contains("warning"), "loopback is quiet: {out}");
}

#[test]
fn the_config_path_may_be_given_plainly_as_linkerd_took_it() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/strait/linkerd.yaml"
    );
    let (code, out, err) = strait(&["check", path]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(": ok ("), "{out}");
    let (code, _, err) = strait(&["check", "--config", path, path]);
    assert_eq!(code, 2, "one path, not two: {err}");
    assert!(err.contains("cannot be used with"), "{err}");
    let (code, _, err) = strait(&["run"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("required arguments were not provided"),
        "{err}"
    );
}

//! The systemd unit (`systemd/strait.service`) and the installer
//! (`deploy/install.sh`): the unit passes `systemd-analyze verify` with no
//! warning, and the installer puts the binary, the unit and a checked
//! config in place, idempotently and without overwriting an edited config.
//!
//! Needs `systemd-analyze`, from Debian's `systemd` package.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_strait");
const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../");

/// A file of the repository, by its path from the root.
fn repo(path: &str) -> PathBuf {
    Path::new(REPO).join(path).canonicalize().unwrap()
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// The unit's directives that the rest of Strait (and the docs) rely on.
const REQUIRED: &[&str] = &[
    "Type=notify",
    "ExecStartPre=/usr/local/bin/strait check --config /etc/strait/linkerd.yaml",
    "ExecStart=/usr/local/bin/strait run --config /etc/strait/linkerd.yaml",
    "ExecReload=/bin/kill -HUP $MAINPID",
    "Restart=on-failure",
    "LimitNOFILE=65536",
    "DynamicUser=yes",
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "CapabilityBoundingSet=",
    "AmbientCapabilities=",
    "ReadOnlyPaths=/etc/strait",
    "LogsDirectory=strait",
    "WantedBy=multi-user.target",
];

#[test]
fn unit_has_the_expected_directives() {
    let unit = std::fs::read_to_string(repo("systemd/strait.service")).unwrap();
    let lines: Vec<&str> = unit.lines().map(str::trim).collect();
    for want in REQUIRED {
        assert!(
            lines.contains(want),
            "systemd/strait.service lacks `{want}`"
        );
    }
    // The stop timeout outlasts the default drain (admin.shutdownGraceMs,
    // 10 s), so systemd never SIGKILLs a drain that is within its grace.
    let stop: u64 = lines
        .iter()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .expect("TimeoutStopSec= is set")
        .parse()
        .expect("TimeoutStopSec= in plain seconds");
    assert!(
        stop > 10,
        "TimeoutStopSec={stop} must exceed the 10 s grace"
    );
}

/// `systemd-analyze verify` on the unit, with its commands pointed at this
/// build's binary and the repository's `linkerd.yaml` (verify fails on an
/// `Exec*=` binary that does not exist, and `/usr/local/bin/strait` need
/// not).
///
/// verify exits 0 even when it warns (an unknown key, a bad value: "…,
/// ignoring."), so its output is what is checked: on this machine (Debian
/// 12, systemd 252, not booted with systemd) a clean unit makes it print
/// nothing at all, on stdout or stderr, and every line it prints is a
/// failure here.
#[test]
fn unit_passes_systemd_analyze_verify() {
    match Command::new("systemd-analyze").arg("--version").output() {
        Ok(out) => assert!(
            out.status.success(),
            "systemd-analyze --version: {}",
            describe(&out)
        ),
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "systemd-analyze is not installed: it comes with Debian's `systemd` package \
             (apt-get install systemd); scripts/test installs it"
        ),
        Err(e) => panic!("cannot run systemd-analyze: {e}"),
    }

    let config = repo("linkerd.yaml").display().to_string();
    for path in [BIN, config.as_str()] {
        assert!(
            !path.contains(char::is_whitespace) && !path.contains(['%', '$', '"', '\'', '\\']),
            "the test rewrites Exec lines with {path:?}, which systemd would need quoted"
        );
    }
    let unit = std::fs::read_to_string(repo("systemd/strait.service")).unwrap();
    let rewritten: String = unit
        .lines()
        .map(|line| {
            let line = if line.starts_with("ExecStart") {
                line.replace("/usr/local/bin/strait", BIN)
                    .replace("/etc/strait/linkerd.yaml", &config)
            } else {
                line.to_owned()
            };
            line + "\n"
        })
        .collect();
    assert_eq!(
        rewritten.matches(BIN).count(),
        2,
        "ExecStartPre= and ExecStart= both run the binary:\n{rewritten}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strait.service");
    std::fs::write(&path, &rewritten).unwrap();

    // The rewritten ExecStartPre= passes, as it must for the unit to start.
    let check = Command::new(BIN)
        .args(["check", "--config", &config])
        .output()
        .unwrap();
    assert!(check.status.success(), "strait check: {}", describe(&check));

    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "systemd-analyze verify {} must be silent: {}",
        path.display(),
        describe(&out)
    );
}

/// A unit with a mistake in it makes verify print (and still exit 0), so
/// the silence asserted above means something.
#[test]
fn systemd_analyze_verify_reports_a_bad_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.service");
    std::fs::write(
        &path,
        "[Service]\nType=notify\nExecStart=/bin/true\nRestart=sometimes\nBogusKey=1\n",
    )
    .unwrap();
    let out = match Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            panic!("systemd-analyze is not installed: apt-get install systemd")
        }
        Err(e) => panic!("cannot run systemd-analyze: {e}"),
    };
    let err = text(&out.stderr);
    assert!(
        err.contains("bad.service:4: Failed to parse service restart specifier"),
        "verify reports the bad Restart= value: {}",
        describe(&out)
    );
    assert!(
        err.contains("bad.service:5: Unknown key 'BogusKey'"),
        "verify reports the unknown key: {}",
        describe(&out)
    );
}

fn install(prefix: &Path) -> Output {
    Command::new("bash")
        .arg(repo("deploy/install.sh"))
        .args(["--no-build", "--no-start", "--prefix"])
        .arg(prefix)
        .env("STRAIT_BIN", BIN)
        .output()
        .unwrap()
}

#[test]
fn install_script_installs_binary_unit_and_config_under_a_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path();
    let out = install(prefix);
    assert!(out.status.success(), "install.sh: {}", describe(&out));

    let bin = prefix.join("usr/local/bin/strait");
    let unit = prefix.join("etc/systemd/system/strait.service");
    let config = prefix.join("etc/strait/linkerd.yaml");
    let meta = std::fs::metadata(&bin).unwrap();
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o755,
        "{}",
        bin.display()
    );
    assert_eq!(meta.len(), std::fs::metadata(BIN).unwrap().len());
    assert_eq!(
        std::fs::read(&unit).unwrap(),
        std::fs::read(repo("systemd/strait.service")).unwrap()
    );
    assert_eq!(
        std::fs::read(&config).unwrap(),
        std::fs::read(repo("linkerd.yaml")).unwrap()
    );
    assert!(
        text(&out.stdout).contains("installing the default config"),
        "{}",
        describe(&out)
    );

    // The installed binary passes the installed config.
    let check = Command::new(&bin)
        .arg("check")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(check.status.success(), "strait check: {}", describe(&check));

    // Again: idempotent, and an edited config is kept as it is.
    let edited = format!(
        "{}# edited by the operator\n",
        std::fs::read_to_string(&config).unwrap()
    );
    std::fs::write(&config, &edited).unwrap();
    let again = install(prefix);
    assert!(
        again.status.success(),
        "second install.sh: {}",
        describe(&again)
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), edited);
    assert!(
        text(&again.stdout).contains("keeping the existing"),
        "{}",
        describe(&again)
    );

    // A config that does not pass check fails the install, with check's
    // report and the file named.
    std::fs::write(&config, "admin:\n  port: \"9990\"\n").unwrap();
    let bad = install(prefix);
    assert!(
        !bad.status.success(),
        "a bad config must fail: {}",
        describe(&bad)
    );
    let err = text(&bad.stderr);
    assert!(
        err.contains("admin.port"),
        "check's report: {}",
        describe(&bad)
    );
    assert!(
        err.contains("does not pass 'strait check'"),
        "{}",
        describe(&bad)
    );
}

//! `consul-sim`: the test kit's Consul HTTP API simulator as a process.
//!
//! Prints exactly one line, `consul-sim: listening on IP:PORT`, once it
//! accepts connections, then serves until killed. Its knobs are the
//! control endpoints under `/_sim/` (see `strait_test_kit::consul`).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use strait_test_kit::consul::{
    self, Acl, AclPolicy, CheckStatus, ConsulSim, Registration, ServiceSet, SimConfig, TokenRules,
};

const USAGE: &str = "\
usage: consul-sim [--host IP] [--port PORT] [--datacenter DC] [--other-datacenter DC]...
                  [--node NAME] [--register NAME=ADDR:PORT[,TAG,...]]...
                  [--default-wait DURATION] [--max-wait DURATION] [--no-jitter]
                  [--acl-default allow|deny] [--acl-token SECRET:READ[:write]]...

  --port 0 (the default) lets the kernel pick a port.
  --register adds instance NAME-ADDR-PORT with Service.Address ADDR and a
    passing check; repeatable.
  DURATION is Go syntax: 300ms, 10s, 5m.
  Any --acl-* flag turns ACLs on (default policy allow). READ is *, - (none)
    or a comma-separated list of service names; :write adds write rights.";

fn main() -> ExitCode {
    let config = match parse(std::env::args().skip(1)) {
        Ok(Some(config)) => config,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("consul-sim: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let sim = match ConsulSim::try_start(config) {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("consul-sim: cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "consul-sim: listening on {}", sim.addr());
    let _ = out.flush();
    drop(out);
    loop {
        std::thread::park();
    }
}

/// The configuration the arguments describe; `None` for `--help`.
fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<SimConfig>, String> {
    let mut config = SimConfig::default();
    let mut acl: Option<Acl> = None;
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        if flag == "--no-jitter" {
            config.jitter = false;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--host" => config.host = value.parse().map_err(|_| format!("bad --host {value:?}"))?,
            "--port" => config.port = value.parse().map_err(|_| format!("bad --port {value:?}"))?,
            "--datacenter" => config.datacenter = value,
            "--other-datacenter" => config.other_datacenters.push(value),
            "--node" => config.node_name = value,
            "--register" => config.registrations.push(registration(&value)?),
            "--default-wait" => config.default_wait = duration(&value)?,
            "--max-wait" => config.max_wait = duration(&value)?,
            "--acl-default" => {
                let policy = match value.as_str() {
                    "allow" => AclPolicy::Allow,
                    "deny" => AclPolicy::Deny,
                    _ => {
                        return Err(format!(
                            "--acl-default must be allow or deny, not {value:?}"
                        ));
                    }
                };
                acl.get_or_insert_with(no_tokens).default_policy = policy;
            }
            "--acl-token" => {
                let (secret, rules) = token(&value)?;
                acl.get_or_insert_with(no_tokens)
                    .tokens
                    .insert(secret, rules);
            }
            _ => return Err(format!("unknown flag {flag:?}")),
        }
    }
    config.acl = acl;
    Ok(Some(config))
}

fn no_tokens() -> Acl {
    Acl {
        default_policy: AclPolicy::Allow,
        tokens: BTreeMap::new(),
    }
}

/// `NAME=ADDR:PORT[,TAG,...]`.
fn registration(value: &str) -> Result<Registration, String> {
    let bad = || format!("--register wants NAME=ADDR:PORT[,TAG,...], not {value:?}");
    let (name, rest) = value.split_once('=').ok_or_else(bad)?;
    let mut parts = rest.split(',');
    let (addr, port) = parts
        .next()
        .and_then(|a| a.rsplit_once(':'))
        .ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if name.is_empty() || addr.is_empty() {
        return Err(bad());
    }
    let tags: Vec<&str> = parts.filter(|t| !t.is_empty()).collect();
    Ok(
        Registration::new(name, &format!("{name}-{addr}-{port}"), port)
            .address(addr)
            .tags(&tags)
            .check(CheckStatus::Passing),
    )
}

/// `SECRET:READ[:write]`.
fn token(value: &str) -> Result<(String, TokenRules), String> {
    let bad = || format!("--acl-token wants SECRET:READ[:write], not {value:?}");
    let mut parts = value.splitn(3, ':');
    let secret = parts.next().filter(|s| !s.is_empty()).ok_or_else(bad)?;
    let read = match parts.next().ok_or_else(bad)? {
        "*" => ServiceSet::All,
        "-" => ServiceSet::Only(Default::default()),
        names => ServiceSet::Only(names.split(',').map(str::to_owned).collect()),
    };
    let write = match parts.next() {
        None => false,
        Some("write") => true,
        Some(_) => return Err(bad()),
    };
    Ok((secret.to_owned(), TokenRules { read, write }))
}

/// A Go duration such as `10s` or `250ms`.
fn duration(value: &str) -> Result<Duration, String> {
    consul::parse_duration(value)
        .ok_or_else(|| format!("bad duration {value:?} (use 10s, 250ms, 5m)"))
}

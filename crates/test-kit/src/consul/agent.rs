//! Decoding the agent's JSON bodies as Consul does: field names match in
//! any case and in snake_case (Go's decoder plus Consul's key
//! translation), unknown fields are ignored, durations are Go strings or
//! nanoseconds. Errors are Consul's 400 texts.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use super::CheckStatus;
use super::catalog::{CheckDef, ServiceDef};
use super::go;

/// A body Consul would refuse with 400 and this text.
pub(crate) type BadRequest = String;

/// `PUT /v1/agent/service/register`'s body: the instance and its checks.
pub(crate) fn registration(body: &[u8]) -> Result<(ServiceDef, Vec<CheckDef>), BadRequest> {
    let obj = object(body)?;
    let name = string(&obj, "name")?;
    if name.is_empty() {
        return Err("Missing service name".into());
    }
    let id = Some(string(&obj, "id")?)
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| name.clone());
    let port = match field(&obj, "port") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| wrong_type("Port"))?,
    };
    let weights = match field(&obj, "weights") {
        None | Some(Value::Null) => (1, 1),
        Some(Value::Object(w)) => {
            let passing = int(w, "passing")?;
            let warning = int(w, "warning")?;
            if passing < 1 {
                return Err("Invalid Weights: Passing must be greater than 0".into());
            }
            if warning < 0 {
                return Err("Invalid Weights: Warning must be greater or equal than 0".into());
            }
            (clamp_u32(passing), clamp_u32(warning))
        }
        Some(_) => return Err(wrong_type("Weights")),
    };
    let tagged_addresses = match field(&obj, "taggedaddresses") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(wrong_type("TaggedAddresses")),
    };
    let mut specs = Vec::new();
    match field(&obj, "check") {
        None | Some(Value::Null) => {}
        Some(Value::Object(c)) if c.is_empty() => {}
        Some(Value::Object(c)) => specs.push(c),
        Some(_) => return Err(wrong_type("Check")),
    }
    match field(&obj, "checks") {
        None | Some(Value::Null) => {}
        Some(Value::Array(cs)) => {
            for c in cs {
                specs.push(c.as_object().ok_or_else(|| wrong_type("Checks"))?);
            }
        }
        Some(_) => return Err(wrong_type("Checks")),
    }
    let many = specs.len() > 1;
    let checks = specs
        .into_iter()
        .enumerate()
        .map(|(n, c)| {
            let default_id = if many {
                format!("service:{id}:{}", n + 1)
            } else {
                format!("service:{id}")
            };
            check(c, default_id, &name)
        })
        .collect::<Result<_, _>>()?;
    let def = ServiceDef {
        tags: strings(&obj, "tags")?,
        address: string(&obj, "address")?,
        meta: string_map(&obj, "meta")?,
        enable_tag_override: boolean(&obj, "enabletagoverride")?,
        id,
        name,
        port,
        weights,
        tagged_addresses,
    };
    Ok((def, checks))
}

/// `PUT /v1/agent/check/update/:id`'s body: the status and output.
pub(crate) fn check_update(body: &[u8]) -> Result<(CheckStatus, String), BadRequest> {
    let obj = object(body)?;
    let status = string(&obj, "status")?;
    let status =
        CheckStatus::parse(&status).ok_or_else(|| format!("Invalid check status: '{status}'"))?;
    Ok((status, string(&obj, "output")?))
}

fn check(
    c: &Map<String, Value>,
    default_id: String,
    service: &str,
) -> Result<CheckDef, BadRequest> {
    let id = Some(string(c, "checkid")?)
        .filter(|s| !s.is_empty())
        .or(Some(string(c, "id")?).filter(|s| !s.is_empty()))
        .unwrap_or(default_id);
    let name = Some(string(c, "name")?)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("Service '{service}' check"));
    let status = string(c, "status")?;
    let status = match status.as_str() {
        "" => None,
        s => Some(
            CheckStatus::parse(s)
                .ok_or("Status for checks must 'passing', 'warning', 'critical'")?,
        ),
    };
    let ttl = duration(c, "ttl")?;
    let interval = duration(c, "interval")?;
    let present = |key: &str| {
        field(c, key).is_some_and(|v| match v {
            Value::Null => false,
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            _ => true,
        })
    };
    let kind = [
        ("args", "script"),
        ("scriptargs", "script"),
        ("http", "http"),
        ("tcp", "tcp"),
        ("udp", "udp"),
        ("grpc", "grpc"),
        ("h2ping", "h2ping"),
        ("osservice", "os_service"),
        ("dockercontainerid", "docker"),
    ]
    .into_iter()
    .find(|(key, _)| present(key))
    .map(|(_, kind)| kind);
    let alias = present("aliasservice") || present("aliasnode");
    if interval.is_some() && ttl.is_some() {
        return Err("Invalid check: Interval and TTL cannot both be specified".into());
    }
    if kind.is_some() && interval.is_none() {
        return Err("Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks".into());
    }
    if kind.is_none() && !alias && ttl.is_none() {
        return Err("Invalid check: TTL must be > 0 for TTL checks".into());
    }
    let kind = match (kind, alias) {
        (Some(k), _) => k,
        (None, true) => "alias",
        (None, false) => "ttl",
    };
    Ok(CheckDef {
        id,
        name,
        notes: string(c, "notes")?,
        kind: kind.into(),
        interval: interval.map(go_string).unwrap_or_default(),
        ttl,
        status,
        output: String::new(),
    })
}

fn object(body: &[u8]) -> Result<Map<String, Value>, BadRequest> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err("Request decode failed: the body must be a JSON object".into()),
        Err(e) => Err(format!("Request decode failed: {e}")),
    }
}

/// The field named `key` (lower case, no underscores), matched as Consul
/// matches: case-insensitively, with or without underscores.
fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.replace('_', "").eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn wrong_type(name: &str) -> BadRequest {
    format!("Request decode failed: json: cannot unmarshal {name}: wrong type")
}

fn string(obj: &Map<String, Value>, key: &str) -> Result<String, BadRequest> {
    match field(obj, key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(wrong_type(key)),
    }
}

fn boolean(obj: &Map<String, Value>, key: &str) -> Result<bool, BadRequest> {
    match field(obj, key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(wrong_type(key)),
    }
}

fn int(obj: &Map<String, Value>, key: &str) -> Result<i64, BadRequest> {
    match field(obj, key) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v.as_i64().ok_or_else(|| wrong_type(key)),
    }
}

fn clamp_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

fn strings(obj: &Map<String, Value>, key: &str) -> Result<Vec<String>, BadRequest> {
    match field(obj, key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| wrong_type(key)))
            .collect(),
        Some(_) => Err(wrong_type(key)),
    }
}

fn string_map(obj: &Map<String, Value>, key: &str) -> Result<BTreeMap<String, String>, BadRequest> {
    match field(obj, key) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.clone(),
                    v.as_str().ok_or_else(|| wrong_type(key))?.to_owned(),
                ))
            })
            .collect(),
        Some(_) => Err(wrong_type(key)),
    }
}

/// A positive duration field (`None` if absent or ≤ 0).
fn duration(obj: &Map<String, Value>, key: &str) -> Result<Option<Duration>, BadRequest> {
    let nanos = match field(obj, key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.is_empty() => return Ok(None),
        Some(Value::String(s)) => go::parse_duration(s)
            .ok_or_else(|| format!("Request decode failed: time: invalid duration \"{s}\""))?,
        Some(v) => v.as_i64().ok_or_else(|| wrong_type(key))?,
    };
    Ok(u64::try_from(nanos)
        .ok()
        .filter(|n| *n > 0)
        .map(Duration::from_nanos))
}

/// A duration as Go prints it, for the whole-unit values tests use
/// (`10s`, `1m0s`, `250ms`).
fn go_string(d: Duration) -> String {
    let ms = d.as_millis();
    if d < Duration::from_secs(1) {
        return format!("{ms}ms");
    }
    let secs = d.as_secs_f64() % 60.0;
    let mins = d.as_secs() / 60;
    match (mins / 60, mins % 60) {
        (0, 0) => format!("{secs}s"),
        (0, m) => format!("{m}m{secs}s"),
        (h, m) => format!("{h}h{m}m{secs}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_defaults_follow_consul() {
        let (def, checks) =
            registration(br#"{"name":"web","port":80,"check":{"ttl":"15s"}}"#).unwrap();
        assert_eq!(
            (def.id.as_str(), def.weights, def.tags.len()),
            ("web", (1, 1), 0)
        );
        assert_eq!(checks[0].id, "service:web");
        assert_eq!(checks[0].name, "Service 'web' check");
        assert_eq!(checks[0].status, None, "no Status: starts critical");
        assert_eq!(checks[0].ttl, Some(Duration::from_secs(15)));

        let (_, checks) = registration(
            br#"{"Name":"web","ID":"w1","Checks":[{"TTL":"1s"},{"HTTP":"http://x/","Interval":"10s","Status":"passing"}]}"#,
        )
        .unwrap();
        assert_eq!(checks[0].id, "service:w1:1");
        assert_eq!(checks[1].id, "service:w1:2");
        assert_eq!(checks[1].kind, "http");
        assert_eq!(checks[1].interval, "10s");
        assert_eq!(checks[1].status, Some(CheckStatus::Passing));
    }

    #[test]
    fn bad_registrations_get_consul_texts() {
        for (body, text) in [
            (&b"{"[..], "Request decode failed"),
            (br#"{"Port":80}"#, "Missing service name"),
            (
                br#"{"Name":"w","Check":{"TTL":"soon"}}"#,
                "Request decode failed: time: invalid duration \"soon\"",
            ),
            (
                br#"{"Name":"w","Check":{"Name":"x"}}"#,
                "Invalid check: TTL must be > 0 for TTL checks",
            ),
            (
                br#"{"Name":"w","Check":{"TTL":"1s","Status":"ok"}}"#,
                "Status for checks must",
            ),
            (
                br#"{"Name":"w","Weights":{"Passing":0}}"#,
                "Invalid Weights",
            ),
            (br#"{"Name":"w","Port":"80"}"#, "Request decode failed"),
        ] {
            let err = registration(body).unwrap_err();
            assert!(
                err.starts_with(text),
                "{}: {err}",
                String::from_utf8_lossy(body)
            );
        }
    }
}

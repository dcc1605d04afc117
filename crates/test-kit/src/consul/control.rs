//! The control API under `/_sim/`: the handle's knobs over HTTP, for the
//! standalone `consul-sim` process (the table is in the module docs).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Method, Request};
use serde_json::{Map, Value, json};

use super::go::{self, Query};
use super::http::{Reply, body, json_reply, text};
use super::state::{Failure, Shared};
use super::{Acl, AclPolicy, CheckStatus, NodeSpec, ServiceSet, TokenRules, agent};

/// Answers a control request arriving on connection `conn`.
pub(crate) async fn handle(shared: &Arc<Shared>, conn: u64, req: Request<Incoming>) -> Reply {
    let query = Query::parse(req.uri().query());
    let path = go::unescape(req.uri().path(), false);
    let method = req.method().clone();
    let knob = method == Method::PUT || method == Method::POST;
    let reply = match (path.as_str(), &method) {
        ("/_sim/requests", &Method::GET) => Ok(requests(shared)),
        ("/_sim/requests", &Method::DELETE) => {
            shared.lock().log.clear();
            Ok(ok())
        }
        ("/_sim/stats", &Method::GET) => Ok(stats(shared)),
        ("/_sim/fail", &Method::DELETE) => {
            shared.lock().knobs.failure = None;
            Ok(ok())
        }
        (p, _) if knob => match body(req).await {
            Ok(b) => set(shared, conn, p, &query, &b),
            Err(e) => Ok(e.reply()),
        },
        _ => Err(format!("unknown control endpoint {method} {path}")),
    };
    reply.unwrap_or_else(|e| {
        let status = if e.starts_with("unknown") { 404 } else { 400 };
        text(status, format!("consul-sim: {e}"))
    })
}

/// A knob: `PUT /_sim/<what>`.
fn set(
    shared: &Arc<Shared>,
    conn: u64,
    path: &str,
    query: &Query,
    body: &[u8],
) -> Result<Reply, String> {
    let ms = |key: &str| -> Result<Duration, String> {
        Ok(Duration::from_millis(number(query, key)?.unwrap_or(0)))
    };
    if let Some(id) = path.strip_prefix("/_sim/deregister/") {
        return if shared.deregister(id) {
            Ok(ok())
        } else {
            Err(format!("unknown service ID {id:?}"))
        };
    }
    if let Some(id) = path.strip_prefix("/_sim/check/") {
        let status = query.get("status").unwrap_or_default();
        let status =
            CheckStatus::parse(status).ok_or("status must be passing, warning or critical")?;
        return if shared.update_check(id, status, query.get("output")) {
            Ok(ok())
        } else {
            Err(format!("unknown check ID {id:?}"))
        };
    }
    match path {
        "/_sim/register" => {
            let (def, checks) = agent::registration(body)?;
            let node = query.non_empty("node").map(|name| NodeSpec {
                name: name.to_owned(),
                address: query.non_empty("address").unwrap_or("127.0.0.1").to_owned(),
                datacenter: query.non_empty("dc").map(str::to_owned),
            });
            shared.register(node, def, checks);
        }
        "/_sim/stall" => {
            shared.stalled.send_replace(flag(query, "on")?);
        }
        "/_sim/delay" => shared.lock().knobs.header_delay = ms("ms")?,
        "/_sim/fail" => {
            let status = number(query, "status")?
                .and_then(|s| u16::try_from(s).ok())
                .filter(|s| (100..1000).contains(s))
                .ok_or("fail needs ?status=<HTTP status>")?;
            shared.lock().knobs.failure = Some(Failure {
                status,
                body: query.get("body").unwrap_or_default().to_owned(),
                remaining: number(query, "count")?,
            });
        }
        "/_sim/wake" => shared.wake(),
        "/_sim/index" => {
            let to = number(query, "to")?.ok_or("index needs ?to=<index>")?;
            shared.write(|c| c.restore_to(to));
        }
        "/_sim/index-zero" => shared.lock().knobs.index_zero = number(query, "count")?.unwrap_or(1),
        "/_sim/no-index" => shared.lock().knobs.no_index = number(query, "count")?.unwrap_or(1),
        "/_sim/drop" => {
            let (refuse, close) = (ms("refuse_ms")?, ms("close_ms")?);
            // The connection carrying this request survives to answer it.
            shared.drop_connections(Some(conn));
            if !refuse.is_zero() {
                shared.refuse_connections(refuse);
            }
            if !close.is_zero() {
                shared.close_new_connections(close);
            }
        }
        "/_sim/leader" => shared.set_leader(flag(query, "on")?),
        "/_sim/acl" => shared.lock().knobs.acl = acl(body)?,
        _ => return Err(format!("unknown control endpoint {path}")),
    }
    Ok(ok())
}

fn ok() -> Reply {
    text(200, "ok")
}

fn number(query: &Query, key: &str) -> Result<Option<u64>, String> {
    query
        .non_empty(key)
        .map(|v| {
            v.parse()
                .map_err(|_| format!("?{key} must be a number, not {v:?}"))
        })
        .transpose()
}

fn flag(query: &Query, key: &str) -> Result<bool, String> {
    match query.get(key) {
        None | Some("") => Ok(true),
        Some(v) => go::parse_bool(v).ok_or_else(|| format!("?{key} must be true or false")),
    }
}

fn requests(shared: &Shared) -> Reply {
    let log: Vec<Value> = shared
        .lock()
        .log
        .iter()
        .map(|r| {
            let headers: Map<String, Value> = r
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            json!({
                "method": r.method,
                "uri": r.uri,
                "headers": headers,
                "at_ms": r.at.as_millis(),
                "connection": r.connection,
            })
        })
        .collect();
    json_reply(&Value::Array(log), true)
}

fn stats(shared: &Shared) -> Reply {
    let inner = shared.lock();
    let s = &inner.stats;
    json_reply(
        &json!({
            "requests": s.requests,
            "per_path": s.per_path,
            "blocked_now": s.blocked_now,
            "max_blocked": s.max_blocked,
            "connections_now": s.connections_now,
            "connections": s.connections,
            "index": inner.catalog.index,
        }),
        true,
    )
}

/// `{"default_policy": "allow"|"deny", "tokens": {"<secret>": {"read": "*"
/// or ["svc", ...], "write": bool}}}`; an empty body is ACLs off.
fn acl(body: &[u8]) -> Result<Option<Acl>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("bad ACL JSON: {e}"))?;
    let default_policy = match v.get("default_policy").and_then(Value::as_str) {
        None | Some("allow") => AclPolicy::Allow,
        Some("deny") => AclPolicy::Deny,
        Some(other) => {
            return Err(format!(
                "default_policy must be allow or deny, not {other:?}"
            ));
        }
    };
    let mut tokens = BTreeMap::new();
    for (secret, rules) in v
        .get("tokens")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let read = match rules.get("read") {
            Some(Value::String(s)) if s == "*" => ServiceSet::All,
            None | Some(Value::Null) => ServiceSet::Only(Default::default()),
            Some(Value::Array(names)) => ServiceSet::Only(
                names
                    .iter()
                    .map(|n| {
                        n.as_str()
                            .map(str::to_owned)
                            .ok_or("read lists service names")
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Some(_) => return Err("read must be \"*\" or a list of service names".into()),
        };
        let write = rules.get("write").and_then(Value::as_bool).unwrap_or(false);
        tokens.insert(secret.clone(), TokenRules { read, write });
    }
    Ok(Some(Acl {
        default_policy,
        tokens,
    }))
}

//! Consul's KV store, `/v1/kv/<key>`, on the catalog's global index.
//!
//! * `GET` answers `[{LockIndex, Key, Flags, Value (base64), CreateIndex,
//!   ModifyIndex}]`; `?raw` the bare value; `?recurse` every key under the
//!   prefix; `?keys` (with `?separator`) the key names. A missing key (or
//!   an empty prefix) is **404 with an empty body and `X-Consul-Index`**,
//!   so a client can block on a key not written yet. Reads block like the
//!   catalog's (`index`, `wait`).
//! * The index of one key is its `ModifyIndex`; of a missing key, the KV
//!   table's (the last KV write, deletes included); of a prefix, the
//!   highest `ModifyIndex` or delete under it, else the table's.
//! * `PUT` stores the body (at most 512 KiB) and answers `true` or `false`
//!   (`?cas=<index>`: 0 writes only if absent, N only if `ModifyIndex` is
//!   N); `?flags=N`. `DELETE` (`?recurse`, `?cas`) answers `true`.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response};
use serde_json::{Value, json};

use super::ServiceSet;
use super::catalog::Catalog;
use super::go::{self, Query};
use super::http::{
    ApiError, Indexed, Reply, authorize, block, body, header, json_reply, query_meta, text, timeout,
};
use super::state::Shared;

/// The largest value Consul stores.
pub(crate) const MAX_VALUE: usize = 512 * 1024;

/// One stored key.
#[derive(Clone, Debug)]
struct Entry {
    value: Bytes,
    flags: u64,
    create_index: u64,
    modify_index: u64,
}

/// The keys, their delete marks and the table's index.
#[derive(Debug, Default)]
pub(crate) struct Kv {
    entries: BTreeMap<String, Entry>,
    /// Deleted key → the index of the delete (Consul's tombstones).
    tombstones: BTreeMap<String, u64>,
    /// The index of the last KV write.
    table_index: u64,
}

impl Kv {
    /// Snapshot restore: no index above `to`.
    pub(crate) fn restore_to(&mut self, to: u64) {
        let to = to.max(1);
        self.table_index = self.table_index.min(to);
        for e in self.entries.values_mut() {
            e.create_index = e.create_index.min(to);
            e.modify_index = e.modify_index.min(to);
        }
        self.tombstones.values_mut().for_each(|i| *i = (*i).min(to));
    }

    /// The value of `key`, if set.
    pub(crate) fn get(&self, key: &str) -> Option<Bytes> {
        self.entries.get(key).map(|e| e.value.clone())
    }

    fn under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a String, &'a Entry)> {
        self.entries
            .range(prefix.to_owned()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
    }

    /// The index of a prefix read: the highest write or delete under it,
    /// else the table's.
    fn prefix_index(&self, prefix: &str) -> u64 {
        let live = self.under(prefix).map(|(_, e)| e.modify_index).max();
        let dead = self
            .tombstones
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, i)| *i)
            .max();
        match live.max(dead) {
            Some(i) if i > 0 => i,
            _ => self.table_index,
        }
    }
}

impl Catalog {
    /// Sets `key` (a new global index) unless `cas` forbids it; whether it
    /// was written.
    pub(crate) fn kv_put(&mut self, key: &str, value: Bytes, flags: u64, cas: Option<u64>) -> bool {
        let current = self.kv.entries.get(key).map(|e| e.modify_index);
        match (cas, current) {
            (Some(0), Some(_)) => return false,
            (Some(n), Some(m)) if n != 0 && n != m => return false,
            (Some(n), None) if n != 0 => return false,
            _ => {}
        }
        self.index += 1;
        let index = self.index;
        let create_index = self.kv.entries.get(key).map_or(index, |e| e.create_index);
        self.kv.entries.insert(
            key.to_owned(),
            Entry {
                value,
                flags,
                create_index,
                modify_index: index,
            },
        );
        self.kv.tombstones.remove(key);
        self.kv.table_index = index;
        true
    }

    /// Deletes `key` (every key under it with `recurse`) unless `cas`
    /// forbids it; whether the delete went ahead.
    pub(crate) fn kv_delete(&mut self, key: &str, recurse: bool, cas: Option<u64>) -> bool {
        if let Some(n) = cas {
            let current = self.kv.entries.get(key).map(|e| e.modify_index);
            if current.is_some_and(|m| m != n) {
                return false;
            }
        }
        let doomed: Vec<String> = if recurse {
            self.kv.under(key).map(|(k, _)| k.clone()).collect()
        } else {
            self.kv
                .entries
                .contains_key(key)
                .then(|| key.to_owned())
                .into_iter()
                .collect()
        };
        self.index += 1;
        let index = self.index;
        for k in doomed {
            self.kv.entries.remove(&k);
            self.kv.tombstones.insert(k, index);
        }
        self.kv.table_index = index;
        true
    }
}

/// What a KV read found.
enum Found {
    /// Nothing: 404.
    Missing,
    /// The bare value (`?raw`).
    Raw(Bytes),
    /// A JSON body.
    Json(Value),
}

struct Answer {
    found: Found,
    index: u64,
}

impl Indexed for Answer {
    fn index(&self) -> u64 {
        self.index
    }
}

/// How a GET reads.
#[derive(Clone, Copy)]
enum Mode {
    One { raw: bool },
    Recurse,
    Keys,
}

fn read(kv: &Kv, key: &str, mode: Mode, separator: Option<&str>) -> Answer {
    match mode {
        Mode::One { raw } => match kv.entries.get(key) {
            None => Answer {
                found: Found::Missing,
                index: kv.table_index,
            },
            Some(e) => Answer {
                found: if raw {
                    Found::Raw(e.value.clone())
                } else {
                    Found::Json(json!([entry_json(key, e)]))
                },
                index: e.modify_index,
            },
        },
        Mode::Recurse => {
            let list: Vec<Value> = kv.under(key).map(|(k, e)| entry_json(k, e)).collect();
            Answer {
                found: if list.is_empty() {
                    Found::Missing
                } else {
                    Found::Json(Value::Array(list))
                },
                index: kv.prefix_index(key),
            }
        }
        Mode::Keys => {
            let mut names: Vec<String> = Vec::new();
            for (k, _) in kv.under(key) {
                let name = match separator.filter(|s| !s.is_empty()) {
                    Some(sep) => match k[key.len()..].find(sep) {
                        Some(at) => k[..key.len() + at + sep.len()].to_owned(),
                        None => k.clone(),
                    },
                    None => k.clone(),
                };
                if names.last() != Some(&name) {
                    names.push(name);
                }
            }
            Answer {
                found: if names.is_empty() {
                    Found::Missing
                } else {
                    Found::Json(json!(names))
                },
                index: kv.prefix_index(key),
            }
        }
    }
}

fn entry_json(key: &str, e: &Entry) -> Value {
    json!({
        "LockIndex": 0,
        "Key": key,
        "Flags": e.flags,
        "Value": if e.value.is_empty() { Value::Null } else { Value::String(base64(&e.value)) },
        "CreateIndex": e.create_index,
        "ModifyIndex": e.modify_index,
    })
}

/// Standard base64 with padding, as Go's `encoding/json` writes `[]byte`.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Answers `/v1/kv/<key>`.
pub(crate) async fn handle(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    key: &str,
    query: &Query,
    token: Option<String>,
) -> Result<Reply, ApiError> {
    let method = req.method().clone();
    if method == Method::OPTIONS {
        let mut r = Response::new(Full::new(Bytes::new()));
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("OPTIONS,GET,PUT,DELETE"));
        return Ok(r);
    }
    if ![Method::GET, Method::PUT, Method::DELETE].contains(&method) {
        let mut r = text(405, format!("method {method} not allowed"));
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("OPTIONS,GET,PUT,DELETE"));
        return Ok(r);
    }
    let dc = query.non_empty("dc").unwrap_or(&shared.config.datacenter);
    if dc != shared.config.datacenter && !shared.config.other_datacenters.iter().any(|d| d == dc) {
        return Err(ApiError::new(500, "No path to datacenter"));
    }
    let stale = query.has("stale");
    if shared.lock().knobs.leader_lost.is_some() && !(stale && method == Method::GET) {
        return Err(ApiError::new(500, "No cluster leader"));
    }
    let authz = authorize(shared, token)?;
    let number = |name: &str| -> Result<Option<u64>, ApiError> {
        match query.non_empty(name).map(str::parse::<u64>) {
            None => Ok(None),
            Some(Ok(n)) => Ok(Some(n)),
            Some(Err(_)) => Err(ApiError::new(400, format!("Invalid {name} value"))),
        }
    };
    if method == Method::GET {
        if !authz.write && authz.read != ServiceSet::All {
            return Err(ApiError::new(403, "Permission denied"));
        }
        return get(shared, key, query, stale).await;
    }
    if !authz.write {
        return Err(ApiError::new(403, "Permission denied"));
    }
    if key.is_empty() && !(method == Method::DELETE && query.has("recurse")) {
        return Err(ApiError::new(400, "Missing key name"));
    }
    let cas = number("cas")?;
    let done = if method == Method::PUT {
        let flags = number("flags")?.unwrap_or(0);
        let value = body(req).await?;
        if value.len() > MAX_VALUE {
            return Err(ApiError::new(
                413,
                format!(
                    "Request body(Content-Length) too large: {} > {MAX_VALUE}",
                    value.len()
                ),
            ));
        }
        shared.write(|c| c.kv_put(key, value, flags, cas))
    } else {
        shared.write(|c| c.kv_delete(key, query.has("recurse"), cas))
    };
    Ok(json_reply(&json!(done), false))
}

async fn get(
    shared: &Arc<Shared>,
    key: &str,
    query: &Query,
    stale: bool,
) -> Result<Reply, ApiError> {
    let wait = match query.non_empty("wait").map(go::parse_duration) {
        None => None,
        Some(Some(ns)) => Some(ns),
        Some(None) => return Err(ApiError::new(400, "Invalid wait time")),
    };
    let min_index = match query.non_empty("index").map(str::parse::<u64>) {
        None => 0,
        Some(Ok(i)) => i,
        Some(Err(_)) => return Err(ApiError::new(400, "Invalid index")),
    };
    let mode = if query.has("keys") {
        Mode::Keys
    } else if query.has("recurse") {
        Mode::Recurse
    } else {
        Mode::One {
            raw: query.has("raw"),
        }
    };
    let separator = query.get("separator");
    let answer = block(shared, min_index, timeout(shared, wait), |c| {
        read(&c.kv, key, mode, separator)
    })
    .await;
    let mut reply = match answer.found {
        Found::Missing => {
            let mut r = text(404, "");
            r.headers_mut().remove(CONTENT_TYPE);
            r
        }
        Found::Raw(bytes) => {
            let mut r = Response::new(Full::new(bytes));
            r.headers_mut()
                .insert(CONTENT_TYPE, header("application/octet-stream"));
            r
        }
        Found::Json(v) => json_reply(&v, query.has("pretty")),
    };
    let consistency = if stale {
        "stale"
    } else if query.has("consistent") {
        "consistent"
    } else {
        "leader"
    };
    query_meta(shared, &mut reply, answer.index, consistency);
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_matches_go() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"/svc=>/#/io.l5d.fs"), "L3N2Yz0+LyMvaW8ubDVkLmZz");
    }
}

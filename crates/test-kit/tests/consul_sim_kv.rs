//! The Consul simulator's KV store (`/v1/kv/`) against Consul's documented
//! behaviour, over real HTTP on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use strait_test_kit::consul::{Acl, AclPolicy, ConsulSim, SimConfig, TokenRules};

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn index(&self) -> u64 {
        self.header("X-Consul-Index")
            .unwrap_or_else(|| panic!("no X-Consul-Index: {self:?}"))
            .parse()
            .unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: consul\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap();
    Resp {
        status: status.parse().unwrap(),
        headers: lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
            .collect(),
        body: raw[split + 4..].to_vec(),
    }
}

fn get(sim: &ConsulSim, path: &str) -> Resp {
    send(sim.addr(), "GET", path, &[], "")
}

fn put(sim: &ConsulSim, path: &str, body: &str) -> Resp {
    send(sim.addr(), "PUT", path, &[], body)
}

#[test]
fn a_key_reads_as_json_raw_and_404_with_an_index() {
    let sim = ConsulSim::start(SimConfig::default());
    let missing = get(&sim, "/v1/kv/namerd/dtabs/default");
    assert_eq!(missing.status, 404);
    assert!(missing.body.is_empty(), "{missing:?}");
    assert!(missing.index() >= 1, "a 404 still carries an index");

    let w = put(&sim, "/v1/kv/namerd/dtabs/default", "/svc=>/#/io.l5d.fs");
    assert_eq!((w.status, w.json()), (200, json!(true)));
    let r = get(&sim, "/v1/kv/namerd/dtabs/default");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let e = &r.json()[0];
    assert_eq!(e["Key"], "namerd/dtabs/default");
    assert_eq!(e["Value"], "L3N2Yz0+LyMvaW8ubDVkLmZz");
    assert_eq!(
        (e["Flags"].clone(), e["LockIndex"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(e["CreateIndex"], e["ModifyIndex"]);
    assert_eq!(r.index(), e["ModifyIndex"].as_u64().unwrap());
    assert!(r.index() > missing.index());

    let raw = get(&sim, "/v1/kv/namerd/dtabs/default?raw");
    assert_eq!(raw.text(), "/svc=>/#/io.l5d.fs");
    assert_eq!(raw.index(), r.index());
    assert_eq!(
        sim.kv_get("namerd/dtabs/default").unwrap(),
        b"/svc=>/#/io.l5d.fs"
    );

    // A rewrite keeps CreateIndex and moves ModifyIndex.
    put(&sim, "/v1/kv/namerd/dtabs/default?flags=7", "/svc=>/$/inet");
    let e = get(&sim, "/v1/kv/namerd/dtabs/default").json()[0].clone();
    assert!(e["ModifyIndex"].as_u64() > e["CreateIndex"].as_u64());
    assert_eq!(e["Flags"], 7);
}

#[test]
fn recurse_and_keys_list_a_prefix() {
    let sim = ConsulSim::start(SimConfig::default());
    sim.kv_put("dtabs/a", b"1");
    sim.kv_put("dtabs/b/c", b"2");
    let top = sim.kv_put("other", b"3");
    let all = get(&sim, "/v1/kv/dtabs/?recurse");
    let list = all.json();
    let keys: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["dtabs/a", "dtabs/b/c"]);
    assert!(all.index() < top, "a prefix's index is its own highest");
    assert_eq!(
        get(&sim, "/v1/kv/dtabs/?keys").json(),
        json!(["dtabs/a", "dtabs/b/c"])
    );
    assert_eq!(
        get(&sim, "/v1/kv/dtabs/?keys&separator=/").json(),
        json!(["dtabs/a", "dtabs/b/"])
    );
    assert_eq!(get(&sim, "/v1/kv/nothing/?recurse").status, 404);
    let d = send(sim.addr(), "DELETE", "/v1/kv/dtabs/?recurse", &[], "");
    assert_eq!(d.json(), json!(true));
    assert_eq!(get(&sim, "/v1/kv/dtabs/?recurse").status, 404);
    assert_eq!(get(&sim, "/v1/kv/other?raw").text(), "3");
}

#[test]
fn cas_writes_only_over_the_expected_index() {
    let sim = ConsulSim::start(SimConfig::default());
    assert_eq!(put(&sim, "/v1/kv/k?cas=0", "a").json(), json!(true));
    assert_eq!(
        put(&sim, "/v1/kv/k?cas=0", "b").json(),
        json!(false),
        "0 = only if absent"
    );
    let index = get(&sim, "/v1/kv/k").index();
    assert_eq!(
        put(&sim, &format!("/v1/kv/k?cas={}", index + 5), "c").json(),
        json!(false)
    );
    assert_eq!(
        put(&sim, &format!("/v1/kv/k?cas={index}"), "d").json(),
        json!(true)
    );
    assert_eq!(get(&sim, "/v1/kv/k?raw").text(), "d");
    let d = send(sim.addr(), "DELETE", "/v1/kv/k", &[], "");
    assert_eq!((d.status, d.json()), (200, json!(true)));
    assert_eq!(get(&sim, "/v1/kv/k").status, 404);
    assert_eq!(put(&sim, "/v1/kv/k?cas=x", "e").status, 400);
}

#[test]
fn a_blocked_read_answers_on_a_write_or_at_wait() {
    let sim = ConsulSim::start(SimConfig {
        jitter: false,
        ..SimConfig::default()
    });
    // Blocking on a missing key: the 404's index.
    let index = get(&sim, "/v1/kv/ns").index();
    let addr = sim.addr();
    let reader = thread::spawn(move || {
        let r = send(
            addr,
            "GET",
            &format!("/v1/kv/ns?raw&index={index}&wait=5s"),
            &[],
            "",
        );
        (r, Instant::now())
    });
    thread::sleep(Duration::from_millis(100));
    let wrote = Instant::now();
    sim.kv_put("ns", b"/a=>/b");
    let (r, at) = reader.join().unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "/a=>/b"));
    assert!(at.duration_since(wrote) < Duration::from_millis(500));

    // Unchanged: held until wait, then the same body and index.
    let start = Instant::now();
    let same = get(
        &sim,
        &format!("/v1/kv/ns?raw&index={}&wait=200ms", r.index()),
    );
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        (same.status, same.index(), same.text()),
        (200, r.index(), r.text())
    );

    // A delete wakes it with a 404 and a higher index.
    let addr = sim.addr();
    let idx = r.index();
    let reader = thread::spawn(move || {
        send(
            addr,
            "GET",
            &format!("/v1/kv/ns?raw&index={idx}&wait=5s"),
            &[],
            "",
        )
    });
    thread::sleep(Duration::from_millis(100));
    sim.kv_delete("ns");
    let gone = reader.join().unwrap();
    assert_eq!(gone.status, 404);
    assert!(gone.index() > idx);

    assert_eq!(get(&sim, "/v1/kv/ns?index=x").text(), "Invalid index");
    assert_eq!(
        get(&sim, "/v1/kv/ns?index=1&wait=soon").text(),
        "Invalid wait time"
    );
}

#[test]
fn kv_obeys_acls_leaders_datacenters_and_methods() {
    let sim = ConsulSim::start(SimConfig::default());
    sim.kv_put("k", b"v");
    assert_eq!(
        get(&sim, "/v1/kv/k?dc=mars").text(),
        "No path to datacenter"
    );
    let post = send(sim.addr(), "POST", "/v1/kv/k", &[], "");
    assert_eq!(post.status, 405);
    assert!(post.header("Allow").unwrap().contains("PUT"));

    sim.set_leader(false);
    assert_eq!(get(&sim, "/v1/kv/k").text(), "No cluster leader");
    assert_eq!(get(&sim, "/v1/kv/k?raw&stale").text(), "v");
    sim.set_leader(true);

    sim.set_acl(Some(Acl {
        default_policy: AclPolicy::Deny,
        tokens: [("reader".to_owned(), TokenRules::read(["web"]))].into(),
    }));
    assert_eq!(get(&sim, "/v1/kv/k").status, 403);
    let bad = send(
        sim.addr(),
        "GET",
        "/v1/kv/k",
        &[("X-Consul-Token", "nope")],
        "",
    );
    assert_eq!((bad.status, bad.text().as_str()), (403, "ACL not found"));
    let w = send(
        sim.addr(),
        "PUT",
        "/v1/kv/k",
        &[("X-Consul-Token", "reader")],
        "x",
    );
    assert_eq!((w.status, w.text().as_str()), (403, "Permission denied"));
    sim.set_acl(None);

    // Failure knobs apply to KV too.
    sim.fail_next(1, 500, "boom");
    assert_eq!(get(&sim, "/v1/kv/k").status, 500);
    assert_eq!(get(&sim, "/v1/kv/k?raw").text(), "v");
}

//! The Consul simulator against the rules it must obey
//! (Consul's documented HTTP API), over real HTTP on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use strait_test_kit::Proc;
use strait_test_kit::consul::{
    Acl, AclPolicy, CheckStatus, ConsulSim, NodeSpec, Registration, SimConfig, TokenRules,
};

/// What came back over one `Connection: close` request.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
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
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

/// Sends one request; `None` if the server closed the connection without
/// answering.
fn try_send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<Resp> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: consul\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect();
    Some(Resp {
        status,
        headers,
        body: body.to_owned(),
    })
}

fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    try_send(addr, method, path, headers, body)
        .unwrap_or_else(|| panic!("{method} {path}: no response"))
}

fn get(sim: &ConsulSim, path: &str) -> Resp {
    send(sim.addr(), "GET", path, &[], "")
}

fn put(sim: &ConsulSim, path: &str, body: &str) -> Resp {
    send(sim.addr(), "PUT", path, &[], body)
}

/// A GET on another thread, with when its answer (or hang-up) came.
fn get_in_background(addr: SocketAddr, path: &str) -> thread::JoinHandle<(Option<Resp>, Instant)> {
    let path = path.to_owned();
    thread::spawn(move || (try_send(addr, "GET", &path, &[], ""), Instant::now()))
}

/// How long after `since` a background answer came.
fn after(since: Instant, answered: Instant) -> Duration {
    answered.saturating_duration_since(since)
}

/// Polls `f` every 5 ms for up to a second.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "timed out waiting until {what}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

fn sim() -> ConsulSim {
    ConsulSim::start(SimConfig::default())
}

fn web(id: &str, port: u16) -> Registration {
    Registration::new("web", id, port)
        .address("127.0.0.21")
        .check(CheckStatus::Passing)
}

fn ids(r: &Resp) -> Vec<String> {
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Service"]["ID"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn health_service_answers_consuls_shape_and_headers() {
    let sim = sim();
    sim.register(
        web("web-a-1", 8080)
            .tags(&["primary", "v2"])
            .meta("version", "2.4.1")
            .weights(10, 1),
    );
    sim.register(
        Registration::new("web", "web-b-1", 8081).on_node(NodeSpec::new("host-b", "127.0.0.12")),
    );

    let r = get(&sim, "/v1/health/service/web");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert!(r.index() >= 1);
    assert_eq!(r.header("X-Consul-KnownLeader"), Some("true"));
    assert_eq!(r.header("X-Consul-LastContact"), Some("0"));
    assert_eq!(r.header("X-Consul-Effective-Consistency"), Some("leader"));
    assert_eq!(r.header("X-Consul-Default-ACL-Policy"), Some("allow"));
    assert_eq!(r.header("X-Consul-Results-Filtered-By-ACLs"), None);

    let body = r.json();
    let [a, b] = body.as_array().unwrap().as_slice() else {
        panic!("two entries: {body}")
    };
    assert_eq!(a["Node"]["Node"], "consul-sim");
    assert_eq!(a["Node"]["Address"], "127.0.0.1");
    assert_eq!(a["Node"]["Datacenter"], "dc1");
    for key in ["ID", "TaggedAddresses", "Meta"] {
        assert!(a["Node"].get(key).is_some(), "Node.{key}: {a}");
    }
    assert_eq!(a["Service"]["Service"], "web");
    assert_eq!(a["Service"]["Tags"], json!(["primary", "v2"]));
    assert_eq!(a["Service"]["Address"], "127.0.0.21");
    assert_eq!(a["Service"]["Port"], 8080);
    assert_eq!(a["Service"]["Meta"], json!({"version": "2.4.1"}));
    assert_eq!(
        a["Service"]["Weights"],
        json!({"Passing": 10, "Warning": 1})
    );
    let checks = a["Checks"].as_array().unwrap();
    assert_eq!(checks[0]["CheckID"], "serfHealth", "node checks come first");
    assert_eq!(checks[0]["ServiceID"], "");
    assert_eq!(checks[0]["ServiceTags"], json!([]), "never null");
    assert_eq!(checks[1]["CheckID"], "service:web-a-1");
    assert_eq!(checks[1]["Status"], "passing");
    assert_eq!(checks[1]["ServiceName"], "web");
    assert_eq!(checks[1]["ServiceTags"], json!(["primary", "v2"]));

    // The second instance has no address of its own: the client falls back
    // to the node's. Lists are [] and weights default to {1, 1}.
    assert_eq!(b["Node"]["Address"], "127.0.0.12");
    assert_eq!(b["Service"]["Address"], "");
    assert_eq!(b["Service"]["Tags"], json!([]));
    assert_eq!(b["Service"]["Weights"], json!({"Passing": 1, "Warning": 1}));
    assert_eq!(
        b["Checks"].as_array().unwrap().len(),
        1,
        "only serfHealth: {b}"
    );

    // Service names match case-insensitively, as Consul's catalog index.
    assert_eq!(
        ids(&get(&sim, "/v1/health/service/WEB")),
        ["web-a-1", "web-b-1"]
    );
    // An unknown service is an empty list with a valid index, not an error.
    let r = get(&sim, "/v1/health/service/nope");
    assert_eq!((r.status, r.body.as_str()), (200, "[]"));
    assert!(r.index() >= 1);
}

#[test]
fn catalog_and_agent_endpoints_have_their_shapes() {
    let sim = ConsulSim::start(SimConfig {
        other_datacenters: vec!["dc2".into()],
        node_name: "host-a".into(),
        ..SimConfig::default()
    });
    sim.register(web("web-1", 8080).tags(&["primary"]));
    sim.register(web("web-2", 8081).tags(&["v2", "primary"]));
    sim.register(Registration::new("db", "db-1", 5432));

    let r = get(&sim, "/v1/catalog/service/web?tag=primary");
    assert_eq!(r.status, 200);
    assert!(r.index() >= 1);
    let e = &r.json()[0];
    assert_eq!(e["Node"], "host-a");
    assert_eq!(e["Address"], "127.0.0.1");
    assert_eq!(e["ServiceID"], "web-1");
    assert_eq!(e["ServiceAddress"], "127.0.0.21");
    assert_eq!(e["ServicePort"], 8080);
    assert_eq!(e["ServiceTags"], json!(["primary"]));
    assert_eq!(e["ServiceWeights"], json!({"Passing": 1, "Warning": 1}));
    for key in [
        "ID",
        "Datacenter",
        "TaggedAddresses",
        "NodeMeta",
        "ServiceMeta",
        "CreateIndex",
        "ModifyIndex",
    ] {
        assert!(e.get(key).is_some(), "{key}: {e}");
    }

    let r = get(&sim, "/v1/catalog/services");
    assert!(r.index() >= 1);
    assert_eq!(r.json(), json!({"db": [], "web": ["primary", "v2"]}));

    let r = get(&sim, "/v1/catalog/datacenters");
    assert_eq!(r.json(), json!(["dc1", "dc2"]));
    assert_eq!(r.header("X-Consul-Index"), None, "not a blocking endpoint");

    let r = get(&sim, "/v1/agent/self");
    let config = &r.json()["Config"];
    assert_eq!(config["Datacenter"], "dc1");
    assert_eq!(config["NodeName"], "host-a");
    assert_eq!(config["Domain"], "consul.");

    // A known other datacenter answers (empty here); an unknown one is 500.
    assert_eq!(get(&sim, "/v1/health/service/web?dc=dc2").body, "[]");
    let r = get(&sim, "/v1/health/service/web?dc=dc9");
    assert_eq!((r.status, r.body.as_str()), (500, "No path to datacenter"));
    assert_eq!(
        get(&sim, "/v1/health/service/web?dc=").status,
        200,
        "empty dc is the agent's"
    );
}

#[test]
fn the_index_is_never_zero_unless_asked_to_be() {
    let sim = sim();
    for path in [
        "/v1/health/service/web",
        "/v1/catalog/service/web",
        "/v1/catalog/services",
    ] {
        assert!(get(&sim, path).index() >= 1, "{path} on an empty catalog");
    }
    sim.index_zero_next(1);
    assert_eq!(
        get(&sim, "/v1/health/service/web").index(),
        0,
        "the old-server bug"
    );
    assert!(
        get(&sim, "/v1/health/service/web").index() >= 1,
        "only once"
    );
    sim.no_index_next(2);
    for _ in 0..2 {
        let r = get(&sim, "/v1/health/service/web");
        assert_eq!((r.status, r.header("X-Consul-Index")), (200, None));
    }
    assert!(get(&sim, "/v1/health/service/web").index() >= 1);
}

#[test]
fn a_blocking_query_holds_until_wait_then_answers_the_same_index() {
    let sim = sim();
    sim.register(web("web-1", 8080));
    let first = get(&sim, "/v1/health/service/web");
    let start = Instant::now();
    let again = get(
        &sim,
        &format!("/v1/health/service/web?index={}&wait=200ms", first.index()),
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(200),
        "answered after {took:?}, before wait"
    );
    // 200ms + at most 200ms/16 of jitter, plus slack.
    assert!(took < Duration::from_millis(600), "held {took:?}");
    assert_eq!(again.status, 200, "a timeout is not an error");
    assert_eq!(again.index(), first.index());
    assert_eq!(again.body, first.body);

    // index 0 (or none) never blocks; an older index answers at once.
    for path in ["?index=0&wait=5s", "?wait=5s", "?index=1&wait=5s"] {
        let start = Instant::now();
        get(&sim, &format!("/v1/health/service/web{path}"));
        assert!(start.elapsed() < Duration::from_secs(1), "{path} blocked");
    }
}

#[test]
fn a_registration_wakes_a_blocked_reader_at_once() {
    let sim = sim();
    let index = get(&sim, "/v1/health/service/web").index();
    let reader = get_in_background(
        sim.addr(),
        &format!("/v1/health/service/web?index={index}&wait=5s"),
    );
    eventually("the reader blocks", || sim.blocked_now() == 1);
    let registered = Instant::now();
    let r = put(
        &sim,
        "/v1/agent/service/register",
        r#"{"Name":"web","ID":"web-1","Port":8080,"Check":{"TTL":"10s","Status":"passing"}}"#,
    );
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, ""),
        "register answers 200 with an empty body"
    );
    let (r, answered) = reader.join().unwrap();
    let r = r.unwrap();
    let took = after(registered, answered);
    assert!(
        took < Duration::from_millis(500),
        "woke {took:?} after the write"
    );
    assert!(r.index() > index);
    assert_eq!(ids(&r), ["web-1"]);
    assert_eq!(sim.blocked_now(), 0);

    // Deregistering the last instance moves the index too (the service
    // goes extinct), waking its watchers.
    let index = r.index();
    let reader = get_in_background(
        sim.addr(),
        &format!("/v1/health/service/web?index={index}&wait=5s"),
    );
    eventually("the reader blocks", || sim.blocked_now() == 1);
    let deregistered = Instant::now();
    assert_eq!(
        put(&sim, "/v1/agent/service/deregister/web-1", "").status,
        200
    );
    let (r, answered) = reader.join().unwrap();
    let r = r.unwrap();
    let took = after(deregistered, answered);
    assert!(
        took < Duration::from_millis(500),
        "woke {took:?} after the write"
    );
    assert!(r.index() > index);
    assert_eq!(r.body, "[]");
}

#[test]
fn an_unrelated_change_does_not_answer_a_blocked_reader() {
    let sim = sim();
    sim.register(web("web-1", 8080));
    let index = get(&sim, "/v1/health/service/web").index();
    let start = Instant::now();
    let reader = get_in_background(
        sim.addr(),
        &format!("/v1/health/service/web?index={index}&wait=300ms"),
    );
    eventually("the reader blocks", || sim.blocked_now() == 1);
    sim.register(Registration::new("db", "db-1", 5432));
    sim.wake();
    let (r, answered) = reader.join().unwrap();
    let took = after(start, answered);
    assert!(
        took >= Duration::from_millis(300),
        "answered after {took:?}"
    );
    assert_eq!(r.unwrap().index(), index, "web's own index did not move");
}

#[test]
fn tags_are_anded_and_case_insensitive() {
    let sim = sim();
    sim.register(web("a", 1).tags(&["Primary", "v2"]));
    sim.register(web("b", 2).tags(&["v2"]));
    sim.register(web("c", 3).tags(&["primary"]));
    let q = |query: &str| ids(&get(&sim, &format!("/v1/health/service/web?{query}")));
    assert_eq!(q("tag=v2"), ["a", "b"]);
    assert_eq!(q("tag=PRIMARY"), ["a", "c"]);
    assert_eq!(q("tag=v2&tag=primary"), ["a"], "every tag must match");
    assert_eq!(q("tag=v3"), Vec::<String>::new());
    let r = get(&sim, "/v1/catalog/service/web?tag=v2&tag=primary");
    assert_eq!(r.json().as_array().unwrap().len(), 1);
}

#[test]
fn passing_drops_instances_with_any_non_passing_check() {
    let sim = sim();
    sim.register(web("ok", 1));
    sim.register(web("warn", 2));
    sim.register(web("maint", 3));
    sim.register(
        Registration::new("web", "sick-node", 4)
            .check(CheckStatus::Passing)
            .on_node(NodeSpec::new("host-b", "127.0.0.12")),
    );
    assert!(sim.set_check("service:warn", CheckStatus::Warning));
    assert!(sim.set_node_health("host-b", CheckStatus::Critical));
    let r = put(
        &sim,
        "/v1/agent/service/maintenance/maint?enable=true&reason=upgrade",
        "",
    );
    assert_eq!(r.status, 200, "{r:?}");

    let all = get(&sim, "/v1/health/service/web");
    // Consul's order: by node, then by service ID.
    assert_eq!(ids(&all), ["maint", "ok", "warn", "sick-node"]);
    let maint = &all.json()[0]["Checks"];
    let m = maint
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["CheckID"] == "_service_maintenance:maint");
    let m = m.unwrap_or_else(|| panic!("maintenance is a check: {maint}"));
    assert_eq!(
        (m["Status"].as_str(), m["Notes"].as_str()),
        (Some("critical"), Some("upgrade"))
    );

    for q in ["passing", "passing=1", "passing=true", "passing=T"] {
        assert_eq!(
            ids(&get(&sim, &format!("/v1/health/service/web?{q}"))),
            ["ok"],
            "{q}"
        );
    }
    assert_eq!(
        ids(&get(&sim, "/v1/health/service/web?passing=false")).len(),
        4
    );
    let r = get(&sim, "/v1/health/service/web?passing=yes");
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, "Invalid value for ?passing")
    );

    put(&sim, "/v1/agent/service/maintenance/maint?enable=false", "");
    assert_eq!(
        ids(&get(&sim, "/v1/health/service/web?passing")),
        ["maint", "ok"]
    );
    // Node maintenance takes every instance of the agent's node out.
    assert_eq!(
        put(&sim, "/v1/agent/maintenance?enable=true", "").status,
        200
    );
    assert_eq!(get(&sim, "/v1/health/service/web?passing").body, "[]");
    put(&sim, "/v1/agent/maintenance?enable=false", "");
    assert_eq!(ids(&get(&sim, "/v1/health/service/web?passing")).len(), 2);

    let r = put(&sim, "/v1/agent/service/maintenance/maint", "");
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, "Missing value for enable")
    );
}

#[test]
fn ttl_checks_start_critical_expire_and_reset() {
    let sim = sim();
    let r = put(
        &sim,
        "/v1/agent/service/register",
        r#"{"Name":"web","Port":80,"Checks":[{"CheckID":"fresh","TTL":"10s"},{"CheckID":"short","TTL":"150ms","Status":"passing"}]}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let status = |id: &str| -> (String, String) {
        let body = get(&sim, "/v1/health/service/web").json();
        let c = body[0]["Checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["CheckID"] == id)
            .unwrap()
            .clone();
        (
            c["Status"].as_str().unwrap().into(),
            c["Output"].as_str().unwrap().into(),
        )
    };
    assert_eq!(
        status("fresh").0,
        "critical",
        "checks start critical unless Status is given"
    );
    assert_eq!(status("short").0, "passing");

    eventually("the TTL runs out", || status("short").0 == "critical");
    assert_eq!(status("short").1, "TTL expired");

    let r = put(&sim, "/v1/agent/check/pass/short?note=back%20again", "");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(status("short"), ("passing".into(), "back again".into()));
    let r = put(
        &sim,
        "/v1/agent/check/update/fresh",
        r#"{"Status":"warning","Output":"slow"}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(status("fresh"), ("warning".into(), "slow".into()));

    // A heartbeat that changes nothing moves no index.
    put(&sim, "/v1/agent/check/pass/short?note=back%20again", "");
    let before = sim.index();
    put(&sim, "/v1/agent/check/pass/short?note=back%20again", "");
    assert_eq!(sim.index(), before);
}

#[test]
fn agent_writes_refuse_unknown_ids_with_consuls_texts() {
    let sim = sim();
    sim.register(Registration::new("web", "not-a-ttl", 80).check(CheckStatus::Passing));
    let r = put(&sim, "/v1/agent/service/deregister/web-9", "");
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body,
        "Unknown service ID \"web-9\". Ensure that the service ID is passed, not the service name."
    );
    let r = put(&sim, "/v1/agent/check/fail/nope", "");
    assert_eq!(r.status, 404);
    assert!(r.body.starts_with("Unknown check ID \"nope\""), "{r:?}");
    let r = put(&sim, "/v1/agent/check/pass/service:not-a-ttl", "");
    assert_eq!(r.status, 500, "only TTL checks take pass/warn/fail: {r:?}");
    let r = put(
        &sim,
        "/v1/agent/check/update/service:not-a-ttl",
        r#"{"Status":"fine"}"#,
    );
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, "Invalid check status: 'fine'")
    );

    for (body, text) in [
        ("{not json", "Request decode failed"),
        (r#"{"Port":80}"#, "Missing service name"),
        (
            r#"{"Name":"w","Check":{"TTL":"soon"}}"#,
            "Request decode failed",
        ),
    ] {
        let r = put(&sim, "/v1/agent/service/register", body);
        assert_eq!(r.status, 400, "{body}: {r:?}");
        assert!(r.body.starts_with(text), "{body}: {r:?}");
    }
    // snake_case keys decode too.
    let r = put(
        &sim,
        "/v1/agent/service/register",
        r#"{"name":"api","id":"api-1","port":9000,"check":{"check_id":"api-ttl","ttl":"5s","status":"passing"}}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(ids(&get(&sim, "/v1/health/service/api?passing")), ["api-1"]);
}

#[test]
fn acl_tokens_filter_reads_and_refuse_writes() {
    let sim = ConsulSim::start(SimConfig {
        acl: Some(Acl {
            default_policy: AclPolicy::Deny,
            tokens: [
                ("root".to_owned(), TokenRules::admin()),
                ("api-reader".to_owned(), TokenRules::read(["api"])),
            ]
            .into(),
        }),
        ..SimConfig::default()
    });
    sim.register(web("web-1", 8080));
    let addr = sim.addr();
    let health = |headers: &[(&str, &str)], query: &str| {
        send(
            addr,
            "GET",
            &format!("/v1/health/service/web{query}"),
            headers,
            "",
        )
    };

    let r = health(&[("X-Consul-Token", "root")], "");
    assert_eq!((r.status, ids(&r)), (200, vec!["web-1".to_owned()]));
    assert_eq!(r.header("X-Consul-Default-ACL-Policy"), Some("deny"));
    assert_eq!(ids(&health(&[], "?token=root")), ["web-1"]);
    assert_eq!(
        ids(&health(&[("Authorization", "Bearer root")], "")),
        ["web-1"]
    );

    let r = health(&[("X-Consul-Token", "who")], "");
    assert_eq!((r.status, r.body.as_str()), (403, "ACL not found"));

    let r = health(&[("X-Consul-Token", "api-reader")], "");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "[]"),
        "filtered, not refused"
    );
    assert_eq!(r.header("X-Consul-Results-Filtered-By-ACLs"), Some("true"));
    assert!(r.index() >= 1);

    // No token (an empty header counts as none): the anonymous token under
    // a deny policy sees nothing, without the "filtered" header.
    let r = health(&[("X-Consul-Token", "")], "");
    assert_eq!((r.status, r.body.as_str()), (200, "[]"));
    assert_eq!(r.header("X-Consul-Results-Filtered-By-ACLs"), None);

    let register = r#"{"Name":"web","ID":"web-2","Port":1}"#;
    let r = send(
        addr,
        "PUT",
        "/v1/agent/service/register",
        &[("X-Consul-Token", "api-reader")],
        register,
    );
    assert_eq!((r.status, r.body.as_str()), (403, "Permission denied"));
    let r = send(
        addr,
        "PUT",
        "/v1/agent/service/register",
        &[("X-Consul-Token", "root")],
        register,
    );
    assert_eq!(r.status, 200);
    let r = send(addr, "PUT", "/v1/agent/service/deregister/web-2", &[], "");
    assert_eq!((r.status, r.body.as_str()), (403, "Permission denied"));
}

#[test]
fn without_a_leader_only_stale_reads_answer() {
    let sim = sim();
    sim.register(web("web-1", 8080));
    sim.set_leader(false);
    for q in ["", "?consistent"] {
        let r = get(&sim, &format!("/v1/health/service/web{q}"));
        assert_eq!(
            (r.status, r.body.as_str()),
            (500, "No cluster leader"),
            "{q}"
        );
    }
    thread::sleep(Duration::from_millis(20));
    let r = get(&sim, "/v1/health/service/web?stale");
    assert_eq!(r.status, 200);
    assert_eq!(ids(&r), ["web-1"]);
    assert_eq!(r.header("X-Consul-KnownLeader"), Some("false"));
    assert_eq!(r.header("X-Consul-Effective-Consistency"), Some("stale"));
    let last_contact: u64 = r.header("X-Consul-LastContact").unwrap().parse().unwrap();
    assert!(
        last_contact >= 20,
        "LastContact grows without a leader: {last_contact}"
    );
    assert_eq!(
        get(&sim, "/v1/catalog/datacenters").status,
        200,
        "needs no leader"
    );
    sim.set_leader(true);
    assert_eq!(get(&sim, "/v1/health/service/web").status, 200);
}

#[test]
fn malformed_queries_get_consuls_400s() {
    let sim = sim();
    for (q, text) in [
        ("wait=10", "Invalid wait time"),
        ("wait=soon", "Invalid wait time"),
        ("index=-1", "Invalid index"),
        ("index=abc", "Invalid index"),
        (
            "stale&consistent",
            "Cannot specify ?stale with ?consistent, conflicting semantics.",
        ),
    ] {
        let r = get(&sim, &format!("/v1/health/service/web?{q}"));
        assert_eq!((r.status, r.body.as_str()), (400, text), "{q}");
    }
    let r = get(&sim, "/v1/health/service/");
    assert_eq!((r.status, r.body.as_str()), (400, "Missing service name"));
}

#[test]
fn unknown_paths_are_404_and_wrong_methods_405_with_allow() {
    let sim = sim();
    let r = get(&sim, "/v1/session/list");
    assert_eq!(
        (r.status, r.body.as_str()),
        (404, "Invalid URL path: not a recognized HTTP API endpoint")
    );
    let r = put(&sim, "/v1/health/service/web", "");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("OPTIONS,GET"));
    let r = get(&sim, "/v1/agent/service/register");
    assert_eq!((r.status, r.header("Allow")), (405, Some("OPTIONS,PUT")));
    assert!(
        r.header("X-Consul-Default-ACL-Policy").is_some(),
        "on every answer"
    );
}

#[test]
fn wait_defaults_and_clamps_follow_the_configured_limits() {
    let sim = ConsulSim::start(SimConfig {
        default_wait: Duration::from_millis(200),
        max_wait: Duration::from_millis(400),
        jitter: false,
        ..SimConfig::default()
    });
    let index = get(&sim, "/v1/health/service/web").index();
    for (wait, expect) in [
        ("", 200),
        ("&wait=0s", 200),
        ("&wait=-5s", 200),
        ("&wait=1h", 400),
        ("&wait=50ms", 50),
    ] {
        let start = Instant::now();
        let r = get(&sim, &format!("/v1/health/service/web?index={index}{wait}"));
        let took = start.elapsed().as_millis();
        assert_eq!(r.status, 200);
        assert!(
            (expect..expect + 150).contains(&took),
            "wait {wait:?} held {took} ms, expected about {expect}"
        );
    }
}

#[test]
fn a_snapshot_restore_answers_blocked_readers_with_a_lower_index() {
    let sim = sim();
    for i in 0..5 {
        sim.register(web(&format!("web-{i}"), 8000 + i));
    }
    let high = get(&sim, "/v1/health/service/web").index();
    let reader = get_in_background(
        sim.addr(),
        &format!("/v1/health/service/web?index={high}&wait=5s"),
    );
    eventually("the reader blocks", || sim.blocked_now() == 1);
    let restored = Instant::now();
    sim.index_backwards(2);
    let (r, answered) = reader.join().unwrap();
    let r = r.unwrap();
    let took = after(restored, answered);
    assert!(
        took < Duration::from_millis(500),
        "answered {took:?} after the restore"
    );
    assert_eq!(r.index(), 2, "the index went backwards");
    assert_eq!(ids(&r).len(), 5);
    // A client still sending the old, too-high index waits the full wait.
    let start = Instant::now();
    let r = get(
        &sim,
        &format!("/v1/health/service/web?index={high}&wait=100ms"),
    );
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert_eq!(r.index(), 2);
    // Writes continue from the restored index.
    sim.register(web("web-9", 8009));
    assert_eq!(get(&sim, "/v1/health/service/web").index(), 3);
}

#[test]
fn dropped_connections_close_blocked_queries() {
    let sim = sim();
    let index = get(&sim, "/v1/health/service/web").index();
    let reader = get_in_background(
        sim.addr(),
        &format!("/v1/health/service/web?index={index}&wait=5s"),
    );
    eventually("the reader blocks", || sim.blocked_now() == 1);
    let dropped = Instant::now();
    sim.drop_connections();
    let (r, closed) = reader.join().unwrap();
    assert!(
        r.is_none(),
        "the connection closed without an answer: {r:?}"
    );
    assert!(after(dropped, closed) < Duration::from_millis(500));
    eventually("the blocked gauge falls", || sim.blocked_now() == 0);
    assert_eq!(
        get(&sim, "/v1/health/service/web").status,
        200,
        "new connections work"
    );

    sim.close_new_connections(Duration::from_millis(300));
    assert!(try_send(sim.addr(), "GET", "/v1/agent/self", &[], "").is_none());
    sim.refuse_connections(Duration::from_millis(200));
    eventually("connections are refused", || {
        TcpStream::connect(sim.addr()).is_err()
    });
    eventually("it listens again", || {
        try_send(sim.addr(), "GET", "/v1/agent/self", &[], "").is_some()
    });
}

#[test]
fn scripted_failures_stalls_and_slow_headers() {
    let sim = sim();
    sim.fail_next(2, 500, "boom");
    assert_eq!(get(&sim, "/v1/agent/self").body, "boom");
    assert_eq!(get(&sim, "/v1/health/service/web").status, 500);
    assert_eq!(get(&sim, "/v1/health/service/web").status, 200, "only two");
    sim.rate_limit_next(1);
    let r = get(&sim, "/v1/health/service/web");
    assert_eq!(
        (r.status, r.body.as_str()),
        (429, "RPC rate limit exceeded")
    );
    sim.fail_all(503, "");
    assert_eq!(get(&sim, "/v1/catalog/datacenters").status, 503);
    sim.clear_failures();
    assert_eq!(get(&sim, "/v1/catalog/datacenters").status, 200);

    sim.stall(true);
    let before = sim.stats().requests;
    let start = Instant::now();
    let reader = get_in_background(sim.addr(), "/v1/health/service/web");
    eventually("the request arrives", || sim.stats().requests > before);
    thread::sleep(Duration::from_millis(100));
    assert!(!reader.is_finished(), "a stalled request is held");
    sim.stall(false);
    let (r, answered) = reader.join().unwrap();
    assert_eq!(r.unwrap().status, 200);
    assert!(after(start, answered) >= Duration::from_millis(100));

    sim.delay_headers(Duration::from_millis(120));
    let start = Instant::now();
    get(&sim, "/v1/agent/self");
    assert!(start.elapsed() >= Duration::from_millis(120));
}

#[test]
fn requests_and_counters_are_recorded() {
    let sim = sim();
    let index = get(&sim, "/v1/health/service/web").index();
    let readers: Vec<_> = (0..3)
        .map(|_| {
            get_in_background(
                sim.addr(),
                &format!("/v1/health/service/web?index={index}&wait=150ms&tag=a%20b"),
            )
        })
        .collect();
    for r in readers {
        assert_eq!(r.join().unwrap().0.unwrap().status, 200);
    }
    send(
        sim.addr(),
        "GET",
        "/v1/agent/self",
        &[("X-Consul-Token", "t0k")],
        "",
    );

    let stats = sim.stats();
    assert_eq!(stats.requests, 5);
    assert_eq!(stats.per_path["/v1/health/service/web"], 4);
    assert_eq!(stats.max_blocked, 3);
    assert_eq!(stats.blocked_now, 0);
    assert_eq!(stats.connections, 5);

    let log = sim.requests();
    assert_eq!(log.len(), 5);
    let blocking = &log[2];
    assert_eq!(blocking.method, "GET");
    assert_eq!(blocking.path(), "/v1/health/service/web");
    assert_eq!(blocking.query("index"), Some(index.to_string()));
    assert_eq!(blocking.query("wait").as_deref(), Some("150ms"));
    assert_eq!(blocking.query("tag").as_deref(), Some("a b"));
    assert_eq!(log[4].header("x-consul-token"), Some("t0k"));
    sim.clear_requests();
    assert!(sim.requests().is_empty());
}

#[test]
fn the_standalone_binary_announces_itself_and_serves_its_control_api() {
    let mut proc = Proc::spawn(Command::new(env!("CARGO_BIN_EXE_consul-sim")).args([
        "--port",
        "0",
        "--datacenter",
        "dc7",
        "--register",
        "web=127.0.0.21:8080,primary,v2",
        "--register",
        "web=127.0.0.22:8080",
    ]));
    let addr: SocketAddr = proc.wait_line(Duration::from_secs(5), |l| {
        l.strip_prefix("consul-sim: listening on ")
            .and_then(|a| a.parse().ok())
    });
    let get = |path: &str| send(addr, "GET", path, &[], "");
    let put = |path: &str, body: &str| send(addr, "PUT", path, &[], body);

    let r = get("/v1/health/service/web?passing&tag=primary");
    assert_eq!(ids(&r), ["web-127.0.0.21-8080"]);
    assert_eq!(r.json()[0]["Node"]["Datacenter"], "dc7");
    assert_eq!(get("/v1/agent/self").json()["Config"]["Datacenter"], "dc7");

    let r = put(
        "/_sim/register?node=host-b&address=127.0.0.12",
        r#"{"Name":"db","ID":"db-1","Port":5432}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        get("/v1/catalog/service/db").json()[0]["Address"],
        "127.0.0.12"
    );
    assert_eq!(
        put(
            "/_sim/check/service:web-127.0.0.21-8080?status=critical",
            ""
        )
        .status,
        200
    );
    assert_eq!(
        ids(&get("/v1/health/service/web?passing")),
        ["web-127.0.0.22-8080"]
    );

    assert_eq!(put("/_sim/leader?on=false", "").status, 200);
    assert_eq!(get("/v1/health/service/web").status, 500);
    put("/_sim/leader?on=true", "");
    assert_eq!(
        put(
            "/_sim/fail?status=429&body=RPC%20rate%20limit%20exceeded&count=1",
            ""
        )
        .status,
        200
    );
    assert_eq!(get("/v1/health/service/web").status, 429);
    put(
        "/_sim/acl",
        r#"{"default_policy":"deny","tokens":{"r":{"read":["web"]}}}"#,
    );
    assert_eq!(get("/v1/health/service/web").body, "[]");
    assert_eq!(
        send(
            addr,
            "GET",
            "/v1/health/service/web",
            &[("X-Consul-Token", "r")],
            ""
        )
        .json()
        .as_array()
        .unwrap()
        .len(),
        2
    );
    put("/_sim/acl", "");

    let index = get("/v1/health/service/web").index();
    assert_eq!(
        put(&format!("/_sim/index?to={}", index - 1), "").status,
        200
    );
    assert_eq!(get("/v1/health/service/web").index(), index - 1);

    let stats = get("/_sim/stats").json();
    assert!(stats["requests"].as_u64().unwrap() >= 8, "{stats}");
    let log = get("/_sim/requests").json();
    let last = log.as_array().unwrap().last().unwrap();
    assert_eq!(
        last["uri"], "/v1/health/service/web",
        "control requests are not recorded"
    );
    assert_eq!(get("/_sim/nope").status, 404);
}

#[test]
fn the_control_api_drops_connections_but_answers_its_caller() {
    let mut proc =
        Proc::spawn(Command::new(env!("CARGO_BIN_EXE_consul-sim")).args(["--port", "0"]));
    let addr: SocketAddr = proc.wait_line(Duration::from_secs(5), |l| {
        l.strip_prefix("consul-sim: listening on ")
            .and_then(|a| a.parse().ok())
    });
    let index = send(addr, "GET", "/v1/health/service/web", &[], "").index();
    let reader = get_in_background(
        addr,
        &format!("/v1/health/service/web?index={index}&wait=5s"),
    );
    eventually("the reader blocks", || {
        send(addr, "GET", "/_sim/stats", &[], "").json()["blocked_now"] == 1
    });
    let r = send(addr, "PUT", "/_sim/drop?refuse_ms=100", &[], "");
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    let (r, _) = reader.join().unwrap();
    assert!(r.is_none(), "the blocked query's connection was closed");
    eventually("it listens again", || {
        try_send(addr, "GET", "/v1/agent/self", &[], "").is_some()
    });
}

#[test]
fn a_client_hanging_up_ends_its_blocking_query() {
    let sim = sim();
    let index = get(&sim, "/v1/health/service/web").index();
    let mut s = TcpStream::connect(sim.addr()).unwrap();
    write!(
        s,
        "GET /v1/health/service/web?index={index}&wait=5s HTTP/1.1\r\nHost: consul\r\n\r\n"
    )
    .unwrap();
    eventually("the query blocks", || sim.blocked_now() == 1);
    drop(s);
    eventually("the query ends with its connection", || {
        sim.blocked_now() == 0
    });
}

//! The admin server's tests: each endpoint against a small router and
//! registry, over a real listener.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use strait_dtab::{NameTree, State};
use strait_naming::inet::InetResolver;
use strait_naming::{Activity, Endpoint, Interpreter, const_activity};
use strait_router::RouterParams;
use strait_router::identify::Identifier;
use strait_router::stats::Scope;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use super::*;

/// A namer that knows nothing, or that never answers.
struct FakeNamer {
    pending: bool,
}

impl Namer for FakeNamer {
    fn lookup(&self, _prefix: &Path, _path: &Path) -> Activity {
        const_activity(if self.pending {
            State::Pending
        } else {
            State::Ok(NameTree::Neg)
        })
    }

    fn state(&self) -> Value {
        serde_json::json!({ "watching": ["hello"] })
    }
}

struct Admin {
    addr: SocketAddr,
    stopped: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

fn registry() -> Registry {
    let registry = Registry::default();
    let service = Scope::Service {
        router: "http".into(),
        name: "/svc/foo".into(),
    };
    registry.counter(&service, "requests").add(3);
    registry.counter(&service, "success").add(2);
    registry.counter(&service, "failures").add(1);
    registry
        .histogram(&service, "request_latency_ms")
        .record(Duration::from_millis(4));
    let server = Scope::Server {
        router: "http".into(),
        addr: "127.0.0.1/4140".into(),
    };
    registry.counter(&server, "requests").add(7);
    let client = Scope::Client {
        router: "http".into(),
        id: "/$/inet/127.0.0.1/1".into(),
    };
    registry.gauge(&client, "loadbalancer/size").set(1);
    registry
}

fn router(registry: &Registry, namers: Vec<(Path, Arc<dyn Namer>)>) -> Arc<Router> {
    let params = RouterParams {
        protocol: strait_router::Protocol::Http1,
        label: "http".into(),
        dtab: Dtab::read("/svc=>/$/inet/127.0.0.1/1").expect("test dtab parses"),
        dst_prefix: Path::read("/svc").expect("test prefix parses"),
        identifiers: vec![Identifier::HeaderToken {
            header: http::header::HOST,
        }],
        binding_timeout: Duration::from_secs(1),
        binding_limits: Default::default(),
        cache_capacity: 100,
        client_capacity: 100,
        idle_ttl: Duration::from_secs(600),
        max_headers_bytes: 8192,
        max_initial_line_bytes: 4096,
        max_err_bytes: 5 * 1024 * 1024,
        max_call_depth: 1000,
        access_log: None,
        policies: Default::default(),
        interpreter: None,
        telemeters: None,
    };
    Router::new(
        params,
        Interpreter::new(namers, InetResolver::default()),
        registry.clone(),
    )
}

/// One router `http` (dtab `/svc=>/$/inet/127.0.0.1/1`) and one namer
/// at `/#/io.l5d.fs`.
fn admin_state(
    prometheus: Option<(&str, &str)>,
    pending_namer: bool,
) -> (AdminState, watch::Receiver<bool>) {
    let registry = registry();
    let (tx, rx) = watch::channel(false);
    let prefix = Path::read("/#/io.l5d.fs").expect("test prefix parses");
    let namer: Arc<dyn Namer> = Arc::new(FakeNamer {
        pending: pending_namer,
    });
    let state = AdminState {
        routers: vec![Arc::new(ArcSwap::new(router(
            &registry,
            vec![(prefix.clone(), Arc::clone(&namer))],
        )))],
        registry,
        namers: vec![NamerEntry {
            prefix,
            kind: "io.l5d.fs".into(),
            namer,
        }],
        config_json: serde_json::json!({ "admin": { "port": 9990 }, "routers": [{ "protocol": "http" }] }),
        prometheus: prometheus.map(|(p, x)| (p.to_owned(), x.to_owned())),
        requests: None,
        influxdb: false,
        shutdown: tx,
        reload: None,
        guard: Arc::default(),
        tls: None,
        certificates: Vec::new(),
        client_certificates: Vec::new(),
    };
    (state, rx)
}

async fn start(prometheus: Option<(&str, &str)>) -> Admin {
    let (state, rx) = admin_state(prometheus, false);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(serve(
        listener,
        Arc::new(ArcSwap::from_pointee(state)),
        rx.clone(),
    ));
    Admin {
        addr,
        stopped: rx,
        task,
    }
}

/// One HTTP/1.1 exchange on a fresh connection.
async fn call(
    admin: &Admin,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut stream = TcpStream::connect(admin.addr).await.expect("connect");
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(body);
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("response within 10 s")
        .expect("read");
    let raw = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

async fn get(admin: &Admin, target: &str) -> Reply {
    call(admin, "GET", target, &[], "").await
}

#[tokio::test]
async fn ping_answers_pong() {
    let admin = start(None).await;
    let r = get(&admin, "/admin/ping").await;
    assert_eq!(r.status, 200, "/admin/ping is always up");
    assert_eq!(r.body, "pong", "/admin/ping answers exactly `pong`");
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "pong is plain text"
    );
}

#[tokio::test]
async fn metrics_json_is_flat_with_linkerd_names() {
    let admin = start(None).await;
    let r = get(&admin, "/admin/metrics.json").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let m = r.json();
    assert_eq!(
        m["rt/http/service/svc/foo/requests"], 3,
        "service counters live under rt/<router>/service/<name without leading slash>"
    );
    assert_eq!(m["rt/http/server/127.0.0.1/4140/requests"], 7);
    assert_eq!(m["rt/http/client/$/inet/127.0.0.1/1/loadbalancer/size"], 1);
    assert_eq!(
        m["rt/http/service/svc/foo/request_latency_ms.count"], 1,
        "histograms are flattened to <name>.count, .p50, ..."
    );
}

#[tokio::test]
async fn metrics_json_q_keeps_the_subtree_with_relative_names() {
    let admin = start(None).await;
    let r = get(&admin, "/admin/metrics.json?q=rt/http/service").await;
    assert_eq!(r.status, 200);
    let m = r.json();
    let obj = m.as_object().expect("an object");
    assert_eq!(
        m["svc/foo/requests"], 3,
        "?q= names keys relative to the subtree, as Linkerd's flattenMetricsTree"
    );
    assert!(
        obj.keys().all(|k| k.starts_with("svc/foo/")),
        "?q=rt/http/service keeps only that subtree: {obj:?}"
    );
}

#[tokio::test]
async fn metrics_json_unknown_subtree_is_404() {
    let admin = start(None).await;
    let r = get(&admin, "/admin/metrics.json?q=rt/nope").await;
    assert_eq!(r.status, 404, "an empty subtree is a 404");
    assert_eq!(
        r.json(),
        serde_json::json!({ "error": "No such subtree: rt/nope" }),
        "the 404 names the subtree asked for"
    );
}

#[tokio::test]
async fn metrics_json_tree_nests_on_slashes_with_typed_fields() {
    let admin = start(None).await;
    let r = get(&admin, "/admin/metrics.json?tree=1&q=rt/http&pretty=1").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains('\n'), "?pretty=1 indents");
    let m = r.json();
    assert_eq!(
        m["service"]["svc"]["foo"]["requests"]["counter"], 3,
        "a counter's value is its node's `counter` field"
    );
    assert_eq!(
        m["client"]["$"]["inet"]["127.0.0.1"]["1"]["loadbalancer"]["size"]["gauge"], 1,
        "loadbalancer/size is a gauge"
    );
    assert_eq!(
        m["service"]["svc"]["foo"]["request_latency_ms"]["stat.count"], 1,
        "a histogram's statistics are `stat.<stat>` fields"
    );
}

#[tokio::test]
async fn prometheus_text_uses_linkerd_names_at_the_telemeter_path_and_conventional_ones_at_metrics()
{
    let admin = start(Some(("/admin/metrics/prometheus", ""))).await;
    for (path, want) in [
        (
            "/admin/metrics/prometheus",
            r#"rt:service:requests{rt="http", service="svc/foo"} 3"#,
        ),
        (
            "/metrics",
            r#"rt_service_requests_total{rt="http", service="svc/foo"} 3"#,
        ),
    ] {
        let r = get(&admin, path).await;
        assert_eq!(r.status, 200, "{path} serves Prometheus text");
        assert_eq!(r.header("content-type"), Some("text/plain; version=0.0.4"));
        assert!(
            r.body.contains(want),
            "{path}: router and service are labels of the requests counter:\n{}",
            r.body
        );
    }
}

#[tokio::test]
async fn prometheus_telemeter_path_is_404_unless_configured() {
    let admin = start(None).await;
    let r = get(&admin, "/admin/metrics/prometheus").await;
    assert_eq!(
        r.status, 404,
        "no io.l5d.prometheus telemeter, no telemeter path"
    );
    assert!(
        r.body.contains("io.l5d.prometheus"),
        "the 404 says which telemeter to add: {}",
        r.body
    );
    let r = get(&admin, "/metrics").await;
    assert_eq!(r.status, 200, "/metrics is served without a telemeter");
}

#[tokio::test]
async fn prometheus_uses_the_telemeter_prefix_and_path() {
    let admin = start(Some(("/prom", "linkerd_"))).await;
    let r = get(&admin, "/prom").await;
    assert_eq!(r.status, 200, "the telemeter's path serves Prometheus text");
    assert!(
        r.body.contains("linkerd_rt:service:requests{"),
        "the telemeter's prefix starts every name:\n{}",
        r.body
    );
}

#[tokio::test]
async fn config_json_echoes_the_running_config() {
    let admin = start(None).await;
    let r = get(&admin, "/config.json").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        serde_json::json!({ "admin": { "port": 9990 }, "routers": [{ "protocol": "http" }] }),
        "/config.json is the configuration as given to the admin"
    );
}

#[tokio::test]
async fn shutdown_is_post_only() {
    let admin = start(None).await;
    let r = get(&admin, "/admin/shutdown").await;
    assert_eq!(r.status, 405, "GET /admin/shutdown is refused");
    assert_eq!(
        r.header("allow"),
        Some("POST"),
        "the 405 says POST is allowed"
    );
    assert!(
        !*admin.stopped.borrow(),
        "a refused shutdown does not shut down"
    );
}

#[tokio::test]
async fn shutdown_post_replies_quitting_and_stops_the_server() {
    let mut admin = start(None).await;
    let r = call(&admin, "POST", "/admin/shutdown", &[], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body, "quitting",
        "POST /admin/shutdown answers `quitting`"
    );
    tokio::time::timeout(Duration::from_secs(1), admin.stopped.wait_for(|s| *s))
        .await
        .expect("the shutdown watch flips")
        .expect("sender alive");
    tokio::time::timeout(Duration::from_secs(5), &mut admin.task)
        .await
        .expect("serve returns once shutdown is true")
        .expect("serve does not panic");
    assert!(
        TcpStream::connect(admin.addr).await.is_err(),
        "the listener is closed after shutdown"
    );
}

#[tokio::test]
async fn namer_state_serves_known_namers_and_404s_others() {
    let admin = start(None).await;
    let r = get(&admin, "/namer_state/io.l5d.fs.json").await;
    assert_eq!(r.status, 200, "the namer at /#/io.l5d.fs is io.l5d.fs.json");
    assert_eq!(r.json(), serde_json::json!({ "watching": ["hello"] }));
    let r = get(&admin, "/namer_state/io.l5d.consul.json").await;
    assert_eq!(r.status, 404, "no namer with that prefix");
}

#[tokio::test]
async fn client_state_is_an_empty_object_before_any_client() {
    let admin = start(None).await;
    let r = get(&admin, "/client_state.json").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::json!({}), "no client bound yet");
}

#[test]
fn client_state_shows_each_addr_kind_as_linkerd() {
    let eps: Arc<[Endpoint]> = vec![Endpoint::new(([127, 0, 0, 1], 8080).into())].into();
    assert_eq!(
        addr_json(&Addr::Bound(eps)),
        serde_json::json!({ "state": "bound", "addresses": ["127.0.0.1:8080"] })
    );
    assert_eq!(addr_json(&Addr::Neg), serde_json::json!({ "state": "neg" }));
    assert_eq!(
        addr_json(&Addr::Pending),
        serde_json::json!({ "state": "pending" })
    );
    assert_eq!(
        addr_json(&Addr::Failed("no such host".into())),
        serde_json::json!({ "state": "failed", "error": "no such host" })
    );
}

#[tokio::test]
async fn delegator_json_explains_a_path_through_the_given_dtab() {
    let admin = start(None).await;
    let r = get(
        &admin,
        "/delegator.json?namespace=http&path=/svc/foo&dtab=%2Fsvc%3D%3E%2F%24%2Finet%2F127.0.0.1%2F1",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json()["type"],
        "delegate",
        "the root of a delegation through a dentry is a delegate node: {}",
        r.body
    );
    let leaf = &r.json()["delegate"];
    assert_eq!(leaf["type"], "leaf", "/svc/foo binds through /$/inet");
    assert_eq!(
        leaf["dentry"],
        serde_json::json!({ "prefix": "/svc", "dst": "/$/inet/127.0.0.1/1" }),
        "each node names the dentry of the given dtab that produced it"
    );
    assert_eq!(leaf["bound"]["id"], "/$/inet/127.0.0.1/1");
}

#[tokio::test]
async fn delegator_json_dtab_replaces_the_router_dtab() {
    let admin = start(None).await;
    // Without `dtab`, the router's own `/svc=>/$/inet/127.0.0.1/1` is not
    // used: nothing names /svc/foo (Linkerd's semantics; the page sends
    // the router dtab itself).
    let r = get(&admin, "/delegator.json?namespace=http&path=/svc/foo").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["type"], "neg", "{}", r.body);
    // A dtab of its own is the whole dtab: /svc goes to port 2 only.
    let r = get(
        &admin,
        "/delegator.json?namespace=http&path=/svc/foo&dtab=%2Fsvc%3D%3E%2F%24%2Finet%2F127.0.0.1%2F2",
    )
    .await;
    assert_eq!(
        r.json()["delegate"]["bound"]["id"],
        "/$/inet/127.0.0.1/2",
        "{}",
        r.body
    );
    assert!(!r.body.contains("127.0.0.1/1"), "{}", r.body);
    // No namespace: no router and no configured namers; /$/ still binds.
    let r = get(
        &admin,
        "/delegator.json?path=/svc/foo&dtab=%2Fsvc%3D%3E%2F%23%2Fio.l5d.fs",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("neg") || r.body.contains("exception"),
        "{}",
        r.body
    );
    let r = get(&admin, "/delegator.json?path=/$/inet/127.0.0.1/3").await;
    assert_eq!(r.json()["bound"]["id"], "/$/inet/127.0.0.1/3", "{}", r.body);
}

#[tokio::test]
async fn delegator_json_takes_a_post_json_body() {
    let admin = start(None).await;
    let body = r#"{"namespace":"http","dtab":"/svc=>/$/inet/127.0.0.1/1","path":"/svc/foo"}"#;
    let ct = [("Content-Type", "application/json")];
    let r = call(&admin, "POST", "/delegator.json", &ct, body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["type"], "delegate");
    let r = call(&admin, "POST", "/delegator.json", &[], body).await;
    assert_eq!(r.status, 415, "a POST must be JSON");
    let r = call(&admin, "POST", "/delegator.json", &ct, "{}").await;
    assert_eq!(r.status, 400, "a POST without path is malformed");
    assert!(
        r.body.starts_with("Malformed delegation request: "),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn delegator_json_rejects_bad_input() {
    let admin = start(None).await;
    let r = get(&admin, "/delegator.json?path=/svc/foo&dtab=%2Fa%3D%3E").await;
    assert_eq!(r.status, 400, "a dtab that does not parse is a 400");
    assert!(
        r.body.starts_with("Invalid dtab: "),
        "a bad dtab is `Invalid dtab: <parser message>`: {}",
        r.body
    );
    let r = get(&admin, "/delegator.json?path=svc").await;
    assert_eq!(r.status, 400, "a path that does not parse is a 400");
    assert!(
        r.body.starts_with("Invalid path: "),
        "a bad path is `Invalid path: <parser message>`: {}",
        r.body
    );
    let r = get(&admin, "/delegator.json?namespace=nope&path=/svc/foo").await;
    assert_eq!(r.status, 501, "an unknown namespace is Linkerd's 501");
    assert_eq!(r.body, "Name Interpreter for nope cannot show delegations");
    let r = call(&admin, "DELETE", "/delegator.json", &[], "").await;
    assert_eq!(r.status, 405);
}

#[tokio::test(start_paused = true)]
async fn delegator_times_out_with_503_while_a_namer_has_not_answered() {
    let (state, _stopped) = admin_state(None, true);
    let request = DelegationRequest {
        namespace: Some("http".into()),
        dtab: Some("/svc=>/#/io.l5d.fs".into()),
        path: Some("/svc/foo".into()),
    };
    let started = tokio::time::Instant::now();
    let resp = explain(&state, request).await;
    assert_eq!(
        resp.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "a namer that never answers is a 503"
    );
    assert!(
        started.elapsed() >= DELEGATE_TIMEOUT,
        "the explainer waits the full 2 s for the namer first"
    );
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"Request timed out.", "Linkerd's text");
}

#[tokio::test]
async fn index_lists_every_path_and_unknown_paths_are_404() {
    let admin = start(None).await;
    for path in ["/admin", "/admin/index.txt"] {
        let r = get(&admin, path).await;
        assert_eq!(r.status, 200);
        let lines: Vec<&str> = r.body.lines().collect();
        for want in [
            "/admin/ping",
            "/admin/metrics.json",
            "/metrics",
            "/delegator.json",
            "/client_state.json",
            "/namer_state/io.l5d.fs.json",
            "/admin/shutdown",
        ] {
            assert!(lines.contains(&want), "{path} lists {want}: {lines:?}");
        }
    }
    let r = get(&admin, "/nope").await;
    assert_eq!(r.status, 404, "unknown paths are 404");
}

#[tokio::test]
async fn dashboard_and_playground_are_served_from_the_binary() {
    let admin = start(None).await;
    let r = get(&admin, "/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(
        r.body.contains("/files/dashboard.js") && r.body.contains("/files/strait.css"),
        "the dashboard loads its script and stylesheet from /files/"
    );
    let js = get(&admin, "/files/dashboard.js").await;
    assert_eq!(js.status, 200);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(js.header("cache-control"), Some(ASSET_CACHE));
    assert!(
        js.body.contains("/admin/metrics.json"),
        "the page polls the metrics"
    );
    let css = get(&admin, "/files/strait.css").await;
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(get(&admin, "/files/nope.js").await.status, 404);
    for (name, _, body) in ASSETS {
        assert!(
            !body.contains("//cdn") && !body.contains("https://") && !body.contains("@import"),
            "{name} fetches nothing from elsewhere"
        );
    }

    let page = get(&admin, "/delegator").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        page.body.contains(
            r#"<script id="dtab-base-data" type="application/json">{"http":[{"prefix":"/svc","dst":"/$/inet/127.0.0.1/1"}]}</script>"#
        ),
        "the page carries each router's dtab as Linkerd's does: {}",
        page.body
    );
    assert!(
        page.body
            .contains(r#"<script id="dtab-data" type="application/json">{"http":[]}</script>"#),
        "and each router's stored dtab (none here)"
    );
}

#[test]
fn script_json_cannot_close_the_script_element() {
    let v = serde_json::json!({ "a": "</script><b>" });
    let s = script_json(&v);
    assert!(!s.contains('<'), "{s}");
    assert_eq!(serde_json::from_str::<Value>(&s).unwrap(), v);
}

#[test]
fn query_strings_are_url_decoded() {
    let q = Query::parse(Some(
        "dtab=%2Fa%3D%3E%2Fb+%7C+%2Fc&pretty&q=rt%2Fhttp&q=second&bad=%zz",
    ));
    assert_eq!(q.get("dtab"), Some("/a=>/b | /c"), "%XX and + decode");
    assert_eq!(q.get("q"), Some("rt/http"), "the first value wins");
    assert_eq!(q.get("pretty"), Some(""), "a bare key has an empty value");
    assert_eq!(q.get("bad"), Some("%zz"), "a broken escape stays as is");
    assert!(!q.flag("pretty"), "an empty value is not true");
    assert!(Query::parse(Some("tree=true")).flag("tree"));
    assert!(Query::parse(Some("tree=1")).flag("tree"));
    assert!(!Query::parse(Some("tree=0")).flag("tree"));
}

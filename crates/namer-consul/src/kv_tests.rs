//! The KV loop against the test-kit Consul simulator, over real HTTP.

use strait_test_kit::consul::{ConsulSim, SimConfig};

use super::*;

const KEY: &str = "namerd/dtabs/default";

fn cfg(sim: &ConsulSim) -> KvConfig {
    KvConfig {
        consul: ConsulConfig {
            host: "127.0.0.1".into(),
            port: sim.addr().port(),
            wait: Duration::from_secs(2),
            backoff: (Duration::from_millis(10), Duration::from_millis(50)),
            ..ConsulConfig::default()
        },
        ..KvConfig::default()
    }
}

async fn until(rx: &mut watch::Receiver<StoredDtab>, what: impl Fn(&StoredDtab) -> bool) {
    tokio::time::timeout(Duration::from_secs(1), rx.wait_for(|s| what(s)))
        .await
        .expect("within a second")
        .expect("open");
}

fn state(i: &ConsulDtabInterpreter) -> Value {
    i.state()["default"].clone()
}

#[test]
fn urls_carry_the_key_index_dc_and_consistency() {
    let mut c = KvConfig::default();
    assert_eq!(c.url(None), "/v1/kv/namerd/dtabs/default?raw=true");
    c.datacenter = Some("dc 2".into());
    c.consul.consistency = Consistency::Stale;
    c.path_prefix = "/a/b/".into();
    c.namespace = "web-1".into();
    assert_eq!(
        c.url(Some(7)),
        "/v1/kv/a/b/web-1?raw=true&index=7&wait=300000ms&dc=dc%202&stale=true"
    );
    assert_eq!(c.validate(), Ok(()));
    c.namespace = "a/b".into();
    c.path_prefix = "x".into();
    let e = c.validate().unwrap_err();
    assert!(
        e.contains("namespace \"a/b\" must match [A-Za-z0-9_-]+"),
        "{e}"
    );
    assert!(e.contains("pathPrefix \"x\" must start with '/'"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_dtab_is_stored_and_changes_move_within_a_second() {
    let sim = ConsulSim::start(SimConfig::default());
    sim.kv_put(KEY, b"/svc => /#/io.l5d.fs");
    let interp = ConsulDtabInterpreter::new(cfg(&sim)).unwrap();
    let mut rx = interp.subscribe();
    until(&mut rx, StoredDtab::is_ready).await;
    assert_eq!(rx.borrow().dtab.show(), "/svc=>/#/io.l5d.fs");
    assert_eq!(state(&interp)["state"]["dtab"], "/svc=>/#/io.l5d.fs");

    let put = std::time::Instant::now();
    sim.kv_put(KEY, b"/svc => /$/inet/127.1/9");
    until(&mut rx, |s| s.dtab.show() == "/svc=>/$/inet/127.1/9").await;
    assert!(put.elapsed() < Duration::from_secs(1));
    assert_eq!(rx.borrow().version, 2);
    // It was a blocking read that woke, not a poll.
    let last = sim.requests().last().unwrap().clone();
    assert_eq!(last.path(), "/v1/kv/namerd/dtabs/default");
    assert!(last.query("index").is_some(), "{last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_dtab_keeps_the_last_good_one_and_shows_the_error() {
    let sim = ConsulSim::start(SimConfig::default());
    sim.kv_put(KEY, b"/svc => /#/io.l5d.fs");
    let interp = ConsulDtabInterpreter::new(cfg(&sim)).unwrap();
    let mut rx = interp.subscribe();
    until(&mut rx, StoredDtab::is_ready).await;

    sim.kv_put(KEY, b"/svc => ");
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while !state(&interp)["state"].is_string() {
        assert!(std::time::Instant::now() < deadline, "{}", interp.state());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let s = state(&interp);
    let error = s["state"].as_str().unwrap();
    assert!(
        error.starts_with("consul ns default dtab parsing failed: ")
            && error.ends_with("dtab: '/svc => '"),
        "{error}"
    );
    assert_eq!(s["lastGood"]["dtab"], "/svc=>/#/io.l5d.fs");
    assert_eq!(rx.borrow().dtab.show(), "/svc=>/#/io.l5d.fs");
    assert_eq!(rx.borrow().version, 1);

    // It keeps watching: a fix applies.
    sim.kv_put(KEY, b"/svc => /#/io.l5d.consul");
    until(&mut rx, |s| s.version == 2).await;
    assert!(state(&interp)["state"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_is_the_empty_dtab_and_blocks_on_the_404s_index() {
    let sim = ConsulSim::start(SimConfig::default());
    let interp = ConsulDtabInterpreter::new(cfg(&sim)).unwrap();
    let mut rx = interp.subscribe();
    until(&mut rx, StoredDtab::is_ready).await;
    assert!(rx.borrow().dtab.is_empty());
    assert_eq!(state(&interp)["state"]["dtab"], "");

    sim.kv_put(KEY, b"/svc => /#/io.l5d.fs");
    until(&mut rx, |s| s.version == 2).await;
    sim.kv_delete(KEY);
    until(&mut rx, |s| s.version == 3 && s.dtab.is_empty()).await;
    assert!(
        sim.requests()
            .iter()
            .all(|r| r.query("raw").as_deref() == Some("true"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_keep_the_dtab_and_the_loop_recovers() {
    let sim = ConsulSim::start(SimConfig::default());
    sim.kv_put(KEY, b"/svc => /#/io.l5d.fs");
    let interp = ConsulDtabInterpreter::new(cfg(&sim)).unwrap();
    let mut rx = interp.subscribe();
    until(&mut rx, StoredDtab::is_ready).await;

    sim.fail_all(500, "No cluster leader");
    sim.drop_connections();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rx.borrow().dtab.show(), "/svc=>/#/io.l5d.fs");
    assert!(
        state(&interp)["state"].is_object(),
        "a good state stays good"
    );
    assert!(
        state(&interp)["poll"]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("No cluster leader")),
        "{}",
        interp.state()
    );
    sim.clear_failures();
    sim.kv_put(KEY, b"/svc => /#/io.l5d.consul");
    until(&mut rx, |s| s.version == 2).await;

    // A 403 is shown.
    sim.fail_all(403, "ACL not found");
    sim.drop_connections();
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while !state(&interp)["state"].is_string() {
        assert!(std::time::Instant::now() < deadline, "{}", interp.state());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(state(&interp)["state"].as_str().unwrap().contains("403"));
    assert_eq!(rx.borrow().version, 2);
}

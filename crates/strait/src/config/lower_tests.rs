//! Tests of the lowering: the policy tables against the config's own
//! resolution, and one place per default.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use strait_dtab::Path;

use super::*;

/// Every kind of both blocks, static, with overlapping and wildcard
/// prefixes.
const STATIC: &str = "
routers:
- protocol: http
  servers: [{port: 0}]
  client:
    kind: io.l5d.static
    configs:
    - prefix: /
      requestAttemptTimeoutMs: 1000
      failureAccrual: {kind: io.l5d.successRate, successRate: 0.9, requests: 20}
    - prefix: /#/io.l5d.fs/*
      loadBalancer: {kind: ewma, decayTimeMs: 500}
      connectTimeoutMs: 500
      requeueBudget: {ttlSecs: 3}
    - prefix: \"/#/io.l5d.fs/{service}/canary\"
      connectTimeoutMs: 50
      hostConnectionPool: {idleTimeMs: 7}
      failureAccrual: {kind: none}
    - prefix: /#/io.l5d.consul/*/web
      hostConnectionPool: {maxSize: 10}
      loadBalancer: {kind: roundRobin, maxEffort: 2}
      failureAccrual:
        kind: io.l5d.successRateWindowed
        successRate: 0.5
        window: 30
        backoff: {kind: constant, ms: 10}
  service:
    kind: io.l5d.static
    configs:
    - prefix: /svc
      totalTimeoutMs: 5000
      retries:
        budget: {percentCanRetry: 0.5}
    - prefix: /svc/foo
      responseClassifier: {kind: io.l5d.http.retryableRead5XX}
      retries:
        backoff: {kind: jittered, minMs: 10, maxMs: 100}
    - prefix: /svc/*/admin
      responseClassifier: {kind: io.l5d.http.nonRetryable5XX}
      retries: {}
";

const NAMES: &[&str] = &[
    "/",
    "/$/inet/127.1/8080",
    "/#/io.l5d.fs",
    "/#/io.l5d.fs/web",
    "/#/io.l5d.fs/web/canary",
    "/#/io.l5d.fs/web/canary/x",
    "/#/io.l5d.consul/dc1/web",
    "/#/io.l5d.consul/dc1/api",
    "/svc",
    "/svc/bar",
    "/svc/foo",
    "/svc/foo/admin",
    "/svc/bar/admin",
    "/other",
];

fn router(text: &str) -> RouterConfig {
    crate::config::parse(text, "test.yaml").unwrap().routers[0].clone()
}

/// The tables answer what lowering the config's own resolution
/// (`params_for`, the config-level statement of Linkerd's rules)
/// answers, for every name.
fn assert_same_as_params_for(rc: &RouterConfig) {
    let p = policies(rc).unwrap();
    for name in NAMES {
        let name = Path::read(name).unwrap();
        assert_eq!(
            p.client_for(&name),
            client_policy(&rc.client.params_for(&name), false, "r", "client.tls").unwrap(),
            "client {name}"
        );
        assert_eq!(
            p.service_for(&name),
            service_policy(&rc.service.params_for(&name)),
            "service {name}"
        );
    }
}

#[test]
fn static_tables_resolve_as_the_config_does() {
    let rc = router(STATIC);
    assert_same_as_params_for(&rc);
    let p = policies(&rc).unwrap();
    assert_eq!(p.client.patches.len(), 4);
    let canary = p.client_for(&Path::read("/#/io.l5d.fs/web/canary").unwrap());
    assert_eq!(canary.connect_timeout, Duration::from_millis(50));
    assert_eq!(canary.pool_idle_timeout, Some(Duration::from_millis(7)));
    assert_eq!(canary.accrual, FailureAccrual::None);
    assert_eq!(canary.requeue_budget.ttl, Duration::from_secs(3));
    assert_eq!(canary.attempt_timeout, Some(Duration::from_secs(1)));
}

#[test]
fn global_tables_have_no_patches() {
    let rc = router(
        "
routers:
- protocol: http
  servers: [{port: 0}]
  client:
    loadBalancer: {kind: roundRobin}
    hostConnectionPool: {maxSize: 3, idleTimeMs: 100}
  service:
    responseClassifier: {kind: io.l5d.http.retryableAll5XX}
    retries: {backoff: {kind: constant, ms: 5}}
",
    );
    assert_same_as_params_for(&rc);
    let p = policies(&rc).unwrap();
    assert!(p.client.patches.is_empty() && p.service.patches.is_empty());
    assert_eq!(p.client.base.pool_max_size, Some(3));
    assert_eq!(
        p.service.base.backoff,
        RetryBackoff::Constant(Duration::from_millis(5))
    );
}

#[test]
fn the_config_defaults_lower_to_the_router_defaults() {
    assert_eq!(
        client_policy(&ClientParams::default(), false, "r", "client.tls").unwrap(),
        ClientPolicy::default()
    );
    assert_eq!(
        service_policy(&ServiceParams::default()),
        ServicePolicy::default()
    );
    assert_eq!(
        budget(&BudgetConfig::default()),
        BudgetParams::LINKERD_DEFAULT,
        "one default budget"
    );
    let rc = router("routers:\n- protocol: http\n  servers: [{port: 0}]\n");
    assert_eq!(policies(&rc).unwrap(), Policies::default());
}

#[test]
fn an_unwritten_accrual_backoff_is_linkerds_equal_jitter() {
    assert_eq!(
        backoff(&FailureAccrualConfig::default_backoff()),
        strait_balancer::Backoff::default()
    );
    let written = BackoffConfig::Jittered {
        min: Duration::from_millis(5_000),
        max: Duration::from_millis(60_000),
    };
    assert_eq!(
        backoff(&written),
        strait_balancer::Backoff::Jittered {
            min: Duration::from_millis(5_000),
            max: Duration::from_millis(60_000),
        }
    );
}

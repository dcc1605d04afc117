#![allow(clippy::unwrap_used)]

use super::*;

fn path(s: &str) -> Path {
    Path::read(s).unwrap()
}

fn prefix(s: &str) -> PathMatcher {
    PathMatcher::new(s).unwrap()
}

const SEC: Duration = Duration::from_secs(1);

#[test]
fn global_is_one_policy_for_every_name() {
    let base = ClientPolicy {
        connect_timeout: 3 * SEC,
        attempt_timeout: Some(SEC),
        ..ClientPolicy::default()
    };
    let p = Policies {
        client: PolicyTable::global(base.clone()),
        ..Policies::default()
    };
    for name in ["/#/io.l5d.fs/web", "/$/inet/127.1/8080", "/"] {
        assert_eq!(p.client_for(&path(name)), base, "{name}");
        assert_eq!(p.service_for(&path(name)), ServicePolicy::default());
    }
}

#[test]
fn static_items_apply_in_order_later_wins_key_by_key() {
    let budget = BudgetParams {
        ttl: 5 * SEC,
        min_per_sec: 1,
        percent_can_retry: 0.5,
    };
    let service = PolicyTable {
        base: ServicePolicy::default(),
        patches: vec![
            (
                prefix("/svc"),
                ServicePolicyPatch {
                    classifier: Some(Classifier::RetryableRead5XX),
                    backoff: Some(RetryBackoff::Constant(SEC)),
                    total_timeout: Some(10 * SEC),
                    ..ServicePolicyPatch::default()
                },
            ),
            (
                prefix("/svc/foo"),
                ServicePolicyPatch {
                    classifier: Some(Classifier::RetryableAll5XX),
                    budget: Some(budget),
                    ..ServicePolicyPatch::default()
                },
            ),
        ],
    };
    let p = Policies {
        service,
        ..Policies::default()
    };
    assert_eq!(
        p.service_for(&path("/svc/foo/bar")),
        ServicePolicy {
            classifier: Classifier::RetryableAll5XX,
            budget,
            backoff: RetryBackoff::Constant(SEC),
            total_timeout: Some(10 * SEC),
            ..ServicePolicy::default()
        },
        "both match: the later item's keys win, the earlier item's other keys stay"
    );
    assert_eq!(
        p.service_for(&path("/svc/bar")),
        ServicePolicy {
            classifier: Classifier::RetryableRead5XX,
            backoff: RetryBackoff::Constant(SEC),
            total_timeout: Some(10 * SEC),
            ..ServicePolicy::default()
        },
        "only the first matches"
    );
}

#[test]
fn pool_is_one_value_and_wildcards_match_one_element() {
    let client = PolicyTable {
        base: ClientPolicy::default(),
        patches: vec![
            (
                prefix("/#/io.l5d.fs"),
                ClientPolicyPatch {
                    pool: Some(PoolPolicy {
                        max_size: Some(4),
                        idle_timeout: Some(SEC),
                    }),
                    ..ClientPolicyPatch::default()
                },
            ),
            (
                prefix("/#/*/web"),
                ClientPolicyPatch {
                    pool: Some(PoolPolicy {
                        max_size: Some(8),
                        idle_timeout: None,
                    }),
                    balancer: Some(LoadBalancer::round_robin()),
                    ..ClientPolicyPatch::default()
                },
            ),
        ],
    };
    let p = Policies {
        client,
        ..Policies::default()
    };
    let web = p.client_for(&path("/#/io.l5d.fs/web/v1"));
    assert_eq!(web.pool_max_size, Some(8));
    assert_eq!(
        web.pool_idle_timeout, None,
        "a later hostConnectionPool replaces the whole pool setting"
    );
    assert_eq!(web.balancer, LoadBalancer::round_robin());
    let consul_web = p.client_for(&path("/#/io.l5d.consul/web"));
    assert_eq!(
        consul_web.pool_max_size,
        Some(8),
        "`*` matches `io.l5d.consul`"
    );
    assert_eq!(
        consul_web.pool_idle_timeout, None,
        "the first item does not match it"
    );
    let api = p.client_for(&path("/#/io.l5d.fs/api"));
    assert_eq!(
        (api.pool_max_size, api.pool_idle_timeout),
        (Some(4), Some(SEC))
    );
    assert_eq!(api.balancer, LoadBalancer::default());
    assert!(
        !prefix("/#/*/web").matches(&path("/#/web")),
        "`*` is exactly one element"
    );
}

#[test]
fn no_match_is_the_base() {
    let base = ClientPolicy {
        requeue_budget: BudgetParams {
            min_per_sec: 0,
            ..BudgetParams::LINKERD_DEFAULT
        },
        ..ClientPolicy::default()
    };
    let p = Policies {
        client: PolicyTable {
            base: base.clone(),
            patches: vec![(
                prefix("/#/io.l5d.fs/web"),
                ClientPolicyPatch {
                    connect_timeout: Some(SEC),
                    attempt_timeout: Some(SEC),
                    requeue_budget: Some(BudgetParams::LINKERD_DEFAULT),
                    accrual: Some(FailureAccrual::None),
                    ..ClientPolicyPatch::default()
                },
            )],
        },
        ..Policies::default()
    };
    assert_eq!(p.client_for(&path("/#/io.l5d.fs/api")), base);
    assert_eq!(
        p.client_for(&path("/#/io.l5d.fs")),
        base,
        "shorter than the prefix"
    );
    assert_eq!(
        p.client_for(&path("/#/io.l5d.fs/web")),
        ClientPolicy {
            connect_timeout: SEC,
            attempt_timeout: Some(SEC),
            requeue_budget: BudgetParams::LINKERD_DEFAULT,
            accrual: FailureAccrual::None,
            ..ClientPolicy::default()
        }
    );
    assert_eq!(
        Policies::default().service_for(&path("/svc/x")),
        ServicePolicy::default()
    );
}

#[test]
fn path_matcher_prefixes_capture_within_elements() {
    let patch = |max| ClientPolicyPatch {
        pool: Some(PoolPolicy {
            max_size: Some(max),
            idle_timeout: None,
        }),
        ..ClientPolicyPatch::default()
    };
    let client = PolicyTable {
        base: ClientPolicy::default(),
        patches: vec![
            (prefix("/#/io.l5d.consul/{dc}/{service}"), patch(2)),
            (prefix("/#/io.l5d.consul/{dc}-east/"), patch(3)),
        ],
    };
    let max = |id: &str| client.resolve(&path(id)).pool_max_size;
    assert_eq!(max("/#/io.l5d.consul/dc1/web"), Some(2));
    assert_eq!(max("/#/io.l5d.consul/us-east/web/x"), Some(3));
    assert_eq!(max("/#/io.l5d.consul/dc1"), None, "too short");
    assert_eq!(max("/#/io.l5d.fs/web"), None);
    assert_eq!(
        max("/%/io.l5d.port/4141/#/io.l5d.consul/dc1/web"),
        None,
        "a transformed id is its own client"
    );
}

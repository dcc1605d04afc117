//! Client and service policies: what `client` and `service` in
//! `linkerd.yaml` say, as plain values, resolved per concrete name and per
//! logical name.
//!
//! The config is lowered into [`Policies`] once, when it is loaded: a base
//! policy for every name plus an ordered list of prefix patches. Linkerd's
//! `io.l5d.global` is a base with no patches; `io.l5d.static` is the
//! defaults as base and one patch per `configs` item, every matching item
//! applied in order, key by key, so later items win.

use std::time::Duration;

use strait_balancer::{FailureAccrual, LoadBalancer};
use strait_dtab::{Path, Prefix};

use crate::retry::{Backoff, Classifier};

/// A retry budget's parameters (Linkerd: `ttlSecs` 10, `minRetriesPerSec`
/// 10, `percentCanRetry` 0.2).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetParams {
    /// The sliding window.
    pub ttl: Duration,
    /// Retries always allowed per second.
    pub min_per_sec: u32,
    /// Retries allowed as a fraction of requests.
    pub percent_can_retry: f64,
}

impl BudgetParams {
    /// Linkerd's default budget (Finagle's `RetryBudget()`): a 10 s
    /// window, 10 retries a second, plus 20 % of requests. The config's
    /// default budget is this value.
    pub const LINKERD_DEFAULT: BudgetParams = BudgetParams {
        ttl: Duration::from_secs(10),
        min_per_sec: 10,
        percent_can_retry: 0.2,
    };
}

impl Default for BudgetParams {
    fn default() -> Self {
        BudgetParams::LINKERD_DEFAULT
    }
}

/// Strait's default `connectTimeoutMs` (not a Linkerd 1 key).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a concrete name's client behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientPolicy {
    /// `loadBalancer`.
    pub balancer: LoadBalancer,
    /// `failureAccrual`.
    pub accrual: FailureAccrual,
    /// `requeueBudget`.
    pub requeue_budget: BudgetParams,
    /// `requestAttemptTimeoutMs`.
    pub attempt_timeout: Option<Duration>,
    /// `connectTimeoutMs` (Strait's default 10 s).
    pub connect_timeout: Duration,
    /// `hostConnectionPool.maxSize`: connections per endpoint, busy and idle.
    pub pool_max_size: Option<usize>,
    /// `hostConnectionPool.idleTimeMs`.
    pub pool_idle_timeout: Option<Duration>,
}

impl Default for ClientPolicy {
    fn default() -> Self {
        ClientPolicy {
            balancer: LoadBalancer::default(),
            accrual: FailureAccrual::default(),
            requeue_budget: BudgetParams::default(),
            attempt_timeout: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            pool_max_size: None,
            pool_idle_timeout: None,
        }
    }
}

/// How requests to a logical name are classified, retried and timed out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServicePolicy {
    /// `responseClassifier`.
    pub classifier: Classifier,
    /// `retries.budget`.
    pub budget: BudgetParams,
    /// `retries.backoff`.
    pub backoff: Backoff,
    /// `totalTimeoutMs`.
    pub total_timeout: Option<Duration>,
}

/// Changes a policy: the keys one `io.l5d.static` item writes.
pub trait PolicyPatch<P> {
    /// Overwrites in `policy` every key this patch sets.
    fn apply_to(&self, policy: &mut P);
}

/// A per-endpoint connection pool (`hostConnectionPool`), one value: an
/// item that writes `hostConnectionPool` replaces both keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolPolicy {
    /// `maxSize` (`None`: unbounded).
    pub max_size: Option<usize>,
    /// `idleTimeMs` (`None`: never).
    pub idle_timeout: Option<Duration>,
}

/// The client keys one `io.l5d.static` item writes (`None`: not written).
/// Blocks (`loadBalancer`, `failureAccrual`, `requeueBudget`,
/// `hostConnectionPool`) are whole values, as in the config.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientPolicyPatch {
    /// `loadBalancer`.
    pub balancer: Option<LoadBalancer>,
    /// `failureAccrual`.
    pub accrual: Option<FailureAccrual>,
    /// `requeueBudget`.
    pub requeue_budget: Option<BudgetParams>,
    /// `requestAttemptTimeoutMs` (an item can set it, not unset it).
    pub attempt_timeout: Option<Duration>,
    /// `connectTimeoutMs`.
    pub connect_timeout: Option<Duration>,
    /// `hostConnectionPool`.
    pub pool: Option<PoolPolicy>,
}

impl PolicyPatch<ClientPolicy> for ClientPolicyPatch {
    fn apply_to(&self, p: &mut ClientPolicy) {
        if let Some(b) = self.balancer {
            p.balancer = b;
        }
        if let Some(a) = self.accrual {
            p.accrual = a;
        }
        if let Some(b) = self.requeue_budget {
            p.requeue_budget = b;
        }
        if let Some(t) = self.attempt_timeout {
            p.attempt_timeout = Some(t);
        }
        if let Some(t) = self.connect_timeout {
            p.connect_timeout = t;
        }
        if let Some(pool) = self.pool {
            p.pool_max_size = pool.max_size;
            p.pool_idle_timeout = pool.idle_timeout;
        }
    }
}

/// The service keys one `io.l5d.static` item writes (`None`: not
/// written). `retries.budget` and `retries.backoff` apply separately.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServicePolicyPatch {
    /// `responseClassifier`.
    pub classifier: Option<Classifier>,
    /// `retries.budget`.
    pub budget: Option<BudgetParams>,
    /// `retries.backoff`.
    pub backoff: Option<Backoff>,
    /// `totalTimeoutMs` (an item can set it, not unset it).
    pub total_timeout: Option<Duration>,
}

impl PolicyPatch<ServicePolicy> for ServicePolicyPatch {
    fn apply_to(&self, p: &mut ServicePolicy) {
        if let Some(c) = self.classifier {
            p.classifier = c;
        }
        if let Some(b) = self.budget {
            p.budget = b;
        }
        if let Some(b) = self.backoff {
            p.backoff = b;
        }
        if let Some(t) = self.total_timeout {
            p.total_timeout = Some(t);
        }
    }
}

/// A policy for every name (`base`), and patches applied in order to the
/// names their prefix matches (`*` matches any one element).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicyTable<P, X> {
    /// What a name gets when no patch matches it.
    pub base: P,
    /// `(prefix, patch)` in the order written; every match applies.
    pub patches: Vec<(Prefix, X)>,
}

impl<P: Clone, X: PolicyPatch<P>> PolicyTable<P, X> {
    /// One policy for every name (`io.l5d.global`).
    pub fn global(base: P) -> Self {
        PolicyTable {
            base,
            patches: Vec::new(),
        }
    }

    /// `base` with every patch whose prefix matches `name` applied, in
    /// order.
    pub fn resolve(&self, name: &Path) -> P {
        let mut policy = self.base.clone();
        for (prefix, patch) in &self.patches {
            if prefix.matches(name) {
                patch.apply_to(&mut policy);
            }
        }
        policy
    }
}

/// The client policies by concrete name and the service policies by
/// logical name, lowered from the config once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Policies {
    /// `client`: matched against concrete (bound) names.
    pub client: PolicyTable<ClientPolicy, ClientPolicyPatch>,
    /// `service`: matched against logical (service) names.
    pub service: PolicyTable<ServicePolicy, ServicePolicyPatch>,
}

impl Policies {
    /// The client policy of the concrete name `id`.
    pub fn client_for(&self, id: &Path) -> ClientPolicy {
        self.client.resolve(id)
    }

    /// The service policy of the logical name `name`.
    pub fn service_for(&self, name: &Path) -> ServicePolicy {
        self.service.resolve(name)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn path(s: &str) -> Path {
        Path::read(s).unwrap()
    }

    fn prefix(s: &str) -> Prefix {
        Prefix::read(s).unwrap()
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
                        backoff: Some(Backoff::Constant(SEC)),
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
                backoff: Backoff::Constant(SEC),
                total_timeout: Some(10 * SEC),
            },
            "both match: the later item's keys win, the earlier item's other keys stay"
        );
        assert_eq!(
            p.service_for(&path("/svc/bar")),
            ServicePolicy {
                classifier: Classifier::RetryableRead5XX,
                backoff: Backoff::Constant(SEC),
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
}

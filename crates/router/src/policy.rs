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
use strait_dtab::Path;
use strait_naming::pathmatch::{Captures, PathMatcher};

use crate::retry::{Classifier, RetryBackoff};
use crate::tls_client::{ClientTls, TlsClientTemplate};

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

/// Strait's default `responseTimeoutMs` (not a Linkerd 1 key): how long a
/// backend may take to begin its response.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

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
    /// `responseTimeoutMs`: the response head within this, per attempt
    /// (Strait's default 60 s).
    pub response_timeout: Duration,
    /// `hostConnectionPool.maxSize`: connections per endpoint, busy and idle.
    pub pool_max_size: Option<usize>,
    /// `hostConnectionPool.idleTimeMs`.
    pub pool_idle_timeout: Option<Duration>,
    /// `tls`: TLS to the endpoints, `commonName` resolved for this name.
    pub tls: Option<ClientTls>,
    /// An `h2` router's client: HTTP/2 to its endpoints, one multiplexed
    /// connection each, with these settings. `None`: HTTP/1.1.
    pub h2: Option<crate::params::H2Settings>,
}

impl Default for ClientPolicy {
    fn default() -> Self {
        ClientPolicy {
            balancer: LoadBalancer::default(),
            accrual: FailureAccrual::default(),
            requeue_budget: BudgetParams::default(),
            attempt_timeout: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            pool_max_size: None,
            pool_idle_timeout: None,
            tls: None,
            h2: None,
        }
    }
}

/// How requests to a logical name are classified, retried and timed out.
#[derive(Clone, Debug, PartialEq)]
pub struct ServicePolicy {
    /// `responseClassifier`.
    pub classifier: Classifier,
    /// `retries.budget`.
    pub budget: BudgetParams,
    /// `retries.backoff`.
    pub backoff: RetryBackoff,
    /// `totalTimeoutMs`.
    pub total_timeout: Option<Duration>,
    /// `retryBufferSize.requestBytes` (an `h2` router's services; Linkerd's
    /// default 16,383): a request body is kept for a retry while it is no
    /// larger than this.
    pub request_buffer_bytes: u64,
}

/// Linkerd's default `retryBufferSize.requestBytes`.
pub const DEFAULT_REQUEST_BUFFER_BYTES: u64 = 16_383;

impl Default for ServicePolicy {
    fn default() -> Self {
        ServicePolicy {
            classifier: Classifier::default(),
            budget: BudgetParams::default(),
            backoff: RetryBackoff::default(),
            total_timeout: None,
            request_buffer_bytes: DEFAULT_REQUEST_BUFFER_BYTES,
        }
    }
}

/// Changes a policy: the keys one `io.l5d.static` item writes.
pub trait PolicyPatch<P> {
    /// Overwrites in `policy` every key this patch sets.
    fn apply_to(&self, policy: &mut P);

    /// [`PolicyPatch::apply_to`] for a name its prefix matched with
    /// `captures` (a client `tls` fills its `commonName` with them).
    fn apply_matched(&self, policy: &mut P, _captures: &Captures) {
        self.apply_to(policy);
    }
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
    /// `responseTimeoutMs`.
    pub response_timeout: Option<Duration>,
    /// `hostConnectionPool`.
    pub pool: Option<PoolPolicy>,
    /// `tls`: a whole block (`Some(None)`: `enabled: false`).
    pub tls: Option<Option<TlsClientTemplate>>,
    /// An `h2` router's HTTP/2 keys, each written one (`Some`)
    /// overwriting the base's.
    pub h2: crate::params::H2Settings,
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
        if let Some(t) = self.response_timeout {
            p.response_timeout = t;
        }
        if let Some(pool) = self.pool {
            p.pool_max_size = pool.max_size;
            p.pool_idle_timeout = pool.idle_timeout;
        }
        if let Some(tls) = &self.tls {
            p.tls = tls.as_ref().map(|t| t.resolve(&Captures::new()));
        }
        if let Some(h2) = &mut p.h2 {
            let w = self.h2;
            h2.initial_stream_window = w.initial_stream_window.or(h2.initial_stream_window);
            h2.max_frame = w.max_frame.or(h2.max_frame);
            h2.header_table = w.header_table.or(h2.header_table);
            h2.max_header_list = w.max_header_list.or(h2.max_header_list);
        }
    }

    fn apply_matched(&self, p: &mut ClientPolicy, captures: &Captures) {
        self.apply_to(p);
        if let Some(Some(tls)) = &self.tls {
            p.tls = Some(tls.resolve(captures));
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
    pub backoff: Option<RetryBackoff>,
    /// `totalTimeoutMs` (an item can set it, not unset it).
    pub total_timeout: Option<Duration>,
    /// `retryBufferSize.requestBytes` (h2).
    pub request_buffer_bytes: Option<u64>,
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
        if let Some(n) = self.request_buffer_bytes {
            p.request_buffer_bytes = n;
        }
        if let Some(t) = self.total_timeout {
            p.total_timeout = Some(t);
        }
    }
}

/// A policy for every name (`base`), and patches applied in order to the
/// names their prefix matches (a Linkerd path matcher: `*` matches any
/// one element, `{name}` captures; see [`strait_naming::pathmatch`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicyTable<P, X> {
    /// What a name gets when no patch matches it.
    pub base: P,
    /// `(prefix, patch)` in the order written; every match applies.
    pub patches: Vec<(PathMatcher, X)>,
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
            if let Some(captures) = prefix.captures(name) {
                patch.apply_matched(&mut policy, &captures);
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
#[path = "policy_tests.rs"]
mod tests;

//! Client and service policies: what `client` and `service` in
//! `linkerd.yaml` say, as plain values, resolved per concrete name and per
//! logical name.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use strait_balancer::{FailureAccrual, LoadBalancer};
use strait_dtab::Path;

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

impl Default for BudgetParams {
    fn default() -> Self {
        BudgetParams {
            ttl: Duration::from_secs(10),
            min_per_sec: 10,
            percent_can_retry: 0.2,
        }
    }
}

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
            connect_timeout: Duration::from_secs(10),
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

/// Resolves policies by name (Linkerd's `io.l5d.global` / `io.l5d.static`
/// kinds live in the config; the router only asks).
#[derive(Clone)]
pub struct Policies {
    /// The client policy of a concrete name.
    pub client: Arc<dyn Fn(&Path) -> ClientPolicy + Send + Sync>,
    /// The service policy of a logical name.
    pub service: Arc<dyn Fn(&Path) -> ServicePolicy + Send + Sync>,
}

impl Policies {
    /// The client policy of the concrete name `id`.
    pub fn client_for(&self, id: &Path) -> ClientPolicy {
        (self.client)(id)
    }

    /// The service policy of the logical name `name`.
    pub fn service_for(&self, name: &Path) -> ServicePolicy {
        (self.service)(name)
    }
}

impl Default for Policies {
    fn default() -> Self {
        Policies {
            client: Arc::new(|_| ClientPolicy::default()),
            service: Arc::new(|_| ServicePolicy::default()),
        }
    }
}

impl fmt::Debug for Policies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Policies")
    }
}

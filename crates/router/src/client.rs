//! A client per concrete name: its live endpoint set behind a balancer with
//! failure accrual, its connection pool, its requeue budget and its stats.
//! All logical names that bind to one concrete name share it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use strait_balancer::{Balancer, SystemClock};
use strait_dtab::Path;
use strait_naming::{Addr, AddrVar};

use crate::policy::ClientPolicy;
use crate::pool::Pool;
use crate::retry::Budget;
use crate::stats::{Counter, Gauge, Histogram, Registry, Scope};
use crate::tls_client::TlsConnect;

/// The request body type sent to backends: the client's, streamed, or
/// replayable bytes.
pub type ReqBody =
    http_body_util::Either<crate::body::ClientBody, http_body_util::Full<bytes::Bytes>>;

/// How often a client logs connect failures at most.
const CONNECT_LOG_EVERY_MS: u64 = 10_000;

/// How long an idle connection is kept without `hostConnectionPool.idleTimeMs`.
const DEFAULT_POOL_IDLE: Duration = Duration::from_secs(60);

/// The client of one concrete name.
pub struct Client {
    /// The concrete name, e.g. `/#/io.l5d.fs/hello`.
    pub id: Path,
    /// The policy it was built with.
    pub policy: ClientPolicy,
    /// Endpoint selection and failure accrual.
    pub balancer: Balancer,
    /// The connections to its endpoints (HTTP/1.1).
    pub pool: Arc<Pool>,
    /// An `h2` router's client: one HTTP/2 connection per endpoint.
    pub h2: Option<Arc<crate::h2::H2Pool>>,
    /// `requeueBudget`.
    pub requeue_budget: Budget,
    addr: ArcSwap<Addr>,
    /// When it was last used ([`crate::clock`] milliseconds).
    last_used: AtomicU64,
    /// Connect failures since the last log line, and when
    /// ([`crate::clock`] milliseconds; 0 = never) that line was written.
    connect_burst: AtomicU64,
    connect_logged: AtomicU64,
    /// Stats under `rt/<router>/client/<id>/`.
    pub stats: ClientStats,
    /// The `l5d-dst-client` value (the concrete name), made once.
    pub l5d_dst: Option<http::HeaderValue>,
    /// The `Host` its requests carry instead of their own, when the namer
    /// asks for one (Consul's `setHost`).
    pub host: Option<http::HeaderValue>,
    /// Dropped with the client: ends the task following `addr`, which
    /// releases the namer's address set (namers stop watching names
    /// nobody follows).
    _following: tokio::sync::oneshot::Sender<()>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Stats of a client (Linkerd/Finagle names).
#[derive(Debug)]
pub struct ClientStats {
    /// `requests`.
    pub requests: Arc<Counter>,
    /// `success`.
    pub success: Arc<Counter>,
    /// `failures`.
    pub failures: Arc<Counter>,
    /// `request_latency_ms`.
    pub latency: Arc<Histogram>,
    /// `pending`: requests in flight.
    pub pending: Arc<Gauge>,
    /// `connect_failures`.
    pub connect_failures: Arc<Counter>,
    /// `retries/requeues`.
    pub requeues: Arc<Counter>,
    /// `retries/budget_exhausted` (requeue budget).
    pub requeue_budget_exhausted: Arc<Counter>,
    status: crate::service::StatusCounters,
    streams: std::sync::OnceLock<Arc<Histogram>>,
}

impl ClientStats {
    fn new(registry: &Registry, scope: &Scope) -> Self {
        ClientStats {
            requests: registry.counter(scope, "requests"),
            success: registry.counter(scope, "success"),
            failures: registry.counter(scope, "failures"),
            latency: registry.histogram(scope, "request_latency_ms"),
            pending: registry.gauge(scope, "pending"),
            connect_failures: registry.counter(scope, "connect_failures"),
            requeues: registry.counter(scope, "retries/requeues"),
            requeue_budget_exhausted: registry.counter(scope, "retries/budget_exhausted"),
            status: crate::service::StatusCounters::new(registry, scope),
            streams: std::sync::OnceLock::new(),
        }
    }

    /// Counts a stream the endpoint reset before its response head,
    /// `stream/reset/<code>` (`refused_stream`, `cancel`, ...).
    pub fn reset(&self, reason: h2::Reason) {
        let code = if u32::from(reason) <= 13 {
            format!("{reason:?}").to_ascii_lowercase()
        } else {
            "unknown".to_owned()
        };
        self.status.counter(&format!("stream/reset/{code}")).incr();
    }

    /// `stream/total_latency_ms` (an h2 client's streams, from the request
    /// to the end of its response), registered on first use.
    pub fn stream_latency(&self) -> &Arc<Histogram> {
        self.streams
            .get_or_init(|| self.status.histogram("stream/total_latency_ms"))
    }

    /// Counts a response status.
    pub fn status(&self, code: u16) {
        self.status.record(code);
    }
}

impl Client {
    /// A client following `addr` with `policy`; a task keeps the balancer's
    /// endpoint set current for as long as the client lives.
    pub fn new(
        id: Path,
        mut addr: AddrVar,
        policy: ClientPolicy,
        host: Option<http::HeaderValue>,
        registry: &Registry,
        router: &str,
    ) -> Arc<Client> {
        let scope = Scope::Client {
            router: router.to_owned().into(),
            id: id.show().into(),
        };
        let mut pool = Pool::new(
            policy.connect_timeout,
            policy.pool_idle_timeout.unwrap_or(DEFAULT_POOL_IDLE),
            policy.pool_max_size,
        );
        let h2 = policy.h2.map(|settings| {
            let mut h2 = crate::h2::H2Pool::new(policy.connect_timeout, settings);
            if let Some(tls) = &policy.tls {
                h2 = h2.with_tls(TlsConnect::new(tls, registry, &scope, true));
            }
            Arc::new(h2)
        });
        if h2.is_none()
            && let Some(tls) = &policy.tls
        {
            pool = pool.with_tls(TlsConnect::new(tls, registry, &scope, false));
        }
        let pool = Arc::new(pool);
        let requeue_budget = Budget::new(
            policy.requeue_budget.ttl,
            policy.requeue_budget.min_per_sec,
            policy.requeue_budget.percent_can_retry,
        )
        .unwrap_or_else(|_| Budget::linkerd_default());
        let balancer = Balancer::new(
            policy.balancer,
            policy.accrual,
            Arc::new(SystemClock),
            fastrand::u64(..),
        );
        let first = addr.borrow_and_update().clone();
        let (following, mut dropped) = tokio::sync::oneshot::channel();
        let client = Arc::new(Client {
            l5d_dst: http::HeaderValue::from_str(&id.show()).ok(),
            host,
            id,
            policy,
            balancer,
            pool,
            h2,
            requeue_budget,
            addr: ArcSwap::from_pointee(Addr::Pending),
            last_used: AtomicU64::new(crate::clock::now_ms()),
            connect_burst: AtomicU64::new(0),
            connect_logged: AtomicU64::new(0),
            stats: ClientStats::new(registry, &scope),
            _following: following,
        });
        register_balancer_stats(registry, &scope, &client);
        let id = client.id.show();
        client
            .balancer
            .observe(Box::new(move |addr, change| match change {
                strait_balancer::Change::Ejected => tracing::warn!(
                    client = %id,
                    endpoint = %addr,
                    "endpoint ejected by failure accrual; it gets a probe request after its backoff"
                ),
                strait_balancer::Change::Revived(out) => tracing::info!(
                    client = %id,
                    endpoint = %addr,
                    out_ms = out.as_millis() as u64,
                    "endpoint revived"
                ),
            }));
        client.update(first);
        let weak: Weak<Client> = Arc::downgrade(&client);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                loop {
                    tokio::select! {
                        changed = addr.changed() => if changed.is_err() { return },
                        _ = &mut dropped => return,
                    }
                    let next = addr.borrow_and_update().clone();
                    match weak.upgrade() {
                        Some(c) => c.update(next),
                        None => return,
                    }
                }
            });
        }
        client
    }

    fn update(&self, addr: Addr) {
        let endpoints: Vec<(SocketAddr, f64)> = match &addr {
            Addr::Bound(eps) => eps.iter().map(|e| (e.addr, e.weight)).collect(),
            _ => Vec::new(),
        };
        self.balancer.update(&endpoints);
        let live: Vec<SocketAddr> = endpoints.iter().map(|(a, _)| *a).collect();
        self.pool.sweep(Some(&live));
        if let Some(h2) = &self.h2 {
            h2.sweep(Some(&live));
        }
        if **self.addr.load() != addr {
            tracing::info!(client = %self.id, addresses = %addr, "client endpoints changed");
        }
        self.addr.store(Arc::new(addr));
    }

    /// What the namer says the endpoints are now.
    pub fn addr(&self) -> Arc<Addr> {
        self.addr.load_full()
    }

    /// The endpoint addresses now.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        match &**self.addr.load() {
            Addr::Bound(eps) => eps.iter().map(|e| e.addr).collect(),
            _ => Vec::new(),
        }
    }

    /// Logs a failed connection to `addr`: the first of a burst at once,
    /// then at most one line every ten seconds per client, with how many
    /// failed since the last line (`connect_failures` counts them all).
    pub fn connect_failed(&self, addr: SocketAddr, why: Option<&str>) {
        let now = crate::clock::now_ms();
        let n = self.connect_burst.fetch_add(1, Relaxed) + 1;
        let last = self.connect_logged.load(Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= CONNECT_LOG_EVERY_MS;
        if due
            && self
                .connect_logged
                .compare_exchange(last, now.max(1), Relaxed, Relaxed)
                .is_ok()
        {
            self.connect_burst.fetch_sub(n, Relaxed);
            tracing::warn!(
                client = %self.id,
                endpoint = %addr,
                failed = n,
                reason = why.unwrap_or("refused, unreachable or timed out"),
                "cannot connect to an endpoint (logged at most every 10 s per client; \
                 failed counts the failures since the last line)"
            );
        }
    }

    /// Marks the client used now (for idle expiry).
    pub fn touch(&self) {
        self.touch_at(crate::clock::now_ms());
    }

    /// Marks the client used at `ms` ([`crate::clock`]).
    pub(crate) fn touch_at(&self, ms: u64) {
        self.last_used.store(ms, Relaxed);
    }

    /// How long since the client was last used.
    pub fn idle_for(&self) -> Duration {
        let now = crate::clock::now_ms();
        Duration::from_millis(now.saturating_sub(self.last_used.load(Relaxed)))
    }
}

/// `loadbalancer/*` and `failure_accrual/*`, read from the balancer when
/// metrics are rendered.
fn register_balancer_stats(registry: &Registry, scope: &Scope, client: &Arc<Client>) {
    type Get = fn(&strait_balancer::BalancerStats) -> u64;
    let items: [(&str, bool, Get); 8] = [
        ("loadbalancer/size", false, |s| s.size as u64),
        ("loadbalancer/available", false, |s| s.available as u64),
        ("loadbalancer/adds", true, |s| s.adds),
        ("loadbalancer/removes", true, |s| s.removes),
        ("failure_accrual/removals", true, |s| s.removals),
        ("failure_accrual/revivals", true, |s| s.revivals),
        ("failure_accrual/probes", true, |s| s.probes),
        ("failure_accrual/removed_for_ms", true, |s| s.removed_for_ms),
    ];
    for (name, counter, get) in items {
        let weak = Arc::downgrade(client);
        registry.read_fn(
            scope,
            name,
            counter,
            Arc::new(move || {
                weak.upgrade()
                    .map_or(0, |c| get(&c.balancer.stats()) as i64)
            }),
        );
    }
}

//! Per logical name (service) and per server stats.

use std::sync::{Arc, RwLock};

use crate::stats::{Counter, Gauge, Histogram, Registry, Scope};

/// `status/<code>` and `status/<N>XX` counters, registered on first use.
#[derive(Debug)]
pub struct StatusCounters {
    registry: Registry,
    scope: Scope,
    classes: [Arc<Counter>; 5],
    codes: RwLock<Vec<(u16, Arc<Counter>)>>,
}

impl StatusCounters {
    /// Counters under `scope`.
    pub fn new(registry: &Registry, scope: &Scope) -> Self {
        let class = |n: u8| registry.counter(scope, &format!("status/{n}XX"));
        StatusCounters {
            registry: registry.clone(),
            scope: scope.clone(),
            classes: [class(1), class(2), class(3), class(4), class(5)],
            codes: RwLock::new(Vec::new()),
        }
    }

    /// A counter in the same scope.
    pub fn counter(&self, name: &str) -> Arc<Counter> {
        self.registry.counter(&self.scope, name)
    }

    /// A histogram in the same scope.
    pub fn histogram(&self, name: &str) -> Arc<Histogram> {
        self.registry.histogram(&self.scope, name)
    }

    /// Counts one response with status `code`.
    pub fn record(&self, code: u16) {
        if let Some(c) = self.classes.get(usize::from(code / 100).wrapping_sub(1)) {
            c.incr();
        }
        {
            // The usual case: a status seen before, counted under the
            // read lock (no reference taken and dropped).
            let codes = self.codes.read().unwrap_or_else(|e| e.into_inner());
            if let Some((_, c)) = codes.iter().find(|(k, _)| *k == code) {
                c.incr();
                return;
            }
        }
        let mut codes = self.codes.write().unwrap_or_else(|e| e.into_inner());
        // Another request may have added it meanwhile.
        if let Some((_, c)) = codes.iter().find(|(k, _)| *k == code) {
            c.incr();
            return;
        }
        let c = self
            .registry
            .counter(&self.scope, &format!("status/{code}"));
        c.incr();
        codes.push((code, c));
    }
}

/// Stats of a server or a service: requests, success, failures, statuses,
/// latency.
#[derive(Debug)]
pub struct RequestStats {
    /// `requests`.
    pub requests: Arc<Counter>,
    /// `success`.
    pub success: Arc<Counter>,
    /// `failures`.
    pub failures: Arc<Counter>,
    /// `pending`.
    pub pending: Arc<Gauge>,
    /// `request_latency_ms`.
    pub latency: Arc<Histogram>,
    /// `status/...`.
    pub status: StatusCounters,
    /// `stream/total_latency_ms` (h2 routers: from the request to the
    /// end of its response stream), registered on first use.
    streams: std::sync::OnceLock<Arc<Histogram>>,
}

impl RequestStats {
    /// Stats under `scope`.
    pub fn new(registry: &Registry, scope: &Scope) -> Self {
        RequestStats {
            requests: registry.counter(scope, "requests"),
            success: registry.counter(scope, "success"),
            failures: registry.counter(scope, "failures"),
            pending: registry.gauge(scope, "pending"),
            latency: registry.histogram(scope, "request_latency_ms"),
            status: StatusCounters::new(registry, scope),
            streams: std::sync::OnceLock::new(),
        }
    }

    /// `stream/total_latency_ms`.
    pub fn stream_latency(&self) -> &Arc<Histogram> {
        self.streams
            .get_or_init(|| self.status.histogram("stream/total_latency_ms"))
    }

    /// Records one finished request: 5xx is a failure (Linkerd's default
    /// classifier), anything else a success.
    pub fn record(&self, code: u16, elapsed: std::time::Duration) {
        self.record_head(code, elapsed);
        self.record_end(code < 500);
    }

    /// Records a response's head: the request, its status, the latency
    /// to the head. Its success is recorded by [`RequestStats::record_end`]
    /// (an h2 stream's when it ends).
    pub fn record_head(&self, code: u16, elapsed: std::time::Duration) {
        self.requests.incr();
        self.status.record(code);
        self.latency.record(elapsed);
    }

    /// Records whether a request succeeded.
    pub fn record_end(&self, success: bool) {
        if success {
            self.success.incr();
        } else {
            self.failures.incr();
        }
    }
}

/// A logical name's policy, retry budget and stats
/// (`rt/<router>/service/<name>/...`).
#[derive(Debug)]
pub struct Service {
    /// `requests`, `success`, `status/...`, latency.
    pub stats: RequestStats,
    /// Classifier, retries, timeout.
    pub policy: crate::policy::ServicePolicy,
    /// `retries.budget`.
    pub budget: crate::retry::Budget,
    /// `retries/total`.
    pub retries: Arc<Counter>,
    /// `retries/budget_exhausted`.
    pub budget_exhausted: Arc<Counter>,
    /// `retries/per_request` (recorded as milliseconds so that its
    /// snapshot reads as a count).
    pub per_request: Arc<Histogram>,
    /// The `l5d-dst-service` value (the logical name), made once.
    pub l5d_dst: Option<http::HeaderValue>,
    /// When a request was last routed to it ([`crate::clock`]
    /// milliseconds).
    last_used: std::sync::atomic::AtomicU64,
}

impl Service {
    /// The service `name` with `policy`, its stats in `scope`.
    pub fn new(
        registry: &Registry,
        scope: &Scope,
        name: &strait_dtab::Path,
        policy: crate::policy::ServicePolicy,
    ) -> Arc<Service> {
        let b = policy.budget;
        let budget = crate::retry::Budget::new(b.ttl, b.min_per_sec, b.percent_can_retry)
            .unwrap_or_else(|_| crate::retry::Budget::linkerd_default());
        let svc = Arc::new(Service {
            stats: RequestStats::new(registry, scope),
            policy,
            budget,
            retries: registry.counter(scope, "retries/total"),
            budget_exhausted: registry.counter(scope, "retries/budget_exhausted"),
            per_request: registry.histogram(scope, "retries/per_request"),
            l5d_dst: http::HeaderValue::from_str(&name.show()).ok(),
            last_used: std::sync::atomic::AtomicU64::new(crate::clock::now_ms()),
        });
        let weak = Arc::downgrade(&svc);
        registry.read_fn(
            scope,
            "retries/budget",
            false,
            Arc::new(move || weak.upgrade().map_or(0, |s| s.budget.balance())),
        );
        svc
    }

    /// Marks the service used now (for idle expiry): a service outlives
    /// the bindings holding it (a reload drops them all) until it has been
    /// idle for the router's idle TTL, so its series stay put.
    #[inline]
    pub fn touch(&self) {
        self.touch_at(crate::clock::now_ms());
    }

    /// Marks the service used at `ms` ([`crate::clock`]).
    #[inline]
    pub(crate) fn touch_at(&self, ms: u64) {
        self.last_used
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// How long since a request was last routed to the service (or since
    /// it was made).
    pub fn idle_for(&self) -> std::time::Duration {
        let now = crate::clock::now_ms();
        let last = self.last_used.load(std::sync::atomic::Ordering::Relaxed);
        std::time::Duration::from_millis(now.saturating_sub(last))
    }
}

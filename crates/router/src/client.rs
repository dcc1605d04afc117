//! A client per concrete name: its live endpoint set, endpoint selection and
//! its stats. All logical names that bind to one concrete name share it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::Instant;

use arc_swap::ArcSwap;
use strait_dtab::Path;
use strait_naming::{Addr, AddrVar};

use crate::stats::{Counter, Gauge, Histogram, Registry, Scope};

/// One endpoint and the requests in flight to it.
#[derive(Debug)]
pub struct EndpointState {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Relative weight.
    pub weight: f64,
    inflight: AtomicUsize,
}

/// The endpoints of a concrete name at one instant.
#[derive(Debug)]
pub struct EndpointSet {
    /// The namer's answer this set came from.
    pub addr: Addr,
    /// The endpoints (empty unless `addr` is bound to a non-empty set).
    pub endpoints: Vec<Arc<EndpointState>>,
}

/// The client of one concrete name.
#[derive(Debug)]
pub struct Client {
    /// The concrete name, e.g. `/#/io.l5d.fs/hello`.
    pub id: Path,
    set: ArcSwap<EndpointSet>,
    last_used: AtomicU64,
    epoch: Instant,
    /// Stats under `rt/<router>/client/<id>/`.
    pub stats: Arc<ClientStats>,
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
    /// `loadbalancer/size`.
    pub lb_size: Arc<Gauge>,
    /// `pending`: requests in flight.
    pub pending: Arc<Gauge>,
    /// `connect_failures` (Linkerd: `failures/...ConnectionFailedException`).
    pub connect_failures: Arc<Counter>,
    status: crate::service::StatusCounters,
}

impl ClientStats {
    fn new(registry: &Registry, scope: &Scope) -> Self {
        ClientStats {
            requests: registry.counter(scope, "requests"),
            success: registry.counter(scope, "success"),
            failures: registry.counter(scope, "failures"),
            latency: registry.histogram(scope, "request_latency_ms"),
            lb_size: registry.gauge(scope, "loadbalancer/size"),
            pending: registry.gauge(scope, "pending"),
            connect_failures: registry.counter(scope, "connect_failures"),
            status: crate::service::StatusCounters::new(registry, scope),
        }
    }

    /// Counts a response status.
    pub fn status(&self, code: u16) {
        self.status.record(code);
    }
}

/// An endpoint lease: counts the request as in flight until dropped.
#[derive(Debug)]
pub struct Lease {
    ep: Arc<EndpointState>,
}

impl Lease {
    /// The endpoint's address.
    pub fn addr(&self) -> SocketAddr {
        self.ep.addr
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.ep.inflight.fetch_sub(1, Relaxed);
    }
}

impl Client {
    /// A client following `addr`; a task keeps the endpoint set current for
    /// as long as the client lives.
    pub fn new(id: Path, mut addr: AddrVar, registry: &Registry, router: &str) -> Arc<Client> {
        let scope = Scope::Client {
            router: router.to_owned(),
            id: id.show(),
        };
        let stats = Arc::new(ClientStats::new(registry, &scope));
        let first = addr.borrow_and_update().clone();
        let client = Arc::new(Client {
            id,
            set: ArcSwap::from_pointee(EndpointSet {
                addr: Addr::Pending,
                endpoints: Vec::new(),
            }),
            last_used: AtomicU64::new(0),
            epoch: Instant::now(),
            stats,
        });
        client.update(first);
        let weak: Weak<Client> = Arc::downgrade(&client);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                while addr.changed().await.is_ok() {
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

    /// Replaces the endpoint set, keeping the in-flight counts of endpoints
    /// that stay.
    fn update(&self, addr: Addr) {
        let old = self.set.load();
        let endpoints: Vec<Arc<EndpointState>> = match &addr {
            Addr::Bound(eps) => eps
                .iter()
                .map(|e| {
                    old.endpoints
                        .iter()
                        .find(|o| o.addr == e.addr && o.weight == e.weight)
                        .cloned()
                        .unwrap_or_else(|| {
                            Arc::new(EndpointState {
                                addr: e.addr,
                                weight: e.weight,
                                inflight: AtomicUsize::new(0),
                            })
                        })
                })
                .collect(),
            _ => Vec::new(),
        };
        self.stats.lb_size.set(endpoints.len() as i64);
        if old.addr != addr {
            tracing::info!(client = %self.id, addresses = %addr, "client endpoints changed");
        }
        self.set.store(Arc::new(EndpointSet { addr, endpoints }));
    }

    /// The current endpoint set.
    pub fn endpoints(&self) -> Arc<EndpointSet> {
        self.set.load_full()
    }

    /// Marks the client used now (for idle expiry).
    pub fn touch(&self) {
        self.last_used
            .store(self.epoch.elapsed().as_millis() as u64, Relaxed);
    }

    /// How long since the client was last used.
    pub fn idle_for(&self) -> std::time::Duration {
        let now = self.epoch.elapsed().as_millis() as u64;
        std::time::Duration::from_millis(now.saturating_sub(self.last_used.load(Relaxed)))
    }

    /// Picks an endpoint by power of two choices over in-flight requests
    /// divided by weight, avoiding `avoid` when another endpoint exists.
    pub fn pick(&self, avoid: Option<SocketAddr>) -> Option<Lease> {
        let set = self.set.load();
        let eps = &set.endpoints;
        let candidates: usize = eps.len();
        let ep = match candidates {
            0 => return None,
            1 => &eps[0],
            n => {
                let a = fastrand::usize(..n);
                let mut b = fastrand::usize(..n - 1);
                if b >= a {
                    b += 1;
                }
                let load = |e: &EndpointState| {
                    (e.inflight.load(Relaxed) as f64 + 1.0) / e.weight.max(f64::MIN_POSITIVE)
                };
                let (x, y) = (&eps[a], &eps[b]);
                let pick = if load(y) < load(x) { y } else { x };
                if Some(pick.addr) == avoid {
                    if pick.addr == x.addr { y } else { x }
                } else {
                    pick
                }
            }
        };
        ep.inflight.fetch_add(1, Relaxed);
        Some(Lease { ep: Arc::clone(ep) })
    }
}

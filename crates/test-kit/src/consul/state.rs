//! What the handle and the HTTP side share: the catalog, the fault knobs,
//! the counters and the request log behind one mutex, plus the channels
//! that wake blocked queries, stalled requests and connections.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use super::catalog::{Catalog, CheckDef, ServiceDef};
use super::{Acl, CheckStatus, NodeSpec, RecordedRequest, SimConfig, Stats};

/// Fixed settings, read without the lock.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) datacenter: String,
    pub(crate) other_datacenters: Vec<String>,
    pub(crate) node_name: String,
    pub(crate) default_wait: Duration,
    pub(crate) max_wait: Duration,
    pub(crate) jitter: bool,
    pub(crate) record_limit: usize,
}

/// A scripted failure answer.
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    pub(crate) status: u16,
    pub(crate) body: String,
    /// How many more requests get it; `None` is until cleared.
    pub(crate) remaining: Option<u64>,
}

/// The runtime-switchable behaviour.
#[derive(Debug, Default)]
pub(crate) struct Knobs {
    /// When the leader was lost; `None` while there is one.
    pub(crate) leader_lost: Option<Instant>,
    pub(crate) acl: Option<Acl>,
    pub(crate) failure: Option<Failure>,
    pub(crate) index_zero: u64,
    pub(crate) no_index: u64,
    pub(crate) header_delay: Duration,
    pub(crate) refuse_until: Option<Instant>,
    pub(crate) close_new_until: Option<Instant>,
}

/// Everything behind the one lock.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) catalog: Catalog,
    pub(crate) knobs: Knobs,
    pub(crate) stats: Stats,
    pub(crate) log: VecDeque<RecordedRequest>,
}

/// The simulator's shared state.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Settings,
    inner: Mutex<Inner>,
    /// Bumped on every change (and by `wake`): blocked queries re-run, the
    /// TTL task re-plans.
    pub(crate) changes: watch::Sender<u64>,
    /// Whether requests are held.
    pub(crate) stalled: watch::Sender<bool>,
    /// `(generation, spared connection)`: each bump closes every
    /// connection but the spared one.
    pub(crate) drops: watch::Sender<(u64, Option<u64>)>,
    /// The accept loop re-reads `refuse_until`.
    pub(crate) listener: Notify,
    pub(crate) started: Instant,
}

impl Shared {
    pub(crate) fn new(config: SimConfig) -> Shared {
        let inner = Inner {
            catalog: Catalog::new(&config.node_name, &config.datacenter),
            knobs: Knobs {
                acl: config.acl,
                ..Knobs::default()
            },
            stats: Stats::default(),
            log: VecDeque::new(),
        };
        Shared {
            config: Settings {
                datacenter: config.datacenter,
                other_datacenters: config.other_datacenters,
                node_name: config.node_name,
                default_wait: config.default_wait,
                max_wait: config.max_wait,
                jitter: config.jitter,
                record_limit: config.record_limit,
            },
            inner: Mutex::new(inner),
            changes: watch::channel(0).0,
            stalled: watch::channel(false).0,
            drops: watch::channel((0, None)).0,
            listener: Notify::new(),
            started: Instant::now(),
        }
    }

    /// The state. A panic elsewhere while holding the lock does not
    /// wedge the simulator.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the catalog and wakes blocked queries if the index
    /// moved or a restore happened.
    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut Catalog) -> R) -> R {
        let (r, changed) = {
            let mut inner = self.lock();
            let before = (inner.catalog.index, inner.catalog.restores);
            let r = f(&mut inner.catalog);
            (r, before != (inner.catalog.index, inner.catalog.restores))
        };
        if changed {
            self.wake();
        }
        r
    }

    /// Wakes every blocked query (and the TTL task).
    pub(crate) fn wake(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Closes every connection but `spared`.
    pub(crate) fn drop_connections(&self, spared: Option<u64>) {
        self.drops.send_modify(|(generation, s)| {
            *generation += 1;
            *s = spared;
        });
    }

    /// Registers `def` with `checks` on `node` (created if new), or on the
    /// agent's node.
    pub(crate) fn register(&self, node: Option<NodeSpec>, def: ServiceDef, checks: Vec<CheckDef>) {
        let own = &self.config.node_name;
        let dc = &self.config.datacenter;
        self.write(|c| {
            let name = match &node {
                Some(n) => {
                    c.ensure_node(&n.name, &n.address, n.datacenter.as_deref().unwrap_or(dc));
                    &n.name
                }
                None => own,
            };
            c.register(name, def, checks, Instant::now());
        });
    }

    /// Removes instance `id` from the agent's node if it has one, else from
    /// the first node that does; whether it existed.
    pub(crate) fn deregister(&self, id: &str) -> bool {
        let own = &self.config.node_name;
        self.write(|c| {
            c.instance_node(own, id)
                .is_some_and(|node| c.deregister(&node, id))
        })
    }

    /// Sets check `id` (the agent's node's if it has one, else the first
    /// node's that does), TTL or not; whether it exists.
    pub(crate) fn update_check(&self, id: &str, status: CheckStatus, output: Option<&str>) -> bool {
        let own = &self.config.node_name;
        self.write(|c| {
            c.check_node(own, id).is_some_and(|node| {
                c.update_check(&node, id, status, output, false, Instant::now())
                    .is_ok()
            })
        })
    }

    /// Gains or loses the cluster leader.
    pub(crate) fn set_leader(&self, leader: bool) {
        let mut inner = self.lock();
        let lost = &mut inner.knobs.leader_lost;
        match (leader, *lost) {
            (true, _) => *lost = None,
            (false, None) => *lost = Some(Instant::now()),
            (false, Some(_)) => {}
        }
    }

    /// Stops listening for `period`.
    pub(crate) fn refuse_connections(&self, period: Duration) {
        self.lock().knobs.refuse_until = Some(Instant::now() + period);
        self.listener.notify_one();
    }

    /// Closes new connections at once for `period`.
    pub(crate) fn close_new_connections(&self, period: Duration) {
        self.lock().knobs.close_new_until = Some(Instant::now() + period);
    }

    /// Counts and records a Consul request.
    pub(crate) fn record(&self, request: RecordedRequest) {
        let limit = self.config.record_limit;
        let mut inner = self.lock();
        inner.stats.requests += 1;
        *inner
            .stats
            .per_path
            .entry(request.path().to_owned())
            .or_default() += 1;
        if limit > 0 {
            if inner.log.len() >= limit {
                inner.log.pop_front();
            }
            inner.log.push_back(request);
        }
    }
}

/// Turns TTL checks critical when their clocks run out, for as long as the
/// simulator runs.
pub(crate) async fn expire_ttls(shared: Arc<Shared>) {
    let mut changes = shared.changes.subscribe();
    loop {
        changes.borrow_and_update();
        let next = shared.write(|c| c.expire_ttls(Instant::now()));
        let due = async {
            match next {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = due => {}
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Counts a gauge in [`Stats`] up while alive.
pub(crate) struct Gauge {
    shared: Arc<Shared>,
    which: fn(&mut Stats) -> &mut usize,
}

impl Gauge {
    /// Counts `which` up (and records its high-water mark for blocked
    /// queries).
    pub(crate) fn new(shared: &Arc<Shared>, which: fn(&mut Stats) -> &mut usize) -> Gauge {
        {
            let mut inner = shared.lock();
            *which(&mut inner.stats) += 1;
            inner.stats.max_blocked = inner.stats.max_blocked.max(inner.stats.blocked_now);
        }
        Gauge {
            shared: Arc::clone(shared),
            which,
        }
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        let n = (self.which)(&mut inner.stats);
        *n = n.saturating_sub(1);
    }
}

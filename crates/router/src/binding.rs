//! Logical name -> concrete name: the binding cache.
//!
//! A request's logical name (`/svc/hello`) binds through the dtab (the
//! router's, then the request's `l5d-dtab`) to a tree of concrete names
//! (`/#/io.l5d.fs/hello`). The cache owns the three things that outlive a
//! request: bindings (per logical name and local dtab), clients (per
//! concrete name, shared by every binding that reaches it) and services
//! (per logical name: policy, retry budget, stats). [`BindingCache::route`]
//! answers one [`Route`]: the service, the client the request goes to, and
//! the residual path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderValue;
use strait_dtab::{BindLimits, Dtab, LimitExceeded, NameTree, Path, State};
use strait_naming::stored::StoredDtab;
use strait_naming::{Binding, BoundName, Interpreter};
use tokio::sync::{Semaphore, watch};

use crate::client::Client;
use crate::headers::LocalDtab;
use crate::policy::Policies;
use crate::service::Service;
use crate::stats::{Counter, Registry, Scope};

mod upkeep;

/// Where a request goes.
pub(crate) struct Route {
    /// The logical name's service.
    pub service: Arc<Service>,
    /// The concrete name's client, picked from the bound tree.
    pub client: Arc<Client>,
    /// What is left of the logical name after the concrete name.
    pub residual: Path,
}

/// Why a logical name has no route.
#[derive(Debug)]
pub(crate) enum BindError {
    /// It bound to nothing (`Neg`, `Empty`, an all-negative union).
    NoRoute,
    /// The namer failed.
    Failed(String),
    /// It was still pending after `bindingTimeoutMs`, or its work did not
    /// finish by then.
    Timeout(Duration),
    /// It went over a `bindingLimits` cap: abandoned, and not cached.
    Limit(LimitExceeded),
}

/// Bounds on what binding one name may cost (`bindingLimits`).
///
/// Finagle bounds only the depth of a chain of lookups (100). A dtab whose
/// every level is a union of two paths to the next
/// (`/a0=>/a1 & /b1; /a1=>/a2 & /b2; ...`) doubles the tree at each level:
/// 21 levels in a 371-byte `l5d-dtab` expanded into 2^20 leaves (20 s of
/// CPU, 2 GB kept in this cache). These caps stop the expansion where it
/// crosses them, and cap the per-request dtab it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindingLimits {
    /// `maxNodes`: name-tree nodes one binding may expand, counting every
    /// lookup's answer (default 10,000).
    pub max_nodes: usize,
    /// `maxLeaves`: bound names one binding may reach (default 1,000, as
    /// many as `bindingCache.clients` holds by default).
    pub max_leaves: usize,
    /// `maxDtabHeaderBytes`: `l5d-ctx-dtab` and `l5d-dtab` together, in
    /// bytes (default 4,096).
    pub max_dtab_header_bytes: usize,
}

impl Default for BindingLimits {
    fn default() -> Self {
        BindingLimits {
            max_nodes: strait_dtab::DEFAULT_MAX_NODES,
            max_leaves: strait_dtab::DEFAULT_MAX_LEAVES,
            max_dtab_header_bytes: crate::headers::DEFAULT_MAX_DTAB_HEADER_BYTES,
        }
    }
}

/// The sizes and policies of a cache, from the router's settings.
pub(crate) struct CacheParams {
    /// `rt/<label>`.
    pub label: Arc<str>,
    /// The router's dtab.
    pub dtab: Dtab,
    /// `bindingTimeoutMs`.
    pub binding_timeout: Duration,
    /// `bindingLimits`.
    pub limits: BindingLimits,
    /// Most bindings kept.
    pub path_capacity: usize,
    /// Most clients kept.
    pub client_capacity: usize,
    /// Idle bindings, services and clients expire after this.
    pub idle_ttl: Duration,
    /// `client` and `service` policies.
    pub policies: Policies,
    /// The interpreter's stored dtab, put in front of `dtab`.
    pub stored: Option<watch::Receiver<StoredDtab>>,
}

/// The cached bindings and the stored dtab they were bound under.
struct Bindings {
    map: hashbrown::HashMap<BindKey, Arc<BindEntry>, foldhash::fast::RandomState>,
    /// The interpreter's stored dtab: checked (one atomic load) on every
    /// lookup, under the lock the lookup takes anyway.
    stored: Option<watch::Receiver<StoredDtab>>,
    /// Its value as last seen.
    current: StoredDtab,
}

impl Bindings {
    /// The stored dtab now: follows a change (and makes every binding
    /// bound under an older version stale).
    fn stored_now(&mut self) -> &StoredDtab {
        if let Some(rx) = &mut self.stored
            && rx.has_changed().unwrap_or(false)
        {
            self.current = rx.borrow_and_update().clone();
        }
        &self.current
    }
}

/// Bindings, clients and services of one router.
pub(crate) struct BindingCache {
    params: CacheParams,
    interp: Interpreter,
    registry: Registry,
    bindings: Mutex<Bindings>,
    clients: Mutex<HashMap<Path, Arc<Client>>>,
    services: Mutex<HashMap<Path, Arc<Service>>>,
    /// Bindings of requests with a local dtab run on the blocking pool, at
    /// most this many at once (one per CPU).
    binders: Arc<Semaphore>,
    stats: CacheStats,
}

/// `rt/<router>/bindcache/{path,client}/{misses,evicts}`, as Finagle's
/// `ServiceFactoryCache` reports them.
struct CacheStats {
    path_misses: Arc<Counter>,
    path_evicts: Arc<Counter>,
    client_misses: Arc<Counter>,
    client_evicts: Arc<Counter>,
}

impl CacheStats {
    fn new(registry: &Registry, router: &str) -> CacheStats {
        // The router's own scope, so that Prometheus lifts it into the
        // `rt` label (`rt:bindcache:path:misses{rt="http"}`).
        let scope = Scope::Router {
            router: router.into(),
        };
        CacheStats {
            path_misses: registry.counter(&scope, "bindcache/path/misses"),
            path_evicts: registry.counter(&scope, "bindcache/path/evicts"),
            client_misses: registry.counter(&scope, "bindcache/client/misses"),
            client_evicts: registry.counter(&scope, "bindcache/client/evicts"),
        }
    }
}

/// A binding is per logical name and per local dtab (its header text).
#[derive(Clone, PartialEq, Eq, Hash)]
struct BindKey {
    local: Option<Arc<str>>,
    dst: Path,
}

/// A [`BindKey`] borrowed from the request: a cached binding is found
/// without copying the name. It hashes as the key it stands for (the same
/// fields in the same order: `Arc<str>` and `&str` hash as `str`).
#[derive(Hash)]
struct BindKeyRef<'a> {
    local: Option<&'a str>,
    dst: &'a Path,
}

impl hashbrown::Equivalent<BindKey> for BindKeyRef<'_> {
    fn equivalent(&self, key: &BindKey) -> bool {
        self.local == key.local.as_deref() && *self.dst == key.dst
    }
}

struct BindEntry {
    binding: Binding,
    clients: Vec<Arc<Client>>,
    /// Only for a name that binds to some client: a flood of Host values
    /// naming nothing must not make a service (and its metrics) each.
    service: Option<Arc<Service>>,
    last_used: AtomicU64,
    /// The stored dtab's version it was bound under.
    stored_version: u64,
}

impl BindingCache {
    pub(crate) fn new(params: CacheParams, interp: Interpreter, registry: Registry) -> Self {
        let bindings = Bindings {
            map: hashbrown::HashMap::default(),
            current: params
                .stored
                .as_ref()
                .map(|rx| rx.borrow().clone())
                .unwrap_or_default(),
            stored: params.stored.clone(),
        };
        BindingCache {
            stats: CacheStats::new(&registry, &params.label),
            params,
            interp,
            registry,
            bindings: Mutex::new(bindings),
            clients: Mutex::default(),
            services: Mutex::default(),
            binders: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            )),
        }
    }

    pub(crate) fn interpreter(&self) -> &Interpreter {
        &self.interp
    }

    /// The stored dtab in front of the router's (empty without one).
    pub(crate) fn stored_dtab(&self) -> Arc<Dtab> {
        Arc::clone(&lock(&self.bindings).stored_now().dtab)
    }

    /// The route of `dst` under the request's local dtab: its binding (from
    /// the cache while fresh), then one bound name picked from the tree.
    /// `now`: the request's [`crate::clock`] stamp, for idle expiry.
    pub(crate) async fn route(
        &self,
        dst: &Path,
        local: Option<&LocalDtab>,
        now: u64,
    ) -> Result<Route, BindError> {
        let entry = self.bind(dst, local, now).await?;
        let tree = match &entry.binding.state {
            State::Ok(t) => t,
            State::Failed(m) => return Err(BindError::Failed(m.clone())),
            State::Pending => return Err(BindError::NoRoute),
        };
        let (Some(service), Some(bound)) = (&entry.service, choose(tree)) else {
            return Err(BindError::NoRoute);
        };
        let client = entry
            .clients
            .iter()
            .find(|c| c.id == bound.id)
            .ok_or(BindError::NoRoute)?;
        client.touch_at(now);
        service.touch_at(now);
        Ok(Route {
            service: Arc::clone(service),
            client: Arc::clone(client),
            residual: bound.residual.clone(),
        })
    }

    /// The binding of `dst`: from the cache while it is fresh, else bound
    /// again, waiting up to `bindingTimeoutMs` while it is pending. A
    /// binding over a `bindingLimits` cap is an error, and is not cached.
    async fn bind(
        &self,
        dst: &Path,
        local: Option<&LocalDtab>,
        now: u64,
    ) -> Result<Arc<BindEntry>, BindError> {
        let (stored, waiting) = {
            let mut bindings = lock(&self.bindings);
            let version = bindings.stored_now().version;
            let key = BindKeyRef {
                local: local.map(|l| &*l.text),
                dst,
            };
            if let Some(e) = bindings.map.get(&key).filter(|e| {
                e.stored_version == version
                    && !e.binding.is_stale()
                    && !matches!(e.binding.state, State::Pending)
            }) {
                e.last_used.store(now, Relaxed);
                return Ok(Arc::clone(e));
            }
            let waiting = bindings.stored.as_ref().filter(|_| version == 0).cloned();
            (bindings.current.clone(), waiting)
        };
        let deadline = tokio::time::Instant::now() + self.params.binding_timeout;
        // A stored dtab not read yet: wait for it as for a pending name.
        let stored = match waiting {
            Some(mut rx) => {
                match tokio::time::timeout_at(deadline, rx.wait_for(StoredDtab::is_ready)).await {
                    Ok(Ok(s)) => s.clone(),
                    _ => return Err(BindError::Timeout(self.params.binding_timeout)),
                }
            }
            None => stored,
        };
        let base = stored.dtab.concat(&self.params.dtab);
        let dtab = match local {
            Some(l) => base.concat(&l.dtab),
            None => base,
        };
        let dtab = Arc::new(dtab);
        let mut binding = self
            .bind_once(&dtab, dst, local.is_some(), deadline)
            .await?;
        while matches!(binding.state, State::Pending) {
            let mut waiting = binding.clone();
            if tokio::time::timeout_at(deadline, waiting.changed())
                .await
                .is_err()
            {
                return Err(BindError::Timeout(self.params.binding_timeout));
            }
            binding = self
                .bind_once(&dtab, dst, local.is_some(), deadline)
                .await?;
        }
        self.stats.path_misses.incr();
        let entry = self.entry(binding, dst, now, stored.version);
        let key = BindKey {
            local: local.map(|l| Arc::clone(&l.text)),
            dst: dst.clone(),
        };
        self.insert(key, Arc::clone(&entry));
        Ok(entry)
    }

    /// Binds `dst` through `dtab` once, within the `bindingLimits` caps and
    /// by `deadline`.
    ///
    /// A binding under the router's own dtab is small (the operator wrote
    /// the dtab) and runs here. One under a request's local dtab may cost up
    /// to the caps (a few milliseconds of CPU for a 4 KiB `l5d-dtab` built
    /// to be expensive), so it runs on the blocking pool, at most one per
    /// CPU at a time: a flood of them cannot hold the async workers, and
    /// requests without a local dtab are served meanwhile.
    async fn bind_once(
        &self,
        dtab: &Arc<Dtab>,
        dst: &Path,
        local: bool,
        deadline: tokio::time::Instant,
    ) -> Result<Binding, BindError> {
        let limits = BindLimits {
            max_depth: strait_dtab::DEFAULT_MAX_DEPTH,
            max_nodes: self.params.limits.max_nodes,
            max_leaves: self.params.limits.max_leaves,
            deadline: Some(deadline.into_std()),
        };
        let timeout = BindError::Timeout(self.params.binding_timeout);
        let bound = if local {
            let work = async {
                let permit = Arc::clone(&self.binders)
                    .acquire_owned()
                    .await
                    .map_err(|_| BindError::Failed("the router is shutting down".into()))?;
                let (interp, dtab, dst) = (self.interp.clone(), Arc::clone(dtab), dst.clone());
                tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    interp.bind_within(&dtab, &dst, &limits)
                })
                .await
                .map_err(|e| BindError::Failed(format!("binding stopped: {e}")))
            };
            tokio::time::timeout_at(deadline, work)
                .await
                .map_err(|_| BindError::Timeout(self.params.binding_timeout))??
        } else {
            self.interp.bind_within(dtab, dst, &limits)
        };
        bound.map_err(|e| match e {
            LimitExceeded::Deadline => timeout,
            e => BindError::Limit(e),
        })
    }

    /// A cache entry for `binding`: the clients of its bound names (made
    /// when missing) and, when there is one, its service.
    fn entry(&self, binding: Binding, dst: &Path, now: u64, stored_version: u64) -> Arc<BindEntry> {
        let mut clients = Vec::new();
        let mut evicted = Vec::new();
        if let State::Ok(tree) = &binding.state {
            tree.for_each_leaf(&mut |b: &BoundName| {
                if !clients.iter().any(|c: &Arc<Client>| c.id == b.id) {
                    let (c, out) = self.client(b, &clients);
                    clients.push(c);
                    evicted.extend(out);
                }
            });
        }
        if !evicted.is_empty() {
            self.unbind_clients(&evicted);
        }
        let service = (!clients.is_empty()).then(|| self.service(dst));
        Arc::new(BindEntry {
            binding,
            clients,
            service,
            last_used: AtomicU64::new(now),
            stored_version,
        })
    }

    /// Caches `entry`, evicting the least recently used binding when the
    /// cache is full.
    fn insert(&self, key: BindKey, entry: Arc<BindEntry>) {
        let mut bindings = lock(&self.bindings);
        let map = &mut bindings.map;
        let mut evicted = None;
        let full = map.len() >= self.params.path_capacity && !map.contains_key(&key);
        // Evict the least recently used binding.
        if let Some(k) = full
            .then(|| {
                map.iter()
                    .min_by_key(|(_, v)| v.last_used.load(Relaxed))
                    .map(|(k, _)| k.clone())
            })
            .flatten()
        {
            evicted = map.remove(&k).map(|e| (k.dst, e));
            self.stats.path_evicts.incr();
        }
        map.insert(key, entry);
        drop(bindings);
        if let Some((dst, e)) = evicted {
            drop(e);
            self.forget_service(&dst);
        }
    }

    /// The client of `b`'s concrete id, made if there is none. Making one
    /// when `bindingCache.clients` are cached already evicts the least
    /// recently used, preferring one no binding holds, never one of
    /// `needed` (the other clients of the binding being made): their ids
    /// are returned so the bindings holding them can be dropped.
    fn client(&self, b: &BoundName, needed: &[Arc<Client>]) -> (Arc<Client>, Vec<Path>) {
        let mut clients = lock(&self.clients);
        if let Some(c) = clients.get(&b.id) {
            c.touch();
            return (Arc::clone(c), Vec::new());
        }
        self.stats.client_misses.incr();
        let mut evicted = Vec::new();
        while clients.len() >= self.params.client_capacity.max(1) {
            let victim = clients
                .iter()
                .filter(|(id, _)| !needed.iter().any(|n| &n.id == *id))
                .max_by_key(|(_, c)| (Arc::strong_count(c) == 1, c.idle_for()))
                .map(|(id, _)| id.clone());
            // A binding needing more clients than the cache holds keeps
            // them all until its next rebinding.
            let Some(id) = victim else { break };
            clients.remove(&id);
            self.stats.client_evicts.incr();
            evicted.push(id);
        }
        let host = self
            .interp
            .authority(&b.id)
            .and_then(|h| HeaderValue::from_str(&h).ok());
        let c = Client::new(
            b.id.clone(),
            b.addr.clone(),
            self.params.policies.client_for(&b.id),
            host,
            &self.registry,
            &self.params.label,
        );
        c.touch();
        clients.insert(b.id.clone(), Arc::clone(&c));
        drop(clients);
        for id in &evicted {
            self.registry.remove_scope(&self.client_scope(id));
        }
        (c, evicted)
    }

    fn service(&self, dst: &Path) -> Arc<Service> {
        let mut services = lock(&self.services);
        Arc::clone(services.entry(dst.clone()).or_insert_with(|| {
            Service::new(
                &self.registry,
                &self.service_scope(dst),
                dst,
                self.params.policies.service_for(dst),
            )
        }))
    }

    fn service_scope(&self, name: &Path) -> Scope {
        Scope::Service {
            router: Arc::clone(&self.params.label),
            name: name.show().into(),
        }
    }

    fn client_scope(&self, id: &Path) -> Scope {
        Scope::Client {
            router: Arc::clone(&self.params.label),
            id: id.show().into(),
        }
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Picks the bound name a request goes to: a union by weight, a leaf as
/// is; `None` for `Neg`, `Fail` and `Empty`.
fn choose(tree: &NameTree<BoundName>) -> Option<&BoundName> {
    match tree {
        NameTree::Leaf(b) => Some(b),
        NameTree::Union(ws) => {
            let total: f64 = ws.iter().map(|w| w.weight.max(0.0)).sum();
            if total <= 0.0 {
                return ws.iter().find_map(|w| choose(&w.tree));
            }
            let mut x = fastrand::f64() * total;
            for w in ws {
                let wt = w.weight.max(0.0);
                if x < wt {
                    return choose(&w.tree).or_else(|| ws.iter().find_map(|w| choose(&w.tree)));
                }
                x -= wt;
            }
            ws.iter().rev().find_map(|w| choose(&w.tree))
        }
        NameTree::Alt(ts) => ts.iter().find_map(choose),
        NameTree::Neg | NameTree::Fail | NameTree::Empty => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn a_borrowed_key_finds_the_binding_its_owned_key_holds() {
        let hasher = foldhash::fast::RandomState::default();
        let mut map: hashbrown::HashMap<BindKey, u8, _> =
            hashbrown::HashMap::with_hasher(hasher.clone());
        let dst = Path::read("/svc/hello").unwrap();
        let other = Path::read("/svc/other").unwrap();
        let text: Arc<str> = Arc::from("/svc=>/#/io.l5d.fs");
        for (i, local) in [None, Some(Arc::clone(&text))].into_iter().enumerate() {
            let key = BindKey {
                local,
                dst: dst.clone(),
            };
            let borrowed = BindKeyRef {
                local: key.local.as_deref(),
                dst: &dst,
            };
            assert_eq!(hasher.hash_one(&key), hasher.hash_one(&borrowed));
            map.insert(key, i as u8);
        }
        let find = |local: Option<&str>, dst: &Path| map.get(&BindKeyRef { local, dst }).copied();
        assert_eq!(find(None, &dst), Some(0));
        assert_eq!(find(Some(&text), &dst), Some(1));
        assert_eq!(find(Some("/svc=>/$/inet"), &dst), None);
        assert_eq!(find(None, &other), None);
    }
}

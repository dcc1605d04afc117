//! The cache's upkeep: taking over clients and services on reload,
//! dropping what nothing uses any more, and what the admin reads.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use strait_balancer::EndpointInfo;
use strait_dtab::Path;
use strait_naming::Addr;

use super::{BindingCache, lock};

impl BindingCache {
    /// Takes over `prev`'s clients (connection pools, balancer and accrual
    /// state) and services (retry budgets, stats) whose policy is
    /// unchanged, for a reload. Clients whose concrete name `keep` refuses
    /// (their namer changed) are left behind. Bindings are not taken over:
    /// the dtab may have changed.
    pub(crate) fn adopt(&self, prev: &BindingCache, keep: impl Fn(&Path) -> bool) {
        let policies = &self.params.policies;
        let old = lock(&prev.clients);
        let mut clients = lock(&self.clients);
        for (id, c) in old.iter() {
            if keep(id) && policies.client_for(id) == c.policy {
                clients.insert(id.clone(), Arc::clone(c));
            }
        }
        let old = lock(&prev.services);
        let mut services = lock(&self.services);
        for (name, s) in old.iter() {
            if policies.service_for(name) == s.policy {
                services.insert(name.clone(), Arc::clone(s));
            }
        }
    }

    pub(crate) fn binding_count(&self) -> usize {
        lock(&self.bindings).map.len()
    }

    pub(crate) fn client_count(&self) -> usize {
        lock(&self.clients).len()
    }

    /// The concrete names with clients, their address sets and their
    /// endpoints as the balancer sees them, sorted.
    pub(crate) fn client_states(&self) -> Vec<(Path, Addr, Vec<EndpointInfo>, Option<usize>)> {
        let mut out: Vec<_> = lock(&self.clients)
            .values()
            .map(|c| {
                (
                    c.id.clone(),
                    (*c.addr()).clone(),
                    c.balancer.endpoints_state(),
                    c.h2.as_ref().map(|p| p.open_count()),
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Removes bindings, clients and services idle for longer than the TTL
    /// (clients and services only when nothing else holds them), with
    /// their metrics.
    pub(crate) fn expire_idle(&self) {
        let ttl = self.params.idle_ttl.as_millis() as u64;
        let now = crate::clock::now_ms();
        lock(&self.bindings)
            .map
            .retain(|_, e| now.saturating_sub(e.last_used.load(Relaxed)) < ttl);
        let idle = self.params.idle_ttl;
        for c in lock(&self.clients).values() {
            c.pool.sweep(None);
        }
        for id in drain_where(&self.clients, |c| c.idle_for() >= idle) {
            self.registry.remove_scope(&self.client_scope(&id));
        }
        // Not every service no binding holds: after a reload none is held
        // until its name is routed again, and an idle name that still
        // routes must keep its series (and counts) until it has been idle
        // for the TTL, as it would without the reload.
        for name in drain_where(&self.services, |s| s.idle_for() >= idle) {
            self.registry.remove_scope(&self.service_scope(&name));
        }
    }

    /// Drops the service of `dst` (and its metrics) if nothing uses it any
    /// more: Host headers come from clients, so a flood of distinct names
    /// must not keep a service per name until the next idle sweep.
    pub(super) fn forget_service(&self, dst: &Path) {
        let mut services = lock(&self.services);
        if services.get(dst).is_some_and(|s| Arc::strong_count(s) == 1) {
            services.remove(dst);
            drop(services);
            self.registry.remove_scope(&self.service_scope(dst));
        }
    }

    /// Drops the bindings that hold an evicted client, so the next request
    /// for their names binds again and gets a cached client. Requests in
    /// flight keep theirs until they finish.
    pub(super) fn unbind_clients(&self, evicted: &[Path]) {
        let mut dropped = Vec::new();
        lock(&self.bindings).map.retain(|k, e| {
            let holds = e.clients.iter().any(|c| evicted.contains(&c.id));
            if holds {
                dropped.push(k.dst.clone());
            }
            !holds
        });
        for dst in dropped {
            self.forget_service(&dst);
        }
    }
}

/// Removes the entries nobody else holds (`Arc` count 1) that `expired`
/// accepts; returns their names.
fn drain_where<V>(
    map: &Mutex<HashMap<Path, Arc<V>>>,
    expired: impl Fn(&Arc<V>) -> bool,
) -> Vec<Path> {
    let mut map = lock(map);
    let dead: Vec<Path> = map
        .iter()
        .filter(|(_, v)| Arc::strong_count(v) == 1 && expired(v))
        .map(|(k, _)| k.clone())
        .collect();
    for k in &dead {
        map.remove(k);
    }
    dead
}

//! `/$/inet/<host>/<port>`: addresses from IP literals or DNS.
//!
//! IP literals (and the empty host, which Finagle reads as "localhost") are
//! constant. Host names are resolved by a task per `(host, port)` that
//! re-resolves every [`RESOLVE_INTERVAL`] (Finagle's `InetResolver` default)
//! while anything still watches the result, keeps the last good answer when
//! DNS fails, and stops when the last watcher goes away. `/$/fixedinet`
//! resolves once.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use strait_dtab::global::InetAddr;
use tokio::sync::{Semaphore, watch};

use crate::{Addr, AddrVar, Endpoint, const_addr};

/// How often host names are resolved again.
pub const RESOLVE_INTERVAL: Duration = Duration::from_secs(5);

/// Host names resolved at once, at most: each resolution holds one of
/// tokio's blocking threads (`getaddrinfo`) for as long as DNS takes.
pub const MAX_RESOLVING: usize = 8;

type Key = (String, u16, bool);

/// Shares one resolution task per `(host, port)` among all watchers.
#[derive(Clone)]
pub struct InetResolver {
    tasks: Arc<Mutex<HashMap<Key, watch::Sender<Addr>>>>,
    interval: Duration,
    /// [`MAX_RESOLVING`] permits: a flood of names (Host headers come from
    /// clients) queues here, and names dropped while queued are never
    /// resolved, instead of taking up to 512 blocking threads.
    resolving: Arc<Semaphore>,
}

impl Default for InetResolver {
    fn default() -> Self {
        InetResolver::new(RESOLVE_INTERVAL)
    }
}

impl InetResolver {
    /// A resolver that re-resolves host names every `interval`.
    pub fn new(interval: Duration) -> Self {
        InetResolver {
            tasks: Arc::default(),
            interval,
            resolving: Arc::new(Semaphore::new(MAX_RESOLVING)),
        }
    }

    /// The live address set of `addr`.
    pub fn resolve(&self, addr: &InetAddr) -> AddrVar {
        let ip = if addr.host.is_empty() {
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        } else {
            addr.host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .ok()
        };
        if let Some(ip) = ip {
            let ep = Endpoint::new(SocketAddr::new(ip, addr.port));
            return const_addr(Addr::Bound(Arc::from([ep])));
        }
        let key = (addr.host.clone(), addr.port, addr.fixed);
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = tasks.get(&key) {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(Addr::Pending);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(resolve_loop(
                    key.clone(),
                    tx.clone(),
                    self.interval,
                    Arc::downgrade(&self.tasks),
                    Arc::clone(&self.resolving),
                ));
                tasks.insert(key, tx);
            }
            Err(_) => {
                tx.send_replace(Addr::Failed("no runtime to resolve host names on".into()));
            }
        }
        rx
    }
}

async fn resolve_loop(
    key: Key,
    tx: watch::Sender<Addr>,
    interval: Duration,
    tasks: Weak<Mutex<HashMap<Key, watch::Sender<Addr>>>>,
    resolving: Arc<Semaphore>,
) {
    let (host, port, fixed) = (key.0.as_str(), key.1, key.2);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&resolving).acquire_owned() => p.ok(),
            () = tx.closed() => None,
        };
        if permit.is_none() {
            // Nobody wants the answer any more.
            if forget(&tasks, &key, &tx) {
                return;
            }
            continue;
        }
        let found = tokio::net::lookup_host((host, port)).await;
        drop(permit);
        let next = match found {
            Ok(addrs) => {
                let mut addrs: Vec<SocketAddr> = addrs.collect();
                addrs.sort();
                addrs.dedup();
                if addrs.is_empty() {
                    Addr::Neg
                } else {
                    Addr::Bound(addrs.into_iter().map(Endpoint::new).collect())
                }
            }
            Err(e) => {
                tracing::debug!(host, port, error = %e, "inet: resolution failed");
                // Keep the last good set; a name that never resolved is Neg.
                let last = tx.borrow().clone();
                if matches!(last, Addr::Bound(_)) {
                    last
                } else {
                    Addr::Neg
                }
            }
        };
        tx.send_if_modified(|cur| {
            if *cur == next {
                false
            } else {
                *cur = next;
                true
            }
        });
        if fixed {
            // Resolve once; the sender stays in the map so the value is kept.
            loop {
                tx.closed().await;
                if forget(&tasks, &key, &tx) {
                    return;
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = tx.closed() => {}
        }
        if tx.is_closed() && forget(&tasks, &key, &tx) {
            return;
        }
    }
}

/// Removes `key`'s entry when nobody watches it; whether the task should
/// end (false: someone subscribed again in the meantime, keep resolving).
fn forget(
    tasks: &Weak<Mutex<HashMap<Key, watch::Sender<Addr>>>>,
    key: &Key,
    tx: &watch::Sender<Addr>,
) -> bool {
    let Some(tasks) = tasks.upgrade() else {
        return true;
    };
    let mut tasks = tasks.lock().unwrap_or_else(|e| e.into_inner());
    if !tx.is_closed() {
        return false;
    }
    if tasks.get(key).is_some_and(|t| t.same_channel(tx)) {
        tasks.remove(key);
    }
    true
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn inet(host: &str, port: u16) -> InetAddr {
        InetAddr {
            host: host.into(),
            port,
            fixed: false,
        }
    }

    #[tokio::test]
    async fn ip_literals_bind_without_dns() {
        let r = InetResolver::default();
        let a = r.resolve(&inet("10.1.2.3", 80));
        assert_eq!(
            a.borrow().to_string(),
            "[10.1.2.3:80]",
            "an IP literal is its own address"
        );
        let a = r.resolve(&inet("", 8080));
        assert_eq!(
            a.borrow().to_string(),
            "[127.0.0.1:8080]",
            "the empty host means localhost"
        );
        let a = r.resolve(&inet("::1", 81));
        assert_eq!(a.borrow().to_string(), "[[::1]:81]");
    }

    #[tokio::test]
    async fn host_names_resolve_and_share_one_task() {
        let r = InetResolver::default();
        let mut a = r.resolve(&inet("localhost", 9));
        let b = r.resolve(&inet("localhost", 9));
        assert!(
            a.same_channel(&b),
            "watchers of one (host, port) share a resolution"
        );
        if matches!(*a.borrow(), Addr::Pending) {
            a.changed().await.unwrap();
        }
        let got = a.borrow().clone();
        let Addr::Bound(eps) = got else {
            panic!("localhost must resolve, got {got}")
        };
        assert!(
            eps.iter()
                .all(|e| e.addr.ip().is_loopback() && e.addr.port() == 9)
        );
    }

    #[tokio::test]
    async fn names_dropped_while_waiting_to_resolve_are_never_resolved() {
        let r = InetResolver::default();
        // Take every resolution slot, as a burst of slow DNS answers would.
        let held: Vec<_> = (0..MAX_RESOLVING)
            .map(|_| Arc::clone(&r.resolving).try_acquire_owned().unwrap())
            .collect();
        for i in 0..1_000 {
            drop(r.resolve(&inet(&format!("flood-{i}.invalid"), 80)));
        }
        let kept = r.resolve(&inet("localhost", 9));
        // The dropped names' tasks end without a resolution; the kept one
        // waits for a slot.
        tokio::time::timeout(Duration::from_secs(10), async {
            while r.tasks.lock().unwrap().len() > 1 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        // Every slot was held all along: they went without resolving.
        .expect("queued names nobody watches are forgotten");
        assert!(matches!(*kept.borrow(), Addr::Pending));
        drop(held);
        let mut kept = kept;
        kept.changed().await.unwrap();
        assert!(
            matches!(*kept.borrow(), Addr::Bound(_)),
            "{}",
            *kept.borrow()
        );
    }

    #[tokio::test]
    async fn unknown_host_is_neg() {
        let r = InetResolver::default();
        let mut a = r.resolve(&inet("no-such-host.invalid", 80));
        if matches!(*a.borrow(), Addr::Pending) {
            a.changed().await.unwrap();
        }
        assert_eq!(*a.borrow(), Addr::Neg, "a name that never resolved is Neg");
    }
}

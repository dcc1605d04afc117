//! The namer: lookups, shared watches, the long-poll loop, the bound and
//! the idle sweep.
//!
//! One [`WatchEntry`] per `(dc, tag, service)` owns the address channel,
//! the loop's task and one lookup channel per looked-up path (their bound
//! ids and residuals differ, their addresses do not). Lookups refused by the
//! bound wait in [`Registry::refused`]. All of it lives in one registry
//! behind one mutex, never held across an `.await`: the loop takes it
//! briefly to record a request and to publish an answer.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use serde_json::json;
use strait_dtab::{Bound, Name, NameTree, Path, State};
use strait_naming::{Activity, Addr, Endpoint, LookupTree, Namer, Phase, Stamp, prune_unheld};
use tokio::runtime::Handle;
use tokio::sync::{OnceCell, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::client::{
    ConsulClient, ConsulError, HyperTransport, Instance, ServiceAnswer, Transport, next_index,
    weight_for,
};
use crate::pace::{Backoff, TokenBucket};
use crate::{ConsulConfig, LOCAL_DC};

/// A churning loop (answers that come back at once, over and over) sends
/// at most one request per this interval after a burst of [`CHURN_BURST`].
/// Ten a second is nothing for a local agent, and keeps a change that
/// follows another within a second from waiting for a token
/// (`benches/names.py` measures change → traffic; the target is 100 ms).
const CHURN_INTERVAL: Duration = Duration::from_millis(100);

/// See [`CHURN_INTERVAL`].
const CHURN_BURST: u32 = 10;

/// How long resolving one host name from Consul may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// The `io.l5d.consul` namer. See the crate documentation.
///
/// Dropping it stops every watch; address sets handed out keep their last
/// value.
pub struct ConsulNamer {
    shared: Arc<Shared>,
}

/// The namer's counters, and its watch count and bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsulStats {
    /// Watches running now.
    pub watches: usize,
    /// The bound on [`ConsulStats::watches`].
    pub max_watches: usize,
    /// Lookups answered (Linkerd 1's `lookups`).
    pub lookups: u64,
    /// Watches opened (`service/opens`).
    pub opens: u64,
    /// Watches stopped: idle or evicted (`service/closes`).
    pub closes: u64,
    /// Failed requests (`service/errors`).
    pub errors: u64,
    /// Address-set changes published (`service/updates`).
    pub updates: u64,
    /// Lookups refused because of the watch bound.
    pub refused: u64,
    /// Requests sent to Consul.
    pub requests: u64,
}

impl fmt::Debug for ConsulNamer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsulNamer")
            .field("consul", &self.shared.cfg.address())
            .finish_non_exhaustive()
    }
}

impl ConsulNamer {
    /// A namer talking HTTP to the agent `cfg` names.
    ///
    /// Must be called inside a tokio runtime; nothing is spawned and no
    /// connection is made until the first lookup.
    pub fn new(cfg: ConsulConfig) -> Result<ConsulNamer, String> {
        cfg.validate()?;
        let transport = HyperTransport::new(&cfg.host, cfg.port, cfg.tls.as_ref())
            .map_err(|e| format!("io.l5d.consul: {e}"))?;
        ConsulNamer::with_transport(cfg, Arc::new(transport))
    }

    /// A namer over another [`Transport`] (a scripted Consul in tests).
    pub fn with_transport(
        cfg: ConsulConfig,
        transport: Arc<dyn Transport>,
    ) -> Result<ConsulNamer, String> {
        cfg.validate()?;
        let rt = Handle::try_current()
            .map_err(|_| "io.l5d.consul: must be created inside a tokio runtime".to_owned())?;
        let client = ConsulClient::new(transport, &cfg);
        let gate = Gate {
            down_until: None,
            backoff: Backoff::new(cfg.backoff),
        };
        Ok(ConsulNamer {
            shared: Arc::new(Shared {
                client,
                rt,
                never: watch::channel(State::Ok(NameTree::Neg)).0,
                reg: Mutex::default(),
                counters: Counters::default(),
                agent_dc: OnceCell::new(),
                agent_domain: std::sync::OnceLock::new(),
                gate: Mutex::new(gate),
                cfg,
            }),
        })
    }

    /// The counters.
    pub fn stats(&self) -> ConsulStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ConsulStats {
            watches: self.shared.lock().watches.len(),
            max_watches: self.shared.cfg.max_watches,
            lookups: get(&c.lookups),
            opens: get(&c.opens),
            closes: get(&c.closes),
            errors: get(&c.errors),
            updates: get(&c.updates),
            refused: get(&c.refused),
            requests: get(&c.requests),
        }
    }
}

impl Drop for ConsulNamer {
    fn drop(&mut self) {
        let mut reg = self.shared.lock();
        if let Some(s) = reg.sweeper.take() {
            s.abort();
        }
        for (_, w) in reg.watches.drain() {
            w.task.abort();
        }
        reg.refused.clear();
    }
}

impl Namer for ConsulNamer {
    fn lookup(&self, prefix: &Path, path: &Path) -> Activity {
        let shared = &self.shared;
        shared.counters.lookups.fetch_add(1, Ordering::Relaxed);
        let Some((key, consumed)) = parse_path(path, shared.cfg.include_tag) else {
            // Not `const_activity`: a closed channel makes
            // `Binding::changed` wait forever, even on its other lookups.
            return shared.never.subscribe();
        };
        let lk = LookupKey {
            prefix: prefix.clone(),
            path: path.clone(),
        };
        let now = Instant::now();
        let mut guard = shared.lock();
        let reg = &mut *guard;
        if let Some(w) = reg.watches.get_mut(&key)
            && let Some(l) = w.lookups.get(&lk)
        {
            w.last_observed = now;
            return l.tx.subscribe();
        }
        if shared.ensure_watch(reg, &key, now) {
            return attach(reg, lk, &key, consumed);
        }
        shared.counters.refused.fetch_add(1, Ordering::Relaxed);
        if !reg.refusing {
            reg.refusing = true;
            tracing::warn!(
                name = %path,
                max_watches = shared.cfg.max_watches,
                "io.l5d.consul: too many watched names; refusing new ones until a watch goes idle"
            );
        }
        if let Some(r) = reg.refused.get(&lk) {
            return r.tx.subscribe();
        }
        let (tx, rx) = watch::channel(State::Failed(refusal(shared.cfg.max_watches)));
        prune_unheld(&mut reg.refused, &mut reg.refused_kept, |_, r| {
            r.tx.receiver_count() > 0
        });
        reg.refused.insert(lk, Refused { tx, key, consumed });
        shared.ensure_sweeper(reg);
        rx
    }

    fn authority(&self, _prefix: &Path, id: &Path) -> Option<String> {
        let shared = &self.shared;
        if !shared.cfg.set_host {
            return None;
        }
        let (key, _) = parse_path(id, shared.cfg.include_tag)?;
        let dc = if &*key.dc == LOCAL_DC {
            Arc::clone(shared.agent_dc.get()?)
        } else {
            key.dc
        };
        let domain = shared.agent_domain.get().map_or("consul", |d| &**d);
        Some(match key.tag {
            Some(tag) => format!("{tag}.{}.service.{dc}.{domain}", key.service),
            None => format!("{}.service.{dc}.{domain}", key.service),
        })
    }

    fn state(&self) -> serde_json::Value {
        let shared = &self.shared;
        let cfg = &shared.cfg;
        let now = Instant::now();
        let stats = self.stats();
        let reg = shared.lock();
        let mut watches: Vec<&WatchEntry> = reg.watches.values().collect();
        watches.sort_by_key(|w| w.suffix.show());
        let mut out = serde_json::Map::new();
        for w in watches {
            let observed = observed(w);
            out.insert(
                w.suffix.show(),
                watch_json(w, observed, now, cfg.transfer_metadata),
            );
        }
        let mut refused: Vec<String> = reg.refused.keys().map(|lk| lk.path.show()).collect();
        refused.sort();
        drop(reg);
        let gate = cfg.fail_fast.then(|| {
            let g = shared.gate.lock().unwrap_or_else(PoisonError::into_inner);
            let rest = g
                .down_until
                .map(|u| u.saturating_duration_since(now))
                .filter(|d| !d.is_zero());
            json!({ "consulDown": rest.is_some(), "retryInMs": rest.map(|d| d.as_millis() as u64) })
        });
        json!({
            "consul": cfg.address(),
            "includeTag": cfg.include_tag,
            "useHealthCheck": cfg.use_health_check,
            "failFast": cfg.fail_fast,
            "agentDatacenter": shared.agent_dc.get().map(|d| d.to_string()),
            "limits": {
                "maxWatches": cfg.max_watches,
                "watchIdleTtlMs": cfg.watch_idle_ttl.as_millis() as u64,
                "waitMs": cfg.wait.as_millis() as u64,
                "pendingTimeoutMs": cfg.pending_timeout.as_millis() as u64,
            },
            "stats": {
                "watches": stats.watches,
                "lookups": stats.lookups,
                "opens": stats.opens,
                "closes": stats.closes,
                "errors": stats.errors,
                "updates": stats.updates,
                "refused": stats.refused,
                "requests": stats.requests,
            },
            "gate": gate,
            "watches": out,
            "refusedLookups": refused,
        })
    }
}

/// The message of a refused lookup.
fn refusal(max: usize) -> String {
    format!("consul namer: too many watched names (maxWatches={max})")
}

/// What the loops, the sweeper and the lookups share.
struct Shared {
    cfg: ConsulConfig,
    client: ConsulClient,
    rt: Handle,
    /// The answer for paths that can never name a service: `Neg`, forever,
    /// from an open channel.
    never: watch::Sender<State<LookupTree>>,
    reg: Mutex<Registry>,
    counters: Counters,
    /// The agent's datacenter, for `.local`: fetched once, by whichever
    /// `.local` loop gets there first; a failure leaves it for the next.
    agent_dc: OnceCell<Arc<str>>,
    /// The agent's DNS domain, known once `agent_dc` is.
    agent_domain: std::sync::OnceLock<Arc<str>>,
    /// `failFast`: after a connection failure, nobody sends until then.
    gate: Mutex<Gate>,
}

#[derive(Default)]
struct Counters {
    lookups: AtomicU64,
    opens: AtomicU64,
    closes: AtomicU64,
    errors: AtomicU64,
    updates: AtomicU64,
    refused: AtomicU64,
    requests: AtomicU64,
}

struct Gate {
    down_until: Option<Instant>,
    backoff: Backoff,
}

#[derive(Default)]
struct Registry {
    watches: HashMap<WatchKey, WatchEntry>,
    /// Lookups refused by the bound: they answer `Failed` until there is
    /// room.
    refused: HashMap<LookupKey, Refused>,
    /// How many refusals the last prune kept.
    refused_kept: usize,
    next_id: u64,
    sweeper: Option<AbortHandle>,
    /// A refusal was logged; cleared when there is room again.
    refusing: bool,
}

/// What a watch watches. Service and tag are lower-cased (Consul matches
/// them case-insensitively); the datacenter is as written (`.local`
/// included).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct WatchKey {
    dc: Arc<str>,
    tag: Option<Arc<str>>,
    service: Arc<str>,
}

impl WatchKey {
    /// `/<dc>[/<tag>]/<service>`: the bound id below the prefix.
    fn path(&self) -> Path {
        let mut p = Path::empty();
        p.push(self.dc.to_string());
        if let Some(t) = &self.tag {
            p.push(t.to_string());
        }
        p.push(self.service.to_string());
        p
    }
}

impl fmt::Display for WatchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.path().fmt(f)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct LookupKey {
    prefix: Path,
    path: Path,
}

/// A lookup answered from a watch.
struct LookupTx {
    tx: watch::Sender<State<LookupTree>>,
    /// How many path elements name the service (2, or 3 with a tag).
    consumed: usize,
}

/// A lookup refused by the bound.
struct Refused {
    tx: watch::Sender<State<LookupTree>>,
    key: WatchKey,
    consumed: usize,
}

struct WatchEntry {
    /// Tells this watch from a later one of the same name.
    id: u64,
    /// [`WatchKey::path`].
    suffix: Path,
    addr: watch::Sender<Addr>,
    /// The lookups answered from this watch.
    lookups: HashMap<LookupKey, LookupTx>,
    /// How many lookups the last prune kept.
    lookups_kept: usize,
    task: AbortHandle,
    /// When someone last held one of its channels (or looked it up).
    last_observed: Instant,
    info: WatchInfo,
}

/// What `state()` shows about a watch.
#[derive(Default)]
struct WatchInfo {
    /// The datacenter asked (`.local` resolved).
    dc: Option<Arc<str>>,
    request: Option<(String, Stamp)>,
    response: Option<Response>,
    error: Option<(String, Stamp)>,
    /// Consecutive errors now.
    streak: u32,
    /// The index the next request blocks on.
    index: Option<u64>,
    updates: u64,
    unresolved: Vec<String>,
    meta: Option<serde_json::Value>,
}

struct Response {
    status: u16,
    index: Option<u64>,
    entries: Option<usize>,
    endpoints: Option<usize>,
    at: Stamp,
}

/// `<dc>/<service>` (or `<dc>/<tag>/<service>`) and how many elements
/// that is; `None` for too short or non-UTF-8 paths.
fn parse_path(path: &Path, include_tag: bool) -> Option<(WatchKey, usize)> {
    let n = if include_tag { 3 } else { 2 };
    let elems = path.elems();
    if elems.len() < n {
        return None;
    }
    let s = |i: usize| std::str::from_utf8(&elems[i]).ok();
    let dc: Arc<str> = s(0)?.into();
    let (tag, service) = if include_tag {
        (Some(s(1)?.to_lowercase().into()), s(2)?.to_lowercase())
    } else {
        (None, s(1)?.to_lowercase())
    };
    let key = WatchKey {
        dc,
        tag,
        service: service.into(),
    };
    Some((key, n))
}

/// The lookup answer for `lk` given its watch's address set.
fn lookup_state(
    lk: &LookupKey,
    consumed: usize,
    suffix: &Path,
    addr: &watch::Sender<Addr>,
) -> State<LookupTree> {
    let phase = Phase::of(&addr.borrow());
    match phase {
        Phase::Pending => State::Pending,
        Phase::Neg => State::Ok(NameTree::Neg),
        Phase::Bound => State::Ok(NameTree::Leaf(Name::Bound(Bound::new(
            lk.prefix.concat(suffix),
            lk.path.drop(consumed),
            addr.subscribe(),
        )))),
    }
}

/// Answers `lk` from the (existing) watch `key`, reviving its refused
/// lookup channel if there is one.
fn attach(reg: &mut Registry, lk: LookupKey, key: &WatchKey, consumed: usize) -> Activity {
    let Some(w) = reg.watches.get_mut(key) else {
        // `ensure_watch` said yes under the same lock.
        return watch::channel(State::Pending).1;
    };
    if let Some(l) = w.lookups.get(&lk) {
        return l.tx.subscribe();
    }
    let state = lookup_state(&lk, consumed, &w.suffix, &w.addr);
    let tx = match reg.refused.remove(&lk) {
        Some(r) => {
            r.tx.send_replace(state);
            r.tx
        }
        None => watch::channel(state).0,
    };
    let rx = tx.subscribe();
    prune_unheld(&mut w.lookups, &mut w.lookups_kept, |_, l| {
        l.tx.receiver_count() > 0
    });
    w.lookups.insert(lk, LookupTx { tx, consumed });
    rx
}

/// Whether anyone outside the namer holds one of the watch's channels.
///
/// A lookup channel whose answer is bound holds an address receiver
/// itself: those are the namer's own and do not count.
fn observed(w: &WatchEntry) -> bool {
    let mut own = 0;
    for l in w.lookups.values() {
        if l.tx.receiver_count() > 0 {
            return true;
        }
        if matches!(*l.tx.borrow(), State::Ok(NameTree::Leaf(_))) {
            own += 1;
        }
    }
    w.addr.receiver_count() > own
}

/// Sets a watch's address set, and its lookups' answers when the phase
/// changes. Returns whether anything changed.
fn set_addr(key: &WatchKey, w: &mut WatchEntry, addr: Addr, counters: &Counters) -> bool {
    let before = Phase::of(&w.addr.borrow());
    let after = Phase::of(&addr);
    let changed = w.addr.send_if_modified(|cur| {
        if *cur == addr {
            false
        } else {
            *cur = addr.clone();
            true
        }
    });
    if !changed {
        return false;
    }
    counters.updates.fetch_add(1, Ordering::Relaxed);
    w.info.updates += 1;
    match (before, after) {
        (Phase::Bound, Phase::Neg) | (Phase::Neg, Phase::Bound) => {
            tracing::info!(name = %key, addr = %addr, "io.l5d.consul: name changed");
        }
        _ => tracing::debug!(name = %key, addr = %addr, "io.l5d.consul: name changed"),
    }
    if before != after {
        for (lk, l) in &w.lookups {
            // The phase changed, so the answer did.
            l.tx.send_replace(lookup_state(lk, l.consumed, &w.suffix, &w.addr));
        }
    }
    true
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.reg.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Finds or opens the watch for `key`, evicting an unobserved watch at
    /// the bound; false when every watch is observed.
    fn ensure_watch(self: &Arc<Self>, reg: &mut Registry, key: &WatchKey, now: Instant) -> bool {
        if let Some(w) = reg.watches.get_mut(key) {
            w.last_observed = now;
            return true;
        }
        if reg.watches.len() >= self.cfg.max_watches && !self.evict_one(reg) {
            return false;
        }
        let id = reg.next_id;
        reg.next_id += 1;
        let poller = Poller::new(Arc::clone(self), key.clone(), id);
        let task = self.rt.spawn(poller.run()).abort_handle();
        reg.watches.insert(
            key.clone(),
            WatchEntry {
                id,
                suffix: key.path(),
                addr: watch::channel(Addr::Pending).0,
                lookups: HashMap::new(),
                lookups_kept: 0,
                task,
                last_observed: now,
                info: WatchInfo::default(),
            },
        );
        self.counters.opens.fetch_add(1, Ordering::Relaxed);
        self.ensure_sweeper(reg);
        tracing::debug!(name = %key, "io.l5d.consul: watching");
        true
    }

    /// Stops the least recently observed unobserved watch, if any.
    fn evict_one(&self, reg: &mut Registry) -> bool {
        let victim = reg
            .watches
            .iter()
            .filter(|(_, w)| !observed(w))
            .min_by_key(|(_, w)| w.last_observed)
            .map(|(k, _)| k.clone());
        match victim {
            Some(k) => {
                self.stop_watch(reg, &k, "evicted to make room");
                true
            }
            None => false,
        }
    }

    /// Stops a watch (aborting its in-flight request) and forgets its
    /// lookups, which nobody holds.
    fn stop_watch(&self, reg: &mut Registry, key: &WatchKey, why: &'static str) {
        if let Some(w) = reg.watches.remove(key) {
            w.task.abort();
            self.counters.closes.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(name = %key, why, "io.l5d.consul: stopped watching");
        }
    }

    fn ensure_sweeper(self: &Arc<Self>, reg: &mut Registry) {
        if reg.sweeper.is_none() {
            let every = (self.cfg.watch_idle_ttl / 4)
                .clamp(Duration::from_millis(10), Duration::from_secs(5));
            let task = self.rt.spawn(sweeper(Arc::downgrade(self), every));
            reg.sweeper = Some(task.abort_handle());
        }
    }

    /// Forgets unheld lookups, stops watches unobserved for the idle TTL,
    /// admits refused lookups when there is room. Returns whether there is
    /// anything left to sweep.
    fn sweep(self: &Arc<Self>, now: Instant) -> bool {
        let mut guard = self.lock();
        let reg = &mut *guard;
        reg.refused.retain(|_, r| r.tx.receiver_count() > 0);
        let ttl = self.cfg.watch_idle_ttl;
        let mut idle = Vec::new();
        for (k, w) in reg.watches.iter_mut() {
            // Unheld lookups go (dropping the address receivers they held).
            w.lookups.retain(|_, l| l.tx.receiver_count() > 0);
            if observed(w) {
                w.last_observed = now;
            } else if now.saturating_duration_since(w.last_observed) >= ttl {
                idle.push(k.clone());
            }
        }
        for k in idle {
            self.stop_watch(reg, &k, "unobserved for watchIdleTtl");
        }
        let waiting: Vec<(LookupKey, WatchKey, usize)> = reg
            .refused
            .iter()
            .map(|(lk, r)| (lk.clone(), r.key.clone(), r.consumed))
            .collect();
        for (lk, key, consumed) in waiting {
            if !self.ensure_watch(reg, &key, now) {
                break;
            }
            tracing::debug!(name = %lk.path, "io.l5d.consul: admitting a refused lookup");
            drop(attach(reg, lk, &key, consumed));
        }
        if reg.watches.len() < self.cfg.max_watches {
            reg.refusing = false;
        }
        let more = !reg.watches.is_empty() || !reg.refused.is_empty();
        if !more {
            reg.sweeper = None;
        }
        more
    }

    /// Runs `f` on the watch `key` if it is still watch `id`.
    fn with_watch(&self, key: &WatchKey, id: u64, f: impl FnOnce(&mut WatchEntry)) {
        if let Some(w) = self.lock().watches.get_mut(key).filter(|w| w.id == id) {
            f(w);
        }
    }

    fn gate_check(&self) -> Result<(), ConsulError> {
        if !self.cfg.fail_fast {
            return Ok(());
        }
        let g = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        match g.down_until {
            Some(until) if until > now => Err(ConsulError::FailFast(until - now)),
            _ => Ok(()),
        }
    }

    /// Updates the `failFast` gate after a request: a connection failure
    /// closes it for a backoff step; any answer from Consul opens it.
    fn gate_after(&self, err: Option<&ConsulError>) {
        if !self.cfg.fail_fast {
            return;
        }
        let mut g = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
        match err {
            None | Some(ConsulError::Status { .. }) => {
                g.down_until = None;
                g.backoff.reset();
            }
            Some(e) if e.is_connect() => {
                let now = Instant::now();
                if g.down_until.is_none_or(|u| u <= now) {
                    let d = g.backoff.next_delay();
                    g.down_until = Some(now + d);
                    tracing::debug!(
                        retry_in_ms = d.as_millis() as u64,
                        "io.l5d.consul: consul unreachable; holding all requests (failFast)"
                    );
                }
            }
            Some(_) => {}
        }
    }

    async fn read_service(&self, url: &str, blocking: bool) -> Result<ServiceAnswer, ConsulError> {
        self.gate_check()?;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let r = self
            .client
            .service(url, self.client.timeout(blocking))
            .await;
        self.gate_after(r.as_ref().err());
        r
    }

    async fn agent_dc(&self) -> Result<Arc<str>, ConsulError> {
        self.agent_dc
            .get_or_try_init(|| async {
                self.gate_check()?;
                self.counters.requests.fetch_add(1, Ordering::Relaxed);
                let r = self.client.agent().await;
                self.gate_after(r.as_ref().err());
                let (dc, domain) = r?;
                let _ = self.agent_domain.set(Arc::from(domain));
                tracing::info!(datacenter = %dc, "io.l5d.consul: .local is the agent's datacenter");
                Ok::<Arc<str>, ConsulError>(Arc::from(dc))
            })
            .await
            .cloned()
    }
}

async fn sweeper(shared: Weak<Shared>, every: Duration) {
    let mut tick = tokio::time::interval_at(Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if !shared.sweep(Instant::now()) {
            return;
        }
    }
}

/// One watch's loop.
struct Poller {
    shared: Arc<Shared>,
    key: WatchKey,
    id: u64,
    backoff: Backoff,
    bucket: TokenBucket,
    /// The index to block on; `None` for a fresh read.
    index: Option<u64>,
    /// Until the first answer: when the name turns `Neg` meanwhile.
    pending_deadline: Option<Instant>,
    /// Consul has answered 200 at least once: errors keep the last answer.
    answered: bool,
    /// The last round succeeded: the next request takes a token.
    paced: bool,
    /// Consecutive errors.
    streak: u32,
}

impl Poller {
    fn new(shared: Arc<Shared>, key: WatchKey, id: u64) -> Poller {
        let cfg = &shared.cfg;
        Poller {
            backoff: Backoff::new(cfg.backoff),
            bucket: TokenBucket::new(CHURN_BURST, CHURN_INTERVAL),
            pending_deadline: Some(Instant::now() + cfg.pending_timeout),
            shared,
            key,
            id,
            index: None,
            answered: false,
            paced: false,
            streak: 0,
        }
    }

    async fn run(mut self) {
        loop {
            match self.round().await {
                Ok(()) => {
                    if self.streak > 0 {
                        tracing::info!(name = %self.key, errors = self.streak, "io.l5d.consul: consul answers again");
                    }
                    self.streak = 0;
                    self.backoff.reset();
                    self.paced = true;
                }
                Err(e) => {
                    self.paced = false;
                    self.index = None;
                    let mut delay = self.backoff.next_delay();
                    if let ConsulError::FailFast(rest) = e {
                        delay = delay.max(rest);
                    }
                    self.on_error(&e, delay);
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// One request and its answer.
    async fn round(&mut self) -> Result<(), ConsulError> {
        let shared = Arc::clone(&self.shared);
        let dc = if &*self.key.dc == LOCAL_DC {
            self.guard(shared.agent_dc()).await?
        } else {
            if shared.cfg.set_host && shared.agent_domain.get().is_none() {
                // setHost wants the agent's domain; the name resolves
                // without it (the domain is `consul` until it comes).
                let _ = self.guard(shared.agent_dc()).await;
            }
            Arc::clone(&self.key.dc)
        };
        if self.paced {
            let wait = self.bucket.take(Instant::now());
            if !wait.is_zero() {
                tracing::debug!(name = %self.key, wait_ms = wait.as_millis() as u64, "io.l5d.consul: answers are churning; pacing");
                self.guard(tokio::time::sleep(wait)).await;
            }
        }
        let sent = self.index;
        let url = shared
            .client
            .service_url(&dc, self.key.tag.as_deref(), &self.key.service, sent);
        shared.with_watch(&self.key, self.id, |w| {
            w.info.request = Some((url.clone(), Stamp::now()));
            w.info.dc = Some(Arc::clone(&dc));
        });
        let answer = self
            .guard(shared.read_service(&url, sent.is_some()))
            .await?;
        let index = next_index(sent, answer.index);
        if index.is_none() {
            tracing::debug!(
                name = %self.key,
                sent = sent.unwrap_or(0),
                received = answer.index,
                "io.l5d.consul: the index went backwards; reading afresh"
            );
        }
        self.index = index;
        let (endpoints, unresolved) = self
            .guard(resolve_endpoints(
                shared.client.transport(),
                &answer.instances,
                &shared.cfg.weights,
            ))
            .await;
        if endpoints.is_empty() && !unresolved.is_empty() {
            // Consul has instances; DNS failed us. That is an error (keep
            // the last answer), not an empty service.
            return Err(ConsulError::Resolve(unresolved.join(", ")));
        }
        self.answered = true;
        self.pending_deadline = None;
        let meta = shared
            .cfg
            .transfer_metadata
            .then(|| metadata_json(&answer.instances));
        let addr = if endpoints.is_empty() {
            Addr::Neg
        } else {
            Addr::Bound(endpoints.into())
        };
        let key = &self.key;
        shared.with_watch(key, self.id, |w| {
            w.info.response = Some(Response {
                status: 200,
                index: Some(answer.index),
                entries: Some(answer.entries),
                endpoints: match &addr {
                    Addr::Bound(e) => Some(e.len()),
                    _ => Some(0),
                },
                at: Stamp::now(),
            });
            w.info.index = index;
            w.info.streak = 0;
            w.info.unresolved = unresolved;
            w.info.meta = meta;
            set_addr(key, w, addr, &shared.counters);
        });
        Ok(())
    }

    /// Runs `fut`; if the name is still unanswered at its pending deadline,
    /// makes it `Neg` and keeps waiting.
    async fn guard<F: Future>(&mut self, fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        if let Some(deadline) = self.pending_deadline {
            tokio::select! {
                biased;
                out = &mut fut => return out,
                () = tokio::time::sleep_until(deadline) => self.expire_pending(),
            }
        }
        fut.await
    }

    fn expire_pending(&mut self) {
        self.pending_deadline = None;
        let key = &self.key;
        let shared = &self.shared;
        shared.with_watch(key, self.id, |w| {
            if matches!(*w.addr.borrow(), Addr::Pending) {
                tracing::debug!(name = %key, "io.l5d.consul: no answer within pendingTimeout; negative meanwhile");
                set_addr(key, w, Addr::Neg, &shared.counters);
            }
        });
    }

    fn on_error(&mut self, e: &ConsulError, delay: Duration) {
        self.streak = self.streak.saturating_add(1);
        self.pending_deadline = None;
        let fail_fast = matches!(e, ConsulError::FailFast(_));
        if !fail_fast {
            self.shared.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        let retry_in_ms = delay.as_millis() as u64;
        if self.streak == 1 && !fail_fast {
            if self.answered {
                tracing::warn!(name = %self.key, error = %e, retry_in_ms, "io.l5d.consul: consul request failed; keeping the last answer");
            } else {
                tracing::warn!(name = %self.key, error = %e, retry_in_ms, "io.l5d.consul: consul request failed; the name is negative until consul answers");
            }
        } else {
            tracing::debug!(name = %self.key, error = %e, retry_in_ms, streak = self.streak, "io.l5d.consul: consul request failed again");
        }
        let key = &self.key;
        let shared = &self.shared;
        let make_neg = !self.answered;
        let streak = self.streak;
        shared.with_watch(key, self.id, |w| {
            let at = Stamp::now();
            w.info.error = Some((e.to_string(), at));
            w.info.streak = streak;
            w.info.index = None;
            if let Some(status) = e.status() {
                w.info.response = Some(Response {
                    status,
                    index: None,
                    entries: None,
                    endpoints: None,
                    at,
                });
            }
            if make_neg {
                set_addr(key, w, Addr::Neg, &shared.counters);
            }
        });
    }
}

/// The endpoints of `instances`, host names resolved to all their
/// addresses, sorted, one per address (the highest weight wins); and the
/// host names that did not resolve.
async fn resolve_endpoints(
    transport: &Arc<dyn Transport>,
    instances: &[Instance],
    weights: &[(String, f64)],
) -> (Vec<Endpoint>, Vec<String>) {
    let mut out: Vec<Endpoint> = Vec::with_capacity(instances.len());
    let mut names: HashMap<&str, Vec<IpAddr>> = HashMap::new();
    let mut unresolved = Vec::new();
    for i in instances {
        let weight = weight_for(&i.tags, weights);
        let host = i.address.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            out.push(Endpoint {
                addr: SocketAddr::new(ip, i.port),
                weight,
            });
            continue;
        }
        if !names.contains_key(host) {
            let ips: Vec<IpAddr> = match tokio::time::timeout(
                RESOLVE_TIMEOUT,
                transport.resolve(host, i.port),
            )
            .await
            {
                Ok(Ok(addrs)) => addrs.into_iter().map(|a| a.ip()).collect(),
                Ok(Err(e)) => {
                    tracing::debug!(host, error = %e, "io.l5d.consul: cannot resolve an instance's address");
                    Vec::new()
                }
                Err(_) => {
                    tracing::debug!(
                        host,
                        "io.l5d.consul: resolving an instance's address timed out"
                    );
                    Vec::new()
                }
            };
            if ips.is_empty() {
                unresolved.push(host.to_owned());
            }
            names.insert(host, ips);
        }
        for ip in names.get(host).into_iter().flatten() {
            out.push(Endpoint {
                addr: SocketAddr::new(*ip, i.port),
                weight,
            });
        }
    }
    out.sort_by_key(|e| e.addr);
    out.dedup_by(|later, kept| {
        if later.addr == kept.addr {
            kept.weight = kept.weight.max(later.weight);
            true
        } else {
            false
        }
    });
    (out, unresolved)
}

/// `ServiceMeta` of the first instance and each node's `NodeMeta`.
fn metadata_json(instances: &[Instance]) -> serde_json::Value {
    let mut nodes = serde_json::Map::new();
    for i in instances {
        if !i.node.is_empty() && !nodes.contains_key(&i.node) {
            nodes.insert(
                i.node.clone(),
                serde_json::Value::Object(i.node_meta.clone()),
            );
        }
    }
    json!({
        "service": instances.first().map(|i| serde_json::Value::Object(i.service_meta.clone())),
        "nodes": nodes,
    })
}

fn addr_json(addr: &Addr) -> serde_json::Value {
    match addr {
        Addr::Pending => json!({ "state": "pending" }),
        Addr::Neg => json!({ "state": "neg" }),
        Addr::Failed(e) => json!({ "state": "failed", "error": &**e }),
        Addr::Bound(eps) => json!({
            "state": "bound",
            "addresses": eps.iter().map(|e| e.addr.to_string()).collect::<Vec<_>>(),
            "weights": eps.iter().map(|e| e.weight).collect::<Vec<_>>(),
        }),
    }
}

fn watch_json(w: &WatchEntry, observed: bool, now: Instant, meta: bool) -> serde_json::Value {
    let i = &w.info;
    let mut v = json!({
        "addr": addr_json(&w.addr.borrow()),
        "observed": observed,
        "idleMs": if observed { 0 } else { now.saturating_duration_since(w.last_observed).as_millis() as u64 },
        "lookups": w.lookups.len(),
        "datacenter": i.dc.as_deref(),
        "index": i.index,
        "updates": i.updates,
        "request": i.request.as_ref().map(|(url, at)| {
            let mut r = json!({ "url": url });
            merge(&mut r, at.json(now));
            r
        }),
        "response": i.response.as_ref().map(|r| {
            let mut v = json!({
                "status": r.status,
                "index": r.index,
                "instances": r.entries,
                "endpoints": r.endpoints,
            });
            merge(&mut v, r.at.json(now));
            v
        }),
        "error": i.error.as_ref().map(|(msg, at)| {
            let mut v = json!({ "message": msg });
            merge(&mut v, at.json(now));
            v
        }),
        "errorStreak": i.streak,
    });
    if !i.unresolved.is_empty() {
        merge(&mut v, json!({ "unresolved": i.unresolved }));
    }
    if meta {
        merge(&mut v, json!({ "metadata": i.meta }));
    }
    v
}

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    if let (Some(a), serde_json::Value::Object(b)) = (into.as_object_mut(), from) {
        a.extend(b);
    }
}

#[cfg(test)]
#[path = "namer_tests.rs"]
mod tests;

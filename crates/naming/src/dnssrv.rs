//! `io.l5d.dnssrv`: addresses from DNS SRV records, polled.
//!
//! `/#/io.l5d.dnssrv/<srv record name>[/residual]`, as in Linkerd 1: the
//! first element is the SRV name, e.g. `_http._tcp.web.example` or, against
//! Consul's DNS interface, `web.service.consul`. The bound id is the prefix
//! plus that element; the rest is the residual.
//!
//! # Resolution
//!
//! Each SRV answer's target is resolved to addresses: from the A/AAAA
//! records of the answer's additional section when there are any for it
//! (Consul and dnsmasq send them), else by querying A and AAAA for the
//! target. The port is the SRV record's. Every address weighs 1.0, and SRV
//! priorities and weights are ignored, as in Linkerd 1: Consul's SRV
//! weights are not reliable (its docs contradict themselves on whether they
//! follow the service's `Weights`), and the load balancer does the
//! balancing. A target of `.` ("decidedly not available", RFC 2782) and
//! port 0 are skipped. The set is sorted and deduplicated, so Consul's
//! shuffled answers do not count as changes.
//!
//! # Polling
//!
//! One task per SRV name (shared by every lookup of the name, whatever its
//! prefix or residual) asks every `refreshIntervalSeconds`
//! ([`DEFAULT_REFRESH_INTERVAL`]) and publishes only what changed:
//!
//! * an answer with addresses binds the lookups to a live address set;
//! * NXDOMAIN, an empty answer, or SRV records none of whose targets has an
//!   address make the lookups `Neg`, so a dtab alternative (`|`) is tried;
//! * any other failure (timeout, SERVFAIL, REFUSED, no route to the server)
//!   keeps the last answer; a name that never got one is `Neg`.
//!
//! Until the first answer the lookups are pending (the router waits for
//! them, up to its `bindingTimeoutMs`). A name nobody watches any more
//! (no lookup answer and no address set is held) stops being polled after
//! its next poll, so names from bogus `Host` headers do not poll forever.
//!
//! # DNS servers
//!
//! `dnsHosts` lists the servers to ask, tried in the order written (the
//! next one when one fails or times out; [`QUERY_TIMEOUT`] per query, two
//! attempts). Linkerd 1 takes host names or IPs on port 53; Strait takes
//! IP literals, optionally with a port ([`parse_dns_host`]): `10.0.0.2`,
//! `127.0.0.1:8600`, `::1`, `[::1]:8600`. The `:port` form is a Strait
//! extension, needed for a local Consul agent (DNS on 127.0.0.1:8600) or a
//! test server. Names are queried as written, without search domains, and
//! `/etc/hosts` is not consulted. With no `dnsHosts`, the system resolver
//! configuration (`/etc/resolv.conf`: servers, search domains, `ndots`,
//! timeout, attempts) is read once, when the namer is created.
//!
//! Nothing is cached between polls: every poll asks the server, so a
//! change shows within one interval whatever the records' TTLs (Consul's
//! are 0 by default).
//!
//! # Why `hickory-resolver`
//!
//! The DNS client is [`hickory_resolver`] (the Hickory DNS project's stub
//! resolver, formerly trust-dns), with only its `tokio` and `system-config`
//! features: no TLS, HTTPS, QUIC or DNSSEC code is built. It is the
//! maintained, widely used async resolver for tokio; it does what a
//! hand-written client would have to redo and get right: UDP queries from
//! randomised source ports with ID and question checks, retry over TCP when
//! an answer is truncated (large Consul services), several servers with
//! failover, `resolv.conf` parsing with search domains, and a typed
//! distinction between NXDOMAIN / empty answers and transport or server
//! failures, which is what the namer's `Neg`-versus-keep rule rests on.
//! Its response cache is switched off (see above).

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;
use tokio::time::Instant;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
    ResolverOpts, ServerOrderingStrategy,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name as DnsName, RData};
use strait_dtab::{Bound, Name, NameTree, Path, State};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};

use crate::{Activity, Addr, Endpoint, LookupTree, Namer, Phase, Stamp};

/// How often a name is asked again by default (`refreshIntervalSeconds`).
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// The port of a `dnsHosts` entry written without one.
pub const DNS_PORT: u16 = 53;

/// How long one query to one `dnsHosts` server may take before the next
/// attempt (two attempts per server).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one refresh of a name (the SRV query and any target address
/// queries) may take in all before it counts as failed.
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(10);

/// How many SRV targets without additional records are resolved at once.
const TARGET_CONCURRENCY: usize = 16;

/// Reads a `dnsHosts` entry: an IP address (port 53), `IPv4:port`,
/// `[IPv6]` (port 53) or `[IPv6]:port`. Host names are refused.
///
/// ```
/// use strait_naming::dnssrv::parse_dns_host;
/// assert_eq!(parse_dns_host("127.0.0.1:8600").unwrap().to_string(), "127.0.0.1:8600");
/// assert_eq!(parse_dns_host("::1").unwrap().to_string(), "[::1]:53");
/// assert!(parse_dns_host("dns.example").is_err());
/// ```
pub fn parse_dns_host(s: &str) -> Result<SocketAddr, String> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DNS_PORT));
    }
    if let Some(ip) = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse::<Ipv6Addr>().ok())
    {
        return Ok(SocketAddr::new(IpAddr::V6(ip), DNS_PORT));
    }
    match s.parse::<SocketAddr>() {
        Ok(a) if a.port() == 0 => Err(format!("'{s}': port 0 cannot be a DNS server's port")),
        Ok(a) => Ok(a),
        Err(_) => Err(format!(
            "'{s}' is not a DNS server address; write an IP address with an optional port, \
             e.g. 10.0.0.2, 127.0.0.1:8600 or [::1]:8600 (host names are not supported)"
        )),
    }
}

/// Why a [`DnsSrvNamer`] could not be created.
#[derive(Debug)]
pub enum DnsSrvError {
    /// The refresh interval was zero.
    ZeroInterval,
    /// No `dnsHosts` were given and the system resolver configuration
    /// could not be read.
    SystemConfig(String),
    /// The resolver could not be built.
    Resolver(String),
    /// [`DnsSrvNamer::new`] was called outside a tokio runtime.
    NoRuntime,
}

impl fmt::Display for DnsSrvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsSrvError::ZeroInterval => {
                f.write_str("io.l5d.dnssrv: refreshIntervalSeconds must be positive")
            }
            DnsSrvError::SystemConfig(e) => write!(
                f,
                "io.l5d.dnssrv: no dnsHosts given and the system resolver configuration \
                 (/etc/resolv.conf) cannot be read: {e}"
            ),
            DnsSrvError::Resolver(e) => write!(f, "io.l5d.dnssrv: cannot build the resolver: {e}"),
            DnsSrvError::NoRuntime => {
                f.write_str("io.l5d.dnssrv: must be created inside a tokio runtime")
            }
        }
    }
}

impl std::error::Error for DnsSrvError {}

/// The `io.l5d.dnssrv` namer: services are DNS SRV records, polled.
///
/// Dropping the namer stops every poll; address sets handed out keep their
/// last value.
pub struct DnsSrvNamer {
    shared: Arc<Shared>,
}

impl fmt::Debug for DnsSrvNamer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DnsSrvNamer")
            .field("servers", &self.shared.servers)
            .field("system", &self.shared.system)
            .field("interval", &self.shared.interval)
            .finish_non_exhaustive()
    }
}

impl DnsSrvNamer {
    /// A namer asking `dns_hosts` (the system resolver configuration when
    /// empty) every `refresh_interval`.
    ///
    /// Must be called inside a tokio runtime: the polls run on it.
    pub fn new(
        refresh_interval: Duration,
        dns_hosts: &[SocketAddr],
    ) -> Result<DnsSrvNamer, DnsSrvError> {
        if refresh_interval.is_zero() {
            return Err(DnsSrvError::ZeroInterval);
        }
        let rt = Handle::try_current().map_err(|_| DnsSrvError::NoRuntime)?;
        let system = dns_hosts.is_empty();
        let (config, mut opts) = if system {
            hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| DnsSrvError::SystemConfig(e.to_string()))?
        } else {
            let servers = dns_hosts
                .iter()
                .map(|a| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = a.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = a.port();
                    NameServerConfig::new(a.ip(), true, vec![udp, tcp])
                })
                .collect();
            let mut opts = ResolverOpts::default();
            opts.timeout = QUERY_TIMEOUT;
            opts.attempts = 2;
            // Only DNS: /etc/hosts is the system resolver's business.
            opts.use_hosts_file = ResolveHosts::Never;
            // Try the servers in the order written, one at a time.
            opts.num_concurrent_reqs = 1;
            opts.server_ordering_strategy = ServerOrderingStrategy::UserProvidedOrder;
            (ResolverConfig::from_name_servers(servers), opts)
        };
        // The namer polls; a cache would only delay changes.
        opts.cache_size = 0;
        opts.positive_max_ttl = Some(Duration::ZERO);
        opts.negative_max_ttl = Some(Duration::ZERO);
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        let servers: Vec<SocketAddr> = config
            .name_servers()
            .iter()
            .map(|ns| {
                let port = ns.connections.first().map_or(DNS_PORT, |c| c.port);
                SocketAddr::new(ns.ip, port)
            })
            .collect();
        let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(|e| DnsSrvError::Resolver(e.to_string()))?;
        tracing::info!(
            servers = ?servers,
            system,
            interval_ms = refresh_interval.as_millis() as u64,
            "io.l5d.dnssrv: ready"
        );
        Ok(DnsSrvNamer {
            shared: Arc::new(Shared {
                resolver,
                interval: refresh_interval,
                servers,
                system,
                rt,
                never: watch::channel(State::Ok(NameTree::Neg)).0,
                generation: AtomicU64::new(0),
                names: Mutex::default(),
            }),
        })
    }

    /// The DNS servers asked (for the system resolver, those read from
    /// its configuration).
    pub fn servers(&self) -> &[SocketAddr] {
        &self.shared.servers
    }

    /// How often each name is asked again.
    pub fn refresh_interval(&self) -> Duration {
        self.shared.interval
    }
}

impl Drop for DnsSrvNamer {
    fn drop(&mut self) {
        for e in self.shared.lock().values() {
            e.task.abort();
        }
    }
}

impl Namer for DnsSrvNamer {
    fn lookup(&self, prefix: &Path, path: &Path) -> Activity {
        let Some(name) = path.elems().first().and_then(|e| srv_name(e)) else {
            // Not `const_activity`: a closed channel makes
            // `Binding::changed` wait forever, even on its other lookups.
            return self.shared.never.subscribe();
        };
        let key = LookupKey {
            prefix: prefix.clone(),
            path: path.clone(),
        };
        let mut guard = self.shared.lock();
        let Names { names, kept } = &mut *guard;
        if !names.contains_key(&name) {
            crate::prune_unheld(names, kept, |name, e| {
                // Lookups first: dropping one releases the address set it held.
                e.lookups.retain(|_, tx| !tx.is_closed());
                let held = !e.lookups.is_empty() || !e.addr.is_closed();
                if !held {
                    e.task.abort();
                    tracing::debug!(name = %name, "io.l5d.dnssrv: nobody watches; polling stopped");
                }
                held
            });
        }
        let entry = match names.entry(name) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(v) => {
                let generation = self.shared.generation.fetch_add(1, Ordering::Relaxed);
                let task = self
                    .shared
                    .rt
                    .spawn(poll(
                        Arc::downgrade(&self.shared),
                        v.key().clone(),
                        generation,
                    ))
                    .abort_handle();
                tracing::debug!(name = %v.key(), "io.l5d.dnssrv: polling");
                v.insert(NameEntry {
                    addr: watch::channel(Addr::Pending).0,
                    lookups: HashMap::new(),
                    generation,
                    task,
                    last_refresh: None,
                    last_error: None,
                    neg_reason: None,
                    failing: false,
                })
            }
        };
        if let Some(tx) = entry.lookups.get(&key) {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(lookup_state(&key, &entry.addr));
        entry.lookups.insert(key, tx);
        rx
    }

    fn state(&self) -> serde_json::Value {
        let now = Instant::now();
        let names = self.shared.lock();
        let mut sorted: Vec<(&Arc<str>, &NameEntry)> = names.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = serde_json::Map::new();
        for (name, e) in sorted {
            out.insert(name.to_string(), e.json(now));
        }
        serde_json::json!({
            "dnsHosts": self.shared.servers.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "systemResolver": self.shared.system,
            "refreshIntervalMs": self.shared.interval.as_millis() as u64,
            "names": out,
        })
    }
}

/// The SRV name an element stands for, lower-cased (DNS names are
/// case-insensitive), or `None` when it cannot be a DNS name: not UTF-8,
/// empty, an empty label, a label over 63 bytes, a name over 253 bytes, or
/// a character other than letters, digits, `-` and `_`. A trailing `.`
/// (an absolute name) is allowed.
fn srv_name(elem: &[u8]) -> Option<Arc<str>> {
    let s = std::str::from_utf8(elem).ok()?;
    let body = s.strip_suffix('.').unwrap_or(s);
    if body.is_empty() || body.len() > 253 {
        return None;
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !body.split('.').all(label_ok) {
        return None;
    }
    DnsName::from_ascii(s).ok()?;
    Some(s.to_ascii_lowercase().into())
}

/// What the poll tasks and the lookups share.
struct Shared {
    resolver: TokioResolver,
    interval: Duration,
    servers: Vec<SocketAddr>,
    system: bool,
    rt: Handle,
    /// The answer for paths that can never name an SRV record: `Neg`,
    /// forever, from an open channel.
    never: watch::Sender<State<LookupTree>>,
    /// Tells a poll task its own entry from a later one of the same name.
    generation: AtomicU64,
    names: Mutex<Names>,
}

/// The polled names, and how many the last prune kept.
#[derive(Default)]
struct Names {
    names: HashMap<Arc<str>, NameEntry>,
    kept: usize,
}

impl std::ops::Deref for Names {
    type Target = HashMap<Arc<str>, NameEntry>;
    fn deref(&self) -> &Self::Target {
        &self.names
    }
}

impl std::ops::DerefMut for Names {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.names
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Names> {
        self.names.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct LookupKey {
    prefix: Path,
    path: Path,
}

/// One polled SRV name.
struct NameEntry {
    /// The address set: pending until the first answer, then bound or
    /// `Neg`.
    addr: watch::Sender<Addr>,
    /// One live answer per looked-up `(prefix, path)` with this name.
    lookups: HashMap<LookupKey, watch::Sender<State<LookupTree>>>,
    generation: u64,
    task: AbortHandle,
    /// When the server last answered (addresses or NXDOMAIN).
    last_refresh: Option<Stamp>,
    /// The last failure, kept after later successes.
    last_error: Option<(Stamp, String)>,
    /// Why the name is `Neg`, when it is.
    neg_reason: Option<String>,
    /// Whether the last poll failed (to log a failure once, not every poll).
    failing: bool,
}

impl NameEntry {
    /// Applies one poll's outcome, publishing what changed.
    fn apply(&mut self, name: &str, outcome: Outcome) {
        let now = Stamp::now();
        let current = self.addr.borrow().clone();
        let next = match outcome {
            Outcome::Found(eps) => {
                self.last_refresh = Some(now);
                self.neg_reason = None;
                self.recovered(name);
                Addr::Bound(eps.into())
            }
            Outcome::Missing(why) => {
                self.last_refresh = Some(now);
                if current != Addr::Neg || self.neg_reason.as_deref() != Some(why.as_str()) {
                    tracing::debug!(name, reason = %why, "io.l5d.dnssrv: no addresses");
                }
                self.neg_reason = Some(why);
                self.recovered(name);
                Addr::Neg
            }
            Outcome::Failed(e) => {
                if self.failing {
                    tracing::debug!(name, error = %e, "io.l5d.dnssrv: lookup still failing");
                } else {
                    tracing::warn!(
                        name,
                        error = %e,
                        "io.l5d.dnssrv: lookup failed; keeping the last answer"
                    );
                }
                self.failing = true;
                self.last_error = Some((now, e));
                if current == Addr::Pending {
                    self.neg_reason = Some("never answered".into());
                    Addr::Neg
                } else {
                    current.clone()
                }
            }
        };
        if next == current {
            return;
        }
        tracing::info!(name, addr = %next, "io.l5d.dnssrv: addresses changed");
        let phase_changed = Phase::of(&next) != Phase::of(&current);
        self.addr.send_replace(next);
        if phase_changed {
            for (key, tx) in &self.lookups {
                tx.send_replace(lookup_state(key, &self.addr));
            }
        }
    }

    fn recovered(&mut self, name: &str) {
        if self.failing {
            tracing::info!(name, "io.l5d.dnssrv: lookup answered again");
        }
        self.failing = false;
    }

    fn json(&self, now: Instant) -> serde_json::Value {
        let mut v = match &*self.addr.borrow() {
            Addr::Pending => serde_json::json!({ "state": "pending" }),
            Addr::Neg => serde_json::json!({ "state": "neg" }),
            Addr::Failed(e) => serde_json::json!({ "state": "failed", "error": &**e }),
            Addr::Bound(eps) => serde_json::json!({
                "state": "bound",
                "addresses": eps.iter().map(|e| e.addr.to_string()).collect::<Vec<_>>(),
                "weights": eps.iter().map(|e| e.weight).collect::<Vec<_>>(),
            }),
        };
        if let Some(map) = v.as_object_mut() {
            if let (Some(reason), Addr::Neg) = (&self.neg_reason, &*self.addr.borrow()) {
                map.insert("reason".into(), reason.as_str().into());
            }
            map.insert(
                "lastRefresh".into(),
                self.last_refresh
                    .as_ref()
                    .map_or(serde_json::Value::Null, |s| s.json(now)),
            );
            map.insert(
                "lastError".into(),
                self.last_error
                    .as_ref()
                    .map_or(serde_json::Value::Null, |(s, e)| {
                        let mut j = s.json(now);
                        if let Some(o) = j.as_object_mut() {
                            o.insert("error".into(), e.as_str().into());
                        }
                        j
                    }),
            );
            map.insert("failing".into(), self.failing.into());
            map.insert("lookups".into(), self.lookups.len().into());
        }
        v
    }
}

/// The lookup answer for `key` given its name's address set.
fn lookup_state(key: &LookupKey, addr: &watch::Sender<Addr>) -> State<LookupTree> {
    let phase = Phase::of(&addr.borrow());
    match phase {
        Phase::Pending => State::Pending,
        Phase::Neg => State::Ok(NameTree::Neg),
        Phase::Bound => State::Ok(NameTree::Leaf(Name::Bound(Bound::new(
            key.prefix.concat(&key.path.take(1)),
            key.path.drop(1),
            addr.subscribe(),
        )))),
    }
}

/// What one poll found.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// These addresses (sorted, deduplicated, not empty).
    Found(Vec<Endpoint>),
    /// No addresses, and the server said so: `Neg`. Why, for `state()`.
    Missing(String),
    /// The question went unanswered: keep the last answer.
    Failed(String),
}

/// The poll task of `name`: asks, applies, sleeps, until nobody watches.
async fn poll(shared: Weak<Shared>, name: Arc<str>, generation: u64) {
    loop {
        let Some((resolver, interval)) = shared.upgrade().map(|s| (s.resolver.clone(), s.interval))
        else {
            return;
        };
        let outcome = refresh(&resolver, &name).await;
        drop(resolver);
        {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let mut names = shared.lock();
            let Some(entry) = names.get_mut(&name).filter(|e| e.generation == generation) else {
                return;
            };
            entry.apply(&name, outcome);
            // Lookups first: dropping one releases the address set it held.
            entry.lookups.retain(|_, tx| !tx.is_closed());
            if entry.lookups.is_empty() && entry.addr.is_closed() {
                names.remove(&name);
                tracing::debug!(name = %name, "io.l5d.dnssrv: nobody watches; polling stopped");
                return;
            }
        }
        tokio::time::sleep(interval).await;
    }
}

/// One refresh of `name`, bounded by [`REFRESH_TIMEOUT`].
async fn refresh(resolver: &TokioResolver, name: &str) -> Outcome {
    match tokio::time::timeout(REFRESH_TIMEOUT, resolve(resolver, name)).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::Failed(format!("no answer within {} s", REFRESH_TIMEOUT.as_secs())),
    }
}

/// A target's key: lower case, absolute.
fn target_key(name: &DnsName) -> String {
    let mut n = name.to_lowercase();
    n.set_fqdn(true);
    n.to_ascii()
}

/// Asks for the SRV records of `name` and the addresses of their targets.
async fn resolve(resolver: &TokioResolver, name: &str) -> Outcome {
    let lookup = match resolver.srv_lookup(name).await {
        Ok(l) => l,
        Err(e) if e.is_nx_domain() => return Outcome::Missing("NXDOMAIN".into()),
        Err(e) if e.is_no_records_found() => return Outcome::Missing("no SRV records".into()),
        Err(e) => return Outcome::Failed(failure("SRV query failed", &e)),
    };
    // (target key, target, port)
    let mut srvs: Vec<(String, DnsName, u16)> = Vec::new();
    for r in lookup.answers() {
        if let RData::SRV(srv) = &r.data {
            if srv.target.is_root() || srv.port == 0 {
                continue;
            }
            srvs.push((target_key(&srv.target), srv.target.clone(), srv.port));
        }
    }
    if srvs.is_empty() {
        return Outcome::Missing("no usable SRV records".into());
    }
    let mut ips: HashMap<String, Vec<IpAddr>> = HashMap::new();
    for r in lookup.additionals() {
        let ip = match &r.data {
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(a) => IpAddr::V6(a.0),
            _ => continue,
        };
        ips.entry(target_key(&r.name)).or_default().push(ip);
    }
    let mut missing: Vec<(String, DnsName)> = Vec::new();
    for (key, target, _) in &srvs {
        if !ips.contains_key(key) && !missing.iter().any(|(k, _)| k == key) {
            missing.push((key.clone(), target.clone()));
        }
    }
    for chunk in missing.chunks(TARGET_CONCURRENCY) {
        let mut set = JoinSet::new();
        for (key, target) in chunk {
            let (r, key, target) = (resolver.clone(), key.clone(), target.clone());
            set.spawn(async move {
                let got = r.lookup_ip(target).await;
                (key, got)
            });
        }
        while let Some(joined) = set.join_next().await {
            let (key, got) = match joined {
                Ok(x) => x,
                Err(e) => return Outcome::Failed(format!("resolving an SRV target failed: {e}")),
            };
            match got {
                Ok(l) => {
                    ips.insert(key, l.iter().collect());
                }
                Err(e) if e.is_no_records_found() => {
                    ips.insert(key, Vec::new());
                }
                Err(e) => {
                    return Outcome::Failed(failure(
                        &format!("cannot resolve SRV target {key}"),
                        &e,
                    ));
                }
            }
        }
    }
    let mut eps = BTreeSet::new();
    for (key, _, port) in &srvs {
        for ip in ips.get(key).into_iter().flatten() {
            eps.insert(SocketAddr::new(*ip, *port));
        }
    }
    if eps.is_empty() {
        let mut targets: Vec<&str> = srvs.iter().map(|(k, _, _)| k.as_str()).collect();
        targets.dedup();
        return Outcome::Missing(format!(
            "no SRV target has an address: {}",
            targets.join(", ")
        ));
    }
    Outcome::Found(eps.into_iter().map(Endpoint::new).collect())
}

fn failure(what: &str, e: &NetError) -> String {
    format!("{what}: {e}")
}

#[cfg(test)]
#[path = "dnssrv_tests.rs"]
mod tests;

//! A Consul HTTP API simulator: the "Consul" every Consul test talks to
//! (no real Consul runs on these machines).
//!
//! It obeys the rules of Consul's documented HTTP API: the response shapes of
//! `health/service` and `catalog/service`, blocking queries (`index`,
//! `wait` in Go duration syntax, jitter up to `wait/16`, an index that is
//! never 0), tag (AND, case-insensitive) and `passing` filters, the agent
//! endpoints (register, deregister, TTL checks, maintenance), ACL tokens,
//! and Consul's error texts and status codes. On top of that a test can
//! inject what real clusters do to clients: a lost leader, failures, slow
//! or stalled answers, an index that goes backwards or is 0, missing
//! headers, dropped and refused connections.
//!
//! Two ways in:
//!
//! * in-process: [`ConsulSim::start`] runs the simulator on its own tokio
//!   runtime on a background thread, so plain `#[test]` and `#[tokio::test]`
//!   functions can both use it; every knob is a synchronous method;
//! * as a process: the `consul-sim` binary (`--port 0` prints
//!   `consul-sim: listening on 127.0.0.1:PORT`), whose knobs are the
//!   control endpoints under `/_sim/` (see below).
//!
//! # Endpoints
//!
//! | Consul endpoint | notes |
//! | --- | --- |
//! | `GET /v1/health/service/:service` | `dc`, `tag` (repeatable), `passing`, `index`, `wait`, `stale`, `consistent`, `token`, `pretty` |
//! | `GET /v1/catalog/service/:service` | the same but `passing` |
//! | `GET /v1/catalog/services` | blocking; `dc` |
//! | `GET /v1/catalog/datacenters` | needs no leader and no token |
//! | `GET /v1/agent/self` | `Config.Datacenter`, `Config.NodeName`, `Config.Domain` |
//! | `PUT /v1/agent/service/register` | `Name`, `ID`, `Tags`, `Address`, `Port`, `Meta`, `Weights`, `TaggedAddresses`, `Check`, `Checks` |
//! | `PUT /v1/agent/service/deregister/:id` | |
//! | `PUT /v1/agent/check/{pass,warn,fail}/:check_id` | `note`; TTL checks only |
//! | `PUT /v1/agent/check/update/:check_id` | `{"Status", "Output"}` |
//! | `PUT /v1/agent/service/maintenance/:id` | `enable`, `reason` |
//! | `PUT /v1/agent/maintenance` | node maintenance: `enable`, `reason` |
//! | `GET /v1/kv/:key` | `raw`, `recurse`, `keys`, `separator`, `index`, `wait`, `dc`, `stale`; a missing key is 404 with `X-Consul-Index` |
//! | `PUT /v1/kv/:key`, `DELETE /v1/kv/:key` | `cas`, `flags`; `recurse` (delete); answers `true`/`false` |
//!
//! Service names are matched case-insensitively, as Consul's catalog index
//! does. Checks other than TTL ones (HTTP, TCP, script...) are not run:
//! they keep their registered `Status` (critical by default) until a test
//! sets them. `filter` and `node-meta` are refused with a 400 naming the
//! simulator rather than silently ignored; `near` and `cached` are ignored.
//!
//! # Control endpoints (the standalone process's knobs)
//!
//! Not Consul's: everything under `/_sim/`. Knobs take `PUT` (or `POST`);
//! answers are `200 ok`, or a 400/404 whose text starts with `consul-sim:`.
//! Control requests are neither recorded nor counted, and faults do not
//! apply to them.
//!
//! | request | effect |
//! | --- | --- |
//! | `GET /_sim/requests`, `DELETE /_sim/requests` | the recorded requests as JSON; forget them |
//! | `GET /_sim/stats` | counters ([`Stats`]) and the current index as JSON |
//! | `PUT /_sim/register?node=N&address=A&dc=D` | register the body (agent JSON) on node `N` (created if new) |
//! | `PUT /_sim/deregister/:id` | [`ConsulSim::deregister`] |
//! | `PUT /_sim/check/:check_id?status=S&output=O` | [`ConsulSim::set_check_output`] |
//! | `PUT /_sim/stall?on=true\|false` | [`ConsulSim::stall`] |
//! | `PUT /_sim/delay?ms=N` | [`ConsulSim::delay_headers`] |
//! | `PUT /_sim/fail?status=S&body=B[&count=N]`, `DELETE /_sim/fail` | [`ConsulSim::fail_next`] (no count: [`ConsulSim::fail_all`]); [`ConsulSim::clear_failures`] |
//! | `PUT /_sim/wake` | [`ConsulSim::wake`] |
//! | `PUT /_sim/index?to=N` | [`ConsulSim::index_backwards`] |
//! | `PUT /_sim/index-zero?count=N`, `PUT /_sim/no-index?count=N` | [`ConsulSim::index_zero_next`], [`ConsulSim::no_index_next`] |
//! | `PUT /_sim/drop[?refuse_ms=N][&close_ms=N]` | [`ConsulSim::drop_connections`], then [`ConsulSim::refuse_connections`] / [`ConsulSim::close_new_connections`] |
//! | `PUT /_sim/leader?on=true\|false` | [`ConsulSim::set_leader`] |
//! | `PUT /_sim/acl` | [`ConsulSim::set_acl`]: `{"default_policy": "deny", "tokens": {"t": {"read": "*" or ["web"], "write": true}}}`; an empty body turns ACLs off |

mod agent;
mod catalog;
mod control;
mod go;
mod http;
mod kv;
mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use catalog::{CheckDef, ServiceDef};
use state::{Failure, Shared};

/// The health of a check, as Consul writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckStatus {
    /// `passing`.
    Passing,
    /// `warning`.
    Warning,
    /// `critical` (also how maintenance mode shows).
    Critical,
}

impl CheckStatus {
    /// The wire form: `passing`, `warning` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Passing => "passing",
            CheckStatus::Warning => "warning",
            CheckStatus::Critical => "critical",
        }
    }

    /// Parses the wire form.
    pub fn parse(s: &str) -> Option<CheckStatus> {
        match s {
            "passing" => Some(CheckStatus::Passing),
            "warning" => Some(CheckStatus::Warning),
            "critical" => Some(CheckStatus::Critical),
            _ => None,
        }
    }
}

/// Parses a non-negative duration in Go's syntax (`300ms`, `10s`,
/// `1m30s`, `1.5h`), as Consul reads `wait` and check TTLs.
pub fn parse_duration(s: &str) -> Option<Duration> {
    go::parse_duration(s)
        .and_then(|ns| u64::try_from(ns).ok())
        .map(Duration::from_nanos)
}

/// How a simulator starts.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The address to listen on (default `127.0.0.1`).
    pub host: IpAddr,
    /// The port; 0 (the default) lets the kernel pick.
    pub port: u16,
    /// The agent's datacenter (default `dc1`).
    pub datacenter: String,
    /// Other datacenters the cluster knows (default none); a `dc` outside
    /// these and `datacenter` is 500 "No path to datacenter".
    pub other_datacenters: Vec<String>,
    /// The agent's node name (default `consul-sim`); its address is
    /// `127.0.0.1`.
    pub node_name: String,
    /// How long a blocking query waits without `wait` (Consul: 5 minutes).
    pub default_wait: Duration,
    /// The longest a blocking query waits (Consul: 10 minutes).
    pub max_wait: Duration,
    /// Whether a blocking query's wait gets Consul's random extra of up to
    /// `wait/16` (default true).
    pub jitter: bool,
    /// ACL mode; `None` (the default) means ACLs are off.
    pub acl: Option<Acl>,
    /// How many requests [`ConsulSim::requests`] keeps (default 1000).
    pub record_limit: usize,
    /// Instances registered before the first request.
    pub registrations: Vec<Registration>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            datacenter: "dc1".into(),
            other_datacenters: Vec::new(),
            node_name: "consul-sim".into(),
            default_wait: Duration::from_secs(300),
            max_wait: Duration::from_secs(600),
            jitter: true,
            acl: None,
            record_limit: 1000,
            registrations: Vec::new(),
        }
    }
}

/// ACL mode: which token may do what.
///
/// A known token has exactly the rights listed for it (as with Consul's
/// `default_policy = "deny"`); `default_policy` decides for requests that
/// carry no token (the anonymous token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acl {
    /// What anonymous requests may do: everything or nothing.
    pub default_policy: AclPolicy,
    /// Token secret → rights.
    pub tokens: BTreeMap<String, TokenRules>,
}

/// An ACL default policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AclPolicy {
    /// Everything is allowed.
    Allow,
    /// Nothing is allowed.
    Deny,
}

impl AclPolicy {
    /// `allow` or `deny`, as in `X-Consul-Default-ACL-Policy`.
    pub fn as_str(self) -> &'static str {
        match self {
            AclPolicy::Allow => "allow",
            AclPolicy::Deny => "deny",
        }
    }
}

/// What one ACL token may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRules {
    /// The services it may read (`service:read`).
    pub read: ServiceSet,
    /// Whether it may write (register, deregister, update checks); write
    /// implies read, as `service:write` does.
    pub write: bool,
}

impl TokenRules {
    /// Read and write everything.
    pub fn admin() -> TokenRules {
        TokenRules {
            read: ServiceSet::All,
            write: true,
        }
    }

    /// Read the named services only.
    pub fn read<'a>(services: impl IntoIterator<Item = &'a str>) -> TokenRules {
        TokenRules {
            read: ServiceSet::Only(services.into_iter().map(str::to_owned).collect()),
            write: false,
        }
    }
}

/// A set of service names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceSet {
    /// Every service.
    All,
    /// These services (exact names); empty means none.
    Only(BTreeSet<String>),
}

impl ServiceSet {
    /// Whether `service` is in the set.
    pub fn contains(&self, service: &str) -> bool {
        match self {
            ServiceSet::All => true,
            ServiceSet::Only(names) => names.contains(service),
        }
    }
}

/// A service instance for [`ConsulSim::register`], built like
/// `Registration::new("web", "web-1", 8080).address("127.0.0.21").tags(&["primary"])`.
#[derive(Clone, Debug, PartialEq)]
pub struct Registration {
    /// The service name.
    pub name: String,
    /// The instance ID (unique per node).
    pub id: String,
    /// Tags.
    pub tags: Vec<String>,
    /// `Service.Address`; empty means "dial the node's address".
    pub address: String,
    /// `Service.Port`.
    pub port: u16,
    /// `Service.Meta`.
    pub meta: BTreeMap<String, String>,
    /// `Weights` as `(Passing, Warning)`; Consul's default is `(1, 1)`.
    pub weights: (u32, u32),
    /// The node; `None` is the simulator's own node.
    pub node: Option<NodeSpec>,
    /// The instance's own checks.
    pub checks: Vec<CheckSpec>,
}

impl Registration {
    /// Instance `id` of service `name` on `port`, with no address (the
    /// node's), tags or checks, on the simulator's node.
    pub fn new(name: &str, id: &str, port: u16) -> Registration {
        Registration {
            name: name.into(),
            id: id.into(),
            tags: Vec::new(),
            address: String::new(),
            port,
            meta: BTreeMap::new(),
            weights: (1, 1),
            node: None,
            checks: Vec::new(),
        }
    }

    /// Sets `Service.Address`.
    pub fn address(mut self, address: &str) -> Registration {
        self.address = address.into();
        self
    }

    /// Sets the tags.
    pub fn tags(mut self, tags: &[&str]) -> Registration {
        self.tags = tags.iter().map(|t| (*t).to_owned()).collect();
        self
    }

    /// Adds a `Service.Meta` entry.
    pub fn meta(mut self, key: &str, value: &str) -> Registration {
        self.meta.insert(key.into(), value.into());
        self
    }

    /// Sets `Weights`.
    pub fn weights(mut self, passing: u32, warning: u32) -> Registration {
        self.weights = (passing, warning);
        self
    }

    /// Places the instance on another node (created on first use).
    pub fn on_node(mut self, node: NodeSpec) -> Registration {
        self.node = Some(node);
        self
    }

    /// Adds a check `service:<id>` in `status`, which only a test changes.
    pub fn check(self, status: CheckStatus) -> Registration {
        let id = format!("service:{}", self.id);
        let name = format!("Service '{}' check", self.name);
        self.with_check(CheckSpec {
            id,
            name,
            status,
            ttl: None,
            output: String::new(),
        })
    }

    /// Adds a TTL check `id` starting in `status`.
    pub fn ttl_check(self, id: &str, ttl: Duration, status: CheckStatus) -> Registration {
        let name = format!("{} TTL", self.name);
        self.with_check(CheckSpec {
            id: id.into(),
            name,
            status,
            ttl: Some(ttl),
            output: String::new(),
        })
    }

    /// Adds a check.
    pub fn with_check(mut self, check: CheckSpec) -> Registration {
        self.checks.push(check);
        self
    }

    fn into_defs(self) -> (Option<NodeSpec>, ServiceDef, Vec<CheckDef>) {
        let checks = self
            .checks
            .into_iter()
            .map(|c| CheckDef {
                id: c.id,
                name: c.name,
                notes: String::new(),
                kind: if c.ttl.is_some() {
                    "ttl".into()
                } else {
                    String::new()
                },
                interval: String::new(),
                ttl: c.ttl,
                status: Some(c.status),
                output: c.output,
            })
            .collect();
        let def = ServiceDef {
            id: self.id,
            name: self.name,
            tags: self.tags,
            address: self.address,
            port: self.port,
            meta: self.meta,
            weights: self.weights,
            tagged_addresses: serde_json::json!({}),
            enable_tag_override: false,
        };
        (self.node, def, checks)
    }
}

/// A node other than the simulator's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    /// `Node.Node`.
    pub name: String,
    /// `Node.Address`.
    pub address: String,
    /// `Node.Datacenter`; `None` is the simulator's datacenter.
    pub datacenter: Option<String>,
}

impl NodeSpec {
    /// Node `name` at `address` in the simulator's datacenter.
    pub fn new(name: &str, address: &str) -> NodeSpec {
        NodeSpec {
            name: name.into(),
            address: address.into(),
            datacenter: None,
        }
    }

    /// Puts the node in datacenter `dc` (which should be one the
    /// simulator knows, see [`SimConfig::other_datacenters`]).
    pub fn in_datacenter(mut self, dc: &str) -> NodeSpec {
        self.datacenter = Some(dc.into());
        self
    }
}

/// A check of a [`Registration`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckSpec {
    /// `CheckID`.
    pub id: String,
    /// `Name`.
    pub name: String,
    /// The initial status.
    pub status: CheckStatus,
    /// A TTL: the check turns critical unless refreshed within it.
    pub ttl: Option<Duration>,
    /// The initial `Output`.
    pub output: String,
}

/// One request the simulator received (control requests excluded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The method.
    pub method: String,
    /// Path and query, as sent.
    pub uri: String,
    /// Every header, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// When it arrived, since the simulator started.
    pub at: Duration,
    /// Which connection carried it (numbered from 1 in accept order).
    pub connection: u64,
}

impl RecordedRequest {
    /// The path (without the query).
    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or_default()
    }

    /// The first value of query parameter `key`, decoded (`Some("")` for a
    /// bare `?key`).
    pub fn query(&self, key: &str) -> Option<String> {
        go::Query::parse(self.uri.split_once('?').map(|(_, q)| q))
            .get(key)
            .map(str::to_owned)
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Request and connection counters (control requests excluded).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests received.
    pub requests: u64,
    /// Requests per path (query excluded).
    pub per_path: BTreeMap<String, u64>,
    /// Blocking queries holding right now.
    pub blocked_now: usize,
    /// The most blocking queries that ever held at once.
    pub max_blocked: usize,
    /// Connections open right now.
    pub connections_now: usize,
    /// Connections accepted in all.
    pub connections: u64,
}

/// A running simulator; stops when dropped.
pub struct ConsulSim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ConsulSim {
    /// Starts a simulator; panics if it cannot listen.
    pub fn start(config: SimConfig) -> ConsulSim {
        ConsulSim::try_start(config).unwrap_or_else(|e| panic!("consul-sim cannot start: {e}"))
    }

    /// Starts a simulator: binds its port, registers
    /// [`SimConfig::registrations`] and serves from a background thread.
    pub fn try_start(config: SimConfig) -> io::Result<ConsulSim> {
        let listener = std::net::TcpListener::bind((config.host, config.port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("consul-sim")
            .enable_all()
            .build()?;
        let registrations = config.registrations.clone();
        let shared = Arc::new(Shared::new(config));
        let sim_shared = Arc::clone(&shared);
        let (shutdown, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("consul-sim".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => return eprintln!("consul-sim: {e}"),
                    };
                    tokio::spawn(state::expire_ttls(Arc::clone(&sim_shared)));
                    http::serve(sim_shared, listener, stopped).await;
                });
            })?;
        let sim = ConsulSim {
            shared,
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        };
        for r in registrations {
            sim.register(r);
        }
        Ok(sim)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The current global index.
    pub fn index(&self) -> u64 {
        self.shared.lock().catalog.index
    }

    /// Registers (or replaces) an instance, creating its node if new.
    pub fn register(&self, registration: Registration) {
        let (node, def, checks) = registration.into_defs();
        self.shared.register(node, def, checks);
    }

    /// Removes instance `id` (from the simulator's node if it has one,
    /// else from the first node that does); whether it existed.
    pub fn deregister(&self, id: &str) -> bool {
        self.shared.deregister(id)
    }

    /// Sets check `check_id` (on the simulator's node if it has one, else
    /// on the first node that does) to `status`, TTL check or not; a TTL
    /// clock restarts. Whether the check exists.
    pub fn set_check(&self, check_id: &str, status: CheckStatus) -> bool {
        self.shared.update_check(check_id, status, None)
    }

    /// [`ConsulSim::set_check`], also setting the check's `Output`.
    pub fn set_check_output(&self, check_id: &str, status: CheckStatus, output: &str) -> bool {
        self.shared.update_check(check_id, status, Some(output))
    }

    /// Sets node `node`'s `serfHealth` check (node checks count for every
    /// instance on the node); whether the node exists.
    pub fn set_node_health(&self, node: &str, status: CheckStatus) -> bool {
        self.shared.write(|c| {
            c.update_check(node, "serfHealth", status, None, false, Instant::now())
                .is_ok()
        })
    }

    /// Turns maintenance mode on (`Some(reason)`) or off (`None`) for
    /// instance `service_id` on the simulator's node; whether it exists.
    pub fn set_maintenance(&self, service_id: &str, reason: Option<&str>) -> bool {
        let own = &self.shared.config.node_name;
        self.shared.write(|c| {
            let exists = c.service_name(own, service_id).is_some();
            if exists {
                c.set_maintenance(own, Some(service_id), reason);
            }
            exists
        })
    }

    /// Sets KV `key` to `value` (as `PUT /v1/kv/<key>` would); the new
    /// global index.
    pub fn kv_put(&self, key: &str, value: &[u8]) -> u64 {
        let value = bytes::Bytes::copy_from_slice(value);
        self.shared.write(|c| {
            c.kv_put(key, value, 0, None);
            c.index
        })
    }

    /// Deletes KV `key` (as `DELETE /v1/kv/<key>` would).
    pub fn kv_delete(&self, key: &str) {
        self.shared.write(|c| c.kv_delete(key, false, None));
    }

    /// The value of KV `key`, if set.
    pub fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        self.shared.lock().catalog.kv.get(key).map(|b| b.to_vec())
    }

    /// Holds every Consul request (stall on) until the stall is lifted.
    pub fn stall(&self, on: bool) {
        self.shared.stalled.send_replace(on);
    }

    /// Delays every Consul response by `delay` before anything is sent
    /// (slow headers); zero turns it off.
    pub fn delay_headers(&self, delay: Duration) {
        self.shared.lock().knobs.header_delay = delay;
    }

    /// Answers the next `n` Consul requests with `status` and `body`.
    pub fn fail_next(&self, n: u64, status: u16, body: &str) {
        self.shared.lock().knobs.failure = Some(Failure {
            status,
            body: body.into(),
            remaining: Some(n),
        });
    }

    /// Answers every Consul request with `status` and `body` until
    /// [`ConsulSim::clear_failures`].
    pub fn fail_all(&self, status: u16, body: &str) {
        self.shared.lock().knobs.failure = Some(Failure {
            status,
            body: body.into(),
            remaining: None,
        });
    }

    /// Answers the next `n` Consul requests with 429 "RPC rate limit
    /// exceeded".
    pub fn rate_limit_next(&self, n: u64) {
        self.fail_next(n, 429, "RPC rate limit exceeded");
    }

    /// Ends [`ConsulSim::fail_next`] and [`ConsulSim::fail_all`].
    pub fn clear_failures(&self) {
        self.shared.lock().knobs.failure = None;
    }

    /// Wakes every blocked query without a change: each re-runs and, its
    /// index unchanged, keeps waiting.
    pub fn wake(&self) {
        self.shared.wake();
    }

    /// Snapshot restore: every index above `to` drops to `to` (at least 1);
    /// blocked queries return at once with the lower index, as Consul's do
    /// when a restore abandons the state store.
    pub fn index_backwards(&self, to: u64) {
        self.shared.write(|c| c.restore_to(to));
    }

    /// The next `n` blocking-capable reads answer `X-Consul-Index: 0` (the
    /// old-server bug).
    pub fn index_zero_next(&self, n: u64) {
        self.shared.lock().knobs.index_zero = n;
    }

    /// The next `n` blocking-capable reads answer without `X-Consul-Index`.
    pub fn no_index_next(&self, n: u64) {
        self.shared.lock().knobs.no_index = n;
    }

    /// Closes every open connection now, blocked queries included (the
    /// client sees the connection closed without a response).
    pub fn drop_connections(&self) {
        self.shared.drop_connections(None);
    }

    /// Stops listening for `period` (connections are refused), then
    /// listens again on the same address (which another process could, in
    /// principle, have taken meanwhile).
    pub fn refuse_connections(&self, period: Duration) {
        self.shared.refuse_connections(period);
    }

    /// For `period`, accepts new connections and closes them at once.
    pub fn close_new_connections(&self, period: Duration) {
        self.shared.close_new_connections(period);
    }

    /// Whether the cluster has a leader. Without one, default and
    /// `consistent` reads are 500 "No cluster leader"; `stale` reads answer
    /// with `X-Consul-KnownLeader: false` and a growing
    /// `X-Consul-LastContact`.
    pub fn set_leader(&self, leader: bool) {
        self.shared.set_leader(leader);
    }

    /// Turns ACL mode on with these rules, or off with `None`.
    pub fn set_acl(&self, acl: Option<Acl>) {
        self.shared.lock().knobs.acl = acl;
    }

    /// The last recorded requests, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().log.iter().cloned().collect()
    }

    /// Forgets the recorded requests (counters stay).
    pub fn clear_requests(&self) {
        self.shared.lock().log.clear();
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }

    /// How many blocking queries are holding right now.
    pub fn blocked_now(&self) -> usize {
        self.shared.lock().stats.blocked_now
    }

    /// Stops serving: closes the listener and every connection. Dropping
    /// the handle does the same.
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ConsulSim {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for ConsulSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsulSim")
            .field("addr", &self.addr)
            .finish()
    }
}

//! The simulated catalog: nodes, service instances and checks, the one
//! global write index, and the JSON shapes Consul answers with.
//!
//! Index rules (as Consul documents them for blocking queries): every write that changes
//! something takes the next global index; a service's index is the last
//! index that touched an instance of it, its checks, or its nodes' checks
//! (a deregistration included); an unknown service answers the "last
//! extinction" index, taken when a service's last instance goes away. A
//! write that changes nothing (the same TTL status and output again, an
//! identical re-registration) takes no index, as with Consul's agent, whose
//! anti-entropy only syncs differences; it still resets TTL clocks.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::CheckStatus;

/// A node: the simulator's own (the "agent") or one registered through the
/// handle.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) address: String,
    pub(crate) datacenter: String,
    pub(crate) id: String,
    create_index: u64,
    modify_index: u64,
}

/// A service instance as registered: everything but indexes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ServiceDef {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) tags: Vec<String>,
    pub(crate) address: String,
    pub(crate) port: u16,
    pub(crate) meta: BTreeMap<String, String>,
    pub(crate) weights: (u32, u32),
    pub(crate) tagged_addresses: Value,
    pub(crate) enable_tag_override: bool,
}

/// A check as registered. `status: None` keeps a re-registered check's
/// status, or starts a new one critical.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CheckDef {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) notes: String,
    pub(crate) kind: String,
    pub(crate) interval: String,
    pub(crate) ttl: Option<Duration>,
    pub(crate) status: Option<CheckStatus>,
    pub(crate) output: String,
}

#[derive(Clone, Debug)]
struct Instance {
    node: String,
    def: ServiceDef,
    create_index: u64,
    modify_index: u64,
}

/// The part of a check that decides whether a write changed it.
#[derive(Clone, Debug, PartialEq)]
struct CheckState {
    name: String,
    notes: String,
    service_id: String,
    kind: String,
    interval: String,
    ttl: Option<Duration>,
    status: CheckStatus,
    output: String,
}

#[derive(Clone, Debug)]
struct Check {
    state: CheckState,
    /// When a TTL check turns critical unless refreshed.
    deadline: Option<Instant>,
    create_index: u64,
    modify_index: u64,
}

/// Why a check update was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CheckError {
    /// No such check on that node.
    Unknown,
    /// The agent API can only set TTL checks.
    NoTtl,
}

/// What a read found: the JSON body, its index, and whether ACLs removed
/// anything.
#[derive(Debug)]
pub(crate) struct Listing {
    pub(crate) body: Value,
    pub(crate) index: u64,
    pub(crate) filtered: bool,
}

/// A `health/service` or `catalog/service` query.
pub(crate) struct ServiceQuery<'a> {
    pub(crate) dc: &'a str,
    pub(crate) name: &'a str,
    pub(crate) tags: Vec<String>,
    pub(crate) passing: bool,
}

/// An instance a query selected, with its node and its checks by ID.
type Selected<'a> = (&'a Instance, &'a Node, Vec<(&'a str, &'a Check)>);

/// Check IDs of maintenance mode, as the Go client names them.
const NODE_MAINT: &str = "_node_maintenance";
const SERVICE_MAINT_PREFIX: &str = "_service_maintenance:";
const SERF: &str = "serfHealth";
/// The `Type` of maintenance checks.
const MAINTENANCE: &str = "maintenance";

/// Nodes, instances, checks and indexes.
#[derive(Debug)]
pub(crate) struct Catalog {
    /// The global write index.
    pub(crate) index: u64,
    /// Bumped by every snapshot restore; blocked readers return on it.
    pub(crate) restores: u64,
    extinction: u64,
    services_index: u64,
    /// `(datacenter, lower-cased service name)` → the service's index.
    service_indexes: BTreeMap<(String, String), u64>,
    nodes: BTreeMap<String, Node>,
    /// `(node, service ID)` → instance; the order Consul lists them in.
    instances: BTreeMap<(String, String), Instance>,
    /// `(node, check ID)` → check.
    checks: BTreeMap<(String, String), Check>,
    /// The KV store (`/v1/kv/`), on the same global index.
    pub(crate) kv: super::kv::Kv,
}

impl Catalog {
    /// A catalog holding the agent's own node at index 1.
    pub(crate) fn new(agent_node: &str, datacenter: &str) -> Catalog {
        let mut catalog = Catalog {
            index: 0,
            restores: 0,
            extinction: 1,
            services_index: 1,
            service_indexes: BTreeMap::new(),
            nodes: BTreeMap::new(),
            instances: BTreeMap::new(),
            checks: BTreeMap::new(),
            kv: super::kv::Kv::default(),
        };
        catalog.ensure_node(agent_node, "127.0.0.1", datacenter);
        catalog
    }

    fn bump(&mut self) -> u64 {
        self.index += 1;
        self.index
    }

    /// The node named `name`, if any.
    pub(crate) fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.get(name)
    }

    /// Creates node `name` (with a passing `serfHealth` check) unless it
    /// exists.
    pub(crate) fn ensure_node(&mut self, name: &str, address: &str, datacenter: &str) {
        if self.nodes.contains_key(name) {
            return;
        }
        let index = self.bump();
        self.nodes.insert(
            name.to_owned(),
            Node {
                name: name.to_owned(),
                address: address.to_owned(),
                datacenter: datacenter.to_owned(),
                id: node_id(name),
                create_index: index,
                modify_index: index,
            },
        );
        let serf = CheckState {
            name: "Serf Health Status".into(),
            notes: String::new(),
            service_id: String::new(),
            kind: String::new(),
            interval: String::new(),
            ttl: None,
            status: CheckStatus::Passing,
            output: "Agent alive and reachable".into(),
        };
        self.put_check(name, SERF, serf, None, index);
    }

    /// Registers (or replaces) instance `def` on `node` with exactly
    /// `checks` as its checks (maintenance mode stays as it was).
    pub(crate) fn register(
        &mut self,
        node: &str,
        def: ServiceDef,
        checks: Vec<CheckDef>,
        now: Instant,
    ) {
        let key = (node.to_owned(), def.id.clone());
        let old_checks: BTreeMap<String, CheckState> = self
            .checks
            .iter()
            .filter(|((n, _), c)| n == node && c.state.service_id == def.id)
            .filter(|(_, c)| c.state.kind != MAINTENANCE)
            .map(|((_, id), c)| (id.clone(), c.state.clone()))
            .collect();
        let new_checks: BTreeMap<String, (CheckState, Option<Instant>)> = checks
            .into_iter()
            .map(|c| {
                let old = old_checks.get(&c.id);
                let state = CheckState {
                    name: c.name,
                    notes: c.notes,
                    service_id: def.id.clone(),
                    kind: c.kind,
                    interval: c.interval,
                    ttl: c.ttl,
                    status: c
                        .status
                        .or(old.map(|o| o.status))
                        .unwrap_or(CheckStatus::Critical),
                    output: match (c.status, old) {
                        (None, Some(o)) if c.output.is_empty() => o.output.clone(),
                        _ => c.output,
                    },
                };
                (c.id, (state, c.ttl.map(|ttl| now + ttl)))
            })
            .collect();
        let unchanged = self.instances.get(&key).is_some_and(|i| i.def == def)
            && old_checks.len() == new_checks.len()
            && new_checks
                .iter()
                .all(|(id, (state, _))| old_checks.get(id) == Some(state));
        if unchanged {
            for (id, (_, deadline)) in new_checks {
                if let Some(c) = self.checks.get_mut(&(node.to_owned(), id)) {
                    c.deadline = deadline;
                }
            }
            return;
        }
        let index = self.bump();
        let create_index = self.instances.get(&key).map_or(index, |i| i.create_index);
        let renamed = self
            .instances
            .get(&key)
            .is_some_and(|old| !old.def.name.eq_ignore_ascii_case(&def.name));
        if renamed {
            // The old name loses an instance (and may go extinct).
            self.remove_instance(node, &def.id, index);
        }
        for id in old_checks.keys() {
            if !new_checks.contains_key(id) {
                self.checks.remove(&(node.to_owned(), id.clone()));
            }
        }
        for (id, (state, deadline)) in new_checks {
            self.put_check(node, &id, state, deadline, index);
        }
        self.touch_service(node, &def.name, index);
        self.services_index = index;
        self.instances.insert(
            key,
            Instance {
                node: node.to_owned(),
                def,
                create_index,
                modify_index: index,
            },
        );
    }

    /// Removes instance `id` from `node`; whether it existed.
    pub(crate) fn deregister(&mut self, node: &str, id: &str) -> bool {
        if !self
            .instances
            .contains_key(&(node.to_owned(), id.to_owned()))
        {
            return false;
        }
        let index = self.bump();
        self.remove_instance(node, id, index);
        true
    }

    /// The node of instance `id`: `preferred` if it has one, else the first.
    pub(crate) fn instance_node(&self, preferred: &str, id: &str) -> Option<String> {
        if self
            .instances
            .contains_key(&(preferred.to_owned(), id.to_owned()))
        {
            return Some(preferred.to_owned());
        }
        self.instances
            .keys()
            .find(|(_, i)| i == id)
            .map(|(n, _)| n.clone())
    }

    /// The node of check `id`: `preferred` if it has one, else the first.
    pub(crate) fn check_node(&self, preferred: &str, id: &str) -> Option<String> {
        if self
            .checks
            .contains_key(&(preferred.to_owned(), id.to_owned()))
        {
            return Some(preferred.to_owned());
        }
        self.checks
            .keys()
            .find(|(_, c)| c == id)
            .map(|(n, _)| n.clone())
    }

    /// The name of instance `id` on `node`.
    pub(crate) fn service_name(&self, node: &str, id: &str) -> Option<&str> {
        self.instances
            .get(&(node.to_owned(), id.to_owned()))
            .map(|i| i.def.name.as_str())
    }

    /// Whether `node` has check `id`.
    pub(crate) fn has_check(&self, node: &str, id: &str) -> bool {
        self.checks.contains_key(&(node.to_owned(), id.to_owned()))
    }

    fn remove_instance(&mut self, node: &str, id: &str, index: u64) {
        let Some(gone) = self.instances.remove(&(node.to_owned(), id.to_owned())) else {
            return;
        };
        self.checks
            .retain(|(n, _), c| n != node || c.state.service_id != id);
        self.services_index = index;
        let dc = self.datacenter_of(node);
        let name = gone.def.name.to_lowercase();
        let remaining = self
            .instances
            .values()
            .any(|i| i.def.name.eq_ignore_ascii_case(&name) && self.datacenter_of(&i.node) == dc);
        if remaining {
            self.service_indexes.insert((dc, name), index);
        } else {
            self.service_indexes.remove(&(dc, name));
            self.extinction = index;
        }
    }

    /// Sets check `id` on `node` to `status`, replacing its output when
    /// `output` is given. `ttl_only` refuses checks without a TTL (the
    /// agent API); any TTL clock restarts.
    pub(crate) fn update_check(
        &mut self,
        node: &str,
        id: &str,
        status: CheckStatus,
        output: Option<&str>,
        ttl_only: bool,
        now: Instant,
    ) -> Result<(), CheckError> {
        let key = (node.to_owned(), id.to_owned());
        let check = self.checks.get_mut(&key).ok_or(CheckError::Unknown)?;
        if ttl_only && check.state.ttl.is_none() {
            return Err(CheckError::NoTtl);
        }
        check.deadline = check.state.ttl.map(|ttl| now + ttl);
        let mut state = check.state.clone();
        state.status = status;
        if let Some(output) = output {
            state.output = output.to_owned();
        }
        if state != check.state {
            let deadline = check.deadline;
            let index = self.bump();
            self.put_check(node, id, state, deadline, index);
        }
        Ok(())
    }

    /// Turns maintenance mode on or off for instance `service_id` on
    /// `node`, or for the node itself when `service_id` is `None`.
    pub(crate) fn set_maintenance(
        &mut self,
        node: &str,
        service_id: Option<&str>,
        reason: Option<&str>,
    ) {
        let (id, name, what, sid) = match service_id {
            Some(s) => (
                format!("{SERVICE_MAINT_PREFIX}{s}"),
                "Service Maintenance Mode",
                "service",
                s,
            ),
            None => (NODE_MAINT.to_owned(), "Node Maintenance Mode", "node", ""),
        };
        let key = (node.to_owned(), id.clone());
        match reason {
            None => {
                if self.checks.remove(&key).is_some() {
                    let index = self.bump();
                    self.touch_check_owner(node, sid, index);
                }
            }
            Some(reason) => {
                let notes = if reason.is_empty() {
                    format!(
                        "Maintenance mode is enabled for this {what}, but no reason was provided. This is a default message."
                    )
                } else {
                    reason.to_owned()
                };
                let state = CheckState {
                    name: name.into(),
                    notes,
                    service_id: sid.to_owned(),
                    kind: MAINTENANCE.into(),
                    interval: String::new(),
                    ttl: None,
                    status: CheckStatus::Critical,
                    output: String::new(),
                };
                if self.checks.get(&key).map(|c| &c.state) != Some(&state) {
                    let index = self.bump();
                    self.put_check(node, &id, state, None, index);
                }
            }
        }
    }

    /// Snapshot restore: every index above `to` drops to `to`.
    pub(crate) fn restore_to(&mut self, to: u64) {
        let to = to.max(1);
        let clamp = |i: &mut u64| *i = (*i).min(to);
        clamp(&mut self.index);
        clamp(&mut self.extinction);
        clamp(&mut self.services_index);
        self.service_indexes.values_mut().for_each(clamp);
        for n in self.nodes.values_mut() {
            clamp(&mut n.create_index);
            clamp(&mut n.modify_index);
        }
        for i in self.instances.values_mut() {
            clamp(&mut i.create_index);
            clamp(&mut i.modify_index);
        }
        for c in self.checks.values_mut() {
            clamp(&mut c.create_index);
            clamp(&mut c.modify_index);
        }
        self.kv.restore_to(to);
        self.restores += 1;
    }

    /// Turns every TTL check whose clock ran out critical; the next
    /// deadline, if any.
    pub(crate) fn expire_ttls(&mut self, now: Instant) -> Option<Instant> {
        let due: Vec<(String, String)> = self
            .checks
            .iter()
            .filter(|(_, c)| c.deadline.is_some_and(|d| d <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for (node, id) in due {
            let Some(check) = self.checks.get_mut(&(node.clone(), id.clone())) else {
                continue;
            };
            check.deadline = None;
            let mut state = check.state.clone();
            state.status = CheckStatus::Critical;
            state.output = if state.output.is_empty() || state.output.starts_with("TTL expired") {
                "TTL expired".to_owned()
            } else {
                format!(
                    "TTL expired (last output before timeout follows): {}",
                    state.output
                )
            };
            if state != check.state {
                let index = self.bump();
                self.put_check(&node, &id, state, None, index);
            }
        }
        self.checks.values().filter_map(|c| c.deadline).min()
    }

    fn put_check(
        &mut self,
        node: &str,
        id: &str,
        state: CheckState,
        deadline: Option<Instant>,
        index: u64,
    ) {
        let key = (node.to_owned(), id.to_owned());
        let create_index = self.checks.get(&key).map_or(index, |c| c.create_index);
        let sid = state.service_id.clone();
        self.checks.insert(
            key,
            Check {
                state,
                deadline,
                create_index,
                modify_index: index,
            },
        );
        self.touch_check_owner(node, &sid, index);
    }

    /// A check changed: its service's index moves, or, for a node check,
    /// the index of every service on the node.
    fn touch_check_owner(&mut self, node: &str, service_id: &str, index: u64) {
        let names: Vec<String> = self
            .instances
            .values()
            .filter(|i| i.node == node && (service_id.is_empty() || i.def.id == service_id))
            .map(|i| i.def.name.clone())
            .collect();
        for name in names {
            self.touch_service(node, &name, index);
        }
    }

    fn touch_service(&mut self, node: &str, name: &str, index: u64) {
        let dc = self.datacenter_of(node);
        self.service_indexes
            .insert((dc, name.to_lowercase()), index);
    }

    fn datacenter_of(&self, node: &str) -> String {
        self.nodes
            .get(node)
            .map(|n| n.datacenter.clone())
            .unwrap_or_default()
    }

    /// The index of service `name` in `dc`: its own, or the last
    /// extinction index if it does not exist.
    fn service_index(&self, dc: &str, name: &str) -> u64 {
        self.service_indexes
            .get(&(dc.to_owned(), name.to_lowercase()))
            .copied()
            .unwrap_or(self.extinction)
    }

    /// The instances `q` selects (name case-insensitive, every tag, case-
    /// insensitive), each with its node and checks (node checks first).
    fn select<'a>(&'a self, q: &ServiceQuery<'_>) -> Vec<Selected<'a>> {
        let wanted: Vec<String> = q.tags.iter().map(|t| t.to_lowercase()).collect();
        self.instances
            .values()
            .filter(|i| i.def.name.eq_ignore_ascii_case(q.name))
            .filter(|i| {
                wanted
                    .iter()
                    .all(|w| i.def.tags.iter().any(|t| t.to_lowercase() == *w))
            })
            .filter_map(|i| {
                let node = self.nodes.get(&i.node).filter(|n| n.datacenter == q.dc)?;
                let on_node = self.checks.iter().filter(|((n, _), _)| *n == i.node);
                let node_checks = on_node
                    .clone()
                    .filter(|(_, c)| c.state.service_id.is_empty());
                let own = on_node.filter(|(_, c)| c.state.service_id == i.def.id);
                let checks = node_checks
                    .chain(own)
                    .map(|((_, id), c)| (id.as_str(), c))
                    .collect();
                Some((i, node, checks))
            })
            .collect()
    }

    /// `GET /v1/health/service/:service`.
    pub(crate) fn health(&self, q: &ServiceQuery<'_>, can_read: &dyn Fn(&str) -> bool) -> Listing {
        let mut filtered = false;
        let entries: Vec<Value> = self
            .select(q)
            .into_iter()
            .filter(|(_, _, checks)| {
                !q.passing
                    || checks
                        .iter()
                        .all(|(_, c)| c.state.status == CheckStatus::Passing)
            })
            .filter(|(i, _, _)| {
                let ok = can_read(&i.def.name);
                filtered |= !ok;
                ok
            })
            .map(|(i, node, checks)| {
                let checks: Vec<Value> = checks
                    .iter()
                    .map(|(id, c)| {
                        check_json(node, id, c, (!c.state.service_id.is_empty()).then_some(i))
                    })
                    .collect();
                json!({"Node": node_json(node), "Service": service_json(i), "Checks": checks})
            })
            .collect();
        Listing {
            body: Value::Array(entries),
            index: self.service_index(q.dc, q.name),
            filtered,
        }
    }

    /// `GET /v1/catalog/service/:service`.
    pub(crate) fn catalog_service(
        &self,
        q: &ServiceQuery<'_>,
        can_read: &dyn Fn(&str) -> bool,
    ) -> Listing {
        let mut filtered = false;
        let entries: Vec<Value> = self
            .select(q)
            .into_iter()
            .filter(|(i, _, _)| {
                let ok = can_read(&i.def.name);
                filtered |= !ok;
                ok
            })
            .map(|(i, n, _)| {
                let d = &i.def;
                json!({
                    "ID": n.id,
                    "Node": n.name,
                    "Address": n.address,
                    "Datacenter": n.datacenter,
                    "TaggedAddresses": node_tagged_addresses(n),
                    "NodeMeta": {"consul-network-segment": ""},
                    "ServiceKind": "",
                    "ServiceID": d.id,
                    "ServiceName": d.name,
                    "ServiceTags": d.tags,
                    "ServiceAddress": d.address,
                    "ServiceTaggedAddresses": d.tagged_addresses,
                    "ServiceWeights": {"Passing": d.weights.0, "Warning": d.weights.1},
                    "ServiceMeta": d.meta,
                    "ServicePort": d.port,
                    "ServiceEnableTagOverride": d.enable_tag_override,
                    "ServiceProxy": {"Mode": "", "MeshGateway": {}, "Expose": {}},
                    "ServiceConnect": {},
                    "CreateIndex": i.create_index,
                    "ModifyIndex": i.modify_index,
                })
            })
            .collect();
        Listing {
            body: Value::Array(entries),
            index: self.service_index(q.dc, q.name),
            filtered,
        }
    }

    /// `GET /v1/catalog/services`: each service name in `dc` with the union
    /// of its instances' tags.
    pub(crate) fn services(&self, dc: &str, can_read: &dyn Fn(&str) -> bool) -> Listing {
        let mut map: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut filtered = false;
        for i in self.instances.values() {
            if self.nodes.get(&i.node).is_none_or(|n| n.datacenter != dc) {
                continue;
            }
            if !can_read(&i.def.name) {
                filtered = true;
                continue;
            }
            let tags = map.entry(&i.def.name).or_default();
            for t in &i.def.tags {
                if !tags.contains(&t.as_str()) {
                    tags.push(t);
                }
            }
        }
        Listing {
            body: json!(map),
            index: self.services_index,
            filtered,
        }
    }
}

fn node_tagged_addresses(n: &Node) -> Value {
    let a = &n.address;
    json!({"lan": a, "lan_ipv4": a, "wan": a, "wan_ipv4": a})
}

fn node_json(n: &Node) -> Value {
    json!({
        "ID": n.id,
        "Node": n.name,
        "Address": n.address,
        "Datacenter": n.datacenter,
        "TaggedAddresses": node_tagged_addresses(n),
        "Meta": {"consul-network-segment": ""},
        "CreateIndex": n.create_index,
        "ModifyIndex": n.modify_index,
    })
}

fn service_json(i: &Instance) -> Value {
    let d = &i.def;
    json!({
        "ID": d.id,
        "Service": d.name,
        "Tags": d.tags,
        "Address": d.address,
        "TaggedAddresses": d.tagged_addresses,
        "Meta": d.meta,
        "Port": d.port,
        "Weights": {"Passing": d.weights.0, "Warning": d.weights.1},
        "EnableTagOverride": d.enable_tag_override,
        "Proxy": {"Mode": "", "MeshGateway": {}, "Expose": {}},
        "Connect": {},
        "CreateIndex": i.create_index,
        "ModifyIndex": i.modify_index,
    })
}

fn check_json(node: &Node, id: &str, c: &Check, service: Option<&Instance>) -> Value {
    let s = &c.state;
    let (name, tags) = service.map_or(("", &[][..]), |i| (i.def.name.as_str(), &i.def.tags[..]));
    json!({
        "Node": node.name,
        "CheckID": id,
        "Name": s.name,
        "Status": s.status.as_str(),
        "Notes": s.notes,
        "Output": s.output,
        "ServiceID": s.service_id,
        "ServiceName": name,
        "ServiceTags": tags,
        "Type": s.kind,
        "Interval": s.interval,
        "Timeout": "",
        "ExposedPort": 0,
        "Definition": {},
        "CreateIndex": c.create_index,
        "ModifyIndex": c.modify_index,
    })
}

/// A stable, UUID-shaped node ID derived from the node's name (FNV-1a).
fn node_id(name: &str) -> String {
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in name.bytes() {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    let hex = format!("{h:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

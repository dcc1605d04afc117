//! Naming: from a logical name to live sets of endpoints.
//!
//! This crate owns the [`Namer`] trait (a namer answers a path with a
//! *watchable* name tree), the [`Interpreter`] that binds a path through a
//! dtab, the configured namers under `/#/` and the system namers under `/$/`
//! (Linkerd 1's `ConfiguredNamersInterpreter`), the `/$/inet` resolver with
//! DNS re-resolution ([`inet`]), the `io.l5d.fs` namer ([`fs`]) and the
//! `io.l5d.dnssrv` namer, which polls DNS SRV records ([`dnssrv`]).
//!
//! It knows nothing of HTTP, YAML or load balancing: the router asks for a
//! [`Binding`], keeps it while [`Binding::is_stale`] says no, and hands each
//! bound name's [`AddrVar`] to a client.
//!
//! Everything is a snapshot plus a change signal (`tokio::sync::watch`):
//! reading the current value is a lock-free borrow, and "did anything I
//! depended on change?" is one atomic load per dependency.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use strait_dtab::{Bound, Name, NameTree, Path, State};
use tokio::sync::watch;

pub mod delegate;
pub mod dnssrv;
pub mod fs;
pub mod fs_dtab;
pub mod inet;
pub mod interfaces;
mod interp;
pub mod pathmatch;
pub mod rewrite;
pub mod stored;
#[cfg(test)]
mod testing;
pub mod transform;

pub use interp::{Binding, Interpreter};

/// One address of a concrete name, with its load-balancing weight.
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Relative weight (1.0 unless the namer says otherwise).
    pub weight: f64,
}

impl Endpoint {
    /// An endpoint of weight 1.0.
    pub fn new(addr: SocketAddr) -> Self {
        Endpoint { addr, weight: 1.0 }
    }
}

/// The state of a concrete name's address set (Finagle's `Addr`).
#[derive(Clone, Debug, PartialEq)]
pub enum Addr {
    /// Not known yet.
    Pending,
    /// Known not to exist.
    Neg,
    /// These endpoints (possibly none).
    Bound(Arc<[Endpoint]>),
    /// Resolution failed; the message says why.
    Failed(Arc<str>),
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Pending => f.write_str("pending"),
            Addr::Neg => f.write_str("neg"),
            Addr::Failed(e) => write!(f, "failed: {e}"),
            Addr::Bound(eps) => {
                f.write_str("[")?;
                for (i, e) in eps.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", e.addr)?;
                }
                f.write_str("]")
            }
        }
    }
}

/// A moment a namer reports in its admin state: wall-clock time for
/// people, and a monotonic instant for "how long ago".
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    at: tokio::time::Instant,
    wall: std::time::SystemTime,
}

impl Stamp {
    /// Now.
    pub fn now() -> Stamp {
        Stamp {
            at: tokio::time::Instant::now(),
            wall: std::time::SystemTime::now(),
        }
    }

    /// `{"atMs": <Unix ms>, "agoMs": <ms before now>}`.
    pub fn json(&self, now: tokio::time::Instant) -> serde_json::Value {
        let ms = self
            .wall
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        serde_json::json!({
            "atMs": ms,
            "agoMs": now.saturating_duration_since(self.at).as_millis() as u64,
        })
    }
}

/// Which lookup answer a namer gives for a name with address set `addr`:
/// still pending, negative (a dtab `|` alternative engages), or a bound
/// leaf (whose addresses may be failed or change later).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// No answer yet.
    Pending,
    /// Known not to exist.
    Neg,
    /// A bound leaf.
    Bound,
}

impl Phase {
    /// The phase of `addr`.
    pub fn of(addr: &Addr) -> Phase {
        match addr {
            Addr::Pending => Phase::Pending,
            Addr::Neg => Phase::Neg,
            Addr::Bound(_) | Addr::Failed(_) => Phase::Bound,
        }
    }
}

/// A live address set: the current [`Addr`] and a change signal.
pub type AddrVar = watch::Receiver<Addr>;

/// A bound name whose addresses are live.
pub type BoundName = Bound<AddrVar>;

/// What a namer answers for a path.
pub type LookupTree = NameTree<Name<AddrVar>>;

/// A live lookup answer.
pub type Activity = watch::Receiver<State<LookupTree>>;

/// An address set that never changes.
pub fn const_addr(addr: Addr) -> AddrVar {
    // The receiver keeps the last value after the sender is dropped.
    watch::channel(addr).1
}

/// A lookup answer that never changes.
pub fn const_activity(state: State<LookupTree>) -> Activity {
    watch::channel(state).1
}

/// Entries of a namer's map of live lookups that nobody holds any more,
/// dropped as the map grows rather than only at the namer's next sweep:
/// names come from Host headers, which come from clients, and thousands of
/// one-off names a second must not pile up in the meantime.
///
/// A prune runs when the map has doubled since the last one kept `kept`
/// entries (and is at least [`PRUNE_FLOOR`]), so it costs O(1) per insert,
/// amortized, and the map stays under twice the entries someone holds.
/// `held` may tidy the entry (drop its own unheld parts) before answering;
/// entries it refuses are dropped.
pub fn prune_unheld<K, V>(
    map: &mut std::collections::HashMap<K, V>,
    kept: &mut usize,
    held: impl FnMut(&K, &mut V) -> bool,
) {
    if map.len() >= (*kept * 2).max(PRUNE_FLOOR) {
        map.retain(held);
        *kept = map.len();
    }
}

/// Maps smaller than this are left to the namers' own sweeps.
pub const PRUNE_FLOOR: usize = 64;

/// A configured namer, serving the paths under its prefix (e.g.
/// `/#/io.l5d.fs`).
pub trait Namer: Send + Sync + 'static {
    /// Looks up `path`, the part of the name below `prefix`. Bound ids are
    /// conventionally `prefix` plus the elements the namer consumed; the
    /// rest is the residual.
    fn lookup(&self, prefix: &Path, path: &Path) -> Activity;

    /// What the namer is doing, for `/namer_state/<prefix>.json`.
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// The `Host` that requests to the bound name `prefix ++ id` should
    /// carry instead of their own (Consul's `setHost`); `None` keeps it.
    fn authority(&self, prefix: &Path, id: &Path) -> Option<String> {
        let _ = (prefix, id);
        None
    }
}

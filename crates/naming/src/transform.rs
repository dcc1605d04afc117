//! Transformers: Linkerd 1's post-processing of bound names
//! (`NameTreeTransformer` and the per-host transformers), applied in the
//! order configured, to a namer's answers ([`TransformingNamer`]) or to an
//! interpreter's bound trees ([`apply`], used by
//! [`Interpreter::with_transformers`](crate::Interpreter::with_transformers)).
//!
//! | kind | effect | bound id |
//! | --- | --- | --- |
//! | `io.l5d.port` | every address gets `port` | `/%/io.l5d.port/<port>` ++ id |
//! | `io.l5d.localhost` | keep addresses whose IP is one of this host's | `/%/io.l5d.localhost` ++ id |
//! | `io.l5d.specificHost` | keep addresses whose IP is `host` | `/%/io.l5d.specificHost` ++ id |
//! | `io.l5d.replace` | every bound name becomes `path` (`Neg` stays) | `/%/io.l5d.replace` ++ path |
//! | `io.l5d.const` | the whole tree becomes `path`, even `Neg` | `/%/io.l5d.const` ++ path |
//!
//! A configured `prefix` replaces the part after `/%`. The distinct ids
//! give a transformed client its own metric scope. A filter that leaves no
//! address makes the set `Addr::Neg`; through a [`TransformingNamer`] that
//! is a `Neg` lookup, so a dtab `|` alternative takes over. `replace` and
//! `const` bind `path` with the system namers only (`/$/…`) and no dtab,
//! as Linkerd does.
//!
//! Address sets are live, so a transformed set must follow its source.
//! Each transformed bound name gets a small forwarding task that maps the
//! source's values (and, for `io.l5d.localhost`, the interface list's)
//! into its own `watch` channel, and ends as soon as nobody holds the
//! result (`Sender::closed`). The alternative, a derived type instead of
//! `AddrVar`, would change every consumer of bound names; a task costs a
//! few hundred bytes, wakes only on changes, and lives exactly as long as
//! the binding or client holding it.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use strait_dtab::{Bound, Dtab, Name, NameTree, Path, State, Weighted};
use tokio::sync::{Notify, watch};

use crate::inet::InetResolver;
use crate::interfaces::{REFRESH_INTERVAL, watch_local_ips};
use crate::{Activity, Addr, AddrVar, BoundName, Interpreter, LookupTree, Namer, Phase};

/// What a transformer does.
#[derive(Clone, Debug, PartialEq)]
pub enum TransformerKind {
    /// `io.l5d.port`: every address gets this port.
    Port(u16),
    /// `io.l5d.localhost`: keep addresses whose IP is one of this host's
    /// interface addresses (exact match).
    Localhost,
    /// `io.l5d.specificHost`: keep addresses whose IP is this one.
    SpecificHost(IpAddr),
    /// `io.l5d.replace`: every bound name becomes this (`/$/…`) path;
    /// `Neg`, `Empty` and `Fail` stay.
    Replace(Path),
    /// `io.l5d.const`: the whole tree becomes this (`/$/…`) path.
    Const(Path),
}

impl TransformerKind {
    /// The kind as configured, e.g. `io.l5d.port`.
    pub fn name(&self) -> &'static str {
        match self {
            TransformerKind::Port(_) => "io.l5d.port",
            TransformerKind::Localhost => "io.l5d.localhost",
            TransformerKind::SpecificHost(_) => "io.l5d.specificHost",
            TransformerKind::Replace(_) => "io.l5d.replace",
            TransformerKind::Const(_) => "io.l5d.const",
        }
    }

    /// Linkerd's default prefix (without `/%`): `/<kind>`, and
    /// `/io.l5d.port/<port>` for the port transformer.
    pub fn default_prefix(&self) -> Path {
        match self {
            TransformerKind::Port(p) => Path::utf8(&[self.name(), &p.to_string()]),
            _ => Path::utf8(&[self.name()]),
        }
    }
}

/// A configured transformer, ready to apply. Cheap to clone.
#[derive(Clone)]
pub struct Transformer {
    inner: Arc<Inner>,
}

struct Inner {
    kind: TransformerKind,
    /// `/%` ++ the configured or default prefix.
    prefix: Path,
    inet: InetResolver,
    /// This host's IPs, kept fresh (`io.l5d.localhost` only).
    locals: Option<watch::Receiver<Arc<[IpAddr]>>>,
    /// The bound `path` of `replace` and `const`, bound on first use.
    replacement: OnceLock<NameTree<BoundName>>,
}

impl std::fmt::Debug for Transformer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transformer")
            .field("kind", &self.inner.kind)
            .field("prefix", &self.inner.prefix)
            .finish()
    }
}

impl Transformer {
    /// A transformer of `kind` whose bound ids start with `/%` ++
    /// (`prefix` or the kind's [default](TransformerKind::default_prefix)).
    /// `inet` resolves the `/$/inet` paths of `replace` and `const`.
    pub fn new(kind: TransformerKind, prefix: Option<Path>, inet: &InetResolver) -> Transformer {
        let prefix = Path::utf8(&["%"]).concat(&prefix.unwrap_or_else(|| kind.default_prefix()));
        let locals =
            (kind == TransformerKind::Localhost).then(|| watch_local_ips(REFRESH_INTERVAL));
        Transformer {
            inner: Arc::new(Inner {
                kind,
                prefix,
                inet: inet.clone(),
                locals,
                replacement: OnceLock::new(),
            }),
        }
    }

    /// What it does.
    pub fn kind(&self) -> &TransformerKind {
        &self.inner.kind
    }

    /// The prefix its bound ids get, e.g. `/%/io.l5d.port/4141`.
    pub fn prefix(&self) -> &Path {
        &self.inner.prefix
    }

    /// `tree` transformed (see the module docs).
    pub fn transform(&self, tree: &NameTree<BoundName>) -> NameTree<BoundName> {
        self.transform_notifying(tree, None)
    }

    /// Like [`Transformer::transform`]; `notify` is told when a
    /// transformed address set changes phase (e.g. becomes `Neg`).
    fn transform_notifying(
        &self,
        tree: &NameTree<BoundName>,
        notify: Option<&Arc<Notify>>,
    ) -> NameTree<BoundName> {
        match &self.inner.kind {
            TransformerKind::Replace(_) => replace_leaves(tree, self.replacement()),
            TransformerKind::Const(_) => self.replacement().clone(),
            _ => tree.map(&mut |b: &BoundName| Bound {
                id: self.inner.prefix.concat(&b.id),
                residual: b.residual.clone(),
                addr: self.derive(&b.addr, notify),
                weight: b.weight,
            }),
        }
    }

    /// The bound `path` of `replace`/`const`, ids prefixed.
    fn replacement(&self) -> &NameTree<BoundName> {
        self.inner.replacement.get_or_init(|| {
            let (TransformerKind::Replace(path) | TransformerKind::Const(path)) = &self.inner.kind
            else {
                return NameTree::Neg;
            };
            let system = Interpreter::new(Vec::new(), self.inner.inet.clone());
            match system.bind(&Dtab::empty(), path, 100).state {
                State::Ok(tree) => tree.map(&mut |b: &BoundName| Bound {
                    id: self.inner.prefix.concat(path),
                    residual: b.residual.clone(),
                    addr: b.addr.clone(),
                    weight: b.weight,
                }),
                State::Pending => NameTree::Neg,
                State::Failed(e) => {
                    tracing::warn!("{} {path}: {e}", self.inner.kind.name());
                    NameTree::Fail
                }
            }
        })
    }

    /// A live address set following `src` through this transformer.
    fn derive(&self, src: &AddrVar, notify: Option<&Arc<Notify>>) -> AddrVar {
        let kind = self.inner.kind.clone();
        let mut src = src.clone();
        let mut locals = self.inner.locals.clone();
        let compute =
            move |src: &mut AddrVar, locals: &mut Option<watch::Receiver<Arc<[IpAddr]>>>| {
                let ips: Arc<[IpAddr]> = match locals {
                    Some(l) => l.borrow_and_update().clone(),
                    None => Arc::from([]),
                };
                map_addr(&kind, &src.borrow_and_update(), &ips)
            };
        let (tx, rx) = watch::channel(compute(&mut src, &mut locals));
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return rx;
        };
        let notify = notify.cloned();
        rt.spawn(async move {
            let mut src_open = true;
            loop {
                let locals_changed = async {
                    match &mut locals {
                        Some(l) => l.changed().await.is_ok(),
                        None => std::future::pending().await,
                    }
                };
                let src_changed = async {
                    match src_open {
                        true => src.changed().await.is_ok(),
                        false => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = tx.closed() => return,
                    open = src_changed => src_open = open,
                    open = locals_changed => if !open { locals = None },
                }
                if !src_open && locals.is_none() {
                    return; // Nothing can change any more.
                }
                let next = compute(&mut src, &mut locals);
                let before = Phase::of(&tx.borrow());
                let after = Phase::of(&next);
                tx.send_if_modified(|cur| {
                    let changed = *cur != next;
                    if changed {
                        *cur = next;
                    }
                    changed
                });
                if before != after
                    && let Some(n) = &notify
                {
                    n.notify_one();
                }
            }
        });
        rx
    }
}

/// `addr` through a per-address transformer; a filter that leaves nothing
/// is `Neg`.
fn map_addr(kind: &TransformerKind, addr: &Addr, locals: &[IpAddr]) -> Addr {
    let Addr::Bound(eps) = addr else {
        return addr.clone();
    };
    let keep = |ip: IpAddr| match kind {
        TransformerKind::Localhost => locals.contains(&ip),
        TransformerKind::SpecificHost(host) => ip == *host,
        _ => true,
    };
    let out: Vec<_> = eps
        .iter()
        .filter(|e| keep(e.addr.ip()))
        .map(|e| match kind {
            TransformerKind::Port(port) => crate::Endpoint {
                addr: SocketAddr::new(e.addr.ip(), *port),
                weight: e.weight,
            },
            _ => e.clone(),
        })
        .collect();
    let filters = matches!(
        kind,
        TransformerKind::Localhost | TransformerKind::SpecificHost(_)
    );
    if filters && out.is_empty() {
        Addr::Neg
    } else {
        Addr::Bound(out.into())
    }
}

/// Every leaf of `tree` replaced by `replacement`.
fn replace_leaves(
    tree: &NameTree<BoundName>,
    replacement: &NameTree<BoundName>,
) -> NameTree<BoundName> {
    match tree {
        NameTree::Leaf(_) => replacement.clone(),
        NameTree::Alt(ts) => {
            NameTree::Alt(ts.iter().map(|t| replace_leaves(t, replacement)).collect())
        }
        NameTree::Union(ws) => NameTree::Union(
            ws.iter()
                .map(|w| Weighted::new(w.weight, replace_leaves(&w.tree, replacement)))
                .collect(),
        ),
        NameTree::Neg => NameTree::Neg,
        NameTree::Fail => NameTree::Fail,
        NameTree::Empty => NameTree::Empty,
    }
}

/// `tree` through every transformer, in order (the first configured is
/// applied first, so the last one's prefix is outermost).
pub fn apply(transformers: &[Transformer], tree: NameTree<BoundName>) -> NameTree<BoundName> {
    transformers
        .iter()
        .fold(tree, |t, x| x.transform(&t).simplify())
}

/// `id` without its transformer prefixes (Linkerd's
/// `stripTransformerPrefix`): from `/%/…`, everything before the first
/// `#` or `$` element is dropped.
pub fn strip_prefix(id: &Path) -> Path {
    if id.elems().first().is_none_or(|e| e.as_ref() != b"%") {
        return id.clone();
    }
    let skip = id
        .elems()
        .iter()
        .position(|e| e.as_ref() == b"#" || e.as_ref() == b"$")
        .unwrap_or(id.len());
    id.drop(skip)
}

/// A configured namer whose bound answers go through transformers
/// (a namer's `transformers:`). Answers with unbound paths in them pass
/// unchanged, as in Linkerd.
pub struct TransformingNamer {
    namer: Arc<dyn Namer>,
    transformers: Arc<[Transformer]>,
}

impl TransformingNamer {
    /// `namer` with `transformers` applied in order.
    pub fn new(namer: Arc<dyn Namer>, transformers: Vec<Transformer>) -> TransformingNamer {
        TransformingNamer {
            namer,
            transformers: transformers.into(),
        }
    }

    /// The transformed tree of a lookup answer, if it is fully bound.
    fn transformed(&self, state: &State<LookupTree>, notify: &Arc<Notify>) -> Option<Tree> {
        let State::Ok(tree) = state else { return None };
        let mut t = as_bound(tree)?;
        for x in self.transformers.iter() {
            t = x.transform_notifying(&t, Some(notify)).simplify();
        }
        Some(t)
    }
}

type Tree = NameTree<BoundName>;

impl Namer for TransformingNamer {
    fn lookup(&self, prefix: &Path, path: &Path) -> Activity {
        let mut src = self.namer.lookup(prefix, path);
        let notify = Arc::new(Notify::new());
        let first = src.borrow_and_update().clone();
        let mut cur = self.transformed(&first, &notify);
        let (tx, rx) = watch::channel(visible(&first, cur.as_ref()));
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return rx;
        };
        let this = TransformingNamer {
            namer: Arc::clone(&self.namer),
            transformers: Arc::clone(&self.transformers),
        };
        rt.spawn(async move {
            let mut src_open = true;
            loop {
                let src_changed = async {
                    match src_open {
                        true => src.changed().await.is_ok(),
                        false => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = tx.closed() => return,
                    open = src_changed => {
                        src_open = open;
                        if open {
                            let state = src.borrow_and_update().clone();
                            cur = this.transformed(&state, &notify);
                            tx.send_replace(visible(&state, cur.as_ref()));
                            continue;
                        }
                    }
                    () = notify.notified() => {}
                }
                let state = src.borrow().clone();
                let next = visible(&state, cur.as_ref());
                tx.send_if_modified(|v| {
                    let changed = *v != next;
                    if changed {
                        *v = next;
                    }
                    changed
                });
            }
        });
        rx
    }

    fn state(&self) -> serde_json::Value {
        self.namer.state()
    }

    fn authority(&self, prefix: &Path, id: &Path) -> Option<String> {
        self.namer.authority(prefix, id)
    }
}

/// What a transforming namer answers: the source answer when it was not
/// transformed; else the transformed tree with every `Neg` address set
/// as a `Neg` branch, and `Pending` while any set is pending.
fn visible(src: &State<LookupTree>, tree: Option<&Tree>) -> State<LookupTree> {
    let Some(tree) = tree else {
        return src.clone();
    };
    let mut pending = false;
    let out = leaves_by_phase(tree, &mut pending).simplify();
    if pending {
        State::Pending
    } else {
        State::Ok(out)
    }
}

fn leaves_by_phase(tree: &Tree, pending: &mut bool) -> LookupTree {
    match tree {
        NameTree::Leaf(b) => match Phase::of(&b.addr.borrow()) {
            Phase::Neg => NameTree::Neg,
            Phase::Pending => {
                *pending = true;
                NameTree::Neg
            }
            Phase::Bound => NameTree::Leaf(Name::Bound(b.clone())),
        },
        NameTree::Alt(ts) => {
            NameTree::Alt(ts.iter().map(|t| leaves_by_phase(t, pending)).collect())
        }
        NameTree::Union(ws) => NameTree::Union(
            ws.iter()
                .map(|w| Weighted::new(w.weight, leaves_by_phase(&w.tree, pending)))
                .collect(),
        ),
        NameTree::Neg => NameTree::Neg,
        NameTree::Fail => NameTree::Fail,
        NameTree::Empty => NameTree::Empty,
    }
}

/// `tree` if every leaf is bound.
fn as_bound(tree: &LookupTree) -> Option<Tree> {
    Some(match tree {
        NameTree::Leaf(Name::Bound(b)) => NameTree::Leaf(b.clone()),
        NameTree::Leaf(Name::Path(_)) => return None,
        NameTree::Alt(ts) => NameTree::Alt(ts.iter().map(as_bound).collect::<Option<_>>()?),
        NameTree::Union(ws) => NameTree::Union(
            ws.iter()
                .map(|w| as_bound(&w.tree).map(|t| Weighted::new(w.weight, t)))
                .collect::<Option<_>>()?,
        ),
        NameTree::Neg => NameTree::Neg,
        NameTree::Fail => NameTree::Fail,
        NameTree::Empty => NameTree::Empty,
    })
}

#[cfg(test)]
#[path = "transform_tests.rs"]
mod tests;

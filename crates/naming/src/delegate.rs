//! The delegation explainer behind `/delegator.json`: Linkerd 1's
//! `DelegateTree` and `ConfiguredNamersInterpreter.delegate`.
//!
//! [`delegate`] binds a path the way [`Interpreter::bind`] does (dtab, then
//! configured namers, then `/$/` system namers) but records *how*: which
//! dentry rewrote which path into what. It differs from binding on purpose,
//! as Linkerd's does:
//!
//! * every alternative of an `Alt` is explored, not just the first that
//!   answers;
//! * a lookup that fails (a namer error, an unknown `/$/` namer) becomes an
//!   [`DelegateTree::Exception`] node, and a failure inside one branch of a
//!   multi-branch `Alt`/`Union` (such as the depth limit) becomes an
//!   `Exception` node for that branch; the other branches are still shown;
//! * a dentry whose destination is `~` is shown as a `Neg` with an empty path
//!   (`~` in JSON) and is *not* followed by the namers, whereas binding falls
//!   through to the namers when the only matching dentry is `~`;
//! * its own depth limit, [`MAX_DEPTH`], fails the whole explanation with
//!   [`MAX_DEPTH_MESSAGE`] unless a multi-branch `Alt`/`Union` absorbs it.
//!
//! The raw tree is then simplified ([`DelegateTree::simplified`]) and
//! rendered as Linkerd's `DelegateApiHandler` JSON by [`to_json`].
//!
//! Sources: `linkerd/linkerd` `namer/core/.../DelegateTree.scala`,
//! `DefaultInterpreterInitializer.scala` (`delegateLookup`,
//! `delegateBind`), `admin/names/.../DelegateApiHandler.scala`, and the
//! expected JSON of `DelegateApiHandlerTest.scala` / trees of
//! `DelegatorTest.scala`.

use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use serde_json::{Map, Value, json};
use strait_dtab::{Dentry, Dtab, Name, NameTree, Path};

use crate::{Activity, Addr, AddrVar, BoundName, Interpreter};

/// Linkerd's `ConfiguredNamersInterpreter.MaxDepth`: a chain of this many
/// lookups is explained, one more fails.
pub const MAX_DEPTH: usize = 100;

/// The error of a chain of lookups deeper than [`MAX_DEPTH`] (Linkerd's
/// text, verbatim).
pub const MAX_DEPTH_MESSAGE: &str = "Max recursion level reached.";

/// The message of an [`DelegateTree::Exception`] standing for a namer that
/// has not answered yet (only [`delegate`] makes these; Linkerd waits).
pub const PENDING_MESSAGE: &str = "Pending: the namer has not answered yet";

/// How many lookups one explanation may make in all (not in Linkerd, which
/// would spin on a dtab such as `/a=>/b|/b;/b=>/a` whose explanation grows
/// exponentially with depth).
pub const MAX_LOOKUPS: usize = 10_000;

/// Linkerd's `Address` metadata key for an endpoint's weight (Finagle's
/// `WeightedAddress`), shown when the weight is not 1.0.
const WEIGHT_KEY: &str = "endpoint_addr_weight";

/// How a path was (or was not) delegated (Linkerd's `DelegateTree`).
///
/// Every node has the path it explains and the dentry that produced it;
/// `dentry` is `None` for nodes that no dentry produced (Linkerd's
/// `Dentry.nop`, omitted from the JSON), such as the root.
#[derive(Clone, Debug, PartialEq)]
pub enum DelegateTree {
    /// Looking `path` up failed with `message` (or, in an `Alt`/`Union`
    /// branch, explaining the branch failed).
    Exception {
        /// The path whose lookup failed.
        path: Path,
        /// The dentry that led to it.
        dentry: Option<Dentry>,
        /// Why.
        message: String,
    },
    /// `$`: exists, but has no endpoints.
    Empty {
        /// The path that was rewritten to `$`.
        path: Path,
        /// The dentry that did it.
        dentry: Option<Dentry>,
    },
    /// `!`: stop, do not fall back.
    Fail {
        /// The path that was rewritten to `!` (or the `/$/fail` path).
        path: Path,
        /// The dentry that did it.
        dentry: Option<Dentry>,
    },
    /// Nothing here. The path is empty when a dentry's own `~` said so, and
    /// the path nothing matched otherwise.
    Neg {
        /// The path nothing matched, or empty for a `~` destination.
        path: Path,
        /// The dentry that led here.
        dentry: Option<Dentry>,
    },
    /// `path` was rewritten, and `tree` explains the result.
    Delegate {
        /// The path that was rewritten.
        path: Path,
        /// The dentry that led to `path`.
        dentry: Option<Dentry>,
        /// What became of it.
        tree: Box<DelegateTree>,
    },
    /// `path` is bound to a concrete name.
    Leaf {
        /// The path the namer bound.
        path: Path,
        /// The dentry that led to `path`.
        dentry: Option<Dentry>,
        /// The bound name, with its live address set.
        bound: BoundName,
    },
    /// Alternatives, all explored, in order.
    Alt {
        /// The path with several explanations.
        path: Path,
        /// The dentry that led to `path`.
        dentry: Option<Dentry>,
        /// Each alternative.
        trees: Vec<DelegateTree>,
    },
    /// A weighted union.
    Union {
        /// The path split into branches.
        path: Path,
        /// The dentry that led to `path`.
        dentry: Option<Dentry>,
        /// Each branch with its weight.
        trees: Vec<(f64, DelegateTree)>,
    },
}

impl DelegateTree {
    /// The path this node explains.
    pub fn path(&self) -> &Path {
        match self {
            DelegateTree::Exception { path, .. }
            | DelegateTree::Empty { path, .. }
            | DelegateTree::Fail { path, .. }
            | DelegateTree::Neg { path, .. }
            | DelegateTree::Delegate { path, .. }
            | DelegateTree::Leaf { path, .. }
            | DelegateTree::Alt { path, .. }
            | DelegateTree::Union { path, .. } => path,
        }
    }

    /// The dentry that produced this node (`None` for Linkerd's no-op).
    pub fn dentry(&self) -> Option<&Dentry> {
        match self {
            DelegateTree::Exception { dentry, .. }
            | DelegateTree::Empty { dentry, .. }
            | DelegateTree::Fail { dentry, .. }
            | DelegateTree::Neg { dentry, .. }
            | DelegateTree::Delegate { dentry, .. }
            | DelegateTree::Leaf { dentry, .. }
            | DelegateTree::Alt { dentry, .. }
            | DelegateTree::Union { dentry, .. } => dentry.as_ref(),
        }
    }

    /// This node with its dentry replaced (Linkerd's `withDentry`).
    pub fn with_dentry(mut self, new: Option<Dentry>) -> DelegateTree {
        match &mut self {
            DelegateTree::Exception { dentry, .. }
            | DelegateTree::Empty { dentry, .. }
            | DelegateTree::Fail { dentry, .. }
            | DelegateTree::Neg { dentry, .. }
            | DelegateTree::Delegate { dentry, .. }
            | DelegateTree::Leaf { dentry, .. }
            | DelegateTree::Alt { dentry, .. }
            | DelegateTree::Union { dentry, .. } => *dentry = new,
        }
        self
    }

    /// Linkerd's `DelegateTree.simplify`:
    ///
    /// * a `Delegate` whose simplified child is not `Neg`/`Fail`/`Empty` and
    ///   has the same path is replaced by that child, carrying the
    ///   `Delegate`'s dentry;
    /// * an empty `Alt`/`Union` is `Neg` (same path and dentry); a
    ///   single-branch one is simplified as a `Delegate` of its branch (the
    ///   weight is dropped);
    /// * an `Alt` child that simplifies to an `Alt` with the parent's path
    ///   has its children spliced into the parent;
    /// * `Union` branches are simplified in place, weights kept; nothing is
    ///   dropped (`Neg`, `Fail` and `Exception` branches stay visible).
    pub fn simplified(&self) -> DelegateTree {
        match self {
            DelegateTree::Delegate { path, dentry, tree } => {
                simplify_delegate(path, dentry, tree.simplified())
            }
            DelegateTree::Alt {
                path,
                dentry,
                trees,
            } => match trees.as_slice() {
                [] => DelegateTree::Neg {
                    path: path.clone(),
                    dentry: dentry.clone(),
                },
                [t] => simplify_delegate(path, dentry, t.simplified()),
                _ => {
                    let mut out = Vec::with_capacity(trees.len());
                    for t in trees {
                        match t.simplified() {
                            DelegateTree::Alt {
                                path: p, trees: ts, ..
                            } if p == *path => out.extend(ts),
                            t => out.push(t),
                        }
                    }
                    DelegateTree::Alt {
                        path: path.clone(),
                        dentry: dentry.clone(),
                        trees: out,
                    }
                }
            },
            DelegateTree::Union {
                path,
                dentry,
                trees,
            } => match trees.as_slice() {
                [] => DelegateTree::Neg {
                    path: path.clone(),
                    dentry: dentry.clone(),
                },
                [(_, t)] => simplify_delegate(path, dentry, t.simplified()),
                _ => DelegateTree::Union {
                    path: path.clone(),
                    dentry: dentry.clone(),
                    trees: trees.iter().map(|(w, t)| (*w, t.simplified())).collect(),
                },
            },
            other => other.clone(),
        }
    }

    /// Visits every bound leaf, left to right.
    pub fn for_each_leaf<'a>(&'a self, f: &mut impl FnMut(&'a BoundName)) {
        match self {
            DelegateTree::Leaf { bound, .. } => f(bound),
            DelegateTree::Delegate { tree, .. } => tree.for_each_leaf(f),
            DelegateTree::Alt { trees, .. } => trees.iter().for_each(|t| t.for_each_leaf(f)),
            DelegateTree::Union { trees, .. } => {
                trees.iter().for_each(|(_, t)| t.for_each_leaf(f));
            }
            DelegateTree::Exception { .. }
            | DelegateTree::Empty { .. }
            | DelegateTree::Fail { .. }
            | DelegateTree::Neg { .. } => {}
        }
    }
}

/// The `Delegate` case of Linkerd's `simplify`, given the simplified child.
fn simplify_delegate(path: &Path, dentry: &Option<Dentry>, child: DelegateTree) -> DelegateTree {
    let collapse = match &child {
        DelegateTree::Neg { .. } | DelegateTree::Fail { .. } | DelegateTree::Empty { .. } => false,
        other => other.path() == path,
    };
    if collapse {
        child.with_dentry(dentry.clone())
    } else {
        DelegateTree::Delegate {
            path: path.clone(),
            dentry: dentry.clone(),
            tree: Box::new(child),
        }
    }
}

/// Explains how `path` binds through `dtab` and `interp`'s namers, as
/// Linkerd's `/delegator.json` does, using each namer's *current* answer.
///
/// A configured namer that has not answered yet shows as an `Exception`
/// node with [`PENDING_MESSAGE`] (Linkerd would wait for it; see
/// [`delegate_within`]); a leaf's address set is shown as it is now.
///
/// Fails with [`MAX_DEPTH_MESSAGE`] when a chain of more than
/// [`MAX_DEPTH`] lookups is not absorbed by a multi-branch `Alt`/`Union`,
/// or when the explanation would need more than [`MAX_LOOKUPS`] lookups.
/// The tree returned is [`DelegateTree::simplified`].
pub fn delegate(interp: &Interpreter, dtab: &Dtab, path: &Path) -> Result<DelegateTree, String> {
    let mut d = Delegator::new(interp, dtab, true);
    match d.run(path)? {
        St::Ok(tree) => Ok(tree.simplified()),
        St::Failed(e) => Err(e),
        // Pending lookups became Exception nodes.
        St::Pending => Err(PENDING_MESSAGE.to_owned()),
    }
}

/// Like [`delegate`], but, as Linkerd does, waits while a configured namer
/// has not answered or a leaf's address set is still pending, up to
/// `within` (Linkerd's admin handler gives up after 2 seconds).
///
/// `Ok(None)` means something was still pending at the deadline: Linkerd
/// answers that with 503 `Request timed out.` ([`delegate`] gives a
/// best-effort tree instead).
pub async fn delegate_within(
    interp: &Interpreter,
    dtab: &Dtab,
    path: &Path,
    within: Duration,
) -> Result<Option<DelegateTree>, String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let mut d = Delegator::new(interp, dtab, false);
        let state = d.run(path)?;
        let mut waits: Vec<Wait> = d.deps.into_iter().map(wait_activity).collect();
        match state {
            St::Failed(e) => return Err(e),
            St::Pending => {}
            St::Ok(tree) => {
                let tree = tree.simplified();
                let mut pending_addrs: Vec<AddrVar> = Vec::new();
                tree.for_each_leaf(&mut |b: &BoundName| {
                    let mut rx = b.addr.clone();
                    if matches!(*rx.borrow_and_update(), Addr::Pending) {
                        pending_addrs.push(rx);
                    }
                });
                if pending_addrs.is_empty() {
                    return Ok(Some(tree));
                }
                waits.extend(pending_addrs.into_iter().map(wait_addr));
            }
        }
        if waits.is_empty() {
            // Nothing it depends on can change.
            return Ok(None);
        }
        if tokio::time::timeout_at(deadline, first_ready(waits))
            .await
            .is_err()
        {
            return Ok(None);
        }
    }
}

type Wait = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Resolves when `rx` changes; never when its sender is gone.
fn wait_activity(mut rx: Activity) -> Wait {
    Box::pin(async move {
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
}

/// Resolves when `rx` changes; never when its sender is gone.
fn wait_addr(mut rx: AddrVar) -> Wait {
    Box::pin(async move {
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
}

/// Resolves when any of `waits` does.
async fn first_ready(mut waits: Vec<Wait>) {
    std::future::poll_fn(move |cx| {
        for w in waits.iter_mut() {
            if w.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await;
}

/// The state of an explanation (Linkerd's `Activity.State`).
enum St {
    Ok(DelegateTree),
    Pending,
    Failed(String),
}

impl St {
    fn map(self, f: impl FnOnce(DelegateTree) -> DelegateTree) -> St {
        match self {
            St::Ok(t) => St::Ok(f(t)),
            other => other,
        }
    }
}

/// Too many lookups: abandons the whole explanation.
struct Abort(String);

impl From<Abort> for String {
    fn from(a: Abort) -> String {
        a.0
    }
}

type Res = Result<St, Abort>;

struct Delegator<'a> {
    interp: &'a Interpreter,
    dtab: &'a Dtab,
    /// Whether a pending namer becomes an `Exception` node (else the whole
    /// explanation is pending, as in Linkerd).
    pending_as_exception: bool,
    /// The configured-namer answers used.
    deps: Vec<Activity>,
    lookups: usize,
}

impl<'a> Delegator<'a> {
    fn new(interp: &'a Interpreter, dtab: &'a Dtab, pending_as_exception: bool) -> Self {
        Delegator {
            interp,
            dtab,
            pending_as_exception,
            deps: Vec::new(),
            lookups: 0,
        }
    }

    /// Linkerd's `delegate(dtab, Leaf(Name.Path(path)))`: the root is a
    /// leaf with the empty path and the no-op dentry, bound at depth 0.
    fn run(&mut self, path: &Path) -> Res {
        self.bind_tree(
            &Path::empty(),
            &None,
            &NameTree::Leaf(Name::Path(path.clone())),
            0,
        )
    }

    /// `value`, bound at `depth` (Linkerd's `delegateBind` on a node with
    /// nothing left to look up: only the depth check applies).
    fn settled(depth: usize, value: DelegateTree) -> St {
        if depth > MAX_DEPTH {
            St::Failed(MAX_DEPTH_MESSAGE.to_owned())
        } else {
            St::Ok(value)
        }
    }

    /// Linkerd's `delegateBind(depth, fromNameTree(path, dentry, tree))`:
    /// every node of a lookup answer carries the looked-up path and the
    /// dentry that produced the answer.
    fn bind_tree(
        &mut self,
        path: &Path,
        dentry: &Option<Dentry>,
        tree: &NameTree<Name<AddrVar>>,
        depth: usize,
    ) -> Res {
        if depth > MAX_DEPTH {
            return Ok(St::Failed(MAX_DEPTH_MESSAGE.to_owned()));
        }
        let node = |t: fn(Path, Option<Dentry>) -> DelegateTree| t(path.clone(), dentry.clone());
        Ok(match tree {
            NameTree::Empty => St::Ok(node(|path, dentry| DelegateTree::Empty { path, dentry })),
            NameTree::Fail => St::Ok(node(|path, dentry| DelegateTree::Fail { path, dentry })),
            // fromNameTree gives a `~` destination the empty path.
            NameTree::Neg => St::Ok(DelegateTree::Neg {
                path: Path::empty(),
                dentry: dentry.clone(),
            }),
            NameTree::Leaf(Name::Bound(b)) => St::Ok(DelegateTree::Leaf {
                path: path.clone(),
                dentry: dentry.clone(),
                bound: b.clone(),
            }),
            NameTree::Leaf(Name::Path(p)) => return self.lookup(dentry, p, depth),
            NameTree::Alt(ts) => match ts.as_slice() {
                [] => St::Ok(node(|path, dentry| DelegateTree::Neg { path, dentry })),
                [t] => self
                    .bind_tree(path, dentry, t, depth)?
                    .map(|t| delegate_node(path, dentry, t)),
                _ => {
                    let mut out = Vec::with_capacity(ts.len());
                    for t in ts {
                        out.push(self.bind_tree(path, dentry, t, depth)?);
                    }
                    collect_alt(path, dentry, out)
                }
            },
            NameTree::Union(ws) => match ws.as_slice() {
                [] => St::Ok(node(|path, dentry| DelegateTree::Neg { path, dentry })),
                [w] => self
                    .bind_tree(path, dentry, &w.tree, depth)?
                    .map(|t| delegate_node(path, dentry, t)),
                _ => {
                    let mut out = Vec::with_capacity(ws.len());
                    for w in ws {
                        out.push((w.weight, self.bind_tree(path, dentry, &w.tree, depth)?));
                    }
                    collect_union(path, dentry, out)
                }
            },
        })
    }

    /// Linkerd's `delegateLookup(dtab, dentry, path)` followed by
    /// `delegateBind(depth + 1, _)`.
    ///
    /// Each matching dentry (last first) explains its own rewrite: none is
    /// a lookup in the namers (whose answer carries `dentry`, the one that
    /// led to `path`), one is a `Delegate`, several are an `Alt`.
    fn lookup(&mut self, dentry: &Option<Dentry>, path: &Path, depth: usize) -> Res {
        self.lookups += 1;
        if self.lookups > MAX_LOOKUPS {
            return Err(Abort(format!(
                "Delegation too large: more than {MAX_LOOKUPS} lookups"
            )));
        }
        let next = depth + 1;
        let matches: Vec<(Dentry, NameTree<Name<AddrVar>>)> = self
            .dtab
            .dentries()
            .iter()
            .rev()
            .filter(|d| d.prefix.matches(path))
            .map(|d| {
                let suffix = path.drop(d.prefix.len());
                let dst = d.dst.map(&mut |p: &Path| Name::Path(p.concat(&suffix)));
                (d.clone(), dst)
            })
            .collect();
        match matches.as_slice() {
            [] => {
                // An empty dtab makes `Interpreter::lookup` skip straight to
                // the configured namers and then the system namers.
                let state = self.interp.lookup(&Dtab::empty(), path, &mut self.deps);
                match state {
                    strait_dtab::State::Ok(NameTree::Neg) => Ok(Self::settled(
                        next,
                        DelegateTree::Neg {
                            path: path.clone(),
                            dentry: dentry.clone(),
                        },
                    )),
                    strait_dtab::State::Ok(tree) => self.bind_tree(path, dentry, &tree, next),
                    strait_dtab::State::Failed(message) => Ok(Self::settled(
                        next,
                        DelegateTree::Exception {
                            path: path.clone(),
                            dentry: dentry.clone(),
                            message,
                        },
                    )),
                    strait_dtab::State::Pending if self.pending_as_exception => Ok(Self::settled(
                        next,
                        DelegateTree::Exception {
                            path: path.clone(),
                            dentry: dentry.clone(),
                            message: PENDING_MESSAGE.to_owned(),
                        },
                    )),
                    strait_dtab::State::Pending => Ok(St::Pending),
                }
            }
            [(d, dst)] => Ok(self
                .bind_tree(path, &Some(d.clone()), dst, next)?
                .map(|t| delegate_node(path, dentry, t))),
            many => {
                // The Alt itself is bound at `next`: too deep fails it whole,
                // before its branches could turn the failure into nodes.
                if next > MAX_DEPTH {
                    return Ok(St::Failed(MAX_DEPTH_MESSAGE.to_owned()));
                }
                let mut out = Vec::with_capacity(many.len());
                for (d, dst) in many {
                    out.push(self.bind_tree(path, &Some(d.clone()), dst, next)?);
                }
                Ok(collect_alt(path, dentry, out))
            }
        }
    }
}

fn delegate_node(path: &Path, dentry: &Option<Dentry>, tree: DelegateTree) -> DelegateTree {
    DelegateTree::Delegate {
        path: path.clone(),
        dentry: dentry.clone(),
        tree: Box::new(tree),
    }
}

/// A failed branch becomes an `Exception` node carrying the parent's path
/// and dentry (Linkerd's `transform { case Failed(e) => Exception(...) }`).
fn branch(path: &Path, dentry: &Option<Dentry>, st: St) -> Option<DelegateTree> {
    match st {
        St::Ok(t) => Some(t),
        St::Failed(message) => Some(DelegateTree::Exception {
            path: path.clone(),
            dentry: dentry.clone(),
            message,
        }),
        St::Pending => None,
    }
}

/// `Activity.collect` of the branches: pending if any is.
fn collect_alt(path: &Path, dentry: &Option<Dentry>, states: Vec<St>) -> St {
    let trees: Option<Vec<DelegateTree>> = states
        .into_iter()
        .map(|s| branch(path, dentry, s))
        .collect();
    match trees {
        Some(trees) => St::Ok(DelegateTree::Alt {
            path: path.clone(),
            dentry: dentry.clone(),
            trees,
        }),
        None => St::Pending,
    }
}

fn collect_union(path: &Path, dentry: &Option<Dentry>, states: Vec<(f64, St)>) -> St {
    let trees: Option<Vec<(f64, DelegateTree)>> = states
        .into_iter()
        .map(|(w, s)| branch(path, dentry, s).map(|t| (w, t)))
        .collect();
    match trees {
        Some(trees) => St::Ok(DelegateTree::Union {
            path: path.clone(),
            dentry: dentry.clone(),
            trees,
        }),
        None => St::Pending,
    }
}

/// Renders `tree` as Linkerd's `DelegateApiHandler` does.
///
/// Every node has `type` (`delegate`, `alt`, `union`, `leaf`, `neg`,
/// `fail`, `exception`, `empty`), `path` (shown) and, unless no dentry
/// produced it, `dentry: {prefix, dst}` (shown); then `delegate`, `alt`,
/// `union: [{weight, tree}]`, `bound` or `message`. A `Neg` with the empty
/// path shows `~`; a `Fail` shows `!` unless its path is under `/$/fail`.
/// A leaf's `bound` is `{addr, id, path}` where `path` is the residual and
/// `addr` the address set *now*: `{type: bound, addrs: [{ip, port, meta}],
/// meta}`, `{type: neg}`, `{type: failed, cause}` or `{type: pending}`.
///
/// Keys are inserted in Linkerd's order; whether they stay in that order
/// depends on serde_json's `preserve_order` feature.
pub fn to_json(tree: &DelegateTree) -> Value {
    let mut obj = Map::new();
    let (kind, shown_path) = match tree {
        DelegateTree::Exception { path, .. } => ("exception", path.show()),
        DelegateTree::Empty { path, .. } => ("empty", path.show()),
        DelegateTree::Fail { path, .. } => ("fail", show_fail_path(path)),
        DelegateTree::Neg { path, .. } => (
            "neg",
            if path.is_empty() {
                "~".to_owned()
            } else {
                path.show()
            },
        ),
        DelegateTree::Delegate { path, .. } => ("delegate", path.show()),
        DelegateTree::Leaf { path, .. } => ("leaf", path.show()),
        DelegateTree::Alt { path, .. } => ("alt", path.show()),
        DelegateTree::Union { path, .. } => ("union", path.show()),
    };
    obj.insert("type".into(), kind.into());
    obj.insert("path".into(), shown_path.into());
    if let Some(d) = tree.dentry().filter(|d| !is_nop(d)) {
        obj.insert(
            "dentry".into(),
            json!({"prefix": d.prefix.show(), "dst": d.dst.show()}),
        );
    }
    match tree {
        DelegateTree::Exception { message, .. } => {
            obj.insert("message".into(), message.as_str().into());
        }
        DelegateTree::Delegate { tree, .. } => {
            obj.insert("delegate".into(), to_json(tree));
        }
        DelegateTree::Leaf { bound, .. } => {
            let mut b = Map::new();
            b.insert("addr".into(), addr_json(&bound.addr.borrow()));
            b.insert("id".into(), bound.id.show().into());
            b.insert("path".into(), bound.residual.show().into());
            obj.insert("bound".into(), Value::Object(b));
        }
        DelegateTree::Alt { trees, .. } => {
            obj.insert("alt".into(), trees.iter().map(to_json).collect());
        }
        DelegateTree::Union { trees, .. } => {
            let branches = trees
                .iter()
                .map(|(w, t)| {
                    let mut o = Map::new();
                    o.insert("weight".into(), number(*w));
                    o.insert("tree".into(), to_json(t));
                    Value::Object(o)
                })
                .collect();
            obj.insert("union".into(), branches);
        }
        DelegateTree::Empty { .. } | DelegateTree::Fail { .. } | DelegateTree::Neg { .. } => {}
    }
    Value::Object(obj)
}

/// `!`, unless the path is under `/$/fail` (then the path itself).
fn show_fail_path(path: &Path) -> String {
    let under_fail = matches!(path.elems(), [a, b, ..] if &a[..] == b"$" && &b[..] == b"fail");
    if under_fail {
        path.show()
    } else {
        "!".to_owned()
    }
}

/// Whether `d` is equivalent to Linkerd's `Dentry.nop` (`/=>~`), which the
/// JSON omits, as Linkerd compares with `Dentry.equiv`.
fn is_nop(d: &Dentry) -> bool {
    d.prefix.is_empty() && d.dst.simplify() == NameTree::Neg
}

fn number(w: f64) -> Value {
    serde_json::Number::from_f64(w).map_or(Value::Null, Value::Number)
}

fn addr_json(addr: &Addr) -> Value {
    match addr {
        Addr::Pending => json!({"type": "pending"}),
        Addr::Neg => json!({"type": "neg"}),
        Addr::Failed(cause) => json!({"type": "failed", "cause": &**cause}),
        Addr::Bound(eps) => {
            let mut addrs: Vec<Value> = Vec::with_capacity(eps.len());
            for e in eps.iter() {
                let mut meta = Map::new();
                if e.weight != 1.0 {
                    meta.insert(WEIGHT_KEY.into(), number(e.weight));
                }
                let mut a = Map::new();
                a.insert("ip".into(), java_host_address(&e.addr).into());
                a.insert("port".into(), e.addr.port().into());
                a.insert("meta".into(), Value::Object(meta));
                let a = Value::Object(a);
                // Linkerd keeps the addresses in a set.
                if !addrs.contains(&a) {
                    addrs.push(a);
                }
            }
            let mut o = Map::new();
            o.insert("type".into(), "bound".into());
            o.insert("addrs".into(), Value::Array(addrs));
            o.insert("meta".into(), Value::Object(Map::new()));
            Value::Object(o)
        }
    }
}

/// Java's `InetAddress.getHostAddress`: dotted IPv4; IPv6 as eight
/// uncompressed lowercase hex groups (`0:0:0:0:0:0:0:1`) with `%scope`
/// when scoped; IPv4-mapped IPv6 addresses as IPv4 (Java reads them so).
fn java_host_address(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => {
            if let Some(v4) = a.ip().to_ipv4_mapped() {
                return IpAddr::V4(v4).to_string();
            }
            let mut s = java_ipv6(a.ip());
            if a.scope_id() != 0 {
                s.push('%');
                s.push_str(&a.scope_id().to_string());
            }
            s
        }
    }
}

fn java_ipv6(ip: &Ipv6Addr) -> String {
    ip.segments()
        .iter()
        .map(|s| format!("{s:x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use strait_dtab::{Bound, State, Weighted};

    use super::*;
    use crate::inet::InetResolver;
    use crate::{Endpoint, LookupTree, Namer, const_activity, const_addr};

    /// Answers by the first element below its prefix: `ok` binds (id =
    /// prefix/ok, residual = the rest, address 10.0.0.1:80), `neg` is Neg,
    /// `fail` fails, `pending` never answers, `rewrite` answers the path
    /// `/rewritten` ++ rest; anything else is Neg.
    struct FakeNamer;

    impl Namer for FakeNamer {
        fn lookup(&self, prefix: &Path, path: &Path) -> Activity {
            let first = path.elems().first().map(|e| e.to_vec());
            let state: State<LookupTree> = match first.as_deref() {
                Some(b"ok") => State::Ok(NameTree::Leaf(Name::Bound(Bound::new(
                    prefix.concat(&path.take(1)),
                    path.drop(1),
                    const_addr(Addr::Bound(Arc::from([Endpoint::new(
                        "10.0.0.1:80".parse().unwrap(),
                    )]))),
                )))),
                Some(b"fail") => State::Failed(format!("fake failure for {path}")),
                Some(b"pending") => State::Pending,
                Some(b"rewrite") => State::Ok(NameTree::Leaf(Name::Path(
                    Path::read("/rewritten").unwrap().concat(&path.drop(1)),
                ))),
                _ => State::Ok(NameTree::Neg),
            };
            const_activity(state)
        }
    }

    /// Linkerd's test `ErrorNamer`: every lookup fails with
    /// `error naming <full path>`.
    struct ErrorNamer;

    impl Namer for ErrorNamer {
        fn lookup(&self, prefix: &Path, path: &Path) -> Activity {
            const_activity(State::Failed(format!(
                "error naming {}",
                prefix.concat(path)
            )))
        }
    }

    fn p(s: &str) -> Path {
        Path::read(s).unwrap()
    }

    fn d(s: &str) -> Option<Dentry> {
        Some(Dentry::read(s).unwrap())
    }

    fn dtab(s: &str) -> Dtab {
        Dtab::read(s).unwrap()
    }

    fn bare() -> Interpreter {
        Interpreter::new(vec![], InetResolver::default())
    }

    fn with_fake() -> Interpreter {
        Interpreter::new(
            vec![(p("/#/io.l5d.fake"), Arc::new(FakeNamer) as Arc<dyn Namer>)],
            InetResolver::default(),
        )
    }

    fn neg(path: &str, dentry: Option<Dentry>) -> DelegateTree {
        DelegateTree::Neg {
            path: p(path),
            dentry,
        }
    }

    fn leaf_id(t: &DelegateTree) -> String {
        match t {
            DelegateTree::Leaf { bound, .. } => bound.id.show(),
            other => panic!("expected a leaf, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn rewrite_chain_to_inet_is_delegate_then_leaf_with_each_dentry() {
        let t = delegate(
            &bare(),
            &dtab("/svc=>/host;/host/web=>/$/inet/127.0.0.1/8080"),
            &p("/svc/web/x"),
        )
        .unwrap();
        let DelegateTree::Delegate { path, dentry, tree } = &t else {
            panic!("root must be a Delegate: {t:?}")
        };
        assert_eq!(*path, p("/svc/web/x"), "the root shows the requested path");
        assert_eq!(*dentry, None, "the root has the no-op dentry");
        let DelegateTree::Delegate { path, dentry, tree } = &**tree else {
            panic!("a single-match rewrite is a Delegate: {tree:?}")
        };
        assert_eq!(*path, p("/host/web/x"));
        assert_eq!(
            *dentry,
            d("/svc=>/host"),
            "a node carries the dentry that produced its path"
        );
        let DelegateTree::Leaf {
            path,
            dentry,
            bound,
        } = &**tree
        else {
            panic!("the system namer binds: {tree:?}")
        };
        assert_eq!(*path, p("/$/inet/127.0.0.1/8080/x"));
        assert_eq!(
            *dentry,
            d("/host/web=>/$/inet/127.0.0.1/8080"),
            "a system-namer answer carries the dentry that led to the looked-up path"
        );
        assert_eq!(bound.id, p("/$/inet/127.0.0.1/8080"));
        assert_eq!(bound.residual, p("/x"));
    }

    #[tokio::test]
    async fn alt_explores_every_alternative_even_after_one_binds() {
        let d_a = d("/a=>/$/inet/127.0.0.1/1 | /$/inet/127.0.0.1/2 | /nowhere");
        let t = delegate(
            &bare(),
            &dtab("/a=>/$/inet/127.0.0.1/1 | /$/inet/127.0.0.1/2 | /nowhere"),
            &p("/a"),
        )
        .unwrap();
        let DelegateTree::Alt {
            path,
            dentry,
            trees,
        } = &t
        else {
            panic!("a Delegate of an Alt with the same path collapses into the Alt: {t:?}")
        };
        assert_eq!(*path, p("/a"));
        assert_eq!(
            *dentry, None,
            "the collapsed Alt takes the Delegate's (root, no-op) dentry"
        );
        assert_eq!(trees.len(), 3, "every alternative is explored: {trees:?}");
        assert_eq!(leaf_id(&trees[0]), "/$/inet/127.0.0.1/1");
        assert_eq!(
            trees[0].dentry(),
            d_a.as_ref(),
            "branches keep their dentry"
        );
        assert_eq!(
            leaf_id(&trees[1]),
            "/$/inet/127.0.0.1/2",
            "later alternatives are explored although the first bound"
        );
        assert_eq!(
            trees[2],
            neg("/nowhere", d_a),
            "an unmatched alternative is a Neg with its path"
        );
    }

    #[tokio::test]
    async fn every_matching_dentry_is_an_alternative_last_first() {
        let t = delegate(&bare(), &dtab("/a=>/x;/a=>/y"), &p("/a/b")).unwrap();
        assert_eq!(
            t,
            DelegateTree::Alt {
                path: p("/a/b"),
                dentry: None,
                trees: vec![neg("/y/b", d("/a=>/y")), neg("/x/b", d("/a=>/x"))],
            },
            "several matching dentries make an Alt carrying the incoming dentry, \
             each branch its own dentry, last dentry first"
        );
    }

    #[tokio::test]
    async fn failing_namer_inside_alt_is_an_exception_and_exploration_continues() {
        let d_s = d("/s=>/#/io.l5d.fake/fail | /#/io.l5d.fake/ok | /#/io.l5d.fake/pending");
        let t = delegate(
            &with_fake(),
            &dtab("/s=>/#/io.l5d.fake/fail | /#/io.l5d.fake/ok | /#/io.l5d.fake/pending"),
            &p("/s/z"),
        )
        .unwrap();
        let DelegateTree::Alt { trees, .. } = &t else {
            panic!("{t:?}")
        };
        assert_eq!(
            trees[0],
            DelegateTree::Exception {
                path: p("/#/io.l5d.fake/fail/z"),
                dentry: d_s.clone(),
                message: "fake failure for /fail/z".into(),
            },
            "a failed lookup is an Exception node with the looked-up path"
        );
        assert_eq!(
            leaf_id(&trees[1]),
            "/#/io.l5d.fake/ok",
            "exploration continues after an Exception"
        );
        assert_eq!(
            trees[2],
            DelegateTree::Exception {
                path: p("/#/io.l5d.fake/pending/z"),
                dentry: d_s,
                message: PENDING_MESSAGE.into(),
            },
            "a pending namer is shown as an Exception by the synchronous explainer"
        );
        let DelegateTree::Leaf { bound, .. } = &trees[1] else {
            unreachable!()
        };
        assert_eq!(bound.residual, p("/z"));
        assert_eq!(
            to_json(&t)["alt"][0]["message"],
            "fake failure for /fail/z",
            "an exception shows its message"
        );
    }

    #[tokio::test]
    async fn namer_neg_shows_the_looked_up_path_and_namer_paths_are_looked_up_again() {
        let interp = with_fake();
        let t = delegate(&interp, &dtab("/s=>/#/io.l5d.fake/neg"), &p("/s")).unwrap();
        assert_eq!(
            t,
            delegate_node(
                &p("/s"),
                &None,
                neg("/#/io.l5d.fake/neg", d("/s=>/#/io.l5d.fake/neg"))
            ),
            "a Neg answer from every namer is a Neg with the looked-up path"
        );
        let t = delegate(&interp, &dtab("/s=>/#/io.l5d.fake/rewrite/q"), &p("/s")).unwrap();
        assert_eq!(
            t,
            delegate_node(
                &p("/s"),
                &None,
                neg("/rewritten/q", d("/s=>/#/io.l5d.fake/rewrite/q"))
            ),
            "a namer answering a path is looked up again, the next node keeping \
             the dentry that led to the namer"
        );
    }

    #[tokio::test]
    async fn union_branches_keep_their_weights() {
        let t = delegate(
            &bare(),
            &dtab("/u=>0.25*/$/inet/127.0.0.1/1 & 0.75*/nope & /$/fail"),
            &p("/u"),
        )
        .unwrap();
        let DelegateTree::Union { trees, .. } = &t else {
            panic!("a Delegate of a Union with the same path collapses into it: {t:?}")
        };
        let weights: Vec<f64> = trees.iter().map(|(w, _)| *w).collect();
        assert_eq!(weights, [0.25, 0.75, 1.0], "union weights are kept");
        assert!(
            matches!(trees[1].1, DelegateTree::Neg { .. })
                && matches!(trees[2].1, DelegateTree::Fail { .. }),
            "Neg and Fail branches are not dropped: {trees:?}"
        );
        let js = to_json(&t);
        assert_eq!(js["type"], "union");
        assert_eq!(
            js["union"][0]["weight"], 0.25,
            "JSON union branches carry `weight`"
        );
        assert_eq!(js["union"][0]["tree"]["type"], "leaf");
        assert_eq!(
            js["union"][2]["tree"]["path"], "/$/fail",
            "a /$/fail path is shown"
        );
    }

    #[tokio::test]
    async fn depth_limit_fails_the_whole_explanation() {
        let err = delegate(&bare(), &dtab("/a=>/b;/b=>/a"), &p("/a")).unwrap_err();
        assert_eq!(err, MAX_DEPTH_MESSAGE, "a loop runs into the depth limit");

        // 100 lookups in a chain are allowed (99 dentry rewrites, then the
        // /$/inet lookup), the 101st fails.
        let mut entries: Vec<String> = (0..98).map(|i| format!("/p{i}=>/p{}", i + 1)).collect();
        entries.push("/p98=>/$/inet/127.0.0.1/1".into());
        let chain = dtab(&entries.join(";"));
        let t = delegate(&bare(), &chain, &p("/p0")).expect("100 lookups are within the limit");
        let mut leaves = 0;
        t.for_each_leaf(&mut |_| leaves += 1);
        assert_eq!(leaves, 1);
        let longer = chain.concat(&dtab("/pre=>/p0"));
        assert_eq!(
            delegate(&bare(), &longer, &p("/pre")).unwrap_err(),
            MAX_DEPTH_MESSAGE,
            "the 101st lookup fails"
        );
    }

    #[tokio::test]
    async fn depth_failure_inside_a_multi_branch_alt_is_an_exception_node() {
        let t = delegate(&bare(), &dtab("/a=>/b | /c;/b=>/a"), &p("/a")).unwrap();
        let mut exceptions = Vec::new();
        fn walk<'a>(t: &'a DelegateTree, out: &mut Vec<&'a DelegateTree>) {
            match t {
                DelegateTree::Exception { .. } => out.push(t),
                DelegateTree::Delegate { tree, .. } => walk(tree, out),
                DelegateTree::Alt { trees, .. } => trees.iter().for_each(|t| walk(t, out)),
                DelegateTree::Union { trees, .. } => trees.iter().for_each(|(_, t)| walk(t, out)),
                _ => {}
            }
        }
        walk(&t, &mut exceptions);
        assert_eq!(exceptions.len(), 1, "{t:?}");
        assert!(
            matches!(exceptions[0], DelegateTree::Exception { message, .. } if message == MAX_DEPTH_MESSAGE),
            "a branch that runs too deep becomes an Exception inside the Alt"
        );
    }

    #[tokio::test]
    async fn exponential_explanations_are_cut_off() {
        let err = delegate(&bare(), &dtab("/a=>/b | /b;/b=>/a"), &p("/a")).unwrap_err();
        assert!(err.starts_with("Delegation too large"), "{err}");
    }

    #[tokio::test]
    async fn explicit_neg_dentry_is_not_followed_by_namers() {
        // Binding would fall through to /$/inet here (a sole `~` match is
        // exactly Neg); Linkerd's explainer shows the `~`.
        let t = delegate(&bare(), &dtab("/$/inet=>~"), &p("/$/inet/127.0.0.1/1")).unwrap();
        assert_eq!(
            t,
            delegate_node(&p("/$/inet/127.0.0.1/1"), &None, neg("/", d("/$/inet=>~"))),
            "a dentry's own ~ is a Neg with the empty path"
        );
        assert_eq!(
            to_json(&t)["delegate"]["path"],
            "~",
            "an empty Neg path shows as ~"
        );
    }

    #[tokio::test]
    async fn unmatched_root_is_a_bare_neg_and_system_path_a_bare_leaf() {
        // DelegatorTest "explain neg delegation".
        let t = delegate(&bare(), &Dtab::empty(), &p("/nope")).unwrap();
        assert_eq!(t, neg("/nope", None), "nothing matches: Neg(path, nop)");
        assert_eq!(to_json(&t), json!({"type": "neg", "path": "/nope"}));
        let t = delegate(&bare(), &Dtab::empty(), &p("/$/inet/127.0.0.1/80")).unwrap();
        assert_eq!(
            leaf_id(&t),
            "/$/inet/127.0.0.1/80",
            "a system path binds at the root"
        );
        assert_eq!(t.dentry(), None);
    }

    #[tokio::test]
    async fn unknown_system_namer_is_an_exception() {
        let t = delegate(&bare(), &dtab("/x=>/$/io.l5d.nope/a"), &p("/x")).unwrap();
        let DelegateTree::Delegate { tree, .. } = &t else {
            panic!("{t:?}")
        };
        assert_eq!(
            **tree,
            DelegateTree::Exception {
                path: p("/$/io.l5d.nope/a"),
                dentry: d("/x=>/$/io.l5d.nope/a"),
                message: "Unknown namer: io.l5d.nope for path: /$/io.l5d.nope/a".into(),
            }
        );
    }

    #[tokio::test]
    async fn dentry_fail_shows_bang_and_empty_shows_path() {
        let t = delegate(&bare(), &dtab("/f=>!;/e=>$"), &p("/f")).unwrap();
        assert_eq!(
            to_json(&t),
            json!({"type": "delegate", "path": "/f", "delegate":
                {"type": "fail", "path": "!", "dentry": {"prefix": "/f", "dst": "!"}}}),
            "a Fail outside /$/fail shows `!`"
        );
        let t = delegate(&bare(), &dtab("/f=>!;/e=>$"), &p("/e/x")).unwrap();
        assert_eq!(
            to_json(&t),
            json!({"type": "delegate", "path": "/e/x", "delegate":
                {"type": "empty", "path": "/e/x", "dentry": {"prefix": "/e", "dst": "$"}}}),
        );
    }

    #[test]
    fn simplify_splices_same_path_alts_and_collapses_single_branches() {
        let inner = DelegateTree::Alt {
            path: p("/a"),
            dentry: d("/a=>/x|/y"),
            trees: vec![neg("/x", None), neg("/y", None)],
        };
        let outer = DelegateTree::Alt {
            path: p("/a"),
            dentry: None,
            trees: vec![neg("/z", None), inner],
        };
        let DelegateTree::Alt { trees, dentry, .. } = outer.simplified() else {
            panic!()
        };
        assert_eq!(dentry, None);
        assert_eq!(
            trees,
            vec![neg("/z", None), neg("/x", None), neg("/y", None)],
            "an Alt child with the parent's path is spliced in"
        );
        let single = DelegateTree::Union {
            path: p("/a"),
            dentry: d("/q=>/a"),
            trees: vec![(
                0.5,
                DelegateTree::Exception {
                    path: p("/a"),
                    dentry: None,
                    message: "m".into(),
                },
            )],
        };
        assert_eq!(
            single.simplified(),
            DelegateTree::Exception {
                path: p("/a"),
                dentry: d("/q=>/a"),
                message: "m".into()
            },
            "a single-branch union is a Delegate, collapsed into a same-path child with the Delegate's dentry"
        );
        let empty = DelegateTree::Alt {
            path: p("/a"),
            dentry: None,
            trees: vec![],
        };
        assert_eq!(empty.simplified(), neg("/a", None), "an empty Alt is Neg");
        let keep = delegate_node(&p("/a"), &None, neg("/a", d("/a=>/b")));
        assert_eq!(
            keep.simplified(),
            keep,
            "a Delegate never collapses into Neg/Fail/Empty"
        );
    }

    #[test]
    fn java_host_addresses() {
        assert_eq!(
            java_host_address(&"127.0.0.1:1".parse().unwrap()),
            "127.0.0.1"
        );
        assert_eq!(
            java_host_address(&"[::1]:1".parse().unwrap()),
            "0:0:0:0:0:0:0:1"
        );
        assert_eq!(
            java_host_address(&"[fe80::a%3]:1".parse().unwrap()),
            "fe80:0:0:0:0:0:0:a%3"
        );
        assert_eq!(
            java_host_address(&"[::ffff:10.0.0.1]:1".parse().unwrap()),
            "10.0.0.1"
        );
    }

    #[test]
    fn nop_dentry_is_omitted_from_json() {
        let t = neg("/x", d("/=>~"));
        assert_eq!(
            to_json(&t),
            json!({"type": "neg", "path": "/x"}),
            "a dentry equivalent to Dentry.nop is omitted, as Linkerd's mkDentry does"
        );
    }

    #[test]
    fn leaf_json_shows_current_addr_state() {
        let leaf = |addr: Addr| DelegateTree::Leaf {
            path: p("/#/n/a"),
            dentry: None,
            bound: Bound::new(p("/#/n/a"), p("/r"), const_addr(addr)),
        };
        let mut weighted = Endpoint::new("10.0.0.2:81".parse().unwrap());
        weighted.weight = 2.0;
        let eps: Arc<[Endpoint]> = Arc::from([
            Endpoint::new("10.0.0.1:80".parse().unwrap()),
            Endpoint::new("10.0.0.1:80".parse().unwrap()),
            weighted,
        ]);
        assert_eq!(
            to_json(&leaf(Addr::Bound(eps))),
            json!({"type": "leaf", "path": "/#/n/a", "bound": {
                "addr": {"type": "bound", "addrs": [
                    {"ip": "10.0.0.1", "port": 80, "meta": {}},
                    {"ip": "10.0.0.2", "port": 81, "meta": {"endpoint_addr_weight": 2.0}}
                ], "meta": {}},
                "id": "/#/n/a", "path": "/r"}}),
            "addresses are a set; a weight shows as endpoint_addr_weight metadata"
        );
        assert_eq!(
            to_json(&leaf(Addr::Neg))["bound"]["addr"],
            json!({"type": "neg"})
        );
        assert_eq!(
            to_json(&leaf(Addr::Pending))["bound"]["addr"],
            json!({"type": "pending"})
        );
        assert_eq!(
            to_json(&leaf(Addr::Failed("boom".into())))["bound"]["addr"],
            json!({"type": "failed", "cause": "boom"})
        );
    }

    /// The dtab and namers of Linkerd's `DelegateApiHandlerTest`.
    fn linkerd_test_setup() -> (Interpreter, Dtab) {
        let interp = Interpreter::new(
            vec![
                (p("/#/test"), Arc::new(FakeNamer) as Arc<dyn Namer>),
                (p("/#/error"), Arc::new(ErrorNamer) as Arc<dyn Namer>),
            ],
            InetResolver::default(),
        );
        let dtab = dtab(
            "
            /beh => /#/error ;
            /bah/humbug => /$/inet/127.1/8080 ;
            /foo => /bah | /beh | /$/fail ;
            /foo => /bar ;
            /boo => /foo ;
            /meh => /heh ;
            /neg => ~ ;
            ",
        );
        (interp, dtab)
    }

    fn expected(s: &str) -> Value {
        serde_json::from_str(&s.replace('\n', "")).unwrap()
    }

    #[tokio::test]
    async fn linkerd_delegate_api_handler_test_delegate_response() {
        let (interp, dtab) = linkerd_test_setup();
        // `127.1` is resolved by the system resolver, so wait for it as
        // Linkerd's handler does.
        let t = delegate_within(&interp, &dtab, &p("/boo/humbug"), Duration::from_secs(10))
            .await
            .unwrap()
            .expect("127.1 resolves");
        let want = expected(
            r#"{
"type":"delegate","path":"/boo/humbug","delegate":{
"type":"alt","path":"/foo/humbug","dentry":{"prefix":"/boo","dst":"/foo"},"alt":[
{"type":"neg","path":"/bar/humbug","dentry":{"prefix":"/foo","dst":"/bar"}},
{"type":"delegate","path":"/bah/humbug",
"dentry":{"prefix":"/foo","dst":"/bah | /beh | /$/fail"},"delegate":{
"type":"leaf","path":"/$/inet/127.1/8080","dentry":{"prefix":"/bah/humbug",
"dst":"/$/inet/127.1/8080"},
"bound":{"addr":{"type":"bound","addrs":[{"ip":"127.0.0.1","port":8080,"meta":{}}],"meta":{}},
"id":"/$/inet/127.1/8080","path":"/"}}},
{"type":"delegate","path":"/beh/humbug",
"dentry":{"prefix":"/foo","dst":"/bah | /beh | /$/fail"},"delegate":{
"type":"exception","path":"/#/error/humbug","dentry":{"prefix":"/beh","dst":"/#/error"},
"message":"error naming /#/error/humbug"}},
{"type":"fail","path":"/$/fail/humbug","dentry":{"prefix":"/foo","dst":"/bah | /beh | /$/fail"}}]}}
"#,
        );
        assert_eq!(
            to_json(&t),
            want,
            "same JSON as Linkerd's DelegateApiHandlerTest `/delegate response`"
        );
    }

    #[tokio::test]
    async fn linkerd_delegate_api_handler_test_neg_cases() {
        let (interp, dtab) = linkerd_test_setup();
        let t = delegate(&interp, &dtab, &p("/meh")).unwrap();
        assert_eq!(
            to_json(&t),
            expected(
                r#"{"type":"delegate","path":"/meh","delegate":{
"type":"neg","path":"/heh","dentry":{"prefix":"/meh","dst":"/heh"}}}"#
            ),
            "DelegateApiHandlerTest `delegates to neg when no matches found`"
        );
        let t = delegate(&interp, &dtab, &p("/neg")).unwrap();
        assert_eq!(
            to_json(&t),
            expected(
                r#"{"type":"delegate","path":"/neg","delegate":{
"type":"neg","path":"~","dentry":{"prefix":"/neg","dst":"~"}}}"#
            ),
            "DelegateApiHandlerTest `delegation for explicit neg is shown`"
        );
    }

    #[tokio::test]
    async fn linkerd_delegator_test_uses_namers_and_explains_alt() {
        // DelegatorTest, with its test namer under /namer (ids = prefix).
        let interp = Interpreter::new(
            vec![(p("/namer"), Arc::new(FakeNamer) as Arc<dyn Namer>)],
            InetResolver::default(),
        );
        let t = delegate(&interp, &dtab("/nah=>/namer"), &p("/nah/ok")).unwrap();
        assert_eq!(
            t,
            delegate_node(
                &p("/nah/ok"),
                &None,
                DelegateTree::Leaf {
                    path: p("/namer/ok"),
                    dentry: d("/nah=>/namer"),
                    bound: Bound::new(p("/namer/ok"), Path::empty(), const_addr(Addr::Pending)),
                }
            ),
            "`uses NamerInterpreter to resolve names`"
        );
        let dt = dtab(
            "/bah/humbug => /$/inet/127.1/8080 ;
             /foo => /bah | /$/fail ;
             /foo => /bar ;
             /boo => /foo ;
             /meh => /heh ;",
        );
        assert_eq!(
            delegate(&interp, &dt, &p("/meh/hey")).unwrap(),
            delegate_node(&p("/meh/hey"), &None, neg("/heh/hey", d("/meh=>/heh"))),
            "`explain delegate delegation`"
        );
        assert_eq!(
            delegate(&interp, &dt, &p("/boo/lol")).unwrap(),
            delegate_node(
                &p("/boo/lol"),
                &None,
                DelegateTree::Alt {
                    path: p("/foo/lol"),
                    dentry: d("/boo=>/foo"),
                    trees: vec![
                        neg("/bar/lol", d("/foo=>/bar")),
                        neg("/bah/lol", d("/foo=>/bah|/$/fail")),
                        DelegateTree::Fail {
                            path: p("/$/fail/lol"),
                            dentry: d("/foo=>/bah|/$/fail"),
                        },
                    ],
                }
            ),
            "`explain alt delegation`"
        );
    }

    #[tokio::test]
    async fn delegate_within_waits_for_pending_namers_and_times_out() {
        let (tx, rx) = tokio::sync::watch::channel(State::Pending);
        struct Slow(Activity);
        impl Namer for Slow {
            fn lookup(&self, _: &Path, _: &Path) -> Activity {
                self.0.clone()
            }
        }
        let interp = Interpreter::new(
            vec![(p("/#/slow"), Arc::new(Slow(rx)) as Arc<dyn Namer>)],
            InetResolver::default(),
        );
        let dt = dtab("/s=>/#/slow");
        assert_eq!(
            delegate_within(&interp, &dt, &p("/s"), Duration::from_millis(20))
                .await
                .unwrap(),
            None,
            "still pending at the deadline: Linkerd's `Request timed out.`"
        );
        let answer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tx.send_replace(State::Ok(NameTree::Union(vec![
                Weighted::new(1.0, NameTree::Empty),
                Weighted::new(2.0, NameTree::Neg),
            ])));
            tx
        });
        let t = delegate_within(&interp, &dt, &p("/s"), Duration::from_secs(10))
            .await
            .unwrap()
            .expect("the namer answers before the deadline");
        let _tx = answer.await.unwrap();
        let DelegateTree::Delegate { tree, .. } = &t else {
            panic!("{t:?}")
        };
        assert!(
            matches!(&**tree, DelegateTree::Union { trees, .. } if trees.len() == 2),
            "the explanation waits for the namer's answer: {tree:?}"
        );
    }
}

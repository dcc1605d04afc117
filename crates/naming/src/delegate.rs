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
#[path = "delegate_tests.rs"]
mod tests;

//! Binding: turning a tree of paths into a tree of bound names by following
//! lookups (Finagle's `Namer.bind`).
//!
//! Finagle's binding is reactive (an `Activity`). Here it is a pure function
//! of the lookup's *current* states: the naming layer re-runs it when a namer
//! it depended on changes, which gives the same answers at each instant.

use std::fmt;

use crate::path::Path;
use crate::tree::{NameTree, Weighted};

/// Finagle's default `namerMaxDepth`.
pub const DEFAULT_MAX_DEPTH: usize = 100;

/// A name a namer has bound to an address source.
///
/// Two bound names are the same name when their ids are equal, as in
/// Finagle (`Name.Bound` equality is by id).
#[derive(Clone, Debug)]
pub struct Bound<A> {
    /// The concrete name, e.g. `/$/inet/127.0.0.1/8080` or
    /// `/#/io.l5d.consul/dc1/web`.
    pub id: Path,
    /// What the namer did not consume.
    pub residual: Path,
    /// The address source (what it is depends on the namer).
    pub addr: A,
    /// The weight of the nearest enclosing union branch, if any
    /// (Finagle's `namer_nametree_weight` address metadata).
    pub weight: Option<f64>,
}

impl<A> Bound<A> {
    /// A bound name without a weight.
    pub fn new(id: Path, residual: Path, addr: A) -> Self {
        Bound {
            id,
            residual,
            addr,
            weight: None,
        }
    }
}

impl<A> PartialEq for Bound<A> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl<A> fmt::Display for Bound<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.id.fmt(f)
    }
}

/// What a lookup answers for a leaf: a path to look up again, or a bound
/// name.
#[derive(Clone, Debug, PartialEq)]
pub enum Name<A> {
    /// An unbound path, bound again through the lookup.
    Path(Path),
    /// A bound name: binding stops here.
    Bound(Bound<A>),
}

impl<A> fmt::Display for Name<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Name::Path(p) => p.fmt(f),
            Name::Bound(b) => b.fmt(f),
        }
    }
}

/// The state of something that may not be known yet (Finagle's
/// `Activity.State`).
#[derive(Clone, Debug, PartialEq)]
pub enum State<T> {
    /// Known.
    Ok(T),
    /// Not known yet.
    Pending,
    /// Failed, with a message.
    Failed(String),
}

impl<T> State<T> {
    /// Maps the `Ok` value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> State<U> {
        match self {
            State::Ok(t) => State::Ok(f(t)),
            State::Pending => State::Pending,
            State::Failed(e) => State::Failed(e),
        }
    }
}

/// The error binding fails with when a chain of lookups is too deep.
pub fn max_depth_message(max_depth: usize) -> String {
    format!("Max recursion level: {max_depth} reached in Namer lookup")
}

/// Binds `tree` through `lookup` (Finagle's `Namer.bind`).
///
/// * A path leaf is looked up, and the answer is bound one level deeper;
///   entering a level deeper than `max_depth` fails with
///   `Max recursion level: N reached in Namer lookup` (so `max_depth`
///   lookups in a chain succeed).
/// * A bound leaf is done; it carries the weight of the nearest enclosing
///   union branch.
/// * `Alt`: alternatives are bound lazily, in order; `Neg` moves on, `Fail`
///   stops with `Fail`, anything else is the answer; a pending or failed
///   alternative makes the whole `Alt` pending or failed.
/// * `Union`: every branch is bound; if any is `Ok`, the simplified union of
///   the `Ok` branches; otherwise the first failure, else pending.
///
/// The result is simplified and contains no `Alt` nodes.
pub fn bind<A, F>(
    lookup: &mut F,
    tree: &NameTree<Path>,
    max_depth: usize,
) -> State<NameTree<Bound<A>>>
where
    A: Clone,
    F: FnMut(&Path) -> State<NameTree<Name<A>>>,
{
    let tree = tree.map(&mut |p: &Path| Name::Path(p.clone()));
    Binder { lookup, max_depth }.bind(&tree, 0, None)
}

struct Binder<'f, F> {
    lookup: &'f mut F,
    max_depth: usize,
}

impl<F> Binder<'_, F> {
    fn bind<A>(
        &mut self,
        tree: &NameTree<Name<A>>,
        depth: usize,
        weight: Option<f64>,
    ) -> State<NameTree<Bound<A>>>
    where
        A: Clone,
        F: FnMut(&Path) -> State<NameTree<Name<A>>>,
    {
        if depth > self.max_depth {
            return State::Failed(max_depth_message(self.max_depth));
        }
        match tree {
            NameTree::Leaf(Name::Path(path)) => match (self.lookup)(path) {
                State::Ok(next) => self.bind(&next, depth + 1, weight),
                State::Pending => State::Pending,
                State::Failed(e) => State::Failed(e),
            },
            NameTree::Leaf(Name::Bound(b)) => {
                let mut b = b.clone();
                if weight.is_some() {
                    b.weight = weight;
                }
                State::Ok(NameTree::Leaf(b))
            }
            NameTree::Fail => State::Ok(NameTree::Fail),
            NameTree::Neg => State::Ok(NameTree::Neg),
            NameTree::Empty => State::Ok(NameTree::Empty),
            NameTree::Union(ws) => match ws.as_slice() {
                [] => State::Ok(NameTree::Neg),
                [w] => self.bind(&w.tree, depth, Some(w.weight)),
                _ => {
                    let mut oks = Vec::with_capacity(ws.len());
                    let mut failed = None;
                    for w in ws {
                        match self.bind(&w.tree, depth, Some(w.weight)) {
                            State::Ok(t) => oks.push(Weighted::new(w.weight, t)),
                            State::Failed(e) => {
                                failed.get_or_insert(e);
                            }
                            State::Pending => {}
                        }
                    }
                    if !oks.is_empty() {
                        State::Ok(NameTree::Union(oks).simplify())
                    } else if let Some(e) = failed {
                        State::Failed(e)
                    } else {
                        State::Pending
                    }
                }
            },
            NameTree::Alt(ts) => match ts.as_slice() {
                [] => State::Ok(NameTree::Neg),
                [t] => self.bind(t, depth, weight),
                _ => {
                    for t in ts {
                        match self.bind(t, depth, weight) {
                            State::Ok(NameTree::Neg) => continue,
                            other => return other,
                        }
                    }
                    State::Ok(NameTree::Neg)
                }
            },
        }
    }
}

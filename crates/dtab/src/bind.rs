//! Binding: turning a tree of paths into a tree of bound names by following
//! lookups (Finagle's `Namer.bind`).
//!
//! Finagle's binding is reactive (an `Activity`). Here it is a pure function
//! of the lookup's *current* states: the naming layer re-runs it when a namer
//! it depended on changes, which gives the same answers at each instant.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::time::Instant;

use crate::path::Path;
use crate::tree::{NameTree, Weighted};

/// Finagle's default `namerMaxDepth`.
pub const DEFAULT_MAX_DEPTH: usize = 100;

/// The default cap on the name-tree nodes one binding may expand (see
/// [`BindLimits::max_nodes`]).
pub const DEFAULT_MAX_NODES: usize = 10_000;

/// The default cap on the bound leaves one binding may reach (see
/// [`BindLimits::max_leaves`]).
pub const DEFAULT_MAX_LEAVES: usize = 1_000;

/// How often (in nodes expanded) binding reads the clock for its deadline.
const CLOCK_EVERY: usize = 64;

/// Bounds on the work of one binding.
///
/// Finagle has only the depth limit. Depth alone does not bound the work:
/// `/a0=>/a1 & /a1; /a1=>/a2 & /a2; ...` doubles the tree at each level, so
/// 21 dentries (371 bytes) expand into 2^20 leaves. Strait also caps the
/// total size of the trees expanded and the leaves reached, checked as the
/// expansion goes, so that work stops at the cap instead of after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindLimits {
    /// The longest chain of lookups (Finagle's `namerMaxDepth`, 100): one
    /// more fails the branch with [`max_depth_message`], as in Finagle.
    pub max_depth: usize,
    /// The most name-tree nodes binding may expand in all: the starting
    /// tree plus every lookup's answer (each node counted once per time it
    /// is expanded, including branches that end up `Neg` or merged away).
    pub max_nodes: usize,
    /// The most bound leaves binding may reach (each bound leaf is a
    /// concrete name: a client, a pool, metrics).
    pub max_leaves: usize,
    /// When binding must give up, checked every few dozen nodes.
    pub deadline: Option<Instant>,
}

impl Default for BindLimits {
    fn default() -> Self {
        BindLimits {
            max_depth: DEFAULT_MAX_DEPTH,
            max_nodes: DEFAULT_MAX_NODES,
            max_leaves: DEFAULT_MAX_LEAVES,
            deadline: None,
        }
    }
}

impl BindLimits {
    /// The default limits with `max_depth`.
    pub fn with_depth(max_depth: usize) -> Self {
        BindLimits {
            max_depth,
            ..BindLimits::default()
        }
    }
}

/// Why a binding was abandoned as a whole (unlike the depth limit, which
/// fails one branch as Finagle does, and which a union can survive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LimitExceeded {
    /// More name-tree nodes than [`BindLimits::max_nodes`].
    Nodes(usize),
    /// More bound leaves than [`BindLimits::max_leaves`].
    Leaves(usize),
    /// [`BindLimits::deadline`] passed.
    Deadline,
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitExceeded::Nodes(n) => {
                write!(f, "binding too large: more than {n} name tree nodes")
            }
            LimitExceeded::Leaves(n) => {
                write!(f, "binding too large: more than {n} bound names")
            }
            LimitExceeded::Deadline => f.write_str("binding did not finish in time"),
        }
    }
}

impl std::error::Error for LimitExceeded {}

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
///
/// Equal names are equal paths, or bound names with equal ids.
#[derive(Clone, Debug)]
pub enum Name<A> {
    /// An unbound path, bound again through the lookup.
    Path(Path),
    /// A bound name: binding stops here.
    Bound(Bound<A>),
}

impl<A> PartialEq for Name<A> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Name::Path(a), Name::Path(b)) => a == b,
            (Name::Bound(a), Name::Bound(b)) => a == b,
            _ => false,
        }
    }
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

/// Binds `tree` through `lookup` (Finagle's `Namer.bind`), with the
/// default [`BindLimits`] and `max_depth`; a binding over those limits is
/// `Failed` with the limit's message.
///
/// See [`bind_within`].
pub fn bind<A, F>(
    lookup: &mut F,
    tree: &NameTree<Path>,
    max_depth: usize,
) -> State<NameTree<Bound<A>>>
where
    A: Clone,
    F: FnMut(&Path) -> State<NameTree<Name<A>>>,
{
    match bind_within(lookup, tree, &BindLimits::with_depth(max_depth)) {
        Ok(state) => state,
        Err(e) => State::Failed(e.to_string()),
    }
}

/// Binds `tree` through `lookup` (Finagle's `Namer.bind`) within `limits`.
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
/// * `Union`: identical branches are merged first, their weights summed
///   (`/a & /a` is `2*/a`, bound once; see below); every branch is bound;
///   if any is `Ok`, the simplified union of the `Ok` branches; otherwise
///   the first failure, else pending.
///
/// The result is simplified and contains no `Alt` nodes.
///
/// Merging identical branches is not in Finagle, whose `simplify` keeps
/// them. It changes no routing: both branches bind to the same tree at the
/// same instant, a weighted pick between two equal branches of weights `w1`
/// and `w2` is a pick of that tree with weight `w1 + w2`, and the set of
/// bound names (`eval`) is the same. What differs is the weight recorded on
/// the bound leaves (Finagle's `namer_nametree_weight` metadata): the sum,
/// not each branch's own.
///
/// Going over `limits.max_nodes` or `limits.max_leaves`, or past
/// `limits.deadline`, abandons the whole binding at that point with
/// [`LimitExceeded`].
pub fn bind_within<A, F>(
    lookup: &mut F,
    tree: &NameTree<Path>,
    limits: &BindLimits,
) -> Result<State<NameTree<Bound<A>>>, LimitExceeded>
where
    A: Clone,
    F: FnMut(&Path) -> State<NameTree<Name<A>>>,
{
    let tree = tree.map(&mut |p: &Path| Name::Path(p.clone()));
    let mut binder = Binder {
        lookup,
        limits: *limits,
        nodes: 0,
        leaves: 0,
        next_clock: CLOCK_EVERY,
    };
    binder.charge(&tree)?;
    binder.bind(&tree, 0, None)
}

struct Binder<'f, F> {
    lookup: &'f mut F,
    limits: BindLimits,
    /// Nodes expanded so far.
    nodes: usize,
    /// Bound leaves reached so far.
    leaves: usize,
    /// The node count at which the clock is read next.
    next_clock: usize,
}

type Bind<A> = Result<State<NameTree<Bound<A>>>, LimitExceeded>;

impl<F> Binder<'_, F> {
    /// Counts the nodes of `tree`, about to be expanded, stopping as soon
    /// as the count goes over the cap.
    fn charge<T>(&mut self, tree: &NameTree<T>) -> Result<(), LimitExceeded> {
        self.nodes += 1;
        if self.nodes > self.limits.max_nodes {
            return Err(LimitExceeded::Nodes(self.limits.max_nodes));
        }
        if self.nodes >= self.next_clock {
            self.next_clock = self.nodes + CLOCK_EVERY;
            if self.limits.deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(LimitExceeded::Deadline);
            }
        }
        match tree {
            NameTree::Alt(ts) => ts.iter().try_for_each(|t| self.charge(t)),
            NameTree::Union(ws) => ws.iter().try_for_each(|w| self.charge(&w.tree)),
            NameTree::Leaf(_) | NameTree::Neg | NameTree::Fail | NameTree::Empty => Ok(()),
        }
    }

    fn bind<A>(&mut self, tree: &NameTree<Name<A>>, depth: usize, weight: Option<f64>) -> Bind<A>
    where
        A: Clone,
        F: FnMut(&Path) -> State<NameTree<Name<A>>>,
    {
        if depth > self.limits.max_depth {
            return Ok(State::Failed(max_depth_message(self.limits.max_depth)));
        }
        Ok(match tree {
            NameTree::Leaf(Name::Path(path)) => match (self.lookup)(path) {
                State::Ok(next) => {
                    self.charge(&next)?;
                    return self.bind(&next, depth + 1, weight);
                }
                State::Pending => State::Pending,
                State::Failed(e) => State::Failed(e),
            },
            NameTree::Leaf(Name::Bound(b)) => {
                self.leaves += 1;
                if self.leaves > self.limits.max_leaves {
                    return Err(LimitExceeded::Leaves(self.limits.max_leaves));
                }
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
                [w] => return self.bind(&w.tree, depth, Some(w.weight)),
                _ => {
                    let merged = merge_identical(ws);
                    if let [w] = merged.as_slice() {
                        return self.bind(&w.tree, depth, Some(w.weight));
                    }
                    let mut oks = Vec::with_capacity(merged.len());
                    let mut failed = None;
                    for w in &merged {
                        match self.bind(&w.tree, depth, Some(w.weight))? {
                            State::Ok(t) => oks.push(Weighted::new(w.weight, t)),
                            State::Failed(e) => {
                                failed.get_or_insert(e);
                            }
                            State::Pending => {}
                        }
                    }
                    if !oks.is_empty() {
                        State::Ok(union_of_bound(oks))
                    } else if let Some(e) = failed {
                        State::Failed(e)
                    } else {
                        State::Pending
                    }
                }
            },
            NameTree::Alt(ts) => match ts.as_slice() {
                [] => State::Ok(NameTree::Neg),
                [t] => return self.bind(t, depth, weight),
                _ => {
                    for t in ts {
                        match self.bind(t, depth, weight)? {
                            State::Ok(NameTree::Neg) => continue,
                            other => return Ok(other),
                        }
                    }
                    State::Ok(NameTree::Neg)
                }
            },
        })
    }
}

/// `Union(oks).simplify()` for branches that are bound, and so simplified
/// already: only the top level is simplified, without copying the
/// branches again at every level of a deep tree.
fn union_of_bound<A: Clone>(mut oks: Vec<Weighted<Bound<A>>>) -> NameTree<Bound<A>> {
    if oks.len() == 1 {
        // A one-branch union simplifies to its branch, whatever it is.
        return oks.pop().map_or(NameTree::Neg, |w| w.tree);
    }
    oks.retain(|w| !matches!(w.tree, NameTree::Neg | NameTree::Fail));
    match oks.len() {
        0 => NameTree::Neg,
        1 => oks.pop().map_or(NameTree::Neg, |w| w.tree),
        _ => NameTree::Union(oks),
    }
}

/// The branches of a union with identical trees merged into the first of
/// them, weights summed; the order of first appearance is kept. Expected
/// linear time: branches are bucketed by a hash of their tree, and only
/// trees in one bucket are compared.
fn merge_identical<A: Clone>(ws: &[Weighted<Name<A>>]) -> Vec<Weighted<Name<A>>> {
    let mut out: Vec<Weighted<Name<A>>> = Vec::with_capacity(ws.len());
    let mut buckets: HashMap<u64, Vec<usize>> = HashMap::with_capacity(ws.len());
    for w in ws {
        let mut h = DefaultHasher::new();
        hash_tree(&w.tree, &mut h);
        let bucket = buckets.entry(h.finish()).or_default();
        match bucket.iter().find(|&&i| out[i].tree == w.tree) {
            Some(&i) => out[i].weight += w.weight,
            None => {
                bucket.push(out.len());
                out.push(w.clone());
            }
        }
    }
    out
}

/// Hashes what `==` on name trees compares: the shape, paths, bound ids and
/// union weights.
fn hash_tree<A>(t: &NameTree<Name<A>>, h: &mut impl Hasher) {
    match t {
        NameTree::Leaf(Name::Path(p)) => {
            0u8.hash(h);
            p.hash(h);
        }
        NameTree::Leaf(Name::Bound(b)) => {
            1u8.hash(h);
            b.id.hash(h);
        }
        NameTree::Alt(ts) => {
            2u8.hash(h);
            ts.len().hash(h);
            ts.iter().for_each(|t| hash_tree(t, h));
        }
        NameTree::Union(ws) => {
            3u8.hash(h);
            ws.len().hash(h);
            for w in ws {
                // Equal weights have equal bits, but for 0.0 and -0.0.
                (w.weight + 0.0).to_bits().hash(h);
                hash_tree(&w.tree, h);
            }
        }
        NameTree::Neg => 4u8.hash(h),
        NameTree::Fail => 5u8.hash(h),
        NameTree::Empty => 6u8.hash(h),
    }
}

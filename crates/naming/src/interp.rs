//! Linkerd 1's `ConfiguredNamersInterpreter`: the dtab first, then the
//! configured namers (last configured first), then the system namers.

use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use strait_dtab::global::{self, InetAddr};
use strait_dtab::{Bound, Dtab, Name, NameTree, Path, State};

use crate::inet::InetResolver;
use crate::{Activity, BoundName, LookupTree, Namer};

/// Binds paths through a dtab and a set of namers.
#[derive(Clone)]
pub struct Interpreter {
    /// Tried in this order: the reverse of the configuration order.
    namers: Arc<[(Path, Arc<dyn Namer>)]>,
    inet: InetResolver,
}

/// A bound tree, plus what it was computed from.
///
/// The tree stays right until one of the lookups it depended on changes;
/// [`Binding::is_stale`] tells, at the cost of an atomic load per lookup.
/// Address sets inside the bound names change on their own without making
/// the binding stale.
#[derive(Clone, Debug)]
pub struct Binding {
    /// The bound tree: simplified, without `Alt` nodes.
    pub state: State<NameTree<BoundName>>,
    deps: Vec<Activity>,
}

impl Binding {
    /// Whether a lookup this binding used has changed since.
    pub fn is_stale(&self) -> bool {
        self.deps.iter().any(|d| d.has_changed().unwrap_or(false))
    }

    /// Waits until a lookup this binding used changes. Lookups whose
    /// sender is gone can never change and are not waited on; with none
    /// left, this never returns.
    pub async fn changed(&mut self) {
        loop {
            let open: Vec<&mut Activity> = self
                .deps
                .iter_mut()
                .filter(|d| d.has_changed().is_ok())
                .collect();
            if open.is_empty() {
                return std::future::pending().await;
            }
            let waits = open.into_iter().map(|d| Box::pin(d.changed()));
            if first_ready(waits).await.is_ok() {
                return;
            }
            // One sender went away meanwhile: wait on the others.
        }
    }
}

/// The output of whichever future is ready first.
async fn first_ready<F: Future + Unpin>(futs: impl IntoIterator<Item = F>) -> F::Output {
    let mut futs: Vec<F> = futs.into_iter().collect();
    std::future::poll_fn(move |cx| {
        for f in futs.iter_mut() {
            if let Poll::Ready(out) = Pin::new(f).poll(cx) {
                return Poll::Ready(out);
            }
        }
        Poll::Pending
    })
    .await
}

impl Interpreter {
    /// An interpreter over `namers`, given in configuration order as
    /// `(prefix, namer)`; the last configured namer is tried first.
    pub fn new(namers: Vec<(Path, Arc<dyn Namer>)>, inet: InetResolver) -> Self {
        let mut namers = namers;
        namers.reverse();
        Interpreter {
            namers: namers.into(),
            inet,
        }
    }

    /// The `Host` rewrite the namer serving the bound name `id` asks for
    /// (see [`Namer::authority`]).
    pub fn authority(&self, id: &Path) -> Option<String> {
        self.namers
            .iter()
            .find(|(prefix, _)| id.starts_with(prefix))
            .and_then(|(prefix, namer)| namer.authority(prefix, &id.drop(prefix.len())))
    }

    /// The configured namers, in the order they are tried.
    pub fn namers(&self) -> &[(Path, Arc<dyn Namer>)] {
        &self.namers
    }

    /// The `/$/inet` resolver.
    pub fn inet(&self) -> &InetResolver {
        &self.inet
    }

    /// One lookup: `dtab.lookup(path)`; when that is exactly `Neg`, each
    /// configured namer whose prefix starts `path` (a `Neg` answer falls
    /// through to the next, anything else is final); then the system
    /// namers. Configured-namer answers are recorded in `deps`.
    pub fn lookup(&self, dtab: &Dtab, path: &Path, deps: &mut Vec<Activity>) -> State<LookupTree> {
        match dtab.lookup(path) {
            NameTree::Neg => {}
            tree => return State::Ok(tree.map(&mut |p: &Path| Name::Path(p.clone()))),
        }
        for (prefix, namer) in self.namers.iter() {
            if !path.starts_with(prefix) {
                continue;
            }
            let mut act = namer.lookup(prefix, &path.drop(prefix.len()));
            let state = act.borrow_and_update().clone();
            deps.push(act);
            match state {
                State::Ok(NameTree::Neg) => continue,
                other => return other,
            }
        }
        self.system_lookup(path)
    }

    fn system_lookup(&self, path: &Path) -> State<LookupTree> {
        global::lookup(path).map(|tree| {
            tree.map(&mut |name: &Name<InetAddr>| match name {
                Name::Path(p) => Name::Path(p.clone()),
                Name::Bound(b) => Name::Bound(Bound {
                    id: b.id.clone(),
                    residual: b.residual.clone(),
                    addr: self.inet.resolve(&b.addr),
                    weight: b.weight,
                }),
            })
        })
    }

    /// Binds `path` through `dtab` (the router's dtab plus the request's
    /// local dtab) and the namers.
    pub fn bind(&self, dtab: &Dtab, path: &Path, max_depth: usize) -> Binding {
        let mut deps = Vec::new();
        let state = strait_dtab::bind(
            &mut |p: &Path| self.lookup(dtab, p, &mut deps),
            &NameTree::Leaf(path.clone()),
            max_depth,
        );
        Binding { state, deps }
    }
}

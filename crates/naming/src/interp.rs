//! Linkerd 1's `ConfiguredNamersInterpreter`: the dtab first, then the
//! configured namers (last configured first), then the system namers.

use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use strait_dtab::global::{self, InetAddr};
use strait_dtab::{BindLimits, Bound, Dtab, LimitExceeded, Name, NameTree, Path, State};

use crate::inet::InetResolver;
use crate::transform::{self, Transformer};
use crate::{Activity, BoundName, LookupTree, Namer};

/// Binds paths through a dtab and a set of namers.
#[derive(Clone)]
pub struct Interpreter {
    /// Tried in this order: the reverse of the configuration order.
    namers: Arc<[(Path, Arc<dyn Namer>)]>,
    inet: InetResolver,
    /// Applied in order to every bound tree (`interpreter.transformers`).
    transformers: Arc<[Transformer]>,
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
            transformers: Arc::new([]),
        }
    }

    /// This interpreter with `transformers` applied, in order, to every
    /// tree it binds (Linkerd's `interpreter.transformers`): bound ids get
    /// the transformers' `/%/…` prefixes.
    pub fn with_transformers(mut self, transformers: Vec<Transformer>) -> Self {
        self.transformers = transformers.into();
        self
    }

    /// The transformers applied to bound trees, in order.
    pub fn transformers(&self) -> &[Transformer] {
        &self.transformers
    }

    /// The `Host` rewrite the namer serving the bound name `id` asks for
    /// (see [`Namer::authority`]); a transformed id is looked up without
    /// its `/%/…` prefixes.
    pub fn authority(&self, id: &Path) -> Option<String> {
        let id = &transform::strip_prefix(id);
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
    /// local dtab) and the namers, with the default [`BindLimits`] and
    /// `max_depth` (a binding over them is `Failed` with the limit's
    /// message).
    pub fn bind(&self, dtab: &Dtab, path: &Path, max_depth: usize) -> Binding {
        match self.bind_within(dtab, path, &BindLimits::with_depth(max_depth)) {
            Ok(b) => b,
            Err(e) => Binding {
                state: State::Failed(e.to_string()),
                deps: Vec::new(),
            },
        }
    }

    /// Binds `path` through `dtab` and the namers within `limits` (see
    /// [`strait_dtab::bind_within`]): a binding that goes over a cap or
    /// past the deadline is abandoned where it is, and what it looked up
    /// is let go.
    pub fn bind_within(
        &self,
        dtab: &Dtab,
        path: &Path,
        limits: &BindLimits,
    ) -> Result<Binding, LimitExceeded> {
        let mut deps = Vec::new();
        let state = strait_dtab::bind_within(
            &mut |p: &Path| self.lookup(dtab, p, &mut deps),
            &NameTree::Leaf(path.clone()),
            limits,
        )?;
        let state = match self.transformers.is_empty() {
            true => state,
            false => state.map(|t| transform::apply(&self.transformers, t)),
        };
        Ok(Binding { state, deps })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::{Duration, Instant};

    use strait_dtab::{DEFAULT_MAX_LEAVES, DEFAULT_MAX_NODES};

    use super::*;

    /// Each level a union of two paths to the next: 2^levels leaves.
    fn bomb(levels: usize) -> Dtab {
        let mut s = String::from("/svc=>/a0;");
        for i in 0..levels {
            let n = i + 1;
            s.push_str(&format!("/a{i}=>/a{n} & /b{n};/b{i}=>/a{n} & /b{n};"));
        }
        s.push_str(&format!(
            "/a{levels}=>/$/inet/127.0.0.1/8080;/b{levels}=>/$/inet/127.0.0.1/8081"
        ));
        Dtab::read(&s).unwrap()
    }

    #[tokio::test]
    async fn a_dtab_bomb_is_abandoned_at_a_cap() {
        let interp = Interpreter::new(Vec::new(), InetResolver::default());
        let svc = Path::read("/svc/x").unwrap();
        let start = Instant::now();
        let r = interp.bind_within(&bomb(20), &svc, &BindLimits::default());
        assert_eq!(
            r.map(|b| b.state).unwrap_err(),
            LimitExceeded::Leaves(DEFAULT_MAX_LEAVES)
        );
        let limits = BindLimits {
            max_leaves: usize::MAX,
            ..BindLimits::default()
        };
        let r = interp.bind_within(&bomb(20), &svc, &limits);
        assert_eq!(
            r.map(|b| b.state).unwrap_err(),
            LimitExceeded::Nodes(DEFAULT_MAX_NODES)
        );
        assert!(start.elapsed() < Duration::from_secs(1));
        let b = interp.bind(&bomb(20), &svc, 100);
        assert!(
            matches!(&b.state, State::Failed(m) if m.contains("more than 1000 bound names")),
            "{:?}",
            b.state
        );
        assert!(b.deps.is_empty());
    }

    #[tokio::test]
    async fn identical_branches_bind_once() {
        let interp = Interpreter::new(Vec::new(), InetResolver::default());
        let d = Dtab::read("/svc=>/a & /a & /b;/a=>/$/inet/127.0.0.1/1;/b=>/$/inet/127.0.0.1/2")
            .unwrap();
        let b = interp.bind(&d, &Path::read("/svc").unwrap(), 100);
        let State::Ok(t) = &b.state else {
            panic!("{:?}", b.state)
        };
        assert_eq!(t.show(), "2.00*/$/inet/127.0.0.1/1 & /$/inet/127.0.0.1/2");
    }
}

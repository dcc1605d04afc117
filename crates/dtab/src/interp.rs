//! Finagle's `DefaultInterpreter`: a dtab, and the system namers behind it.

use crate::global::{self, InetAddr};
use crate::{BindLimits, Bound, Dtab, LimitExceeded, Name, NameTree, Path, State};

/// One lookup as Finagle's `DefaultInterpreter` does it: `dtab.lookup(path)`,
/// and only when that is exactly `Neg`, the system namers under `/$/`.
///
/// A sole matching dentry `=> ~` therefore falls through to the system
/// namers, while two `~` matches (`Alt(~, ~)`) do not.
pub fn default_lookup(dtab: &Dtab, path: &Path) -> State<NameTree<Name<InetAddr>>> {
    match dtab.lookup(path) {
        NameTree::Neg => global::lookup(path),
        tree => State::Ok(tree.map(&mut |p: &Path| Name::Path(p.clone()))),
    }
}

/// Binds `path` through `dtab` and the system namers (Finagle's
/// `Namer.resolve` before address resolution).
pub fn bind_path(dtab: &Dtab, path: &Path, max_depth: usize) -> State<NameTree<Bound<InetAddr>>> {
    crate::bind(
        &mut |p: &Path| default_lookup(dtab, p),
        &NameTree::Leaf(path.clone()),
        max_depth,
    )
}

/// [`bind_path`] within `limits` (see [`crate::bind_within`]).
pub fn bind_path_within(
    dtab: &Dtab,
    path: &Path,
    limits: &BindLimits,
) -> Result<State<NameTree<Bound<InetAddr>>>, LimitExceeded> {
    crate::bind_within(
        &mut |p: &Path| default_lookup(dtab, p),
        &NameTree::Leaf(path.clone()),
        limits,
    )
}

//! The system namers under `/$/` (Finagle's `Namer.global` plus Linkerd 1's
//! `io.buoyant.*` namers).

use crate::{Name, NameTree, Path, State};

/// The address a system namer binds: a host (empty for the wildcard
/// address) and a port. Resolving the host is the caller's business.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InetAddr {
    /// Host name or IP literal; empty means the unspecified address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `/$/fixedinet`: resolve once and never again.
    pub fixed: bool,
}

/// One lookup of `path` in the system namers.
pub fn lookup(path: &Path) -> State<NameTree<Name<InetAddr>>> {
    let _ = path;
    State::Ok(NameTree::Neg)
}

//! The dtab language of Finagle and Linkerd 1, byte for byte.
//!
//! This crate owns the data model ([`Path`], [`Prefix`], [`NameTree`],
//! [`Dentry`], [`Dtab`]), its parser and canonical printer, [`Dtab::lookup`],
//! [`NameTree::simplify`], [`NameTree::eval`], [`bind`](bind::bind) and the built-in system namers under
//! `/$/` ([`global`]). It does no I/O: DNS, files and Consul belong to
//! `strait-naming` and the namer crates, which feed their current answers
//! into [`bind::bind`] through a lookup function.
//!
//! The behaviour follows Finagle's sources (`NameTreeParsers.scala`,
//! `NameTree.scala`, `DtabBase.scala`, `Namer.scala`) and Linkerd 1's
//! (`ConfiguredNamersInterpreter`, `io.buoyant.*` rewriting namers). Where
//! they differ from their own documentation, the code wins; the places are
//! noted where they occur (weights printed HALF_UP, `#` comments only at
//! token starts, a lone weighted term losing its weight, ...).

mod bind;
mod dtab;
pub mod global;
mod interp;
mod parse;
mod path;
mod tree;

pub use bind::{
    BindLimits, Bound, DEFAULT_MAX_DEPTH, DEFAULT_MAX_LEAVES, DEFAULT_MAX_NODES, LimitExceeded,
    Name, State, bind, bind_within, max_depth_message,
};
pub use dtab::{Dentry, Dtab};
pub use interp::{bind_path, bind_path_within, default_lookup};
pub use parse::{MAX_NESTING, ParseError};
pub use path::{Path, Prefix, PrefixElem, is_showable};
pub use tree::{DEFAULT_WEIGHT, NameTree, Weighted, format_weight};

impl NameTree<Path> {
    /// Parses a name tree (`NameTree.read`).
    pub fn read(s: &str) -> Result<NameTree<Path>, ParseError> {
        parse::parse_tree(s)
    }
}

/// Whether `c` is whitespace as Java's `Character.isWhitespace` (and so the
/// dtab parser) sees it.
pub fn is_dtab_whitespace(c: char) -> bool {
    parse::is_java_whitespace(c)
}

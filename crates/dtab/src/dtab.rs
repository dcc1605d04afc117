//! Dentries (`prefix=>tree`) and dtabs (ordered lists of dentries).

use std::fmt;

use crate::path::{Path, Prefix};
use crate::tree::NameTree;

/// One delegation rule: paths starting with `prefix` are rewritten to `dst`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dentry {
    /// The left side, with optional `*` wildcards.
    pub prefix: Prefix,
    /// The destination tree.
    pub dst: NameTree<Path>,
}

impl Dentry {
    /// A dentry.
    pub fn new(prefix: Prefix, dst: NameTree<Path>) -> Self {
        Dentry { prefix, dst }
    }

    /// Parses one dentry (`Dentry.read`).
    pub fn read(s: &str) -> Result<Dentry, crate::ParseError> {
        crate::parse::parse_dentry(s)
    }

    /// The canonical form, `prefix=>tree` (no spaces round `=>`).
    pub fn show(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Dentry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=>{}", self.prefix, self.dst)
    }
}

/// A delegation table: dentries in the order written. Later dentries take
/// precedence on lookup.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dtab {
    dentries: Vec<Dentry>,
}

impl Dtab {
    /// A dtab of `dentries`, in order.
    pub fn new(dentries: Vec<Dentry>) -> Self {
        Dtab { dentries }
    }

    /// The empty dtab.
    pub const fn empty() -> Self {
        Dtab {
            dentries: Vec::new(),
        }
    }

    /// Parses a dtab (`Dtab.read`): dentries separated by `;`, one optional
    /// trailing `;`; the empty (or comment-only) string is the empty dtab.
    pub fn read(s: &str) -> Result<Dtab, crate::ParseError> {
        crate::parse::parse_dtab(s)
    }

    /// The dentries in order.
    pub fn dentries(&self) -> &[Dentry] {
        &self.dentries
    }

    /// The number of dentries.
    pub fn len(&self) -> usize {
        self.dentries.len()
    }

    /// Whether there are no dentries.
    pub fn is_empty(&self) -> bool {
        self.dentries.is_empty()
    }

    /// `self ++ other`: `other`'s dentries come after, so they win.
    pub fn concat(&self, other: &Dtab) -> Dtab {
        if other.is_empty() {
            return self.clone();
        }
        let mut dentries = Vec::with_capacity(self.len() + other.len());
        dentries.extend_from_slice(&self.dentries);
        dentries.extend_from_slice(&other.dentries);
        Dtab { dentries }
    }

    /// Appends one dentry.
    pub fn push(&mut self, dentry: Dentry) {
        self.dentries.push(dentry);
    }

    /// Removes `prefix` when it is exactly this dtab's leading run of
    /// dentries; otherwise returns this dtab unchanged.
    pub fn strip_prefix(&self, prefix: &Dtab) -> Dtab {
        if self.len() < prefix.len() || self.dentries[..prefix.len()] != prefix.dentries[..] {
            return self.clone();
        }
        Dtab {
            dentries: self.dentries[prefix.len()..].to_vec(),
        }
    }

    /// Looks `path` up (Finagle's `Dtab.lookup`).
    ///
    /// Dentries are walked from last to first; every matching one
    /// contributes its destination with the unmatched rest of `path`
    /// appended to each leaf. No match is `Neg`, one is that tree, several
    /// are an `Alt` in last-to-first order. The result is not simplified.
    pub fn lookup(&self, path: &Path) -> NameTree<Path> {
        let mut matches: Vec<NameTree<Path>> = self
            .dentries
            .iter()
            .rev()
            .filter(|d| d.prefix.matches(path))
            .map(|d| {
                let suffix = path.drop(d.prefix.len());
                d.dst.map(&mut |p: &Path| p.concat(&suffix))
            })
            .collect();
        match matches.len() {
            0 => NameTree::Neg,
            1 => matches.pop().unwrap_or(NameTree::Neg),
            _ => NameTree::Alt(matches),
        }
    }

    /// Every destination simplified; dentries whose destination became
    /// `Neg` dropped (they are no-ops).
    pub fn simplified(&self) -> Dtab {
        Dtab {
            dentries: self
                .dentries
                .iter()
                .map(|d| Dentry::new(d.prefix.clone(), d.dst.simplify()))
                .filter(|d| d.dst != NameTree::Neg)
                .collect(),
        }
    }

    /// The canonical form: dentries joined by `;`, no spaces, no trailing
    /// `;`; the empty dtab is the empty string.
    pub fn show(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Dtab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.dentries.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            d.fmt(f)?;
        }
        Ok(())
    }
}

impl FromIterator<Dentry> for Dtab {
    fn from_iter<I: IntoIterator<Item = Dentry>>(iter: I) -> Self {
        Dtab::new(iter.into_iter().collect())
    }
}

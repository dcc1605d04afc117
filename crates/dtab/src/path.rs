//! Paths (`/a/b`) and dentry prefixes (`/a/*/b`).
//!
//! Elements are bytes, not text: Finagle compares them byte for byte and lets
//! any byte in through `\xHH` escapes, including `/` and `\xff`.

use std::fmt;

use bytes::Bytes;

/// Whether `b` may be printed as itself in a path element.
///
/// Finagle's `Path.showableChars`: `0-9 A-Z a-z _ : . # $ % -`.
pub const fn is_showable(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z' | b'_' | b':' | b'.' | b'#' | b'$' | b'%' | b'-')
}

/// Whether the character `c` is showable (non-ASCII characters never are).
pub(crate) fn is_showable_char(c: char) -> bool {
    c.is_ascii() && is_showable(c as u8)
}

/// Writes one element the way Finagle's `Path.showElem` does: as is when every
/// byte is showable, otherwise every byte as a lowercase `\xhh` escape.
pub(crate) fn write_elem(out: &mut impl fmt::Write, elem: &[u8]) -> fmt::Result {
    if elem.iter().all(|&b| is_showable(b)) {
        for &b in elem {
            out.write_char(char::from(b))?;
        }
    } else {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for &b in elem {
            out.write_str("\\x")?;
            out.write_char(char::from(HEX[usize::from(b >> 4)]))?;
            out.write_char(char::from(HEX[usize::from(b & 0xf)]))?;
        }
    }
    Ok(())
}

/// A hierarchical name: an ordered list of non-empty byte strings.
///
/// The empty path is valid and prints as `/`.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path {
    elems: Vec<Bytes>,
}

impl Path {
    /// The empty path, `/`.
    pub const fn empty() -> Path {
        Path { elems: Vec::new() }
    }

    /// Builds a path from elements; `None` if any element is empty.
    pub fn from_elems<I, E>(elems: I) -> Option<Path>
    where
        I: IntoIterator<Item = E>,
        E: Into<Bytes>,
    {
        let elems: Vec<Bytes> = elems.into_iter().map(Into::into).collect();
        if elems.iter().any(|e| e.is_empty()) {
            return None;
        }
        Some(Path { elems })
    }

    /// Builds a path from static UTF-8 elements, skipping empty ones.
    ///
    /// Convenient for constants such as `Path::utf8(&["svc"])`.
    pub fn utf8(elems: &[&str]) -> Path {
        Path {
            elems: elems
                .iter()
                .filter(|e| !e.is_empty())
                .map(|e| Bytes::copy_from_slice(e.as_bytes()))
                .collect(),
        }
    }

    /// Parses a path (`Path.read`): surrounding whitespace and a trailing
    /// comment are allowed.
    pub fn read(s: &str) -> Result<Path, crate::ParseError> {
        crate::parse::parse_path(s)
    }

    /// The elements.
    pub fn elems(&self) -> &[Bytes] {
        &self.elems
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.elems.len()
    }

    /// Whether this is the empty path `/`.
    pub fn is_empty(&self) -> bool {
        self.elems.is_empty()
    }

    /// Element-wise prefix test.
    pub fn starts_with(&self, other: &Path) -> bool {
        self.elems.starts_with(&other.elems)
    }

    /// The first `n` elements.
    pub fn take(&self, n: usize) -> Path {
        Path {
            elems: self.elems[..n.min(self.len())].to_vec(),
        }
    }

    /// Everything after the first `n` elements.
    pub fn drop(&self, n: usize) -> Path {
        Path {
            elems: self.elems[n.min(self.len())..].to_vec(),
        }
    }

    /// `self ++ that`.
    pub fn concat(&self, that: &Path) -> Path {
        if that.is_empty() {
            return self.clone();
        }
        let mut elems = Vec::with_capacity(self.len() + that.len());
        elems.extend_from_slice(&self.elems);
        elems.extend_from_slice(&that.elems);
        Path { elems }
    }

    /// `self ++ /elem` (`self` when `elem` is empty), in one allocation:
    /// what an identifier makes of a router's prefix and a request's host.
    pub fn join(&self, elem: impl Into<Bytes>) -> Path {
        let elem = elem.into();
        if elem.is_empty() {
            return self.clone();
        }
        let mut elems = Vec::with_capacity(self.len() + 1);
        elems.extend_from_slice(&self.elems);
        elems.push(elem);
        Path { elems }
    }

    /// Appends one element (ignored when empty).
    pub fn push(&mut self, elem: impl Into<Bytes>) {
        let elem = elem.into();
        if !elem.is_empty() {
            self.elems.push(elem);
        }
    }

    /// The elements as UTF-8 strings, or `None` if any element is not UTF-8
    /// (Finagle's `Path.Utf8` extractor).
    pub fn utf8_elems(&self) -> Option<Vec<&str>> {
        self.elems
            .iter()
            .map(|e| std::str::from_utf8(e).ok())
            .collect()
    }

    /// The canonical form (`show`).
    pub fn show(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.elems.is_empty() {
            return f.write_str("/");
        }
        for e in &self.elems {
            f.write_str("/")?;
            write_elem(f, e)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Path({self})")
    }
}

/// One element of a dentry prefix.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PrefixElem {
    /// Matches exactly this (non-empty) label.
    Label(Bytes),
    /// `*`: matches any one element.
    Any,
}

/// The left side of a dentry: labels and `*` wildcards.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Prefix {
    elems: Vec<PrefixElem>,
}

impl Prefix {
    /// The empty prefix `/`, which matches every path.
    pub const fn empty() -> Prefix {
        Prefix { elems: Vec::new() }
    }

    /// Builds a prefix from elements; `None` if a label is empty.
    pub fn from_elems(elems: Vec<PrefixElem>) -> Option<Prefix> {
        if elems
            .iter()
            .any(|e| matches!(e, PrefixElem::Label(l) if l.is_empty()))
        {
            return None;
        }
        Some(Prefix { elems })
    }

    /// Parses a prefix (`Dentry.Prefix.read`).
    pub fn read(s: &str) -> Result<Prefix, crate::ParseError> {
        crate::parse::parse_prefix(s)
    }

    /// The elements.
    pub fn elems(&self) -> &[PrefixElem] {
        &self.elems
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.elems.len()
    }

    /// Whether this is the empty prefix.
    pub fn is_empty(&self) -> bool {
        self.elems.is_empty()
    }

    /// Whether the prefix matches the start of `path`, element by element
    /// (`*` matches any one element).
    pub fn matches(&self, path: &Path) -> bool {
        self.len() <= path.len()
            && self.elems.iter().zip(path.elems()).all(|(p, e)| match p {
                PrefixElem::Any => true,
                PrefixElem::Label(l) => l == e,
            })
    }

    /// The canonical form (`show`).
    pub fn show(&self) -> String {
        self.to_string()
    }
}

impl From<&Path> for Prefix {
    fn from(path: &Path) -> Prefix {
        Prefix {
            elems: path
                .elems()
                .iter()
                .map(|e| PrefixElem::Label(e.clone()))
                .collect(),
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.elems.is_empty() {
            return f.write_str("/");
        }
        for e in &self.elems {
            f.write_str("/")?;
            match e {
                PrefixElem::Any => f.write_str("*")?,
                PrefixElem::Label(l) => write_elem(f, l)?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Prefix({self})")
    }
}

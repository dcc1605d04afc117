//! Linkerd 1's `PathMatcher`: the patterns of client and service
//! `configs[].prefix`, of the `io.l5d.rewrite` namer and (later) of TLS
//! `commonName`.
//!
//! A pattern is split on `/`; leading and trailing empty pieces are
//! dropped, so `/a/b/` is `/a/b` and `/` (no pieces) matches every path.
//! The match is a **prefix** match: it succeeds once the pattern is used
//! up, and a path shorter than the pattern does not match. Each piece
//! meets one element, in its shown form (`\xHH` escapes kept):
//!
//! * `*` matches any one element;
//! * a piece without `{name}` must equal the element;
//! * a piece with `{name}` captures: each `{name}` matches any text,
//!   greedily (`{A}-{B}` on `foo-bar-baz` gives `A = foo-bar`, `B = baz`),
//!   and the text around the captures must match literally. Names are
//!   made of letters, digits, `_`, `-`, `.` and `:`.
//!
//! [`substitute`] then replaces every `{name}` of a template by its
//! capture.
//!
//! Deviations from Linkerd 1, on purpose:
//!
//! * Linkerd searches each capture piece's regex *unanchored* in the
//!   element, so `a{x}` matches `ba` and `{x}.prod` matches
//!   `foo.prod.eu`. Strait anchors it (`^…$`): the piece must describe the
//!   whole element.
//! * Linkerd escapes only `.` in the literal text of a capture piece, so
//!   other regex metacharacters act as regex syntax; Strait takes all of
//!   it literally.
//! * A `*` (or any piece) past the end of the path throws in Linkerd;
//!   here it is simply no match.

use std::collections::HashMap;
use std::fmt;

use regex::Regex;
use strait_dtab::Path;

/// The captures of a match: capture name to the text it matched.
pub type Captures = HashMap<String, String>;

/// A compiled path pattern (see the module docs).
#[derive(Clone, Debug)]
pub struct PathMatcher {
    pattern: String,
    pieces: Vec<Piece>,
}

#[derive(Clone, Debug)]
enum Piece {
    /// `*`.
    Any,
    /// Must equal the element.
    Literal(String),
    /// An anchored regex with one group per name, in order.
    Capture(Regex, Vec<String>),
}

impl PartialEq for PathMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl fmt::Display for PathMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

impl PathMatcher {
    /// Compiles `pattern`. Fails only if a capture piece makes a regex
    /// over the `regex` crate's size limit.
    pub fn new(pattern: &str) -> Result<PathMatcher, String> {
        let mut raw: Vec<&str> = pattern.split('/').skip_while(|p| p.is_empty()).collect();
        while raw.last().is_some_and(|p| p.is_empty()) {
            raw.pop();
        }
        let pieces = raw
            .into_iter()
            .map(piece)
            .collect::<Result<Vec<_>, String>>()?;
        Ok(PathMatcher {
            pattern: pattern.to_owned(),
            pieces,
        })
    }

    /// The pattern as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether `path` starts with what the pattern describes.
    pub fn matches(&self, path: &Path) -> bool {
        self.captures(path).is_some()
    }

    /// The captures if `path` starts with what the pattern describes.
    pub fn captures(&self, path: &Path) -> Option<Captures> {
        if path.len() < self.pieces.len() {
            return None;
        }
        let shown = path.show();
        // Shown elements never contain `/` (it is escaped), so splitting
        // the shown path gives the shown elements.
        let elems = shown.split('/').skip(1);
        let mut caps = Captures::new();
        for (piece, elem) in self.pieces.iter().zip(elems) {
            match piece {
                Piece::Any => {}
                Piece::Literal(l) => {
                    if l != elem {
                        return None;
                    }
                }
                Piece::Capture(re, names) => {
                    let m = re.captures(elem)?;
                    for (i, name) in names.iter().enumerate() {
                        let text = m.get(i + 1).map_or("", |g| g.as_str());
                        caps.insert(name.clone(), text.to_owned());
                    }
                }
            }
        }
        Some(caps)
    }

    /// `template` with its `{name}`s replaced by the captures of `path`,
    /// if `path` matches.
    pub fn substitute_path(&self, path: &Path, template: &str) -> Option<String> {
        self.captures(path).map(|c| substitute(template, &c))
    }
}

/// One pattern piece.
fn piece(text: &str) -> Result<Piece, String> {
    if text == "*" {
        return Ok(Piece::Any);
    }
    let parts = split_captures(text);
    if !parts.iter().any(|p| matches!(p, Part::Var(_))) {
        return Ok(Piece::Literal(text.to_owned()));
    }
    let mut re = String::from("^");
    let mut names = Vec::new();
    for part in parts {
        match part {
            Part::Lit(l) => re.push_str(&regex::escape(l)),
            Part::Var(n) => {
                re.push_str("(.*)");
                names.push(n.to_owned());
            }
        }
    }
    re.push('$');
    let re = Regex::new(&re).map_err(|e| format!("pattern piece '{text}': {e}"))?;
    Ok(Piece::Capture(re, names))
}

/// A piece of text, split into literal runs and `{name}` captures.
#[derive(Debug, PartialEq)]
enum Part<'a> {
    Lit(&'a str),
    Var(&'a str),
}

/// Whether `c` may appear in a capture name.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')
}

/// `text` as literal runs and `{name}`s; a `{` that does not open a
/// well-formed `{name}` is literal.
fn split_captures(text: &str) -> Vec<Part<'_>> {
    let mut parts = Vec::new();
    let mut lit_start = 0;
    let mut i = 0;
    while let Some(off) = text[i..].find('{') {
        let open = i + off;
        let rest = &text[open + 1..];
        let name_len = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
        if name_len > 0 && rest[name_len..].starts_with('}') {
            if open > lit_start {
                parts.push(Part::Lit(&text[lit_start..open]));
            }
            parts.push(Part::Var(&rest[..name_len]));
            i = open + 1 + name_len + 1;
            lit_start = i;
        } else {
            i = open + 1;
        }
    }
    if lit_start < text.len() {
        parts.push(Part::Lit(&text[lit_start..]));
    }
    parts
}

/// `template` with every `{name}` that has a capture replaced by it (all
/// occurrences); a `{name}` without one stays as written.
pub fn substitute(template: &str, captures: &Captures) -> String {
    let mut out = String::with_capacity(template.len());
    for part in split_captures(template) {
        match part {
            Part::Lit(l) => out.push_str(l),
            Part::Var(n) => match captures.get(n) {
                Some(v) => out.push_str(v),
                None => {
                    out.push('{');
                    out.push_str(n);
                    out.push('}');
                }
            },
        }
    }
    out
}

#[cfg(test)]
#[path = "pathmatch_tests.rs"]
mod tests;

//! A port of Finagle's hand-written `NameTreeParsers`: the same grammar, the
//! same places where whitespace and `#` comments are skipped, and the same
//! error texts (`<expected> expected but <found> found at '<context>'`).

use std::fmt;

use bytes::Bytes;

use crate::path::{Path, Prefix, PrefixElem, is_showable_char};
use crate::tree::{DEFAULT_WEIGHT, NameTree, Weighted};
use crate::{Dentry, Dtab};

/// A syntax error, worded exactly as Finagle words it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    message: String,
    offset: usize,
}

impl ParseError {
    /// The full message, e.g.
    /// `'/' expected but 'i' found at '[i]nvalid-param'`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The index (in characters) of the character the parser stopped at.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

type Result<T> = std::result::Result<T, ParseError>;

/// Parses a whole path.
pub(crate) fn parse_path(s: &str) -> Result<Path> {
    let mut p = Parser::new(s);
    let path = p.path()?;
    p.eat_whitespace();
    p.ensure_end()?;
    Ok(path)
}

/// Parses a whole name tree.
pub(crate) fn parse_tree(s: &str) -> Result<NameTree<Path>> {
    let mut p = Parser::new(s);
    let tree = p.tree()?;
    p.eat_whitespace();
    p.ensure_end()?;
    Ok(tree)
}

/// Parses a whole dentry.
pub(crate) fn parse_dentry(s: &str) -> Result<Dentry> {
    let mut p = Parser::new(s);
    let d = p.dentry()?;
    p.eat_whitespace();
    p.ensure_end()?;
    Ok(d)
}

/// Parses a whole dentry prefix.
pub(crate) fn parse_prefix(s: &str) -> Result<Prefix> {
    let mut p = Parser::new(s);
    let pfx = p.prefix()?;
    p.eat_whitespace();
    p.ensure_end()?;
    Ok(pfx)
}

/// Parses a whole dtab.
pub(crate) fn parse_dtab(s: &str) -> Result<Dtab> {
    let mut p = Parser::new(s);
    let d = p.dtab()?;
    p.eat_whitespace();
    p.ensure_end()?;
    Ok(d)
}

/// Java's `Character.isWhitespace`: Unicode space, line and paragraph
/// separators except the no-break spaces, plus TAB, LF, VT, FF, CR and
/// U+001C..U+001F.
pub(crate) fn is_java_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | '\u{1C}'..='\u{1F}' | ' ' | '\u{1680}'
            | '\u{2000}'..='\u{2006}' | '\u{2008}'..='\u{200A}' | '\u{2028}' | '\u{2029}'
            | '\u{205F}' | '\u{3000}'
    )
}

/// How deeply parentheses may nest. Finagle has no limit (the JVM's stack
/// is the limit); a router parsing `l5d-dtab` headers from clients must not
/// let a header of `((((...` exhaust its stack.
pub const MAX_NESTING: usize = 100;

struct Parser<'a> {
    src: &'a str,
    chars: Vec<char>,
    idx: usize,
    depth: usize,
}

/// What the parser found: a character or the end of the input.
#[derive(Clone, Copy)]
enum Found {
    Char(char),
    End,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Char(c) => write!(f, "'{c}'"),
            Found::End => f.write_str("end of input"),
        }
    }
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        Parser {
            src,
            chars: src.chars().collect(),
            idx: 0,
            depth: 0,
        }
    }

    fn at_end(&self) -> bool {
        self.idx >= self.chars.len()
    }

    fn peek(&self) -> Found {
        self.chars
            .get(self.idx)
            .map_or(Found::End, |&c| Found::Char(c))
    }

    fn peek_is(&self, c: char) -> bool {
        self.chars.get(self.idx) == Some(&c)
    }

    fn illegal<T>(&self, expected: impl fmt::Display, found: Found) -> Result<T> {
        let ctx = if self.at_end() {
            format!("{}[]", self.src)
        } else {
            let before: String = self.chars[..self.idx].iter().collect();
            let after: String = self.chars[self.idx + 1..].iter().collect();
            format!("{before}[{}]{after}", self.chars[self.idx])
        };
        Err(ParseError {
            message: format!("{expected} expected but {found} found at '{ctx}'"),
            offset: self.idx,
        })
    }

    fn maybe_eat(&mut self, c: char) -> bool {
        if self.peek_is(c) {
            self.idx += 1;
            true
        } else {
            false
        }
    }

    fn eat(&mut self, c: char) -> Result<()> {
        if self.maybe_eat(c) {
            Ok(())
        } else {
            self.illegal(format_args!("'{c}'"), self.peek())
        }
    }

    /// Skips whitespace and `#` comments (through the next `\n`).
    fn eat_whitespace(&mut self) {
        while let Some(&c) = self.chars.get(self.idx) {
            if c == '#' {
                while let Some(&c) = self.chars.get(self.idx) {
                    self.idx += 1;
                    if c == '\n' {
                        break;
                    }
                }
            } else if is_java_whitespace(c) {
                self.idx += 1;
            } else {
                break;
            }
        }
    }

    fn ensure_end(&self) -> Result<()> {
        if self.at_end() {
            Ok(())
        } else {
            self.illegal("end of input", self.peek())
        }
    }

    fn hex_digit(&mut self) -> Result<u8> {
        match self.peek() {
            Found::Char(c) if c.is_ascii_hexdigit() => {
                self.idx += 1;
                // A hex digit is ASCII, so `to_digit` cannot fail here.
                Ok(c.to_digit(16).map_or(0, |d| d as u8))
            }
            found => self.illegal("hex char", found),
        }
    }

    fn is_label_char(&self) -> bool {
        matches!(self.peek(), Found::Char(c) if is_showable_char(c) || c == '\\')
    }

    fn label(&mut self) -> Result<Bytes> {
        let mut buf = Vec::with_capacity(16);
        loop {
            match self.peek() {
                Found::Char(c) if is_showable_char(c) => {
                    self.idx += 1;
                    buf.push(c as u8);
                }
                Found::Char('\\') => {
                    self.idx += 1;
                    self.eat('x')?;
                    let hi = self.hex_digit()?;
                    let lo = self.hex_digit()?;
                    buf.push(hi << 4 | lo);
                }
                found => return self.illegal("label char", found),
            }
            if !self.is_label_char() {
                break;
            }
        }
        Ok(Bytes::from(buf))
    }

    fn path(&mut self) -> Result<Path> {
        self.eat_whitespace();
        self.eat('/')?;
        let mut path = Path::empty();
        if !self.is_label_char() {
            return Ok(path);
        }
        loop {
            path.push(self.label()?);
            if !self.maybe_eat('/') {
                break;
            }
        }
        Ok(path)
    }

    fn prefix(&mut self) -> Result<Prefix> {
        self.eat_whitespace();
        self.eat('/')?;
        let mut elems = Vec::new();
        if !(self.is_label_char() || self.peek_is('*')) {
            return Ok(Prefix::empty());
        }
        loop {
            if self.maybe_eat('*') {
                elems.push(PrefixElem::Any);
            } else {
                elems.push(PrefixElem::Label(self.label()?));
            }
            if !self.maybe_eat('/') {
                break;
            }
        }
        Ok(Prefix::from_elems(elems).unwrap_or_default())
    }

    fn tree(&mut self) -> Result<NameTree<Path>> {
        let mut trees = Vec::new();
        loop {
            trees.push(self.tree1()?);
            self.eat_whitespace();
            if !self.maybe_eat('|') {
                break;
            }
        }
        Ok(if trees.len() > 1 {
            NameTree::Alt(trees)
        } else {
            trees.pop().unwrap_or(NameTree::Neg)
        })
    }

    fn tree1(&mut self) -> Result<NameTree<Path>> {
        let mut trees = Vec::new();
        loop {
            trees.push(self.weighted()?);
            self.eat_whitespace();
            if !self.maybe_eat('&') {
                break;
            }
        }
        Ok(if trees.len() > 1 {
            NameTree::Union(trees)
        } else {
            // A lone weighted term is not wrapped: its weight is dropped.
            trees.pop().map_or(NameTree::Neg, |w| w.tree)
        })
    }

    fn simple(&mut self) -> Result<NameTree<Path>> {
        self.eat_whitespace();
        match self.peek() {
            Found::Char('(') => {
                if self.depth == MAX_NESTING {
                    return self.illegal(
                        format_args!("at most {MAX_NESTING} nested '('"),
                        self.peek(),
                    );
                }
                self.idx += 1;
                self.depth += 1;
                let tree = self.tree()?;
                self.eat_whitespace();
                self.eat(')')?;
                self.depth -= 1;
                Ok(tree)
            }
            Found::Char('/') => Ok(NameTree::Leaf(self.path()?)),
            Found::Char('!') => {
                self.idx += 1;
                Ok(NameTree::Fail)
            }
            Found::Char('~') => {
                self.idx += 1;
                Ok(NameTree::Neg)
            }
            Found::Char('$') => {
                self.idx += 1;
                Ok(NameTree::Empty)
            }
            found => self.illegal("simple", found),
        }
    }

    fn is_number_char(&self) -> bool {
        matches!(self.peek(), Found::Char(c) if c.is_ascii_digit() || c == '.')
    }

    fn number(&mut self) -> Result<f64> {
        let start = self.idx;
        let mut seen_dot = false;
        while self.is_number_char() {
            if self.peek_is('.') {
                if seen_dot {
                    return self.illegal("number char", self.peek());
                }
                seen_dot = true;
            }
            self.idx += 1;
        }
        let text: String = self.chars[start..self.idx].iter().collect();
        if text == "." {
            // Finagle names the dot but brackets the character after it.
            return self.illegal("weight", Found::Char('.'));
        }
        match text.parse::<f64>() {
            // Finagle reads an overlong number as Infinity and then prints
            // `Infinity*/b`, which no parser reads back (so a re-emitted
            // `l5d-ctx-dtab` would break the next hop): refuse it here.
            Ok(w) if w.is_finite() => Ok(w),
            _ => {
                self.idx = start;
                self.illegal("finite weight", self.peek())
            }
        }
    }

    fn weighted(&mut self) -> Result<Weighted<Path>> {
        self.eat_whitespace();
        let weight = if self.is_number_char() {
            let w = self.number()?;
            self.eat_whitespace();
            self.eat('*')?;
            self.eat_whitespace();
            w
        } else {
            DEFAULT_WEIGHT
        };
        Ok(Weighted::new(weight, self.simple()?))
    }

    fn dentry(&mut self) -> Result<Dentry> {
        let prefix = self.prefix()?;
        self.eat_whitespace();
        self.eat('=')?;
        self.eat('>')?;
        let dst = self.tree()?;
        Ok(Dentry::new(prefix, dst))
    }

    fn dtab(&mut self) -> Result<Dtab> {
        let mut dentries = Vec::new();
        loop {
            self.eat_whitespace();
            if !self.at_end() {
                dentries.push(self.dentry()?);
                self.eat_whitespace();
            }
            if !self.maybe_eat(';') {
                break;
            }
        }
        Ok(Dtab::new(dentries))
    }
}

//! Typed reading of a [`Node`] tree that collects every error.
//!
//! [`Ctx`] holds the errors found so far; [`MapReader`] reads one mapping:
//! each getter names a key (so the reader knows every key the schema
//! accepts) and `finish` reports the keys nobody asked for, with a "did you
//! mean" for near misses. Getters return `None` both for an absent key and
//! for a bad value (already recorded), so callers fall back to the default
//! and keep going.

use std::net::IpAddr;
use std::path::PathBuf;

use strait_dtab::{Dtab, ParseError, Path, Prefix};
use strait_naming::pathmatch::PathMatcher;

use super::ConfigError;
use super::tree::{Key, Node, Pos, Value, child};

/// The error sink, plus what is needed to place errors.
pub(crate) struct Ctx<'a> {
    pub(crate) file: &'a str,
    pub(crate) source: &'a str,
    pub(crate) errors: Vec<ConfigError>,
    /// Problems that do not make the config invalid (`strait check` prints
    /// them, `strait run` logs them on start and reload).
    pub(crate) warnings: Vec<ConfigError>,
}

impl Ctx<'_> {
    /// Records a warning at `pos` for `path`; `message` is prefixed with
    /// `warning: `.
    pub(crate) fn warn(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        let message = format!("warning: {}", message.into());
        self.warnings
            .push(ConfigError::at(self.file, pos, path, message));
    }

    /// Records an error at `pos` for `path`.
    pub(crate) fn error(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.errors
            .push(ConfigError::at(self.file, pos, path, message));
    }

    /// Records a dtab-language error at the character it points to inside
    /// the scalar `node`.
    fn dtab_error(&mut self, node: &Node, path: &str, what: &str, e: &ParseError) {
        self.syntax_error(node, path, what, e.offset(), e.message());
    }

    /// Records a dtab-language error `message` at the `offset`-th
    /// character of the scalar `node`.
    fn syntax_error(&mut self, node: &Node, path: &str, what: &str, offset: usize, message: &str) {
        let pos = self.pos_in_scalar(node, offset);
        // Finagle quotes the whole input; keep the error on one line.
        let message = message.replace('\n', "\\n");
        self.error(pos, path, format!("invalid {what}: {message}"));
    }

    /// The source position of the `offset`-th character of a scalar's value.
    ///
    /// The value's characters are matched in order against the raw source
    /// text (quotes, escapes, indentation and folding are skipped over), so
    /// the answer is exact for plain, single-line and block scalars and
    /// close for exotic escapes.
    fn pos_in_scalar(&self, node: &Node, offset: usize) -> Pos {
        let Value::Scalar(s) = &node.value else {
            return node.pos;
        };
        let raw: Vec<char> = self
            .source
            .chars()
            .skip(s.start)
            .take(s.end.saturating_sub(s.start))
            .collect();
        let (mut line, mut col) = (node.pos.line, node.pos.col);
        let mut j = 0;
        for (i, want) in s.text.chars().enumerate() {
            // Find `want` in the raw text, advancing the position over
            // anything skipped.
            while j < raw.len() && raw[j] != want {
                if raw[j] == '\n' {
                    line += 1;
                    col = 1;
                } else {
                    col += 1;
                }
                j += 1;
            }
            if j >= raw.len() {
                return Pos { line, col };
            }
            if i == offset {
                return Pos { line, col };
            }
            if raw[j] == '\n' {
                line += 1;
                col = 1;
            } else {
                col += 1;
            }
            j += 1;
        }
        // The offset is the end of the value.
        Pos { line, col }
    }
}

/// Levenshtein distance over characters, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The known key closest to `unknown` (case-insensitively), if it is within
/// two edits.
pub(crate) fn suggest<'k>(unknown: &str, known: &[&'k str]) -> Option<&'k str> {
    let lower = unknown.to_lowercase();
    known
        .iter()
        .map(|k| (distance(&lower, &k.to_lowercase()), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Reads one mapping. Every getter records its key as known.
pub(crate) struct MapReader<'n> {
    entries: &'n [(Key, Node)],
    pos: Pos,
    path: String,
    /// Every key the schema names here, refused ones included.
    known: Vec<&'static str>,
    /// The keys Strait reads here (listed when a key is unknown).
    readable: Vec<&'static str>,
}

impl<'n> MapReader<'n> {
    /// A reader for `node`, or `None` (recorded) if it is not a mapping.
    /// A null node reads as an empty mapping (`admin:` with nothing under it).
    pub(crate) fn new(cx: &mut Ctx<'_>, node: &'n Node, path: &str) -> Option<MapReader<'n>> {
        let entries: &[(Key, Node)] = match &node.value {
            Value::Map(entries) => entries,
            _ if node.is_null() => &[],
            _ => {
                cx.error(
                    node.pos,
                    path,
                    format!("expected a mapping, found {}", node.describe()),
                );
                return None;
            }
        };
        Some(MapReader {
            entries,
            pos: node.pos,
            path: path.to_owned(),
            known: Vec::new(),
            readable: Vec::new(),
        })
    }

    /// Where the mapping starts.
    pub(crate) fn pos(&self) -> Pos {
        self.pos
    }

    /// The key path of `key` in this mapping.
    pub(crate) fn path_of(&self, key: &str) -> String {
        child(&self.path, key)
    }

    /// The key and value of `key` as written, null included.
    pub(crate) fn entry(&mut self, key: &'static str) -> Option<&'n (Key, Node)> {
        self.readable.push(key);
        self.known.push(key);
        self.entries.iter().find(|(k, _)| k.name == key)
    }

    /// The value of `key`; `None` if absent or null.
    pub(crate) fn get(&mut self, key: &'static str) -> Option<&'n Node> {
        self.entry(key).map(|(_, v)| v).filter(|v| !v.is_null())
    }

    /// Reads `key` with `read` if present and not null.
    pub(crate) fn opt<T>(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
        read: Reader<T>,
    ) -> Option<T> {
        let node = self.get(key)?;
        read(cx, node, &self.path_of(key))
    }

    /// Reads `key`, or `default` if it is absent, null or bad.
    pub(crate) fn or<T>(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
        read: Reader<T>,
        default: T,
    ) -> T {
        self.opt(cx, key, read).unwrap_or(default)
    }

    /// Reads `key`, recording "missing required key" if absent or null.
    pub(crate) fn req<T>(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
        read: Reader<T>,
    ) -> Option<T> {
        match self.entry(key) {
            Some((_, v)) if !v.is_null() => read(cx, v, &self.path_of(key)),
            Some((k, _)) => {
                cx.error(k.pos, &self.path_of(key), format!("'{key}' needs a value"));
                None
            }
            None => {
                cx.error(
                    self.pos,
                    &self.path_of(key),
                    format!("missing required key '{key}'"),
                );
                None
            }
        }
    }

    /// Refuses each of `keys` that is present, with `message(key)`. The keys
    /// count as known (so a typo of one gets a suggestion).
    pub(crate) fn refuse(
        &mut self,
        cx: &mut Ctx<'_>,
        keys: &[&'static str],
        message: fn(&str) -> String,
    ) {
        for &key in keys {
            self.known.push(key);
            if let Some((k, _)) = self.entries.iter().find(|(k, _)| k.name == key) {
                cx.error(k.pos, &self.path_of(key), message(key));
            }
        }
    }

    /// Refuses Linkerd 1 keys Strait does not implement yet, by name.
    pub(crate) fn not_implemented(&mut self, cx: &mut Ctx<'_>, keys: &[&'static str]) {
        self.refuse(cx, keys, |key| {
            format!("`{key}` is a Linkerd 1 feature Strait does not implement yet; remove it")
        });
    }

    /// Reports every key that no getter asked for.
    pub(crate) fn finish(self, cx: &mut Ctx<'_>) {
        for (k, _) in self.entries {
            if self.known.contains(&k.name.as_str()) {
                continue;
            }
            let message = match suggest(&k.name, &self.known) {
                Some(s) => format!("unknown key '{}'; did you mean '{s}'?", k.name),
                None => {
                    let mut readable = self.readable.clone();
                    readable.sort_unstable();
                    readable.dedup();
                    format!(
                        "unknown key '{}'; known keys: {}",
                        k.name,
                        readable.join(", ")
                    )
                }
            };
            cx.error(k.pos, &child(&self.path, &k.name), message);
        }
    }
}

/// Reads one value; records an error and returns `None` when it is bad.
pub(crate) type Reader<T> = fn(&mut Ctx<'_>, &Node, &str) -> Option<T>;

/// The scalar's text if `node` is a scalar, else records "expected `what`".
fn scalar<'n>(cx: &mut Ctx<'_>, node: &'n Node, path: &str, what: &str) -> Option<&'n str> {
    match &node.value {
        Value::Scalar(s) => Some(&s.text),
        _ => {
            cx.error(
                node.pos,
                path,
                format!("expected {what}, found {}", node.describe()),
            );
            None
        }
    }
}

/// The text of a plain scalar, else records "expected `what`" (with a hint
/// for quoted numbers and booleans).
fn plain<'n>(cx: &mut Ctx<'_>, node: &'n Node, path: &str, what: &str) -> Option<&'n str> {
    match &node.value {
        Value::Scalar(s) if s.plain => Some(&s.text),
        Value::Scalar(_) => {
            cx.error(
                node.pos,
                path,
                format!(
                    "expected {what}, found {} (remove the quotes)",
                    node.describe()
                ),
            );
            None
        }
        _ => {
            cx.error(
                node.pos,
                path,
                format!("expected {what}, found {}", node.describe()),
            );
            None
        }
    }
}

/// Any scalar, as a string (YAML numbers and booleans keep their text).
pub(crate) fn string(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<String> {
    scalar(cx, node, path, "a string").map(str::to_owned)
}

/// A non-empty string.
pub(crate) fn non_empty(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<String> {
    let s = string(cx, node, path)?;
    if s.is_empty() {
        cx.error(node.pos, path, "must not be empty");
        return None;
    }
    Some(s)
}

/// `true` or `false` (YAML 1.2 core schema spellings).
pub(crate) fn boolean(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<bool> {
    let text = plain(cx, node, path, "true or false")?;
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => {
            cx.error(
                node.pos,
                path,
                format!("expected true or false, found {}", node.describe()),
            );
            None
        }
    }
}

/// A decimal integer in `min..=max`.
pub(crate) fn integer(
    cx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    min: i128,
    max: i128,
) -> Option<i128> {
    let text = plain(cx, node, path, "an integer")?;
    let digits = text.strip_prefix('+').unwrap_or(text);
    let Ok(n) = digits.parse::<i128>() else {
        cx.error(
            node.pos,
            path,
            format!("expected an integer, found {}", node.describe()),
        );
        return None;
    };
    if n < min || n > max {
        cx.error(
            node.pos,
            path,
            format!("expected an integer from {min} to {max}, found {n}"),
        );
        return None;
    }
    Some(n)
}

/// An integer in `0..=65535`.
pub(crate) fn port(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<u16> {
    integer(cx, node, path, 0, i128::from(u16::MAX)).and_then(|n| u16::try_from(n).ok())
}

/// A non-negative integer that fits in 32 bits.
pub(crate) fn u32_any(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<u32> {
    integer(cx, node, path, 0, i128::from(u32::MAX)).and_then(|n| u32::try_from(n).ok())
}

/// A positive integer that fits in 32 bits.
pub(crate) fn u32_positive(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<u32> {
    integer(cx, node, path, 1, i128::from(u32::MAX)).and_then(|n| u32::try_from(n).ok())
}

/// A positive integer that fits in 64 bits.
pub(crate) fn u64_positive(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<u64> {
    integer(cx, node, path, 1, i128::from(u64::MAX)).and_then(|n| u64::try_from(n).ok())
}

/// An integer from 1 to 60.
pub(crate) fn secs_1_to_60(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<u64> {
    integer(cx, node, path, 1, 60).and_then(|n| u64::try_from(n).ok())
}

/// A non-negative integer that fits in 64 bits.
pub(crate) fn u64_any(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<u64> {
    integer(cx, node, path, 0, i128::from(u64::MAX)).and_then(|n| u64::try_from(n).ok())
}

/// A finite number greater than zero.
pub(crate) fn positive_number(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<f64> {
    let text = plain(cx, node, path, "a number")?;
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Some(n),
        Ok(_) => {
            cx.error(
                node.pos,
                path,
                format!("expected a number greater than 0, found {text}"),
            );
            None
        }
        Err(_) => {
            cx.error(
                node.pos,
                path,
                format!("expected a number, found {}", node.describe()),
            );
            None
        }
    }
}

/// A finite number (an integer or a decimal).
pub(crate) fn number(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<f64> {
    let text = plain(cx, node, path, "a number")?;
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() => Some(n),
        _ => {
            cx.error(
                node.pos,
                path,
                format!("expected a number, found {}", node.describe()),
            );
            None
        }
    }
}

/// A finite number from `min` to `max`; `above_min` leaves `min` itself
/// out.
pub(crate) fn number_in(
    cx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    min: f64,
    max: f64,
    above_min: bool,
) -> Option<f64> {
    let n = number(cx, node, path)?;
    let low_ok = if above_min { n > min } else { n >= min };
    if low_ok && n <= max {
        return Some(n);
    }
    let text = match &node.value {
        Value::Scalar(s) => s.text.as_str(),
        _ => "",
    };
    let range = if above_min {
        format!("greater than {min} and at most {max}")
    } else {
        format!("from {min} to {max}")
    };
    cx.error(
        node.pos,
        path,
        format!("expected a number {range}, found {text}"),
    );
    None
}

/// An IP address literal.
pub(crate) fn ip(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<IpAddr> {
    let text = scalar(cx, node, path, "an IP address")?;
    match text.parse() {
        Ok(ip) => Some(ip),
        Err(_) => {
            cx.error(
                node.pos,
                path,
                format!(
                    "expected an IP address such as 127.0.0.1 or 0.0.0.0, found {}",
                    node.describe()
                ),
            );
            None
        }
    }
}

/// A file-system path (non-empty).
pub(crate) fn file_path(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<PathBuf> {
    non_empty(cx, node, path).map(PathBuf::from)
}

/// A Finagle path such as `/svc`.
pub(crate) fn name_path(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<Path> {
    let text = scalar(cx, node, path, "a path such as /svc")?;
    match Path::read(text) {
        Ok(p) => Some(p),
        Err(e) => {
            cx.dtab_error(node, path, "path", &e);
            None
        }
    }
}

/// A client or service `prefix`: Linkerd's path-matcher syntax (see
/// [`strait_naming::pathmatch`]), such as `/#/io.l5d.fs/*` or
/// `/#/io.l5d.consul/{dc}/{service}`, positioned at the offending
/// character on error. Apart from its `{name}` captures it must read as a
/// dentry prefix (`*` matching any one element).
pub(crate) fn prefix(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<PathMatcher> {
    let text = scalar(cx, node, path, "a prefix such as /#/io.l5d.fs/*")?;
    let (rewritten, map) = captures_as_labels(text);
    match Prefix::read(&rewritten) {
        Ok(_) => match PathMatcher::new(text.trim()) {
            Ok(m) => Some(m),
            Err(e) => {
                cx.error(node.pos, path, e);
                None
            }
        },
        Err(e) => {
            let offset = map
                .get(e.offset())
                .copied()
                .unwrap_or_else(|| text.chars().count());
            let message = restore_context(e.message(), &rewritten, e.offset(), text, offset);
            cx.syntax_error(node, path, "prefix", offset, &message);
            None
        }
    }
}

/// `text` with every `{name}` capture replaced by `x` (so the rest can be
/// checked as a dentry prefix), and for each character of the result (and
/// its end) the index of the character of `text` it came from.
fn captures_as_labels(text: &str) -> (String, Vec<usize>) {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut map = Vec::with_capacity(chars.len() + 1);
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '{'
            && let Some(len) = capture_len(&chars[i..])
        {
            out.push('x');
            map.push(i);
            i += len;
            continue;
        }
        out.push(chars[i]);
        map.push(i);
        i += 1;
    }
    map.push(chars.len());
    (out, map)
}

/// The length of the `{name}` capture `chars` starts with: a non-empty
/// name of letters, digits, `_`, `-`, `.` and `:`, then `}`.
fn capture_len(chars: &[char]) -> Option<usize> {
    let close = chars.iter().position(|&c| c == '}')?;
    let name = &chars[1..close];
    let name_ok = !name.is_empty()
        && name
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    name_ok.then_some(close + 1)
}

/// Finagle's message about `rewritten` (`… found at '<context>'`), with the
/// context quoting `original` instead.
fn restore_context(
    message: &str,
    rewritten: &str,
    offset: usize,
    original: &str,
    original_offset: usize,
) -> String {
    fn context(s: &str, idx: usize) -> String {
        let chars: Vec<char> = s.chars().collect();
        match chars.get(idx) {
            None => format!("{s}[]"),
            Some(c) => {
                let before: String = chars[..idx].iter().collect();
                let after: String = chars[idx + 1..].iter().collect();
                format!("{before}[{c}]{after}")
            }
        }
    }
    if rewritten == original {
        return message.to_owned();
    }
    let suffix = format!(" found at '{}'", context(rewritten, offset));
    match message.strip_suffix(&suffix) {
        Some(head) => format!("{head} found at '{}'", context(original, original_offset)),
        None => message.to_owned(),
    }
}

/// A dtab, positioned at the offending character on error.
pub(crate) fn dtab(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<Dtab> {
    let text = scalar(cx, node, path, "a dtab string")?;
    match Dtab::read(text) {
        Ok(d) => Some(d),
        Err(e) => {
            cx.dtab_error(node, path, "dtab", &e);
            None
        }
    }
}

/// A list read item by item with `item`; bad items are dropped (and
/// recorded).
pub(crate) fn list<T>(
    cx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    item: Reader<T>,
) -> Option<Vec<T>> {
    let Value::Seq(items) = &node.value else {
        cx.error(
            node.pos,
            path,
            format!("expected a list, found {}", node.describe()),
        );
        return None;
    };
    Some(
        items
            .iter()
            .enumerate()
            .filter_map(|(i, n)| item(cx, n, &format!("{path}[{i}]")))
            .collect(),
    )
}

/// The items of a list node (with their paths), or the node itself when
/// `one_or_many` and it is not a list; records an error for a non-list
/// otherwise.
pub(crate) fn items<'n>(
    cx: &mut Ctx<'_>,
    node: &'n Node,
    path: &str,
    one_or_many: bool,
) -> Option<Vec<(&'n Node, String)>> {
    match &node.value {
        Value::Seq(items) => Some(
            items
                .iter()
                .enumerate()
                .map(|(i, n)| (n, format!("{path}[{i}]")))
                .collect(),
        ),
        _ if one_or_many => Some(vec![(node, path.to_owned())]),
        _ => {
            cx.error(
                node.pos,
                path,
                format!("expected a list, found {}", node.describe()),
            );
            None
        }
    }
}

/// One of `choices`, as written.
pub(crate) fn one_of(
    cx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    choices: &[&'static str],
) -> Option<&'static str> {
    let text = scalar(cx, node, path, "a string")?;
    if let Some(c) = choices.iter().find(|c| **c == text) {
        return Some(c);
    }
    cx.error(
        node.pos,
        path,
        format!(
            "expected one of {}, found {}",
            choices.join(", "),
            node.describe()
        ),
    );
    None
}

#[cfg(test)]
#[path = "read_tests.rs"]
mod tests;

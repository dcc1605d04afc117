//! YAML (or JSON) text to a small positioned tree.
//!
//! `saphyr-parser` yields events with spans; this module folds them into
//! [`Node`]s that remember where they were written, so every later error can
//! name a line and column. While building it rejects what Strait does not
//! read (anchors, aliases, tags, complex keys, several documents) and
//! reports duplicate keys, Jackson's `STRICT_DUPLICATE_DETECTION`. A syntax
//! error stops the build: after it the event stream means nothing.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};

use super::ConfigError;

/// How deeply collections may nest. A `linkerd.yaml` needs about six levels;
/// the limit only stops a hostile `[[[[…` from exhausting the stack.
const MAX_DEPTH: usize = 64;

/// A 1-based line and column (columns count characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pos {
    pub(crate) line: usize,
    pub(crate) col: usize,
}

impl Pos {
    fn of(span: &Span) -> Pos {
        Pos {
            line: span.start.line(),
            col: span.start.col() + 1,
        }
    }
}

/// One value of the document and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub(crate) value: Value,
    pub(crate) pos: Pos,
}

/// A scalar, a sequence or a mapping.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    /// A scalar as written: its text after YAML unescaping and folding.
    Scalar(Scalar),
    /// A sequence, in order.
    Seq(Vec<Node>),
    /// A mapping, in order, first occurrence of each key only.
    Map(Vec<(Key, Node)>),
}

/// A scalar's text and how it was written.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Scalar {
    pub(crate) text: String,
    /// Plain scalars may be null, booleans or numbers; quoted and block
    /// scalars are always strings.
    pub(crate) plain: bool,
    /// Character range of the scalar in the source, to place errors found
    /// inside the value (a dtab's syntax error).
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// A mapping key and where it is written.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Key {
    pub(crate) name: String,
    pub(crate) pos: Pos,
}

impl Node {
    /// A plain scalar that YAML's core schema reads as null: empty, `~`,
    /// `null`.
    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(s) if s.plain
            && matches!(s.text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// What kind of value this is, for "expected X, found Y" messages.
    pub(crate) fn describe(&self) -> String {
        match &self.value {
            Value::Seq(_) => "a list".to_owned(),
            Value::Map(_) => "a mapping".to_owned(),
            Value::Scalar(s) if !s.plain => format!("the quoted string {:?}", s.text),
            Value::Scalar(_) if self.is_null() => "null".to_owned(),
            Value::Scalar(s) => format!("'{}'", s.text),
        }
    }
}

/// Parses `text` into one document's root node. `Ok` may still carry
/// errors (duplicate keys, anchors): the tree is usable, but the file is
/// not valid. `Err` means no tree could be built (a syntax error).
pub(crate) fn parse(text: &str, file: &str) -> Result<(Node, Vec<ConfigError>), Vec<ConfigError>> {
    let mut b = Builder {
        parser: Parser::new_from_str(text),
        file,
        errors: Vec::new(),
    };
    match b.document() {
        Ok(root) => Ok((root, b.errors)),
        Err(e) => Err(vec![e]),
    }
}

struct Builder<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    file: &'a str,
    errors: Vec<ConfigError>,
}

/// Joins a key to a key path: `routers[0]` + `port` = `routers[0].port`.
pub(crate) fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn tag_name(tag: &Tag) -> String {
    if tag.handle == "tag:yaml.org,2002:" {
        format!("!!{}", tag.suffix)
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    }
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span), ConfigError> {
        match self.parser.next_event() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(self.syntax(&e)),
            // The parser ends every stream with `StreamEnd`; running past
            // it is a bug here, reported rather than panicked on.
            None => Err(self.error(
                Pos { line: 1, col: 1 },
                "(document)",
                "unexpected end of the YAML event stream",
            )),
        }
    }

    fn syntax(&self, e: &ScanError) -> ConfigError {
        let m = e.marker();
        ConfigError {
            file: self.file.to_owned(),
            line: m.line(),
            col: m.col() + 1,
            key_path: "(document)".to_owned(),
            message: format!("YAML syntax error: {}", e.info()),
        }
    }

    fn error(&self, pos: Pos, path: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::at(self.file, pos, path, message)
    }

    fn record(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        let e = self.error(pos, path, message);
        self.errors.push(e);
    }

    /// Stream start, one document, stream end. An empty stream is an empty
    /// mapping (so the schema reports what is missing).
    fn document(&mut self) -> Result<Node, ConfigError> {
        let (ev, span) = self.next()?;
        if !matches!(ev, Event::StreamStart) {
            return Err(self.error(Pos::of(&span), "", "expected the start of a YAML stream"));
        }
        let (ev, span) = self.next()?;
        let root = match ev {
            Event::StreamEnd => {
                return Ok(Node {
                    value: Value::Map(Vec::new()),
                    pos: Pos::of(&span),
                });
            }
            Event::DocumentStart(_) => {
                let (ev, span) = self.next()?;
                self.node(ev, span, "", 0)?
            }
            _ => return Err(self.error(Pos::of(&span), "", "expected a YAML document")),
        };
        // DocumentEnd, then StreamEnd; a second DocumentStart is refused.
        loop {
            let (ev, span) = self.next()?;
            match ev {
                Event::DocumentEnd => {}
                Event::StreamEnd => return Ok(root),
                _ => {
                    return Err(self.error(
                        Pos::of(&span),
                        "",
                        "only one YAML document is allowed in a config file",
                    ));
                }
            }
        }
    }

    /// Refuses an anchor or tag on a node, keeping the node.
    fn properties(&mut self, pos: Pos, path: &str, anchor: usize, tag: Option<&Tag>) {
        if anchor != 0 {
            self.record(
                pos,
                path,
                "YAML anchors (&name) are not supported in a Strait config; write the value out",
            );
        }
        if let Some(tag) = tag {
            self.record(
                pos,
                path,
                format!(
                    "YAML tags ({}) are not supported in a Strait config; remove the tag",
                    tag_name(tag)
                ),
            );
        }
    }

    fn node(
        &mut self,
        ev: Event<'a>,
        span: Span,
        path: &str,
        depth: usize,
    ) -> Result<Node, ConfigError> {
        let pos = Pos::of(&span);
        if depth > MAX_DEPTH {
            return Err(self.error(pos, path, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                self.properties(pos, path, anchor, tag.as_deref());
                Ok(Node {
                    value: Value::Scalar(Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                        start: span.start.index(),
                        end: span.end.index(),
                    }),
                    pos,
                })
            }
            Event::SequenceStart(anchor, tag) => {
                self.properties(pos, path, anchor, tag.as_deref());
                let mut items = Vec::new();
                loop {
                    let (ev, span) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    let item_path = format!("{path}[{}]", items.len());
                    items.push(self.node(ev, span, &item_path, depth + 1)?);
                }
                Ok(Node {
                    value: Value::Seq(items),
                    pos,
                })
            }
            Event::MappingStart(anchor, tag) => {
                self.properties(pos, path, anchor, tag.as_deref());
                self.mapping(pos, path, depth)
            }
            Event::Alias(_) => {
                self.record(
                    pos,
                    path,
                    "YAML aliases (*name) are not supported in a Strait config; write the value out",
                );
                Ok(Node {
                    value: Value::Scalar(Scalar {
                        text: String::new(),
                        plain: true,
                        start: span.start.index(),
                        end: span.end.index(),
                    }),
                    pos,
                })
            }
            _ => Err(self.error(pos, path, "unexpected YAML event")),
        }
    }

    fn mapping(&mut self, pos: Pos, path: &str, depth: usize) -> Result<Node, ConfigError> {
        let mut entries: Vec<(Key, Node)> = Vec::new();
        let mut seen: HashMap<String, Pos> = HashMap::new();
        loop {
            let (ev, span) = self.next()?;
            let key_pos = Pos::of(&span);
            let name = match ev {
                Event::MappingEnd => break,
                Event::Scalar(text, _, anchor, tag) => {
                    let name = text.into_owned();
                    self.properties(key_pos, &child(path, &name), anchor, tag.as_deref());
                    Some(name)
                }
                other => {
                    // A sequence or mapping used as a key: build it to keep
                    // the stream in step, then drop it.
                    self.node(other, span, path, depth + 1)?;
                    self.record(
                        key_pos,
                        path,
                        "mapping keys must be plain strings, not lists or mappings",
                    );
                    None
                }
            };
            let value_path = child(path, name.as_deref().unwrap_or("?"));
            let (ev, span) = self.next()?;
            let value = self.node(ev, span, &value_path, depth + 1)?;
            let Some(name) = name else { continue };
            if let Some(first) = seen.get(&name) {
                let first_line = first.line;
                self.record(
                    key_pos,
                    &value_path,
                    format!("duplicate key '{name}' (first written at line {first_line})"),
                );
                continue;
            }
            seen.insert(name.clone(), key_pos);
            entries.push((Key { name, pos: key_pos }, value));
        }
        Ok(Node {
            value: Value::Map(entries),
            pos,
        })
    }
}

#[cfg(test)]
#[path = "tree_tests.rs"]
mod tests;

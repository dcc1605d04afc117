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
mod tests {
    use super::*;

    fn tree(text: &str) -> (Node, Vec<String>) {
        match parse(text, "t.yaml") {
            Ok((node, errors)) => (node, errors.iter().map(|e| e.to_string()).collect()),
            Err(errors) => panic!("unexpected syntax error: {errors:?}"),
        }
    }

    fn syntax_errors(text: &str) -> Vec<String> {
        match parse(text, "t.yaml") {
            Ok(_) => panic!("expected a syntax error for {text:?}"),
            Err(errors) => errors.iter().map(|e| e.to_string()).collect(),
        }
    }

    fn map(node: &Node) -> &[(Key, Node)] {
        match &node.value {
            Value::Map(entries) => entries,
            other => panic!("expected a map, got {other:?}"),
        }
    }

    #[test]
    fn tree_records_positions_one_based() {
        let (root, errors) = tree("admin:\n  port: 9990\n");
        assert!(errors.is_empty(), "{errors:?}");
        let admin = &map(&root)[0];
        assert_eq!(
            admin.0.pos,
            Pos { line: 1, col: 1 },
            "keys carry 1-based positions"
        );
        let port = &map(&admin.1)[0];
        assert_eq!(port.0.pos, Pos { line: 2, col: 3 });
        assert_eq!(
            port.1.pos,
            Pos { line: 2, col: 9 },
            "values carry their own position"
        );
    }

    #[test]
    fn tree_distinguishes_plain_from_quoted_scalars() {
        let (root, _) = tree("a: 4140\nb: \"4140\"\nc: |\n  x\n");
        let entries = map(&root);
        let plain = |i: usize| match &entries[i].1.value {
            Value::Scalar(s) => (s.text.clone(), s.plain),
            other => panic!("{other:?}"),
        };
        assert_eq!(plain(0), ("4140".to_owned(), true));
        assert_eq!(
            plain(1),
            ("4140".to_owned(), false),
            "quoted scalars are strings"
        );
        assert_eq!(
            plain(2),
            ("x\n".to_owned(), false),
            "block scalars are strings"
        );
    }

    #[test]
    fn duplicate_key_is_reported_at_second_occurrence_naming_the_first() {
        let (root, errors) = tree("admin:\n  port: 1\n  ip: 0.0.0.0\n  port: 2\n");
        assert_eq!(
            errors,
            ["t.yaml:4:3: admin.port: duplicate key 'port' (first written at line 2)"],
            "a repeated key is an error at its second occurrence"
        );
        let admin = map(&map(&root)[0].1);
        assert_eq!(admin.len(), 2, "the first occurrence is kept");
    }

    #[test]
    fn duplicate_keys_in_json_are_reported_too() {
        let (_, errors) = tree("{\"routers\": [], \"routers\": []}");
        assert_eq!(
            errors,
            ["t.yaml:1:17: routers: duplicate key 'routers' (first written at line 1)"]
        );
    }

    #[test]
    fn anchors_aliases_and_tags_are_refused() {
        let (_, errors) = tree("a: &x 1\nb: *x\nc: !!str 3\n");
        assert_eq!(
            errors,
            [
                "t.yaml:1:4: a: YAML anchors (&name) are not supported in a Strait config; write the value out",
                "t.yaml:2:4: b: YAML aliases (*name) are not supported in a Strait config; write the value out",
                "t.yaml:3:4: c: YAML tags (!!str) are not supported in a Strait config; remove the tag",
            ]
        );
    }

    #[test]
    fn sequence_items_get_indexed_paths() {
        let (_, errors) = tree("routers:\n- a: 1\n  a: 2\n");
        assert_eq!(
            errors,
            ["t.yaml:3:3: routers[0].a: duplicate key 'a' (first written at line 2)"]
        );
    }

    #[test]
    fn syntax_error_reports_the_parser_position() {
        let errors = syntax_errors("admin:\n  port: 1\n bad: [\n");
        assert_eq!(
            errors.len(),
            1,
            "a syntax error stops the build: {errors:?}"
        );
        assert!(
            errors[0].starts_with("t.yaml:")
                && errors[0].contains(": (document): YAML syntax error: "),
            "syntax errors are placed at the parser's position with path (document): {errors:?}"
        );
    }

    #[test]
    fn second_document_is_refused() {
        let errors = syntax_errors("a: 1\n---\nb: 2\n");
        assert_eq!(
            errors,
            ["t.yaml:2:1: (document): only one YAML document is allowed in a config file"]
        );
    }

    #[test]
    fn empty_text_is_an_empty_mapping() {
        let (root, errors) = tree("");
        assert!(errors.is_empty());
        assert_eq!(root.value, Value::Map(Vec::new()));
    }

    #[test]
    fn null_spellings() {
        let (root, _) = tree("a:\nb: ~\nc: null\nd: \"\"\n");
        let nulls: Vec<bool> = map(&root).iter().map(|(_, v)| v.is_null()).collect();
        assert_eq!(
            nulls,
            [true, true, true, false],
            "a quoted empty string is not null"
        );
    }

    #[test]
    fn hostile_nesting_is_refused_not_overflowed() {
        let text = "[".repeat(10_000);
        let errors = syntax_errors(&text);
        assert_eq!(errors.len(), 1);
    }
}

//! Tests of the positioned YAML tree: positions, refused YAML features
//! and syntax errors.

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
        errors[0].starts_with("t.yaml:") && errors[0].contains(": (document): YAML syntax error: "),
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

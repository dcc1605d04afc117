//! Tests of the readers: scalars, ranges, mapping readers and their
//! errors.

use super::super::tree;
use super::*;

/// Runs `f` over the root mapping of `text`, returning the value and the
/// errors as strings.
fn with_root<T>(text: &str, f: impl FnOnce(&mut Ctx<'_>, MapReader<'_>) -> T) -> (T, Vec<String>) {
    let (root, _) = match tree::parse(text, "t.yaml") {
        Ok(t) => t,
        Err(e) => panic!("{e:?}"),
    };
    let mut cx = Ctx {
        file: "t.yaml",
        source: text,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let r = match MapReader::new(&mut cx, &root, "") {
        Some(r) => r,
        None => panic!("root is not a map"),
    };
    let out = f(&mut cx, r);
    (out, cx.errors.iter().map(ToString::to_string).collect())
}

#[test]
fn quoted_number_is_not_an_integer() {
    let (v, errors) = with_root("port: \"4140\"\n", |cx, mut r| r.opt(cx, "port", port));
    assert_eq!(v, None);
    assert_eq!(
        errors,
        [
            "t.yaml:1:7: port: expected an integer, found the quoted string \"4140\" (remove the quotes)"
        ],
        "a quoted number is a string, not a port"
    );
}

#[test]
fn integers_are_range_checked() {
    let (_, errors) = with_root("port: 70000\nn: -1\n", |cx, mut r| {
        (r.opt(cx, "port", port), r.opt(cx, "n", u32_any))
    });
    assert_eq!(
        errors,
        [
            "t.yaml:1:7: port: expected an integer from 0 to 65535, found 70000",
            "t.yaml:2:4: n: expected an integer from 0 to 4294967295, found -1",
        ]
    );
}

#[test]
fn booleans_are_true_or_false_only() {
    let (v, errors) = with_root("a: true\nb: yes\nc: 'false'\n", |cx, mut r| {
        (
            r.opt(cx, "a", boolean),
            r.opt(cx, "b", boolean),
            r.opt(cx, "c", boolean),
        )
    });
    assert_eq!(v, (Some(true), None, None));
    assert_eq!(
        errors,
        [
            "t.yaml:2:4: b: expected true or false, found 'yes'",
            "t.yaml:3:4: c: expected true or false, found the quoted string \"false\" (remove the quotes)",
        ]
    );
}

#[test]
fn null_reads_as_absent_and_required_null_needs_a_value() {
    let (v, errors) = with_root("a: ~\nb:\n", |cx, mut r| {
        (
            r.opt(cx, "a", port),
            r.req(cx, "b", port),
            r.req(cx, "c", port),
        )
    });
    assert_eq!(v, (None, None, None));
    assert_eq!(
        errors,
        [
            "t.yaml:2:1: b: 'b' needs a value",
            "t.yaml:1:1: c: missing required key 'c'",
        ]
    );
}

#[test]
fn unknown_keys_are_reported_with_a_suggestion_for_near_misses() {
    let (_, errors) = with_root("rooters: []\nzzz: 1\n", |cx, mut r| {
        let _ = r.get("routers");
        let _ = r.get("admin");
        r.finish(cx);
    });
    assert_eq!(
        errors,
        [
            "t.yaml:1:1: rooters: unknown key 'rooters'; did you mean 'routers'?",
            "t.yaml:2:1: zzz: unknown key 'zzz'; known keys: admin, routers",
        ]
    );
}

#[test]
fn suggestion_ignores_case_and_needs_two_edits_or_fewer() {
    assert_eq!(
        suggest("maxheaderskb", &["maxHeadersKB"]),
        Some("maxHeadersKB")
    );
    assert_eq!(
        suggest("dstPrefx", &["dtab", "dstPrefix"]),
        Some("dstPrefix")
    );
    assert_eq!(suggest("completely", &["routers"]), None);
}

#[test]
fn dtab_error_points_into_a_plain_value() {
    let (_, errors) = with_root("dtab: /svc => bad;\n", |cx, mut r| r.opt(cx, "dtab", dtab));
    assert_eq!(
        errors,
        ["t.yaml:1:15: dtab: invalid dtab: simple expected but 'b' found at '/svc => [b]ad;'"]
    );
}

#[test]
fn dtab_error_points_into_a_block_value() {
    let text = "dtab: |\n  /svc => /a;\n  /b => c;\n";
    let (_, errors) = with_root(text, |cx, mut r| r.opt(cx, "dtab", dtab));
    assert_eq!(
        errors,
        [
            "t.yaml:3:9: dtab: invalid dtab: simple expected but 'c' found at '/svc => /a;\\n/b => [c];\\n'"
        ],
        "the error names the line and column of the bad character in the block, on one line"
    );
}

#[test]
fn prefix_reads_wildcards_and_name_captures_as_written() {
    let (v, errors) = with_root(
        "a: /#/io.l5d.consul/{dc}/{service}\nb: \"/#/io.l5d.fs/*/x\"\n",
        |cx, mut r| (r.opt(cx, "a", prefix), r.opt(cx, "b", prefix)),
    );
    assert_eq!(errors, Vec::<String>::new());
    let show = |p: Option<PathMatcher>| p.map(|p| p.pattern().to_owned());
    assert_eq!(
        show(v.0),
        Some("/#/io.l5d.consul/{dc}/{service}".to_owned())
    );
    assert_eq!(show(v.1), Some("/#/io.l5d.fs/*/x".to_owned()));
}

#[test]
fn prefix_error_points_at_the_original_text_around_captures() {
    let (v, errors) = with_root(
        "a: \"/{dc}/x{y}\"\nb: /{}/x\nc: /{svc}/{dc}/b@d\n",
        |cx, mut r| {
            (
                r.opt(cx, "a", prefix),
                r.opt(cx, "b", prefix),
                r.opt(cx, "c", prefix),
            )
        },
    );
    assert_eq!(
        errors,
        [
            "t.yaml:2:5: b: invalid prefix: end of input expected but '{' found at '/[{]}/x'",
            "t.yaml:3:17: c: invalid prefix: end of input expected but '@' found at '/{svc}/{dc}/b[@]d'",
        ],
        "`{{name}}` captures may sit inside an element; errors quote what was written"
    );
    assert_eq!(
        v.0.map(|m| m.pattern().to_owned()),
        Some("/{dc}/x{y}".to_owned())
    );
}

#[test]
fn numbers_are_range_checked() {
    let (v, errors) = with_root("a: 0.5\nb: 0\nc: 1e3\nd: .inf\n", |cx, mut r| {
        (
            r.opt(cx, "a", |cx, n, p| number_in(cx, n, p, 0.0, 1.0, true)),
            r.opt(cx, "b", |cx, n, p| number_in(cx, n, p, 0.0, 1.0, true)),
            r.opt(cx, "c", |cx, n, p| number_in(cx, n, p, 0.0, 1000.0, false)),
            r.opt(cx, "d", number),
        )
    });
    assert_eq!(v, (Some(0.5), None, Some(1000.0), None));
    assert_eq!(
        errors,
        [
            "t.yaml:2:4: b: expected a number greater than 0 and at most 1, found 0",
            "t.yaml:4:4: d: expected a number, found '.inf'",
        ]
    );
}

#[test]
fn dtab_error_points_into_a_quoted_value() {
    let (_, errors) = with_root("dtab: \"/a=>/b;;\"\n", |cx, mut r| r.opt(cx, "dtab", dtab));
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("t.yaml:1:15: dtab: invalid dtab: "),
        "{errors:?}"
    );
}

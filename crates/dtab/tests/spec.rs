//! One test per rule of dtab semantics as Finagle and Linkerd 1 define them
//! (lexical rules, grammar, error messages, show, lookup, simplify, eval,
//! binding, and the places where a port most easily goes wrong), named for
//! the behaviour. The system namers (`/$/…`) are tested beside their code,
//! in `src/global_tests.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use strait_dtab::{
    Bound, Dentry, Dtab, Name, NameTree, Path, Prefix, State, Weighted, bind, format_weight,
};

fn path(s: &str) -> Path {
    Path::read(s).unwrap()
}
fn tree(s: &str) -> NameTree<Path> {
    NameTree::read(s).unwrap()
}
fn dtab(s: &str) -> Dtab {
    Dtab::read(s).unwrap()
}
fn leaf(s: &str) -> NameTree<Path> {
    NameTree::Leaf(path(s))
}
fn err_path(s: &str) -> String {
    Path::read(s).unwrap_err().to_string()
}
fn err_tree(s: &str) -> String {
    NameTree::read(s).unwrap_err().to_string()
}
fn err_dtab(s: &str) -> String {
    Dtab::read(s).unwrap_err().to_string()
}

// Lexical rules

#[test]
fn showable_characters_print_as_themselves() {
    let p = path("/09AZaz_:.#$%-");
    assert_eq!(p.show(), "/09AZaz_:.#$%-", "showable chars need no escape");
}

#[test]
fn hex_escapes_accept_either_case_and_make_one_byte() {
    assert_eq!(
        path(r"/\x6F\x6f").elems()[0].as_ref(),
        b"oo",
        "\\x6F and \\x6f are both 'o'"
    );
    assert_eq!(
        path(r"/\x6F").show(),
        "/o",
        "an escaped showable byte prints plainly"
    );
}

#[test]
fn only_lowercase_x_opens_an_escape() {
    assert_eq!(
        err_path(r"/\X41"),
        r"'x' expected but 'X' found at '/\[X]41'"
    );
}

#[test]
fn escapes_need_two_hex_digits() {
    assert_eq!(
        err_path(r"/\xg0"),
        r"hex char expected but 'g' found at '/\x[g]0'"
    );
    assert_eq!(
        err_path(r"/\x4"),
        r"hex char expected but end of input found at '/\x4[]'"
    );
}

#[test]
fn escaped_slash_stays_inside_one_element() {
    let p = path(r"/a\x2fb");
    assert_eq!(p.len(), 1, "\\x2f does not split the element");
    assert_eq!(p.elems()[0].as_ref(), b"a/b");
}

#[test]
fn any_byte_value_is_allowed_through_escapes() {
    let p = path(r"/\xff\x00");
    assert_eq!(
        p.elems()[0].as_ref(),
        &[0xff, 0x00],
        "elements are bytes, not UTF-8 text"
    );
    assert_eq!(p.show(), r"/\xff\x00");
}

#[test]
fn whitespace_is_skipped_between_tokens_only() {
    assert_eq!(
        path("  /foo/bar \t\n").show(),
        "/foo/bar",
        "whitespace around a path is fine"
    );
    assert_eq!(
        err_path("/foo bar"),
        "end of input expected but 'b' found at '/foo [b]ar'"
    );
    assert_eq!(
        err_path("/foo/ bar"),
        "label char expected but ' ' found at '/foo/[ ]bar'"
    );
}

#[test]
fn whitespace_is_java_whitespace() {
    // U+2003 (em space) and U+001F are Java whitespace; U+00A0 (no-break) is not.
    assert_eq!(tree("/a\u{2003}|\u{1f}/b").show(), "/a | /b");
    assert_eq!(
        err_tree("/a\u{a0}| /b"),
        "end of input expected but '\u{a0}' found at '/a[\u{a0}]| /b'",
        "no-break space is not whitespace"
    );
}

#[test]
fn hash_after_whitespace_or_token_opens_a_comment_to_end_of_line() {
    let d = dtab("# routing\n/a => /b # the b service ; /c=>/d\n;/e => /f");
    assert_eq!(
        d.show(),
        "/a=>/b;/e=>/f",
        "a comment swallows the rest of its line, `;` and all"
    );
    assert_eq!(
        tree("/a |# left\n /b").show(),
        "/a | /b",
        "a comment right after a token"
    );
}

#[test]
fn hash_inside_a_path_continues_the_label() {
    assert_eq!(path("/s#/x").elems().len(), 2);
    assert_eq!(
        path("/s#/x").elems()[0].as_ref(),
        b"s#",
        "`#` after a label char is a label char"
    );
    assert_eq!(
        path("/#/io.l5d.fs").show(),
        "/#/io.l5d.fs",
        "`#` right after `/` is a label"
    );
    assert_eq!(path("/foo#bar").show(), "/foo#bar");
}

#[test]
fn non_ascii_characters_must_be_escaped() {
    assert_eq!(
        err_path("/é"),
        "end of input expected but 'é' found at '/[é]'"
    );
    assert_eq!(
        path(r"/\xc3\xa9").show(),
        r"/\xc3\xa9",
        "escaped UTF-8 prints escaped"
    );
}

// Grammar

#[test]
fn lone_slash_is_the_empty_path() {
    assert!(path("/").is_empty());
    assert_eq!(Path::empty().show(), "/");
}

#[test]
fn empty_labels_are_impossible() {
    assert_eq!(
        err_path("//"),
        "end of input expected but '/' found at '/[/]'"
    );
    assert_eq!(
        err_path("/a//b"),
        "label char expected but '/' found at '/a/[/]b'"
    );
    assert_eq!(
        err_path("/a/"),
        "label char expected but end of input found at '/a/[]'"
    );
    assert_eq!(err_path(""), "'/' expected but end of input found at '[]'");
}

#[test]
fn path_read_tolerates_a_trailing_comment() {
    assert_eq!(path("/a/b # trailing").show(), "/a/b");
}

#[test]
fn ampersand_binds_tighter_than_bar() {
    let t = tree("/a & /b | /c");
    let expected = NameTree::Alt(vec![
        NameTree::Union(vec![leaf("/a").into(), leaf("/b").into()]),
        leaf("/c"),
    ]);
    assert_eq!(t, expected, "`/a & /b | /c` is Alt(Union(a, b), c)");
}

#[test]
fn chains_are_flat_at_one_level_and_parentheses_nest() {
    assert_eq!(
        tree("/a | /b | /c"),
        NameTree::Alt(vec![leaf("/a"), leaf("/b"), leaf("/c")])
    );
    assert_eq!(
        tree("/a | (/b | /c)"),
        NameTree::Alt(vec![
            leaf("/a"),
            NameTree::Alt(vec![leaf("/b"), leaf("/c")])
        ]),
        "parentheses create a nested Alt"
    );
    assert_eq!(
        tree("/a & /b & /c"),
        NameTree::Union(vec![
            leaf("/a").into(),
            leaf("/b").into(),
            leaf("/c").into()
        ])
    );
}

#[test]
fn weight_applies_to_the_following_simple_only() {
    assert_eq!(
        tree("0.3 * /a & 0.7*(/b | /c)"),
        NameTree::Union(vec![
            Weighted::new(0.3, leaf("/a")),
            Weighted::new(0.7, NameTree::Alt(vec![leaf("/b"), leaf("/c")])),
        ])
    );
}

#[test]
fn a_single_weighted_term_loses_its_weight() {
    assert_eq!(tree("0.5 * /a"), leaf("/a"), "`0.5 * /a` is just Leaf(/a)");
}

#[test]
fn weights_accept_leading_and_trailing_dots() {
    assert_eq!(
        tree(".5*/a & 2.*/b"),
        NameTree::Union(vec![
            Weighted::new(0.5, leaf("/a")),
            Weighted::new(2.0, leaf("/b"))
        ])
    );
}

#[test]
fn neg_fail_empty_are_simple_trees() {
    assert_eq!(tree("~"), NameTree::Neg);
    assert_eq!(tree("!"), NameTree::Fail);
    assert_eq!(tree("$"), NameTree::Empty);
    assert_eq!(tree("~ | ! | $").show(), "~ | ! | $");
}

#[test]
fn semicolon_separates_and_one_trailing_is_allowed() {
    assert_eq!(dtab("/a=>/b;/c=>/d;").len(), 2);
    assert_eq!(
        err_dtab("/a=>/b;;"),
        "'/' expected but ';' found at '/a=>/b;[;]'",
        "`;;` is an error"
    );
    assert_eq!(
        err_dtab(";"),
        "'/' expected but ';' found at '[;]'",
        "a lone `;` is an error"
    );
    assert_eq!(
        err_dtab("/a=>/b /c=>/d"),
        "end of input expected but '/' found at '/a=>/b [/]c=>/d'",
        "a missing `;` is an error"
    );
}

#[test]
fn empty_or_comment_only_text_is_the_empty_dtab() {
    assert!(dtab("").is_empty());
    assert!(dtab("  # nothing here\n  ").is_empty());
    assert_eq!(Dtab::empty().show(), "");
}

#[test]
fn wildcard_is_only_legal_in_prefixes() {
    assert_eq!(
        err_tree("/a/*"),
        "label char expected but '*' found at '/a/[*]'"
    );
    let d = Dentry::read("/a/*/c => /x").unwrap();
    assert_eq!(d.prefix.show(), "/a/*/c");
    assert_eq!(
        Prefix::read("/a*").unwrap_err().to_string(),
        "end of input expected but '*' found at '/a[*]'",
        "`*` must be a whole element"
    );
}

#[test]
fn escaped_star_in_a_prefix_is_a_literal_label() {
    let p = Prefix::read(r"/\x2a").unwrap();
    assert_eq!(
        p.show(),
        r"/\x2a",
        "\\x2a is a one-byte label, not a wildcard"
    );
    assert!(
        !p.matches(&path("/anything")),
        "a literal `*` label matches only `*`"
    );
    assert!(Prefix::read("/*").unwrap().matches(&path("/anything")));
}

#[test]
fn comma_is_never_a_dtab_separator() {
    assert_eq!(
        err_dtab("/a=>/b,/c=>/d"),
        "end of input expected but ',' found at '/a=>/b[,]/c=>/d'"
    );
}

#[test]
fn arrow_characters_must_touch() {
    assert_eq!(
        err_dtab("/a= >/b"),
        "'>' expected but ' ' found at '/a=[ ]>/b'"
    );
    assert_eq!(
        dtab("  /a  =>  /b  ").show(),
        "/a=>/b",
        "whitespace around `=>` is fine"
    );
}

// Error messages

#[test]
fn errors_name_expected_found_and_bracket_the_position() {
    assert_eq!(
        err_dtab("invalid-param"),
        "'/' expected but 'i' found at '[i]nvalid-param'"
    );
    assert_eq!(
        err_tree("/a & "),
        "simple expected but end of input found at '/a & []'"
    );
    assert_eq!(
        err_tree("(/a"),
        "')' expected but end of input found at '(/a[]'"
    );
    assert_eq!(
        err_tree("0.5 /a"),
        "'*' expected but '/' found at '0.5 [/]a'"
    );
    assert_eq!(
        err_tree("1.2.3*/a"),
        "number char expected but '.' found at '1.2[.]3*/a'"
    );
    assert_eq!(
        err_tree("/a | ?"),
        "simple expected but '?' found at '/a | [?]'"
    );
}

#[test]
fn lone_dot_weight_names_the_dot_but_brackets_the_next_character() {
    assert_eq!(
        err_tree("/foo & . * /bar"),
        "weight expected but '.' found at '/foo & .[ ]* /bar'"
    );
}

#[test]
fn parse_errors_report_the_offset() {
    let e = Dtab::read("/a=>/b;;").unwrap_err();
    assert_eq!(
        e.offset(),
        7,
        "the offset is the bracketed character's index"
    );
}

// Show

#[test]
fn element_with_any_unshowable_byte_prints_every_byte_escaped() {
    assert_eq!(
        path(r"/foo\x20bar").show(),
        r"/\x66\x6f\x6f\x20\x62\x61\x72"
    );
}

#[test]
fn alt_members_join_with_bar_and_nested_alts_get_parentheses() {
    assert_eq!(tree("/a|/b").show(), "/a | /b");
    assert_eq!(tree("/a | (/b | /c)").show(), "/a | (/b | /c)");
    assert_eq!(
        tree("(/a | /b)").show(),
        "/a | /b",
        "a top-level Alt needs no parentheses"
    );
}

#[test]
fn unions_inside_alts_need_no_parentheses_but_alts_and_unions_inside_unions_do() {
    assert_eq!(tree("(/a & /b) | /c").show(), "/a & /b | /c");
    assert_eq!(tree("(/a | /b) & /c").show(), "(/a | /b) & /c");
    assert_eq!(tree("/a & (/b & /c)").show(), "/a & (/b & /c)");
}

#[test]
fn single_child_nodes_print_as_their_child() {
    let t = NameTree::Alt(vec![NameTree::Union(vec![Weighted::new(0.5, leaf("/a"))])]);
    assert_eq!(
        t.show(),
        "/a",
        "a single-child Alt/Union prints as its child, weight dropped"
    );
}

#[test]
fn weights_print_with_two_decimals_and_default_weight_is_omitted() {
    assert_eq!(
        tree("0.5*/b & 3*/c & 1.0*/d").show(),
        "0.50*/b & 3.00*/c & /d"
    );
}

#[test]
fn weights_round_half_up_on_the_shortest_decimal_form() {
    assert_eq!(format_weight(0.125), "0.13", "Java's %.2f rounds 0.125 up");
    assert_eq!(
        format_weight(0.145),
        "0.15",
        "HALF_UP on the decimal 0.145, not the binary value"
    );
    assert_eq!(
        format!("{:.2}", 0.145_f64),
        "0.14",
        "Rust's own formatting differs (why format_weight exists)"
    );
    assert_eq!(
        format_weight(9.995),
        "10.00",
        "carry propagates into the integer part"
    );
    assert_eq!(format_weight(0.001), "0.00");
    assert_eq!(tree("0.125*/a & /b").show(), "0.13*/a & /b");
}

#[test]
fn dentry_and_dtab_print_without_spaces_or_trailing_semicolon() {
    assert_eq!(
        Dentry::read(" /svc  =>  /#/io.l5d.consul/dc1 ")
            .unwrap()
            .show(),
        "/svc=>/#/io.l5d.consul/dc1"
    );
    assert_eq!(
        dtab("/a => /b | /c;\n/d => 0.1*/e & 0.9*/f;").show(),
        "/a=>/b | /c;/d=>0.10*/e & 0.90*/f"
    );
}

#[test]
fn show_then_parse_is_stable() {
    for s in ["/a=>/b | (/c & 2*/d) | ~;/e/*=>$", r"/\x00=>!", "/=>/"] {
        let once = dtab(s).show();
        assert_eq!(
            dtab(&once).show(),
            once,
            "show(parse(show(x))) == show(x) for {s}"
        );
        assert_eq!(dtab(&once), dtab(s), "parse(show(x)) == x for {s}");
    }
}

// Dtab.lookup

#[test]
fn lookup_tries_later_dentries_first_and_combines_all_matches() {
    let d = dtab("/a=>/x;/a/b=>/y;/c=>/z");
    assert_eq!(
        d.lookup(&path("/a/b/c")).show(),
        "/y/c | /x/b/c",
        "all matches, last first, as an Alt"
    );
}

#[test]
fn lookup_with_one_match_is_that_tree_with_the_rest_appended() {
    let d = dtab("/svc=>/#/io.l5d.fs | /$/nil");
    assert_eq!(
        d.lookup(&path("/svc/hello/x")).show(),
        "/#/io.l5d.fs/hello/x | /$/nil/hello/x"
    );
}

#[test]
fn lookup_without_a_match_is_neg() {
    assert_eq!(dtab("/a=>/b").lookup(&path("/c")), NameTree::Neg);
    assert_eq!(
        dtab("/a/b=>/x").lookup(&path("/a")),
        NameTree::Neg,
        "a prefix longer than the path never matches"
    );
}

#[test]
fn lookup_matches_whole_elements() {
    assert_eq!(
        dtab("/s=>/x").lookup(&path("/s#/y")),
        NameTree::Neg,
        "/s does not match /s#/y"
    );
    assert_eq!(dtab("/s=>/x").lookup(&path("/sv")), NameTree::Neg);
}

#[test]
fn wildcard_matches_any_one_element() {
    assert_eq!(dtab("/*/b=>/z").lookup(&path("/a/b/c")).show(), "/z/c");
    assert_eq!(
        dtab("/=>/root").lookup(&path("/a")).show(),
        "/root/a",
        "the empty prefix matches everything"
    );
}

#[test]
fn lookup_leaves_neg_fail_empty_untouched_and_does_not_simplify() {
    assert_eq!(
        dtab("/a=>~ | $ | ! | /b").lookup(&path("/a/x")).show(),
        "~ | $ | ! | /b/x"
    );
}

#[test]
fn concat_puts_the_local_dtab_last_so_it_wins() {
    let base = dtab("/svc=>/base");
    let local = dtab("/svc=>/local");
    let d = base.concat(&local);
    assert_eq!(d.show(), "/svc=>/base;/svc=>/local");
    assert_eq!(
        d.lookup(&path("/svc/a")).show(),
        "/local/a | /base/a",
        "per-request entries are tried first"
    );
}

#[test]
fn simplified_dtab_drops_dentries_that_became_neg() {
    assert_eq!(
        dtab("/a=>~ | ~;/b=>/c | ~;/d=>(/e)").simplified().show(),
        "/b=>/c;/d=>/e"
    );
}

#[test]
fn strip_prefix_removes_only_an_exact_leading_run() {
    let d = dtab("/a=>/b;/c=>/d;/e=>/f");
    assert_eq!(d.strip_prefix(&dtab("/a=>/b;/c=>/d")).show(), "/e=>/f");
    assert_eq!(d.strip_prefix(&dtab("/c=>/d")), d, "not leading: unchanged");
    assert_eq!(
        d.strip_prefix(&dtab("/a=>/b;/c=>/x")),
        d,
        "not exact: unchanged"
    );
    assert!(d.strip_prefix(&d).is_empty());
}

// simplify

fn simp(s: &str) -> String {
    tree(s).simplify().show()
}

#[test]
fn simplify_alt_drops_neg_and_stops_at_the_first_fail() {
    assert_eq!(simp("~ | /a | ~ | /b"), "/a | /b");
    assert_eq!(
        simp("/a | ! | /b"),
        "/a | !",
        "alternatives after a Fail vanish"
    );
    assert_eq!(simp("~ | ~"), "~", "nothing left is Neg");
    assert_eq!(simp("~ | /a"), "/a", "one left is that child");
    assert_eq!(simp("$ | /a"), "$ | /a", "Empty is kept in an Alt");
}

#[test]
fn simplify_empty_nodes_are_neg() {
    assert_eq!(NameTree::<Path>::Alt(vec![]).simplify(), NameTree::Neg);
    assert_eq!(NameTree::<Path>::Union(vec![]).simplify(), NameTree::Neg);
}

#[test]
fn simplify_union_drops_fail_and_neg_and_keeps_weights() {
    assert_eq!(simp("0.2*/a & ! & 0.5*~ & 0.3*/b"), "0.20*/a & 0.30*/b");
    assert_eq!(simp("! & ~"), "~", "no survivors is Neg");
    assert_eq!(simp("0.2*/a & !"), "/a", "one survivor loses its weight");
    assert_eq!(simp("/a & $"), "/a & $", "Empty survives in a Union");
}

#[test]
fn simplify_does_not_flatten_nested_nodes() {
    assert_eq!(simp("/a | (/b | ~ | /c)"), "/a | (/b | /c)");
}

#[test]
fn simplify_is_idempotent() {
    for s in ["/a | (~ | (/b & !)) | !", "(~ & /a) | ($ & ~)", "((/a))"] {
        let once = tree(s).simplify();
        assert_eq!(
            once.simplify(),
            once,
            "simplify(simplify(t)) == simplify(t) for {s}"
        );
    }
}

// eval

fn eval(s: &str) -> Option<Vec<String>> {
    tree(s).eval().map(|v| {
        let mut v: Vec<String> = v.iter().map(Path::show).collect();
        v.sort();
        v
    })
}

#[test]
fn eval_leaf_empty_neg_fail() {
    assert_eq!(eval("/a"), Some(vec!["/a".to_owned()]));
    assert_eq!(eval("$"), Some(vec![]), "Empty is success with no members");
    assert_eq!(eval("~"), None);
    assert_eq!(eval("!"), None);
}

#[test]
fn eval_alt_takes_the_first_non_negative_and_fail_stops_it() {
    assert_eq!(
        eval("~ | $ | /x"),
        Some(vec![]),
        "Empty wins like any success"
    );
    assert_eq!(eval("! | /ok"), None, "a Fail child fails the whole Alt");
    assert_eq!(eval("~ | /b | /c"), Some(vec!["/b".to_owned()]));
}

#[test]
fn eval_union_skips_neg_and_fail_and_unions_the_rest() {
    assert_eq!(
        eval("/ok & !"),
        Some(vec!["/ok".to_owned()]),
        "since finagle 2fde4d2d0"
    );
    assert_eq!(eval("! & ! & !"), None);
    assert_eq!(
        eval("/a & ~ & (/b | /c) & /a"),
        Some(vec!["/a".to_owned(), "/b".to_owned()]),
        "leaves are a set"
    );
}

#[test]
fn eval_ignores_weights() {
    assert_eq!(eval("0.1*/a & 9*/b"), eval("/a & /b"));
}

#[test]
fn eval_of_simplified_equals_eval() {
    for s in [
        "/a | ! | /b",
        "(! & ~) | /c",
        "~ | (/a & !) | /b",
        "(/x & !) | /y",
    ] {
        assert_eq!(
            tree(s).simplify().eval(),
            tree(s).eval(),
            "eval(simplify(t)) == eval(t) for {s}"
        );
    }
}

// Binding

/// A lookup over a table of canned answers; `/$/...` paths bind to
/// themselves. Records every path looked up.
struct Canned {
    answers: Vec<(Path, State<NameTree<Name<()>>>)>,
    seen: Vec<String>,
}

impl Canned {
    fn new(answers: &[(&str, State<NameTree<Name<()>>>)]) -> Self {
        Canned {
            answers: answers.iter().map(|(p, s)| (path(p), s.clone())).collect(),
            seen: vec![],
        }
    }
    fn lookup(&mut self, p: &Path) -> State<NameTree<Name<()>>> {
        self.seen.push(p.show());
        if p.elems().first().is_some_and(|e| e.as_ref() == b"$") {
            return State::Ok(NameTree::Leaf(Name::Bound(Bound::new(
                p.clone(),
                Path::empty(),
                (),
            ))));
        }
        self.answers
            .iter()
            .find(|(k, _)| k == p)
            .map_or(State::Ok(NameTree::Neg), |(_, s)| s.clone())
    }
    fn bind(&mut self, t: &str) -> State<NameTree<Bound<()>>> {
        bind(&mut |p: &Path| self.lookup(p), &tree(t), 100)
    }
}

fn ok_path(s: &str) -> State<NameTree<Name<()>>> {
    State::Ok(tree(s).map(&mut |p: &Path| Name::Path(p.clone())))
}

fn shown(s: State<NameTree<Bound<()>>>) -> String {
    match s {
        State::Ok(t) => t.show(),
        State::Pending => "pending".into(),
        State::Failed(e) => format!("failed: {e}"),
    }
}

#[test]
fn bind_follows_lookups_until_bound() {
    let mut c = Canned::new(&[
        ("/svc/a", ok_path("/x/a")),
        ("/x/a", ok_path("/$/inet/h/1")),
    ]);
    assert_eq!(shown(c.bind("/svc/a")), "/$/inet/h/1");
}

#[test]
fn bind_alt_falls_through_neg_and_stops_on_fail() {
    let mut c = Canned::new(&[("/fail", State::Ok(NameTree::Fail))]);
    assert_eq!(
        shown(c.bind("/nothing | /$/a")),
        "/$/a",
        "Neg moves on to the next alternative"
    );
    assert_eq!(shown(c.bind("/fail | /$/a")), "!", "Fail stops the Alt");
    assert_eq!(shown(c.bind("~ | $ | /$/a")), "$", "Empty is an answer");
}

#[test]
fn bind_alt_binds_later_alternatives_lazily() {
    let mut c = Canned::new(&[]);
    assert_eq!(shown(c.bind("/$/first | /never/looked/up")), "/$/first");
    assert_eq!(
        c.seen,
        vec!["/$/first"],
        "the second alternative is never looked up"
    );
}

#[test]
fn bind_alt_with_a_pending_or_failed_alternative_is_pending_or_failed() {
    let mut c = Canned::new(&[
        ("/slow", State::Pending),
        ("/broken", State::Failed("boom".into())),
    ]);
    assert_eq!(
        shown(c.bind("/slow | /$/a")),
        "pending",
        "no skipping past a pending alternative"
    );
    assert_eq!(
        shown(c.bind("/broken | /$/a")),
        "failed: boom",
        "no skipping past a failed alternative"
    );
}

#[test]
fn bind_union_keeps_ok_branches_and_ignores_pending_and_failed_ones() {
    let mut c = Canned::new(&[
        ("/slow", State::Pending),
        ("/broken", State::Failed("boom".into())),
    ]);
    assert_eq!(
        shown(c.bind("0.5*/$/a & /slow & /broken & 0.25*/$/b")),
        "0.50*/$/a & 0.25*/$/b"
    );
    assert_eq!(
        shown(c.bind("/slow & /broken")),
        "failed: boom",
        "no Ok branch: the first failure"
    );
    assert_eq!(
        shown(c.bind("/slow & /slow")),
        "pending",
        "no Ok branch and no failure: pending"
    );
    assert_eq!(
        shown(c.bind("/$/a & ! & ~")),
        "/$/a",
        "Neg and Fail branches drop out of a bound union"
    );
}

#[test]
fn bind_attaches_the_nearest_union_weight_to_bound_leaves() {
    let mut c = Canned::new(&[("/svc/a", ok_path("/$/inet/h/1 | /x"))]);
    let State::Ok(t) = c.bind("0.7*/svc/a & 0.3*(0.9*/$/b & 0.1*/$/c)") else {
        panic!("bind failed")
    };
    let mut weights = Vec::new();
    t.for_each_leaf(&mut |b: &Bound<()>| weights.push((b.id.show(), b.weight)));
    assert_eq!(
        weights,
        vec![
            ("/$/inet/h/1".into(), Some(0.7)),
            ("/$/b".into(), Some(0.9)),
            ("/$/c".into(), Some(0.1))
        ],
        "the weight is carried through lookups and the nearest union wins"
    );
}

#[test]
fn bind_without_a_union_carries_no_weight() {
    let mut c = Canned::new(&[]);
    let State::Ok(NameTree::Leaf(b)) = c.bind("/$/a") else {
        panic!("expected a leaf")
    };
    assert_eq!(b.weight, None);
}

#[test]
fn bind_allows_exactly_max_depth_lookups_in_a_chain() {
    // 99 rewrites /s0 -> /s1 -> ... -> /s98 -> /$/end, then the system
    // namer's lookup of /$/end: 100 lookups.
    let mut answers: Vec<(String, State<NameTree<Name<()>>>)> = (0..98)
        .map(|i| (format!("/s{i}"), ok_path(&format!("/s{}", i + 1))))
        .collect();
    answers.push(("/s98".into(), ok_path("/$/end")));
    let refs: Vec<(&str, State<NameTree<Name<()>>>)> = answers
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    let mut c = Canned::new(&refs);
    assert_eq!(
        shown(c.bind("/s0")),
        "/$/end",
        "100 lookups in a chain are allowed"
    );
    assert_eq!(
        shown(c.bind("/s98 & /s0 & /extra")),
        "/$/end & /$/end",
        "a union does not add depth (and /extra is Neg)"
    );

    // One more rewrite in front: 101 lookups.
    answers.push(("/t".into(), ok_path("/s0")));
    let refs: Vec<(&str, State<NameTree<Name<()>>>)> = answers
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    let mut c = Canned::new(&refs);
    assert_eq!(
        shown(c.bind("/t")),
        "failed: Max recursion level: 100 reached in Namer lookup"
    );
}

#[test]
fn bind_loops_run_into_the_depth_limit() {
    let d = dtab("/a=>/b;/b=>/a");
    let r = bind(
        &mut |p: &Path| strait_dtab::default_lookup(&d, p),
        &tree("/a"),
        7,
    );
    assert_eq!(
        r.map(|t| t.show()),
        State::Failed("Max recursion level: 7 reached in Namer lookup".into())
    );
}

#[test]
fn default_interpreter_falls_back_to_system_namers_only_on_exactly_neg() {
    let d = dtab("/$/inet=>~");
    let r = strait_dtab::bind_path(&d, &path("/$/inet/127.0.0.1/80"), 100);
    assert_eq!(
        r.map(|t| t.show()),
        State::Ok("/$/inet/127.0.0.1/80".into()),
        "a sole `=> ~` match falls through"
    );
    let d = dtab("/$/inet=>~;/$/inet=>~");
    let r = strait_dtab::bind_path(&d, &path("/$/inet/127.0.0.1/80"), 100);
    assert_eq!(
        r.map(|t| t.show()),
        State::Ok("~".into()),
        "two `~` matches are Alt(~,~), not exactly Neg"
    );
}

#[test]
fn default_interpreter_binds_a_linkerd_style_dtab_to_inet() {
    let d = dtab("/ph=>/$/io.buoyant.rinet;/svc=>/ph/80;/svc=>/$/inet/127.0.0.1/8080");
    let r = strait_dtab::bind_path(&d, &path("/svc/hello/world"), 100);
    let State::Ok(NameTree::Leaf(b)) = r else {
        panic!("expected one bound leaf, got {r:?}")
    };
    assert_eq!(
        b.id.show(),
        "/$/inet/127.0.0.1/8080",
        "the later dentry wins"
    );
    assert_eq!(
        b.residual.show(),
        "/hello/world",
        "the unconsumed rest is the residual"
    );
    assert_eq!(b.addr.host, "127.0.0.1");
    assert_eq!(b.addr.port, 8080);
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("/a=>{}/b{}", "(".repeat(5000), ")".repeat(5000));
    let e = Dtab::read(&deep).unwrap_err().to_string();
    assert!(
        e.starts_with("at most 100 nested '(' expected but '(' found at"),
        "{e}"
    );
    let ok = format!("{}/b{}", "(".repeat(100), ")".repeat(100));
    assert_eq!(tree(&ok).show(), "/b", "100 levels are fine");
}

#[test]
fn infinite_weights_are_refused_so_show_always_parses_back() {
    let e = err_tree(&format!("/a & {}*/b", "9".repeat(400)));
    assert!(
        e.starts_with("finite weight expected but '9' found at '/a & [9]"),
        "{e}"
    );
}

#![allow(clippy::unwrap_used)]

use super::*;

fn m(pattern: &str) -> PathMatcher {
    PathMatcher::new(pattern).unwrap()
}

fn p(path: &str) -> Path {
    Path::read(path).unwrap()
}

fn caps(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
    let mut v: Vec<_> = m(pattern).captures(&p(path))?.into_iter().collect();
    v.sort();
    Some(v)
}

fn pairs(items: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
    Some(
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

#[test]
fn captures_are_greedy() {
    assert_eq!(
        caps("/{A}-{B}", "/foo-bar-baz"),
        pairs(&[("A", "foo-bar"), ("B", "baz")])
    );
}

#[test]
fn dots_are_literal() {
    assert_eq!(
        caps("/{A}.{B}.{C}", "/www.foo.com"),
        pairs(&[("A", "www"), ("B", "foo"), ("C", "com")])
    );
    assert_eq!(caps("/{A}.{B}", "/wwwXfoo"), None);
    assert_eq!(caps("/{A}:http", "/bas:http"), pairs(&[("A", "bas")]));
}

#[test]
fn root_matches_everything() {
    assert!(m("/").matches(&p("/")));
    assert!(m("/").matches(&p("/a/b")));
    assert!(m("").matches(&p("/a")));
}

#[test]
fn trailing_slash_is_ignored() {
    assert!(m("/a/b/").matches(&p("/a/b")));
    assert!(m("/a/b/").matches(&p("/a/b/c")));
    assert!(!m("/a/b/").matches(&p("/a")));
}

#[test]
fn prefix_match_and_short_paths() {
    assert!(m("/svc/foo").matches(&p("/svc/foo/bar")));
    assert!(!m("/svc/foo").matches(&p("/svc/food")));
    assert!(!m("/svc/foo").matches(&p("/svc")));
}

#[test]
fn star_is_one_element_and_excess_is_no_match() {
    assert!(m("/#/io.l5d.fs/*").matches(&p("/#/io.l5d.fs/web")));
    assert!(m("/*/b").matches(&p("/a/b/c")));
    assert!(!m("/*/b").matches(&p("/a/c")));
    assert!(!m("/a/*").matches(&p("/a")));
}

#[test]
fn capture_pieces_are_anchored() {
    // Linkerd (unanchored) would match both; Strait does not.
    assert!(!m("/a{x}").matches(&p("/ba")));
    assert!(!m("/{x}.prod").matches(&p("/foo.prod.eu")));
    assert!(m("/{x}.prod").matches(&p("/foo.prod")));
}

#[test]
fn other_metacharacters_are_literal() {
    assert!(m("/{x}$y").matches(&p("/a$y")));
    assert!(!m("/{x}$y").matches(&p("/a")));
}

#[test]
fn literals_compare_shown_elements() {
    let path = Path::from_elems([&b"a\x01"[..]]).unwrap();
    assert!(m("/\\x61\\x01").matches(&path));
    assert!(m("/{x}").matches(&path));
    assert_eq!(
        m("/{x}").captures(&path).unwrap()["x"],
        "\\x61\\x01".to_owned()
    );
}

#[test]
fn malformed_braces_are_literal() {
    assert_eq!(split_captures("{}x"), [Part::Lit("{}x")]);
    assert_eq!(
        split_captures("{a b}{c}"),
        [Part::Lit("{a b}"), Part::Var("c")]
    );
    assert!(!m("/{}").matches(&p("/x")));
}

#[test]
fn substitute_replaces_every_occurrence_and_keeps_unknowns() {
    let c: Captures = [("service".to_owned(), "foo".to_owned())].into();
    assert_eq!(substitute("/srv/{service}", &c), "/srv/foo");
    assert_eq!(
        substitute("/{service}/{service}/{other}", &c),
        "/foo/foo/{other}"
    );
    assert_eq!(
        m("/{service}/api").substitute_path(&p("/foo/api/v1"), "/srv/{service}"),
        Some("/srv/foo".to_owned())
    );
    assert_eq!(
        m("/{service}/api").substitute_path(&p("/foo/web"), "/srv/{service}"),
        None
    );
}

//! Property tests for the dtab language: show/parse round trips, simplify,
//! eval, lookup, and parser robustness.
//!
//! Notes on what `show` can and cannot preserve (as Finagle prints them):
//! * A single-child `Alt`/`Union` prints as its child (a union weight is
//!   dropped), and an empty `Alt`/`Union` prints as nothing, so trees only
//!   round-trip exactly in "normal form" (every `Alt`/`Union` has at least
//!   two children). The parser only ever produces normal-form trees.
//! * Weights print with two decimals (Java `%.2f`, HALF_UP), so the
//!   generators use multiples of 0.01 (and 1.0, which prints as nothing).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;

use bytes::Bytes;
use proptest::prelude::*;
use strait_dtab::{
    Dentry, Dtab, NameTree, Path, Prefix, PrefixElem, Weighted, format_weight, is_showable,
};

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

/// One path element: non-empty bytes. Mixes plain showable labels, arbitrary
/// bytes (including `/`, `\`, `*`, whitespace, non-ASCII) and a few tricky
/// fixed ones.
fn elem() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        4 => "[0-9A-Za-z_:.#$%-]{1,8}".prop_map(|s| Bytes::from(s.into_bytes())),
        3 => prop::collection::vec(any::<u8>(), 1..6).prop_map(Bytes::from),
        1 => prop::sample::select(vec![
            &b"*"[..], b"/", b"#", b"$", b"\\x2f", b" ", b"\xff", b"\x00", b"(", b"=>",
            b"#comment", "é".as_bytes(),
        ])
        .prop_map(Bytes::from_static),
    ]
}

fn path() -> impl Strategy<Value = Path> {
    prop::collection::vec(elem(), 0..5).prop_map(|es| Path::from_elems(es).unwrap())
}

/// Builds a prefix from `None` (`*`) and `Some(label)` items. (`PrefixElem`
/// is not `Debug`, so strategies cannot yield it directly.)
fn to_prefix(es: Vec<Option<Bytes>>) -> Prefix {
    Prefix::from_elems(
        es.into_iter()
            .map(|e| e.map_or(PrefixElem::Any, PrefixElem::Label))
            .collect(),
    )
    .unwrap()
}

fn prefix() -> impl Strategy<Value = Prefix> {
    prop::collection::vec(prop::option::weighted(0.75, elem()), 0..5).prop_map(to_prefix)
}

/// A weight that survives show: 1.0 (printed as nothing) or a multiple of
/// 0.01 in [0, 100].
fn weight() -> impl Strategy<Value = f64> {
    prop_oneof![
        2 => Just(1.0),
        3 => (0u32..=10_000).prop_map(|k| f64::from(k) / 100.0),
    ]
}

/// Name trees over `leaf` whose `Alt`/`Union` nodes have between
/// `min_children` and 3 children.
fn tree_with<L>(leaf: L, min_children: usize) -> impl Strategy<Value = NameTree<Path>>
where
    L: Strategy<Value = Path> + 'static,
{
    let simple = prop_oneof![
        4 => leaf.prop_map(NameTree::Leaf),
        1 => Just(NameTree::Neg),
        1 => Just(NameTree::Fail),
        1 => Just(NameTree::Empty),
    ];
    simple.prop_recursive(4, 32, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), min_children..4).prop_map(NameTree::Alt),
            prop::collection::vec(
                (weight(), inner).prop_map(|(w, t)| Weighted::new(w, t)),
                min_children..4,
            )
            .prop_map(NameTree::Union),
        ]
    })
}

/// Any tree, including empty and single-child `Alt`/`Union` nodes.
fn any_tree() -> impl Strategy<Value = NameTree<Path>> {
    tree_with(path(), 0)
}

/// Trees without empty `Alt`/`Union` nodes (single-child ones allowed): their
/// show parses.
fn nonempty_tree() -> impl Strategy<Value = NameTree<Path>> {
    tree_with(path(), 1)
}

/// Normal-form trees: every `Alt`/`Union` has at least two children.
fn normal_tree() -> impl Strategy<Value = NameTree<Path>> {
    tree_with(path(), 2)
}

fn dentry() -> impl Strategy<Value = Dentry> {
    (prefix(), normal_tree()).prop_map(|(p, t)| Dentry::new(p, t))
}

fn dtab() -> impl Strategy<Value = Dtab> {
    prop::collection::vec(dentry(), 0..5).prop_map(Dtab::new)
}

/// Paths over a three-letter alphabet, so that lookups actually match.
fn small_path() -> impl Strategy<Value = Path> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 0..4)
        .prop_map(|es| Path::utf8(&es))
}

fn small_prefix() -> impl Strategy<Value = Prefix> {
    let label =
        prop::sample::select(vec!["a", "b", "c"]).prop_map(|s| Bytes::from_static(s.as_bytes()));
    prop::collection::vec(prop::option::weighted(0.75, label), 0..3).prop_map(to_prefix)
}

fn small_dtab() -> impl Strategy<Value = Dtab> {
    prop::collection::vec(
        (small_prefix(), tree_with(small_path(), 0)).prop_map(|(p, t)| Dentry::new(p, t)),
        0..6,
    )
    .prop_map(Dtab::new)
}

/// Text made of the grammar's tokens (and some noise), to drive the parsers
/// deeper than uniformly random strings do.
fn token_soup() -> impl Strategy<Value = String> {
    let tokens = vec![
        "/", "/", "/", "a", "b", "#", "$", "\\x", "\\x2f", "\\xFf", "2f", "*", "=>", "=", ">", "|",
        "&", "(", ")", "~", "!", ";", ";", " ", "\n", "\t", "\u{2028}", "\u{a0}", "0.5", "1", ".",
        ".25", "3.", "*", "é", ",", "\\",
    ];
    prop::collection::vec(prop::sample::select(tokens), 0..32).prop_map(|ts| ts.concat())
}

/// Arbitrary input for the parsers: any Unicode, lossy-decoded bytes, or
/// token soup.
fn parser_input() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        token_soup(),
    ]
}

// ---------------------------------------------------------------------------
// Helpers and reference models
// ---------------------------------------------------------------------------

fn is_normal(t: &NameTree<Path>) -> bool {
    match t {
        NameTree::Alt(ts) => ts.len() >= 2 && ts.iter().all(is_normal),
        NameTree::Union(ws) => ws.len() >= 2 && ws.iter().all(|w| is_normal(&w.tree)),
        _ => true,
    }
}

fn has_empty_node(t: &NameTree<Path>) -> bool {
    match t {
        NameTree::Alt(ts) => ts.is_empty() || ts.iter().any(has_empty_node),
        NameTree::Union(ws) => ws.is_empty() || ws.iter().any(|w| has_empty_node(&w.tree)),
        _ => false,
    }
}

/// Whether `t` is in the shape simplify promises: no `Neg` below an
/// `Alt`/`Union`, no `Fail` in a `Union`, `Fail` only last in an `Alt`, and
/// no empty or single-child nodes.
fn is_simplified(t: &NameTree<Path>) -> bool {
    match t {
        NameTree::Alt(ts) => {
            ts.len() >= 2
                && ts.iter().all(|t| *t != NameTree::Neg && is_simplified(t))
                && ts[..ts.len() - 1].iter().all(|t| *t != NameTree::Fail)
        }
        NameTree::Union(ws) => {
            ws.len() >= 2
                && ws.iter().all(|w| {
                    !matches!(w.tree, NameTree::Neg | NameTree::Fail) && is_simplified(&w.tree)
                })
        }
        _ => true,
    }
}

fn leaf_set(v: Option<Vec<Path>>) -> Option<BTreeSet<Path>> {
    v.map(|v| v.into_iter().collect())
}

/// Structural equality where weights count as equal when they print the
/// same (`show` keeps two decimals).
fn same_shape(a: &NameTree<Path>, b: &NameTree<Path>) -> bool {
    match (a, b) {
        (NameTree::Leaf(x), NameTree::Leaf(y)) => x == y,
        (NameTree::Alt(xs), NameTree::Alt(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same_shape(x, y))
        }
        (NameTree::Union(xs), NameTree::Union(ys)) => {
            xs.len() == ys.len()
                && xs.iter().zip(ys).all(|(x, y)| {
                    format_weight(x.weight) == format_weight(y.weight)
                        && same_shape(&x.tree, &y.tree)
                })
        }
        (NameTree::Neg, NameTree::Neg)
        | (NameTree::Fail, NameTree::Fail)
        | (NameTree::Empty, NameTree::Empty) => true,
        _ => false,
    }
}

/// Whether every union weight in `t` prints and re-reads to the same
/// two-decimal text. Weights at or above 2^46 lose their cents when read
/// back, and non-finite ones print as `NaN`/`Infinity`, which do not parse.
fn weights_reprintable(t: &NameTree<Path>) -> bool {
    match t {
        NameTree::Alt(ts) => ts.iter().all(weights_reprintable),
        NameTree::Union(ws) => ws
            .iter()
            .all(|w| w.weight.is_finite() && w.weight < 1e12 && weights_reprintable(&w.tree)),
        _ => true,
    }
}

/// A reimplementation of Finagle's `Dtab.lookup`, independent of
/// the crate's `Prefix::matches`, `Path::drop` and `NameTree::map`.
fn model_lookup(dtab: &Dtab, path: &Path) -> NameTree<Path> {
    fn append(t: &NameTree<Path>, suffix: &[Bytes]) -> NameTree<Path> {
        match t {
            NameTree::Leaf(p) => {
                NameTree::Leaf(Path::from_elems(p.elems().iter().chain(suffix).cloned()).unwrap())
            }
            NameTree::Alt(ts) => NameTree::Alt(ts.iter().map(|t| append(t, suffix)).collect()),
            NameTree::Union(ws) => NameTree::Union(
                ws.iter()
                    .map(|w| Weighted::new(w.weight, append(&w.tree, suffix)))
                    .collect(),
            ),
            NameTree::Neg => NameTree::Neg,
            NameTree::Fail => NameTree::Fail,
            NameTree::Empty => NameTree::Empty,
        }
    }
    let elems = path.elems();
    let mut matches = Vec::new();
    for d in dtab.dentries().iter().rev() {
        let pfx = d.prefix.elems();
        if pfx.len() > elems.len() {
            continue;
        }
        let ok = pfx.iter().zip(elems).all(|(p, e)| match p {
            PrefixElem::Any => true,
            PrefixElem::Label(l) => l == e,
        });
        if ok {
            matches.push(append(&d.dst, &elems[pfx.len()..]));
        }
    }
    match matches.len() {
        0 => NameTree::Neg,
        1 => matches.remove(0),
        _ => NameTree::Alt(matches),
    }
}

/// Runs every parser on `s`; on success, checks that the result prints to
/// text that parses back to the same thing (weights compared as printed).
fn check_all_parsers(s: &str) -> Result<(), TestCaseError> {
    let nchars = s.chars().count();
    let check_err = |e: strait_dtab::ParseError| -> Result<(), TestCaseError> {
        prop_assert!(e.offset() <= nchars, "offset {} > {nchars}", e.offset());
        prop_assert!(e.message().contains(" expected but "), "{}", e.message());
        Ok(())
    };
    match Path::read(s) {
        Ok(p) => prop_assert_eq!(Path::read(&p.show()).unwrap(), p),
        Err(e) => check_err(e)?,
    }
    match Prefix::read(s) {
        Ok(p) => prop_assert_eq!(Prefix::read(&p.show()).unwrap(), p),
        Err(e) => check_err(e)?,
    }
    match NameTree::read(s) {
        Ok(t) => {
            prop_assert!(is_normal(&t), "parser built a non-normal tree {t:?}");
            if weights_reprintable(&t) {
                let again = NameTree::read(&t.show()).unwrap();
                prop_assert!(same_shape(&again, &t), "{t:?} vs {again:?}");
                prop_assert_eq!(again.show(), t.show());
            }
        }
        Err(e) => check_err(e)?,
    }
    match Dentry::read(s) {
        Ok(d) => {
            if weights_reprintable(&d.dst) {
                let again = Dentry::read(&d.show()).unwrap();
                prop_assert_eq!(&again.prefix, &d.prefix);
                prop_assert!(same_shape(&again.dst, &d.dst));
            }
        }
        Err(e) => check_err(e)?,
    }
    match Dtab::read(s) {
        Ok(d) => {
            if d.dentries().iter().all(|d| weights_reprintable(&d.dst)) {
                let again = Dtab::read(&d.show()).unwrap();
                prop_assert_eq!(again.len(), d.len());
                for (a, b) in again.dentries().iter().zip(d.dentries()) {
                    prop_assert_eq!(&a.prefix, &b.prefix);
                    prop_assert!(same_shape(&a.dst, &b.dst));
                }
            }
        }
        Err(e) => check_err(e)?,
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    /// Rule: `Path::read(p.show()) == p` for every path, whatever bytes its
    /// elements hold; show is plain ASCII and escapes exactly the elements
    /// that hold a non-showable byte.
    #[test]
    fn path_show_then_read_is_identity(p in path()) {
        let shown = p.show();
        prop_assert!(shown.is_ascii());
        prop_assert!(shown.starts_with('/'));
        for e in p.elems() {
            if !e.iter().all(|&b| is_showable(b)) {
                prop_assert!(shown.contains("\\x"));
            }
        }
        prop_assert_eq!(Path::read(&shown).unwrap(), p);
    }

    /// Rule: `Prefix::read(p.show()) == p`; a `*` label byte prints escaped
    /// and stays a label, `Any` prints as `*`.
    #[test]
    fn prefix_show_then_read_is_identity(p in prefix()) {
        prop_assert_eq!(Prefix::read(&p.show()).unwrap(), p);
    }

    /// Rule: a path converted to a prefix prints the same and matches
    /// itself and every extension of itself.
    #[test]
    fn prefix_from_path_matches_extensions(p in path(), q in path()) {
        let pfx = Prefix::from(&p);
        prop_assert_eq!(pfx.show(), p.show());
        prop_assert!(pfx.matches(&p));
        prop_assert!(pfx.matches(&p.concat(&q)));
        prop_assert_eq!(p.concat(&q).drop(p.len()), q.clone());
        prop_assert_eq!(p.concat(&q).take(p.len()), p);
    }

    /// Rule: joining one element is concatenating the one-element path
    /// (an empty element adds nothing).
    #[test]
    fn join_is_concat_of_one_element(p in path(), q in path()) {
        for e in q.elems() {
            let mut one = Path::empty();
            one.push(e.clone());
            prop_assert_eq!(p.join(e.clone()), p.concat(&one));
        }
        prop_assert_eq!(p.join(Bytes::new()), p.clone());
    }

    /// Rule: for normal-form trees (no empty or single-child `Alt`/`Union`),
    /// `NameTree::read(t.show()) == t`.
    #[test]
    fn normal_tree_show_then_read_is_identity(t in normal_tree()) {
        prop_assert_eq!(NameTree::read(&t.show()).unwrap(), t);
    }

    /// Rule: show is stable: for any tree without empty nodes,
    /// `show(read(show(t))) == show(t)`, and what is read back is in normal
    /// form.
    #[test]
    fn tree_show_is_stable(t in nonempty_tree()) {
        let shown = t.show();
        let back = NameTree::read(&shown).unwrap();
        prop_assert!(is_normal(&back));
        prop_assert_eq!(back.show(), shown);
    }

    /// Rule: the show of a tree parses exactly when the tree has no empty
    /// `Alt`/`Union` node (those print as nothing, or `()` when nested).
    #[test]
    fn tree_show_parses_iff_no_empty_nodes(t in any_tree()) {
        let shown = t.show();
        prop_assert_eq!(NameTree::read(&shown).is_ok(), !has_empty_node(&t), "{}", shown);
    }

    /// Rule: a union weight that is a multiple of 0.01 (below 2^46) prints
    /// as two decimals that read back to the same f64.
    #[test]
    fn weight_show_then_read_is_identity(k in 0u64..(1u64 << 40), other in any::<u32>()) {
        let w = k as f64 / 100.0;
        let t = NameTree::Union(vec![
            Weighted::new(w, NameTree::Leaf(Path::utf8(&["a"]))),
            Weighted::new(f64::from(other) / 100.0, NameTree::Leaf(Path::utf8(&["b"]))),
        ]);
        prop_assert_eq!(NameTree::read(&t.show()).unwrap(), t);
    }

    /// Rule: weight printing is stable for any finite non-negative weight
    /// below 1e12 (two decimals read back and print the same).
    #[test]
    fn weight_show_is_stable(w in 0.0f64..1e12) {
        let shown = format_weight(w);
        let back: f64 = shown.parse().unwrap();
        prop_assert_eq!(format_weight(back), shown);
    }

    /// Rule: `Dentry::read(d.show()) == d` for normal-form destinations.
    #[test]
    fn dentry_show_then_read_is_identity(d in dentry()) {
        prop_assert_eq!(Dentry::read(&d.show()).unwrap(), d);
    }

    /// Rule: `Dtab::read(d.show()) == d` for normal-form destinations.
    #[test]
    fn dtab_show_then_read_is_identity(d in dtab()) {
        prop_assert_eq!(Dtab::read(&d.show()).unwrap(), d);
    }

    /// Rule: whitespace around tokens, a trailing `;`, and `#` comments at
    /// token starts do not change what a dtab reads as.
    #[test]
    fn dtab_read_ignores_whitespace_and_comments(d in dtab()) {
        let text: String = d
            .dentries()
            .iter()
            .map(|e| format!("\n  {} \t=> {}  # comment ; /x=>/y\n", e.prefix, e.dst))
            .collect::<Vec<_>>()
            .join(";");
        let text = if d.is_empty() { "  # only a comment".to_owned() } else { text + ";\n" };
        prop_assert_eq!(Dtab::read(&text).unwrap(), d);
    }

    /// Rule: simplify is idempotent: `simplify(simplify(t)) == simplify(t)`,
    /// and its result has the promised shape.
    #[test]
    fn simplify_is_idempotent(t in any_tree()) {
        let s = t.simplify();
        prop_assert!(is_simplified(&s), "{s:?}");
        prop_assert_eq!(s.simplify(), s);
    }

    /// Rule: simplify preserves meaning: `eval(simplify(t)) == eval(t)`,
    /// compared as sets of leaves.
    #[test]
    fn simplify_preserves_eval(t in any_tree()) {
        prop_assert_eq!(leaf_set(t.simplify().eval()), leaf_set(t.eval()));
    }

    /// Rule: `Dtab.lookup` is the `Alt` of every matching dentry's
    /// destination (with the unmatched rest of the path appended to each
    /// leaf), last dentry first; one match is that tree, none is `Neg`.
    #[test]
    fn lookup_matches_reference_model(d in small_dtab(), p in small_path()) {
        prop_assert_eq!(d.lookup(&p), model_lookup(&d, &p));
    }

    /// Rule: dentries appended later take precedence: the lookup in
    /// `a ++ b` is b's matches followed by a's.
    #[test]
    fn lookup_in_concat_puts_later_dtab_first(
        a in small_dtab(),
        b in small_dtab(),
        p in small_path(),
    ) {
        let ab = a.concat(&b);
        let flat = |t: NameTree<Path>, n: usize| match (t, n) {
            (_, 0) => vec![],
            (t, 1) => vec![t],
            (NameTree::Alt(ts), _) => ts,
            (t, _) => vec![t],
        };
        let count = |d: &Dtab| d.dentries().iter().filter(|e| e.prefix.matches(&p)).count();
        let (na, nb) = (count(&a), count(&b));
        let mut expected = flat(b.lookup(&p), nb);
        expected.extend(flat(a.lookup(&p), na));
        prop_assert_eq!(flat(ab.lookup(&p), na + nb), expected);
    }

    /// Rule: the parsers (`Path`, `Prefix`, `NameTree`, `Dentry`, `Dtab`)
    /// never panic on arbitrary text; errors carry an in-range offset and a
    /// Finagle-style message; successes print back to text that reads the
    /// same.
    #[test]
    fn parsers_never_panic(s in parser_input()) {
        check_all_parsers(&s)?;
    }
}

/// Known lossy corners of show, pinned down so that a change is noticed.
#[test]
fn lossy_show_corners() {
    let a = || NameTree::Leaf(Path::utf8(&["a"]));
    // Empty nodes print as nothing at the top and `()` when nested.
    assert_eq!(NameTree::<Path>::Alt(vec![]).show(), "");
    assert_eq!(NameTree::<Path>::Union(vec![]).show(), "");
    assert_eq!(
        NameTree::Alt(vec![a(), NameTree::Alt(vec![])]).show(),
        "/a | ()"
    );
    // A single-child union prints as its child, dropping the weight.
    assert_eq!(
        NameTree::Union(vec![Weighted::new(0.5, a())]).show(),
        "/a".to_owned()
    );
    // A lone weighted term reads without its weight.
    assert_eq!(NameTree::read("0.5 * /a").unwrap(), a());
    // HALF_UP on the shortest decimal.
    assert_eq!(format_weight(0.125), "0.13");
    assert_eq!(format_weight(0.145), "0.15");
}

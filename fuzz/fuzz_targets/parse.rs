//! Feeds arbitrary bytes (as lossy UTF-8) to every dtab parser. A parser must
//! never panic; whatever parses must print (`show`) to text that parses back
//! to the same value, with union weights compared as printed (two decimals).
//!
//! Weights that cannot survive printing are skipped on purpose (Finagle
//! behaves the same): a literal too large for f64 reads as infinity and
//! prints as `Infinity`, which does not parse, and weights of 2^46 and above
//! have no room for cents.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strait_dtab::{Dentry, Dtab, NameTree, Path, Prefix, format_weight};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    check(&s);
});

fn check(s: &str) {
    let nchars = s.chars().count();
    let check_err = |e: strait_dtab::ParseError| {
        assert!(
            e.offset() <= nchars,
            "offset {} > {nchars}: {s:?}",
            e.offset()
        );
        assert!(e.message().contains(" expected but "), "{}", e.message());
    };

    match Path::read(s) {
        Ok(p) => assert_eq!(Path::read(&p.show()).ok(), Some(p), "{s:?}"),
        Err(e) => check_err(e),
    }
    match Prefix::read(s) {
        Ok(p) => assert_eq!(Prefix::read(&p.show()).ok(), Some(p), "{s:?}"),
        Err(e) => check_err(e),
    }
    match NameTree::read(s) {
        Ok(t) => {
            assert!(is_normal(&t), "non-normal tree from {s:?}: {t:?}");
            if reprintable(&t) {
                let shown = t.show();
                let again = NameTree::read(&shown)
                    .unwrap_or_else(|e| panic!("show {shown:?} of {s:?} does not parse: {e}"));
                assert!(same_shape(&again, &t), "{s:?}: {t:?} vs {again:?}");
                assert_eq!(again.show(), shown, "{s:?}");
            }
            let simple = t.simplify();
            assert_eq!(simple.simplify(), simple, "{s:?}");
            assert_eq!(sorted(simple.eval()), sorted(t.eval()), "{s:?}");
        }
        Err(e) => check_err(e),
    }
    match Dentry::read(s) {
        Ok(d) => {
            if reprintable(&d.dst) {
                let shown = d.show();
                let again = Dentry::read(&shown)
                    .unwrap_or_else(|e| panic!("show {shown:?} of {s:?} does not parse: {e}"));
                assert_eq!(again.prefix, d.prefix, "{s:?}");
                assert!(same_shape(&again.dst, &d.dst), "{s:?}");
            }
        }
        Err(e) => check_err(e),
    }
    match Dtab::read(s) {
        Ok(d) => {
            if d.dentries().iter().all(|e| reprintable(&e.dst)) {
                let shown = d.show();
                let again = Dtab::read(&shown)
                    .unwrap_or_else(|e| panic!("show {shown:?} of {s:?} does not parse: {e}"));
                assert_eq!(again.len(), d.len(), "{s:?}");
                for (a, b) in again.dentries().iter().zip(d.dentries()) {
                    assert_eq!(a.prefix, b.prefix, "{s:?}");
                    assert!(same_shape(&a.dst, &b.dst), "{s:?}");
                }
                assert_eq!(again.show(), shown, "{s:?}");
            }
        }
        Err(e) => check_err(e),
    }
}

fn sorted(v: Option<Vec<Path>>) -> Option<Vec<Path>> {
    v.map(|mut v| {
        v.sort();
        v
    })
}

/// Every `Alt`/`Union` has at least two children (the parser never builds
/// anything else).
fn is_normal(t: &NameTree<Path>) -> bool {
    match t {
        NameTree::Alt(ts) => ts.len() >= 2 && ts.iter().all(is_normal),
        NameTree::Union(ws) => ws.len() >= 2 && ws.iter().all(|w| is_normal(&w.tree)),
        _ => true,
    }
}

/// Every weight prints as two decimals that read back the same.
fn reprintable(t: &NameTree<Path>) -> bool {
    match t {
        NameTree::Alt(ts) => ts.iter().all(reprintable),
        NameTree::Union(ws) => ws
            .iter()
            .all(|w| w.weight.is_finite() && w.weight < 1e12 && reprintable(&w.tree)),
        _ => true,
    }
}

/// Structural equality, weights compared as printed.
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

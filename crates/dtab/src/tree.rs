//! Name trees: `Leaf`, `Alt` (`|`), `Union` (`&`), `Neg` (`~`), `Fail` (`!`),
//! `Empty` (`$`); Finagle's `show`, `simplify` and `eval`.

use std::fmt;

/// The weight a union branch has when none is written.
pub const DEFAULT_WEIGHT: f64 = 1.0;

/// A tree of names with fallback (`Alt`) and weighted-union (`Union`) nodes.
#[derive(Clone, Debug, PartialEq)]
pub enum NameTree<T> {
    /// A name.
    Leaf(T),
    /// Ordered fallback: the first non-negative branch wins.
    Alt(Vec<NameTree<T>>),
    /// Weighted union: traffic is spread over the branches.
    Union(Vec<Weighted<T>>),
    /// `~`: nothing here; an enclosing `Alt` falls through.
    Neg,
    /// `!`: stop, and do not fall back.
    Fail,
    /// `$`: exists, but has no endpoints.
    Empty,
}

/// A union branch and its weight.
#[derive(Clone, Debug, PartialEq)]
pub struct Weighted<T> {
    /// The branch's weight (default 1.0).
    pub weight: f64,
    /// The branch.
    pub tree: NameTree<T>,
}

impl<T> Weighted<T> {
    /// A branch with weight `weight`.
    pub fn new(weight: f64, tree: NameTree<T>) -> Self {
        Weighted { weight, tree }
    }
}

impl<T> From<NameTree<T>> for Weighted<T> {
    fn from(tree: NameTree<T>) -> Self {
        Weighted::new(DEFAULT_WEIGHT, tree)
    }
}

impl<T> NameTree<T> {
    /// Maps every leaf through `f`, keeping the shape.
    pub fn map<U>(&self, f: &mut impl FnMut(&T) -> U) -> NameTree<U> {
        match self {
            NameTree::Leaf(t) => NameTree::Leaf(f(t)),
            NameTree::Alt(ts) => NameTree::Alt(ts.iter().map(|t| t.map(f)).collect()),
            NameTree::Union(ws) => NameTree::Union(
                ws.iter()
                    .map(|w| Weighted::new(w.weight, w.tree.map(f)))
                    .collect(),
            ),
            NameTree::Neg => NameTree::Neg,
            NameTree::Fail => NameTree::Fail,
            NameTree::Empty => NameTree::Empty,
        }
    }

    /// Visits every leaf, left to right.
    pub fn for_each_leaf<'a>(&'a self, f: &mut impl FnMut(&'a T)) {
        match self {
            NameTree::Leaf(t) => f(t),
            NameTree::Alt(ts) => ts.iter().for_each(|t| t.for_each_leaf(f)),
            NameTree::Union(ws) => ws.iter().for_each(|w| w.tree.for_each_leaf(f)),
            NameTree::Neg | NameTree::Fail | NameTree::Empty => {}
        }
    }
}

impl<T: Clone> NameTree<T> {
    /// An evaluation-equivalent tree (Finagle's `NameTree.simplify`).
    ///
    /// * `Alt`: drop `Neg` children; the first `Fail` is kept and ends the
    ///   list; none left is `Neg`, one left is that child.
    /// * `Union`: drop `Neg` and `Fail` children, keep the survivors'
    ///   weights; none left is `Neg`, one left is that child (its weight is
    ///   dropped).
    /// * Nested nodes are not flattened. The result is a fixpoint.
    pub fn simplify(&self) -> NameTree<T> {
        match self {
            NameTree::Alt(ts) => match ts.as_slice() {
                [] => NameTree::Neg,
                [t] => t.simplify(),
                _ => {
                    let mut out = Vec::with_capacity(ts.len());
                    for t in ts {
                        match t.simplify() {
                            NameTree::Fail => {
                                out.push(NameTree::Fail);
                                break;
                            }
                            NameTree::Neg => {}
                            t => out.push(t),
                        }
                    }
                    match out.len() {
                        0 => NameTree::Neg,
                        1 => out.pop().unwrap_or(NameTree::Neg),
                        _ => NameTree::Alt(out),
                    }
                }
            },
            NameTree::Union(ws) => match ws.as_slice() {
                [] => NameTree::Neg,
                [w] => w.tree.simplify(),
                _ => {
                    let mut out: Vec<Weighted<T>> = ws
                        .iter()
                        .filter_map(|w| match w.tree.simplify() {
                            NameTree::Fail | NameTree::Neg => None,
                            t => Some(Weighted::new(w.weight, t)),
                        })
                        .collect();
                    match out.len() {
                        0 => NameTree::Neg,
                        1 => out.pop().map_or(NameTree::Neg, |w| w.tree),
                        _ => NameTree::Union(out),
                    }
                }
            },
            other => other.clone(),
        }
    }

    /// Evaluates the tree (Finagle's `NameTree.eval`): `None` when it is
    /// negative or failed, else the leaves it selects (weights ignored, in
    /// first-seen order, without duplicates).
    pub fn eval(&self) -> Option<Vec<T>>
    where
        T: PartialEq,
    {
        match self.eval0() {
            Eval::Leaves(v) => Some(v),
            Eval::Neg | Eval::Fail => None,
        }
    }

    fn eval0(&self) -> Eval<T>
    where
        T: PartialEq,
    {
        match self {
            NameTree::Fail => Eval::Fail,
            NameTree::Neg => Eval::Neg,
            NameTree::Empty => Eval::Leaves(Vec::new()),
            NameTree::Leaf(t) => Eval::Leaves(vec![t.clone()]),
            NameTree::Alt(ts) => {
                for t in ts {
                    match t.eval0() {
                        Eval::Neg => continue,
                        other => return other,
                    }
                }
                Eval::Neg
            }
            NameTree::Union(ws) if ws.len() == 1 => ws[0].tree.eval0(),
            NameTree::Union(ws) => {
                let mut any = false;
                let mut acc: Vec<T> = Vec::new();
                for w in ws {
                    if let Eval::Leaves(v) = w.tree.eval0() {
                        any = true;
                        for t in v {
                            if !acc.contains(&t) {
                                acc.push(t);
                            }
                        }
                    }
                }
                if any { Eval::Leaves(acc) } else { Eval::Neg }
            }
        }
    }
}

enum Eval<T> {
    Leaves(Vec<T>),
    Neg,
    Fail,
}

/// Formats a union weight as Java's `%.2f` does: HALF_UP rounding applied to
/// the shortest decimal form of the double (0.125 prints `0.13`, 0.145 prints
/// `0.15`), where Rust's `{:.2}` rounds the exact binary value (`0.12`,
/// `0.14`).
pub fn format_weight(w: f64) -> String {
    if w.is_nan() {
        return "NaN".to_owned();
    }
    if w.is_infinite() {
        return if w > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    // Rust's Display prints the shortest round-tripping decimal, never in
    // exponent form.
    let shortest = format!("{}", w.abs());
    let (int, frac) = shortest.split_once('.').unwrap_or((&shortest, ""));
    let mut digits: Vec<u8> = int
        .bytes()
        .chain(frac.bytes().chain(std::iter::repeat(b'0')).take(2))
        .collect();
    let round_up = frac.as_bytes().get(2).is_some_and(|&d| d >= b'5');
    if round_up {
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, b'1');
                break;
            }
            i -= 1;
            if digits[i] == b'9' {
                digits[i] = b'0';
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let split = digits.len() - 2;
    let mut out = String::with_capacity(digits.len() + 2);
    if w.is_sign_negative() && digits.iter().any(|&d| d != b'0') {
        out.push('-');
    }
    out.extend(digits[..split].iter().map(|&d| char::from(d)));
    out.push('.');
    out.extend(digits[split..].iter().map(|&d| char::from(d)));
    out
}

// Printing follows Finagle's `show` / `show1` / `showSimple` exactly:
// top-level Alt members are joined with " | " and printed with `show1`;
// `show1` joins Union members with " & " (weights other than 1.0 printed as
// `%.2f*`), and parenthesises a nested Alt; union members are printed with
// `showSimple`, which parenthesises any Alt or Union. Single-child Alt and
// Union print as their child.
impl<T: fmt::Display> NameTree<T> {
    fn show_top(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameTree::Union(ws) if ws.len() == 1 => ws[0].tree.show_top(f),
            NameTree::Alt(ts) if ts.len() == 1 => ts[0].show_top(f),
            NameTree::Alt(ts) => {
                for (i, t) in ts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" | ")?;
                    }
                    t.show1(f)?;
                }
                Ok(())
            }
            _ => self.show1(f),
        }
    }

    fn show1(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameTree::Union(ws) if ws.len() == 1 => ws[0].tree.show1(f),
            NameTree::Alt(ts) if ts.len() == 1 => ts[0].show1(f),
            NameTree::Union(ws) => {
                for (i, w) in ws.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" & ")?;
                    }
                    if w.weight != DEFAULT_WEIGHT {
                        f.write_str(&format_weight(w.weight))?;
                        f.write_str("*")?;
                    }
                    w.tree.show_simple(f)?;
                }
                Ok(())
            }
            NameTree::Alt(_) => self.show_parens(f),
            _ => self.show_simple(f),
        }
    }

    fn show_simple(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameTree::Union(ws) if ws.len() == 1 => ws[0].tree.show_simple(f),
            NameTree::Alt(ts) if ts.len() == 1 => ts[0].show_simple(f),
            NameTree::Union(_) | NameTree::Alt(_) => self.show_parens(f),
            NameTree::Leaf(t) => t.fmt(f),
            NameTree::Fail => f.write_str("!"),
            NameTree::Neg => f.write_str("~"),
            NameTree::Empty => f.write_str("$"),
        }
    }

    fn show_parens(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        self.show_top(f)?;
        f.write_str(")")
    }

    /// The canonical form (`show`).
    pub fn show(&self) -> String {
        self.to_string()
    }
}

impl<T: fmt::Display> fmt::Display for NameTree<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Empty Alt/Union nodes cannot be written in the syntax; Finagle
        // prints them as nothing.
        match self {
            NameTree::Alt(ts) if ts.is_empty() => Ok(()),
            NameTree::Union(ws) if ws.is_empty() => Ok(()),
            _ => self.show_top(f),
        }
    }
}

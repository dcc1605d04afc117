//! `strait dtab …`: the dtab language of [`strait_dtab`] from the command
//! line.
//!
//! Every argument is parsed with Finagle's grammar; a syntax error is
//! reported with Finagle's exact message. Paths and trees are printed in
//! their canonical (`show`) form, also inside JSON documents.

use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use strait_dtab::global::{self, InetAddr};
use strait_dtab::{Bound, Dentry, Dtab, Name, NameTree, Path, Prefix, State};

use super::CliError;

/// The `strait dtab` subcommands.
#[derive(Debug, Subcommand)]
pub enum DtabCommand {
    /// Parse TEXT as KIND and print its canonical form.
    Parse {
        /// What TEXT is.
        #[arg(value_enum)]
        kind: Kind,
        /// The text to parse.
        text: String,
    },
    /// Look PATH up in DTAB (Dtab.lookup) and print the resulting name
    /// tree, not simplified.
    Lookup {
        /// The dtab, e.g. '/svc=>/a;/svc=>/b'.
        dtab: String,
        /// The path to look up.
        path: String,
    },
    /// Print the canonical form of the simplified TREE.
    Simplify {
        /// The name tree.
        tree: String,
    },
    /// Evaluate TREE: JSON null when it is negative or failed, else the
    /// sorted array of the leaf paths it selects.
    Eval {
        /// The name tree.
        tree: String,
    },
    /// Look PATH up once in the system namers under /$/ and print the
    /// answer as JSON.
    Global {
        /// The path, e.g. /$/inet/127.0.0.1/8080.
        path: String,
    },
    /// Bind PATH through DTAB and the system namers under /$/ and print
    /// the bound tree and its evaluation as JSON.
    Bind {
        /// How many lookups a chain may take before binding fails.
        #[arg(long, value_name = "N", default_value_t = strait_dtab::DEFAULT_MAX_DEPTH)]
        max_depth: usize,
        /// The dtab.
        dtab: String,
        /// The path to bind.
        path: String,
    },
}

/// What `strait dtab parse` parses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A path, e.g. /svc/web.
    Path,
    /// A dentry prefix, e.g. /svc/*/web.
    Prefix,
    /// A name tree, e.g. '/a | 0.5*/b & /c'.
    Tree,
    /// One dentry, e.g. '/svc => /#/io.l5d.consul/dc1'.
    Dentry,
    /// A dtab: dentries separated by ';'.
    Dtab,
}

impl DtabCommand {
    /// Runs the command and returns the line to print.
    pub fn execute(&self) -> Result<String, CliError> {
        match self {
            DtabCommand::Parse { kind, text } => parse(*kind, text),
            DtabCommand::Lookup { dtab, path } => {
                let dtab = Dtab::read(dtab)?;
                let path = Path::read(path)?;
                Ok(dtab.lookup(&path).show())
            }
            DtabCommand::Simplify { tree } => Ok(NameTree::read(tree)?.simplify().show()),
            DtabCommand::Eval { tree } => to_json(&eval(&NameTree::read(tree)?)),
            DtabCommand::Global { path } => {
                to_json(&global_json(global::lookup(&Path::read(path)?)))
            }
            DtabCommand::Bind {
                max_depth,
                dtab,
                path,
            } => {
                let dtab = Dtab::read(dtab)?;
                let path = Path::read(path)?;
                to_json(&bind_json(strait_dtab::bind_path(&dtab, &path, *max_depth)))
            }
        }
    }
}

/// The canonical form of `text` parsed as `kind`.
pub fn parse(kind: Kind, text: &str) -> Result<String, CliError> {
    Ok(match kind {
        Kind::Path => Path::read(text)?.show(),
        Kind::Prefix => Prefix::read(text)?.show(),
        Kind::Tree => NameTree::read(text)?.show(),
        Kind::Dentry => Dentry::read(text)?.show(),
        Kind::Dtab => Dtab::read(text)?.show(),
    })
}

/// `NameTree.eval` with the leaves as canonical strings, sorted.
pub fn eval(tree: &NameTree<Path>) -> Option<Vec<String>> {
    tree.eval().map(|leaves| {
        let mut shown: Vec<String> = leaves.iter().map(Path::show).collect();
        shown.sort();
        shown
    })
}

fn to_json(value: &impl Serialize) -> Result<String, CliError> {
    serde_json::to_string(value).map_err(|e| CliError::new(format!("cannot encode JSON: {e}")))
}

/// The address of a system-namer binding.
#[derive(Debug, Serialize)]
pub struct AddrJson {
    /// Host; empty for the unspecified address (`/$/inet/<port>`).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl From<&InetAddr> for AddrJson {
    fn from(a: &InetAddr) -> Self {
        AddrJson {
            host: a.host.clone(),
            port: a.port,
        }
    }
}

/// The answer of `strait dtab global`.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum GlobalJson {
    /// The path was bound.
    Bound {
        /// The bound name's id.
        id: String,
        /// What the namer did not consume.
        residual: String,
        /// The address.
        addr: AddrJson,
    },
    /// The namer rewrote the path to another (unbound) path.
    Path {
        /// The path.
        path: String,
    },
    /// `~`: no namer handles the path.
    Neg,
    /// `!`.
    Fail,
    /// `$`.
    Empty,
    /// The lookup failed (or is pending).
    Error {
        /// Why.
        message: String,
    },
    /// Any other tree, in canonical form.
    Tree {
        /// The tree.
        tree: String,
    },
}

/// Maps one system-namer lookup to its JSON form.
pub fn global_json(state: State<NameTree<Name<InetAddr>>>) -> GlobalJson {
    match state {
        State::Ok(NameTree::Leaf(Name::Bound(b))) => GlobalJson::Bound {
            id: b.id.show(),
            residual: b.residual.show(),
            addr: AddrJson::from(&b.addr),
        },
        State::Ok(NameTree::Leaf(Name::Path(p))) => GlobalJson::Path { path: p.show() },
        State::Ok(NameTree::Neg) => GlobalJson::Neg,
        State::Ok(NameTree::Fail) => GlobalJson::Fail,
        State::Ok(NameTree::Empty) => GlobalJson::Empty,
        State::Ok(tree) => GlobalJson::Tree { tree: tree.show() },
        State::Failed(message) => GlobalJson::Error { message },
        State::Pending => GlobalJson::Error {
            message: "pending".to_owned(),
        },
    }
}

/// One bound name of an evaluated bound tree.
#[derive(Debug, Serialize)]
pub struct BoundJson {
    /// The bound name's id.
    pub id: String,
    /// What the namer did not consume.
    pub residual: String,
    /// The address.
    pub addr: AddrJson,
    /// The weight of the nearest enclosing union branch, if any.
    pub weight: Option<f64>,
}

impl From<&Bound<InetAddr>> for BoundJson {
    fn from(b: &Bound<InetAddr>) -> Self {
        BoundJson {
            id: b.id.show(),
            residual: b.residual.show(),
            addr: AddrJson::from(&b.addr),
            weight: b.weight,
        }
    }
}

/// The answer of `strait dtab bind`.
#[derive(Debug, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum BindJson {
    /// Binding succeeded.
    Ok {
        /// The bound tree, in canonical form (leaves print as their ids).
        tree: String,
        /// `null` when the tree evaluates negative, else its bound names
        /// sorted by id.
        eval: Option<Vec<BoundJson>>,
    },
    /// Binding failed (or is pending).
    Error {
        /// Why.
        message: String,
    },
}

/// Maps a binding to its JSON form.
pub fn bind_json(state: State<NameTree<Bound<InetAddr>>>) -> BindJson {
    match state {
        State::Ok(tree) => BindJson::Ok {
            tree: tree.show(),
            eval: tree.eval().map(|bounds| {
                let mut out: Vec<BoundJson> = bounds.iter().map(BoundJson::from).collect();
                out.sort_by(|a, b| a.id.cmp(&b.id));
                out
            }),
        },
        State::Failed(message) => BindJson::Error { message },
        State::Pending => BindJson::Error {
            message: "pending".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn inet(host: &str, port: u16) -> InetAddr {
        InetAddr {
            host: host.to_owned(),
            port,
            fixed: false,
        }
    }

    #[test]
    fn global_json_puts_the_kind_first() {
        let b = Bound::new(
            Path::read("/$/inet/h/1").unwrap(),
            Path::read("/x").unwrap(),
            inet("h", 1),
        );
        let json = to_json(&global_json(State::Ok(NameTree::Leaf(Name::Bound(b))))).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"bound","id":"/$/inet/h/1","residual":"/x","addr":{"host":"h","port":1}}"#,
            "a bound lookup is kind, id, residual, addr in that order"
        );
        assert_eq!(
            to_json(&global_json(State::Pending)).unwrap(),
            r#"{"kind":"error","message":"pending"}"#,
            "a pending lookup is reported as an error"
        );
    }

    #[test]
    fn bind_json_reports_pending_as_error() {
        assert_eq!(
            to_json(&bind_json(State::Pending)).unwrap(),
            r#"{"state":"error","message":"pending"}"#,
            "a pending binding is reported as an error"
        );
    }

    #[test]
    fn bind_json_eval_is_sorted_by_id_and_negative_is_null() {
        let b = |port| {
            Bound::new(
                Path::read(&format!("/$/inet/h/{port}")).unwrap(),
                Path::empty(),
                inet("h", port),
            )
        };
        let tree = NameTree::Union(vec![
            (NameTree::Leaf(b(2))).into(),
            NameTree::Leaf(b(1)).into(),
        ]);
        let json = to_json(&bind_json(State::Ok(tree))).unwrap();
        assert!(
            json.find("/$/inet/h/1\",\"residual").unwrap()
                < json.find("/$/inet/h/2\",\"residual").unwrap(),
            "eval entries are sorted by id: {json}"
        );
        assert_eq!(
            to_json(&bind_json(State::Ok(NameTree::Neg))).unwrap(),
            r#"{"state":"ok","tree":"~","eval":null}"#,
            "a negative bound tree evaluates to null"
        );
    }
}

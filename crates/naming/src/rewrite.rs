//! The `io.l5d.rewrite` namer: a path below its prefix that matches
//! `pattern` becomes `name` with the captures substituted, as an unbound
//! path that the interpreter binds again through the whole dtab.
//!
//! Because the match is a prefix match and only `name` is returned, the
//! elements after the matched ones are dropped, as in Linkerd 1:
//! `pattern: /{service}/api`, `name: /srv/{service}` turns
//! `/#/apiToSrv/foo/api/v1` into `/srv/foo`. No match is `Neg`, so a
//! dtab `|` alternative (or the next namer under the same prefix) takes
//! over.

use strait_dtab::{Name, NameTree, Path, State};

use crate::pathmatch::PathMatcher;
use crate::{Activity, Namer, const_activity};

/// Rewrites matching paths into other paths (see the module docs).
pub struct RewriteNamer {
    pattern: PathMatcher,
    name: String,
}

impl RewriteNamer {
    /// A namer answering paths that match `pattern` with `name`, its
    /// `{capture}`s substituted.
    pub fn new(pattern: PathMatcher, name: impl Into<String>) -> RewriteNamer {
        RewriteNamer {
            pattern,
            name: name.into(),
        }
    }
}

impl Namer for RewriteNamer {
    fn lookup(&self, _prefix: &Path, path: &Path) -> Activity {
        let state = match self.pattern.substitute_path(path, &self.name) {
            None => State::Ok(NameTree::Neg),
            Some(text) => match Path::read(&text) {
                Ok(p) => State::Ok(NameTree::Leaf(Name::Path(p))),
                Err(e) => State::Failed(format!(
                    "io.l5d.rewrite: {path} rewrites to '{text}', which is not a path: {}",
                    e.message()
                )),
            },
        };
        const_activity(state)
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({
            "pattern": self.pattern.pattern(),
            "name": self.name,
        })
    }
}

#[cfg(test)]
#[path = "rewrite_tests.rs"]
mod tests;

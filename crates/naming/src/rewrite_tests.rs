#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

use std::sync::Arc;
use std::time::Duration;

use strait_dtab::Dtab;

use crate::fs::FsNamer;
use crate::inet::InetResolver;
use crate::testing::{addrs, is_neg, wait_addr};
use crate::{Addr, Interpreter, const_addr};

fn path(s: &str) -> Path {
    Path::read(s).unwrap()
}

fn api_to_srv() -> RewriteNamer {
    RewriteNamer::new(
        PathMatcher::new("/{service}/api").unwrap(),
        "/srv/{service}",
    )
}

#[test]
fn a_match_is_the_substituted_path_and_drops_the_rest() {
    let act = api_to_srv().lookup(&path("/#/apiToSrv"), &path("/foo/api/v1"));
    let state = act.borrow().clone();
    assert_eq!(
        state,
        State::Ok(NameTree::Leaf(Name::Path(path("/srv/foo"))))
    );
}

#[test]
fn no_match_is_neg() {
    let act = api_to_srv().lookup(&path("/#/apiToSrv"), &path("/foo/web"));
    assert!(is_neg(&act.borrow()));
    let act = api_to_srv().lookup(&path("/#/apiToSrv"), &path("/foo"));
    assert!(is_neg(&act.borrow()));
}

#[test]
fn a_name_that_is_not_a_path_fails() {
    let n = RewriteNamer::new(PathMatcher::new("/{x}").unwrap(), "srv/{x}");
    let act = n.lookup(&path("/#/r"), &path("/foo"));
    let state = act.borrow().clone();
    assert!(
        matches!(&state, State::Failed(m) if m.contains("'srv/foo', which is not a path")),
        "{state:?}"
    );
}

/// A namer that binds every path to one fixed address under its prefix.
struct Fixed(&'static str);

impl Namer for Fixed {
    fn lookup(&self, prefix: &Path, path: &Path) -> Activity {
        let id = prefix.concat(&path.take(1));
        let addr = const_addr(Addr::Bound(
            vec![crate::Endpoint::new(self.0.parse().unwrap())].into(),
        ));
        const_activity(State::Ok(NameTree::Leaf(Name::Bound(
            strait_dtab::Bound::new(id, path.drop(1), addr),
        ))))
    }
}

#[tokio::test]
async fn the_rewritten_path_is_bound_again_through_the_dtab() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("foo"), "127.0.0.1 9001\n").unwrap();
    let fs: Arc<dyn Namer> = Arc::new(FsNamer::new(dir.path()).unwrap());
    let interp = Interpreter::new(
        vec![
            (path("/#/io.l5d.fs"), fs),
            (path("/#/apiToSrv"), Arc::new(api_to_srv())),
        ],
        InetResolver::default(),
    );
    let dtab = Dtab::read("/srv => /#/io.l5d.fs; /svc => /#/apiToSrv").unwrap();
    let b = interp.bind(&dtab, &path("/svc/foo/api/v1"), 100);
    let State::Ok(NameTree::Leaf(bound)) = &b.state else {
        panic!("{:?}", b.state)
    };
    assert_eq!(bound.id, path("/#/io.l5d.fs/foo"));
    assert_eq!(bound.residual, path("/"));
    let mut addr = bound.addr.clone();
    let a = wait_addr(&mut addr, Duration::from_secs(5), "fs addresses", |a| {
        matches!(a, Addr::Bound(_))
    })
    .await;
    assert_eq!(addrs(&a), ["127.0.0.1:9001"]);

    // No match: Neg, so the `|` alternative binds.
    let dtab =
        Dtab::read("/srv => /#/io.l5d.fs; /svc => /#/apiToSrv | /$/inet/127.0.0.1/9002").unwrap();
    let b = interp.bind(&dtab, &path("/svc/foo/web"), 100);
    let State::Ok(NameTree::Leaf(bound)) = &b.state else {
        panic!("{:?}", b.state)
    };
    assert_eq!(bound.id, path("/$/inet/127.0.0.1/9002"));
}

#[tokio::test]
async fn a_second_namer_under_the_same_prefix_is_tried_on_neg() {
    // Configuration order: the rewrite namer is configured last, so it is
    // tried first; its Neg falls through to the fixed namer.
    let interp = Interpreter::new(
        vec![
            (path("/#/shared"), Arc::new(Fixed("127.0.0.1:9003"))),
            (path("/#/shared"), Arc::new(api_to_srv())),
        ],
        InetResolver::default(),
    );
    let dtab = Dtab::read("/srv => /$/inet/127.0.0.1/9004").unwrap();
    let b = interp.bind(&dtab, &path("/#/shared/foo/api"), 100);
    let State::Ok(NameTree::Leaf(bound)) = &b.state else {
        panic!("{:?}", b.state)
    };
    assert_eq!(
        bound.id,
        path("/$/inet/127.0.0.1/9004"),
        "the rewrite namer answers a match"
    );
    let b = interp.bind(&dtab, &path("/#/shared/foo/web"), 100);
    let State::Ok(NameTree::Leaf(bound)) = &b.state else {
        panic!("{:?}", b.state)
    };
    assert_eq!(
        bound.id,
        path("/#/shared/foo"),
        "its Neg falls through to the other namer"
    );
}

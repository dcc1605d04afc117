#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

use std::time::Duration;

use crate::testing::{addrs, is_neg, wait_addr, wait_state};
use crate::{Endpoint, const_activity};

const WAIT: Duration = Duration::from_secs(5);

fn path(s: &str) -> Path {
    Path::read(s).unwrap()
}

fn set(addrs: &[&str]) -> Addr {
    Addr::Bound(
        addrs
            .iter()
            .map(|a| Endpoint::new(a.parse().unwrap()))
            .collect::<Vec<_>>()
            .into(),
    )
}

fn t(kind: TransformerKind) -> Transformer {
    Transformer::new(kind, None, &InetResolver::default())
}

/// A bound leaf `id` whose addresses the returned sender controls.
fn leaf(id: &str, addr: Addr) -> (watch::Sender<Addr>, NameTree<BoundName>) {
    let (tx, rx) = watch::channel(addr);
    let b = Bound::new(path(id), Path::empty(), rx);
    (tx, NameTree::Leaf(b))
}

fn the_leaf(tree: &NameTree<BoundName>) -> &BoundName {
    match tree {
        NameTree::Leaf(b) => b,
        other => panic!("expected a leaf, got {other:?}"),
    }
}

#[tokio::test]
async fn port_rewrites_every_port_and_follows_changes() {
    let (tx, tree) = leaf(
        "/#/io.l5d.consul/dc1/web",
        set(&["10.0.0.1:80", "10.0.0.2:81"]),
    );
    let out = t(TransformerKind::Port(4141)).transform(&tree);
    let b = the_leaf(&out);
    assert_eq!(b.id, path("/%/io.l5d.port/4141/#/io.l5d.consul/dc1/web"));
    assert_eq!(addrs(&b.addr.borrow()), ["10.0.0.1:4141", "10.0.0.2:4141"]);
    tx.send_replace(set(&["10.0.0.3:80"]));
    let mut var = b.addr.clone();
    let a = wait_addr(&mut var, WAIT, "the new address", |a| {
        *a == set(&["10.0.0.3:4141"])
    })
    .await;
    assert_eq!(addrs(&a), ["10.0.0.3:4141"]);
}

#[tokio::test]
async fn specific_host_filters_and_empty_is_neg() {
    let x = t(TransformerKind::SpecificHost("10.0.0.2".parse().unwrap()));
    let (tx, tree) = leaf("/#/io.l5d.fs/web", set(&["10.0.0.1:80", "10.0.0.2:81"]));
    let out = x.transform(&tree);
    let b = the_leaf(&out);
    assert_eq!(b.id, path("/%/io.l5d.specificHost/#/io.l5d.fs/web"));
    assert_eq!(addrs(&b.addr.borrow()), ["10.0.0.2:81"]);
    tx.send_replace(set(&["10.0.0.1:80"]));
    let mut var = b.addr.clone();
    wait_addr(&mut var, WAIT, "Neg", |a| *a == Addr::Neg).await;
    tx.send_replace(Addr::Pending);
    wait_addr(&mut var, WAIT, "Pending", |a| *a == Addr::Pending).await;
}

#[tokio::test]
async fn localhost_keeps_this_hosts_addresses() {
    let x = t(TransformerKind::Localhost);
    let (_tx, tree) = leaf("/#/io.l5d.fs/web", set(&["127.0.0.1:80", "192.0.2.1:80"]));
    let out = x.transform(&tree);
    let b = the_leaf(&out);
    assert_eq!(b.id, path("/%/io.l5d.localhost/#/io.l5d.fs/web"));
    assert_eq!(addrs(&b.addr.borrow()), ["127.0.0.1:80"]);
    let (_tx, tree) = leaf("/#/io.l5d.fs/far", set(&["192.0.2.1:80"]));
    assert_eq!(*the_leaf(&x.transform(&tree)).addr.borrow(), Addr::Neg);
}

#[tokio::test]
async fn a_configured_prefix_replaces_the_default() {
    let x = Transformer::new(
        TransformerKind::Port(1),
        Some(path("/mine")),
        &InetResolver::default(),
    );
    assert_eq!(x.prefix(), &path("/%/mine"));
    assert_eq!(
        TransformerKind::Localhost.default_prefix(),
        path("/io.l5d.localhost")
    );
}

#[tokio::test]
async fn replace_keeps_neg_and_const_does_not() {
    let replace = t(TransformerKind::Replace(path("/$/inet/127.0.0.1/4140")));
    let konst = t(TransformerKind::Const(path("/$/inet/127.0.0.1/4141")));
    let (_tx, tree) = leaf("/#/io.l5d.fs/web", set(&["10.0.0.1:80"]));
    let out = replace.transform(&tree);
    assert_eq!(
        the_leaf(&out).id,
        path("/%/io.l5d.replace/$/inet/127.0.0.1/4140")
    );
    assert_eq!(replace.transform(&NameTree::Neg), NameTree::Neg);
    assert_eq!(
        the_leaf(&konst.transform(&NameTree::Neg)).id,
        path("/%/io.l5d.const/$/inet/127.0.0.1/4141")
    );
    let mut var = the_leaf(&konst.transform(&tree)).addr.clone();
    let a = wait_addr(&mut var, WAIT, "inet", |a| matches!(a, Addr::Bound(_))).await;
    assert_eq!(addrs(&a), ["127.0.0.1:4141"]);
}

#[tokio::test]
async fn apply_runs_in_order_with_the_last_prefix_outermost() {
    let xs = [
        t(TransformerKind::SpecificHost("10.0.0.1".parse().unwrap())),
        t(TransformerKind::Port(4141)),
    ];
    let (_tx, tree) = leaf("/#/io.l5d.fs/web", set(&["10.0.0.1:80", "10.0.0.2:80"]));
    let out = apply(&xs, tree);
    let b = the_leaf(&out);
    assert_eq!(
        b.id,
        path("/%/io.l5d.port/4141/%/io.l5d.specificHost/#/io.l5d.fs/web")
    );
    assert_eq!(addrs(&b.addr.borrow()), ["10.0.0.1:4141"]);
    assert_eq!(strip_prefix(&b.id), path("/#/io.l5d.fs/web"));
    assert_eq!(strip_prefix(&path("/#/a")), path("/#/a"));
}

#[tokio::test]
async fn the_forwarding_task_ends_when_nobody_holds_the_result() {
    let (tx, tree) = leaf("/#/io.l5d.fs/web", set(&["10.0.0.1:80"]));
    let out = t(TransformerKind::Port(1)).transform(&tree);
    drop(tree);
    assert_eq!(tx.receiver_count(), 1, "the task holds the source");
    drop(out);
    tokio::time::timeout(WAIT, async {
        while tx.receiver_count() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the task let go of the source");
}

/// A namer answering one bound leaf whose addresses a test controls.
struct Live(watch::Receiver<Addr>);

impl Namer for Live {
    fn lookup(&self, prefix: &Path, path: &Path) -> Activity {
        let id = prefix.concat(&path.take(1));
        const_activity(State::Ok(NameTree::Leaf(Name::Bound(Bound::new(
            id,
            path.drop(1),
            self.0.clone(),
        )))))
    }
}

#[tokio::test]
async fn a_transforming_namer_answers_neg_when_filtering_empties_the_set() {
    let (tx, rx) = watch::channel(set(&["10.0.0.1:80"]));
    let namer = Arc::new(TransformingNamer::new(
        Arc::new(Live(rx)),
        vec![t(TransformerKind::SpecificHost(
            "10.0.0.1".parse().unwrap(),
        ))],
    ));
    let interp = Interpreter::new(
        vec![(path("/#/live"), namer as Arc<dyn Namer>)],
        InetResolver::default(),
    );
    let dtab = Dtab::read("/svc => /#/live | /$/inet/127.0.0.1/9005").unwrap();
    let mut b = interp.bind(&dtab, &path("/svc/web"), 100);
    let State::Ok(NameTree::Leaf(bound)) = &b.state else {
        panic!("{:?}", b.state)
    };
    assert_eq!(bound.id, path("/%/io.l5d.specificHost/#/live/web"));

    // The only address goes away: the lookup turns Neg, the binding is
    // stale, and binding again takes the alternative.
    tx.send_replace(set(&["10.0.0.2:80"]));
    tokio::time::timeout(WAIT, b.changed())
        .await
        .expect("stale");
    let b = interp.bind(&dtab, &path("/svc/web"), 100);
    let State::Ok(NameTree::Leaf(bound)) = &b.state else {
        panic!("{:?}", b.state)
    };
    assert_eq!(bound.id, path("/$/inet/127.0.0.1/9005"));

    let namer = TransformingNamer::new(
        Arc::new(Live(watch::channel(set(&["10.0.0.9:1"])).1)),
        vec![t(TransformerKind::SpecificHost(
            "10.0.0.1".parse().unwrap(),
        ))],
    );
    let act = namer.lookup(&path("/#/live"), &path("/web"));
    assert!(is_neg(&act.borrow()));
    let mut act = act;
    let _ = wait_state(&mut act, WAIT, "still neg", is_neg).await;
}

#[tokio::test]
async fn interpreter_transformers_prefix_ids_and_authority_strips_them() {
    let (_tx, rx) = watch::channel(set(&["10.0.0.1:80"]));
    let interp = Interpreter::new(
        vec![(path("/#/live"), Arc::new(Live(rx)) as Arc<dyn Namer>)],
        InetResolver::default(),
    )
    .with_transformers(vec![t(TransformerKind::Port(4141))]);
    let dtab = Dtab::read("/svc => /#/live").unwrap();
    let b = interp.bind(&dtab, &path("/svc/web"), 100);
    let State::Ok(NameTree::Leaf(bound)) = &b.state else {
        panic!("{:?}", b.state)
    };
    assert_eq!(bound.id, path("/%/io.l5d.port/4141/#/live/web"));
    assert_eq!(addrs(&bound.addr.borrow()), ["10.0.0.1:4141"]);
    assert_eq!(interp.transformers().len(), 1);
    assert_eq!(interp.authority(&bound.id), None);
}

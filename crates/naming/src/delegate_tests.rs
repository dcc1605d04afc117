#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use strait_dtab::{Bound, State, Weighted};

use super::*;
use crate::inet::InetResolver;
use crate::{Endpoint, LookupTree, Namer, const_activity, const_addr};

/// Answers by the first element below its prefix: `ok` binds (id =
/// prefix/ok, residual = the rest, address 10.0.0.1:80), `neg` is Neg,
/// `fail` fails, `pending` never answers, `rewrite` answers the path
/// `/rewritten` ++ rest; anything else is Neg.
struct FakeNamer;

impl Namer for FakeNamer {
    fn lookup(&self, prefix: &Path, path: &Path) -> Activity {
        let first = path.elems().first().map(|e| e.to_vec());
        let state: State<LookupTree> = match first.as_deref() {
            Some(b"ok") => State::Ok(NameTree::Leaf(Name::Bound(Bound::new(
                prefix.concat(&path.take(1)),
                path.drop(1),
                const_addr(Addr::Bound(Arc::from([Endpoint::new(
                    "10.0.0.1:80".parse().unwrap(),
                )]))),
            )))),
            Some(b"fail") => State::Failed(format!("fake failure for {path}")),
            Some(b"pending") => State::Pending,
            Some(b"rewrite") => State::Ok(NameTree::Leaf(Name::Path(
                Path::read("/rewritten").unwrap().concat(&path.drop(1)),
            ))),
            _ => State::Ok(NameTree::Neg),
        };
        const_activity(state)
    }
}

/// Linkerd's test `ErrorNamer`: every lookup fails with
/// `error naming <full path>`.
struct ErrorNamer;

impl Namer for ErrorNamer {
    fn lookup(&self, prefix: &Path, path: &Path) -> Activity {
        const_activity(State::Failed(format!(
            "error naming {}",
            prefix.concat(path)
        )))
    }
}

fn p(s: &str) -> Path {
    Path::read(s).unwrap()
}

fn d(s: &str) -> Option<Dentry> {
    Some(Dentry::read(s).unwrap())
}

fn dtab(s: &str) -> Dtab {
    Dtab::read(s).unwrap()
}

fn bare() -> Interpreter {
    Interpreter::new(vec![], InetResolver::default())
}

fn with_fake() -> Interpreter {
    Interpreter::new(
        vec![(p("/#/io.l5d.fake"), Arc::new(FakeNamer) as Arc<dyn Namer>)],
        InetResolver::default(),
    )
}

fn neg(path: &str, dentry: Option<Dentry>) -> DelegateTree {
    DelegateTree::Neg {
        path: p(path),
        dentry,
    }
}

fn leaf_id(t: &DelegateTree) -> String {
    match t {
        DelegateTree::Leaf { bound, .. } => bound.id.show(),
        other => panic!("expected a leaf, got {other:?}"),
    }
}

#[tokio::test]
async fn rewrite_chain_to_inet_is_delegate_then_leaf_with_each_dentry() {
    let t = delegate(
        &bare(),
        &dtab("/svc=>/host;/host/web=>/$/inet/127.0.0.1/8080"),
        &p("/svc/web/x"),
    )
    .unwrap();
    let DelegateTree::Delegate { path, dentry, tree } = &t else {
        panic!("root must be a Delegate: {t:?}")
    };
    assert_eq!(*path, p("/svc/web/x"), "the root shows the requested path");
    assert_eq!(*dentry, None, "the root has the no-op dentry");
    let DelegateTree::Delegate { path, dentry, tree } = &**tree else {
        panic!("a single-match rewrite is a Delegate: {tree:?}")
    };
    assert_eq!(*path, p("/host/web/x"));
    assert_eq!(
        *dentry,
        d("/svc=>/host"),
        "a node carries the dentry that produced its path"
    );
    let DelegateTree::Leaf {
        path,
        dentry,
        bound,
    } = &**tree
    else {
        panic!("the system namer binds: {tree:?}")
    };
    assert_eq!(*path, p("/$/inet/127.0.0.1/8080/x"));
    assert_eq!(
        *dentry,
        d("/host/web=>/$/inet/127.0.0.1/8080"),
        "a system-namer answer carries the dentry that led to the looked-up path"
    );
    assert_eq!(bound.id, p("/$/inet/127.0.0.1/8080"));
    assert_eq!(bound.residual, p("/x"));
}

#[tokio::test]
async fn alt_explores_every_alternative_even_after_one_binds() {
    let d_a = d("/a=>/$/inet/127.0.0.1/1 | /$/inet/127.0.0.1/2 | /nowhere");
    let t = delegate(
        &bare(),
        &dtab("/a=>/$/inet/127.0.0.1/1 | /$/inet/127.0.0.1/2 | /nowhere"),
        &p("/a"),
    )
    .unwrap();
    let DelegateTree::Alt {
        path,
        dentry,
        trees,
    } = &t
    else {
        panic!("a Delegate of an Alt with the same path collapses into the Alt: {t:?}")
    };
    assert_eq!(*path, p("/a"));
    assert_eq!(
        *dentry, None,
        "the collapsed Alt takes the Delegate's (root, no-op) dentry"
    );
    assert_eq!(trees.len(), 3, "every alternative is explored: {trees:?}");
    assert_eq!(leaf_id(&trees[0]), "/$/inet/127.0.0.1/1");
    assert_eq!(
        trees[0].dentry(),
        d_a.as_ref(),
        "branches keep their dentry"
    );
    assert_eq!(
        leaf_id(&trees[1]),
        "/$/inet/127.0.0.1/2",
        "later alternatives are explored although the first bound"
    );
    assert_eq!(
        trees[2],
        neg("/nowhere", d_a),
        "an unmatched alternative is a Neg with its path"
    );
}

#[tokio::test]
async fn every_matching_dentry_is_an_alternative_last_first() {
    let t = delegate(&bare(), &dtab("/a=>/x;/a=>/y"), &p("/a/b")).unwrap();
    assert_eq!(
        t,
        DelegateTree::Alt {
            path: p("/a/b"),
            dentry: None,
            trees: vec![neg("/y/b", d("/a=>/y")), neg("/x/b", d("/a=>/x"))],
        },
        "several matching dentries make an Alt carrying the incoming dentry, \
             each branch its own dentry, last dentry first"
    );
}

#[tokio::test]
async fn failing_namer_inside_alt_is_an_exception_and_exploration_continues() {
    let d_s = d("/s=>/#/io.l5d.fake/fail | /#/io.l5d.fake/ok | /#/io.l5d.fake/pending");
    let t = delegate(
        &with_fake(),
        &dtab("/s=>/#/io.l5d.fake/fail | /#/io.l5d.fake/ok | /#/io.l5d.fake/pending"),
        &p("/s/z"),
    )
    .unwrap();
    let DelegateTree::Alt { trees, .. } = &t else {
        panic!("{t:?}")
    };
    assert_eq!(
        trees[0],
        DelegateTree::Exception {
            path: p("/#/io.l5d.fake/fail/z"),
            dentry: d_s.clone(),
            message: "fake failure for /fail/z".into(),
        },
        "a failed lookup is an Exception node with the looked-up path"
    );
    assert_eq!(
        leaf_id(&trees[1]),
        "/#/io.l5d.fake/ok",
        "exploration continues after an Exception"
    );
    assert_eq!(
        trees[2],
        DelegateTree::Exception {
            path: p("/#/io.l5d.fake/pending/z"),
            dentry: d_s,
            message: PENDING_MESSAGE.into(),
        },
        "a pending namer is shown as an Exception by the synchronous explainer"
    );
    let DelegateTree::Leaf { bound, .. } = &trees[1] else {
        unreachable!()
    };
    assert_eq!(bound.residual, p("/z"));
    assert_eq!(
        to_json(&t)["alt"][0]["message"],
        "fake failure for /fail/z",
        "an exception shows its message"
    );
}

#[tokio::test]
async fn namer_neg_shows_the_looked_up_path_and_namer_paths_are_looked_up_again() {
    let interp = with_fake();
    let t = delegate(&interp, &dtab("/s=>/#/io.l5d.fake/neg"), &p("/s")).unwrap();
    assert_eq!(
        t,
        delegate_node(
            &p("/s"),
            &None,
            neg("/#/io.l5d.fake/neg", d("/s=>/#/io.l5d.fake/neg"))
        ),
        "a Neg answer from every namer is a Neg with the looked-up path"
    );
    let t = delegate(&interp, &dtab("/s=>/#/io.l5d.fake/rewrite/q"), &p("/s")).unwrap();
    assert_eq!(
        t,
        delegate_node(
            &p("/s"),
            &None,
            neg("/rewritten/q", d("/s=>/#/io.l5d.fake/rewrite/q"))
        ),
        "a namer answering a path is looked up again, the next node keeping \
             the dentry that led to the namer"
    );
}

#[tokio::test]
async fn union_branches_keep_their_weights() {
    let t = delegate(
        &bare(),
        &dtab("/u=>0.25*/$/inet/127.0.0.1/1 & 0.75*/nope & /$/fail"),
        &p("/u"),
    )
    .unwrap();
    let DelegateTree::Union { trees, .. } = &t else {
        panic!("a Delegate of a Union with the same path collapses into it: {t:?}")
    };
    let weights: Vec<f64> = trees.iter().map(|(w, _)| *w).collect();
    assert_eq!(weights, [0.25, 0.75, 1.0], "union weights are kept");
    assert!(
        matches!(trees[1].1, DelegateTree::Neg { .. })
            && matches!(trees[2].1, DelegateTree::Fail { .. }),
        "Neg and Fail branches are not dropped: {trees:?}"
    );
    let js = to_json(&t);
    assert_eq!(js["type"], "union");
    assert_eq!(
        js["union"][0]["weight"], 0.25,
        "JSON union branches carry `weight`"
    );
    assert_eq!(js["union"][0]["tree"]["type"], "leaf");
    assert_eq!(
        js["union"][2]["tree"]["path"], "/$/fail",
        "a /$/fail path is shown"
    );
}

#[tokio::test]
async fn depth_limit_fails_the_whole_explanation() {
    let err = delegate(&bare(), &dtab("/a=>/b;/b=>/a"), &p("/a")).unwrap_err();
    assert_eq!(err, MAX_DEPTH_MESSAGE, "a loop runs into the depth limit");

    // 100 lookups in a chain are allowed (99 dentry rewrites, then the
    // /$/inet lookup), the 101st fails.
    let mut entries: Vec<String> = (0..98).map(|i| format!("/p{i}=>/p{}", i + 1)).collect();
    entries.push("/p98=>/$/inet/127.0.0.1/1".into());
    let chain = dtab(&entries.join(";"));
    let t = delegate(&bare(), &chain, &p("/p0")).expect("100 lookups are within the limit");
    let mut leaves = 0;
    t.for_each_leaf(&mut |_| leaves += 1);
    assert_eq!(leaves, 1);
    let longer = chain.concat(&dtab("/pre=>/p0"));
    assert_eq!(
        delegate(&bare(), &longer, &p("/pre")).unwrap_err(),
        MAX_DEPTH_MESSAGE,
        "the 101st lookup fails"
    );
}

#[tokio::test]
async fn depth_failure_inside_a_multi_branch_alt_is_an_exception_node() {
    let t = delegate(&bare(), &dtab("/a=>/b | /c;/b=>/a"), &p("/a")).unwrap();
    let mut exceptions = Vec::new();
    fn walk<'a>(t: &'a DelegateTree, out: &mut Vec<&'a DelegateTree>) {
        match t {
            DelegateTree::Exception { .. } => out.push(t),
            DelegateTree::Delegate { tree, .. } => walk(tree, out),
            DelegateTree::Alt { trees, .. } => trees.iter().for_each(|t| walk(t, out)),
            DelegateTree::Union { trees, .. } => trees.iter().for_each(|(_, t)| walk(t, out)),
            _ => {}
        }
    }
    walk(&t, &mut exceptions);
    assert_eq!(exceptions.len(), 1, "{t:?}");
    assert!(
        matches!(exceptions[0], DelegateTree::Exception { message, .. } if message == MAX_DEPTH_MESSAGE),
        "a branch that runs too deep becomes an Exception inside the Alt"
    );
}

#[tokio::test]
async fn exponential_explanations_are_cut_off() {
    let err = delegate(&bare(), &dtab("/a=>/b | /b;/b=>/a"), &p("/a")).unwrap_err();
    assert!(err.starts_with("Delegation too large"), "{err}");
}

#[tokio::test]
async fn explicit_neg_dentry_is_not_followed_by_namers() {
    // Binding would fall through to /$/inet here (a sole `~` match is
    // exactly Neg); Linkerd's explainer shows the `~`.
    let t = delegate(&bare(), &dtab("/$/inet=>~"), &p("/$/inet/127.0.0.1/1")).unwrap();
    assert_eq!(
        t,
        delegate_node(&p("/$/inet/127.0.0.1/1"), &None, neg("/", d("/$/inet=>~"))),
        "a dentry's own ~ is a Neg with the empty path"
    );
    assert_eq!(
        to_json(&t)["delegate"]["path"],
        "~",
        "an empty Neg path shows as ~"
    );
}

#[tokio::test]
async fn unmatched_root_is_a_bare_neg_and_system_path_a_bare_leaf() {
    // DelegatorTest "explain neg delegation".
    let t = delegate(&bare(), &Dtab::empty(), &p("/nope")).unwrap();
    assert_eq!(t, neg("/nope", None), "nothing matches: Neg(path, nop)");
    assert_eq!(to_json(&t), json!({"type": "neg", "path": "/nope"}));
    let t = delegate(&bare(), &Dtab::empty(), &p("/$/inet/127.0.0.1/80")).unwrap();
    assert_eq!(
        leaf_id(&t),
        "/$/inet/127.0.0.1/80",
        "a system path binds at the root"
    );
    assert_eq!(t.dentry(), None);
}

#[tokio::test]
async fn unknown_system_namer_is_an_exception() {
    let t = delegate(&bare(), &dtab("/x=>/$/io.l5d.nope/a"), &p("/x")).unwrap();
    let DelegateTree::Delegate { tree, .. } = &t else {
        panic!("{t:?}")
    };
    assert_eq!(
        **tree,
        DelegateTree::Exception {
            path: p("/$/io.l5d.nope/a"),
            dentry: d("/x=>/$/io.l5d.nope/a"),
            message: "Unknown namer: io.l5d.nope for path: /$/io.l5d.nope/a".into(),
        }
    );
}

#[tokio::test]
async fn dentry_fail_shows_bang_and_empty_shows_path() {
    let t = delegate(&bare(), &dtab("/f=>!;/e=>$"), &p("/f")).unwrap();
    assert_eq!(
        to_json(&t),
        json!({"type": "delegate", "path": "/f", "delegate":
            {"type": "fail", "path": "!", "dentry": {"prefix": "/f", "dst": "!"}}}),
        "a Fail outside /$/fail shows `!`"
    );
    let t = delegate(&bare(), &dtab("/f=>!;/e=>$"), &p("/e/x")).unwrap();
    assert_eq!(
        to_json(&t),
        json!({"type": "delegate", "path": "/e/x", "delegate":
            {"type": "empty", "path": "/e/x", "dentry": {"prefix": "/e", "dst": "$"}}}),
    );
}

#[test]
fn simplify_splices_same_path_alts_and_collapses_single_branches() {
    let inner = DelegateTree::Alt {
        path: p("/a"),
        dentry: d("/a=>/x|/y"),
        trees: vec![neg("/x", None), neg("/y", None)],
    };
    let outer = DelegateTree::Alt {
        path: p("/a"),
        dentry: None,
        trees: vec![neg("/z", None), inner],
    };
    let DelegateTree::Alt { trees, dentry, .. } = outer.simplified() else {
        panic!()
    };
    assert_eq!(dentry, None);
    assert_eq!(
        trees,
        vec![neg("/z", None), neg("/x", None), neg("/y", None)],
        "an Alt child with the parent's path is spliced in"
    );
    let single = DelegateTree::Union {
        path: p("/a"),
        dentry: d("/q=>/a"),
        trees: vec![(
            0.5,
            DelegateTree::Exception {
                path: p("/a"),
                dentry: None,
                message: "m".into(),
            },
        )],
    };
    assert_eq!(
        single.simplified(),
        DelegateTree::Exception {
            path: p("/a"),
            dentry: d("/q=>/a"),
            message: "m".into()
        },
        "a single-branch union is a Delegate, collapsed into a same-path child with the Delegate's dentry"
    );
    let empty = DelegateTree::Alt {
        path: p("/a"),
        dentry: None,
        trees: vec![],
    };
    assert_eq!(empty.simplified(), neg("/a", None), "an empty Alt is Neg");
    let keep = delegate_node(&p("/a"), &None, neg("/a", d("/a=>/b")));
    assert_eq!(
        keep.simplified(),
        keep,
        "a Delegate never collapses into Neg/Fail/Empty"
    );
}

#[test]
fn java_host_addresses() {
    assert_eq!(
        java_host_address(&"127.0.0.1:1".parse().unwrap()),
        "127.0.0.1"
    );
    assert_eq!(
        java_host_address(&"[::1]:1".parse().unwrap()),
        "0:0:0:0:0:0:0:1"
    );
    assert_eq!(
        java_host_address(&"[fe80::a%3]:1".parse().unwrap()),
        "fe80:0:0:0:0:0:0:a%3"
    );
    assert_eq!(
        java_host_address(&"[::ffff:10.0.0.1]:1".parse().unwrap()),
        "10.0.0.1"
    );
}

#[test]
fn nop_dentry_is_omitted_from_json() {
    let t = neg("/x", d("/=>~"));
    assert_eq!(
        to_json(&t),
        json!({"type": "neg", "path": "/x"}),
        "a dentry equivalent to Dentry.nop is omitted, as Linkerd's mkDentry does"
    );
}

#[test]
fn leaf_json_shows_current_addr_state() {
    let leaf = |addr: Addr| DelegateTree::Leaf {
        path: p("/#/n/a"),
        dentry: None,
        bound: Bound::new(p("/#/n/a"), p("/r"), const_addr(addr)),
    };
    let mut weighted = Endpoint::new("10.0.0.2:81".parse().unwrap());
    weighted.weight = 2.0;
    let eps: Arc<[Endpoint]> = Arc::from([
        Endpoint::new("10.0.0.1:80".parse().unwrap()),
        Endpoint::new("10.0.0.1:80".parse().unwrap()),
        weighted,
    ]);
    assert_eq!(
        to_json(&leaf(Addr::Bound(eps))),
        json!({"type": "leaf", "path": "/#/n/a", "bound": {
            "addr": {"type": "bound", "addrs": [
                {"ip": "10.0.0.1", "port": 80, "meta": {}},
                {"ip": "10.0.0.2", "port": 81, "meta": {"endpoint_addr_weight": 2.0}}
            ], "meta": {}},
            "id": "/#/n/a", "path": "/r"}}),
        "addresses are a set; a weight shows as endpoint_addr_weight metadata"
    );
    assert_eq!(
        to_json(&leaf(Addr::Neg))["bound"]["addr"],
        json!({"type": "neg"})
    );
    assert_eq!(
        to_json(&leaf(Addr::Pending))["bound"]["addr"],
        json!({"type": "pending"})
    );
    assert_eq!(
        to_json(&leaf(Addr::Failed("boom".into())))["bound"]["addr"],
        json!({"type": "failed", "cause": "boom"})
    );
}

/// The dtab and namers of Linkerd's `DelegateApiHandlerTest`.
fn linkerd_test_setup() -> (Interpreter, Dtab) {
    let interp = Interpreter::new(
        vec![
            (p("/#/test"), Arc::new(FakeNamer) as Arc<dyn Namer>),
            (p("/#/error"), Arc::new(ErrorNamer) as Arc<dyn Namer>),
        ],
        InetResolver::default(),
    );
    let dtab = dtab(
        "
            /beh => /#/error ;
            /bah/humbug => /$/inet/127.1/8080 ;
            /foo => /bah | /beh | /$/fail ;
            /foo => /bar ;
            /boo => /foo ;
            /meh => /heh ;
            /neg => ~ ;
            ",
    );
    (interp, dtab)
}

fn expected(s: &str) -> Value {
    serde_json::from_str(&s.replace('\n', "")).unwrap()
}

#[tokio::test]
async fn linkerd_delegate_api_handler_test_delegate_response() {
    let (interp, dtab) = linkerd_test_setup();
    // `127.1` is resolved by the system resolver, so wait for it as
    // Linkerd's handler does.
    let t = delegate_within(&interp, &dtab, &p("/boo/humbug"), Duration::from_secs(10))
        .await
        .unwrap()
        .expect("127.1 resolves");
    let want = expected(
        r#"{
"type":"delegate","path":"/boo/humbug","delegate":{
"type":"alt","path":"/foo/humbug","dentry":{"prefix":"/boo","dst":"/foo"},"alt":[
{"type":"neg","path":"/bar/humbug","dentry":{"prefix":"/foo","dst":"/bar"}},
{"type":"delegate","path":"/bah/humbug",
"dentry":{"prefix":"/foo","dst":"/bah | /beh | /$/fail"},"delegate":{
"type":"leaf","path":"/$/inet/127.1/8080","dentry":{"prefix":"/bah/humbug",
"dst":"/$/inet/127.1/8080"},
"bound":{"addr":{"type":"bound","addrs":[{"ip":"127.0.0.1","port":8080,"meta":{}}],"meta":{}},
"id":"/$/inet/127.1/8080","path":"/"}}},
{"type":"delegate","path":"/beh/humbug",
"dentry":{"prefix":"/foo","dst":"/bah | /beh | /$/fail"},"delegate":{
"type":"exception","path":"/#/error/humbug","dentry":{"prefix":"/beh","dst":"/#/error"},
"message":"error naming /#/error/humbug"}},
{"type":"fail","path":"/$/fail/humbug","dentry":{"prefix":"/foo","dst":"/bah | /beh | /$/fail"}}]}}
"#,
    );
    assert_eq!(
        to_json(&t),
        want,
        "same JSON as Linkerd's DelegateApiHandlerTest `/delegate response`"
    );
}

#[tokio::test]
async fn linkerd_delegate_api_handler_test_neg_cases() {
    let (interp, dtab) = linkerd_test_setup();
    let t = delegate(&interp, &dtab, &p("/meh")).unwrap();
    assert_eq!(
        to_json(&t),
        expected(
            r#"{"type":"delegate","path":"/meh","delegate":{
"type":"neg","path":"/heh","dentry":{"prefix":"/meh","dst":"/heh"}}}"#
        ),
        "DelegateApiHandlerTest `delegates to neg when no matches found`"
    );
    let t = delegate(&interp, &dtab, &p("/neg")).unwrap();
    assert_eq!(
        to_json(&t),
        expected(
            r#"{"type":"delegate","path":"/neg","delegate":{
"type":"neg","path":"~","dentry":{"prefix":"/neg","dst":"~"}}}"#
        ),
        "DelegateApiHandlerTest `delegation for explicit neg is shown`"
    );
}

#[tokio::test]
async fn linkerd_delegator_test_uses_namers_and_explains_alt() {
    // DelegatorTest, with its test namer under /namer (ids = prefix).
    let interp = Interpreter::new(
        vec![(p("/namer"), Arc::new(FakeNamer) as Arc<dyn Namer>)],
        InetResolver::default(),
    );
    let t = delegate(&interp, &dtab("/nah=>/namer"), &p("/nah/ok")).unwrap();
    assert_eq!(
        t,
        delegate_node(
            &p("/nah/ok"),
            &None,
            DelegateTree::Leaf {
                path: p("/namer/ok"),
                dentry: d("/nah=>/namer"),
                bound: Bound::new(p("/namer/ok"), Path::empty(), const_addr(Addr::Pending)),
            }
        ),
        "`uses NamerInterpreter to resolve names`"
    );
    let dt = dtab(
        "/bah/humbug => /$/inet/127.1/8080 ;
             /foo => /bah | /$/fail ;
             /foo => /bar ;
             /boo => /foo ;
             /meh => /heh ;",
    );
    assert_eq!(
        delegate(&interp, &dt, &p("/meh/hey")).unwrap(),
        delegate_node(&p("/meh/hey"), &None, neg("/heh/hey", d("/meh=>/heh"))),
        "`explain delegate delegation`"
    );
    assert_eq!(
        delegate(&interp, &dt, &p("/boo/lol")).unwrap(),
        delegate_node(
            &p("/boo/lol"),
            &None,
            DelegateTree::Alt {
                path: p("/foo/lol"),
                dentry: d("/boo=>/foo"),
                trees: vec![
                    neg("/bar/lol", d("/foo=>/bar")),
                    neg("/bah/lol", d("/foo=>/bah|/$/fail")),
                    DelegateTree::Fail {
                        path: p("/$/fail/lol"),
                        dentry: d("/foo=>/bah|/$/fail"),
                    },
                ],
            }
        ),
        "`explain alt delegation`"
    );
}

#[tokio::test]
async fn delegate_within_waits_for_pending_namers_and_times_out() {
    let (tx, rx) = tokio::sync::watch::channel(State::Pending);
    struct Slow(Activity);
    impl Namer for Slow {
        fn lookup(&self, _: &Path, _: &Path) -> Activity {
            self.0.clone()
        }
    }
    let interp = Interpreter::new(
        vec![(p("/#/slow"), Arc::new(Slow(rx)) as Arc<dyn Namer>)],
        InetResolver::default(),
    );
    let dt = dtab("/s=>/#/slow");
    assert_eq!(
        delegate_within(&interp, &dt, &p("/s"), Duration::from_millis(20))
            .await
            .unwrap(),
        None,
        "still pending at the deadline: Linkerd's `Request timed out.`"
    );
    let answer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.send_replace(State::Ok(NameTree::Union(vec![
            Weighted::new(1.0, NameTree::Empty),
            Weighted::new(2.0, NameTree::Neg),
        ])));
        tx
    });
    let t = delegate_within(&interp, &dt, &p("/s"), Duration::from_secs(10))
        .await
        .unwrap()
        .expect("the namer answers before the deadline");
    let _tx = answer.await.unwrap();
    let DelegateTree::Delegate { tree, .. } = &t else {
        panic!("{t:?}")
    };
    assert!(
        matches!(&**tree, DelegateTree::Union { trees, .. } if trees.len() == 2),
        "the explanation waits for the namer's answer: {tree:?}"
    );
}

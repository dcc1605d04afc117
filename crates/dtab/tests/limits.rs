//! Bounds on binding (not in Finagle, which has only the depth limit): the
//! node and leaf caps, the deadline, and identical union branches merged.
//! Dtabs of the shape of the "dtab bomb" (each level a union of two paths
//! to the next) expand into 2^levels leaves without them.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use strait_dtab::global::InetAddr;
use strait_dtab::{
    BindLimits, Bound, DEFAULT_MAX_LEAVES, DEFAULT_MAX_NODES, Dtab, LimitExceeded, NameTree, Path,
    State, bind_path, bind_path_within,
};

fn path(s: &str) -> Path {
    Path::read(s).unwrap()
}

/// `/svc=>/a0; /a0=>/a1 & /a1; ...; /a<levels>=>/$/inet/127.0.0.1/8080`:
/// the bomb of the hardening report (21 levels at `levels = 20`).
fn same_branch_bomb(levels: usize) -> Dtab {
    let mut s = String::from("/svc=>/a0;");
    for i in 0..levels {
        s.push_str(&format!("/a{i}=>/a{n} & /a{n};", n = i + 1));
    }
    s.push_str(&format!("/a{levels}=>/$/inet/127.0.0.1/8080"));
    Dtab::read(&s).unwrap()
}

/// The same bomb with two distinct paths per level (`/a<i>` and `/b<i>`
/// both rewrite to `/a<i+1> & /b<i+1>`), which merging identical branches
/// does not defuse: only the caps stop it.
fn two_branch_bomb(levels: usize) -> Dtab {
    let mut s = String::from("/svc=>/a0;");
    for i in 0..levels {
        let n = i + 1;
        s.push_str(&format!("/a{i}=>/a{n} & /b{n};/b{i}=>/a{n} & /b{n};"));
    }
    s.push_str(&format!(
        "/a{levels}=>/$/inet/127.0.0.1/8080;/b{levels}=>/$/inet/127.0.0.1/8080"
    ));
    Dtab::read(&s).unwrap()
}

fn shown(s: &State<NameTree<Bound<InetAddr>>>) -> String {
    match s {
        State::Ok(t) => t.show(),
        State::Pending => "pending".into(),
        State::Failed(e) => format!("failed: {e}"),
    }
}

#[test]
fn a_bomb_of_distinct_branches_stops_at_a_cap_quickly() {
    let d = two_branch_bomb(20);
    // Depth first, the 1,001st leaf comes before the 10,001st node; the
    // 2^20 leaves (seconds of work) are never made. How long the worst
    // dtabs take is measured in `benches/dtab.rs`, not asserted here.
    let r = bind_path_within(&d, &path("/svc/x"), &BindLimits::default());
    assert_eq!(r.unwrap_err(), LimitExceeded::Leaves(DEFAULT_MAX_LEAVES));
    let limits = BindLimits {
        max_leaves: usize::MAX,
        ..BindLimits::default()
    };
    let r = bind_path_within(&d, &path("/svc/x"), &limits);
    assert_eq!(r.unwrap_err(), LimitExceeded::Nodes(DEFAULT_MAX_NODES));
}

#[test]
fn the_old_entry_point_fails_the_binding_with_the_caps_message() {
    let r = bind_path(&two_branch_bomb(20), &path("/svc/x"), 100);
    assert_eq!(
        shown(&r),
        "failed: binding too large: more than 1000 bound names"
    );
}

#[test]
fn a_bomb_of_identical_branches_binds_once_per_level() {
    // `/a1 & /a1` is `2*/a1`: one lookup per level, one leaf.
    let d = same_branch_bomb(20);
    let limits = BindLimits {
        max_nodes: 100,
        ..BindLimits::default()
    };
    // Within 100 nodes: the 2^20 branches are never walked.
    let r = bind_path_within(&d, &path("/svc/x"), &limits).unwrap();
    let State::Ok(NameTree::Leaf(b)) = &r else {
        panic!("expected one leaf, got {}", shown(&r))
    };
    assert_eq!(b.id.show(), "/$/inet/127.0.0.1/8080");
    assert_eq!(b.residual.show(), "/x");
    assert_eq!(b.weight, Some(2.0), "the merged branch's weight");
}

#[test]
fn identical_union_branches_merge_with_summed_weights() {
    let d = Dtab::read(
        "/svc=>/$/inet/h/1 & 0.5*/$/inet/h/2 & /$/inet/h/1 & 2*/$/inet/h/1 & 0.5*/$/inet/h/2",
    )
    .unwrap();
    let r = bind_path(&d, &path("/svc"), 100);
    assert_eq!(shown(&r), "4.00*/$/inet/h/1 & /$/inet/h/2");
    // Nested trees merge when they are equal as a whole, weights included.
    let d =
        Dtab::read("/svc=>(/x | /$/inet/h/1) & (/x | /$/inet/h/1) & (/y | /$/inet/h/1)").unwrap();
    let r = bind_path(&d, &path("/svc"), 100);
    assert_eq!(shown(&r), "2.00*/$/inet/h/1 & /$/inet/h/1");
}

#[test]
fn a_union_of_more_bound_names_than_the_leaf_cap_fails() {
    let leaves = |n: usize| {
        let branches: Vec<String> = (1..=n).map(|i| format!("/$/inet/h/{i}")).collect();
        Dtab::read(&format!("/svc=>{}", branches.join(" & "))).unwrap()
    };
    let r = bind_path_within(
        &leaves(DEFAULT_MAX_LEAVES),
        &path("/svc"),
        &BindLimits::default(),
    );
    assert!(matches!(r, Ok(State::Ok(NameTree::Union(ws))) if ws.len() == DEFAULT_MAX_LEAVES));
    let r = bind_path_within(
        &leaves(DEFAULT_MAX_LEAVES + 1),
        &path("/svc"),
        &BindLimits::default(),
    );
    assert_eq!(r.unwrap_err(), LimitExceeded::Leaves(DEFAULT_MAX_LEAVES));
}

#[test]
fn negative_branches_count_against_the_node_cap() {
    // Nothing binds, but every level doubles the lookups all the same.
    let mut s = String::from("/svc=>/a0;");
    for i in 0..20 {
        let n = i + 1;
        s.push_str(&format!("/a{i}=>/a{n} & /b{n};/b{i}=>/a{n} & /b{n};"));
    }
    let r = bind_path_within(
        &Dtab::read(&s).unwrap(),
        &path("/svc"),
        &BindLimits::default(),
    );
    assert_eq!(r.unwrap_err(), LimitExceeded::Nodes(DEFAULT_MAX_NODES));
}

#[test]
fn binding_stops_at_its_deadline() {
    let limits = BindLimits {
        max_nodes: usize::MAX,
        max_leaves: usize::MAX,
        deadline: Some(Instant::now()),
        ..BindLimits::default()
    };
    let r = bind_path_within(&two_branch_bomb(20), &path("/svc"), &limits);
    assert_eq!(r.unwrap_err(), LimitExceeded::Deadline);
}

#[test]
fn the_depth_limit_still_fails_only_its_branch() {
    // Finagle's semantics are kept: a looping branch fails, the union
    // survives on its other branch.
    let d = Dtab::read("/svc=>/loop & /$/inet/h/1;/loop=>/loop").unwrap();
    let r = bind_path_within(&d, &path("/svc"), &BindLimits::default()).unwrap();
    assert_eq!(shown(&r), "/$/inet/h/1");
}

#[test]
fn dtabs_of_a_real_size_bind_well_within_the_caps() {
    // A traffic shift over ten versions, each behind a fallback chain:
    // far more than real dtabs do, and nowhere near the caps.
    let mut s = String::from("/svc=>/env/prod;/env/prod=>/srv;");
    let versions: Vec<String> = (0..10).map(|v| format!("0.1*/v{v}")).collect();
    s.push_str(&format!("/srv=>{};", versions.join(" & ")));
    for v in 0..10 {
        s.push_str(&format!(
            "/v{v}=>/canary/v{v} | /stable/v{v};/stable/v{v}=>/$/inet/10.0.0.{v}/80;"
        ));
    }
    let r = bind_path_within(
        &Dtab::read(s.trim_end_matches(';')).unwrap(),
        &path("/svc/web"),
        &BindLimits {
            max_nodes: 200,
            max_leaves: 10,
            ..BindLimits::default()
        },
    )
    .unwrap();
    let State::Ok(NameTree::Union(ws)) = &r else {
        panic!("{}", shown(&r))
    };
    assert_eq!(ws.len(), 10);
}

//! Benchmarks for the dtab hot paths: parsing a realistic dtab (as a router
//! does for every `l5d-dtab` header), printing one, looking a path up, and
//! binding a path through a chain of rewrites.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use strait_dtab::global::{self, InetAddr};
use strait_dtab::{
    BindLimits, DEFAULT_MAX_DEPTH, Dtab, Name, NameTree, Path, State, bind, bind_path_within,
};

/// A realistic 100-dentry dtab in the shapes Linkerd 1 configs use:
/// system-namer rewrites, configured namers, weighted splits, fallbacks,
/// wildcards, escapes, whitespace and comments.
fn dtab_100_text() -> String {
    let mut lines = vec![
        "# base routing".to_owned(),
        "/ph => /$/io.buoyant.rinet ;".to_owned(),
        "/svc => /ph/80 ;".to_owned(),
        "/svc => /$/io.buoyant.porthostPfx/ph ;".to_owned(),
        "/k8s => /#/io.l5d.k8s ;".to_owned(),
        "/portNsSvc => /#/portNsSvcToK8s ;".to_owned(),
        "/host => /portNsSvc/http/default ;".to_owned(),
        "/host => /portNsSvc/http ;".to_owned(),
        "/svc => /$/io.buoyant.http.domainToPathPfx/host ;".to_owned(),
        "/srv => /#/io.l5d.consul/dc1 ;".to_owned(),
        "/srv/legacy => /$/inet/10.0.0.1/8080 | /$/inet/10.0.0.2/8080 ;".to_owned(),
    ];
    for i in 0..90 {
        let line = match i % 6 {
            0 => format!("/svc/service-{i} => /srv/service-{i} ;"),
            1 => {
                format!("/svc/service-{i} => 0.80*/srv/service-{i}-v1 & 0.20*/srv/service-{i}-v2 ;")
            }
            2 => format!(
                "/svc/service-{i} => /srv/service-{i} | /$/inet/127.0.0.1/{} ; # fallback",
                8000 + i
            ),
            3 => format!("/svc/*/service-{i} => /k8s/default/http/service-{i} ;"),
            4 => format!("/srv/service-{i} => (/#/io.l5d.fs/s{i} & 3*/#/io.l5d.fs/t{i}) | ~ ;"),
            _ => format!("/svc/host\\x20{i} => /$/inet/host-{i}.example.com/80 ;"),
        };
        lines.push(line);
    }
    let text = lines.join("\n");
    // The last `;` is the one trailing separator the grammar allows.
    assert_eq!(Dtab::read(&text).unwrap().len(), 100);
    text
}

/// `/s0=>/s1;/s1=>/s2;...;/s9=>/$/inet/127.0.0.1/8080`.
fn chain_10() -> Dtab {
    let mut text: Vec<String> = (0..9).map(|i| format!("/s{i}=>/s{}", i + 1)).collect();
    text.push("/s9=>/$/inet/127.0.0.1/8080".to_owned());
    Dtab::read(&text.join(";")).unwrap()
}

/// One lookup as Finagle's `DefaultInterpreter` does it: the dtab, and the
/// system namers only when that is exactly `Neg`.
fn lookup(dtab: &Dtab, path: &Path) -> State<NameTree<Name<InetAddr>>> {
    match dtab.lookup(path) {
        NameTree::Neg => global::lookup(path),
        tree => State::Ok(tree.map(&mut |p: &Path| Name::Path(p.clone()))),
    }
}

fn benches(c: &mut Criterion) {
    let text = dtab_100_text();
    let dtab = Dtab::read(&text).unwrap();

    c.bench_function("parse_dtab_100_dentries", |b| {
        b.iter(|| Dtab::read(black_box(&text)).unwrap());
    });

    c.bench_function("show_dtab_100", |b| b.iter(|| black_box(&dtab).show()));

    // Matches `/svc/service-42` and the three `/svc` dentries: an Alt of
    // four destinations, each with `/api/v1` appended to every leaf.
    let path = Path::read("/svc/service-42/api/v1").unwrap();
    assert!(matches!(dtab.lookup(&path), NameTree::Alt(ts) if ts.len() == 4));
    c.bench_function("lookup_100_dentries", |b| {
        b.iter(|| black_box(&dtab).lookup(black_box(&path)));
    });

    let chain = chain_10();
    let start = NameTree::Leaf(Path::read("/s0/x").unwrap());
    // Ten dtab lookups, then `/$/inet` binds on the eleventh.
    match bind(&mut |p: &Path| lookup(&chain, p), &start, DEFAULT_MAX_DEPTH) {
        State::Ok(NameTree::Leaf(b)) => {
            assert_eq!(b.id.show(), "/$/inet/127.0.0.1/8080");
            assert_eq!(b.residual.show(), "/x");
        }
        other => panic!("the chain did not bind: {other:?}"),
    }
    c.bench_function("lookup_bind_10_step_chain", |b| {
        b.iter(|| {
            bind(
                &mut |p: &Path| lookup(&chain, p),
                black_box(&start),
                DEFAULT_MAX_DEPTH,
            )
        });
    });
}

/// The worst dtabs of at most 4 KiB (the router's cap on `l5d-dtab`) we
/// know of: bombs whose every level is a union of two paths to the next,
/// padded with dentries that match nothing, everything, or wildcards.
fn worst_dtabs() -> Vec<(&'static str, Dtab)> {
    let pad = |s: &mut String, dentry: &str| {
        while s.len() + dentry.len() < 4096 {
            s.push(';');
            s.push_str(dentry);
        }
    };
    let bomb = |levels: usize, end: &str| {
        let mut s = String::from("/svc=>/a0");
        for i in 0..levels {
            let n = i + 1;
            s.push_str(&format!(";/a{i}=>/a{n} & /b{n};/b{i}=>/a{n} & /b{n}"));
        }
        if !end.is_empty() {
            s.push_str(&format!(";/a{levels}=>{end};/b{levels}=>{end}"));
        }
        s
    };
    let mut same = String::from("/svc=>/a0");
    for i in 0..20 {
        same.push_str(&format!(";/a{i}=>/a{n} & /a{n}", n = i + 1));
    }
    same.push_str(";/a20=>/$/inet/127.0.0.1/8080");
    let mut cases = vec![
        ("identical_branches", same),
        ("two_branches_to_a_leaf", bomb(20, "/$/inet/127.0.0.1/1")),
        ("two_branches_to_neg", bomb(20, "")),
    ];
    let mut s = bomb(20, "");
    pad(&mut s, "/z=>~");
    cases.push(("two_branches_padded_with_misses", s));
    let mut s = bomb(13, "");
    pad(&mut s, "/*/*/*/*=>~");
    cases.push(("two_branches_padded_with_wildcards", s));
    let mut s = bomb(20, "");
    pad(&mut s, "/=>~");
    cases.push(("two_branches_padded_with_catch_alls", s));
    let mut s = String::from("/svc=>/a0");
    for i in 0..12 {
        let n = i + 1;
        let branches: Vec<String> = (0..8).map(|k| format!("/a{n}/{k}")).collect();
        s.push_str(&format!(";/a{i}=>{}", branches.join("&")));
    }
    cases.push(("eight_way_growing_residuals", s));
    cases
        .into_iter()
        .map(|(name, text)| {
            assert!(text.len() <= 4096, "{name}: {} bytes", text.len());
            (name, Dtab::read(&text).unwrap())
        })
        .collect()
}

/// Each worst dtab bound under the default limits (a path with a
/// 1,000-byte residual): what one `l5d-dtab` can cost a router.
fn worst(c: &mut Criterion) {
    let dst = Path::read(&format!("/svc/{}", "x".repeat(1000))).unwrap();
    let mut g = c.benchmark_group("bind_worst_4kib_dtab");
    g.sample_size(10);
    for (name, dtab) in worst_dtabs() {
        g.bench_function(name, |b| {
            b.iter(|| bind_path_within(black_box(&dtab), &dst, &BindLimits::default()));
        });
    }
    g.finish();
}

criterion_group!(dtab_benches, benches, worst);
criterion_main!(dtab_benches);

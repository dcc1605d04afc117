#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

use std::time::Duration;

use strait_dtab::Dtab;
use tempfile::TempDir;

use crate::Interpreter;
use crate::inet::InetResolver;

/// How long a change may take to show before a test fails (generous:
/// the requirement is 100 ms, but CI machines stall).
const WAIT: Duration = Duration::from_secs(5);

fn prefix() -> Path {
    Path::read("/#/io.l5d.fs").unwrap()
}

fn path(s: &str) -> Path {
    Path::read(s).unwrap()
}

fn setup() -> (TempDir, FsNamer) {
    let dir = tempfile::tempdir().unwrap();
    let namer = FsNamer::new(dir.path()).unwrap();
    (dir, namer)
}

use crate::testing::{addrs, bound, is_bound, is_neg};

async fn wait_state(
    act: &mut Activity,
    what: &str,
    f: impl FnMut(&State<LookupTree>) -> bool,
) -> State<LookupTree> {
    crate::testing::wait_state(act, WAIT, what, f).await
}

async fn wait_addr(var: &mut AddrVar, what: &str, f: impl FnMut(&Addr) -> bool) -> Addr {
    crate::testing::wait_addr(var, WAIT, what, f).await
}

fn lines_of(text: &str) -> Vec<(Host, u16, f64)> {
    match parse(text, FsPath::new("/f")) {
        Content::Lines(ls) => ls
            .iter()
            .map(|l| (l.host.clone(), l.port, l.weight))
            .collect(),
        other => panic!("expected addresses from {text:?}, got {other:?}"),
    }
}

fn ip(s: &str) -> Host {
    Host::Ip(s.parse().unwrap())
}

#[test]
fn parses_every_line_form_with_weights_and_comments() {
    let text = "# a comment line\n\
                    \n\
                    127.0.0.1 8080\n\
                    \t10.0.0.2   8081  *  2.5   # weighted, trailing comment\n\
                    ::1 9000\n\
                    [::1] 9001 * 0\n\
                    backend.example 80\r\n\
                    127.1 8888\n\
                       \n";
    assert_eq!(
        lines_of(text),
        vec![
            (ip("127.0.0.1"), 8080, 1.0),
            (ip("10.0.0.2"), 8081, 2.5),
            (ip("::1"), 9000, 1.0),
            (ip("::1"), 9001, 0.0),
            (Host::Name("backend.example".into()), 80, 1.0),
            (Host::Name("127.1".into()), 8888, 1.0),
        ],
        "`host port [* weight]` per line, '#' comments and blank lines skipped, weight 1 by default"
    );
    assert_eq!(lines_of(""), vec![], "an empty file has no addresses");
    assert_eq!(
        lines_of("# only\n#comments\n"),
        vec![],
        "a comment-only file has no addresses"
    );
}

#[test]
fn malformed_lines_fail_the_whole_file() {
    for bad in [
        "127.0.0.1",
        "127.0.0.1 0",
        "127.0.0.1 65536",
        "127.0.0.1 notaport",
        "127.0.0.1 80 81",
        "127.0.0.1 80 *",
        "127.0.0.1 80 * x",
        "127.0.0.1 80 * -1",
        "127.0.0.1 80 * NaN",
        "127.0.0.1 80 * inf",
        "127.0.0.1:80 80",
        "a/b 80",
        "[10.0.0.1] 80",
    ] {
        let text = format!("10.0.0.1 80\n{bad}\n10.0.0.2 80\n");
        match parse(&text, FsPath::new("/dir/hello")) {
            Content::Failed(e) => assert_eq!(
                &*e,
                format!("malformed address in /dir/hello line 2: {bad:?}"),
                "the error names the file and line and quotes the line"
            ),
            other => panic!("{bad:?} must fail the whole file, got {other:?}"),
        }
    }
    assert_eq!(
        lines_of("10.0.0.1 65535"),
        vec![(ip("10.0.0.1"), 65535, 1.0)],
        "65535 is a port"
    );
}

#[tokio::test]
async fn a_file_is_a_bound_service_with_weights() {
    let (dir, namer) = setup();
    std::fs::write(
        dir.path().join("hello"),
        "127.0.0.1 8080\n127.0.0.2 8081 * 3 # canary\n127.0.0.1 8080 * 9\n",
    )
    .unwrap();
    let act = namer.lookup(&prefix(), &path("/hello"));
    let state = act.borrow().clone();
    let b = bound(&state);
    let addr = b.addr.borrow().clone();
    let Addr::Bound(eps) = addr else {
        panic!("a well-formed file is bound, got {addr}")
    };
    assert_eq!(
        &*eps,
        &[
            Endpoint {
                addr: "127.0.0.1:8080".parse().unwrap(),
                weight: 1.0
            },
            Endpoint {
                addr: "127.0.0.2:8081".parse().unwrap(),
                weight: 3.0
            },
        ],
        "one endpoint per address (the first line wins), with its weight"
    );
}

#[tokio::test]
async fn a_malformed_line_fails_the_service_quoting_the_line() {
    let (dir, namer) = setup();
    let file = dir.path().join("hello");
    std::fs::write(&file, "127.0.0.1 8080\n127.0.0.1 notaport\n").unwrap();
    let act = namer.lookup(&prefix(), &path("/hello"));
    let state = act.borrow().clone();
    let addr = bound(&state).addr.borrow().clone();
    assert_eq!(
        addr,
        Addr::Failed(
            format!(
                "malformed address in {} line 2: \"127.0.0.1 notaport\"",
                file.display()
            )
            .into()
        ),
        "one bad line fails the whole service, naming the file and quoting the line"
    );
}

#[tokio::test]
async fn an_empty_file_is_an_empty_bound_set() {
    let (dir, namer) = setup();
    std::fs::write(dir.path().join("empty"), "").unwrap();
    std::fs::write(dir.path().join("comments"), "# nothing yet\n\n").unwrap();
    for name in ["/empty", "/comments"] {
        let act = namer.lookup(&prefix(), &path(name));
        let state = act.borrow().clone();
        assert_eq!(
            *bound(&state).addr.borrow(),
            Addr::Bound(Arc::from([])),
            "an empty or comment-only file ({name}) is bound to no addresses"
        );
    }
}

/// A file rewritten in place is empty for a moment (truncated, then
/// written): the service never loses its endpoints in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_rewritten_in_place_never_reads_as_no_endpoints() {
    let (dir, namer) = setup();
    let file = dir.path().join("hello");
    std::fs::write(&file, "127.0.0.1 8080\n").unwrap();
    let act = namer.lookup(&prefix(), &path("/hello"));
    let state = act.borrow().clone();
    let mut var = bound(&state).addr.clone();
    assert_eq!(addrs(&var.borrow_and_update()), ["127.0.0.1:8080"]);
    // A writer that stalls between truncating and writing: the watcher
    // reads the empty file (after its debounce) before the write.
    std::fs::File::create(&file).unwrap();
    tokio::time::sleep(DEBOUNCE * 4).await;
    std::fs::write(&file, "127.0.0.1 8081\n").unwrap();
    let mut seen = Vec::new();
    let addr = wait_addr(&mut var, "the rewrite", |a| {
        seen.push(a.clone());
        matches!(a, Addr::Bound(e) if e.len() == 1 && addrs(a) == ["127.0.0.1:8081"])
    })
    .await;
    assert_eq!(addrs(&addr), ["127.0.0.1:8081"]);
    assert!(
        !seen
            .iter()
            .any(|a| matches!(a, Addr::Bound(e) if e.is_empty())),
        "the half-written file was never taken as empty: {seen:?}"
    );
}

/// Emptied on purpose, it is empty once it stays empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptied_file_is_an_empty_set_once_it_stays_empty() {
    let (dir, namer) = setup();
    let file = dir.path().join("hello");
    std::fs::write(&file, "127.0.0.1 8080\n").unwrap();
    let act = namer.lookup(&prefix(), &path("/hello"));
    let state = act.borrow().clone();
    let mut var = bound(&state).addr.clone();
    std::fs::write(&file, "# drained\n").unwrap();
    wait_addr(
        &mut var,
        "the emptied file",
        |a| matches!(a, Addr::Bound(e) if e.is_empty()),
    )
    .await;
}

#[tokio::test]
async fn host_names_are_resolved_when_read() {
    let (dir, namer) = setup();
    std::fs::write(dir.path().join("hello"), "localhost 8080 * 2\n").unwrap();
    let act = namer.lookup(&prefix(), &path("/hello"));
    let state = act.borrow().clone();
    let mut var = bound(&state).addr.clone();
    let addr = wait_addr(&mut var, "localhost to resolve", |a| {
        !matches!(a, Addr::Pending)
    })
    .await;
    let Addr::Bound(eps) = addr else {
        panic!("localhost must resolve, got {addr}")
    };
    assert!(
        !eps.is_empty()
            && eps
                .iter()
                .all(|e| e.addr.ip().is_loopback() && e.addr.port() == 8080 && e.weight == 2.0),
        "a host name stands for all its addresses, each with the line's weight: {eps:?}"
    );
}

#[tokio::test]
async fn a_missing_file_is_neg_until_created() {
    let (dir, namer) = setup();
    let mut act = namer.lookup(&prefix(), &path("/hello"));
    assert!(is_neg(&act.borrow()), "a missing file is Neg");
    std::fs::write(dir.path().join("hello"), "127.0.0.1 8080\n").unwrap();
    let state = wait_state(&mut act, "the new file to bind", is_bound).await;
    let mut var = bound(&state).addr.clone();
    let addr = wait_addr(
        &mut var,
        "the written addresses",
        |a| matches!(a, Addr::Bound(e) if !e.is_empty()),
    )
    .await;
    assert_eq!(
        addrs(&addr),
        ["127.0.0.1:8080"],
        "a created file binds the lookup that was Neg"
    );
}

#[tokio::test]
async fn an_edit_changes_the_addresses() {
    let (dir, namer) = setup();
    let file = dir.path().join("hello");
    std::fs::write(&file, "127.0.0.1 8080\n").unwrap();
    let act = namer.lookup(&prefix(), &path("/hello"));
    let state = act.borrow().clone();
    let mut var = bound(&state).addr.clone();
    assert_eq!(addrs(&var.borrow_and_update()), ["127.0.0.1:8080"]);
    std::fs::write(&file, "127.0.0.1 8080\n127.0.0.1 8081\n").unwrap();
    let addr = wait_addr(
        &mut var,
        "the edit",
        |a| matches!(a, Addr::Bound(e) if e.len() == 2),
    )
    .await;
    assert_eq!(
        addrs(&addr),
        ["127.0.0.1:8080", "127.0.0.1:8081"],
        "an edit in place changes the address set"
    );
    assert!(
        !act.has_changed().unwrap(),
        "an edit changes the address set, not the lookup"
    );
}

#[tokio::test]
async fn renaming_a_file_into_place_applies() {
    let (dir, namer) = setup();
    let file = dir.path().join("hello");
    let tmp = dir.path().join(".hello.swp");
    let mut act = namer.lookup(&prefix(), &path("/hello"));
    assert!(is_neg(&act.borrow()), "a missing file is Neg");

    // `mv` of a new file into place.
    std::fs::write(&tmp, "127.0.0.1 8080\n").unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    let state = wait_state(&mut act, "the moved-in file", is_bound).await;
    let mut var = bound(&state).addr.clone();
    assert_eq!(
        addrs(&var.borrow_and_update()),
        ["127.0.0.1:8080"],
        "a file moved into place binds the service"
    );

    // An editor's save (vim, sed -i): write a temporary file, rename it
    // over the old one.
    std::fs::write(&tmp, "127.0.0.1 9090\n").unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    let addr = wait_addr(
        &mut var,
        "the renamed-over file",
        |a| matches!(a, Addr::Bound(e) if e.first().is_some_and(|e| e.addr.port() == 9090)),
    )
    .await;
    assert_eq!(
        addrs(&addr),
        ["127.0.0.1:9090"],
        "a file renamed over the old one replaces its addresses"
    );
}

#[tokio::test]
async fn deleting_the_file_goes_back_to_neg() {
    let (dir, namer) = setup();
    let file = dir.path().join("hello");
    std::fs::write(&file, "127.0.0.1 8080\n").unwrap();
    let mut act = namer.lookup(&prefix(), &path("/hello"));
    let state = act.borrow_and_update().clone();
    let mut var = bound(&state).addr.clone();
    std::fs::remove_file(&file).unwrap();
    wait_state(&mut act, "the deletion", is_neg).await;
    assert_eq!(
        *var.borrow_and_update(),
        Addr::Neg,
        "a deleted file's address set is Neg for whoever still holds it"
    );
    std::fs::write(&file, "127.0.0.1 8081\n").unwrap();
    let state = wait_state(&mut act, "the re-creation", is_bound).await;
    assert_eq!(
        addrs(&bound(&state).addr.borrow()),
        ["127.0.0.1:8081"],
        "a re-created file binds again"
    );
}

#[tokio::test]
async fn id_and_residual_follow_the_consumed_elements() {
    let (dir, namer) = setup();
    std::fs::write(dir.path().join("hello"), "127.0.0.1 8080\n").unwrap();
    let act = namer.lookup(&prefix(), &path("/hello/x/y"));
    let state = act.borrow().clone();
    let b = bound(&state);
    assert_eq!(
        b.id,
        path("/#/io.l5d.fs/hello"),
        "the id is prefix ++ the file's elements"
    );
    assert_eq!(
        b.residual,
        path("/x/y"),
        "the residual is what follows the file"
    );
    assert_eq!(b.weight, None, "the namer sets no branch weight");
}

#[tokio::test]
async fn directories_nest() {
    let (dir, namer) = setup();
    std::fs::create_dir_all(dir.path().join("a")).unwrap();
    std::fs::write(dir.path().join("a/b"), "127.0.0.1 8080\n").unwrap();
    let act = namer.lookup(&prefix(), &path("/a/b/rest"));
    let state = act.borrow().clone();
    let b = bound(&state);
    assert_eq!(
        b.id,
        path("/#/io.l5d.fs/a/b"),
        "a directory element descends"
    );
    assert_eq!(b.residual, path("/rest"));
    assert!(
        is_neg(&namer.lookup(&prefix(), &path("/a")).borrow()),
        "a path naming only a directory is Neg"
    );
    assert!(
        is_neg(&namer.lookup(&prefix(), &path("/a/c")).borrow()),
        "a missing file in a directory is Neg"
    );
    assert!(
        is_neg(&namer.lookup(&prefix(), &Path::empty()).borrow()),
        "the empty path is Neg"
    );

    // A directory created later is watched too.
    let mut act = namer.lookup(&prefix(), &path("/x/y/z"));
    assert!(is_neg(&act.borrow()));
    std::fs::create_dir_all(dir.path().join("x")).unwrap();
    std::fs::write(dir.path().join("x/y"), "127.0.0.1 8082\n").unwrap();
    let state = wait_state(&mut act, "the file in a new directory", is_bound).await;
    assert_eq!(
        bound(&state).id,
        path("/#/io.l5d.fs/x/y"),
        "a file in a new directory binds"
    );
}

#[tokio::test]
async fn unsafe_elements_are_neg() {
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(outer.path().join("secret"), "127.0.0.1 22\n").unwrap();
    std::fs::write(root.join(".hidden"), "127.0.0.1 8080\n").unwrap();
    std::fs::write(root.join("hello~"), "127.0.0.1 8080\n").unwrap();
    std::fs::create_dir(root.join("d")).unwrap();
    let namer = FsNamer::new(&root).unwrap();

    let cases: Vec<(&str, Path)> = vec![
        ("..", Path::from_elems(["..", "secret"]).unwrap()),
        (".", Path::from_elems([".", "hello~"]).unwrap()),
        ("hidden", Path::from_elems([".hidden"]).unwrap()),
        (
            "nested ..",
            Path::from_elems(["d", "..", "..", "secret"]).unwrap(),
        ),
        ("slash", Path::from_elems(["d/../../secret"]).unwrap()),
        ("NUL", Path::from_elems([&b"hello~\0"[..]]).unwrap()),
        ("non-UTF-8", Path::from_elems([&b"\xff"[..]]).unwrap()),
    ];
    for (what, p) in cases {
        assert!(
            is_neg(&namer.lookup(&prefix(), &p).borrow()),
            "a {what} element is Neg and never leaves rootDir ({p})"
        );
    }
    assert!(
        is_bound(
            &namer
                .lookup(&prefix(), &Path::from_elems(["hello~"]).unwrap())
                .borrow()
        ),
        "an ordinary file name is bound"
    );
    let act = namer.lookup(&prefix(), &Path::from_elems(["hello~", ".."]).unwrap());
    assert_eq!(
        bound(&act.borrow()).residual,
        Path::from_elems([".."]).unwrap(),
        "elements after the file are residual, never file names"
    );
}

#[tokio::test]
async fn lookups_share_channels() {
    let (dir, namer) = setup();
    std::fs::write(dir.path().join("hello"), "127.0.0.1 8080\n").unwrap();
    let a = namer.lookup(&prefix(), &path("/hello/x"));
    let b = namer.lookup(&prefix(), &path("/hello/x"));
    assert!(a.same_channel(&b), "one live answer per looked-up path");
    let c = namer.lookup(&prefix(), &path("/hello/y"));
    let (a, c) = (a.borrow().clone(), c.borrow().clone());
    assert!(
        bound(&a).addr.same_channel(&bound(&c).addr),
        "one address set per file, whatever the residual"
    );
}

#[tokio::test]
async fn unwatched_entries_are_dropped_on_scan() {
    let (dir, namer) = setup();
    std::fs::write(dir.path().join("hello"), "127.0.0.1 8080\n").unwrap();
    let kept = namer.lookup(&prefix(), &path("/kept"));
    drop(namer.lookup(&prefix(), &path("/hello")));
    drop(namer.lookup(&prefix(), &path("/gone")));
    scan(&namer.shared, false).await;
    let services = namer.shared.lock();
    let lookups: Vec<String> = services.lookups.keys().map(|k| k.path.show()).collect();
    assert_eq!(lookups, ["/kept"], "lookups nobody watches are dropped");
    assert!(
        services.files.is_empty(),
        "address sets nobody watches are dropped"
    );
    drop(kept);
}

#[tokio::test]
async fn one_off_lookups_do_not_pile_up_between_scans() {
    let (dir, namer) = setup();
    std::fs::write(dir.path().join("hello"), "127.0.0.1 8080\n").unwrap();
    let hello = namer.lookup(&prefix(), &path("/hello"));
    for i in 0..5_000 {
        drop(namer.lookup(&prefix(), &path(&format!("/bogus-{i}"))));
    }
    let services = namer.shared.lock();
    assert!(
        services.lookups.len() <= 2 * crate::PRUNE_FLOOR,
        "lookups nobody holds are dropped as new ones come: {}",
        services.lookups.len()
    );
    assert!(services.lookups.keys().any(|k| k.path.show() == "/hello"));
    drop(services);
    assert!(matches!(*hello.borrow(), State::Ok(NameTree::Leaf(_))));
}

#[tokio::test]
async fn state_reports_each_service() {
    let (dir, namer) = setup();
    std::fs::write(dir.path().join("hello"), "127.0.0.1 8080 * 2\n").unwrap();
    std::fs::write(dir.path().join("bad"), "nope\n").unwrap();
    let _hello = namer.lookup(&prefix(), &path("/hello"));
    let _bad = namer.lookup(&prefix(), &path("/bad"));
    let _missing = namer.lookup(&prefix(), &path("/missing"));
    let state = namer.state();
    assert_eq!(
        state["rootDir"],
        serde_json::json!(dir.path().display().to_string())
    );
    assert_eq!(
        state["services"]["/hello"],
        serde_json::json!({"state": "bound", "addresses": ["127.0.0.1:8080"], "weights": [2.0]}),
        "a bound service lists its addresses and weights"
    );
    assert_eq!(
        state["services"]["/missing"],
        serde_json::json!({"state": "neg"})
    );
    assert_eq!(state["services"]["/bad"]["state"], "failed");
    assert!(
        state["services"]["/bad"]["error"]
            .as_str()
            .unwrap()
            .contains("\"nope\""),
        "a failed service carries its error: {state}"
    );
}

#[tokio::test]
async fn root_dir_must_be_an_existing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = FsNamer::new(&missing).unwrap_err().to_string();
    assert!(
        err.contains(&missing.display().to_string()) && err.contains("does not exist"),
        "a missing rootDir is an error naming it: {err}"
    );
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    let err = FsNamer::new(&file).unwrap_err().to_string();
    assert!(
        err.contains(&file.display().to_string()) && err.contains("not a directory"),
        "a rootDir that is a file is an error naming it: {err}"
    );
}

#[test]
fn needs_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        matches!(FsNamer::new(dir.path()), Err(FsError::NoRuntime)),
        "outside a tokio runtime creation fails instead of panicking"
    );
}

fn interpreter(namer: FsNamer) -> Interpreter {
    Interpreter::new(
        vec![(prefix(), Arc::new(namer) as Arc<dyn Namer>)],
        InetResolver::default(),
    )
}

#[tokio::test]
async fn the_interpreter_binds_a_file() {
    let (dir, namer) = setup();
    std::fs::write(dir.path().join("hello"), "127.0.0.1 8080\n").unwrap();
    let interp = interpreter(namer);
    let dtab = Dtab::read("/svc=>/#/io.l5d.fs").unwrap();
    let binding = interp.bind(&dtab, &path("/svc/hello"), 100);
    match &binding.state {
        State::Ok(NameTree::Leaf(b)) => {
            assert_eq!(b.id, path("/#/io.l5d.fs/hello"));
            assert_eq!(b.residual, Path::empty());
            assert_eq!(addrs(&b.addr.borrow()), ["127.0.0.1:8080"]);
        }
        other => panic!("/svc/hello must bind to the file, got {other:?}"),
    }
    assert!(!binding.is_stale(), "a fresh binding is not stale");
}

#[tokio::test]
async fn a_binding_goes_stale_when_its_missing_service_appears() {
    let (dir, namer) = setup();
    let interp = interpreter(namer);
    let dtab = Dtab::read("/svc=>/#/io.l5d.fs").unwrap();
    let binding = interp.bind(&dtab, &path("/svc/hello"), 100);
    assert!(
        matches!(binding.state, State::Ok(NameTree::Neg)),
        "a missing service binds to Neg, got {:?}",
        binding.state
    );
    assert!(!binding.is_stale());
    std::fs::write(dir.path().join("hello"), "127.0.0.1 8080\n").unwrap();
    let mut waiter = binding.clone();
    tokio::time::timeout(WAIT, waiter.changed())
        .await
        .expect("the lookup must change when the file appears");
    assert!(
        binding.is_stale(),
        "a binding that used a missing service is stale once the file exists"
    );
    let binding = interp.bind(&dtab, &path("/svc/hello"), 100);
    assert!(
        matches!(&binding.state, State::Ok(NameTree::Leaf(b)) if b.id == path("/#/io.l5d.fs/hello")),
        "binding again finds the file, got {:?}",
        binding.state
    );
}
#[tokio::test]
async fn a_binding_that_also_tried_an_unsafe_name_still_wakes() {
    let (dir, namer) = setup();
    let interp = interpreter(namer);
    // The first alternative is Neg for good; the second may change.
    let dtab = Dtab::read("/svc=>/#/io.l5d.fs/.hidden | /#/io.l5d.fs").unwrap();
    let binding = interp.bind(&dtab, &path("/svc/hello"), 100);
    assert!(matches!(binding.state, State::Ok(NameTree::Neg)));
    std::fs::write(dir.path().join("hello"), "127.0.0.1 8080\n").unwrap();
    let mut waiter = binding.clone();
    tokio::time::timeout(WAIT, waiter.changed()).await.expect(
        "Binding::changed must wake for the live lookup even though an unsafe \
             name's lookup never changes",
    );
    assert!(binding.is_stale());
}

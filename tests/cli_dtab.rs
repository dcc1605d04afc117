//! End-to-end tests of `strait dtab …`: they run the real `strait` binary
//! and check its stdout, stderr and exit status.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn strait(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(args)
        .output()
        .expect("the strait binary runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// Runs a command that must succeed and returns its single output line.
fn line(args: &[&str]) -> String {
    let run = strait(args);
    assert_eq!(
        run.code,
        Some(0),
        "`strait {}` succeeds (stderr: {})",
        args.join(" "),
        run.stderr
    );
    assert!(
        run.stderr.is_empty(),
        "a successful command writes nothing on stderr: {:?}",
        run.stderr
    );
    let text = run
        .stdout
        .strip_suffix('\n')
        .expect("output ends with a newline");
    assert!(
        !text.contains('\n'),
        "a command prints exactly one line: {:?}",
        run.stdout
    );
    text.to_owned()
}

/// Runs a command that must fail with exit status 1 and returns its stderr
/// without the trailing newline.
fn failure(args: &[&str]) -> String {
    let run = strait(args);
    assert_eq!(
        run.code,
        Some(1),
        "`strait {}` fails with exit status 1 (stdout: {})",
        args.join(" "),
        run.stdout
    );
    assert!(
        run.stdout.is_empty(),
        "a failed command prints nothing on stdout: {:?}",
        run.stdout
    );
    run.stderr.trim_end_matches('\n').to_owned()
}

// ---- parse ----

#[test]
fn parse_dtab_prints_the_canonical_form() {
    assert_eq!(
        line(&["dtab", "parse", "dtab", "/svc => /#/io.l5d.consul/dc1;"]),
        "/svc=>/#/io.l5d.consul/dc1",
        "a dtab prints without spaces round `=>` and without the trailing `;`"
    );
    assert_eq!(
        line(&[
            "dtab",
            "parse",
            "dtab",
            " /a => /b ; /c => /d | ~ # comment"
        ]),
        "/a=>/b;/c=>/d | ~",
        "dentries are joined by `;`, comments dropped, alternatives spaced"
    );
    assert_eq!(
        line(&["dtab", "parse", "dtab", ""]),
        "",
        "the empty dtab prints as the empty line"
    );
}

#[test]
fn parse_malformed_dtab_prints_finagle_error_on_stderr_and_exits_1() {
    assert_eq!(
        failure(&["dtab", "parse", "dtab", "/svc => /a;;"]),
        "'/' expected but ';' found at '/svc => /a;[;]'",
        "only one trailing `;` is allowed; the error is Finagle's text with the offending character bracketed"
    );
    assert_eq!(
        failure(&["dtab", "parse", "dtab", "/svc => "]),
        "simple expected but end of input found at '/svc => []'",
        "a dentry needs a destination; end of input is shown as empty brackets"
    );
}

#[test]
fn parse_path_prints_the_canonical_form() {
    assert_eq!(
        line(&["dtab", "parse", "path", "  /a/b # trailing comment"]),
        "/a/b",
        "surrounding whitespace and a trailing comment are dropped"
    );
    assert_eq!(
        line(&["dtab", "parse", "path", "/a\\x2fb/c"]),
        "/\\x61\\x2f\\x62/c",
        "an element with an unshowable byte is printed entirely as \\xhh escapes"
    );
    assert_eq!(
        line(&["dtab", "parse", "path", "/"]),
        "/",
        "the empty path prints as `/`"
    );
    assert_eq!(
        failure(&["dtab", "parse", "path", "invalid"]),
        "'/' expected but 'i' found at '[i]nvalid'",
        "a path must start with `/`"
    );
}

#[test]
fn parse_prefix_prints_the_canonical_form() {
    assert_eq!(
        line(&["dtab", "parse", "prefix", "/svc/*/web"]),
        "/svc/*/web",
        "a prefix keeps its `*` wildcards"
    );
}

#[test]
fn parse_tree_prints_the_canonical_form() {
    assert_eq!(
        line(&["dtab", "parse", "tree", "/a|0.5*/b&(/c|/d)"]),
        "/a | 0.50*/b & (/c | /d)",
        "alternatives and unions are spaced, weights printed with two decimals, nested Alt parenthesised"
    );
    assert_eq!(
        line(&["dtab", "parse", "tree", "0.5 * /a"]),
        "/a",
        "a lone weighted term loses its weight"
    );
    assert_eq!(
        line(&["dtab", "parse", "tree", "~ | ! | $"]),
        "~ | ! | $",
        "Neg, Fail and Empty print as `~`, `!` and `$`"
    );
    assert_eq!(
        failure(&["dtab", "parse", "tree", "/a |"]),
        "simple expected but end of input found at '/a |[]'",
        "`|` must be followed by a tree"
    );
}

#[test]
fn parse_dentry_prints_the_canonical_form() {
    assert_eq!(
        line(&["dtab", "parse", "dentry", "/svc/* => /#/io.l5d.fs | ~"]),
        "/svc/*=>/#/io.l5d.fs | ~",
        "a dentry prints as prefix=>tree with no spaces round `=>`"
    );
    assert_eq!(
        failure(&["dtab", "parse", "dentry", "/a => /b;"]),
        "end of input expected but ';' found at '/a => /b[;]'",
        "a single dentry takes no `;`"
    );
}

#[test]
fn parse_rejects_an_unknown_kind_as_a_usage_error() {
    let run = strait(&["dtab", "parse", "bogus", "/a"]);
    assert_eq!(
        run.code,
        Some(2),
        "clap rejects an unknown kind with its usage exit status"
    );
    assert!(
        run.stderr.contains("bogus"),
        "the usage error names the bad kind: {}",
        run.stderr
    );
    assert!(
        run.stdout.is_empty(),
        "a usage error prints nothing on stdout"
    );
}

// ---- lookup ----

#[test]
fn lookup_is_an_alt_of_all_matches_last_dentry_first() {
    assert_eq!(
        line(&["dtab", "lookup", "/a=>/x;/b=>/z;/a=>/y", "/a/c"]),
        "/y/c | /x/c",
        "matching dentries are tried last to first, each with the unmatched suffix appended"
    );
}

#[test]
fn lookup_of_one_match_is_its_tree_and_of_none_is_neg() {
    assert_eq!(
        line(&["dtab", "lookup", "/svc/*=>/#/io.l5d.fs", "/svc/web/x"]),
        "/#/io.l5d.fs/x",
        "a `*` prefix element consumes one path element"
    );
    assert_eq!(
        line(&["dtab", "lookup", "/a=>/b", "/c"]),
        "~",
        "no matching dentry is Neg"
    );
}

#[test]
fn lookup_result_is_not_simplified() {
    assert_eq!(
        line(&["dtab", "lookup", "/a=>~;/a=>/x", "/a"]),
        "/x | ~",
        "a Neg destination stays in the lookup result"
    );
}

#[test]
fn lookup_reports_parse_errors_of_either_argument() {
    assert_eq!(
        failure(&["dtab", "lookup", "/a=>", "/a"]),
        "simple expected but end of input found at '/a=>[]'",
        "a malformed dtab is a parse error"
    );
    assert_eq!(
        failure(&["dtab", "lookup", "/a=>/b", "a"]),
        "'/' expected but 'a' found at '[a]'",
        "a malformed path is a parse error"
    );
}

// ---- simplify ----

#[test]
fn simplify_prints_the_simplified_tree() {
    assert_eq!(
        line(&["dtab", "simplify", "~ | /a & !"]),
        "/a",
        "Neg alternatives and Fail union branches drop; a single survivor replaces its node"
    );
    assert_eq!(
        line(&["dtab", "simplify", "(~ | !) | /b"]),
        "!",
        "the first Fail ends an Alt"
    );
    assert_eq!(
        line(&["dtab", "simplify", "0.3*/a & 0.7*(~ | /b) & ~"]),
        "0.30*/a & 0.70*/b",
        "surviving union branches keep their weights"
    );
    assert_eq!(
        line(&["dtab", "simplify", "~ | ~"]),
        "~",
        "an Alt of nothing but Neg is Neg"
    );
}

// ---- eval ----

#[test]
fn eval_of_a_negative_tree_is_null() {
    for tree in ["~", "!", "~ | ~", "! | /a", "~ & !"] {
        assert_eq!(
            line(&["dtab", "eval", tree]),
            "null",
            "`{tree}` evaluates negative or failed, printed as JSON null"
        );
    }
}

#[test]
fn eval_is_the_sorted_array_of_selected_leaves() {
    assert_eq!(
        line(&["dtab", "eval", "/b & /a & /b"]),
        r#"["/a","/b"]"#,
        "a union selects all its leaves, without duplicates, sorted"
    );
    assert_eq!(
        line(&["dtab", "eval", "~ | /z & /y | /x"]),
        r#"["/y","/z"]"#,
        "an Alt selects its first non-negative alternative"
    );
    assert_eq!(
        line(&["dtab", "eval", "$"]),
        "[]",
        "Empty evaluates to the empty set, not null"
    );
}

// ---- global ----

#[test]
fn global_binds_inet_host_and_port() {
    assert_eq!(
        line(&["dtab", "global", "/$/inet/127.0.0.1/8080/rest/of"]),
        r#"{"kind":"bound","id":"/$/inet/127.0.0.1/8080","residual":"/rest/of","addr":{"host":"127.0.0.1","port":8080}}"#,
        "/$/inet/<host>/<port> binds with id /$/inet/<host>/<port> and the rest as residual"
    );
}

#[test]
fn global_binds_inet_port_only_to_the_empty_host() {
    assert_eq!(
        line(&["dtab", "global", "/$/inet/8080"]),
        r#"{"kind":"bound","id":"/$/inet/8080","residual":"/","addr":{"host":"","port":8080}}"#,
        "/$/inet/<port> binds the unspecified address, printed as the empty host"
    );
}

#[test]
fn global_fail_and_nil_are_fail_and_empty() {
    assert_eq!(
        line(&["dtab", "global", "/$/fail/x"]),
        r#"{"kind":"fail"}"#,
        "/$/fail… is Fail"
    );
    assert_eq!(
        line(&["dtab", "global", "/$/nil"]),
        r#"{"kind":"empty"}"#,
        "/$/nil… is Empty"
    );
}

#[test]
fn global_of_a_non_system_path_is_neg() {
    assert_eq!(
        line(&["dtab", "global", "/#/io.l5d.consul/dc1"]),
        r#"{"kind":"neg"}"#,
        "paths outside /$/ are Neg for the system namers"
    );
}

#[test]
fn global_of_an_unknown_namer_is_an_error_naming_it() {
    let out = line(&["dtab", "global", "/$/com.example.NoSuchNamer/x"]);
    let json: serde_json::Value = serde_json::from_str(&out).expect("global prints JSON");
    assert_eq!(
        json["kind"], "error",
        "an unknown /$/ namer fails the lookup: {out}"
    );
    assert!(
        json["message"]
            .as_str()
            .is_some_and(|m| m.contains("com.example.NoSuchNamer")),
        "the failure message names the missing namer: {out}"
    );
}

#[test]
fn global_reports_a_malformed_path_as_a_parse_error() {
    assert_eq!(
        failure(&["dtab", "global", "$/inet/1"]),
        "'/' expected but '$' found at '[$]/inet/1'",
        "the path argument is parsed with Finagle's grammar"
    );
}

// ---- bind ----

#[test]
fn bind_follows_a_rewrite_chain_to_inet() {
    assert_eq!(
        line(&[
            "dtab",
            "bind",
            "/svc=>/s1;/s1=>/s2;/s2=>/$/inet/127.0.0.1/8080",
            "/svc/web",
        ]),
        r#"{"state":"ok","tree":"/$/inet/127.0.0.1/8080","eval":[{"id":"/$/inet/127.0.0.1/8080","residual":"/web","addr":{"host":"127.0.0.1","port":8080},"weight":null}]}"#,
        "each dentry rewrites the path until /$/inet binds it; the unconsumed suffix is the residual; no union means no weight"
    );
}

#[test]
fn bind_carries_union_weights_into_eval() {
    assert_eq!(
        line(&[
            "dtab",
            "bind",
            "/svc => 0.7*/$/inet/127.0.0.1/1 & 0.3*/$/inet/127.0.0.1/2",
            "/svc",
        ]),
        r#"{"state":"ok","tree":"0.70*/$/inet/127.0.0.1/1 & 0.30*/$/inet/127.0.0.1/2","eval":[{"id":"/$/inet/127.0.0.1/1","residual":"/","addr":{"host":"127.0.0.1","port":1},"weight":0.7},{"id":"/$/inet/127.0.0.1/2","residual":"/","addr":{"host":"127.0.0.1","port":2},"weight":0.3}]}"#,
        "each bound name carries the weight of its union branch"
    );
}

#[test]
fn bind_eval_is_sorted_by_id() {
    let out = line(&[
        "dtab",
        "bind",
        "/svc => /$/inet/h/2 & /$/inet/h/10 & /$/inet/h/1",
        "/svc",
    ]);
    let json: serde_json::Value = serde_json::from_str(&out).expect("bind prints JSON");
    let ids: Vec<&str> = json["eval"]
        .as_array()
        .expect("eval is an array")
        .iter()
        .map(|b| b["id"].as_str().expect("id is a string"))
        .collect();
    assert_eq!(
        ids,
        ["/$/inet/h/1", "/$/inet/h/10", "/$/inet/h/2"],
        "eval entries are sorted by their canonical id string"
    );
}

#[test]
fn bind_of_inet_port_only_has_the_empty_host() {
    assert_eq!(
        line(&["dtab", "bind", "/svc=>/$/inet/4140", "/svc"]),
        r#"{"state":"ok","tree":"/$/inet/4140","eval":[{"id":"/$/inet/4140","residual":"/","addr":{"host":"","port":4140},"weight":null}]}"#,
        "/$/inet/<port> binds the empty host"
    );
}

#[test]
fn bind_of_an_unmatched_path_is_neg_and_evaluates_to_null() {
    assert_eq!(
        line(&["dtab", "bind", "/a=>/b", "/nothing"]),
        r#"{"state":"ok","tree":"~","eval":null}"#,
        "a path neither the dtab nor the system namers know binds to Neg"
    );
}

#[test]
fn bind_falls_back_to_system_namers_only_when_the_dtab_gives_exactly_neg() {
    assert_eq!(
        line(&["dtab", "bind", "/$/inet=>~", "/$/inet/h/1"]),
        r#"{"state":"ok","tree":"/$/inet/h/1","eval":[{"id":"/$/inet/h/1","residual":"/","addr":{"host":"h","port":1},"weight":null}]}"#,
        "a sole `~` match is exactly Neg, so the system namers are asked"
    );
    assert_eq!(
        line(&["dtab", "bind", "/$/inet=>~;/$/inet=>~", "/$/inet/h/1"]),
        r#"{"state":"ok","tree":"~","eval":null}"#,
        "two `~` matches are Alt(~,~), not exactly Neg, so the system namers are not asked"
    );
    assert_eq!(
        line(&["dtab", "bind", "/$/inet/h/1=>/$/inet/h/2", "/$/inet/h/1"]),
        r#"{"state":"ok","tree":"/$/inet/h/2","eval":[{"id":"/$/inet/h/2","residual":"/","addr":{"host":"h","port":2},"weight":null}]}"#,
        "the dtab is consulted before the system namers"
    );
}

#[test]
fn bind_takes_the_first_non_negative_alternative() {
    assert_eq!(
        line(&[
            "dtab",
            "bind",
            "/svc=>/missing | /$/inet/h/1 | /$/inet/h/2",
            "/svc"
        ]),
        r#"{"state":"ok","tree":"/$/inet/h/1","eval":[{"id":"/$/inet/h/1","residual":"/","addr":{"host":"h","port":1},"weight":null}]}"#,
        "an Alt binds its alternatives in order and stops at the first non-Neg"
    );
}

#[test]
fn bind_of_a_loop_fails_at_the_max_recursion_level() {
    assert_eq!(
        line(&["dtab", "bind", "/a=>/b;/b=>/a", "/a"]),
        r#"{"state":"error","message":"Max recursion level: 100 reached in Namer lookup"}"#,
        "loops are not detected; they run into the default max depth of 100"
    );
}

#[test]
fn bind_max_depth_limits_the_chain_of_lookups() {
    assert_eq!(
        line(&[
            "dtab",
            "bind",
            "--max-depth",
            "2",
            "/a=>/b;/b=>/$/inet/h/1",
            "/a"
        ]),
        r#"{"state":"error","message":"Max recursion level: 2 reached in Namer lookup"}"#,
        "three lookups in a chain exceed --max-depth 2"
    );
    assert_eq!(
        line(&["dtab", "bind", "--max-depth", "2", "/a=>/$/inet/h/1", "/a"]),
        r#"{"state":"ok","tree":"/$/inet/h/1","eval":[{"id":"/$/inet/h/1","residual":"/","addr":{"host":"h","port":1},"weight":null}]}"#,
        "two lookups in a chain are within --max-depth 2"
    );
}

#[test]
fn bind_reports_parse_errors_on_stderr() {
    assert_eq!(
        failure(&["dtab", "bind", "/a=>/b;;", "/a"]),
        "'/' expected but ';' found at '/a=>/b;[;]'",
        "a malformed dtab is a parse error, not a binding state"
    );
}

// ---- the command itself ----

#[test]
fn version_flag_prints_the_package_version_and_commit() {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".to_owned(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        );
    assert_eq!(
        line(&["--version"]),
        format!("strait {} ({commit})", env!("CARGO_PKG_VERSION")),
        "`strait --version` prints the name, the package version and the commit built"
    );
}

#[test]
fn help_lists_the_dtab_subcommands() {
    let top = line_any(&["--help"]);
    assert!(top.contains("dtab"), "`strait --help` lists `dtab`: {top}");
    let dtab = line_any(&["dtab", "--help"]);
    for sub in ["parse", "lookup", "simplify", "eval", "global", "bind"] {
        assert!(
            dtab.contains(sub),
            "`strait dtab --help` lists `{sub}`: {dtab}"
        );
    }
}

/// Runs a command that must succeed and returns all of its stdout.
fn line_any(args: &[&str]) -> String {
    let run = strait(args);
    assert_eq!(run.code, Some(0), "`strait {}` succeeds", args.join(" "));
    run.stdout
}

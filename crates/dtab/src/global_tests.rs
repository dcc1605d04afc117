#![allow(clippy::unwrap_used)]

use super::*;

fn path(s: &str) -> Path {
    Path::read(s).unwrap()
}

fn look(s: &str) -> State<NameTree<Name<InetAddr>>> {
    lookup(&path(s))
}

/// The bound name a lookup answered, or a panic naming what it was.
fn bound(s: &str) -> Bound<InetAddr> {
    match look(s) {
        State::Ok(NameTree::Leaf(Name::Bound(b))) => b,
        other => panic!("{s}: expected a bound leaf, got {other:?}"),
    }
}

/// The rewritten path a lookup answered, shown.
fn rewritten(s: &str) -> String {
    match look(s) {
        State::Ok(NameTree::Leaf(Name::Path(p))) => p.show(),
        other => panic!("{s}: expected an unbound path, got {other:?}"),
    }
}

fn failed(s: &str) -> String {
    match look(s) {
        State::Failed(message) => message,
        other => panic!("{s}: expected a failure, got {other:?}"),
    }
}

fn is_neg(s: &str) -> bool {
    look(s) == State::Ok(NameTree::Neg)
}

fn inet(host: &str, port: u16, fixed: bool) -> InetAddr {
    InetAddr {
        host: host.to_owned(),
        port,
        fixed,
    }
}

// ---- /$/inet and /$/fixedinet -------------------------------------

#[test]
fn inet_host_port_binds_with_residual() {
    let b = bound("/$/inet/127.0.0.1/8080/foo/bar");
    assert_eq!(
        b.id.show(),
        "/$/inet/127.0.0.1/8080",
        "the id is the path minus the residual"
    );
    assert_eq!(
        b.residual.show(),
        "/foo/bar",
        "what follows the port is the residual"
    );
    assert_eq!(b.addr, inet("127.0.0.1", 8080, false), "host then port");
    assert_eq!(b.weight, None, "a system namer sets no weight");
}

#[test]
fn inet_without_residual_has_an_empty_residual() {
    let b = bound("/$/inet/localhost/80");
    assert_eq!(b.id.show(), "/$/inet/localhost/80");
    assert!(
        b.residual.is_empty(),
        "nothing after the port: the residual is `/`"
    );
}

#[test]
fn fixedinet_keeps_its_scheme_and_is_fixed() {
    let b = bound("/$/fixedinet/example.com/443/x");
    assert_eq!(
        b.id.show(),
        "/$/fixedinet/example.com/443",
        "the id keeps the scheme the path used"
    );
    assert_eq!(b.residual.show(), "/x");
    assert_eq!(
        b.addr,
        inet("example.com", 443, true),
        "fixedinet resolves once"
    );
    let b = bound("/$/fixedinet/8080");
    assert_eq!(
        b.addr,
        inet("", 8080, true),
        "fixedinet has the port-only form too"
    );
}

#[test]
fn inet_host_then_port_wins_over_port_only() {
    let b = bound("/$/inet/1234/5678");
    assert_eq!(
        b.addr,
        inet("1234", 5678, false),
        "host-then-port is tried first"
    );
    assert_eq!(b.id.show(), "/$/inet/1234/5678");
    assert!(b.residual.is_empty());
    let b = bound("/$/inet/80/90/x");
    assert_eq!(
        b.addr,
        inet("80", 90, false),
        "two numbers are host and port"
    );
    assert_eq!(b.residual.show(), "/x");
}

#[test]
fn inet_port_only_binds_an_empty_host() {
    let b = bound("/$/inet/8080");
    assert_eq!(
        b.addr,
        inet("", 8080, false),
        "a lone port means the local host"
    );
    assert_eq!(b.id.show(), "/$/inet/8080", "the id is `/$/inet/<port>`");
    let b = bound("/$/inet/8080/svc/x");
    assert_eq!(
        b.addr,
        inet("", 8080, false),
        "a non-numeric element after the port is residual"
    );
    assert_eq!(b.id.show(), "/$/inet/8080");
    assert_eq!(b.residual.show(), "/svc/x");
}

#[test]
fn inet_port_parses_like_java_parse_int() {
    let b = bound(r"/$/inet/h/\x2b80");
    assert_eq!(b.addr.port, 80, "a leading `+` is allowed");
    assert_eq!(
        b.id.show(),
        r"/$/inet/h/\x2b\x38\x30",
        "the id keeps the port as written"
    );
    assert_eq!(
        bound("/$/inet/h/0080").addr.port,
        80,
        "leading zeros are allowed"
    );
    assert_eq!(bound("/$/inet/h/-0").addr.port, 0, "`-0` is 0");
    let b = bound(r"/$/inet/h/\xd9\xa8\xd9\xa0");
    assert_eq!(
        b.addr.port, 80,
        "Arabic-Indic digits are decimal digits to Java"
    );
    let b = bound(r"/$/inet/h/\xef\xbc\x98\xef\xbc\x90");
    assert_eq!(
        b.addr.port, 80,
        "fullwidth digits are decimal digits to Java"
    );
    assert_eq!(
        failed("/$/inet/h/abc"),
        "Unknown namer: inet for path: /$/inet/h/abc",
        "a non-numeric port (and a non-numeric host-less port) is a class lookup of `inet`"
    );
    assert_eq!(
        failed("/$/inet/h/-"),
        "Unknown namer: inet for path: /$/inet/h/-",
        "a lone sign is no number"
    );
    assert_eq!(
        failed("/$/inet/h/8.0"),
        "Unknown namer: inet for path: /$/inet/h/8.0",
        "no decimals"
    );
}

#[test]
fn inet_port_out_of_range_fails_with_javas_message() {
    assert_eq!(
        failed("/$/inet/h/70000"),
        "port out of range:70000",
        "an Int above 65535 fails"
    );
    assert_eq!(
        failed("/$/inet/h/-1"),
        "port out of range:-1",
        "a negative Int fails"
    );
    assert_eq!(
        failed("/$/inet/65536"),
        "port out of range:65536",
        "the port-only form checks too"
    );
    assert_eq!(
        bound("/$/inet/h/65535").addr.port,
        65535,
        "65535 is the largest port"
    );
    assert_eq!(bound("/$/inet/h/0").addr.port, 0, "0 is a port");
    assert_eq!(
        failed("/$/inet/h/2147483647"),
        "port out of range:2147483647",
        "Int.MaxValue is an Int"
    );
    assert_eq!(
        failed("/$/inet/h/2147483648"),
        "Unknown namer: inet for path: /$/inet/h/2147483648",
        "beyond Int.MaxValue is not an Int at all"
    );
    assert_eq!(
        failed("/$/inet/-2147483648"),
        "port out of range:-2147483648",
        "Int.MinValue is an Int"
    );
}

#[test]
fn inet_host_goes_through_finagles_host_port_parser() {
    assert_eq!(
        failed("/$/inet/::1/80"),
        "requirement failed: You must specify host and port in hosts: ::1:80",
        "an IPv6 literal splits into too many colon pieces"
    );
    assert_eq!(
        failed(r"/$/inet/a\x2cb/80"),
        "requirement failed: You must specify host and port in hosts: a,b:80",
        "a comma starts another host:port entry"
    );
    let b = bound(r"/$/inet/\x20a/80");
    assert_eq!(b.addr.host, "a", "spaces around entries are dropped");
    assert_eq!(
        b.id.show(),
        r"/$/inet/\x20\x61/80",
        "the id keeps the original bytes"
    );
    assert!(
        failed(r"/$/inet/a:1\x2cb/80").contains("not supported"),
        "several host:port entries in one name are refused"
    );
}

#[test]
fn inet_needs_the_dollar_and_scheme_exactly() {
    assert!(is_neg("/inet/h/80"), "no `/$` prefix: Neg");
    assert!(is_neg("/#/inet/h/80"), "`/#` is not the system namespace");
    assert_eq!(
        failed("/$/INET/h/80"),
        "Unknown namer: INET for path: /$/INET/h/80",
        "schemes are case-sensitive"
    );
}

#[test]
fn non_utf8_elements_are_decoded_lossily_not_negative() {
    let b = bound(r"/$/inet/\xff/80/\xfe/ok");
    assert_eq!(
        b.addr.host, "\u{fffd}",
        "a malformed host byte becomes U+FFFD"
    );
    assert_eq!(
        b.id.show(),
        r"/$/inet/\xff/80",
        "the id keeps the original bytes"
    );
    assert_eq!(
        b.residual.show(),
        r"/\xef\xbf\xbd/ok",
        "the residual is re-encoded from the decoded text"
    );
    assert_eq!(
        failed(r"/$/\xff/x"),
        "Unknown namer: \u{fffd} for path: /$/\\xff/x",
        "a non-UTF-8 class name is an unknown namer, not Neg"
    );
    assert!(
        is_neg(r"/\xff/inet/h/80"),
        "a first element other than `$` is Neg"
    );
}

#[test]
fn java_utf8_replaces_like_java() {
    assert_eq!(java_utf8(b"plain"), "plain", "valid UTF-8 is kept");
    assert_eq!(java_utf8(b"\xff"), "\u{fffd}");
    assert_eq!(
        java_utf8(b"\xed\xa0\x80"),
        "\u{fffd}",
        "an encoded surrogate is one replacement in Java"
    );
    assert_eq!(
        java_utf8(b"\xed\xa0"),
        "\u{fffd}",
        "a truncated surrogate too"
    );
    assert_eq!(
        java_utf8(b"\xed\xa0A"),
        "\u{fffd}A",
        "the non-continuation byte is kept"
    );
    assert_eq!(
        java_utf8(b"\xe2\x82"),
        "\u{fffd}",
        "a truncated sequence at the end is one replacement"
    );
    assert_eq!(
        java_utf8(b"\xc0\xaf"),
        "\u{fffd}\u{fffd}",
        "an overlong lead and its continuation"
    );
    assert_eq!(
        java_utf8(b"\xf4\x90\x80\x80"),
        "\u{fffd}".repeat(4),
        "beyond U+10FFFF: one per byte"
    );
    assert_eq!(
        java_utf8(b"a\xffb\xe2\x82\xacc"),
        "a\u{fffd}b\u{20ac}c",
        "valid text around errors is kept"
    );
}

#[test]
fn java_parse_int_follows_java() {
    assert_eq!(java_parse_int("80"), Some(80));
    assert_eq!(java_parse_int("-2147483648"), Some(i32::MIN));
    assert_eq!(java_parse_int("2147483647"), Some(i32::MAX));
    assert_eq!(java_parse_int("-2147483649"), None, "below Int.MinValue");
    assert_eq!(
        java_parse_int("99999999999999999999999"),
        None,
        "no overflow on long inputs"
    );
    assert_eq!(java_parse_int(""), None);
    assert_eq!(java_parse_int("-"), None);
    assert_eq!(java_parse_int("+-1"), None, "one sign at most");
    assert_eq!(java_parse_int(" 80"), None, "no whitespace");
    assert_eq!(
        java_parse_int("\u{0660}\u{0661}"),
        Some(1),
        "Arabic-Indic digits"
    );
    assert_eq!(
        java_parse_int("\u{00b2}"),
        None,
        "a superscript is not a decimal digit"
    );
    assert_eq!(
        java_parse_int("\u{1d7ce}"),
        None,
        "digits outside the BMP are surrogate pairs to Java"
    );
}

// ---- /$/fail, /$/nil, Neg ---------------------------------------------

#[test]
fn fail_prefix_is_fail() {
    assert_eq!(
        look("/$/fail"),
        State::Ok(NameTree::Fail),
        "`/$/fail` is Fail"
    );
    assert_eq!(
        look("/$/fail/a/b"),
        State::Ok(NameTree::Fail),
        "anything under `/$/fail` is Fail"
    );
    assert_eq!(
        failed("/$/failure"),
        "Unknown namer: failure for path: /$/failure",
        "the prefix is element-wise, not textual"
    );
}

#[test]
fn nil_prefix_is_empty() {
    assert_eq!(
        look("/$/nil"),
        State::Ok(NameTree::Empty),
        "`/$/nil` is Empty"
    );
    assert_eq!(
        look("/$/nil/a/b"),
        State::Ok(NameTree::Empty),
        "anything under `/$/nil` is Empty"
    );
}

#[test]
fn paths_outside_the_system_namespace_are_neg() {
    for p in [
        "/",
        "/$",
        "/svc/hello",
        "/#/io.l5d.fs/hello",
        "/#/inet/h/80",
        "/x/$/inet/h/80",
    ] {
        assert!(
            is_neg(p),
            "{p}: only `/$/<something>` is handled by the system namers"
        );
    }
}

// ---- unknown namers ------------------------------------------------------

#[test]
fn unknown_system_namer_is_an_error_naming_it() {
    assert_eq!(
        failed("/$/io.l5d.nope/a/b"),
        "Unknown namer: io.l5d.nope for path: /$/io.l5d.nope/a/b",
        "Linkerd names the class and the whole path"
    );
    assert_eq!(
        failed("/$/inet"),
        "Unknown namer: inet for path: /$/inet",
        "`/$/inet` without a port"
    );
    assert_eq!(
        failed("/$/fixedinet"),
        "Unknown namer: fixedinet for path: /$/fixedinet"
    );
    assert_eq!(
        failed("/$/io.buoyant.rinetx/80/h"),
        "Unknown namer: io.buoyant.rinetx for path: /$/io.buoyant.rinetx/80/h",
        "class names match exactly"
    );
}

#[test]
fn finagle_namer_global_class_delegates_to_the_global_namer() {
    let b = bound("/$/com.twitter.finagle.namer.global/$/inet/h/80/x");
    assert_eq!(b.id.show(), "/$/inet/h/80", "the inner lookup binds");
    assert_eq!(b.residual.show(), "/x");
    assert!(
        is_neg("/$/com.twitter.finagle.namer.global/svc"),
        "and answers Neg outside `/$`"
    );
    assert_eq!(
        failed("/$/com.twitter.finagle.namer.global/$/nope"),
        "Unknown namer: nope for path: /$/com.twitter.finagle.namer.global/$/nope",
        "an inner unknown namer is reported with the outer path"
    );
}

// ---- io.buoyant.rinet ---------------------------------------------------

#[test]
fn rinet_binds_port_then_host() {
    // Linkerd RinetTest "rinet binds".
    let b = bound("/$/io.buoyant.rinet/12345/localhost/residual");
    assert_eq!(
        b.id.show(),
        "/$/io.buoyant.rinet/12345/localhost",
        "the id names rinet, port first"
    );
    assert_eq!(b.residual.show(), "/residual", "the rest is the residual");
    assert_eq!(
        b.addr,
        inet("localhost", 12345, false),
        "port first, host second"
    );
}

#[test]
fn rinet_needs_port_and_host() {
    assert!(is_neg("/$/io.buoyant.rinet/80"), "one element: Neg");
    assert!(is_neg("/$/io.buoyant.rinet"), "no element: Neg");
    assert!(bound("/$/io.buoyant.rinet/80/h").residual.is_empty());
}

#[test]
fn rinet_port_is_checked_only_by_the_resolver() {
    assert_eq!(
        failed("/$/io.buoyant.rinet/http/h"),
        "For input string: \"http\"",
        "a non-numeric port fails"
    );
    assert_eq!(
        failed("/$/io.buoyant.rinet/70000/h"),
        "port out of range:70000"
    );
    assert_eq!(
        failed(r"/$/io.buoyant.rinet/\x2b80/h"),
        Path::read("/+80/h").unwrap_err().message(),
        "a port that is an Int but not path syntax fails building the id"
    );
    assert!(
        failed(r"/$/io.buoyant.rinet/\x2a/h").contains("'*' found"),
        "`*` (port 0 to the inet resolver) never gets there: the id cannot hold it"
    );
    assert_eq!(
        failed("/$/io.buoyant.rinet/80/::1"),
        "requirement failed: You must specify host and port in hosts: ::1:80",
        "no IPv6 literals"
    );
}

#[test]
fn rinet_id_is_parsed_from_text() {
    let b = bound(r"/$/io.buoyant.rinet/80/a\x2fb");
    assert_eq!(
        b.id.show(),
        "/$/io.buoyant.rinet/80/a/b",
        "Linkerd builds the id with Path.read, so a `/` in the host splits it"
    );
    assert_eq!(b.addr.host, "a/b");
    let message = failed(r"/$/io.buoyant.rinet/80/a\x3fb");
    assert_eq!(
        message,
        Path::read("/80/a?b").unwrap_err().message(),
        "a host that is not path syntax fails with the parser's message"
    );
}

// ---- io.buoyant.hostportPfx / porthostPfx -----------------------------

#[test]
fn hostport_pfx_splits_host_and_port() {
    // Linkerd HostPortTest.
    assert_eq!(
        rewritten("/$/io.buoyant.hostportPfx/ia/127.1:8080/etc"),
        "/ia/127.1/8080/etc",
        "IP:PORT"
    );
    assert_eq!(
        rewritten("/$/io.buoyant.hostportPfx/ia/google.com:8180/etc"),
        "/ia/google.com/8180/etc",
        "HOST:PORT"
    );
    assert!(
        is_neg("/$/io.buoyant.hostportPfx/ia/google.com:8180:abcdef/etc"),
        "HOST:PORT:ETC does not match"
    );
    assert_eq!(
        rewritten("/$/io.buoyant.hostportPfx/ia/h:80"),
        "/ia/h/80",
        "no rest is fine"
    );
}

#[test]
fn porthost_pfx_puts_the_port_first() {
    assert_eq!(
        rewritten("/$/io.buoyant.porthostPfx/ia/127.1:8080/etc"),
        "/ia/8080/127.1/etc",
        "IP:PORT"
    );
    assert_eq!(
        rewritten("/$/io.buoyant.porthostPfx/ph/a:http"),
        "/ph/http/a",
        "a named port"
    );
}

#[test]
fn hostport_port_must_be_a_lowercase_dns_label() {
    assert!(is_neg("/$/io.buoyant.hostportPfx/ia/h"), "no colon: Neg");
    assert!(
        is_neg("/$/io.buoyant.hostportPfx/ia/h:HTTP"),
        "upper case is not a DNS label"
    );
    assert!(
        is_neg("/$/io.buoyant.hostportPfx/ia/h:-80"),
        "a label starts with a letter or digit"
    );
    assert_eq!(
        rewritten("/$/io.buoyant.hostportPfx/ia/h:80-"),
        "/ia/h/80-",
        "but may end with `-`"
    );
    assert!(
        is_neg("/$/io.buoyant.hostportPfx/ia/h:8_0"),
        "no underscore in a label"
    );
    let long = "a".repeat(64);
    assert!(
        is_neg(&format!("/$/io.buoyant.hostportPfx/ia/h:{long}")),
        "at most 63 characters"
    );
    let max = "a".repeat(63);
    assert_eq!(
        rewritten(&format!("/$/io.buoyant.hostportPfx/ia/h:{max}")),
        format!("/ia/h/{max}")
    );
    assert!(
        is_neg("/$/io.buoyant.hostportPfx/ia/a::80"),
        "an empty middle piece counts"
    );
    assert!(
        is_neg("/$/io.buoyant.hostportPfx/ia/::1:80"),
        "no IPv6 literals"
    );
}

#[test]
fn hostport_follows_java_split_quirks() {
    assert_eq!(
        rewritten("/$/io.buoyant.hostportPfx/ia/h:80:/etc"),
        "/ia/h/80/etc",
        "Java's split drops a trailing empty piece"
    );
    assert_eq!(
        failed("/$/io.buoyant.hostportPfx/ia/:80/etc"),
        "requirement failed",
        "an empty host passes the match but cannot be a path element"
    );
    assert_eq!(
        rewritten("/$/io.buoyant.hostportPfx/ia/H.Example:80"),
        "/ia/H.Example/80",
        "the host keeps its case"
    );
}

#[test]
fn hostport_needs_two_elements() {
    assert!(
        is_neg("/$/io.buoyant.hostportPfx/h:80"),
        "the prefix element is required"
    );
    assert!(is_neg("/$/io.buoyant.hostportPfx"), "an empty path is Neg");
    assert!(is_neg("/$/io.buoyant.porthostPfx/h:80"));
}

// ---- io.buoyant.http.* ----------------------------------------------------

#[test]
fn any_method_drops_an_upper_case_method() {
    // Linkerd HttpTest "anyMethod".
    assert_eq!(
        rewritten("/$/io.buoyant.http.anyMethod/GET/foo/bar/bah"),
        "/foo/bar/bah"
    );
    assert!(
        is_neg("/$/io.buoyant.http.anyMethod/A.B/foo/bar/bah"),
        "not a method: Neg"
    );
    assert!(
        is_neg("/$/io.buoyant.http.anyMethod/get/foo"),
        "methods are upper case"
    );
    assert_eq!(
        rewritten("/$/io.buoyant.http.anyMethod/GET"),
        "/",
        "the method alone leaves the empty path"
    );
    assert!(
        is_neg("/$/io.buoyant.http.anyMethod"),
        "an empty path is Neg"
    );
}

#[test]
fn any_method_pfx_drops_the_method_after_the_prefix() {
    assert_eq!(
        rewritten("/$/io.buoyant.http.anyMethodPfx/foo/GET/bar/bah"),
        "/foo/bar/bah"
    );
    assert!(
        is_neg("/$/io.buoyant.http.anyMethodPfx/foo/A.B/bar/bah"),
        "not a method: Neg"
    );
    assert!(
        is_neg("/$/io.buoyant.http.anyMethodPfx/GET"),
        "the prefix and the method are both required"
    );
}

#[test]
fn any_host_drops_a_host() {
    assert_eq!(
        rewritten("/$/io.buoyant.http.anyHost/a.b/foo/bar/bah"),
        "/foo/bar/bah"
    );
    assert!(
        is_neg("/$/io.buoyant.http.anyHost/a%b/foo/bar/bah"),
        "`%` is not a host character"
    );
    assert_eq!(
        rewritten("/$/io.buoyant.http.anyHost/A_b-c:8080/x"),
        "/x",
        "letters, digits, `._:-`"
    );
}

#[test]
fn any_host_pfx_drops_the_host_after_the_prefix() {
    assert_eq!(
        rewritten("/$/io.buoyant.http.anyHostPfx/foo/a.b/bar/bah"),
        "/foo/bar/bah"
    );
    assert!(
        is_neg("/$/io.buoyant.http.anyHostPfx/foo/a%b/bar/bah"),
        "not a host: Neg"
    );
}

#[test]
fn subdomain_of_keeps_the_subdomain() {
    assert_eq!(
        rewritten("/$/io.buoyant.http.subdomainOf/a.b/foo.a.b/bar/bah"),
        "/foo/bar/bah"
    );
    assert_eq!(
        rewritten("/$/io.buoyant.http.subdomainOf/a.b/x.y.a.b"),
        "/x.y",
        "deeper names keep their dots"
    );
    assert!(
        is_neg("/$/io.buoyant.http.subdomainOf/a.b/a.b/x"),
        "the domain itself has no subdomain"
    );
    assert!(
        is_neg("/$/io.buoyant.http.subdomainOf/a.b/fooa.b/x"),
        "the suffix includes the dot"
    );
    assert!(
        is_neg("/$/io.buoyant.http.subdomainOf/a.b/foo.A.B/x"),
        "matching is case-sensitive"
    );
    assert!(
        is_neg("/$/io.buoyant.http.subdomainOf/a%b/foo.a%b/x"),
        "both must look like hosts"
    );
}

#[test]
fn subdomain_of_pfx_keeps_prefix_and_subdomain() {
    // Linkerd HttpTest "subdomainOfPfx" and its variants.
    assert_eq!(
        rewritten("/$/io.buoyant.http.subdomainOfPfx/a.b/foo/bar.a.b/bah"),
        "/foo/bar/bah"
    );
    assert_eq!(
        rewritten("/$/io.buoyant.http.subdomainOfPfx/a.b/foo/bar_suffix.a.b/bah"),
        "/foo/bar_suffix/bah",
        "underscores are host characters"
    );
    assert_eq!(
        rewritten("/$/io.buoyant.http.subdomainOfPfx/a.b/foo/bar-suffix.a.b/bah"),
        "/foo/bar-suffix/bah",
        "dashes are host characters"
    );
    assert_eq!(
        rewritten("/$/io.buoyant.http.subdomainOfPfx/a.b/foo/bar.a.b:9090/bah"),
        "/foo/bar/bah",
        "a port is dropped before matching"
    );
    assert!(
        is_neg("/$/io.buoyant.http.subdomainOfPfx/a.b/foo/bar.c.d/bah"),
        "another domain: Neg"
    );
    assert!(
        is_neg("/$/io.buoyant.http.subdomainOfPfx/a.b/foo"),
        "three elements are required"
    );
}

#[test]
fn subdomain_port_is_only_dropped_after_a_host() {
    assert_eq!(
        rewritten("/$/io.buoyant.http.subdomainOf/a.b/:x.a.b/y"),
        "/:x/y",
        "a leading colon does not start a port, so `:x` is the subdomain"
    );
    assert_eq!(
        rewritten("/$/io.buoyant.http.subdomainOf/a.b/x.a.b:1:2/y"),
        "/x/y",
        "the port starts at the first colon"
    );
}

#[test]
fn domain_to_path_reverses_labels() {
    assert_eq!(
        rewritten("/$/io.buoyant.http.domainToPath/foo.buoyant.io"),
        "/io/buoyant/foo"
    );
    assert_eq!(
        rewritten("/$/io.buoyant.http.domainToPath/foo.buoyant.io/x/y"),
        "/io/buoyant/foo/x/y"
    );
    assert_eq!(
        rewritten("/$/io.buoyant.http.domainToPath/Foo.IO:80"),
        "/IO:80/Foo",
        "no lower-casing; a port stays"
    );
    assert!(
        is_neg("/$/io.buoyant.http.domainToPath/a%b"),
        "not a host: Neg"
    );
    assert_eq!(
        rewritten("/$/io.buoyant.http.domainToPath/foo./x"),
        "/foo/x",
        "a trailing dot is dropped by split"
    );
    assert_eq!(
        rewritten("/$/io.buoyant.http.domainToPath/.../x"),
        "/x",
        "only dots: no labels at all"
    );
    assert_eq!(
        failed("/$/io.buoyant.http.domainToPath/foo..io"),
        "requirement failed",
        "an empty middle label cannot be a path element"
    );
    assert_eq!(
        failed("/$/io.buoyant.http.domainToPath/.foo"),
        "requirement failed",
        "nor an empty first label"
    );
}

#[test]
fn domain_to_path_pfx_reverses_labels_after_the_prefix() {
    assert_eq!(
        rewritten("/$/io.buoyant.http.domainToPathPfx/pfx/foo.buoyant.io"),
        "/pfx/io/buoyant/foo"
    );
    assert_eq!(
        rewritten("/$/io.buoyant.http.domainToPathPfx/pfx/a.b/c"),
        "/pfx/b/a/c"
    );
    assert!(
        is_neg("/$/io.buoyant.http.domainToPathPfx/foo.buoyant.io"),
        "the prefix is required"
    );
}

#[test]
fn rewriters_see_lossily_decoded_elements() {
    assert_eq!(
        rewritten(r"/$/io.buoyant.http.anyMethod/GET/\xff"),
        r"/\xef\xbf\xbd",
        "the class namer's path was re-encoded from text"
    );
}

#[test]
fn java_split_drops_only_trailing_empties() {
    assert_eq!(
        java_split("", ':'),
        vec![""],
        "no separator: the whole (empty) string"
    );
    assert_eq!(
        java_split(":", ':'),
        Vec::<&str>::new(),
        "only empties: nothing"
    );
    assert_eq!(
        java_split(":80", ':'),
        vec!["", "80"],
        "a leading empty piece stays"
    );
    assert_eq!(
        java_split("a:80::", ':'),
        vec!["a", "80"],
        "trailing empty pieces go"
    );
}

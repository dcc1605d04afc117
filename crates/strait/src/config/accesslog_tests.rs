//! Tests of the access-log keys: `httpAccessLog*` on http routers,
//! `h2AccessLog*` on h2 ones, their defaults, errors and warnings.

#![allow(clippy::unwrap_used)]

use strait_router::accesslog::{FileOptions, Format, RollPolicy};

use super::*;

fn http(keys: &str) -> String {
    format!("routers:\n- protocol: http\n  servers: [{{port: 0}}]\n{keys}")
}

fn h2(keys: &str) -> String {
    format!("routers:\n- protocol: h2\n  servers: [{{port: 0}}]\n{keys}")
}

fn router(text: &str) -> RouterConfig {
    match parse(text, "t.yaml") {
        Ok(c) => c.routers[0].clone(),
        Err(e) => panic!("{text}: {e:?}"),
    }
}

fn errors(text: &str) -> Vec<String> {
    match parse(text, "t.yaml") {
        Ok(_) => panic!("{text}: accepted"),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

fn warnings(text: &str) -> Vec<String> {
    match parse_with_warnings(text, "t.yaml") {
        Ok((_, w)) => w.iter().map(ToString::to_string).collect(),
        Err(e) => panic!("{text}: {e:?}"),
    }
}

#[test]
fn defaults_are_linkerds() {
    let rc = router(&http("  httpAccessLog: /tmp/a.log\n"));
    let o = rc.access_log_options;
    assert_eq!(o.file, FileOptions::default());
    assert_eq!(o.file.roll, RollPolicy::Never);
    assert!(o.file.append);
    assert_eq!(o.file.rotate_count, -1);
    assert_eq!(o.format, Format::Linkerd);
    assert!(o.shown && !o.h2);
}

#[test]
fn every_key_is_read_on_http_and_h2() {
    let rc = router(&http(
        "  httpAccessLog: /tmp/a.log\n  httpAccessLogRollPolicy: 10.megabytes\n  \
         httpAccessLogAppend: false\n  httpAccessLogRotateCount: 3\n  httpAccessLogFormat: json\n",
    ));
    let o = rc.access_log_options;
    assert_eq!(o.file.roll, RollPolicy::MaxSize(10 << 20));
    assert!(!o.file.append);
    assert_eq!(o.file.rotate_count, 3);
    assert_eq!(o.format, Format::Json);
    let json = serde_json::to_value(&rc).unwrap();
    assert_eq!(json["httpAccessLogRollPolicy"], "10485760.bytes");
    assert_eq!(json["httpAccessLogAppend"], false);
    assert_eq!(json["httpAccessLogRotateCount"], 3);
    assert_eq!(json["httpAccessLogFormat"], "json");

    let rc = router(&h2(
        "  h2AccessLog: /tmp/a.log\n  h2AccessLogRollPolicy: Weekly(2)\n  \
         h2AccessLogAppend: true\n  h2AccessLogRotateCount: 0\n  h2AccessLogFormat: linkerd\n",
    ));
    let o = rc.access_log_options;
    assert_eq!(o.file.roll, RollPolicy::Weekly(2));
    assert_eq!(o.file.rotate_count, 0);
    assert!(o.h2);
    let json = serde_json::to_value(&rc).unwrap();
    assert_eq!(json["h2AccessLogRollPolicy"], "weekly(2)");
    assert!(json.get("httpAccessLogRollPolicy").is_none());

    // No access log: the keys are not shown.
    let rc = router(&http(""));
    let json = serde_json::to_value(&rc).unwrap();
    assert!(json.get("httpAccessLogRollPolicy").is_none(), "{json}");
}

#[test]
fn the_shown_config_parses_back_to_the_same() {
    let text = http(
        "  httpAccessLog: /tmp/a.log\n  httpAccessLogRollPolicy: sighup\n  \
         httpAccessLogRotateCount: 7\n  httpAccessLogFormat: json\n",
    );
    let cfg = parse(&text, "t.yaml").unwrap();
    let shown = serde_json::to_string(&cfg).unwrap();
    assert_eq!(parse(&shown, "t.json").unwrap(), cfg, "{shown}");
}

#[test]
fn bad_values_are_refused_with_the_key_path() {
    assert_eq!(
        errors(&http(
            "  httpAccessLog: /tmp/a.log\n  httpAccessLogRollPolicy: monthly\n"
        )),
        ["t.yaml:5:28: routers[0].httpAccessLogRollPolicy: Invalid log roll policy: monthly"]
    );
    assert_eq!(
        errors(&http(
            "  httpAccessLog: /tmp/a.log\n  httpAccessLogRollPolicy: weekly(9)\n"
        )),
        [
            "t.yaml:5:28: routers[0].httpAccessLogRollPolicy: Invalid log roll policy: weekly(9): \
             the day of the week is 1 (Sunday) to 7 (Saturday)"
        ]
    );
    assert_eq!(
        errors(&http(
            "  httpAccessLog: /tmp/a.log\n  httpAccessLogAppend: yes\n"
        )),
        ["t.yaml:5:24: routers[0].httpAccessLogAppend: expected true or false, found 'yes'"]
    );
    assert_eq!(
        errors(&http(
            "  httpAccessLog: /tmp/a.log\n  httpAccessLogRotateCount: many\n"
        )),
        ["t.yaml:5:29: routers[0].httpAccessLogRotateCount: expected an integer, found 'many'"]
    );
    assert_eq!(
        errors(&h2("  h2AccessLog: /tmp/a.log\n  h2AccessLogFormat: clf\n")),
        [
            "t.yaml:5:22: routers[0].h2AccessLogFormat: expected linkerd or json, found 'clf' \
             (Strait's own key)"
        ]
    );
}

#[test]
fn the_other_protocols_keys_are_refused() {
    let e = errors(&h2("  httpAccessLogFormat: json\n"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("t.yaml:4:3: routers[0].httpAccessLogFormat: unknown key 'httpAccessLogFormat' on an h2 router")
            && e[0].ends_with("an h2 router's access log is `h2AccessLogFormat`"),
        "{e:?}"
    );
    assert_eq!(
        errors(&http("  h2AccessLogRotateCount: 1\n")),
        [
            "t.yaml:4:3: routers[0].h2AccessLogRotateCount: unknown key 'h2AccessLogRotateCount' \
             on an http router (h2 routers only)"
        ]
    );
}

#[test]
fn options_without_the_log_warn() {
    assert_eq!(
        warnings(&http("  httpAccessLogRollPolicy: daily\n")),
        [
            "t.yaml:4:3: routers[0].httpAccessLogRollPolicy: warning: `httpAccessLogRollPolicy` has no \
             effect without `httpAccessLog`"
        ]
    );
    assert!(
        warnings(&http(
            "  httpAccessLog: /tmp/a.log\n  httpAccessLogRollPolicy: daily\n"
        ))
        .is_empty()
    );
}

#[test]
fn a_misspelt_key_gets_a_suggestion() {
    assert_eq!(
        errors(&http(
            "  httpAccessLog: /tmp/a.log\n  httpAccessLogRollPolcy: daily\n"
        )),
        [
            "t.yaml:5:3: routers[0].httpAccessLogRollPolcy: unknown key 'httpAccessLogRollPolcy'; \
             did you mean 'httpAccessLogRollPolicy'?"
        ]
    );
}

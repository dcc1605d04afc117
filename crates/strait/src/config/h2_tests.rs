//! Tests of `protocol: h2` routers: reading, checking and lowering.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use strait_dtab::Path;
use strait_router::identify::{Field, Identifier};
use strait_router::retry::{Classifier, GrpcClassifier, GrpcCodes};
use strait_router::stats::Registry;
use strait_router::{H2Settings, Protocol as RouterProtocol};

use super::lower::{policies, router_params, server_h2};
use super::*;

/// The h2 router of Linkerd's h2 docs (spec §1.12).
const EXAMPLE: &str = "
namers:
- kind: io.l5d.consul
routers:
- protocol: h2
  label: grpc
  identifier: {kind: io.l5d.header.path, segments: 1}
  dtab: /svc => /#/io.l5d.consul/dc1;
  service:
    responseClassifier: {kind: io.l5d.h2.grpc.default, successStatusCodes: [0, 5]}
  servers: [{port: 4142, ip: 0.0.0.0, maxConcurrentStreamsPerConnection: 300}]
  client: {initialStreamWindowBytes: 1048576}
";

fn ok(text: &str) -> Config {
    match parse(text, "linkerd.yaml") {
        Ok(c) => c,
        Err(e) => panic!("{e:#?}"),
    }
}

fn errors(text: &str) -> Vec<String> {
    match parse(text, "linkerd.yaml") {
        Ok(c) => panic!("accepted: {c:#?}"),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

fn path(s: &str) -> Path {
    Path::read(s).unwrap()
}

#[test]
fn the_docs_example_lowers_to_h2_params() {
    let c = ok(EXAMPLE);
    let rc = &c.routers[0];
    assert_eq!(rc.protocol, Protocol::H2);
    let p = router_params(rc, &Registry::default()).unwrap();
    assert_eq!(p.protocol, RouterProtocol::H2);
    assert_eq!(p.label, "grpc");
    assert_eq!(p.identifiers.len(), 1);
    assert!(
        matches!(
            &p.identifiers[0],
            Identifier::HeaderPath {
                field: Field::Path,
                segments: Some(1)
            }
        ),
        "{:?}",
        p.identifiers
    );

    assert_eq!(rc.servers[0].port, 4142);
    assert_eq!(
        server_h2(&rc.servers[0]),
        H2Settings {
            max_concurrent_streams: Some(300),
            ..H2Settings::default()
        }
    );

    let client = p.policies.client_for(&path("/#/io.l5d.consul/dc1/greeter"));
    assert_eq!(
        client.h2,
        Some(H2Settings {
            initial_stream_window: Some(1_048_576),
            ..H2Settings::default()
        }),
        "every client of an h2 router speaks HTTP/2"
    );
    let service = p.policies.service_for(&path("/svc/helloworld.Greeter"));
    assert_eq!(
        service.classifier,
        Classifier::Grpc(GrpcClassifier {
            success: GrpcCodes::of(&[0, 5]),
            ..GrpcClassifier::default_kind()
        })
    );
    assert_eq!(service.request_buffer_bytes, 16_383);
}

#[test]
fn h2_defaults() {
    let c = ok("routers:\n- protocol: h2\n  servers: [{}]\n");
    let rc = &c.routers[0];
    assert_eq!(rc.label, "h2");
    assert_eq!(rc.servers[0].port, 4142, "Linkerd's h2 port");
    assert_eq!(
        rc.servers[0].max_concurrent_streams_per_connection,
        Some(1000)
    );
    assert_eq!(rc.servers[0].max_header_count, None);
    assert_eq!(rc.servers[0].upgrade_idle_timeout, None);
    assert_eq!(rc.servers[0].response_send_timeout, None);
    assert_eq!((rc.max_headers_kb, rc.max_initial_line_kb), (None, None));
    assert_eq!(
        rc.identifiers,
        [IdentifierConfig::HeaderToken {
            header: ":authority".to_owned()
        }]
    );
    assert_eq!(
        rc.service,
        ServiceConfig::Global(ServiceParams {
            response_classifier: ClassifierKind::H2NonRetryable5XX,
            retry_buffer_size: Some(RetryBufferConfig {
                request_bytes: 16_383
            }),
            ..ServiceParams::default()
        })
    );
    let p = router_params(rc, &Registry::default()).unwrap();
    assert!(
        matches!(
            &p.identifiers[..],
            [Identifier::Token {
                field: Field::Authority
            }]
        ),
        "{:?}",
        p.identifiers
    );
    assert_eq!(p.policies.client.base.h2, Some(H2Settings::default()));
    assert_eq!(
        p.policies.service.base.classifier,
        Classifier::NonRetryable5XX
    );
    assert_eq!(server_h2(&rc.servers[0]).max_concurrent_streams, Some(1000));

    // An http router's clients speak HTTP/1 and its servers have no h2
    // settings.
    let c = ok("routers:\n- protocol: http\n  servers: [{}]\n");
    let p = router_params(&c.routers[0], &Registry::default()).unwrap();
    assert_eq!(p.protocol, RouterProtocol::Http1);
    assert_eq!(p.policies.client.base.h2, None);
    assert_eq!(server_h2(&c.routers[0].servers[0]), H2Settings::default());
}

#[test]
fn h2_identifiers_lower_to_fields() {
    let c = ok("
routers:
- protocol: h2
  identifier:
  - {kind: io.l5d.header.token}
  - {kind: io.l5d.header.token, header: My-Header}
  - {kind: io.l5d.header.path}
  - {kind: io.l5d.header.path, header: l5d-name, segments: 2}
  servers: [{}]
");
    let p = router_params(&c.routers[0], &Registry::default()).unwrap();
    let ids = &p.identifiers;
    assert_eq!(ids.len(), 4);
    assert!(matches!(
        &ids[0],
        Identifier::Token {
            field: Field::Authority
        }
    ));
    assert!(
        matches!(&ids[1], Identifier::Token { field: Field::Header(h) } if h == "my-header"),
        "header names are lower-cased: {:?}",
        ids[1]
    );
    assert!(matches!(
        &ids[2],
        Identifier::HeaderPath {
            field: Field::Path,
            segments: None
        }
    ));
    assert!(matches!(
        &ids[3],
        Identifier::HeaderPath { field: Field::Header(h), segments: Some(2) } if h == "l5d-name"
    ));
}

#[test]
fn h2_settings_and_classifiers_lower_per_item() {
    let c = ok("
routers:
- protocol: h2
  servers:
  - initialStreamWindowBytes: 2147483647
    maxFrameBytes: 16777215
    headerTableBytes: 0
    maxHeaderListBytes: 8192
  client:
    kind: io.l5d.static
    configs:
    - prefix: /
      maxFrameBytes: 32768
    - prefix: /#/io.l5d.fs/big
      initialStreamWindowBytes: 4194304
  service:
    kind: io.l5d.static
    configs:
    - prefix: /svc
      retryBufferSize: {requestBytes: 65536}
      responseClassifier: {kind: io.l5d.h2.retryableRead5XX}
    - prefix: /svc/a
      responseClassifier:
        kind: io.l5d.h2.grpc.retryableStatusCodes
        retryableStatusCodes: [4, 14]
    - prefix: /svc/b
      responseClassifier: {kind: io.l5d.h2.grpc.compliant}
    - prefix: /svc/c
      responseClassifier: {kind: io.l5d.h2.grpc.alwaysRetryable}
    - prefix: /svc/d
      responseClassifier: {kind: io.l5d.h2.grpc.neverRetryable, successStatusCodes: [0, 1]}
");
    let rc = &c.routers[0];
    assert_eq!(
        server_h2(&rc.servers[0]),
        H2Settings {
            initial_stream_window: Some(2_147_483_647),
            max_frame: Some(16_777_215),
            header_table: Some(0),
            max_header_list: Some(8192),
            max_concurrent_streams: Some(1000),
        }
    );
    let p = policies(rc).unwrap();
    let h2 = |name: &str| p.client_for(&path(name)).h2;
    assert_eq!(
        h2("/#/io.l5d.fs/web"),
        Some(H2Settings {
            max_frame: Some(32768),
            ..H2Settings::default()
        })
    );
    assert_eq!(
        h2("/#/io.l5d.fs/big"),
        Some(H2Settings {
            max_frame: Some(32768),
            initial_stream_window: Some(4_194_304),
            ..H2Settings::default()
        }),
        "later items override key by key"
    );
    let svc = |name: &str| p.service_for(&path(name));
    assert_eq!(svc("/svc/x").classifier, Classifier::RetryableRead5XX);
    assert_eq!(svc("/svc/x").request_buffer_bytes, 65_536);
    assert_eq!(svc("/other").request_buffer_bytes, 16_383);
    let grpc = |success: &[u32], retryable: GrpcCodes, compliant: bool| {
        Classifier::Grpc(GrpcClassifier {
            success: GrpcCodes::of(success),
            retryable,
            compliant,
        })
    };
    assert_eq!(
        svc("/svc/a").classifier,
        grpc(&[0], GrpcCodes::of(&[4, 14]), false)
    );
    assert_eq!(
        svc("/svc/b").classifier,
        grpc(&[0], GrpcCodes::of(&[14]), true)
    );
    assert_eq!(svc("/svc/c").classifier, grpc(&[0], GrpcCodes::ALL, false));
    assert_eq!(
        svc("/svc/d").classifier,
        grpc(&[0, 1], GrpcCodes::of(&[]), false)
    );
    assert_eq!(
        svc("/svc/d").request_buffer_bytes,
        65_536,
        "retryBufferSize still from /svc"
    );
}

#[test]
fn config_json_of_an_h2_router_parses_back() {
    for text in [
        EXAMPLE,
        "routers:\n- protocol: h2\n  h2AccessLog: /tmp/a.log\n  servers: [{}]\n  client: {kind: io.l5d.static, configs: [{prefix: /, maxFrameBytes: 20000}]}\n  service: {kind: io.l5d.static, configs: [{prefix: /svc, retryBufferSize: {}, responseClassifier: {kind: io.l5d.h2.grpc.retryableStatusCodes, retryableStatusCodes: [14, 2]}}]}\n",
    ] {
        let c = ok(text);
        let json = serde_json::to_string_pretty(&c).unwrap();
        assert_eq!(ok(&json), c, "{json}");
    }
    let json = serde_json::to_value(ok(EXAMPLE)).unwrap();
    let r = &json["routers"][0];
    assert_eq!(r["protocol"], "h2");
    assert!(r.get("maxHeadersKB").is_none(), "{r}");
    assert!(r["servers"][0].get("maxHeaderCount").is_none(), "{r}");
    assert_eq!(r["servers"][0]["maxConcurrentStreamsPerConnection"], 300);
    assert_eq!(r["client"]["initialStreamWindowBytes"], 1_048_576);
    assert_eq!(
        r["service"]["responseClassifier"]["successStatusCodes"],
        serde_json::json!([0, 5])
    );
    assert_eq!(r["service"]["retryBufferSize"]["requestBytes"], 16_383);
}

#[test]
fn h2_router_refusals_name_the_key_and_say_why() {
    let text = "\
routers:
- protocol: h2
  httpAccessLog: x.log
  maxHeadersKB: 4
  h2AccessLogRollPolicy: monthly
  identifier:
  - {kind: io.l5d.header.path, segments: 0}
  - {kind: io.l5d.header}
  - {kind: io.l5d.ingress}
  - {kind: io.l5d.methodAndHost}
  - {kind: io.l5d.header.token, header: ':foo'}
  servers:
  - windowUpdateRatio: 0.5
    maxFrameBytes: 100
    initialStreamWindowBytes: 2147483648
    upgradeIdleTimeoutMs: 5
    maxHeaderCount: 3
  - {port: 4143, initialStreamWindowBytes: 0, maxConcurrentStreamsPerConnection: 0}
  client:
    kind: io.l5d.static
    configs:
    - prefix: /
      hostConnectionPool: {maxSize: 1}
      maxConcurrentStreamsPerConnection: 3
      forwardClientCert: true
      windowUpdateRatio: 0.9
";
    assert_eq!(
        errors(text),
        [
            "linkerd.yaml:3:3: routers[0].httpAccessLog: unknown key 'httpAccessLog' on an h2 router (HTTP/1 routers only); an h2 router's access log is `h2AccessLog`",
            "linkerd.yaml:4:3: routers[0].maxHeadersKB: unknown key 'maxHeadersKB' on an h2 router (HTTP/1 routers only)",
            "linkerd.yaml:5:26: routers[0].h2AccessLogRollPolicy: Invalid log roll policy: monthly",
            "linkerd.yaml:7:42: routers[0].identifier[0].segments: `segments` must be >= 1",
            "linkerd.yaml:8:12: routers[0].identifier[1].kind: identifier `io.l5d.header` is for http routers; an h2 router's identifiers are io.l5d.header.token, io.l5d.header.path; Linkerd has no h2 `io.l5d.header`: use `io.l5d.header.path` with `header: l5d-name`",
            "linkerd.yaml:9:12: routers[0].identifier[2].kind: identifier `io.l5d.ingress` is a Linkerd 1 feature Strait does not implement yet",
            "linkerd.yaml:10:12: routers[0].identifier[3].kind: identifier `io.l5d.methodAndHost` is for http routers; an h2 router's identifiers are io.l5d.header.token, io.l5d.header.path",
            "linkerd.yaml:11:41: routers[0].identifier[4].header: unknown pseudo-header ':foo'; HTTP/2's are :authority, :path, :method, :scheme",
            "linkerd.yaml:13:5: routers[0].servers[0].windowUpdateRatio: Strait cannot honour windowUpdateRatio: hyper's HTTP/2 sends WINDOW_UPDATE on its own schedule; remove the key",
            "linkerd.yaml:14:20: routers[0].servers[0].maxFrameBytes: maxFrameBytes must be from 16384 to 16777215 (HTTP/2's SETTINGS_MAX_FRAME_SIZE range, RFC 9113 §6.5.2), found 100",
            "linkerd.yaml:15:31: routers[0].servers[0].initialStreamWindowBytes: initialStreamWindowBytes must be from 1 to 2147483647 (2^31-1, HTTP/2's largest flow-control window, RFC 9113 §6.9.1; 0 would stall every body), found 2147483648",
            "linkerd.yaml:16:5: routers[0].servers[0].upgradeIdleTimeoutMs: unknown key 'upgradeIdleTimeoutMs' on an h2 router (HTTP/1 routers only)",
            "linkerd.yaml:17:5: routers[0].servers[0].maxHeaderCount: unknown key 'maxHeaderCount' on an h2 router (HTTP/1 routers only)",
            "linkerd.yaml:18:44: routers[0].servers[1].initialStreamWindowBytes: initialStreamWindowBytes must be from 1 to 2147483647 (2^31-1, HTTP/2's largest flow-control window, RFC 9113 §6.9.1; 0 would stall every body), found 0",
            "linkerd.yaml:18:82: routers[0].servers[1].maxConcurrentStreamsPerConnection: expected an integer from 1 to 4294967295, found 0",
            "linkerd.yaml:23:7: routers[0].client.configs[0].hostConnectionPool: an h2 client keeps one multiplexed connection per endpoint (as Linkerd's did); remove hostConnectionPool",
            "linkerd.yaml:24:7: routers[0].client.configs[0].maxConcurrentStreamsPerConnection: unknown key 'maxConcurrentStreamsPerConnection' on a client (h2 servers only: a client follows what its endpoint advertises)",
            "linkerd.yaml:25:7: routers[0].client.configs[0].forwardClientCert: `forwardClientCert` is a Linkerd 1 feature Strait does not implement yet; remove it",
            "linkerd.yaml:26:7: routers[0].client.configs[0].windowUpdateRatio: Strait cannot honour windowUpdateRatio: hyper's HTTP/2 sends WINDOW_UPDATE on its own schedule; remove the key",
        ]
    );
}

#[test]
fn h2_service_refusals_name_the_key_and_say_why() {
    let text = "\
routers:
- protocol: h2
  servers: [{}]
  service:
    kind: io.l5d.static
    configs:
    - prefix: /svc
      responseClassifier: {kind: io.l5d.http.retryableRead5XX}
      retryBufferSize: {requestBytes: 10, responseBytes: 10}
      classificationTimeoutMs: 100
    - prefix: /svc/a
      responseClassifier: {kind: io.l5d.h2.grpc.default, successStatusCodes: [5]}
    - prefix: /svc/b
      responseClassifier: {kind: io.l5d.h2.grpc.retryableStatusCodes}
    - prefix: /svc/c
      responseClassifier: {kind: io.l5d.h2.grpc.neverRetryable, successStatusCodes: [0, 17]}
    - prefix: /svc/d
      responseClassifier: {kind: io.l5d.h2.retryableRead5XX, successStatusCodes: [0]}
";
    let strait_never = "Strait never holds a response back to classify it (Linkerd 1 delayed streamed responses up to classificationTimeoutMs for that); only requestBytes applies";
    assert_eq!(
        errors(text),
        [
            "linkerd.yaml:8:34: routers[0].service.configs[0].responseClassifier.kind: response classifier `io.l5d.http.retryableRead5XX` is for http routers; use `io.l5d.h2.retryableRead5XX`; an h2 router takes the io.l5d.h2.* kinds: io.l5d.h2.nonRetryable5XX, io.l5d.h2.retryableRead5XX, io.l5d.h2.retryableIdempotent5XX, io.l5d.h2.retryableAll5XX, io.l5d.h2.allSuccessful, io.l5d.h2.grpc.default, io.l5d.h2.grpc.compliant, io.l5d.h2.grpc.alwaysRetryable, io.l5d.h2.grpc.neverRetryable, io.l5d.h2.grpc.retryableStatusCodes".to_owned(),
            format!("linkerd.yaml:9:43: routers[0].service.configs[0].retryBufferSize.responseBytes: {strait_never}; remove responseBytes"),
            format!("linkerd.yaml:10:7: routers[0].service.configs[0].classificationTimeoutMs: {strait_never}; remove classificationTimeoutMs"),
            "linkerd.yaml:12:78: routers[0].service.configs[1].responseClassifier.successStatusCodes: successStatusCodes must include 0 (OK): a gRPC call that succeeded is a success".to_owned(),
            "linkerd.yaml:14:27: routers[0].service.configs[2].responseClassifier.retryableStatusCodes: missing required key 'retryableStatusCodes'".to_owned(),
            "linkerd.yaml:16:89: routers[0].service.configs[3].responseClassifier.successStatusCodes[1]: expected an integer from 0 to 16, found 17".to_owned(),
            "linkerd.yaml:18:62: routers[0].service.configs[4].responseClassifier.successStatusCodes: unknown key 'successStatusCodes'; known keys: kind".to_owned(),
        ]
    );
}

#[test]
fn h2_keys_on_an_http_router_are_unknown() {
    let text = "\
routers:
- protocol: http
  h2AccessLog: x.log
  identifier: {kind: io.l5d.header.token, header: ':authority'}
  service:
    responseClassifier: {kind: io.l5d.h2.grpc.default}
    retryBufferSize: {}
  client: {maxFrameBytes: 16384, windowUpdateRatio: 0.5}
  servers: [{maxConcurrentStreamsPerConnection: 1, initialStreamWindowBytes: 1}]
";
    assert_eq!(
        errors(text),
        [
            "linkerd.yaml:3:3: routers[0].h2AccessLog: unknown key 'h2AccessLog' on an http router (h2 routers only)",
            "linkerd.yaml:4:51: routers[0].identifier.header: ':authority' is not a valid HTTP header name",
            "linkerd.yaml:6:32: routers[0].service.responseClassifier.kind: response classifier `io.l5d.h2.grpc.default` is for h2 routers; an http router takes the io.l5d.http.* kinds: io.l5d.http.nonRetryable5XX, io.l5d.http.retryableRead5XX, io.l5d.http.retryableIdempotent5XX, io.l5d.http.retryableAll5XX, io.l5d.http.allSuccessful",
            "linkerd.yaml:7:5: routers[0].service.retryBufferSize: unknown key 'retryBufferSize' on an http router (h2 routers only)",
            "linkerd.yaml:8:12: routers[0].client.maxFrameBytes: unknown key 'maxFrameBytes' on an http router (h2 routers only)",
            "linkerd.yaml:8:34: routers[0].client.windowUpdateRatio: unknown key 'windowUpdateRatio' on an http router (h2 routers only)",
            "linkerd.yaml:9:14: routers[0].servers[0].maxConcurrentStreamsPerConnection: unknown key 'maxConcurrentStreamsPerConnection' on an http router (h2 routers only)",
            "linkerd.yaml:9:52: routers[0].servers[0].initialStreamWindowBytes: unknown key 'initialStreamWindowBytes' on an http router (h2 routers only)",
        ]
    );
}

#[test]
fn h2_access_log_opens_like_the_http_one() {
    let dir = std::env::temp_dir().join(format!("strait-h2-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("access.log");
    let c = ok(&format!(
        "routers:\n- protocol: h2\n  h2AccessLog: {}\n  servers: [{{}}]\n",
        log.display()
    ));
    let p = router_params(&c.routers[0], &Registry::default()).unwrap();
    assert!(p.access_log.is_some());
    let c =
        ok("routers:\n- protocol: h2\n  h2AccessLog: /nonexistent/strait/a.log\n  servers: [{}]\n");
    let e = router_params(&c.routers[0], &Registry::default()).unwrap_err();
    assert!(
        e.starts_with("router 'h2': cannot open h2AccessLog /nonexistent/strait/a.log: "),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

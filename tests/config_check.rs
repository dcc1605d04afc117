//! `strait::config`: linkerd.yaml read strictly, every problem reported at
//! once with file:line:col and key path.

#![allow(clippy::unwrap_used, missing_docs)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use strait::config::{
    AdminConfig, BindingCacheConfig, Config, ConsistencyMode, ConsulConfig, ForwardedConfig,
    ForwardedLabeler, FsNamerConfig, HealthStatus, IdentifierConfig, NamerConfig, Protocol,
    RouterConfig, ServerConfig, TagWeight, TelemeterConfig, UsageConfig, parse,
};
use strait_dtab::{Dtab, Path};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn ok(text: &str) -> Config {
    match parse(text, "linkerd.yaml") {
        Ok(c) => c,
        Err(errors) => panic!(
            "expected a valid config, got:\n{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

fn errors(text: &str) -> Vec<String> {
    match parse(text, "linkerd.yaml") {
        Ok(c) => panic!("expected errors, got {c:#?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn path(s: &str) -> Path {
    match Path::read(s) {
        Ok(p) => p,
        Err(e) => panic!("{s}: {e}"),
    }
}

fn default_router() -> RouterConfig {
    RouterConfig {
        protocol: Protocol::Http,
        label: "http".to_owned(),
        dtab: Dtab::empty(),
        dst_prefix: path("/svc"),
        identifiers: vec![IdentifierConfig::HeaderToken {
            header: "Host".to_owned(),
        }],
        servers: vec![ServerConfig {
            ip: LOOPBACK,
            port: 4140,
            clear_context: false,
            max_concurrent_requests: None,
            add_forwarded_header: None,
            max_call_depth: 1000,
        }],
        binding_timeout: Duration::from_millis(10_000),
        binding_cache: BindingCacheConfig {
            paths: 1000,
            trees: 1000,
            bounds: 1000,
            clients: 1000,
            idle_ttl: Duration::from_secs(600),
        },
        max_headers_kb: 8,
        max_initial_line_kb: 4,
        max_err_response_kb: 5120,
        http_access_log: None,
    }
}

const MINIMAL: &str = "routers:\n- protocol: http\n  servers:\n  - {}\n";

#[test]
fn minimal_config_gets_every_linkerd_default() {
    let expected = Config {
        admin: AdminConfig {
            ip: LOOPBACK,
            port: 9990,
            shutdown_grace: Duration::from_millis(10_000),
        },
        routers: vec![default_router()],
        namers: vec![],
        telemetry: vec![],
        usage: None,
    };
    assert_eq!(
        ok(MINIMAL),
        expected,
        "absent keys take Linkerd 1's defaults (admin 127.0.0.1:9990, server 127.0.0.1:4140, \
         label = protocol, dstPrefix /svc, header.token on Host, caches 1000/600 s, ...)"
    );
}

const FULL_YAML: &str = r#"
admin:
  ip: 0.0.0.0
  port: 9991
  shutdownGraceMs: 2500
namers:
- kind: io.l5d.fs
  rootDir: /etc/strait/disco
- kind: io.l5d.consul
  prefix: /consul
  host: consul.internal
  port: 8501
  includeTag: true
  useHealthCheck: true
  healthStatuses: [passing, warning]
  token: s3cret
  setHost: true
  consistencyMode: stale
  failFast: true
  preferServiceAddress: false
  weights:
  - tag: canary
    weight: 0.5
  - tag: big
    weight: 3
  transferMetadata: true
  fixedLengthStreamedAfterKB: 1024
routers:
- protocol: http
  label: outgoing
  dtab: |
    /svc => /#/consul/dc1/prod;
    /svc/legacy => /#/io.l5d.fs/legacy;
  dstPrefix: /out
  identifier:
  - kind: io.l5d.path
    segments: 2
    consume: true
  - kind: io.l5d.methodAndHost
    httpUriInDst: true
  - kind: io.l5d.header
  - kind: io.l5d.static
    path: /fallback
  - kind: io.l5d.header.token
    header: X-Service
  servers:
  - port: 4140
  - ip: 10.0.0.5
    port: 4141
    clearContext: true
    maxConcurrentRequests: 100
    addForwardedHeader:
      by: {kind: router}
      for: {kind: static, label: edge}
    maxCallDepth: 20
  bindingTimeoutMs: 3000
  bindingCache: {paths: 10, trees: 20, bounds: 30, clients: 40, idleTtlSecs: 60}
  maxHeadersKB: 16
  maxInitialLineKB: 8
  maxErrResponseKB: 1
  httpAccessLog: /var/log/strait/access.log
telemetry:
- kind: io.l5d.prometheus
  path: /metrics
  prefix: strait_
usage:
  orgId: acme
  enabled: false
"#;

const FULL_JSON: &str = r#"{
  "admin": {"ip": "0.0.0.0", "port": 9991, "shutdownGraceMs": 2500},
  "namers": [
    {"kind": "io.l5d.fs", "rootDir": "/etc/strait/disco"},
    {"kind": "io.l5d.consul", "prefix": "/consul", "host": "consul.internal", "port": 8501,
     "includeTag": true, "useHealthCheck": true, "healthStatuses": ["passing", "warning"],
     "token": "s3cret", "setHost": true, "consistencyMode": "stale", "failFast": true,
     "preferServiceAddress": false,
     "weights": [{"tag": "canary", "weight": 0.5}, {"tag": "big", "weight": 3}],
     "transferMetadata": true, "fixedLengthStreamedAfterKB": 1024}
  ],
  "routers": [{
    "protocol": "http",
    "label": "outgoing",
    "dtab": "/svc => /#/consul/dc1/prod;\n/svc/legacy => /#/io.l5d.fs/legacy;\n",
    "dstPrefix": "/out",
    "identifier": [
      {"kind": "io.l5d.path", "segments": 2, "consume": true},
      {"kind": "io.l5d.methodAndHost", "httpUriInDst": true},
      {"kind": "io.l5d.header"},
      {"kind": "io.l5d.static", "path": "/fallback"},
      {"kind": "io.l5d.header.token", "header": "X-Service"}
    ],
    "servers": [
      {"port": 4140},
      {"ip": "10.0.0.5", "port": 4141, "clearContext": true, "maxConcurrentRequests": 100,
       "addForwardedHeader": {"by": {"kind": "router"}, "for": {"kind": "static", "label": "edge"}},
       "maxCallDepth": 20}
    ],
    "bindingTimeoutMs": 3000,
    "bindingCache": {"paths": 10, "trees": 20, "bounds": 30, "clients": 40, "idleTtlSecs": 60},
    "maxHeadersKB": 16,
    "maxInitialLineKB": 8,
    "maxErrResponseKB": 1,
    "httpAccessLog": "/var/log/strait/access.log"
  }],
  "telemetry": [{"kind": "io.l5d.prometheus", "path": "/metrics", "prefix": "strait_"}],
  "usage": {"orgId": "acme", "enabled": false}
}"#;

#[test]
fn every_key_is_read_into_the_domain_types() {
    let c = ok(FULL_YAML);
    assert_eq!(
        c.admin,
        AdminConfig {
            ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 9991,
            shutdown_grace: Duration::from_millis(2500),
        }
    );
    assert_eq!(
        c.namers,
        vec![
            NamerConfig::Fs(FsNamerConfig {
                prefix: path("/io.l5d.fs"),
                root_dir: "/etc/strait/disco".into(),
            }),
            NamerConfig::Consul(ConsulConfig {
                prefix: path("/consul"),
                host: "consul.internal".to_owned(),
                port: 8501,
                include_tag: true,
                use_health_check: true,
                health_statuses: vec![HealthStatus::Passing, HealthStatus::Warning],
                token: Some("s3cret".to_owned()),
                set_host: true,
                consistency_mode: ConsistencyMode::Stale,
                fail_fast: true,
                prefer_service_address: false,
                weights: vec![
                    TagWeight {
                        tag: "canary".to_owned(),
                        weight: 0.5,
                    },
                    TagWeight {
                        tag: "big".to_owned(),
                        weight: 3.0,
                    },
                ],
                transfer_metadata: true,
                fixed_length_streamed_after_kb: 1024,
            }),
        ]
    );
    assert_eq!(
        c.namers[1].full_prefix(),
        path("/#/consul"),
        "full prefix is /# ++ prefix"
    );
    assert_eq!(c.namers[0].full_prefix(), path("/#/io.l5d.fs"));

    let r = &c.routers[0];
    assert_eq!(r.label, "outgoing");
    assert_eq!(
        r.dtab.show(),
        "/svc=>/#/consul/dc1/prod;/svc/legacy=>/#/io.l5d.fs/legacy"
    );
    assert_eq!(r.dst_prefix, path("/out"));
    assert_eq!(
        r.identifiers,
        vec![
            IdentifierConfig::Path {
                segments: 2,
                consume: true
            },
            IdentifierConfig::MethodAndHost {
                http_uri_in_dst: true
            },
            IdentifierConfig::Header {
                header: "l5d-name".to_owned()
            },
            IdentifierConfig::Static {
                path: path("/fallback")
            },
            IdentifierConfig::HeaderToken {
                header: "X-Service".to_owned()
            },
        ]
    );
    assert_eq!(
        r.servers[1],
        ServerConfig {
            ip: "10.0.0.5".parse().unwrap(),
            port: 4141,
            clear_context: true,
            max_concurrent_requests: Some(100),
            add_forwarded_header: Some(ForwardedConfig {
                by: ForwardedLabeler::Router,
                for_: ForwardedLabeler::Static {
                    label: "edge".to_owned()
                },
            }),
            max_call_depth: 20,
        }
    );
    assert_eq!(r.binding_timeout, Duration::from_secs(3));
    assert_eq!(
        r.binding_cache,
        BindingCacheConfig {
            paths: 10,
            trees: 20,
            bounds: 30,
            clients: 40,
            idle_ttl: Duration::from_secs(60),
        }
    );
    assert_eq!(
        (
            r.max_headers_kb,
            r.max_initial_line_kb,
            r.max_err_response_kb
        ),
        (16, 8, 1)
    );
    assert_eq!(r.http_access_log, Some("/var/log/strait/access.log".into()));
    assert_eq!(
        c.telemetry,
        vec![TelemeterConfig::Prometheus {
            path: "/metrics".to_owned(),
            prefix: "strait_".to_owned(),
        }]
    );
    assert_eq!(
        c.usage,
        Some(UsageConfig {
            org_id: Some("acme".to_owned()),
            enabled: Some(false),
        })
    );
}

#[test]
fn yaml_and_json_forms_of_one_config_are_equal() {
    assert_eq!(
        ok(FULL_YAML),
        ok(FULL_JSON),
        "JSON is YAML 1.2: the same config in either form reads the same"
    );
}

#[test]
fn printed_config_json_parses_back_to_the_same_config() {
    for text in [MINIMAL, FULL_YAML] {
        let config = ok(text);
        let json = serde_json::to_string_pretty(&config).unwrap();
        assert_eq!(
            ok(&json),
            config,
            "/config.json prints a valid config with the defaults filled in:\n{json}"
        );
    }
}

#[test]
fn config_json_uses_linkerd_key_names() {
    let json = serde_json::to_value(ok(MINIMAL)).unwrap();
    assert_eq!(json["admin"]["shutdownGraceMs"], 10_000);
    let r = &json["routers"][0];
    assert_eq!(r["dstPrefix"], "/svc", "paths print as their show() string");
    assert_eq!(r["dtab"], "", "dtabs print as their show() string");
    assert_eq!(r["identifier"][0]["kind"], "io.l5d.header.token");
    assert_eq!(r["bindingTimeoutMs"], 10_000);
    assert_eq!(r["bindingCache"]["idleTtlSecs"], 600);
    assert_eq!(r["maxHeadersKB"], 8);
    assert_eq!(r["servers"][0]["maxCallDepth"], 1000);
}

#[test]
fn every_problem_is_reported_at_once_with_position_and_key_path() {
    let text = "\
admin:
  port: \"9990\"
  security:
    uiEnabled: false
routers:
- protocol: http
  dtab: /svc => bad;
  servers:
  - port: 4140
    ip: localhost
  - port: 70000
  timeoutMs: 10
namers:
- kind: io.l5d.fs
  prefix: /fs
rooters: []
";
    assert_eq!(
        errors(text),
        [
            "linkerd.yaml:2:9: admin.port: expected an integer, found the quoted string \"9990\" (remove the quotes)",
            "linkerd.yaml:3:3: admin.security: `security` is a Linkerd 1 feature Strait does not implement yet; remove it",
            "linkerd.yaml:7:17: routers[0].dtab: invalid dtab: simple expected but 'b' found at '/svc => [b]ad;'",
            "linkerd.yaml:10:9: routers[0].servers[0].ip: expected an IP address such as 127.0.0.1 or 0.0.0.0, found 'localhost'",
            "linkerd.yaml:11:11: routers[0].servers[1].port: expected an integer from 0 to 65535, found 70000",
            "linkerd.yaml:12:3: routers[0].timeoutMs: unknown key 'timeoutMs'; known keys: bindingCache, bindingTimeoutMs, dstPrefix, dtab, httpAccessLog, identifier, label, maxErrResponseKB, maxHeadersKB, maxInitialLineKB, protocol, servers",
            "linkerd.yaml:14:3: namers[0].rootDir: missing required key 'rootDir'",
            "linkerd.yaml:16:1: rooters: unknown key 'rooters'; did you mean 'routers'?",
        ],
        "all problems come back together, sorted by position, each with file:line:col and key path"
    );
}

#[test]
fn duplicate_keys_are_errors_naming_the_first_occurrence() {
    let text = "routers:\n- protocol: http\n  servers:\n  - port: 4140\n    port: 4141\n";
    assert_eq!(
        errors(text),
        [
            "linkerd.yaml:5:5: routers[0].servers[0].port: duplicate key 'port' (first written at line 4)"
        ],
        "Linkerd's STRICT_DUPLICATE_DETECTION: a repeated key is an error, not a silent override"
    );
    assert_eq!(
        errors(
            "{\"routers\": [{\"protocol\": \"http\", \"protocol\": \"http\", \"servers\": [{}]}]}"
        ),
        [
            "linkerd.yaml:1:35: routers[0].protocol: duplicate key 'protocol' (first written at line 1)"
        ],
        "duplicates are caught in JSON too"
    );
}

#[test]
fn unknown_key_suggests_the_closest_known_key() {
    let text = "admn: {}\nrouters:\n- protocol: http\n  dstPrefx: /svc\n  servers:\n  - prot: 1\n";
    assert_eq!(
        errors(text),
        [
            "linkerd.yaml:1:1: admn: unknown key 'admn'; did you mean 'admin'?",
            "linkerd.yaml:4:3: routers[0].dstPrefx: unknown key 'dstPrefx'; did you mean 'dstPrefix'?",
            "linkerd.yaml:6:5: routers[0].servers[0].prot: unknown key 'prot'; did you mean 'port'?",
        ],
        "a typo within two edits of a known key gets a suggestion"
    );
}

#[test]
fn a_block_missing_a_required_key_still_reports_its_unknown_keys() {
    let text = "routers:\n- protocol: http\n  identifier: {kind: io.l5d.static, paht: /x}\n  servers: [{}]\n";
    assert_eq!(
        errors(text),
        [
            "linkerd.yaml:3:15: routers[0].identifier.path: missing required key 'path'",
            "linkerd.yaml:3:37: routers[0].identifier.paht: unknown key 'paht'; did you mean 'path'?",
        ],
        "one missing key does not hide the other problems of its block"
    );
}

#[test]
fn unimplemented_linkerd_features_are_refused_by_name() {
    let text = "\
admin:
  tls: {}
routers:
- protocol: http
  client:
    loadBalancer: {kind: ewma}
  interpreter: {kind: default}
  servers:
  - tls: {certPath: /a, keyPath: /b}
- protocol: h2
  servers: [{}]
namers:
- kind: io.l5d.k8s
- kind: io.l5d.consul
  tls: {disableValidation: true}
telemetry:
- kind: io.l5d.zipkin
";
    assert_eq!(
        errors(text),
        [
            "linkerd.yaml:2:3: admin.tls: `tls` is a Linkerd 1 feature Strait does not implement yet; remove it",
            "linkerd.yaml:5:3: routers[0].client: `client` is a Linkerd 1 feature Strait does not implement yet; remove it",
            "linkerd.yaml:7:3: routers[0].interpreter: `interpreter` is a Linkerd 1 feature Strait does not implement yet; remove it",
            "linkerd.yaml:9:5: routers[0].servers[0].tls: `tls` is a Linkerd 1 feature Strait does not implement yet; remove it",
            "linkerd.yaml:10:13: routers[1].protocol: protocol `h2` is a Linkerd 1 feature Strait does not implement yet; Strait routes `http` (HTTP/1.x) only",
            "linkerd.yaml:13:9: namers[0].kind: namer `io.l5d.k8s` is a Linkerd 1 feature Strait does not implement yet",
            "linkerd.yaml:15:3: namers[1].tls: `tls` is a Linkerd 1 feature Strait does not implement yet; remove it",
            "linkerd.yaml:17:9: telemetry[0].kind: telemeter `io.l5d.zipkin` is a Linkerd 1 feature Strait does not implement yet",
        ],
        "a Linkerd 1 key Strait lacks is named, never silently ignored"
    );
}

#[test]
fn body_size_limits_removed_in_linkerd_1_7_are_explained() {
    let text = "routers:\n- protocol: http\n  maxRequestKB: 5\n  servers: [{}]\n";
    assert_eq!(
        errors(text),
        [
            "linkerd.yaml:3:3: routers[0].maxRequestKB: `maxRequestKB` was removed in Linkerd 1.7 (bodies are streamed); remove the key"
        ]
    );
}

#[test]
fn bad_dtab_reports_the_dtab_position_and_finagles_message() {
    let text = "\
routers:
- protocol: http
  servers: [{}]
  dtab: |
    /svc => /#/io.l5d.consul/dc1;
    /svc/x => /$/inet/127.1/80 |;
";
    assert_eq!(
        errors(text),
        [
            "linkerd.yaml:6:33: routers[0].dtab: invalid dtab: simple expected but ';' found at '/svc => /#/io.l5d.consul/dc1;\\n/svc/x => /$/inet/127.1/80 |[;]\\n'"
        ],
        "the error points at the bad character inside the block and quotes Finagle's parser"
    );
}

#[test]
fn bad_path_values_report_finagles_message() {
    let text = "routers:\n- protocol: http\n  dstPrefix: svc\n  servers: [{}]\n";
    assert_eq!(
        errors(text),
        [
            "linkerd.yaml:3:14: routers[0].dstPrefix: invalid path: '/' expected but 's' found at '[s]vc'"
        ]
    );
}

#[test]
fn a_config_without_routers_is_refused() {
    assert_eq!(
        errors("admin: {port: 9990}\n"),
        [
            "linkerd.yaml:1:1: routers: missing required key 'routers'; a config needs at least one router"
        ],
    );
    assert_eq!(
        errors("routers: []\n"),
        ["linkerd.yaml:1:10: routers: no routers specified; a config needs at least one router"],
        "Linkerd's NoRoutersSpecified: an empty list is refused too"
    );
    assert_eq!(
        errors(""),
        [
            "linkerd.yaml:1:1: routers: missing required key 'routers'; a config needs at least one router"
        ],
        "an empty file is a config without routers"
    );
}

#[test]
fn duplicate_router_labels_conflict() {
    let text = "\
routers:
- protocol: http
  servers: [{port: 4140}]
- protocol: http
  servers: [{port: 4141}]
- protocol: http
  label: http
  servers: [{port: 4142}]
";
    assert_eq!(
        errors(text),
        [
            "linkerd.yaml:4:3: routers[1].label: router label 'http' is used by routers[0] and routers[1]; give each router a unique `label`",
            "linkerd.yaml:7:10: routers[2].label: router label 'http' is used by routers[0] and routers[2]; give each router a unique `label`",
        ],
        "Linkerd's ConflictingLabels: the label defaults to the protocol, so two http routers need labels"
    );
}

#[test]
fn two_listeners_on_one_address_conflict() {
    let text = "\
admin:
  port: 9990
routers:
- protocol: http
  label: a
  servers:
  - port: 4140
  - port: 9990
- protocol: http
  label: b
  servers:
  - port: 4140
  - ip: 0.0.0.0
    port: 4140
";
    assert_eq!(
        errors(text),
        [
            "linkerd.yaml:8:5: routers[0].servers[1]: server address 127.0.0.1:9990 conflicts with the admin server on 127.0.0.1:9990",
            "linkerd.yaml:12:5: routers[1].servers[0]: server address 127.0.0.1:4140 conflicts with routers[0].servers[0] on 127.0.0.1:4140",
            "linkerd.yaml:13:5: routers[1].servers[1]: server address 0.0.0.0:4140 conflicts with routers[0].servers[0] on 127.0.0.1:4140",
        ],
        "Linkerd's ConflictingPorts, across routers and with the admin server; a wildcard overlaps every address"
    );
}

#[test]
fn port_zero_never_conflicts() {
    let text = "\
admin: {port: 0}
routers:
- protocol: http
  label: a
  servers: [{port: 0}, {port: 0}]
- protocol: http
  label: b
  servers: [{port: 0}]
";
    let c = ok(text);
    assert_eq!(
        c.routers[0].servers[0].port, 0,
        "port 0 asks the OS for an ephemeral port"
    );
}

#[test]
fn a_router_without_servers_is_refused() {
    assert_eq!(
        errors("routers:\n- protocol: http\n  label: web\n"),
        ["linkerd.yaml:2:3: routers[0].servers: router 'web' has no servers"]
    );
    assert_eq!(
        errors("routers:\n- protocol: http\n  servers: []\n"),
        ["linkerd.yaml:3:12: routers[0].servers: router 'http' has no servers"]
    );
}

#[test]
fn namers_with_one_prefix_conflict() {
    let text = "\
routers: [{protocol: http, servers: [{}]}]
namers:
- kind: io.l5d.fs
  rootDir: /a
- kind: io.l5d.consul
  prefix: /io.l5d.fs
";
    assert_eq!(
        errors(text),
        [
            "linkerd.yaml:6:11: namers[1].prefix: namer prefix /io.l5d.fs is also used by namers[0]; give each namer a unique `prefix`"
        ]
    );
}

#[test]
fn unknown_kinds_list_the_known_kinds() {
    let text = "\
routers:
- protocol: http
  identifier: {kind: io.l5d.hostname}
  servers: [{}]
namers:
- kind: io.l5d.etcd
- rootDir: /x
";
    assert_eq!(
        errors(text),
        [
            "linkerd.yaml:3:22: routers[0].identifier.kind: unknown identifier kind 'io.l5d.hostname'; known kinds: io.l5d.header.token, io.l5d.methodAndHost, io.l5d.path, io.l5d.header, io.l5d.static",
            "linkerd.yaml:6:9: namers[0].kind: unknown namer kind 'io.l5d.etcd'; known kinds: io.l5d.fs, io.l5d.consul",
            "linkerd.yaml:7:3: namers[1].kind: missing required key 'kind'",
        ]
    );
}

#[test]
fn consul_values_are_validated() {
    let text = "\
routers: [{protocol: http, servers: [{}]}]
namers:
- kind: io.l5d.consul
  healthStatuses: [passing, sick]
  consistencyMode: eventual
  weights:
  - tag: canary
    weight: 0
  - weight: 2
  includeTag: \"false\"
";
    assert_eq!(
        errors(text),
        [
            "linkerd.yaml:4:29: namers[0].healthStatuses[1]: expected one of passing, warning, critical, maintenance, found 'sick'",
            "linkerd.yaml:5:20: namers[0].consistencyMode: expected one of default, stale, consistent, found 'eventual'",
            "linkerd.yaml:8:13: namers[0].weights[0].weight: expected a number greater than 0, found 0",
            "linkerd.yaml:9:5: namers[0].weights[1].tag: missing required key 'tag'",
            "linkerd.yaml:10:15: namers[0].includeTag: expected true or false, found the quoted string \"false\" (remove the quotes)",
        ]
    );
}

#[test]
fn consul_namer_defaults_follow_linkerd() {
    let c = ok("routers: [{protocol: http, servers: [{}]}]\nnamers: [{kind: io.l5d.consul}]\n");
    assert_eq!(
        c.namers,
        vec![NamerConfig::Consul(ConsulConfig {
            prefix: path("/io.l5d.consul"),
            host: "localhost".to_owned(),
            port: 8500,
            include_tag: false,
            use_health_check: false,
            health_statuses: vec![HealthStatus::Passing],
            token: None,
            set_host: false,
            consistency_mode: ConsistencyMode::Default,
            fail_fast: false,
            prefer_service_address: true,
            weights: vec![],
            transfer_metadata: false,
            fixed_length_streamed_after_kb: 5120,
        })]
    );
}

#[test]
fn identifier_is_one_object_or_a_list() {
    let one =
        ok("routers:\n- protocol: http\n  identifier: {kind: io.l5d.path}\n  servers: [{}]\n");
    let list =
        ok("routers:\n- protocol: http\n  identifier: [{kind: io.l5d.path}]\n  servers: [{}]\n");
    assert_eq!(one, list);
    assert_eq!(
        one.routers[0].identifiers,
        vec![IdentifierConfig::Path {
            segments: 1,
            consume: false
        }]
    );
    assert_eq!(
        errors(
            "routers:\n- protocol: http\n  identifier: [{kind: io.l5d.path, segments: 0}]\n  servers: [{}]\n"
        ),
        [
            "linkerd.yaml:3:46: routers[0].identifier[0].segments: expected an integer from 1 to 4294967295, found 0"
        ]
    );
}

#[test]
fn add_forwarded_header_object_enables_it_with_request_random_labels() {
    let c = ok("routers:\n- protocol: http\n  servers: [{addForwardedHeader: {}}]\n");
    assert_eq!(
        c.routers[0].servers[0].add_forwarded_header,
        Some(ForwardedConfig {
            by: ForwardedLabeler::RequestRandom,
            for_: ForwardedLabeler::RequestRandom,
        })
    );
    assert_eq!(
        errors("routers:\n- protocol: http\n  servers: [{addForwardedHeader: true}]\n"),
        [
            "linkerd.yaml:3:34: routers[0].servers[0].addForwardedHeader: expected a mapping, found 'true'; write `addForwardedHeader: {}` to add the header with the default labels"
        ]
    );
}

#[test]
fn yaml_syntax_error_is_one_error_at_the_parser_position() {
    let errs = errors("routers:\n- protocol: http\n  servers: [{}\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("linkerd.yaml:")
            && errs[0].contains(": (document): YAML syntax error: "),
        "a syntax error has key path (document): {errs:?}"
    );
}

#[test]
fn anchors_and_aliases_are_refused() {
    let text = "routers:\n- &r {protocol: http, servers: [{}]}\n- *r\n";
    let errs = errors(text);
    assert_eq!(
        errs[..2],
        [
            "linkerd.yaml:2:3: routers[0]: YAML anchors (&name) are not supported in a Strait config; write the value out",
            "linkerd.yaml:3:3: routers[1]: YAML aliases (*name) are not supported in a Strait config; write the value out",
        ]
    );
}

#[test]
fn usage_is_accepted() {
    let c = ok("routers: [{protocol: http, servers: [{}]}]\nusage: {enabled: false}\n");
    assert_eq!(
        c.usage,
        Some(UsageConfig {
            org_id: None,
            enabled: Some(false),
        })
    );
}

#[test]
fn repo_linkerd_yaml_is_a_valid_config() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../linkerd.yaml");
    let c = match strait::config::load(std::path::Path::new(file)) {
        Ok(c) => c,
        Err(errors) => panic!(
            "the reference linkerd.yaml must pass `strait check`:\n{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    };
    assert_eq!(c.routers.len(), 1);
    let r = &c.routers[0];
    assert_eq!(r.label, "outgoing");
    assert_eq!(r.dtab.show(), "/svc=>/#/io.l5d.consul/.local");
    assert_eq!((r.servers[0].ip, r.servers[0].port), (LOOPBACK, 4140));
    assert_eq!((c.admin.ip, c.admin.port), (LOOPBACK, 9990));
    match &c.namers[..] {
        [NamerConfig::Consul(consul)] => {
            assert!(
                !consul.include_tag,
                "the dtab has no tag segment, so includeTag is false"
            );
            assert!(consul.use_health_check);
            assert_eq!((consul.host.as_str(), consul.port), ("localhost", 8500));
        }
        other => panic!("expected one consul namer, got {other:?}"),
    }
    assert!(matches!(
        c.telemetry[..],
        [TelemeterConfig::Prometheus { .. }]
    ));
}

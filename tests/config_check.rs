//! `strait::config`: linkerd.yaml read strictly, every problem reported at
//! once with file:line:col and key path.

#![allow(clippy::unwrap_used, missing_docs)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use strait::config::{
    AdminConfig, BackoffConfig, BindingCacheConfig, BindingLimitsConfig, BudgetConfig,
    ClassifierKind, ClientConfig, ClientParams, ClientParamsPatch, ClientPrefixConfig, Config,
    ConsistencyMode, ConsulConfig, DnsSrvNamerConfig, Experimental, FailureAccrualConfig,
    ForwardedConfig, ForwardedLabeler, FsNamerConfig, HealthStatus, IdentifierConfig,
    InterpreterConfig, InterpreterKind, LoadBalancerConfig, NamerConfig, PoolConfig, Protocol,
    RetriesConfig, RetriesPatch, RouterConfig, ServerConfig, ServiceConfig, ServiceParams,
    ServiceParamsPatch, ServicePrefixConfig, TagWeight, TelemeterConfig, UsageConfig, parse,
};
use strait_dtab::{Dtab, Path};
use strait_naming::pathmatch::PathMatcher;

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
            dtab_override: false,
            max_concurrent_requests: None,
            add_forwarded_header: None,
            max_call_depth: 1000,
            request_header_timeout: Duration::from_secs(30),
            request_body_idle_timeout: Duration::from_secs(60),
            max_request_body_kb: None,
            max_header_count: Some(500),
            upgrade_idle_timeout: Some(Duration::from_secs(3600)),
            response_send_timeout: Some(Duration::from_secs(60)),
            h2: Default::default(),
            max_concurrent_streams_per_connection: None,
            client_networks: None,
            tls: None,
        }],
        binding_timeout: Duration::from_millis(10_000),
        binding_cache: BindingCacheConfig {
            paths: 1000,
            trees: 1000,
            bounds: 1000,
            clients: 1000,
            idle_ttl: Duration::from_secs(600),
        },
        binding_limits: BindingLimitsConfig {
            max_nodes: 10_000,
            max_leaves: 1000,
            max_dtab_header_bytes: 4096,
        },
        client: ClientConfig::Global(default_client_params()),
        service: ServiceConfig::Global(default_service_params()),
        max_headers_kb: Some(8),
        max_initial_line_kb: Some(4),
        max_err_response_kb: Some(5120),
        http_access_log: None,
        h2_access_log: None,
        access_log_options: Default::default(),
        inet_allow: strait_router::guard::InetRule::loopback(),
        originator: false,
        interpreter: InterpreterConfig::default(),
    }
}

fn prefix(s: &str) -> PathMatcher {
    match PathMatcher::new(s) {
        Ok(p) => p,
        Err(e) => panic!("{s}: {e}"),
    }
}

/// Linkerd 1's client defaults, spelled out (as Linkerd 1's configuration reference gives them).
fn default_client_params() -> ClientParams {
    ClientParams {
        load_balancer: LoadBalancerConfig::P2c {
            max_effort: 5,
            enable_probation: false,
        },
        failure_accrual: FailureAccrualConfig::ConsecutiveFailures {
            failures: 5,
            backoff: BackoffConfig::Jittered {
                min: Duration::from_millis(5_000),
                max: Duration::from_millis(300_000),
            },
        },
        requeue_budget: default_budget(),
        host_connection_pool: PoolConfig {
            min_size: 0,
            max_size: None,
            idle_time: None,
            max_waiters: None,
        },
        request_attempt_timeout: None,
        connect_timeout: Duration::from_millis(10_000),
        // Strait's own: a backend must begin its response within 60 s.
        response_timeout: Duration::from_millis(60_000),
        fail_fast: false,
        tls: None,
        h2: Default::default(),
    }
}

fn default_budget() -> BudgetConfig {
    BudgetConfig {
        ttl: Duration::from_secs(10),
        min_retries_per_sec: 10,
        percent_can_retry: 0.2,
    }
}

/// Linkerd 1's service defaults, spelled out (as Linkerd 1's configuration reference gives them).
fn default_service_params() -> ServiceParams {
    ServiceParams {
        response_classifier: ClassifierKind::NonRetryable5XX,
        retries: RetriesConfig {
            budget: default_budget(),
            backoff: BackoffConfig::Constant {
                delay: Duration::ZERO,
            },
        },
        total_timeout: None,
        retry_buffer_size: None,
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
            security: Default::default(),
            token_file: None,
            tls: None,
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
  maxWatches: 500
  watchIdleTtlSecs: 30
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
  bindingLimits: {maxNodes: 500, maxLeaves: 50, maxDtabHeaderBytes: 1024}
  client:
    loadBalancer: {kind: ewma, maxEffort: 3, decayTimeMs: 2000, enableProbation: true}
    failureAccrual:
      kind: io.l5d.consecutiveFailures
      failures: 7
      backoff: {kind: constant, ms: 250}
    requeueBudget: {ttlSecs: 30, minRetriesPerSec: 0, percentCanRetry: 1.5}
    hostConnectionPool: {minSize: 0, maxSize: 50, idleTimeMs: 30000}
    requestAttemptTimeoutMs: 800
    connectTimeoutMs: 250
    failFast: false
  service:
    kind: io.l5d.global
    responseClassifier: {kind: io.l5d.http.retryableIdempotent5XX}
    retries:
      budget: {ttlSecs: 5, minRetriesPerSec: 2, percentCanRetry: 0.1}
      backoff: {kind: jittered, minMs: 10, maxMs: 1000}
    totalTimeoutMs: 3000
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
     "token": "s3cret", "setHost": true, "maxWatches": 500, "watchIdleTtlSecs": 30, "consistencyMode": "stale", "failFast": true,
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
    "bindingLimits": {"maxNodes": 500, "maxLeaves": 50, "maxDtabHeaderBytes": 1024},
    "client": {
      "loadBalancer": {"kind": "ewma", "maxEffort": 3, "decayTimeMs": 2000, "enableProbation": true},
      "failureAccrual": {"kind": "io.l5d.consecutiveFailures", "failures": 7,
                         "backoff": {"kind": "constant", "ms": 250}},
      "requeueBudget": {"ttlSecs": 30, "minRetriesPerSec": 0, "percentCanRetry": 1.5},
      "hostConnectionPool": {"minSize": 0, "maxSize": 50, "idleTimeMs": 30000},
      "requestAttemptTimeoutMs": 800,
      "connectTimeoutMs": 250,
      "failFast": false
    },
    "service": {
      "kind": "io.l5d.global",
      "responseClassifier": {"kind": "io.l5d.http.retryableIdempotent5XX"},
      "retries": {
        "budget": {"ttlSecs": 5, "minRetriesPerSec": 2, "percentCanRetry": 0.1},
        "backoff": {"kind": "jittered", "minMs": 10, "maxMs": 1000}
      },
      "totalTimeoutMs": 3000
    },
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
            security: Default::default(),
            token_file: None,
            tls: None,
        }
    );
    assert_eq!(
        c.namers,
        vec![
            NamerConfig::Fs(FsNamerConfig {
                prefix: path("/io.l5d.fs"),
                root_dir: "/etc/strait/disco".into(),
                transformers: vec![],
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
                max_watches: 500,
                watch_idle_ttl: Duration::from_secs(30),
                tls: None,
                transformers: vec![],
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
            dtab_override: false,
            max_concurrent_requests: Some(100),
            add_forwarded_header: Some(ForwardedConfig {
                by: ForwardedLabeler::Router,
                for_: ForwardedLabeler::Static {
                    label: "edge".to_owned()
                },
            }),
            max_call_depth: 20,
            request_header_timeout: Duration::from_secs(30),
            request_body_idle_timeout: Duration::from_secs(60),
            max_request_body_kb: None,
            max_header_count: Some(500),
            upgrade_idle_timeout: Some(Duration::from_secs(3600)),
            response_send_timeout: Some(Duration::from_secs(60)),
            h2: Default::default(),
            max_concurrent_streams_per_connection: None,
            client_networks: None,
            tls: None,
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
        r.binding_limits,
        BindingLimitsConfig {
            max_nodes: 500,
            max_leaves: 50,
            max_dtab_header_bytes: 1024,
        }
    );
    assert_eq!(
        (
            r.max_headers_kb,
            r.max_initial_line_kb,
            r.max_err_response_kb
        ),
        (Some(16), Some(8), Some(1))
    );
    assert_eq!(r.http_access_log, Some("/var/log/strait/access.log".into()));
    assert_eq!(
        r.client,
        ClientConfig::Global(ClientParams {
            load_balancer: LoadBalancerConfig::Ewma {
                max_effort: 3,
                decay_time: Duration::from_millis(2000),
                enable_probation: true,
            },
            failure_accrual: FailureAccrualConfig::ConsecutiveFailures {
                failures: 7,
                backoff: BackoffConfig::Constant {
                    delay: Duration::from_millis(250)
                },
            },
            requeue_budget: BudgetConfig {
                ttl: Duration::from_secs(30),
                min_retries_per_sec: 0,
                percent_can_retry: 1.5,
            },
            host_connection_pool: PoolConfig {
                min_size: 0,
                max_size: Some(50),
                idle_time: Some(Duration::from_secs(30)),
                max_waiters: None,
            },
            request_attempt_timeout: Some(Duration::from_millis(800)),
            connect_timeout: Duration::from_millis(250),
            response_timeout: Duration::from_millis(60_000),
            fail_fast: false,
            tls: None,
            h2: Default::default(),
        })
    );
    assert_eq!(
        r.service,
        ServiceConfig::Global(ServiceParams {
            response_classifier: ClassifierKind::RetryableIdempotent5XX,
            retries: RetriesConfig {
                budget: BudgetConfig {
                    ttl: Duration::from_secs(5),
                    min_retries_per_sec: 2,
                    percent_can_retry: 0.1,
                },
                backoff: BackoffConfig::Jittered {
                    min: Duration::from_millis(10),
                    max: Duration::from_millis(1000),
                },
            },
            total_timeout: Some(Duration::from_secs(3)),
            retry_buffer_size: None,
        })
    );
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
    for text in [MINIMAL, FULL_YAML, STATIC_POLICIES, ACCRUAL_KINDS] {
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
    assert_eq!(r["client"]["kind"], "io.l5d.global");
    assert_eq!(r["client"]["loadBalancer"]["kind"], "p2c");
    assert_eq!(r["client"]["loadBalancer"]["maxEffort"], 5);
    assert_eq!(
        r["client"]["failureAccrual"]["kind"],
        "io.l5d.consecutiveFailures"
    );
    assert_eq!(r["client"]["failureAccrual"]["backoff"]["kind"], "jittered");
    assert_eq!(r["client"]["failureAccrual"]["backoff"]["minMs"], 5000);
    assert_eq!(r["client"]["requeueBudget"]["ttlSecs"], 10);
    assert_eq!(r["client"]["requeueBudget"]["percentCanRetry"], 0.2);
    assert_eq!(r["client"]["connectTimeoutMs"], 10_000);
    assert_eq!(r["service"]["kind"], "io.l5d.global");
    assert_eq!(
        r["service"]["responseClassifier"]["kind"],
        "io.l5d.http.nonRetryable5XX"
    );
    assert_eq!(r["service"]["retries"]["backoff"]["ms"], 0);

    let json = serde_json::to_value(ok(STATIC_POLICIES)).unwrap();
    let client = &json["routers"][0]["client"];
    assert_eq!(client["kind"], "io.l5d.static");
    assert_eq!(
        client["configs"][2]["prefix"], "/#/io.l5d.fs/{service}/canary",
        "a {{name}} capture prints as written"
    );
    assert_eq!(client["configs"][2]["connectTimeoutMs"], 50);
    assert!(
        client["configs"][2].get("failFast").is_none(),
        "keys a static item does not set are not printed"
    );
}

#[test]
fn every_problem_is_reported_at_once_with_position_and_key_path() {
    let text = "\
admin:
  port: \"9990\"
  security:
    uiEnabled: nope
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
            "linkerd.yaml:4:16: admin.security.uiEnabled: expected true or false, found 'nope'",
            "linkerd.yaml:7:17: routers[0].dtab: invalid dtab: simple expected but 'b' found at '/svc => [b]ad;'",
            "linkerd.yaml:10:9: routers[0].servers[0].ip: expected an IP address such as 127.0.0.1 or 0.0.0.0, found 'localhost'",
            "linkerd.yaml:11:11: routers[0].servers[1].port: expected an integer from 0 to 65535, found 70000",
            "linkerd.yaml:12:3: routers[0].timeoutMs: unknown key 'timeoutMs'; known keys: bindingCache, bindingLimits, bindingTimeoutMs, client, dstPrefix, dtab, experimental, httpAccessLog, httpAccessLogAppend, httpAccessLogFormat, httpAccessLogRollPolicy, httpAccessLogRotateCount, identifier, inetAllow, interpreter, label, maxErrResponseKB, maxHeadersKB, maxInitialLineKB, originator, protocol, servers, service",
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
  workerThreads: 2
routers:
- protocol: http
  client:
    clientSession: {idleTimeMs: 5}
  servers:
  - socketOptions: {}
- protocol: thrift
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
            "linkerd.yaml:2:3: admin.workerThreads: `workerThreads` is a Linkerd 1 feature Strait does not implement yet; remove it",
            "linkerd.yaml:6:5: routers[0].client.clientSession: `clientSession` is a Linkerd 1 feature Strait does not implement yet; remove it",
            "linkerd.yaml:8:5: routers[0].servers[0].socketOptions: `socketOptions` is a Linkerd 1 feature Strait does not implement yet; remove it",
            "linkerd.yaml:9:13: routers[1].protocol: protocol `thrift` is a Linkerd 1 feature Strait does not implement yet; Strait routes `http` (HTTP/1.x) and `h2` (HTTP/2, gRPC) only",
            "linkerd.yaml:12:9: namers[0].kind: namer `io.l5d.k8s` is a Linkerd 1 feature Strait does not implement yet",
            "linkerd.yaml:16:9: telemetry[0].kind: telemeter `io.l5d.zipkin` is a Linkerd 1 feature Strait does not implement: Linkerd sends its spans to a Scribe collector (Thrift on port 9410), and Strait has none to test against; trace context still passes on in l5d-ctx-trace, B3 and traceparent headers, and io.l5d.tracelog or io.l5d.recentRequests show sampled requests",
        ],
        "a Linkerd 1 key Strait lacks is named, never silently ignored"
    );
}

#[test]
fn consul_watch_bounds_are_checked() {
    let text = "\
routers:
- protocol: http
  servers: [{}]
namers:
- kind: io.l5d.consul
  maxWatches: 0
  watchIdleTtlSecs: -1
";
    let errs = errors(text);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(
        errs[0].starts_with("linkerd.yaml:6:15: namers[0].maxWatches: "),
        "{errs:#?}"
    );
    assert!(
        errs[1].starts_with("linkerd.yaml:7:21: namers[0].watchIdleTtlSecs: "),
        "{errs:#?}"
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
fn namers_may_share_a_prefix_as_in_linkerd() {
    // Linkerd tries namers under one prefix in turn (last configured
    // first), falling through on Neg: an fs directory of overrides in front
    // of Consul, say.
    let text = "\
routers: [{protocol: http, servers: [{}]}]
namers:
- kind: io.l5d.fs
  rootDir: /a
- kind: io.l5d.consul
  prefix: /io.l5d.fs
";
    let c = ok(text);
    assert_eq!(c.namers[0].prefix(), c.namers[1].prefix());
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
            "linkerd.yaml:6:9: namers[0].kind: unknown namer kind 'io.l5d.etcd'; known kinds: io.l5d.fs, io.l5d.consul, io.l5d.dnssrv, io.l5d.rewrite",
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
            max_watches: 100,
            watch_idle_ttl: Duration::from_secs(60),
            tls: None,
            transformers: vec![],
        })]
    );
}

#[test]
fn dnssrv_namer_reads_its_keys_and_defaults() {
    let text = "\
routers: [{protocol: http, servers: [{}]}]
namers:
- kind: io.l5d.dnssrv
  experimental: true
- kind: io.l5d.dnssrv
  experimental: true
  prefix: /consul-dns
  refreshIntervalSeconds: 1
  dnsHosts: [10.0.0.2, 127.0.0.1:8600, '[::1]:8600', '::1']
";
    let c = ok(text);
    let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
    assert_eq!(
        c.namers,
        vec![
            NamerConfig::DnsSrv(DnsSrvNamerConfig {
                prefix: path("/io.l5d.dnssrv"),
                refresh_interval: Duration::from_secs(5),
                dns_hosts: vec![],
                transformers: vec![],
                experimental: Experimental,
            }),
            NamerConfig::DnsSrv(DnsSrvNamerConfig {
                prefix: path("/consul-dns"),
                refresh_interval: Duration::from_secs(1),
                dns_hosts: vec![
                    addr("10.0.0.2:53"),
                    addr("127.0.0.1:8600"),
                    addr("[::1]:8600"),
                    addr("[::1]:53"),
                ],
                transformers: vec![],
                experimental: Experimental,
            }),
        ],
        "Linkerd's defaults (5 s, the system resolver); a host without a port is on 53"
    );
    let json = serde_json::to_string_pretty(&c).unwrap();
    assert!(
        json.contains("\"refreshIntervalSeconds\": 1") && json.contains("\"127.0.0.1:8600\""),
        "/config.json uses Linkerd's key names: {json}"
    );
    assert_eq!(ok(&json), c, "/config.json parses back to the same config");
}

#[test]
fn dnssrv_values_are_validated() {
    let text = "\
routers: [{protocol: http, servers: [{}]}]
namers:
- kind: io.l5d.dnssrv
  experimental: true
  refreshIntervalSeconds: 0
  dnsHosts: [10.0.0.2, dns.example, '10.0.0.2:0', [10.0.0.3]]
- kind: io.l5d.dnssrv
  experimental: true
  prefix: /dns2
  dnsHosts: 10.0.0.2
  refreshIntervalSecond: 2
";
    assert_eq!(
        errors(text),
        [
            "linkerd.yaml:5:27: namers[0].refreshIntervalSeconds: expected an integer from 1 to 4294967295, found 0",
            "linkerd.yaml:6:24: namers[0].dnsHosts[1]: 'dns.example' is not a DNS server address; write an IP address with an optional port, e.g. 10.0.0.2, 127.0.0.1:8600 or [::1]:8600 (host names are not supported)",
            "linkerd.yaml:6:37: namers[0].dnsHosts[2]: '10.0.0.2:0': port 0 cannot be a DNS server's port",
            "linkerd.yaml:6:51: namers[0].dnsHosts[3]: expected a string, found a list",
            "linkerd.yaml:10:13: namers[1].dnsHosts: expected a list, found '10.0.0.2'",
            "linkerd.yaml:11:3: namers[1].refreshIntervalSecond: unknown key 'refreshIntervalSecond'; did you mean 'refreshIntervalSeconds'?",
        ]
    );
}

#[test]
fn the_dnssrv_namer_needs_experimental_true_as_in_linkerd() {
    let text = "\
routers: [{protocol: http, servers: [{}]}]
namers:
- kind: io.l5d.dnssrv
- kind: io.l5d.dnssrv
  prefix: /dns2
  experimental: false
- kind: io.l5d.dnssrv
  prefix: /dns3
  experimental: \"true\"
";
    assert_eq!(
        errors(text),
        [
            "linkerd.yaml:3:3: namers[0]: The /#/io.l5d.dnssrv namer is experimental and must be explicitly enabled by setting the `experimental' parameter to `true'.",
            "linkerd.yaml:6:17: namers[1].experimental: The /#/dns2 namer is experimental and must be explicitly enabled by setting the `experimental' parameter to `true'.",
            "linkerd.yaml:9:17: namers[2].experimental: expected true or false, found the quoted string \"true\" (remove the quotes)",
        ]
    );
    // Namers Linkerd does not mark experimental accept the key either way.
    ok(
        "routers: [{protocol: http, servers: [{}]}]\nnamers:\n- {kind: io.l5d.fs, rootDir: /d, experimental: false}\n- {kind: io.l5d.consul, experimental: true}\n",
    );
}

#[test]
fn binding_limits_are_positive_integers_with_unknown_keys_refused() {
    let c = ok("routers:\n- protocol: http\n  bindingLimits: {maxLeaves: 10}\n  servers: [{}]\n");
    assert_eq!(
        c.routers[0].binding_limits,
        BindingLimitsConfig {
            max_nodes: 10_000,
            max_leaves: 10,
            max_dtab_header_bytes: 4096,
        },
        "unset keys keep their defaults"
    );
    assert_eq!(
        errors(
            "routers:\n- protocol: http\n  bindingLimits: {maxNodes: 0, maxLeaves: -1, maxDtabHeaderBytes: '4096', maxLeafs: 3}\n  servers: [{}]\n"
        ),
        [
            "linkerd.yaml:3:29: routers[0].bindingLimits.maxNodes: expected an integer from 1 to 4294967295, found 0",
            "linkerd.yaml:3:43: routers[0].bindingLimits.maxLeaves: expected an integer from 1 to 4294967295, found -1",
            "linkerd.yaml:3:67: routers[0].bindingLimits.maxDtabHeaderBytes: expected an integer, found the quoted string \"4096\" (remove the quotes)",
            "linkerd.yaml:3:75: routers[0].bindingLimits.maxLeafs: unknown key 'maxLeafs'; did you mean 'maxLeaves'?",
        ]
    );
}

#[test]
fn response_send_timeout_is_a_positive_number_of_milliseconds_on_http_servers() {
    let c = ok("routers:\n- protocol: http\n  servers: [{responseSendTimeoutMs: 500}]\n");
    assert_eq!(
        c.routers[0].servers[0].response_send_timeout,
        Some(Duration::from_millis(500))
    );
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(
        json["routers"][0]["servers"][0]["responseSendTimeoutMs"],
        500
    );
    assert_eq!(
        errors(
            "routers:\n- protocol: http\n  servers:\n  - {responseSendTimeoutMs: 0}\n- protocol: h2\n  servers:\n  - {responseSendTimeoutMs: 500}\n"
        ),
        [
            "linkerd.yaml:4:29: routers[0].servers[0].responseSendTimeoutMs: expected an integer from 1 to 18446744073709551615, found 0",
            "linkerd.yaml:7:6: routers[1].servers[0].responseSendTimeoutMs: unknown key 'responseSendTimeoutMs' on an h2 router (HTTP/1 routers only)",
        ]
    );
}

#[test]
fn upgrade_idle_timeout_is_a_positive_number_of_milliseconds() {
    let c = ok("routers:\n- protocol: http\n  servers: [{upgradeIdleTimeoutMs: 500}]\n");
    assert_eq!(
        c.routers[0].servers[0].upgrade_idle_timeout,
        Some(Duration::from_millis(500))
    );
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(
        json["routers"][0]["servers"][0]["upgradeIdleTimeoutMs"],
        500
    );
    assert_eq!(
        errors(
            "routers:\n- protocol: http\n  servers:\n  - {upgradeIdleTimeoutMs: 0}\n  - {upgradeIdleTimeoutMs: -5}\n  - {upgradeIdleTimeoutMs: '500'}\n"
        ),
        [
            "linkerd.yaml:4:28: routers[0].servers[0].upgradeIdleTimeoutMs: expected an integer from 1 to 18446744073709551615, found 0",
            "linkerd.yaml:5:28: routers[0].servers[1].upgradeIdleTimeoutMs: expected an integer from 1 to 18446744073709551615, found -5",
            "linkerd.yaml:6:28: routers[0].servers[2].upgradeIdleTimeoutMs: expected an integer, found the quoted string \"500\" (remove the quotes)",
        ]
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

// ------------------------------------------------------ client, service

#[test]
fn client_and_service_take_linkerd_defaults_when_absent() {
    let c = ok(MINIMAL);
    let r = &c.routers[0];
    assert_eq!(
        r.client,
        ClientConfig::Global(default_client_params()),
        "p2c maxEffort 5, 5 consecutive failures with jittered 5 s → 300 s backoff, \
         requeue budget 10 s / 10 per s / 0.2, unbounded pool, connect timeout 10 s"
    );
    assert_eq!(
        r.service,
        ServiceConfig::Global(default_service_params()),
        "nonRetryable5XX, retry budget 10 s / 10 per s / 0.2, constant 0 ms backoff"
    );
    assert_eq!(r.client, ClientConfig::default());
    assert_eq!(r.service, ServiceConfig::default());
    assert_eq!(
        r.client.params_for(&path("/#/io.l5d.fs/web")),
        default_client_params()
    );
    assert_eq!(
        r.service.params_for(&path("/svc/web")),
        default_service_params()
    );

    let empty = ok("routers:\n- protocol: http\n  client: {}\n  service:\n  servers: [{}]\n");
    assert_eq!(
        empty.routers[0],
        default_router(),
        "an empty or null block is io.l5d.global with every default"
    );
}

#[test]
fn empty_client_blocks_get_the_defaults_of_their_kind() {
    let text = "\
routers:
- protocol: http
  servers: [{}]
  client:
    loadBalancer: {kind: ewma}
    failureAccrual: {kind: io.l5d.successRate, successRate: 0.9, requests: 20}
    requeueBudget: {}
    hostConnectionPool: {maxSize: 3}
  service:
    retries: {}
";
    let r = &ok(text).routers[0];
    assert_eq!(
        r.client,
        ClientConfig::Global(ClientParams {
            load_balancer: LoadBalancerConfig::Ewma {
                max_effort: 5,
                decay_time: Duration::from_millis(10_000),
                enable_probation: false,
            },
            failure_accrual: FailureAccrualConfig::SuccessRate {
                success_rate: 0.9,
                requests: 20,
                backoff: BackoffConfig::Jittered {
                    min: Duration::from_millis(5_000),
                    max: Duration::from_millis(300_000),
                },
            },
            host_connection_pool: PoolConfig {
                min_size: 0,
                max_size: Some(3),
                idle_time: None,
                max_waiters: None,
            },
            ..default_client_params()
        }),
        "ewma: maxEffort 5, decayTimeMs 10000; accrual backoff defaults to Linkerd's 5 s → 300 s"
    );
    assert_eq!(r.service, ServiceConfig::Global(default_service_params()));
}

const ACCRUAL_KINDS: &str = "\
routers:
- protocol: http
  label: a
  servers: [{port: 4140}]
  client:
    loadBalancer: {kind: roundRobin, maxEffort: 0}
    failureAccrual:
      kind: io.l5d.successRateWindowed
      successRate: 1
      window: 30
      backoff: {kind: jittered, minMs: 100, maxMs: 100}
- protocol: http
  label: b
  servers: [{port: 4141}]
  client:
    loadBalancer: {kind: p2c, enableProbation: true}
    failureAccrual: {kind: none}
  service:
    responseClassifier: {kind: io.l5d.http.allSuccessful}
";

#[test]
fn every_balancer_and_accrual_kind_is_read() {
    let c = ok(ACCRUAL_KINDS);
    let a = c.routers[0].client.params_for(&path("/x"));
    assert_eq!(
        a.load_balancer,
        LoadBalancerConfig::RoundRobin {
            max_effort: 0,
            enable_probation: false
        }
    );
    assert_eq!(a.load_balancer.max_effort(), 0);
    assert_eq!(
        a.failure_accrual,
        FailureAccrualConfig::SuccessRateWindowed {
            success_rate: 1.0,
            window: Duration::from_secs(30),
            backoff: BackoffConfig::Jittered {
                min: Duration::from_millis(100),
                max: Duration::from_millis(100),
            },
        },
        "successRate 1 is in (0, 1]; minMs == maxMs is allowed"
    );
    let b = c.routers[1].client.params_for(&path("/x"));
    assert_eq!(
        b.load_balancer,
        LoadBalancerConfig::P2c {
            max_effort: 5,
            enable_probation: true
        }
    );
    assert!(b.load_balancer.enable_probation());
    assert_eq!(b.failure_accrual, FailureAccrualConfig::Disabled);
    assert_eq!(
        c.routers[1]
            .service
            .params_for(&path("/svc/x"))
            .response_classifier,
        ClassifierKind::AllSuccessful
    );
}

#[test]
fn every_classifier_kind_is_read() {
    for kind in ClassifierKind::ALL {
        let text = format!(
            "routers:\n- protocol: http\n  servers: [{{}}]\n  service:\n    responseClassifier: {{kind: {}}}\n",
            kind.name()
        );
        let c = ok(&text);
        assert_eq!(
            c.routers[0].service,
            ServiceConfig::Global(ServiceParams {
                response_classifier: kind,
                ..default_service_params()
            })
        );
    }
}

const STATIC_POLICIES: &str = "\
routers:
- protocol: http
  servers: [{}]
  client:
    kind: io.l5d.static
    configs:
    - prefix: /
      requestAttemptTimeoutMs: 1000
      failFast: false
    - prefix: /#/io.l5d.fs/*
      loadBalancer: {kind: ewma}
      connectTimeoutMs: 500
    - prefix: \"/#/io.l5d.fs/{service}/canary\"
      connectTimeoutMs: 50
    - prefix: /#/io.l5d.consul/*/web
      hostConnectionPool: {maxSize: 10}
  service:
    kind: io.l5d.static
    configs:
    - prefix: /svc
      totalTimeoutMs: 5000
      retries:
        budget: {percentCanRetry: 0.5}
    - prefix: /svc/foo
      responseClassifier: {kind: io.l5d.http.retryableRead5XX}
      retries:
        backoff: {kind: jittered, minMs: 10, maxMs: 100}
    - prefix: /svc/foo/admin
      responseClassifier: {kind: io.l5d.http.nonRetryable5XX}
";

#[test]
fn static_client_prefixes_match_with_wildcards_and_later_matches_override() {
    let c = ok(STATIC_POLICIES);
    let client = &c.routers[0].client;
    let ClientConfig::Static { configs } = client else {
        panic!("expected io.l5d.static, got {client:?}");
    };
    assert_eq!(
        configs.iter().map(|c| c.prefix.clone()).collect::<Vec<_>>(),
        vec![
            prefix("/"),
            prefix("/#/io.l5d.fs/*"),
            prefix("/#/io.l5d.fs/{service}/canary"),
            prefix("/#/io.l5d.consul/*/web"),
        ],
        "a {{name}} capture is kept as written"
    );
    assert_eq!(
        configs[1],
        ClientPrefixConfig {
            prefix: prefix("/#/io.l5d.fs/*"),
            params: ClientParamsPatch {
                load_balancer: Some(LoadBalancerConfig::Ewma {
                    max_effort: 5,
                    decay_time: Duration::from_millis(10_000),
                    enable_probation: false,
                }),
                connect_timeout: Some(Duration::from_millis(500)),
                ..ClientParamsPatch::default()
            },
        },
        "an item holds only the keys written in it"
    );

    let everywhere = ClientParams {
        request_attempt_timeout: Some(Duration::from_secs(1)),
        fail_fast: false,
        ..default_client_params()
    };
    assert_eq!(
        client.params_for(&path("/$/inet/127.1/8080")),
        everywhere,
        "only `/` matches: its keys over the defaults"
    );
    let fs = ClientParams {
        load_balancer: LoadBalancerConfig::Ewma {
            max_effort: 5,
            decay_time: Duration::from_millis(10_000),
            enable_probation: false,
        },
        connect_timeout: Duration::from_millis(500),
        ..everywhere.clone()
    };
    assert_eq!(
        client.params_for(&path("/#/io.l5d.fs/web")),
        fs,
        "`*` matches one element; keys the later match does not set stay"
    );
    assert_eq!(
        client.params_for(&path("/#/io.l5d.fs/web/canary")),
        ClientParams {
            connect_timeout: Duration::from_millis(50),
            ..fs.clone()
        },
        "the later match overrides connectTimeoutMs, key by key"
    );
    assert_eq!(
        client.params_for(&path("/#/io.l5d.fs")),
        everywhere,
        "a wildcard needs an element to match"
    );
    assert_eq!(
        client
            .params_for(&path("/#/io.l5d.consul/dc1/web/extra"))
            .host_connection_pool,
        PoolConfig {
            max_size: Some(10),
            ..PoolConfig::default()
        },
        "a prefix matches longer names"
    );
}

#[test]
fn static_service_configs_apply_matching_prefixes_in_order() {
    let c = ok(STATIC_POLICIES);
    let service = &c.routers[0].service;
    let ServiceConfig::Static { configs } = service else {
        panic!("expected io.l5d.static, got {service:?}");
    };
    assert_eq!(
        configs[0],
        ServicePrefixConfig {
            prefix: prefix("/svc"),
            params: ServiceParamsPatch {
                response_classifier: None,
                retries: Some(RetriesPatch {
                    budget: Some(BudgetConfig {
                        percent_can_retry: 0.5,
                        ..default_budget()
                    }),
                    backoff: None,
                }),
                total_timeout: Some(Duration::from_secs(5)),
                retry_buffer_size: None,
            },
        }
    );

    let svc = ServiceParams {
        retries: RetriesConfig {
            budget: BudgetConfig {
                percent_can_retry: 0.5,
                ..default_budget()
            },
            ..default_service_params().retries
        },
        total_timeout: Some(Duration::from_secs(5)),
        ..default_service_params()
    };
    assert_eq!(service.params_for(&path("/svc/bar")), svc);
    let foo = ServiceParams {
        response_classifier: ClassifierKind::RetryableRead5XX,
        retries: RetriesConfig {
            backoff: BackoffConfig::Jittered {
                min: Duration::from_millis(10),
                max: Duration::from_millis(100),
            },
            ..svc.retries.clone()
        },
        ..svc.clone()
    };
    assert_eq!(
        service.params_for(&path("/svc/foo")),
        foo,
        "retries.backoff from /svc/foo, retries.budget still from /svc"
    );
    assert_eq!(
        service.params_for(&path("/svc/foo/admin")),
        ServiceParams {
            response_classifier: ClassifierKind::NonRetryable5XX,
            ..foo
        },
        "the last match wins"
    );
    assert_eq!(
        service.params_for(&path("/other")),
        default_service_params(),
        "no match: the defaults"
    );
}

#[test]
fn client_and_service_problems_are_all_reported_with_position_and_key_path() {
    let text = "\
routers:
- protocol: http
  servers: [{}]
  client:
    loadBalancer: {kind: aperture, smoothWindowMs: 100}
    failureAccrual:
      kind: io.l5d.successRate
      successRate: 1.5
      requests: 0
      backoff: {kind: jittered, minMs: 500, maxMs: 100}
    requeueBudget: {ttlSecs: 61, percentCanRetry: 1500}
    hostConnectionPool: {minSize: 10, maxSize: 5}
    requestAttemptTimeoutMs: 0
    tls: {trustCertsBundle: /b}
  service:
    responseClassifier: {kind: io.l5d.http.retryable5XX}
    retries:
      budget: {percentCanRetry: -0.1}
      backoff: {kind: exponential}
    totalTimeoutMs: 0
- protocol: http
  label: b
  servers: [{port: 4141}]
  client:
    kind: io.l5d.static
    configs:
    - prefix: /#/io.l5d.fs/{svc}/b@d
      failureAccrual: {kind: io.l5d.hedged}
    - loadBalancer: {kind: heap}
      loadBalancr: {}
  service:
    kind: io.l5d.dynamic
";
    assert_eq!(
        errors(text),
        [
            "linkerd.yaml:5:26: routers[0].client.loadBalancer.kind: load balancer `aperture` is a Linkerd 1 feature Strait parses but does not support yet; use one of p2c, ewma, roundRobin",
            "linkerd.yaml:8:20: routers[0].client.failureAccrual.successRate: expected a number greater than 0 and at most 1, found 1.5",
            "linkerd.yaml:9:17: routers[0].client.failureAccrual.requests: expected an integer from 1 to 4294967295, found 0",
            "linkerd.yaml:10:52: routers[0].client.failureAccrual.backoff.maxMs: maxMs (100) must be at least minMs (500)",
            "linkerd.yaml:11:30: routers[0].client.requeueBudget.ttlSecs: expected an integer from 1 to 60, found 61",
            "linkerd.yaml:11:51: routers[0].client.requeueBudget.percentCanRetry: expected a number from 0 to 1000, found 1500",
            "linkerd.yaml:12:35: routers[0].client.hostConnectionPool.minSize: minSize above 0 is not supported yet: connections are opened on demand",
            "linkerd.yaml:12:48: routers[0].client.hostConnectionPool.maxSize: maxSize (5) must be at least minSize (10)",
            "linkerd.yaml:13:30: routers[0].client.requestAttemptTimeoutMs: expected an integer from 1 to 18446744073709551615, found 0",
            "linkerd.yaml:14:10: routers[0].client.tls.commonName: tls is configured with validation but `commonName` is not set",
            "linkerd.yaml:16:32: routers[0].service.responseClassifier.kind: unknown response classifier kind 'io.l5d.http.retryable5XX'; known kinds: io.l5d.http.nonRetryable5XX, io.l5d.http.retryableRead5XX, io.l5d.http.retryableIdempotent5XX, io.l5d.http.retryableAll5XX, io.l5d.http.allSuccessful",
            "linkerd.yaml:18:33: routers[0].service.retries.budget.percentCanRetry: expected a number from 0 to 1000, found -0.1",
            "linkerd.yaml:19:23: routers[0].service.retries.backoff.kind: unknown backoff kind 'exponential'; known kinds: constant, jittered",
            "linkerd.yaml:20:21: routers[0].service.totalTimeoutMs: expected an integer from 1 to 18446744073709551615, found 0",
            "linkerd.yaml:27:35: routers[1].client.configs[0].prefix: invalid prefix: end of input expected but '@' found at '/#/io.l5d.fs/{svc}/b[@]d'",
            "linkerd.yaml:28:30: routers[1].client.configs[0].failureAccrual.kind: unknown failure accrual kind 'io.l5d.hedged'; known kinds: io.l5d.consecutiveFailures, io.l5d.successRate, io.l5d.successRateWindowed, none",
            "linkerd.yaml:29:7: routers[1].client.configs[1].prefix: missing required key 'prefix'",
            "linkerd.yaml:29:28: routers[1].client.configs[1].loadBalancer.kind: load balancer `heap` is a Linkerd 1 feature Strait parses but does not support yet; use one of p2c, ewma, roundRobin",
            "linkerd.yaml:30:7: routers[1].client.configs[1].loadBalancr: unknown key 'loadBalancr'; did you mean 'loadBalancer'?",
            "linkerd.yaml:32:11: routers[1].service.kind: unknown service kind 'io.l5d.dynamic'; known kinds: io.l5d.global, io.l5d.static",
        ],
        "every client and service problem at once, in file order, each with file:line:col and key path"
    );
}

#[test]
fn a_bad_budget_and_a_bad_accrual_kind_are_both_reported() {
    let text = "\
routers:
- protocol: http
  servers: [{}]
  client:
    requeueBudget: {percentCanRetry: 2000}
    failureAccrual: {kind: io.l5d.unknown}
";
    assert_eq!(
        errors(text),
        [
            "linkerd.yaml:5:38: routers[0].client.requeueBudget.percentCanRetry: expected a number from 0 to 1000, found 2000",
            "linkerd.yaml:6:28: routers[0].client.failureAccrual.kind: unknown failure accrual kind 'io.l5d.unknown'; known kinds: io.l5d.consecutiveFailures, io.l5d.successRate, io.l5d.successRateWindowed, none",
        ]
    );
}

#[test]
fn client_and_service_blocks_refuse_misplaced_and_meaningless_keys() {
    let text = "\
routers:
- protocol: http
  servers: [{}]
  client:
    kind: io.l5d.static
    failFast: true
    configs:
    - prefix: /
      clientSession: {idleTimeMs: 100}
      failureAccrual: {kind: none, backoff: {kind: constant}}
  service:
    configs: []
    retries: {budget: {ttlSecs: 0}, backof: {}}
    responseClassifier: {}
";
    assert_eq!(
        errors(text),
        [
            "linkerd.yaml:6:5: routers[0].client.failFast: unknown key 'failFast'; known keys: configs, kind",
            "linkerd.yaml:9:7: routers[0].client.configs[0].clientSession: `clientSession` is a Linkerd 1 feature Strait does not implement yet; remove it",
            "linkerd.yaml:10:36: routers[0].client.configs[0].failureAccrual.backoff: `backoff` has no effect with failure accrual `none`; remove it",
            "linkerd.yaml:12:5: routers[0].service.configs: unknown key 'configs'; known keys: kind, responseClassifier, retries, totalTimeoutMs",
            "linkerd.yaml:13:33: routers[0].service.retries.budget.ttlSecs: expected an integer from 1 to 60, found 0",
            "linkerd.yaml:13:37: routers[0].service.retries.backof: unknown key 'backof'; did you mean 'backoff'?",
            "linkerd.yaml:14:25: routers[0].service.responseClassifier.kind: missing required key 'kind'",
        ],
        "a static block takes only `configs`, a global one no `configs`; keys that would be ignored are refused"
    );
}

#[test]
fn static_configs_need_a_prefix_and_a_list() {
    assert_eq!(
        errors("routers:\n- protocol: http\n  servers: [{}]\n  service: {kind: io.l5d.static}\n"),
        ["linkerd.yaml:4:12: routers[0].service.configs: missing required key 'configs'"]
    );
    assert_eq!(
        errors(
            "routers:\n- protocol: http\n  servers: [{}]\n  client: {kind: io.l5d.static, configs: {prefix: /}}\n"
        ),
        ["linkerd.yaml:4:42: routers[0].client.configs: expected a list, found a mapping"]
    );
}

#[test]
fn dtab_override_is_off_by_default_and_inet_allow_defaults_to_loopback() {
    let c = ok("routers:\n- protocol: http\n  servers:\n  - port: 4140\n");
    assert!(
        !c.routers[0].servers[0].dtab_override,
        "off unless opted in"
    );
    assert_eq!(
        c.routers[0].inet_allow,
        strait_router::guard::InetRule::loopback()
    );
    let c = ok(concat!(
        "routers:\n- protocol: http\n",
        "  inetAllow: [10.0.0.0/8, '10.1.2.3:80', '[::1]:8080']\n",
        "  servers:\n  - port: 4140\n    dtabOverride: true\n",
    ));
    assert!(c.routers[0].servers[0].dtab_override);
    let shown: Vec<String> = c.routers[0]
        .inet_allow
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(shown, ["10.0.0.0/8", "10.1.2.3:80", "[::1]:8080"]);
    assert_eq!(
        errors(
            "routers:\n- protocol: http\n  inetAllow: [10.0.0.0/40]\n  servers:\n  - port: 1\n    dtabOverride: yes\n"
        ),
        [
            "linkerd.yaml:3:15: routers[0].inetAllow[0]: '10.0.0.0/40' is not an address pattern (bad prefix length); write an IP or CIDR block, optionally with a port: 10.0.0.0/8, 10.1.2.3:8080, [::1]:80",
            "linkerd.yaml:6:19: routers[0].servers[0].dtabOverride: expected true or false, found 'yes'",
        ]
    );
}

#[test]
fn namers_take_transformers_and_the_rewrite_namer() {
    use strait::config::{RewriteNamerConfig, TransformerConfig};
    use strait_naming::transform::TransformerKind;
    let text = "\
routers: [{protocol: http, servers: [{}]}]
namers:
- kind: io.l5d.fs
  rootDir: /srv/disco
  transformers:
  - kind: io.l5d.port
    port: 4141
  - {kind: io.l5d.localhost}
  - {kind: io.l5d.specificHost, host: 10.0.0.7, prefix: /pinned}
  - {kind: io.l5d.replace, path: /$/inet/127.0.0.1/4140}
  - {kind: io.l5d.const, path: /$/inet/127.0.0.1/4141}
- kind: io.l5d.rewrite
  prefix: /apiToSrv
  pattern: /{service}/api
  name: /srv/{service}
";
    let c = ok(text);
    let t = |kind, prefix: Option<&str>| TransformerConfig {
        kind,
        prefix: prefix.map(path),
    };
    assert_eq!(
        c.namers[0].transformers(),
        [
            t(TransformerKind::Port(4141), None),
            t(TransformerKind::Localhost, None),
            t(
                TransformerKind::SpecificHost("10.0.0.7".parse().unwrap()),
                Some("/pinned")
            ),
            t(
                TransformerKind::Replace(path("/$/inet/127.0.0.1/4140")),
                None
            ),
            t(TransformerKind::Const(path("/$/inet/127.0.0.1/4141")), None),
        ]
    );
    assert_eq!(
        c.namers[1],
        NamerConfig::Rewrite(RewriteNamerConfig {
            prefix: path("/apiToSrv"),
            pattern: prefix("/{service}/api"),
            name: "/srv/{service}".to_owned(),
            transformers: vec![],
        })
    );
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(
        json["namers"][0]["transformers"][2],
        serde_json::json!({"kind": "io.l5d.specificHost", "host": "10.0.0.7", "prefix": "/pinned"})
    );
    assert_eq!(json["namers"][1]["pattern"], "/{service}/api");
    let back = serde_json::to_string(&c).unwrap();
    assert_eq!(ok(&back), c, "the printed config parses back");
}

#[test]
fn bad_transformers_and_rewrite_namers_are_refused() {
    let text = "\
routers: [{protocol: http, servers: [{}]}]
namers:
- kind: io.l5d.fs
  rootDir: /srv/disco
  transformers:
  - {port: 4141}
  - {kind: io.l5d.port, port: 70000}
  - {kind: io.l5d.specificHost, host: not-an-ip}
  - {kind: io.l5d.replace, path: /#/io.l5d.fs/web}
  - {kind: io.l5d.const}
  - {kind: io.l5d.k8s.localnode}
  - {kind: io.l5d.portt, port: 1}
  - {kind: io.l5d.localhost, prefix: /}
- kind: io.l5d.rewrite
  pattern: /{service}/api
  name: /srv/{service}
- kind: io.l5d.rewrite
  prefix: /r
  pattern: svc
  name: srv/{x}
";
    assert_eq!(
        errors(text),
        [
            "linkerd.yaml:6:5: namers[0].transformers[0].kind: missing required key 'kind'",
            "linkerd.yaml:7:31: namers[0].transformers[1].port: expected an integer from 1 to 65535, found 70000",
            "linkerd.yaml:8:39: namers[0].transformers[2].host: expected an IP address such as 127.0.0.1 or 0.0.0.0, found 'not-an-ip'",
            "linkerd.yaml:9:34: namers[0].transformers[3].path: /#/io.l5d.fs/web is bound without the dtab or the configured namers, so it must be a /$/ path such as /$/inet/127.0.0.1/4140",
            "linkerd.yaml:10:5: namers[0].transformers[4].path: missing required key 'path'",
            "linkerd.yaml:11:12: namers[0].transformers[5].kind: transformer `io.l5d.k8s.localnode` is a Linkerd 1 feature Strait does not implement yet",
            "linkerd.yaml:12:12: namers[0].transformers[6].kind: unknown transformer kind 'io.l5d.portt'; known kinds: io.l5d.localhost, io.l5d.specificHost, io.l5d.port, io.l5d.replace, io.l5d.const",
            "linkerd.yaml:13:38: namers[0].transformers[7].prefix: a transformer prefix must not be empty",
            "linkerd.yaml:14:3: namers[1].prefix: The 'prefix' property is required for the io.l5d.rewrite namer.",
            "linkerd.yaml:19:12: namers[2].pattern: 'svc' is not a path pattern: it must start with '/'",
            "linkerd.yaml:20:9: namers[2].name: 'srv/{x}' is not a path (with its {captures} filled in): '/' expected but 's' found at '[s]rv/x'",
        ]
    );
}

#[test]
fn static_prefixes_take_path_matcher_captures_within_elements() {
    let text = "\
routers:
- protocol: http
  servers: [{}]
  client:
    kind: io.l5d.static
    configs:
    - prefix: /#/io.l5d.consul/{dc}-east/{service}
      connectTimeoutMs: 50
    - prefix: /%/io.l5d.port/4141/#/*
      connectTimeoutMs: 70
";
    let c = ok(text);
    let client = &c.routers[0].client;
    let timeout = |id: &str| client.params_for(&path(id)).connect_timeout;
    assert_eq!(
        timeout("/#/io.l5d.consul/us-east/web"),
        Duration::from_millis(50)
    );
    assert_eq!(
        timeout("/#/io.l5d.consul/dc1/web"),
        ClientParams::default().connect_timeout
    );
    assert_eq!(
        timeout("/%/io.l5d.port/4141/#/io.l5d.consul/us-east/web"),
        Duration::from_millis(70),
        "a transformed client is matched by its /%/ id"
    );
    assert_eq!(
        errors(&text.replace("{dc}-east", "{dc}@east")),
        [
            "linkerd.yaml:7:36: routers[0].client.configs[0].prefix: invalid prefix: end of input expected but '@' found at '/#/io.l5d.consul/{dc}[@]east/{service}'"
        ]
    );
}

#[test]
fn client_networks_are_networks_and_absent_means_the_hosts_default() {
    let text = "\
routers:
- protocol: http
  servers:
  - clientNetworks: [127.0.0.0/8, 172.17.0.1/16, \"::1\", \"fd00::/8\", 10.1.2.3]
  - port: 4141
";
    let c = ok(text);
    let shown: Vec<String> = c.routers[0].servers[0]
        .client_networks
        .iter()
        .flatten()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        shown,
        [
            "127.0.0.0/8",
            "172.17.0.0/16",
            "::1",
            "fd00::/8",
            "10.1.2.3"
        ],
        "host bits are cleared; a bare address is that address"
    );
    assert_eq!(
        c.routers[0].servers[1].client_networks, None,
        "not written: the host's default, read from its interfaces when served"
    );
    let json = serde_json::to_string_pretty(&c).unwrap();
    assert!(
        json.contains("\"clientNetworks\": [\n"),
        "/config.json shows it: {json}"
    );
    assert_eq!(ok(&json), c, "/config.json parses back to the same config");

    let bad = "\
routers:
- protocol: http
  servers:
  - clientNetworks: []
  - port: 4141
    clientNetworks: [10.0.0.0/33, localhost, 10.0.0.1:80, 0.0.0.0/0]
  - port: 4142
    clientNetworks: 10.0.0.0/8
";
    assert_eq!(
        errors(bad),
        [
            "linkerd.yaml:4:21: routers[0].servers[0].clientNetworks: an empty clientNetworks would refuse every connection; list the networks to serve (0.0.0.0/0 and ::/0 for any), or remove the key for the default (loopback, this host's addresses and its private attached subnets)",
            "linkerd.yaml:6:22: routers[0].servers[1].clientNetworks[0]: '10.0.0.0/33' is not a network (bad prefix length); write an IP address or a CIDR block: 172.17.0.0/16, 10.1.2.3, ::1, fd00::/8",
            "linkerd.yaml:6:35: routers[0].servers[1].clientNetworks[1]: 'localhost' is not a network (bad IP address); write an IP address or a CIDR block: 172.17.0.0/16, 10.1.2.3, ::1, fd00::/8",
            "linkerd.yaml:6:46: routers[0].servers[1].clientNetworks[2]: '10.0.0.1:80' is not a network (bad IP address); write an IP address or a CIDR block: 172.17.0.0/16, 10.1.2.3, ::1, fd00::/8",
            "linkerd.yaml:8:21: routers[0].servers[2].clientNetworks: expected a list, found '10.0.0.0/8'",
        ]
    );
}

#[test]
fn originator_and_experimental_are_router_keys() {
    let c = ok(
        "routers:\n- protocol: http\n  originator: true\n  experimental: true\n  servers: [{}]\n- protocol: http\n  label: in\n  experimental: false\n  servers: [{port: 4141}]\n",
    );
    assert!(c.routers[0].originator);
    assert!(!c.routers[1].originator, "Linkerd's default");
    assert_eq!(
        errors(
            "routers:\n- protocol: http\n  originator: 1\n  experimental: maybe\n  servers: [{}]\n"
        ),
        [
            "linkerd.yaml:3:15: routers[0].originator: expected true or false, found '1'",
            "linkerd.yaml:4:17: routers[0].experimental: expected true or false, found 'maybe'",
        ]
    );
}

#[test]
fn interpreters_are_read_with_their_defaults() {
    let text = "\
routers:
- protocol: http
  interpreter:
    kind: io.l5d.fs
    dtabFile: /etc/strait/dtab
    experimental: true
  servers: [{port: 4140}]
- protocol: http
  label: kv
  interpreter: {kind: io.l5d.consul.interpreter}
  servers: [{port: 4141}]
- protocol: http
  label: kv2
  interpreter:
    kind: io.l5d.consul.interpreter
    host: consul.local
    port: 8501
    pathPrefix: /dtabs
    namespace: web_1
    token: s3cret
    datacenter: dc2
    readConsistencyMode: stale
    writeConsistencyMode: consistent
    failFast: true
    backoff: {kind: jittered, minMs: 5, maxMs: 500}
  servers: [{port: 4142}]
- protocol: http
  label: plain
  interpreter: {kind: default}
  servers: [{port: 4143}]
";
    let cfg = ok(text);
    assert_eq!(
        cfg.routers[0].interpreter.kind,
        InterpreterKind::Fs {
            dtab_file: "/etc/strait/dtab".into()
        }
    );
    let InterpreterKind::Consul(d) = &cfg.routers[1].interpreter.kind else {
        panic!("{:?}", cfg.routers[1].interpreter)
    };
    assert_eq!(
        (
            d.host.as_str(),
            d.port,
            d.path_prefix.as_str(),
            d.namespace.as_str()
        ),
        ("localhost", 8500, "/namerd/dtabs", "default")
    );
    assert_eq!(
        (d.token.clone(), d.datacenter.clone(), d.fail_fast),
        (None, None, false)
    );
    assert_eq!(d.read_consistency_mode, ConsistencyMode::Default);
    assert_eq!(d.backoff, None);
    let InterpreterKind::Consul(c) = &cfg.routers[2].interpreter.kind else {
        panic!("{:?}", cfg.routers[2].interpreter)
    };
    assert_eq!(
        (
            c.host.as_str(),
            c.port,
            c.path_prefix.as_str(),
            c.namespace.as_str()
        ),
        ("consul.local", 8501, "/dtabs", "web_1")
    );
    assert_eq!(c.token.as_deref(), Some("s3cret"));
    assert_eq!(c.datacenter.as_deref(), Some("dc2"));
    assert_eq!(c.read_consistency_mode, ConsistencyMode::Stale);
    assert_eq!(c.write_consistency_mode, ConsistencyMode::Consistent);
    assert!(c.fail_fast);
    assert_eq!(
        c.backoff,
        Some(BackoffConfig::Jittered {
            min: Duration::from_millis(5),
            max: Duration::from_millis(500)
        })
    );
    let kv = strait::config::consul_kv_config(c).unwrap();
    assert_eq!(
        kv.url(None),
        "/v1/kv/dtabs/web_1?raw=true&dc=dc2&stale=true"
    );
    assert_eq!(cfg.routers[3].interpreter, InterpreterConfig::default());
    assert_eq!(default_router().interpreter, InterpreterConfig::default());
    // The token is redacted in /config.json like the namer's.
    let mut json = serde_json::to_value(&cfg).unwrap();
    strait::admin_security::redact(&mut json);
    assert_eq!(json["routers"][2]["interpreter"]["token"], "<redacted>");
    assert_eq!(
        json["routers"][2]["interpreter"]["kind"],
        "io.l5d.consul.interpreter"
    );
    assert_eq!(
        json["routers"][0]["interpreter"]["dtabFile"],
        "/etc/strait/dtab"
    );
}

#[test]
fn interpreter_mistakes_and_namerd_kinds_are_refused() {
    let text = "\
routers:
- protocol: http
  interpreter: {kind: io.l5d.namerd, dst: /$/inet/127.1/4100}
  servers: [{port: 4140}]
- protocol: http
  label: b
  interpreter: {kind: io.l5d.mesh}
  servers: [{port: 4141}]
- protocol: http
  label: c
  interpreter: {kind: io.l5d.namerd.http, experimental: true}
  servers: [{port: 4142}]
- protocol: http
  label: d
  interpreter: {kind: io.l5d.fs}
  servers: [{port: 4143}]
- protocol: http
  label: e
  interpreter: {kind: io.l5d.k8s.configMap}
  servers: [{port: 4144}]
- protocol: http
  label: f
  interpreter: {kind: io.l5d.consul.interpreter, namespace: a/b, pathPrefix: x, experimental: 3, tls: {}}
  servers: [{port: 4145}]
";
    assert_eq!(
        errors(text),
        [
            "linkerd.yaml:3:23: routers[0].interpreter.kind: interpreter `io.l5d.namerd` needs namerd, not supported: Strait has no Namerd; use `default`, `io.l5d.fs` or `io.l5d.consul.interpreter`",
            "linkerd.yaml:7:23: routers[1].interpreter.kind: interpreter `io.l5d.mesh` needs namerd, not supported: Strait has no Namerd; use `default`, `io.l5d.fs` or `io.l5d.consul.interpreter`",
            "linkerd.yaml:11:23: routers[2].interpreter.kind: interpreter `io.l5d.namerd.http` needs namerd, not supported: Strait has no Namerd; use `default`, `io.l5d.fs` or `io.l5d.consul.interpreter`",
            "linkerd.yaml:15:16: routers[3].interpreter.dtabFile: missing required key 'dtabFile'",
            "linkerd.yaml:19:23: routers[4].interpreter.kind: unknown interpreter kind 'io.l5d.k8s.configMap'; known kinds: default, io.l5d.fs, io.l5d.consul.interpreter",
            "linkerd.yaml:23:61: routers[5].interpreter.namespace: namespace 'a/b' must match [A-Za-z0-9_-]+",
            "linkerd.yaml:23:78: routers[5].interpreter.pathPrefix: pathPrefix 'x' must start with '/'",
            "linkerd.yaml:23:95: routers[5].interpreter.experimental: expected true or false, found '3'",
        ]
    );
}

#[test]
fn interpreter_transformers_are_read_in_order_and_shown() {
    use strait::config::TransformerConfig;
    use strait_naming::transform::TransformerKind;
    let text = "\
routers:
- protocol: http
  label: outgoing
  interpreter:
    kind: default
    transformers:
    - kind: io.l5d.port
      port: 4141
  servers: [{}]
- protocol: http
  label: incoming
  interpreter:
    kind: io.l5d.fs
    dtabFile: /etc/strait/dtab
    transformers: [{kind: io.l5d.localhost}]
  servers: [{port: 4141}]
";
    let c = ok(text);
    let t = |kind| TransformerConfig { kind, prefix: None };
    assert_eq!(
        c.routers[0].interpreter.transformers,
        [t(TransformerKind::Port(4141))]
    );
    assert_eq!(c.routers[0].interpreter.kind, InterpreterKind::Default);
    assert_eq!(
        c.routers[1].interpreter.transformers,
        [t(TransformerKind::Localhost)]
    );
    let json = serde_json::to_string_pretty(&c).unwrap();
    assert_eq!(ok(&json), c, "/config.json parses back to the same config");
    assert_eq!(
        errors(&text.replace("port: 4141\n  servers", "port: 0\n  servers")),
        [
            "linkerd.yaml:8:13: routers[0].interpreter.transformers[0].port: expected an integer from 1 to 65535, found 0"
        ]
    );
}

// ------------------------------------------------------------ telemeters

const ROUTER: &str = "routers:\n- protocol: http\n  servers: [{}]\n";

#[test]
fn telemeters_take_linkerds_keys_and_defaults() {
    let c = ok(&format!(
        "{ROUTER}telemetry:
- kind: io.l5d.recentRequests
  sampleRate: 0.5
- kind: io.l5d.tracelog
- kind: io.l5d.statsd
  experimental: true
- kind: io.l5d.influxdb
"
    ));
    assert_eq!(
        c.telemetry,
        vec![
            TelemeterConfig::RecentRequests {
                sample_rate: 0.5,
                capacity: 10,
            },
            TelemeterConfig::TraceLog {
                sample_rate: 1.0,
                level: "INFO".to_owned(),
            },
            TelemeterConfig::Statsd {
                prefix: "linkerd".to_owned(),
                hostname: "127.0.0.1".to_owned(),
                port: 8125,
                gauge_interval_ms: 10_000,
                sample_rate: 0.01,
            },
            TelemeterConfig::InfluxDb,
        ]
    );
    let c = ok(&format!(
        "{ROUTER}telemetry:
- kind: io.l5d.recentRequests
  sampleRate: 1
  capacity: 3
- kind: io.l5d.tracelog
  sampleRate: 7
  level: debug
- kind: io.l5d.statsd
  experimental: true
  prefix: l5d
  hostname: statsd.local
  port: 9125
  gaugeIntervalMs: 500
  sampleRate: 1.0
"
    ));
    assert_eq!(
        c.telemetry,
        vec![
            TelemeterConfig::RecentRequests {
                sample_rate: 1.0,
                capacity: 3,
            },
            TelemeterConfig::TraceLog {
                sample_rate: 1.0,
                level: "DEBUG".to_owned(),
            },
            TelemeterConfig::Statsd {
                prefix: "l5d".to_owned(),
                hostname: "statsd.local".to_owned(),
                port: 9125,
                gauge_interval_ms: 500,
                sample_rate: 1.0,
            },
        ],
        "tracelog's sampleRate is clamped, as Linkerd; its level any case"
    );
}

#[test]
fn telemeter_mistakes_are_refused_with_key_path_and_reason() {
    let text = format!(
        "{ROUTER}telemetry:
- kind: io.l5d.recentRequests
- kind: io.l5d.recentRequests
  sampleRate: 1.5
  capacity: 0
- kind: io.l5d.statsd
- kind: io.l5d.statsd
  experimental: false
  host: localhost
  sampleRate: -1
- kind: io.l5d.tracelog
  host: localhost
  level: LOUD
- kind: io.l5d.influxdb
- kind: io.l5d.influxdb
"
    );
    assert_eq!(
        errors(&text),
        [
            "linkerd.yaml:5:3: telemetry[0].sampleRate: missing required key 'sampleRate'",
            "linkerd.yaml:7:15: telemetry[1].sampleRate: sampleRate must be between 0.0 and 1.0",
            "linkerd.yaml:8:13: telemetry[1].capacity: expected an integer from 1 to 4294967295, found 0",
            "linkerd.yaml:9:3: telemetry[2]: The io.l5d.statsd telemeter is experimental and must be explicitly enabled by setting the `experimental' parameter to `true'.",
            "linkerd.yaml:11:17: telemetry[3].experimental: The io.l5d.statsd telemeter is experimental and must be explicitly enabled by setting the `experimental' parameter to `true'.",
            "linkerd.yaml:12:9: telemetry[3].host: io.l5d.statsd has no key 'host' (Linkerd's docs are wrong): the StatsD server's name is `hostname`",
            "linkerd.yaml:13:15: telemetry[3].sampleRate: sampleRate must be between 0.0 and 1.0",
            "linkerd.yaml:15:3: telemetry[4].host: unknown key 'host'; known keys: experimental, kind, level, sampleRate",
            "linkerd.yaml:16:10: telemetry[4].level: unknown log level 'LOUD'; known levels: ALL, CRITICAL, DEBUG, ERROR, FATAL, INFO, OFF, TRACE, WARNING",
            "linkerd.yaml:18:3: telemetry[6]: admin path /admin/metrics/influxdb is also served by telemetry[5]",
        ],
    );
}

//! The router's `client` and `service` blocks (Linkerd 1's "Client
//! Configuration" and "Service Configuration").
//!
//! Both are `io.l5d.global` (the default: parameters written in the block
//! itself) or `io.l5d.static` (`configs:`, a list of `{prefix, …params}`).
//! One reader per block reads the keys written as a patch (`None` for a
//! key not written): the global kind applies it to the defaults, the
//! static kind keeps one per prefix, applied in order by `params_for`
//! here and by the policy tables `lower` builds for the router.

use std::time::Duration;

use super::read::{
    Ctx, MapReader, boolean, integer, items, list, number, number_in, prefix, secs_1_to_60,
    u32_any, u32_positive, u64_any, u64_positive,
};
use super::schema::{H2_ENDPOINT_KEYS, h2_endpoint, h2_only, kind, unknown_kind};
use super::tree::{Node, Pos};
use super::types::{
    BackoffConfig, BudgetConfig, ClassifierKind, ClientConfig, ClientParams, ClientParamsPatch,
    ClientPrefixConfig, FailureAccrualConfig, GrpcCodeSet, H2EndpointConfig, LoadBalancerConfig,
    PoolConfig, Protocol, RetriesPatch, RetryBufferConfig, ServiceConfig, ServiceParams,
    ServiceParamsPatch, ServicePrefixConfig,
};

const CONFIG_KINDS: &[&str] = &["io.l5d.global", "io.l5d.static"];

/// Which of Linkerd's two `client`/`service` kinds a block is (`kind`,
/// default `io.l5d.global`); `None` (recorded) for any other.
fn config_kind(cx: &mut Ctx<'_>, r: &mut MapReader<'_>, what: &str) -> Option<bool> {
    let Some(node) = r.get("kind").cloned() else {
        // Absent or null: the default.
        return Some(false);
    };
    let kind_path = r.path_of("kind");
    let name = super::read::non_empty(cx, &node, &kind_path)?;
    match name.as_str() {
        "io.l5d.global" => Some(false),
        "io.l5d.static" => Some(true),
        k => {
            unknown_kind(cx, &node, &kind_path, what, k, CONFIG_KINDS);
            None
        }
    }
}

/// The `configs` items of a static block, each read with `item`.
fn static_configs<T>(
    cx: &mut Ctx<'_>,
    r: &mut MapReader<'_>,
    protocol: Protocol,
    item: fn(&mut Ctx<'_>, &Node, &str, Protocol) -> Option<T>,
) -> Vec<T> {
    let Some(node) = r.req(cx, "configs", |_, n, _| Some(n.clone())) else {
        return Vec::new();
    };
    let path = r.path_of("configs");
    items(cx, &node, &path, false)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(n, p)| item(cx, n, &p, protocol))
        .collect()
}

// --------------------------------------------------------------- client

/// `client:` of a `protocol` router; a bad block reads as the default (with
/// its errors recorded).
pub(crate) fn client(
    cx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    protocol: Protocol,
) -> ClientConfig {
    let Some(mut r) = MapReader::new(cx, node, path) else {
        return ClientConfig::default();
    };
    let config = match config_kind(cx, &mut r, "client") {
        Some(false) => {
            let mut params = ClientParams::default();
            client_params(cx, &mut r, protocol).apply_to(&mut params);
            ClientConfig::Global(params)
        }
        Some(true) => ClientConfig::Static {
            configs: static_configs(cx, &mut r, protocol, client_prefix_config),
        },
        None => return ClientConfig::default(),
    };
    r.finish(cx);
    config
}

fn client_prefix_config(
    cx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    protocol: Protocol,
) -> Option<ClientPrefixConfig> {
    let mut r = MapReader::new(cx, node, path)?;
    let prefix = r.req(cx, "prefix", prefix);
    let params = client_params(cx, &mut r, protocol);
    r.finish(cx);
    Some(ClientPrefixConfig {
        prefix: prefix?,
        params,
    })
}

/// The client parameters written in `r`.
fn client_params(cx: &mut Ctx<'_>, r: &mut MapReader<'_>, protocol: Protocol) -> ClientParamsPatch {
    let patch = ClientParamsPatch {
        load_balancer: r.opt(cx, "loadBalancer", load_balancer),
        failure_accrual: r.opt(cx, "failureAccrual", failure_accrual),
        requeue_budget: r.opt(cx, "requeueBudget", budget),
        host_connection_pool: match protocol {
            Protocol::Http => r.opt(cx, "hostConnectionPool", pool),
            Protocol::H2 => None,
        },
        request_attempt_timeout: r.opt(cx, "requestAttemptTimeoutMs", millis_positive),
        connect_timeout: r.opt(cx, "connectTimeoutMs", millis_positive),
        response_timeout: r.opt(cx, "responseTimeoutMs", millis_positive),
        tls: r
            .opt(cx, "tls", super::client_tls::client_tls)
            .map(Box::new),
        fail_fast: {
            let pos = r.get("failFast").map(|n| n.pos);
            let v = r.opt(cx, "failFast", boolean);
            if let (Some(true), Some(pos)) = (v, pos) {
                cx.error(
                    pos,
                    &r.path_of("failFast"),
                    "failFast: true is not supported yet (Strait never marks an endpoint dead on \
                     one connection failure: requeues and failure accrual cover that); remove it",
                );
            }
            v
        },
        h2: match protocol {
            Protocol::Http => H2EndpointConfig::default(),
            Protocol::H2 => h2_endpoint(cx, r),
        },
    };
    r.not_implemented(cx, &["clientSession", "socketOptions", "forwardClientCert"]);
    match protocol {
        Protocol::Http => r.refuse(cx, H2_ENDPOINT_KEYS, h2_only),
        Protocol::H2 => {
            r.refuse(cx, &["hostConnectionPool"], |_| {
                "an h2 client keeps one multiplexed connection per endpoint (as Linkerd's did); \
                 remove hostConnectionPool"
                    .to_owned()
            });
            r.refuse(cx, &["maxConcurrentStreamsPerConnection"], |key| {
                format!(
                    "unknown key '{key}' on a client (h2 servers only: a client follows what \
                     its endpoint advertises)"
                )
            });
        }
    }
    patch
}

/// A positive number of milliseconds.
fn millis_positive(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<Duration> {
    u64_positive(cx, node, path).map(Duration::from_millis)
}

const BALANCER_KINDS: &[&str] = &["p2c", "ewma", "roundRobin"];

fn load_balancer(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<LoadBalancerConfig> {
    let mut r = MapReader::new(cx, node, path)?;
    let (kind, kind_node) = kind(cx, &mut r)?;
    let kind_path = r.path_of("kind");
    let lb = match kind.as_str() {
        "p2c" => Some(LoadBalancerConfig::P2c {
            max_effort: r.or(cx, "maxEffort", u32_any, 5),
            enable_probation: r.or(cx, "enableProbation", boolean, false),
        }),
        "ewma" => Some(LoadBalancerConfig::Ewma {
            max_effort: r.or(cx, "maxEffort", u32_any, 5),
            decay_time: r
                .opt(cx, "decayTimeMs", millis_positive)
                .unwrap_or(Duration::from_millis(10_000)),
            enable_probation: r.or(cx, "enableProbation", boolean, false),
        }),
        "roundRobin" => Some(LoadBalancerConfig::RoundRobin {
            max_effort: r.or(cx, "maxEffort", u32_any, 5),
            enable_probation: r.or(cx, "enableProbation", boolean, false),
        }),
        k @ ("aperture" | "heap") => {
            // Read (and check) its options, so the only error left is
            // the kind itself.
            if k == "aperture" {
                let _ = r.opt(cx, "maxEffort", u32_any);
                let _ = r.opt(cx, "smoothWindowMs", u64_positive);
                let _ = r.opt(cx, "lowLoad", number);
                let _ = r.opt(cx, "highLoad", number);
                let _ = r.opt(cx, "minAperture", u32_positive);
            }
            let _ = r.opt(cx, "enableProbation", boolean);
            cx.error(
                kind_node.pos,
                &kind_path,
                format!(
                    "load balancer `{k}` is a Linkerd 1 feature Strait parses but does not \
                     support yet; use one of {}",
                    BALANCER_KINDS.join(", ")
                ),
            );
            None
        }
        k => {
            unknown_kind(
                cx,
                &kind_node,
                &kind_path,
                "load balancer",
                k,
                BALANCER_KINDS,
            );
            return None;
        }
    };
    r.finish(cx);
    lb
}

const ACCRUAL_KINDS: &[&str] = &[
    "io.l5d.consecutiveFailures",
    "io.l5d.successRate",
    "io.l5d.successRateWindowed",
    "none",
];

fn failure_accrual(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<FailureAccrualConfig> {
    let mut r = MapReader::new(cx, node, path)?;
    let (kind, kind_node) = kind(cx, &mut r)?;
    let success_rate = |cx: &mut Ctx<'_>, n: &Node, p: &str| number_in(cx, n, p, 0.0, 1.0, true);
    let fa = match kind.as_str() {
        "io.l5d.consecutiveFailures" => Some(FailureAccrualConfig::ConsecutiveFailures {
            failures: r.or(cx, "failures", u32_positive, 5),
            backoff: accrual_backoff(cx, &mut r),
        }),
        "io.l5d.successRate" => {
            let rate = r.req(cx, "successRate", success_rate);
            let requests = r.req(cx, "requests", u32_positive);
            let backoff = accrual_backoff(cx, &mut r);
            Some(FailureAccrualConfig::SuccessRate {
                success_rate: rate?,
                requests: requests?,
                backoff,
            })
        }
        "io.l5d.successRateWindowed" => {
            let rate = r.req(cx, "successRate", success_rate);
            let window = r.req(cx, "window", u64_positive);
            let backoff = accrual_backoff(cx, &mut r);
            Some(FailureAccrualConfig::SuccessRateWindowed {
                success_rate: rate?,
                window: Duration::from_secs(window?),
                backoff,
            })
        }
        "none" => {
            r.refuse(cx, &["backoff"], |_| {
                "`backoff` has no effect with failure accrual `none`; remove it".to_owned()
            });
            Some(FailureAccrualConfig::Disabled)
        }
        k => {
            let kind_path = r.path_of("kind");
            unknown_kind(
                cx,
                &kind_node,
                &kind_path,
                "failure accrual",
                k,
                ACCRUAL_KINDS,
            );
            return None;
        }
    };
    r.finish(cx);
    fa
}

/// A failure accrual policy's `backoff` (default jittered 5 s → 300 s).
fn accrual_backoff(cx: &mut Ctx<'_>, r: &mut MapReader<'_>) -> BackoffConfig {
    r.opt(cx, "backoff", backoff)
        .unwrap_or_else(FailureAccrualConfig::default_backoff)
}

const BACKOFF_KINDS: &[&str] = &["constant", "jittered"];

pub(super) fn backoff(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<BackoffConfig> {
    let mut r = MapReader::new(cx, node, path)?;
    let (kind, kind_node) = kind(cx, &mut r)?;
    let b = match kind.as_str() {
        "constant" => Some(BackoffConfig::Constant {
            delay: Duration::from_millis(r.or(cx, "ms", u64_any, 0)),
        }),
        "jittered" => {
            let min = r.req(cx, "minMs", u64_positive);
            let max_pos = r.get("maxMs").map(|n| n.pos);
            let max = r.req(cx, "maxMs", u64_positive);
            match (min, max, max_pos) {
                (Some(min), Some(max), Some(pos)) if max < min => {
                    cx.error(
                        pos,
                        &r.path_of("maxMs"),
                        format!("maxMs ({max}) must be at least minMs ({min})"),
                    );
                    None
                }
                (Some(min), Some(max), _) => Some(BackoffConfig::Jittered {
                    min: Duration::from_millis(min),
                    max: Duration::from_millis(max),
                }),
                _ => None,
            }
        }
        k => {
            let kind_path = r.path_of("kind");
            unknown_kind(cx, &kind_node, &kind_path, "backoff", k, BACKOFF_KINDS);
            return None;
        }
    };
    r.finish(cx);
    b
}

/// A retry budget (`requeueBudget`, `retries.budget`), Finagle's ranges.
fn budget(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<BudgetConfig> {
    let d = BudgetConfig::default();
    let mut r = MapReader::new(cx, node, path)?;
    let b = BudgetConfig {
        ttl: r
            .opt(cx, "ttlSecs", secs_1_to_60)
            .map_or(d.ttl, Duration::from_secs),
        min_retries_per_sec: r.or(cx, "minRetriesPerSec", u32_any, d.min_retries_per_sec),
        percent_can_retry: r.or(
            cx,
            "percentCanRetry",
            |cx, n, p| number_in(cx, n, p, 0.0, 1000.0, false),
            d.percent_can_retry,
        ),
    };
    r.finish(cx);
    Some(b)
}

fn pool(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<PoolConfig> {
    let mut r = MapReader::new(cx, node, path)?;
    let min_pos = r.get("minSize").map(|n| n.pos);
    let min_size = r.or(cx, "minSize", u32_any, 0);
    if let (true, Some(pos)) = (min_size > 0, min_pos) {
        cx.error(
            pos,
            &r.path_of("minSize"),
            "minSize above 0 is not supported yet: connections are opened on demand",
        );
    }
    let waiters_pos = r.get("maxWaiters").map(|n| n.pos);
    let max_pos: Option<Pos> = r.get("maxSize").map(|n| n.pos);
    let mut max_size = r.opt(cx, "maxSize", u32_positive);
    if let (Some(max), Some(pos)) = (max_size, max_pos)
        && max < min_size
    {
        cx.error(
            pos,
            &r.path_of("maxSize"),
            format!("maxSize ({max}) must be at least minSize ({min_size})"),
        );
        max_size = None;
    }
    let p = PoolConfig {
        min_size,
        max_size,
        idle_time: r.opt(cx, "idleTimeMs", u64_any).map(Duration::from_millis),
        max_waiters: r.opt(cx, "maxWaiters", u32_any),
    };
    if let (Some(_), Some(pos)) = (p.max_waiters, waiters_pos) {
        cx.error(
            pos,
            &r.path_of("maxWaiters"),
            "maxWaiters is not supported yet: with maxSize connections busy, requests wait for one without a bound on their number (Finagle's default), as long as their timeouts allow",
        );
    }
    r.finish(cx);
    Some(p)
}

// -------------------------------------------------------------- service

/// `service:` of a `protocol` router; a bad block reads as the default
/// (with its errors recorded).
pub(crate) fn service(
    cx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    protocol: Protocol,
) -> ServiceConfig {
    let default = || ServiceConfig::Global(ServiceParams::default_for(protocol));
    let Some(mut r) = MapReader::new(cx, node, path) else {
        return default();
    };
    let config = match config_kind(cx, &mut r, "service") {
        Some(false) => {
            let mut params = ServiceParams::default_for(protocol);
            service_params(cx, &mut r, protocol).apply_to(&mut params);
            ServiceConfig::Global(params)
        }
        Some(true) => ServiceConfig::Static {
            configs: static_configs(cx, &mut r, protocol, service_prefix_config),
        },
        None => return default(),
    };
    r.finish(cx);
    config
}

fn service_prefix_config(
    cx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    protocol: Protocol,
) -> Option<ServicePrefixConfig> {
    let mut r = MapReader::new(cx, node, path)?;
    let prefix = r.req(cx, "prefix", prefix);
    let params = service_params(cx, &mut r, protocol);
    r.finish(cx);
    Some(ServicePrefixConfig {
        prefix: prefix?,
        params,
    })
}

/// Why Strait refuses `retryBufferSize.responseBytes` and
/// `classificationTimeoutMs`.
const NO_RESPONSE_HOLD: &str = "Strait never holds a response back to classify it (Linkerd 1 \
                                delayed streamed responses up to classificationTimeoutMs for \
                                that); only requestBytes applies";

/// The service parameters written in `r`.
fn service_params(
    cx: &mut Ctx<'_>,
    r: &mut MapReader<'_>,
    protocol: Protocol,
) -> ServiceParamsPatch {
    let patch = ServiceParamsPatch {
        response_classifier: match (protocol, r.get("responseClassifier")) {
            (_, None) => None,
            (Protocol::Http, Some(n)) => classifier(cx, n, &r.path_of("responseClassifier")),
            (Protocol::H2, Some(n)) => h2_classifier(cx, n, &r.path_of("responseClassifier")),
        },
        retries: r.opt(cx, "retries", retries),
        total_timeout: r.opt(cx, "totalTimeoutMs", millis_positive),
        retry_buffer_size: match protocol {
            Protocol::Http => None,
            Protocol::H2 => r.opt(cx, "retryBufferSize", retry_buffer_size),
        },
    };
    match protocol {
        Protocol::Http => {
            r.refuse(cx, &["retryBufferSize", "classificationTimeoutMs"], h2_only);
        }
        Protocol::H2 => r.refuse(cx, &["classificationTimeoutMs"], |_| {
            format!("{NO_RESPONSE_HOLD}; remove classificationTimeoutMs")
        }),
    }
    patch
}

/// An h2 service's `retryBufferSize`.
fn retry_buffer_size(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<RetryBufferConfig> {
    let mut r = MapReader::new(cx, node, path)?;
    let b = RetryBufferConfig {
        request_bytes: r.or(
            cx,
            "requestBytes",
            u64_any,
            RetryBufferConfig::default().request_bytes,
        ),
    };
    r.refuse(cx, &["responseBytes"], |_| {
        format!("{NO_RESPONSE_HOLD}; remove responseBytes")
    });
    r.finish(cx);
    Some(b)
}

/// The h2 equivalent of an http classifier kind's name, and back.
fn other_family(kind: &str) -> Option<String> {
    if let Some(rest) = kind.strip_prefix("io.l5d.http.") {
        Some(format!("io.l5d.h2.{rest}"))
    } else {
        kind.strip_prefix("io.l5d.h2.")
            .filter(|rest| !rest.starts_with("grpc."))
            .map(|rest| format!("io.l5d.http.{rest}"))
    }
}

/// An http router's classifier.
fn classifier(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<ClassifierKind> {
    let mut r = MapReader::new(cx, node, path)?;
    let (kind, kind_node) = kind(cx, &mut r)?;
    let Some(c) = ClassifierKind::ALL.into_iter().find(|c| c.name() == kind) else {
        let known: Vec<&str> = ClassifierKind::ALL.iter().map(|c| c.name()).collect();
        let family = (
            "io.l5d.h2.",
            "h2",
            "an http router takes the io.l5d.http.* kinds",
        );
        unknown_classifier(cx, &kind_node, &r.path_of("kind"), &kind, &known, family);
        return None;
    };
    r.finish(cx);
    Some(c)
}

/// The error of a classifier kind this router does not take: one of the
/// other protocol's family (`family`: its prefix, its routers, what this
/// router takes), with the matching kind named, or an unknown one.
fn unknown_classifier(
    cx: &mut Ctx<'_>,
    kind_node: &Node,
    kind_path: &str,
    kind: &str,
    known: &[&str],
    (prefix, routers, takes): (&str, &str, &str),
) {
    if kind.starts_with(prefix) {
        let instead = other_family(kind)
            .filter(|k| known.contains(&k.as_str()))
            .map_or(String::new(), |k| format!("use `{k}`; "));
        cx.error(
            kind_node.pos,
            kind_path,
            format!(
                "response classifier `{kind}` is for {routers} routers; {instead}{takes}: {}",
                known.join(", ")
            ),
        );
    } else {
        unknown_kind(cx, kind_node, kind_path, "response classifier", kind, known);
    }
}

/// An h2 router's classifier: `io.l5d.h2.*`, the gRPC kinds with their
/// status code lists.
fn h2_classifier(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<ClassifierKind> {
    let mut r = MapReader::new(cx, node, path)?;
    let (kind, kind_node) = kind(cx, &mut r)?;
    let c = if let Some(c) = ClassifierKind::H2_ALL
        .into_iter()
        .find(|c| c.name() == kind)
    {
        Some(c)
    } else if let Some(i) = ClassifierKind::GRPC_NAMES.iter().position(|n| *n == kind) {
        let success = r
            .opt(cx, "successStatusCodes", success_codes)
            .unwrap_or(GrpcCodeSet::of(&[0]));
        let s = success;
        match i {
            0 => Some(ClassifierKind::GrpcDefault {
                success_status_codes: s,
            }),
            1 => Some(ClassifierKind::GrpcCompliant {
                success_status_codes: s,
            }),
            2 => Some(ClassifierKind::GrpcAlwaysRetryable {
                success_status_codes: s,
            }),
            3 => Some(ClassifierKind::GrpcNeverRetryable {
                success_status_codes: s,
            }),
            _ => r
                .req(cx, "retryableStatusCodes", grpc_codes)
                .map(|retryable| ClassifierKind::GrpcRetryableStatusCodes {
                    success_status_codes: s,
                    retryable_status_codes: retryable,
                }),
        }
    } else {
        let mut known: Vec<&str> = ClassifierKind::H2_ALL.iter().map(|c| c.name()).collect();
        known.extend(ClassifierKind::GRPC_NAMES);
        let family = (
            "io.l5d.http.",
            "http",
            "an h2 router takes the io.l5d.h2.* kinds",
        );
        unknown_classifier(cx, &kind_node, &r.path_of("kind"), &kind, &known, family);
        return None;
    };
    r.finish(cx);
    c
}

/// A list of gRPC status codes (0 to 16).
fn grpc_codes(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<GrpcCodeSet> {
    let codes = list(cx, node, path, |cx, n, p| {
        integer(cx, n, p, 0, i128::from(GrpcCodeSet::MAX_CODE)).and_then(|c| u32::try_from(c).ok())
    })?;
    Some(GrpcCodeSet::of(&codes))
}

/// `successStatusCodes`: gRPC codes, 0 (OK) among them.
fn success_codes(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<GrpcCodeSet> {
    let before = cx.errors.len();
    let set = grpc_codes(cx, node, path)?;
    if cx.errors.len() != before {
        return None;
    }
    if !set.contains(0) {
        cx.error(
            node.pos,
            path,
            "successStatusCodes must include 0 (OK): a gRPC call that succeeded is a success",
        );
        return None;
    }
    Some(set)
}

fn retries(cx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<RetriesPatch> {
    let mut r = MapReader::new(cx, node, path)?;
    let p = RetriesPatch {
        budget: r.opt(cx, "budget", budget),
        backoff: r.opt(cx, "backoff", backoff),
    };
    r.finish(cx);
    Some(p)
}

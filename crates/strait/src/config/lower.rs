//! Lowering: the checked config's types into the types the router, the
//! balancer and the namers run on, once per load or reload.
//!
//! Everything here is a conversion of values the readers already checked
//! (ranges, kinds, header names), so it cannot fail on them; the only
//! errors left are the ones that need the outside world (opening an
//! `httpAccessLog`, reading a client `tls` block's PEM files). Defaults come from the config's `Default` impls, which
//! in turn read the router's and the balancer's constants where there is
//! one (the retry budget, the connect timeout), so each default is written
//! once.

use http::HeaderName;
use strait_balancer::{FailureAccrual, LoadBalancer};
use strait_router::accesslog::{AccessLog, LineOptions};
use strait_router::identify::{Field, Identifier};
use strait_router::policy::{
    BudgetParams, ClientPolicy, ClientPolicyPatch, DEFAULT_REQUEST_BUFFER_BYTES, Policies,
    PolicyTable, PoolPolicy, ServicePolicy, ServicePolicyPatch,
};
use strait_router::retry::{Classifier, GrpcClassifier, GrpcCodes, RetryBackoff};
use strait_router::stats::{Registry, Scope};
use strait_router::tls_client::{ClientTls, TlsClientTemplate};
use strait_router::{BindingLimits, H2Settings, Protocol, RouterParams};

use super::{
    BackoffConfig, BudgetConfig, ClassifierKind, ClientConfig, ClientParams, ClientParamsPatch,
    ClientTlsConfig, ConsistencyMode, ConsulConfig, DEFAULT_MAX_ERR_RESPONSE_KB,
    DEFAULT_MAX_HEADERS_KB, DEFAULT_MAX_INITIAL_LINE_KB, FailureAccrualConfig, GrpcCodeSet,
    H2EndpointConfig, HealthStatus, IdentifierConfig, LoadBalancerConfig, PoolConfig,
    Protocol as ConfigProtocol, RouterConfig, ServerConfig, ServiceConfig, ServiceParams,
    ServiceParamsPatch,
};

/// The router's settings, from its (already checked) config. Opens the
/// `httpAccessLog` file, if any, and registers its `dropped` counter.
pub fn router_params(rc: &RouterConfig, registry: &Registry) -> Result<RouterParams, String> {
    let identifiers = identifiers(rc)?;
    let max_depth = rc
        .servers
        .iter()
        .map(|s| s.max_call_depth)
        .max()
        .unwrap_or(1000);
    let access_log = access_log(rc, registry)?;
    Ok(RouterParams {
        protocol: match rc.protocol {
            ConfigProtocol::Http => Protocol::Http1,
            ConfigProtocol::H2 => Protocol::H2,
        },
        label: rc.label.clone(),
        dtab: rc.dtab.clone(),
        dst_prefix: rc.dst_prefix.clone(),
        identifiers,
        binding_timeout: rc.binding_timeout,
        binding_limits: BindingLimits {
            max_nodes: rc.binding_limits.max_nodes as usize,
            max_leaves: rc.binding_limits.max_leaves as usize,
            max_dtab_header_bytes: rc.binding_limits.max_dtab_header_bytes as usize,
        },
        // Each binding holds its bound tree and bound names, so `trees` and
        // `bounds` bound the same cache as `paths`: the smallest wins.
        cache_capacity: {
            let bc = &rc.binding_cache;
            (bc.paths.min(bc.trees).min(bc.bounds) as usize).max(1)
        },
        client_capacity: (rc.binding_cache.clients as usize).max(1),
        idle_ttl: rc.binding_cache.idle_ttl,
        max_headers_bytes: rc.max_headers_kb.unwrap_or(DEFAULT_MAX_HEADERS_KB) as usize * 1024,
        max_initial_line_bytes: rc
            .max_initial_line_kb
            .unwrap_or(DEFAULT_MAX_INITIAL_LINE_KB) as usize
            * 1024,
        max_err_bytes: rc
            .max_err_response_kb
            .unwrap_or(DEFAULT_MAX_ERR_RESPONSE_KB) as usize
            * 1024,
        max_call_depth: max_depth,
        access_log,
        policies: policies(rc)?,
        interpreter: None,
        telemeters: None,
    })
}

/// The router's `identifier` list.
fn identifiers(rc: &RouterConfig) -> Result<Vec<Identifier>, String> {
    if rc.protocol == ConfigProtocol::H2 {
        return h2_identifiers(rc);
    }
    // The config checked header names are HTTP tokens already.
    let header = |h: &str| {
        HeaderName::from_bytes(h.as_bytes())
            .map_err(|e| format!("router '{}': header {h:?}: {e}", rc.label))
    };
    rc.identifiers
        .iter()
        .map(|i| {
            Ok(match i {
                IdentifierConfig::HeaderToken { header: h } => {
                    Identifier::HeaderToken { header: header(h)? }
                }
                IdentifierConfig::MethodAndHost { http_uri_in_dst } => Identifier::MethodAndHost {
                    uri_in_dst: *http_uri_in_dst,
                },
                IdentifierConfig::Path { segments, consume } => Identifier::Path {
                    segments: *segments as usize,
                    consume: *consume,
                },
                IdentifierConfig::Header { header: h } => Identifier::Header { header: header(h)? },
                IdentifierConfig::Static { path } => Identifier::Static { path: path.clone() },
                IdentifierConfig::HeaderPath { .. } => {
                    return Err(format!(
                        "router '{}': io.l5d.header.path is for h2 routers",
                        rc.label
                    ));
                }
            })
        })
        .collect()
}

/// An h2 router's `identifier` list: on a header or pseudo-header.
fn h2_identifiers(rc: &RouterConfig) -> Result<Vec<Identifier>, String> {
    let field =
        |h: &str| Field::parse(h).map_err(|e| format!("router '{}': header: {e}", rc.label));
    rc.identifiers
        .iter()
        .map(|i| {
            Ok(match i {
                IdentifierConfig::HeaderToken { header } => Identifier::Token {
                    field: field(header)?,
                },
                IdentifierConfig::HeaderPath { header, segments } => Identifier::HeaderPath {
                    field: field(header)?,
                    segments: segments.map(|n| n as usize),
                },
                other => {
                    return Err(format!(
                        "router '{}': identifier {other:?} is for http routers",
                        rc.label
                    ));
                }
            })
        })
        .collect()
}

/// An h2 server's or client's HTTP/2 settings.
fn h2_settings(c: &H2EndpointConfig) -> H2Settings {
    H2Settings {
        initial_stream_window: c.initial_stream_window_bytes,
        max_frame: c.max_frame_bytes,
        header_table: c.header_table_bytes,
        max_header_list: c.max_header_list_bytes,
        max_concurrent_streams: None,
    }
}

/// A server's HTTP/2 settings (all `None` on an http router's).
pub fn server_h2(sc: &ServerConfig) -> H2Settings {
    H2Settings {
        max_concurrent_streams: sc.max_concurrent_streams_per_connection,
        ..h2_settings(&sc.h2)
    }
}

/// `httpAccessLog` (or `h2AccessLog`), opened, with its
/// `rt/<label>/access_log/dropped` counter.
fn access_log(rc: &RouterConfig, registry: &Registry) -> Result<Option<AccessLog>, String> {
    let Some((key, path)) = rc.access_log() else {
        return Ok(None);
    };
    // The router's scope: Prometheus lifts it into the `rt` label.
    let dropped = registry.counter(
        &Scope::Router {
            router: rc.label.as_str().into(),
        },
        "access_log/dropped",
    );
    let o = &rc.access_log_options;
    let line = LineOptions {
        format: o.format,
        h2: rc.protocol == ConfigProtocol::H2,
    };
    AccessLog::open(path, o.file, line, dropped)
        .map(Some)
        .map_err(|e| {
            format!(
                "router '{}': cannot open {key} {}: {e}",
                rc.label,
                path.display()
            )
        })
}

/// The router's `client` and `service` blocks as policy tables: the
/// global parameters, or the defaults plus one patch per static item.
/// Fails when a client `tls` block's files cannot be loaded.
pub fn policies(rc: &RouterConfig) -> Result<Policies, String> {
    let h2 = rc.protocol == ConfigProtocol::H2;
    let client = match &rc.client {
        ClientConfig::Global(params) => {
            PolicyTable::global(client_policy(params, h2, &rc.label, "client.tls")?)
        }
        ClientConfig::Static { configs } => PolicyTable {
            base: client_policy(&ClientParams::default(), h2, &rc.label, "client.tls")?,
            patches: configs
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let key = format!("client.configs[{i}].tls");
                    Ok((c.prefix.clone(), client_patch(&c.params, &rc.label, &key)?))
                })
                .collect::<Result<_, String>>()?,
        },
    };
    let service = match &rc.service {
        ServiceConfig::Global(params) => PolicyTable::global(service_policy(params)),
        ServiceConfig::Static { configs } => PolicyTable {
            base: service_policy(&ServiceParams::default_for(rc.protocol)),
            patches: configs
                .iter()
                .map(|c| (c.prefix.clone(), service_patch(&c.params)))
                .collect(),
        },
    };
    Ok(Policies { client, service })
}

/// A client `tls` block loaded (`None`: `enabled: false`); errors and the
/// `disableValidation` warning name the router and the key.
fn tls(t: &ClientTlsConfig, label: &str, key: &str) -> Result<Option<TlsClientTemplate>, String> {
    if !t.enabled {
        return Ok(None);
    }
    if t.disable_validation {
        tracing::warn!(
            router = label,
            key,
            "disableValidation: true: backends' certificates are NOT verified; anyone on the \
             path can read and change this traffic"
        );
    }
    TlsClientTemplate::load(&t.spec())
        .map(Some)
        .map_err(|e| format!("router '{label}': {key}.{e}"))
}

/// A failure accrual `backoff`: Linkerd's unwritten default is its own kind.
fn backoff(b: &BackoffConfig) -> strait_balancer::Backoff {
    // Linkerd's unwritten default (5 s -> 300 s) is Finagle's equal jitter;
    // a written `kind: jittered` is decorrelated jitter.
    if *b == FailureAccrualConfig::default_backoff() {
        return strait_balancer::Backoff::default();
    }
    match *b {
        BackoffConfig::Constant { delay } => strait_balancer::Backoff::Constant(delay),
        BackoffConfig::Jittered { min, max } => strait_balancer::Backoff::Jittered { min, max },
    }
}

/// A retry budget (`requeueBudget`, `retries.budget`).
fn budget(b: &BudgetConfig) -> BudgetParams {
    BudgetParams {
        ttl: b.ttl,
        min_per_sec: b.min_retries_per_sec,
        percent_can_retry: b.percent_can_retry,
    }
}

fn load_balancer(lb: &LoadBalancerConfig) -> LoadBalancer {
    match *lb {
        LoadBalancerConfig::P2c { max_effort, .. } => LoadBalancer::P2c { max_effort },
        LoadBalancerConfig::Ewma {
            max_effort,
            decay_time,
            ..
        } => LoadBalancer::Ewma {
            max_effort,
            decay: decay_time,
        },
        LoadBalancerConfig::RoundRobin { max_effort, .. } => {
            LoadBalancer::RoundRobin { max_effort }
        }
    }
}

fn failure_accrual(fa: &FailureAccrualConfig) -> FailureAccrual {
    match fa {
        FailureAccrualConfig::ConsecutiveFailures {
            failures,
            backoff: b,
        } => FailureAccrual::ConsecutiveFailures {
            failures: *failures,
            backoff: backoff(b),
        },
        FailureAccrualConfig::SuccessRate {
            success_rate,
            requests,
            backoff: b,
        } => FailureAccrual::SuccessRate {
            success_rate: *success_rate,
            requests: *requests,
            backoff: backoff(b),
        },
        FailureAccrualConfig::SuccessRateWindowed {
            success_rate,
            window,
            backoff: b,
        } => FailureAccrual::SuccessRateWindowed {
            success_rate: *success_rate,
            window: *window,
            backoff: backoff(b),
        },
        FailureAccrualConfig::Disabled => FailureAccrual::None,
    }
}

fn pool(p: &PoolConfig) -> PoolPolicy {
    PoolPolicy {
        max_size: p.max_size.map(|n| n as usize),
        idle_timeout: p.idle_time,
    }
}

/// A client's parameters as the router's policy (`h2`: an h2 router's
/// client, which speaks HTTP/2; `key`: where its `tls` is, for errors).
fn client_policy(
    p: &ClientParams,
    h2: bool,
    label: &str,
    key: &str,
) -> Result<ClientPolicy, String> {
    let pool = pool(&p.host_connection_pool);
    let tls: Option<ClientTls> = match &p.tls {
        Some(t) => tls(t, label, key)?.map(|t| t.resolve(&Default::default())),
        None => None,
    };
    Ok(ClientPolicy {
        balancer: load_balancer(&p.load_balancer),
        accrual: failure_accrual(&p.failure_accrual),
        requeue_budget: budget(&p.requeue_budget),
        attempt_timeout: p.request_attempt_timeout,
        connect_timeout: p.connect_timeout,
        response_timeout: p.response_timeout,
        pool_max_size: pool.max_size,
        pool_idle_timeout: pool.idle_timeout,
        tls,
        h2: h2.then(|| h2_settings(&p.h2)),
    })
}

/// The keys a static `client` item writes (`failFast` is only ever
/// false: `true` is refused when the config is read).
fn client_patch(
    p: &ClientParamsPatch,
    label: &str,
    key: &str,
) -> Result<ClientPolicyPatch, String> {
    Ok(ClientPolicyPatch {
        balancer: p.load_balancer.as_ref().map(load_balancer),
        accrual: p.failure_accrual.as_ref().map(failure_accrual),
        requeue_budget: p.requeue_budget.as_ref().map(budget),
        attempt_timeout: p.request_attempt_timeout,
        connect_timeout: p.connect_timeout,
        response_timeout: p.response_timeout,
        pool: p.host_connection_pool.as_ref().map(pool),
        tls: p.tls.as_ref().map(|t| tls(t, label, key)).transpose()?,
        h2: h2_settings(&p.h2),
    })
}

fn classifier(c: ClassifierKind) -> Classifier {
    let grpc = |success: GrpcCodeSet, retryable: GrpcCodes, compliant: bool| {
        Classifier::Grpc(GrpcClassifier {
            success: GrpcCodes::of(&success.codes()),
            retryable,
            compliant,
        })
    };
    let default_retryable = GrpcClassifier::default_kind().retryable;
    match c {
        ClassifierKind::NonRetryable5XX | ClassifierKind::H2NonRetryable5XX => {
            Classifier::NonRetryable5XX
        }
        ClassifierKind::RetryableRead5XX | ClassifierKind::H2RetryableRead5XX => {
            Classifier::RetryableRead5XX
        }
        ClassifierKind::RetryableIdempotent5XX | ClassifierKind::H2RetryableIdempotent5XX => {
            Classifier::RetryableIdempotent5XX
        }
        ClassifierKind::RetryableAll5XX | ClassifierKind::H2RetryableAll5XX => {
            Classifier::RetryableAll5XX
        }
        ClassifierKind::AllSuccessful | ClassifierKind::H2AllSuccessful => {
            Classifier::AllSuccessful
        }
        ClassifierKind::GrpcDefault {
            success_status_codes: s,
        } => grpc(s, default_retryable, false),
        ClassifierKind::GrpcCompliant {
            success_status_codes: s,
        } => grpc(s, default_retryable, true),
        ClassifierKind::GrpcAlwaysRetryable {
            success_status_codes: s,
        } => grpc(s, GrpcCodes::ALL, false),
        ClassifierKind::GrpcNeverRetryable {
            success_status_codes: s,
        } => grpc(s, GrpcCodes::of(&[]), false),
        ClassifierKind::GrpcRetryableStatusCodes {
            success_status_codes: s,
            retryable_status_codes: r,
        } => grpc(s, GrpcCodes::of(&r.codes()), false),
    }
}

fn retry_backoff(b: &BackoffConfig) -> RetryBackoff {
    match *b {
        BackoffConfig::Constant { delay } => RetryBackoff::Constant(delay),
        BackoffConfig::Jittered { min, max } => RetryBackoff::Jittered { min, max },
    }
}

/// A service's parameters as the router's policy.
fn service_policy(p: &ServiceParams) -> ServicePolicy {
    ServicePolicy {
        classifier: classifier(p.response_classifier),
        budget: budget(&p.retries.budget),
        backoff: retry_backoff(&p.retries.backoff),
        total_timeout: p.total_timeout,
        request_buffer_bytes: p
            .retry_buffer_size
            .map_or(DEFAULT_REQUEST_BUFFER_BYTES, |b| b.request_bytes),
    }
}

/// The keys a static `service` item writes; `retries.budget` and
/// `retries.backoff` separately.
fn service_patch(p: &ServiceParamsPatch) -> ServicePolicyPatch {
    let retries = p.retries.as_ref();
    ServicePolicyPatch {
        classifier: p.response_classifier.map(classifier),
        budget: retries.and_then(|r| r.budget.as_ref()).map(budget),
        backoff: retries.and_then(|r| r.backoff.as_ref()).map(retry_backoff),
        total_timeout: p.total_timeout,
        request_buffer_bytes: p.retry_buffer_size.map(|b| b.request_bytes),
    }
}

/// The Consul namer's or interpreter's `tls`, loaded (`None`: absent or
/// `enabled: false`); the name is `commonName`, else the agent's `host`.
pub fn consul_tls(
    t: Option<&ClientTlsConfig>,
    host: &str,
) -> Result<Option<strait_namer_consul::ConsulTls>, String> {
    let Some(t) = t.filter(|t| t.enabled) else {
        return Ok(None);
    };
    if t.disable_validation {
        tracing::warn!(
            host,
            "Consul tls has disableValidation: true: the agent's certificate is NOT verified"
        );
    }
    let template = TlsClientTemplate::load(&t.spec()).map_err(|e| format!("tls.{e}"))?;
    Ok(Some(strait_namer_consul::ConsulTls {
        config: template.config(),
        name: template.server_name(host).map_err(|e| format!("tls.{e}"))?,
        fingerprint: template.fingerprint(),
    }))
}

/// The namer's settings from `linkerd.yaml`'s (already checked) values;
/// fails when its `tls` files cannot be loaded.
pub fn consul_config(c: &ConsulConfig) -> Result<strait_namer_consul::ConsulConfig, String> {
    use strait_namer_consul::{Consistency, HealthStatus as H};
    Ok(strait_namer_consul::ConsulConfig {
        host: c.host.clone(),
        port: c.port,
        include_tag: c.include_tag,
        use_health_check: c.use_health_check,
        health_statuses: c
            .health_statuses
            .iter()
            .map(|s| match s {
                HealthStatus::Passing => H::Passing,
                HealthStatus::Warning => H::Warning,
                HealthStatus::Critical => H::Critical,
                HealthStatus::Maintenance => H::Maintenance,
            })
            .collect(),
        token: c.token.clone(),
        consistency: match c.consistency_mode {
            ConsistencyMode::Default => Consistency::Default,
            ConsistencyMode::Stale => Consistency::Stale,
            ConsistencyMode::Consistent => Consistency::Consistent,
        },
        fail_fast: c.fail_fast,
        prefer_service_address: c.prefer_service_address,
        weights: c
            .weights
            .iter()
            .map(|w| (w.tag.clone(), w.weight))
            .collect(),
        transfer_metadata: c.transfer_metadata,
        set_host: c.set_host,
        max_watches: c.max_watches as usize,
        watch_idle_ttl: c.watch_idle_ttl,
        tls: consul_tls(c.tls.as_deref(), &c.host)?,
        ..strait_namer_consul::ConsulConfig::default()
    })
}

#[cfg(test)]
#[path = "lower_tests.rs"]
mod tests;

//! `strait run`: from a checked `linkerd.yaml` to listening routers and the
//! admin server, until SIGTERM, SIGINT or `POST /admin/shutdown`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::HeaderName;
use strait_dtab::Path;
use strait_naming::fs::FsNamer;
use strait_naming::inet::InetResolver;
use strait_naming::{Interpreter, Namer};
use strait_router::accesslog::AccessLog;
use strait_router::identify::Identifier;
use strait_router::server::Server;
use strait_router::stats::{Registry, Scope};
use strait_router::{Router, RouterParams, ServerParams};
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::admin::{AdminState, NamerEntry};
use crate::config::{
    self, BackoffConfig, BudgetConfig, ClassifierKind, ClientParams, Config, FailureAccrualConfig,
    IdentifierConfig, LoadBalancerConfig, NamerConfig, RouterConfig, ServiceParams,
    TelemeterConfig,
};
use strait_balancer::{FailureAccrual, LoadBalancer};
use strait_router::policy::{BudgetParams, ClientPolicy, Policies, ServicePolicy};
use strait_router::retry::{Backoff as RetryBackoff, Classifier};

/// Loads `path`, serves it, and returns when shut down (exit status 0), or
/// with the reason it could not start.
pub async fn run(path: &std::path::Path) -> Result<(), String> {
    // Before anything is announced: a SIGTERM that arrives right after the
    // listeners are reported must be a graceful shutdown, not the default
    // action (death).
    let signals = Signals::install();
    let cfg = config::load(path).map_err(|errs| {
        let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
        format!(
            "{} problem(s) in the configuration:\n{}",
            lines.len(),
            lines.join("\n")
        )
    })?;
    if cfg.usage.is_some() {
        tracing::info!("`usage` is accepted and ignored: Strait reports nothing to anyone");
    }

    let registry = Registry::default();
    let namers = build_namers(&cfg)?;
    let interp = Interpreter::new(
        namers
            .iter()
            .map(|n| (n.prefix.clone(), Arc::clone(&n.namer)))
            .collect(),
        InetResolver::default(),
    );

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let grace = cfg.admin.shutdown_grace;
    let mut tasks = JoinSet::new();
    let mut routers = Vec::new();
    for rc in &cfg.routers {
        let router = Router::new(
            router_params(rc, &registry)?,
            interp.clone(),
            registry.clone(),
        );
        let swap = Arc::new(ArcSwap::from(Arc::clone(&router)));
        for sc in &rc.servers {
            let want = SocketAddr::new(sc.ip, sc.port);
            let listener = TcpListener::bind(want)
                .await
                .map_err(|e| format!("router '{}': cannot listen on {want}: {e}", rc.label))?;
            let local = listener.local_addr().map_err(|e| e.to_string())?;
            let params = ServerParams {
                label: format!("{}/{}", local.ip(), local.port()),
                clear_context: sc.clear_context,
                add_forwarded: sc.add_forwarded_header.is_some(),
                local,
            };
            let head = (rc.max_headers_kb as usize + rc.max_initial_line_kb as usize) * 1024;
            let server = Server::new(
                params,
                Arc::clone(&swap),
                &registry,
                sc.max_concurrent_requests,
                head,
            );
            println!("strait: router '{}' listening on {local}", rc.label);
            tasks.spawn(server.serve(listener, shutdown_rx.clone(), grace));
        }
        tasks.spawn(expire_idle(Arc::clone(&router), shutdown_rx.clone()));
        routers.push(swap);
    }

    let prometheus = cfg
        .telemetry
        .iter()
        .map(|t| match t {
            TelemeterConfig::Prometheus { path, prefix } => (path.clone(), prefix.clone()),
        })
        .next();
    let admin_addr = SocketAddr::new(cfg.admin.ip, cfg.admin.port);
    let admin_listener = TcpListener::bind(admin_addr)
        .await
        .map_err(|e| format!("admin: cannot listen on {admin_addr}: {e}"))?;
    let admin_local = admin_listener.local_addr().map_err(|e| e.to_string())?;
    let state = AdminState {
        registry: registry.clone(),
        routers,
        namers,
        config_json: serde_json::to_value(&cfg).unwrap_or_default(),
        prometheus,
        shutdown: shutdown_tx.clone(),
    };
    tasks.spawn(crate::admin::serve(
        admin_listener,
        Arc::new(ArcSwap::from_pointee(state)),
        shutdown_rx.clone(),
    ));
    println!("strait: admin listening on {admin_local}");
    tracing::info!(
        routers = cfg.routers.len(),
        namers = cfg.namers.len(),
        "strait is serving"
    );

    signals.wait_for_shutdown(shutdown_tx, shutdown_rx).await;
    tracing::info!(
        grace_ms = grace.as_millis() as u64,
        "shutting down: draining in-flight requests"
    );
    // Servers stop accepting at once and drain within the grace period.
    let _ = tokio::time::timeout(grace + Duration::from_millis(500), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

/// SIGTERM and SIGINT, installed once at start.
struct Signals(Option<(Signal, Signal)>);

impl Signals {
    fn install() -> Signals {
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Signals(Some((term, int))),
            _ => {
                tracing::warn!(
                    "cannot install signal handlers; only POST /admin/shutdown stops strait"
                );
                Signals(None)
            }
        }
    }

    /// Waits for SIGTERM, SIGINT or a shutdown request from the admin
    /// server; a second signal exits at once.
    async fn wait_for_shutdown(self, tx: watch::Sender<bool>, mut rx: watch::Receiver<bool>) {
        let Some((mut term, mut int)) = self.0 else {
            let _ = rx.wait_for(|v| *v).await;
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM"),
            _ = int.recv() => tracing::info!("SIGINT"),
            _ = rx.wait_for(|v| *v) => tracing::info!("shutdown requested on the admin server"),
        }
        let _ = tx.send(true);
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::warn!("second signal: exiting now");
            std::process::exit(1);
        });
    }
}

async fn expire_idle(router: Arc<Router>, mut shutdown: watch::Receiver<bool>) {
    let every =
        (router.params().idle_ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => router.expire_idle(),
            _ = shutdown.wait_for(|v| *v) => return,
        }
    }
}

fn build_namers(cfg: &Config) -> Result<Vec<NamerEntry>, String> {
    let mut out = Vec::new();
    for n in &cfg.namers {
        let prefix: Path = n.full_prefix();
        let (kind, namer): (&str, Arc<dyn Namer>) = match n {
            NamerConfig::Fs(fs) => (
                "io.l5d.fs",
                Arc::new(
                    FsNamer::new(fs.root_dir.clone())
                        .map_err(|e| format!("namer {prefix}: {e}"))?,
                ),
            ),
            NamerConfig::Consul(_) => {
                return Err(format!(
                    "namer {prefix}: io.l5d.consul is accepted by `strait check` but cannot serve yet: \
                     the Consul namer is not built into this version of Strait"
                ));
            }
        };
        out.push(NamerEntry {
            prefix,
            kind: kind.to_owned(),
            namer,
        });
    }
    Ok(out)
}

fn router_params(rc: &RouterConfig, registry: &Registry) -> Result<RouterParams, String> {
    // The config checked header names are HTTP tokens already.
    let header = |h: &str| {
        HeaderName::from_bytes(h.as_bytes())
            .map_err(|e| format!("router '{}': header {h:?}: {e}", rc.label))
    };
    let identifiers = rc
        .identifiers
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
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let max_depth = rc
        .servers
        .iter()
        .map(|s| s.max_call_depth)
        .max()
        .unwrap_or(1000);
    let access_log = match &rc.http_access_log {
        None => None,
        Some(path) => {
            let dropped = registry.counter(
                &Scope::Root(format!("rt/{}/access_log", rc.label)),
                "dropped",
            );
            Some(AccessLog::open(path.clone(), dropped).map_err(|e| {
                format!(
                    "router '{}': cannot open httpAccessLog {}: {e}",
                    rc.label,
                    path.display()
                )
            })?)
        }
    };
    Ok(RouterParams {
        label: rc.label.clone(),
        dtab: rc.dtab.clone(),
        dst_prefix: rc.dst_prefix.clone(),
        identifiers,
        binding_timeout: rc.binding_timeout,
        cache_capacity: (rc.binding_cache.paths as usize).max(1),
        idle_ttl: rc.binding_cache.idle_ttl,
        max_headers_bytes: rc.max_headers_kb as usize * 1024,
        max_err_bytes: rc.max_err_response_kb as usize * 1024,
        max_call_depth: max_depth,
        access_log,
        policies: policies(rc),
    })
}

/// The router's `client` and `service` blocks as policies resolved by name.
fn policies(rc: &RouterConfig) -> Policies {
    let client = rc.client.clone();
    let service = rc.service.clone();
    Policies {
        client: Arc::new(move |id: &Path| client_policy(&client.params_for(id))),
        service: Arc::new(move |name: &Path| service_policy(&service.params_for(name))),
    }
}

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

fn budget(b: &BudgetConfig) -> BudgetParams {
    BudgetParams {
        ttl: b.ttl,
        min_per_sec: b.min_retries_per_sec,
        percent_can_retry: b.percent_can_retry,
    }
}

fn client_policy(p: &ClientParams) -> ClientPolicy {
    let balancer = match p.load_balancer {
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
    };
    let accrual = match &p.failure_accrual {
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
    };
    ClientPolicy {
        balancer,
        accrual,
        requeue_budget: budget(&p.requeue_budget),
        attempt_timeout: p.request_attempt_timeout,
        connect_timeout: p.connect_timeout,
        pool_max_idle: p.host_connection_pool.max_size.map(|n| n as usize),
        pool_idle_timeout: p.host_connection_pool.idle_time,
    }
}

fn service_policy(p: &ServiceParams) -> ServicePolicy {
    let classifier = match p.response_classifier {
        ClassifierKind::NonRetryable5XX => Classifier::NonRetryable5XX,
        ClassifierKind::RetryableRead5XX => Classifier::RetryableRead5XX,
        ClassifierKind::RetryableIdempotent5XX => Classifier::RetryableIdempotent5XX,
        ClassifierKind::RetryableAll5XX => Classifier::RetryableAll5XX,
        ClassifierKind::AllSuccessful => Classifier::AllSuccessful,
    };
    let retry_backoff = match p.retries.backoff {
        BackoffConfig::Constant { delay } => RetryBackoff::Constant(delay),
        BackoffConfig::Jittered { min, max } => RetryBackoff::Jittered { min, max },
    };
    ServicePolicy {
        classifier,
        budget: budget(&p.retries.budget),
        backoff: retry_backoff,
        total_timeout: p.total_timeout,
    }
}

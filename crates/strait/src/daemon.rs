//! `strait run`: from a checked `linkerd.yaml` to listening routers and the
//! admin server, until SIGTERM, SIGINT or `POST /admin/shutdown`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use serde_json::Value;
use strait_dtab::Path;
use strait_naming::Interpreter;
use strait_naming::inet::InetResolver;
use strait_router::clients::{self, ClientNetworks};
use strait_router::guard::OverrideGuard;
use strait_router::recent::{LogLevel, RequestTelemeters, TraceLog};
use strait_router::server::Server;
use strait_router::stats::{Registry, Scope};
use strait_router::tls::ServerTls;
use strait_router::{Router, ServerLimits, ServerParams};
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::admin::{AdminState, NamerEntry, ReloadHandle};
use crate::admin_security::AdminGuard;
use crate::config::{
    self, Config, NamerConfig, Protocol, RouterConfig, ServerConfig, TelemeterConfig, lower,
};
use crate::namers::{build_interpreter, build_namer};
use crate::reload::{ReloadCounters, ReloadOutcome, ReloadResult};
use crate::telemeters::StatsdParams;
use crate::tls_client::ClientCertificate;

/// Loads `path`, serves it, and returns when shut down (exit status 0), or
/// with the reason it could not start.
///
/// SIGHUP (or `POST /admin/reload`) reloads the file: parse, validate,
/// build, then swap the whole routing state in at once; a bad file is
/// rejected whole and the old state keeps serving. SIGHUP also reopens
/// the access logs (logrotate's `postrotate`), even when the file is
/// unchanged; SIGUSR1 only reopens them.
pub async fn run(path: &std::path::Path) -> Result<(), String> {
    // Before anything is announced: a SIGTERM that arrives right after the
    // listeners are reported must be a graceful shutdown, not the default
    // action (death).
    let mut signals = Signals::install();
    let mut hup = signal(SignalKind::hangup()).ok();
    // logrotate's `postrotate kill -USR1`: reopen the access logs only.
    let mut usr1 = signal(SignalKind::user_defined1()).ok();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (cfg, warnings) =
        config::parse_with_warnings(&text, &path.display().to_string()).map_err(|errs| {
            let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
            format!(
                "{} problem(s) in the configuration:\n{}",
                lines.len(),
                lines.join("\n")
            )
        })?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    if let Some(limit) = strait_router::descriptors::soft_limit() {
        let s = strait_router::descriptors::install(limit);
        tracing::info!(
            "descriptor limit {}: up to {} client connections at once, {} idle backend connections kept",
            s.limit,
            s.clients,
            s.idle
        );
    }
    if cfg.usage.is_some() {
        tracing::info!("`usage` is accepted and ignored: Strait reports nothing to anyone");
    }
    let (shutdown_tx, mut shutdown_rx) = watch::channel(false);
    let (reload_tx, mut reload_rx) = mpsc::channel::<oneshot::Sender<ReloadOutcome>>(4);
    let mut live = Live::start(path.to_owned(), &text, cfg, shutdown_tx.clone(), reload_tx).await?;
    crate::sdnotify::ready();
    loop {
        tokio::select! {
            _ = recv(&mut hup) => {
                // First, and whatever the reload makes of the file: a
                // rotated access log is reopened on every SIGHUP.
                reopen_access_logs("SIGHUP");
                crate::sdnotify::reloading();
                live.reload("SIGHUP").await;
                crate::sdnotify::ready();
            }
            _ = recv(&mut usr1) => reopen_access_logs("SIGUSR1"),
            Some(reply) = reload_rx.recv() => {
                crate::sdnotify::reloading();
                let outcome = live.reload("POST /admin/reload").await;
                crate::sdnotify::ready();
                let _ = reply.send(outcome);
            }
            () = signals.next() => {
                let _ = shutdown_tx.send(true);
                break;
            }
            _ = shutdown_rx.wait_for(|v| *v) => {
                tracing::info!("shutdown requested on the admin server");
                break;
            }
        }
    }
    crate::sdnotify::stopping();
    signals.exit_on_second();
    live.shutdown().await;
    Ok(())
}

/// Has every access log reopen its path (logrotate moved it away).
fn reopen_access_logs(source: &'static str) {
    let n = strait_router::accesslog::reopen_all();
    if n > 0 {
        tracing::info!(source, logs = n, "reopening access logs");
    }
}

async fn recv(s: &mut Option<Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// One listening server of the running state.
struct ServerSlot {
    router: String,
    server: Arc<Server>,
    stop: watch::Sender<bool>,
}

/// A server's `maxConcurrentRequests`. An h2 server without one gets
/// [`H2_MAX_CONCURRENT_REQUESTS`]: one HTTP/1 connection carries one
/// request at a time, so the descriptor budget bounds HTTP/1 requests in
/// flight, but one h2 connection carries up to
/// `maxConcurrentStreamsPerConnection` (1,000), and a client opening many
/// would otherwise hold unbounded memory in waiting streams.
fn max_concurrent(rc: &RouterConfig, sc: &ServerConfig) -> Option<u32> {
    sc.max_concurrent_requests
        .or((rc.protocol == Protocol::H2).then_some(H2_MAX_CONCURRENT_REQUESTS))
}

/// The default `maxConcurrentRequests` of an h2 server (requests beyond
/// get 503, or `UNAVAILABLE` for gRPC).
pub const H2_MAX_CONCURRENT_REQUESTS: u32 = 10_000;

/// One router of the running state.
struct RouterSlot {
    config: RouterConfig,
    router: Arc<Router>,
    stop_expiry: watch::Sender<bool>,
}

/// Everything `strait run` is serving, and what it was built from.
struct Live {
    path: PathBuf,
    hash: u64,
    config: Config,
    registry: Registry,
    inet: InetResolver,
    namers: Vec<(NamerConfig, NamerEntry)>,
    routers: Vec<RouterSlot>,
    /// By configured address (`ip:port` as written; port 0 stays 0).
    servers: HashMap<ServerKey, ServerSlot>,
    admin_addr: SocketAddr,
    /// The admin listener's address as bound (its real port when the
    /// config says 0), refused to dtab overrides.
    admin_local: SocketAddr,
    admin_stop: watch::Sender<bool>,
    admin_state: Arc<ArcSwap<AdminState>>,
    shutdown: watch::Sender<bool>,
    reload: ReloadHandle,
    tasks: JoinSet<()>,
    reloads: ReloadCounters,
    /// `io.l5d.recentRequests` and `io.l5d.tracelog`, with the settings
    /// they were made from (kept across reloads that leave them alone, so
    /// the recent requests stay).
    request_telemeters: Option<(RequestTelemeterKey, Arc<RequestTelemeters>)>,
    /// The running `io.l5d.statsd` telemeters and their stop switches.
    statsd: Vec<(StatsdParams, watch::Sender<bool>)>,
}

/// The settings the request telemeters are made from.
type RequestTelemeterKey = (Option<(f64, usize)>, Option<TraceLog>);

/// The request telemeters `cfg` asks for: `io.l5d.recentRequests`'
/// `(sampleRate, capacity)` and `io.l5d.tracelog`.
fn request_telemeter_key(cfg: &Config) -> RequestTelemeterKey {
    let mut recent = None;
    let mut tracelog = None;
    for t in &cfg.telemetry {
        match t {
            TelemeterConfig::RecentRequests {
                sample_rate,
                capacity,
            } => recent = recent.or(Some((*sample_rate, *capacity as usize))),
            TelemeterConfig::TraceLog { sample_rate, level } => {
                tracelog = tracelog.or(Some(TraceLog {
                    sample_rate: *sample_rate,
                    level: log_level(level),
                }));
            }
            _ => {}
        }
    }
    (recent, tracelog)
}

/// Linkerd's level names as `tracing`'s.
fn log_level(level: &str) -> LogLevel {
    match level {
        "OFF" => LogLevel::Off,
        "FATAL" | "CRITICAL" | "ERROR" => LogLevel::Error,
        "WARNING" => LogLevel::Warn,
        "DEBUG" => LogLevel::Debug,
        "TRACE" | "ALL" => LogLevel::Trace,
        _ => LogLevel::Info,
    }
}

/// The `io.l5d.statsd` telemeters of `cfg`.
fn statsd_params(cfg: &Config) -> Vec<StatsdParams> {
    cfg.telemetry
        .iter()
        .filter_map(|t| match t {
            TelemeterConfig::Statsd {
                prefix,
                hostname,
                port,
                gauge_interval_ms,
                sample_rate,
            } => Some(StatsdParams {
                prefix: prefix.clone(),
                hostname: hostname.clone(),
                port: *port,
                interval: Duration::from_millis(*gauge_interval_ms),
                sample_rate: *sample_rate,
            }),
            _ => None,
        })
        .collect()
}

/// A server's identity across reloads: its configured address, or for
/// port 0 (any free port) its router and position, since two port-0
/// servers never share a listener.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ServerKey(SocketAddr, Option<(String, usize)>);

impl ServerKey {
    fn of(rc: &RouterConfig, i: usize) -> ServerKey {
        let sc = &rc.servers[i];
        let addr = SocketAddr::new(sc.ip, sc.port);
        ServerKey(addr, (sc.port == 0).then(|| (rc.label.clone(), i)))
    }
}

/// What a reload would start, built before anything is swapped.
struct Next {
    namers: Vec<(NamerConfig, NamerEntry)>,
    routers: Vec<(RouterConfig, Arc<Router>)>,
    listeners: HashMap<ServerKey, TcpListener>,
    admin_listener: Option<TcpListener>,
    /// `admin.security` and the `admin.tokenFile` token, read now.
    admin_guard: Arc<AdminGuard>,
    /// Every `tls` block's certificates, read now.
    tls: TlsSet,
    /// The request telemeters the routers were given.
    request_telemeters: Option<(RequestTelemeterKey, Arc<RequestTelemeters>)>,
}

/// The certificates of every server with `tls`, and of the admin's; and
/// those the client `tls` blocks read (client certificates, CAs).
#[derive(Default)]
struct TlsSet {
    servers: HashMap<ServerKey, Arc<ServerTls>>,
    admin: Option<Arc<ServerTls>>,
    clients: Vec<ClientCertificate>,
}

impl TlsSet {
    /// Reads every `tls` block's files; the error names the block, the
    /// key and the file.
    fn load(cfg: &Config) -> Result<TlsSet, String> {
        let mut servers = HashMap::new();
        for rc in &cfg.routers {
            for (i, sc) in rc.servers.iter().enumerate() {
                if let Some(t) = &sc.tls {
                    let tls = t
                        .load()
                        .map_err(|e| format!("router '{}': servers[{i}].tls.{e}", rc.label))?;
                    servers.insert(ServerKey::of(rc, i), Arc::new(tls));
                }
            }
        }
        let admin = match &cfg.admin.tls {
            Some(t) => Some(Arc::new(t.load().map_err(|e| format!("admin.tls.{e}"))?)),
            None => None,
        };
        Ok(TlsSet {
            servers,
            admin,
            clients: crate::tls_client::client_certificates(cfg),
        })
    }
}

fn hash_text(text: &str) -> u64 {
    // FNV-1a: stable across runs and versions, unlike `DefaultHasher`.
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Live {
    async fn start(
        path: PathBuf,
        text: &str,
        cfg: Config,
        shutdown: watch::Sender<bool>,
        requests: mpsc::Sender<oneshot::Sender<ReloadOutcome>>,
    ) -> Result<Live, String> {
        let registry = Registry::default();
        let reloads = ReloadCounters::register(&registry);
        let reload = ReloadHandle {
            requests,
            last: Arc::new(ArcSwapOption::empty()),
        };
        let admin_addr = SocketAddr::new(cfg.admin.ip, cfg.admin.port);
        let mut live = Live {
            path,
            hash: hash_text(text),
            config: cfg.clone(),
            registry,
            inet: InetResolver::default(),
            namers: Vec::new(),
            routers: Vec::new(),
            servers: HashMap::new(),
            admin_addr,
            admin_local: admin_addr,
            admin_stop: watch::channel(false).0,
            admin_state: Arc::new(ArcSwap::from_pointee(AdminState {
                registry: Registry::default(),
                routers: Vec::new(),
                namers: Vec::new(),
                config_json: Value::Null,
                prometheus: None,
                requests: None,
                influxdb: false,
                shutdown: shutdown.clone(),
                reload: None,
                guard: Arc::default(),
                tls: None,
                certificates: Vec::new(),
                client_certificates: Vec::new(),
            })),
            shutdown,
            reload,
            tasks: JoinSet::new(),
            reloads,
            request_telemeters: None,
            statsd: Vec::new(),
        };
        live.tasks.spawn(roll_minutes(
            live.registry.clone(),
            live.shutdown.subscribe(),
        ));
        let mut next = live.build(&cfg).await?;
        let admin_listener = TcpListener::bind(admin_addr)
            .await
            .map_err(|e| format!("admin: cannot listen on {admin_addr}: {e}"))?;
        next.admin_listener = Some(admin_listener);
        live.swap(cfg, next);
        live.reload
            .last
            .store(Some(Arc::new(ReloadOutcome::started(live.hash))));
        tracing::info!(
            routers = live.routers.len(),
            namers = live.namers.len(),
            "strait is serving"
        );
        Ok(live)
    }

    /// Builds what `cfg` needs, reusing unchanged namers and binding new
    /// listeners; nothing running is touched.
    async fn build(&self, cfg: &Config) -> Result<Next, String> {
        let mut namers = Vec::new();
        for nc in &cfg.namers {
            match self.namers.iter().find(|(c, _)| c == nc) {
                Some((c, e)) => namers.push((c.clone(), e.clone())),
                None => namers.push((nc.clone(), build_namer(nc, &self.registry)?)),
            }
        }
        let interp = Interpreter::new(
            namers
                .iter()
                .map(|(_, n)| (n.prefix.clone(), Arc::clone(&n.namer)))
                .collect(),
            self.inet.clone(),
        );
        // Concrete names under a namer that was rebuilt must get new clients.
        let changed: Vec<Path> = self
            .namers
            .iter()
            .filter(|(c, _)| !namers.iter().any(|(n, _)| n == c))
            .map(|(_, e)| e.prefix.clone())
            .collect();
        // Unchanged settings keep the running telemeters (and what they
        // recorded).
        let key = request_telemeter_key(cfg);
        let request_telemeters = match &self.request_telemeters {
            Some((k, t)) if *k == key => Some((key, Arc::clone(t))),
            _ => RequestTelemeters::new(key.0, key.1).map(|t| (key, Arc::new(t))),
        };
        let mut routers = Vec::new();
        for rc in &cfg.routers {
            let mut params = lower::router_params(rc, &self.registry)?;
            params.telemeters = request_telemeters.as_ref().map(|(_, t)| Arc::clone(t));
            // An unchanged interpreter keeps running (no new watch or
            // Consul connection); a changed one starts afresh.
            let running = self
                .routers
                .iter()
                .filter(|r| r.config.interpreter.kind == rc.interpreter.kind)
                .find_map(|r| r.router.params().interpreter.clone());
            params.interpreter = match running {
                Some(i) => Some(i),
                None => build_interpreter(&rc.interpreter, &rc.label)?,
            };
            let interp = match rc.interpreter.transformers.as_slice() {
                [] => interp.clone(),
                ts => interp
                    .clone()
                    .with_transformers(crate::namers::transformers(ts, interp.inet())),
            };
            let router = Router::new(params, interp, self.registry.clone());
            if let Some(prev) = self.routers.iter().find(|r| r.config.label == rc.label) {
                router.adopt(&prev.router, |id| {
                    !changed.iter().any(|p| id.starts_with(p))
                });
            }
            routers.push((rc.clone(), router));
        }
        let mut listeners = HashMap::new();
        for rc in &cfg.routers {
            for (i, sc) in rc.servers.iter().enumerate() {
                let want = SocketAddr::new(sc.ip, sc.port);
                let key = ServerKey::of(rc, i);
                if self.servers.contains_key(&key) {
                    continue;
                }
                let l = crate::workers::bind(want)
                    .map_err(|e| format!("router '{}': cannot listen on {want}: {e}", rc.label))?;
                listeners.insert(key, l);
            }
        }
        let admin_addr = SocketAddr::new(cfg.admin.ip, cfg.admin.port);
        let admin_listener = if admin_addr != self.admin_addr && !self.servers.is_empty() {
            Some(
                TcpListener::bind(admin_addr)
                    .await
                    .map_err(|e| format!("admin: cannot listen on {admin_addr}: {e}"))?,
            )
        } else {
            None
        };
        let admin_guard = Arc::new(AdminGuard::new(&cfg.admin)?);
        Ok(Next {
            namers,
            routers,
            listeners,
            admin_listener,
            admin_guard,
            tls: TlsSet::load(cfg)?,
            request_telemeters,
        })
    }

    /// Puts `next` in service: one store per server and for the admin.
    fn swap(&mut self, cfg: Config, mut next: Next) {
        let grace = cfg.admin.shutdown_grace;
        for slot in self.routers.drain(..) {
            let _ = slot.stop_expiry.send(true);
        }
        let mut keep = HashMap::new();
        // Strait's own addresses, as bound: no dtab override may reach them.
        if let Some(a) = next
            .admin_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
        {
            self.admin_local = a;
        }
        let own: Vec<SocketAddr> = std::iter::once(self.admin_local)
            .chain(next.listeners.values().filter_map(|l| l.local_addr().ok()))
            .chain(self.servers.values().map(|s| s.server.local()))
            .collect();
        // `clientNetworks` not written: this host's, read now.
        let host_networks = host_client_networks(&cfg);
        for (rc, router) in &next.routers {
            // Room for both limits and the blank line, so that the exact
            // checks (414, 431) decide, not where the read buffer ends.
            let head_kb = |kb: Option<u32>, default: u32| kb.unwrap_or(default) as usize;
            let head = (head_kb(rc.max_headers_kb, config::DEFAULT_MAX_HEADERS_KB)
                + head_kb(rc.max_initial_line_kb, config::DEFAULT_MAX_INITIAL_LINE_KB)
                + 1)
                * 1024;
            let guard = Arc::new(OverrideGuard::new(&own, rc.inet_allow.clone(), &rc.dtab));
            for (i, sc) in rc.servers.iter().enumerate() {
                let want = ServerKey::of(rc, i);
                let params = |local: SocketAddr| ServerParams {
                    label: format!("{}/{}", local.ip(), local.port()),
                    clear_context: sc.clear_context,
                    dtab_override: sc.dtab_override.then(|| Arc::clone(&guard)),
                    add_forwarded: sc.add_forwarded_header.is_some(),
                    client_networks: client_networks(sc, &host_networks),
                    local,
                    limits: ServerLimits {
                        header_timeout: sc.request_header_timeout,
                        body_idle_timeout: sc.request_body_idle_timeout,
                        max_body_bytes: sc.max_request_body_kb.map(|kb| kb.saturating_mul(1024)),
                        max_header_count: sc
                            .max_header_count
                            .unwrap_or(config::DEFAULT_MAX_HEADER_COUNT)
                            as usize,
                        upgrade_idle_timeout: sc
                            .upgrade_idle_timeout
                            .unwrap_or(config::DEFAULT_UPGRADE_IDLE_TIMEOUT),
                        send_timeout: sc
                            .response_send_timeout
                            .unwrap_or(config::DEFAULT_RESPONSE_SEND_TIMEOUT),
                    },
                    h2: lower::server_h2(sc),
                };
                if let Some(slot) = self.servers.remove(&want) {
                    // Same address: keep the listener (and its connections),
                    // hand it the new router and settings.
                    slot.server.update(
                        Arc::clone(router),
                        params(slot.server.local()),
                        max_concurrent(rc, sc),
                    );
                    slot.server.set_tls(next.tls.servers.get(&want).cloned());
                    keep.insert(
                        want,
                        ServerSlot {
                            router: rc.label.clone(),
                            ..slot
                        },
                    );
                    continue;
                }
                let Some(listener) = next.listeners.remove(&want) else {
                    continue;
                };
                let Ok(local) = listener.local_addr() else {
                    continue;
                };
                let server = Server::new(
                    params(local),
                    Arc::clone(router),
                    &self.registry,
                    max_concurrent(rc, sc),
                    head,
                );
                server.set_tls(next.tls.servers.get(&want).cloned());
                let (stop, stop_rx) = watch::channel(false);
                // The stdout line is the readiness line scripts wait for;
                // the log has it too, timestamped.
                println!("strait: router '{}' listening on {local}", rc.label);
                tracing::info!(router = %rc.label, addr = %local, "router listening");
                let workers = crate::workers::handles();
                if workers.is_empty() {
                    self.tasks
                        .spawn(Arc::clone(&server).serve(listener, stop_rx, grace));
                } else {
                    // A listener per worker, all on `local` (SO_REUSEPORT):
                    // each worker accepts and serves its own connections.
                    let mut first = Some(listener);
                    for (i, worker) in workers.iter().enumerate() {
                        let std = match first.take() {
                            Some(l) => l.into_std(),
                            None => crate::workers::bind_another(local),
                        }
                        .map_err(|e| {
                            format!(
                                "router '{}': worker {i} cannot listen on {local}: {e}",
                                rc.label
                            )
                        });
                        let std = match std {
                            Ok(s) => s,
                            Err(e) => {
                                tracing::error!("{e}");
                                continue;
                            }
                        };
                        let (server, stop_rx) = (Arc::clone(&server), stop_rx.clone());
                        let serving = worker.spawn(async move {
                            match TcpListener::from_std(std) {
                                Ok(l) => server.serve(l, stop_rx, grace).await,
                                Err(e) => tracing::error!(error = %e, "a worker cannot accept"),
                            }
                        });
                        self.tasks.spawn(async move {
                            let _ = serving.await;
                        });
                    }
                }
                keep.insert(
                    want,
                    ServerSlot {
                        router: rc.label.clone(),
                        server,
                        stop,
                    },
                );
            }
        }
        // Whatever is left is no longer configured: stop accepting, drain.
        for (key, slot) in self.servers.drain() {
            tracing::info!(addr = %key.0, router = %slot.router, "server removed: draining");
            let _ = slot.stop.send(true);
        }
        self.servers = keep;
        self.tls_gauges(&next.tls);
        // `originator: true`: Linkerd's `rt/<label>/originator` gauge of 1.
        for old in &self.config.routers {
            if !next
                .routers
                .iter()
                .any(|(rc, _)| rc.label == old.label && rc.originator)
            {
                // Only the gauge: the router's scope holds its other
                // counters too (bindcache, access_log).
                self.registry.remove(
                    &Scope::Router {
                        router: old.label.as_str().into(),
                    },
                    "originator",
                );
            }
        }
        for (rc, _) in next.routers.iter().filter(|(rc, _)| rc.originator) {
            let scope = Scope::Router {
                router: rc.label.as_str().into(),
            };
            self.registry.gauge(&scope, "originator").set(1);
        }
        // After the routers' scopes dropped above: some gauges are there.
        self.client_tls_gauges(&next.tls);
        for (rc, router) in &next.routers {
            let (stop, stop_rx) = watch::channel(false);
            self.tasks.spawn(expire_idle(Arc::clone(router), stop_rx));
            self.routers.push(RouterSlot {
                config: rc.clone(),
                router: Arc::clone(router),
                stop_expiry: stop,
            });
        }
        self.namers = next.namers;
        let prometheus = cfg.telemetry.iter().find_map(|t| match t {
            TelemeterConfig::Prometheus { path, prefix } => Some((path.clone(), prefix.clone())),
            _ => None,
        });
        self.request_telemeters = next.request_telemeters.take();
        self.swap_statsd(&cfg);
        let state = AdminState {
            registry: self.registry.clone(),
            routers: self
                .routers
                .iter()
                .map(|r| Arc::new(ArcSwap::from(Arc::clone(&r.router))))
                .collect(),
            namers: self.namers.iter().map(|(_, e)| e.clone()).collect(),
            config_json: {
                // Every config type serializes (the config fuzz target
                // checks it); should one ever fail, say so instead of
                // showing `null` silently.
                let mut v = serde_json::to_value(&cfg).unwrap_or_else(|e| {
                    tracing::error!(error = %e, "cannot show the running config in /config.json");
                    serde_json::Value::Null
                });
                crate::admin_security::redact(&mut v);
                v
            },
            prometheus,
            requests: self.request_telemeters.as_ref().map(|(_, t)| Arc::clone(t)),
            influxdb: cfg
                .telemetry
                .iter()
                .any(|t| matches!(t, TelemeterConfig::InfluxDb)),
            shutdown: self.shutdown.clone(),
            reload: Some(self.reload.clone()),
            guard: Arc::clone(&next.admin_guard),
            tls: next.tls.admin.clone(),
            certificates: self.certificates(&next.tls),
            client_certificates: next.tls.clients.clone(),
        };
        self.admin_state.store(Arc::new(state));
        if let Some(listener) = next.admin_listener.take() {
            let (stop, stop_rx) = watch::channel(false);
            let old = std::mem::replace(&mut self.admin_stop, stop);
            let _ = old.send(true);
            if let Ok(local) = listener.local_addr() {
                println!("strait: admin listening on {local}");
                tracing::info!(addr = %local, "admin listening");
            }
            self.tasks.spawn(crate::admin::serve(
                listener,
                Arc::clone(&self.admin_state),
                stop_rx,
            ));
            self.admin_addr = SocketAddr::new(cfg.admin.ip, cfg.admin.port);
        }
        self.config = cfg;
    }

    /// Re-reads the file and applies it, or keeps everything as it is;
    /// returns (and logs, and counts) the outcome.
    async fn reload(&mut self, source: &'static str) -> ReloadOutcome {
        let started = std::time::Instant::now();
        let result = self.try_reload().await;
        let outcome = ReloadOutcome::now(result, source, started.elapsed(), self.hash);
        self.reloads.count(&outcome.result);
        outcome.log();
        self.reload.last.store(Some(Arc::new(outcome.clone())));
        outcome
    }

    async fn try_reload(&mut self) -> ReloadResult {
        let file = self.path.display().to_string();
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) => {
                return ReloadResult::Rejected {
                    errors: vec![format!("{file}: {e}")],
                };
            }
        };
        let hash = hash_text(&text);
        match config::parse_with_warnings(&text, &file) {
            Err(errs) => ReloadResult::Rejected {
                errors: errs.iter().map(ToString::to_string).collect(),
            },
            Ok((cfg, warnings)) => {
                for w in &warnings {
                    tracing::warn!("{w}");
                }
                self.apply(cfg, &file, hash).await
            }
        }
    }

    /// Whether a client `tls` block's files differ on disk from what the
    /// running routers loaded (a same-text reload then applies, and the
    /// clients whose TLS changed are rebuilt). A file that cannot be
    /// loaded counts as a change, so that the reload reports it.
    fn client_tls_changed(&self, cfg: &Config) -> bool {
        cfg.routers.iter().any(|rc| {
            let running = self.routers.iter().find(|r| r.config.label == rc.label);
            match (running, lower::policies(rc)) {
                (Some(r), Ok(p)) => r.router.params().policies != p,
                _ => true,
            }
        })
    }

    /// Applies a checked config read on reload, unless it is unchanged.
    async fn apply(&mut self, cfg: Config, file: &str, hash: u64) -> ReloadResult {
        match cfg {
            cfg if cfg == self.config && !has_tls(&cfg) && !self.client_tls_changed(&cfg) => {
                self.hash = hash;
                self.refresh_client_networks();
                ReloadResult::Unchanged
            }
            // The same file, but its certificates may have been renewed.
            cfg if cfg == self.config && !self.client_tls_changed(&cfg) => match TlsSet::load(&cfg)
            {
                Err(e) => ReloadResult::Rejected {
                    errors: vec![format!("{file}: {e}")],
                },
                Ok(tls) => {
                    self.hash = hash;
                    self.refresh_client_networks();
                    self.swap_tls(&cfg, tls);
                    ReloadResult::Applied {
                        changes: "certificates re-read".to_owned(),
                    }
                }
            },
            cfg => match self.build(&cfg).await {
                Err(e) => ReloadResult::Rejected {
                    errors: vec![format!("{file}: {e}")],
                },
                Ok(next) => {
                    let changes = diff(&self.config, &cfg);
                    self.swap(cfg, next);
                    self.hash = hash;
                    ReloadResult::Applied { changes }
                }
            },
        }
    }

    /// Starts the `io.l5d.statsd` telemeters `cfg` has and the running ones
    /// lack; stops those it no longer has (each sends once more first).
    fn swap_statsd(&mut self, cfg: &Config) {
        let want = statsd_params(cfg);
        let (keep, stop): (Vec<_>, Vec<_>) = std::mem::take(&mut self.statsd)
            .into_iter()
            .partition(|(p, _)| want.contains(p));
        for (_, s) in stop {
            let _ = s.send(true);
        }
        self.statsd = keep;
        for p in want {
            if self.statsd.iter().any(|(q, _)| *q == p) {
                continue;
            }
            let (stop, stop_rx) = watch::channel(false);
            self.tasks.spawn(crate::telemeters::run_statsd(
                p.clone(),
                self.registry.clone(),
                stop_rx,
                self.shutdown.subscribe(),
            ));
            self.statsd.push((p, stop));
        }
    }

    /// Hands every server and the admin the certificates of `tls`
    /// (read again from unchanged paths) for new connections.
    fn swap_tls(&mut self, cfg: &Config, tls: TlsSet) {
        for rc in &cfg.routers {
            for i in 0..rc.servers.len() {
                let key = ServerKey::of(rc, i);
                if let Some(slot) = self.servers.get(&key) {
                    slot.server.set_tls(tls.servers.get(&key).cloned());
                }
            }
        }
        self.tls_gauges(&tls);
        self.client_tls_gauges(&tls);
        let old = self.admin_state.load_full();
        self.admin_state.store(Arc::new(AdminState {
            tls: tls.admin.clone(),
            certificates: self.certificates(&tls),
            client_certificates: tls.clients.clone(),
            ..AdminState::clone(&old)
        }));
    }

    /// `tls/expires_in_seconds` of each server with TLS and the admin's
    /// (`admin/tls/expires_in_seconds`), read when shown; dropped from
    /// servers that have none.
    fn tls_gauges(&self, tls: &TlsSet) {
        let name = "tls/expires_in_seconds";
        for (key, slot) in &self.servers {
            let scope = server_scope(&slot.router, slot.server.local());
            match tls.servers.get(key) {
                Some(t) => crate::tls::expiry_gauge(&self.registry, &scope, name, t),
                None => self.registry.remove(&scope, name),
            }
        }
        let scope = Scope::Root("admin".into());
        match &tls.admin {
            Some(t) => crate::tls::expiry_gauge(&self.registry, &scope, name, t),
            None => self.registry.remove(&scope, name),
        }
    }

    /// The expiry gauge of each certificate of a client `tls` block; those
    /// of certificates no longer used (listed by the admin until now) are
    /// dropped.
    fn client_tls_gauges(&self, tls: &TlsSet) {
        let old = self.admin_state.load_full();
        crate::tls_client::expiry_gauges(&self.registry, &tls.clients, &old.client_certificates);
    }

    /// What `/admin/tls.json` lists: each TLS server's and the admin's
    /// certificate, by where it serves.
    fn certificates(&self, tls: &TlsSet) -> Vec<(String, Arc<ServerTls>)> {
        let mut list: Vec<(String, Arc<ServerTls>)> = self
            .servers
            .iter()
            .filter_map(|(key, slot)| {
                let t = tls.servers.get(key)?;
                let local = slot.server.local();
                let owner = format!("rt/{}/server/{}/{}", slot.router, local.ip(), local.port());
                Some((owner, Arc::clone(t)))
            })
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(t) = &tls.admin {
            list.insert(0, ("admin".to_owned(), Arc::clone(t)));
        }
        list
    }

    /// Reads this host's interfaces again for the servers without
    /// `clientNetworks` (a reload of an unchanged file: a Docker network
    /// created since is served from now on).
    fn refresh_client_networks(&self) {
        let host = host_client_networks(&self.config);
        for rc in &self.config.routers {
            for (i, sc) in rc.servers.iter().enumerate() {
                if let Some(slot) = self.servers.get(&ServerKey::of(rc, i)) {
                    slot.server.set_client_networks(client_networks(sc, &host));
                }
            }
        }
    }

    /// Stops accepting everywhere and waits for in-flight requests, up to
    /// `admin.shutdownGraceMs`.
    async fn shutdown(mut self) {
        let grace = self.config.admin.shutdown_grace;
        tracing::info!(
            grace_ms = grace.as_millis() as u64,
            "shutting down: draining in-flight requests"
        );
        for slot in self.servers.values() {
            let _ = slot.stop.send(true);
        }
        for slot in &self.routers {
            let _ = slot.stop_expiry.send(true);
        }
        let _ = self.admin_stop.send(true);
        let _ = tokio::time::timeout(grace + Duration::from_millis(500), async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
    }
}

/// The default `clientNetworks` of this host, read now when some server
/// of `cfg` has none written (and logged, so the operator sees what is
/// served); any network otherwise, unused.
fn host_client_networks(cfg: &Config) -> Arc<ClientNetworks> {
    let defaulted = cfg
        .routers
        .iter()
        .flat_map(|r| &r.servers)
        .any(|s| s.client_networks.is_none());
    if !defaulted {
        return Arc::new(ClientNetworks::default());
    }
    let host = clients::host_default();
    tracing::info!(networks = %host, "servers without clientNetworks accept connections from loopback, this host's addresses and its private attached subnets");
    Arc::new(host)
}

/// A server's `clientNetworks`: as written, or the host's default.
fn client_networks(sc: &ServerConfig, host: &Arc<ClientNetworks>) -> Arc<ClientNetworks> {
    match &sc.client_networks {
        Some(list) => Arc::new(ClientNetworks::new(list)),
        None => Arc::clone(host),
    }
}

/// Whether any server or the admin has `tls` (whose files a reload
/// re-reads even when the config is unchanged).
fn has_tls(cfg: &Config) -> bool {
    cfg.admin.tls.is_some()
        || cfg
            .routers
            .iter()
            .flat_map(|r| &r.servers)
            .any(|s| s.tls.is_some())
}

/// The metrics scope of a router's server listening on `local`.
fn server_scope(router: &str, local: SocketAddr) -> Scope {
    Scope::Server {
        router: router.into(),
        addr: format!("{}/{}", local.ip(), local.port()).into(),
    }
}

/// A one-line summary of what changed between two configs.
fn diff(old: &Config, new: &Config) -> String {
    let mut parts = Vec::new();
    let label = |r: &RouterConfig| r.label.clone();
    let added: Vec<String> = new
        .routers
        .iter()
        .filter(|r| !old.routers.iter().any(|o| o.label == r.label))
        .map(label)
        .collect();
    let removed: Vec<String> = old
        .routers
        .iter()
        .filter(|r| !new.routers.iter().any(|o| o.label == r.label))
        .map(label)
        .collect();
    let dtabs: Vec<String> = new
        .routers
        .iter()
        .filter(|r| {
            old.routers
                .iter()
                .any(|o| o.label == r.label && o.dtab != r.dtab)
        })
        .map(label)
        .collect();
    let changed: Vec<String> = new
        .routers
        .iter()
        .filter(|r| old.routers.iter().any(|o| o.label == r.label && *o != **r))
        .map(label)
        .collect();
    for (what, v) in [
        ("routers added", added),
        ("routers removed", removed),
        ("routers changed", changed),
        ("dtabs changed", dtabs),
    ] {
        if !v.is_empty() {
            parts.push(format!("{what}: {}", v.join(", ")));
        }
    }
    let namers = new
        .namers
        .iter()
        .filter(|n| !old.namers.contains(n))
        .count()
        + old
            .namers
            .iter()
            .filter(|n| !new.namers.contains(n))
            .count();
    if namers > 0 {
        parts.push(format!("namers changed: {namers}"));
    }
    if old.admin != new.admin {
        parts.push("admin changed".into());
    }
    if parts.is_empty() {
        "no routing change".into()
    } else {
        parts.join("; ")
    }
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

    /// The next SIGTERM or SIGINT.
    async fn next(&mut self) {
        let Some((term, int)) = &mut self.0 else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM"),
            _ = int.recv() => tracing::info!("SIGINT"),
        }
    }

    /// From now on, another SIGTERM or SIGINT exits at once.
    fn exit_on_second(mut self) {
        tokio::spawn(async move {
            self.next().await;
            tracing::warn!("second signal: exiting now");
            std::process::exit(1);
        });
    }
}

/// Linkerd 1's histogram snapshot: every minute, the minute just ended
/// becomes what `/admin/metrics/prometheus` shows.
async fn roll_minutes(registry: Registry, mut shutdown: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is now: the first minute ends a minute from now.
    every.tick().await;
    loop {
        tokio::select! {
            _ = every.tick() => registry.roll_minute(),
            _ = shutdown.wait_for(|v| *v) => return,
        }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn h2_servers_have_a_default_concurrency_limit_and_http_servers_keep_none() {
        let cfg = config::parse(
            "routers:\n\
             - protocol: h2\n  servers: [{port: 0}, {port: 0, maxConcurrentRequests: 7}]\n\
             - protocol: http\n  servers: [{port: 0}]\n",
            "t.yaml",
        )
        .unwrap();
        let (h2, http) = (&cfg.routers[0], &cfg.routers[1]);
        assert_eq!(
            max_concurrent(h2, &h2.servers[0]),
            Some(H2_MAX_CONCURRENT_REQUESTS)
        );
        assert_eq!(max_concurrent(h2, &h2.servers[1]), Some(7), "written wins");
        assert_eq!(max_concurrent(http, &http.servers[0]), None);
    }
}

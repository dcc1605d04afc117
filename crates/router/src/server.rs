//! Accepting connections and serving HTTP/1.1 on them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::error::RouteError;
use crate::router::{Body, Router, ServerParams};
use crate::service::RequestStats;
use crate::stats::{Gauge, Registry, Scope};

/// One listening address of a router.
pub struct Server {
    params: ArcSwap<ServerParams>,
    router: Arc<ArcSwap<Router>>,
    stats: RequestStats,
    connections: Arc<Gauge>,
    limit: ArcSwap<Option<(Arc<Semaphore>, u32)>>,
    max_buf: usize,
}

fn limit(max_concurrent: Option<u32>) -> Option<(Arc<Semaphore>, u32)> {
    max_concurrent.map(|n| (Arc::new(Semaphore::new(n as usize)), n))
}

impl Server {
    /// A server for `router` (swappable), with `max_concurrent` requests at
    /// most (none: unlimited) and header buffers sized from `maxHeadersKB`
    /// plus `maxInitialLineKB`.
    pub fn new(
        params: ServerParams,
        router: Arc<ArcSwap<Router>>,
        registry: &Registry,
        max_concurrent: Option<u32>,
        max_head_bytes: usize,
    ) -> Arc<Server> {
        let label = router.load().params().label.clone();
        let scope = Scope::Server {
            router: label.into(),
            addr: params.label.clone().into(),
        };
        Arc::new(Server {
            stats: RequestStats::new(registry, &scope),
            connections: registry.gauge(&scope, "connections"),
            limit: ArcSwap::from_pointee(limit(max_concurrent)),
            max_buf: max_head_bytes.max(8192),
            params: ArcSwap::from_pointee(params),
            router,
        })
    }

    /// The address it listens on.
    pub fn local(&self) -> std::net::SocketAddr {
        self.params.load().local
    }

    /// The router this server hands requests to (swapped on reload).
    pub fn router(&self) -> &ArcSwap<Router> {
        &self.router
    }

    /// Applies new settings (on reload): requests that arrive from now on
    /// see them; a changed `maxConcurrentRequests` starts a fresh count.
    pub fn update(&self, params: ServerParams, max_concurrent: Option<u32>) {
        let changed = self.limit.load().as_ref().as_ref().map(|l| l.1) != max_concurrent;
        if changed {
            self.limit.store(Arc::new(limit(max_concurrent)));
        }
        self.params.store(Arc::new(params));
    }

    /// Serves `listener` until `shutdown` turns true, then stops accepting
    /// and waits up to `grace` for in-flight requests to finish.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        mut shutdown: watch::Receiver<bool>,
        grace: Duration,
    ) {
        let graceful = GracefulShutdown::new();
        loop {
            tokio::select! {
                res = listener.accept() => {
                    let (stream, remote) = match res {
                        Ok(c) => c,
                        Err(e) => {
                            // EMFILE and friends: back off instead of spinning.
                            tracing::warn!(server = %self.params.load().label, error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let this = Arc::clone(&self);
                    let conn = http1::Builder::new()
                        .keep_alive(true)
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(30))
                        .max_buf_size(self.max_buf)
                        .serve_connection(
                            TokioIo::new(stream),
                            service_fn(move |req| {
                                let this = Arc::clone(&this);
                                async move { Ok::<_, Infallible>(this.handle(req, remote).await) }
                            }),
                        );
                    let conn = graceful.watch(conn);
                    let gauge = Arc::clone(&self.connections);
                    gauge.add(1);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        gauge.add(-1);
                    });
                }
                res = shutdown.changed() => {
                    if res.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
            }
        }
        drop(listener);
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(server = %self.params.load().label, "grace period over; dropping remaining connections");
        }
    }

    async fn handle(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
        remote: SocketAddr,
    ) -> hyper::Response<Body> {
        let start = Instant::now();
        let router = self.router.load_full();
        let params = self.params.load_full();
        let limit = self.limit.load_full();
        let _permit = match &*limit {
            None => None,
            Some((sem, n)) => match Arc::clone(sem).try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    let p = router.params();
                    let resp = RouteError::Overloaded(*n)
                        .to_response(p.max_headers_bytes, p.max_err_bytes, params.clear_context)
                        .map(|b| http_body_util::Either::Right(http_body_util::Full::new(b)));
                    self.stats.record(resp.status().as_u16(), start.elapsed());
                    return resp;
                }
            },
        };
        self.stats.pending.add(1);
        // Boxed: the routing future is a few KiB, and hyper moves the
        // connection's service future several times per request; moving a
        // pointer is cheaper than copying the state machine each time.
        let resp = Box::pin(router.route(req, &params, remote)).await;
        self.stats.pending.add(-1);
        self.stats.record(resp.status().as_u16(), start.elapsed());
        resp
    }
}

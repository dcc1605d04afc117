//! HTTP/2's own rules, and the h2 [`Exchange`] of the attempt loop.
//!
//! An `h2` router balances each request (each stream), not each
//! connection: every request goes through the attempt loop and the
//! client's balancer like an HTTP/1 request, then rides the picked
//! endpoint's one multiplexed connection ([`pool`]). So one long-lived
//! gRPC channel to Strait is spread over every endpoint.
//!
//! What differs from HTTP/1:
//! * bodies stream both ways at once (unary, server, client and
//!   bidirectional streaming); a request body is kept on the side while it
//!   is no larger than `retryBufferSize.requestBytes`, and the request
//!   can be retried once it has ended within that ([`body`]);
//! * responses are classified from their head when the head says enough
//!   (a 5xx, a trailers-only gRPC status); otherwise the response goes to
//!   the caller at once and is classified when its stream ends (the
//!   trailers' `grpc-status`, a reset). Linkerd 1 held every such response
//!   back for up to `classificationTimeoutMs` (100 ms) hoping to retry it;
//!   Strait never delays a stream, and retries what the head settles;
//! * `grpc-timeout` is a deadline ([`grpc`]): the call's total timeout is
//!   cut to it, and each attempt carries what is left of it;
//! * router errors reach gRPC callers as gRPC errors.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::body::RequestBody;
use http::header::{HOST, TE};
use http::request::Parts;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use http_body::Body as _;
use http_body_util::Either;
use hyper::body::Incoming;
use strait_balancer::Outcome;

use crate::attempt::{Answered, Exchange, SendFailure};
use crate::binding::Route;
use crate::body::{ClientBody, ClientBodyError, Observed};
use crate::client::Client;
use crate::pool::SendError;
use crate::retry::{Classifier, ResponseClass};
use crate::router::{Body, Forwarding};
use crate::service::{RequestStats, Service};
use crate::{deadline, headers, http1};

pub mod body;
pub mod grpc;
pub mod pool;

use body::{H2ReqBody, Keep, Replay, Tee};
pub use pool::H2Pool;

/// What the router appends to `via` on an h2 router, both ways.
pub const VIA_VALUE: &str = "2 strait";

/// A response whose success is known only when its stream ends: the
/// server and service stats count its request and latency now, its
/// success or failure then.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deferred;

/// A response the router made for a gRPC caller (HTTP 200 carrying a
/// failed `grpc-status`): a failure, whatever its HTTP status says.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GrpcFailure;

/// Records a finished response in `stats` as its extensions say:
/// deferred (only the head now), a gRPC failure, or by its status.
pub(crate) fn record(stats: &RequestStats, resp: &Response<Body>, elapsed: std::time::Duration) {
    let code = resp.status().as_u16();
    let ext = resp.extensions();
    if ext.get::<Deferred>().is_some() {
        stats.record_head(code, elapsed);
    } else if ext.get::<GrpcFailure>().is_some() {
        stats.record_head(code, elapsed);
        stats.record_end(false);
    } else {
        stats.record(code, elapsed);
    }
}

/// Appends `2 strait` to `via`.
pub fn append_via(h: &mut http::HeaderMap) {
    h.append(http::header::VIA, HeaderValue::from_static(VIA_VALUE));
}

/// One request on its way to a client's endpoints over HTTP/2.
pub(crate) struct H2<'a> {
    client: &'a Arc<Client>,
    pool: &'a H2Pool,
    service: Arc<Service>,
    server_stats: Arc<RequestStats>,
    classifier: Classifier,
    parts: Parts,
    scheme: Scheme,
    authority: Option<Authority>,
    pq: PathAndQuery,
    body: BodyState,
    keep: Keep,
    /// `retryBufferSize.requestBytes`.
    limit: u64,
    /// When the request reached the exchange (for
    /// `stream/total_latency_ms`).
    started: std::time::Instant,
    /// The call's deadline (ns since the epoch), when it came with a
    /// `grpc-timeout`: each attempt carries what is left.
    grpc_deadline: Option<u128>,
}

/// The request body across attempts.
enum BodyState {
    /// None (a GET, a HEADERS frame with END_STREAM).
    Empty,
    /// Not taken by an attempt yet (what the client had sent may have
    /// been read ahead).
    Fresh(Tee),
    /// Taken by an attempt; what was kept of it is in `keep`.
    Taken,
}

impl<'a> H2<'a> {
    /// Rewrites `req`'s headers for `route` (connection-specific headers
    /// off but `te: trailers`, `via`, `Forwarded`, `l5d-*`, trace, the
    /// deadline); `pool` is the client's h2 pool.
    pub(crate) fn new(
        req: Box<Request<RequestBody>>,
        route: &'a Route,
        pool: &'a H2Pool,
        fwd: &Forwarding<'_>,
        grpc_deadline: Option<u128>,
    ) -> H2<'a> {
        let client = &route.client;
        let (mut parts, mut body) = (*req).into_parts();
        let h = &mut parts.headers;
        // A request read by the HTTP/1 server (not today: an HTTP/1
        // router's clients are HTTP/1) has fields passed on as written.
        http1::append_fields(&body.take_opaque(), h);
        // gRPC needs `te: trailers` end to end; nothing else of TE may
        // cross an HTTP/2 hop.
        let trailers = h
            .get(TE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
        http1::strip_hop_by_hop(h);
        if trailers {
            h.insert(TE, HeaderValue::from_static("trailers"));
        }
        append_via(h);
        if fwd.server.add_forwarded {
            headers::add_forwarded(h, fwd.remote, fwd.server.local);
        }
        headers::set_l5d(
            h,
            route.service.l5d_dst.as_ref(),
            client.l5d_dst.as_ref(),
            &route.residual,
            fwd.local.map(|l| &*l.text),
        );
        fwd.trace.write(h);
        deadline::write(h, fwd.deadline, fwd.total, true);
        let authority = parts.uri.authority().cloned().or_else(|| {
            h.get(HOST)
                .and_then(|v| Authority::try_from(v.as_bytes()).ok())
        });
        let pq = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let scheme = if pool.is_tls() {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        };
        let limits = &fwd.server.limits;
        let keep = Keep::default();
        let body = if body.is_end_stream() {
            BodyState::Empty
        } else {
            let limit = route.service.policy.request_buffer_bytes;
            BodyState::Fresh(Tee::new(
                ClientBody::new(body, limits.body_idle_timeout, limits.max_body_bytes),
                keep.clone(),
                limit,
            ))
        };
        H2 {
            client,
            pool,
            service: Arc::clone(&route.service),
            server_stats: Arc::clone(fwd.server_stats),
            classifier: route.service.policy.classifier,
            parts,
            scheme,
            authority,
            pq,
            body,
            keep,
            limit: route.service.policy.request_buffer_bytes,
            started: std::time::Instant::now(),
            grpc_deadline,
        }
    }

    /// Reads what the client has already sent of the body (see
    /// [`Tee::read_ahead`]).
    pub(crate) async fn read_ahead(&mut self) -> Result<(), crate::error::RouteError> {
        if let BodyState::Fresh(tee) = &mut self.body {
            tee.read_ahead()
                .await
                .map_err(|e| crate::error::RouteError::Refused {
                    status: e.status(),
                    message: e.to_string(),
                })?;
        }
        Ok(())
    }

    /// What the access log says of the request as the backend sees it.
    pub(crate) fn log_fields(&self) -> crate::accesslog::Fields {
        crate::accesslog::Fields::of(
            &self.parts.method,
            Uri::from(self.pq.clone()),
            &self.parts.headers,
        )
    }

    /// The body of the next attempt: the client's (kept on the side), or
    /// a replay of a kept one; `None` once streamed and not kept whole.
    fn next_body(&mut self) -> Option<H2ReqBody> {
        match std::mem::replace(&mut self.body, BodyState::Taken) {
            BodyState::Empty => {
                self.body = BodyState::Empty;
                Some(Either::Right(Replay::empty()))
            }
            BodyState::Fresh(tee) => Some(Either::Left(tee)),
            BodyState::Taken => self.keep.replay(self.limit),
        }
    }

    /// Gives back a body an attempt did not send (its connection was
    /// closed before the stream opened).
    fn untake(&mut self, body: H2ReqBody) {
        if let (BodyState::Taken, Either::Left(tee)) = (&self.body, body) {
            self.body = BodyState::Fresh(tee);
        }
    }

    /// The response for the caller: its body settles the lease and the
    /// stats when the stream ends (at once for a class the head decided);
    /// `via` appended.
    pub(crate) fn finish(&mut self, answered: Answered<Response<Incoming>>) -> Response<Body> {
        let Answered {
            response: resp,
            lease,
            outcome,
        } = answered;
        let (_, class) = self.classify(&resp);
        let mut lease = Some(lease);
        let pending = class == ResponseClass::Pending;
        let (client, service, server) = (
            Arc::clone(self.client),
            Arc::clone(&self.service),
            Arc::clone(&self.server_stats),
        );
        let grpc = match self.classifier {
            Classifier::Grpc(c) => Some(c),
            _ => None,
        };
        let started = self.started;
        let on_end: crate::body::OnEnd = Box::new(move |ok, trailers| {
            let took = started.elapsed();
            client.stats.stream_latency().record(took);
            service.stats.stream_latency().record(took);
            server.stream_latency().record(took);
            if !pending {
                if let Some(l) = lease.take() {
                    l.finish(if ok { outcome } else { Outcome::Failure });
                }
                return;
            }
            // Settled now: the trailers' grpc-status, or a reset.
            let success = ok && grpc.is_none_or(|c| grpc::classify_end(&c, trailers));
            if let Some(l) = lease.take() {
                l.finish(if success {
                    Outcome::Success
                } else {
                    Outcome::Failure
                });
            }
            if success {
                client.stats.success.incr();
            } else {
                client.stats.failures.incr();
            }
            service.stats.record_end(success);
            server.record_end(success);
        });
        let deadline = self
            .grpc_deadline
            .map(|d| tokio::time::Instant::now() + deadline::remaining(d));
        let mut resp = resp.map(|b| {
            let body = Observed::new(b, on_end);
            Either::Left(match deadline {
                Some(at) => body.with_deadline(at),
                None => body,
            })
        });
        if pending {
            resp.extensions_mut().insert(Deferred);
        }
        append_via(resp.headers_mut());
        resp
    }
}

/// How long a retryable failure waits for its request body to settle
/// (Linkerd's `classificationTimeoutMs` default).
const SETTLE_WITHIN: std::time::Duration = std::time::Duration::from_millis(100);

impl H2<'_> {
    /// The class of a response head, the body taken as `replayable`.
    fn head_class(&self, resp: &Response<Incoming>, replayable: bool) -> ResponseClass {
        let status = resp.status();
        match self.classifier {
            Classifier::Grpc(c) => grpc::classify_head(&c, status, resp.headers()),
            c if status.is_server_error() => {
                c.classify(&self.parts.method, status, resp.headers(), replayable)
            }
            // The stream's end decides (a reset is a failure).
            _ => ResponseClass::Pending,
        }
    }

    /// Whether the head is a failure the classifier would retry if the
    /// body could be sent again.
    fn head_retryable(&self, resp: &Response<Incoming>) -> bool {
        matches!(
            self.head_class(resp, true),
            ResponseClass::Failure { retryable: true }
        )
    }
}

impl H2<'_> {
    /// One attempt to `addr`, without a deadline (see `send`).
    async fn exchange(&mut self, addr: SocketAddr) -> Result<Response<Incoming>, SendFailure> {
        {
            let mut tx = self.pool.sender(addr).await.map_err(send_failure)?;
            // Waits while the connection's streams are all taken.
            if tx.ready().await.is_err() {
                self.pool.closed(addr);
                return Err(SendFailure::NotSent(None));
            }
            let Some(body) = self.next_body() else {
                return Err(SendFailure::Lost(
                    "the request body was already streamed to another endpoint, and it was \
                     larger than retryBufferSize.requestBytes, so it could not be sent again"
                        .into(),
                ));
            };
            let mut req = Request::new(body);
            *req.method_mut() = self.parts.method.clone();
            *req.headers_mut() = self.parts.headers.clone();
            *req.version_mut() = http::Version::HTTP_2;
            let authority = match &self.authority {
                Some(a) => a.clone(),
                None => Authority::try_from(addr.to_string())
                    .unwrap_or_else(|_| Authority::from_static("localhost")),
            };
            let uri = Uri::builder()
                .scheme(self.scheme.clone())
                .authority(authority)
                .path_and_query(self.pq.clone())
                .build();
            if let Ok(uri) = uri {
                *req.uri_mut() = uri;
            }
            if let Some(d) = self.grpc_deadline {
                req.headers_mut().insert(
                    grpc::GRPC_TIMEOUT,
                    grpc::timeout_value(deadline::remaining(d)),
                );
            }
            match tx.try_send_request(req).await {
                Ok(resp) => {
                    // A failure to retry whose body is still streaming to
                    // the endpoint: wait (briefly; only failures ever wait)
                    // for the body to end or come back, so it can be sent
                    // again.
                    if matches!(self.body, BodyState::Taken)
                        && !self.keep.replayable()
                        && self.head_retryable(&resp)
                    {
                        self.keep.settled(SETTLE_WITHIN).await;
                    }
                    Ok(resp)
                }
                Err(mut e) => {
                    if let Some(back) = e.take_message() {
                        self.untake(back.into_body());
                        self.pool.closed(addr);
                        return Err(SendFailure::NotSent(None));
                    }
                    let e = e.into_error();
                    // A failed attempt may still hold the request body for
                    // a moment (its stream task ends after the error comes
                    // back): wait briefly for it, so the request can be
                    // requeued or retried (only failures ever wait).
                    if matches!(self.body, BodyState::Taken) && !self.keep.replayable() {
                        self.keep.settled(SETTLE_WITHIN).await;
                    }
                    if let Some(reason) = reset_reason(&e) {
                        self.client.stats.reset(reason);
                        if reason == ::h2::Reason::REFUSED_STREAM {
                            return Err(SendFailure::NotSent(None));
                        }
                    }
                    if let Some(client) = ClientBodyError::find(&e) {
                        return Err(SendFailure::Local {
                            status: client.status(),
                            message: client.to_string(),
                        });
                    }
                    if e.is_closed() || e.is_canceled() {
                        self.pool.closed(addr);
                    }
                    Err(SendFailure::Lost(crate::http1::error_chain(&e)))
                }
            }
        }
    }
}

impl Exchange for H2<'_> {
    type Response = Response<Incoming>;

    fn replayable(&self) -> bool {
        match self.body {
            BodyState::Empty | BodyState::Fresh(_) => true,
            BodyState::Taken => self.keep.replayable(),
        }
    }

    async fn send(
        &mut self,
        addr: SocketAddr,
        deadline: tokio::time::Instant,
    ) -> Result<Self::Response, SendFailure> {
        let sent = std::pin::pin!(self.exchange(addr));
        tokio::time::timeout_at(deadline, sent)
            .await
            .unwrap_or(Err(SendFailure::TimedOut))
    }

    fn classify(&self, resp: &Self::Response) -> (u16, ResponseClass) {
        let class = match self.head_class(resp, self.replayable()) {
            ResponseClass::Failure { retryable } => ResponseClass::Failure {
                retryable: retryable && self.replayable(),
            },
            other => other,
        };
        (resp.status().as_u16(), class)
    }

    fn classify_error(&self) -> ResponseClass {
        match self.classifier {
            // A call cut off is what gRPC clients call UNAVAILABLE.
            Classifier::Grpc(c) => match grpc::classify_code(&c, grpc::UNAVAILABLE) {
                ResponseClass::Failure { retryable } => ResponseClass::Failure {
                    retryable: retryable && self.replayable(),
                },
                _ => ResponseClass::Failure { retryable: false },
            },
            c => c.classify_error(&self.parts.method, self.replayable()),
        }
    }
}

/// A connect failure as the attempt loop sees it.
fn send_failure(e: SendError) -> SendFailure {
    match e {
        SendError::NotSent(_) => SendFailure::NotSent(None),
        SendError::Handshake(why) => SendFailure::NotSent(Some(why)),
        SendError::Local(message) => SendFailure::Local {
            status: http::StatusCode::SERVICE_UNAVAILABLE,
            message,
        },
        SendError::TimedOut => SendFailure::TimedOut,
        SendError::Failed(e) => SendFailure::Lost(e.to_string()),
        SendError::Broken(e) => SendFailure::Lost(e.to_string()),
    }
}

/// The reset code of a stream the endpoint reset (`REFUSED_STREAM`, RFC
/// 9113 §8.7, means it did not process it: safe to send elsewhere).
fn reset_reason(e: &hyper::Error) -> Option<::h2::Reason> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(h2) = c.downcast_ref::<::h2::Error>() {
            return h2.reason();
        }
        cur = c.source();
    }
    None
}

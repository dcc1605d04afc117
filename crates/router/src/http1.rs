//! HTTP/1.1's own rules, and the HTTP/1 [`Exchange`] of the attempt loop.
//!
//! What only HTTP/1 framing needs lives here: hop-by-hop headers
//! (`Connection` and what it names), `Via` and its loop guard, proxy-form
//! (absolute) request URIs, origin-form URIs on the way out, the request
//! body kept for a second attempt, and a pooled connection given back when
//! its response body ends. The router's protocol-neutral steps (identify,
//! bind, attempt loop) never see them.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{
    CONNECTION, CONTENT_LENGTH, HOST, HeaderMap, HeaderName, HeaderValue, PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE, VIA,
};
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{Request, Response, Uri};
use http_body::Body as _;
use http_body_util::{BodyExt, Either, Full};

use crate::attempt::{Answered, Exchange, SendFailure};
use crate::binding::Route;
use crate::body::{ClientBody, Observed, RequestBody};
use crate::client::{Client, ReqBody};
use crate::error::RouteError;
use crate::pool::SendError;
use crate::retry::{Classifier, ResponseClass};
use crate::router::{Body, Forwarding};
use crate::{deadline, headers};

mod checks;
mod fields;
pub mod seen;
pub mod serve;
mod upgrade;
pub mod wire;

pub(crate) use checks::{Checked, check_request};
pub(crate) use fields::{append_to as append_fields, get as field, take as take_field};
pub use upgrade::UpgradeStats;
use upgrade::{Asked, tunnel};

/// Request bodies up to this size (with a `Content-Length`) are kept so the
/// request can be requeued or retried; larger or chunked bodies stream
/// through once and are never sent twice.
pub(crate) const REPLAY_LIMIT: u64 = 64 * 1024;

/// What the router appends to `Via` in both directions.
pub const VIA_VALUE: &str = "1.1 strait";

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
/// Removes the hop-by-hop headers (RFC 9110 §7.6.1): `Connection` and every
/// header it names, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`,
/// `Transfer-Encoding`, `Upgrade`, `Proxy-Authenticate`,
/// `Proxy-Authorization`.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    // One pass of cheap name comparisons finds the few present (usually
    // none, or `Connection: keep-alive` alone); only those are removed.
    let mut found = [false; HOP_BY_HOP_COUNT];
    let mut any = false;
    for k in h.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|n| n == k) {
            found[i] = true;
            any = true;
        }
    }
    if !any {
        return;
    }
    if found[0] {
        let named: Vec<HeaderName> = h
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|n| !n.eq_ignore_ascii_case("close") && !n.eq_ignore_ascii_case("keep-alive"))
            // `Connection: Host` must not leave the backend without a Host.
            .filter(|n| !n.eq_ignore_ascii_case("host"))
            .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
            .collect();
        for n in named {
            h.remove(n);
        }
    }
    for (n, present) in HOP_BY_HOP.iter().zip(found) {
        if present {
            h.remove(n);
        }
    }
}

/// `Connection` first: [`strip_hop_by_hop`] reads it before removing it.
const HOP_BY_HOP_COUNT: usize = 9;

const HOP_BY_HOP: [HeaderName; HOP_BY_HOP_COUNT] = [
    CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
];

/// Appends `1.1 strait` to `Via`.
pub fn append_via(h: &mut HeaderMap) {
    h.append(VIA, HeaderValue::from_static(VIA_VALUE));
}

/// The number of proxies the request has been through, from `Via`.
pub fn via_depth(h: &HeaderMap) -> usize {
    h.get_all(VIA)
        .iter()
        .map(|v| {
            v.as_bytes()
                .split(|&b| b == b',')
                .filter(|s| !s.trim_ascii().is_empty())
                .count()
        })
        .sum()
}

/// Puts the `Host` the client's HTTP/1 server passed on as written (see
/// `Seen::host_passed`) into the request's map, to be changed there.
pub(crate) fn host_to_map(req: &mut Request<RequestBody>) {
    if let Some(host) = req.body_mut().take_host() {
        req.headers_mut().insert(HOST, host);
    }
}

/// `GET http://hello/x` (what `http_proxy` clients send): `Host` from the
/// URI's authority, the URI cut to path and query.
pub fn absolute_to_origin_form<B>(req: &mut Request<B>) {
    let uri = req.uri();
    let (Some(auth), Some(_)) = (uri.authority(), uri.scheme()) else {
        return;
    };
    let host = HeaderValue::from_str(auth.as_str());
    let origin = uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse::<Uri>();
    if let Ok(host) = host {
        req.headers_mut().insert(HOST, host);
    }
    if let Ok(u) = origin {
        *req.uri_mut() = u;
    }
}

/// One request on its way to a client's endpoints over HTTP/1.1: its
/// headers rewritten once, its body kept when small enough to send again.
pub(crate) struct Http1<'a> {
    client: &'a Arc<Client>,
    classifier: Classifier,
    /// What this hop adds to the request's headers.
    lines: Lines<'a>,
    parts: Parts,
    /// The fields the router does not read, as the client wrote them.
    opaque: Bytes,
    /// Origin-form: each connection is to the endpoint itself.
    pq: PathAndQuery,
    body: BodyState,
    /// `setHost`: the `Host` the backend sees, and the caller's.
    rewritten: Option<(HeaderValue, HeaderValue)>,
    /// The protocol a client asked to switch to, and its side of the
    /// tunnel once the backend agrees (101).
    upgrade: Option<Asked>,
}

impl<'a> Http1<'a> {
    /// Rewrites `req`'s headers for `route` (hop-by-hop headers off, `Via`,
    /// `Forwarded`, `setHost`, `l5d-*`, the deadline). A body small enough
    /// to send again is read by [`Http1::keep_body`].
    pub(crate) fn new(
        mut req: Box<Request<RequestBody>>,
        route: &'a Route,
        fwd: &Forwarding<'_>,
    ) -> Http1<'a> {
        let client = &route.client;
        // An upgrade (a WebSocket): `Upgrade` and `Connection: upgrade` go
        // to the backend, and the client's connection is kept to tunnel.
        let limits = &fwd.server.limits;
        let seen = req.body().seen();
        // (`Connection: upgrade` is a hop-by-hop field.)
        let upgrade = if seen.hop() {
            upgrade::asked(&mut req, limits.upgrade_idle_timeout, fwd.upgrades)
        } else {
            None
        };
        // What changes the `Host` (or reads it beside the map) takes it
        // into the map first.
        if client.host.is_some() || fwd.server.add_forwarded {
            host_to_map(&mut req);
        }
        let (mut parts, mut body) = (*req).into_parts();
        let opaque = body.take_opaque();
        let h = &mut parts.headers;
        if seen.hop() {
            strip_hop_by_hop(h);
        }
        if let Some(asked) = &upgrade {
            h.insert(UPGRADE, asked.protocol.clone());
            h.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        }
        if fwd.server.add_forwarded {
            headers::add_forwarded(h, fwd.remote, fwd.server.local);
        }
        if !seen.host() && h.get(HOST).is_none() {
            h.insert(HOST, HeaderValue::from_static(""));
        }
        // setHost: the backend sees the namer's host; redirects it sends
        // back are pointed at the caller's.
        let rewritten = client
            .host
            .as_ref()
            .and_then(|new| Some((new.clone(), h.insert(HOST, new.clone())?)));
        // `Via`, `l5d-dst-*`, `l5d-ctx-dtab` and the trace headers are
        // written as lines after the request's headers (see `Lines`).
        if seen.l5d() {
            headers::strip_own_l5d(h);
        }
        let lines = Lines {
            service: route.service.l5d_dst.as_ref(),
            client: client.l5d_dst.as_ref(),
            residual: (!route.residual.is_empty())
                .then(|| HeaderValue::from_str(&route.residual.show()).ok())
                .flatten(),
            dtab: fwd.local.and_then(|l| HeaderValue::from_str(&l.text).ok()),
            trace: fwd.trace.clone(),
        };
        deadline::write(h, fwd.deadline, fwd.total, seen.l5d());
        let pq = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let body = ClientBody::new(body, limits.body_idle_timeout, limits.max_body_bytes);
        let body = if body.is_end_stream() {
            // No body (most GETs): nothing to read.
            BodyState::Kept(Bytes::new())
        } else if body.size_hint().exact().is_some_and(|n| n <= REPLAY_LIMIT) {
            BodyState::ToKeep(Some(body))
        } else {
            BodyState::Stream(Some(body))
        };
        Http1 {
            client,
            classifier: route.service.policy.classifier,
            lines,
            parts,
            opaque,
            pq,
            body,
            rewritten,
            upgrade,
        }
    }

    /// Reads a body small enough to keep, so the request can be sent again.
    pub(crate) async fn keep_body(&mut self) -> Result<(), RouteError> {
        if let BodyState::ToKeep(body) = &mut self.body {
            let Some(body) = body.take() else {
                return Ok(());
            };
            let bytes = body.collect().await.map_err(|e| RouteError::Refused {
                status: e.status(),
                message: e.to_string(),
            })?;
            self.body = BodyState::Kept(bytes.to_bytes());
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
        .opaque(&self.opaque)
    }

    /// The response to give the caller: its body reports its end to the
    /// balancer and gives the connection back to the pool; hop-by-hop
    /// headers off, `Via` on, `setHost`'s host pointed back at the
    /// caller's.
    pub(crate) fn finish(
        &mut self,
        answered: Answered<Box<Response<wire::Body>>>,
    ) -> Box<Response<Body>> {
        let Answered {
            response: resp,
            lease,
            outcome,
        } = answered;
        if resp.status() == http::StatusCode::SWITCHING_PROTOCOLS
            && let Some(asked) = self.upgrade.take()
        {
            return Box::new(tunnel(*resp, asked, lease));
        }
        // Read to the end, the body gives its connection back itself.
        // The client side left the hop-by-hop fields (and a
        // Content-Length beside Transfer-Encoding) out of the head.
        let mut resp = resp;
        if let Some((new, original)) = &self.rewritten {
            // `Location` and the like are rewritten in a map.
            if let Some(fields) = resp.body_mut().take_fields() {
                fields.into_map(resp.headers_mut());
            }
            headers::restore_host(resp.headers_mut(), new, original);
        }
        match resp.body_mut().fields_mut() {
            Some(fields) => fields.add_via(),
            None => append_via(resp.headers_mut()),
        }
        // Boxed again with the router's body: the router and the server
        // pass a pointer, not the ~280 bytes of a response.
        Box::new(resp.map(|b| Either::Left(Observed::with_lease(b, lease, outcome))))
    }
}

/// The `Content-Length` of a response, for the access log.
pub(crate) fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

impl Exchange for Http1<'_> {
    type Response = Box<Response<wire::Body>>;

    fn replayable(&self) -> bool {
        self.body.kept()
    }

    fn send(
        &mut self,
        addr: SocketAddr,
        deadline: tokio::time::Instant,
    ) -> impl Future<Output = Result<Self::Response, SendFailure>> + Send {
        let body = self.body.next();
        let head = wire::RequestHead {
            method: &self.parts.method,
            path_and_query: self.pq.as_str(),
            headers: &self.parts.headers,
            opaque: &self.opaque,
            lines: Some(&self.lines),
        };
        let pool = &self.client.pool;
        async move {
            let Some(body) = body else {
                return Err(SendFailure::Lost(
                    "the request body was already sent".into(),
                ));
            };
            pool.send(addr, &head, body, deadline)
                .await
                .map_err(|e| match e {
                    SendError::TimedOut => SendFailure::TimedOut,
                    SendError::NotSent(_) => SendFailure::NotSent(None),
                    SendError::Handshake(why) => SendFailure::NotSent(Some(why)),
                    SendError::Local(message) => SendFailure::Local {
                        status: http::StatusCode::SERVICE_UNAVAILABLE,
                        message,
                    },
                    SendError::Broken(wire::WireError::ClientBody(client)) => SendFailure::Local {
                        status: client.status(),
                        message: client.to_string(),
                    },
                    SendError::Broken(e) => SendFailure::Lost(error_chain(&e)),
                    SendError::Failed(e) => SendFailure::Lost(error_chain(&e)),
                })
        }
    }

    fn classify(&self, resp: &Self::Response) -> (u16, ResponseClass) {
        let (method, status, kept) = (&self.parts.method, resp.status(), self.body.kept());
        // The fields as written, or a 101's map.
        let class = match resp.body().fields() {
            Some(f) => {
                self.classifier
                    .classify_with(method, status, || f.get(b"l5d-retryable"), kept)
            }
            None => self
                .classifier
                .classify(method, status, resp.headers(), kept),
        };
        (resp.status().as_u16(), class)
    }

    fn classify_error(&self) -> ResponseClass {
        self.classifier
            .classify_error(&self.parts.method, self.body.kept())
    }
}

/// The headers this hop adds to every attempt, written as header lines
/// straight into the request head after the request's own (no
/// `HeaderMap` insert, no allocation): `Via`, `l5d-dst-service`,
/// `l5d-dst-client`, `l5d-dst-residual`, `l5d-ctx-dtab` and the trace
/// headers. The request's own headers of those names (but `Via`, which is
/// a list) were taken off.
struct Lines<'a> {
    service: Option<&'a HeaderValue>,
    client: Option<&'a HeaderValue>,
    residual: Option<HeaderValue>,
    dtab: Option<HeaderValue>,
    trace: crate::trace::Trace,
}

impl wire::Lines for Lines<'_> {
    fn write(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(b"via: ");
        buf.extend_from_slice(VIA_VALUE.as_bytes());
        buf.extend_from_slice(b"\r\n");
        headers::write_l5d_lines(
            buf,
            self.service,
            self.client,
            self.residual.as_ref(),
            self.dtab.as_ref(),
        );
        self.trace.write_lines(buf);
    }
}

/// The request body across attempts.
enum BodyState {
    /// Kept in memory: every attempt sends a copy.
    Kept(Bytes),
    /// Streamed: only the first attempt can send it.
    Stream(Option<ClientBody>),
    /// To be kept: [`Http1::keep_body`] reads it before the first attempt.
    ToKeep(Option<ClientBody>),
}

impl BodyState {
    fn kept(&self) -> bool {
        matches!(self, BodyState::Kept(_))
    }

    fn next(&mut self) -> Option<ReqBody> {
        match self {
            BodyState::Kept(b) => Some(Either::Right(Full::new(b.clone()))),
            BodyState::Stream(s) | BodyState::ToKeep(s) => s.take().map(Either::Left),
        }
    }
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_named_by_connection_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("close, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(TE, HeaderValue::from_static("trailers"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "only end-to-end headers stay: {h:?}");
        assert!(h.contains_key("x-keep"));
    }

    #[test]
    fn via_depth_counts_comma_separated_entries() {
        let mut h = HeaderMap::new();
        h.append(VIA, HeaderValue::from_static("1.1 a, 1.1 b"));
        h.append(VIA, HeaderValue::from_static("1.1 c"));
        assert_eq!(via_depth(&h), 3);
    }

    #[test]
    fn absolute_form_moves_the_authority_into_host() {
        let mut r = Request::get("http://hello:8080/x?y=1").body(()).unwrap();
        absolute_to_origin_form(&mut r);
        assert_eq!(r.uri().to_string(), "/x?y=1");
        assert_eq!(r.headers()[HOST], "hello:8080");
    }
}

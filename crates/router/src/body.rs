//! A response body that tells the balancer when it ends: peak-EWMA counts a
//! request as outstanding until its response body is done, not just until
//! its headers arrive (linkerd2-proxy's `hyper-balance` does the same).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::http1::seen::Seen;

/// Called once when the body ends (`true`, with its trailers if it had
/// any) or fails or is dropped early (`false`).
pub type OnEnd = Box<dyn FnOnce(bool, Option<&http::HeaderMap>) + Send>;

/// What a response body's error can be: hyper's (h2) or the HTTP/1
/// client's.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A backend's response body: read by Strait's HTTP/1 client, or hyper's
/// h2 stream.
pub enum Inner {
    /// HTTP/1.1.
    H1(crate::http1::wire::Body),
    /// HTTP/2.
    H2(Incoming),
}

impl From<Incoming> for Inner {
    fn from(b: Incoming) -> Inner {
        Inner::H2(b)
    }
}

impl From<crate::http1::wire::Body> for Inner {
    fn from(b: crate::http1::wire::Body) -> Inner {
        Inner::H1(b)
    }
}

impl Inner {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self {
            Inner::H1(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            Inner::H2(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Inner::H1(b) => b.is_end_stream(),
            Inner::H2(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Inner::H1(b) => b.size_hint(),
            Inner::H2(b) => b.size_hint(),
        }
    }
}

/// What a response body's end tells.
enum End {
    /// The balancer's lease on the endpoint: finished with the outcome
    /// (a failure, if the body fails or is dropped early). Most bodies:
    /// no allocation.
    Lease(strait_balancer::Lease, strait_balancer::Outcome),
    /// Anything else.
    Hook(OnEnd),
}

/// A backend's response body, with a hook for its end.
pub struct Observed {
    inner: Inner,
    on_end: Option<End>,
    /// A gRPC call's deadline: when it passes before the stream ends,
    /// the stream is cut and ended with `grpc-status: 4`.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The deadline passed: the trailers have been given.
    expired: bool,
}

impl Observed {
    /// Wraps `inner`; `on_end` runs exactly once.
    pub fn new(inner: impl Into<Inner>, on_end: OnEnd) -> Self {
        Observed {
            inner: inner.into(),
            on_end: Some(End::Hook(on_end)),
            deadline: None,
            expired: false,
        }
    }

    /// Wraps `inner`; its end finishes `lease` with `outcome` (or a
    /// failure, when the body fails or is dropped before its end).
    pub fn with_lease(
        inner: impl Into<Inner>,
        lease: strait_balancer::Lease,
        outcome: strait_balancer::Outcome,
    ) -> Self {
        Observed {
            inner: inner.into(),
            on_end: Some(End::Lease(lease, outcome)),
            deadline: None,
            expired: false,
        }
    }

    /// Cuts the stream at `at` (a gRPC call's deadline): its caller gets
    /// trailers with `grpc-status: 4` (DEADLINE_EXCEEDED), and the
    /// backend's stream is reset when the body is dropped.
    pub fn with_deadline(mut self, at: tokio::time::Instant) -> Self {
        self.deadline = Some(Box::pin(tokio::time::sleep_until(at)));
        self
    }

    /// The HTTP/1 client's body inside, which holds the response's
    /// end-to-end fields until the server writes them.
    pub fn h1(&self) -> Option<&crate::http1::wire::Body> {
        match &self.inner {
            Inner::H1(b) => Some(b),
            Inner::H2(_) => None,
        }
    }

    /// [`Observed::h1`], to change.
    pub fn h1_mut(&mut self) -> Option<&mut crate::http1::wire::Body> {
        match &mut self.inner {
            Inner::H1(b) => Some(b),
            Inner::H2(_) => None,
        }
    }

    fn end(&mut self, ok: bool, trailers: Option<&http::HeaderMap>) {
        match self.on_end.take() {
            Some(End::Lease(lease, outcome)) => {
                lease.finish(if ok {
                    outcome
                } else {
                    strait_balancer::Outcome::Failure
                });
            }
            Some(End::Hook(f)) => f(ok, trailers),
            None => {}
        }
    }
}

impl Body for Observed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.expired {
            return Poll::Ready(None);
        }
        let r = this.inner.poll_frame(cx);
        if r.is_pending()
            && let Some(d) = &mut this.deadline
            && d.as_mut().poll(cx).is_ready()
        {
            this.expired = true;
            this.end(false, None);
            let mut t = http::HeaderMap::new();
            t.insert("grpc-status", http::HeaderValue::from_static("4"));
            t.insert(
                "grpc-message",
                http::HeaderValue::from_static("the call's grpc-timeout passed (Strait)"),
            );
            return Poll::Ready(Some(Ok(Frame::trailers(t))));
        }
        match &r {
            Poll::Ready(None) => this.end(true, None),
            Poll::Ready(Some(Err(_))) => this.end(false, None),
            // Trailers are the last frame.
            Poll::Ready(Some(Ok(f))) if f.is_trailers() => this.end(true, f.trailers_ref()),
            _ => {
                if this.inner.is_end_stream() {
                    this.end(true, None);
                }
            }
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.expired || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        let done = self.inner.is_end_stream();
        self.end(done, None);
    }
}

/// A client's request body as its server read it: none, HTTP/1.1 from
/// the connection, or hyper's h2 stream.
pub enum RequestBody {
    /// No body (a GET; a request without `Content-Length` or chunked),
    /// what its head held, and its fields the router does not read (as
    /// the client wrote them).
    Empty(Seen, Bytes),
    /// Read from an HTTP/1.1 connection as it is asked for.
    H1(crate::http1::serve::Body),
    /// An HTTP/2 stream's DATA frames.
    H2(Incoming),
}

impl RequestBody {
    /// The header families the client's head held, as its HTTP/1 server
    /// noted them; [`Seen::ALL`] for h2.
    pub fn seen(&self) -> Seen {
        match self {
            RequestBody::Empty(s, _) => *s,
            RequestBody::H1(b) => b.seen,
            RequestBody::H2(_) => Seen::ALL,
        }
    }

    /// The head's fields the router does not read, as `name: value\r\n`
    /// lines the client wrote (empty for h2, whose map has them all). A
    /// reader of an arbitrary field looks here after the map.
    pub fn opaque(&self) -> &Bytes {
        static NONE: Bytes = Bytes::new();
        match self {
            RequestBody::Empty(_, o) => o,
            RequestBody::H1(b) => &b.opaque,
            RequestBody::H2(_) => &NONE,
        }
    }

    /// Takes the `Host` field out of the fields passed on as written
    /// ([`Seen::host_passed`]), for the router to put it in the map and
    /// change it (`setHost`, an absolute URI's authority); `None` when it
    /// is not there.
    pub fn take_host(&mut self) -> Option<http::HeaderValue> {
        let (seen, opaque) = match self {
            RequestBody::Empty(seen, opaque) => (seen, opaque),
            RequestBody::H1(b) => (&mut b.seen, &mut b.opaque),
            RequestBody::H2(_) => return None,
        };
        if !seen.host_passed() {
            return None;
        }
        *seen = seen.with_host_passed(false);
        let (value, rest) = crate::http1::take_field(opaque, b"host")?;
        *opaque = rest;
        http::HeaderValue::from_maybe_shared(value).ok()
    }

    /// Takes [`RequestBody::opaque`]'s fields, to be written to a backend.
    pub fn take_opaque(&mut self) -> Bytes {
        match self {
            RequestBody::Empty(_, o) => std::mem::take(o),
            RequestBody::H1(b) => std::mem::take(&mut b.opaque),
            RequestBody::H2(_) => Bytes::new(),
        }
    }
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestBody::Empty(seen, opaque) => f
                .debug_tuple("Empty")
                .field(seen)
                .field(&opaque.len())
                .finish(),
            RequestBody::H1(b) => f.debug_tuple("H1").field(&b.seen).finish(),
            RequestBody::H2(b) => f.debug_tuple("H2").field(b).finish(),
        }
    }
}

/// A request body that may carry its head's fields the router does not
/// read ([`RequestBody::opaque`]): what an identifier looks in for a
/// header that is not in the map.
pub trait Opaque {
    /// Those fields, as `name: value\r\n` lines.
    fn opaque_fields(&self) -> &[u8] {
        &[]
    }

    /// The `Host` among them, when where it sits is known.
    fn passed_host(&self) -> Option<&[u8]> {
        None
    }
}

impl Opaque for RequestBody {
    fn opaque_fields(&self) -> &[u8] {
        self.opaque()
    }

    fn passed_host(&self) -> Option<&[u8]> {
        let at = self.seen().host_at()?;
        self.opaque().get(at)
    }
}

impl Opaque for () {}

impl From<Incoming> for RequestBody {
    fn from(b: Incoming) -> RequestBody {
        RequestBody::H2(b)
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            RequestBody::Empty(..) => Poll::Ready(None),
            RequestBody::H1(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            RequestBody::H2(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Empty(..) => true,
            RequestBody::H1(b) => b.is_end_stream(),
            RequestBody::H2(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Empty(..) => SizeHint::with_exact(0),
            RequestBody::H1(b) => b.size_hint(),
            RequestBody::H2(b) => b.size_hint(),
        }
    }
}

/// A client's request body on its way to a backend. Its errors are the
/// client's (an upload broken off, malformed chunked framing, a pause
/// longer than `requestBodyIdleTimeoutMs`, more than `maxRequestBodyKB`),
/// kept apart from the backend's so that no endpoint is blamed for them.
pub struct ClientBody {
    inner: RequestBody,
    idle: Duration,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
    max: Option<u64>,
    read: u64,
}

impl ClientBody {
    /// `inner`, which may pause at most `idle` between frames and carry at
    /// most `max` bytes.
    pub fn new(inner: RequestBody, idle: Duration, max: Option<u64>) -> ClientBody {
        ClientBody {
            inner,
            idle,
            pause: None,
            max,
            read: 0,
        }
    }
}

/// The client's request body failed.
#[derive(Debug)]
pub enum ClientBodyError {
    /// Reading it failed (broken off, bad framing).
    Failed(BoxError),
    /// Nothing arrived for this long.
    Idle(Duration),
    /// It went past this many bytes.
    TooLarge(u64),
    /// It did not match its `Content-Length`: this many bytes were
    /// still due (or fewer than this were left) when it ended.
    Length(u64),
}

impl std::fmt::Display for ClientBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientBodyError::Failed(e) => write!(f, "the client's request body failed: {e}"),
            ClientBodyError::Idle(d) => write!(
                f,
                "the client's request body paused for {} ms (requestBodyIdleTimeoutMs)",
                d.as_millis()
            ),
            ClientBodyError::TooLarge(n) => write!(
                f,
                "the client's request body is larger than {n} bytes (maxRequestBodyKB)"
            ),
            ClientBodyError::Length(n) => write!(
                f,
                "the client's request body did not match its Content-Length ({n} bytes left)"
            ),
        }
    }
}

impl std::error::Error for ClientBodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientBodyError::Failed(e) => Some(&**e),
            _ => None,
        }
    }
}

impl ClientBodyError {
    /// The status the client gets: 400, 408 or 413.
    pub fn status(&self) -> http::StatusCode {
        match self {
            ClientBodyError::Failed(_) | ClientBodyError::Length(_) => {
                http::StatusCode::BAD_REQUEST
            }
            ClientBodyError::Idle(_) => http::StatusCode::REQUEST_TIMEOUT,
            ClientBodyError::TooLarge(_) => http::StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    /// The client's body error in `e`'s chain of causes, if it is there.
    pub fn find<'e>(e: &'e (dyn std::error::Error + 'static)) -> Option<&'e ClientBodyError> {
        let mut cur = Some(e);
        while let Some(c) = cur {
            if let Some(found) = c.downcast_ref::<ClientBodyError>() {
                return Some(found);
            }
            cur = c.source();
        }
        None
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.read += data.len() as u64;
                    if let Some(max) = this.max.filter(|m| this.read > *m) {
                        return Poll::Ready(Some(Err(ClientBodyError::TooLarge(max))));
                    }
                }
                if let Some(p) = &mut this.pause {
                    p.as_mut().reset(tokio::time::Instant::now() + this.idle);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(ClientBodyError::Failed(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let idle = this.idle;
                let pause = this
                    .pause
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match pause.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(ClientBodyError::Idle(idle)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

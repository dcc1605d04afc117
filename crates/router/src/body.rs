//! A response body that tells the balancer when it ends: peak-EWMA counts a
//! request as outstanding until its response body is done, not just until
//! its headers arrive (linkerd2-proxy's `hyper-balance` does the same).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

/// Called once when the body ends (`true`) or fails or is dropped early
/// (`false`).
pub type OnEnd = Box<dyn FnOnce(bool) + Send>;

/// A backend's response body, with a hook for its end.
pub struct Observed {
    inner: Incoming,
    on_end: Option<OnEnd>,
}

impl Observed {
    /// Wraps `inner`; `on_end` runs exactly once.
    pub fn new(inner: Incoming, on_end: OnEnd) -> Self {
        Observed {
            inner,
            on_end: Some(on_end),
        }
    }

    fn end(&mut self, ok: bool) {
        if let Some(f) = self.on_end.take() {
            f(ok);
        }
    }
}

impl Body for Observed {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        match &r {
            Poll::Ready(None) => this.end(true),
            Poll::Ready(Some(Err(_))) => this.end(false),
            _ => {
                if this.inner.is_end_stream() {
                    this.end(true);
                }
            }
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        let done = self.inner.is_end_stream();
        self.end(done);
    }
}

/// A client's request body on its way to a backend. Its errors are the
/// client's (an upload broken off, malformed chunked framing), kept apart
/// from the backend's so that no endpoint is blamed for them.
pub struct ClientBody(pub Incoming);

/// The client's request body failed.
#[derive(Debug)]
pub struct ClientBodyError(hyper::Error);

impl std::fmt::Display for ClientBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the client's request body failed: {}", self.0)
    }
}

impl std::error::Error for ClientBodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl ClientBodyError {
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
        Pin::new(&mut self.0)
            .poll_frame(cx)
            .map(|f| f.map(|r| r.map_err(ClientBodyError)))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

//! An h2 request body on its way to a backend: streamed through at once,
//! and kept on the side, while it stays within
//! `retryBufferSize.requestBytes`, so that the request can be retried
//! once it has ended (Linkerd's replay buffer). A body that grows past
//! the limit stops being kept; nothing waits for it.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use crate::body::{ClientBody, ClientBodyError};

/// The body of every request an h2 client sends: the client's, kept on
/// the side as it streams, or a replay of a kept one.
pub type H2ReqBody = http_body_util::Either<Tee, Replay>;

/// What was kept of a request body.
#[derive(Default)]
struct Kept {
    data: Vec<Bytes>,
    trailers: Option<HeaderMap>,
    len: u64,
    /// The body has ended.
    done: bool,
    /// It went past the limit: nothing is kept.
    over: bool,
    /// The rest of the client's body, not read yet, given back by an
    /// attempt that stopped sending it (its stream was reset or ended
    /// early): a retry sends what was kept, then this.
    rest: Option<ClientBody>,
}

#[derive(Default)]
struct Shared {
    kept: Mutex<Kept>,
    /// Told when the kept body is settled: ended, over the limit, or its
    /// rest given back.
    settled: tokio::sync::Notify,
}

/// The kept copy, shared by the exchange and the body streaming it.
#[derive(Clone, Default)]
pub struct Keep(Arc<Shared>);

impl Keep {
    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.0.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn settle(&self) {
        self.0.settled.notify_one();
    }

    /// The body again, for a retry: the kept frames, then what the client
    /// has not sent yet (if an attempt gave it back), kept on the side in
    /// turn; `None` when it went past the limit or is still with an
    /// attempt.
    pub fn replay(&self, limit: u64) -> Option<H2ReqBody> {
        let mut k = self.lock();
        if k.over {
            return None;
        }
        if k.done {
            return Some(http_body_util::Either::Right(Replay {
                data: k.data.iter().cloned().collect(),
                trailers: k.trailers.clone(),
                left: k.len,
            }));
        }
        let rest = k.rest.take()?;
        let ahead = k.data.iter().cloned().map(Frame::data).collect();
        drop(k);
        Some(http_body_util::Either::Left(Tee {
            ahead,
            inner: Some(rest),
            keep: self.clone(),
            limit,
        }))
    }

    /// Whether the body can be sent again now.
    pub fn replayable(&self) -> bool {
        let k = self.lock();
        !k.over && (k.done || k.rest.is_some())
    }

    /// Waits up to `within` for the body to settle: an endpoint that
    /// failed a request before reading all of it leaves the rest with the
    /// attempt for a moment, until its stream ends and gives it back.
    pub async fn settled(&self, within: std::time::Duration) {
        let wait = async {
            loop {
                let notified = self.0.settled.notified();
                {
                    let k = self.lock();
                    if k.over || k.done || k.rest.is_some() {
                        return;
                    }
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(within, wait).await;
    }
}

/// The client's body, streamed, with a copy kept in `keep` up to `limit`
/// bytes. Frames read ahead ([`Tee::read_ahead`]) go out first.
pub struct Tee {
    /// Read from the client, not sent yet.
    ahead: VecDeque<Frame<Bytes>>,
    /// The client's body; `None` once it has ended.
    inner: Option<ClientBody>,
    keep: Keep,
    limit: u64,
}

impl Tee {
    /// Streams `inner`, keeping up to `limit` bytes of it in `keep`.
    pub fn new(inner: ClientBody, keep: Keep, limit: u64) -> Tee {
        Tee {
            ahead: VecDeque::new(),
            inner: Some(inner),
            keep,
            limit,
        }
    }

    /// Reads what the client has already sent, without waiting, while it
    /// fits the limit: a unary call's message usually arrives with its
    /// headers, and a request read whole before its first attempt can be
    /// retried even when the endpoint answers before reading it.
    pub async fn read_ahead(&mut self) -> Result<(), ClientBodyError> {
        while self.keep.lock().len <= self.limit {
            let Some(inner) = &mut self.inner else {
                return Ok(());
            };
            let polled =
                std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *inner).poll_frame(cx))).await;
            match polled {
                Poll::Pending => return Ok(()),
                Poll::Ready(None) => {
                    self.inner = None;
                    self.keep.lock().done = true;
                    self.keep.settle();
                }
                Poll::Ready(Some(Err(e))) => return Err(e),
                Poll::Ready(Some(Ok(frame))) => {
                    keep_frame(&self.keep, self.limit, &frame);
                    self.ahead.push_back(frame);
                }
            }
        }
        Ok(())
    }
}

/// Keeps a copy of `frame` while the kept body is within `limit`.
fn keep_frame(keep: &Keep, limit: u64, frame: &Frame<Bytes>) {
    let mut k = keep.lock();
    if k.over {
        return;
    }
    if let Some(d) = frame.data_ref() {
        let len = k.len + d.len() as u64;
        if len > limit {
            *k = Kept {
                over: true,
                ..Kept::default()
            };
            drop(k);
            keep.settle();
        } else {
            k.len = len;
            k.data.push(d.clone());
        }
    } else if let Some(t) = frame.trailers_ref() {
        k.trailers = Some(t.clone());
        k.done = true;
        drop(k);
        keep.settle();
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        // An attempt that stops before the client's body has ended gives
        // the rest back for a retry.
        if let Some(inner) = self.inner.take() {
            let mut k = self.keep.lock();
            if !k.over && !k.done {
                k.rest = Some(inner);
            }
            drop(k);
            self.keep.settle();
        }
    }
}

impl Body for Tee {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        let this = &mut *self;
        if let Some(f) = this.ahead.pop_front() {
            return Poll::Ready(Some(Ok(f)));
        }
        let Some(inner) = &mut this.inner else {
            return Poll::Ready(None);
        };
        let r = Pin::new(inner).poll_frame(cx);
        match &r {
            Poll::Ready(Some(Ok(frame))) => keep_frame(&this.keep, this.limit, frame),
            Poll::Ready(None) => {
                this.inner = None;
                this.keep.lock().done = true;
                this.keep.settle();
            }
            _ => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.ahead.is_empty() && self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(b) if self.ahead.is_empty() => b.size_hint(),
            _ => SizeHint::default(),
        }
    }
}

/// A kept body, sent again.
pub struct Replay {
    data: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
    left: u64,
}

impl Replay {
    /// An empty body.
    pub fn empty() -> Replay {
        Replay {
            data: VecDeque::new(),
            trailers: None,
            left: 0,
        }
    }
}

impl Body for Replay {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        if let Some(d) = self.data.pop_front() {
            self.left -= d.len() as u64;
            return Poll::Ready(Some(Ok(Frame::data(d))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_empty() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn a_replay_gives_back_every_frame_and_the_trailers() {
        let keep = Keep::default();
        {
            let mut k = keep.lock();
            k.data = vec![Bytes::from_static(b"ab"), Bytes::from_static(b"c")];
            k.len = 3;
            let mut t = HeaderMap::new();
            t.insert("x-t", http::HeaderValue::from_static("1"));
            k.trailers = Some(t);
        }
        assert!(
            keep.replay(10).is_none(),
            "not ended, and still with an attempt"
        );
        keep.lock().done = true;
        let r = keep.replay(10).unwrap();
        assert_eq!(r.size_hint().exact(), Some(3));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let collected = rt.block_on(r.collect()).unwrap();
        assert_eq!(collected.trailers().unwrap()["x-t"], "1");
        assert_eq!(collected.to_bytes(), "abc");
        keep.lock().over = true;
        assert!(keep.replay(10).is_none(), "past the limit: not kept");
    }
}

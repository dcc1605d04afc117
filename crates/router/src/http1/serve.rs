//! The HTTP/1.1 server side of a router, on the connection's own task.
//!
//! hyper's server connection parsed each request head into a `HeaderMap`
//! through its dispatcher, boxed a header-read timer per request, and ran
//! the router's future behind a boxed service call (callgrind: ~14k of the
//! ~42k instructions a proxied request cost). Here one task per connection
//! reads the head with `httparse` (as hyper does) into a buffer the
//! connection keeps, builds the request (values share that buffer), runs
//! the router's future in place, and writes the response head and body
//! straight from the response, coalescing a small body with its head into
//! one write. One timer per connection bounds the wait for each head.
//!
//! Framing follows RFC 9112 §6: a request body is framed by
//! `Transfer-Encoding: chunked` (which must be the last coding, and may not
//! come with `Content-Length`: a smuggling attempt, refused) or by
//! `Content-Length` (differing values refused), or there is none. A
//! request whose body was not read to its end closes the connection after
//! its response; so does `Connection: close`, HTTP/1.0 without
//! keep-alive, and a response without a known length to an HTTP/1.0
//! client. `Expect: 100-continue` is answered when the body is first read,
//! so a request refused before (413) never makes the client send it. A 101
//! to an upgrade, or a 2xx to `CONNECT`, hands the connection (with what
//! was read past the head) to the tunnel.
//!
//! A client that closes its connection while its request is in flight
//! cancels the request (hyper did the same).

use std::future::{Future, poll_fn};
use std::io;
use std::mem::MaybeUninit;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, DATE, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{oneshot, watch};

use super::fields::{self, Fields};
use super::seen::{self, Noter, Seen};
use super::wire::{self, ChunkState};
use crate::body::RequestBody;

/// A client connection's byte stream: TCP, TLS, a CONNECT tunnel, or an
/// in-memory duplex in tests.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// A client connection's stream, boxed once when it is accepted.
pub type BoxStream = Box<dyn Stream>;

/// A connection's first read buffer, and the most body copied into the
/// write buffer beside a head (larger chunks are written from where they are).
const READ_CHUNK: usize = 8 * 1024;

/// Header slots parsed on the stack; a head with more is parsed again
/// with `max_headers` slots on the heap.
const STACK_HEADERS: usize = 64;

/// What bounds a connection's request heads.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// From the wait for a head (a new connection's first, or the next on
    /// an idle keep-alive one) to its last byte.
    pub header_timeout: Duration,
    /// Header fields in one head.
    pub max_headers: usize,
    /// Bytes of one head (the exact line and header limits are the
    /// router's `check_request`).
    pub max_head: usize,
    /// How long a response may wait for the client to take its next byte
    /// (nginx's `send_timeout`); the connection closes after.
    pub send_timeout: Duration,
}

/// What answers each request of a connection.
pub trait Service {
    /// The body of its responses.
    type Body: http_body::Body<Data = Bytes, Error: std::fmt::Display> + Send + Unpin;
    /// Answers `req`.
    fn call(
        &self,
        req: Box<Request<RequestBody>>,
    ) -> impl Future<Output = Box<Response<Self::Body>>> + Send;

    /// Takes the end-to-end fields a response's body holds as its backend
    /// wrote them (an HTTP/1 backend's: not in the response's map).
    fn take_fields(_body: &mut Self::Body) -> Option<Fields> {
        None
    }
}

/// The connection's stream and what was read from it, shared by the
/// connection's loop (heads, responses) and the request body being read.
/// Both run on the connection's task; the lock is never held across a
/// wait.
struct Conn {
    /// `None` once handed to an upgrade's tunnel.
    io: Option<BoxStream>,
    rbuf: BytesMut,
    /// The current request's body was read to its end.
    body_done: bool,
    /// How long a write may wait for the client to take a byte.
    send_timeout: Duration,
}

type Shared = Arc<Mutex<Conn>>;

fn lock(c: &Mutex<Conn>) -> MutexGuard<'_, Conn> {
    c.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Conn {
    /// Reads more into the buffer: the number of bytes read, 0 at its end.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(io) = &mut self.io else {
            return Poll::Ready(Ok(0));
        };
        wire::make_room(&mut self.rbuf);
        pin!(io.read_buf(&mut self.rbuf)).poll(cx)
    }

    fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.io {
            Some(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            None => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.io {
            Some(io) => Pin::new(io).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

/// Why a head is refused: the status and what the client is told.
#[derive(Debug, PartialEq)]
pub struct Refusal {
    /// 400, 408, 414 or 431.
    pub status: StatusCode,
    /// What the client is told.
    pub message: String,
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

fn bad(message: impl Into<String>) -> Refusal {
    refuse(StatusCode::BAD_REQUEST, message)
}

/// How a request's body is framed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Framing {
    /// No body.
    None,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request head, and what the connection needs of it.
#[derive(Debug)]
pub struct Head {
    /// The request: method, target, version and the header fields the
    /// router reads (values share the connection's read buffer); its
    /// body is set once the connection's part is known. Boxed once here:
    /// the routing layers pass a pointer, not the ~300 bytes of a
    /// request (each move of it was a `memcpy`).
    pub req: Box<Request<RequestBody>>,
    /// The other fields, as the client wrote them (`name: value\r\n`
    /// lines).
    pub opaque: Bytes,
    /// How its body is framed.
    pub framing: Framing,
    /// The client may send another request on the connection.
    pub keep_alive: bool,
    /// `Expect: 100-continue`.
    pub expect: bool,
    /// `Connection: upgrade` with `Upgrade`, or `CONNECT`.
    pub upgrade: bool,
    /// `TE: trailers`: a chunked response may carry trailers.
    pub trailers: bool,
    /// The header families it held.
    pub seen: Seen,
}

/// Parses a complete request head off the front of `buf`; `None` until it
/// is all there (or a refusal once it is too large to be).
pub fn parse_head(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Head>, Refusal> {
    match parse_with(buf, limits, false) {
        Err(None) => {
            // More fields than the stack holds: again, with all the room allowed.
            parse_with(buf, limits, true).map_err(|e| {
                e.unwrap_or_else(|| {
                    refuse(
                        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        format!(
                            "the request has more than {} header fields",
                            limits.max_headers
                        ),
                    )
                })
            })
        }
        r => r.map_err(|e| e.unwrap_or_else(|| bad("the request head is malformed"))),
    }
}

/// [`parse_head`] with [`STACK_HEADERS`] slots (or, `heap`, with
/// `max_headers`); `Err(None)`: more fields than slots.
fn parse_with(
    buf: &mut BytesMut,
    limits: &Limits,
    heap: bool,
) -> Result<Option<Head>, Option<Refusal>> {
    let mut stack = [const { MaybeUninit::uninit() }; STACK_HEADERS];
    let mut more: Vec<MaybeUninit<httparse::Header<'_>>> = Vec::new();
    let slots: &mut [MaybeUninit<httparse::Header<'_>>] = if heap {
        more.resize_with(limits.max_headers, MaybeUninit::uninit);
        &mut more
    } else {
        &mut stack
    };
    let room = slots.len();
    let mut r = httparse::Request::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut r,
        &buf[..],
        slots,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() <= limits.max_head {
                return Ok(None);
            }
            // The line alone past the limit: 414; else the fields: 431.
            let line_ends = buf.iter().position(|&b| b == b'\n');
            return Err(Some(if line_ends.is_some_and(|i| i < limits.max_head) {
                refuse(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    format!("the request head is larger than {} bytes", limits.max_head),
                )
            } else {
                refuse(
                    StatusCode::URI_TOO_LONG,
                    format!("the request line is longer than {} bytes", limits.max_head),
                )
            }));
        }
        Err(httparse::Error::TooManyHeaders) if room < limits.max_headers => {
            return Err(None);
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Some(refuse(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!(
                    "the request has more than {} header fields",
                    limits.max_headers
                ),
            )));
        }
        Err(e) => return Err(Some(bad(format!("the request head is malformed: {e}")))),
    };
    if r.headers.len() > limits.max_headers {
        return Err(Some(refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "the request has more than {} header fields",
                limits.max_headers
            ),
        )));
    }
    if len > limits.max_head {
        return Err(Some(refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request head is larger than {} bytes", limits.max_head),
        )));
    }
    let version = if r.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let method = Method::from_bytes(r.method.unwrap_or_default().as_bytes())
        .map_err(|_| Some(bad("the request method is not a token")))?;
    // Where the target, each name and each value sit, so they can share
    // the head's bytes once it is split off.
    let base = buf.as_ptr() as usize;
    let span = |s: &[u8]| {
        let at = s.as_ptr() as usize - base;
        (at, at + s.len())
    };
    let target = span(r.path.unwrap_or_default().as_bytes());
    let n = r.headers.len();
    // What framing and the connection need, in the same pass.
    let mut length: Result<Option<u64>, String> = Ok(None);
    let (mut te, mut chunked_last, mut chunked_count) = (false, false, 0usize);
    let (mut close, mut keep_alive, mut upgrade_token, mut has_upgrade) =
        (false, false, false, false);
    let (mut expect, mut trailers) = (false, false);
    let mut at = wire::Spans::new();
    let mut noter = Noter::new();
    // Bit `i`: field `i` is one the router never reads, passed on as
    // written (see `fields::kept_block`).
    let mut opaque = 0u64;
    // `Connection` names a field to drop: every field goes in the map.
    let mut names_fields = false;
    // The last `Host` (there is one when the head passes the checks).
    let mut host = None;
    for (i, h) in r.headers.iter().enumerate() {
        let name = h.name.as_bytes();
        if !noter.field(name, h.value) {
            opaque |= 1u64.checked_shl(i as u32).unwrap_or(0);
        }
        let (ns, ne) = span(name);
        let (vs, ve) = span(h.value);
        let offsets = (ns as u32, ne as u32, vs as u32, ve as u32);
        at.push(offsets);
        match name.len() {
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for t in h.value.split(|&b| b == b',') {
                    let t = t.trim_ascii();
                    close |= t.eq_ignore_ascii_case(b"close");
                    keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
                    let upgrade = t.eq_ignore_ascii_case(b"upgrade");
                    upgrade_token |= upgrade;
                    names_fields |= !(t.is_empty()
                        || upgrade
                        || t.eq_ignore_ascii_case(b"close")
                        || t.eq_ignore_ascii_case(b"keep-alive"));
                }
            }
            14 if length.is_ok() && name.eq_ignore_ascii_case(b"content-length") => {
                length = wire::content_length(h.value, length);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                te = true;
                for c in h.value.split(|&b| b == b',') {
                    let c = c.trim_ascii();
                    if c.is_empty() {
                        continue;
                    }
                    chunked_last = c.eq_ignore_ascii_case(b"chunked");
                    chunked_count += usize::from(chunked_last);
                }
            }
            7 if name.eq_ignore_ascii_case(b"upgrade") => has_upgrade = true,
            4 if name.eq_ignore_ascii_case(b"host") => host = Some((vs, ve)),
            6 if name.eq_ignore_ascii_case(b"expect") => {
                expect = h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
            }
            2 if name.eq_ignore_ascii_case(b"te") => {
                trailers = h
                    .value
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"trailers"));
            }
            _ => {}
        }
    }
    let seen = noter.finish();
    // The router reads every field of a head it checks in full (and
    // refuses), or whose `Connection` names fields to drop; a bit per
    // field is kept for the first 64 only.
    if names_fields || seen.checked_block().is_none() || n > 64 {
        opaque = 0;
    }
    let seen = seen.with_host_passed(opaque != 0 && seen.host());
    let framing = if te {
        if version == Version::HTTP_10 {
            return Err(Some(bad(
                "Transfer-Encoding: an HTTP/1.0 request cannot be chunked",
            )));
        }
        if !chunked_last || chunked_count != 1 {
            return Err(Some(bad(
                "Transfer-Encoding: chunked must be the last coding, once",
            )));
        }
        if !matches!(length, Ok(None)) {
            return Err(Some(bad(
                "Content-Length with Transfer-Encoding: send one or the other",
            )));
        }
        Framing::Chunked
    } else {
        match length {
            Ok(None | Some(0)) => Framing::None,
            Ok(Some(n)) => Framing::Length(n),
            Err(e) => return Err(Some(bad(format!("Content-Length: {e}")))),
        }
    };
    let head = buf.split_to(len).freeze();
    let uri = Uri::from_maybe_shared(head.slice(target.0..target.1))
        .map_err(|_| Some(bad("the request target is not a valid URI")))?;
    let passed = |i: usize| opaque.checked_shr(i as u32).unwrap_or(0) & 1 == 1;
    let opaque_block = if opaque == 0 {
        Bytes::new()
    } else {
        fields::kept_block(&head, at.as_slice(), |i, _| passed(i))
    };
    // Where the `Host` passed on sits in the block, when the block is the
    // head's own bytes (as for most requests): read there, not searched.
    let from = (opaque_block.as_ptr() as usize).wrapping_sub(head.as_ptr() as usize);
    let seen = match host {
        Some((vs, ve))
            if seen.host_passed()
                && from + opaque_block.len() <= head.len()
                && from <= vs
                && ve <= from + opaque_block.len() =>
        {
            seen.with_host_at(vs - from..ve - from)
        }
        _ => seen,
    };
    // Room for what the router adds (`Forwarded`, `l5d-ctx-deadline`, a
    // `Host`) without growing the map; no map at all (no allocation) when
    // every field is passed on as written, as for most requests.
    let mapped = n - opaque.count_ones() as usize;
    let mut headers = HeaderMap::with_capacity(if mapped == 0 { 0 } else { mapped + 3 });
    for (i, &(ns, ne, vs, ve)) in at.as_slice().iter().enumerate() {
        if passed(i) {
            continue;
        }
        let (ns, ne, vs, ve) = (ns as usize, ne as usize, vs as usize, ve as usize);
        let raw = head.get(ns..ne).unwrap_or_default();
        let name = match seen::known(raw) {
            Some(n) => n,
            None => HeaderName::from_bytes(raw)
                .map_err(|_| Some(bad("a header name is not a token")))?,
        };
        let value = HeaderValue::from_maybe_shared(head.slice(vs..ve))
            .map_err(|_| Some(bad(format!("{name}: the value has a control character"))))?;
        headers.append(name, value);
    }
    let keep_alive = !close && (version == Version::HTTP_11 || keep_alive);
    let upgrade = method == Method::CONNECT || (upgrade_token && has_upgrade);
    let mut req = Box::new(Request::new(RequestBody::Empty(seen, Bytes::new())));
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.version_mut() = version;
    *req.headers_mut() = headers;
    Ok(Some(Head {
        req,
        opaque: opaque_block,
        framing,
        keep_alive,
        // RFC 9110 §10.1.1: never a 100 to an HTTP/1.0 client.
        expect: expect && framing != Framing::None && version == Version::HTTP_11,
        upgrade,
        trailers,
        seen,
    }))
}

/// What the response needs of its request.
struct Asked {
    head: bool,
    connect: bool,
    http10: bool,
    keep_alive: bool,
    trailers: bool,
    has_body: bool,
    /// Where the connection goes once a 101 (or a 2xx to CONNECT) is out.
    upgrade: Option<oneshot::Sender<Upgraded>>,
}

/// Serves HTTP/1.1 on `io` until the client closes it, a request or
/// response closes it, the head timeout passes, or `draining` turns true
/// (between requests).
pub async fn serve<S: Service>(
    svc: &S,
    io: BoxStream,
    limits: Limits,
    draining: Option<&mut watch::Receiver<bool>>,
) {
    // The wait for the server to drain is one waiter on the watch for the
    // connection's life: a wait made and dropped for every request costs
    // ~330 instructions (a lock, a list insert and removal, a random
    // shard).
    let mut drain = Drain {
        peek: draining.as_deref().cloned(),
        waker: None,
        wait: pin!(async move {
            match draining {
                Some(d) => {
                    let _ = d.wait_for(|v| *v).await;
                }
                None => std::future::pending().await,
            }
        }),
        done: false,
    };
    let shared: Shared = Arc::new(Mutex::new(Conn {
        io: Some(io),
        rbuf: BytesMut::with_capacity(READ_CHUNK),
        body_done: true,
        send_timeout: limits.send_timeout,
    }));
    let mut wbuf = Vec::with_capacity(1024);
    let mut timer = pin!(tokio::time::sleep(limits.header_timeout));
    loop {
        let head = match read_head(&shared, &limits, timer.as_mut(), &mut drain).await {
            Ok(Some(h)) => h,
            Ok(None) => break,
            Err(r) => {
                tracing::debug!(status = r.status.as_u16(), error = %r.message, "request refused");
                write_refusal(&shared, &mut wbuf, &r).await;
                return close(&shared, true).await;
            }
        };
        let (req, mut asked) = request(&shared, head);
        let resp = {
            let fut = pin!(svc.call(req));
            if asked.has_body {
                Some(fut.await)
            } else {
                // A client that hangs up cancels its request.
                let closed = pin!(client_closed(&shared));
                match futures_select(fut, closed).await {
                    Either::Left(r) => Some(r),
                    Either::Right(()) => None,
                }
            }
        };
        let Some(mut resp) = resp else {
            tracing::debug!("the client closed its connection with its request in flight");
            break;
        };
        let closing = drain.draining();
        let fields = S::take_fields(resp.body_mut());
        match write_response(&shared, &mut wbuf, resp, fields, &mut asked, closing).await {
            Next::KeepAlive => {}
            Next::Close => break,
            Next::CloseUnread => return close(&shared, true).await,
            Next::Upgrade => {
                let mut c = lock(&shared);
                let pre = c.rbuf.split().freeze();
                if let (Some(io), Some(tx)) = (c.io.take(), asked.upgrade.take()) {
                    let _ = tx.send(Upgraded::new(io, pre, None));
                }
                return;
            }
        }
    }
    close(&shared, false).await;
}

/// How long a connection closed with a request's bytes unread keeps
/// reading (and dropping) them, and how many it reads at most.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 1 << 20;

/// Shuts the connection down. With `unread` (a refused head, a body not
/// read to its end) what the client still sends is read and dropped for a
/// moment first, as nginx's lingering close: closing a socket with bytes
/// unread resets the connection, and the client could lose the answer.
async fn close(shared: &Shared, unread: bool) {
    let io = lock(shared).io.take();
    let Some(mut io) = io else {
        return;
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), io.shutdown()).await;
    if unread {
        let drain = async {
            let mut sink = [0u8; 4096];
            let mut read = 0;
            while read < LINGER_BYTES {
                match io.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read += n,
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
    }
}

enum Either<A, B> {
    Left(A),
    Right(B),
}

/// The first of `a` and `b` to finish (`a` polled first).
async fn futures_select<A: Future, B: Future>(
    mut a: Pin<&mut A>,
    mut b: Pin<&mut B>,
) -> Either<A::Output, B::Output> {
    poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        b.as_mut().poll(cx).map(Either::Right)
    })
    .await
}

/// Finishes when the client closes its side (or its connection fails);
/// a pipelined request's bytes are kept for later, and stop the watch.
async fn client_closed(shared: &Shared) {
    let mut watching = true;
    poll_fn(|cx| {
        if !watching {
            return Poll::Pending;
        }
        let mut c = lock(shared);
        if !c.rbuf.is_empty() {
            watching = false;
            return Poll::Pending;
        }
        match c.poll_fill(cx) {
            Poll::Ready(Ok(0) | Err(_)) => Poll::Ready(()),
            Poll::Ready(Ok(_)) => {
                watching = false;
                Poll::Pending
            }
            Poll::Pending => Poll::Pending,
        }
    })
    .await;
}

/// Reads the next request head: `None` when the connection ends first
/// (closed, idle past the head timeout, or draining between requests).
async fn read_head<F: Future<Output = ()>>(
    shared: &Shared,
    limits: &Limits,
    mut timer: Pin<&mut tokio::time::Sleep>,
    drain: &mut Drain<'_, F>,
) -> Result<Option<Head>, Refusal> {
    // When this head is due: the timer is reset to it only when it fires
    // early (it still holds an earlier head's deadline), so a busy
    // connection does not re-register a timer for every request.
    let mut due: Option<tokio::time::Instant> = None;
    // Once a head has come in part, how far the buffer has been searched
    // for its end: it is parsed again only when its end may be there (or
    // it outgrew the limit), so a head trickled a byte at a time costs
    // one pass, not one parse per read.
    let mut searched: Option<usize> = None;
    loop {
        let idle = {
            let mut c = lock(shared);
            let len = c.rbuf.len();
            if worth_parsing(&c.rbuf, searched, limits.max_head) {
                match parse_head(&mut c.rbuf, limits)? {
                    Some(head) => return Ok(Some(head)),
                    None => searched = Some(len),
                }
            }
            c.rbuf.is_empty()
        };
        if idle && drain.draining() {
            return Ok(None);
        }
        // Read at once if there is something to read; the timer is armed
        // only when the head has to be waited for.
        let read = match poll_fn(|cx| Poll::Ready(lock(shared).poll_fill(cx))).await {
            Poll::Ready(r) => r,
            Poll::Pending => {
                let due =
                    *due.get_or_insert_with(|| tokio::time::Instant::now() + limits.header_timeout);
                // The read just came back pending (its waker is this
                // task's): it is tried again once the task is woken, not
                // at once (a socket polled while not ready costs ~250
                // instructions in tokio's registration, once per request).
                let mut woken = false;
                let read = poll_fn(|cx| {
                    if std::mem::replace(&mut woken, true)
                        && let Poll::Ready(r) = lock(shared).poll_fill(cx)
                    {
                        return Poll::Ready(Some(r));
                    }
                    while timer.as_mut().poll(cx).is_ready() {
                        if tokio::time::Instant::now() >= due {
                            return Poll::Ready(None);
                        }
                        timer.as_mut().reset(due);
                    }
                    if idle && drain.poll(cx).is_ready() {
                        return Poll::Ready(None);
                    }
                    Poll::Pending
                })
                .await;
                match read {
                    Some(r) => r,
                    None if idle => return Ok(None),
                    None => {
                        return Err(refuse(
                            StatusCode::REQUEST_TIMEOUT,
                            format!(
                                "the request head did not arrive within {} ms \
                                 (requestHeaderTimeoutMs)",
                                limits.header_timeout.as_millis()
                            ),
                        ));
                    }
                }
            }
        };
        match read {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
}

/// Whether the server drains (`peek`, read between requests), and the
/// wait for it (`wait`), polled while a connection is idle between
/// requests: its waiter stays registered with the task's waker (`waker`),
/// so while that waker is the same the value is read instead (a wake-up
/// from the watch means it has changed); `done` once it has finished.
struct Drain<'a, F> {
    peek: Option<watch::Receiver<bool>>,
    waker: Option<Waker>,
    wait: Pin<&'a mut F>,
    done: bool,
}

impl<F: Future<Output = ()>> Drain<'_, F> {
    /// Whether the server drains now.
    fn draining(&self) -> bool {
        self.done || self.peek.as_ref().is_some_and(|d| *d.borrow())
    }

    /// Ready once the server drains; else the task is woken when it starts.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            if self.draining() {
                self.done = true;
                return Poll::Ready(());
            }
            return Poll::Pending;
        }
        if !self.done && self.wait.as_mut().poll(cx).is_pending() {
            self.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        self.done = true;
        Poll::Ready(())
    }
}

/// Whether `buf` is worth parsing as a head: it is not empty, and when
/// it was searched up to `searched` before (a head in part), the bytes
/// since may complete the blank line that ends a head (CRLF or, as
/// httparse also accepts, bare LF line ends), or it outgrew `max_head`.
fn worth_parsing(buf: &[u8], searched: Option<usize>, max_head: usize) -> bool {
    match searched {
        None => !buf.is_empty(),
        Some(from) => {
            let new = buf.get(from.saturating_sub(3)..).unwrap_or_default();
            buf.len() > max_head
                || new.windows(2).any(|w| w == b"\n\n")
                || new.windows(3).any(|w| w == b"\n\r\n")
        }
    }
}

/// The request for `head`, its body reading from the connection.
fn request(shared: &Shared, head: Head) -> (Box<Request<RequestBody>>, Asked) {
    let mut req = head.req;
    let has_body = head.framing != Framing::None;
    if has_body {
        lock(shared).body_done = false;
        *req.body_mut() = RequestBody::H1(Body {
            conn: Arc::clone(shared),
            decode: match head.framing {
                Framing::Length(n) => Decode::Length(n),
                _ => Decode::Chunked(ChunkState::Size),
            },
            continue_at: if head.expect { 0 } else { CONTINUE.len() },
            seen: head.seen,
            opaque: head.opaque,
        });
    } else if !head.opaque.is_empty() {
        *req.body_mut() = RequestBody::Empty(head.seen, head.opaque);
    }
    let mut asked = Asked {
        head: req.method() == Method::HEAD,
        connect: req.method() == Method::CONNECT,
        http10: req.version() == Version::HTTP_10,
        keep_alive: head.keep_alive,
        trailers: head.trailers,
        has_body,
        upgrade: None,
    };
    if head.upgrade {
        let (tx, rx) = oneshot::channel();
        asked.upgrade = Some(tx);
        req.extensions_mut()
            .insert(OnUpgrade(Arc::new(Mutex::new(Some(rx)))));
    }
    (req, asked)
}

/// What the connection does after a response.
#[derive(Debug, PartialEq)]
enum Next {
    KeepAlive,
    Close,
    /// Close, with the request's body not read to its end.
    CloseUnread,
    Upgrade,
}

/// How a response body goes out.
#[derive(Clone, Copy, PartialEq)]
enum Out {
    /// No body (HEAD, 1xx, 204, 304, a tunnel's 2xx or 101).
    None,
    /// This many bytes to go.
    Length(u64),
    Chunked,
    /// Until the connection closes (an HTTP/1.0 client, no length).
    Close,
}

/// Writes `resp`; what the connection does next.
async fn write_response<B>(
    shared: &Shared,
    wbuf: &mut Vec<u8>,
    resp: Box<Response<B>>,
    fields: Option<Fields>,
    asked: &mut Asked,
    closing: bool,
) -> Next
where
    B: http_body::Body<Data = Bytes, Error: std::fmt::Display> + Unpin,
{
    let (parts, mut body) = (*resp).into_parts();
    let status = parts.status;
    let upgrading = asked.upgrade.is_some()
        && (status == StatusCode::SWITCHING_PROTOCOLS || (asked.connect && status.is_success()));
    // A body not read to its end leaves the connection unusable.
    let body_left = asked.has_body && !lock(shared).body_done;
    let mut keep = asked.keep_alive && !closing && !body_left;
    let no_body = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || upgrading;
    wbuf.clear();
    wbuf.extend_from_slice(b"HTTP/1.1 ");
    wbuf.extend_from_slice(status.as_str().as_bytes());
    wbuf.push(b' ');
    match parts.extensions.get::<hyper::ext::ReasonPhrase>() {
        Some(r) => wbuf.extend_from_slice(r.as_bytes()),
        None => wbuf.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes()),
    }
    wbuf.extend_from_slice(b"\r\n");
    // `Date` and `Content-Length` are noticed while the fields are
    // written (standard names compare without hashing).
    let (mut has_date, mut declared, mut seen_length) = (false, None, false);
    if let Some(f) = &fields {
        f.write(wbuf);
        has_date = f.has_date();
        declared = f.length();
        seen_length = declared.is_some();
    }
    for (name, value) in &parts.headers {
        if *name == DATE {
            has_date = true;
        } else if *name == CONTENT_LENGTH && !seen_length {
            seen_length = true;
            declared = std::str::from_utf8(value.as_bytes())
                .ok()
                .and_then(|v| v.parse::<u64>().ok());
        }
        wbuf.extend_from_slice(name.as_str().as_bytes());
        wbuf.extend_from_slice(b": ");
        wbuf.extend_from_slice(value.as_bytes());
        wbuf.extend_from_slice(b"\r\n");
    }
    if !has_date {
        date::write(wbuf);
    }
    let mut out = if no_body {
        Out::None
    } else if let Some(n) = declared {
        Out::Length(n)
    } else if let Some(n) = body.size_hint().exact() {
        let mut b = [0; 20];
        wbuf.extend_from_slice(b"content-length: ");
        wbuf.extend_from_slice(wire::itoa(&mut b, n));
        wbuf.extend_from_slice(b"\r\n");
        Out::Length(n)
    } else if asked.http10 {
        keep = false;
        Out::Close
    } else {
        wbuf.extend_from_slice(b"transfer-encoding: chunked\r\n");
        Out::Chunked
    };
    if asked.head {
        out = Out::None;
    }
    if !upgrading {
        if !keep {
            wbuf.extend_from_slice(b"connection: close\r\n");
        } else if asked.http10 {
            wbuf.extend_from_slice(b"connection: keep-alive\r\n");
        }
    }
    wbuf.extend_from_slice(b"\r\n");
    drop(parts);

    let mut ended = out == Out::None;
    let mut short = false;
    while !ended {
        // A frame ready now joins what is buffered; only when the body
        // has to be waited for is the buffer written first.
        let frame = match poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await {
            Poll::Ready(f) => f,
            Poll::Pending => {
                if write_all(shared, wbuf, &[], b"").await.is_err() {
                    return Next::Close;
                }
                poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            }
        };
        match frame {
            None => {
                ended = true;
                match out {
                    Out::Chunked => wbuf.extend_from_slice(b"0\r\n\r\n"),
                    Out::Length(n) if n > 0 => short = true,
                    _ => {}
                }
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "the response body failed; closing the connection");
                let _ = write_all(shared, wbuf, &[], b"").await;
                return Next::Close;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(mut data) => {
                    if data.is_empty() {
                        continue;
                    }
                    let mut tail: &'static [u8] = b"";
                    match &mut out {
                        Out::Length(left) => {
                            if data.len() as u64 > *left {
                                data.truncate(usize::try_from(*left).unwrap_or(usize::MAX));
                                short = true;
                                ended = true;
                            }
                            *left -= data.len() as u64;
                            ended |= *left == 0;
                        }
                        Out::Chunked => {
                            use std::io::Write as _;
                            let _ = write!(wbuf, "{:x}\r\n", data.len());
                            tail = b"\r\n";
                        }
                        Out::Close | Out::None => {}
                    }
                    if data.len() + wbuf.len() <= READ_CHUNK {
                        wbuf.extend_from_slice(&data);
                        wbuf.extend_from_slice(tail);
                    } else if write_all(shared, wbuf, &data, tail).await.is_err() {
                        return Next::Close;
                    }
                }
                Err(frame) => {
                    if let (Out::Chunked, Ok(trailers)) = (out, frame.into_trailers()) {
                        wbuf.extend_from_slice(b"0\r\n");
                        if asked.trailers {
                            for (name, value) in &trailers {
                                wbuf.extend_from_slice(name.as_str().as_bytes());
                                wbuf.extend_from_slice(b": ");
                                wbuf.extend_from_slice(value.as_bytes());
                                wbuf.extend_from_slice(b"\r\n");
                            }
                        }
                        wbuf.extend_from_slice(b"\r\n");
                        ended = true;
                    }
                }
            },
        }
    }
    if write_all(shared, wbuf, &[], b"").await.is_err() {
        return Next::Close;
    }
    if upgrading {
        return Next::Upgrade;
    }
    if short || out == Out::Close {
        return Next::Close;
    }
    if asked.has_body && !lock(shared).body_done {
        return Next::CloseUnread;
    }
    if !keep {
        return Next::Close;
    }
    Next::KeepAlive
}

/// Writes `wbuf` (then clears it), `data` and `tail`, and flushes.
async fn write_all(
    shared: &Shared,
    wbuf: &mut Vec<u8>,
    data: &[u8],
    tail: &[u8],
) -> io::Result<()> {
    let (mut a, mut b, mut c) = (0, 0, 0);
    // Armed only when the client stops taking bytes (a write that would
    // block), re-armed by each write that goes through after.
    let mut stalled: Option<Pin<Box<tokio::time::Sleep>>> = None;
    poll_fn(|cx| {
        let mut conn = lock(shared);
        while a < wbuf.len() || b < data.len() || c < tail.len() {
            let slices = [
                io::IoSlice::new(&wbuf[a..]),
                io::IoSlice::new(&data[b..]),
                io::IoSlice::new(&tail[c..]),
            ];
            let mut n = match conn.poll_write(cx, &slices) {
                Poll::Ready(r) => r?,
                Poll::Pending => {
                    let limit = conn.send_timeout;
                    let timer = stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                    if timer.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "the client took no byte of the response for {} ms \
                                 (responseSendTimeoutMs)",
                                limit.as_millis()
                            ),
                        )));
                    }
                    return Poll::Pending;
                }
            };
            if let Some(timer) = &mut stalled {
                timer
                    .as_mut()
                    .reset(tokio::time::Instant::now() + conn.send_timeout);
            }
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            let from_a = n.min(wbuf.len() - a);
            a += from_a;
            n -= from_a;
            let from_b = n.min(data.len() - b);
            b += from_b;
            n -= from_b;
            c += n;
        }
        conn.poll_flush(cx)
    })
    .await?;
    wbuf.clear();
    Ok(())
}

/// Answers a refused head and closes: the status, and why as text.
async fn write_refusal(shared: &Shared, wbuf: &mut Vec<u8>, r: &Refusal) {
    use std::io::Write as _;
    wbuf.clear();
    let text = format!("{}\n", r.message);
    let _ = write!(
        wbuf,
        "HTTP/1.1 {} {}\r\ncontent-type: text/plain\r\nconnection: close\r\ncontent-length: {}\r\n",
        r.status.as_str(),
        r.status.canonical_reason().unwrap_or(""),
        text.len()
    );
    date::write(wbuf);
    wbuf.extend_from_slice(b"\r\n");
    wbuf.extend_from_slice(text.as_bytes());
    let _ = tokio::time::timeout(Duration::from_secs(1), write_all(shared, wbuf, &[], b"")).await;
}

/// What `Expect: 100-continue` gets when the body is first read.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// How much of a request body is left.
enum Decode {
    Length(u64),
    Chunked(ChunkState),
    Done,
}

/// A client's request body, read from its connection as it is asked for.
/// Read to its end, the connection can carry the next request; dropped
/// before, the connection closes after the response.
pub struct Body {
    conn: Shared,
    decode: Decode,
    /// How much of `100 Continue` has been written (all of it when none
    /// was asked for).
    continue_at: usize,
    /// The header families of its request's head.
    pub(crate) seen: Seen,
    /// Its head's fields the router does not read, as written.
    pub(crate) opaque: Bytes,
}

/// Reading a client's request body failed.
#[derive(Debug)]
pub enum ReadError {
    /// The client closed its connection before the body's end.
    Closed,
    /// The chunked framing is malformed.
    Malformed(String),
    /// Reading or writing the connection failed.
    Io(io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Closed => {
                f.write_str("the client closed its connection before the body's end")
            }
            ReadError::Malformed(m) => write!(f, "malformed chunked body: {m}"),
            ReadError::Io(e) => write!(f, "reading it failed: {e}"),
        }
    }
}

impl std::error::Error for ReadError {}

impl Body {
    fn done(&mut self, conn: &mut Conn) {
        self.decode = Decode::Done;
        conn.body_done = true;
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = ReadError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ReadError>>> {
        let this = &mut *self;
        if matches!(this.decode, Decode::Done) {
            return Poll::Ready(None);
        }
        let shared = Arc::clone(&this.conn);
        let mut conn = lock(&shared);
        while this.continue_at < CONTINUE.len() {
            let slice = [io::IoSlice::new(&CONTINUE[this.continue_at..])];
            match ready!(conn.poll_write(cx, &slice)) {
                Ok(0) => return Poll::Ready(Some(Err(ReadError::Closed))),
                Ok(n) => this.continue_at += n,
                Err(e) => return Poll::Ready(Some(Err(ReadError::Io(e)))),
            }
        }
        loop {
            match &mut this.decode {
                Decode::Done => return Poll::Ready(None),
                Decode::Length(left) => {
                    if !conn.rbuf.is_empty() {
                        let n = conn
                            .rbuf
                            .len()
                            .min(usize::try_from(*left).unwrap_or(usize::MAX));
                        let data = conn.rbuf.split_to(n).freeze();
                        *left -= n as u64;
                        if *left == 0 {
                            this.done(&mut conn);
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
                Decode::Chunked(state) => match wire::decode_chunked(state, &mut conn.rbuf) {
                    Ok(frame) => {
                        if *state == ChunkState::Done {
                            this.done(&mut conn);
                        }
                        if let Some(f) = frame {
                            return Poll::Ready(Some(Ok(f)));
                        }
                        if matches!(this.decode, Decode::Done) {
                            return Poll::Ready(None);
                        }
                    }
                    Err(e) => {
                        this.decode = Decode::Done;
                        return Poll::Ready(Some(Err(ReadError::Malformed(e.to_string()))));
                    }
                },
            }
            match ready!(conn.poll_fill(cx)) {
                Ok(0) => {
                    this.decode = Decode::Done;
                    return Poll::Ready(Some(Err(ReadError::Closed)));
                }
                Ok(_) => {}
                Err(e) => {
                    this.decode = Decode::Done;
                    return Poll::Ready(Some(Err(ReadError::Io(e))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.decode, Decode::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.decode {
            Decode::Length(n) => SizeHint::with_exact(n),
            Decode::Done => SizeHint::with_exact(0),
            Decode::Chunked(_) => SizeHint::default(),
        }
    }
}

/// A request's connection once upgraded (a 101, or a 2xx to CONNECT):
/// what the client sent past the head comes first, then the stream.
pub type Upgraded = wire::Rewind<BoxStream>;

/// The upgraded connection of a request that asked for an upgrade, once
/// its response is out. A request extension, on upgrade requests only
/// (extensions are `Clone`: the first to wait takes it).
#[derive(Clone)]
pub struct OnUpgrade(Arc<Mutex<Option<oneshot::Receiver<Upgraded>>>>);

impl OnUpgrade {
    /// The connection, once the response that upgrades it is out; an
    /// error if the response did not upgrade it.
    pub async fn upgraded(self) -> io::Result<Upgraded> {
        let rx = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        let not = || {
            io::Error::new(
                io::ErrorKind::NotConnected,
                "the connection was not upgraded",
            )
        };
        match rx {
            Some(rx) => rx.await.map_err(|_| not()),
            None => Err(not()),
        }
    }
}

/// The `Date` header, formatted once a second per thread.
mod date {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};

    thread_local! {
        static CACHED: RefCell<(u64, Vec<u8>)> = const { RefCell::new((0, Vec::new())) };
    }

    /// Appends `date: <IMF-fixdate>\r\n`.
    pub(super) fn write(buf: &mut Vec<u8>) {
        let now = SystemTime::now();
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        CACHED.with_borrow_mut(|(at, line)| {
            if *at != secs || line.is_empty() {
                *at = secs;
                line.clear();
                line.extend_from_slice(b"date: ");
                line.extend_from_slice(httpdate::fmt_http_date(now).as_bytes());
                line.extend_from_slice(b"\r\n");
            }
            buf.extend_from_slice(line);
        });
    }
}

#[cfg(test)]
#[path = "serve_tests.rs"]
mod tests;

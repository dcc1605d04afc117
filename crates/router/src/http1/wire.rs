//! The HTTP/1.1 client side of a router, on the request's own task.
//!
//! hyper's client connection runs in a task of its own: every request
//! crossed two channels to reach it and a third to come back, and each
//! crossing was a wake-up of one task by another (callgrind: ~18k of the
//! ~55k instructions a proxied request cost went to that task). Here the
//! request's task writes the request and reads the response itself: the
//! head is written straight from the request's `HeaderMap` into a buffer the
//! connection keeps, the response head is parsed by `httparse` (as hyper
//! does) and its end-to-end fields kept as the bytes the backend wrote
//! ([`Fields`]; a 101's go into a `HeaderMap`, for the tunnel), and the
//! response body is read from the connection as the caller asks for it.
//! When that body has been read to its end (and the request body was sent
//! whole) the connection goes back to its pool.
//!
//! Framing follows RFC 9112 §6: a response to `HEAD`, a 1xx, 204 or 304 has
//! no body; `Transfer-Encoding` whose last coding is `chunked` frames it
//! (and wins over `Content-Length`); another `Transfer-Encoding`, or none
//! and no `Content-Length`, reads to the connection's close; differing or
//! invalid `Content-Length`s are refused. Interim responses (100, 102, 103)
//! are skipped; a 101 hands the connection to the upgrade's tunnel. A
//! request is framed by its body: `Content-Length` when its length is
//! known, chunked otherwise.
//!
//! The request body is sent while the response is read: a backend may
//! answer before it has read the whole body (a 413, a streaming echo), and
//! the rest keeps going out as the response body is read. A response that
//! ends before the request body was sent closes the connection.

use std::future::Future as _;
use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode, Version};
use http_body::{Body as _, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_rustls::client::TlsStream;

use crate::body::ClientBodyError;
use crate::client::ReqBody;
use crate::pool::Conn;

pub use super::fields::Fields;

/// The most headers a response head may have.
pub(crate) const MAX_HEADERS: usize = 100;

/// The largest response head, and the most a read buffers.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// How much room a read buffer gets when it runs low.
const READ_CHUNK: usize = 8 * 1024;

/// Below this much room, a read buffer gets [`READ_CHUNK`] more. Heads
/// split off a buffer keep its bytes (header values share them), so
/// asking for a full chunk before every read would allocate a new buffer
/// for every message; reading into what is left serves a few dozen.
const READ_LOW: usize = 4 * 1024;

/// Room for the next read in `buf`, allocated only when it runs low.
pub(super) fn make_room(buf: &mut BytesMut) {
    if buf.capacity() - buf.len() < READ_LOW {
        buf.reserve(READ_CHUNK);
    }
}

/// The longest chunk-size line (size, extensions) of a chunked body.
const MAX_CHUNK_LINE: usize = 4 * 1024;

/// A connection to an endpoint: TCP, or TLS over TCP.
pub enum Io {
    /// Plaintext.
    Tcp(TcpStream),
    /// TLS (boxed: its state is ~1 KiB, and most clients are plaintext).
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_write(cx, b),
            Io::Tls(s) => Pin::new(s).poll_write(cx, b),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_write_vectored(cx, b),
            Io::Tls(s) => Pin::new(s).poll_write_vectored(cx, b),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// An open HTTP/1.1 connection between requests: the stream, what was
/// read past the last response (nothing, on a reusable one), and the
/// buffer request heads are written from.
pub struct Wire {
    io: Io,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
    /// The endpoint.
    pub(crate) addr: SocketAddr,
    /// Its place under `hostConnectionPool.maxSize`, when bounded.
    permit: Option<OwnedSemaphorePermit>,
    /// The wait for a response's head, bounded by its attempt's deadline:
    /// one timer for the connection's life, moved on to each request's
    /// deadline. A later deadline is only noted (the wheel moves the entry
    /// when its earlier time comes), so a kept-alive connection does not
    /// register and remove a timer for every request.
    timer: Pin<Box<tokio::time::Sleep>>,
}

/// What an attempt sends ahead of its body: borrowed from the request,
/// which every attempt shares (nothing is copied per attempt).
pub struct RequestHead<'a> {
    /// The method.
    pub method: &'a Method,
    /// Origin-form: path and query.
    pub path_and_query: &'a str,
    /// The headers, rewritten for the backend (framing headers off: the
    /// body's own are added).
    pub headers: &'a HeaderMap,
    /// Fields passed on as the client wrote them (`name: value\r\n`
    /// lines), written after the map's.
    pub opaque: &'a [u8],
    /// Header lines written after them.
    pub lines: Option<&'a (dyn Lines + Sync)>,
}

/// Header lines a router adds to a request, written straight into its head.
pub trait Lines {
    /// Appends `name: value\r\n` lines to `buf`.
    fn write(&self, buf: &mut Vec<u8>);
}

impl Wire {
    /// A new connection to `addr` on `io`.
    pub fn new(io: Io, addr: SocketAddr, permit: Option<OwnedSemaphorePermit>) -> Wire {
        Wire {
            io,
            rbuf: BytesMut::new(),
            wbuf: Vec::new(),
            addr,
            permit,
            // Not registered until a deadline is set.
            timer: Box::pin(tokio::time::sleep(std::time::Duration::ZERO)),
        }
    }

    /// Whether the endpoint closed it (or sent something unasked) while
    /// it was idle. Does not wait: a connection with nothing to read is
    /// open.
    pub fn closed(&mut self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut byte = [0u8; 1];
        let mut buf = ReadBuf::new(&mut byte);
        // Ready: end of stream, an error, or bytes nobody asked for;
        // either way it cannot carry a request.
        Pin::new(&mut self.io)
            .poll_read(&mut cx, &mut buf)
            .is_ready()
    }

    /// The stream and anything read past the 101's head: the upgraded
    /// protocol's first bytes.
    pub(crate) fn into_upgraded(self) -> Rewind<Io> {
        Rewind::new(self.io, self.rbuf.freeze(), self.permit)
    }
}

/// Why an exchange failed.
#[derive(Debug)]
pub enum WireError {
    /// Writing or reading failed.
    Io(io::Error),
    /// The endpoint closed the connection before its response was whole.
    Closed,
    /// The response could not be read as HTTP/1.1.
    Malformed(String),
    /// The client's request body failed (see [`ClientBodyError`]).
    ClientBody(ClientBodyError),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Io(e) => write!(f, "connection error: {e}"),
            WireError::Closed => {
                f.write_str("the endpoint closed the connection before the response was complete")
            }
            WireError::Malformed(m) => write!(f, "invalid response: {m}"),
            WireError::ClientBody(e) => e.fmt(f),
        }
    }
}

/// No `source`: the message already says it all (a chain would repeat
/// the cause in `l5d-err`).
impl std::error::Error for WireError {}

/// How an exchange on a connection ended without a response.
pub(crate) enum Unanswered {
    /// Nothing was written (a reused connection the endpoint had
    /// closed): the request, to send on another connection.
    Unsent(ReqBody, WireError),
    /// The request was, or may have been, written.
    Failed(WireError),
    /// The deadline passed before the response's head came (the request
    /// may have been written).
    TimedOut,
}

/// Sends `req` on `conn` and reads the response's head; the response's
/// body reads the rest, and gives the connection back to its pool when it
/// can carry another request.
pub(crate) async fn exchange(
    mut conn: Conn,
    head: &RequestHead<'_>,
    body: ReqBody,
    deadline: tokio::time::Instant,
) -> Result<Box<Response<Body>>, Unanswered> {
    let wire = &mut conn.wire;
    wire.timer.as_mut().reset(deadline);
    let head_only = *head.method == Method::HEAD;
    let framing = encode_head(&mut wire.wbuf, head, &body);
    let mut out = Outgoing {
        body: Some(body),
        framing,
        written: 0,
        data: Bytes::new(),
        tail: b"",
        wpos: 0,
        done: false,
        failed: None,
    };
    let head = std::future::poll_fn(|cx| {
        let wire = &mut conn.wire;
        loop {
            if !out.done
                && out.failed.is_none()
                && let Poll::Ready(Err(e)) = out.poll(&mut wire.io, &mut wire.wbuf, cx)
            {
                match e {
                    e @ WireError::ClientBody(_) => return Poll::Ready(Some(Err(e))),
                    // The endpoint may have answered and closed: read on.
                    e => out.failed = Some(e),
                }
            }
            match parse_head(&mut wire.rbuf) {
                Ok(Some(head)) if head.interim() => continue,
                Ok(Some(head)) => return Poll::Ready(Some(Ok(head))),
                Ok(None) => {}
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
            if wire.rbuf.len() >= MAX_HEAD {
                return Poll::Ready(Some(Err(WireError::Malformed(format!(
                    "response head larger than {} KiB",
                    MAX_HEAD / 1024
                )))));
            }
            make_room(&mut wire.rbuf);
            let read = pin!(wire.io.read_buf(&mut wire.rbuf)).poll(cx);
            // Waiting (to read, and maybe to write): within the deadline.
            if read.is_pending() && wire.timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            match ready!(read) {
                Ok(0) => {
                    let e = out.failed.take().unwrap_or(WireError::Closed);
                    return Poll::Ready(Some(Err(e)));
                }
                Ok(_) => {}
                Err(e) => {
                    let e = out.failed.take().unwrap_or(WireError::Io(e));
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    })
    .await;
    let head = match head {
        None => return Err(Unanswered::TimedOut),
        Some(Ok(h)) => h,
        Some(Err(e)) => {
            if out.written == 0
                && !matches!(e, WireError::ClientBody(_))
                && let Some(body) = out.body.take()
            {
                return Err(Unanswered::Unsent(body, e));
            }
            return Err(Unanswered::Failed(e));
        }
    };
    // A response whose framing cannot be trusted is not passed on at all
    // (a 502 for the caller), rather than its head and then a cut body.
    head.into_response(conn, out, head_only)
        .map_err(Unanswered::Failed)
}

/// The request's body on its way out, with the head before it.
struct Outgoing {
    /// `None` once it has ended.
    body: Option<ReqBody>,
    framing: ReqFraming,
    /// Bytes written so far (head included).
    written: u64,
    /// A body chunk being written, after what is left in the write buffer,
    /// and before `tail` (a chunk's CRLF).
    data: Bytes,
    tail: &'static [u8],
    wpos: usize,
    /// Everything written and flushed.
    done: bool,
    /// Writing failed: the endpoint stopped reading.
    failed: Option<WireError>,
}

/// How a request body is framed on the wire.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ReqFraming {
    /// `Content-Length`: this many bytes still to come.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

impl Outgoing {
    /// Writes what it can; `Ready(Ok)` once all is written and flushed.
    fn poll(
        &mut self,
        io: &mut Io,
        wbuf: &mut Vec<u8>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), WireError>> {
        loop {
            let pending = wbuf.len() - self.wpos + self.data.len() + self.tail.len();
            if pending == 0 {
                wbuf.clear();
                self.wpos = 0;
                let Some(body) = &mut self.body else {
                    ready!(Pin::new(&mut *io).poll_flush(cx)).map_err(WireError::Io)?;
                    self.done = true;
                    return Poll::Ready(Ok(()));
                };
                match Pin::new(body).poll_frame(cx) {
                    Poll::Pending => {
                        // Whatever was written so far goes out now (TLS buffers).
                        ready!(Pin::new(&mut *io).poll_flush(cx)).map_err(WireError::Io)?;
                        return Poll::Pending;
                    }
                    Poll::Ready(Some(Ok(frame))) => {
                        let Ok(data) = frame.into_data() else {
                            // Trailers of a chunked upload are not forwarded.
                            continue;
                        };
                        self.queue(wbuf, data)?;
                    }
                    Poll::Ready(Some(Err(e))) => {
                        return Poll::Ready(Err(match e.downcast::<ClientBodyError>() {
                            Ok(e) => WireError::ClientBody(*e),
                            Err(e) => WireError::Io(io::Error::other(e)),
                        }));
                    }
                    Poll::Ready(None) => {
                        self.body = None;
                        match self.framing {
                            ReqFraming::Chunked => wbuf.extend_from_slice(b"0\r\n\r\n"),
                            ReqFraming::Length(0) => {}
                            ReqFraming::Length(n) => {
                                return Poll::Ready(Err(WireError::ClientBody(
                                    ClientBodyError::Length(n),
                                )));
                            }
                        }
                    }
                }
                continue;
            }
            let n = {
                let slices = [
                    io::IoSlice::new(&wbuf[self.wpos..]),
                    io::IoSlice::new(&self.data),
                    io::IoSlice::new(self.tail),
                ];
                ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices))
                    .map_err(WireError::Io)?
            };
            if n == 0 {
                return Poll::Ready(Err(WireError::Io(io::ErrorKind::WriteZero.into())));
            }
            self.written += n as u64;
            let mut n = n;
            let from_buf = n.min(wbuf.len() - self.wpos);
            self.wpos += from_buf;
            n -= from_buf;
            let from_data = n.min(self.data.len());
            let _ = self.data.split_to(from_data);
            n -= from_data;
            self.tail = &self.tail[n..];
        }
    }

    /// Queues one chunk of body.
    fn queue(&mut self, wbuf: &mut Vec<u8>, data: Bytes) -> Result<(), WireError> {
        if data.is_empty() {
            return Ok(());
        }
        match &mut self.framing {
            ReqFraming::Length(left) => {
                let n = data.len() as u64;
                if n > *left {
                    return Err(WireError::ClientBody(ClientBodyError::Length(*left)));
                }
                *left -= n;
            }
            ReqFraming::Chunked => {
                use std::io::Write as _;
                let _ = write!(wbuf, "{:x}\r\n", data.len());
                self.tail = b"\r\n";
            }
        }
        self.data = data;
        Ok(())
    }
}

/// Writes the request line and headers of `parts` into `buf` (cleared
/// first), with the framing header its body needs; returns that framing.
pub fn encode_head(buf: &mut Vec<u8>, head: &RequestHead<'_>, body: &ReqBody) -> ReqFraming {
    buf.clear();
    buf.extend_from_slice(head.method.as_str().as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(head.path_and_query.as_bytes());
    buf.extend_from_slice(b" HTTP/1.1\r\n");
    let h = head.headers;
    let mut has_length = false;
    for (name, value) in h {
        has_length |= *name == CONTENT_LENGTH;
        buf.extend_from_slice(name.as_str().as_bytes());
        buf.extend_from_slice(b": ");
        buf.extend_from_slice(value.as_bytes());
        buf.extend_from_slice(b"\r\n");
    }
    buf.extend_from_slice(head.opaque);
    if let Some(lines) = head.lines {
        lines.write(buf);
    }
    let framing = match body.size_hint().exact() {
        Some(n) => {
            // The client's own `Content-Length` is the body's length (the
            // server checked it); one is added only where needed.
            if !has_length
                && (n > 0 || matches!(*head.method, Method::POST | Method::PUT | Method::PATCH))
            {
                let mut b = [0; 20];
                buf.extend_from_slice(b"content-length: ");
                buf.extend_from_slice(itoa(&mut b, n));
                buf.extend_from_slice(b"\r\n");
            }
            ReqFraming::Length(n)
        }
        None => {
            buf.extend_from_slice(b"transfer-encoding: chunked\r\n");
            ReqFraming::Chunked
        }
    };
    buf.extend_from_slice(b"\r\n");
    framing
}

/// `n` in decimal, in `b`.
pub(super) fn itoa(b: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut i = b.len();
    loop {
        i -= 1;
        b[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &b[i..];
        }
    }
}

/// A parsed response head, its bytes taken off the read buffer.
pub struct Head {
    /// The status code.
    pub status: StatusCode,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// A 101's header fields, all of them (values share the read
    /// buffer's bytes).
    pub headers: HeaderMap,
    /// Any other response's end-to-end fields, as written.
    pub fields: Option<Fields>,
    /// The reason phrase, when it is not the status's usual one.
    pub reason: Option<hyper::ext::ReasonPhrase>,
    /// Framing and reuse, from the hop-by-hop fields (which `headers`
    /// no longer has, but on a 101).
    meta: Meta,
}

impl Head {
    /// 100 Continue, 102, 103: skipped (101 is not interim: it upgrades).
    fn interim(&self) -> bool {
        self.status.is_informational() && self.status != StatusCode::SWITCHING_PROTOCOLS
    }

    fn into_response(
        self,
        mut conn: Conn,
        out: Outgoing,
        head_only: bool,
    ) -> Result<Box<Response<Body>>, WireError> {
        let Head {
            status,
            version,
            headers,
            fields,
            reason,
            meta,
        } = self;
        let mut keep_alive = !meta.close && (version == Version::HTTP_11 || meta.keep_alive);
        let framing = if status == StatusCode::SWITCHING_PROTOCOLS {
            keep_alive = false;
            Framing::Upgrade
        } else if head_only
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            Framing::Length(0)
        } else {
            // RFC 9112 §6.3: Transfer-Encoding frames it (chunked last),
            // or the connection's close; then Content-Length; else the close.
            match (meta.chunked, meta.length) {
                (Some(true), _) => Framing::Chunked,
                (Some(false), _) | (None, Ok(None)) => Framing::Close,
                (None, Ok(Some(n))) => Framing::Length(n),
                (None, Err(e)) => return Err(WireError::Malformed(e)),
            }
        };
        if matches!(framing, Framing::Close) {
            keep_alive = false;
        }
        // Boxed where it is made: the pool, the attempt loop and the
        // router pass a pointer on, not its ~220 bytes (a `memcpy` each).
        let mut resp = Box::new(Response::new(Body {
            conn: None,
            framing,
            out: (!out.done).then(|| Box::new(out)),
            keep_alive,
            chunk: ChunkState::Size,
            fields,
        }));
        *resp.status_mut() = status;
        *resp.version_mut() = version;
        *resp.headers_mut() = headers;
        if let Some(r) = reason {
            resp.extensions_mut().insert(r);
        }
        let body = resp.body_mut();
        if body.framing == Framing::Length(0) {
            // Nothing to read: the connection is free now, unless the
            // request body is still going out.
            body.conn = Some(conn);
            body.finish();
        } else {
            if body.framing == Framing::Upgrade {
                conn.wire.wbuf = Vec::new();
            }
            body.conn = Some(conn);
        }
        Ok(resp)
    }
}

/// Where a head's names and values sit in its buffer (start and end of
/// each, as `u32`: a head is far smaller than 4 GiB), noted while
/// `httparse`'s borrow of the buffer lasts, so the values can share its
/// bytes once the head is split off. The usual few fields stay on the
/// stack (a small array: zeroing one sized for the most fields allowed
/// cost more than the rest of the bookkeeping).
pub(crate) struct Spans {
    stack: [(u32, u32, u32, u32); SPANS_ON_STACK],
    len: usize,
    more: Vec<(u32, u32, u32, u32)>,
}

const SPANS_ON_STACK: usize = 24;

impl Spans {
    pub(crate) fn new() -> Spans {
        Spans {
            stack: [(0, 0, 0, 0); SPANS_ON_STACK],
            len: 0,
            more: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, span: (u32, u32, u32, u32)) {
        match self.stack.get_mut(self.len) {
            Some(slot) => {
                *slot = span;
                self.len += 1;
            }
            None => {
                // Past the stack: all of them on the heap, one slice still.
                if self.more.is_empty() {
                    self.more.extend_from_slice(&self.stack);
                }
                self.more.push(span);
            }
        }
    }

    /// In the order pushed.
    pub(crate) fn as_slice(&self) -> &[(u32, u32, u32, u32)] {
        if self.more.is_empty() {
            self.stack.get(..self.len).unwrap_or_default()
        } else {
            &self.more
        }
    }
}

/// Parses a complete head off the front of `buf`; `None` until it is
/// all there.
pub fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, WireError> {
    if buf.is_empty() {
        return Ok(None);
    }
    // Not initialised: httparse writes the ones it fills.
    let mut slots = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut r, buf, &mut slots)
    {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(WireError::Malformed(format!(
                "more than {MAX_HEADERS} header fields"
            )));
        }
        Err(e) => return Err(WireError::Malformed(e.to_string())),
    };
    let code = r.code.unwrap_or(0);
    let version = if r.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let status = StatusCode::from_u16(code)
        .map_err(|_| WireError::Malformed(format!("status code {code}")))?;
    // A reason phrase of its own (`200 Fine`) is passed on, as hyper's
    // server writes it from this extension.
    let reason = r
        .reason
        .filter(|r| Some(*r) != status.canonical_reason())
        .and_then(|r| hyper::ext::ReasonPhrase::try_from(r.as_bytes().to_vec()).ok());
    // In one pass: where each name and value sit in the head (so the
    // values can share its bytes once it is split off), and what framing
    // and the connection's reuse need (the hop-by-hop fields are not
    // passed on, but by a 101, for the tunnel).
    let base = buf.as_ptr() as usize;
    let mut at = Spans::new();
    let n = r.headers.len();
    let mut meta = Meta::default();
    let mut named: Vec<HeaderName> = Vec::new();
    let upgrade = status == StatusCode::SWITCHING_PROTOCOLS;
    for h in r.headers.iter() {
        let (name_at, value_at) = (
            h.name.as_ptr() as usize - base,
            h.value.as_ptr() as usize - base,
        );
        at.push((
            name_at as u32,
            (name_at + h.name.len()) as u32,
            value_at as u32,
            (value_at + h.value.len()) as u32,
        ));
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"connection") {
            for t in h.value.split(|&b| b == b',') {
                let t = t.trim_ascii();
                if t.eq_ignore_ascii_case(b"close") {
                    meta.close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") {
                    meta.keep_alive = true;
                } else if !t.is_empty()
                    && !t.eq_ignore_ascii_case(b"host")
                    && let Ok(n) = HeaderName::from_bytes(t)
                {
                    named.push(n);
                }
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
            meta.chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"content-length") && meta.length.is_ok() {
            meta.length = content_length(h.value, meta.length);
        }
    }
    let head = buf.split_to(len).freeze();
    if !upgrade {
        // RFC 9112 §6.3: with Transfer-Encoding, Content-Length goes too
        // (the caller would read the body cut at that length).
        let chunked = meta.chunked.is_some();
        let keep = |raw: &[u8]| {
            !(hop_by_hop(raw)
                || (chunked && raw.eq_ignore_ascii_case(b"content-length"))
                || named
                    .iter()
                    .any(|n| raw.eq_ignore_ascii_case(n.as_str().as_bytes())))
        };
        let length = match (&meta.length, chunked) {
            (Ok(n), false) => *n,
            _ => None,
        };
        let fields = Fields::new(&head, at.as_slice(), keep, length);
        return Ok(Some(Head {
            status,
            version,
            headers: HeaderMap::new(),
            fields: Some(fields),
            reason,
            meta,
        }));
    }
    // A 101 keeps every field, for the tunnel (room for this hop's `Via`).
    let mut headers = HeaderMap::with_capacity(n + 1);
    for &(ns, ne, vs, ve) in at.as_slice() {
        let raw = &head[ns as usize..ne as usize];
        let name = HeaderName::from_bytes(raw)
            .map_err(|_| WireError::Malformed("invalid header name".into()))?;
        let value = HeaderValue::from_maybe_shared(head.slice(vs as usize..ve as usize))
            .map_err(|_| WireError::Malformed(format!("invalid value of header {name}")))?;
        headers.append(name, value);
    }
    Ok(Some(Head {
        status,
        version,
        headers,
        fields: None,
        reason,
        meta,
    }))
}

/// What a response head says of its framing and its connection.
#[derive(Debug)]
pub(crate) struct Meta {
    /// `Connection: close`.
    close: bool,
    /// `Connection: keep-alive` (what an HTTP/1.0 response needs).
    keep_alive: bool,
    /// `Transfer-Encoding`, and whether its last coding is `chunked`.
    chunked: Option<bool>,
    /// `Content-Length`, or why it cannot be trusted.
    length: Result<Option<u64>, String>,
}

impl Default for Meta {
    fn default() -> Meta {
        Meta {
            close: false,
            keep_alive: false,
            chunked: None,
            length: Ok(None),
        }
    }
}

/// `Content-Length` after `value` (a list of equal lengths is one; differing
/// or invalid ones are an error).
pub(super) fn content_length(
    value: &[u8],
    before: Result<Option<u64>, String>,
) -> Result<Option<u64>, String> {
    let mut length = before?;
    // The usual value: one number.
    if length.is_none()
        && let Some(n) = digits(value)
    {
        return Ok(Some(n));
    }
    for part in value.split(|&b| b == b',') {
        let n = digits(part.trim_ascii()).ok_or_else(|| "invalid Content-Length".to_string())?;
        if length.is_some_and(|l| l != n) {
            return Err("differing Content-Length values".into());
        }
        length = Some(n);
    }
    Ok(length)
}

/// A non-empty run of ASCII digits as a `u64`; `None` for anything else,
/// or past `u64::MAX`.
fn digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        let d = b.wrapping_sub(b'0');
        (d <= 9).then_some(())?;
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// Whether `name` is a hop-by-hop field (RFC 9110 §7.6.1): the list
/// `strip_hop_by_hop` uses, the length compared first.
fn hop_by_hop(name: &[u8]) -> bool {
    let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
    match name.len() {
        2 => is(b"te"),
        7 => is(b"trailer") || is(b"upgrade"),
        10 => is(b"connection") || is(b"keep-alive"),
        16 => is(b"proxy-connection"),
        17 => is(b"transfer-encoding"),
        18 => is(b"proxy-authenticate"),
        19 => is(b"proxy-authorization"),
        _ => false,
    }
}

#[derive(Debug, PartialEq)]
enum Framing {
    /// This many bytes still to come.
    Length(u64),
    Chunked,
    /// Until the endpoint closes.
    Close,
    /// A 101: the connection now belongs to the upgraded protocol.
    Upgrade,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum ChunkState {
    /// At a chunk-size line.
    Size,
    /// Inside a chunk's data: this many bytes to go.
    Data(u64),
    /// At the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer fields, up to an empty line.
    Trailers,
    /// The body has ended.
    Done,
}

/// A response body read from its connection. Read to its end, it gives
/// the connection back to the pool (when the response and the request
/// allow another on it); dropped before, the connection closes.
pub struct Body {
    conn: Option<Conn>,
    framing: Framing,
    /// The request body, when the response started before it was all
    /// sent (rare: boxed).
    out: Option<Box<Outgoing>>,
    keep_alive: bool,
    chunk: ChunkState,
    /// The response's end-to-end fields, until the server writes them.
    fields: Option<Fields>,
}

impl Body {
    /// The response's end-to-end fields (none for a 101, whose response
    /// holds them all, or once taken).
    pub fn fields(&self) -> Option<&Fields> {
        self.fields.as_ref()
    }

    /// [`Body::fields`], to change.
    pub fn fields_mut(&mut self) -> Option<&mut Fields> {
        self.fields.as_mut()
    }

    /// Takes the response's end-to-end fields.
    pub fn take_fields(&mut self) -> Option<Fields> {
        self.fields.take()
    }

    /// The body ended: the connection goes back to the pool if it can
    /// carry another request.
    fn finish(&mut self) {
        self.framing = Framing::Length(0);
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.keep_alive && self.out.is_none() && conn.wire.rbuf.is_empty() {
            Conn::reuse(conn);
        }
    }

    /// The connection of a 101 response, for the tunnel.
    pub(crate) fn into_upgraded(mut self) -> Option<Conn> {
        if self.framing == Framing::Upgrade {
            self.conn.take()
        } else {
            None
        }
    }

    /// Reads more into the connection's buffer; `Ok(false)` at its end.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, WireError>> {
        if let Some(out) = &mut self.out
            && let Some(conn) = &mut self.conn
        {
            match out.poll(&mut conn.wire.io, &mut conn.wire.wbuf, cx) {
                Poll::Ready(Ok(())) => self.out = None,
                Poll::Ready(Err(e @ WireError::ClientBody(_))) => return Poll::Ready(Err(e)),
                // The endpoint stopped reading the request body: the
                // response may still come whole; the connection will not
                // be reused (`out` stays).
                Poll::Ready(Err(_)) => out.done = true,
                Poll::Pending => {}
            }
        }
        let Some(conn) = &mut self.conn else {
            return Poll::Ready(Ok(false));
        };
        let wire = &mut conn.wire;
        make_room(&mut wire.rbuf);
        match ready!(pin!(wire.io.read_buf(&mut wire.rbuf)).poll(cx)) {
            Ok(0) => Poll::Ready(Ok(false)),
            Ok(_) => Poll::Ready(Ok(true)),
            // A TLS peer that closes without close_notify: the end (a
            // body it cuts short is still an error for its framing).
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Poll::Ready(Ok(false)),
            Err(e) => Poll::Ready(Err(WireError::Io(e))),
        }
    }

    /// What was read and not yet taken (empty once the connection is
    /// gone).
    fn buffered(&self) -> usize {
        self.conn.as_ref().map_or(0, |c| c.wire.rbuf.len())
    }

    /// Takes `n` buffered bytes (`n <= buffered()`).
    fn take(&mut self, n: usize) -> Bytes {
        match &mut self.conn {
            Some(c) => c.wire.rbuf.split_to(n).freeze(),
            None => Bytes::new(),
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = WireError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, WireError>>> {
        let this = &mut *self;
        loop {
            match &mut this.framing {
                Framing::Length(0) | Framing::Upgrade => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Framing::Length(left) => {
                    let left = *left;
                    let have = this.buffered();
                    if have > 0 {
                        let n = have.min(usize::try_from(left).unwrap_or(usize::MAX));
                        let data = this.take(n);
                        let left = left - n as u64;
                        this.framing = Framing::Length(left);
                        if left == 0 {
                            this.finish();
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
                Framing::Close => {
                    let have = this.buffered();
                    if have > 0 {
                        let data = this.take(have);
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
                Framing::Chunked => match this.poll_chunk() {
                    Ok(Some(frame)) => return Poll::Ready(Some(Ok(frame))),
                    Ok(None) if this.framing == Framing::Length(0) => continue,
                    Ok(None) => {}
                    Err(e) => {
                        this.conn = None;
                        this.framing = Framing::Length(0);
                        return Poll::Ready(Some(Err(e)));
                    }
                },
            }
            match ready!(this.poll_fill(cx)) {
                Ok(true) => {}
                Ok(false) if this.framing == Framing::Close => {
                    this.keep_alive = false;
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(false) => {
                    this.conn = None;
                    this.framing = Framing::Length(0);
                    return Poll::Ready(Some(Err(WireError::Closed)));
                }
                Err(e) => {
                    this.conn = None;
                    this.framing = Framing::Length(0);
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.framing, Framing::Length(0) | Framing::Upgrade)
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Length(n) => SizeHint::with_exact(n),
            Framing::Upgrade => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

impl Body {
    /// Takes what it can of a chunked body from the buffer: a frame, or
    /// `None` when it needs more bytes (or the body ended: `framing` is
    /// then `Length(0)`).
    fn poll_chunk(&mut self) -> Result<Option<Frame<Bytes>>, WireError> {
        let Some(conn) = &mut self.conn else {
            return Err(WireError::Closed);
        };
        let frame = decode_chunked(&mut self.chunk, &mut conn.wire.rbuf)?;
        if self.chunk == ChunkState::Done {
            self.finish();
        }
        Ok(frame)
    }
}

/// Takes what it can of a chunked body (RFC 9112 §7.1) off the front of
/// `buf`: a frame of data or of trailers, or `None` when it needs more
/// bytes or the body has ended (`state` is then `Done`). Strict: CRLF
/// everywhere, a size of at most 16 hex digits, a size line of at most
/// 4 KiB, trailers of at most 64 KiB.
pub(super) fn decode_chunked(
    state: &mut ChunkState,
    buf: &mut BytesMut,
) -> Result<Option<Frame<Bytes>>, WireError> {
    loop {
        match *state {
            ChunkState::Done => return Ok(None),
            ChunkState::Size => {
                let Some(end) = find_crlf(buf, MAX_CHUNK_LINE)? else {
                    return Ok(None);
                };
                let line = buf.split_to(end + 2);
                let size = chunk_size(&line[..end])?;
                *state = if size == 0 {
                    ChunkState::Trailers
                } else {
                    ChunkState::Data(size)
                };
            }
            ChunkState::Data(left) => {
                if buf.is_empty() {
                    return Ok(None);
                }
                let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let data = buf.split_to(n).freeze();
                let left = left - n as u64;
                *state = if left == 0 {
                    ChunkState::DataEnd
                } else {
                    ChunkState::Data(left)
                };
                return Ok(Some(Frame::data(data)));
            }
            ChunkState::DataEnd => {
                if buf.len() < 2 {
                    return Ok(None);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(WireError::Malformed(
                        "chunk data not followed by CRLF".into(),
                    ));
                }
                let _ = buf.split_to(2);
                *state = ChunkState::Size;
            }
            ChunkState::Trailers => {
                if buf.starts_with(b"\r\n") {
                    let _ = buf.split_to(2);
                    *state = ChunkState::Done;
                    return Ok(None);
                }
                let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let (len, trailers) = match httparse::parse_headers(buf, &mut slots) {
                    Ok(httparse::Status::Complete((len, fields))) => {
                        let mut t = HeaderMap::with_capacity(fields.len());
                        for f in fields {
                            if let (Ok(n), Ok(v)) = (
                                HeaderName::from_bytes(f.name.as_bytes()),
                                HeaderValue::from_bytes(f.value),
                            ) {
                                t.append(n, v);
                            }
                        }
                        (len, t)
                    }
                    Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Ok(None),
                    Ok(httparse::Status::Partial) => {
                        return Err(WireError::Malformed("trailers too large".into()));
                    }
                    Err(e) => return Err(WireError::Malformed(format!("trailers: {e}"))),
                };
                let _ = buf.split_to(len);
                *state = ChunkState::Done;
                return Ok(Some(Frame::trailers(trailers)));
            }
        }
    }
}

/// Where the first CRLF of `buf` is; an error when there is none within
/// `max` bytes, or a bare LF comes first.
fn find_crlf(buf: &[u8], max: usize) -> Result<Option<usize>, WireError> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(0) => Err(WireError::Malformed("bare LF in chunked body".into())),
        Some(i) if buf[i - 1] == b'\r' => Ok(Some(i - 1)),
        Some(_) => Err(WireError::Malformed("bare LF in chunked body".into())),
        None if buf.len() > max => Err(WireError::Malformed("chunk-size line too long".into())),
        None => Ok(None),
    }
}

/// A chunk-size line's size (hex, at most 16 digits); extensions after
/// `;` are ignored.
fn chunk_size(line: &[u8]) -> Result<u64, WireError> {
    let digits = line.split(|&b| b == b';').next().unwrap_or_default();
    let digits = digits.trim_ascii_end();
    if digits.is_empty() || digits.len() > 16 {
        return Err(WireError::Malformed("invalid chunk size".into()));
    }
    let mut n = 0u64;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return Err(WireError::Malformed("invalid chunk size".into())),
        };
        n = (n << 4) | u64::from(v);
    }
    Ok(n)
}

/// A connection after its 101 (or a client's after a 2xx to CONNECT):
/// what was read past the head comes first, then the stream. `hold`
/// lasts as long as it does (a backend connection's place under
/// `hostConnectionPool.maxSize`).
pub struct Rewind<T> {
    io: T,
    pre: Bytes,
    _hold: Option<OwnedSemaphorePermit>,
}

impl<T> Rewind<T> {
    /// `io`, with `pre` read from it already.
    pub(crate) fn new(io: T, pre: Bytes, hold: Option<OwnedSemaphorePermit>) -> Rewind<T> {
        Rewind {
            io,
            pre,
            _hold: hold,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.pre.is_empty() {
            let n = this.pre.len().min(buf.remaining());
            buf.put_slice(&this.pre.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, b)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;

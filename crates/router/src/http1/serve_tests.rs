//! The HTTP/1.1 server side over an in-memory connection: how it frames
//! what it reads and writes (RFC 9112 §6), what it refuses and how, when
//! a connection carries another request, `Expect`, upgrades, the head
//! timeout, a client that hangs up; and property tests: any request comes
//! to the router as it was sent however its bytes are split into reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::BodyExt;
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;

/// A response body of given frames; `exact`: its size hint.
struct Frames {
    frames: VecDeque<Frame<Bytes>>,
    exact: Option<u64>,
}

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.frames.pop_front().map(Ok))
    }

    fn size_hint(&self) -> SizeHint {
        self.exact
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

fn full(b: &str) -> Frames {
    Frames {
        frames: VecDeque::from([Frame::data(Bytes::copy_from_slice(b.as_bytes()))]),
        exact: Some(b.len() as u64),
    }
}

/// What the test service does with a request.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Reads the body; answers with what it saw (`Content-Length`).
    Echo,
    /// Answers 413 without reading the body.
    Refuse,
    /// Answers with an unknown-length body and trailers.
    Stream,
    /// Answers 101 and echoes the tunnel's bytes.
    Upgrade,
    /// Never answers.
    Hang,
    /// Answers `BIG` bytes (more than the connection's buffer holds).
    Big,
}

const BIG: usize = 1 << 20;

struct Svc {
    mode: Mode,
    calls: Arc<AtomicUsize>,
    /// Futures dropped before they finished.
    dropped: Arc<AtomicUsize>,
}

struct DropCount(Arc<AtomicUsize>, bool);

impl Drop for DropCount {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// What a request looked like to the router: method, target, version,
/// each header, then the body (or its error).
async fn describe(req: Box<Request<RequestBody>>) -> String {
    let (parts, body) = (*req).into_parts();
    let mut out = format!("{} {} {:?}\n", parts.method, parts.uri, parts.version);
    for (n, v) in &parts.headers {
        out.push_str(&format!("{n}: {}\n", String::from_utf8_lossy(v.as_bytes())));
    }
    // The fields the router does not read, as the client wrote them.
    for (n, v) in crate::http1::fields::lines(body.opaque()) {
        let (n, v) = (String::from_utf8_lossy(n), String::from_utf8_lossy(v));
        out.push_str(&format!("{n}: {v}\n"));
    }
    out.push('\n');
    match body.collect().await {
        Ok(c) => {
            let trailers = c.trailers().cloned();
            out.push_str(&String::from_utf8_lossy(&c.to_bytes()));
            if let Some(t) = trailers {
                for (n, v) in &t {
                    out.push_str(&format!("\ntrailer {n}: {}", v.to_str().unwrap()));
                }
            }
        }
        Err(e) => out.push_str(&format!("BODY ERROR: {e}")),
    }
    out
}

impl Service for Svc {
    type Body = Frames;

    fn call(
        &self,
        req: Box<Request<RequestBody>>,
    ) -> impl Future<Output = Box<Response<Frames>>> + Send {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let (mode, dropped) = (self.mode, Arc::clone(&self.dropped));
        async move {
            let mut guard = DropCount(dropped, false);
            let resp = match mode {
                Mode::Echo => Response::new(full(&describe(req).await)),
                Mode::Refuse => {
                    let mut r = Response::new(full("too large"));
                    *r.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
                    r
                }
                Mode::Stream => Response::new(Frames {
                    frames: VecDeque::from([
                        Frame::data(Bytes::from_static(b"hello ")),
                        Frame::data(Bytes::from_static(b"world")),
                        Frame::trailers({
                            let mut t = HeaderMap::new();
                            t.insert("x-sum", HeaderValue::from_static("42"));
                            t
                        }),
                    ]),
                    exact: None,
                }),
                Mode::Upgrade => {
                    let on = req.extensions().get::<OnUpgrade>().cloned().unwrap();
                    tokio::spawn(async move {
                        let mut io = on.upgraded().await.unwrap();
                        let mut buf = [0u8; 64];
                        loop {
                            let n = io.read(&mut buf).await.unwrap();
                            if n == 0 {
                                break;
                            }
                            io.write_all(&buf[..n]).await.unwrap();
                        }
                    });
                    let mut r = Response::new(Frames {
                        frames: VecDeque::new(),
                        exact: Some(0),
                    });
                    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                    r.headers_mut()
                        .insert("upgrade", HeaderValue::from_static("echo"));
                    r.headers_mut()
                        .insert("connection", HeaderValue::from_static("upgrade"));
                    r
                }
                Mode::Hang => std::future::pending().await,
                Mode::Big => Response::new(Frames {
                    frames: VecDeque::from([Frame::data(Bytes::from(vec![b'x'; BIG]))]),
                    exact: Some(BIG as u64),
                }),
            };
            guard.1 = true;
            Box::new(resp)
        }
    }
}

const LIMITS: Limits = Limits {
    header_timeout: Duration::from_secs(5),
    max_headers: 100,
    max_head: 8192,
    send_timeout: Duration::from_secs(5),
};

fn svc(mode: Mode) -> Svc {
    Svc {
        mode,
        calls: Arc::default(),
        dropped: Arc::default(),
    }
}

/// Serves one connection with `svc`; the client side.
fn connect(svc: Svc, limits: Limits) -> (DuplexStream, tokio::task::JoinHandle<Svc>) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let task = tokio::spawn(async move {
        serve(&svc, Box::new(server), limits, None).await;
        svc
    });
    (client, task)
}

/// Writes `pieces` one by one, then reads until the server closes.
async fn run(mode: Mode, pieces: &[&[u8]]) -> String {
    run_with(mode, LIMITS, pieces).await
}

async fn run_with(mode: Mode, limits: Limits, pieces: &[&[u8]]) -> String {
    let (mut c, task) = connect(svc(mode), limits);
    for p in pieces {
        c.write_all(p).await.unwrap();
        tokio::task::yield_now().await;
    }
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut out))
        .await
        .expect("the server closed the connection")
        .unwrap();
    drop(c);
    task.await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn status(resp: &str) -> u16 {
    resp.split(' ').nth(1).unwrap().parse().unwrap()
}

/// The body of the one response in `resp`.
fn body_of(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").unwrap().1
}

#[tokio::test]
async fn a_get_is_answered_and_the_connection_carries_the_next() {
    let out = run(
        Mode::Echo,
        &[b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nX-A: 2\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"],
    )
    .await;
    let responses: Vec<&str> = out.split("HTTP/1.1 200 OK\r\n").skip(1).collect();
    assert_eq!(responses.len(), 2, "{out}");
    assert!(
        responses[0].contains("\r\ndate: ") || responses[0].starts_with("date: "),
        "{out}"
    );
    assert!(responses[0].contains("content-length: "), "{out}");
    assert!(!responses[0].contains("connection: close"), "{out}");
    assert!(
        responses[0].contains("GET /a?x=1 HTTP/1.1\nHost: h\nX-A: 1\nX-A: 2\n\n"),
        "{out}"
    );
    assert!(responses[1].contains("connection: close\r\n"), "{out}");
    assert!(responses[1].contains("GET /b HTTP/1.1\n"), "{out}");
}

/// `head` parsed: the names in its map, its passed-on block, and whether
/// the block is the head's own bytes (no copy).
fn split(head: &[u8]) -> (Vec<String>, String, bool) {
    let mut buf = BytesMut::from(head);
    let base = buf.as_ptr() as usize;
    let h = parse_head(&mut buf, &LIMITS).unwrap().unwrap();
    let names = h.req.headers().keys().map(|k| k.to_string()).collect();
    let at = h.opaque.as_ptr() as usize;
    let shared = h.opaque.is_empty() || (base..base + head.len()).contains(&at);
    (names, String::from_utf8(h.opaque.to_vec()).unwrap(), shared)
}

#[test]
fn the_passed_host_is_found_where_it_sits() {
    let host_of = |head: &[u8]| {
        let mut buf = BytesMut::from(head);
        let h = parse_head(&mut buf, &LIMITS).unwrap().unwrap();
        let at = h
            .seen
            .host_at()
            .map(|r| String::from_utf8(h.opaque[r].to_vec()).unwrap());
        (h.seen.host_passed(), at)
    };
    let web = |s: &str| (true, Some(s.to_owned()));
    assert_eq!(
        host_of(b"GET / HTTP/1.1\r\nHost: web:80\r\nAccept: */*\r\n\r\n"),
        web("web:80")
    );
    assert_eq!(
        host_of(b"GET / HTTP/1.1\r\nAccept: */*\r\nhost:  web \r\n\r\n"),
        web("web")
    );
    assert_eq!(
        host_of(b"GET / HTTP/1.1\r\nVia: 1.1 x\r\nHost: web\r\n\r\n"),
        web("web")
    );
    // Copied around a field the router reads: searched for instead.
    assert_eq!(
        host_of(b"GET / HTTP/1.1\r\nA: 1\r\nVia: 1.1 x\r\nHost: web\r\n\r\n"),
        (true, None)
    );
    // In the map.
    assert_eq!(
        host_of(b"GET / HTTP/1.1\r\nHost: web\r\nConnection: x-a\r\n\r\n"),
        (false, None)
    );
}

#[test]
fn fields_the_router_does_not_read_are_kept_as_written() {
    // The usual head: every field passed on as written, `Host` too (one
    // run of lines: no copy, and no map).
    let (names, block, shared) =
        split(b"GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: curl/8\r\nAccept:  */* \r\n\r\n");
    assert!(names.is_empty(), "{names:?}");
    assert_eq!(block, "Host: h\r\nUser-Agent: curl/8\r\nAccept:  */* \r\n");
    assert!(shared);
    // Every field the router reads goes in the map; the others are
    // copied when those sit between them.
    let (names, block, shared) = split(
        b"POST / HTTP/1.1\r\nA: 1\r\nl5d-dtab: /a=>/b\r\nB: 2\r\nContent-Length: 0\r\n\
          Via: 1.1 x\r\nExpect: 100-continue\r\nForwarded: for=x\r\ntraceparent: t\r\n\
          Connection: keep-alive\r\nHost: h\r\nC: 3\n\r\n",
    );
    let mut names = names;
    names.sort();
    assert_eq!(
        names,
        [
            "connection",
            "content-length",
            "expect",
            "forwarded",
            "l5d-dtab",
            "traceparent",
            "via"
        ]
    );
    assert_eq!(block, "A: 1\r\nB: 2\r\nHost: h\r\nC: 3\r\n");
    assert!(!shared);
    // `Connection` naming a field, and a head the router checks in full
    // (two Hosts: refused there): every field in the map.
    for head in [
        &b"GET / HTTP/1.1\r\nHost: h\r\nConnection: x-a\r\nX-A: 1\r\nX-B: 2\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: h\r\nHost: i\r\nX-B: 2\r\n\r\n",
    ] {
        let (names, block, _) = split(head);
        assert!(names.contains(&"x-b".to_owned()), "{names:?}");
        assert_eq!(block, "");
    }
    // `Connection: close, upgrade` names no field.
    let (_, block, _) = split(
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Key: k\r\n\r\n",
    );
    assert_eq!(block, "Host: h\r\nSec-WebSocket-Key: k\r\n");
}

#[tokio::test]
async fn bodies_by_length_and_chunked_reach_the_router_whole() {
    let out = run(
        Mode::Echo,
        &[
            b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhel",
            b"lo",
            b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\nConnection: close\r\n\r\n3;ext=1\r\nabc\r\n",
            b"2\r\nde\r\n0\r\nX-T: t\r\n\r\n",
        ],
    )
    .await;
    assert!(out.contains("content-length: 5\nHost: h\n\nhello"), "{out}");
    assert!(out.contains("transfer-encoding: chunked\n"), "{out}");
    assert!(out.contains("\n\nabcde\ntrailer x-t: t"), "{out}");
}

#[tokio::test]
async fn smuggling_and_bad_framing_are_refused_with_400() {
    for (req, why) in [
        (
            &b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"[..],
            "Content-Length with Transfer-Encoding",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "chunked must be the last",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "chunked must be the last coding, once",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            "differing",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -3\r\n\r\nabc",
            "invalid Content-Length",
        ),
        (
            b"POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "HTTP/1.0",
        ),
        (b"GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n", "malformed"),
        (b"GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n", "malformed"),
    ] {
        let (c, task) = connect(svc(Mode::Echo), LIMITS);
        let mut c = c;
        c.write_all(req).await.unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).await.unwrap();
        drop(c);
        let svc = task.await.unwrap();
        assert_eq!(status(&out), 400, "{why}: {out}");
        assert!(out.contains(why), "{why}: {out}");
        assert!(out.contains("connection: close\r\n"), "{out}");
        assert_eq!(svc.calls.load(Ordering::SeqCst), 0, "never routed: {why}");
    }
    // Identical repeated lengths are one length.
    let out = run(
        Mode::Echo,
        &[b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2, 2\r\nConnection: close\r\n\r\nok"],
    )
    .await;
    assert_eq!(status(&out), 200, "{out}");
    assert!(out.ends_with("\n\nok"), "{out}");
}

#[tokio::test]
async fn a_malformed_chunked_body_fails_the_body_and_closes() {
    let out = run(
        Mode::Echo,
        &[b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"],
    )
    .await;
    assert!(out.contains("BODY ERROR: malformed chunked body"), "{out}");
    assert_eq!(
        out.matches("HTTP/1.1 ").count(),
        1,
        "nothing after it is read as a request: {out}"
    );
    assert!(out.contains("connection: close\r\n"), "{out}");
}

#[tokio::test]
async fn heads_past_the_limits_get_431_and_414() {
    let limits = Limits {
        max_headers: 10,
        max_head: 1024,
        ..LIMITS
    };
    let many: String = (0..11).map(|i| format!("X-{i}: 1\r\n")).collect();
    let out = run_with(
        Mode::Echo,
        limits,
        &[format!("GET / HTTP/1.1\r\nHost: h\r\n{many}\r\n").as_bytes()],
    )
    .await;
    assert_eq!(status(&out), 431, "{out}");
    assert!(out.contains("more than 10 header fields"), "{out}");
    let ok: String = (0..8).map(|i| format!("X-{i}: 1\r\n")).collect();
    let out = run_with(
        Mode::Echo,
        limits,
        &[format!("GET / HTTP/1.1\r\nHost: h\r\n{ok}Connection: close\r\n\r\n").as_bytes()],
    )
    .await;
    assert_eq!(status(&out), 200, "ten fields pass: {out}");
    // More than the stack's slots, within the limit.
    let wide = Limits {
        max_headers: 200,
        ..LIMITS
    };
    let many: String = (0..150).map(|i| format!("X-{i}: 1\r\n")).collect();
    let out = run_with(
        Mode::Echo,
        wide,
        &[format!("GET / HTTP/1.1\r\nHost: h\r\n{many}Connection: close\r\n\r\n").as_bytes()],
    )
    .await;
    assert_eq!(status(&out), 200, "{out}");
    assert!(out.contains("x-149: 1\n"), "{out}");
    let big = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n\r\n",
        "a".repeat(2000)
    );
    let out = run_with(Mode::Echo, limits, &[big.as_bytes()]).await;
    assert_eq!(status(&out), 431, "{out}");
    let long = format!("GET /{} HTTP/1.1\r\n", "p".repeat(2000));
    let out = run_with(Mode::Echo, limits, &[long.as_bytes()]).await;
    assert_eq!(status(&out), 414, "{out}");
}

#[tokio::test]
async fn a_head_trickled_a_byte_at_a_time_is_read_whole() {
    // CRLF and bare-LF line ends; more fields than the stack's slots.
    let many: String = (0..70).map(|i| format!("X-{i}: {i}\r\n")).collect();
    let wide = Limits {
        max_headers: 100,
        ..LIMITS
    };
    for head in [
        format!("GET /t HTTP/1.1\r\nHost: h\r\n{many}Connection: close\r\n\r\n"),
        "GET /lf HTTP/1.1\nHost: h\nConnection: close\n\n".to_string(),
    ] {
        let bytes: Vec<&[u8]> = head.as_bytes().chunks(1).collect();
        let out = run_with(Mode::Echo, wide, &bytes).await;
        assert_eq!(status(&out), 200, "{out}");
        assert!(out.contains("connection: close\n"), "{out}");
    }
}

#[test]
fn a_partial_head_is_parsed_again_only_when_its_end_may_have_come() {
    let head = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let end = head.len();
    // Nothing searched yet: any bytes are worth a parse.
    assert!(worth_parsing(&head[..1], None, 8192));
    assert!(!worth_parsing(b"", None, 8192));
    // Searched up to each point, then one more byte: only the byte that
    // completes the blank line is worth it, even split across reads.
    for at in 1..end {
        let want = at == end - 1;
        assert_eq!(
            worth_parsing(&head[..at + 1], Some(at), 8192),
            want,
            "searched to {at}"
        );
    }
    // The blank line arriving whole after a partial search.
    assert!(worth_parsing(head, Some(end - 4), 8192));
    // Bare LF line ends.
    assert!(worth_parsing(
        b"GET / HTTP/1.1\nHost: h\n\n",
        Some(22),
        8192
    ));
    // Past the limit: parsed, so that it is refused.
    assert!(worth_parsing(&[b'a'; 20], Some(19), 16));
}

#[tokio::test]
async fn continue_is_sent_only_when_the_body_is_read() {
    // Read: 100 first, then the answer.
    let (mut c, task) = connect(svc(Mode::Echo), LIMITS);
    c.write_all(b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 25];
    c.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.write_all(b"data").await.unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).await.unwrap();
    task.await.unwrap();
    assert!(
        out.starts_with("HTTP/1.1 200 OK\r\n") && out.ends_with("\n\ndata"),
        "{out}"
    );
    // Refused without reading: no 100, and the connection closes (the
    // body was never sent, so nothing else on it can be read as a head).
    let out = run(
        Mode::Refuse,
        &[b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"],
    )
    .await;
    assert!(
        out.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
        "{out}"
    );
    assert!(out.contains("connection: close\r\n"), "{out}");
}

#[tokio::test]
async fn an_unread_body_closes_the_connection_after_the_response() {
    let out = run(
        Mode::Refuse,
        &[b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"],
    )
    .await;
    assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
    assert!(out.contains("connection: close\r\n"), "{out}");
}

#[tokio::test]
async fn unknown_lengths_are_chunked_for_http11_and_closed_for_http10() {
    let out = run(
        Mode::Stream,
        &[b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"],
    )
    .await;
    assert!(out.contains("transfer-encoding: chunked\r\n"), "{out}");
    assert!(
        body_of(&out) == "6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n",
        "no trailers unless asked: {out}"
    );
    let out = run(
        Mode::Stream,
        &[b"GET / HTTP/1.1\r\nHost: h\r\nTE: trailers\r\nConnection: close\r\n\r\n"],
    )
    .await;
    assert!(body_of(&out).ends_with("0\r\nx-sum: 42\r\n\r\n"), "{out}");
    let out = run(Mode::Stream, &[b"GET / HTTP/1.0\r\nHost: h\r\n\r\n"]).await;
    assert!(!out.contains("transfer-encoding"), "{out}");
    assert!(out.contains("connection: close\r\n"), "{out}");
    assert_eq!(body_of(&out), "hello world", "{out}");
    // HTTP/1.0 with keep-alive and a known length stays open.
    let out = run(
        Mode::Echo,
        &[b"GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n"],
    )
    .await;
    assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
    assert!(out.contains("connection: keep-alive\r\n"), "{out}");
}

#[tokio::test]
async fn a_head_response_has_no_body() {
    let out = run(
        Mode::Echo,
        &[b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"],
    )
    .await;
    let (first, rest) = out.split_once("\r\n\r\n").unwrap();
    assert!(first.starts_with("HTTP/1.1 200 OK"), "{out}");
    assert!(
        rest.starts_with("HTTP/1.1 200 OK"),
        "the next response follows the head at once: {out}"
    );
    assert!(rest.contains("GET /next"), "{out}");
}

#[tokio::test]
async fn an_upgrade_hands_over_the_connection_with_what_was_read_past_the_head() {
    let (mut c, task) = connect(svc(Mode::Upgrade), LIMITS);
    c.write_all(
        b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\nearly",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        c.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(
        !head.contains("content-length") && !head.contains("connection: close"),
        "{head}"
    );
    let mut echoed = [0u8; 5];
    c.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"early");
    c.write_all(b"later").await.unwrap();
    c.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"later");
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_head_that_never_ends_gets_408_and_an_idle_connection_closes() {
    let out = run(Mode::Echo, &[b"GET / HTTP/1.1\r\nHost: h\r\n"]).await;
    assert_eq!(status(&out), 408, "{out}");
    assert!(out.contains("requestHeaderTimeoutMs"), "{out}");
    // Idle after a response: closed without a word.
    let out = run(Mode::Echo, &[b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"]).await;
    assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_is_cut_after_the_send_timeout() {
    let (mut c, task) = connect(svc(Mode::Big), LIMITS);
    c.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        .await
        .unwrap();
    // A little of the response, then nothing: the server's writes block.
    let mut some = vec![0u8; 1024];
    c.read_exact(&mut some).await.unwrap();
    let stopped = tokio::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(600), task)
        .await
        .expect("the connection ended")
        .unwrap();
    // On the runtime's paused clock: not before the timeout.
    assert!(stopped.elapsed() >= LIMITS.send_timeout);
    // What was written before is there; then the end, not the body's.
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).await.unwrap();
    assert!(1024 + rest.len() < BIG, "{} bytes", 1024 + rest.len());
}

#[tokio::test(start_paused = true)]
async fn a_client_that_reads_slowly_gets_the_whole_response() {
    let (mut c, task) = connect(svc(Mode::Big), LIMITS);
    c.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    // 64 KiB every second: each read lets the server write again well
    // within its five seconds.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = c.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    task.await.unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{}", &text[..200]);
    assert_eq!(body_of(&text).len(), BIG);
}

#[tokio::test]
async fn a_client_that_hangs_up_cancels_its_request() {
    let (mut c, task) = connect(svc(Mode::Hang), LIMITS);
    c.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(c);
    let svc = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the connection ended")
        .unwrap();
    assert_eq!(svc.calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        svc.dropped.load(Ordering::SeqCst),
        1,
        "the request's future was dropped"
    );
}

#[tokio::test]
async fn draining_closes_an_idle_connection_and_ends_a_busy_one_after_its_response() {
    let (tx, mut rx) = watch::channel(false);
    let (mut c, server) = tokio::io::duplex(64 * 1024);
    let task = tokio::spawn(async move {
        let svc = svc(Mode::Echo);
        serve(&svc, Box::new(server), LIMITS, Some(&mut rx)).await;
    });
    c.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = c.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200 OK"));
    tx.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("an idle connection closes when draining")
        .unwrap();
    assert_eq!(c.read(&mut buf).await.unwrap(), 0);
}

/// A header field's name and value as a client might send them.
fn field() -> impl Strategy<Value = (String, String)> {
    (
        "x-[a-z0-9-]{1,12}",
        "[ -~]{0,40}".prop_map(|v| v.trim().to_string()),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any request (method, target, fields, a body by length or chunked)
    /// reaches the router with the same method, target, fields (each
    /// name's values in order),
    /// and body, however its bytes are split into reads.
    #[test]
    fn any_request_reaches_the_router_as_sent(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
        path in "/[a-zA-Z0-9/._~-]{0,30}(\\?[a-z0-9=&]{0,20})?",
        fields in prop::collection::vec(field(), 0..12),
        body in prop::collection::vec(any::<u8>(), 0..2000),
        chunked in any::<bool>(),
        chunk in 1usize..700,
        split in 1usize..300,
    ) {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: h\r\n");
        for (n, v) in &fields {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        let mut bytes = req.into_bytes();
        if chunked {
            bytes.extend_from_slice(b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
            for c in body.chunks(chunk) {
                bytes.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                bytes.extend_from_slice(c);
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"0\r\n\r\n");
        } else {
            bytes.extend_from_slice(
                format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()).as_bytes(),
            );
            bytes.extend_from_slice(&body);
        }
        let pieces: Vec<&[u8]> = bytes.chunks(split).collect();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let out = rt.block_on(run(Mode::Echo, &pieces));
        // Each name's values, in order (the map keeps a name's values
        // together; the fields the router does not read follow it).
        let mut want: Vec<(String, Vec<String>)> = Vec::new();
        let mut add = |n: &str, v: &str| match want.iter_mut().find(|(k, _)| k == n) {
            Some((_, vs)) => vs.push(v.to_owned()),
            None => want.push((n.to_owned(), vec![v.to_owned()])),
        };
        // `Host` is passed on as written, in the client's case.
        add("Host", "h");
        for (n, v) in &fields {
            add(n, v);
        }
        if chunked {
            add("transfer-encoding", "chunked");
        } else {
            add("content-length", &body.len().to_string());
        }
        add("connection", "close");
        want.sort();
        let echoed = body_of(&out);
        let (head, echoed_body) = echoed.split_once("\n\n").unwrap();
        let mut lines = head.lines();
        let line = format!("{method} {path} HTTP/1.1");
        prop_assert_eq!(lines.next(), Some(line.as_str()));
        let mut got: Vec<(String, Vec<String>)> = Vec::new();
        for line in lines {
            let (n, v) = line.split_once(": ").unwrap_or((line.trim_end_matches(':'), ""));
            match got.iter_mut().find(|(k, _)| k == n) {
                Some((_, vs)) => vs.push(v.to_owned()),
                None => got.push((n.to_owned(), vec![v.to_owned()])),
            }
        }
        got.sort();
        prop_assert_eq!(got, want);
        prop_assert_eq!(echoed_body, String::from_utf8_lossy(&body));
        prop_assert_eq!(status(&out), 200);
    }
}

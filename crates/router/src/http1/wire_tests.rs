//! The HTTP/1.1 client side against a raw TCP backend: what it writes, how
//! it frames what it reads (RFC 9112 §6), when a connection is reused;
//! and property tests: any head it writes parses back the same, and any
//! response body comes out whole however the bytes are split into reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use http_body_util::{BodyExt, Either, Full};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::pool::Pool;

/// What a backend that answers one request with `pieces` (written one by
/// one, flushed apart) saw, and what the client made of the response.
struct Seen {
    request: Vec<u8>,
    status: u16,
    reason: Option<String>,
    headers: HeaderMap,
    body: Result<Vec<u8>, String>,
    trailers: Option<HeaderMap>,
    /// Connections idle in the pool afterwards (1: reused).
    idle: usize,
}

async fn exchange_raw(method: Method, body: &'static [u8], pieces: Vec<Vec<u8>>) -> Seen {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let backend = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut req = Vec::new();
        let mut chunk = [0u8; 4096];
        // The head, then as many body bytes as announced (tests send
        // bodies with a Content-Length or chunked ending in 0\r\n\r\n).
        loop {
            let n = s.read(&mut chunk).await.unwrap();
            req.extend_from_slice(&chunk[..n]);
            if let Some(end) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&req[..end]).to_ascii_lowercase();
                let want = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map(|v| v.trim().parse::<usize>().unwrap());
                let done = match want {
                    Some(n) => req.len() >= end + 4 + n,
                    None if head.contains("transfer-encoding: chunked") => {
                        req.ends_with(b"0\r\n\r\n")
                    }
                    None => true,
                };
                if done {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        for p in pieces {
            s.write_all(&p).await.unwrap();
            s.flush().await.unwrap();
            tokio::task::yield_now().await;
        }
        // Then it closes: what was written is still read first.
        req
    });
    let pool = Arc::new(Pool::new(
        Duration::from_secs(1),
        Duration::from_secs(60),
        None,
    ));
    let mut headers = HeaderMap::new();
    headers.insert(http::header::HOST, HeaderValue::from_static("backend"));
    let head = RequestHead {
        method: &method,
        path_and_query: "/p?q=1",
        headers: &headers,
        opaque: &[],
        lines: None,
    };
    let req_body: crate::client::ReqBody = Either::Right(Full::new(Bytes::from_static(body)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let resp = match pool.send(addr, &head, req_body, deadline).await {
        Ok(resp) => resp,
        // No response passed on: status 0, the error as the body's.
        Err(e) => {
            let request = backend.await.unwrap();
            return Seen {
                request,
                status: 0,
                reason: None,
                headers: HeaderMap::new(),
                body: Err(format!("{e:?}")),
                trailers: None,
                idle: pool.idle_count(),
            };
        }
    };
    let status = resp.status().as_u16();
    let reason = resp
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned());
    let mut headers = resp.headers().clone();
    let mut b = resp.into_body();
    if let Some(f) = b.take_fields() {
        f.into_map(&mut headers);
    }
    let mut data = Vec::new();
    let mut trailers = None;
    let mut err = None;
    while let Some(f) = b.frame().await {
        match f {
            Ok(f) => match f.into_data() {
                Ok(d) => data.extend_from_slice(&d),
                Err(f) => trailers = f.into_trailers().ok(),
            },
            Err(e) => {
                err = Some(e.to_string());
                break;
            }
        }
    }
    drop(b);
    let request = backend.await.unwrap();
    Seen {
        request,
        status,
        reason,
        headers,
        body: err.map_or(Ok(data), Err),
        trailers,
        idle: pool.idle_count(),
    }
}

fn piece(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

#[tokio::test]
async fn a_get_is_written_with_its_headers_and_no_framing() {
    let seen = exchange_raw(
        Method::GET,
        b"",
        vec![piece("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")],
    )
    .await;
    assert_eq!(
        String::from_utf8(seen.request).unwrap(),
        "GET /p?q=1 HTTP/1.1\r\nhost: backend\r\n\r\n"
    );
    assert_eq!(seen.status, 200);
    assert_eq!(seen.body.unwrap(), b"ok");
    assert_eq!(seen.idle, 1, "read to the end: the connection is reused");
}

#[tokio::test]
async fn a_reason_phrase_of_its_own_is_kept_for_the_caller() {
    let seen = exchange_raw(
        Method::GET,
        b"",
        vec![piece(
            "HTTP/1.1 200 Fine Thanks\r\ncontent-length: 0\r\n\r\n",
        )],
    )
    .await;
    assert_eq!(seen.reason.as_deref(), Some("Fine Thanks"));
    let seen = exchange_raw(
        Method::GET,
        b"",
        vec![piece("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")],
    )
    .await;
    assert_eq!(seen.reason, None, "the usual phrase needs nothing kept");
}

#[tokio::test]
async fn hop_by_hop_fields_never_reach_the_caller() {
    let seen = exchange_raw(
        Method::GET,
        b"",
        vec![piece(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n\
             Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nTrailer: x-sum\r\n\
             Upgrade: h2c\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\
             X-Keep: 1\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        )],
    )
    .await;
    let names: Vec<&str> = seen.headers.keys().map(|k| k.as_str()).collect();
    assert_eq!(names, ["x-keep"], "only end-to-end fields are left");
    assert_eq!(
        seen.body.unwrap(),
        b"ok",
        "chunked framed it, not the length"
    );
    assert_eq!(seen.idle, 1, "keep-alive: reused");
}

#[tokio::test]
async fn a_body_gets_its_content_length() {
    let seen = exchange_raw(
        Method::POST,
        b"hello",
        vec![piece("HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n")],
    )
    .await;
    assert_eq!(
        String::from_utf8(seen.request).unwrap(),
        "POST /p?q=1 HTTP/1.1\r\nhost: backend\r\ncontent-length: 5\r\n\r\nhello"
    );
    assert_eq!(seen.status, 201);
    assert_eq!(seen.idle, 1);
}

#[tokio::test]
async fn chunked_with_extensions_and_trailers_split_anywhere() {
    let seen = exchange_raw(
        Method::GET,
        b"",
        vec![
            piece("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhel"),
            piece("lo\r\n"),
            piece("6\r\n world\r\n0\r\nx-sum: 42\r\n"),
            piece("\r\n"),
        ],
    )
    .await;
    assert_eq!(seen.body.unwrap(), b"hello world");
    assert_eq!(seen.trailers.unwrap()["x-sum"], "42");
    assert_eq!(seen.idle, 1);
}

#[tokio::test]
async fn transfer_encoding_wins_over_content_length() {
    let seen = exchange_raw(
        Method::GET,
        b"",
        vec![piece(
            "HTTP/1.1 200 OK\r\ncontent-length: 100\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        )],
    )
    .await;
    assert_eq!(seen.body.unwrap(), b"ok");
}

#[tokio::test]
async fn no_length_reads_to_the_close_and_is_not_reused() {
    let seen = exchange_raw(
        Method::GET,
        b"",
        vec![piece("HTTP/1.1 200 OK\r\n\r\nuntil the end")],
    )
    .await;
    // The backend task ends (closing) after its pause.
    assert_eq!(seen.body.unwrap(), b"until the end");
    assert_eq!(seen.idle, 0);
}

#[tokio::test]
async fn head_204_and_304_have_no_body_whatever_their_length_says() {
    let seen = exchange_raw(
        Method::HEAD,
        b"",
        vec![piece("HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")],
    )
    .await;
    assert_eq!(seen.headers["content-length"], "1000");
    assert_eq!(seen.body.unwrap(), b"");
    assert_eq!(seen.idle, 1);
    for status in ["204 No Content", "304 Not Modified"] {
        let seen = exchange_raw(
            Method::GET,
            b"",
            vec![piece(&format!("HTTP/1.1 {status}\r\n\r\n"))],
        )
        .await;
        assert_eq!(seen.body.unwrap(), b"");
        assert_eq!(seen.idle, 1, "{status}");
    }
}

#[tokio::test]
async fn interim_responses_are_skipped() {
    let seen = exchange_raw(
        Method::POST,
        b"x",
        vec![
            piece("HTTP/1.1 100 Continue\r\n\r\n"),
            piece("HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\ny"),
        ],
    )
    .await;
    assert_eq!(seen.status, 200);
    assert!(!seen.headers.contains_key("link"));
    assert_eq!(seen.body.unwrap(), b"y");
}

#[tokio::test]
async fn connection_close_and_http_1_0_are_not_reused() {
    let seen = exchange_raw(
        Method::GET,
        b"",
        vec![piece(
            "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\na",
        )],
    )
    .await;
    assert_eq!(seen.body.unwrap(), b"a");
    assert_eq!(seen.idle, 0);
    let seen = exchange_raw(
        Method::GET,
        b"",
        vec![piece("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\na")],
    )
    .await;
    assert_eq!(seen.idle, 0);
    let seen = exchange_raw(
        Method::GET,
        b"",
        vec![piece(
            "HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 1\r\n\r\na",
        )],
    )
    .await;
    assert_eq!(seen.idle, 1, "HTTP/1.0 with keep-alive is reused");
}

#[tokio::test]
async fn untrustworthy_lengths_fail_the_exchange_before_any_head_is_passed_on() {
    for (resp, why) in [
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nabc",
            "differing",
        ),
        ("HTTP/1.1 200 OK\r\ncontent-length: +2\r\n\r\nab", "invalid"),
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 2, 3\r\n\r\nabc",
            "differing",
        ),
    ] {
        let seen = exchange_raw(Method::GET, b"", vec![piece(resp)]).await;
        assert_eq!(seen.status, 0, "{resp:?}: no response");
        let err = seen.body.expect_err(resp);
        assert!(err.contains(why), "{resp:?}: {err}");
        assert_eq!(seen.idle, 0);
    }
}

#[tokio::test]
async fn bad_chunked_framing_fails_the_body_and_closes() {
    for (resp, why) in [
        (
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            "chunk size",
        ),
        (
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\nab\r\n",
            "bare LF",
        ),
        (
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabX\r\n",
            "CRLF",
        ),
    ] {
        let seen = exchange_raw(Method::GET, b"", vec![piece(resp)]).await;
        let err = seen.body.expect_err(resp);
        assert!(err.contains(why), "{resp:?}: {err}");
        assert_eq!(seen.idle, 0);
    }
    // Cut short: the backend closes mid-body.
    let seen = exchange_raw(
        Method::GET,
        b"",
        vec![piece("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")],
    )
    .await;
    assert!(seen.body.unwrap_err().contains("closed"));
}

/// One kept-alive connection's timer serves every request on it: a later
/// deadline is only noted, an earlier one or one after the timer fired
/// re-arms it, and each request is held to its own deadline, never an
/// earlier request's.
#[tokio::test]
async fn each_request_on_a_kept_alive_connection_has_its_own_deadline() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    // Answers each request after the delay the test sends it, in ms, as
    // the path; `/never` is read and not answered.
    let answer = |mut s: tokio::net::TcpStream| async move {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                let n = s.read(&mut chunk).await.unwrap();
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                continue;
            };
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            let path = head.split(' ').nth(1).unwrap().trim_start_matches('/');
            let Ok(ms) = path.parse::<u64>() else {
                std::future::pending::<()>().await;
                return;
            };
            tokio::time::sleep(Duration::from_millis(ms)).await;
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
        }
    };
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(answer(s));
        }
    });
    let pool = Arc::new(Pool::new(
        Duration::from_secs(1),
        Duration::from_secs(60),
        None,
    ));
    let headers = HeaderMap::new();
    let send = |path: &'static str, within: Duration| {
        let pool = Arc::clone(&pool);
        let headers = headers.clone();
        async move {
            let head = RequestHead {
                method: &Method::GET,
                path_and_query: path,
                headers: &headers,
                opaque: &[],
                lines: None,
            };
            let body: crate::client::ReqBody = Either::Right(Full::new(Bytes::new()));
            let deadline = tokio::time::Instant::now() + within;
            match pool.send(addr, &head, body, deadline).await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    resp.into_body().collect().await.unwrap();
                    Ok(status)
                }
                Err(e) => Err(format!("{e:?}")),
            }
        }
    };
    let ms = Duration::from_millis;
    // Answered at once within 300 ms; then one given 5 s, answered after
    // 600 ms: past the first request's deadline, within its own.
    assert_eq!(send("/0", ms(300)).await, Ok(200));
    assert_eq!(send("/600", ms(5000)).await, Ok(200));
    assert_eq!(pool.idle_count(), 1, "one connection, reused");
    // A shorter deadline than the last one still holds.
    assert_eq!(send("/never", ms(200)).await, Err("TimedOut".to_owned()));
    assert_eq!(pool.idle_count(), 0, "a timed-out connection is dropped");
    // On a new connection whose timer fired while it was idle.
    assert_eq!(send("/0", ms(100)).await, Ok(200));
    tokio::time::sleep(ms(300)).await;
    assert_eq!(send("/150", ms(5000)).await, Ok(200));
    assert_eq!(send("/never", ms(200)).await, Err("TimedOut".to_owned()));
}

#[tokio::test]
async fn identical_repeated_content_lengths_are_one() {
    let seen = exchange_raw(
        Method::GET,
        b"",
        vec![piece(
            "HTTP/1.1 200 OK\r\ncontent-length: 2, 2\r\ncontent-length: 2\r\n\r\nok",
        )],
    )
    .await;
    assert_eq!(seen.body.unwrap(), b"ok");
}

#[test]
fn chunk_sizes() {
    assert_eq!(chunk_size(b"0").unwrap(), 0);
    assert_eq!(chunk_size(b"1aF").unwrap(), 0x1af);
    assert_eq!(chunk_size(b"10 ;name=value").unwrap(), 16);
    assert_eq!(chunk_size(b"ffffffffffffffff").unwrap(), u64::MAX);
    for bad in [&b""[..], b"-1", b"0x10", b"fffffffffffffffff", b" 1", b"g"] {
        assert!(chunk_size(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn a_head_larger_than_the_limit_is_refused() {
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\n"[..]);
    for i in 0..MAX_HEADERS + 1 {
        buf.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
    }
    buf.extend_from_slice(b"\r\n");
    let Err(e) = parse_head(&mut buf) else {
        panic!("more than {MAX_HEADERS} headers parsed");
    };
    assert!(e.to_string().contains("more than 100 header fields"), "{e}");
}

fn token() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,15}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any request head written parses back (with httparse, as a backend
    /// would) to the same method, target and headers, in order, plus
    /// exactly the framing header its body needs.
    #[test]
    fn written_heads_parse_back_the_same(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PURGE"]),
        path in "/[a-zA-Z0-9/._~%-]{0,40}(\\?[a-z0-9=&]{0,20})?",
        fields in prop::collection::vec((token(), "[ -~]{0,30}"), 0..12),
        body_len in 0usize..100,
    ) {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut headers = HeaderMap::new();
        for (n, v) in &fields {
            // Values as a client sends them: no leading or trailing space.
            let v = v.trim();
            if n == "content-length" || n == "transfer-encoding" {
                continue;
            }
            headers.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let body: crate::client::ReqBody = Either::Right(Full::new(Bytes::from(vec![b'x'; body_len])));
        let head = RequestHead { method: &method, path_and_query: &path, headers: &headers, opaque: &[], lines: None };
        let mut buf = Vec::new();
        let framing = encode_head(&mut buf, &head, &body);
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut slots);
        let n = req.parse(&buf).unwrap();
        prop_assert_eq!(n, httparse::Status::Complete(buf.len()));
        prop_assert_eq!(req.method, Some(method.as_str()));
        prop_assert_eq!(req.path, Some(path.as_str()));
        prop_assert_eq!(req.version, Some(1));
        let parsed: Vec<(String, Vec<u8>)> = req
            .headers
            .iter()
            .map(|h| (h.name.to_string(), h.value.to_vec()))
            .collect();
        let mut want: Vec<(String, Vec<u8>)> = headers
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
            .collect();
        let n = body_len;
        if n > 0 || matches!(method, Method::POST | Method::PUT | Method::PATCH) {
            want.push(("content-length".into(), n.to_string().into_bytes()));
        }
        prop_assert_eq!(parsed, want);
        prop_assert_eq!(framing, ReqFraming::Length(n as u64));
    }

    /// A response body, chunked or with a length, comes out byte for byte
    /// however its bytes are split into reads, and the connection is
    /// reused after it.
    #[test]
    fn bodies_survive_any_split(
        body in prop::collection::vec(any::<u8>(), 0..3000),
        chunks in prop::collection::vec(1usize..700, 1..8),
        cuts in prop::collection::vec(1usize..400, 0..12),
        chunked in any::<bool>(),
    ) {
        let mut wire = b"HTTP/1.1 200 OK\r\n".to_vec();
        if chunked {
            wire.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
            let mut rest = &body[..];
            let mut sizes = chunks.iter().cycle();
            while !rest.is_empty() {
                let n = (*sizes.next().unwrap()).min(rest.len());
                wire.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                wire.extend_from_slice(&rest[..n]);
                wire.extend_from_slice(b"\r\n");
                rest = &rest[n..];
            }
            wire.extend_from_slice(b"0\r\n\r\n");
        } else {
            wire.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
            wire.extend_from_slice(&body);
        }
        let mut pieces = Vec::new();
        let mut rest = &wire[..];
        for c in &cuts {
            if rest.is_empty() {
                break;
            }
            let n = (*c).min(rest.len());
            pieces.push(rest[..n].to_vec());
            rest = &rest[n..];
        }
        if !rest.is_empty() {
            pieces.push(rest.to_vec());
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let seen = rt.block_on(exchange_raw(Method::GET, b"", pieces));
        prop_assert_eq!(seen.body.unwrap(), body);
        prop_assert_eq!(seen.idle, 1);
    }
}

#[test]
fn hop_by_hop_names_are_the_list_strip_hop_by_hop_uses() {
    for n in crate::http1::HOP_BY_HOP {
        let name = n.as_str();
        assert!(hop_by_hop(name.as_bytes()), "{name}");
        assert!(hop_by_hop(name.to_ascii_uppercase().as_bytes()), "{name}");
        let longer = format!("{name}x");
        assert!(!hop_by_hop(longer.as_bytes()), "{longer}");
    }
    for other in ["host", "content-length", "tee", "connectionx", "via", ""] {
        assert!(!hop_by_hop(other.as_bytes()), "{other}");
    }
}

#[test]
fn content_lengths_are_digits_within_u64() {
    assert_eq!(content_length(b"64", Ok(None)), Ok(Some(64)));
    assert_eq!(content_length(b" 0 , 0", Ok(None)), Ok(Some(0)));
    assert_eq!(
        content_length(b"18446744073709551615", Ok(None)),
        Ok(Some(u64::MAX))
    );
    for bad in [
        &b"18446744073709551616"[..],
        b"",
        b"+5",
        b"-1",
        b"5a",
        b"0x10",
        b"1 2",
        b",",
    ] {
        assert!(content_length(bad, Ok(None)).is_err(), "{bad:?}");
    }
    assert!(content_length(b"5", Ok(Some(6))).is_err(), "differing");
}

#[test]
fn spans_past_the_stack_stay_one_slice_in_order() {
    for n in [0u32, 1, 23, 24, 25, 100] {
        let mut s = Spans::new();
        for i in 0..n {
            s.push((i, i + 1, i + 2, i + 3));
        }
        let want: Vec<(u32, u32, u32, u32)> = (0..n).map(|i| (i, i + 1, i + 2, i + 3)).collect();
        assert_eq!(s.as_slice(), want.as_slice(), "{n} spans");
    }
}

//! The connection pool against a real TCP server on 127.0.0.1: reuse,
//! endpoints that close idle connections, idle expiry, and connect errors.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt, Either, Full};
use strait_router::client::ReqBody;
use strait_router::http1::wire::{Body, RequestHead};
use strait_router::pool::{Pool, SendError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A backend answering `200 ok` to every request; with `close_after_one`
/// it closes each connection after its first response (as a backend whose
/// keep-alive timeout ran out would, without saying so in a header).
async fn backend(close_after_one: bool) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                loop {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    buf.drain(..end);
                    let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if s.write_all(resp).await.is_err() || close_after_one {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

/// `GET /` with `Host: backend`, sent through `pool`.
async fn get(pool: &Arc<Pool>, addr: SocketAddr) -> Result<Sent, SendError> {
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::HOST, "backend".parse().unwrap());
    let head = RequestHead {
        method: &http::Method::GET,
        path_and_query: "/",
        headers: &headers,
        opaque: &[],
        lines: None,
    };
    let body: ReqBody = Either::Right(Full::new(Bytes::new()));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    pool.send(addr, &head, body, deadline).await
}

type Sent = Box<Response<Body>>;

/// Reads the response body to the end (which gives the connection back).
async fn finish(_pool: &Arc<Pool>, resp: Sent) -> String {
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

/// One request, its body read to the end and its connection given back.
async fn round_trip(pool: &Arc<Pool>, addr: SocketAddr) -> Result<String, SendError> {
    Ok(finish(pool, get(pool, addr).await?).await)
}

/// Reads both bodies to their end concurrently.
async fn futures_both(a: Body, b: Body) -> (Bytes, Bytes) {
    let (a, b) = tokio::join!(a.collect(), b.collect());
    (a.unwrap().to_bytes(), b.unwrap().to_bytes())
}

fn pool() -> Arc<Pool> {
    Arc::new(Pool::new(
        Duration::from_secs(1),
        Duration::from_secs(60),
        None,
    ))
}

/// A pool of `maxSize` 2 to a fresh backend, and two requests holding both
/// connections busy.
async fn two_busy() -> (SocketAddr, Arc<AtomicUsize>, Arc<Pool>, Sent, Sent) {
    let (addr, accepted) = backend(false).await;
    let pool = Arc::new(Pool::new(
        Duration::from_secs(1),
        Duration::from_secs(60),
        Some(2),
    ));
    let a = get(&pool, addr).await.unwrap();
    let b = get(&pool, addr).await.unwrap();
    (addr, accepted, pool, a, b)
}

#[tokio::test]
async fn sequential_requests_share_one_connection() {
    let (addr, accepted) = backend(false).await;
    let pool = pool();
    for _ in 0..5 {
        assert_eq!(round_trip(&pool, addr).await.unwrap(), "ok");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(pool.idle_count(), 1);
}

#[tokio::test]
async fn a_response_not_read_to_the_end_does_not_come_back() {
    let (addr, accepted) = backend(false).await;
    let pool = pool();
    let resp = get(&pool, addr).await.unwrap();
    drop(resp);
    assert_eq!(round_trip(&pool, addr).await.unwrap(), "ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn connections_the_backend_closed_while_idle_are_not_used() {
    let (addr, accepted) = backend(true).await;
    let pool = pool();
    for i in 0..5 {
        assert_eq!(
            round_trip(&pool, addr).await.unwrap(),
            "ok",
            "request {i} gets through although its predecessor's connection closed"
        );
        // Let the close reach the pooled connection (or not: a request
        // written on a closed one is sent again on a new one).
        if i % 2 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn idle_connections_expire_and_go_with_their_endpoint() {
    let (addr, accepted) = backend(false).await;
    let pool = Arc::new(Pool::new(
        Duration::from_secs(1),
        Duration::from_millis(50),
        None,
    ));
    round_trip(&pool, addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    round_trip(&pool, addr).await.unwrap();
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "an expired idle connection is not reused"
    );
    tokio::time::sleep(Duration::from_millis(80)).await;
    pool.sweep(None);
    assert_eq!(pool.idle_count(), 0, "the sweep drops expired connections");

    let pool = self::pool();
    round_trip(&pool, addr).await.unwrap();
    pool.sweep(Some(&[addr]));
    assert_eq!(pool.idle_count(), 1, "a live endpoint keeps its connection");
    pool.sweep(Some(&[]));
    assert_eq!(pool.idle_count(), 0, "a removed endpoint's connections go");
}

#[tokio::test]
async fn max_size_bounds_the_connections_and_requests_wait_for_one() {
    let (addr, accepted, pool, a, b) = two_busy().await;
    // A third request waits: both connections are busy.
    let third = tokio::spawn({
        let pool = Arc::clone(&pool);
        async move { round_trip(&pool, addr).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !third.is_finished(),
        "it waits while maxSize connections are busy"
    );
    // One comes back idle: the waiter takes it.
    finish(&pool, a).await;
    assert_eq!(third.await.unwrap(), "ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "no third connection");

    // A connection that closes frees its place for a new one.
    let waiting = tokio::spawn({
        let pool = Arc::clone(&pool);
        async move {
            let c = get(&pool, addr).await.unwrap();
            let d = get(&pool, addr).await.unwrap();
            (c, d)
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !waiting.is_finished(),
        "one idle and one busy: the second waits"
    );
    drop(b);
    let (c, d) = waiting.await.unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
    for sent in [c, d] {
        finish(&pool, sent).await;
    }
    assert_eq!(pool.idle_count(), 2);
}

#[tokio::test]
async fn every_waiter_is_served_when_connections_come_back_together() {
    let (addr, accepted, pool, a, b) = two_busy().await;
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move { round_trip(&pool, addr).await.unwrap() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Both come back with no await in between: the backend's responses
    // are already read (buffered), so each body ends in its first poll.
    let (ba, bb) = (a.into_body(), b.into_body());
    let (ba, bb) = futures_both(ba, bb).await;
    drop((ba, bb));
    for w in waiters {
        let body = tokio::time::timeout(Duration::from_secs(5), w)
            .await
            .expect("every waiting request gets a connection")
            .unwrap();
        assert_eq!(body, "ok");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn nothing_listening_is_not_sent() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    match get(&pool(), addr).await {
        Err(SendError::NotSent(m)) => assert!(m.contains(&addr.to_string()), "{m}"),
        Err(other) => panic!("a refused connection sent nothing, got {other:?}"),
        Ok(_) => panic!("nothing listens"),
    }
}

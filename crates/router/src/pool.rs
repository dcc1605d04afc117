//! A client's connections to its endpoints: HTTP/1.1 over TCP, kept alive
//! between requests, by endpoint address.
//!
//! Written on hyper's connection API rather than hyper-util's pooled
//! client, which a client per concrete name does not need: that client
//! keys its pool by scheme and authority (hashing the authority a byte at
//! a time with SipHash, twice per request), boxes each request future, and
//! carries a connector and executor per client. Here a checkout is a lock
//! and a `Vec::pop` on the endpoint's idle list, and a connection goes back
//! to the list when its response body has been read to the end (the
//! router's response body reports that). Drop a response early and its
//! connection closes, as HTTP/1.1 requires.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::client::ReqBody;

/// The idle connections of one client.
pub struct Pool {
    idle: Mutex<HashMap<SocketAddr, Vec<Idle>>>,
    connect_timeout: Duration,
    idle_timeout: Duration,
    max_idle: usize,
}

struct Idle {
    tx: SendRequest<ReqBody>,
    since: Instant,
}

/// A connection carrying one request; give it back with [`Pool::put`]
/// once the response body has ended.
pub struct Conn {
    tx: SendRequest<ReqBody>,
    addr: SocketAddr,
}

/// Why a request got no response.
#[derive(Debug)]
pub enum SendError {
    /// Nothing was sent: no connection could be made, or the one made
    /// closed before the request was written. Safe to send elsewhere.
    NotSent(String),
    /// The request was (or may have been) written.
    Failed(hyper::Error),
}

impl Pool {
    /// A pool connecting within `connect_timeout` and keeping up to
    /// `max_idle` connections per endpoint for `idle_timeout`.
    pub fn new(connect_timeout: Duration, idle_timeout: Duration, max_idle: usize) -> Pool {
        Pool {
            idle: Mutex::default(),
            connect_timeout,
            idle_timeout,
            max_idle,
        }
    }

    /// Sends `req` to `addr` on an idle connection, or a new one. A pooled
    /// connection the endpoint closed while it was idle is dropped and the
    /// request goes on the next (nothing was written on it).
    pub async fn send(
        &self,
        addr: SocketAddr,
        mut req: Request<ReqBody>,
    ) -> Result<(Response<Incoming>, Conn), SendError> {
        loop {
            let (mut tx, reused) = match self.checkout(addr) {
                Some(tx) => (tx, true),
                None => (self.connect(addr).await?, false),
            };
            // A connection is ready once it has read the end of the previous
            // response; an error means it is closed.
            let closed = tx.ready().await.is_err();
            if closed {
                if reused {
                    continue;
                }
                return Err(SendError::NotSent(
                    "the connection closed before the request was sent".into(),
                ));
            }
            match tx.try_send_request(req).await {
                Ok(resp) => return Ok((resp, Conn { tx, addr })),
                Err(mut e) => match e.take_message() {
                    Some(back) if reused => req = back,
                    Some(_) => return Err(SendError::NotSent(e.into_error().to_string())),
                    None => return Err(SendError::Failed(e.into_error())),
                },
            }
        }
    }

    /// Takes back a connection whose response has ended.
    pub fn put(&self, conn: Conn) {
        if conn.tx.is_closed() || self.max_idle == 0 {
            return;
        }
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(conn.addr).or_default();
        // Oldest first: expired and closed ones go from the front.
        let stale = list
            .iter()
            .take_while(|i| i.tx.is_closed() || now - i.since >= self.idle_timeout)
            .count();
        list.drain(..stale);
        if list.len() >= self.max_idle {
            list.remove(0);
        }
        list.push(Idle {
            tx: conn.tx,
            since: now,
        });
    }

    /// Drops idle connections that are closed, idle past the timeout, or to
    /// endpoints not in `live` (when given).
    pub fn sweep(&self, live: Option<&[SocketAddr]>) {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|addr, list| {
            if live.is_some_and(|l| !l.contains(addr)) {
                return false;
            }
            list.retain(|i| !i.tx.is_closed() && now - i.since < self.idle_timeout);
            !list.is_empty()
        });
    }

    /// Idle connections now (all endpoints).
    pub fn idle_count(&self) -> usize {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.values().map(Vec::len).sum()
    }

    /// The most recently returned live idle connection to `addr`.
    fn checkout(&self, addr: SocketAddr) -> Option<SendRequest<ReqBody>> {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.get_mut(&addr)?;
        while let Some(i) = list.pop() {
            if !i.tx.is_closed() && now - i.since < self.idle_timeout {
                return Some(i.tx);
            }
        }
        None
    }

    async fn connect(&self, addr: SocketAddr) -> Result<SendRequest<ReqBody>, SendError> {
        let stream =
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(SendError::NotSent(format!("connecting to {addr}: {e}"))),
                Err(_) => {
                    return Err(SendError::NotSent(format!(
                        "connecting to {addr}: no answer within {} ms",
                        self.connect_timeout.as_millis()
                    )));
                }
            };
        let _ = stream.set_nodelay(true);
        let (tx, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| SendError::NotSent(format!("connecting to {addr}: {e}")))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%addr, error = %e, "upstream connection ended with an error");
            }
        });
        Ok(tx)
    }
}

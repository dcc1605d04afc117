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
//!
//! `hostConnectionPool.maxSize` bounds the connections to one endpoint,
//! busy and idle together, as Finagle's pool does: a request that finds
//! them all busy waits for one to come back (or to close), for as long as
//! its timeouts allow.
//!
//! With a client `tls` block, each new connection is a TLS connection: the
//! handshake (and the certificate check) is part of connecting, within
//! `connectTimeoutMs`, and a failed one is a failed connect (nothing sent).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::client::ReqBody;
use crate::descriptors::IdleSlot;
use crate::tls_client::TlsConnect;

/// The most a backend connection buffers while reading (response heads
/// included: larger heads are refused).
const RESPONSE_READ_BUFFER: usize = 64 * 1024;

/// Whether a connect error is this process's own shortage (`EMFILE`,
/// `ENFILE`, `ENOBUFS`, `ENOMEM`, `EADDRNOTAVAIL`) rather than the
/// endpoint's refusal.
fn is_local(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12 | 99))
}

/// How often a request waiting for a connection looks again at idle ones
/// that were not ready (still sending another request's body).
const NOT_READY_RECHECK: Duration = Duration::from_millis(10);

/// The connections of one client.
pub struct Pool {
    endpoints: Mutex<HashMap<SocketAddr, HostConns, foldhash::fast::RandomState>>,
    connect_timeout: Duration,
    idle_timeout: Duration,
    max_size: Option<usize>,
    /// TLS on every connection, when the client has a `tls` block.
    tls: Option<TlsConnect>,
}

/// One endpoint's idle connections and its connection bound.
struct HostConns {
    /// Oldest first.
    idle: Vec<Idle>,
    /// `maxSize` permits; every open connection holds one.
    limit: Option<Arc<Semaphore>>,
    /// Woken when a connection comes back idle.
    returned: Arc<Notify>,
}

impl HostConns {
    /// Whether no connection to it is open, idle or busy.
    fn unused(&self, max: Option<usize>) -> bool {
        self.idle.is_empty()
            && match (&self.limit, max) {
                (Some(l), Some(max)) => l.available_permits() == max,
                _ => true,
            }
    }
}

struct Idle {
    tx: SendRequest<ReqBody>,
    permit: Option<OwnedSemaphorePermit>,
    since: Instant,
    /// Its place among the process's idle backend connections.
    _slot: IdleSlot,
}

/// A connection carrying one request; give it back with [`Pool::put`]
/// once the response body has ended.
pub struct Conn {
    tx: SendRequest<ReqBody>,
    permit: Option<OwnedSemaphorePermit>,
    addr: SocketAddr,
}

/// What a checkout found.
enum Checkout {
    /// An idle connection (and its permit).
    Idle(SendRequest<ReqBody>, Option<OwnedSemaphorePermit>),
    /// Room to open one (its permit, when bounded).
    Open(Option<OwnedSemaphorePermit>),
}

/// Why a request got no response.
#[derive(Debug)]
pub enum SendError {
    /// Nothing was sent: no connection could be made, or the one made
    /// closed before the request was written. Safe to send elsewhere.
    NotSent(String),
    /// The request was (or may have been) written.
    Failed(hyper::Error),
    /// Nothing was sent because this process ran short of resources
    /// (descriptors, buffers, local ports): not the endpoint's fault.
    Local(String),
    /// Nothing was sent: the TLS handshake failed; why (for `l5d-err`).
    Handshake(String),
}

impl Pool {
    /// A pool connecting within `connect_timeout`, keeping idle
    /// connections for `idle_timeout`, and opening at most `max_size`
    /// connections per endpoint (unbounded when `None`).
    pub fn new(connect_timeout: Duration, idle_timeout: Duration, max_size: Option<usize>) -> Pool {
        Pool {
            endpoints: Mutex::default(),
            connect_timeout,
            idle_timeout,
            max_size: max_size.map(|m| m.max(1)),
            tls: None,
        }
    }

    /// The pool speaking TLS on its connections.
    pub fn with_tls(mut self, tls: TlsConnect) -> Pool {
        self.tls = Some(tls);
        self
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
            let (mut tx, permit, reused) = match self.checkout(addr).await {
                Checkout::Idle(tx, permit) => (tx, permit, true),
                // Boxed: connecting (TCP, then a TLS handshake) is a ~3.6 KiB
                // state machine, which would otherwise sit inside every
                // request's future and be copied with it at each `.await`
                // up the chain, though a kept-alive request never connects.
                Checkout::Open(permit) => (Box::pin(self.connect(addr)).await?, permit, false),
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
                Ok(resp) => return Ok((resp, Conn { tx, permit, addr })),
                Err(mut e) => match e.take_message() {
                    Some(back) if reused => req = back,
                    Some(_) => return Err(SendError::NotSent(e.into_error().to_string())),
                    None => return Err(SendError::Failed(e.into_error())),
                },
            }
        }
    }

    /// Takes back a connection whose response has ended. One still
    /// sending its request body (the backend answered before reading it
    /// all) waits in the idle list without being handed out until it is
    /// ready: the next request never waits behind another client's upload.
    pub fn put(&self, conn: Conn) {
        if conn.tx.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut endpoints = self.lock();
        let ep = self.endpoint(&mut endpoints, conn.addr);
        // Oldest first: expired and closed ones go from the front.
        let stale = ep
            .idle
            .iter()
            .take_while(|i| i.tx.is_closed() || now - i.since >= self.idle_timeout)
            .count();
        ep.idle.drain(..stale);
        // Over the process's cap of idle backend connections, it closes.
        let Some(slot) = IdleSlot::take() else {
            return;
        };
        ep.idle.push(Idle {
            tx: conn.tx,
            permit: conn.permit,
            since: now,
            _slot: slot,
        });
        ep.returned.notify_one();
    }

    /// Drops idle connections that are closed, idle past the timeout, or to
    /// endpoints not in `live` (when given).
    pub fn sweep(&self, live: Option<&[SocketAddr]>) {
        let now = Instant::now();
        let max = self.max_size;
        self.lock().retain(|addr, ep| {
            if live.is_some_and(|l| !l.contains(addr)) {
                ep.idle.clear();
            } else {
                ep.idle
                    .retain(|i| !i.tx.is_closed() && now - i.since < self.idle_timeout);
            }
            // An endpoint with busy connections keeps its bound.
            !ep.unused(max)
        });
    }

    /// Idle connections now (all endpoints).
    pub fn idle_count(&self) -> usize {
        self.lock().values().map(|e| e.idle.len()).sum()
    }

    /// The most recently returned live idle connection to `addr`, or leave
    /// to open one; waits while `maxSize` connections are open and busy.
    async fn checkout(&self, addr: SocketAddr) -> Checkout {
        let (returned, limit) = match self.try_checkout(addr) {
            Ok(c) => return c,
            Err(wait) => wait,
        };
        loop {
            // Registered before looking again, so that a connection put back
            // from here on wakes this request (a wake-up stored for nobody
            // holds only one, however many come back).
            let notified = returned.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Ok(c) = self.try_checkout(addr) {
                return c;
            }
            // Every connection is busy: the first to come back idle, or a
            // permit freed by one closing, or (every few milliseconds) one
            // in the idle list that was still finishing its request.
            tokio::select! {
                () = &mut notified => {}
                p = Arc::clone(&limit).acquire_owned() => {
                    if let Ok(p) = p {
                        return Checkout::Open(Some(p));
                    }
                }
                () = tokio::time::sleep(NOT_READY_RECHECK) => {}
            }
        }
    }

    /// [`Pool::checkout`] without waiting: what to wait on when it would.
    fn try_checkout(&self, addr: SocketAddr) -> Result<Checkout, (Arc<Notify>, Arc<Semaphore>)> {
        let now = Instant::now();
        let mut endpoints = self.lock();
        let ep = self.endpoint(&mut endpoints, addr);
        // Closed and expired ones go; the newest ready one is taken. One
        // not ready yet stays (a request never waits on a connection that
        // another request may still be using).
        ep.idle
            .retain(|i| !i.tx.is_closed() && now - i.since < self.idle_timeout);
        if let Some(at) = ep.idle.iter().rposition(|i| i.tx.is_ready()) {
            let i = ep.idle.remove(at);
            return Ok(Checkout::Idle(i.tx, i.permit));
        }
        let Some(limit) = &ep.limit else {
            return Ok(Checkout::Open(None));
        };
        match Arc::clone(limit).try_acquire_owned() {
            Ok(p) => Ok(Checkout::Open(Some(p))),
            Err(_) => Err((Arc::clone(&ep.returned), Arc::clone(limit))),
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, HostConns, foldhash::fast::RandomState>>
    {
        self.endpoints.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn endpoint<'a>(
        &self,
        endpoints: &'a mut HashMap<SocketAddr, HostConns, foldhash::fast::RandomState>,
        addr: SocketAddr,
    ) -> &'a mut HostConns {
        endpoints.entry(addr).or_insert_with(|| HostConns {
            idle: Vec::new(),
            limit: self.max_size.map(|m| Arc::new(Semaphore::new(m))),
            returned: Arc::new(Notify::new()),
        })
    }

    async fn connect(&self, addr: SocketAddr) -> Result<SendRequest<ReqBody>, SendError> {
        let deadline = tokio::time::Instant::now() + self.connect_timeout;
        let stream = connect_tcp(addr, deadline, self.connect_timeout).await?;
        match &self.tls {
            None => handshake(stream, addr).await,
            Some(tls) => match tls.handshake(stream, addr, deadline).await {
                Ok(s) => handshake(s, addr).await,
                Err(why) => Err(SendError::Handshake(why)),
            },
        }
    }
}

/// A TCP connection to `addr` by `deadline` (`timeout` after the start,
/// for the message), `TCP_NODELAY` on.
pub(crate) async fn connect_tcp(
    addr: SocketAddr,
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> Result<TcpStream, SendError> {
    let stream = match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) if is_local(&e) => {
            return Err(SendError::Local(format!(
                "Strait cannot open a connection to {addr}: {e}"
            )));
        }
        Ok(Err(e)) => return Err(SendError::NotSent(format!("connecting to {addr}: {e}"))),
        Err(_) => {
            return Err(SendError::NotSent(format!(
                "connecting to {addr}: no answer within {} ms",
                timeout.as_millis()
            )));
        }
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// HTTP/1.1 on a connected stream; its connection task is spawned.
async fn handshake<T>(io: T, addr: SocketAddr) -> Result<SendRequest<ReqBody>, SendError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (tx, conn) = http1::Builder::new()
        // A response body is read no faster than the client takes it,
        // at most this much at a time (hyper's default lets the read
        // buffer grow to ~400 KiB per connection: a slow reader of a
        // large response would cost ~1 MiB of RSS).
        .max_buf_size(RESPONSE_READ_BUFFER)
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| SendError::NotSent(format!("connecting to {addr}: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(%addr, error = %e, "upstream connection ended with an error");
        }
    });
    Ok(tx)
}

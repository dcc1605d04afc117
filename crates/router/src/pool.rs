//! A client's connections to its endpoints: HTTP/1.1 over TCP, kept alive
//! between requests, by endpoint address.
//!
//! A checkout is a lock and a `Vec::pop` on the endpoint's idle list (and
//! a look at whether the endpoint closed the connection meanwhile, which
//! costs no system call unless the socket has something to read); the
//! request is written and its response read on the request's own task
//! ([`crate::http1::wire`]), and the connection goes back to the list when
//! its response body has been read to the end. Drop a response early and
//! its connection closes, as HTTP/1.1 requires.
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

use http::Response;
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::client::ReqBody;
use crate::descriptors::IdleSlot;
use crate::http1::wire::{self, Io, RequestHead, Unanswered, Wire, WireError};
use crate::tls_client::TlsConnect;

/// Whether a connect error is this process's own shortage (`EMFILE`,
/// `ENFILE`, `ENOBUFS`, `ENOMEM`, `EADDRNOTAVAIL`) rather than the
/// endpoint's refusal.
fn is_local(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12 | 99))
}

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
    wire: Box<Wire>,
    since: Instant,
    /// Its place among the process's idle backend connections.
    _slot: IdleSlot,
}

/// A connection carrying one request; its response body gives it back to
/// its pool once it has been read to the end. Two pointers: the
/// connection's state is boxed once, when it is opened.
pub struct Conn {
    pub(crate) wire: Box<Wire>,
    pool: Arc<Pool>,
}

impl Conn {
    /// The connection after a 101, for the upgrade's tunnel.
    pub(crate) fn into_rewind(self) -> wire::Rewind<wire::Io> {
        self.wire.into_upgraded()
    }

    /// Back to the pool, to carry another request.
    pub(crate) fn reuse(conn: Conn) {
        let pool = Arc::clone(&conn.pool);
        pool.put(conn);
    }
}

/// What a checkout found.
enum Checkout {
    /// An idle connection.
    Idle(Box<Wire>),
    /// Room to open one (its permit, when bounded).
    Open(Option<OwnedSemaphorePermit>),
}

/// Why a request got no response.
#[derive(Debug)]
pub enum SendError {
    /// Nothing was sent: no connection could be made, or the one made
    /// closed before the request was written. Safe to send elsewhere.
    NotSent(String),
    /// The request was (or may have been) written (h2).
    Failed(hyper::Error),
    /// The request was (or may have been) written (HTTP/1.1), or the
    /// client's request body failed on the way.
    Broken(WireError),
    /// Nothing was sent because this process ran short of resources
    /// (descriptors, buffers, local ports): not the endpoint's fault.
    Local(String),
    /// Nothing was sent: the TLS handshake failed; why (for `l5d-err`).
    Handshake(String),
    /// The deadline passed before the response's head came (the request
    /// may have been written).
    TimedOut,
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

    /// Sends `req` to `addr` on an idle connection, or a new one, and
    /// reads the response's head. A pooled connection the endpoint closed
    /// while it was idle is dropped and the request goes on the next
    /// (nothing was written on it).
    pub async fn send(
        self: &Arc<Self>,
        addr: SocketAddr,
        head: &RequestHead<'_>,
        mut body: ReqBody,
        deadline: tokio::time::Instant,
    ) -> Result<Box<Response<wire::Body>>, SendError> {
        loop {
            let (wire, reused) = match self.try_checkout(addr) {
                Ok(Checkout::Idle(wire)) => (wire, true),
                // Waiting for a connection (a free place under `maxSize`,
                // a connect, a TLS handshake) counts against the deadline.
                // Boxed: connecting is a ~3.6 KiB state machine, which
                // would otherwise sit inside every request's future and be
                // copied with it at each `.await` up the chain, though a
                // kept-alive request never connects.
                found => {
                    let opened = Box::pin(self.open(addr, found));
                    match tokio::time::timeout_at(deadline, opened).await {
                        Ok(opened) => opened?,
                        Err(_) => return Err(SendError::TimedOut),
                    }
                }
            };
            let conn = Conn {
                wire,
                pool: Arc::clone(self),
            };
            match wire::exchange(conn, head, body, deadline).await {
                Ok(resp) => return Ok(resp),
                Err(Unanswered::TimedOut) => return Err(SendError::TimedOut),
                Err(Unanswered::Unsent(back, _)) if reused => body = back,
                Err(Unanswered::Unsent(_, e)) => {
                    return Err(SendError::NotSent(format!(
                        "the connection to {addr} closed before the request was sent: {e}"
                    )));
                }
                Err(Unanswered::Failed(e)) => return Err(SendError::Broken(e)),
            }
        }
    }

    /// Takes back a connection whose response has ended (and whose
    /// request was sent whole).
    pub(crate) fn put(&self, conn: Conn) {
        let now = Instant::now();
        let mut endpoints = self.lock();
        let ep = self.endpoint(&mut endpoints, conn.wire.addr);
        self.drop_expired(ep, now);
        // Over the process's cap of idle backend connections, it closes.
        let Some(slot) = IdleSlot::take() else {
            return;
        };
        ep.idle.push(Idle {
            wire: conn.wire,
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
                    .retain_mut(|i| now - i.since < self.idle_timeout && !i.wire.closed());
            }
            // An endpoint with busy connections keeps its bound.
            !ep.unused(max)
        });
    }

    /// Idle connections now (all endpoints).
    pub fn idle_count(&self) -> usize {
        self.lock().values().map(|e| e.idle.len()).sum()
    }

    /// A connection to `addr` once [`Pool::try_checkout`] found none idle
    /// (`found`): one opened, or (after waiting while `maxSize`
    /// connections are open and busy) one given back; whether it was
    /// reused.
    async fn open(
        &self,
        addr: SocketAddr,
        found: Result<Checkout, (Arc<Notify>, Arc<Semaphore>)>,
    ) -> Result<(Box<Wire>, bool), SendError> {
        let checkout = match found {
            Ok(c) => c,
            Err(wait) => self.checkout(addr, wait).await,
        };
        match checkout {
            Checkout::Idle(wire) => Ok((wire, true)),
            Checkout::Open(permit) => Ok((self.connect(addr, permit).await?, false)),
        }
    }

    /// The most recently returned live idle connection to `addr`, or leave
    /// to open one, once `try_checkout` said to wait on `returned` and
    /// `limit`: waits while `maxSize` connections are open and busy.
    async fn checkout(
        &self,
        addr: SocketAddr,
        (returned, limit): (Arc<Notify>, Arc<Semaphore>),
    ) -> Checkout {
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
            // permit freed by one closing.
            tokio::select! {
                () = &mut notified => {}
                p = Arc::clone(&limit).acquire_owned() => {
                    if let Ok(p) = p {
                        return Checkout::Open(Some(p));
                    }
                }
            }
        }
    }

    /// [`Pool::checkout`] without waiting: what to wait on when it would.
    fn try_checkout(&self, addr: SocketAddr) -> Result<Checkout, (Arc<Notify>, Arc<Semaphore>)> {
        let now = Instant::now();
        let mut endpoints = self.lock();
        let ep = self.endpoint(&mut endpoints, addr);
        // Expired ones go; the newest the endpoint has not closed is taken.
        self.drop_expired(ep, now);
        while let Some(mut i) = ep.idle.pop() {
            if !i.wire.closed() {
                return Ok(Checkout::Idle(i.wire));
            }
        }
        let Some(limit) = &ep.limit else {
            return Ok(Checkout::Open(None));
        };
        match Arc::clone(limit).try_acquire_owned() {
            Ok(p) => Ok(Checkout::Open(Some(p))),
            Err(_) => Err((Arc::clone(&ep.returned), Arc::clone(limit))),
        }
    }

    /// Drops `ep`'s connections idle for `idleTimeMs` or more (oldest
    /// first: they go from the front).
    fn drop_expired(&self, ep: &mut HostConns, now: Instant) {
        let stale = ep
            .idle
            .iter()
            .take_while(|i| now - i.since >= self.idle_timeout)
            .count();
        ep.idle.drain(..stale);
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

    async fn connect(
        &self,
        addr: SocketAddr,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<Box<Wire>, SendError> {
        let deadline = tokio::time::Instant::now() + self.connect_timeout;
        let stream = connect_tcp(addr, deadline, self.connect_timeout).await?;
        let io = match &self.tls {
            None => Io::Tcp(stream),
            Some(tls) => match tls.handshake(stream, addr, deadline).await {
                Ok(s) => Io::Tls(Box::new(s)),
                Err(why) => return Err(SendError::Handshake(why)),
            },
        };
        Ok(Box::new(Wire::new(io, addr, permit)))
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

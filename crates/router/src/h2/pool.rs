//! An h2 client's connections: one multiplexed HTTP/2 connection per
//! endpoint (as Linkerd's h2 client kept), which every request to that
//! endpoint rides as a stream, so the balancer picks per request, not per
//! connection.
//!
//! Requests that find no connection to their endpoint share the one being
//! opened (never a connection each); a connection the endpoint closed (or
//! sent GOAWAY on) is replaced by the next request that needs it.
//! Plaintext is HTTP/2 with prior knowledge (h2c); with a client `tls`
//! block, TLS with ALPN `h2`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::sync::OnceCell;

use super::body::H2ReqBody;
use crate::params::H2Settings;
use crate::pool::SendError;
use crate::tls_client::TlsConnect;

type Sender = SendRequest<H2ReqBody>;

/// The connections of one h2 client.
pub struct H2Pool {
    conns: Mutex<HashMap<SocketAddr, Arc<OnceCell<Sender>>>>,
    connect_timeout: Duration,
    settings: H2Settings,
    tls: Option<TlsConnect>,
}

impl H2Pool {
    /// A pool connecting within `connect_timeout` with `settings`.
    pub fn new(connect_timeout: Duration, settings: H2Settings) -> H2Pool {
        H2Pool {
            conns: Mutex::default(),
            connect_timeout,
            settings,
            tls: None,
        }
    }

    /// The pool speaking TLS (its config's ALPN must offer `h2`).
    pub fn with_tls(mut self, tls: TlsConnect) -> H2Pool {
        self.tls = Some(tls);
        self
    }

    /// Whether its connections are TLS (the `:scheme` requests carry).
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Arc<OnceCell<Sender>>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The connection to `addr`: the open one, the one being opened, or a
    /// new one. Errors are connect failures: nothing was sent.
    pub async fn sender(&self, addr: SocketAddr) -> Result<Sender, SendError> {
        let cell = {
            let mut conns = self.lock();
            let cell = conns.entry(addr).or_default();
            if cell.get().is_some_and(Sender::is_closed) {
                *cell = Arc::default();
            }
            Arc::clone(cell)
        };
        let tx = cell
            .get_or_try_init(|| Box::pin(self.connect(addr)))
            .await?;
        Ok(tx.clone())
    }

    /// Forgets the connection to `addr` if it is still `tx`'s (a request
    /// on it found it closed), so the next request opens another.
    pub fn closed(&self, addr: SocketAddr) {
        let mut conns = self.lock();
        if conns
            .get(&addr)
            .is_some_and(|c| c.get().is_some_and(Sender::is_closed))
        {
            conns.remove(&addr);
        }
    }

    /// Drops connections that are closed or to endpoints not in `live`:
    /// their connection tasks end once their streams in flight have
    /// (a dropped `SendRequest` lets the connection finish them).
    pub fn sweep(&self, live: Option<&[SocketAddr]>) {
        self.lock().retain(|addr, c| {
            live.is_none_or(|l| l.contains(addr)) && !c.get().is_some_and(Sender::is_closed)
        });
    }

    /// Open connections now.
    pub fn open_count(&self) -> usize {
        self.lock()
            .values()
            .filter(|c| c.get().is_some_and(|t| !t.is_closed()))
            .count()
    }

    async fn connect(&self, addr: SocketAddr) -> Result<Sender, SendError> {
        let deadline = tokio::time::Instant::now() + self.connect_timeout;
        let stream = crate::pool::connect_tcp(addr, deadline, self.connect_timeout).await?;
        match &self.tls {
            None => self.handshake(stream, addr).await,
            Some(tls) => match tls.handshake(stream, addr, deadline).await {
                Ok(s) => {
                    let alpn = s.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
                    if alpn.as_deref() != Some(b"h2") {
                        return Err(SendError::Handshake(format!(
                            "{addr} did not agree to HTTP/2 over TLS (ALPN h2; it chose {})",
                            alpn.map_or("nothing".to_owned(), |a| {
                                String::from_utf8_lossy(&a).into_owned()
                            })
                        )));
                    }
                    self.handshake(s, addr).await
                }
                Err(why) => Err(SendError::Handshake(why)),
            },
        }
    }

    async fn handshake<T>(&self, io: T, addr: SocketAddr) -> Result<Sender, SendError>
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let s = self.settings;
        let mut b = http2::Builder::new(TokioExecutor::new());
        b.timer(TokioTimer::new())
            .initial_stream_window_size(s.initial_stream_window)
            .max_frame_size(s.max_frame)
            .header_table_size(s.header_table)
            // Dead connections are noticed without a request on them.
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(20));
        if let Some(n) = s.max_header_list {
            b.max_header_list_size(n);
        }
        let (tx, conn) = b
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| SendError::NotSent(format!("HTTP/2 handshake with {addr}: {e}")))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%addr, error = %e, "upstream h2 connection ended with an error");
            }
        });
        Ok(tx)
    }
}

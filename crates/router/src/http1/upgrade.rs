//! Upgrades: a backend's 101 joins the two connections, until both ends
//! are done or neither carries a byte for `upgradeIdleTimeoutMs`.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, HeaderMap, HeaderValue, UPGRADE};
use http::{Request, Response};
use http_body_util::{Either, Full};
use strait_balancer::Outcome;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

use super::serve::OnUpgrade;
use super::{append_via, strip_hop_by_hop};
use crate::body::RequestBody;
use crate::router::Body;
use crate::stats::{Counter, Gauge, Registry, Scope};

/// How long an idle tunnel's ends get to flush and shut down before they
/// are dropped: a peer that reads nothing must not keep the task.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// A server's upgraded connections, in its scope: `upgraded` (open now)
/// and `upgrade_idle_closes` (closed by `upgradeIdleTimeoutMs`).
#[derive(Debug, Default)]
pub struct UpgradeStats {
    open: Arc<Gauge>,
    idle_closes: Arc<Counter>,
}

impl UpgradeStats {
    /// The stats of the server whose scope is `scope`.
    pub fn new(registry: &Registry, scope: &Scope) -> UpgradeStats {
        UpgradeStats {
            open: registry.gauge(scope, "upgraded"),
            idle_closes: registry.counter(scope, "upgrade_idle_closes"),
        }
    }
}

/// A client's upgrade request (`Upgrade: <protocol>` with `Connection:
/// upgrade`), until the backend answers.
pub(super) struct Asked {
    pub(super) protocol: HeaderValue,
    client_side: OnUpgrade,
    idle_timeout: Duration,
    stats: Arc<UpgradeStats>,
}

/// The upgrade `req` asks for, if any; its connection is kept to tunnel.
pub(super) fn asked(
    req: &mut Request<RequestBody>,
    idle_timeout: Duration,
    stats: &Arc<UpgradeStats>,
) -> Option<Asked> {
    let protocol = upgrade_of(req.headers())?;
    // Only a server that can hand its connection over marks the request.
    let client_side = req.extensions_mut().remove::<OnUpgrade>()?;
    Some(Asked {
        protocol,
        client_side,
        idle_timeout,
        stats: Arc::clone(stats),
    })
}

fn upgrade_of(h: &HeaderMap) -> Option<HeaderValue> {
    let asked = h.get_all(CONNECTION).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
    });
    asked.then(|| h.get(UPGRADE).cloned()).flatten()
}

/// A backend's 101 to an upgrade: the client gets it (with `Upgrade` and
/// `Connection: upgrade`), and once both sides have switched, bytes are
/// copied both ways until both directions end, or until neither carries a
/// byte for the idle timeout: then both are flushed, shut down and
/// dropped. The backend connection is the tunnel's now, never the pool's;
/// the endpoint answered, a success.
pub(super) fn tunnel(
    resp: Response<super::wire::Body>,
    asked: Asked,
    lease: strait_balancer::Lease,
) -> Response<Body> {
    lease.finish(Outcome::Success);
    let protocol = resp.headers().get(UPGRADE).cloned();
    let (mut parts, body) = resp.into_parts();
    let backend_side = body.into_upgraded();
    let Asked {
        client_side,
        idle_timeout,
        stats,
        ..
    } = asked;
    tokio::spawn(async move {
        let client = client_side.upgraded().await;
        let (c, conn) = match (client, backend_side) {
            (Ok(c), Some(conn)) => (c, conn),
            (c, _) => {
                tracing::debug!(client = ?c.err(), "upgrade failed");
                return;
            }
        };
        let _open = stats.open.enter();
        let (mut c, mut b) = (c, conn.into_rewind());
        match splice(&mut c, &mut b, idle_timeout).await {
            Ok(Ended::Done) => {}
            Ok(Ended::Idle) => {
                stats.idle_closes.incr();
                tracing::debug!(
                    idle_ms = idle_timeout.as_millis(),
                    "upgraded connection idle for upgradeIdleTimeoutMs; closing both sides"
                );
                let _ = tokio::join!(close(&mut c), close(&mut b));
            }
            Err(e) => tracing::debug!(error = %e, "upgraded connection ended with an error"),
        }
    });
    strip_hop_by_hop(&mut parts.headers);
    if let Some(p) = protocol {
        parts.headers.insert(UPGRADE, p);
    }
    parts
        .headers
        .insert(CONNECTION, HeaderValue::from_static("upgrade"));
    append_via(&mut parts.headers);
    Response::from_parts(parts, Either::Right(Full::new(Bytes::new())))
}

/// How a tunnel ended.
#[derive(Debug, PartialEq)]
enum Ended {
    /// Both directions reached their end.
    Done,
    /// Neither direction carried a byte for the idle timeout.
    Idle,
}

/// Copies both ways between `a` and `b` until both directions end, or
/// until neither reads or writes a byte for `idle`.
async fn splice<A, B>(a: &mut A, b: &mut B, idle: Duration) -> io::Result<Ended>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    // Milliseconds from `start` to the last byte moved either way.
    let last = AtomicU64::new(0);
    let mut a = Watched {
        io: a,
        start,
        last: &last,
    };
    let mut b = Watched {
        io: b,
        start,
        last: &last,
    };
    let copy = tokio::io::copy_bidirectional(&mut a, &mut b);
    tokio::pin!(copy);
    loop {
        let deadline = start
            .checked_add(Duration::from_millis(last.load(Relaxed)))
            .and_then(|t| t.checked_add(idle));
        let Some(deadline) = deadline else {
            // Past what the clock can count: never idle.
            return copy.await.map(|_| Ended::Done);
        };
        if deadline <= Instant::now() {
            return Ok(Ended::Idle);
        }
        // The timer fires at most once per idle period; bytes only move
        // the mark, and the next turn re-arms from it.
        tokio::select! {
            r = &mut copy => return r.map(|_| Ended::Done),
            () = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// Flushes and shuts down `io`'s writing side, within [`CLOSE_WAIT`].
async fn close<T: AsyncWrite + Unpin>(io: &mut T) {
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        io.flush().await?;
        io.shutdown().await
    })
    .await;
}

/// One end of a tunnel that marks when a byte last moved through it.
struct Watched<'a, T> {
    io: &'a mut T,
    start: Instant,
    last: &'a AtomicU64,
}

impl<T> Watched<'_, T> {
    fn moved(&self, n: usize) {
        if n > 0 {
            let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.last.store(ms, Relaxed);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<'_, T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut *this.io).poll_read(cx, buf);
        this.moved(buf.filled().len() - before);
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<'_, T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut *this.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            this.moved(n);
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_tunnel_carrying_nothing_for_the_idle_timeout_ends_idle() {
        let (mut a, mut a_peer) = tokio::io::duplex(64);
        let (mut b, _b_peer) = tokio::io::duplex(64);
        let idle = Duration::from_millis(500);
        let talk = async {
            // A byte every 200 ms for 2 s keeps it open.
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                a_peer.write_all(b"x").await.unwrap();
            }
            Instant::now()
        };
        let started = Instant::now();
        let (ended, last_byte) = tokio::join!(splice(&mut a, &mut b, idle), talk);
        assert_eq!(ended.unwrap(), Ended::Idle);
        let now = Instant::now();
        assert!(now - started >= Duration::from_secs(2));
        assert!(now - last_byte >= idle && now - last_byte < idle * 2);
    }

    #[tokio::test]
    async fn a_tunnel_whose_ends_both_close_is_done() {
        let (mut a, a_peer) = tokio::io::duplex(64);
        let (mut b, b_peer) = tokio::io::duplex(64);
        drop((a_peer, b_peer));
        let ended = splice(&mut a, &mut b, Duration::from_secs(3600)).await;
        assert_eq!(ended.unwrap(), Ended::Done);
    }
}

//! Descriptor accounting: a flood of client connections never takes the
//! descriptors the router needs to reach its backends.
//!
//! Every open connection costs a descriptor, and the process has
//! `RLIMIT_NOFILE` of them. Left to chance, a host's thousand idle
//! connections fill the table and the next backend connect fails with
//! `EMFILE`: every client on the host, including ones already connected,
//! gets errors. So the limit is shared out once, at start:
//!
//! - a **reserve** (an eighth, at least 64) for what is not counted:
//!   listeners, the admin server, namer watches, log files;
//! - **client connections**, together on all servers: a server stops
//!   accepting while they are all taken (new clients wait in the kernel's
//!   accept queue, as with nginx's `worker_connections`) and resumes as
//!   one closes;
//! - **backend connections**: as many as client connections (an HTTP/1
//!   client connection has at most one request, so one backend
//!   connection, in flight), plus **idle** ones kept for reuse, whose
//!   number is capped: a connection coming back when the cap is reached
//!   is closed instead of kept.
//!
//! The budget is process-wide because the descriptor table is. Without
//! [`install`] (tests, fuzzing) nothing is counted.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How the descriptor limit is shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shares {
    /// The process's soft `RLIMIT_NOFILE`.
    pub limit: usize,
    /// Client connections open at once, all servers together.
    pub clients: usize,
    /// Idle backend connections kept, all clients together.
    pub idle: usize,
}

impl Shares {
    /// The shares of a descriptor limit (see the module's text).
    pub fn of(limit: usize) -> Shares {
        let reserve = (limit / 8).max(64);
        let usable = limit.saturating_sub(reserve);
        let idle = usable / 4;
        Shares {
            limit,
            clients: ((usable - idle) / 2).max(8),
            idle,
        }
    }
}

struct Budget {
    shares: Shares,
    clients: Arc<Semaphore>,
    idle: AtomicUsize,
}

static BUDGET: OnceLock<Budget> = OnceLock::new();

/// The soft descriptor limit of this process, from `/proc/self/limits`
/// (`None` where there is no such file, or no limit).
pub fn soft_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Shares out `limit` for the whole process, once; later calls keep the
/// first shares. Returns the shares in force.
pub fn install(limit: usize) -> Shares {
    let shares = Shares::of(limit);
    BUDGET
        .get_or_init(|| Budget {
            shares,
            clients: Arc::new(Semaphore::new(shares.clients)),
            idle: AtomicUsize::new(0),
        })
        .shares
}

/// A client connection's place in the budget, released on drop.
pub struct ClientSlot {
    _permit: Option<OwnedSemaphorePermit>,
}

/// A place for one more client connection: at once when one is free (or
/// nothing is counted), `None` when all are taken.
pub fn try_client() -> Option<ClientSlot> {
    match BUDGET.get() {
        None => Some(ClientSlot { _permit: None }),
        Some(b) => Arc::clone(&b.clients)
            .try_acquire_owned()
            .ok()
            .map(|p| ClientSlot { _permit: Some(p) }),
    }
}

/// A client connection holding its place in the budget for as long as it
/// is open: after an upgrade (a WebSocket) hyper hands the connection
/// itself to the tunnel, and the place goes with it.
pub struct Counted<I> {
    io: I,
    _slot: ClientSlot,
}

impl<I> Counted<I> {
    /// `io`, holding `slot`.
    pub fn new(io: I, slot: ClientSlot) -> Counted<I> {
        Counted { io, _slot: slot }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Counted<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Counted<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A place for one more client connection, waiting for one to close when
/// all are taken.
pub async fn client() -> ClientSlot {
    match BUDGET.get() {
        None => ClientSlot { _permit: None },
        Some(b) => match Arc::clone(&b.clients).acquire_owned().await {
            Ok(p) => ClientSlot { _permit: Some(p) },
            // The semaphore is never closed.
            Err(_) => ClientSlot { _permit: None },
        },
    }
}

/// An idle backend connection's place in the budget, released on drop.
pub struct IdleSlot(bool);

impl IdleSlot {
    /// A place for one more idle backend connection, or `None` when the
    /// cap is reached (the connection should be closed instead).
    pub fn take() -> Option<IdleSlot> {
        let Some(b) = BUDGET.get() else {
            return Some(IdleSlot(false));
        };
        b.idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < b.shares.idle).then_some(n + 1)
            })
            .ok()
            .map(|_| IdleSlot(true))
    }
}

impl Drop for IdleSlot {
    fn drop(&mut self) {
        if self.0
            && let Some(b) = BUDGET.get()
        {
            b.idle.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn shares_leave_a_reserve_and_cover_every_client_s_backend() {
        for limit in [256, 1024, 4096, 65_536, 1_048_576] {
            let s = Shares::of(limit);
            // Each client connection may hold one backend connection.
            let used = 2 * s.clients + s.idle;
            assert!(used + limit / 8 <= limit, "{limit}: {s:?}");
            assert!(used + 64 <= limit, "{limit}: {s:?}");
        }
        assert_eq!(
            Shares::of(1024),
            Shares {
                limit: 1024,
                clients: 336,
                idle: 224
            }
        );
        // A tiny limit still serves someone.
        assert_eq!(Shares::of(16).clients, 8);
    }

    #[test]
    fn the_soft_limit_is_read_from_proc() {
        let l = soft_limit().expect("/proc/self/limits has Max open files");
        assert!(l >= 16, "{l}");
    }
}

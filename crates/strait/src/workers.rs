//! `strait run --workers N`: one current-thread runtime per worker thread,
//! each accepting on its own `SO_REUSEPORT` listener of every server (the
//! kernel spreads new connections over them), as nginx's workers do. A
//! connection, and every upstream connection its requests open, stays on
//! its worker: no work stealing, no cross-thread wake-ups per request.
//! Routers, clients, pools and stats are shared (atomics and short locks).
//!
//! Without `--workers` Strait runs on tokio's work-stealing runtime, as
//! before.

use std::net::SocketAddr;
use std::sync::OnceLock;

use tokio::net::{TcpListener, TcpSocket};
use tokio::runtime::Handle;

/// The workers' runtimes, when `--workers` was given.
static WORKERS: OnceLock<Vec<Handle>> = OnceLock::new();

/// Starts `n` worker threads, each running a current-thread runtime until
/// the process exits.
pub fn start(n: usize) -> Result<(), String> {
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name(format!("strait-worker-{i}"))
            .build()
            .map_err(|e| format!("cannot start worker {i}: {e}"))?;
        handles.push(rt.handle().clone());
        std::thread::Builder::new()
            .name(format!("strait-worker-{i}"))
            .spawn(move || rt.block_on(std::future::pending::<()>()))
            .map_err(|e| format!("cannot start worker thread {i}: {e}"))?;
    }
    let _ = WORKERS.set(handles);
    Ok(())
}

/// The workers' runtimes (empty without `--workers`).
pub fn handles() -> &'static [Handle] {
    WORKERS.get().map_or(&[], Vec::as_slice)
}

/// A listener on `addr`; with workers, with `SO_REUSEPORT` set, so that
/// each worker can bind its own to the same address.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if !handles().is_empty() {
        socket.set_reuseport(true)?;
    }
    socket.bind(addr)?;
    socket.listen(1024)
}

/// One more `SO_REUSEPORT` listener on `addr` (a server's address as bound
/// by [`bind`]), as a std listener to hand to a worker.
pub fn bind_another(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let l = bind(addr)?;
    l.into_std()
}

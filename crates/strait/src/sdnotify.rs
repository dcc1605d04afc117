//! systemd service notifications (`sd_notify(3)`), for `Type=notify` units.
//!
//! A thin wrapper over the [`sd_notify`] crate (a pure-Rust client of the
//! notification socket; no libsystemd). Every function here:
//!
//! * does nothing when `NOTIFY_SOCKET` is unset, that is whenever Strait is
//!   not started by systemd with `Type=notify` (a shell, a test, a
//!   container);
//! * never fails and never panics: a notification that cannot be sent is
//!   logged at `debug` level and dropped, since the daemon serves the same
//!   with or without its service manager knowing.
//!
//! The daemon's life cycle, as `systemd/strait.service` expects it:
//!
//! 1. [`ready`] once every listener is bound and the config is active;
//! 2. on each reload: [`reloading`] when the SIGHUP is taken, then
//!    [`ready`] again when the reload is over, applied or rejected (a
//!    rejected reload leaves the old config serving, which is still ready);
//! 3. [`stopping`] when a SIGTERM/SIGINT starts the drain.
//!
//! [`status`] sets the one-line text that `systemctl status strait` shows.

use sd_notify::NotifyState;

/// The environment variable through which systemd passes the socket.
const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Whether a service manager asked for notifications.
fn enabled() -> bool {
    std::env::var_os(NOTIFY_SOCKET).is_some()
}

/// Sends `states` as one datagram, logging (not returning) a failure.
fn send(what: &str, states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::debug!(%error, notification = what, "could not notify the service manager");
    }
}

/// Tells systemd that Strait is up: listeners are bound and the config is
/// active (`READY=1`). Send it at startup, and again at the end of each
/// reload announced with [`reloading`].
pub fn ready() {
    if enabled() {
        send("READY=1", &[NotifyState::Ready]);
    }
}

/// Tells systemd that a config reload has started (`RELOADING=1`).
///
/// `MONOTONIC_USEC=<now>` goes in the same datagram: systemd 253 and later
/// require it with `RELOADING=1` (for `Type=notify-reload`, where a
/// reload without it fails the unit); older versions and `Type=notify`
/// ignore it. Follow it with [`ready`] once the reload is over.
pub fn reloading() {
    if !enabled() {
        return;
    }
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send("RELOADING=1", &[NotifyState::Reloading, now]),
        Err(error) => {
            tracing::debug!(%error, "could not read the monotonic clock for MONOTONIC_USEC");
            send("RELOADING=1", &[NotifyState::Reloading]);
        }
    }
}

/// Tells systemd that Strait is shutting down (`STOPPING=1`): it has
/// stopped accepting and is draining in-flight requests.
pub fn stopping() {
    if enabled() {
        send("STOPPING=1", &[NotifyState::Stopping]);
    }
}

/// Sets the free-form status line shown by `systemctl status`
/// (`STATUS=<msg>`). A newline in `msg` would end the field early, so
/// newlines are replaced by spaces.
pub fn status(msg: &str) {
    if !enabled() {
        return;
    }
    let line = msg.replace(['\n', '\r'], " ");
    send("STATUS", &[NotifyState::Status(&line)]);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::os::unix::net::UnixDatagram;
    use std::process::Command;
    use std::time::Duration;

    /// Set in the child process that plays the daemon.
    const CHILD: &str = "STRAIT_SDNOTIFY_TEST_CHILD";

    /// `NOTIFY_SOCKET` cannot be set in this process (`set_var` is unsafe,
    /// and unsafe code is forbidden), so this one test plays both parts:
    /// run by the harness, it binds a notification socket and re-runs
    /// itself (this test only) as a child with `NOTIFY_SOCKET` pointing
    /// there; in the child, it sends every notification.
    #[test]
    fn notifications_reach_the_notify_socket() {
        if std::env::var_os(CHILD).is_some() {
            ready();
            reloading();
            ready();
            status("serving 1 router\non 127.0.0.1:4140");
            stopping();
            return;
        }

        // Without NOTIFY_SOCKET every function is a silent no-op.
        if !enabled() {
            ready();
            reloading();
            stopping();
            status("nobody listens");
        }

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();

        let before = match NotifyState::monotonic_usec_now().unwrap() {
            NotifyState::MonotonicUsec(usec) => usec,
            other => panic!("unexpected {other:?}"),
        };
        // libtest names tests without the crate: `sdnotify::tests::...`.
        let module = module_path!().split_once("::").unwrap().1;
        let name = format!("{module}::notifications_reach_the_notify_socket");
        let out = Command::new(std::env::current_exe().unwrap())
            .args([name.as_str(), "--exact", "--test-threads=1", "--nocapture"])
            .env(CHILD, "1")
            .env(NOTIFY_SOCKET, &path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "child failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "the child ran no test: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let after = match NotifyState::monotonic_usec_now().unwrap() {
            NotifyState::MonotonicUsec(usec) => usec,
            other => panic!("unexpected {other:?}"),
        };

        let mut buf = [0u8; 4096];
        let mut recv = || {
            let n = socket.recv(&mut buf).unwrap();
            String::from_utf8(buf[..n].to_vec()).unwrap()
        };
        assert_eq!(recv(), "READY=1\n");
        let reloading = recv();
        let usec: i128 = reloading
            .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
            .and_then(|rest| rest.strip_suffix('\n'))
            .unwrap_or_else(|| panic!("unexpected reload datagram {reloading:?}"))
            .parse()
            .unwrap();
        assert!(
            (before..=after).contains(&usec),
            "MONOTONIC_USEC={usec} not within the child's run [{before}, {after}]"
        );
        assert_eq!(recv(), "READY=1\n");
        assert_eq!(recv(), "STATUS=serving 1 router on 127.0.0.1:4140\n");
        assert_eq!(recv(), "STOPPING=1\n");
        socket.set_nonblocking(true).unwrap();
        assert!(
            socket.recv(&mut buf).is_err(),
            "an unexpected extra datagram"
        );
    }
}

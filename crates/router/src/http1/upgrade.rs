//! Upgrades: a backend's 101 joins the two connections.

use bytes::Bytes;
use http::Response;
use http::header::{CONNECTION, HeaderMap, HeaderValue, UPGRADE};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use strait_balancer::Outcome;

use super::{append_via, strip_hop_by_hop};
use crate::pool::Conn;
use crate::router::Body;

/// The protocol of an upgrade request: `Upgrade: <protocol>` with
/// `Connection: upgrade`.
pub(super) fn upgrade_of(h: &HeaderMap) -> Option<HeaderValue> {
    let asked = h.get_all(CONNECTION).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
    });
    asked.then(|| h.get(UPGRADE).cloned()).flatten()
}

/// A backend's 101 to an upgrade: the client gets it (with `Upgrade` and
/// `Connection: upgrade`), and once both sides have switched, bytes are
/// copied both ways until either ends. The backend connection is the
/// tunnel's now, never the pool's; the endpoint answered, a success.
pub(super) fn tunnel(
    mut resp: Response<Incoming>,
    client_side: hyper::upgrade::OnUpgrade,
    conn: Conn,
    lease: strait_balancer::Lease,
) -> Response<Body> {
    lease.finish(Outcome::Success);
    let backend_side = hyper::upgrade::on(&mut resp);
    let protocol = resp.headers().get(UPGRADE).cloned();
    tokio::spawn(async move {
        let _conn = conn;
        let (client, backend) = tokio::join!(client_side, backend_side);
        match (client, backend) {
            (Ok(c), Ok(b)) => {
                let (mut c, mut b) = (TokioIo::new(c), TokioIo::new(b));
                if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut b).await {
                    tracing::debug!(error = %e, "upgraded connection ended with an error");
                }
            }
            (c, b) => tracing::debug!(client = ?c.err(), backend = ?b.err(), "upgrade failed"),
        }
    });
    let (mut parts, _) = resp.into_parts();
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

//! The daemon's side of server TLS: the expiry gauges, `/admin/tls.json`
//! and the admin server's handshakes. The certificates themselves are
//! read by `strait_router::tls`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use strait_router::stats::{Registry, Scope};
use strait_router::tls::{HandshakeFailure, HandshakeLog, ServerTls};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// How long the admin waits for a client's handshake.
const ADMIN_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Registers `name` in `scope`: the seconds until `tls`'s certificate
/// expires, computed when the metrics are read (negative once expired).
pub fn expiry_gauge(registry: &Registry, scope: &Scope, name: &str, tls: &Arc<ServerTls>) {
    let tls = Arc::clone(tls);
    registry.read_fn(
        scope,
        name,
        false,
        Arc::new(move || tls.certificate().seconds_left()),
    );
}

/// `/admin/tls.json`: every configured server certificate, by where it
/// serves (`server`), then every certificate a client `tls` block reads,
/// by who uses it (`usedBy`, `role`, `configKey`, `gauge`).
pub fn tls_json(
    certificates: &[(String, Arc<ServerTls>)],
    clients: &[crate::tls_client::ClientCertificate],
) -> Value {
    let list = certificates
        .iter()
        .map(|(owner, tls)| {
            let mut v = tls.certificate().to_json();
            if let Value::Object(m) = &mut v {
                m.insert("server".to_owned(), Value::String(owner.clone()));
            }
            v
        })
        .chain(clients.iter().map(|c| c.to_json()))
        .collect();
    Value::Array(list)
}

/// The admin server's handshake with a client, bounded in time; a failure
/// is counted (`admin/tls/handshake_failures/<class>`), logged at most
/// once a minute per peer, and gives `None`.
pub async fn admin_handshake(
    tls: &ServerTls,
    stream: TcpStream,
    peer: SocketAddr,
    registry: &Registry,
    log: &HandshakeLog,
) -> Option<TlsStream<TcpStream>> {
    let handshake = tls.acceptor().accept(stream);
    let (class, error) = match tokio::time::timeout(ADMIN_HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(s)) => return Some(s),
        Ok(Err(e)) => (HandshakeFailure::of(&e), e.to_string()),
        Err(_) => (HandshakeFailure::Other, "timed out".to_owned()),
    };
    let name = format!("tls/handshake_failures/{}", class.label());
    registry.counter(&Scope::Root("admin".into()), &name).incr();
    let reason = class.label();
    if log.should_log(peer.ip()) {
        tracing::warn!(
            %peer,
            reason,
            %error,
            "admin: TLS handshake failed (logged at most once a minute per peer)"
        );
    } else {
        tracing::debug!(%peer, reason, %error, "admin: TLS handshake failed");
    }
    None
}

//! HTTPS to the Consul agent (the namer's and the interpreter's `tls`).
//!
//! The rustls config is built by the caller (Strait lowers the `tls`
//! block as it does a router client's); here is the connector that wraps
//! hyper-util's TCP connector with the handshake, so the pooled client
//! keeps its connections as before.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tower_service::Service;

use crate::client::CONNECT_TIMEOUT;

/// TLS to the agent: a shared rustls config and the name its certificate
/// must match.
#[derive(Clone)]
pub struct ConsulTls {
    /// The rustls config (trust, client certificate, ALPN).
    pub config: Arc<rustls::ClientConfig>,
    /// The verified name, sent as SNI (`commonName`, else `host`).
    pub name: ServerName<'static>,
    /// Identifies the files and settings the config was built from:
    /// equal fingerprints, same config.
    pub fingerprint: u64,
}

impl std::fmt::Debug for ConsulTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsulTls")
            .field("name", &self.name)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl PartialEq for ConsulTls {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint && self.name == other.name
    }
}

/// hyper-util's TCP connector, then the TLS handshake when configured.
#[derive(Clone)]
pub(crate) struct Connector {
    pub(crate) http: HttpConnector,
    pub(crate) tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Connector {
    /// Over `http`, with `tls` when given.
    pub(crate) fn new(http: HttpConnector, tls: Option<&ConsulTls>) -> Connector {
        Connector {
            http,
            tls: tls.map(|t| (TlsConnector::from(Arc::clone(&t.config)), t.name.clone())),
        }
    }
}

/// What a boxed connect error is.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Service<Uri> for Connector {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.http.call(uri);
        let tls = self.tls.clone();
        Box::pin(async move {
            let tcp = connecting.await?;
            let Some((connector, name)) = tls else {
                return Ok(Stream::Plain(tcp));
            };
            match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp.into_inner()))
                .await
            {
                Ok(Ok(s)) => Ok(Stream::Tls(Box::new(TokioIo::new(s)))),
                Ok(Err(e)) => Err(format!("TLS handshake with Consul: {e}").into()),
                Err(_) => Err("TLS handshake with Consul: no answer in time".into()),
            }
        })
    }
}

/// A connection to the agent, plain or TLS.
pub(crate) enum Stream {
    Plain(TokioIo<TcpStream>),
    Tls(Box<TokioIo<TlsStream<TcpStream>>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match self {
            Stream::Plain(s) => s.connected(),
            Stream::Tls(_) => Connected::new(),
        }
    }
}

impl hyper::rt::Read for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl hyper::rt::Write for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}

//! Listening: bind a TCP address (port 0 picks a free one and tells which), optionally with TLS
//! (rustls, PEM certificate chain and key files), and serve a router until a shutdown future
//! completes, finishing requests in flight (graceful shutdown). [`shutdown_signal`] is Ctrl-C or
//! SIGTERM.
//!
//! TLS handshakes run in their own tasks (with a timeout) and only finished connections reach
//! axum, so a slow or silent client cannot hold up other clients' handshakes.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::KitError;

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for axum to pick them up.
const TLS_ACCEPT_BACKLOG: usize = 64;

/// PEM files for the TLS listener: the server's certificate chain (leaf first) and its private
/// key (PKCS#8, SEC1 or PKCS#1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub certificate_chain: PathBuf,
    pub private_key: PathBuf,
}

/// A bound listening socket, plain or TLS, ready to serve.
pub struct BoundListener {
    local_addr: SocketAddr,
    kind: ListenerKind,
}

enum ListenerKind {
    Plain(TcpListener),
    Tls(TlsListener),
}

impl std::fmt::Debug for BoundListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            ListenerKind::Plain(_) => "plain",
            ListenerKind::Tls(_) => "tls",
        };
        write!(f, "BoundListener({kind} {})", self.local_addr)
    }
}

/// Binds `listen` (port 0: any free port; see [`BoundListener::local_addr`]), with TLS when
/// `tls` is given (its files are read and checked now).
pub async fn bind(listen: SocketAddr, tls: Option<&TlsFiles>) -> Result<BoundListener, KitError> {
    let acceptor = tls.map(tls_acceptor).transpose()?;
    let tcp = TcpListener::bind(listen)
        .await
        .map_err(|source| KitError::Bind {
            addr: listen,
            source,
        })?;
    let local_addr = tcp.local_addr().map_err(|source| KitError::Bind {
        addr: listen,
        source,
    })?;
    let kind = match acceptor {
        None => ListenerKind::Plain(tcp),
        Some(acceptor) => ListenerKind::Tls(TlsListener::spawn(tcp, acceptor, local_addr)),
    };
    Ok(BoundListener { local_addr, kind })
}

impl BoundListener {
    /// The address actually bound (the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `"http"` or `"https"`.
    pub fn scheme(&self) -> &'static str {
        match self.kind {
            ListenerKind::Plain(_) => "http",
            ListenerKind::Tls(_) => "https",
        }
    }

    /// Serves `router` until `shutdown` completes, then stops accepting and waits for the
    /// requests in flight.
    pub async fn serve(
        self,
        router: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        match self.kind {
            ListenerKind::Plain(tcp) => {
                axum::serve(tcp, router)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
            ListenerKind::Tls(tls) => {
                axum::serve(tls, router)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        }
    }
}

/// Completes on Ctrl-C or (on Unix) SIGTERM. If a handler cannot be installed, that signal is
/// simply not waited for (the other still is).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing requests in flight");
}

fn tls_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, KitError> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&files.certificate_chain)
            .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
            .map_err(|e| KitError::Tls {
                file: files.certificate_chain.clone(),
                reason: e.to_string(),
            })?;
    if chain.is_empty() {
        return Err(KitError::Tls {
            file: files.certificate_chain.clone(),
            reason: "no CERTIFICATE block".to_string(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&files.private_key).map_err(|e| KitError::Tls {
        file: files.private_key.clone(),
        reason: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| KitError::Tls {
            file: files.private_key.clone(),
            reason: e.to_string(),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// An `axum::serve::Listener` yielding TLS connections whose handshake has finished.
struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    accept_task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    fn spawn(tcp: TcpListener, acceptor: TlsAcceptor, local_addr: SocketAddr) -> TlsListener {
        let (sender, ready) = mpsc::channel(TLS_ACCEPT_BACKLOG);
        let accept_task = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Typically EMFILE: back off instead of spinning (as axum does).
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let sender = sender.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls)) => {
                            // The server is shutting down when nobody receives: drop it.
                            let _ = sender.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        TlsListener {
            ready,
            local_addr,
            accept_task,
        }
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept task only ends when aborted, i.e. after we are dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

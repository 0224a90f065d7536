//! The HTTPS accept loop: tokio-rustls handshakes and hyper-util's HTTP/1 + HTTP/2 server,
//! with graceful shutdown on the cancellation token.
//!
//! Each connection, handshake included, runs in its own task: a client that stalls or fails
//! its handshake costs only its own connection.

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// A client gets this long to finish its handshake; an idle socket must not be held forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// And this long to send a request's headers (HTTP/1; hyper's default once it has a timer).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// After shutdown starts, requests in flight get this long before their connections are
/// dropped: well inside Kubernetes' default 30 s grace period.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    config: Arc<rustls::ServerConfig>,
    token: CancellationToken,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(config);
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            () = token.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Like axum::serve: a connection that died in the backlog is nothing;
                    // anything else (out of file descriptors) gets a pause, not a busy loop.
                    if !is_connection_error(&e) {
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        let watcher = graceful.watcher();
        let token = token.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
            let tls = tokio::select! {
                () = token.cancelled() => return,
                done = handshake => match done {
                    Ok(Ok(tls)) => tls,
                    // Scanners, plain-HTTP clients and refused client certificates end
                    // here; debug level keeps them out of the way.
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(peer = %peer, "TLS handshake timed out");
                        return;
                    }
                },
            };
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(peer = %peer, error = %e, "HTTPS connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("HTTPS connections still open after {SHUTDOWN_GRACE:?}; closing them");
        }
    }
    Ok(())
}

fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

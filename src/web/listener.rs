//! The accept loop, plain or TLS: hyper-util's server with timeouts, a connection cap that
//! leaves file descriptors to the probes, and graceful shutdown on the cancellation token.
//!
//! A server must survive its clients. Every connection runs in its own task; a TLS handshake
//! gets [`HANDSHAKE_TIMEOUT`], and request headers (the first, and each next one on a kept
//! alive connection) get [`HEADER_READ_TIMEOUT`], so an idle or slow socket is closed. At
//! most [`max_connections`] are open at once: when a new one arrives at the cap, the oldest
//! connection with no request in flight is closed to make room (idle sockets cannot lock a
//! scraper out), and when every connection is busy the new one is closed.

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// A client gets this long to finish its TLS handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// And this long to send a request's headers, from the moment the connection is ready for
/// one: an idle kept-alive connection is closed after it too. Prometheus sends a scrape's
/// headers at once and reconnects when a kept-alive connection was closed.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// After shutdown starts, requests in flight get this long before their connections are
/// dropped: well inside Kubernetes' default 30 s grace period.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A quarter of the process's file descriptor limit, between 16 and 1024: the other three
/// quarters stay for the probes' sockets, the config and the logs.
pub(crate) fn max_connections() -> usize {
    let limit = fd_limit().unwrap_or(1024);
    usize::try_from(limit / 4).unwrap_or(1024).clamp(16, 1024)
}

fn fd_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// One open connection, as the cap sees it.
struct Conn {
    id: u64,
    /// Requests being answered now; 0 means idle (evictable).
    in_flight: Arc<AtomicUsize>,
    close: CancellationToken,
}

/// The open connections, oldest first.
#[derive(Default)]
struct Slots {
    open: Mutex<VecDeque<Conn>>,
}

impl Slots {
    /// Registers a new connection, evicting the oldest idle one at the cap; `None` when
    /// every slot is busy (the new connection is then closed).
    fn admit(&self, id: u64, max: usize) -> Option<(Arc<AtomicUsize>, CancellationToken)> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if open.len() >= max {
            let idle = open
                .iter()
                .position(|c| c.in_flight.load(Ordering::Acquire) == 0)?;
            if let Some(c) = open.remove(idle) {
                c.close.cancel();
            }
        }
        let in_flight = Arc::new(AtomicUsize::new(0));
        let close = CancellationToken::new();
        open.push_back(Conn {
            id,
            in_flight: in_flight.clone(),
            close: close.clone(),
        });
        Some((in_flight, close))
    }

    fn leave(&self, id: u64) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        open.retain(|c| c.id != id);
    }
}

/// Counts a request in flight for as long as it lives (the response body included).
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn new(c: Arc<AtomicUsize>) -> Self {
        c.fetch_add(1, Ordering::AcqRel);
        InFlight(c)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `router` on `listener` (over TLS with `tls`) until `token` is cancelled, then lets
/// the requests in flight finish.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    token: CancellationToken,
) -> std::io::Result<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Slots::default());
    let mut next_id: u64 = 0;
    loop {
        let (tcp, peer) = tokio::select! {
            () = token.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // A connection that died in the backlog is nothing; anything else (out of
                    // file descriptors) gets a pause, not a busy loop.
                    if !is_connection_error(&e) {
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
        };
        next_id = next_id.wrapping_add(1);
        let id = next_id;
        // Read at each accept (one cheap syscall): a limit lowered at run time counts.
        let Some((in_flight, close)) = slots.admit(id, max_connections()) else {
            tracing::debug!(peer = %peer, "every connection slot is busy: closing a new one");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        // The router, with each request counted while it is answered.
        let counted = {
            let in_flight = in_flight.clone();
            router.clone().layer(axum::middleware::from_fn(
                move |req: axum::extract::Request, next: axum::middleware::Next| {
                    let guard = InFlight::new(in_flight.clone());
                    async move {
                        let resp = next.run(req).await;
                        let (parts, body) = resp.into_parts();
                        // Held until the body is sent: a streamed /metrics is busy, not idle.
                        let body = axum::body::Body::new(http_body_util::BodyExt::map_frame(
                            body,
                            move |f| {
                                let _ = &guard;
                                f
                            },
                        ));
                        axum::response::Response::from_parts(parts, body)
                    }
                },
            ))
        };
        let service = TowerToHyperService::new(counted);
        let watcher = graceful.watcher();
        let (token, slots, acceptor) = (token.clone(), slots.clone(), acceptor.clone());
        tokio::spawn(async move {
            let served = async {
                let mut builder = Builder::new(TokioExecutor::new());
                builder
                    .http1()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT);
                builder
                    .http2()
                    .timer(TokioTimer::new())
                    .keep_alive_interval(Some(Duration::from_secs(30)))
                    .keep_alive_timeout(HEADER_READ_TIMEOUT);
                match acceptor {
                    None => {
                        // Plain HTTP/1 only: guessing the version would wait without a timeout
                        // for the bytes of an idle client.
                        let builder = builder.http1_only();
                        let conn =
                            builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
                        watcher.watch(conn.into_owned()).await
                    }
                    Some(acceptor) => {
                        let tls = match tokio::time::timeout(
                            HANDSHAKE_TIMEOUT,
                            acceptor.accept(tcp),
                        )
                        .await
                        {
                            Ok(Ok(tls)) => tls,
                            // Scanners, plain-HTTP clients and refused client certificates
                            // end here; debug level keeps them out of the way.
                            Ok(Err(e)) => {
                                tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                                return Ok(());
                            }
                            Err(_) => {
                                tracing::debug!(peer = %peer, "TLS handshake timed out");
                                return Ok(());
                            }
                        };
                        // The protocol ALPN chose, so no version sniffing is needed.
                        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                        let builder = if h2 {
                            builder.http2_only()
                        } else {
                            builder.http1_only()
                        };
                        let conn =
                            builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                        watcher.watch(conn.into_owned()).await
                    }
                }
            };
            tokio::select! {
                () = token.cancelled() => {}
                () = close.cancelled() => {
                    tracing::debug!(peer = %peer, "closing an idle connection: at the connection cap");
                }
                r = served => if let Err(e) = r {
                    tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                },
            }
            slots.leave(id);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; closing them");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_oldest_idle_connection_makes_room() {
        let slots = Slots::default();
        let (busy, _) = slots.admit(1, 2).expect("room");
        let (_idle, idle_close) = slots.admit(2, 2).expect("room");
        let _req = InFlight::new(busy.clone());
        // Connection 1 is busy: 2, idle, is closed for 3.
        let (_, _) = slots.admit(3, 2).expect("an idle one evicted");
        assert!(idle_close.is_cancelled());
        // 1 busy, 3 busy: a fourth is refused.
        let _req3 = {
            let open = slots.open.lock().unwrap();
            InFlight::new(open[1].in_flight.clone())
        };
        assert!(slots.admit(4, 2).is_none());
        slots.leave(1);
        assert!(slots.admit(5, 2).is_some());
    }

    #[test]
    fn the_cap_leaves_most_descriptors_to_the_probes() {
        let max = max_connections();
        assert!((16..=1024).contains(&max), "{max}");
    }
}

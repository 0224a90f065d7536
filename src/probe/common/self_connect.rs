//! TCP self-connects, refused: a connect to a loopback port in the ephemeral range with nothing
//! listening can be given that same port as its source, and TCP's simultaneous open then
//! "connects" the socket to itself. The probe would pass with nothing there (and hold the
//! port, so the real server cannot bind it). Go's dialer, which blackbox_exporter uses, treats
//! such a connection as refused; so does every TCP connect pathwatch makes: the probes' own
//! ([`crate::probe::connect_first`]) and reqwest's, through [`RefuseSelfConnect`].

use hyper_util::client::legacy::connect::{Connection, HttpInfo};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The error a self-connect becomes: `ConnectionRefused`, so every kind maps it to the
/// `refused` reason, as if the kernel had answered with a reset.
pub(crate) fn error(addr: SocketAddr) -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionRefused,
        format!("connected to itself ({addr} is both ends: nothing listens there)"),
    )
}

/// True when a socket connected to `peer` has `peer` as its own address too. The peer is
/// the address connected to, so one `getsockname` is the whole cost of the check.
pub(crate) fn is_self(local: io::Result<SocketAddr>, peer: SocketAddr) -> bool {
    local.is_ok_and(|l| l == peer)
}

/// A tower layer for reqwest's connector (`ClientBuilder::connector_layer`): a connection
/// whose local address equals its peer is dropped and fails as refused. It sees plain-HTTP
/// connections as they open; an https one to itself fails earlier, in the TLS handshake
/// (the client reads back its own ClientHello).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RefuseSelfConnect;

impl<S> tower_layer::Layer<S> for RefuseSelfConnect {
    type Service = RefuseSelfConnectService<S>;

    fn layer(&self, inner: S) -> RefuseSelfConnectService<S> {
        RefuseSelfConnectService(inner)
    }
}

/// The service [`RefuseSelfConnect`] wraps around a connector.
#[derive(Clone, Debug)]
pub struct RefuseSelfConnectService<S>(S);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, R> tower_service::Service<R> for RefuseSelfConnectService<S>
where
    S: tower_service::Service<R>,
    S::Response: Connection + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let connecting = self.0.call(req);
        Box::pin(async move {
            let conn = connecting.await.map_err(Into::into)?;
            let mut extras = http::Extensions::new();
            conn.connected().get_extras(&mut extras);
            if let Some(info) = extras.get::<HttpInfo>()
                && info.local_addr() == info.remote_addr()
            {
                return Err(error(info.remote_addr()).into());
            }
            Ok(conn)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_equal_ends_are_a_self_connect() {
        let a: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        assert!(is_self(Ok(a), a));
        assert!(!is_self(Ok(a), b));
        assert!(!is_self(Err(io::ErrorKind::NotConnected.into()), a));
        let e = error(a);
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(crate::probe::io_reason(&e), crate::probe::Reason::Refused);
    }
}

//! The HTTP client settings `http` and `golden_path` share: the credential
//! (`bearer_token_file`, `google_id_token`, `oauth2`; auth.rs), `proxy_url` (proxy.rs) and
//! `ip_protocol` (ip.rs), built once from a spec's fields, and the connection they shape:
//! resolve, order by address family, connect, and tunnel through the proxy.

use super::HttpError;
use super::auth::{self, Auth, OAuth2Spec};
use super::ip::{self, IpProtocol};
use super::proxy::Proxy;
use crate::probe::common::google::id_token::IdTokenSpec;
use crate::probe::{Phase, ProbeError, Trace, connect_tcp, resolve};
use http::HeaderValue;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpStream;

/// A spec's client fields, as [`Client::build`] reads them.
#[derive(Clone, Copy)]
pub(crate) struct Fields<'a> {
    pub bearer_token_file: Option<&'a Path>,
    pub google_id_token: Option<&'a IdTokenSpec>,
    pub oauth2: Option<&'a OAuth2Spec>,
    pub proxy_url: Option<&'a str>,
    pub ip_protocol: Option<IpProtocol>,
    pub ip_protocol_fallback: bool,
    /// Whether the request already carries an `Authorization` of its own (a configured
    /// header): then no credential setting may be given beside it.
    pub authorization_header: bool,
}

/// The built settings; clones share the credential's caches.
#[derive(Clone, Debug)]
pub(crate) struct Client {
    pub(super) auth: Auth,
    pub(super) proxy: Option<Arc<Proxy>>,
    ip_protocol: Option<IpProtocol>,
    ip_protocol_fallback: bool,
}

impl Client {
    /// Checks the fields and prepares the credential source and proxy; `tls` is for the
    /// token requests (the probe's `ca_file` and verification, no client certificate).
    pub(crate) fn build(f: Fields<'_>, tls: &rustls::ClientConfig) -> Result<Client, HttpError> {
        let auth = auth::build(auth::Settings {
            bearer_token_file: f.bearer_token_file,
            google_id_token: f.google_id_token,
            oauth2: f.oauth2,
            authorization_header: f.authorization_header,
            tls,
        })?;
        let proxy = match f.proxy_url {
            Some(p) => Some(Arc::new(Proxy::parse(p)?)),
            None => None,
        };
        Ok(Client {
            auth,
            proxy,
            ip_protocol: f.ip_protocol,
            ip_protocol_fallback: f.ip_protocol_fallback,
        })
    }

    /// The same settings without the credential (an on-demand target elsewhere).
    pub(super) fn without_auth(&self) -> Client {
        Client {
            auth: Auth::None,
            ..self.clone()
        }
    }

    /// The `Authorization` value for this run (fetched, or from its cache), if any; marked
    /// sensitive, so that no debug output shows it.
    pub(crate) async fn authorization(&self) -> Result<Option<HeaderValue>, ProbeError> {
        self.auth.header().await
    }

    /// Forgets a fetched token (after a 401 from the credential's origin).
    pub(crate) fn invalidate(&self) {
        self.auth.invalidate();
    }

    /// A connection towards `host:port` (bare host, no IPv6 brackets): to the proxy when
    /// there is one (with a `CONNECT` tunnel to `host:port` when `tunnel`, timed as
    /// `connect`), else to the host, its addresses in `ip_protocol`'s order.
    pub(crate) async fn connect(
        &self,
        host: &str,
        port: u16,
        tunnel: bool,
        trace: &Trace,
    ) -> Result<TcpStream, ProbeError> {
        let proxy = self.proxy.as_deref();
        let (to_host, to_port) = match proxy {
            Some(p) => (p.host.as_str(), p.port),
            None => (host, port),
        };
        let addrs = resolve(to_host, to_port, trace).await?;
        let addrs = ip::order(addrs, self.ip_protocol, self.ip_protocol_fallback, to_host)?;
        let mut tcp = connect_tcp(&addrs, trace).await?;
        if let Some(p) = proxy.filter(|_| tunnel) {
            // The tunnel is part of reaching the server: timed as `connect`.
            let authority = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            trace
                .time(Phase::Connect, p.connect(&mut tcp, &authority))
                .await?;
        }
        Ok(tcp)
    }

    /// A reqwest client builder with the same proxy (its user info sent as
    /// `Proxy-Authorization`) and address-family order, for steps that speak HTTP through
    /// reqwest (golden_path's login). The credential is not added: each request says
    /// whether it carries [`Client::authorization`].
    pub(crate) fn reqwest(
        &self,
        mut builder: reqwest::ClientBuilder,
        proxy_url: Option<&str>,
    ) -> Result<reqwest::ClientBuilder, HttpError> {
        if let Some(url) = proxy_url {
            // Already checked by Proxy::parse: an http:// URL with a host.
            let proxy = reqwest::Proxy::all(url).map_err(|_| super::ProxyError::Url)?;
            builder = builder.proxy(proxy);
        } else {
            // Only the configured proxy: never one from the environment.
            builder = builder.no_proxy();
        }
        if let Some(prefer) = self.ip_protocol {
            builder = builder.dns_resolver(Arc::new(ip::Ordered {
                prefer,
                fallback: self.ip_protocol_fallback,
            }));
        }
        Ok(builder)
    }
}

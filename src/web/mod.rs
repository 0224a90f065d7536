//! Securing the HTTP surface with a web config file (`--web-config`): TLS, client
//! certificates and basic auth, in the shape of Prometheus' exporter-toolkit web config.
//!
//! With or without one, [`serve`] runs the same accept loop ([`listener`]): timeouts and a
//! connection cap for plain HTTP as for HTTPS.

pub(crate) mod auth;
pub(crate) mod config;
pub(crate) mod listener;
pub(crate) mod tls;

pub(crate) use config::WebConfigError;

use axum::Router;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How to serve: plain HTTP, or what a web config asks for. Everything it names has been
/// read and checked.
#[derive(Clone, Debug, Default)]
pub(crate) struct Web {
    tls: Option<Arc<rustls::ServerConfig>>,
    auth: Option<Arc<auth::BasicAuth>>,
}

impl Web {
    /// Plain HTTP without a path; otherwise the web config at `path`, with every file it
    /// names read now, so that a bad one stops startup instead of the first scrape.
    pub(crate) fn load(path: Option<&Path>) -> Result<Web, WebConfigError> {
        let Some(path) = path else {
            return Ok(Web::default());
        };
        Web::from_settings(&config::load(path)?)
    }

    pub(crate) fn from_settings(s: &config::WebSettings) -> Result<Web, WebConfigError> {
        let tls = s
            .tls
            .as_ref()
            .map(|t| tls::server_config(&s.file, t))
            .transpose()?;
        let auth = auth::BasicAuth::new(&s.file, &s.users, &s.unauthenticated_paths)?;
        tracing::info!(
            web_config = %s.file,
            tls = tls.is_some(),
            client_auth = ?s.tls.as_ref().map(|t| t.client_auth),
            basic_auth_users = s.users.len(),
            unauthenticated_paths = ?s.unauthenticated_paths,
            "web config loaded"
        );
        if auth.is_none() && s.tls.is_none() {
            tracing::warn!(web_config = %s.file, "the web config enables neither TLS nor basic auth");
        }
        Ok(Web { tls, auth })
    }
}

/// Serves `router` on `listener` as `web` says until `token` is cancelled, then lets the
/// requests in flight finish.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    web: Web,
    token: CancellationToken,
) -> std::io::Result<()> {
    let router = match web.auth {
        Some(a) => router.layer(axum::middleware::from_fn_with_state(a, auth::require)),
        None => router,
    };
    listener::serve(listener, router, web.tls, token).await
}

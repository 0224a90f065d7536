//! The credential an `http` probe sends as `Authorization: Bearer`, to the configured origin
//! only: a token read from `bearer_token_file` (read again when the file changes), a
//! Google-signed ID token from the metadata server (`google_id_token`), or an OAuth2
//! client-credentials token (`oauth2`, RFC 6749 4.4). Tokens are cached until shortly before
//! they expire, registered with the redactor (an echo is masked), and never logged.

use crate::core::types::{Secret, SecretFile, pick_secret};
use crate::probe::common::google::id_token::{IdTokenSource, IdTokenSpec};
use crate::probe::common::google::token::token_answer;
use crate::probe::{ProbeError, Reason};
use base64::Engine as _;
use http::HeaderValue;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// A token endpoint's answer is a few hundred bytes; more is not a token endpoint.
/// Refresh this long before an OAuth2 token's `expires_in` runs out.
const EARLY: Duration = Duration::from_secs(60);
/// An OAuth2 answer without `expires_in` is used this long; a longer one for a day at most.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// `oauth2:` of an `http` probe: the client-credentials grant.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OAuth2Spec {
    /// The client's id at the token endpoint.
    pub(crate) client_id: String,
    /// The client's secret (usually `${VAR}`); never logged or exported.
    pub(crate) client_secret: Option<Secret>,
    /// A file holding the client secret (read when the config loads).
    pub(crate) client_secret_file: Option<SecretFile>,
    /// The token endpoint (`http://` or `https://`).
    pub(crate) token_url: String,
    /// Scopes asked for (`scope`, space-separated).
    #[serde(default)]
    pub(crate) scopes: Vec<String>,
    /// More form parameters of the token request (`audience`, `resource`).
    #[serde(default)]
    pub(crate) endpoint_params: BTreeMap<String, String>,
    /// How the client authenticates to the token endpoint: `basic` (HTTP Basic, the
    /// default, RFC 6749 2.3.1) or `body` (`client_id` and `client_secret` in the form).
    #[serde(default)]
    pub(crate) client_auth: ClientAuth,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ClientAuth {
    #[default]
    Basic,
    Body,
}

/// Why a credential setting does not build.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthError {
    #[error(
        "give at most one of bearer_token_file, google_id_token, oauth2 and an Authorization header"
    )]
    Several,
    #[error("cannot read bearer_token_file \"{}\": {source}", path.display())]
    ReadBearer {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bearer_token_file \"{}\" is empty", path.display())]
    EmptyBearer { path: PathBuf },
    #[error("google_id_token: \"audience\" must not be empty")]
    NoAudience,
    #[error("oauth2: {0}")]
    Secret(String),
    #[error("oauth2: give \"client_secret\" or \"client_secret_file\"")]
    NoSecret,
    #[error("oauth2: \"token_url\" must be an http:// or https:// URL with a host")]
    TokenUrl,
    #[error("cannot build the token client: {0}")]
    Client(reqwest::Error),
}

/// A built credential source; clones share their caches.
#[derive(Clone, Debug, Default)]
pub(super) enum Auth {
    #[default]
    None,
    BearerFile(Arc<BearerFile>),
    GoogleId(IdTokenSource, reqwest::Client),
    OAuth2(Arc<OAuth2>, reqwest::Client),
}

impl Auth {
    /// The `Authorization` value for this run, if the probe sends one.
    pub(super) async fn header(&self) -> Result<Option<HeaderValue>, ProbeError> {
        let token = match self {
            Auth::None => return Ok(None),
            Auth::BearerFile(f) => f.token().await?,
            Auth::GoogleId(src, http) => src.token(http).await?,
            Auth::OAuth2(o, http) => o.token(http).await?,
        };
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                ProbeError::new(
                    Reason::Credentials,
                    "the token holds characters a header cannot carry",
                )
            })?;
        value.set_sensitive(true);
        Ok(Some(value))
    }

    /// Forgets a fetched token (after a 401: the next run fetches a fresh one).
    pub(super) fn invalidate(&self) {
        match self {
            Auth::GoogleId(src, _) => src.invalidate(),
            Auth::OAuth2(o, _) => o.invalidate(),
            Auth::None | Auth::BearerFile(_) => {}
        }
    }
}

/// What [`build`] reads from the spec.
#[derive(Clone, Copy)]
pub(super) struct Settings<'a> {
    pub(crate) bearer_token_file: Option<&'a Path>,
    pub(crate) google_id_token: Option<&'a IdTokenSpec>,
    pub(crate) oauth2: Option<&'a OAuth2Spec>,
    /// Whether the configured headers already hold an `Authorization`.
    pub(crate) authorization_header: bool,
    /// For the token requests (the probe's `ca_file` and verification, no client cert).
    pub(crate) tls: &'a rustls::ClientConfig,
}

pub(super) fn build(s: Settings<'_>) -> Result<Auth, AuthError> {
    let given = [
        s.bearer_token_file.is_some(),
        s.google_id_token.is_some(),
        s.oauth2.is_some(),
        s.authorization_header,
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(AuthError::Several);
    }
    if let Some(path) = s.bearer_token_file {
        let file = BearerFile {
            path: path.to_path_buf(),
            cache: Mutex::new(None),
        };
        // Read once now: a missing file is a config error, not a failure at every run.
        file.read_now()?;
        return Ok(Auth::BearerFile(Arc::new(file)));
    }
    if let Some(id) = s.google_id_token {
        if id.audience.trim().is_empty() {
            return Err(AuthError::NoAudience);
        }
        return Ok(Auth::GoogleId(IdTokenSource::new(id), token_client(s.tls)?));
    }
    if let Some(o) = s.oauth2 {
        let secret = pick_secret(&o.client_secret, &o.client_secret_file, "client_secret")
            .map_err(AuthError::Secret)?
            .ok_or(AuthError::NoSecret)?;
        let url = url::Url::parse(&o.token_url).map_err(|_| AuthError::TokenUrl)?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(AuthError::TokenUrl);
        }
        let oauth = OAuth2 {
            spec: o.clone(),
            url,
            secret,
            cache: Mutex::new(None),
        };
        return Ok(Auth::OAuth2(Arc::new(oauth), token_client(s.tls)?));
    }
    Ok(Auth::None)
}

/// The client for token requests: no redirects (a token answer comes from the endpoint
/// asked, and the client secret goes nowhere else), no self-connects.
fn token_client(tls: &rustls::ClientConfig) -> Result<reqwest::Client, AuthError> {
    let mut tls = tls.clone();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .connector_layer(crate::probe::common::self_connect::RefuseSelfConnect)
        .use_preconfigured_tls(tls)
        .user_agent(super::USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(AuthError::Client)
}

/// `bearer_token_file`: read again when its modification time or size changes, so a
/// rotated token is used from the next run on.
#[derive(Debug)]
pub(super) struct BearerFile {
    path: PathBuf,
    cache: Mutex<Option<(Stamp, Secret)>>,
}

/// What tells a changed file: modification time and size.
type Stamp = (Option<SystemTime>, u64);

impl BearerFile {
    fn stamp(&self) -> std::io::Result<Stamp> {
        let meta = std::fs::metadata(&self.path)?;
        Ok((meta.modified().ok(), meta.len()))
    }

    fn read_now(&self) -> Result<Secret, AuthError> {
        let read = |source| AuthError::ReadBearer {
            path: self.path.clone(),
            source,
        };
        let stamp = self.stamp().map_err(read)?;
        let text = crate::core::file::read_regular(&self.path).map_err(read)?;
        let token = text.trim();
        if token.is_empty() {
            return Err(AuthError::EmptyBearer {
                path: self.path.clone(),
            });
        }
        // Registered: a target echoing its Authorization shows `<redacted>`.
        let token = Secret::new(token);
        *self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((stamp, token.clone()));
        Ok(token)
    }

    async fn token(self: &Arc<Self>) -> Result<Secret, ProbeError> {
        let cred = |e: AuthError| ProbeError::new(Reason::Credentials, e.to_string());
        let stamp = self.stamp().map_err(|source| {
            cred(AuthError::ReadBearer {
                path: self.path.clone(),
                source,
            })
        })?;
        if let Some((s, t)) = &*self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            && *s == stamp
        {
            return Ok(t.clone());
        }
        // Off the async workers: only a regular file is read, but a slow disk must not stall
        // other probes.
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.read_now())
            .await
            .map_err(|_| ProbeError::new(Reason::Credentials, "reading bearer_token_file failed"))?
            .map_err(cred)
    }
}

/// `oauth2`: the client-credentials grant, its token cached until shortly before expiry.
#[derive(Debug)]
pub(super) struct OAuth2 {
    spec: OAuth2Spec,
    url: url::Url,
    secret: Secret,
    cache: Mutex<Option<(Secret, Instant)>>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
}

impl OAuth2 {
    fn invalidate(&self) {
        *self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// The token request's form body, and its `Authorization: Basic` (`client_auth: basic`).
    fn token_request(&self) -> Result<(String, Option<HeaderValue>), ProbeError> {
        let spec = &self.spec;
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        if !spec.scopes.is_empty() {
            form.append_pair("scope", &spec.scopes.join(" "));
        }
        for (k, v) in &spec.endpoint_params {
            form.append_pair(k, v);
        }
        let basic = match spec.client_auth {
            ClientAuth::Basic => {
                // RFC 6749 2.3.1: each part form-encoded before they are joined.
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                let pair = format!("{}:{}", enc(&spec.client_id), enc(self.secret.expose()));
                let b64 = base64::engine::general_purpose::STANDARD.encode(pair);
                crate::redact::register(&b64);
                let mut value = HeaderValue::from_str(&format!("Basic {b64}")).map_err(|_| {
                    ProbeError::new(
                        Reason::Credentials,
                        "oauth2: the client id or secret cannot be sent",
                    )
                })?;
                value.set_sensitive(true);
                Some(value)
            }
            ClientAuth::Body => {
                form.append_pair("client_id", &spec.client_id);
                form.append_pair("client_secret", self.secret.expose());
                None
            }
        };
        Ok((form.finish(), basic))
    }

    async fn token(&self, http: &reqwest::Client) -> Result<Secret, ProbeError> {
        if let Some((t, until)) = &*self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            && Instant::now() < *until
        {
            return Ok(t.clone());
        }
        let cred = |msg: String| ProbeError::new(Reason::Credentials, msg);
        let (body, basic) = self.token_request()?;
        let mut req = http
            .post(self.url.clone())
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json");
        if let Some(basic) = basic {
            req = req.header(http::header::AUTHORIZATION, basic);
        }
        // The token endpoint is not named in messages: its URL may carry a tenant's key.
        let raw = token_answer(req.body(body), "oauth2 token endpoint").await?;
        // serde's message could quote the answer (the token): only say what is missing.
        let answer: TokenAnswer = serde_json::from_slice(&raw).map_err(|_| {
            cred("oauth2 token endpoint: the answer is not JSON with an access_token".into())
        })?;
        if answer.access_token.is_empty() {
            return Err(cred("oauth2 token endpoint sent an empty token".into()));
        }
        let token = Secret::new(answer.access_token);
        let lifetime = answer
            .expires_in
            .map(|s| Duration::from_secs(s).saturating_sub(EARLY))
            .unwrap_or(DEFAULT_LIFETIME)
            .min(MAX_LIFETIME);
        let until = Instant::now()
            .checked_add(lifetime)
            .unwrap_or_else(Instant::now);
        *self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((token.clone(), until));
        Ok(token)
    }
}

//! Access tokens for Google APIs: from the metadata server (the default on Cloud Run, GKE and
//! GCE; `GCE_METADATA_HOST` overrides its address), from a file, or from an environment
//! variable. Tokens are cached until 60 s before `expires_in` and are never logged.

use crate::core::types::Secret;
use crate::probe::{ProbeError, Reason};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A token answer is a few hundred bytes; more is not a token endpoint.
const MAX_TOKEN_ANSWER: usize = 64 << 10;
/// Tokens live an hour; a longer `expires_in` is believed for a day at most.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Refresh this long before the metadata server's token expires.
const EARLY: Duration = Duration::from_secs(60);
/// A token from a file or env var is re-read this often (a sidecar may rotate the file).
const REREAD: Duration = Duration::from_secs(300);

/// Where a probe's token comes from; the default is the metadata server.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct CredentialsSpec {
    /// A file holding an access token (e.g. written by `gcloud auth print-access-token`).
    pub(crate) token_file: Option<PathBuf>,
    /// An environment variable holding an access token.
    pub(crate) token_env: Option<String>,
    /// The metadata server as `host[:port]` or a base URL (default: `GCE_METADATA_HOST`,
    /// else `metadata.google.internal`).
    pub(crate) metadata_host: Option<String>,
}

/// Why a `credentials` block is refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CredentialsError {
    #[error("credentials: give token_file or token_env, not both")]
    Both,
}

impl CredentialsSpec {
    pub(crate) fn validate(&self) -> Result<(), CredentialsError> {
        if self.token_file.is_some() && self.token_env.is_some() {
            return Err(CredentialsError::Both);
        }
        Ok(())
    }
}

/// A cached token source; clones share the cache.
#[derive(Clone, Debug)]
pub(crate) struct TokenSource {
    spec: CredentialsSpec,
    cache: Arc<Mutex<Option<(Secret, Instant)>>>,
}

#[derive(Deserialize)]
struct MetadataToken {
    access_token: String,
    expires_in: u64,
}

impl TokenSource {
    pub(crate) fn new(spec: &CredentialsSpec) -> Self {
        TokenSource {
            spec: spec.clone(),
            cache: Arc::new(Mutex::new(None)),
        }
    }

    /// A valid token, from the cache when it has one.
    pub(crate) async fn token(&self, http: &reqwest::Client) -> Result<Secret, ProbeError> {
        if let Some((t, until)) = self.cached()
            && Instant::now() < until
        {
            return Ok(t);
        }
        let (token, lifetime) = self.fetch(http).await?;
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Capped: a server's `expires_in` of 2^64 s must not overflow the clock.
        let until = Instant::now()
            .checked_add(lifetime.min(MAX_LIFETIME))
            .unwrap_or_else(Instant::now);
        *cache = Some((token.clone(), until));
        Ok(token)
    }

    /// Forgets the cached token (after a 401, so the next run fetches a fresh one).
    pub(crate) fn invalidate(&self) {
        *self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    fn cached(&self) -> Option<(Secret, Instant)> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<(Secret, Duration), ProbeError> {
        let cred = |msg: String| ProbeError::new(Reason::Credentials, msg);
        if let Some(path) = &self.spec.token_file {
            // Only a regular file, off the async workers: a FIFO must not hang the run.
            let p = path.clone();
            let text = tokio::task::spawn_blocking(move || crate::core::file::read_regular(&p))
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|r| r)
                .map_err(|e| {
                    cred(format!(
                        "cannot read token file \"{}\": {e}",
                        path.display()
                    ))
                })?;
            return non_empty(text.trim(), "the token file is empty").map(|t| (t, REREAD));
        }
        if let Some(var) = &self.spec.token_env {
            let text = std::env::var(var)
                .map_err(|_| cred(format!("environment variable \"{var}\" is not set")))?;
            return non_empty(text.trim(), "the token variable is empty").map(|t| (t, REREAD));
        }
        let url = format!(
            "{}/computeMetadata/v1/instance/service-accounts/default/token",
            metadata_base(self.spec.metadata_host.as_deref())
        );
        let raw = metadata_get(http, &url).await?;
        let body: MetadataToken = serde_json::from_slice(&raw)
            .map_err(|e| cred(format!("metadata server answer is not a token: {e}")))?;
        let lifetime = Duration::from_secs(body.expires_in).saturating_sub(EARLY);
        non_empty(
            &body.access_token,
            "the metadata server sent an empty token",
        )
        .map(|t| (t, lifetime))
    }
}

/// The metadata server's base URL: `host` (`host[:port]` or a URL), else
/// `GCE_METADATA_HOST`, else `metadata.google.internal`; without a trailing slash.
pub(super) fn metadata_base(host: Option<&str>) -> String {
    let host = host
        .map(str::to_string)
        .or_else(|| std::env::var("GCE_METADATA_HOST").ok())
        .unwrap_or_else(|| "metadata.google.internal".into());
    let base = if host.starts_with("http://") || host.starts_with("https://") {
        host
    } else {
        format!("http://{host}")
    };
    base.trim_end_matches('/').to_string()
}

/// A `GET` of the metadata server with `Metadata-Flavor: Google`: the answer's bytes, at
/// most [`MAX_TOKEN_ANSWER`]. Errors are `credentials` and quote neither URL nor answer.
pub(super) async fn metadata_get(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, ProbeError> {
    let req = http.get(url).header("Metadata-Flavor", "Google");
    token_answer(req, "metadata server").await
}

/// Sends a request for a token (the metadata server's, an OAuth2 endpoint's) and reads the
/// answer: its bytes, at most [`MAX_TOKEN_ANSWER`]. Errors are `credentials`, name the
/// endpoint as `who`, and quote neither its URL (it may carry a key) nor its answer (a token).
pub(crate) async fn token_answer(
    req: reqwest::RequestBuilder,
    who: &str,
) -> Result<Vec<u8>, ProbeError> {
    let cred = |msg: String| ProbeError::new(Reason::Credentials, msg);
    let mut resp = req.send().await.map_err(|e| {
        let what = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "unreachable"
        } else {
            "failed"
        };
        cred(format!("{who} {what}"))
    })?;
    if !resp.status().is_success() {
        return Err(cred(format!("{who} answered {}", resp.status().as_u16())));
    }
    let mut raw = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|_| cred(format!("{who}: the answer broke off")))?
    {
        if raw.len() + chunk.len() > MAX_TOKEN_ANSWER {
            return Err(cred(format!(
                "{who} answered more than {MAX_TOKEN_ANSWER} bytes"
            )));
        }
        raw.extend_from_slice(&chunk);
    }
    Ok(raw)
}

fn non_empty(token: &str, msg: &str) -> Result<Secret, ProbeError> {
    if token.is_empty() {
        Err(ProbeError::new(Reason::Credentials, msg))
    } else {
        Ok(Secret::new(token))
    }
}

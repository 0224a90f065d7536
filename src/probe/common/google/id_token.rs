//! Google-signed ID tokens for a given audience, from the metadata server (what a Cloud Run
//! service that refuses unauthenticated calls, or an app behind IAP, wants in
//! `Authorization: Bearer`). Cached until a minute before the token's `exp`; the token's
//! signature is the receiver's to check, pathwatch only reads `exp` to know when to refresh.

use super::token::{metadata_base, metadata_get};
use crate::core::types::Secret;
use crate::probe::{ProbeError, Reason};
use base64::Engine as _;
use serde::Deserialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Refresh this long before the token's `exp`.
const EARLY: Duration = Duration::from_secs(60);
/// Google's ID tokens live an hour; a later `exp` is believed for a day at most.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// `google_id_token:` of an `http` probe.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct IdTokenSpec {
    /// The token's audience: the Cloud Run service's URL, or the IAP OAuth client id.
    pub(crate) audience: String,
    /// The metadata server as `host[:port]` or a base URL (default: `GCE_METADATA_HOST`,
    /// else `metadata.google.internal`).
    pub(crate) metadata_host: Option<String>,
}

/// A cached ID token source; clones share the cache.
#[derive(Clone, Debug)]
pub(crate) struct IdTokenSource {
    spec: IdTokenSpec,
    cache: Arc<Mutex<Option<(Secret, Instant)>>>,
}

#[derive(Deserialize)]
struct Claims {
    exp: u64,
}

impl IdTokenSource {
    pub(crate) fn new(spec: &IdTokenSpec) -> Self {
        IdTokenSource {
            spec: spec.clone(),
            cache: Arc::new(Mutex::new(None)),
        }
    }

    /// A valid token, from the cache when it has one.
    pub(crate) async fn token(&self, http: &reqwest::Client) -> Result<Secret, ProbeError> {
        if let Some((t, until)) = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            && Instant::now() < until
        {
            return Ok(t);
        }
        let mut url = url::Url::parse(&format!(
            "{}/computeMetadata/v1/instance/service-accounts/default/identity",
            metadata_base(self.spec.metadata_host.as_deref())
        ))
        .map_err(|_| {
            ProbeError::new(
                Reason::Credentials,
                "the metadata server's address is not a URL",
            )
        })?;
        url.query_pairs_mut()
            .append_pair("audience", &self.spec.audience)
            .append_pair("format", "full");
        let raw = metadata_get(http, url.as_str()).await?;
        let text = String::from_utf8(raw).unwrap_or_default();
        let token = text.trim();
        let lifetime = lifetime(token, SystemTime::now())?;
        // Never shown: an echo of it (a target quoting its Authorization) is masked.
        let token = Secret::new(token);
        let until = Instant::now()
            .checked_add(lifetime)
            .unwrap_or_else(Instant::now);
        *self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((token.clone(), until));
        Ok(token)
    }

    /// Forgets the cached token (after a 401, so the next run fetches a fresh one).
    pub(crate) fn invalidate(&self) {
        *self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

/// How long to use a JWT: until a minute before its `exp` (read, not verified), at most a day.
fn lifetime(jwt: &str, now: SystemTime) -> Result<Duration, ProbeError> {
    let not_jwt = || {
        ProbeError::new(
            Reason::Credentials,
            "the metadata server's answer is not an ID token (a JWT with an exp claim)",
        )
    };
    let payload = jwt.split('.').nth(1).ok_or_else(not_jwt)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| not_jwt())?;
    let claims: Claims = serde_json::from_slice(&bytes).map_err(|_| not_jwt())?;
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let left = Duration::from_secs(claims.exp).saturating_sub(now);
    Ok(left.saturating_sub(EARLY).min(MAX_LIFETIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b(r#"{"alg":"RS256"}"#), b(claims))
    }

    #[test]
    fn the_lifetime_is_exp_less_a_minute_and_garbage_is_refused() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let l = lifetime(&jwt(r#"{"exp":1003600,"aud":"x"}"#), now).unwrap();
        assert_eq!(l, Duration::from_secs(3540));
        // Already expired, or about to: used for this run only, fetched again next time.
        let l = lifetime(&jwt(r#"{"exp":1000030}"#), now).unwrap();
        assert_eq!(l, Duration::ZERO);
        assert_eq!(
            lifetime(&jwt(r#"{"exp":99999999999}"#), now).unwrap(),
            MAX_LIFETIME
        );
        for bad in ["", "abc", "a.b.c", &jwt(r#"{"aud":"x"}"#)] {
            assert!(lifetime(bad, now).is_err(), "{bad}");
        }
    }
}

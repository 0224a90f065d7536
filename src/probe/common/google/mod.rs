//! Google Cloud access shared by the GCP probes (probe/kinds/gcp/) and the logs probe's Cloud
//! Logging source: access tokens (metadata server, token file or env var, cached until
//! shortly before they expire), ID tokens for an audience (the http probe's
//! `google_id_token`), and the API's error answers mapped to bounded reasons.

pub(crate) mod id_token;
pub(crate) mod token;

pub(crate) use token::{CredentialsError, CredentialsSpec, TokenSource};

use crate::probe::{ProbeError, Reason};

/// Maps a GCP REST error status to a reason; the detail names the API, not the URL.
pub(crate) fn status_error(api: &str, status: u16, retry_after: Option<&str>) -> ProbeError {
    let (reason, what) = match status {
        401 => (Reason::Auth, "the token was rejected"),
        403 => (Reason::Forbidden, "permission denied (check the IAM role)"),
        404 => (Reason::NotFound, "no such resource"),
        429 => (Reason::RateLimited, "rate limited"),
        500..=599 => (Reason::ServerError, "server error"),
        _ => (Reason::HttpStatus, "unexpected status"),
    };
    let retry = retry_after
        .map(|r| format!(", retry after {r} s"))
        .unwrap_or_default();
    ProbeError::new(reason, format!("{api} answered {status}: {what}{retry}"))
}

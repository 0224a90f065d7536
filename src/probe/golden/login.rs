//! The login step: POST credentials as JSON and take the token (and the user's id) from the
//! answer by JSON pointer. 401, 403, 422 and 5xx are distinct reasons.
//!
//! Hostile answers: the body is read up to `max_body_bytes` (an endless answer fails with
//! `body_too_large`), and redirects are followed only within the login URL's origin, so the
//! password and the extra headers never travel to another host, and no token from another
//! host is taken.

use super::super::{ProbeError, Reason, error_chain};
use super::shape::JsonPointer;
use crate::core::types::Secret;
use reqwest::StatusCode;
use reqwest::redirect::{Attempt, Policy};
use std::collections::BTreeMap;

/// A logged-in session's credentials.
pub struct Session {
    pub token: Secret,
    pub user_id: Option<String>,
}

/// Redirects a login may follow, all within its origin.
const MAX_REDIRECTS: usize = 10;

/// The HTTP client's redirect rule for logins: follow only to the same origin (scheme, host
/// and port), at most [`MAX_REDIRECTS`] times. A redirect elsewhere is not followed: its
/// 3xx answer comes back to [`login`], which fails with it.
pub fn redirect_policy() -> Policy {
    Policy::custom(|attempt: Attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if !same_origin {
            attempt.stop()
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else {
            attempt.follow()
        }
    })
}

pub struct LoginRequest<'a> {
    pub url: &'a str,
    pub email: &'a str,
    pub password: Option<&'a Secret>,
    pub headers: &'a BTreeMap<String, String>,
    pub token_pointer: &'a JsonPointer,
    pub user_id_pointer: &'a JsonPointer,
    /// The most bytes of answer read.
    pub max_body_bytes: usize,
}

pub async fn login(client: &reqwest::Client, req: LoginRequest<'_>) -> Result<Session, ProbeError> {
    let mut body = serde_json::Map::new();
    body.insert("email".into(), req.email.into());
    if let Some(pw) = req.password {
        body.insert("password".into(), pw.expose().into());
    }
    let mut builder = client.post(req.url).json(&body);
    for (k, v) in req.headers {
        builder = builder.header(k, v);
    }
    let resp = builder.send().await.map_err(|e| {
        let (mut reason, detail) = error_chain(&e, Reason::Protocol);
        if e.is_redirect() {
            // redirect_policy's limit: a loop within the origin.
            reason = Reason::TooManyRedirects;
        }
        // reqwest's messages carry the URL, which is not secret but is noise here.
        ProbeError::new(
            reason,
            format!(
                "login request failed: {}",
                detail.replace(req.url, "<login url>")
            ),
        )
    })?;
    let status = resp.status();
    let origin = url::Url::parse(req.url).map(|u| u.origin()).ok();
    if status.is_redirection() || origin.as_ref() != Some(&resp.url().origin()) {
        // Only a redirect to another origin is left unfollowed (redirect_policy); the answer's
        // origin is checked as well, so a token from another host is never taken.
        let to = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| resp.url().join(l).ok())
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_else(|| "an unknown place".into());
        return Err(ProbeError::new(
            Reason::HttpStatus,
            format!(
                "login answered {} with a redirect to another origin ({to}); not followed, so the credentials stay with the login's origin",
                status.as_u16()
            ),
        ));
    }
    let reason = match status {
        s if s.is_success() => None,
        StatusCode::UNAUTHORIZED => Some(Reason::Auth),
        StatusCode::FORBIDDEN => Some(Reason::Forbidden),
        StatusCode::UNPROCESSABLE_ENTITY => Some(Reason::Unprocessable),
        s if s.is_server_error() => Some(Reason::ServerError),
        _ => Some(Reason::HttpStatus),
    };
    if let Some(reason) = reason {
        return Err(ProbeError::new(
            reason,
            format!("login answered {}", status.as_u16()),
        ));
    }
    let body = read_capped(resp, req.max_body_bytes).await?;
    let json: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ProbeError::new(Reason::Protocol, format!("login answer is not JSON: {e}")))?;
    let token = req
        .token_pointer
        .get(&json)
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ProbeError::new(
                Reason::Protocol,
                format!("login answer has no token at {}", req.token_pointer),
            )
        })?;
    let user_id = req.user_id_pointer.get(&json).and_then(|v| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    Ok(Session {
        token: Secret::new(token),
        user_id,
    })
}

/// The body, or `body_too_large` as soon as it passes `cap` bytes (announced or read).
async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Vec<u8>, ProbeError> {
    let too_large = || {
        ProbeError::new(
            Reason::BodyTooLarge,
            format!("the login answer exceeds {cap} bytes (login.max_body_bytes)"),
        )
    };
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| {
        let (reason, detail) = error_chain(&e, Reason::Protocol);
        ProbeError::new(reason, format!("reading the login answer: {detail}"))
    })? {
        if body.len() + chunk.len() > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

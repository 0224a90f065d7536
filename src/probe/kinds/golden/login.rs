//! The login step: POST credentials as JSON and take the token (and the user's id) from the
//! answer by JSON pointer. 401, 403, 422 and 5xx are distinct reasons.
//!
//! Hostile answers: the body is read up to `max_body_bytes` (an endless answer fails with
//! `body_too_large`), and redirects are followed only within the login URL's origin, so the
//! password and the extra headers never travel to another host, and no token from another
//! host is taken.

use super::shape::JsonPointer;
use crate::core::types::Secret;
use crate::probe::{ProbeError, Reason, error_chain};
use reqwest::StatusCode;
use reqwest::redirect::{Attempt, Policy};
use std::collections::BTreeMap;

/// A logged-in session's credentials.
pub(crate) struct Session {
    pub(crate) token: Secret,
    pub(crate) user_id: Option<String>,
}

/// Redirects a login may follow, all within its origin.
const MAX_REDIRECTS: usize = 10;

/// The HTTP client's redirect rule for logins: follow only to the same origin (scheme, host
/// and port), at most [`MAX_REDIRECTS`] times. A redirect elsewhere is not followed: its
/// 3xx answer comes back to [`login`], which fails with it.
pub(crate) fn redirect_policy() -> Policy {
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

pub(super) struct LoginRequest<'a> {
    pub url: &'a str,
    pub email: &'a str,
    pub password: Option<&'a Secret>,
    pub headers: &'a BTreeMap<String, String>,
    /// The gateway credential, when the login shares the WebSocket's origin.
    pub authorization: Option<&'a http::HeaderValue>,
    pub token_pointer: &'a JsonPointer,
    pub user_id_pointer: &'a JsonPointer,
    /// The most bytes of answer read.
    pub(crate) max_body_bytes: usize,
}

pub(crate) async fn login(
    client: &reqwest::Client,
    req: LoginRequest<'_>,
) -> Result<Session, ProbeError> {
    let mut body = serde_json::Map::new();
    body.insert("email".into(), req.email.into());
    if let Some(pw) = req.password {
        body.insert("password".into(), pw.expose().into());
    }
    let mut builder = client.post(req.url).json(&body);
    for (k, v) in req.headers {
        builder = builder.header(k, v);
    }
    if let Some(auth) = req.authorization {
        builder = builder.header(reqwest::header::AUTHORIZATION, auth.clone());
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
    if let Some(reason) = status_reason(status) {
        return Err(ProbeError::new(
            reason,
            format!("login answered {}", status.as_u16()),
        ));
    }
    let body = read_capped(resp, req.max_body_bytes).await?;
    read_answer(&body, req.token_pointer, req.user_id_pointer)
}

/// The reason a login answer's status fails with, if it does: 401, 403, 422 and 5xx are
/// their own, any other non-success is `http_status`.
fn status_reason(status: StatusCode) -> Option<Reason> {
    match status {
        s if s.is_success() => None,
        StatusCode::UNAUTHORIZED => Some(Reason::Auth),
        StatusCode::FORBIDDEN => Some(Reason::Forbidden),
        StatusCode::UNPROCESSABLE_ENTITY => Some(Reason::Unprocessable),
        s if s.is_server_error() => Some(Reason::ServerError),
        _ => Some(Reason::HttpStatus),
    }
}

/// The session a successful login answer (already capped) names: a non-empty string at
/// `token_pointer`, and the user's id (a string or a number) at `user_id_pointer` if any.
fn read_answer(
    body: &[u8],
    token_pointer: &JsonPointer,
    user_id_pointer: &JsonPointer,
) -> Result<Session, ProbeError> {
    let json: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ProbeError::new(Reason::Protocol, format!("login answer is not JSON: {e}")))?;
    let token = token_pointer
        .get(&json)
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ProbeError::new(
                Reason::Protocol,
                format!("login answer has no token at {token_pointer}"),
            )
        })?;
    let user_id = user_id_pointer.get(&json).and_then(|v| match v {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::kinds::golden::arbitrary::json;
    use proptest::prelude::*;
    use serde_json::Value;

    /// Strings of a login answer. Those of 4 bytes or more are drawn from characters no
    /// other test prints: a token read is registered with the process's redactor, which
    /// must not start masking other tests' words.
    fn strings() -> impl Strategy<Value = String> + Clone {
        prop_oneof!["[a-z0-9]{0,3}", "[ǂǁ☃\u{7}\"\\\\]{4,24}"]
    }

    fn keys() -> impl Strategy<Value = String> + Clone {
        prop_oneof![
            4 => proptest::sample::select(&["access_token", "token", "data", "user", "id", "user_id", "0"][..])
                .prop_map(String::from),
            1 => "\\PC{0,8}",
        ]
    }

    fn pointer() -> impl Strategy<Value = JsonPointer> {
        proptest::sample::select(
            &[
                "",
                "/access_token",
                "/data/token",
                "/token",
                "/user/id",
                "/user_id",
                "/0",
                "/data/0/token",
            ][..],
        )
        .prop_map(|p| JsonPointer::parse(p).expect("a well-formed pointer"))
    }

    #[test]
    fn an_answer_gives_its_token_and_user_or_a_protocol_error() {
        let (t, u) = (
            JsonPointer::literal("/access_token"),
            JsonPointer::literal("/user/id"),
        );
        let s = read_answer(
            br#"{"access_token":"tok-login-123","user":{"id":42}}"#,
            &t,
            &u,
        )
        .expect("a session");
        assert_eq!(s.token.expose(), "tok-login-123");
        assert_eq!(s.user_id.as_deref(), Some("42"));
        for bad in [
            &b"not json"[..],
            br#"{"access_token":""}"#,
            br#"{"access_token":7}"#,
            b"",
        ] {
            let e = read_answer(bad, &t, &u).err().expect("an error");
            assert_eq!(e.reason, Reason::Protocol);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_json_answer_is_read_without_panic(
            answer in json(strings(), keys()),
            token_at in pointer(),
            user_at in pointer(),
        ) {
            let read = read_answer(answer.to_string().as_bytes(), &token_at, &user_at);
            let token = token_at.get(&answer).and_then(Value::as_str).filter(|t| !t.is_empty());
            match read {
                Ok(s) => {
                    prop_assert_eq!(Some(s.token.expose()), token);
                    let user = match user_at.get(&answer) {
                        Some(Value::String(s)) => Some(s.clone()),
                        Some(Value::Number(n)) => Some(n.to_string()),
                        _ => None,
                    };
                    prop_assert_eq!(s.user_id, user);
                }
                Err(e) => {
                    prop_assert!(token.is_none());
                    prop_assert_eq!(e.reason, Reason::Protocol);
                }
            }
        }

        #[test]
        fn any_bytes_are_read_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let (t, u) = (JsonPointer::literal("/access_token"), JsonPointer::literal("/user/id"));
            if let Err(e) = read_answer(&bytes, &t, &u) {
                prop_assert_eq!(e.reason, Reason::Protocol);
            }
        }

        #[test]
        fn every_status_fails_with_a_login_reason_or_passes_when_2xx(code in 100u16..1000) {
            let status = StatusCode::from_u16(code).expect("a status code");
            match status_reason(status) {
                None => prop_assert!(status.is_success()),
                Some(r) => prop_assert!(matches!(
                    r,
                    Reason::Auth | Reason::Forbidden | Reason::Unprocessable | Reason::ServerError | Reason::HttpStatus
                ), "{r:?}"),
            }
        }
    }
}

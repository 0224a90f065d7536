//! The login step: POST credentials as JSON and take the token (and the user's id) from the
//! answer by JSON pointer. 401, 403, 422 and 5xx are distinct reasons.

use super::super::{ProbeError, Reason, error_chain};
use super::shape::JsonPointer;
use crate::config::types::Secret;
use reqwest::StatusCode;
use std::collections::BTreeMap;

/// A logged-in session's credentials.
pub struct Session {
    pub token: Secret,
    pub user_id: Option<String>,
}

pub struct LoginRequest<'a> {
    pub url: &'a str,
    pub email: &'a str,
    pub password: Option<&'a Secret>,
    pub headers: &'a BTreeMap<String, String>,
    pub token_pointer: &'a JsonPointer,
    pub user_id_pointer: &'a JsonPointer,
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
        let (reason, detail) = error_chain(&e, Reason::Protocol);
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
    let json: serde_json::Value = resp
        .json()
        .await
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

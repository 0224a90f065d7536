//! A service that wants credentials, and the places they come from: `/protected` answers 200
//! only to an `Authorization` it was told to accept (and echoes it, to prove echoes are
//! masked), `/away` redirects to another origin, the metadata server's `identity` endpoint
//! mints ID tokens for an audience, and `/oauth/token` is an OAuth2 token endpoint
//! (client-credentials grant). Every `Authorization` seen and every token request is kept
//! for the tests to assert on.

use super::served::{Served, serve};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub const CLIENT_ID: &str = "pathwatch-probe";
pub const CLIENT_SECRET: &str = "oauth-client-s3cret-9q8w";
pub const IDENTITY_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/identity";

#[derive(Default)]
struct Inner {
    /// `Authorization` values `/protected` accepts.
    allowed: Vec<String>,
    /// (path, Authorization) of every request to `/protected` and `/away`.
    seen: Vec<(String, Option<String>)>,
    /// Where `/away` redirects.
    away: String,
    /// The audience of each identity request.
    identity: Vec<String>,
    /// The form (and Authorization) of each token request.
    token_requests: Vec<(BTreeMap<String, String>, Option<String>)>,
    minted: usize,
}

#[derive(Clone, Default)]
pub struct AuthState(Arc<Mutex<Inner>>);

impl AuthState {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

pub struct AuthServer {
    pub addr: SocketAddr,
    state: AuthState,
    _served: Served,
}

impl AuthServer {
    pub fn start() -> AuthServer {
        let state = AuthState::default();
        let served = serve(router(state.clone()));
        AuthServer {
            addr: served.addr,
            state,
            _served: served,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `/protected` accepts `Authorization: Bearer <token>` from now on.
    pub fn allow_bearer(&self, token: &str) {
        self.state
            .with(|i| i.allowed.push(format!("Bearer {token}")));
    }

    /// `/protected` no longer accepts anything it accepted.
    pub fn revoke_all(&self) {
        self.state.with(|i| i.allowed.clear());
    }

    /// `/away` redirects to `url`.
    pub fn redirect_away_to(&self, url: &str) {
        self.state.with(|i| i.away = url.to_string());
    }

    /// Every (path, Authorization) seen so far.
    pub fn seen(&self) -> Vec<(String, Option<String>)> {
        self.state.with(|i| i.seen.clone())
    }

    pub fn identity_requests(&self) -> Vec<String> {
        self.state.with(|i| i.identity.clone())
    }

    /// A gate ([`super::gateway::Gate`]) that lets through what `/protected` accepts: the
    /// allowed bearers, and the tokens minted here.
    pub fn gate(&self) -> super::gateway::Gate {
        let state = self.state.clone();
        std::sync::Arc::new(move |auth: Option<&str>| {
            auth.is_some_and(|a| state.with(|i| i.allowed.iter().any(|x| x == a)))
        })
    }

    pub fn token_requests(&self) -> Vec<(BTreeMap<String, String>, Option<String>)> {
        self.state.with(|i| i.token_requests.clone())
    }
}

fn router(state: AuthState) -> Router {
    Router::new()
        .route("/protected", get(protected))
        .route("/away", get(away))
        .route(IDENTITY_PATH, get(identity))
        .route("/oauth/token", post(token))
        .with_state(state)
}

fn authorization(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn protected(State(s): State<AuthState>, headers: HeaderMap) -> Response {
    let auth = authorization(&headers);
    let ok = s.with(|i| {
        i.seen.push(("/protected".into(), auth.clone()));
        auth.as_ref().is_some_and(|a| i.allowed.contains(a))
    });
    let body = serde_json::json!({ "auth": auth }).to_string();
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn away(State(s): State<AuthState>, headers: HeaderMap) -> Response {
    let auth = authorization(&headers);
    let to = s.with(|i| {
        i.seen.push(("/away".into(), auth));
        i.away.clone()
    });
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

/// The metadata server's ID token: a JWT (unsigned here) for the audience, an hour long; each
/// one minted is also accepted by `/protected`.
async fn identity(
    State(s): State<AuthState>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
        return (StatusCode::FORBIDDEN, "Missing Metadata-Flavor\n").into_response();
    }
    let (Some(aud), Some("full")) = (q.get("audience"), q.get("format").map(String::as_str)) else {
        return (StatusCode::BAD_REQUEST, "audience and format=full\n").into_response();
    };
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
        + 3600;
    let b = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let n = s.with(|i| {
        i.minted += 1;
        i.minted
    });
    let claims = serde_json::json!({
        "aud": aud, "exp": exp, "iss": "https://accounts.google.com", "sub": format!("{n}"),
    });
    let jwt = format!(
        "{}.{}.c2lnbmF0dXJl",
        b(r#"{"alg":"RS256","typ":"JWT"}"#),
        b(&claims.to_string())
    );
    s.with(|i| {
        i.identity.push(aud.clone());
        i.allowed.push(format!("Bearer {jwt}"));
    });
    jwt.into_response()
}

/// RFC 6749 4.4: client credentials by Basic auth or in the form; answers a fresh token
/// (accepted by `/protected`) for an hour.
async fn token(State(s): State<AuthState>, headers: HeaderMap, body: String) -> Response {
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let auth = authorization(&headers);
    let basic = auth
        .as_deref()
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let by_basic = basic.as_deref() == Some(&format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let by_body = form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET);
    let n = s.with(|i| {
        i.token_requests.push((form.clone(), auth.clone()));
        i.token_requests.len()
    });
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return (
            StatusCode::BAD_REQUEST,
            r#"{"error":"unsupported_grant_type"}"#,
        )
            .into_response();
    }
    if !(by_basic || by_body) {
        return (StatusCode::UNAUTHORIZED, r#"{"error":"invalid_client"}"#).into_response();
    }
    let token = format!("oauth-access-tok-{n}-zx81");
    s.with(|i| i.allowed.push(format!("Bearer {token}")));
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600})
            .to_string(),
    )
        .into_response()
}

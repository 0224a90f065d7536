//! The simulated auth service: password login, the E2E bypass login, and the token store.

use std::collections::{HashMap, VecDeque};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{SimState, lock};

/// Email used by `/auth/e2e/test-auth` when the body names none.
const E2E_DEFAULT_EMAIL: &str = "e2e@pathwatch.test";
/// Seconds the issued access token claims to live (the real service's value; the simulator
/// does not expire tokens).
const EXPIRES_IN: u64 = 900;
/// Bound on remembered tokens so a long `demo` does not grow without limit; oldest go first.
const MAX_TOKENS: usize = 10_000;

#[derive(Clone, Debug)]
pub(super) struct User {
    pub(super) id: String,
    pub(super) email: String,
}

/// Access token -> user, with insertion order for eviction.
#[derive(Default)]
pub(super) struct TokenStore {
    users: HashMap<String, User>,
    order: VecDeque<String>,
}

impl TokenStore {
    fn insert(&mut self, token: String, user: User) {
        self.order.push_back(token.clone());
        self.users.insert(token, user);
        while self.order.len() > MAX_TOKENS {
            if let Some(old) = self.order.pop_front() {
                self.users.remove(&old);
            }
        }
    }
}

/// Stable user id for an email (FNV-1a 64 of the lowercased email), the same in every process.
pub(super) fn user_id_for(email: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in email.trim().to_lowercase().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("user-{h:016x}")
}

impl SimState {
    /// Issues an access token for `email` as a login would, without HTTP: for a static token
    /// (from a file or env) in the demo and the tests.
    pub fn issue_token(&self, email: &str) -> String {
        self.issue(email).0
    }

    /// The user an access token belongs to, if it was issued here.
    pub(super) fn user_for_token(&self, token: &str) -> Option<User> {
        lock(&self.inner.tokens).users.get(token).cloned()
    }

    /// (access token, refresh token, user).
    fn issue(&self, email: &str) -> (String, String, User) {
        let user = User {
            id: user_id_for(email),
            email: email.to_owned(),
        };
        let access = self.random_hex(email);
        let refresh = self.random_hex(email);
        lock(&self.inner.tokens).insert(access.clone(), user.clone());
        (access, refresh, user)
    }

    fn token_response(&self, email: &str) -> Response {
        let (access, refresh, user) = self.issue(email);
        Json(json!({
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": EXPIRES_IN,
            "user": {"id": user.id, "email": user.email},
        }))
        .into_response()
    }

    /// The answer an auth fault forces on every login, if any.
    fn login_fault(&self) -> Option<Response> {
        let faults = self.faults();
        if faults.db_down {
            self.log_db_request_failed();
            return Some(detail(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
            ));
        }
        if faults.login_401 {
            return Some(detail(StatusCode::UNAUTHORIZED, "Invalid credentials"));
        }
        None
    }
}

/// `{"detail": msg}` with `status`, FastAPI's error shape.
pub(super) fn detail(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({ "detail": msg }))).into_response()
}

/// FastAPI's 422 for a body that is not JSON (or not an object).
fn invalid_json() -> Response {
    let body = json!({"detail": [{
        "loc": ["body"],
        "msg": "Expecting value: line 1 column 1 (char 0)",
        "type": "value_error.jsondecode",
    }]});
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

/// A string field of a JSON object, or the FastAPI validation error entry for it.
fn string_field(obj: &serde_json::Map<String, Value>, name: &str) -> Result<String, Value> {
    match obj.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        None | Some(Value::Null) => Err(json!({
            "loc": ["body", name],
            "msg": "field required",
            "type": "value_error.missing",
        })),
        Some(_) => Err(json!({
            "loc": ["body", name],
            "msg": "str type expected",
            "type": "type_error.str",
        })),
    }
}

/// `POST /auth/login` `{"email","password"}`.
pub(super) async fn login(State(state): State<SimState>, body: Bytes) -> Response {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(&body) else {
        return invalid_json();
    };
    let email = string_field(&obj, "email");
    let password = string_field(&obj, "password");
    let (email, password) = match (email, password) {
        (Ok(e), Ok(p)) => (e, p),
        (e, p) => {
            let errors: Vec<Value> = [e.err(), p.err()].into_iter().flatten().collect();
            let body = json!({ "detail": errors });
            return (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
        }
    };
    if let Some(fault) = state.login_fault() {
        return fault;
    }
    if password != state.inner.password {
        return detail(StatusCode::UNAUTHORIZED, "Invalid credentials");
    }
    tracing::debug!(email = %email, "sim login");
    let line = format!("Login succeeded for {}", user_id_for(&email));
    state.log("INFO", "netra.auth", &line);
    state.token_response(&email)
}

/// `POST /auth/e2e/test-auth` with `X-E2E-Bypass-Key`, optional body `{"email"}`.
pub(super) async fn test_auth(
    State(state): State<SimState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(expected) = state.inner.bypass_key.as_deref() else {
        // The real service only mounts this route in test environments.
        return detail(StatusCode::NOT_FOUND, "Not Found");
    };
    let offered = headers
        .get("x-e2e-bypass-key")
        .and_then(|v| v.to_str().ok());
    if offered != Some(expected) {
        return detail(StatusCode::UNAUTHORIZED, "Invalid E2E bypass key");
    }
    let email = if body.iter().all(u8::is_ascii_whitespace) {
        E2E_DEFAULT_EMAIL.to_owned()
    } else {
        let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(&body) else {
            return invalid_json();
        };
        match obj.get("email") {
            None | Some(Value::Null) => E2E_DEFAULT_EMAIL.to_owned(),
            Some(_) => match string_field(&obj, "email") {
                Ok(e) => e,
                Err(err) => {
                    let body = json!({ "detail": [err] });
                    return (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
                }
            },
        }
    };
    if let Some(fault) = state.login_fault() {
        return fault;
    }
    state.token_response(&email)
}

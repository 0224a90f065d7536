//! Admin routes of the simulator (no auth: it is a test service): faults, restart, run timelines.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::detail;
use super::{Faults, SimState};

/// `GET /admin/faults`.
pub(super) async fn get_faults(State(state): State<SimState>) -> Json<Faults> {
    Json(state.faults())
}

/// `PUT /admin/faults`: replaces all faults (omitted fields reset to their defaults); 400 with
/// serde's message on unknown fields or bad JSON.
pub(super) async fn put_faults(State(state): State<SimState>, body: Bytes) -> Response {
    match serde_json::from_slice::<Faults>(&body) {
        Ok(faults) => {
            state.set_faults(faults.clone());
            Json(faults).into_response()
        }
        Err(e) => detail(StatusCode::BAD_REQUEST, &format!("invalid faults: {e}")),
    }
}

/// `POST /admin/restart`.
pub(super) async fn restart(State(state): State<SimState>) -> Response {
    state.restart();
    Json(json!({"status": "restarted", "started_at": state.started().unix_seconds})).into_response()
}

/// `GET /admin/runs`: the last 50 run timelines, newest last.
pub(super) async fn runs(State(state): State<SimState>) -> Response {
    Json(state.runs()).into_response()
}

/// FastAPI's 404 for unknown paths.
pub(super) async fn not_found() -> Response {
    detail(StatusCode::NOT_FOUND, "Not Found")
}

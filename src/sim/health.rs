//! The simulated health endpoints of the backend and of the auth service, with their quirks.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::SimState;

/// Reason given when the database is down (the real services' text).
pub(super) const DB_REASON: &str = "Database connectivity failed";
/// Reason given under the `health_503` fault.
const UNAVAILABLE_REASON: &str = "Service Unavailable";

/// What the backend's database-aware health check concludes.
enum Backend {
    Healthy,
    Starting,
    Unhealthy(&'static str),
}

impl SimState {
    /// Injected failures come first: they are what the probe is meant to see.
    fn backend(&self) -> Backend {
        let faults = self.faults();
        if faults.health_503 {
            Backend::Unhealthy(UNAVAILABLE_REASON)
        } else if faults.db_down {
            self.log_db_request_failed();
            Backend::Unhealthy(DB_REASON)
        } else if self.starting(&faults) {
            Backend::Starting
        } else {
            Backend::Healthy
        }
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// `GET /health` and `GET /api/health/ready`: 200 healthy, or 503 starting/unhealthy.
pub(super) async fn health(State(state): State<SimState>) -> Response {
    let started = state.started();
    let times = json!({
        "started_at": started.unix_seconds,
        "uptime_seconds": started.at.elapsed().as_secs_f64(),
    });
    let (status, mut body) = match state.backend() {
        Backend::Healthy => (StatusCode::OK, json!({"status": "healthy"})),
        Backend::Starting => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "starting"}),
        ),
        Backend::Unhealthy(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unhealthy", "reason": reason}),
        ),
    };
    if let (Some(body), Value::Object(times)) = (body.as_object_mut(), times) {
        body.extend(times);
    }
    answer(status, body)
}

/// `GET /health/ready`: static, it never looks at the database (the real backend's quirk), but
/// it does fail while starting and under `health_503`.
pub(super) async fn ready(State(state): State<SimState>) -> Response {
    let faults = state.faults();
    if faults.health_503 {
        let body = json!({"status": "unhealthy", "reason": UNAVAILABLE_REASON});
        return answer(StatusCode::SERVICE_UNAVAILABLE, body);
    }
    if state.starting(&faults) {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "starting"}),
        );
    }
    answer(StatusCode::OK, json!({"status": "ready"}))
}

/// `GET /api/health/database`: failures carry the body under `detail` (FastAPI HTTPException).
pub(super) async fn database(State(state): State<SimState>) -> Response {
    let inner = match state.backend() {
        Backend::Healthy => {
            let body = json!({"status": "healthy", "database": "connected"});
            return answer(StatusCode::OK, body);
        }
        Backend::Starting => json!({"status": "starting"}),
        Backend::Unhealthy(reason) => json!({"status": "unhealthy", "reason": reason}),
    };
    answer(StatusCode::SERVICE_UNAVAILABLE, json!({ "detail": inner }))
}

/// `GET /auth/health`: the auth service is a separate process, so a backend restart does not
/// affect it; its database going down does.
pub(super) async fn auth_health(State(state): State<SimState>) -> Response {
    let faults = state.faults();
    let reason = if faults.health_503 {
        UNAVAILABLE_REASON
    } else if faults.db_down {
        DB_REASON
    } else {
        return answer(StatusCode::OK, json!({"status": "healthy"}));
    };
    let body = json!({"status": "unhealthy", "reason": reason});
    answer(StatusCode::SERVICE_UNAVAILABLE, body)
}

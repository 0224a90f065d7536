//! The HTTP surface: `/metrics` (OpenMetrics), `/healthz`, `/readyz`, `/` (the status page)
//! and `/api/status` (the same as JSON).

use crate::state::State;
use crate::status;
use axum::Router;
use axum::extract::State as Extract;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub state: Arc<State>,
    /// False until the scheduler runs, and again once shutdown begins.
    pub ready: Arc<AtomicBool>,
}

pub fn router(app: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/", get(index))
        .route("/api/status", get(api_status))
        .with_state(app)
}

async fn metrics(Extract(app): Extract<AppState>) -> Response {
    let mut body = String::with_capacity(16 * 1024);
    match prometheus_client::encoding::text::encode(&mut body, &app.registry) {
        Ok(()) => ([(header::CONTENT_TYPE, OPENMETRICS)], body).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding metrics failed\n",
        )
            .into_response(),
    }
}

/// Ready means "serving results". It does not wait for first probe runs: as a sidecar,
/// pathwatch must not hold its pod out of service while a 75 s probe is still running.
async fn readyz(Extract(app): Extract<AppState>) -> Response {
    if app.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn index(Extract(app): Extract<AppState>) -> Html<String> {
    Html(status::html(&status::snapshot(&app.state), 10))
}

async fn api_status(Extract(app): Extract<AppState>) -> Response {
    axum::Json(status::snapshot(&app.state)).into_response()
}

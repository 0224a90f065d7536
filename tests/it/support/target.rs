//! A small HTTP service on 127.0.0.1:0 answering the shapes the first user's backend does
//! (health JSON, 503 with `detail`), plus redirects, big and slow bodies.

use super::served::{Served, serve};
use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::time::Duration;

pub struct Target {
    pub addr: SocketAddr,
    _served: Served,
}

impl Target {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

fn router() -> Router {
    Router::new()
        .route(
            "/health",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"status":"healthy","checks":{"database":"ok"},"uptime":12}"#,
                )
            }),
        )
        .route(
            "/api/health/database",
            get(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"detail":{"status":"unhealthy","reason":"Database connectivity failed"}}"#,
                )
            }),
        )
        .route("/ping", get(|| async { "Ok.\n" }))
        .route(
            "/redirect",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/health")]) }),
        )
        .route(
            "/loop",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/loop")]) }),
        )
        .route("/big", get(|| async { "x".repeat(2 << 20) }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route(
            "/login",
            post(|headers: HeaderMap, body: String| async move {
                let key = headers
                    .get("x-e2e-bypass-key")
                    .and_then(|v| v.to_str().ok());
                if key == Some("k3y") && body.contains("\"email\"") {
                    (
                        StatusCode::OK,
                        r#"{"access_token":"t","token_type":"Bearer"}"#,
                    )
                        .into_response()
                } else {
                    (
                        StatusCode::UNAUTHORIZED,
                        r#"{"detail":"Invalid credentials"}"#,
                    )
                        .into_response()
                }
            }),
        )
}

/// Starts the service on its own runtime thread; it stops when the `Target` is dropped.
pub fn start() -> Target {
    let served = serve(router());
    Target {
        addr: served.addr,
        _served: served,
    }
}

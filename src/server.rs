//! The HTTP surface: `/metrics` (OpenMetrics), `/healthz`, `/readyz`, and `/` (an index).

use crate::state::State;
use axum::Router;
use axum::extract::State as Extract;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use std::fmt::Write as _;
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
    let mut rows = String::new();
    for (name, latest) in app.state.snapshot() {
        let run = &latest.run;
        let (result, detail) = match &run.outcome {
            Ok(_) => ("ok", String::new()),
            Err(e) => ("failed", e.detail.clone()),
        };
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td class={result}>{result}</td><td>{}</td><td>{:.3} s</td><td>{}</td></tr>",
            escape(&name),
            latest.kind,
            run.reason(),
            run.duration.as_secs_f64(),
            escape(&detail)
        );
    }
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <title>pathwatch</title><style>body{{font-family:sans-serif;margin:1em}}td,th{{padding:.2em .6em;text-align:left}}\
         .ok{{color:#18794e}}.failed{{color:#c4320a;font-weight:bold}}</style></head><body>\
         <h1>pathwatch {}</h1><p><a href=/metrics>/metrics</a> · <a href=/healthz>/healthz</a> · <a href=/readyz>/readyz</a></p>\
         <table><tr><th>probe</th><th>kind</th><th>result</th><th>reason</th><th>duration</th><th>detail</th></tr>{rows}</table>\
         </body></html>",
        env!("CARGO_PKG_VERSION")
    ))
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

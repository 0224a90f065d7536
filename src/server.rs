//! The HTTP surface: `/metrics` (OpenMetrics or text 0.0.4, as the client asks), `/healthz`, `/readyz`, `/` (the status page)
//! and `/api/status` (the same as JSON).

use crate::ondemand::{self, Refusal};
use crate::state::State;
use crate::status;
use crate::supervisor::{ReloadRequest, SharedConfig};
use axum::Router;
use axum::extract::Query;
use axum::extract::State as Extract;
use axum::http::HeaderMap;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use prometheus_client::registry::Registry;
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::sync::{mpsc, oneshot};

use crate::exposition::{OPENMETRICS, TEXT_004, to_text_004, wants_openmetrics};

#[derive(Clone)]
pub struct AppState {
    /// Every family but the per-probe histograms, which `state.metrics` encodes itself
    /// (Metrics::new says why); a scrape encodes both at once.
    pub registry: Arc<Registry>,
    /// The size of each part at the previous scrape, to size the next buffers.
    pub encoded_bytes: Arc<[AtomicUsize; 2]>,
    pub state: Arc<State>,
    /// False until the scheduler runs, and again once shutdown begins.
    pub ready: Arc<AtomicBool>,
    /// The config in force (on-demand probing reads its modules and allowlist).
    pub config: SharedConfig,
    /// Reload requests to the supervisor.
    pub reload: mpsc::Sender<ReloadRequest>,
}

#[derive(Deserialize)]
struct ProbeQuery {
    module: String,
    target: Option<String>,
}

pub fn router(app: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/", get(index))
        .route("/api/status", get(api_status))
        .route("/probe", get(probe))
        .route("/-/reload", post(reload))
        .with_state(app)
}

/// The `Accept` header of a request, when it is text.
fn accept(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())
}

async fn metrics(Extract(app): Extract<AppState>, headers: HeaderMap) -> Response {
    let openmetrics = wants_openmetrics(accept(&headers));
    // At 10,000 probes an encode takes tens of milliseconds: keep it off the async workers,
    // so that no probe misses its slot while a scrape is encoded.
    let answer = tokio::task::spawn_blocking(move || {
        let parts = encode(&app)?;
        if openmetrics {
            return Some((OPENMETRICS, parts));
        }
        let mut text = String::new();
        parts.iter().for_each(|p| to_text_004(p, &mut text));
        Some((TEXT_004, vec![text]))
    });
    match answer.await {
        Ok(Some((content_type, parts))) => {
            let chunks = parts
                .into_iter()
                .map(|p| Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(p)));
            let body = axum::body::Body::from_stream(futures_util::stream::iter(chunks));
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding metrics failed\n",
        )
            .into_response(),
    }
}

/// Encodes the registry and the histograms at once (the histograms on a scoped thread),
/// each into a buffer sized from the previous scrape (growing a 20 MB string by doubling
/// copies it about twice over), and records how long it took. The parts are the answer in
/// order, `# EOF` last.
fn encode(app: &AppState) -> Option<Vec<String>> {
    use prometheus_client::encoding::text::{encode_eof, encode_registry};
    let start = std::time::Instant::now();
    let buffer = |i: usize| {
        let last = app.encoded_bytes[i].load(Ordering::Relaxed);
        String::with_capacity(4096 + last + last / 8)
    };
    let (first, second) = std::thread::scope(|s| {
        let second = s.spawn(|| {
            let mut out = buffer(1);
            app.state.metrics.encode_histograms(&mut out);
            out
        });
        let mut first = buffer(0);
        let first = encode_registry(&mut first, &app.registry)
            .ok()
            .map(|()| first);
        (first, second.join().ok())
    });
    for (i, part) in [&first, &second].into_iter().enumerate() {
        if let Some(p) = part {
            app.encoded_bytes[i].store(p.len(), Ordering::Relaxed);
        }
    }
    let mut eof = String::new();
    encode_eof(&mut eof).ok()?;
    app.state
        .metrics
        .encode_seconds
        .set(start.elapsed().as_secs_f64());
    Some(vec![first?, second?, eof])
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

/// Runs a configured probe now (blackbox style); see [`ondemand`].
async fn probe(
    Extract(app): Extract<AppState>,
    Query(q): Query<ProbeQuery>,
    headers: HeaderMap,
) -> Response {
    let scrape_timeout = headers
        .get("x-prometheus-scrape-timeout-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(ondemand::scrape_timeout);
    let config = app.config.read().unwrap_or_else(|p| p.into_inner()).clone();
    match ondemand::plan(
        &config.probes,
        &config.on_demand,
        &q.module,
        q.target.as_deref(),
        scrape_timeout,
    ) {
        Ok(plan) => {
            let body = ondemand::run(plan).await;
            if wants_openmetrics(accept(&headers)) {
                ([(header::CONTENT_TYPE, OPENMETRICS)], body).into_response()
            } else {
                let mut text = String::new();
                to_text_004(&body, &mut text);
                ([(header::CONTENT_TYPE, TEXT_004)], text).into_response()
            }
        }
        Err(Refusal::UnknownModule(m)) => {
            (StatusCode::BAD_REQUEST, format!("unknown module {m:?}\n")).into_response()
        }
        Err(Refusal::TargetNotAllowed) => (
            StatusCode::FORBIDDEN,
            "target not allowed by on_demand.allowed_targets\n",
        )
            .into_response(),
        Err(Refusal::BadTarget(e)) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}

/// Reloads the config; 200 with a summary, or 500 with every error (the old config stays).
async fn reload(Extract(app): Extract<AppState>) -> Response {
    let (tx, rx) = oneshot::channel();
    if app.reload.send(tx).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match rx.await {
        Ok(Ok(msg)) => (StatusCode::OK, format!("{msg}\n")).into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}

async fn api_status(Extract(app): Extract<AppState>) -> Response {
    axum::Json(status::snapshot(&app.state)).into_response()
}

//! The HTTP surface: `/metrics` (OpenMetrics or text 0.0.4, as the client asks), `/healthz`, `/readyz`, `/` (the status page)
//! and `/api/status` (the same as JSON).

use crate::on_demand::{self, Refusal};
use crate::reload::{ReloadRequest, SharedConfig};
use crate::status_page;
use crate::store::State;
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
use crate::metrics::scrape::ScrapeFormat;
use axum::body::Bytes;

#[derive(Clone)]
pub(crate) struct AppState {
    /// Every family but the per-probe ones, which `state.metrics` encodes itself and
    /// caches between changes (Metrics::new says why); a scrape answers with both.
    pub(crate) registry: Arc<Registry>,
    /// The size of the registry's part at the previous scrape, to size the next buffer
    /// (the second is unused: the per-probe part sizes its own).
    pub(crate) encoded_bytes: Arc<[AtomicUsize; 2]>,
    pub(crate) state: Arc<State>,
    /// False until the scheduler runs, and again once shutdown begins.
    pub(crate) ready: Arc<AtomicBool>,
    /// The config in force (on-demand probing reads its modules and allowlist).
    pub(crate) config: SharedConfig,
    /// Reload requests to the supervisor.
    pub(crate) reload: mpsc::Sender<ReloadRequest>,
}

#[derive(Deserialize)]
struct ProbeQuery {
    module: String,
    target: Option<String>,
}

pub(crate) fn router(app: AppState) -> Router {
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
    let format = if wants_openmetrics(accept(&headers)) {
        ScrapeFormat::OpenMetrics
    } else {
        ScrapeFormat::Text004
    };
    // At 10,000 probes an encode takes milliseconds: keep it off the async workers, so
    // that no probe misses its slot while a scrape is encoded.
    let answer = tokio::task::spawn_blocking(move || encode(&app, format));
    match answer.await {
        Ok(Some(parts)) => {
            let content_type = match format {
                ScrapeFormat::OpenMetrics => OPENMETRICS,
                ScrapeFormat::Text004 => TEXT_004,
            };
            let chunks = parts.into_iter().map(Ok::<_, std::convert::Infallible>);
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

/// The answer in parts, in order: the registry's families (each kind's own, incidents,
/// root causes, self: encoded every time), the families every probe has (cached between
/// changes, metrics/scrape.rs), `# EOF` last (OpenMetrics). Records how long it took.
fn encode(app: &AppState, format: ScrapeFormat) -> Option<Vec<Bytes>> {
    use prometheus_client::encoding::text::{encode_eof, encode_registry};
    let start = std::time::Instant::now();
    let metrics = &app.state.metrics;
    let last = app.encoded_bytes[0].load(Ordering::Relaxed);
    let mut rest = String::with_capacity(1024 + last + last / 8);
    encode_registry(&mut rest, &app.registry).ok()?;
    app.encoded_bytes[0].store(rest.len(), Ordering::Relaxed);
    let probes = metrics.scrape.get(format, || metrics.encode_probes())?;
    let mut parts = Vec::with_capacity(probes.len() + 2);
    match format {
        ScrapeFormat::OpenMetrics => {
            parts.push(Bytes::from(rest));
            parts.extend(probes);
            let mut eof = String::new();
            encode_eof(&mut eof).ok()?;
            parts.push(Bytes::from(eof));
        }
        ScrapeFormat::Text004 => {
            let mut text = String::with_capacity(rest.len());
            to_text_004(&rest, &mut text);
            parts.push(Bytes::from(text));
            parts.extend(probes);
        }
    }
    metrics.encode_seconds.set(start.elapsed().as_secs_f64());
    Some(parts)
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

/// The status page. Its snapshot and rendering take a blocking thread: at 100,000 probes
/// they take about a second, which on an async worker made scheduled runs late.
async fn index(Extract(app): Extract<AppState>) -> Response {
    let page = tokio::task::spawn_blocking(move || {
        status_page::html(&status_page::snapshot(&app.state), 10)
    });
    match page.await {
        Ok(html) => Html(html).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "rendering the status page failed\n",
        )
            .into_response(),
    }
}

/// Runs a configured probe now (blackbox style); see [`on_demand`].
async fn probe(
    Extract(app): Extract<AppState>,
    Query(q): Query<ProbeQuery>,
    // The request itself rather than a `HeaderMap`, which axum clones for the handler.
    request: axum::extract::Request,
) -> Response {
    let headers = request.headers();
    let scrape_timeout = headers
        .get("x-prometheus-scrape-timeout-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(on_demand::scrape_timeout);
    let (format, content_type) = if wants_openmetrics(accept(headers)) {
        (ScrapeFormat::OpenMetrics, OPENMETRICS)
    } else {
        (ScrapeFormat::Text004, TEXT_004)
    };
    // Not held across the run: a request's body is not `Sync`.
    drop(request);
    let config = app
        .config
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    match on_demand::plan(
        &config.probes,
        &config.on_demand,
        &q.module,
        q.target.as_deref(),
        scrape_timeout,
    ) {
        Ok(plan) => {
            let body = on_demand::run(plan, format).await;
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
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

/// The status page as JSON, snapshot and serialized on a blocking thread (see [`index`]).
async fn api_status(Extract(app): Extract<AppState>) -> Response {
    let body =
        tokio::task::spawn_blocking(move || serde_json::to_vec(&status_page::snapshot(&app.state)));
    match body.await {
        Ok(Ok(json)) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding the status failed\n",
        )
            .into_response(),
    }
}

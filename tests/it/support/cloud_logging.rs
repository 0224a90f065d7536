//! A fake Cloud Logging API on 127.0.0.1:0 in its own thread: `POST /v2/entries:list` with
//! the real request and answer shapes (resourceNames, filter with `timestamp>="..."`,
//! `orderBy: "timestamp asc"`, pageSize, opaque pageToken; entries with insertId, timestamp,
//! textPayload or jsonPayload.message; nextPageToken), a Bearer token check, queued faults
//! (a status with an optional Retry-After, malformed JSON), and the metadata server's token
//! endpoint. Also a tiny fake ClickHouse HTTP interface.
#![allow(dead_code)]

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The only token the fake accepts (and its metadata server hands out).
pub const TOKEN: &str = "ya29.fake-logging-token";
pub const TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";

/// What the next entries:list request gets instead of a page.
#[derive(Clone, Debug)]
pub enum Fault {
    Status(u16, Option<u32>),
    Malformed,
}

#[derive(Default)]
struct Inner {
    entries: Mutex<Vec<Value>>,
    faults: Mutex<VecDeque<Fault>>,
    /// Every entries:list request body, in order.
    requests: Mutex<Vec<Value>>,
}

/// An HTTP fake on its own runtime thread; it stops when dropped.
pub struct Served {
    pub addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Served {
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

pub fn serve(router: Router) -> Served {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime for a fake");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind a fake");
            addr_tx
                .send(listener.local_addr().expect("fake address"))
                .expect("send the address");
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await;
        });
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("fake started");
    Served {
        addr,
        _stop: stop_tx,
    }
}

pub struct CloudLoggingFake {
    pub served: Served,
    inner: Arc<Inner>,
}

/// An RFC 3339 timestamp `ago` before now, with nanoseconds, as the API writes them.
pub fn timestamp(ago: Duration) -> String {
    humantime::format_rfc3339_nanos(SystemTime::now() - ago).to_string()
}

/// An entry with a text payload.
pub fn text_entry(id: &str, ts: &str, text: &str) -> Value {
    json!({
        "insertId": id,
        "timestamp": ts,
        "receiveTimestamp": ts,
        "severity": "ERROR",
        "logName": "projects/netra-staging/logs/run.googleapis.com%2Fstderr",
        "resource": {
            "type": "cloud_run_revision",
            "labels": {"service_name": "netra-backend-staging", "revision_name": "netra-backend-staging-00042-abc"}
        },
        "textPayload": text,
    })
}

/// An entry with a structured payload whose text is under `message`.
pub fn json_entry(id: &str, ts: &str, message: &str) -> Value {
    json!({
        "insertId": id,
        "timestamp": ts,
        "severity": "WARNING",
        "logName": "projects/netra-staging/logs/run.googleapis.com%2Fstdout",
        "resource": {"type": "cloud_run_revision", "labels": {"service_name": "netra-backend-staging"}},
        "jsonPayload": {"message": message, "logger": "netra.startup", "level": "warning"},
    })
}

impl CloudLoggingFake {
    pub fn start() -> CloudLoggingFake {
        let inner = Arc::new(Inner::default());
        let router = Router::new()
            .route("/v2/entries:list", post(entries_list))
            .route(TOKEN_PATH, get(metadata_token))
            .with_state(inner.clone());
        CloudLoggingFake {
            served: serve(router),
            inner,
        }
    }

    pub fn base(&self) -> String {
        self.served.base()
    }

    pub fn push(&self, entry: Value) {
        self.inner
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(entry);
    }

    pub fn fault(&self, fault: Fault) {
        self.inner
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(fault);
    }

    pub fn requests(&self) -> Vec<Value> {
        self.inner
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

async fn metadata_token(headers: HeaderMap) -> Response {
    if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
        return (
            StatusCode::FORBIDDEN,
            "Missing Metadata-Flavor:Google header.",
        )
            .into_response();
    }
    axum::Json(json!({"access_token": TOKEN, "expires_in": 3599, "token_type": "Bearer"}))
        .into_response()
}

fn google_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(
            json!({"error": {"code": status.as_u16(), "message": message, "status": "ERROR"}}),
        ),
    )
        .into_response()
}

async fn entries_list(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {TOKEN}")) {
        return google_error(
            StatusCode::UNAUTHORIZED,
            "Request had invalid authentication credentials.",
        );
    }
    let Ok(req) = serde_json::from_str::<Value>(&body) else {
        return google_error(StatusCode::BAD_REQUEST, "Invalid JSON payload received.");
    };
    inner
        .requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(req.clone());
    let fault = inner
        .faults
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pop_front();
    match fault {
        Some(Fault::Status(code, retry)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = google_error(status, "fault");
            if let Some(r) = retry {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, r.to_string().parse().expect("header"));
            }
            return resp;
        }
        Some(Fault::Malformed) => {
            return (
                [(header::CONTENT_TYPE, "application/json")],
                "{\"entries\": [{\"insertId\": ",
            )
                .into_response();
        }
        None => {}
    }
    if req["orderBy"] != "timestamp asc"
        || req["resourceNames"].as_array().is_none_or(|r| r.is_empty())
    {
        return google_error(StatusCode::BAD_REQUEST, "unexpected request shape");
    }
    // Only the part of the filter the probe adds is interpreted: timestamp>="...".
    let filter = req["filter"].as_str().unwrap_or("");
    let since = filter
        .split("timestamp>=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|t| humantime::parse_rfc3339(t).ok());
    let Some(since) = since else {
        return google_error(StatusCode::BAD_REQUEST, "the filter has no timestamp bound");
    };
    let page_size = req["pageSize"].as_u64().unwrap_or(50) as usize;
    let offset: usize = req["pageToken"]
        .as_str()
        .and_then(|t| t.strip_prefix("page-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mut matching: Vec<(SystemTime, Value)> = inner
        .entries
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter_map(|e| {
            let t = humantime::parse_rfc3339(e["timestamp"].as_str()?).ok()?;
            (t >= since).then(|| (t, e.clone()))
        })
        .collect();
    matching.sort_by_key(|(t, _)| *t);
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(page_size)
        .map(|(_, e)| e.clone())
        .collect();
    let mut answer: HashMap<&str, Value> = HashMap::new();
    if !page.is_empty() {
        answer.insert("entries", Value::Array(page));
    }
    if offset + page_size < matching.len() {
        answer.insert(
            "nextPageToken",
            json!(format!("page-{}", offset + page_size)),
        );
    }
    axum::Json(answer).into_response()
}

/// ClickHouse's HTTP interface as far as the example probes use it: `/ping` and a query.
pub fn clickhouse() -> Served {
    let router = Router::new()
        .route("/ping", get(|| async { "Ok.\n" }))
        .route(
            "/",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                match q.get("query").map(String::as_str) {
                    Some("SELECT 1") => (StatusCode::OK, "1\n".to_string()),
                    other => (
                        StatusCode::BAD_REQUEST,
                        format!("Code: 62. DB::Exception: Syntax error: {other:?}\n"),
                    ),
                }
            }),
        );
    serve(router)
}

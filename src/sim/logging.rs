//! The reference service's own log, and Cloud Logging's `POST /v2/entries:list` serving it.
//!
//! The service logs as the first user's backend does on Cloud Run (structured JSON, so each
//! entry has `jsonPayload.message` and a `severity`): startup lines with
//! `PHASE COMPLETED: DATABASE (x.xxxs)` at each (re)start, a line per login and agent run, and
//! while the database is down the incident's failure lines (the `/cloudsql` socket connect
//! failing, `Cloud SQL instance not accessible through VPC connector`, `Application startup
//! failed. Exiting.`).
//!
//! `entries:list` has the real request and answer shapes: `resourceNames`, `filter`,
//! `orderBy: "timestamp asc"`, `pageSize`, an opaque `pageToken`; entries with `insertId`,
//! `timestamp` (RFC 3339 with nanoseconds), `severity`, `resource`, and `nextPageToken`. Of the
//! filter only the `timestamp>="..."` bound is interpreted: every entry here belongs to the one
//! Cloud Run service, so the rest of a usual filter would keep them all. Tests can push entries
//! of their own and queue faults (a status with an optional Retry-After, malformed JSON).

use std::collections::{HashMap, VecDeque};
use std::time::SystemTime;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::gcp::{PROJECT, REGION, SERVICE, authorized};
use super::{Faults, SimState, lock};

/// The backend's connect failure on the Cloud SQL socket (the incident's first line).
pub(crate) const DB_SOCKET_FAILED: &str = "socket connection to /cloudsql/netra-staging:us-central1:staging-shared-postgres/.s.PGSQL.5432 failed: timeout expired";
/// What the backend concludes after its connects fail.
pub(crate) const VPC_UNREACHABLE: &str = "Cloud SQL instance not accessible through VPC connector";
/// The backend's last line before its instance exits.
pub(crate) const STARTUP_FAILED: &str = "Application startup failed. Exiting.";
/// What Cloud Run's system log says when the container exits (the backend exits with 3).
pub(crate) const CONTAINER_EXIT: &str = "Container called exit(3).";
/// Entries kept, oldest dropped first: hours of a demo's lines, a few MB at most.
const MAX_ENTRIES: usize = 5_000;
/// `entries:list` request bodies kept for tests, oldest dropped first.
const MAX_REQUESTS: usize = 200;
/// The API's own default page size.
const DEFAULT_PAGE_SIZE: usize = 50;

/// What the next `entries:list` request gets instead of a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoggingFault {
    /// This status in Google's error envelope, with `Retry-After: N` when given.
    Status(u16, Option<u32>),
    /// A JSON answer cut in the middle.
    Malformed,
}

/// The log and the API's test hooks.
#[derive(Default)]
pub(super) struct Store {
    /// Oldest first, at most `MAX_ENTRIES`.
    entries: VecDeque<Value>,
    faults: VecDeque<LoggingFault>,
    requests: VecDeque<Value>,
    next_id: u64,
}

/// The monitored resource of every entry: the backend's current revision.
fn resource() -> Value {
    json!({
        "type": "cloud_run_revision",
        "labels": {
            "project_id": PROJECT,
            "location": REGION,
            "service_name": SERVICE,
            "configuration_name": SERVICE,
            "revision_name": format!("{SERVICE}-00012-xqz"),
        }
    })
}

/// An RFC 3339 timestamp with nanoseconds, as the API writes them.
pub fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_nanos(at).to_string()
}

/// An entry with a text payload (what a plain `print` to stderr becomes).
pub fn text_entry(insert_id: &str, timestamp: &str, severity: &str, text: &str) -> Value {
    json!({
        "insertId": insert_id,
        "timestamp": timestamp,
        "receiveTimestamp": timestamp,
        "severity": severity,
        "logName": format!("projects/{PROJECT}/logs/run.googleapis.com%2Fstderr"),
        "resource": resource(),
        "textPayload": text,
    })
}

/// An entry with a structured payload whose text is under `message` (what a JSON log line on
/// stdout becomes).
pub fn json_entry(
    insert_id: &str,
    timestamp: &str,
    severity: &str,
    logger: &str,
    message: &str,
) -> Value {
    json!({
        "insertId": insert_id,
        "timestamp": timestamp,
        "receiveTimestamp": timestamp,
        "severity": severity,
        "logName": format!("projects/{PROJECT}/logs/run.googleapis.com%2Fstdout"),
        "resource": resource(),
        "jsonPayload": {"message": message, "logger": logger, "level": severity.to_lowercase()},
    })
}

impl SimState {
    /// Appends one line to the service's log.
    pub(super) fn log(&self, severity: &str, logger: &str, message: &str) {
        tracing::debug!(target: "pathwatch::sim::log", severity, logger, "{message}");
        let mut log = lock(&self.inner.log);
        log.next_id += 1;
        let id = format!("sim{:012x}", log.next_id);
        let entry = json_entry(
            &id,
            &timestamp(SystemTime::now()),
            severity,
            logger,
            message,
        );
        push(&mut log.entries, entry, MAX_ENTRIES);
    }

    /// The lines of a (re)start: the database phase and startup complete, or, with the
    /// database down, the incident's sequence ending in the instance exiting.
    pub(super) fn log_start(&self, faults: &Faults) {
        self.log(
            "INFO",
            "netra.startup",
            "Starting netra-backend (environment=staging)",
        );
        if faults.db_down {
            self.log_db_lost();
            return;
        }
        // The database phase takes a share of a slow startup, with some jitter, as it does.
        let jitter = u64::from_str_radix(&self.random_hex("db-phase")[..4], 16).unwrap_or(0);
        let secs = 0.25 + 0.4 * faults.startup_delay_ms as f64 / 1000.0 + jitter as f64 / 327_675.0;
        self.log(
            "INFO",
            "netra.startup",
            &format!("PHASE COMPLETED: DATABASE ({secs:.3}s)"),
        );
        if !faults.startup_fails {
            self.log("INFO", "uvicorn.error", "Application startup complete.");
        }
    }

    /// The incident's sequence: the connect on the Cloud SQL socket fails, the backend names
    /// the cause and exits (Cloud Run then starts an instance that fails the same way).
    pub(super) fn log_db_lost(&self) {
        self.log("ERROR", "sqlalchemy.pool", DB_SOCKET_FAILED);
        self.log("ERROR", "netra.db", VPC_UNREACHABLE);
        self.log("CRITICAL", "netra.startup", STARTUP_FAILED);
        self.log(
            "WARNING",
            "run.googleapis.com/varlog/system",
            CONTAINER_EXIT,
        );
    }

    /// A request needed the database and it is down.
    pub(super) fn log_db_request_failed(&self) {
        self.log("ERROR", "sqlalchemy.pool", DB_SOCKET_FAILED);
    }

    /// Appends an entry as given (tests place entries at chosen times).
    pub fn push_log_entry(&self, entry: Value) {
        push(&mut lock(&self.inner.log).entries, entry, MAX_ENTRIES);
    }

    #[cfg(test)]
    /// Every entry kept, oldest first.
    pub(crate) fn log_entries(&self) -> Vec<Value> {
        lock(&self.inner.log).entries.iter().cloned().collect()
    }

    /// Forgets every entry (a test that counts lines starts from an empty log).
    pub fn clear_log_entries(&self) {
        lock(&self.inner.log).entries.clear();
    }

    /// The next `entries:list` request answers `fault` (one request per queued fault).
    pub fn queue_logging_fault(&self, fault: LoggingFault) {
        lock(&self.inner.log).faults.push_back(fault);
    }

    /// The last 200 `entries:list` request bodies that carried the token, oldest first.
    pub fn logging_requests(&self) -> Vec<Value> {
        lock(&self.inner.log).requests.iter().cloned().collect()
    }
}

fn push(q: &mut VecDeque<Value>, v: Value, max: usize) {
    q.push_back(v);
    while q.len() > max {
        q.pop_front();
    }
}

fn google_error(status: StatusCode, api_status: &str, message: &str) -> Response {
    let body =
        json!({"error": {"code": status.as_u16(), "message": message, "status": api_status}});
    (status, Json(body)).into_response()
}

fn bad_request(message: &str) -> Response {
    google_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
}

/// The `timestamp>="..."` bound of a filter.
fn since(filter: &str) -> Option<SystemTime> {
    let rest = filter.split("timestamp>=\"").nth(1)?;
    humantime::parse_rfc3339(rest.split('"').next()?).ok()
}

/// `POST /v2/entries:list`.
pub(super) async fn entries_list(
    State(state): State<SimState>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !authorized(&headers) {
        return google_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
        );
    }
    let Ok(req) = serde_json::from_str::<Value>(&body) else {
        return bad_request("Invalid JSON payload received.");
    };
    let (fault, entries) = {
        let mut log = lock(&state.inner.log);
        push(&mut log.requests, req.clone(), MAX_REQUESTS);
        let fault = log.faults.pop_front();
        (fault, log.entries.clone())
    };
    match fault {
        Some(LoggingFault::Status(code, retry)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = google_error(status, "UNAVAILABLE", "The service is unavailable.");
            if let Some(r) = retry {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(r));
            }
            return resp;
        }
        Some(LoggingFault::Malformed) => {
            return (
                [(header::CONTENT_TYPE, "application/json")],
                "{\"entries\": [{\"insertId\": ",
            )
                .into_response();
        }
        None => {}
    }
    if req["orderBy"] != "timestamp asc"
        || req["resourceNames"]
            .as_array()
            .is_none_or(std::vec::Vec::is_empty)
    {
        return bad_request(
            "unexpected request shape: resourceNames and orderBy \"timestamp asc\" are required",
        );
    }
    let Some(since) = since(req["filter"].as_str().unwrap_or("")) else {
        return bad_request("the filter has no timestamp>=\"...\" bound");
    };
    let page_size = req["pageSize"]
        .as_u64()
        .map_or(DEFAULT_PAGE_SIZE, |n| n.clamp(1, 1000) as usize);
    let offset: usize = req["pageToken"]
        .as_str()
        .and_then(|t| t.strip_prefix("page-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mut matching: Vec<(SystemTime, Value)> = entries
        .into_iter()
        .filter_map(|e| {
            let t = humantime::parse_rfc3339(e["timestamp"].as_str()?).ok()?;
            (t >= since).then_some((t, e))
        })
        .collect();
    // Stable: entries logged within one clock tick keep the order they were written in.
    matching.sort_by_key(|(t, _)| *t);
    let total = matching.len();
    let page: Vec<Value> = matching
        .into_iter()
        .skip(offset)
        .take(page_size)
        .map(|(_, e)| e)
        .collect();
    let mut answer: HashMap<&str, Value> = HashMap::new();
    if !page.is_empty() {
        answer.insert("entries", Value::Array(page));
    }
    if offset + page_size < total {
        answer.insert(
            "nextPageToken",
            json!(format!("page-{}", offset + page_size)),
        );
    }
    Json(answer).into_response()
}

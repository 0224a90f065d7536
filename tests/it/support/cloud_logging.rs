//! Cloud Logging's `POST /v2/entries:list` as the reference service serves it
//! (`pathwatch::sim::logging`: the real request and answer shapes, a Bearer token check, paging
//! with an opaque pageToken, queued faults, and the metadata server's token endpoint), wrapped
//! for tests that place their own entries; and a tiny fake ClickHouse HTTP interface.

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::get;
use pathwatch::sim::{SimOptions, SimState};
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

pub use super::served::{Served, serve};
pub use pathwatch::sim::LoggingFault as Fault;
pub use pathwatch::sim::gcp::TOKEN;

pub struct CloudLoggingFake {
    pub served: Served,
    state: SimState,
}

/// An RFC 3339 timestamp `ago` before now, with nanoseconds, as the API writes them.
pub fn timestamp(ago: Duration) -> String {
    pathwatch::sim::logging::timestamp(SystemTime::now() - ago)
}

/// An ERROR entry with a text payload.
pub fn text_entry(id: &str, ts: &str, text: &str) -> Value {
    pathwatch::sim::logging::text_entry(id, ts, "ERROR", text)
}

/// A WARNING entry with a structured payload whose text is under `message`.
pub fn json_entry(id: &str, ts: &str, message: &str) -> Value {
    pathwatch::sim::logging::json_entry(id, ts, "WARNING", "netra.startup", message)
}

impl CloudLoggingFake {
    /// A reference service whose log holds only what the test pushes.
    pub fn start() -> CloudLoggingFake {
        let state = SimState::new(SimOptions::default());
        // Its own startup lines would skew the test's counts.
        state.clear_log_entries();
        CloudLoggingFake {
            served: serve(pathwatch::sim::router(state.clone())),
            state,
        }
    }

    pub fn base(&self) -> String {
        self.served.base()
    }

    pub fn push(&self, entry: Value) {
        self.state.push_log_entry(entry);
    }

    pub fn fault(&self, fault: Fault) {
        self.state.queue_logging_fault(fault);
    }

    pub fn requests(&self) -> Vec<Value> {
        self.state.logging_requests()
    }
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

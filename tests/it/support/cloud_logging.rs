//! Cloud Logging's `POST /v2/entries:list` as the reference service serves it
//! (`pathwatch::sim::logging`: the real request and answer shapes, a Bearer token check, paging
//! with an opaque pageToken, queued faults, and the metadata server's token endpoint), wrapped
//! for tests that place their own entries; and a tiny fake ClickHouse HTTP interface.
#![allow(dead_code)]

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::get;
use pathwatch::sim::{SimOptions, SimState};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

pub use pathwatch::sim::LoggingFault as Fault;
pub use pathwatch::sim::gcp::TOKEN;

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

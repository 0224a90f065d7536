//! The reference golden-path service: a faithful local imitation of the first user's backend
//! (auth, health endpoints, WebSocket agent runs) with injectable faults, used by the tests and
//! by `pathwatch demo`.
//!
//! Routes:
//! - auth: `POST /auth/login`, `POST /auth/e2e/test-auth`, `GET /auth/health`
//! - backend health: `GET /health`, `/health/ready`, `/api/health/ready`, `/api/health/database`
//! - WebSocket: `GET /ws`, `GET /api/v1/websocket`
//! - ClickHouse's HTTP interface (another data tier): `GET /ping`
//! - Google Cloud (see [`gcp`]): the metadata server's token, the VPC Access connector, the
//!   Cloud SQL instance and the Cloud Run service; Cloud Logging's `POST /v2/entries:list`
//!   serving the service's own log (see [`logging`])
//! - admin (no auth): `GET|PUT /admin/faults`, `POST /admin/restart`, `GET /admin/runs`
//!
//! Redis (RESP) is served on a listener of its own by [`serve_redis`], a TLS handshake
//! (a certificate made at start, for the demo's `tls_cert` probe) by [`serve_tls`], and
//! Postgres (Cloud SQL, over TCP and a Unix socket) by [`PgServer`]. The notification
//! receiver for Alertmanager's webhooks is in [`receiver`], on a listener of its own.
//! DNS (UDP and TCP, for the demo's `dns` probe) is served by [`dns::start_dns`].
//! gRPC health checks (the demo's `grpc` probe) are served by [`serve_grpc`].

mod admin;
mod auth;
mod clock;
pub mod dns;
pub mod gcp;
pub mod grpc;
mod health;
pub mod logging;
pub mod postgres;
pub mod receiver;
mod redis;
mod run;
mod tls;
mod ws;

pub use gcp::GcpApiFault;
pub use grpc::serve_grpc;
pub use logging::LoggingFault;
pub use postgres::{PgFaults, PgListener, PgServer};
pub use redis::serve_redis;
pub use tls::serve_tls;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Faults to inject; every change applies to the next request, connection or run.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Every health endpoint answers 503.
    pub health_503: bool,
    /// The incident: the database is unreachable. Database-backed health answers 503, logins
    /// answer 503 `{"detail":"Service Unavailable"}`, WebSockets close with 1011.
    pub db_down: bool,
    /// After a (re)start, backend health answers 503 `{"status":"starting"}` for this long (ms).
    pub startup_delay_ms: u64,
    /// After a (re)start, the backend never becomes healthy.
    pub startup_fails: bool,
    /// Every login answers 401 `{"detail":"Invalid credentials"}`.
    pub login_401: bool,
    /// Accept the WebSocket, then close at once with 1011 "backend not ready".
    pub ws_close_1011: bool,
    /// Never send this agent event type.
    pub drop_event: Option<String>,
    /// Send this agent event type twice.
    pub duplicate_event: Option<String>,
    /// Send tool_executing before agent_thinking.
    pub out_of_order: bool,
    /// Extra pause before each agent event (ms).
    pub slow_events_ms: u64,
    /// Interleave a non-JSON text frame, a JSON frame without `type` and a binary frame
    /// between agent events.
    pub garbage_frames: bool,
    /// After agent_completed keep sending agent_thinking every 50 ms until the client leaves.
    pub endless_stream: bool,
    /// A run's events also go to every other open WebSocket (the multi-user isolation bug).
    pub crosstalk: bool,
    /// The state every VPC connector reports instead of its own (e.g. `ERROR`). Any state but
    /// `READY` also takes the private network behind the connector down: the Redis listener
    /// refuses connections.
    pub connector_state: Option<String>,
    /// The state every Cloud SQL instance reports instead of its own (e.g. `MAINTENANCE`).
    pub cloudsql_state: Option<String>,
    /// The VPC egress setting every Cloud Run service reports (configuration drift, e.g.
    /// `PRIVATE_RANGES_ONLY`).
    pub cloud_run_egress: Option<String>,
    /// A Google API fault by resource path (e.g.
    /// `/v1/projects/netra-staging/locations/us-central1/connectors/staging-connector`).
    pub gcp_api: BTreeMap<String, GcpApiFault>,
    /// What the metadata server's token endpoint answers instead of a token.
    pub gcp_metadata: Option<GcpApiFault>,
    /// Redis answers `PING` with `-LOADING`, as while it loads its dataset.
    pub redis_loading: bool,
    /// The Postgres stand-in's faults (see [`postgres`]).
    pub postgres: PgFaults,
}

impl Faults {
    /// The switches that differ from the defaults, as JSON (`{}` when none): a log line that
    /// stays readable as the list of switches grows.
    pub(crate) fn active(&self) -> String {
        let (Ok(serde_json::Value::Object(now)), Ok(serde_json::Value::Object(default))) = (
            serde_json::to_value(self),
            serde_json::to_value(Faults::default()),
        ) else {
            return format!("{self:?}");
        };
        let changed: serde_json::Map<_, _> = now
            .into_iter()
            .filter(|(k, v)| default.get(k) != Some(v))
            .collect();
        serde_json::Value::Object(changed).to_string()
    }
}

/// How the service behaves when no fault is injected.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Any email logs in with this password; the user id is derived stably from the email.
    pub password: String,
    /// Enables `POST /auth/e2e/test-auth` with header `X-E2E-Bypass-Key: <key>`.
    pub bypass_key: Option<String>,
    /// Pause before each of the 5 agent events.
    pub event_pause: Duration,
    /// Period of the `{"type":"heartbeat"}` frames.
    pub heartbeat: Duration,
    /// Faults active from the start.
    pub faults: Faults,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            password: "pathwatch-demo".to_owned(),
            bypass_key: None,
            event_pause: Duration::from_millis(250),
            heartbeat: Duration::from_secs(5),
            faults: Faults::default(),
        }
    }
}

/// The timeline of one agent run, as the server saw it.
#[derive(Clone, Debug, Serialize)]
pub struct RunTimeline {
    pub(crate) user_id: String,
    pub(crate) thread_id: String,
    pub(crate) received_at_unix_ms: f64,
    /// Event type and ms since the user message was received, measured when the frame had been
    /// handed to the socket. Only the 5 agent events of this run's own connection are recorded.
    pub(crate) events: Vec<(String, f64)>,
}

/// Shared state of one simulated service; cheap to clone.
#[derive(Clone)]
pub struct SimState {
    inner: Arc<Inner>,
}

/// How many runs `/admin/runs` keeps.
const MAX_RUNS: usize = 50;

struct Inner {
    password: String,
    bypass_key: Option<String>,
    event_pause: Duration,
    heartbeat: Duration,
    faults: Mutex<Faults>,
    started: Mutex<Started>,
    tokens: Mutex<auth::TokenStore>,
    /// Newest last, at most `MAX_RUNS`.
    runs: Mutex<VecDeque<Arc<run::RunRecord>>>,
    /// Open WebSocket connections by id, for crosstalk, restart and shutdown.
    conns: Mutex<HashMap<u64, ws::ConnHandle>>,
    next_id: AtomicU64,
    /// Random keys (per process) make issued tokens unguessable enough for a test service.
    secret: RandomState,
    /// Woken on every fault change, so listeners can follow the network switches at once.
    faults_changed: Notify,
    gcp: Mutex<gcp::Store>,
    log: Mutex<logging::Store>,
}

/// When the backend last (re)started.
#[derive(Clone, Copy)]
struct Started {
    at: Instant,
    unix_seconds: f64,
}

impl Started {
    fn now() -> Self {
        Started {
            at: Instant::now(),
            unix_seconds: clock::unix_seconds(),
        }
    }
}

impl SimState {
    /// A service that (re)started now; its startup lines are in its log.
    pub fn new(opts: SimOptions) -> Self {
        let faults = opts.faults.clone();
        let state = SimState {
            inner: Arc::new(Inner {
                password: opts.password,
                bypass_key: opts.bypass_key,
                event_pause: opts.event_pause,
                heartbeat: opts.heartbeat,
                faults: Mutex::new(opts.faults),
                started: Mutex::new(Started::now()),
                tokens: Mutex::new(auth::TokenStore::default()),
                runs: Mutex::new(VecDeque::new()),
                conns: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                secret: RandomState::new(),
                faults_changed: Notify::new(),
                gcp: Mutex::new(gcp::Store::default()),
                log: Mutex::new(logging::Store::default()),
            }),
        };
        state.log_start(&faults);
        state
    }

    /// The faults in force now (a copy).
    pub fn faults(&self) -> Faults {
        lock(&self.inner.faults).clone()
    }

    /// Replaces every fault at once and wakes whatever waits on a fault change; `db_down`
    /// turning on also logs what a backend that lost its database logs.
    pub fn set_faults(&self, f: Faults) {
        tracing::info!(faults = %f.active(), "sim faults replaced");
        let db_down = f.db_down;
        let was_down = std::mem::replace(&mut *lock(&self.inner.faults), f).db_down;
        let lost_db = db_down && !was_down;
        self.inner.faults_changed.notify_waiters();
        if lost_db {
            // The running instance loses its database, exits, and Cloud Run's replacement
            // fails its startup the same way.
            self.log_db_lost();
        }
    }

    /// Restarts the backend: the start time becomes now (so `startup_delay_ms` applies anew)
    /// and, as a real restart would, open WebSockets close with 1012 (service restart).
    /// Issued tokens stay valid: they belong to the auth service, which did not restart.
    pub fn restart(&self) {
        *lock(&self.inner.started) = Started::now();
        self.close_connections(1012, "service restart");
        self.log_start(&self.faults());
    }

    /// The last 50 agent runs, newest last.
    pub fn runs(&self) -> Vec<RunTimeline> {
        lock(&self.inner.runs)
            .iter()
            .map(|record| record.timeline())
            .collect()
    }

    fn started(&self) -> Started {
        *lock(&self.inner.started)
    }

    /// True while the backend is still starting: within the startup delay, or forever when
    /// startup fails.
    fn starting(&self, faults: &Faults) -> bool {
        faults.startup_fails
            || self.started().at.elapsed() < Duration::from_millis(faults.startup_delay_ms)
    }

    fn next_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// 32 hex chars from a keyed hash of a counter, the time and `seed`.
    fn random_hex(&self, seed: &str) -> String {
        let n = self.next_id();
        let t = clock::unix_seconds().to_bits();
        let a = self.inner.secret.hash_one((n, t, seed, 0u8));
        let b = self.inner.secret.hash_one((n, t, seed, 1u8));
        format!("{a:016x}{b:016x}")
    }

    fn record_run(&self, record: Arc<run::RunRecord>) {
        let mut runs = lock(&self.inner.runs);
        runs.push_back(record);
        while runs.len() > MAX_RUNS {
            runs.pop_front();
        }
    }
}

/// Locks a mutex, ignoring poisoning: every critical section here leaves the data consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// All HTTP routes of the simulated service (auth, backend health, WebSocket, ClickHouse ping,
/// Google APIs, admin).
pub fn router(state: SimState) -> Router {
    Router::new()
        .route("/auth/login", post(auth::login))
        .route("/auth/e2e/test-auth", post(auth::test_auth))
        .route("/auth/health", get(health::auth_health))
        .route("/health", get(health::health))
        .route("/health/ready", get(health::ready))
        .route("/api/health/ready", get(health::health))
        .route("/api/health/database", get(health::database))
        .route("/ws", get(ws::upgrade))
        .route("/api/v1/websocket", get(ws::upgrade))
        .route(
            "/admin/faults",
            get(admin::get_faults).put(admin::put_faults),
        )
        .route("/admin/restart", post(admin::restart))
        .route("/admin/runs", get(admin::runs))
        .route("/ping", get(|| async { "Ok.\n" }))
        .route(gcp::TOKEN_PATH, get(gcp::metadata_token))
        .route(
            "/v1/projects/{project}/locations/{region}/connectors/{name}",
            get(gcp::resource),
        )
        .route(
            "/v1/projects/{project}/instances/{name}",
            get(gcp::resource),
        )
        .route(
            "/v2/projects/{project}/locations/{region}/services/{name}",
            get(gcp::resource),
        )
        .route("/v2/entries:list", post(logging::entries_list))
        .fallback(admin::not_found)
        .with_state(state)
}

/// Serves until `shutdown` is cancelled; open WebSockets then close with 1001 (going away).
///
/// # Errors
/// Only what `axum::serve` returns (accept errors are retried inside it).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: SimState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = router(state.clone());
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.cancelled().await;
            // Upgraded connections are no longer tracked by the server; end them here.
            state.close_connections(1001, "server shutting down");
        })
        .await
}

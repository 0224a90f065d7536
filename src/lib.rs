//! pathwatch: a Prometheus exporter that turns an incident's resolution criteria into
//! continuous probes. The user's guide is the book in docs/ (`mdbook build docs`).
//!
//! Data flows one way: config -> runner -> probe -> result -> (metrics, store) -> HTTP.
//! A module never names one above it; tests/it/structure.rs lists the forbidden edges and
//! fails on each.
//!
//! - `core`: leaves every layer shares (the clock, `host:port` targets, config value types,
//!   regular files); imports nothing of the crate but `redact`.
//! - `config`: YAML -> typed config, `${VAR}` expansion, secrets, located errors.
//! - `check`: run every probe once and judge the incidents (`pathwatch check`).
//! - `probe`: the probe kinds (one enum), phase timing, failure reasons, `RunResult`; each
//!   kind is a folder in `probe::kinds`, the code kinds share is in `probe::common`.
//! - `runner`: one timetable over all probes (a task per run in flight), interval, jitter,
//!   timeout, panic isolation.
//! - `reload`: the config in force; reloads on SIGHUP, `POST /-/reload` or a file change.
//! - `store`: recent results per probe, fed by the runner; incident status.
//! - `incident`: criteria -> status (a pure engine), change log lines and webhooks.
//! - `sim`: the reference golden-path service (tests, `demo`).
//! - `demo`: the bundled demo config and incident scenario.
//! - `exposition`: `/metrics` content negotiation, OpenMetrics -> text 0.0.4.
//! - `metrics`: the metric families of the contract (prometheus-client).
//! - `on_demand`: `/probe`, one configured probe run on demand against an allowed target.
//! - `allowlist`: the `on_demand.allowed_targets` patterns, the denied networks, and the
//!   guard every on-demand run passes (a leaf).
//! - `redact`: the one redactor of failure details, config errors and log lines (a leaf).
//! - `schema`: the config's JSON Schema (`pathwatch schema`).
//! - `import`: other tools' configs -> pathwatch's (`pathwatch import blackbox`).
//! - `server`: the axum router (`/metrics`, `/healthz`, `/readyz`, `/`, `/api/status`).
//! - `status_page`: the status page and its JSON.
//! - `telemetry`: logs (text, Cloud Logging JSON) and OTLP traces.
//! - `units`: durations as a person reads them (a leaf).
//! - `web`: the web config (`--web-config`): TLS, client certificates, basic auth.
//! - `abort`: tasks that end with their owner.
//! - `app`: the composition root, `app::serve(loaded, listener, shutdown, options)`; main.rs
//!   only parses the command line.

// The API docs are for people working on pathwatch: a doc may link to a pub(crate) item, and
// .ci/run builds them with --document-private-items so that every such link resolves.
#![allow(rustdoc::private_intra_doc_links)]

pub(crate) mod abort;
pub(crate) mod allowlist;
pub mod app;
pub mod check;
pub mod config;
pub(crate) mod core;
pub mod demo;
pub(crate) mod exposition;
pub mod import;
pub mod incident;
pub mod metrics;
pub(crate) mod on_demand;
pub mod probe;
pub(crate) mod redact;
pub(crate) mod reload;
pub(crate) mod runner;
pub mod schema;
pub(crate) mod server;
pub mod sim;
pub(crate) mod status_page;
pub(crate) mod store;
pub mod telemetry;
pub(crate) mod units;
pub(crate) mod web;

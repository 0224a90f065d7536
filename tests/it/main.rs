//! Integration tests: the real `pathwatch` binary against real Postgres clusters, real
//! sockets and real promtool. One test binary keeps link time down on 2 cores.

// unwrap() is denied on the crate's runtime paths (Cargo.toml [lints]); a test may panic.
#![allow(clippy::unwrap_used)]
// A test binary has no API: its support code is `pub` so that sibling test modules can use
// it, and `pub(crate)` would say nothing more (Cargo.toml [lints] warns on unreachable_pub).
#![allow(unreachable_pub)]

mod alert_targets;
mod cli;
mod clickhouse;
mod config_fixtures;
mod dashboards;
mod demo;
mod deploy;
mod dns;
mod docs;
mod e2e;
mod exposition;
mod first_probe;
mod gcp;
mod golden;
mod golden_auth;
mod golden_backends;
mod grpc;
mod hostile;
mod http;
mod http_auth;
mod icmp;
mod import_blackbox;
mod in_process;
mod incident;
mod lifecycle;
mod logs;
mod managed_prometheus;
mod netguard;
mod operate;
mod paging;
mod pg_saturation;
mod postgres;
mod redis;
mod rootcause;
mod rules;
mod schema;
mod self_connect;
mod shards;
mod sim_postgres;
mod startup;
mod structure;
mod support;
mod tcp;
mod tls_cert;
mod traces;
mod walkthrough;
mod web;

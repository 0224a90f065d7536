//! Integration tests: the real `pathwatch` binary against real Postgres clusters, real
//! sockets and real promtool. One test binary keeps link time down on 2 cores.

mod config_fixtures;
mod demo;
mod exposition;
mod golden;
mod http;
mod incident;
mod lifecycle;
mod postgres;
mod rules;
mod startup;
mod support;
mod tcp;

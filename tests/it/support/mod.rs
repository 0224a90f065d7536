//! Test support: throwaway Postgres clusters, certificates, the pathwatch binary, and
//! misbehaving servers.

pub mod auth_server;
pub mod browser;
pub mod certs;
pub mod chat_backend;
pub mod cloud_logging;
pub mod exporter;
pub mod gateway;
pub mod gcp_fake;
pub mod hang;
pub mod hostile;
pub mod mtls;
pub mod pg;
pub mod prom;
pub mod proxy;
pub mod receiver;
pub mod redis;
pub mod served;
pub mod sim;
pub mod target;
pub mod tls_target;
pub mod unbound;
pub mod web_client;

//! Test support: throwaway Postgres clusters, certificates, the pathwatch binary, and
//! misbehaving servers.

pub mod browser;
pub mod certs;
pub mod exporter;
pub mod hang;
pub mod pg;
pub mod receiver;
pub mod sim;
pub mod target;
pub mod tls_target;

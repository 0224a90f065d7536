//! The probe kinds, one folder each (`<kind>/mod.rs`): a spec, the probe it builds and
//! their `ProbeKind` implementation, listed once in the `probe_kinds!` table of
//! [`crate::probe`]. Code that more than one kind uses goes to [`super::common`].

pub(crate) mod dns;
pub mod gcp;
pub mod golden;
pub(crate) mod grpc;
pub(crate) mod http;
pub(crate) mod icmp;
pub(crate) mod logs;
pub(crate) mod postgres;
pub(crate) mod redis;
pub mod startup;
pub(crate) mod tcp;
pub(crate) mod tls_cert;

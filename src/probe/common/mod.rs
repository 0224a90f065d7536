//! What the probe kinds share (the `ProbeKind` trait, a run's trace, observations and
//! result, the preferred address family, TLS client settings, refused self-connects, Google access tokens, ...). No
//! kind lives here: each is a folder in [`super::kinds`].

pub(crate) mod google;
pub(crate) mod ip_protocol;
pub(crate) mod kind;
pub(crate) mod observation;
pub(crate) mod result;
pub mod self_connect;
pub(crate) mod tls;
pub(crate) mod trace;

//! Why the allowlist refuses: a pattern that does not parse (config load), a target that
//! cannot be read (`/probe?target=`), an address or redirect hop the guard refuses (a probe's
//! `forbidden` failure). The texts are what users see; none quotes a target, which may
//! carry a password.

use std::net::IpAddr;

/// Why a pattern of `on_demand.allowed_targets` does not parse (a config error); each
/// variant holds the pattern as written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TargetPatternError {
    #[error("pattern {0:?}: \"..\" is not allowed")]
    DotDot(String),
    #[error("pattern {0:?}: the scheme must be http or https")]
    Scheme(String),
    #[error("pattern {0:?} needs a port: write host:5432, or host:* for any")]
    NoPort(String),
    #[error("pattern {0:?}: the port must be a number, a range like 5432-5439, or *")]
    Port(String),
    #[error(
        "pattern {0:?}: the host must be an IP address, a CIDR network like \
         10.0.0.0/16, or a DNS name whose labels may hold * (one label each)"
    )]
    Host(String),
    #[error(
        "pattern {0:?} looks like an IP range: write it as a CIDR network, \
         e.g. 10.0.0.0/16:5432 (* matches one DNS label, never an address part)"
    )]
    IpRange(String),
    #[error(
        "pattern {0:?}: a host that ends in a number is an IPv4 address, as browsers read \
         it: write the address as four decimal parts (127.0.0.1) or a CIDR network"
    )]
    NumericHost(String),
}

/// Why a target (`/probe?target=`, or a redirect hop) cannot be read as one. Never quotes
/// the target: a URL may carry a password.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TargetError {
    #[error("target URL: {0}")]
    Url(url::ParseError),
    #[error("a socket directory must be a plain absolute path")]
    Dir,
    #[error("the target must be host:port")]
    NotHostPort,
    #[error("the target has no valid port")]
    Port,
    #[error("the target's bracketed host is not an IPv6 address")]
    Bracketed,
    #[error("the target's host must be an IP address or a DNS name")]
    HostName,
    #[error("the target's host ends in a number but is not a valid IPv4 address")]
    NumericHost,
    #[error("a target URL must not carry credentials")]
    UrlCredentials,
    #[error("a target URL must be http:// or https://")]
    UrlScheme,
    #[error("a target URL needs a host")]
    UrlNoHost,
    #[error("a target URL needs a port")]
    UrlNoPort,
}

/// Why the guard of an on-demand run refuses an address or a redirect hop: the probe's
/// failure detail (reason `forbidden`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    #[error(
        "the target resolves to {0}, in a network on-demand probes may not reach \
         (link-local or cloud metadata)"
    )]
    Resolved(IpAddr),
    #[error(transparent)]
    Hop(#[from] TargetError),
    #[error("a redirect into a network on-demand probes may not reach")]
    HopDenied,
    #[error("a redirect to a target outside on_demand.allowed_targets")]
    HopNotAllowed,
}

/// The probes' failure details are text (`ProbeError::new` takes `impl Into<String>`).
impl From<Refused> for String {
    fn from(e: Refused) -> String {
        e.to_string()
    }
}

//! A probe's `host:port` ([`HostPort`]): checked from a spec's `host` and `port`, or parsed
//! from an on-demand target, for the socket kinds (grpc, postgres, redis, tcp, tls_cert).

/// A host (name or address, IPv6 without brackets) and a TCP port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HostPort {
    pub host: String,
    pub port: u16,
}

/// Why a spec's `host` and `port` make no address; the text names the key, as config errors
/// do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HostPortError {
    #[error("\"host\" must not be empty")]
    EmptyHost,
    #[error("\"port\" must be between 1 and 65535")]
    Port,
}

/// Why an on-demand target is not `host:port`; the text names the target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HostPortParseError {
    #[error("target {0:?} must be host:port")]
    NoPort(String),
    #[error("target {0:?} has no valid port")]
    BadPort(String),
    #[error("target {0:?} has no host")]
    NoHost(String),
}

impl HostPort {
    /// A spec's `host` and `port`: a host that is not blank (kept as written), a port that
    /// is not 0.
    pub(crate) fn new(host: &str, port: u16) -> Result<HostPort, HostPortError> {
        if host.trim().is_empty() {
            return Err(HostPortError::EmptyHost);
        }
        if port == 0 {
            return Err(HostPortError::Port);
        }
        Ok(HostPort {
            host: host.to_string(),
            port,
        })
    }

    /// Parses an on-demand target `host:port` (`[::1]:6379` for IPv6). The port is not
    /// checked further: the spec it goes into is built, and [`HostPort::new`] refuses 0.
    pub(crate) fn parse(target: &str) -> Result<HostPort, HostPortParseError> {
        let (host, port) = target
            .rsplit_once(':')
            .ok_or_else(|| HostPortParseError::NoPort(target.to_string()))?;
        let port: u16 = port
            .parse()
            .map_err(|_| HostPortParseError::BadPort(target.to_string()))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(HostPortParseError::NoHost(target.to_string()));
        }
        Ok(HostPort {
            host: host.to_string(),
            port,
        })
    }
}

/// A database target: a Unix socket directory (`/run/postgresql`, keeping `port`, which
/// names the socket file) or `host:port`.
pub(crate) fn socket_or_host_port(
    target: &str,
    port: u16,
) -> Result<(String, u16), HostPortParseError> {
    if target.starts_with('/') {
        Ok((target.to_string(), port))
    } else {
        let a = HostPort::parse(target)?;
        Ok((a.host, a.port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(target: &str) -> Result<(String, u16), HostPortParseError> {
        HostPort::parse(target).map(|a| (a.host, a.port))
    }

    #[test]
    fn targets_parse_and_refuse() {
        assert_eq!(parsed("db:5432"), Ok(("db".into(), 5432)));
        assert_eq!(parsed("[::1]:6379"), Ok(("::1".into(), 6379)));
        assert!(parsed("db").is_err());
        assert!(parsed(":5432").is_err());
        assert_eq!(
            parsed("db:x").unwrap_err().to_string(),
            "target \"db:x\" has no valid port"
        );
    }

    #[test]
    fn specs_need_a_host_and_a_port() {
        assert_eq!(
            HostPort::new(" db ", 5432).map(|a| a.host),
            Ok(" db ".to_string())
        );
        let error = |host, port| HostPort::new(host, port).unwrap_err().to_string();
        assert_eq!(error(" ", 443), "\"host\" must not be empty");
        assert_eq!(error("", 443), "\"host\" must not be empty");
        assert_eq!(error("h", 0), "\"port\" must be between 1 and 65535");
    }
}

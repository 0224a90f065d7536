//! The `host:port` of an on-demand target for the socket kinds (postgres, redis, tcp, tls).

/// Why a target is not `host:port`; the text names the target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TargetError {
    #[error("target {0:?} must be host:port")]
    NoPort(String),
    #[error("target {0:?} has no valid port")]
    BadPort(String),
    #[error("target {0:?} has no host")]
    NoHost(String),
}

/// A database target: a Unix socket directory (`/run/postgresql`, keeping `port`, which
/// names the socket file) or `host:port`.
pub(crate) fn socket_or_host_port(target: &str, port: u16) -> Result<(String, u16), TargetError> {
    if target.starts_with('/') {
        Ok((target.to_string(), port))
    } else {
        host_port(target)
    }
}

/// Parses `host:port` (`[::1]:6379` for IPv6).
pub(crate) fn host_port(target: &str) -> Result<(String, u16), TargetError> {
    let (host, port) = target
        .rsplit_once(':')
        .ok_or_else(|| TargetError::NoPort(target.to_string()))?;
    let port: u16 = port
        .parse()
        .map_err(|_| TargetError::BadPort(target.to_string()))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(TargetError::NoHost(target.to_string()));
    }
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_parses_and_refuses() {
        assert_eq!(host_port("db:5432"), Ok(("db".into(), 5432)));
        assert_eq!(host_port("[::1]:6379"), Ok(("::1".into(), 6379)));
        assert!(host_port("db").is_err());
        assert!(host_port(":5432").is_err());
        assert_eq!(
            host_port("db:x").unwrap_err().to_string(),
            "target \"db:x\" has no valid port"
        );
    }
}

//! The `host:port` of an on-demand target for the socket kinds (postgres, redis, tcp, tls).

/// Parses `host:port` (`[::1]:6379` for IPv6); the error names the target.
pub fn host_port(target: &str) -> Result<(String, u16), String> {
    let (host, port) = target
        .rsplit_once(':')
        .ok_or_else(|| format!("target {target:?} must be host:port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("target {target:?} has no valid port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("target {target:?} has no host"));
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
    }
}

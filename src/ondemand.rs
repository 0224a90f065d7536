//! `/probe?module=NAME&target=T`: runs a configured probe once, on demand, blackbox_exporter
//! style, for users who let Prometheus drive scheduling and sharding. The module is a
//! configured probe used as a template; a target replaces its address and must match the
//! config's allowlist, so the endpoint is never an open proxy. Prometheus's scrape timeout
//! header bounds the run, and the answer holds that run's metrics only.

use crate::config::ProbeConfig;
use crate::metrics::Metrics;
use crate::runner::run_once;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// The `on_demand:` section of the config.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OnDemandSpec {
    /// Glob patterns (`*` matches any run of characters) a target must match, e.g.
    /// `"10.0.*:5432"`, `"*.internal:6379"`, `"https://*.example.com/*"`. Empty: no target
    /// may be given, only the modules' own.
    #[serde(default)]
    pub allowed_targets: Vec<String>,
}

/// Why a request is refused (the HTTP status and a message safe to show).
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    UnknownModule(String),
    TargetNotAllowed,
    BadTarget(String),
}

/// `*` globbing over the whole string, case-insensitive (host names are).
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (
        pattern.to_lowercase().chars().collect(),
        text.to_lowercase().chars().collect(),
    );
    // Classic two-pointer wildcard match with backtracking to the last star.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < t.len() {
        if i < p.len() && p[i] != '*' && p[i] == t[j] {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// The probe to run: the module, retargeted when a target is given and allowed.
pub fn plan(
    probes: &[ProbeConfig],
    spec: &OnDemandSpec,
    module: &str,
    target: Option<&str>,
    scrape_timeout: Option<Duration>,
) -> Result<ProbeConfig, Refusal> {
    let base = probes
        .iter()
        .find(|p| p.name == module)
        .ok_or_else(|| Refusal::UnknownModule(module.to_string()))?;
    let mut probe = base.clone();
    if let Some(t) = target {
        // Match the allowlist against what will really be contacted, never the raw text:
        // `http://127.0.0.1:80@evil.example/` must not pass for `http://127.0.0.1:*`.
        let contacted = normalize(t).map_err(Refusal::BadTarget)?;
        if !spec.allowed_targets.iter().any(|p| glob(p, &contacted)) {
            return Err(Refusal::TargetNotAllowed);
        }
        probe.spec = base.spec.retarget(t).map_err(Refusal::BadTarget)?;
        probe.spec.validate().map_err(Refusal::BadTarget)?;
    }
    if let Some(limit) = scrape_timeout {
        // Leave Prometheus time to read the answer: half a second, as blackbox_exporter does.
        let budget = limit.saturating_sub(Duration::from_millis(500));
        if !budget.is_zero() {
            probe.timeout = probe.timeout.min(budget);
        }
    }
    Ok(probe)
}

/// Runs the probe once and encodes only its metrics.
pub async fn run(probe: ProbeConfig) -> String {
    let mut registry = Registry::with_prefix("pathwatch");
    let metrics = Metrics::new_run_only(&mut registry);
    let transport = probe.spec.db_transport();
    let kind = probe.spec.kind();
    let name = probe.name.clone();
    let result = run_once(Arc::new(probe)).await;
    metrics.record(&name, kind, transport, &result);
    let mut body = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut body, &registry);
    body
}

/// The target as it will be contacted: `scheme://host:port/path` for URLs (no user info
/// allowed), `host:port` for sockets, a socket directory as given.
pub fn normalize(target: &str) -> Result<String, String> {
    if target.contains("://") {
        let u = url::Url::parse(target).map_err(|e| format!("target URL: {e}"))?;
        if !u.username().is_empty() || u.password().is_some() {
            return Err("a target URL must not carry credentials".into());
        }
        let host = u.host_str().ok_or("a target URL needs a host")?;
        let port = u
            .port_or_known_default()
            .ok_or("a target URL needs a port")?;
        return Ok(format!("{}://{host}:{port}{}", u.scheme(), u.path()));
    }
    if target.starts_with('/') {
        return Ok(target.to_string());
    }
    let (host, port) = host_port(target)?;
    Ok(format!("{host}:{port}"))
}

/// Parses `host:port` for the socket kinds.
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
    fn globs_match_whole_targets() {
        assert!(glob("10.0.*:5432", "10.0.3.7:5432"));
        assert!(!glob("10.0.*:5432", "10.0.3.7:6432"));
        assert!(glob("*.internal:*", "DB.internal:5432"));
        assert!(!glob("*.internal:5432", "evil.com/?x=.internal:5432x"));
        assert!(glob(
            "https://*.example.com/*",
            "https://api.example.com/health"
        ));
        assert!(!glob(
            "https://*.example.com/*",
            "https://api.example.com.evil.io/"
        ));
        assert!(glob("*", "anything"));
        assert!(!glob("", "x"));
    }

    #[test]
    fn targets_are_matched_as_they_will_be_contacted() {
        assert_eq!(
            normalize("http://127.0.0.1/x").unwrap(),
            "http://127.0.0.1:80/x"
        );
        assert_eq!(
            normalize("http://127.0.0.1:80@evil.example/").unwrap_err(),
            "a target URL must not carry credentials"
        );
        assert_eq!(
            normalize("HTTPS://Api.Example.com/h?q=1").unwrap(),
            "https://api.example.com:443/h"
        );
        assert_eq!(normalize("db:5432").unwrap(), "db:5432");
        assert!(normalize("db:notaport").is_err());
    }

    #[test]
    fn host_port_parses_and_refuses() {
        assert_eq!(host_port("db:5432"), Ok(("db".into(), 5432)));
        assert_eq!(host_port("[::1]:6379"), Ok(("::1".into(), 6379)));
        assert!(host_port("db").is_err());
        assert!(host_port(":5432").is_err());
    }
}

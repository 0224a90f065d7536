//! `/probe?module=NAME&target=T`: runs a configured probe once, on demand, blackbox_exporter
//! style, for users who let Prometheus drive scheduling and sharding. The module is a
//! configured probe used as a template; a target replaces its address and must match the
//! config's allowlist ([`crate::allowlist`]), so the endpoint is never an open proxy, and
//! gets the module's credentials only when it is the module's own target (or the module
//! opts in). Prometheus's scrape timeout header bounds the run, and the answer holds that
//! run's metrics only.

pub(crate) mod answer;

use crate::allowlist::{self, Guard, Target};
use crate::config::ProbeConfig;
use crate::config::on_demand::OnDemandSpec;
use crate::metrics::scrape::ScrapeFormat;
use crate::probe::ProbeSpec;
use crate::runner::run_once;
use std::sync::Arc;
use std::time::Duration;

/// Why a request is refused (the HTTP status and a message safe to show).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    UnknownModule(String),
    TargetNotAllowed,
    BadTarget(String),
}

/// What one on-demand run is: the probe and the rules it runs under.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The module itself when it runs as configured, else a copy retargeted or with a
    /// shorter timeout.
    pub(crate) probe: Arc<ProbeConfig>,
    pub(crate) guard: Arc<Guard>,
}

/// The probe to run: the module, retargeted when a target is given and allowed. A target
/// that is not the module's own gets none of the module's credentials unless the module
/// sets `on_demand: { send_credentials: true }`.
pub(crate) fn plan(
    probes: &[Arc<ProbeConfig>],
    spec: &OnDemandSpec,
    module: &str,
    target: Option<&str>,
    scrape_timeout: Option<Duration>,
) -> Result<Plan, Refusal> {
    let base = probes
        .iter()
        .find(|p| p.name == module)
        .ok_or_else(|| Refusal::UnknownModule(module.to_string()))?;
    let timeout = match scrape_timeout {
        // Leave Prometheus time to read the answer: half a second, as blackbox_exporter does.
        Some(limit) => match limit.saturating_sub(Duration::from_millis(500)) {
            budget if budget.is_zero() => base.timeout,
            budget => base.timeout.min(budget),
        },
        None => base.timeout,
    };
    let guard = |trusted_origin| {
        Arc::new(Guard {
            allowed: Arc::clone(&spec.allowed_targets),
            trusted_origin,
        })
    };
    let Some(t) = target else {
        let trusted_origin = match &base.spec {
            ProbeSpec::Http(h) => url::Url::parse(&h.url).ok().map(|u| u.origin()),
            _ => None,
        };
        let probe = if timeout == base.timeout {
            Arc::clone(base)
        } else {
            Arc::new(ProbeConfig {
                timeout,
                ..ProbeConfig::clone(base)
            })
        };
        return Ok(Plan {
            probe,
            guard: guard(trusted_origin),
        });
    };
    // Match the allowlist against what will really be contacted, never the raw text:
    // `http://127.0.0.1:80@evil.example/` must not pass for `http://127.0.0.1:*`.
    let contacted = if base.spec.portless_target() {
        // A bare host (`icmp`); `host:port`, as older requests wrote it, still reads.
        allowlist::parse_host_target(t).or_else(|_| allowlist::parse_target(t))
    } else {
        allowlist::parse_target(t)
    }
    .map_err(|e| Refusal::BadTarget(e.to_string()))?;
    if !allowlist::admits(&spec.allowed_targets, &contacted) {
        return Err(Refusal::TargetNotAllowed);
    }
    // An address goes to the probe as judged (`2130706441` as `127.0.0.9`), never as text
    // a resolver might read another way.
    let address = contacted.address_text();
    let t = address.as_deref().unwrap_or(t);
    let retargeted =
        if !base.on_demand.send_credentials && !same_destination(&base.spec, &contacted) {
            base.spec.without_credentials().retarget(t)
        } else {
            base.spec.retarget(t)
        };
    let spec = retargeted.map_err(|e| Refusal::BadTarget(e.to_string()))?;
    // Built like the module: what does not depend on the target (TLS configs, regexes)
    // is the module's own, not rebuilt per request.
    let built = spec
        .build_like(&base.built)
        .map_err(|e| Refusal::BadTarget(e.to_string()))?;
    let probe = ProbeConfig {
        name: base.name.clone(),
        interval: base.interval,
        timeout,
        // Nothing of an on-demand run reads them.
        depends_on: Vec::new(),
        spec,
        built: Arc::new(built),
        on_demand: base.on_demand,
        buckets: base.buckets.clone(),
    };
    Ok(Plan {
        probe: Arc::new(probe),
        guard: guard(None),
    })
}

/// Whether `target` is where the module itself connects (its credentials belong there):
/// the same host and port (or socket directory), or for http the same origin.
fn same_destination(spec: &ProbeSpec, target: &Target) -> bool {
    let socket = |host: &str, port: u16| {
        if host.starts_with('/') {
            allowlist::parse_target(host).ok()
        } else {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let text = if bare.contains(':') {
                format!("[{bare}]:{port}")
            } else {
                format!("{bare}:{port}")
            };
            allowlist::parse_target(&text).ok()
        }
    };
    let own = match spec {
        ProbeSpec::Postgres(s) => socket(&s.host, s.port),
        ProbeSpec::Redis(s) => socket(&s.host, s.port),
        ProbeSpec::Http(s) => url::Url::parse(&s.url)
            .ok()
            .and_then(|u| allowlist::url_target(&u).ok()),
        _ => None,
    };
    match (own, target) {
        (
            Some(Target::Url {
                scheme, host, port, ..
            }),
            Target::Url {
                scheme: s,
                host: h,
                port: p,
                ..
            },
        ) => scheme == *s && host == *h && port == *p,
        (Some(own), t) => own == *t,
        (None, _) => false,
    }
}

/// Prometheus's `X-Prometheus-Scrape-Timeout-Seconds`: a positive number of seconds. Any
/// other value (NaN, negative, `1e308`, text) is ignored, and a huge one is capped at a
/// day, past any module's timeout: a header must never panic the handler.
pub(crate) fn scrape_timeout(header: &str) -> Option<Duration> {
    let secs = header.trim().parse::<f64>().ok()?;
    if secs.is_nan() || secs <= 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(secs.min(86_400.0)).ok()
}

/// Runs the probe once and answers only its metrics, in `format` ([`answer`]).
pub(crate) async fn run(plan: Plan, format: ScrapeFormat) -> String {
    let Plan { probe, guard } = plan;
    let kind = probe.spec.kind();
    // Inline in this task, so the guard's task-local reaches the probe's resolve and hops.
    let result = allowlist::guarded(guard, run_once(Arc::clone(&probe))).await;
    answer::write(&probe.name, kind, &result, format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrape_timeouts_are_parsed_with_bounds() {
        assert_eq!(scrape_timeout("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(scrape_timeout(" 10 "), Some(Duration::from_secs(10)));
        let day = Some(Duration::from_secs(86_400));
        for big in ["1e308", "1e20", "18446744073709551616", "inf", "+Infinity"] {
            assert_eq!(scrape_timeout(big), day, "{big}");
        }
        for bad in ["NaN", "-1", "0", "-inf", "", "ten", "1e-400"] {
            assert_eq!(scrape_timeout(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn no_scrape_timeout_header_panics(s in "\\PC{0,30}", f in proptest::num::f64::ANY) {
            let _ = scrape_timeout(&s);
            let _ = scrape_timeout(&f.to_string());
        }
    }
}

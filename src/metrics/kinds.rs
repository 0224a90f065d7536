//! The families of each kind's observations, one module per kind behind [`KindMetrics`]:
//! metrics.rs records what every run has (success, duration, phases, reasons) and hands
//! each run to these, so it knows no kind's observation. A kind that reports something of
//! its own adds its module here, one field of [`KindFamilies`] and one entry of `all`.

use super::gcp::GcpMetrics;
use super::golden::GoldenMetrics;
use super::http::HttpMetrics;
use super::logs::LogMetrics;
use super::pg_connections::PgConnectionMetrics;
use super::startup::StartupMetrics;
use super::{FloatGauge, NameLabels};
use crate::config::ProbeConfig;
use crate::probe::{Kind, KindGauge, RunResult};
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::{Registry, Unit};

/// The metric families of one kind's observations.
pub trait KindMetrics: std::fmt::Debug + Send + Sync {
    /// Registers the kind's families (into the `pathwatch`-prefixed registry).
    fn register(&self, r: &mut Registry);
    /// A probe's series before its first run, so `rate()` and dashboards see zeros.
    fn init_probe(&self, p: &ProbeConfig);
    /// One finished run of `probe`, of any kind: each ignores what is not its own.
    fn record(&self, probe: &str, kind: Kind, run: &RunResult);
    /// Removes every series of a probe that left the config (or changed kind).
    fn forget_probe(&self, p: &ProbeConfig);
    /// Appends the kind's self-encoded histograms (metrics/histograms.rs), if it has any.
    fn encode_histograms(&self, _out: &mut String) {}
}

/// Every kind's families.
#[derive(Debug)]
pub struct KindFamilies {
    /// `pathwatch_http_status_code` (http, startup).
    pub http: HttpMetrics,
    /// `pathwatch_golden_path_*`.
    pub golden: GoldenMetrics,
    /// `pathwatch_startup_*`.
    pub startup: StartupMetrics,
    /// `pathwatch_gcp_*`.
    pub gcp: GcpMetrics,
    /// `pathwatch_log_*`.
    pub logs: LogMetrics,
    /// `pathwatch_db_connections*` (postgres with `connections: true`).
    pub pg_connections: PgConnectionMetrics,
    /// The gauges kinds declare (`ProbeKind::GAUGES`), e.g. `pathwatch_tls_cert_expiry_*`.
    pub declared: DeclaredGauges,
}

impl KindFamilies {
    pub fn new() -> Self {
        KindFamilies {
            http: HttpMetrics::default(),
            golden: GoldenMetrics::new(),
            startup: StartupMetrics::default(),
            gcp: GcpMetrics::default(),
            logs: LogMetrics::default(),
            pg_connections: PgConnectionMetrics::default(),
            declared: DeclaredGauges::new(),
        }
    }

    /// Each kind's families, in the order they are registered and encoded.
    pub fn all(&self) -> [&dyn KindMetrics; 7] {
        [
            &self.http,
            &self.golden,
            &self.startup,
            &self.gcp,
            &self.logs,
            &self.pg_connections,
            &self.declared,
        ]
    }
}

impl Default for KindFamilies {
    fn default() -> Self {
        Self::new()
    }
}

/// One family per gauge a kind declares ([`crate::probe::ProbeKind::GAUGES`]): a kind that
/// reports plain numbers gets its metrics from its own module, without one here.
#[derive(Debug)]
pub struct DeclaredGauges {
    families: Vec<(Kind, &'static KindGauge, Family<NameLabels, FloatGauge>)>,
}

impl DeclaredGauges {
    pub fn new() -> Self {
        let families = Kind::ALL
            .iter()
            .flat_map(|k| k.gauges().iter().map(|g| (*k, g, Family::default())))
            .collect();
        DeclaredGauges { families }
    }

    fn of(
        &self,
        kind: Kind,
    ) -> impl Iterator<Item = &(Kind, &'static KindGauge, Family<NameLabels, FloatGauge>)> {
        self.families.iter().filter(move |(k, _, _)| *k == kind)
    }
}

fn register_each<'a>(
    families: impl Iterator<Item = &'a (Kind, &'static KindGauge, Family<NameLabels, FloatGauge>)>,
    r: &mut Registry,
) {
    for (_, g, family) in families {
        match g.unit {
            Some("seconds") => r.register_with_unit(g.name, g.help, Unit::Seconds, family.clone()),
            Some("bytes") => r.register_with_unit(g.name, g.help, Unit::Bytes, family.clone()),
            Some(u) => r.register_with_unit(g.name, g.help, Unit::Other(u.into()), family.clone()),
            None => r.register(g.name, g.help, family.clone()),
        }
    }
}

impl KindMetrics for DeclaredGauges {
    fn register(&self, r: &mut Registry) {
        register_each(self.families.iter(), r);
    }

    /// Absent until a run reports a value.
    fn init_probe(&self, _p: &ProbeConfig) {}

    /// The last run's values; a gauge the run did not report (it failed first) is removed,
    /// not left at an older run's value.
    fn record(&self, probe: &str, kind: Kind, run: &RunResult) {
        let name = NameLabels {
            probe: probe.to_string(),
        };
        for (_, g, family) in self.of(kind) {
            match run.observations.gauge(g.name) {
                Some(v) => {
                    family.get_or_create(&name).set(v);
                }
                None => {
                    family.remove(&name);
                }
            }
        }
    }

    fn forget_probe(&self, p: &ProbeConfig) {
        let name = NameLabels {
            probe: p.name.clone(),
        };
        for (_, _, family) in self.of(p.spec.kind()) {
            family.remove(&name);
        }
    }
}

impl Default for DeclaredGauges {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
#[path = "kinds_tests.rs"]
mod tests;

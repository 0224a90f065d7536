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
use crate::config::ProbeConfig;
use crate::probe::{Kind, RunResult};
use prometheus_client::registry::Registry;

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
        }
    }

    /// Each kind's families, in the order they are registered and encoded.
    pub fn all(&self) -> [&dyn KindMetrics; 6] {
        [
            &self.http,
            &self.golden,
            &self.startup,
            &self.gcp,
            &self.logs,
            &self.pg_connections,
        ]
    }
}

impl Default for KindFamilies {
    fn default() -> Self {
        Self::new()
    }
}

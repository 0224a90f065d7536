//! The trait behind which each kind's families sit ([`KindMetrics`]): a leaf, so the
//! per-kind modules (http.rs, golden.rs, gcp.rs, pg_connections.rs) and kinds.rs, which
//! lists them, do not import each other.

use crate::config::ProbeConfig;
use crate::probe::{Kind, RunResult};
use prometheus_client::registry::Registry;

/// The metric families of one kind's observations.
pub(crate) trait KindMetrics: std::fmt::Debug + Send + Sync {
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

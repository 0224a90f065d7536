//! `pathwatch_http_status_code` of the http and startup probes: the last response's status
//! (0 when none arrived).

use super::NameLabels;
use super::kind_metrics::KindMetrics;
use crate::config::ProbeConfig;
use crate::probe::{Kind, RunResult};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Default)]
pub(crate) struct HttpMetrics {
    pub(crate) status: Family<NameLabels, Gauge>,
}

impl KindMetrics for HttpMetrics {
    fn register(&self, r: &mut Registry) {
        r.register(
            "http_status_code",
            "Status code of the last HTTP response (0 when none arrived)",
            self.status.clone(),
        );
    }

    fn init_probe(&self, _p: &ProbeConfig) {}

    fn record(&self, probe: &str, kind: Kind, run: &RunResult) {
        if matches!(kind, Kind::Http | Kind::Startup) {
            self.status
                .get_or_create(&NameLabels {
                    probe: probe.to_string(),
                })
                .set(i64::from(run.observations.http_status().unwrap_or(0)));
        }
    }

    fn forget_probe(&self, p: &ProbeConfig) {
        self.status.remove(&NameLabels {
            probe: p.name.clone(),
        });
    }
}

//! `pathwatch_startup_*` of the startup probe: the last measured time from a start to the
//! first healthy answer, whether a start is in progress, and unhealthy answers meanwhile.

use super::kinds::KindMetrics;
use super::{FloatGauge, NameLabels};
use crate::config::ProbeConfig;
use crate::probe::{Kind, RunResult};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

#[derive(Debug, Default)]
pub struct StartupMetrics {
    pub seconds: Family<NameLabels, FloatGauge>,
    pub in_progress: Family<NameLabels, Gauge>,
    pub unhealthy: Family<NameLabels, Counter>,
}

impl KindMetrics for StartupMetrics {
    fn register(&self, r: &mut Registry) {
        r.register_with_unit(
            "startup",
            "Last measured time from a start of the service to its first healthy answer",
            Unit::Seconds,
            self.seconds.clone(),
        );
        r.register(
            "startup_in_progress",
            "1 while the service is starting (polled fast), else 0",
            self.in_progress.clone(),
        );
        r.register(
            "startup_unhealthy_answers",
            "Unhealthy answers (e.g. 503) received while the service was starting",
            self.unhealthy.clone(),
        );
    }

    fn init_probe(&self, p: &ProbeConfig) {
        if p.spec.kind() == Kind::Startup {
            let name = NameLabels {
                probe: p.name.clone(),
            };
            let _ = self.unhealthy.get_or_create(&name);
            self.in_progress.get_or_create(&name).set(1);
        }
    }

    fn record(&self, probe: &str, _kind: Kind, run: &RunResult) {
        if let Some(obs) = run.observations.startup() {
            let name = NameLabels {
                probe: probe.to_string(),
            };
            if let Some(secs) = obs.seconds {
                self.seconds.get_or_create(&name).set(secs);
            }
            self.in_progress
                .get_or_create(&name)
                .set(i64::from(obs.in_progress));
            self.unhealthy
                .get_or_create(&name)
                .inc_by(obs.unhealthy_answers);
        }
    }

    fn forget_probe(&self, p: &ProbeConfig) {
        let name = NameLabels {
            probe: p.name.clone(),
        };
        self.seconds.remove(&name);
        self.in_progress.remove(&name);
        self.unhealthy.remove(&name);
    }
}

//! The `pathwatch_gcp_*` families: a resource's state as a one-hot gauge over its kind's
//! closed enum, a VPC connector's scaling bounds, each configured expectation met or not, and
//! a Cloud SQL instance's database version. Label values are enum values from a closed list,
//! configured names, or API enum values checked to be one (never a URL, token or env value).

use super::FloatGauge;
use super::kind_metrics::KindMetrics;
use crate::config::ProbeConfig;
use crate::probe::gcp::{GcpObs, UNRECOGNIZED, states};
use crate::probe::{Kind, RunResult};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashMap;
use std::sync::Mutex;

crate::probe::label_enum!(
    /// The `bound` label of the connector's scaling gauges.
    pub(crate) Bound {
        Min => "min",
        Max => "max",
    }
);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StateLabels {
    pub(crate) probe: String,
    /// One of the kind's states or `UNRECOGNIZED`: a `&'static str` from a closed list.
    pub(crate) state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct BoundLabels {
    pub(crate) probe: String,
    pub(crate) bound: Bound,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ExpectationLabels {
    pub(crate) probe: String,
    /// `vpc_connector`, `egress`, `env:NAME`, `cloudsql_instances`, `connection_name`:
    /// bounded by the config.
    pub(crate) expectation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct VersionLabels {
    pub(crate) probe: String,
    /// An API enum value such as `POSTGRES_15` (anything else is `UNRECOGNIZED`).
    pub(crate) database_version: String,
}

#[derive(Debug, Default)]
pub(crate) struct GcpMetrics {
    pub(crate) resource_state: Family<StateLabels, Gauge>,
    pub(crate) connector_instances: Family<BoundLabels, FloatGauge>,
    pub(crate) connector_throughput: Family<BoundLabels, FloatGauge>,
    pub(crate) expectation_met: Family<ExpectationLabels, Gauge>,
    pub(crate) cloudsql_info: Family<VersionLabels, Gauge>,
    /// The database version exported per probe, so an upgrade drops the old series.
    versions: Mutex<HashMap<String, String>>,
    /// Expectation names set per probe, so a removed probe's series can be forgotten.
    expectations: Mutex<HashMap<String, Vec<String>>>,
}

impl GcpMetrics {
    fn register_families(&self, r: &mut Registry) {
        r.register(
            "gcp_resource_state",
            "The GCP resource's state as the API reports it: 1 on the current state, 0 on the kind's others (all 0 when the last run learned no state)",
            self.resource_state.clone(),
        );
        r.register(
            "gcp_vpc_connector_instances",
            "The VPC connector's minimum and maximum instances, as last reported",
            self.connector_instances.clone(),
        );
        r.register_with_unit(
            "gcp_vpc_connector_throughput",
            "The VPC connector's minimum and maximum throughput, as last reported",
            Unit::Other("mbps".into()),
            self.connector_throughput.clone(),
        );
        r.register(
            "gcp_expectation_met",
            "Whether each configured expectation on the GCP resource holds (absent: the resource could not be read)",
            self.expectation_met.clone(),
        );
        r.register(
            "gcp_cloudsql_info",
            "The Cloud SQL instance's database version (always 1)",
            self.cloudsql_info.clone(),
        );
    }

    /// Every state of the kind at 0 before the first run.
    fn init(&self, probe: &str, kind: Kind) {
        self.set_state(probe, kind, None);
    }

    /// Records what a GCP run learned (`obs` is `None` when it learned nothing).
    fn record_obs(&self, probe: &str, kind: Kind, obs: Option<&GcpObs>) {
        if states(kind).is_none() {
            return;
        }
        self.set_state(probe, kind, obs.and_then(|o| o.state));
        let Some(obs) = obs else { return };
        {
            let mut seen = self.expectations.lock().unwrap_or_else(|p| p.into_inner());
            let names = seen.entry(probe.to_string()).or_default();
            for (name, _) in &obs.expectations {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        for (name, met) in &obs.expectations {
            let labels = ExpectationLabels {
                probe: probe.to_string(),
                expectation: name.clone(),
            };
            match met {
                Some(met) => {
                    self.expectation_met
                        .get_or_create(&labels)
                        .set(i64::from(*met));
                }
                None => {
                    self.expectation_met.remove(&labels);
                }
            }
        }
        if let Some(size) = obs.connector {
            let pairs = [
                (&self.connector_instances, Bound::Min, size.min_instances),
                (&self.connector_instances, Bound::Max, size.max_instances),
                (&self.connector_throughput, Bound::Min, size.min_throughput),
                (&self.connector_throughput, Bound::Max, size.max_throughput),
            ];
            for (family, bound, value) in pairs {
                let labels = BoundLabels {
                    probe: probe.to_string(),
                    bound,
                };
                match value {
                    Some(v) => {
                        family.get_or_create(&labels).set(v);
                    }
                    None => {
                        family.remove(&labels);
                    }
                }
            }
        }
        if let Some(version) = &obs.database_version {
            let mut versions = self.versions.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(old) = versions.insert(probe.to_string(), version.clone())
                && &old != version
            {
                self.cloudsql_info.remove(&VersionLabels {
                    probe: probe.to_string(),
                    database_version: old,
                });
            }
            self.cloudsql_info
                .get_or_create(&VersionLabels {
                    probe: probe.to_string(),
                    database_version: version.clone(),
                })
                .set(1);
        }
    }

    /// Removes every series of a probe that left the config.
    fn forget(&self, probe: &str, kind: Kind) {
        for s in states(kind)
            .unwrap_or(&[])
            .iter()
            .copied()
            .chain([UNRECOGNIZED])
        {
            self.resource_state.remove(&StateLabels {
                probe: probe.to_string(),
                state: s,
            });
        }
        for bound in [Bound::Min, Bound::Max] {
            let labels = BoundLabels {
                probe: probe.to_string(),
                bound,
            };
            self.connector_instances.remove(&labels);
            self.connector_throughput.remove(&labels);
        }
        let names = self
            .expectations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(probe)
            .unwrap_or_default();
        for expectation in names {
            self.expectation_met.remove(&ExpectationLabels {
                probe: probe.to_string(),
                expectation,
            });
        }
        let version = self
            .versions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(probe);
        if let Some(database_version) = version {
            self.cloudsql_info.remove(&VersionLabels {
                probe: probe.to_string(),
                database_version,
            });
        }
    }

    /// One-hot over the kind's states plus UNRECOGNIZED; all 0 when `state` is unknown.
    fn set_state(&self, probe: &str, kind: Kind, state: Option<&'static str>) {
        let Some(all) = states(kind) else { return };
        for s in all.iter().copied().chain([UNRECOGNIZED]) {
            self.resource_state
                .get_or_create(&StateLabels {
                    probe: probe.to_string(),
                    state: s,
                })
                .set(i64::from(state == Some(s)));
        }
    }
}

impl KindMetrics for GcpMetrics {
    fn register(&self, r: &mut Registry) {
        self.register_families(r);
    }

    fn init_probe(&self, p: &ProbeConfig) {
        self.init(&p.name, p.spec.kind());
    }

    fn record(&self, probe: &str, kind: Kind, run: &RunResult) {
        self.record_obs(probe, kind, run.observations.gcp());
    }

    fn forget_probe(&self, p: &ProbeConfig) {
        self.forget(&p.name, p.spec.kind());
    }
}

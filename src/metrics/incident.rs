//! `pathwatch_incident_*`: each incident's status, its changes, and each criterion's state,
//! value and bound; `incident_probe` names the probes its criteria judge.

use super::FloatGauge;
use crate::incident::{Evaluation, IncidentSpec, Tracked};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct IncidentLabels {
    pub(crate) incident: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CriterionLabels {
    pub(crate) incident: String,
    pub(crate) criterion: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct IncidentProbeLabels {
    pub(crate) incident: String,
    pub(crate) probe: String,
}

/// The `pathwatch_incident_*` families: each incident's status, its criteria and the time of
/// its last change.
#[derive(Debug, Default)]
pub struct IncidentMetrics {
    pub(crate) status: Family<IncidentLabels, Gauge>,
    pub(crate) changes: Family<IncidentLabels, Counter>,
    pub(crate) last_change: Family<IncidentLabels, FloatGauge>,
    pub(crate) criterion_met: Family<CriterionLabels, Gauge>,
    /// 1 for each probe an incident's criteria judge: the incident alert carries the probe,
    /// so Alertmanager can inhibit that probe's symptom alerts while the incident fires.
    pub(crate) probe: Family<IncidentProbeLabels, Gauge>,
    pub(crate) criterion_value: Family<CriterionLabels, FloatGauge>,
    pub(crate) criterion_threshold: Family<CriterionLabels, FloatGauge>,
}

impl IncidentMetrics {
    pub(crate) fn register(&self, r: &mut Registry) {
        r.register(
            "incident_status",
            "Incident status: 0 resolved, 1 present, 2 unknown (no or stale data)",
            self.status.clone(),
        );
        r.register(
            "incident_status_changes",
            "Incident status transitions (alert on change)",
            self.changes.clone(),
        );
        r.register_with_unit(
            "incident_last_change_timestamp",
            "Unix time of the incident's last status change",
            Unit::Seconds,
            self.last_change.clone(),
        );
        r.register(
            "incident_criterion_met",
            "Whether each resolution criterion holds on the latest result (absent: no data)",
            self.criterion_met.clone(),
        );
        r.register(
            "incident_probe",
            "1 for each probe the incident's criteria judge",
            self.probe.clone(),
        );
        r.register(
            "incident_criterion_value",
            "The criterion's current value (seconds, events delivered, or 0/1)",
            self.criterion_value.clone(),
        );
        r.register(
            "incident_criterion_threshold",
            "The criterion's bound (max_seconds, or the freshness bound in seconds)",
            self.criterion_threshold.clone(),
        );
    }

    /// Removes an incident's series (it left the config on reload).
    pub(crate) fn forget(&self, spec: &IncidentSpec) {
        let labels = IncidentLabels {
            incident: spec.id.clone(),
        };
        self.status.remove(&labels);
        self.changes.remove(&labels);
        self.last_change.remove(&labels);
        for c in &spec.criteria {
            let cl = CriterionLabels {
                incident: spec.id.clone(),
                criterion: c.name.clone(),
            };
            self.criterion_met.remove(&cl);
            self.criterion_value.remove(&cl);
            self.criterion_threshold.remove(&cl);
            self.probe.remove(&IncidentProbeLabels {
                incident: spec.id.clone(),
                probe: c.probe.clone(),
            });
        }
    }

    /// Creates an incident's series before its first evaluation: status unknown.
    pub fn init(&self, spec: &IncidentSpec) {
        let labels = IncidentLabels {
            incident: spec.id.clone(),
        };
        self.status.get_or_create(&labels).set(2);
        let _ = self.changes.get_or_create(&labels);
        for c in &spec.criteria {
            self.probe
                .get_or_create(&IncidentProbeLabels {
                    incident: spec.id.clone(),
                    probe: c.probe.clone(),
                })
                .set(1);
            if let Some(bound) = c.max_seconds {
                self.criterion_threshold
                    .get_or_create(&CriterionLabels {
                        incident: spec.id.clone(),
                        criterion: c.name.clone(),
                    })
                    .set(bound);
            }
        }
    }

    /// Writes one evaluation of `spec`: its status, each criterion's verdict and value, and
    /// when the status last changed (from `tracked`).
    pub fn record(&self, spec: &IncidentSpec, eval: &Evaluation, tracked: &Tracked) {
        let labels = IncidentLabels {
            incident: spec.id.clone(),
        };
        self.status.get_or_create(&labels).set(eval.status.value());
        let changes = self.changes.get_or_create(&labels);
        // The counter follows the tracked count (it only grows).
        let seen = changes.get();
        if tracked.changes > seen {
            changes.inc_by(tracked.changes - seen);
        }
        drop(changes);
        if tracked.changes > 0 {
            self.last_change
                .get_or_create(&labels)
                .set(tracked.last_change_unix);
        }
        for c in &eval.criteria {
            let cl = CriterionLabels {
                incident: spec.id.clone(),
                criterion: c.name.clone(),
            };
            match c.met {
                Some(met) => {
                    self.criterion_met.get_or_create(&cl).set(i64::from(met));
                }
                None => {
                    self.criterion_met.remove(&cl);
                }
            }
            match c.value {
                Some(v) => {
                    self.criterion_value.get_or_create(&cl).set(v);
                }
                None => {
                    self.criterion_value.remove(&cl);
                }
            }
            if let Some(t) = c.threshold {
                self.criterion_threshold.get_or_create(&cl).set(t);
            }
        }
    }
}

//! The root-cause families (incident::rootcause): which failing probe is a root cause, and
//! what each other failure follows from. Only probes in a dependency graph (a `depends_on` of
//! their own, or named in one) have these series; `cause` is a configured probe name.

use super::NameLabels;
use crate::incident::rootcause::Judgement;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::BTreeSet;
use std::sync::Mutex;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CauseLabels {
    pub(crate) probe: String,
    /// The probe whose failure this one follows from: bounded by the config.
    pub(crate) cause: String,
}

/// `pathwatch_root_cause` and `pathwatch_blocked_by`: the failing probes that are root
/// causes (over `depends_on`) and what each other failure follows from.
#[derive(Debug, Default)]
pub struct RootCauseMetrics {
    pub(crate) root_cause: Family<NameLabels, Gauge>,
    pub(crate) blocked_by: Family<CauseLabels, Gauge>,
    /// The (probe, cause) pairs exported now, to remove the ones a new judgement drops.
    exported: Mutex<BTreeSet<(String, String)>>,
}

impl RootCauseMetrics {
    pub(crate) fn register(&self, r: &mut Registry) {
        r.register(
            "probe_root_cause",
            "1 when this probe fails and no probe it depends on (depends_on, transitively) fails: its failure is a root cause; 0 otherwise",
            self.root_cause.clone(),
        );
        r.register(
            "probe_blocked_by",
            "1 for each root cause this failing probe's failure follows from (cause is a probe name); absent when it does not fail or is a root cause itself",
            self.blocked_by.clone(),
        );
    }

    /// Exports a judgement over the probes of the graph (`members`): every member has its
    /// root_cause series (0 or 1), and blocked_by holds exactly the judgement's pairs.
    pub fn set(&self, members: &[String], j: &Judgement) {
        for p in members {
            let labels = NameLabels { probe: p.clone() };
            self.root_cause
                .get_or_create(&labels)
                .set(i64::from(j.is_root(p)));
        }
        let now: BTreeSet<(String, String)> = j
            .blocked_by
            .iter()
            .flat_map(|(p, causes)| causes.iter().map(move |c| (p.clone(), c.clone())))
            .collect();
        let mut exported = self.exported.lock().unwrap_or_else(|p| p.into_inner());
        for (probe, cause) in exported.difference(&now) {
            self.blocked_by.remove(&CauseLabels {
                probe: probe.clone(),
                cause: cause.clone(),
            });
        }
        for (probe, cause) in &now {
            self.blocked_by
                .get_or_create(&CauseLabels {
                    probe: probe.clone(),
                    cause: cause.clone(),
                })
                .set(1);
        }
        *exported = now;
    }

    /// Drops every series (a reload sets them anew for the new graph).
    pub(crate) fn clear(&self) {
        self.root_cause.clear();
        self.blocked_by.clear();
        self.exported
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

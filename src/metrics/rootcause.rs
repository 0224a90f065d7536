//! The root-cause families (incident::rootcause): which failing probe is a root cause, and
//! what each other failure follows from. Only probes in a dependency graph (a `depends_on` of
//! their own, or named in one) have these series; `cause` is a configured probe name.

use super::NameLabels;
use crate::incident::rootcause::Judgement;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
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
    /// Probe -> the causes of its blocked_by series exported now, to remove the ones a new
    /// judgement drops.
    exported: Mutex<BTreeMap<String, Vec<String>>>,
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

    /// Exports a judgement over some probes of the graph (`members`: a part of it, or all of
    /// it): every member has its root_cause series (0 or 1), and its blocked_by series are
    /// exactly the judgement's pairs for it. Series of other probes are left as they are.
    pub fn set(&self, members: &[String], j: &Judgement) {
        let mut exported = self
            .exported
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for p in members {
            let labels = NameLabels { probe: p.clone() };
            self.root_cause
                .get_or_create(&labels)
                .set(i64::from(j.is_root(p)));
            let now: &[String] = j.blocked_by.get(p).map_or(&[], Vec::as_slice);
            let before = exported.remove(p).unwrap_or_default();
            for cause in before.iter().filter(|c| !now.contains(c)) {
                self.blocked_by.remove(&CauseLabels {
                    probe: p.clone(),
                    cause: cause.clone(),
                });
            }
            for cause in now {
                self.blocked_by
                    .get_or_create(&CauseLabels {
                        probe: p.clone(),
                        cause: cause.clone(),
                    })
                    .set(1);
            }
            if !now.is_empty() {
                exported.insert(p.clone(), now.to_vec());
            }
        }
    }

    /// Drops every series (a reload sets them anew for the new graph).
    pub(crate) fn clear(&self) {
        self.root_cause.clear();
        self.blocked_by.clear();
        self.exported
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

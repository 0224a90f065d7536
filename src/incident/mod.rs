//! Incidents: resolution criteria from the config, evaluated against the probes' latest
//! results into a status (resolved, present, unknown) with hysteresis, announced on change
//! by a log line and an optional webhook.

pub mod engine;
pub(crate) mod notify;
pub mod rootcause;
pub(crate) mod spec;

pub(crate) use engine::{CriterionResult, Evaluation, Status, evaluate};
pub(crate) use spec::{CriterionSpec, IncidentSpec};

/// Status changes kept per incident for its timeline: a week of changes every half hour
/// (the test plan's re-check) is 336; flapping beyond that only drops the oldest.
pub(crate) const TIMELINE: usize = 400;

/// What the exporter remembers of an incident between evaluations.
#[derive(Clone, Debug)]
pub struct Tracked {
    pub(crate) status: Status,
    /// When the status last changed (Unix seconds; 0 before the first change).
    pub last_change_unix: f64,
    /// How many times the status has changed since pathwatch started.
    pub changes: u64,
    pub(crate) evaluation: Option<Evaluation>,
    /// The status changes since pathwatch started, oldest first, at most [`TIMELINE`].
    pub(crate) timeline: std::collections::VecDeque<StatusChange>,
    /// Each criterion's verdict at the last change: the next change names what moved since.
    verdicts_at_change: Vec<(String, Option<bool>)>,
}

impl Default for Tracked {
    fn default() -> Self {
        Tracked {
            status: Status::Unknown,
            last_change_unix: 0.0,
            changes: 0,
            evaluation: None,
            timeline: std::collections::VecDeque::new(),
            verdicts_at_change: Vec::new(),
        }
    }
}

/// One status change, for the postmortem: when, from what to what, and the criteria whose
/// verdict differs from the previous change's, with their values then.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub(crate) struct StatusChange {
    pub(crate) at_unix: f64,
    pub(crate) from: Status,
    pub(crate) to: Status,
    /// `(criterion, met, value as shown)`; every criterion at the first change.
    pub(crate) criteria: Vec<(String, Option<bool>, String)>,
}

impl Tracked {
    /// Records a change to `eval.status` at `now`, naming the criteria whose verdict moved
    /// since the last recorded change (with hysteresis, a criterion fails some results
    /// before the status follows).
    pub(crate) fn record_change(&mut self, eval: &Evaluation, now: f64) {
        let criteria = eval
            .criteria
            .iter()
            .filter(|c| {
                self.verdicts_at_change
                    .iter()
                    .find(|(name, _)| *name == c.name)
                    .is_none_or(|(_, met)| *met != c.met)
            })
            .map(|c| (c.name.clone(), c.met, c.display.clone()))
            .collect();
        self.verdicts_at_change = eval
            .criteria
            .iter()
            .map(|c| (c.name.clone(), c.met))
            .collect();
        if self.timeline.len() == TIMELINE {
            self.timeline.pop_front();
        }
        self.timeline.push_back(StatusChange {
            at_unix: now,
            from: self.status,
            to: eval.status,
            criteria,
        });
        self.status = eval.status;
        self.changes += 1;
        self.last_change_unix = now;
    }
}

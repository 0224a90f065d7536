//! Incidents: resolution criteria from the config, evaluated against the probes' latest
//! results into a status (resolved, present, unknown) with hysteresis, announced on change
//! by a log line and an optional webhook.

pub mod engine;
pub mod notify;
pub mod rootcause;
pub mod spec;

pub use engine::{CriterionResult, Evaluation, Status, evaluate};
pub use spec::{CriterionSpec, IncidentSpec};

/// What the exporter remembers of an incident between evaluations.
#[derive(Clone, Debug)]
pub struct Tracked {
    pub status: Status,
    pub last_change_unix: f64,
    pub changes: u64,
    pub evaluation: Option<Evaluation>,
}

impl Default for Tracked {
    fn default() -> Self {
        Tracked {
            status: Status::Unknown,
            last_change_unix: 0.0,
            changes: 0,
            evaluation: None,
        }
    }
}

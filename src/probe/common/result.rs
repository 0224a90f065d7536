//! One finished run of one probe, as the runner hands it on: to the state (history,
//! incidents, root causes), the metrics and the status page. A value type: it names the probe
//! types it carries and nothing above them.

use crate::probe::common::observation::Observations;
use crate::probe::{Outcome, Phase, PhaseTimings, ProbeError, Reason};
use std::time::Duration;

/// One finished run of one probe.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// When the run ended (Unix seconds, fractional).
    pub finished_unix_seconds: f64,
    /// Measured by the runner around the whole probe; at least the timeout when cut short.
    pub duration: Duration,
    /// Trace completed, in order.
    pub phases: PhaseTimings,
    /// The phase a failed run stopped in.
    pub failed_phase: Option<Phase>,
    /// What the run saw besides its outcome (HTTP status, events, state, ...).
    pub observations: Observations,
    /// The probe's request to run again sooner than its interval.
    pub next_run: Option<Duration>,
    /// The run's trace id when traces are exported (the histograms' exemplar).
    pub trace_id: Option<String>,
    /// How late the run started against its scheduled slot; `None` for on-demand runs.
    pub lateness: Option<Duration>,
    /// The run's outcome: its facts when it passed, the bounded reason and a redacted detail
    /// when it failed.
    pub outcome: Result<Outcome, ProbeError>,
}

impl RunResult {
    pub(crate) fn ok(&self) -> bool {
        self.outcome.is_ok()
    }

    pub(crate) fn reason(&self) -> Reason {
        match &self.outcome {
            Ok(_) => Reason::Ok,
            Err(e) => e.reason,
        }
    }

    /// What a root-cause line says of this run: the resource state it reported (`is ERROR`),
    /// else its reason (`refused`).
    /// The run's seconds less the optional read of a Postgres server's connections, which
    /// follows the session it measures (`pathwatch_db_connect_seconds`, `max_seconds`).
    pub(crate) fn session_seconds(&self) -> f64 {
        let read: f64 = self
            .phases
            .iter()
            .filter(|(p, _)| *p == crate::probe::Phase::Connections)
            .map(|(_, d)| d.as_secs_f64())
            .sum();
        self.duration.as_secs_f64() - read
    }

    /// The value of a fact the run's success reported (e.g. `connections`).
    pub fn fact(&self, key: &str) -> Option<&str> {
        let facts = &self.outcome.as_ref().ok()?.facts;
        facts
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn brief(&self) -> String {
        match self.observations.state() {
            Some(state) => format!("is {state}"),
            None => self.reason().to_string(),
        }
    }
}

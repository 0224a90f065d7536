//! One finished run of one probe, as the runner hands it on: to the state (history,
//! incidents, root causes), the metrics and the status page. A value type: it names the probe
//! types it carries and nothing above them.

use super::gcp::GcpObs;
use super::golden::GoldenObs;
use super::logs::LogsObs;
use super::startup::StartupObs;
use super::{Outcome, Phase, PhaseTimings, ProbeError, Reason};
use std::time::Duration;

/// One finished run of one probe.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub finished_unix_seconds: f64,
    /// Measured by the runner around the whole probe; at least the timeout when cut short.
    pub duration: Duration,
    /// Trace completed, in order.
    pub phases: PhaseTimings,
    /// The phase a failed run stopped in.
    pub failed_phase: Option<Phase>,
    /// The last HTTP status seen (http probes).
    pub http_status: Option<u16>,
    /// Events seen by a golden path.
    pub golden: Option<GoldenObs>,
    /// What a startup probe saw.
    pub startup: Option<StartupObs>,
    /// The probe's request to run again sooner than its interval.
    pub next_run: Option<Duration>,
    /// A resource state the probe reported (READY, RUNNABLE, ...).
    pub state: Option<String>,
    /// The run's trace id when traces are exported (the histograms' exemplar).
    pub trace_id: Option<String>,
    /// What a GCP probe learned (state, expectations, sizes).
    pub gcp: Option<GcpObs>,
    /// A logs probe's match totals.
    pub logs: Option<LogsObs>,
    /// How late the run started against its scheduled slot; `None` for on-demand runs.
    pub lateness: Option<Duration>,
    pub outcome: Result<Outcome, ProbeError>,
}

impl RunResult {
    pub fn ok(&self) -> bool {
        self.outcome.is_ok()
    }

    pub fn reason(&self) -> Reason {
        match &self.outcome {
            Ok(_) => Reason::Ok,
            Err(e) => e.reason,
        }
    }

    /// What a root-cause line says of this run: the resource state it reported (`is ERROR`),
    /// else its reason (`refused`).
    pub fn brief(&self) -> String {
        match &self.state {
            Some(state) => format!("is {state}"),
            None => self.reason().to_string(),
        }
    }
}

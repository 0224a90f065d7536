//! The latest result of every probe: written by the runner, read by scrapes and pages.

use crate::config::ProbeConfig;
use crate::metrics::Metrics;
use crate::probe::Kind;
use crate::runner::RunResult;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// What the exporter knows now.
#[derive(Debug)]
pub struct State {
    pub metrics: Metrics,
    latest: RwLock<HashMap<String, Latest>>,
}

/// A probe's last run, with what the status page needs to describe it.
#[derive(Clone, Debug)]
pub struct Latest {
    pub kind: Kind,
    pub run: Arc<RunResult>,
}

impl State {
    pub fn new(metrics: Metrics) -> Self {
        State {
            metrics,
            latest: RwLock::new(HashMap::new()),
        }
    }

    /// Stores a run, updates its metrics, and logs when a probe's result changes.
    pub fn record(&self, probe: &ProbeConfig, run: RunResult) {
        let kind = probe.spec.kind();
        self.metrics
            .record(&probe.name, kind, probe.spec.db_transport(), &run);
        let run = Arc::new(run);
        let previous = {
            let mut latest = self.latest.write().unwrap_or_else(|p| p.into_inner());
            latest.insert(
                probe.name.clone(),
                Latest {
                    kind,
                    run: run.clone(),
                },
            )
        };
        log_run(probe, &run, previous.as_ref().map(|p| p.run.reason()));
    }

    /// The latest results, sorted by probe name.
    pub fn snapshot(&self) -> Vec<(String, Latest)> {
        let latest = self.latest.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = latest.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// A changed result (first run, success <-> failure, another reason) is news: info or warn.
/// A repeat of the same result is only debug, so a steady state does not flood the logs.
fn log_run(probe: &ProbeConfig, run: &RunResult, previous: Option<crate::probe::Reason>) {
    let changed = previous != Some(run.reason());
    let secs = run.duration.as_secs_f64();
    match (&run.outcome, changed) {
        (Ok(_), true) => tracing::info!(
            probe = %probe.name, kind = %probe.spec.kind(), duration_seconds = secs,
            "probe succeeded"
        ),
        (Ok(_), false) => tracing::debug!(
            probe = %probe.name, kind = %probe.spec.kind(), duration_seconds = secs,
            "probe succeeded"
        ),
        (Err(e), true) => tracing::warn!(
            probe = %probe.name, kind = %probe.spec.kind(), reason = %e.reason,
            phase = run.failed_phase.map(|p| p.as_str()).unwrap_or("-"),
            duration_seconds = secs, detail = %e.detail,
            "probe failed"
        ),
        (Err(e), false) => tracing::debug!(
            probe = %probe.name, kind = %probe.spec.kind(), reason = %e.reason,
            phase = run.failed_phase.map(|p| p.as_str()).unwrap_or("-"),
            duration_seconds = secs, detail = %e.detail,
            "probe failed"
        ),
    }
}

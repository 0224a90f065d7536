//! A run's trace: phase timings and observations ([`Observation`]) shared between a running
//! probe and the runner that may cut it short at its timeout.

use crate::probe::common::observation::{Observation, Observations};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

crate::probe::label_enum!(
    /// The `phase` label: the steps of a connection, in the order they happen.
    pub Phase {
        Resolve => "resolve",
        Connect => "connect",
        Tls => "tls",
        Auth => "auth",
        Query => "query",
        Connections => "connections",
        Processing => "processing",
        Transfer => "transfer",
        Login => "login",
        Handshake => "handshake",
        Send => "send",
        Events => "events",
        Close => "close",
        Credentials => "credentials",
        Request => "request",
        Read => "read",
    }
);

/// Completed phases with their durations, in order.
pub type PhaseTimings = Vec<(Phase, Duration)>;

/// A handle the probe records phases into. Cloning shares the same record, so the runner
/// keeps what a probe reached even when it drops the probe's future at the timeout.
#[derive(Clone, Default, Debug)]
pub struct Trace(Arc<Mutex<Record>>);

#[derive(Default, Debug)]
struct Record {
    done: PhaseTimings,
    current: Option<Phase>,
    observations: Observations,
    next_run: Option<Duration>,
    /// The span of the phase in progress: it closes when the phase completes.
    span: Option<tracing::Span>,
    /// What the probe would report if cut short now (see [`Trace::set_explanation`]).
    explanation: Option<(crate::probe::Reason, String)>,
}

impl Trace {
    /// Times `fut` as `phase`. The phase counts as reached only when `fut` returns `Ok`;
    /// a phase that fails or never ends stays "current", so failures name where they stopped.
    pub(crate) async fn time<T, E, F>(&self, phase: Phase, fut: F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        let start = self.enter(phase);
        let out = fut.await;
        if out.is_ok() {
            self.complete(phase, start.elapsed());
        }
        out
    }

    /// Marks `phase` as running; returns when it started.
    pub(crate) fn enter(&self, phase: Phase) -> Instant {
        // A child of the run's span (the probe runs inside it), traced when OTLP is on.
        let span = tracing::info_span!(
            "phase",
            otel.name = %phase,
            phase = %phase,
            reason = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        self.with(|r| {
            r.current = Some(phase);
            r.span = Some(span);
        });
        Instant::now()
    }

    /// Marks the phase in progress as the one that failed, and ends its span.
    pub(crate) fn fail_current(&self, reason: crate::probe::Reason) {
        if let Some(span) = self.with(|r| r.span.take()) {
            span.record("reason", reason.as_str());
            span.record("otel.status_code", "ERROR");
        }
    }

    /// Records `phase` as reached, taking `took`.
    pub(crate) fn complete(&self, phase: Phase, took: Duration) {
        let span = self.with(|r| {
            r.done.push((phase, took));
            r.current = None;
            r.span.take()
        });
        drop(span);
    }

    /// Completed phases so far.
    pub(crate) fn completed(&self) -> PhaseTimings {
        self.with(|r| r.done.clone())
    }

    /// Records what the run saw (kept current, so a run cut at its timeout still reports
    /// it), replacing an earlier observation of the same variant.
    pub(crate) fn observe(&self, obs: Observation) {
        self.with(|r| r.observations.set(obs));
    }

    /// Everything observed so far.
    pub(crate) fn observations(&self) -> Observations {
        self.with(|r| r.observations.clone())
    }

    /// Asks the runner to run the probe again after `after` instead of its interval
    /// (a startup in progress is polled fast).
    pub(crate) fn set_next_run(&self, after: Duration) {
        self.with(|r| r.next_run = Some(after));
    }

    pub(crate) fn next_run(&self) -> Option<Duration> {
        self.with(|r| r.next_run)
    }

    /// Why the run has not finished, in the probe's terms, for the runner to report if the
    /// timeout cuts it now instead of a bare `timeout` (e.g. events arrived but belong to
    /// another run). `None` clears it.
    pub(crate) fn set_explanation(&self, why: Option<(crate::probe::Reason, String)>) {
        self.with(|r| r.explanation = why);
    }

    pub(crate) fn explanation(&self) -> Option<(crate::probe::Reason, String)> {
        self.with(|r| r.explanation.clone())
    }

    /// The phase that was running when the probe failed or was cut short.
    pub(crate) fn current(&self) -> Option<Phase> {
        self.with(|r| r.current)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Record) -> T) -> T {
        // A poisoned lock only means a probe panicked mid-update; the record is still usable.
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn records_completed_phases_and_the_failing_one() {
        let p = Trace::default();
        let ok: Result<(), ()> = p
            .time(Phase::Connect, async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                Ok(())
            })
            .await;
        assert!(ok.is_ok());
        let _: Result<(), ()> = p.time(Phase::Auth, async { Err(()) }).await;
        assert_eq!(
            p.completed(),
            vec![(Phase::Connect, Duration::from_millis(30))]
        );
        assert_eq!(p.current(), Some(Phase::Auth));
    }
}

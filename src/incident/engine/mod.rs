//! The incident engine, pure: criteria x recent results x now -> status. No I/O, no clocks
//! of its own, so tables of cases and paused time test it exactly.

use super::spec::{Condition, IncidentSpec};
use crate::probe::RunResult;
use crate::probe::{Kind, Measured, Reason};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// `pathwatch_incident_status`: 0 resolved, 1 present, 2 unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Every criterion has passed `resolve_after` times in a row.
    Resolved,
    /// A criterion fails (after `reopen_after` failures in a row once resolved).
    Present,
    /// Not enough fresh data to judge (no run yet, or the latest is stale).
    Unknown,
}

impl Status {
    pub(crate) fn value(self) -> i64 {
        match self {
            Status::Resolved => 0,
            Status::Present => 1,
            Status::Unknown => 2,
        }
    }

    pub(crate) fn word(self) -> &'static str {
        match self {
            Status::Resolved => "RESOLVED",
            Status::Present => "PRESENT",
            Status::Unknown => "UNKNOWN",
        }
    }
}

/// What the engine knows of one probe: its recent results, oldest first.
pub(crate) struct ProbeHistory<'a> {
    pub(crate) kind: Kind,
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) runs: &'a [Arc<RunResult>],
}

/// One criterion, evaluated.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CriterionResult {
    /// The criterion's name, as configured.
    pub name: String,
    /// The probe the criterion reads.
    pub probe: String,
    /// None when there is no (fresh) data to judge.
    pub met: Option<bool>,
    /// What the latest run measured for the condition (seconds for `max_seconds` and freshness),
    /// when the condition measures a number.
    pub value: Option<f64>,
    /// The bound `value` is compared with (seconds), for `max_seconds` and freshness.
    pub threshold: Option<f64>,
    /// Readable: `2.5s < 10s`, `5/5`, `timeout`, `no data`.
    pub display: String,
    /// Why the latest result failed, when it did.
    pub reason: Option<Reason>,
    /// How many of the latest results in a row met the criterion (`u32::MAX` for freshness,
    /// which is about now, not a series of runs).
    #[serde(skip)]
    pub passing_streak: u32,
    /// How many of the latest results in a row failed the criterion (`u32::MAX` as above).
    #[serde(skip)]
    pub failing_streak: u32,
}

/// One incident, evaluated: its status and the result of each criterion.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    /// The status the criteria and the hysteresis give.
    pub status: Status,
    /// Each criterion's result, in config order.
    pub criteria: Vec<CriterionResult>,
    /// Every criterion passes but not yet `resolve_after` times in a row: how far along.
    pub resolving: Option<Progress>,
}

/// Progress towards RESOLVED: the fewest passing results in a row of any criterion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub(crate) passing: u32,
    pub(crate) needed: u32,
}

impl Progress {
    /// `resolving: 1 of 2 passing results`
    pub(crate) fn text(self) -> String {
        format!(
            "resolving: {} of {} passing results",
            self.passing, self.needed
        )
    }
}

impl Evaluation {
    /// `database_connect 2.5s < 10s; golden_path 41.2s < 60s; websocket_events 5/5`
    pub(crate) fn summary(&self) -> String {
        self.criteria
            .iter()
            .map(|c| format!("{} {}", c.name, c.display))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A result older than this is stale: the criterion has no data to judge.
pub(crate) fn stale_after(view: &ProbeHistory) -> Duration {
    // Saturating: config bounds keep these small, but no duration may panic here (this runs
    // in the staleness task, which would die with it).
    view.interval.saturating_mul(2).saturating_add(view.timeout)
}

/// Evaluates an incident. `previous` is the status before this evaluation: between the
/// hysteresis thresholds the status holds.
pub(crate) fn evaluate<'a>(
    spec: &IncidentSpec,
    view: &dyn Fn(&str) -> Option<ProbeHistory<'a>>,
    now_unix: f64,
    previous: Status,
) -> Evaluation {
    let criteria: Vec<CriterionResult> = spec
        .criteria
        .iter()
        .map(|c| {
            let condition = c.condition().unwrap_or(Condition::Success);
            judge(&c.name, &c.probe, &condition, view(&c.probe), now_unix)
        })
        .collect();
    let known = !criteria.is_empty() && criteria.iter().all(|c| c.met.is_some());
    let proven_fixed = known
        && criteria
            .iter()
            .all(|c| c.passing_streak >= spec.resolve_after);
    let proven_broken = criteria
        .iter()
        .any(|c| c.failing_streak >= spec.reopen_after);
    let failing = criteria.iter().any(|c| c.met == Some(false));
    let status = if proven_fixed {
        Status::Resolved
    } else if proven_broken || (previous == Status::Present && failing) {
        // Broken again, or not fixed yet: present. From UNKNOWN (a restart, stale data) only
        // failing results lead here, never passing ones (a restart must not page).
        Status::Present
    } else if !known {
        Status::Unknown
    } else {
        // Every criterion judged, not enough results either way: the status holds. From
        // UNKNOWN that means waiting for `resolve_after` passing results.
        previous
    };
    let resolving = (status != Status::Resolved && known && !failing).then(|| Progress {
        passing: criteria
            .iter()
            .map(|c| c.passing_streak)
            .min()
            .unwrap_or(0)
            .min(spec.resolve_after),
        needed: spec.resolve_after,
    });
    Evaluation {
        status,
        criteria,
        resolving,
    }
}

fn judge(
    name: &str,
    probe: &str,
    condition: &Condition,
    view: Option<ProbeHistory>,
    now: f64,
) -> CriterionResult {
    let mut r = CriterionResult {
        name: name.to_string(),
        probe: probe.to_string(),
        met: None,
        value: None,
        threshold: match condition {
            Condition::MaxSeconds(s) => Some(*s),
            _ => None,
        },
        display: "no data".into(),
        reason: None,
        passing_streak: 0,
        failing_streak: 0,
    };
    let Some(view) = view else {
        return r;
    };
    let Some(latest) = view.runs.last() else {
        return r;
    };
    let age = now - latest.finished_unix_seconds;
    if let Condition::Fresh(n) = condition {
        let bound = view.interval.as_secs_f64() * f64::from(*n);
        let met = age <= bound;
        r.met = Some(met);
        r.value = Some(age.max(0.0));
        r.threshold = Some(bound);
        r.display = format!(
            "{:.0}s old {} {:.0}s",
            age.max(0.0),
            if met { "<=" } else { ">" },
            bound
        );
        // Freshness is about now, not about a series of runs.
        if met {
            r.passing_streak = u32::MAX;
        } else {
            r.failing_streak = u32::MAX;
        }
        return r;
    }
    if age > stale_after(&view).as_secs_f64() {
        r.display = format!("stale ({age:.0}s old)");
        return r;
    }
    let verdicts: Vec<bool> = view
        .runs
        .iter()
        .map(|run| passes(condition, view.kind, run, view.runs))
        .collect();
    let latest_ok = verdicts.last().copied().unwrap_or(false);
    let streak = verdicts
        .iter()
        .rev()
        .take_while(|v| **v == latest_ok)
        .count() as u32;
    if latest_ok {
        r.passing_streak = streak;
    } else {
        r.failing_streak = streak;
    }
    r.met = Some(latest_ok);
    r.reason = latest.outcome.as_ref().err().map(|e| e.reason);
    let (value, display) = describe(condition, view.kind, latest, view.runs, latest_ok);
    r.value = value;
    r.display = display;
    r
}

/// The seconds a `max_seconds` criterion bounds, as the kind says
/// ([`crate::probe::ProbeKind::MEASURED`]): the value of a family it reports (this run's, or
/// the last any run reported), else the run's duration less a database's read of its
/// connections.
fn measured(kind: Kind, run: &RunResult, history: &[Arc<RunResult>]) -> Option<f64> {
    match kind.measured() {
        Measured::LastValue(family) => history
            .iter()
            .rev()
            .find_map(|r| r.observations.value(family))
            .filter(|_| run.ok()),
        Measured::Value(family) => run.observations.value(family),
        Measured::Duration => Some(run.session_seconds()),
    }
}

/// The events an `all_events` criterion compares: (delivered, expected) as the run reported
/// them of the families its kind names ([`crate::probe::ProbeKind::EVENTS`]).
fn events(kind: Kind, run: &RunResult) -> Option<(f64, f64)> {
    let (delivered, expected) = kind.events()?;
    Some((
        run.observations.value(delivered)?,
        run.observations.value(expected)?,
    ))
}

/// The share a `connections_below` criterion bounds: the value the run reported of the
/// family its kind names ([`crate::probe::ProbeKind::RATIO`]).
fn ratio(kind: Kind, run: &RunResult) -> Option<f64> {
    run.observations.value(kind.ratio()?)
}

fn passes(condition: &Condition, kind: Kind, run: &RunResult, history: &[Arc<RunResult>]) -> bool {
    match condition {
        Condition::Success => run.ok(),
        Condition::MaxSeconds(bound) => {
            run.ok() && measured(kind, run, history).is_some_and(|s| s < *bound)
        }
        Condition::AllEvents => events(kind, run)
            .is_some_and(|(delivered, expected)| expected > 0.0 && delivered == expected),
        Condition::State(want) => run.observations.state() == Some(want.as_str()),
        Condition::Fresh(_) => true,
        Condition::ConnectionsBelow(bound) => ratio(kind, run).is_some_and(|r| r < *bound),
    }
}

fn describe(
    condition: &Condition,
    kind: Kind,
    run: &RunResult,
    history: &[Arc<RunResult>],
    ok: bool,
) -> (Option<f64>, String) {
    let failure = run.outcome.as_ref().err().map(|e| e.reason.as_str());
    match condition {
        Condition::MaxSeconds(bound) => match (measured(kind, run, history), failure) {
            (Some(s), None) => (
                Some(s),
                format!(
                    "{} {} {}",
                    secs(s),
                    if ok { "<" } else { ">=" },
                    secs(*bound)
                ),
            ),
            // A hang's length is the news ("timeout after 75s"); any other failure's is not
            // ("server_error after 0ms" read as a measurement): it reads like `success`.
            (_, Some(reason)) => {
                let s = run.duration.as_secs_f64();
                let text = if reason == Reason::Timeout.as_str() {
                    format!("timeout after {}", secs(s))
                } else {
                    format!("failing ({reason})")
                };
                (Some(s), text)
            }
            (None, None) => (None, "not measured yet".into()),
        },
        Condition::AllEvents => match events(kind, run) {
            Some((delivered, expected)) => (Some(delivered), format!("{delivered}/{expected}")),
            None => (None, failure.unwrap_or("no events").to_string()),
        },
        Condition::Success => (
            Some(if ok { 1.0 } else { 0.0 }),
            failure.map_or("ok".into(), |r| format!("failing ({r})")),
        ),
        Condition::State(want) => (
            None,
            format!(
                "{} (want {want})",
                run.observations.state().unwrap_or("no state")
            ),
        ),
        Condition::Fresh(_) => (None, String::new()),
        Condition::ConnectionsBelow(bound) => match run.fact("connections") {
            Some(c) => match ratio(kind, run) {
                Some(r) => (
                    Some(r),
                    format!(
                        "{:.0}% {} {:.0}% ({})",
                        r * 100.0,
                        if ok { "<" } else { ">=" },
                        bound * 100.0,
                        c
                    ),
                ),
                None => (None, c.to_string()),
            },
            None => (
                None,
                failure.map_or("connections not read (connections: true?)".into(), |r| {
                    format!("failing ({r})")
                }),
            ),
        },
    }
}

/// `2.5s`, `41.2s`, `75s`: seconds as a person reads them.
fn secs(s: f64) -> String {
    if s >= 10.0 || s.fract() == 0.0 {
        format!("{s:.0}s")
    } else if s >= 0.1 {
        format!("{s:.1}s")
    } else {
        format!("{:.0}ms", s * 1000.0)
    }
}

#[cfg(test)]
mod tests;

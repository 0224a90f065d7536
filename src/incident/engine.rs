//! The incident engine, pure: criteria x recent results x now -> status. No I/O, no clocks
//! of its own, so tables of cases and paused time test it exactly.

use super::spec::{Condition, IncidentSpec};
use crate::probe::RunResult;
use crate::probe::{Kind, Reason};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// `pathwatch_incident_status`: 0 resolved, 1 present, 2 unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Resolved,
    Present,
    Unknown,
}

impl Status {
    pub fn value(self) -> i64 {
        match self {
            Status::Resolved => 0,
            Status::Present => 1,
            Status::Unknown => 2,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Status::Resolved => "RESOLVED",
            Status::Present => "PRESENT",
            Status::Unknown => "UNKNOWN",
        }
    }
}

/// What the engine knows of one probe: its recent results, oldest first.
pub struct ProbeView<'a> {
    pub kind: Kind,
    pub interval: Duration,
    pub timeout: Duration,
    pub runs: &'a [Arc<RunResult>],
}

/// One criterion, evaluated.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CriterionResult {
    pub name: String,
    pub probe: String,
    /// None when there is no (fresh) data to judge.
    pub met: Option<bool>,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    /// Readable: `2.5s < 10s`, `5/5`, `timeout`, `no data`.
    pub display: String,
    /// Why the latest result failed, when it did.
    pub reason: Option<Reason>,
    #[serde(skip)]
    pub passing_streak: u32,
    #[serde(skip)]
    pub failing_streak: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    pub status: Status,
    pub criteria: Vec<CriterionResult>,
    /// Every criterion passes but not yet `resolve_after` times in a row: how far along.
    pub resolving: Option<Progress>,
}

/// Progress towards RESOLVED: the fewest passing results in a row of any criterion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub passing: u32,
    pub needed: u32,
}

impl Progress {
    /// `resolving: 1 of 2 passing results`
    pub fn text(&self) -> String {
        format!(
            "resolving: {} of {} passing results",
            self.passing, self.needed
        )
    }
}

impl Evaluation {
    /// `database_connect 2.5s < 10s; golden_path 41.2s < 60s; websocket_events 5/5`
    pub fn summary(&self) -> String {
        self.criteria
            .iter()
            .map(|c| format!("{} {}", c.name, c.display))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A result older than this is stale: the criterion has no data to judge.
pub fn stale_after(view: &ProbeView) -> Duration {
    // Saturating: config bounds keep these small, but no duration may panic here (this runs
    // in the staleness task, which would die with it).
    view.interval.saturating_mul(2).saturating_add(view.timeout)
}

/// Evaluates an incident. `previous` is the status before this evaluation: between the
/// hysteresis thresholds the status holds.
pub fn evaluate<'a>(
    spec: &IncidentSpec,
    view: &dyn Fn(&str) -> Option<ProbeView<'a>>,
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
    view: Option<ProbeView>,
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

/// The seconds a criterion bounds, per kind: the session time of a database probe, the
/// startup time, login to final event, or the run's duration.
fn measured(kind: Kind, run: &RunResult, history: &[Arc<RunResult>]) -> Option<f64> {
    match kind {
        Kind::Startup => history
            .iter()
            .rev()
            .find_map(|r| r.observations.startup().and_then(|s| s.seconds))
            .filter(|_| run.ok()),
        Kind::GoldenPath => run
            .observations
            .golden()
            .and_then(|g| g.total)
            .map(|d| d.as_secs_f64()),
        _ => Some(run.duration.as_secs_f64()),
    }
}

fn passes(condition: &Condition, kind: Kind, run: &RunResult, history: &[Arc<RunResult>]) -> bool {
    match condition {
        Condition::Success => run.ok(),
        Condition::MaxSeconds(bound) => {
            run.ok() && measured(kind, run, history).is_some_and(|s| s < *bound)
        }
        Condition::AllEvents => run
            .observations
            .golden()
            .is_some_and(|g| !g.expected.is_empty() && g.delivered() == g.expected.len()),
        Condition::State(want) => run.observations.state() == Some(want.as_str()),
        Condition::Fresh(_) => true,
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
        Condition::AllEvents => match run.observations.golden() {
            Some(g) => (
                Some(g.delivered() as f64),
                format!("{}/{}", g.delivered(), g.expected.len()),
            ),
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
mod tests {
    use super::*;
    use crate::incident::spec::{CriterionSpec, IncidentSpec};
    use crate::probe::golden::GoldenObs;
    use crate::probe::{Observation, Outcome, ProbeError};

    const NOW: f64 = 1_000_000.0;

    fn run(ok: bool, secs: f64, age: f64) -> Arc<RunResult> {
        Arc::new(RunResult {
            finished_unix_seconds: NOW - age,
            duration: Duration::from_secs_f64(secs),
            phases: Vec::new(),
            failed_phase: None,
            observations: Default::default(),
            next_run: None,
            trace_id: None,
            lateness: None,
            outcome: if ok {
                Ok(Outcome::default())
            } else {
                Err(ProbeError::new(Reason::Timeout, "no answer"))
            },
        })
    }

    fn criterion(name: &str, probe: &str) -> CriterionSpec {
        CriterionSpec {
            name: name.into(),
            probe: probe.into(),
            max_seconds: None,
            all_events: None,
            success: None,
            state: None,
            fresh: None,
        }
    }

    fn incident(criteria: Vec<CriterionSpec>) -> IncidentSpec {
        IncidentSpec {
            id: "1278".into(),
            title: "t".into(),
            criteria,
            resolve_after: 2,
            reopen_after: 2,
            webhook: None,
        }
    }

    fn db_connect() -> IncidentSpec {
        incident(vec![CriterionSpec {
            max_seconds: Some(10.0),
            ..criterion("database_connect", "db")
        }])
    }

    fn eval_with(
        spec: &IncidentSpec,
        kind: Kind,
        runs: &[Arc<RunResult>],
        previous: Status,
    ) -> Evaluation {
        let view = |name: &str| {
            (name == "db" || name == "gp").then(|| ProbeView {
                kind,
                interval: Duration::from_secs(30),
                timeout: Duration::from_secs(75),
                runs,
            })
        };
        evaluate(spec, &view, NOW, previous)
    }

    #[test]
    fn db_connect_bound_with_hysteresis() {
        use Status::*;
        // (runs oldest..newest as (ok, seconds), previous status, expected status, display)
        // (runs oldest..newest as (ok, seconds), previous status, expected status, display)
        type Case<'a> = (&'a [(bool, f64)], Status, Status, &'a str);
        let cases: &[Case] = &[
            (&[], Unknown, Unknown, "no data"),
            // From UNKNOWN (a restart): passing results never make it present...
            (&[(true, 2.5)], Unknown, Unknown, "2.5s < 10s"),
            (&[(true, 2.5), (true, 3.0)], Unknown, Resolved, "3s < 10s"),
            // ...failing ones do, after reopen_after of them.
            (&[(false, 75.0)], Unknown, Unknown, "timeout after 75s"),
            (
                &[(false, 75.0), (false, 75.0)],
                Unknown,
                Present,
                "timeout after 75s",
            ),
            (&[(false, 75.0), (true, 2.0)], Unknown, Unknown, "2s < 10s"),
            (&[(true, 2.5)], Present, Present, "2.5s < 10s"),
            (&[(true, 2.5), (true, 3.0)], Present, Resolved, "3s < 10s"),
            // exactly the bound is not under it
            (
                &[(true, 10.0), (true, 10.0)],
                Present,
                Present,
                "10s >= 10s",
            ),
            (
                &[(true, 2.0), (true, 2.0), (false, 75.0)],
                Resolved,
                Resolved,
                "timeout after 75s",
            ),
            (
                &[(true, 2.0), (false, 75.0), (false, 75.0)],
                Resolved,
                Present,
                "timeout after 75s",
            ),
            // one slow run in a resolved incident holds (below reopen_after)
            (
                &[(true, 2.0), (true, 2.0), (true, 12.0)],
                Resolved,
                Resolved,
                "12s >= 10s",
            ),
            (&[(false, 75.0), (true, 2.0)], Present, Present, "2s < 10s"),
        ];
        for (runs, previous, want, display) in cases {
            let runs: Vec<_> = runs.iter().map(|(ok, s)| run(*ok, *s, 5.0)).collect();
            let e = eval_with(&db_connect(), Kind::Postgres, &runs, *previous);
            assert_eq!(e.status, *want, "{runs:?} from {previous:?}");
            assert_eq!(e.criteria[0].display, *display);
        }
    }

    #[test]
    fn progress_towards_resolved_is_reported() {
        let spec = db_connect();
        let one = [run(true, 1.0, 5.0)];
        let e = eval_with(&spec, Kind::Postgres, &one, Status::Present);
        assert_eq!(e.status, Status::Present);
        let p = e.resolving.expect("progress");
        assert_eq!(p.text(), "resolving: 1 of 2 passing results");
        let e = eval_with(&spec, Kind::Postgres, &one, Status::Unknown);
        assert_eq!(
            (e.status, e.resolving.map(|p| p.passing)),
            (Status::Unknown, Some(1))
        );
        let two = [run(true, 1.0, 35.0), run(true, 1.0, 5.0)];
        let e = eval_with(&spec, Kind::Postgres, &two, Status::Present);
        assert_eq!((e.status, e.resolving), (Status::Resolved, None));
        let failing = [run(false, 75.0, 5.0)];
        let e = eval_with(&spec, Kind::Postgres, &failing, Status::Present);
        assert_eq!(e.resolving, None);
    }

    #[test]
    fn a_failing_criterion_is_present_even_while_another_has_no_data() {
        let spec = incident(vec![
            CriterionSpec {
                success: Some(true),
                ..criterion("db_up", "db")
            },
            CriterionSpec {
                success: Some(true),
                ..criterion("never_ran", "nothing")
            },
        ]);
        let runs = [run(false, 0.01, 35.0), run(false, 0.01, 5.0)];
        let e = eval_with(&spec, Kind::Postgres, &runs, Status::Unknown);
        assert_eq!(e.status, Status::Present);
        let runs = [run(true, 0.01, 35.0), run(true, 0.01, 5.0)];
        let e = eval_with(&spec, Kind::Postgres, &runs, Status::Unknown);
        assert_eq!(e.status, Status::Unknown);
    }

    #[test]
    fn stale_data_is_unknown() {
        // interval 30 s, timeout 75 s: stale after 135 s
        // 134 s old is not stale yet: two passing results resolve.
        let fresh = eval_with(
            &db_connect(),
            Kind::Postgres,
            &[run(true, 1.0, 164.0), run(true, 1.0, 134.0)],
            Status::Present,
        );
        assert_eq!(fresh.status, Status::Resolved);
        let runs = [run(true, 1.0, 200.0), run(true, 1.0, 136.0)];
        let e = eval_with(&db_connect(), Kind::Postgres, &runs, Status::Resolved);
        assert_eq!(e.status, Status::Unknown);
        assert_eq!(e.criteria[0].met, None);
        assert!(e.criteria[0].display.starts_with("stale"));
    }

    #[test]
    fn events_success_and_freshness_criteria() {
        let mut golden = (*run(true, 41.2, 5.0)).clone();
        golden.observations.set(Observation::Golden(GoldenObs {
            expected: vec!["a".into(), "b".into()],
            arrived: vec![Some(Duration::from_secs(1)), Some(Duration::from_secs(2))],
            total: Some(Duration::from_secs_f64(41.2)),
            ..GoldenObs::default()
        }));
        let mut partial = golden.clone();
        if let Some(g) = partial.observations.golden_mut() {
            g.arrived[1] = None;
        }
        let spec = incident(vec![
            CriterionSpec {
                all_events: Some(true),
                ..criterion("websocket_events", "gp")
            },
            CriterionSpec {
                max_seconds: Some(60.0),
                ..criterion("golden_path", "gp")
            },
            CriterionSpec {
                success: Some(true),
                ..criterion("up", "gp")
            },
            CriterionSpec {
                fresh: Some(2),
                ..criterion("fresh", "gp")
            },
        ]);
        let ok = [Arc::new(golden.clone()), Arc::new(golden)];
        let e = eval_with(&spec, Kind::GoldenPath, &ok, Status::Present);
        assert_eq!(e.status, Status::Resolved);
        assert_eq!(
            e.summary(),
            "websocket_events 2/2; golden_path 41s < 60s; up ok; fresh 5s old <= 60s"
        );
        let e = eval_with(
            &spec,
            Kind::GoldenPath,
            &[Arc::new(partial)],
            Status::Resolved,
        );
        assert_eq!(e.criteria[0].display, "1/2");
        assert_eq!(e.criteria[0].met, Some(false));
    }

    #[test]
    fn state_criterion_compares_the_reported_state() {
        let spec = incident(vec![CriterionSpec {
            state: Some("READY".into()),
            ..criterion("connector_ready", "db")
        }]);
        let mut r = (*run(true, 0.2, 1.0)).clone();
        r.observations.set(Observation::State("ERROR".into()));
        let e = eval_with(
            &spec,
            Kind::Http,
            &[Arc::new(r.clone()), Arc::new(r.clone())],
            Status::Unknown,
        );
        assert_eq!(
            (e.status, e.criteria[0].met),
            (Status::Present, Some(false))
        );
        assert_eq!(e.criteria[0].display, "ERROR (want READY)");
        r.observations.set(Observation::State("READY".into()));
        let e = eval_with(
            &spec,
            Kind::Http,
            &[Arc::new(r.clone()), Arc::new(r)],
            Status::Present,
        );
        assert_eq!(e.status, Status::Resolved);
    }
}

//! Tests of engine.rs.

use super::*;
use crate::incident::spec::{CriterionSpec, IncidentSpec};
use crate::probe::kinds::golden::GoldenObs;
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
        connections_below: None,
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
        (name == "db" || name == "gp").then(|| ProbeHistory {
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
    let obs = GoldenObs {
        expected: vec!["a".into(), "b".into()],
        arrived: vec![Some(Duration::from_secs(1)), Some(Duration::from_secs(2))],
        total: Some(Duration::from_secs_f64(41.2)),
        ..GoldenObs::default()
    };
    let mut partial = golden.clone();
    golden.observations.set(Observation::Samples(obs.samples()));
    let partial_obs = GoldenObs {
        arrived: vec![Some(Duration::from_secs(1)), None],
        ..obs
    };
    partial
        .observations
        .set(Observation::Samples(partial_obs.samples()));
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

/// A kind that names a measured family (startup: its startup time) has `max_seconds` bound
/// the last value a run reported of it, not the run's duration; later runs that measured
/// nothing keep it.
#[test]
fn max_seconds_bounds_the_family_a_kind_measures() {
    let crate::probe::Measured::LastValue(family) = Kind::Startup.measured() else {
        panic!("startup names its measured family");
    };
    let spec = incident(vec![CriterionSpec {
        max_seconds: Some(60.0),
        ..criterion("backend_starts", "db")
    }]);
    let measured = |secs: f64| {
        let mut r = (*run(true, 0.2, 2.0)).clone();
        r.observations
            .set(Observation::Samples(vec![crate::probe::Sample {
                family,
                labels: Vec::new(),
                value: secs,
            }]));
        Arc::new(r)
    };
    let quiet = run(true, 0.2, 1.0);
    let e = eval_with(
        &spec,
        Kind::Startup,
        &[measured(30.0), quiet.clone()],
        Status::Present,
    );
    assert_eq!(e.criteria[0].met, Some(true), "{:?}", e.criteria[0]);
    assert_eq!(e.criteria[0].value, Some(30.0));
    let e = eval_with(
        &spec,
        Kind::Startup,
        &[measured(90.0), quiet],
        Status::Present,
    );
    assert_eq!(e.criteria[0].met, Some(false), "{:?}", e.criteria[0]);
}

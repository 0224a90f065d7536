//! The `startup` probe against the reference service: the exporter's own start, a restart
//! seen from outside, a start time the service reports, and a start that never ends.

use crate::support::exporter::{Exporter, value};
use crate::support::sim::Sim;
use pathwatch::sim::Faults;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn config(sim: &Sim, extra: &[&str]) -> String {
    let mut y = format!(
        "probes:\n  - name: boot\n    kind: startup\n    interval: 500ms\n    timeout: 2s\n    poll_interval: 100ms\n    check: {{ url: {} }}\n",
        sim.http("/health")
    );
    for l in extra {
        y.push_str("    ");
        y.push_str(l);
        y.push('\n');
    }
    y
}

#[test]
fn measures_from_the_exporter_start_then_a_restart_seen_from_outside() {
    let sim = Sim::start(Faults {
        startup_delay_ms: 1500,
        ..Faults::default()
    });
    let exp = Exporter::start(&config(&sim, &[]));
    let first = exp.wait_for(
        "pathwatch_startup_seconds",
        &[("probe", "boot")],
        WAIT,
        |v| v > 0.0,
    );
    // The service needed 1.5 s from its start, which came just before the exporter's.
    assert!((1.0..4.0).contains(&first), "first startup {first}");
    let m = exp.metrics();
    assert_eq!(
        value(&m, "pathwatch_startup_in_progress", &[("probe", "boot")]),
        Some(0.0)
    );
    assert!(
        value(
            &m,
            "pathwatch_startup_unhealthy_answers_total",
            &[("probe", "boot")]
        ) >= Some(3.0),
        "{m}"
    );
    assert!(value(&m, "pathwatch_http_status_code", &[("probe", "boot")]) == Some(200.0));

    // A restart: healthy -> 503 for 2 s -> healthy, seen only from outside.
    sim.state.set_faults(Faults {
        startup_delay_ms: 2000,
        ..Faults::default()
    });
    sim.state.restart();
    exp.wait_for(
        "pathwatch_startup_in_progress",
        &[("probe", "boot")],
        WAIT,
        |v| v == 1.0,
    );
    let second = exp.wait_for(
        "pathwatch_startup_seconds",
        &[("probe", "boot")],
        WAIT,
        |v| v != first,
    );
    // Timed from the first failing poll, which came up to one interval after the restart.
    assert!((1.0..2.5).contains(&second), "restart took {second}");
    assert_eq!(
        value(
            &exp.metrics(),
            "pathwatch_startup_in_progress",
            &[("probe", "boot")]
        ),
        Some(0.0)
    );
}

#[test]
fn reported_start_time_catches_a_restart_between_polls() {
    let sim = Sim::start(Faults::default());
    let exp = Exporter::start(
        &config(
            &sim,
            &["reference: reported", "started_at_pointer: /started_at"],
        )
        .replace("interval: 500ms", "interval: 1s"),
    );
    let first = exp.wait_for(
        "pathwatch_startup_seconds",
        &[("probe", "boot")],
        WAIT,
        |v| v >= 0.0,
    );
    std::thread::sleep(Duration::from_millis(1500));
    // A restart quicker than the polls: no failure is ever seen, the start time moves.
    sim.state.restart();
    let secs = exp.wait_for(
        "pathwatch_startup_seconds",
        &[("probe", "boot")],
        WAIT,
        |v| v != first,
    );
    // Measured from the reported start to the poll that saw it: at most about one interval.
    assert!((0.0..1.5).contains(&secs), "{secs}");
    let m = exp.metrics();
    assert_eq!(
        value(
            &m,
            "pathwatch_probe_runs_total",
            &[
                ("probe", "boot"),
                ("result", "failure"),
                ("reason", "http_status")
            ]
        ),
        None,
        "the restart was seen without a failed poll: {m}"
    );
}

#[test]
fn a_start_that_never_ends_fails_with_startup_timeout() {
    let sim = Sim::start(Faults {
        startup_fails: true,
        ..Faults::default()
    });
    let exp = Exporter::start(&config(&sim, &["deadline: 1s"]));
    exp.wait_for(
        "pathwatch_probe_runs_total",
        &[
            ("probe", "boot"),
            ("result", "failure"),
            ("reason", "startup_timeout"),
        ],
        WAIT,
        |v| v >= 1.0,
    );
    let m = exp.metrics();
    assert_eq!(
        value(&m, "pathwatch_startup_in_progress", &[("probe", "boot")]),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "pathwatch_http_status_code", &[("probe", "boot")]),
        Some(503.0)
    );
}

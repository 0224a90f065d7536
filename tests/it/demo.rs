//! `pathwatch demo`: one command starts the reference service and pathwatch probing it, and
//! the scenario visibly moves the metrics (healthy -> outage -> recovery).

use crate::support::exporter::{Exporter, value};
use std::time::Duration;

#[test]
fn demo_probes_the_reference_service_through_an_outage_and_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    // 30x: the 60 s healthy act lasts 2 s, the 45 s outage 1.5 s.
    let args = ["demo", "--speed", "30"].map(String::from);
    let exp = Exporter::start_command(&args, &[("DATABASE_URL", ""), ("PGHOST", "")], dir);
    let wait = Duration::from_secs(30);
    for probe in [
        "backend-health",
        "auth-health",
        "backend-database-health",
        "golden-path",
    ] {
        exp.wait_for("pathwatch_probe_success", &[("probe", probe)], wait, |v| {
            v == 1.0
        });
    }
    // The outage: the database health answers 503 and the path breaks at login.
    exp.wait_for(
        "pathwatch_http_status_code",
        &[("probe", "backend-database-health")],
        wait,
        |v| v == 503.0,
    );
    // Recovery: healthy again.
    exp.wait_for(
        "pathwatch_http_status_code",
        &[("probe", "backend-database-health")],
        wait,
        |v| v == 200.0,
    );
    let m = exp.metrics();
    assert_eq!(
        value(
            &m,
            "pathwatch_golden_path_events_expected",
            &[("probe", "golden-path")]
        ),
        Some(5.0)
    );
    assert!(
        value(
            &m,
            "pathwatch_startup_seconds",
            &[("probe", "backend-startup")]
        )
        .is_some(),
        "{m}"
    );
}

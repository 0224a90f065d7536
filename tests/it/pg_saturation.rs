//! Connection saturation (issue 22): a throwaway Postgres with `max_connections = 10` (7
//! usable by ordinary roles) filled with real sessions raises the saturation signal, the
//! criterion and the alert through a real Prometheus while connects still succeed; a role
//! that may not read pg_stat_activity gets a reason of its own, not a failed connect.

use crate::support::exporter::{Exporter, value};
use crate::support::hang::closed_port;
use crate::support::pg::{PgCluster, PgOptions};
use crate::support::prom::{self, alerts, query};
use std::process::Command;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn a_filled_postgres_warns_before_connects_fail() {
    let pg = PgCluster::start(PgOptions {
        max_connections: Some(10),
        ..PgOptions::default()
    });
    pg.exec("CREATE ROLE limited LOGIN PASSWORD 'limited-pw'");
    pg.exec("REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC");
    let yaml = format!(
        "defaults: {{ interval: 1s, timeout: 5s }}\nprobes:\n  - {{ name: pg-load, kind: postgres, host: 127.0.0.1, port: {port}, user: {user}, password: \"${{PG_PASSWORD}}\", dbname: postgres, sslmode: disable, connections: true }}\n  - {{ name: pg-limited, kind: postgres, host: 127.0.0.1, port: {port}, user: limited, password: limited-pw, dbname: postgres, sslmode: disable, connections: true }}\nincidents:\n  - id: pool\n    title: Connection pool\n    resolve_after: 1\n    reopen_after: 1\n    criteria:\n      - {{ name: connections, probe: pg-load, connections_below: 0.8 }}\n",
        port = pg.port(),
        user = pg.user(),
    );
    let exp = Exporter::start_with_env(&yaml, &[("PG_PASSWORD", pg.password())]);
    let ratio = |m: &str| {
        value(
            m,
            "pathwatch_db_connections_used_ratio",
            &[("probe", "pg-load")],
        )
    };
    exp.wait_for(
        "pathwatch_db_connections_used_ratio",
        &[("probe", "pg-load")],
        WAIT,
        |v| v > 0.0,
    );
    let m = exp.metrics();
    assert_eq!(
        value(&m, "pathwatch_db_connections_max", &[("probe", "pg-load")]),
        Some(10.0)
    );
    assert_eq!(
        value(
            &m,
            "pathwatch_db_connections_reserved",
            &[("probe", "pg-load")]
        ),
        Some(3.0)
    );
    assert!(ratio(&m) < Some(0.8), "{m}");
    // The role without the right: the database answers, the read says why it cannot.
    exp.wait_for(
        "pathwatch_db_connections_readable",
        &[("probe", "pg-limited")],
        WAIT,
        |v| v == 0.0,
    );
    let m = exp.metrics();
    assert_eq!(
        value(&m, "pathwatch_probe_success", &[("probe", "pg-limited")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &m,
            "pathwatch_db_connections_used_ratio",
            &[("probe", "pg-limited")]
        ),
        None
    );
    let (_, _, status) = exp.get("/api/status");
    assert!(
        status.contains("not readable: permission denied for view pg_stat_activity (42501)"),
        "{status}"
    );

    // The real Prometheus with the shipped rules, durations divided by 30 (for: 2m -> 4s).
    let rules_dir = tempfile::tempdir().expect("temp dir");
    let rules = rules_dir.path().join("pathwatch.rules.yml");
    let ok = Command::new("python3")
        .arg("alerts/install.py")
        .arg(&rules)
        .args(["--scale", "30"])
        .status()
        .expect("python3");
    assert!(ok.success(), "alerts/install.py");
    let nowhere = format!("127.0.0.1:{}", closed_port())
        .parse()
        .expect("addr");
    let prometheus = prom::prometheus(exp.addr, &[rules], nowhere);
    let p = prometheus.addr;

    // Fill it: 5 sessions + the probe's own = 6 of 7 usable (0.857), connects still work.
    let sessions = pg.hold_sessions(5);
    exp.wait_for(
        "pathwatch_db_connections_used_ratio",
        &[("probe", "pg-load")],
        WAIT,
        |v| v >= 0.8,
    );
    let m = exp.metrics();
    let held: f64 = crate::support::exporter::samples(&m, "pathwatch_db_connections")
        .iter()
        .filter(|s| s.labels.get("probe").map(String::as_str) == Some("pg-load"))
        .map(|s| s.value)
        .sum();
    assert!(
        held >= 6.0,
        "the sessions by database and state add up: {m}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !alerts(p)
        .iter()
        .any(|(n, s)| n == "PathwatchDatabaseConnectionsSaturated" && s == "firing")
    {
        assert!(
            Instant::now() < deadline,
            "no saturation alert: {:?}",
            alerts(p)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // Before any connect failed: the probe still succeeds, no too_many_connections yet.
    let m = exp.metrics();
    assert_eq!(
        value(&m, "pathwatch_probe_success", &[("probe", "pg-load")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &m,
            "pathwatch_probe_runs_total",
            &[("probe", "pg-load"), ("reason", "too_many_connections")]
        ),
        None
    );
    assert!(query(p, "pathwatch_probe_success{probe=\"pg-load\"} == 1").len() == 1);
    // The criterion names the share and the counts.
    let (_, _, status) = exp.get("/api/status");
    assert!(
        status.contains("% >= 80% (6 of 7 usable (max_connections 10, 3 reserved))"),
        "{status}"
    );

    // Drained: the alert resolves.
    drop(sessions);
    exp.wait_for(
        "pathwatch_db_connections_used_ratio",
        &[("probe", "pg-load")],
        WAIT,
        |v| v < 0.8,
    );
}

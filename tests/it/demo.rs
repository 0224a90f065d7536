//! `pathwatch demo`: one command starts the reference service and pathwatch probing it with
//! every probe kind, and the scenario visibly moves the metrics (healthy -> outage with the
//! VPC connector in ERROR -> recovery -> drift). A real Prometheus scrapes it, and every
//! dashboard panel's expression returns data.

use crate::support::exporter::{Exporter, value};
use crate::support::hang::closed_port;
use crate::support::pg::{PgCluster, PgOptions};
use crate::support::prom::{self, query};
use crate::support::receiver::Receiver;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Polls Prometheus until `expr` returns a sample.
fn wait_query(p: SocketAddr, expr: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while query(p, expr).is_empty() {
        assert!(Instant::now() < deadline, "no data for {expr}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn demo_probes_the_reference_service_through_an_outage_and_back() {
    let started = Instant::now();
    let pg = PgCluster::start(PgOptions::default());
    let port = pg.port().to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    // 30x: the 60 s healthy act lasts 2 s, the 45 s outage 1.5 s, and the probes run every
    // second.
    let args = ["demo", "--speed", "30"].map(String::from);
    let exp = Exporter::start_command(
        &args,
        &[
            ("DATABASE_URL", ""),
            ("PGHOST", "127.0.0.1"),
            ("PGPORT", &port),
            ("PGUSER", pg.user()),
            ("PGPASSWORD", pg.password()),
            ("PGDATABASE", "postgres"),
        ],
        dir,
    );
    let nowhere: SocketAddr = format!("127.0.0.1:{}", closed_port())
        .parse()
        .expect("addr");
    let prom = prom::prometheus(exp.addr, &crate::rules::rule_files(), nowhere);
    let p = prom.addr;
    let wait = Duration::from_secs(30);
    for probe in [
        "backend-health",
        "auth-health",
        "backend-database-health",
        "clickhouse-ping",
        "golden-path",
        "vpc-path-redis",
        "redis",
        "vpc-connector",
        "cloudsql-instance",
        "backend-logs",
        "database",
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
    // The infrastructure moves with the outage, and the drift shows.
    for expr in [
        r#"max_over_time(pathwatch_gcp_resource_state{probe="vpc-connector",state="ERROR"}[5m]) == 1"#,
        r#"pathwatch_probe_runs_total{probe="vpc-path-redis",result="failure"}"#,
        r#"min_over_time(pathwatch_gcp_expectation_met{probe="backend-service-config",expectation="egress"}[5m]) == 0"#,
        r#"pathwatch_log_pattern_matches_total{probe="backend-logs",pattern="db_socket_failed"} > 0"#,
        r#"pathwatch_log_pattern_matches_total{probe="backend-logs",pattern="startup_failed"} > 0"#,
        r#"pathwatch_log_pattern_last_value{probe="backend-logs",pattern="db_phase"} > 0"#,
        r#"min_over_time(pathwatch_incident_criterion_met{incident="1278",criterion="vpc_connector_ready"}[5m]) == 0"#,
    ] {
        wait_query(p, expr, wait);
    }
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
    // Every panel of every dashboard has data. Some show the last run only (a failed login
    // has no event times), so each must have had data at some point of the loop.
    let mut empty = crate::e2e::panels_without_data(p);
    let deadline = Instant::now() + wait;
    while !empty.is_empty() {
        assert!(
            Instant::now() < deadline,
            "panels without data:\n{}\nmetrics:\n{}",
            empty.join("\n"),
            exp.metrics()
        );
        std::thread::sleep(Duration::from_millis(500));
        let now = crate::e2e::panels_without_data(p);
        empty.retain(|e| now.contains(e));
    }
    let logs = exp.logs();
    assert!(!logs.contains(pg.password()), "no password in the logs");
    assert!(
        !m.contains(pathwatch::sim::gcp::TOKEN) && !logs.contains(pathwatch::sim::gcp::TOKEN),
        "no access token in metrics or logs"
    );
    eprintln!("demo test took {:?}", started.elapsed());
}

/// The demo pages: at speed 6 its probes run every second, so the rules' copy at
/// `alerts/install.py --scale 30` and the shipped Alertmanager config (timings / 30) let the
/// incident alert fire in the outage, resolve after the restart, and fire again when the
/// degraded agent drops an event: each change its own notification, the symptoms held back.
#[test]
fn the_demo_pages_and_resolves_through_prometheus_and_alertmanager() {
    let dir = tempfile::tempdir().expect("temp dir");
    let args = ["demo", "--speed", "6"].map(String::from);
    let exp = Exporter::start_command(&args, &[("DATABASE_URL", ""), ("PGHOST", "")], dir);
    let hook = Receiver::start();
    let am = prom::alertmanager_with(&crate::paging::scaled_alertmanager_config(hook.port));
    let rules_dir = tempfile::tempdir().expect("temp dir");
    let rules = rules_dir.path().join("pathwatch.rules.yml");
    let status = std::process::Command::new("python3")
        .arg("alerts/install.py")
        .arg(&rules)
        .args(["--scale", &crate::paging::SCALE.to_string()])
        .status()
        .expect("python3");
    assert!(status.success());
    let _prom = prom::prometheus(exp.addr, &[rules], am.addr);
    // (healthy 10 s, outage 7.5 s, restart 5 s, degraded 6.7 s) on a loop
    let changes = || {
        let mut s: Vec<String> = crate::paging::notifications(&hook)
            .into_iter()
            .filter(|n| {
                n.labels.get("alertname").map(String::as_str) == Some("PathwatchIncidentPresent")
                    && n.labels.get("incident").map(String::as_str) == Some("1278")
            })
            .map(|n| n.group_status)
            .collect();
        s.dedup();
        s
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while changes().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "incident 1278 notifications: {:?}\nlogs:\n{}",
            changes(),
            exp.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(changes()[..3], ["firing", "resolved", "firing"]);
}

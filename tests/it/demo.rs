//! `pathwatch demo`: one command starts the reference service and pathwatch probing it with
//! every probe kind, and the scenario visibly moves the metrics (healthy -> outage with the
//! VPC connector in ERROR and Cloud SQL hanging -> recovery -> drift and a saturating
//! connection pool -> every slot taken). A real Prometheus scrapes it, every dashboard
//! panel's expression returns data, and every metric name the dashboards and alerts read is
//! in /metrics.

use crate::support::exporter::{Exporter, http_get, samples, value};
use crate::support::hang::closed_port;
use crate::support::pg::{PgCluster, PgOptions};
use crate::support::prom::{self, query};
use crate::support::receiver::Receiver;
use std::collections::{BTreeMap, BTreeSet};
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
        "cloudsql-socket",
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

/// Every metric name a PromQL expression of the dashboards or the alert rules reads
/// (expressions and the annotations' queries), recording rules' own names left out.
fn names_read() -> BTreeSet<String> {
    let mut texts: Vec<String> = crate::dashboards::expressions()
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    for file in crate::rules::rule_files() {
        let text = std::fs::read_to_string(&file).expect("rules");
        let doc: serde_json::Value = serde_saphyr::from_str(&text).expect("rules YAML");
        for g in doc["groups"].as_array().expect("groups") {
            for r in g["rules"].as_array().expect("rules") {
                texts.push(r["expr"].as_str().expect("expr").to_string());
                for a in r["annotations"].as_object().into_iter().flatten() {
                    texts.push(a.1.as_str().unwrap_or_default().to_string());
                }
            }
        }
    }
    let mut names = BTreeSet::new();
    for t in texts {
        for word in t.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
            // `pathwatch:...` names are recording rules, made by Prometheus.
            if word.starts_with("pathwatch_") {
                names.insert(word.to_string());
            }
        }
    }
    names
}

/// The sample names of a scrape.
fn names_in(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
}

/// Which act the demo plays now, from the reference service's faults.
fn act(sim: SocketAddr) -> &'static str {
    let (_, _, body) = http_get(sim, "/admin/faults");
    let f: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let pg = &f["postgres"];
    if pg["hang"] == true {
        "outage"
    } else if f["db_down"] == true {
        "outage goes on"
    } else if f["startup_delay_ms"].as_u64() > Some(0) {
        "restart"
    } else if pg["too_many_connections"] == true {
        "exhausted"
    } else if !pg["pool_sessions"].is_null() {
        "saturation"
    } else {
        "healthy"
    }
}

/// The demo pages: at speed 6 its probes run every second, so the rules' copy at
/// `alerts/install.py --scale 30` and the shipped Alertmanager config (timings / 30) let the
/// incident alert fire in the outage, resolve after the restart, and fire again when the
/// degraded agent drops an event: each change its own notification, the symptoms held back.
/// The same run, one loop of the scenario, holds every metric name the dashboards and the
/// alerts read, and shows the Postgres stand-in's acts: connects of milliseconds, a hang cut
/// at the probe's timeout (PathwatchDatabaseConnectTimeout fires), the pool past 80 % of
/// the usable slots before connects fail with too_many_connections.
#[test]
fn the_demo_pages_and_resolves_through_prometheus_and_alertmanager() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sim: SocketAddr = format!("127.0.0.1:{}", closed_port())
        .parse()
        .expect("addr");
    let args = ["demo", "--speed", "6", "--sim-listen", &sim.to_string()].map(String::from);
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
    let prom = prom::prometheus(exp.addr, &[rules], am.addr);
    // (healthy 10 s, outage 7.5 s, restart 5 s, degraded 6.7 s, exhausted 2.5 s) on a loop
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
    let wanted = names_read();
    let mut seen = BTreeSet::new();
    // Per act: the postgres probes' last lines, and their run durations.
    let mut acts: Vec<(&str, Instant)> = Vec::new();
    let mut lines: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut took: BTreeMap<(&str, String, String), Vec<f64>> = BTreeMap::new();
    let mut runs: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut timeout_at: Option<Instant> = None;
    let mut max_ratio: BTreeMap<&str, f64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    // One loop: every act seen, and the healthy act again after them.
    let looped =
        |acts: &[(&str, Instant)]| acts.len() > 5 && acts.last().map(|a| a.0) == Some("healthy");
    while changes().len() < 3 || !looped(&acts) {
        assert!(
            Instant::now() < deadline,
            "incident 1278 notifications: {:?}, acts {:?}\nlogs:\n{}",
            changes(),
            acts.iter().map(|a| a.0).collect::<Vec<_>>(),
            exp.logs()
        );
        let now = act(sim);
        if acts.last().map(|a| a.0) != Some(now) {
            acts.push((now, Instant::now()));
        }
        let m = exp.metrics();
        seen.extend(names_in(&m));
        let pg_lines: Vec<String> = m
            .lines()
            .filter(|l| l.contains("probe=\"database\"") || l.contains("probe=\"cloudsql-socket\""))
            .filter(|l| {
                [
                    "pathwatch_probe_success",
                    "pathwatch_probe_duration_seconds{",
                    "pathwatch_probe_timed_out",
                    "pathwatch_db_connections_used_ratio",
                    "pathwatch_probe_runs_total",
                    "pathwatch_probe_phase_duration_seconds",
                ]
                .iter()
                .any(|n| l.starts_with(n))
            })
            .map(str::to_string)
            .collect();
        // The first loop's: the last scrape of each act.
        if acts.iter().filter(|a| a.0 == now).count() == 1 {
            lines.insert(now, pg_lines);
        }
        // Each new run's duration, by act, probe and result.
        for probe in ["database", "cloudsql-socket"] {
            // The reason whose counter grew since the last scrape is the newest run's.
            let mut grew = None;
            for s in samples(&m, "pathwatch_probe_runs_total") {
                if s.labels.get("probe").map(String::as_str) != Some(probe) {
                    continue;
                }
                let reason = s.labels["reason"].clone();
                let before = runs.insert((probe.to_string(), reason.clone()), s.value);
                if before != Some(s.value) {
                    grew = Some(reason);
                }
            }
            let d = value(&m, "pathwatch_probe_duration_seconds", &[("probe", probe)]);
            if let (Some(reason), Some(d)) = (grew, d) {
                took.entry((now, probe.to_string(), reason))
                    .or_default()
                    .push(d);
            }
            if let Some(r) = value(
                &m,
                "pathwatch_db_connections_used_ratio",
                &[("probe", probe)],
            ) {
                let e = max_ratio.entry(now).or_insert(0.0);
                *e = e.max(r);
            }
        }
        if timeout_at.is_none()
            && !query(
                prom.addr,
                r#"ALERTS{alertname="PathwatchDatabaseConnectTimeout",alertstate="firing"}"#,
            )
            .is_empty()
        {
            timeout_at = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(changes()[..3], ["firing", "resolved", "firing"]);
    let missing: Vec<&String> = wanted.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "read by dashboards or alerts, never in /metrics: {missing:?}"
    );
    // The acts, as the Postgres probes saw them.
    let outage = acts.iter().find(|a| a.0 == "outage").expect("the outage").1;
    for (act, lines) in &lines {
        eprintln!("== {act}\n{}", lines.join("\n"));
    }
    for ((act, probe, result), d) in &took {
        let (lo, hi) = d
            .iter()
            .fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        eprintln!(
            "{act:>15} {probe:>16} {result:>22}: {} runs, {:.4}-{:.4} s",
            d.len(),
            lo,
            hi
        );
    }
    eprintln!("highest used ratio by act: {max_ratio:?}");
    let paged = timeout_at.map(|t| t.duration_since(outage));
    eprintln!(
        "PathwatchDatabaseConnectTimeout firing at Prometheus {paged:?} after the outage began"
    );
    let pager: Vec<_> = crate::paging::notifications(&hook)
        .into_iter()
        .filter(|n| {
            n.labels.get("alertname").map(String::as_str) == Some("PathwatchDatabaseConnectTimeout")
                && n.status == "firing"
        })
        .map(|n| n.at.saturating_duration_since(outage))
        .collect();
    eprintln!("PathwatchDatabaseConnectTimeout notifications after the outage began: {pager:?}");
    // Healthy connects succeed (in milliseconds in a release build; a debug build's SCRAM key
    // derivation in the client takes 0.1-1 s on a busy machine); the outage's are cut at the
    // timeout (1.667 s at speed 6); the pool passes 80 % before connects fail with
    // too_many_connections.
    assert!(
        took.contains_key(&("healthy", "cloudsql-socket".to_string(), "ok".to_string()))
            && !took.contains_key(&(
                "healthy",
                "cloudsql-socket".to_string(),
                "timeout".to_string()
            )),
        "{took:?}"
    );
    let hung = &took[&(
        "outage",
        "cloudsql-socket".to_string(),
        "timeout".to_string(),
    )];
    assert!(hung.iter().all(|d| (1.6..2.2).contains(d)), "{hung:?}");
    assert!(
        paged.is_some(),
        "PathwatchDatabaseConnectTimeout never fired"
    );
    assert!(max_ratio.get("saturation") >= Some(&0.8), "{max_ratio:?}");
    // (A run is counted in the act it was scraped in: the exhausted act's last one may land
    // in the next healthy act.)
    assert!(
        took.keys()
            .any(|(_, p, r)| p == "cloudsql-socket" && r == "too_many_connections"),
        "{:?}",
        took.keys().collect::<Vec<_>>()
    );
}

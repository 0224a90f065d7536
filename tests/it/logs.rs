//! The `logs` probe through the real binary: the first user's failure lines appended to a
//! file between runs, then the file rotated and truncated (counts keep going, nothing counts
//! twice), and Cloud Logging's entries:list against a fake with paging and faults.

use crate::support::cloud_logging::{
    CloudLoggingFake, Fault, TOKEN, json_entry, text_entry, timestamp,
};
use crate::support::exporter::{Exporter, value};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// The first user's patterns, as in examples/staging.yaml.
const PATTERNS: &str = r"    patterns:
      db_socket_failed: 'socket connection to /cloudsql/.*/\.s\.PGSQL\.5432 failed'
      startup_failed: 'Application startup failed\. Exiting\.'
      vpc_unreachable: 'Cloud SQL instance not accessible through VPC connector'
      ws_failed: 'Cannot establish WebSocket connection'
      db_phase: 'PHASE COMPLETED: DATABASE \(([0-9.]+)s\)'
";

const DB_SOCKET: &str = "2025-08-20 10:00:01 ERROR sqlalchemy.pool: socket connection to /cloudsql/netra-staging:us-central1:staging-shared-postgres/.s.PGSQL.5432 failed: timeout expired";
const STARTUP: &str =
    "2025-08-20 10:00:02 CRITICAL netra.startup: Application startup failed. Exiting.";
const VPC: &str =
    "2025-08-20 10:00:03 ERROR netra.db: Cloud SQL instance not accessible through VPC connector";
const WS: &str = "2025-08-20 10:00:04 WARNING netra.ws: Cannot establish WebSocket connection: backend not ready";

fn phase_line(secs: &str) -> String {
    format!("2025-08-20 10:00:05 INFO netra.startup: PHASE COMPLETED: DATABASE ({secs}s)")
}

fn append(path: &Path, lines: &[&str]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the log for appending");
    for l in lines {
        writeln!(f, "{l}").expect("append a line");
    }
}

fn matches(text: &str, probe: &str, pattern: &str) -> f64 {
    value(
        text,
        "pathwatch_log_pattern_matches_total",
        &[("probe", probe), ("pattern", pattern)],
    )
    .unwrap_or(-1.0)
}

fn wait_lines(exp: &Exporter, probe: &str, n: f64) -> String {
    exp.wait_for(
        "pathwatch_log_lines_read_total",
        &[("probe", probe)],
        WAIT,
        |v| v == n,
    );
    exp.metrics()
}

/// Lets a few more runs pass, then checks that `n` lines are still all that was read.
fn settle(exp: &Exporter, probe: &str, n: f64) -> String {
    std::thread::sleep(Duration::from_millis(2500));
    let m = exp.metrics();
    assert_eq!(
        value(&m, "pathwatch_log_lines_read_total", &[("probe", probe)]),
        Some(n),
        "lines counted twice or lost:\n{m}"
    );
    m
}

#[test]
fn logs_file_counts_appended_lines_across_rotation_and_truncation() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("app.log");
    append(
        &log,
        &[
            "2025-08-20 09:59:59 INFO uvicorn: Started server process",
            STARTUP,
        ],
    );
    let yaml = format!(
        "defaults: {{ interval: 1s }}\nprobes:\n  - name: backend-logs\n    kind: logs\n    window: 30m\n{PATTERNS}    file: {{ path: {} }}\n",
        log.display()
    );
    let exp = Exporter::start(&yaml);
    // Series exist at 0 for every pattern before anything matched.
    let first = exp.metrics();
    assert!(
        first.contains(r#"pathwatch_log_pattern_matches_total{probe="backend-logs",pattern="vpc_unreachable"} 0"#),
        "{first}"
    );
    // The lines already there are read by the first run.
    let m = wait_lines(&exp, "backend-logs", 2.0);
    assert_eq!(matches(&m, "backend-logs", "startup_failed"), 1.0);
    assert_eq!(matches(&m, "backend-logs", "db_socket_failed"), 0.0);
    assert_eq!(
        value(
            &m,
            "pathwatch_probe_success",
            &[("probe", "backend-logs"), ("kind", "logs")]
        ),
        Some(1.0)
    );

    // The incident's lines, appended between runs (one without its newline yet).
    append(&log, &[DB_SOCKET, &phase_line("12.345"), WS]);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("open the log");
    write!(f, "{}", &DB_SOCKET[..40]).expect("write half a line");
    let m = wait_lines(&exp, "backend-logs", 5.0);
    assert_eq!(matches(&m, "backend-logs", "db_socket_failed"), 1.0);
    assert_eq!(matches(&m, "backend-logs", "ws_failed"), 1.0);
    assert_eq!(
        value(
            &m,
            "pathwatch_log_pattern_last_value",
            &[("probe", "backend-logs"), ("pattern", "db_phase")]
        ),
        Some(12.345)
    );
    // The half line is held back until its end arrives.
    writeln!(f, "{}", &DB_SOCKET[40..]).expect("finish the line");
    drop(f);
    let m = wait_lines(&exp, "backend-logs", 6.0);
    assert_eq!(matches(&m, "backend-logs", "db_socket_failed"), 2.0);

    // Rotation: rename, the writer's last line lands in the old file, then a new file.
    let rotated = dir.path().join("app.log.1");
    std::fs::rename(&log, &rotated).expect("rotate");
    append(&rotated, &[DB_SOCKET]);
    append(&log, &[STARTUP, VPC, &phase_line("0.512")]);
    let m = wait_lines(&exp, "backend-logs", 10.0);
    assert_eq!(matches(&m, "backend-logs", "db_socket_failed"), 3.0);
    assert_eq!(matches(&m, "backend-logs", "startup_failed"), 2.0);
    assert_eq!(matches(&m, "backend-logs", "vpc_unreachable"), 1.0);
    assert_eq!(matches(&m, "backend-logs", "db_phase"), 2.0);
    assert_eq!(
        value(
            &m,
            "pathwatch_log_pattern_last_value",
            &[("probe", "backend-logs"), ("pattern", "db_phase")]
        ),
        Some(0.512)
    );
    let m = settle(&exp, "backend-logs", 10.0);

    // Truncation in place (copytruncate): read again from the start.
    std::fs::write(&log, format!("{WS}\n")).expect("truncate and write");
    let m2 = wait_lines(&exp, "backend-logs", 11.0);
    assert_eq!(matches(&m2, "backend-logs", "ws_failed"), 2.0);
    let m2 = settle(&exp, "backend-logs", 11.0);
    // All within the 30m window: the gauge equals the counter for every pattern.
    for p in [
        "db_socket_failed",
        "startup_failed",
        "vpc_unreachable",
        "ws_failed",
        "db_phase",
    ] {
        assert_eq!(
            value(
                &m2,
                "pathwatch_log_pattern_window_matches",
                &[("probe", "backend-logs"), ("pattern", p)]
            ),
            Some(matches(&m2, "backend-logs", p)),
            "{p}"
        );
    }
    // Matched text never becomes a label.
    assert!(!m.contains("cloudsql/netra-staging"), "{m}");
}

#[test]
fn logs_file_missing_is_not_found_until_it_appears() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("later.log");
    let yaml = format!(
        "defaults: {{ interval: 1s }}\nprobes:\n  - name: later-logs\n    kind: logs\n{PATTERNS}    file: {{ path: {}, read_existing: false }}\n",
        log.display()
    );
    let exp = Exporter::start(&yaml);
    exp.wait_for(
        "pathwatch_probe_runs_total",
        &[
            ("probe", "later-logs"),
            ("result", "failure"),
            ("reason", "not_found"),
        ],
        WAIT,
        |v| v >= 1.0,
    );
    // A file that appears after the first run is new: all of it counts.
    append(&log, &[VPC, VPC]);
    let m = wait_lines(&exp, "later-logs", 2.0);
    assert_eq!(matches(&m, "later-logs", "vpc_unreachable"), 2.0);
}

fn cloud_config(base: &str, extra: &str) -> String {
    format!(
        r#"defaults: {{ interval: 1s }}
probes:
  - name: backend-cloud-logs
    kind: logs
{PATTERNS}    cloud_logging:
      project: netra-staging
      filter: 'resource.type="cloud_run_revision" AND resource.labels.service_name="netra-backend-staging" AND severity>=WARNING'
      api_base: {base}
      page_size: 2
      max_pages: 10
{extra}"#
    )
}

#[test]
fn logs_cloud_logging_pages_dedupes_and_maps_faults() {
    let fake = CloudLoggingFake::start();
    let t = |mins: u64| timestamp(Duration::from_secs(mins * 60));
    let same = t(3);
    fake.push(text_entry("e1", &t(9), DB_SOCKET));
    fake.push(json_entry("e2", &t(8), STARTUP));
    fake.push(text_entry("e3", &t(7), &phase_line("75.021")));
    fake.push(json_entry("e4", &t(6), "INFO request served"));
    fake.push(text_entry("e5", &same, VPC));
    // Older than the 30m window: never asked for.
    fake.push(text_entry("old", &t(45), DB_SOCKET));
    let yaml = cloud_config(
        &fake.base(),
        "      credentials: { token_env: TEST_GCP_TOKEN }\n",
    );
    let exp = Exporter::start_with_env(&yaml, &[("TEST_GCP_TOKEN", TOKEN)]);
    let m = wait_lines(&exp, "backend-cloud-logs", 5.0);
    assert_eq!(matches(&m, "backend-cloud-logs", "db_socket_failed"), 1.0);
    assert_eq!(matches(&m, "backend-cloud-logs", "startup_failed"), 1.0);
    assert_eq!(matches(&m, "backend-cloud-logs", "vpc_unreachable"), 1.0);
    assert_eq!(
        value(
            &m,
            "pathwatch_log_pattern_last_value",
            &[("probe", "backend-cloud-logs"), ("pattern", "db_phase")]
        ),
        Some(75.021)
    );
    // Three pages of two on the first run, following nextPageToken.
    let reqs = fake.requests();
    assert_eq!(
        reqs[0]["resourceNames"],
        serde_json::json!(["projects/netra-staging"])
    );
    assert_eq!(reqs[0]["orderBy"], "timestamp asc");
    assert_eq!(reqs[0]["pageSize"], 2);
    assert!(reqs[0].get("pageToken").is_none());
    assert_eq!(reqs[1]["pageToken"], "page-2");
    assert_eq!(reqs[2]["pageToken"], "page-4");
    let filter = reqs[0]["filter"].as_str().expect("filter");
    assert!(
        filter.starts_with(r#"(resource.type="cloud_run_revision" AND resource.labels.service_name="netra-backend-staging" AND severity>=WARNING) AND timestamp>=""#),
        "{filter}"
    );
    // Later runs start at the last entry seen, which comes back and is not counted again.
    let m = settle(&exp, "backend-cloud-logs", 5.0);
    let last = fake.requests().last().cloned().expect("a request");
    assert!(
        last["filter"]
            .as_str()
            .unwrap_or("")
            .ends_with(&format!("timestamp>=\"{same}\"")),
        "{last}"
    );
    assert_eq!(matches(&m, "backend-cloud-logs", "vpc_unreachable"), 1.0);

    // A new entry at the boundary timestamp and a later one: each counts once.
    fake.push(text_entry("e6", &same, WS));
    fake.push(json_entry("e7", &t(1), STARTUP));
    let m = wait_lines(&exp, "backend-cloud-logs", 7.0);
    assert_eq!(matches(&m, "backend-cloud-logs", "ws_failed"), 1.0);
    assert_eq!(matches(&m, "backend-cloud-logs", "startup_failed"), 2.0);

    // Faults, one request each: every one is a failed run with its reason, none loses or
    // repeats an entry.
    fake.fault(Fault::Status(401, None));
    fake.fault(Fault::Status(429, Some(2)));
    fake.fault(Fault::Status(500, None));
    fake.fault(Fault::Malformed);
    for reason in ["auth", "rate_limited", "server_error", "protocol"] {
        exp.wait_for(
            "pathwatch_probe_runs_total",
            &[
                ("probe", "backend-cloud-logs"),
                ("result", "failure"),
                ("reason", reason),
            ],
            WAIT,
            |v| v >= 1.0,
        );
    }
    fake.push(text_entry("e8", &t(0), DB_SOCKET));
    let m = wait_lines(&exp, "backend-cloud-logs", 8.0);
    assert_eq!(matches(&m, "backend-cloud-logs", "db_socket_failed"), 2.0);
    let m = settle(&exp, "backend-cloud-logs", 8.0);
    assert!(
        value(
            &m,
            "pathwatch_probe_success",
            &[("probe", "backend-cloud-logs"), ("kind", "logs")]
        ) == Some(1.0)
    );
    let logs = exp.logs();
    assert!(logs.contains("retry after 2 s"), "{logs}");
    for text in [m, logs, exp.get("/").2] {
        assert!(!text.contains(TOKEN), "token leaked:\n{text}");
    }
}

#[test]
fn logs_cloud_logging_token_from_the_metadata_server() {
    let fake = CloudLoggingFake::start();
    fake.push(text_entry(
        "m1",
        &timestamp(Duration::from_secs(60)),
        STARTUP,
    ));
    let yaml = cloud_config(&fake.base(), "");
    let host = fake.served.addr.to_string();
    let exp = Exporter::start_with_env(&yaml, &[("GCE_METADATA_HOST", host.as_str())]);
    let m = wait_lines(&exp, "backend-cloud-logs", 1.0);
    assert_eq!(matches(&m, "backend-cloud-logs", "startup_failed"), 1.0);
    let phases: Vec<_> =
        crate::support::exporter::samples(&m, "pathwatch_probe_phase_duration_seconds")
            .into_iter()
            .filter(|s| s.labels.get("probe").map(String::as_str) == Some("backend-cloud-logs"))
            .filter_map(|s| s.labels.get("phase").cloned())
            .collect();
    assert!(phases.contains(&"credentials".to_string()), "{phases:?}");
    assert!(phases.contains(&"request".to_string()), "{phases:?}");
}

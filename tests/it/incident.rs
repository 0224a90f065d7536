//! Incident resolution end to end, with the reference service: induce the outage and see
//! status 1 and the log line; remove it and see status 0 after the hysteresis, the change
//! counter move, the webhook called, `check` exit 1 then 0, and the status page show both
//! states in a real browser.

use crate::support::browser;
use crate::support::exporter::{BIN, Exporter, value};
use crate::support::hang::closed_port;
use crate::support::receiver::Receiver;
use crate::support::sim::{PASSWORD, Sim};
use pathwatch::sim::Faults;
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn config(sim: &Sim, webhook_port: u16) -> String {
    format!(
        r#"defaults: {{ interval: 300ms, timeout: 3s }}
probes:
  - name: backend-database-health
    kind: http
    url: {db}
  - name: golden-path
    kind: golden_path
    login: {{ url: {login}, email: sre@example.com, password: "${{SIM_PASSWORD}}" }}
    websocket: {{ url: {ws} }}
incidents:
  - id: "1278"
    title: Staging cannot reach Cloud SQL through the VPC connector
    resolve_after: 3
    reopen_after: 2
    webhook: {{ url: "http://127.0.0.1:{webhook_port}/hook?token=hook-secret-123", attempts: 2 }}
    criteria:
      - {{ name: backend_database, probe: backend-database-health, success: true }}
      - {{ name: golden_path, probe: golden-path, max_seconds: 60 }}
      - {{ name: websocket_events, probe: golden-path, all_events: true }}
"#,
        db = sim.http("/api/health/database"),
        login = sim.http("/auth/login"),
        ws = sim.ws(),
    )
}

fn check(config: &std::path::Path, format: &str) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(config)
        .args(["--format", format, "--incident", "1278"])
        .env("SIM_PASSWORD", PASSWORD)
        .output()
        .expect("run pathwatch check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn outage_then_fix_moves_status_log_webhook_check_and_page() {
    let sim = Sim::start(Faults {
        db_down: true,
        ..Faults::default()
    });
    let hook = Receiver::start();
    let exp = Exporter::start_with_env(&config(&sim, hook.port), &[("SIM_PASSWORD", PASSWORD)]);
    let status = |want: f64| {
        exp.wait_for(
            "pathwatch_incident_status",
            &[("incident", "1278")],
            WAIT,
            |v| v == want,
        )
    };

    // The outage: present, with the readable line.
    status(1.0);
    let logs = exp.logs();
    assert!(
        logs.contains("Incident 1278 PRESENT: backend_database failing (http_status); golden_path failing (server_error); "),
        "{logs}"
    );
    let m = exp.metrics();
    let met = |c: &str| {
        value(
            &m,
            "pathwatch_incident_criterion_met",
            &[("incident", "1278"), ("criterion", c)],
        )
    };
    assert_eq!(met("backend_database"), Some(0.0));
    assert_eq!(met("websocket_events"), Some(0.0));
    assert_eq!(
        value(
            &m,
            "pathwatch_incident_criterion_threshold",
            &[("incident", "1278"), ("criterion", "golden_path")]
        ),
        Some(60.0)
    );
    let (code, out) = check(&exp.config_path(), "text");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Incident 1278 PRESENT"), "{out}");
    assert!(
        out.contains("backend_database  failing (http_status)"),
        "{out}"
    );
    let page = browser::dump_dom(&format!("http://{}/", exp.addr));
    assert!(
        page.contains("Incident 1278") && page.contains(">PRESENT<"),
        "{page}"
    );
    assert!(page.contains("id=\"probe-golden-path\""), "{page}");

    // The fix: resolved once every criterion passed 3 times in a row. Meanwhile the page and
    // /api/status show the progress.
    sim.state.set_faults(Faults::default());
    let deadline = std::time::Instant::now() + WAIT;
    let progress = loop {
        let (_, _, body) = exp.get("/api/status");
        let api: serde_json::Value = serde_json::from_str(&body).expect("/api/status");
        let inc = &api["incidents"][0];
        assert_ne!(
            inc["status"], "RESOLVED",
            "resolved without showing progress"
        );
        if let Some(p) = inc["progress"].as_str() {
            assert_eq!(inc["status"], "PRESENT");
            assert_eq!(inc["resolving"]["needed"], 3);
            let (_, _, page) = exp.get("/");
            break (p.to_string(), page);
        }
        assert!(std::time::Instant::now() < deadline, "no progress: {body}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        [
            "resolving: 1 of 3 passing results",
            "resolving: 2 of 3 passing results"
        ]
        .contains(&progress.0.as_str()),
        "{}",
        progress.0
    );
    assert!(progress.1.contains("resolving: "), "{}", progress.1);
    status(0.0);
    let m = exp.metrics();
    let changes = value(
        &m,
        "pathwatch_incident_status_changes_total",
        &[("incident", "1278")],
    );
    assert_eq!(changes, Some(2.0), "unknown -> present -> resolved");
    let runs = value(
        &m,
        "pathwatch_probe_runs_total",
        &[
            ("probe", "golden-path"),
            ("result", "success"),
            ("reason", "ok"),
        ],
    );
    assert!(
        runs >= Some(3.0),
        "hysteresis: at least 3 passing runs, got {runs:?}"
    );
    assert!(
        value(
            &m,
            "pathwatch_incident_last_change_timestamp_seconds",
            &[("incident", "1278")]
        ) > Some(0.0)
    );
    assert!(
        exp.logs()
            .contains("Incident 1278 RESOLVED: backend_database ok; golden_path ")
    );
    assert!(exp.logs().contains("websocket_events 5/5"));
    let page = browser::dump_dom(&format!("http://{}/", exp.addr));
    assert!(page.contains(">RESOLVED<"), "{page}");
    // The timeline: both changes, with the criteria that moved and their values then.
    assert!(page.contains("class=\"timeline\""), "{page}");
    let (_, _, body) = exp.get("/api/status");
    let api: serde_json::Value = serde_json::from_str(&body).expect("/api/status");
    let timeline = api["incidents"][0]["timeline"]
        .as_array()
        .expect("timeline")
        .clone();
    assert_eq!(timeline.len(), 2, "{timeline:?}");
    assert_eq!(
        (&timeline[0]["from"], &timeline[0]["to"]),
        (&"UNKNOWN".into(), &"PRESENT".into())
    );
    assert_eq!(
        timeline[0]["criteria"][0],
        serde_json::json!(["backend_database", false, "failing (http_status)"]),
        "{timeline:?}"
    );
    assert_eq!(
        (&timeline[1]["from"], &timeline[1]["to"]),
        (&"PRESENT".into(), &"RESOLVED".into())
    );
    let moved: Vec<&str> = timeline[1]["criteria"]
        .as_array()
        .expect("criteria")
        .iter()
        .map(|c| c[0].as_str().expect("name"))
        .collect();
    assert_eq!(
        moved,
        ["backend_database", "golden_path", "websocket_events"],
        "every criterion failed at PRESENT and passes at RESOLVED"
    );
    assert!(
        timeline[1]["at_unix"].as_f64() > timeline[0]["at_unix"].as_f64(),
        "{timeline:?}"
    );

    // The webhook got both changes, as JSON.
    let deadline = std::time::Instant::now() + WAIT;
    while hook.bodies().len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    let last: serde_json::Value = serde_json::from_str(&bodies[1]).expect("JSON body");
    assert_eq!(last["incident"], "1278");
    assert_eq!(last["status"], "RESOLVED");
    assert_eq!(last["previous"], "PRESENT");
    assert_eq!(last["criteria"].as_array().map(Vec::len), Some(3));
    // The webhook URL's token stays out of the logs.
    assert!(!exp.logs().contains("hook-secret-123"));

    let (code, out) = check(&exp.config_path(), "junit");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("<testsuite name=\"incident 1278\" tests=\"3\" failures=\"0\">"),
        "{out}"
    );
    let (code, out) = check(&exp.config_path(), "json");
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&out).expect("check --format json");
    assert_eq!(report["incidents"][0]["status"], "RESOLVED");
    let (_, api, body) = exp.get("/api/status");
    assert!(api.starts_with("application/json"));
    let api: serde_json::Value = serde_json::from_str(&body).expect("/api/status");
    assert_eq!(api["incidents"][0]["status"], "RESOLVED");
    assert!(
        api["probes"][0]["history"]
            .as_array()
            .is_some_and(|h| h.len() >= 3)
    );
}

#[test]
fn a_dead_webhook_never_blocks_probing() {
    let sim = Sim::start(Faults {
        db_down: true,
        ..Faults::default()
    });
    let exp = Exporter::start_with_env(&config(&sim, closed_port()), &[("SIM_PASSWORD", PASSWORD)]);
    exp.wait_for(
        "pathwatch_incident_status",
        &[("incident", "1278")],
        WAIT,
        |v| v == 1.0,
    );
    let before = value(
        &exp.metrics(),
        "pathwatch_probe_runs_total",
        &[
            ("probe", "golden-path"),
            ("result", "failure"),
            ("reason", "server_error"),
        ],
    )
    .unwrap_or(0.0);
    // The first attempt failed and its retry waits 1 s: probes go on meanwhile.
    exp.wait_for(
        "pathwatch_probe_runs_total",
        &[
            ("probe", "golden-path"),
            ("result", "failure"),
            ("reason", "server_error"),
        ],
        WAIT,
        |v| v >= before + 3.0,
    );
    let deadline = std::time::Instant::now() + WAIT;
    while !exp.logs().contains("webhook gave up after 2 attempts") {
        assert!(std::time::Instant::now() < deadline, "{}", exp.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        exp.logs().contains("webhook connection failed"),
        "{}",
        exp.logs()
    );
}

#[test]
fn check_exit_codes_and_bad_criteria() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "probes:\n  - { name: p, kind: tcp, host: 127.0.0.1, port: 1 }\nincidents:\n  - id: x\n    criteria:\n      - { name: events, probe: p, all_events: true }\n",
    )
    .expect("write config");
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .expect("run check");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("bad.yaml:6:9: incident \"x\": criterion \"events\": a tcp probe does not report what all_events needs"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

//! Root causes through the real binary: `pathwatch demo` walks the user's outage, and
//! /api/status and the status page name one root cause: the VPC connector while it is ERROR
//! (every layer above it fails too), then the database once the connector is READY again;
//! an incident's page names only the root causes behind its own probes.

use crate::support::browser;
use crate::support::exporter::Exporter;
use std::time::{Duration, Instant};

/// Polls /api/status until `pred` holds for its `root_cause` line and judgement; returns
/// the snapshot.
fn wait_root_cause(
    exp: &Exporter,
    what: &str,
    pred: impl Fn(&str, &serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen: Vec<String> = Vec::new();
    loop {
        let (status, _, body) = exp.get("/api/status");
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).expect("/api/status is JSON");
        let line = v["root_cause"].as_str().unwrap_or("").to_string();
        if pred(&line, &v["judgement"]) {
            return v;
        }
        if seen.last() != Some(&line) {
            seen.push(line);
        }
        assert!(
            Instant::now() < deadline,
            "no root cause {what} within 60 s; lines seen: {seen:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_demo_outage_names_the_connector_then_the_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    // 5x: healthy 12 s, the connector in ERROR 6 s, then READY with the database still down
    // 3 s; probes every second.
    let args = ["demo", "--speed", "5"].map(String::from);
    let exp = Exporter::start_command(&args, &[("DATABASE_URL", ""), ("PGHOST", "")], dir);

    // Healthy: nothing to name.
    let v = wait_root_cause(&exp, "absent while healthy", |l, _| l.is_empty());
    assert!(
        v["judgement"]["root_causes"]
            .as_array()
            .expect("list")
            .is_empty()
    );

    // Once the private network's probes have failed too, they follow from the connector.
    let v = wait_root_cause(&exp, "naming the connector", |l, j| {
        // Both private-network probes: each fails at its own next run after the connector.
        l.starts_with("Root cause: vpc-connector (is ERROR); ")
            && j["blocked_by"]["redis"].is_array()
            && j["blocked_by"]["vpc-path-redis"].is_array()
    });
    let j = &v["judgement"];
    assert_eq!(
        j["root_causes"],
        serde_json::json!(["vpc-connector"]),
        "{v}"
    );
    for p in ["vpc-path-redis", "redis"] {
        assert_eq!(
            j["blocked_by"][p],
            serde_json::json!(["vpc-connector"]),
            "{p}: {j}"
        );
    }
    // Kept for people (CI keeps target/ci-artifacts/): the page in the outage, as rendered.
    let shots = std::path::Path::new("target/ci-artifacts");
    std::fs::create_dir_all(shots).expect("target/ci-artifacts");
    let shot = shots.join("status-page-root-cause.png");
    browser::screenshot(&format!("http://{}/", exp.addr), &shot, (1280, 1400));
    assert!(
        std::fs::metadata(&shot).expect("screenshot").len() > 10_000,
        "an empty screenshot"
    );
    let page = browser::dump_dom(&format!("http://{}/", exp.addr));
    assert!(
        page.contains("id=\"root-cause\"") && page.contains("Root cause: vpc-connector (is ERROR)"),
        "{page}"
    );
    // Each probe's row says where its failure comes from.
    assert!(page.contains("follows from vpc-connector"), "{page}");
    assert!(page.contains("· root cause"), "{page}");

    let v = wait_root_cause(&exp, "naming the database", |l, _| {
        l.starts_with("Root cause: backend-database-health (http_status)")
    });
    assert_eq!(
        v["judgement"]["root_causes"],
        serde_json::json!(["backend-database-health"]),
        "{v}"
    );
    // The incident's log line carries the cause it was raised with.
    let logs = exp.logs();
    assert!(
        logs.contains("Incident 1278 PRESENT: ")
            && logs.contains(". Root cause: vpc-connector (is ERROR)"),
        "{logs}"
    );
}

/// A port nothing listens on: connects are refused.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[test]
fn an_incidents_webhook_names_only_the_root_causes_behind_its_probes() {
    let hook = crate::support::receiver::Receiver::start();
    let closed = closed_port();
    // Two graphs failing at once on one replica; the incident judges the first only.
    let yaml = format!(
        r#"defaults: {{ interval: 1s, timeout: 1s }}
probes:
  - {{ name: db-a, kind: tcp, host: 127.0.0.1, port: {closed} }}
  - {{ name: app-a, kind: tcp, host: 127.0.0.1, port: {closed}, depends_on: [db-a] }}
  - {{ name: db-b, kind: tcp, host: 127.0.0.1, port: {closed} }}
  - {{ name: app-b, kind: tcp, host: 127.0.0.1, port: {closed}, depends_on: [db-b] }}
incidents:
  - id: inc-a
    reopen_after: 2
    webhook: {{ url: "http://127.0.0.1:{}/hook" }}
    criteria:
      - {{ name: app_a_up, probe: app-a, success: true }}
"#,
        hook.port
    );
    let exp = Exporter::start(&yaml);
    // The replica as a whole has two root causes...
    wait_root_cause(&exp, "naming both graphs", |l, _| {
        l.starts_with("Root causes: db-a (refused), db-b (refused)")
    });
    // ...the incident's page names the one behind its probe.
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        if let Some(b) = hook.bodies().into_iter().next() {
            break b;
        }
        assert!(Instant::now() < deadline, "no webhook within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    let v: serde_json::Value = serde_json::from_str(&body).expect("webhook JSON");
    assert_eq!(v["status"], "PRESENT", "{body}");
    assert_eq!(
        v["root_cause"], "Root cause: db-a (refused); 1 failure follows from it",
        "{body}"
    );
}

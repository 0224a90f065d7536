//! End to end, as users run it: real Prometheus scrapes pathwatch (which probes the reference
//! service, its Google APIs included, and a throwaway Postgres), loads the shipped rules from
//! alerts/, and sends to a real Alertmanager. Every dashboard expression returns data through
//! Prometheus's API; breaking the service makes the right alerts fire and reach
//! Alertmanager; healing it resolves them. (tests/it/paging.rs proves every alert one by one.)

use crate::support::exporter::Exporter;
use crate::support::hang::closed_port;
use crate::support::pg::{PgCluster, PgOptions};
use crate::support::prom::{self, alerts, query};
use crate::support::receiver::Receiver;
use crate::support::sim::{PASSWORD, Sim};
use pathwatch::sim::Faults;
use pathwatch::sim::gcp;
use std::time::{Duration, Instant};

fn config(sim: &Sim, pg: &PgCluster, log: &std::path::Path, tls_port: u16) -> String {
    format!(
        r#"defaults: {{ interval: 1s, timeout: 5s }}
probes:
  - name: backend-health
    kind: http
    url: {health}
  - name: backend-database-health
    kind: http
    url: {dbhealth}
  - name: backend-startup
    kind: startup
    poll_interval: 200ms
    check: {{ url: "{health}" }}
  - name: golden-path
    kind: golden_path
    login: {{ url: {login}, email: e2e@example.com, password: "${{SIM_PASSWORD}}" }}
    websocket: {{ url: {ws} }}
  - name: staging-db
    kind: postgres
    host: 127.0.0.1
    port: {pgport}
    password: "${{PG_PASSWORD}}"
    sslmode: disable
    connections: true
  - name: vpc-path-closed
    kind: tcp
    host: 127.0.0.1
    port: {closed}
  - name: vpc-connector
    kind: gcp_vpc_connector
    project: {project}
    region: {region}
    connector: {connector}
    api_base: {gcp}
  - name: cloudsql-instance
    kind: gcp_cloudsql
    project: {project}
    instance: {instance}
    api_base: {gcp}
  - name: backend-service
    kind: gcp_cloud_run
    project: {project}
    region: {region}
    service: {service}
    api_base: {gcp}
    expect: {{ egress: ALL_TRAFFIC, env: {{ DB_CONNECT_TIMEOUT: "75" }} }}
    safe_env: [DB_CONNECT_TIMEOUT]
  - name: backend-logs
    kind: logs
    patterns:
      db_socket_failed: 'socket connection to /cloudsql/.*/\.s\.PGSQL\.5432 failed'
      startup_failed: 'Application startup failed\. Exiting\.'
      container_exit: 'Container called exit\(([0-9]+)\)'
    file: {{ path: "{log}" }}
  - name: backend-tls
    kind: tls_cert
    host: 127.0.0.1
    port: {tls_port}
    insecure_skip_verify: true
  - name: backend-dns
    kind: dns
    server: "{dns}"
    query_name: {dns_name}
  - name: agent-grpc-health
    kind: grpc
    host: 127.0.0.1
    port: {grpc_port}
    service: {grpc_service}
  # As root (the test environment): a raw socket.
  - name: backend-ping
    kind: icmp
    host: 127.0.0.1
incidents:
  - id: "1278"
    title: Staging cannot reach Cloud SQL through the VPC connector
    criteria:
      - {{ name: database_connect, probe: staging-db, max_seconds: 10 }}
      - {{ name: backend_database, probe: backend-database-health, success: true }}
      - {{ name: golden_path, probe: golden-path, max_seconds: 60 }}
      - {{ name: websocket_events, probe: golden-path, all_events: true }}
"#,
        health = sim.http("/health"),
        dbhealth = sim.http("/api/health/database"),
        login = sim.http("/auth/login"),
        ws = sim.ws(),
        pgport = pg.port(),
        closed = closed_port(),
        // The reference service also answers the Google APIs.
        gcp = sim.http(""),
        project = gcp::PROJECT,
        region = gcp::REGION,
        connector = gcp::CONNECTOR,
        instance = gcp::INSTANCE,
        service = gcp::SERVICE,
        log = log.display(),
        dns = sim.dns,
        dns_name = pathwatch::sim::dns::BACKEND,
        grpc_port = sim.grpc.port(),
        grpc_service = pathwatch::sim::grpc::SERVICE,
    )
}

fn wait(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn has_alert(prom: std::net::SocketAddr, name: &str, state: &str) -> bool {
    alerts(prom).iter().any(|(n, s)| n == name && s == state)
}

/// The webhook bodies Alertmanager sent: (status, alertname) of every alert in them.
fn notified(hook: &Receiver) -> Vec<(String, String)> {
    hook.bodies()
        .iter()
        .filter_map(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .flat_map(|v| v["alerts"].as_array().cloned().unwrap_or_default())
        .map(|a| {
            (
                a["status"].as_str().unwrap_or("").to_string(),
                a["labels"]["alertname"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Every dashboard panel expression that returns nothing now, as `panel: expr`.
pub fn panels_without_data(p: std::net::SocketAddr) -> Vec<String> {
    crate::dashboards::expressions()
        .into_iter()
        .filter(|(_, expr)| query(p, expr).is_empty())
        .map(|(panel, expr)| format!("{panel}: {expr}"))
        .collect()
}

#[test]
fn prometheus_alertmanager_dashboards_and_alerts_end_to_end() {
    let pg = PgCluster::start(PgOptions::default());
    let sim = Sim::start(Faults::default());
    let tls = crate::support::tls_target::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("backend.log");
    std::fs::write(
        &log,
        "ERROR socket connection to /cloudsql/netra-staging:us-central1:staging-shared-postgres/.s.PGSQL.5432 failed: timeout expired\nWARNING Container called exit(3).\n",
    )
    .expect("write the log");
    let exp = Exporter::start_with_env(
        &config(&sim, &pg, &log, tls.addr.port()),
        &[
            ("SIM_PASSWORD", PASSWORD),
            ("PG_PASSWORD", pg.password()),
            ("GCE_METADATA_HOST", &sim.addr.to_string()),
        ],
    );
    let hook = Receiver::start();
    let am = prom::alertmanager(&format!("http://127.0.0.1:{}/alertmanager", hook.port));
    let prom = prom::prometheus(exp.addr, &crate::rules::rule_files(), am.addr);
    let p = prom.addr;

    // Healthy: the incident resolves.
    wait(
        "incident resolved in Prometheus",
        Duration::from_secs(60),
        || query(p, "pathwatch_incident_status{incident=\"1278\"} == 0").len() == 1,
    );
    assert!(!has_alert(p, "PathwatchIncidentPresent", "firing"));
    // Panels of failures need the outage, panels of steps need a healthy run: each panel must
    // have data in one of the two states.
    let empty_when_healthy = panels_without_data(p);

    // The outage of incident 1278: logins 503, WebSocket 1011, database health 503.
    sim.state.set_faults(Faults {
        db_down: true,
        ..Faults::default()
    });
    wait(
        "PathwatchIncidentPresent firing at Alertmanager",
        Duration::from_secs(120),
        || {
            notified(&hook)
                .iter()
                .any(|(s, n)| s == "firing" && n == "PathwatchIncidentPresent")
        },
    );
    for name in [
        "PathwatchGoldenPathFailing",
        "PathwatchHealthEndpointFailing",
    ] {
        wait(name, Duration::from_secs(30), || {
            has_alert(p, name, "firing")
        });
    }

    // The container's exit code, from Cloud Run's system line in the log (issue 22).
    assert_eq!(
        crate::support::exporter::value(
            &exp.metrics(),
            "pathwatch_log_pattern_last_value",
            &[("probe", "backend-logs"), ("pattern", "container_exit")]
        ),
        Some(3.0)
    );
    let empty: Vec<String> = panels_without_data(p)
        .into_iter()
        .filter(|e| empty_when_healthy.contains(e))
        .collect();
    assert!(
        empty.is_empty(),
        "panels without data:\n{}",
        empty.join("\n")
    );

    // Healing resolves the alerts, and Alertmanager says so.
    sim.state.set_faults(Faults::default());
    wait("incident resolved again", Duration::from_secs(60), || {
        query(p, "pathwatch_incident_status{incident=\"1278\"} == 0").len() == 1
    });
    wait(
        "PathwatchIncidentPresent resolved at Alertmanager",
        Duration::from_secs(60),
        || {
            notified(&hook)
                .iter()
                .any(|(s, n)| s == "resolved" && n == "PathwatchIncidentPresent")
        },
    );
    // The symptom resolves too: at its own next evaluation, which on a loaded machine may come
    // a little after the incident's resolved notice.
    wait(
        "PathwatchGoldenPathFailing no longer firing",
        Duration::from_secs(30),
        || !has_alert(p, "PathwatchGoldenPathFailing", "firing"),
    );
}

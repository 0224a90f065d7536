//! `pathwatch demo`: the reference service and pathwatch probing it with every probe kind,
//! walking the first user's incident on a loop (healthy -> VPC connector in ERROR and the
//! database unreachable -> restart -> degraded with configuration drift) so every metric and
//! every dashboard panel moves. A Postgres probe joins when `DATABASE_URL` or `PGHOST` points
//! at one.

use crate::sim::gcp::{CONNECTOR, INSTANCE, PROJECT, REGION, SERVICE};
use crate::sim::{Faults, SimOptions, SimState};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One step of the scenario: what is wrong, and for how long.
pub struct Act {
    pub name: &'static str,
    pub faults: Faults,
    /// Restart the service when the act begins (its startup delay applies anew).
    pub restart: bool,
    pub lasts: Duration,
}

/// The incident as the first user lived it, on a loop.
pub fn scenario() -> Vec<Act> {
    vec![
        Act {
            name: "healthy: every probe passes",
            faults: Faults::default(),
            restart: false,
            lasts: Duration::from_secs(60),
        },
        Act {
            name: "outage: the VPC connector is in ERROR, Cloud SQL and Redis are unreachable (logins 503, WebSocket 1011)",
            faults: Faults {
                db_down: true,
                connector_state: Some("ERROR".into()),
                ..Faults::default()
            },
            restart: false,
            lasts: Duration::from_secs(30),
        },
        Act {
            name: "outage goes on: the connector is READY again, but the backend keeps failing until it restarts",
            faults: Faults {
                db_down: true,
                ..Faults::default()
            },
            restart: false,
            lasts: Duration::from_secs(15),
        },
        Act {
            name: "recovery: the backend restarts and takes 8 s to become healthy (Redis is LOADING meanwhile)",
            faults: Faults {
                startup_delay_ms: 8_000,
                ..Faults::default()
            },
            restart: true,
            lasts: Duration::from_secs(30),
        },
        Act {
            name: "degraded: the agent is slow and drops tool_completed; a deploy set the egress to PRIVATE_RANGES_ONLY",
            faults: Faults {
                slow_events_ms: 1_500,
                drop_event: Some("tool_completed".into()),
                cloud_run_egress: Some("PRIVATE_RANGES_ONLY".into()),
                ..Faults::default()
            },
            restart: false,
            lasts: Duration::from_secs(40),
        },
    ]
}

pub const DEMO_PASSWORD: &str = "pathwatch-demo";

/// The reference service's options in the demo: human-scale pauses between events, shortened
/// as the scenario is sped up (see [`walk`]).
pub fn sim_options(speed: f64) -> SimOptions {
    SimOptions {
        password: DEMO_PASSWORD.into(),
        bypass_key: None,
        event_pause: Duration::from_millis(400).div_f64(speed.max(1.0)),
        heartbeat: Duration::from_secs(5),
        faults: Faults::default(),
    }
}

/// Where the demo's reference service listens.
#[derive(Clone, Copy, Debug)]
pub struct Targets {
    /// Its HTTP listener: the backend, auth, ClickHouse ping, Google APIs.
    pub sim: SocketAddr,
    /// Its Redis listener.
    pub redis: SocketAddr,
    /// Its TLS listener (a handshake with a self-signed certificate).
    pub tls: SocketAddr,
    /// Its gRPC health listener (grpc.health.v1).
    pub grpc: SocketAddr,
}

/// `faults` with its delays shortened by `speed`, so a sped-up act keeps its shape: a restart
/// still ends within its act, a slow agent still answers within a probe's timeout.
fn scaled(mut faults: Faults, speed: f64) -> Faults {
    let ms = |v: u64| (v as f64 / speed.max(1.0)).round() as u64;
    faults.startup_delay_ms = ms(faults.startup_delay_ms);
    faults.slow_events_ms = ms(faults.slow_events_ms);
    faults
}

/// A probe interval (or timeout) of `secs` at normal speed, shortened as the scenario is sped up (never
/// below 1 s), so even a sped-up act lasts long enough for the probes to see it.
fn every(secs: u64, speed: f64) -> String {
    let ms = (secs as f64 * 1000.0 / speed.max(1.0)).max(1000.0);
    format!("{}ms", ms.round() as u64)
}

/// The bundled config, probing the reference service at `t` with every probe kind. Secrets
/// stay in `${DEMO_*}` names; `speed` is the scenario's (see [`walk`]).
pub fn config(t: Targets, with_postgres: bool, speed: f64) -> String {
    let (sim, redis_port, tls_port) = (t.sim, t.redis.port(), t.tls.port());
    let (i5, i10) = (every(5, speed), every(10, speed));
    // A run that waits for an event the degraded agent drops must end within the act, or
    // every later run would start in the same act again.
    let t20 = every(20, speed);
    let connector = format!("projects/{PROJECT}/locations/{REGION}/connectors/{CONNECTOR}");
    let connection = format!("{PROJECT}:{REGION}:{INSTANCE}");
    // The Google APIs and the metadata server are the reference service itself.
    let google = |indent: &str| {
        format!(
            "{indent}api_base: http://{sim}\n{indent}credentials: {{ metadata_host: \"{sim}\" }}"
        )
    };
    let (google, logging) = (google("    "), google("      "));
    let mut y = format!(
        r#"defaults:
  interval: {i5}
  timeout: 10s
probes:
  - name: backend-health
    kind: http
    url: http://{sim}/health
    depends_on: [backend-startup]
    assert:
      - {{ json_pointer: /status, equals: healthy }}
  - name: backend-database-health
    kind: http
    url: http://{sim}/api/health/database
    depends_on: [vpc-path-redis, cloudsql-instance]
  - name: auth-health
    kind: http
    url: http://{sim}/auth/health
    depends_on: [backend-database-health]
  - name: clickhouse-ping
    kind: http
    url: http://{sim}/ping
    assert:
      - {{ regex: "^Ok\\.\\n?$" }}
  - name: backend-startup
    kind: startup
    interval: {i5}
    poll_interval: 1s
    deadline: 30s
    reference: reported
    started_at_pointer: /started_at
    check: {{ url: "http://{sim}/health" }}
    depends_on: [backend-database-health]
  - name: golden-path
    kind: golden_path
    interval: {i10}
    timeout: {t20}
    login:
      url: http://{sim}/auth/login
      email: demo@pathwatch.test
      password: ${{DEMO_PASSWORD}}
    websocket:
      url: ws://{sim}/ws
    message: What is the status of my last optimisation?
    depends_on: [backend-health, auth-health]
  - name: vpc-path-redis
    kind: tcp
    host: 127.0.0.1
    port: {redis_port}
    depends_on: [vpc-connector]
  - name: redis
    kind: redis
    host: 127.0.0.1
    port: {redis_port}
    depends_on: [vpc-path-redis]
    password: ${{DEMO_PASSWORD}}
    db: 0
  - name: vpc-connector
    kind: gcp_vpc_connector
    project: {PROJECT}
    region: {REGION}
    connector: {CONNECTOR}
{google}
  - name: cloudsql-instance
    kind: gcp_cloudsql
    project: {PROJECT}
    instance: {INSTANCE}
    connection_name: {connection}
{google}
  - name: backend-service-config
    kind: gcp_cloud_run
    project: {PROJECT}
    region: {REGION}
    service: {SERVICE}
{google}
    expect:
      vpc_connector: {connector}
      egress: ALL_TRAFFIC
      env: {{ DB_CONNECT_TIMEOUT: "75" }}
      cloudsql_instances: ["{connection}"]
    safe_env: [DB_CONNECT_TIMEOUT]
  - name: backend-logs
    kind: logs
    window: 30m
    patterns:
      db_socket_failed: 'socket connection to /cloudsql/.*/\.s\.PGSQL\.5432 failed'
      vpc_unreachable: 'Cloud SQL instance not accessible through VPC connector'
      startup_failed: 'Application startup failed\. Exiting\.'
      container_exit: 'Container called exit\(([0-9]+)\)'
      db_phase: 'PHASE COMPLETED: DATABASE \(([0-9.]+)s\)'
    cloud_logging:
      project: {PROJECT}
      filter: 'resource.type="cloud_run_revision" AND resource.labels.service_name="{SERVICE}"'
{logging}
  - name: backend-certificate
    kind: tls_cert
    host: 127.0.0.1
    port: {tls_port}
    insecure_skip_verify: true
  - name: agent-grpc-health
    kind: grpc
    host: "{grpc_host}"
    port: {grpc_port}
    service: {grpc_service}
  # ICMP echo to the reference service's host: the kernel answers (a ping socket needs
  # net.ipv4.ping_group_range to include pathwatch's group, else CAP_NET_RAW).
  - name: backend-ping
    kind: icmp
    host: "{grpc_host}"
"#,
        grpc_host = t.grpc.ip(),
        grpc_port = t.grpc.port(),
        grpc_service = crate::sim::grpc::SERVICE,
    );
    if with_postgres {
        y.push_str(
            r#"  - name: database
    kind: postgres
    host: ${DEMO_PGHOST}
    port: ${DEMO_PGPORT}
    user: ${DEMO_PGUSER}
    password: ${DEMO_PGPASSWORD}
    dbname: ${DEMO_PGDATABASE}
    timeout: 10s
    connections: true
"#,
        );
    }
    // The resolution criteria of the first user's test plan.
    y.push_str(
        r#"incidents:
  - id: "1278"
    title: Staging cannot reach Cloud SQL through the VPC connector
    criteria:
      - { name: backend_database, probe: backend-database-health, success: true }
      - { name: startup, probe: backend-startup, max_seconds: 30 }
      - { name: golden_path, probe: golden-path, max_seconds: 60 }
      - { name: websocket_events, probe: golden-path, all_events: true }
      - { name: vpc_connector_ready, probe: vpc-connector, state: READY }
      - { name: cloudsql_runnable, probe: cloudsql-instance, state: RUNNABLE }
"#,
    );
    if with_postgres {
        y.push_str("      - { name: database_connect, probe: database, max_seconds: 10 }\n");
    }
    y
}

/// Values for the `${DEMO_*}` names of [`config`], from `DATABASE_URL` or the `PG*` variables.
pub fn env_values(lookup: &dyn Fn(&str) -> Option<String>) -> (HashMap<String, String>, bool) {
    // An empty variable counts as unset, as in libpq.
    let get = |k: &str| lookup(k).filter(|v| !v.is_empty());
    let mut vars = HashMap::new();
    vars.insert("DEMO_PASSWORD".to_string(), DEMO_PASSWORD.to_string());
    let pg = if let Some(u) = get("DATABASE_URL").and_then(|u| url::Url::parse(&u).ok()) {
        Some((
            u.host_str().unwrap_or("127.0.0.1").to_string(),
            u.port().unwrap_or(5432).to_string(),
            Some(u.username().to_string()).filter(|s| !s.is_empty()),
            u.password().map(str::to_string),
            Some(u.path().trim_start_matches('/').to_string()).filter(|s| !s.is_empty()),
        ))
    } else {
        get("PGHOST").map(|h| {
            (
                h,
                get("PGPORT").unwrap_or_else(|| "5432".into()),
                get("PGUSER"),
                get("PGPASSWORD"),
                get("PGDATABASE"),
            )
        })
    };
    let Some((host, port, user, password, db)) = pg else {
        return (vars, false);
    };
    let user = user.unwrap_or_else(|| "postgres".into());
    vars.insert("DEMO_PGHOST".into(), host);
    vars.insert("DEMO_PGPORT".into(), port);
    vars.insert("DEMO_PGDATABASE".into(), db.unwrap_or_else(|| user.clone()));
    vars.insert("DEMO_PGUSER".into(), user);
    vars.insert("DEMO_PGPASSWORD".into(), password.unwrap_or_default());
    (vars, true)
}

/// Walks the scenario on a loop until `token` is cancelled, announcing each act on stdout.
/// `speed` divides every act's length and the service's delays (tests walk the incident in
/// seconds).
pub async fn walk(state: SimState, speed: f64, token: CancellationToken) {
    let acts = scenario();
    loop {
        for act in &acts {
            state.set_faults(scaled(act.faults.clone(), speed));
            if act.restart {
                state.restart();
            }
            let lasts = act.lasts.div_f64(speed.max(0.001));
            let secs = lasts.as_secs_f64();
            let digits = usize::from(secs < 10.0);
            println!("demo: {} (for {secs:.digits$} s)", act.name);
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(lasts) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    /// The demo's certificate probe reads the reference service's certificate: a handshake
    /// with the certificate made at start, and its notAfter 90 days on.
    #[tokio::test]
    async fn the_certificate_probe_reads_the_reference_services_certificate() {
        use crate::probe::ProbeKind;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = CancellationToken::new();
        tokio::spawn(crate::sim::serve_tls(listener, stop.clone()));
        let spec = crate::probe::tls_cert::TlsCertSpec {
            host: "127.0.0.1".into(),
            port,
            server_name: None,
            ca_file: None,
            insecure_skip_verify: true,
        };
        let trace = crate::probe::Trace::default();
        let probe = spec.build().unwrap();
        crate::probe::Probe::run(&probe, &trace).await.unwrap();
        let not_after = trace
            .observations()
            .gauge("tls_cert_expiry_timestamp")
            .unwrap();
        let days = (not_after - crate::core::clock::unix_now()) / 86_400.0;
        assert!((89.9..=90.0).contains(&days), "{days}");
        // Verified, the self-signed certificate fails the handshake.
        let strict = crate::probe::tls_cert::TlsCertSpec {
            insecure_skip_verify: false,
            ..spec
        };
        let e = crate::probe::Probe::run(&strict.build().unwrap(), &crate::probe::Trace::default())
            .await
            .unwrap_err();
        assert_eq!(e.reason, crate::probe::Reason::Tls, "{e}");
        stop.cancel();
    }

    /// The demo's grpc probe gets SERVING from the reference service's health server, for
    /// its service and overall; a service it does not know is `not_found`.
    #[tokio::test]
    async fn the_grpc_probe_checks_the_reference_services_health() {
        use crate::probe::ProbeKind;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = CancellationToken::new();
        tokio::spawn(crate::sim::serve_grpc(listener, stop.clone()));
        let spec = |service: &str| crate::probe::grpc::GrpcSpec {
            host: "127.0.0.1".into(),
            port,
            service: service.into(),
            tls: false,
            server_name: None,
            ca_file: None,
            insecure_skip_verify: false,
        };
        for service in [crate::sim::grpc::SERVICE, ""] {
            let trace = crate::probe::Trace::default();
            crate::probe::Probe::run(&spec(service).build().unwrap(), &trace)
                .await
                .unwrap();
            assert_eq!(trace.observations().gauge("grpc_health_status"), Some(1.0));
        }
        let e = crate::probe::Probe::run(
            &spec("no.such.Service").build().unwrap(),
            &crate::probe::Trace::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(e.reason, crate::probe::Reason::NotFound, "{e}");
        stop.cancel();
    }

    #[test]
    fn postgres_joins_from_database_url_or_pghost_and_not_from_empty_values() {
        let (vars, pg) = env_values(&env(&[(
            "DATABASE_URL",
            "postgres://app:s3cret@db.internal:6543/netra_staging",
        )]));
        assert!(pg);
        assert_eq!(vars["DEMO_PGHOST"], "db.internal");
        assert_eq!(vars["DEMO_PGPORT"], "6543");
        assert_eq!(vars["DEMO_PGUSER"], "app");
        assert_eq!(vars["DEMO_PGPASSWORD"], "s3cret");
        assert_eq!(vars["DEMO_PGDATABASE"], "netra_staging");
        let (vars, pg) = env_values(&env(&[("PGHOST", "/var/run/postgresql")]));
        assert!(pg);
        assert_eq!(vars["DEMO_PGDATABASE"], "postgres");
        let (_, pg) = env_values(&env(&[("DATABASE_URL", ""), ("PGHOST", "")]));
        assert!(!pg);
    }

    #[test]
    fn the_bundled_config_loads_and_uses_every_probe_kind() {
        let targets = Targets {
            sim: "127.0.0.1:8000".parse().unwrap(),
            redis: "127.0.0.1:6380".parse().unwrap(),
            tls: "127.0.0.1:6443".parse().unwrap(),
            grpc: "127.0.0.1:6051".parse().unwrap(),
        };
        for with_pg in [false, true] {
            let (vars, _) = env_values(&env(&[("PGHOST", "127.0.0.1")]));
            let text = config(targets, with_pg, 1.0);
            let loaded = crate::config::parse("demo", &text, &|k| vars.get(k).cloned()).unwrap();
            assert!(loaded.errors.is_empty(), "{:?}\n{text}", loaded.errors);
            let kinds: std::collections::BTreeSet<_> =
                loaded.config.probes.iter().map(|p| p.spec.kind()).collect();
            let mut want: std::collections::BTreeSet<_> =
                crate::probe::Kind::ALL.iter().copied().collect();
            if !with_pg {
                want.remove(&crate::probe::Kind::Postgres);
            }
            assert_eq!(kinds, want);
            let criteria: Vec<_> = loaded.config.incidents[0]
                .criteria
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            for c in ["vpc_connector_ready", "cloudsql_runnable", "golden_path"] {
                assert!(criteria.contains(&c), "{criteria:?}");
            }
            assert_eq!(criteria.len(), if with_pg { 7 } else { 6 });
            // At normal speed the probes keep their human-scale intervals.
            assert_eq!(loaded.config.probes[0].interval, Duration::from_secs(5));
        }
    }

    #[test]
    fn a_faster_scenario_probes_more_often_but_at_most_every_second() {
        assert_eq!(every(5, 1.0), "5000ms");
        assert_eq!(every(10, 4.0), "2500ms");
        assert_eq!(every(5, 30.0), "1000ms");
        assert_eq!(every(5, 0.5), "5000ms");
        let slow = Faults {
            startup_delay_ms: 8_000,
            slow_events_ms: 1_500,
            ..Faults::default()
        };
        let fast = scaled(slow.clone(), 30.0);
        assert_eq!((fast.startup_delay_ms, fast.slow_events_ms), (267, 50));
        assert_eq!(scaled(slow.clone(), 0.5), slow);
        assert_eq!(sim_options(4.0).event_pause, Duration::from_millis(100));
    }

    #[test]
    fn the_scenario_breaks_and_heals_the_infrastructure_too() {
        let acts = scenario();
        assert!(
            acts.iter()
                .any(|a| a.faults.db_down && a.faults.connector_state.as_deref() == Some("ERROR"))
        );
        assert!(
            acts.iter()
                .any(|a| a.faults.cloud_run_egress.is_some() && !a.faults.db_down)
        );
        // Each loop starts healthy, and the outage ends with a restart.
        assert_eq!(acts[0].faults, Faults::default());
        let outage_end = acts.iter().rposition(|a| a.faults.db_down).unwrap();
        assert!(acts[outage_end + 1].restart);
        let total: Duration = acts.iter().map(|a| a.lasts).sum();
        assert_eq!(total, Duration::from_secs(175));
    }
}

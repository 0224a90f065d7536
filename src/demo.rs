//! `pathwatch demo`: the reference service and pathwatch probing it with every probe kind,
//! walking the first user's incident on a loop (healthy -> VPC connector in ERROR and Cloud
//! SQL hanging -> restart -> degraded with configuration drift while the connection pool
//! saturates -> every connection slot taken) so every metric and every dashboard panel moves.
//! The database is the reference service's Postgres stand-in, probed over TCP (`database`)
//! and over a Unix socket laid out as Cloud SQL's (`cloudsql-socket`); a real Postgres from
//! `DATABASE_URL` or `PGHOST` replaces the stand-in behind `database`.

use crate::sim::gcp::{CONNECTOR, INSTANCE, PROJECT, REGION, SERVICE};
use crate::sim::postgres::{APP_DATABASE, PgFaults, USABLE_CONNECTIONS};
use crate::sim::{Faults, PgListener, PgServer, SimOptions, SimState};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One step of the scenario: what is wrong, and for how long.
pub(crate) struct Act {
    pub(crate) name: &'static str,
    pub(crate) faults: Faults,
    /// Restart the service when the act begins (its startup delay applies anew).
    pub(crate) restart: bool,
    pub(crate) lasts: Duration,
}

/// The incident as the first user lived it, on a loop.
pub(crate) fn scenario() -> Vec<Act> {
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
                // Cloud SQL's connects are accepted and never answered (the 75 s hang).
                postgres: PgFaults {
                    hang: true,
                    ..PgFaults::default()
                },
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
            name: "degraded: the agent is slow and drops tool_completed; a deploy set the egress to PRIVATE_RANGES_ONLY; a leaking pool climbs past 80 % of Cloud SQL's connection slots",
            faults: Faults {
                postgres: PgFaults {
                    pool_sessions: Some(SATURATED_POOL),
                    pool_ramp_ms: 6_000,
                    ..PgFaults::default()
                },
                ..degraded()
            },
            restart: false,
            lasts: Duration::from_secs(40),
        },
        Act {
            name: "exhausted: the pool holds every usable slot; new database connects fail with too_many_connections (53300)",
            faults: Faults {
                postgres: PgFaults {
                    too_many_connections: true,
                    ..PgFaults::default()
                },
                ..degraded()
            },
            restart: false,
            lasts: Duration::from_secs(15),
        },
    ]
}

/// The pool's sessions in the saturation: with the probes' own, 90 % of the usable slots.
const SATURATED_POOL: u32 = USABLE_CONNECTIONS * 9 / 10 - 1;

/// The degraded service: a slow agent that drops an event, and configuration drift.
fn degraded() -> Faults {
    Faults {
        slow_events_ms: 1_500,
        drop_event: Some("tool_completed".into()),
        cloud_run_egress: Some("PRIVATE_RANGES_ONLY".into()),
        ..Faults::default()
    }
}

/// The password of the reference service's demo user, which the demo config logs in with.
pub const DEMO_PASSWORD: &str = "pathwatch-demo";
/// The role the demo's probes use on the Postgres stand-in (any role logs in with the sim's
/// password).
const STANDIN_USER: &str = "netra_app";

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
#[derive(Clone, Debug)]
pub struct Targets {
    /// Its HTTP listener: the backend, auth, ClickHouse ping, Google APIs.
    pub sim: SocketAddr,
    /// Its Redis listener.
    pub redis: SocketAddr,
    /// Its TLS listener (a handshake with a self-signed certificate).
    pub tls: SocketAddr,
    /// Its DNS server (UDP and TCP), authoritative for [`crate::sim::dns::ZONE`].
    pub dns: SocketAddr,
    /// Its gRPC health listener (grpc.health.v1).
    pub grpc: SocketAddr,
    /// Its Postgres stand-in over TCP.
    pub postgres: SocketAddr,
    /// The stand-in's Cloud-SQL-style socket directory, `<dir>/<project>:<region>:<instance>`.
    pub postgres_socket: PathBuf,
}

/// The demo's Postgres stand-in: where it listens; its temporary directory goes on drop.
pub struct PgStandIn {
    /// Where the stand-in accepts TCP connections (loopback, a free port).
    pub tcp: SocketAddr,
    /// `<tmp>/<project>:<region>:<instance>`, holding `.s.PGSQL.5432` as Cloud Run's
    /// `/cloudsql/<connection name>` does.
    pub socket_dir: PathBuf,
    base: PathBuf,
}

impl Drop for PgStandIn {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// Starts the reference service's Postgres on a free TCP port of `ip` and on a Unix socket
/// under a new temporary directory, following `state`'s faults until `token` is cancelled.
///
/// # Errors
/// When a listener cannot be made (a temporary directory too deep for a socket path
/// included).
pub async fn start_postgres(
    ip: IpAddr,
    state: SimState,
    token: CancellationToken,
) -> std::io::Result<PgStandIn> {
    let tcp = tokio::net::TcpListener::bind((ip, 0)).await?;
    let tcp_addr = tcp.local_addr()?;
    let dir = format!("pathwatch-demo-{}", std::process::id());
    let connection = format!("{PROJECT}:{REGION}:{INSTANCE}");
    let mut base = std::env::temp_dir().join(&dir);
    // A socket path has at most 103 bytes on some systems (macOS' TMPDIR is long): /tmp then.
    if base
        .join(&connection)
        .join(".s.PGSQL.5432")
        .as_os_str()
        .len()
        > 103
    {
        base = PathBuf::from("/tmp").join(&dir);
    }
    let socket_dir = base.join(connection);
    std::fs::create_dir_all(&socket_dir)?;
    let path = socket_dir.join(".s.PGSQL.5432");
    // A socket left by an earlier demo of the same pid is in the way.
    let _ = std::fs::remove_file(&path);
    let unix = tokio::net::UnixListener::bind(&path).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on the Unix socket {}: {e}", path.display()),
        )
    })?;
    let server = PgServer::new(state);
    for listener in [PgListener::Tcp(tcp), PgListener::Unix(unix, path)] {
        let (server, token) = (server.clone(), token.clone());
        tokio::spawn(async move { server.serve(listener, token).await });
    }
    Ok(PgStandIn {
        tcp: tcp_addr,
        socket_dir,
        base,
    })
}

/// `faults` with its delays shortened by `speed`, so a sped-up act keeps its shape: a restart
/// still ends within its act, a slow agent still answers within a probe's timeout.
fn scaled(mut faults: Faults, speed: f64) -> Faults {
    let ms = |v: u64| (v as f64 / speed.max(1.0)).round() as u64;
    faults.startup_delay_ms = ms(faults.startup_delay_ms);
    faults.slow_events_ms = ms(faults.slow_events_ms);
    faults.postgres.slow_ms = ms(faults.postgres.slow_ms);
    faults.postgres.pool_ramp_ms = ms(faults.postgres.pool_ramp_ms);
    faults
}

/// A probe interval (or timeout) of `secs` at normal speed, shortened as the scenario is sped up (never
/// below 1 s), so even a sped-up act lasts long enough for the probes to see it.
fn every(secs: u64, speed: f64) -> String {
    let ms = (secs as f64 * 1000.0 / speed.max(1.0)).max(1000.0);
    format!("{}ms", ms.round() as u64)
}

/// The bundled config, probing the reference service at `t` with every probe kind. Secrets
/// stay in `${DEMO_*}` names; `speed` is the scenario's (see [`walk`]). With `with_postgres`
/// the `database` probe reads a real Postgres from the `${DEMO_PG*}` names instead of the
/// stand-in.
pub fn config(t: &Targets, with_postgres: bool, speed: f64) -> String {
    let (sim, redis_port, tls_port) = (t.sim, t.redis.port(), t.tls.port());
    let (i5, i10) = (every(5, speed), every(10, speed));
    // The criterion is "under 10 s"; a hang lasts until this timeout (the demo's 75 s).
    let t10 = every(10, speed);
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
    // The backend's name, as the reference service's DNS server answers it.
    y.push_str(&format!(
        "  - name: backend-dns\n    kind: dns\n    server: \"{}\"\n    query_name: {}\n    expect: [127.0.0.1]\n",
        t.dns,
        crate::sim::dns::BACKEND
    ));
    if with_postgres {
        y.push_str(
            r"  - name: database
    kind: postgres
    host: ${DEMO_PGHOST}
    port: ${DEMO_PGPORT}
    user: ${DEMO_PGUSER}
    password: ${DEMO_PGPASSWORD}
    dbname: ${DEMO_PGDATABASE}
    timeout: 10s
    connections: true
",
        );
    } else {
        let (host, port) = (t.postgres.ip(), t.postgres.port());
        y.push_str(&format!(
            r#"  - name: database
    kind: postgres
    host: "{host}"
    port: {port}
    user: {STANDIN_USER}
    password: ${{DEMO_PASSWORD}}
    dbname: {APP_DATABASE}
    timeout: {t10}
    connections: true
    depends_on: [vpc-connector]
"#
        ));
    }
    // What the backend on Cloud Run connects to: the Cloud SQL connector's socket. Both
    // paths to the private instance cross the VPC connector: while it is down, a hang follows
    // from it (the root cause named, the symptom alerts held back).
    let socket = t.postgres_socket.display();
    y.push_str(&format!(
        r#"  - name: cloudsql-socket
    kind: postgres
    host: "{socket}"
    user: {STANDIN_USER}
    password: ${{DEMO_PASSWORD}}
    dbname: {APP_DATABASE}
    timeout: {t10}
    connections: true
    depends_on: [vpc-connector]
"#
    ));
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
    // The incident's first criterion judges the path the backend takes: the Cloud SQL socket.
    y.push_str("      - { name: database_connect, probe: cloudsql-socket, max_seconds: 10 }\n");
    y
}

/// Values for the `${DEMO_*}` names of [`config`], from `DATABASE_URL` or the `PG*` variables,
/// and whether they name a Postgres. `DATABASE_URL` is read as `--target` reads it (libpq's
/// URI: percent-decoding, `?host=` socket directories, the `PG*` variables for what it leaves
/// out); one that is not a postgres:// URL is an error naming the variable.
pub fn env_values(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(HashMap<String, String>, bool), crate::config::TargetUrlError> {
    use crate::config::target_url::{Origin, Problem, TargetUrl, TargetUrlError};
    // An empty variable counts as unset, as in libpq.
    let get = |k: &str| lookup(k).filter(|v| !v.is_empty());
    let mut vars = HashMap::new();
    vars.insert("DEMO_PASSWORD".to_string(), DEMO_PASSWORD.to_string());
    let pg = if let Some(url) = get("DATABASE_URL") {
        let target = TargetUrl::parse(Origin::Env("DATABASE_URL"), &url, &get)?;
        if target.kind() != Some("postgres") {
            return Err(TargetUrlError {
                label: target.label().to_string(),
                problem: Problem::Probe(
                    "the demo probes a Postgres: use postgres:// or postgresql://".into(),
                ),
            });
        }
        let text = |k: &str| target.string(k).map(str::to_string);
        Some((
            text("host").unwrap_or_default(),
            target
                .int("port")
                .map_or_else(|| "5432".to_string(), |p| p.to_string()),
            text("user"),
            text("password"),
            text("dbname"),
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
        return Ok((vars, false));
    };
    let user = user.unwrap_or_else(|| "postgres".into());
    vars.insert("DEMO_PGHOST".into(), host);
    vars.insert("DEMO_PGPORT".into(), port);
    vars.insert("DEMO_PGDATABASE".into(), db.unwrap_or_else(|| user.clone()));
    vars.insert("DEMO_PGUSER".into(), user);
    vars.insert("DEMO_PGPASSWORD".into(), password.unwrap_or_default());
    Ok((vars, true))
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
                () = token.cancelled() => return,
                () = tokio::time::sleep(lasts) => {}
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
        let spec = crate::probe::kinds::tls_cert::TlsCertSpec {
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
            .value("tls_cert_expiry_timestamp")
            .unwrap();
        let days = (not_after - crate::core::clock::unix_now()) / 86_400.0;
        assert!((89.9..=90.0).contains(&days), "{days}");
        // Verified, the self-signed certificate fails the handshake.
        let strict = crate::probe::kinds::tls_cert::TlsCertSpec {
            insecure_skip_verify: false,
            ..spec
        };
        let e = crate::probe::Probe::run(&strict.build().unwrap(), &crate::probe::Trace::default())
            .await
            .unwrap_err();
        assert_eq!(e.reason, crate::probe::Reason::Tls, "{e}");
        stop.cancel();
    }

    /// The demo's probe passes over UDP and TCP, and the server says NXDOMAIN and REFUSED
    /// where it should.
    #[tokio::test]
    async fn the_dns_probe_asks_the_reference_services_dns_server() {
        fn dns_probe(server: SocketAddr, yaml: &str) -> crate::probe::kinds::dns::DnsProbe {
            let spec: crate::probe::kinds::dns::DnsSpec =
                serde_saphyr::from_str(&format!("server: \"{server}\"\n{yaml}")).unwrap();
            crate::probe::ProbeKind::build(&spec).unwrap()
        }
        let stop = CancellationToken::new();
        let addr = crate::sim::dns::start_dns("127.0.0.1".parse().unwrap(), stop.clone())
            .await
            .unwrap();
        for transport in ["udp", "tcp"] {
            let p = dns_probe(
                addr,
                &format!(
                    "query_name: {}\ntransport: {transport}\nexpect: [127.0.0.1]\n",
                    crate::sim::dns::BACKEND
                ),
            );
            crate::probe::Probe::run(&p, &crate::probe::Trace::default())
                .await
                .unwrap();
        }
        let txt = dns_probe(
            addr,
            "query_name: pathwatch-demo.test\nquery_type: TXT\nexpect: ['\"pathwatch demo reference service\"']\n",
        );
        crate::probe::Probe::run(&txt, &crate::probe::Trace::default())
            .await
            .unwrap();
        let missing = dns_probe(addr, "query_name: nope.pathwatch-demo.test\n");
        let e = crate::probe::Probe::run(&missing, &crate::probe::Trace::default())
            .await
            .unwrap_err();
        assert_eq!(e.reason, crate::probe::Reason::NotFound, "{e}");
        let outside = dns_probe(addr, "query_name: example.com\n");
        let trace = crate::probe::Trace::default();
        let e = crate::probe::Probe::run(&outside, &trace)
            .await
            .unwrap_err();
        assert_eq!(e.reason, crate::probe::Reason::Forbidden, "{e}");
        assert_eq!(trace.observations().value("dns_rcode"), Some(5.0));
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
        let spec = |service: &str| crate::probe::kinds::grpc::GrpcSpec {
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
            assert_eq!(trace.observations().value("grpc_health_status"), Some(1.0));
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
        )]))
        .unwrap();
        assert!(pg);
        assert_eq!(vars["DEMO_PGHOST"], "db.internal");
        assert_eq!(vars["DEMO_PGPORT"], "6543");
        assert_eq!(vars["DEMO_PGUSER"], "app");
        assert_eq!(vars["DEMO_PGPASSWORD"], "s3cret");
        assert_eq!(vars["DEMO_PGDATABASE"], "netra_staging");
        let (vars, pg) = env_values(&env(&[("PGHOST", "/var/run/postgresql")])).unwrap();
        assert!(pg);
        assert_eq!(vars["DEMO_PGDATABASE"], "postgres");
        let (_, pg) = env_values(&env(&[("DATABASE_URL", ""), ("PGHOST", "")])).unwrap();
        assert!(!pg);
    }

    /// DATABASE_URL reads as libpq reads it: percent-encoded parts decoded, a socket
    /// directory from `?host=`, the port and user from the PG* variables when left out.
    #[test]
    fn database_url_follows_libpq() {
        let (vars, _) = env_values(&env(&[
            (
                "DATABASE_URL",
                "postgresql://app:p%40ss%2Fw0rd@/netra?host=/cloudsql/proj:region:inst",
            ),
            ("PGPORT", "6544"),
        ]))
        .unwrap();
        assert_eq!(vars["DEMO_PGHOST"], "/cloudsql/proj:region:inst");
        assert_eq!(vars["DEMO_PGPORT"], "6544");
        assert_eq!(vars["DEMO_PGPASSWORD"], "p@ss/w0rd");
        assert_eq!(vars["DEMO_PGDATABASE"], "netra");
        let (vars, _) = env_values(&env(&[
            ("DATABASE_URL", "postgres://db.internal/netra"),
            ("PGUSER", "svc"),
        ]))
        .unwrap();
        assert_eq!(vars["DEMO_PGUSER"], "svc");
        // Not a Postgres URL, or not a URL: an error naming the variable, password masked.
        let e = env_values(&env(&[("DATABASE_URL", "redis://:hunter2@127.0.0.1:6379")]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("DATABASE_URL"), "{e}");
        assert!(e.contains("postgres://"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = env_values(&env(&[("DATABASE_URL", "db.internal:5432")]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("DATABASE_URL"), "{e}");
    }

    #[test]
    fn the_bundled_config_loads_and_uses_every_probe_kind() {
        let targets = Targets {
            sim: "127.0.0.1:8000".parse().unwrap(),
            redis: "127.0.0.1:6380".parse().unwrap(),
            tls: "127.0.0.1:6443".parse().unwrap(),
            dns: "127.0.0.1:5353".parse().unwrap(),
            grpc: "127.0.0.1:6051".parse().unwrap(),
            postgres: "127.0.0.1:6432".parse().unwrap(),
            postgres_socket: "/tmp/pathwatch-demo-1/netra-staging:us-central1:staging".into(),
        };
        for with_pg in [false, true] {
            let (vars, _) = env_values(&env(&[("PGHOST", "127.0.0.1")])).unwrap();
            let text = config(&targets, with_pg, 1.0);
            let loaded = crate::config::parse("demo", &text, &|k| vars.get(k).cloned()).unwrap();
            assert!(loaded.errors.is_empty(), "{:?}\n{text}", loaded.errors);
            let kinds: std::collections::BTreeSet<_> =
                loaded.config.probes.iter().map(|p| p.spec.kind()).collect();
            let want: std::collections::BTreeSet<_> =
                crate::probe::Kind::ALL.iter().copied().collect();
            assert_eq!(kinds, want);
            // The stand-in is probed over its socket either way, over TCP unless a real
            // Postgres replaces it.
            let db = |name: &str| {
                let probe = loaded.config.probes.iter().find(|p| p.name == name);
                format!("{:?}", probe.map(|p| &p.spec))
            };
            assert!(db("cloudsql-socket").contains("netra-staging:us-central1:staging"));
            assert_eq!(
                db("database").contains("6432"),
                !with_pg,
                "{}",
                db("database")
            );
            let criteria: Vec<_> = loaded.config.incidents[0]
                .criteria
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            for c in ["vpc_connector_ready", "cloudsql_runnable", "golden_path"] {
                assert!(criteria.contains(&c), "{criteria:?}");
            }
            assert_eq!(criteria.len(), 7);
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
        assert_eq!(total, Duration::from_secs(190));
        // The pool saturates (past 80 % of the usable slots) before connects fail.
        let pool = acts
            .iter()
            .position(|a| a.faults.postgres.pool_sessions.is_some());
        let full = acts
            .iter()
            .position(|a| a.faults.postgres.too_many_connections);
        assert!(pool.is_some() && full > pool, "{pool:?} {full:?}");
        let ratio = f64::from(SATURATED_POOL + 2) / f64::from(USABLE_CONNECTIONS);
        assert!((0.8..1.0).contains(&ratio), "{ratio}");
        assert!(
            acts.iter()
                .any(|a| a.faults.postgres.hang && a.faults.db_down)
        );
    }
}

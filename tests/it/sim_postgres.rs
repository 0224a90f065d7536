//! The reference service's Postgres stand-in (`pathwatch::sim::postgres`) against clients
//! nobody here wrote (psql, tokio-postgres), and the `postgres` probe's reasons for each
//! fault against the stand-in and a real throwaway cluster side by side.

use crate::support::exporter::{Exporter, value};
use crate::support::pg::{PgCluster, PgOptions};
use pathwatch::sim::postgres::{POOL_SESSIONS, PgAuth, PgFaults, USABLE_CONNECTIONS};
use pathwatch::sim::{Faults, PgListener, PgServer, SimOptions, SimState};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const PASSWORD: &str = "sim-pg-password";
const WAIT: Duration = Duration::from_secs(20);

/// The stand-in on 127.0.0.1:0 and on `<tmp>/p:r:i/.s.PGSQL.5432`, in a runtime of its own.
struct StandIn {
    tcp: SocketAddr,
    socket_dir: PathBuf,
    state: SimState,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl StandIn {
    fn start() -> StandIn {
        let dir = tempfile::Builder::new()
            .prefix("pw-sim-pg-")
            .tempdir()
            .expect("temp dir");
        let socket_dir = dir.path().join("netra-staging:us-central1:staging-pg");
        std::fs::create_dir(&socket_dir).expect("socket dir");
        let state = SimState::new(SimOptions {
            password: PASSWORD.into(),
            ..SimOptions::default()
        });
        let stop = CancellationToken::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let (s, token, path) = (
            state.clone(),
            stop.clone(),
            socket_dir.join(".s.PGSQL.5432"),
        );
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime for the stand-in");
            rt.block_on(async move {
                let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind the stand-in");
                let unix = tokio::net::UnixListener::bind(&path).expect("bind the socket");
                tx.send(tcp.local_addr().expect("address"))
                    .expect("send the address");
                let server = PgServer::new(s);
                let socket = server.clone();
                let t = token.clone();
                tokio::spawn(async move { socket.serve(PgListener::Unix(unix, path), t).await });
                let _ = server.serve(PgListener::Tcp(tcp), token).await;
            });
        });
        let tcp = rx.recv_timeout(WAIT).expect("stand-in started");
        StandIn {
            tcp,
            socket_dir,
            state,
            stop,
            _dir: dir,
        }
    }

    fn set(&self, postgres: PgFaults) {
        self.state.set_faults(Faults {
            postgres,
            ..Faults::default()
        });
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// `psql -Atc SQL` as netra_app with `password`, to a host (an address or a socket dir).
fn psql(host: &str, port: u16, password: &str, sql: &str) -> Output {
    Command::new("psql")
        .args(["-h", host, "-p", &port.to_string(), "-U", "netra_app"])
        .args(["-d", "netra_staging", "-w", "-Atc", sql])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "5")
        .env_remove("PGSSLMODE")
        .output()
        .expect("run psql (postgresql-client)")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The `postgres` probe's read of the server's connections (src/probe/kinds/postgres/connections.rs).
const CONNECTIONS_QUERY: &str = "SELECT current_setting('max_connections'), \
     current_setting('superuser_reserved_connections'), \
     coalesce(datname, ''), coalesce(state, 'unknown'), count(*) \
     FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 3, 4";

fn pg_config(host: &str, port: u16, password: &str) -> tokio_postgres::Config {
    let mut c = tokio_postgres::Config::new();
    c.host(host)
        .port(port)
        .user("netra_app")
        .dbname("netra_staging")
        .password(password)
        .connect_timeout(Duration::from_secs(5));
    c
}

#[test]
fn psql_and_tokio_postgres_talk_to_the_stand_in() {
    let s = StandIn::start();
    let (host, port) = (s.tcp.ip().to_string(), s.tcp.port());
    let socket = s.socket_dir.display().to_string();
    // Every password method, over TCP and over the Cloud-SQL-style socket.
    for auth in [PgAuth::ScramSha256, PgAuth::Md5, PgAuth::Password] {
        s.set(PgFaults {
            auth,
            ..PgFaults::default()
        });
        for h in [host.as_str(), socket.as_str()] {
            let out = psql(h, port_for(h, port), PASSWORD, "SELECT 1");
            assert!(out.status.success(), "{auth:?} {h}: {}", text(&out));
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
            let out = psql(h, port_for(h, port), "not-it", "SELECT 1");
            assert!(!out.status.success(), "{auth:?} {h}: {}", text(&out));
            assert!(
                text(&out).contains("authentication failed"),
                "{auth:?} {h}: {}",
                text(&out)
            );
        }
    }
    s.set(PgFaults::default());
    let out = psql(&socket, 5432, PASSWORD, "SHOW max_connections");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "100",
        "{}",
        text(&out)
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // The probe's statements, and the pool's sessions as the scenario drives them.
        let (client, conn) = pg_config(&host, port, PASSWORD)
            .connect(tokio_postgres::NoTls)
            .await
            .expect("tokio-postgres connects over TCP");
        tokio::spawn(conn);
        let one = client.simple_query("SELECT 1").await.expect("SELECT 1");
        let first = one.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        });
        assert_eq!(first.as_deref(), Some("1"), "{one:?}");
        let used = |rows: &[tokio_postgres::SimpleQueryMessage]| -> (u32, u32, u32) {
            let mut total = (0, 0, 0);
            for m in rows {
                if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                    total.0 = r.get(0).unwrap().parse().unwrap();
                    total.1 = r.get(1).unwrap().parse().unwrap();
                    total.2 += r.get(4).unwrap().parse::<u32>().unwrap();
                }
            }
            total
        };
        let rows = client.simple_query(CONNECTIONS_QUERY).await.expect("read");
        // The pool and this session.
        assert_eq!(used(&rows), (100, 3, POOL_SESSIONS + 1), "{rows:?}");
        // A second session counts too, and is gone when it ends.
        let (other, c2) = pg_config(&socket, 5432, PASSWORD)
            .connect(tokio_postgres::NoTls)
            .await
            .expect("tokio-postgres connects over the socket");
        let driver = tokio::spawn(c2);
        let rows = client.simple_query(CONNECTIONS_QUERY).await.expect("read");
        assert_eq!(used(&rows).2, POOL_SESSIONS + 2, "{rows:?}");
        drop(other);
        let _ = driver.await;
        let deadline = Instant::now() + WAIT;
        loop {
            let rows = client.simple_query(CONNECTIONS_QUERY).await.expect("read");
            if used(&rows).2 == POOL_SESSIONS + 1 {
                break;
            }
            assert!(Instant::now() < deadline, "{rows:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The pool climbs toward the limit over the ramp, then takes every slot.
        s.set(PgFaults {
            pool_sessions: Some(90),
            pool_ramp_ms: 600,
            ..PgFaults::default()
        });
        let early = used(&client.simple_query(CONNECTIONS_QUERY).await.expect("read")).2;
        assert!(early < 50, "{early}");
        tokio::time::sleep(Duration::from_millis(700)).await;
        let late = used(&client.simple_query(CONNECTIONS_QUERY).await.expect("read")).2;
        assert_eq!(late, 91);
        // The pool holds all but one usable slot and this session takes it: the next connect
        // gets Postgres' 53300.
        s.set(PgFaults {
            pool_sessions: Some(USABLE_CONNECTIONS - 1),
            ..PgFaults::default()
        });
        let e = pg_config(&host, port, PASSWORD)
            .connect(tokio_postgres::NoTls)
            .await
            .err()
            .expect("no slot left");
        let db = e.as_db_error().expect("a server error");
        assert_eq!(
            db.code(),
            &tokio_postgres::error::SqlState::TOO_MANY_CONNECTIONS
        );
        assert_eq!(db.severity(), "FATAL");
        drop(client);

        // The faults, as a client sees them.
        s.set(PgFaults {
            wrong_password: true,
            ..PgFaults::default()
        });
        let e = pg_config(&host, port, PASSWORD)
            .connect(tokio_postgres::NoTls)
            .await
            .err()
            .expect("rotated password");
        assert_eq!(
            e.as_db_error().map(|d| d.code().clone()),
            Some(tokio_postgres::error::SqlState::INVALID_PASSWORD),
            "{e}"
        );
        s.set(PgFaults {
            too_many_connections: true,
            ..PgFaults::default()
        });
        let e = pg_config(&socket, 5432, PASSWORD)
            .connect(tokio_postgres::NoTls)
            .await
            .err()
            .expect("too many");
        assert_eq!(
            e.as_db_error().map(|d| d.message().to_owned()).as_deref(),
            Some("sorry, too many clients already")
        );
        s.set(PgFaults {
            slow_ms: 400,
            ..PgFaults::default()
        });
        let t = Instant::now();
        let (c, conn) = pg_config(&host, port, PASSWORD)
            .connect(tokio_postgres::NoTls)
            .await
            .expect("slow, but answers");
        let slow = t.elapsed();
        assert!(slow >= Duration::from_millis(400), "{slow:?}");
        tokio::spawn(conn);
        drop(c);
        s.set(PgFaults {
            hang: true,
            ..PgFaults::default()
        });
        for h in [host.as_str(), socket.as_str()] {
            let t = Instant::now();
            let hung = tokio::time::timeout(
                Duration::from_millis(800),
                pg_config(h, port_for(h, port), PASSWORD).connect(tokio_postgres::NoTls),
            )
            .await;
            assert!(hung.is_err(), "{h}: answered");
            assert!(t.elapsed() >= Duration::from_millis(800));
        }
        s.set(PgFaults {
            refuse: true,
            ..PgFaults::default()
        });
        wait_refused(&host, port).await;
        wait_refused(&socket, 5432).await;
        // And back.
        s.set(PgFaults::default());
        let deadline = Instant::now() + WAIT;
        while pg_config(&socket, 5432, PASSWORD)
            .connect(tokio_postgres::NoTls)
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "listening again");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    // psql sees the hang as its connect timeout, too.
    s.set(PgFaults {
        hang: true,
        ..PgFaults::default()
    });
    let t = Instant::now();
    let out = Command::new("psql")
        .args(["-h", &socket, "-U", "netra_app", "-w", "-Atc", "SELECT 1"])
        .env("PGPASSWORD", PASSWORD)
        .env("PGCONNECT_TIMEOUT", "2")
        .output()
        .expect("psql");
    assert!(!out.status.success());
    assert!(
        t.elapsed() >= Duration::from_secs(2),
        "{:?} {}",
        t.elapsed(),
        text(&out)
    );
    assert!(text(&out).contains("timeout expired"), "{}", text(&out));
}

/// 5432 for a socket directory (the file is `.s.PGSQL.5432`), else the TCP port.
fn port_for(host: &str, tcp: u16) -> u16 {
    if Path::new(host).is_absolute() {
        5432
    } else {
        tcp
    }
}

async fn wait_refused(host: &str, port: u16) {
    let deadline = Instant::now() + WAIT;
    loop {
        let e = pg_config(host, port, PASSWORD)
            .connect(tokio_postgres::NoTls)
            .await
            .err();
        let refused = e.as_ref().is_some_and(|e| {
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                if let Some(io) = s.downcast_ref::<std::io::Error>() {
                    return io.kind() == std::io::ErrorKind::ConnectionRefused;
                }
                source = s.source();
            }
            false
        });
        if refused {
            return;
        }
        assert!(Instant::now() < deadline, "{host}: not refused: {e:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One probe per server and transport; the real cluster's role is `app`.
fn probes(s: &StandIn, pg: &PgCluster) -> String {
    let probe = |name: &str, host: &str, port: u16, user: &str, pw: &str| {
        format!(
            "  - {{ name: {name}, kind: postgres, host: \"{host}\", port: {port}, user: {user}, password: \"{pw}\", dbname: postgres, connections: true }}\n"
        )
    };
    let mut y = "defaults: { interval: 500ms, timeout: 2s }\nprobes:\n".to_string();
    y += &probe(
        "standin",
        "127.0.0.1",
        s.tcp.port(),
        "netra_app",
        "${SIM_PW}",
    );
    y += &probe(
        "standin-socket",
        &s.socket_dir.display().to_string(),
        5432,
        "netra_app",
        "${SIM_PW}",
    );
    y += &probe("real", "127.0.0.1", pg.port(), "app", "app-pw");
    y += &probe(
        "real-socket",
        &pg.socket_dir().display().to_string(),
        pg.port(),
        "app",
        "app-pw",
    );
    y
}

/// Each probe's reasons since the start, as `reason=count` (for the failure messages).
fn reasons(m: &str, probe: &str) -> Vec<String> {
    crate::support::exporter::samples(m, "pathwatch_probe_runs_total")
        .into_iter()
        .filter(|s| s.labels.get("probe").map(String::as_str) == Some(probe))
        .map(|s| format!("{}={}", s.labels["reason"], s.value))
        .collect()
}

/// Waits until every probe in `names` has failed with `reason`.
fn all_fail_with(exp: &Exporter, names: &[&str], reason: &str) {
    for probe in names {
        let deadline = Instant::now() + WAIT;
        loop {
            let m = exp.metrics();
            let n = value(
                &m,
                "pathwatch_probe_runs_total",
                &[("probe", probe), ("result", "failure"), ("reason", reason)],
            );
            if n >= Some(1.0) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{probe}: no failure with reason {reason}: {:?}\n{}",
                reasons(&m, probe),
                exp.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn all_succeed(exp: &Exporter, names: &[&str]) {
    for probe in names {
        // A success after the last fault: the count of successes grows.
        let before = value(
            &exp.metrics(),
            "pathwatch_probe_runs_total",
            &[("probe", probe), ("result", "success"), ("reason", "ok")],
        )
        .unwrap_or(0.0);
        exp.wait_for(
            "pathwatch_probe_runs_total",
            &[("probe", probe), ("result", "success"), ("reason", "ok")],
            WAIT,
            |v| v > before,
        );
    }
}

/// The same faults, the same reasons: a rotated password is `auth`, a full server
/// `too_many_connections`, a hang `timeout` at the probe's timeout, a dead server `refused`.
#[test]
fn the_probe_names_the_stand_ins_faults_as_a_real_postgres_s() {
    let s = StandIn::start();
    // 6 slots, 3 for superusers: the role `app` has 3.
    let pg = PgCluster::start(PgOptions {
        max_connections: Some(6),
        ..PgOptions::default()
    });
    pg.exec("CREATE ROLE app LOGIN PASSWORD 'app-pw'");
    let exp = Exporter::start_with_env(&probes(&s, &pg), &[("SIM_PW", PASSWORD)]);
    let all = ["standin", "standin-socket", "real", "real-socket"];
    all_succeed(&exp, &all);
    let m = exp.metrics();
    // The same families and labels from both servers' connection reads.
    for probe in all {
        for name in [
            "pathwatch_db_connections_max",
            "pathwatch_db_connections_reserved",
            "pathwatch_db_connections_used_ratio",
        ] {
            assert!(
                value(&m, name, &[("probe", probe)]).is_some(),
                "{name} {probe}\n{m}"
            );
        }
    }

    // The password was rotated on the server.
    s.set(PgFaults {
        wrong_password: true,
        ..PgFaults::default()
    });
    pg.exec("ALTER ROLE app PASSWORD 'rotated'");
    all_fail_with(&exp, &all, "auth");
    s.set(PgFaults::default());
    pg.exec("ALTER ROLE app PASSWORD 'app-pw'");
    all_succeed(&exp, &all);

    // Every slot an ordinary role may take is held.
    s.set(PgFaults {
        too_many_connections: true,
        ..PgFaults::default()
    });
    let held = pg.hold_sessions(4);
    all_fail_with(&exp, &all, "too_many_connections");
    s.set(PgFaults::default());
    drop(held);
    all_succeed(&exp, &all);

    // Accepted, never answered: each run is cut at its 2 s timeout.
    s.set(PgFaults {
        hang: true,
        ..PgFaults::default()
    });
    pg.freeze();
    all_fail_with(&exp, &all, "timeout");
    let m = exp.metrics();
    for probe in all {
        let took = value(&m, "pathwatch_probe_duration_seconds", &[("probe", probe)]);
        assert!(
            took.is_some_and(|t| (2.0..2.5).contains(&t)),
            "{probe}: {took:?}"
        );
    }
    s.set(PgFaults::default());
    pg.thaw();
    all_succeed(&exp, &all);

    // Nothing listens. Over TCP both are refused; a stopped Postgres also removes its socket
    // file (socket_missing), where the stand-in leaves it as a crashed server does (refused).
    s.set(PgFaults {
        refuse: true,
        ..PgFaults::default()
    });
    pg.stop();
    all_fail_with(&exp, &["standin", "real", "standin-socket"], "refused");
    all_fail_with(&exp, &["real-socket"], "socket_missing");
    let logs = exp.logs();
    assert!(!logs.contains(PASSWORD), "no password in the logs");
}

/// PUT over plain HTTP/1.0: the status code.
fn http_put(addr: SocketAddr, path: &str, body: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the sim");
    write!(
        s,
        "PUT {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    raw.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// `pathwatch sim --postgres-listen --postgres-socket-dir`: the stand-in as a process, its
/// faults switched over `PUT /admin/faults` like the other services'.
#[test]
fn pathwatch_sim_serves_postgres_and_follows_admin_faults() {
    use std::io::BufRead;
    let dir = tempfile::Builder::new()
        .prefix("pw-sim-cli-")
        .tempdir()
        .expect("temp dir");
    let socket_dir = dir.path().join("netra-staging:us-central1:staging-pg");
    std::fs::create_dir(&socket_dir).expect("socket dir");
    let mut child = Command::new(crate::support::exporter::BIN)
        .args(["sim", "--listen", "127.0.0.1:0", "--password", PASSWORD])
        .args(["--postgres-listen", "127.0.0.1:0", "--postgres-socket-dir"])
        .arg(&socket_dir)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn pathwatch sim");
    let stderr = child.stderr.take().expect("stderr");
    let (mut http, mut pg) = (None, None);
    for line in std::io::BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
    {
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("addr="))
            .and_then(|a| a.parse::<SocketAddr>().ok());
        if line.contains("reference service listening") {
            http = addr;
        } else if line.contains("reference Postgres listening") && addr.is_some() {
            pg = addr;
        }
        if http.is_some() {
            break;
        }
    }
    let (http, pg) = (http.expect("sim address"), pg.expect("Postgres address"));
    let socket = socket_dir.display().to_string();
    for (host, port) in [(pg.ip().to_string(), pg.port()), (socket.clone(), 5432)] {
        let out = psql(&host, port, PASSWORD, "SELECT 1");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "1",
            "{}",
            text(&out)
        );
    }
    assert_eq!(
        http_put(
            http,
            "/admin/faults",
            r#"{"postgres":{"wrong_password":true,"auth":"md5"}}"#
        ),
        200
    );
    let out = psql(&socket, 5432, PASSWORD, "SELECT 1");
    assert!(
        text(&out).contains("authentication failed"),
        "{}",
        text(&out)
    );
    // An unknown switch is refused, as for the other services.
    assert_eq!(
        http_put(http, "/admin/faults", r#"{"postgres":{"hangs":true}}"#),
        400
    );
    let _ = child.kill();
    let _ = child.wait();
}

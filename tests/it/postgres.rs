//! The `postgres` probe against throwaway clusters: success over TCP and Unix sockets, and
//! each failure with its reason, phase and timing.

use crate::support::exporter::{Exporter, phases, value};
use crate::support::hang::SilentServer;
use crate::support::pg::{PgCluster, PgOptions};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// A config with one postgres probe; `extra` lines are indented under it.
fn config(name: &str, host: &str, port: u16, extra: &[&str]) -> String {
    let mut y = format!(
        "defaults:\n  interval: 1s\n  timeout: 5s\nprobes:\n  - name: {name}\n    kind: postgres\n    host: \"{host}\"\n    port: {port}\n"
    );
    for line in extra {
        y.push_str("    ");
        y.push_str(line);
        y.push('\n');
    }
    y
}

fn runs(text: &str, probe: &str, result: &str, reason: &str) -> f64 {
    value(
        text,
        "pathwatch_probe_runs_total",
        &[("probe", probe), ("result", result), ("reason", reason)],
    )
    .unwrap_or(0.0)
}

fn wait_failure(exp: &Exporter, probe: &str, reason: &str) -> String {
    exp.wait_for(
        "pathwatch_probe_runs_total",
        &[("probe", probe), ("result", "failure"), ("reason", reason)],
        WAIT,
        |v| v >= 1.0,
    );
    exp.metrics()
}

#[test]
fn connects_over_tcp_with_every_phase() {
    let pg = PgCluster::start(PgOptions::default());
    let exp = Exporter::start_with_env(
        &config(
            "db",
            "127.0.0.1",
            pg.port(),
            &["password: ${TEST_PGPASSWORD}", "sslmode: disable"],
        ),
        &[("TEST_PGPASSWORD", pg.password())],
    );
    exp.wait_for(
        "pathwatch_probe_success",
        &[("probe", "db"), ("kind", "postgres")],
        WAIT,
        |v| v == 1.0,
    );
    let m = exp.metrics();
    assert_eq!(phases(&m, "db"), ["auth", "connect", "query", "resolve"]);
    assert!(runs(&m, "db", "success", "ok") >= 1.0);
    let connect = value(
        &m,
        "pathwatch_db_connect_seconds_count",
        &[("probe", "db"), ("transport", "tcp")],
    );
    assert!(connect >= Some(1.0), "db_connect observed: {connect:?}");
    // The password travelled only to the server.
    for text in [m, exp.logs(), exp.get("/").2] {
        assert!(!text.contains(pg.password()), "password leaked:\n{text}");
    }
}

#[test]
fn connects_over_the_unix_socket_with_a_password_file() {
    let pg = PgCluster::start(PgOptions::default());
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("pg-password");
    std::fs::write(&secret, format!("{}\n", pg.password())).expect("write secret");
    let exp = Exporter::start(&config(
        "socket-db",
        &pg.socket_dir().display().to_string(),
        pg.port(),
        &[&format!("password_file: {}", secret.display())],
    ));
    exp.wait_for(
        "pathwatch_probe_success",
        &[("probe", "socket-db")],
        WAIT,
        |v| v == 1.0,
    );
    let m = exp.metrics();
    // No DNS and no TLS over a Unix socket: those phases are absent, not zero.
    assert_eq!(phases(&m, "socket-db"), ["auth", "connect", "query"]);
    assert!(
        value(
            &m,
            "pathwatch_db_connect_seconds_count",
            &[("probe", "socket-db"), ("transport", "unix")]
        ) >= Some(1.0)
    );
}

#[test]
fn stopped_server_is_refused_and_missing_socket_dir_is_socket_missing() {
    let pg = PgCluster::start(PgOptions::default());
    let socket_dir = pg.socket_dir().display().to_string();
    let port = pg.port();
    pg.stop();
    let yaml = format!(
        "{}  - name: gone-socket\n    kind: postgres\n    host: \"/nonexistent/cloudsql/p:r:i\"\n  - name: stale-dir\n    kind: postgres\n    host: \"{socket_dir}\"\n    port: {port}\n",
        config("stopped", "127.0.0.1", port, &["sslmode: disable"])
    );
    let exp = Exporter::start(&yaml);
    let m = wait_failure(&exp, "stopped", "refused");
    assert_eq!(
        value(&m, "pathwatch_probe_success", &[("probe", "stopped")]),
        Some(0.0)
    );
    // Phases reached before the failure stay; the failing one is absent.
    assert_eq!(phases(&m, "stopped"), ["resolve"]);
    wait_failure(&exp, "gone-socket", "socket_missing");
    // The directory exists but the server removed its socket when it stopped.
    let m = wait_failure(&exp, "stale-dir", "socket_missing");
    // Fast failures are not connect times: the histogram stays empty.
    assert_eq!(
        value(
            &m,
            "pathwatch_db_connect_seconds_count",
            &[("probe", "stopped")]
        ),
        None
    );
    let logs = exp.logs();
    assert!(
        logs.contains("socket directory \"/nonexistent/cloudsql/p:r:i\" does not exist"),
        "logs name the missing directory:\n{logs}"
    );
}

#[test]
fn wrong_password_is_auth_and_unknown_database_is_database_missing() {
    let pg = PgCluster::start(PgOptions::default());
    let wrong = "not-the-password-7f3a9c";
    let yaml = format!(
        "{}  - name: nodb\n    kind: postgres\n    host: 127.0.0.1\n    port: {}\n    password: \"{}\"\n    dbname: netra_staging\n    sslmode: disable\n",
        config(
            "badpw",
            "127.0.0.1",
            pg.port(),
            &[&format!("password: \"{wrong}\""), "sslmode: disable"]
        ),
        pg.port(),
        pg.password()
    );
    let exp = Exporter::start(&yaml);
    let m = wait_failure(&exp, "badpw", "auth");
    assert_eq!(phases(&m, "badpw"), ["connect", "resolve"]);
    wait_failure(&exp, "nodb", "database_missing");
    // Once the database exists the same probe succeeds.
    pg.create_database("netra_staging");
    exp.wait_for("pathwatch_probe_success", &[("probe", "nodb")], WAIT, |v| {
        v == 1.0
    });
    for text in [exp.metrics(), exp.logs(), exp.get("/").2] {
        assert!(!text.contains(wrong), "wrong password leaked:\n{text}");
        assert!(!text.contains(pg.password()), "password leaked:\n{text}");
    }
}

#[test]
fn frozen_postmaster_times_out_at_the_configured_timeout() {
    let pg = PgCluster::start(PgOptions::default());
    pg.freeze();
    let exp = Exporter::start(
        &config(
            "frozen",
            "127.0.0.1",
            pg.port(),
            &["sslmode: disable", "timeout: 2s", "password: x"],
        )
        .replace("interval: 1s", "interval: 10s"),
    );
    let m = wait_failure(&exp, "frozen", "timeout");
    let took = value(
        &m,
        "pathwatch_probe_duration_seconds",
        &[("probe", "frozen")],
    )
    .expect("duration of the timed-out run");
    assert!(
        (2.0..2.5).contains(&took),
        "reported at the timeout, not later: {took}"
    );
    // The kernel accepted the connection; the server never answered the startup message.
    assert_eq!(phases(&m, "frozen"), ["connect", "resolve"]);
    // A hang is a connect time too: it lands in the histogram at the timeout.
    assert_eq!(
        value(
            &m,
            "pathwatch_db_connect_seconds_count",
            &[("probe", "frozen")]
        ),
        Some(1.0)
    );
    assert!(
        exp.logs().contains("stopped in phase auth"),
        "{}",
        exp.logs()
    );
    pg.thaw();
}

#[test]
fn silent_listener_times_out_in_tls_negotiation() {
    let silent = SilentServer::start();
    let exp = Exporter::start(
        &config(
            "silent",
            "127.0.0.1",
            silent.port,
            &["timeout: 1500ms", "sslmode: require"],
        )
        .replace("interval: 1s", "interval: 10s"),
    );
    let m = wait_failure(&exp, "silent", "timeout");
    let took = value(
        &m,
        "pathwatch_probe_duration_seconds",
        &[("probe", "silent")],
    )
    .expect("duration");
    assert!(
        (1.5..2.0).contains(&took),
        "reported at the timeout: {took}"
    );
    assert!(
        exp.logs().contains("stopped in phase tls"),
        "{}",
        exp.logs()
    );
    assert!(silent.connections() >= 1);
}

#[test]
fn tls_required_but_not_offered_fails_with_tls() {
    let pg = PgCluster::start(PgOptions::default());
    let exp = Exporter::start(&config(
        "needs-tls",
        "127.0.0.1",
        pg.port(),
        &[
            "sslmode: require",
            &format!("password: \"{}\"", pg.password()),
        ],
    ));
    let m = wait_failure(&exp, "needs-tls", "tls");
    assert_eq!(phases(&m, "needs-tls"), ["connect", "resolve"]);
    assert!(
        exp.logs().contains("does not support TLS"),
        "{}",
        exp.logs()
    );
}

#[test]
fn tls_modes_follow_libpq() {
    let pg = PgCluster::start(PgOptions {
        tls: true,
        ..PgOptions::default()
    });
    let ca = pg
        .ca_cert_path()
        .expect("CA of the TLS cluster")
        .display()
        .to_string();
    let pw = format!("password: \"{}\"", pg.password());
    let probe = |name: &str, host: &str, lines: &[&str]| {
        let mut y = format!(
            "  - name: {name}\n    kind: postgres\n    host: {host}\n    port: {}\n    {pw}\n",
            pg.port()
        );
        for l in lines {
            y.push_str(&format!("    {l}\n"));
        }
        y
    };
    let yaml = format!(
        "defaults:\n  interval: 1s\n  timeout: 5s\nprobes:\n{}{}{}{}",
        // verify-full against the test CA, by name
        probe(
            "full",
            "localhost",
            &["sslmode: verify-full", &format!("sslrootcert: {ca}")]
        ),
        // require encrypts without checking: the test CA is not needed
        probe("require", "127.0.0.1", &["sslmode: require"]),
        // verify-ca checks the chain: without the CA, the Mozilla roots do not know it
        probe("unknown-ca", "127.0.0.1", &["sslmode: verify-ca"]),
        probe("prefer", "127.0.0.1", &[]),
    );
    let exp = Exporter::start(&yaml);
    for name in ["full", "require", "prefer"] {
        exp.wait_for("pathwatch_probe_success", &[("probe", name)], WAIT, |v| {
            v == 1.0
        });
    }
    let m = wait_failure(&exp, "unknown-ca", "tls");
    assert_eq!(
        phases(&m, "full"),
        ["auth", "connect", "query", "resolve", "tls"]
    );
    assert_eq!(
        phases(&m, "prefer"),
        ["auth", "connect", "query", "resolve", "tls"]
    );
}

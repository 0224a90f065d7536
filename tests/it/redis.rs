//! The `redis` probe against real `redis-server` instances (plain with a password and a Unix
//! socket, and TLS only), plus fakes for what a real server will not do on demand (LOADING,
//! a silent listener): each outcome with its reason and phases, and the password kept secret.

use crate::support::exporter::{Exporter, phases, value};
use crate::support::hang::SilentServer;
use crate::support::redis::{RedisOptions, RedisServer};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// A server that answers every connection with `reply` once it has read a command.
fn answering(reply: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a fake redis");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 512];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(reply.as_bytes());
        }
    });
    port
}

#[test]
fn redis_pings_with_every_phase_and_names_each_failure() {
    let redis = RedisServer::start(RedisOptions::default());
    let (port, socket) = (redis.port(), redis.socket().display().to_string());
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("redis-password");
    std::fs::write(&secret, format!("{}\n", redis.password())).expect("write secret");
    let loading = answering("-LOADING Redis is loading the dataset in memory\r\n");
    let http = answering("HTTP/1.1 400 Bad Request\r\n\r\n");
    let yaml = format!(
        r"defaults: {{ interval: 1s, timeout: 5s }}
probes:
  - name: cache
    kind: redis
    host: 127.0.0.1
    port: {port}
    password: ${{TEST_REDIS_PASSWORD}}
    db: 1
  - name: cache-acl
    kind: redis
    host: localhost
    port: {port}
    username: default
    password_file: {secret}
  - name: cache-socket
    kind: redis
    host: {socket}
    password: ${{TEST_REDIS_PASSWORD}}
  - name: cache-wrong-password
    kind: redis
    host: 127.0.0.1
    port: {port}
    password: not-the-password
  - name: cache-no-password
    kind: redis
    host: 127.0.0.1
    port: {port}
  - name: cache-no-such-db
    kind: redis
    host: 127.0.0.1
    port: {port}
    password: ${{TEST_REDIS_PASSWORD}}
    db: 999
  - name: cache-loading
    kind: redis
    host: 127.0.0.1
    port: {loading}
  - name: not-redis
    kind: redis
    host: 127.0.0.1
    port: {http}
",
        secret = secret.display()
    );
    let exp = Exporter::start_with_env(&yaml, &[("TEST_REDIS_PASSWORD", redis.password())]);
    for ok in ["cache", "cache-acl", "cache-socket"] {
        exp.wait_for(
            "pathwatch_probe_success",
            &[("probe", ok), ("kind", "redis")],
            WAIT,
            |v| v == 1.0,
        );
    }
    exp.wait_reason("cache-wrong-password", "failure", "auth");
    exp.wait_reason("cache-no-password", "failure", "auth");
    exp.wait_reason("cache-no-such-db", "failure", "database_missing");
    exp.wait_reason("cache-loading", "failure", "unavailable");
    exp.wait_reason("not-redis", "failure", "protocol");
    let m = exp.metrics();
    assert_eq!(phases(&m, "cache"), ["auth", "connect", "query", "resolve"]);
    assert_eq!(phases(&m, "cache-socket"), ["auth", "connect", "query"]);
    // AUTH failed: only the phases before it are present.
    assert_eq!(phases(&m, "cache-wrong-password"), ["connect", "resolve"]);
    // Without a password no AUTH is sent; the PING is refused with NOAUTH.
    assert_eq!(phases(&m, "cache-no-password"), ["connect", "resolve"]);
    assert!(
        value(
            &m,
            "pathwatch_db_connect_seconds_count",
            &[("probe", "cache-socket"), ("transport", "unix")]
        ) >= Some(1.0)
    );
    assert!(
        value(
            &m,
            "pathwatch_db_connect_seconds_count",
            &[("probe", "cache"), ("transport", "tcp")]
        ) >= Some(1.0)
    );
    let logs = exp.logs();
    assert!(
        logs.contains("WRONGPASS"),
        "the server's answer is logged:\n{logs}"
    );
    assert!(logs.contains("NOAUTH"), "{logs}");
    for text in [m, logs, exp.get("/").2, exp.get("/api/status").2] {
        assert!(!text.contains(redis.password()), "password leaked:\n{text}");
        assert!(
            !text.contains("not-the-password"),
            "password leaked:\n{text}"
        );
    }
}

#[test]
fn redis_stopped_is_refused_and_silent_is_timeout() {
    let mut redis = RedisServer::start(RedisOptions::default());
    let port = redis.port();
    redis.stop();
    let silent = SilentServer::start();
    let yaml = format!(
        r"defaults: {{ interval: 1s }}
probes:
  - name: cache-stopped
    kind: redis
    host: 127.0.0.1
    port: {port}
  - name: cache-silent
    kind: redis
    host: 127.0.0.1
    port: {silent}
    password: pw
    timeout: 1s
",
        silent = silent.port
    );
    let exp = Exporter::start(&yaml);
    exp.wait_reason("cache-stopped", "failure", "refused");
    exp.wait_reason("cache-silent", "failure", "timeout");
    let m = exp.metrics();
    // The silent server accepted the connection; the AUTH reply never came.
    assert_eq!(phases(&m, "cache-silent"), ["connect", "resolve"]);
    let d = value(
        &m,
        "pathwatch_probe_duration_seconds",
        &[("probe", "cache-silent")],
    )
    .expect("duration of the silent probe");
    assert!((1.0..2.0).contains(&d), "cut at its 1s timeout: {d}");
    assert!(
        exp.logs().contains("stopped in phase auth"),
        "{}",
        exp.logs()
    );
}

#[test]
fn redis_over_tls_verifies_the_certificate() {
    let redis = RedisServer::start(RedisOptions { tls: true });
    let (port, ca) = (redis.port(), redis.ca_cert().display().to_string());
    let yaml = format!(
        r"defaults: {{ interval: 1s, timeout: 5s }}
probes:
  - name: cache-tls
    kind: redis
    host: localhost
    port: {port}
    password: ${{TEST_REDIS_PASSWORD}}
    tls: true
    ca_file: {ca}
  - name: cache-tls-insecure
    kind: redis
    host: 127.0.0.1
    port: {port}
    password: ${{TEST_REDIS_PASSWORD}}
    tls: true
    insecure_skip_verify: true
  - name: cache-tls-untrusted
    kind: redis
    host: localhost
    port: {port}
    password: ${{TEST_REDIS_PASSWORD}}
    tls: true
  - name: cache-plain-to-tls
    kind: redis
    host: 127.0.0.1
    port: {port}
    password: ${{TEST_REDIS_PASSWORD}}
"
    );
    let exp = Exporter::start_with_env(&yaml, &[("TEST_REDIS_PASSWORD", redis.password())]);
    for ok in ["cache-tls", "cache-tls-insecure"] {
        exp.wait_for(
            "pathwatch_probe_success",
            &[("probe", ok), ("kind", "redis")],
            WAIT,
            |v| v == 1.0,
        );
    }
    // The certificate's CA is not among the Mozilla roots.
    exp.wait_reason("cache-tls-untrusted", "failure", "tls");
    // Plain text to a TLS port: the server hangs up on the AUTH.
    exp.wait_reason("cache-plain-to-tls", "failure", "reset");
    let m = exp.metrics();
    assert_eq!(
        phases(&m, "cache-tls"),
        ["auth", "connect", "query", "resolve", "tls"]
    );
    assert_eq!(phases(&m, "cache-tls-untrusted"), ["connect", "resolve"]);
    let logs = exp.logs();
    assert!(logs.contains("UnknownIssuer"), "{logs}");
    assert!(!logs.contains(redis.password()), "password leaked:\n{logs}");
}

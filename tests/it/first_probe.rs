//! A first probe of one's own service: `check` and `serve` with `--target URL` and with
//! `DATABASE_URL`, no config file, against throwaway clusters (the password never shows);
//! examples/local.yaml following libpq's variables beside a decoy on 127.0.0.1:5432; and one
//! test per error text of a bad target URL.

use crate::support::exporter::{BIN, Exporter};
use crate::support::pg::{PgCluster, PgOptions};
use std::process::Command;
use std::time::Duration;

/// Every variable that would steer a target or a config from outside the test.
const STEERING: &[&str] = &[
    "DATABASE_URL",
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGSSLMODE",
    "PATHWATCH_CONFIG",
    "RUST_LOG",
];

/// `pathwatch ARGS` with only `env` of the steering variables: (exit code, stdout, stderr).
fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for k in STEERING {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run pathwatch");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `check --format json` with `args`: exit code, the probes as (name, ok, reason), and all
/// the text it wrote.
fn check_json(
    args: &[&str],
    env: &[(&str, &str)],
) -> (Option<i32>, Vec<(String, bool, String)>, String) {
    let mut all = vec!["check", "--format", "json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = run(&all, env);
    let text = format!("{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("check --format json printed no JSON ({e}):\n{text}"));
    let probes = report["probes"]
        .as_array()
        .unwrap_or_else(|| panic!("no probes in the report:\n{text}"))
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_string(),
                p["ok"].as_bool().unwrap_or(false),
                p["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    (code, probes, text)
}

fn tcp_url(pg: &PgCluster) -> String {
    format!(
        "postgres://{}:{}@127.0.0.1:{}/postgres?sslmode=disable",
        pg.user(),
        pg.password(),
        pg.port()
    )
}

#[test]
fn check_probes_targets_with_no_config_file() {
    let pg = PgCluster::start(PgOptions::default());
    let port = pg.port().to_string();
    let tcp = tcp_url(&pg);
    // The socket form takes its port and password from libpq's variables, as psql would.
    let socket = format!("postgresql:///postgres?host={}", pg.socket_dir().display());
    let (code, probes, text) = check_json(
        &["--target", &tcp, "--target", &socket],
        &[("PGPORT", &port), ("PGPASSWORD", pg.password())],
    );
    assert_eq!(code, Some(0), "{text}");
    let socket_name = format!(
        "postgres-{}-{port}",
        pg.socket_dir()
            .display()
            .to_string()
            .trim_start_matches('/')
            .replace('/', "_")
    );
    let socket_name: String = socket_name.chars().take(64).collect();
    assert_eq!(
        probes,
        [
            (format!("postgres-127.0.0.1-{port}"), true, "ok".to_string()),
            (socket_name, true, "ok".to_string()),
        ],
        "{text}"
    );
    assert!(!text.contains(pg.password()), "the password shows:\n{text}");

    // Cloud SQL's socket form: a user and password with an empty host, the socket directory
    // in `?host=` (libpq reads it; the url crate alone refuses an empty host after a user).
    let cloudsql = format!(
        "postgresql://{}:{}@/postgres?host={}",
        pg.user(),
        pg.password(),
        pg.socket_dir().display()
    );
    let (code, probes, text) = check_json(&["--target", &cloudsql], &[("PGPORT", &port)]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(probes.len(), 1, "{text}");
    assert_eq!((probes[0].1, probes[0].2.as_str()), (true, "ok"), "{text}");
    assert!(!text.contains(pg.password()), "the password shows:\n{text}");
}

#[test]
fn serve_probes_a_target_and_never_shows_its_password() {
    let pg = PgCluster::start(PgOptions::default());
    let name = format!("postgres-127.0.0.1-{}", pg.port());
    let args = ["serve".to_string(), "--target".to_string(), tcp_url(&pg)];
    let exp = Exporter::start_command(&args, &[], tempfile::tempdir().expect("temp dir"));
    exp.wait_for(
        "pathwatch_probe_success",
        &[("probe", &name), ("kind", "postgres")],
        Duration::from_secs(30),
        |v| v == 1.0,
    );
    let (_, _, api) = exp.get("/api/status");
    let (_, _, page) = exp.get("/");
    assert!(api.contains(&name), "{api}");
    for (what, text) in [
        ("/metrics", exp.metrics()),
        ("/api/status", api),
        ("/", page),
        ("stderr", exp.logs()),
    ] {
        assert!(
            !text.contains(pg.password()),
            "the password shows in {what}:\n{text}"
        );
    }
    assert!(exp.logs().contains("1 target"), "{}", exp.logs());
}

#[test]
fn a_target_that_is_down_or_refuses_fails_with_its_reason() {
    let pg = PgCluster::start(PgOptions::default());
    let port = pg.port().to_string();
    let wrong = format!(
        "postgres://postgres:not-{}@127.0.0.1:{port}/postgres?sslmode=disable",
        pg.password()
    );
    let (code, probes, text) = check_json(&["--target", &wrong], &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(!probes[0].1, "{text}");
    assert_eq!(probes[0].2, "auth", "{text}");
    assert!(!text.contains(pg.password()), "{text}");

    pg.stop();
    let socket = format!("postgresql:///postgres?host={}", pg.socket_dir().display());
    let (code, probes, text) = check_json(
        &["--target", &tcp_url(&pg), "--target", &socket],
        &[("PGPORT", &port)],
    );
    assert_eq!(code, Some(1), "{text}");
    let reasons: Vec<&str> = probes.iter().map(|p| p.2.as_str()).collect();
    assert_eq!(reasons, ["refused", "socket_missing"], "{text}");
    assert!(!text.contains(pg.password()), "{text}");
}

#[test]
fn database_url_alone_is_a_target() {
    let pg = PgCluster::start(PgOptions::default());
    let port = pg.port().to_string();
    let name = format!("postgres-127.0.0.1-{port}");
    let (code, probes, text) = check_json(&[], &[("DATABASE_URL", &tcp_url(&pg))]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(probes, [(name.clone(), true, "ok".to_string())], "{text}");
    assert!(!text.contains(pg.password()), "{text}");

    // Without DATABASE_URL, PGHOST and its friends, as a bare psql reads them.
    let (code, probes, text) = check_json(
        &[],
        &[
            ("PGHOST", "127.0.0.1"),
            ("PGPORT", &port),
            ("PGPASSWORD", pg.password()),
            ("PGSSLMODE", "disable"),
        ],
    );
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(probes, [(name.clone(), true, "ok".to_string())], "{text}");

    // serve the same way.
    let args = ["serve".to_string()];
    let url = tcp_url(&pg);
    let exp = Exporter::start_command(
        &args,
        &[("DATABASE_URL", &url)],
        tempfile::tempdir().expect("temp dir"),
    );
    exp.wait_for(
        "pathwatch_probe_success",
        &[("probe", &name)],
        Duration::from_secs(30),
        |v| v == 1.0,
    );
    assert!(!exp.metrics().contains(pg.password()));
    assert!(!exp.logs().contains(pg.password()), "{}", exp.logs());
}

#[test]
fn targets_join_a_config_file_and_database_url_does_not() {
    let pg = PgCluster::start(PgOptions::default());
    let port = pg.port();
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = dir.path().join("c.yaml");
    // The file already has the name the target would take: the target's is numbered.
    std::fs::write(
        &cfg,
        format!(
            "defaults:\n  timeout: 5s\nprobes:\n  - {{ name: postgres-127.0.0.1-{port}, kind: tcp, host: 127.0.0.1, port: {port} }}\n"
        ),
    )
    .expect("write config");
    let url = tcp_url(&pg);
    let cfg = cfg.to_str().expect("utf-8 path");
    let (code, probes, text) = check_json(
        &["--config", cfg, "--target", &url],
        &[("DATABASE_URL", "postgres://nobody@127.0.0.1:1/x")],
    );
    assert_eq!(code, Some(0), "{text}");
    let names: Vec<&str> = probes.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("postgres-127.0.0.1-{port}"),
            format!("postgres-127.0.0.1-{port}-2")
        ],
        "{text}"
    );
}

#[test]
fn redis_http_and_tcp_targets_probe_with_their_kinds_defaults() {
    use crate::support::redis::{RedisOptions, RedisServer};
    let redis = RedisServer::start(RedisOptions::default());
    let sim = crate::support::sim::Sim::start(pathwatch::sim::Faults::default());
    let port = redis.port();
    let redis_url = format!("redis://:{}@127.0.0.1:{port}/1", redis.password());
    let http_url = sim.http("/health");
    let tcp_url = format!("tcp://127.0.0.1:{port}");
    let (code, probes, text) = check_json(
        &[
            "--target", &redis_url, "--target", &http_url, "--target", &tcp_url,
        ],
        &[],
    );
    assert_eq!(code, Some(0), "{text}");
    let http_port = http_url
        .rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        probes,
        [
            (format!("redis-127.0.0.1-{port}"), true, "ok".to_string()),
            (
                format!("http-127.0.0.1-{http_port}"),
                true,
                "ok".to_string()
            ),
            (format!("tcp-127.0.0.1-{port}"), true, "ok".to_string()),
        ],
        "{text}"
    );
    assert!(!text.contains(redis.password()), "{text}");
    // A wrong password is the redis probe's auth failure, its text without the password.
    let wrong = format!("redis://:not-{}@127.0.0.1:{port}", redis.password());
    let (code, probes, text) = check_json(&["--target", &wrong], &[]);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(probes[0].2, "auth", "{text}");
    assert!(!text.contains(redis.password()), "{text}");
}

/// An HTTP server that answers 200 to requests with basic auth for `user:pass-word1`, 401
/// to the rest; its address.
fn basic_auth_server() -> std::net::SocketAddr {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut authorized = false;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                // base64("user:pass-word1")
                authorized |=
                    line.eq_ignore_ascii_case("authorization: Basic dXNlcjpwYXNzLXdvcmQx\r\n");
                line.clear();
            }
            let status = if authorized {
                "200 OK"
            } else {
                "401 Unauthorized"
            };
            let _ = write!(
                &stream,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    addr
}

#[test]
fn http_user_and_password_are_sent_as_basic_auth() {
    let addr = basic_auth_server();
    let with = format!("http://user:pass-word1@{addr}/private");
    let without = format!("http://{addr}/private");
    let (code, probes, text) = check_json(&["--target", &with, "--target", &without], &[]);
    assert_eq!(code, Some(1), "{text}");
    let results: Vec<(bool, &str)> = probes.iter().map(|p| (p.1, p.2.as_str())).collect();
    assert_eq!(results, [(true, "ok"), (false, "http_status")], "{text}");
    assert!(!text.contains("pass-word1"), "{text}");
}

#[test]
fn a_reload_keeps_the_targets() {
    let pg = PgCluster::start(PgOptions::default());
    let name = format!("postgres-127.0.0.1-{}", pg.port());
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = dir.path().join("pathwatch.yaml");
    let probe = |n: &str| {
        format!(
            "  - {{ name: {n}, kind: tcp, host: 127.0.0.1, port: {} }}\n",
            pg.port()
        )
    };
    std::fs::write(
        &cfg,
        format!("defaults:\n  interval: 1s\nprobes:\n{}", probe("first")),
    )
    .expect("write config");
    let args = [
        "serve".to_string(),
        "--config".to_string(),
        cfg.display().to_string(),
        "--target".to_string(),
        tcp_url(&pg),
    ];
    let exp = Exporter::start_command(&args, &[], dir);
    let up = |probe: &str| {
        exp.wait_for(
            "pathwatch_probe_success",
            &[("probe", probe)],
            Duration::from_secs(30),
            |v| v == 1.0,
        )
    };
    up(&name);
    up("first");
    std::fs::write(
        &cfg,
        format!(
            "defaults:\n  interval: 1s\nprobes:\n{}{}",
            probe("first"),
            probe("second")
        ),
    )
    .expect("rewrite config");
    exp.signal("HUP");
    up("second");
    assert!(
        exp.logs().contains("config reloaded: 3 probes"),
        "{}",
        exp.logs()
    );
    // The target runs on after the reload: its run count still grows.
    let runs = |text: &str| {
        crate::support::exporter::value(
            text,
            "pathwatch_probe_runs_total",
            &[("probe", &name), ("result", "success"), ("reason", "ok")],
        )
        .unwrap_or(0.0)
    };
    let before = runs(&exp.metrics());
    exp.wait_for(
        "pathwatch_probe_runs_total",
        &[("probe", &name), ("result", "success")],
        Duration::from_secs(30),
        |v| v > before,
    );
    assert!(!exp.logs().contains(pg.password()), "{}", exp.logs());
}

/// A listener on 127.0.0.1:5432 that only counts who connects. 5432 is free only in the
/// loopback-only namespace (.ci/netguard): outside, the machine's own Postgres has it, and
/// this test cannot show anything, so it fails saying how to run it.
struct Decoy(std::net::TcpListener);

impl Decoy {
    fn bind() -> Decoy {
        match std::net::TcpListener::bind("127.0.0.1:5432") {
            Ok(l) => Decoy(l),
            Err(e) => panic!(
                "cannot listen on 127.0.0.1:5432 for the decoy ({e}): run this test in the \
                 loopback-only namespace, `bash .ci/netguard cargo test --locked --test it \
                 first_probe` (as CI does)"
            ),
        }
    }

    /// How many connections arrived since the last call (each is taken off the queue).
    fn connections(&self) -> usize {
        self.0.set_nonblocking(true).expect("nonblocking decoy");
        std::iter::from_fn(|| self.0.accept().ok()).count()
    }
}

#[test]
fn local_yaml_follows_libpq_variables_beside_a_decoy_on_5432() {
    let decoy = Decoy::bind();
    let pg = PgCluster::start(PgOptions::default());
    assert_ne!(pg.port(), 5432);
    let port = pg.port().to_string();
    let socket_dir = pg.socket_dir().display().to_string();
    let names = ["local-db", "local-db-tcp", "local-db-port"];
    // PGHOST a directory (the socket), then a host (TCP): every probe reaches the cluster.
    for host in [socket_dir.as_str(), "127.0.0.1"] {
        let (code, probes, text) = check_json(
            &["--config", "examples/local.yaml"],
            &[
                ("PGHOST", host),
                ("PGPORT", &port),
                ("PGUSER", pg.user()),
                ("PGPASSWORD", pg.password()),
                ("PGSSLMODE", "disable"),
            ],
        );
        assert_eq!(code, Some(0), "PGHOST={host}:\n{text}");
        let expected: Vec<(String, bool, String)> = names
            .iter()
            .map(|n| (n.to_string(), true, "ok".to_string()))
            .collect();
        assert_eq!(probes, expected, "PGHOST={host}:\n{text}");
        assert_eq!(
            decoy.connections(),
            0,
            "a probe went to 5432 with PGHOST={host}"
        );
    }
    // The decoy counts: with PGPORT unset, the tcp probes go to it.
    let (code, probes, text) = check_json(
        &["--config", "examples/local.yaml"],
        &[("PGHOST", &socket_dir), ("PGPASSWORD", pg.password())],
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(decoy.connections() >= 1, "{text}");
    assert!(
        probes.iter().any(|p| p.0 == "local-db-port" && p.1),
        "{text}"
    );
}

/// `check --target URL` (no config) fails with exit 2 and exactly `expected` on stderr.
fn bad_target(url: &str, expected: &str) {
    let (code, stdout, stderr) = run(&["check", "--target", url], &[]);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert_eq!(stderr, format!("{expected}\n"), "{url}");
    assert!(!stderr.contains("hunter22"), "{stderr}");
}

macro_rules! bad_targets {
    ($($test:ident: $url:expr => $expected:expr;)*) => {$(
        #[test]
        fn $test() {
            bad_target($url, $expected);
        }
    )*};
}

bad_targets! {
    bad_target_not_a_url: "db.internal:5432" =>
        "--target #1 \"db.internal:5432\": unknown scheme \"db.internal\": use postgres://, postgresql://, redis://, rediss://, http://, https:// or tcp://";
    bad_target_relative: "localhost" =>
        "--target #1: not a URL (relative URL without a base); write it like postgres://user:password@host:5432/dbname";
    bad_target_scheme: "mysql://app:hunter22@127.0.0.1/shop" =>
        "--target #1 \"mysql://app:<redacted>@127.0.0.1/shop\": unknown scheme \"mysql\": use postgres://, postgresql://, redis://, rediss://, http://, https:// or tcp://";
    bad_target_tcp_without_port: "tcp://127.0.0.1" =>
        "--target #1 \"tcp://127.0.0.1\": tcp:// needs a port (tcp://host:port)";
    bad_target_tcp_with_a_path: "tcp://127.0.0.1:9/x" =>
        "--target #1 \"tcp://127.0.0.1:9/x\": tcp:// takes only a host and a port";
    bad_target_redis_without_host: "redis:///0" =>
        "--target #1 \"redis:///0\": redis:// needs a host";
    bad_target_redis_db: "redis://127.0.0.1/zero" =>
        "--target #1 \"redis://127.0.0.1/zero\": the Redis database \"zero\" must be a number (redis://host:6379/0)";
    bad_target_redis_query: "rediss://127.0.0.1?tls=1" =>
        "--target #1 \"rediss://127.0.0.1?tls=1\": rediss:// takes no query parameters";
    bad_target_several_hosts: "postgres://app:hunter22@a:5432,b:5432/shop" =>
        "--target #1: several hosts in one URL: give one --target per host";
    bad_target_port: "postgres://127.0.0.1/shop?port=0" =>
        "--target #1 \"postgres://127.0.0.1/shop?port=0\": invalid port \"0\": an integer from 1 to 65535";
    bad_target_param: "postgres://app:hunter22@127.0.0.1/shop?sslmod=require" =>
        "--target #1 \"postgres://app:<redacted>@127.0.0.1/shop?sslmod=require\": unknown query parameter \"sslmod\", did you mean \"sslmode\"? (postgres:// reads host, port, user, password, dbname, sslmode, sslrootcert, application_name)";
    bad_target_empty_host_label: "postgresql://app:hunter22@/shop?sslmod=require" =>
        "--target #1 \"postgresql://app:<redacted>@/shop?sslmod=require\": unknown query parameter \"sslmod\", did you mean \"sslmode\"? (postgres:// reads host, port, user, password, dbname, sslmode, sslrootcert, application_name)";
    bad_target_param_twice: "postgres://127.0.0.1/shop?port=1&port=2" =>
        "--target #1 \"postgres://127.0.0.1/shop?port=1&port=2\": query parameter \"port\" is given twice";
    bad_target_password_param_is_masked: "postgres://127.0.0.1/shop?password=hunter22&user=a&user=b" =>
        "--target #1 \"postgres://127.0.0.1/shop?password=<redacted>&user=a&user=b\": query parameter \"user\" is given twice";
    bad_target_encoding: "postgres://app:%FF%FE@127.0.0.1/shop" =>
        "--target #1 \"postgres://app:<redacted>@127.0.0.1/shop\": the password is not valid UTF-8 after percent-decoding";
    bad_target_sslmode: "postgres://app:hunter22@127.0.0.1/shop?sslmode=allow" =>
        "--target #1 \"postgres://app:<redacted>@127.0.0.1/shop?sslmode=allow\": sslmode: unknown value \"allow\" (expected one of: disable, prefer, require, verify-ca, verify-full)";
    bad_target_redis_user_without_password: "redis://app@127.0.0.1" =>
        "--target #1 \"redis://app@127.0.0.1\": \"username\" needs \"password\" or \"password_file\"";
    bad_target_http_host: "http://app:hunter22@/health" =>
        "--target #1: not a URL (empty host); write it like postgres://user:password@host:5432/dbname";
}

#[test]
fn every_bad_target_is_reported_and_the_flag_position_named() {
    let (code, _, stderr) = run(
        &[
            "check",
            "--target",
            "tcp://127.0.0.1:9",
            "--target",
            "tcp://x",
            "--target",
            "ftp://x",
        ],
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr,
        "--target #2 \"tcp://x\": tcp:// needs a port (tcp://host:port)\n\
         --target #3 \"ftp://x/\": unknown scheme \"ftp\": use postgres://, postgresql://, redis://, rediss://, http://, https:// or tcp://\n"
    );
}

#[test]
fn a_bad_database_url_names_the_variable_and_serve_exits_2() {
    let (code, _, stderr) = run(
        &["serve", "--listen", "127.0.0.1:0"],
        &[(
            "DATABASE_URL",
            "postgres://app:hunter22@127.0.0.1/shop?sslmode=maybe",
        )],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr,
        "DATABASE_URL \"postgres://app:<redacted>@127.0.0.1/shop?sslmode=maybe\": sslmode: unknown value \"maybe\" (expected one of: disable, prefer, require, verify-ca, verify-full)\n"
    );
}

#[test]
fn nothing_to_probe_is_a_usage_error() {
    let (code, _, stderr) = run(&["check"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr,
        "pathwatch: nothing to probe: give --config FILE or --target URL (or set DATABASE_URL)\n"
    );
}

#[test]
fn serve_help_explains_target() {
    let (code, stdout, _) = run(&["serve", "--help"], &[]);
    assert_eq!(code, Some(0));
    for needle in [
        "--target <URL>",
        "postgresql:///dbname?host=/var/run/postgresql",
        "rediss://",
        "tcp://host:port",
        "DATABASE_URL",
    ] {
        assert!(stdout.contains(needle), "{needle} in:\n{stdout}");
    }
}

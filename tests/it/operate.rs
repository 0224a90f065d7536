//! Operating pathwatch: on-demand `/probe` with its allowlist and the scrape timeout header,
//! config reload (POST /-/reload, SIGHUP, file watching) that keeps what is unchanged and
//! refuses what is invalid, and Cloud Logging JSON logs.

use crate::support::exporter::{Exporter, value};
use crate::support::hang::{SilentServer, closed_port};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// One HTTP/1.0 request with extra headers: (status, body).
fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

#[test]
fn on_demand_probe_runs_modules_within_the_allowlist_and_the_scrape_timeout() {
    let open = SilentServer::start();
    let exp = Exporter::start(&format!(
        r#"probes:
  - {{ name: tcp-check, kind: tcp, host: 127.0.0.1, port: {closed}, interval: 1h }}
  - {{ name: db-check, kind: postgres, host: 127.0.0.1, port: {closed}, timeout: 20s, interval: 1h }}
  - name: gp
    kind: golden_path
    interval: 1h
    token: t
    websocket: {{ url: "ws://127.0.0.1:{closed}/ws" }}
on_demand:
  allowed_targets: ["127.0.0.1:*"]
"#,
        closed = closed_port()
    ));
    let target = format!("127.0.0.1:{}", open.port);
    let (status, body) = request(
        exp.addr,
        "GET",
        &format!("/probe?module=tcp-check&target={target}"),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        value(
            &body,
            "pathwatch_probe_success",
            &[("probe", "tcp-check"), ("kind", "tcp")]
        ),
        Some(1.0)
    );
    assert!(
        value(
            &body,
            "pathwatch_probe_phase_duration_seconds",
            &[("phase", "connect")]
        )
        .is_some()
    );
    // Only the run's metrics: no exporter self-metrics, no other probe.
    assert!(
        !body.contains("build_info") && !body.contains("db-check"),
        "{body}"
    );
    // The module without a target runs as configured (a closed port).
    let (status, body) = request(exp.addr, "GET", "/probe?module=tcp-check", &[]);
    assert_eq!(status, 200);
    assert_eq!(
        value(&body, "pathwatch_probe_success", &[("probe", "tcp-check")]),
        Some(0.0)
    );

    // Outside the allowlist: refused before anything is sent.
    for t in [
        "10.0.0.1:5432",
        "localhost:5432",
        "127.0.0.1",
        "127.0.0.1:5432@evil",
    ] {
        let (status, _) = request(
            exp.addr,
            "GET",
            &format!("/probe?module=tcp-check&target={t}"),
            &[],
        );
        assert!(status == 403 || status == 400, "{t}: {status}");
    }
    assert_eq!(request(exp.addr, "GET", "/probe?module=nope", &[]).0, 400);
    assert_eq!(request(exp.addr, "GET", "/probe", &[]).0, 400);
    let (status, body) = request(
        exp.addr,
        "GET",
        &format!("/probe?module=gp&target={target}"),
        &[],
    );
    assert_eq!(
        (status, body.trim()),
        (400, "a golden_path probe cannot take a target")
    );

    // Prometheus' scrape timeout bounds the run: 1.5 s leaves 1 s for a hung server.
    let started = Instant::now();
    let (status, body) = request(
        exp.addr,
        "GET",
        &format!("/probe?module=db-check&target={target}"),
        &[("X-Prometheus-Scrape-Timeout-Seconds", "1.5")],
    );
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(5));
    let took = value(
        &body,
        "pathwatch_probe_duration_seconds",
        &[("probe", "db-check")],
    )
    .expect("duration");
    assert!((1.0..1.4).contains(&took), "bounded by the header: {took}");
    assert_eq!(
        value(&body, "pathwatch_probe_success", &[("probe", "db-check")]),
        Some(0.0)
    );
}

fn runs(m: &str, probe: &str) -> f64 {
    crate::support::exporter::samples(m, "pathwatch_probe_runs_total")
        .into_iter()
        .filter(|s| s.labels.get("probe").map(String::as_str) == Some(probe))
        .map(|s| s.value)
        .sum()
}

#[test]
fn reload_keeps_unchanged_probes_refuses_invalid_configs_and_follows_sighup() {
    let port = closed_port();
    let probe = |name: &str| {
        format!(
            "  - {{ name: {name}, kind: tcp, host: 127.0.0.1, port: {port}, interval: 200ms }}\n"
        )
    };
    let exp = Exporter::start(&format!("probes:\n{}{}", probe("kept"), probe("dropped")));
    let path = exp.config_path();
    exp.wait_for(
        "pathwatch_probe_runs_total",
        &[("probe", "kept"), ("reason", "refused")],
        WAIT,
        |v| v >= 3.0,
    );
    let before = runs(&exp.metrics(), "kept");

    // A valid change: `dropped` leaves, `added` comes, `kept` keeps its counters.
    std::fs::write(
        &path,
        format!("probes:\n{}{}", probe("kept"), probe("added")),
    )
    .expect("write");
    let (status, body) = request(exp.addr, "POST", "/-/reload", &[]);
    assert_eq!(
        (status, body.trim()),
        (200, "config reloaded: 2 probes, 0 incidents")
    );
    let m = exp.metrics();
    assert!(runs(&m, "kept") >= before, "counters survive the reload");
    assert!(
        !m.contains("probe=\"dropped\""),
        "the removed probe's series are gone:\n{m}"
    );
    exp.wait_for(
        "pathwatch_probe_runs_total",
        &[("probe", "added"), ("reason", "refused")],
        WAIT,
        |v| v >= 1.0,
    );
    assert_eq!(
        value(&m, "pathwatch_config_last_reload_successful", &[]),
        Some(1.0)
    );

    // An invalid config is refused with its error; the old one keeps running.
    std::fs::write(
        &path,
        format!(
            "probes:\n{}  - {{ name: bad, kind: tcp, hots: x }}\n",
            probe("kept")
        ),
    )
    .expect("write");
    let (status, body) = request(exp.addr, "POST", "/-/reload", &[]);
    assert_eq!(status, 500);
    assert!(
        body.contains("pathwatch.yaml:3:29: probe \"bad\": unknown field \"hots\""),
        "{body}"
    );
    let m = exp.metrics();
    assert_eq!(
        value(&m, "pathwatch_config_last_reload_successful", &[]),
        Some(0.0)
    );
    let added = runs(&m, "added");
    exp.wait_for(
        "pathwatch_probe_runs_total",
        &[("probe", "added"), ("reason", "refused")],
        WAIT,
        |v| v > added,
    );

    // SIGHUP reloads too.
    std::fs::write(&path, format!("probes:\n{}", probe("kept"))).expect("write");
    exp.signal("HUP");
    exp.wait_for("pathwatch_config_last_reload_successful", &[], WAIT, |v| {
        v == 1.0
    });
    let deadline = Instant::now() + WAIT;
    while exp.metrics().contains("probe=\"added\"") {
        assert!(Instant::now() < deadline, "SIGHUP did not apply the config");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(exp.logs().contains("SIGHUP: reloading the config"));
}

#[test]
fn a_watched_config_file_reloads_by_itself() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pathwatch.yaml");
    let port = closed_port();
    std::fs::write(&path, format!("probes:\n  - {{ name: first, kind: tcp, host: 127.0.0.1, port: {port}, interval: 200ms }}\n")).expect("write");
    let args = [
        "serve",
        "--config",
        &path.display().to_string(),
        "--watch-config",
        "200ms",
    ]
    .map(String::from);
    let exp = Exporter::start_command(&args, &[], dir);
    exp.wait_for(
        "pathwatch_probe_runs_total",
        &[("probe", "first"), ("reason", "refused")],
        WAIT,
        |v| v >= 1.0,
    );
    std::thread::sleep(Duration::from_millis(50));
    std::fs::write(&path, format!("probes:\n  - {{ name: second, kind: tcp, host: 127.0.0.1, port: {port}, interval: 200ms }}\n")).expect("write");
    exp.wait_for(
        "pathwatch_probe_runs_total",
        &[("probe", "second"), ("reason", "refused")],
        WAIT,
        |v| v >= 1.0,
    );
    assert!(!exp.metrics().contains("probe=\"first\""));
}

#[test]
fn json_logs_carry_cloud_logging_fields() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pathwatch.yaml");
    std::fs::write(&path, format!("probes:\n  - {{ name: refused-db, kind: postgres, host: 127.0.0.1, port: {}, interval: 200ms }}\n", closed_port())).expect("write");
    let args = [
        "--log-format",
        "json",
        "serve",
        "--config",
        &path.display().to_string(),
    ]
    .map(String::from);
    let exp = Exporter::start_command(&args, &[], dir);
    exp.wait_for(
        "pathwatch_probe_runs_total",
        &[("probe", "refused-db"), ("reason", "refused")],
        WAIT,
        |v| v >= 1.0,
    );
    let logs = exp.logs();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for l in &lines {
        assert!(
            l["severity"].is_string() && l["message"].is_string() && l["time"].is_string(),
            "{l}"
        );
    }
    let failed = lines
        .iter()
        .find(|l| l["message"] == "probe failed")
        .expect("a probe failure line");
    assert_eq!(failed["severity"], "WARNING");
    assert_eq!(failed["probe"], "refused-db");
    assert_eq!(failed["reason"], "refused");
}

//! The `http` probe against a real local HTTP service: status codes, body assertions,
//! redirects, the body cap, timeouts, and phases on /metrics.

use crate::support::exporter::{Exporter, phases, value};
use crate::support::hang::closed_port;
use crate::support::target;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn statuses_assertions_redirects_and_limits() {
    let t = target::start();
    let closed = closed_port();
    let yaml = format!(
        r#"defaults: {{ interval: 1s, timeout: 2s }}
probes:
  - name: health
    kind: http
    url: {health}
    assert:
      - {{ json_pointer: /status, equals: healthy }}
      - {{ json_pointer: /uptime, equals: 12 }}
      - {{ json_pointer: /checks/database, exists: true }}
      - {{ not_regex: "unhealthy" }}
  - name: db-health
    kind: http
    url: {db}
  - name: db-health-expects-503
    kind: http
    url: {db}
    valid_status: [503]
    assert:
      - {{ json_pointer: /detail/reason, equals: "Database connectivity failed" }}
  - name: wrong-field
    kind: http
    url: {health}
    assert:
      - {{ json_pointer: /status, equals: ok }}
  - name: clickhouse-ping
    kind: http
    url: {ping}
    assert:
      - {{ regex: "^Ok\\.\\n?$" }}
  - name: redirected
    kind: http
    url: {redirect}
  - name: no-follow
    kind: http
    url: {redirect}
    follow_redirects: false
    valid_status: ["300-399"]
  - name: loop
    kind: http
    url: {loop_}
    max_redirects: 3
  - name: big
    kind: http
    url: {big}
    max_body_bytes: 65536
  - name: slow
    kind: http
    url: {slow}
    timeout: 1s
    interval: 10s
  - name: refused
    kind: http
    url: http://127.0.0.1:{closed}/health
  - name: login
    kind: http
    method: post
    url: {login}
    headers: {{ X-E2E-Bypass-Key: k3y, Content-Type: application/json }}
    body: '{{"email":"e2e@example.com","password":"x"}}'
    assert:
      - {{ json_pointer: /access_token, exists: true }}
"#,
        health = t.url("/health"),
        db = t.url("/api/health/database"),
        ping = t.url("/ping"),
        redirect = t.url("/redirect"),
        loop_ = t.url("/loop"),
        big = t.url("/big"),
        slow = t.url("/slow"),
        login = t.url("/login"),
    );
    let exp = Exporter::start(&yaml);
    for ok in [
        "health",
        "db-health-expects-503",
        "clickhouse-ping",
        "redirected",
        "no-follow",
        "login",
    ] {
        exp.wait_for(
            "pathwatch_probe_success",
            &[("probe", ok), ("kind", "http")],
            WAIT,
            |v| v == 1.0,
        );
    }
    exp.wait_reason("db-health", "failure", "http_status");
    exp.wait_reason("wrong-field", "failure", "assertion");
    exp.wait_reason("loop", "failure", "too_many_redirects");
    exp.wait_reason("big", "failure", "body_too_large");
    exp.wait_reason("slow", "failure", "timeout");
    exp.wait_reason("refused", "failure", "refused");

    let m = exp.metrics();
    let code = |p: &str| value(&m, "pathwatch_http_status_code", &[("probe", p)]);
    assert_eq!(code("health"), Some(200.0));
    assert_eq!(code("db-health"), Some(503.0));
    assert_eq!(code("no-follow"), Some(302.0));
    assert_eq!(code("redirected"), Some(200.0));
    assert_eq!(code("refused"), Some(0.0));
    assert_eq!(
        phases(&m, "health"),
        ["connect", "processing", "resolve", "transfer"]
    );
    // The slow answer never came: processing is where it stopped, so it is absent.
    assert_eq!(phases(&m, "slow"), ["connect", "resolve"]);
    let took =
        value(&m, "pathwatch_probe_duration_seconds", &[("probe", "slow")]).expect("slow duration");
    assert!(
        (1.0..1.5).contains(&took),
        "reported at the timeout: {took}"
    );
    let logs = exp.logs();
    assert!(
        logs.contains("/status is \"healthy\", expected \"ok\""),
        "{logs}"
    );
    assert!(logs.contains("answered 503 (accepted: 200-399)"), "{logs}");
    // The bypass key is a credential: it stays out of logs and metrics.
    assert!(!logs.contains("k3y") && !m.contains("k3y"));
}

#[test]
fn https_verifies_against_the_given_ca_or_skips_when_told() {
    let t = crate::support::tls_target::start();
    let port = t.addr.port();
    let ca = t.certs.ca_cert.display().to_string();
    let yaml = format!(
        r#"defaults: {{ interval: 1s, timeout: 3s }}
probes:
  - {{ name: trusted, kind: http, url: "https://localhost:{port}/health", ca_file: "{ca}", assert: [{{ json_pointer: /status, equals: healthy }}] }}
  - {{ name: by-ip, kind: http, url: "https://127.0.0.1:{port}/health", ca_file: "{ca}" }}
  - {{ name: unknown-ca, kind: http, url: "https://localhost:{port}/health" }}
  - {{ name: skip-verify, kind: http, url: "https://localhost:{port}/health", insecure_skip_verify: true }}
"#
    );
    let exp = Exporter::start(&yaml);
    for ok in ["trusted", "by-ip", "skip-verify"] {
        exp.wait_for("pathwatch_probe_success", &[("probe", ok)], WAIT, |v| {
            v == 1.0
        });
    }
    exp.wait_reason("unknown-ca", "failure", "tls");
    let m = exp.metrics();
    assert_eq!(
        phases(&m, "trusted"),
        ["connect", "processing", "resolve", "tls", "transfer"]
    );
    assert_eq!(phases(&m, "unknown-ca"), ["connect", "resolve"]);
}

//! The `golden_path` probe against a backend pathwatch's authors did not write
//! (tests/backends/chat_aiohttp.py, Python aiohttp): every protocol variant in the book's table
//! (docs/src/probes/golden_path.md) passes, and each broken variant fails with a reason and a
//! detail that say what arrived.

use crate::support::chat_backend::{ChatBackend, PASSWORD};
use crate::support::exporter::{Exporter, value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// A golden_path probe `name` against `b`; `extra` lines go under the probe (4 spaces in).
fn probe(b: &ChatBackend, name: &str, extra: &[&str]) -> String {
    let mut y = format!(
        "  - name: {name}\n    kind: golden_path\n    login:\n      url: {}\n      email: \"{name}@example.com\"\n      password: ${{CHAT_PASSWORD}}\n",
        b.http("/auth/login")
    );
    if !extra.iter().any(|l| l.starts_with("websocket")) {
        y.push_str(&format!("    websocket: {{ url: {} }}\n", b.ws()));
    }
    for l in extra {
        y.push_str("    ");
        y.push_str(l);
        y.push('\n');
    }
    y
}

fn start(probes: &[String]) -> Exporter {
    let yaml = format!(
        "defaults: {{ interval: 1s, timeout: 5s }}\nprobes:\n{}",
        probes.concat()
    );
    Exporter::start_with_env(&yaml, &[("CHAT_PASSWORD", PASSWORD)])
}

fn wait_success(exp: &Exporter, probe: &str) -> String {
    exp.wait_for("pathwatch_probe_success", &[("probe", probe)], WAIT, |v| {
        v == 1.0
    });
    exp.metrics()
}

fn assert_all_delivered(m: &str, probe: &str) {
    assert_eq!(
        value(
            m,
            "pathwatch_golden_path_events_delivered",
            &[("probe", probe)]
        ),
        Some(5.0),
        "{probe}:\n{m}"
    );
    assert_eq!(
        value(
            m,
            "pathwatch_golden_path_crosstalk_events_total",
            &[("probe", probe)]
        ),
        Some(0.0),
        "{probe}:\n{m}"
    );
}

#[test]
fn an_echoing_backend_passes_with_every_token_presentation() {
    let b = ChatBackend::start(&["--threads", "echo"]);
    let ws = b.ws();
    let query = format!("ws://{}/api/v1/websocket", b.addr);
    let exp = start(&[
        probe(&b, "subprotocol", &[]),
        probe(
            &b,
            "bearer",
            &[&format!("websocket: {{ url: {ws}, auth: bearer }}")],
        ),
        probe(
            &b,
            "query",
            &[&format!("websocket: {{ url: {query}, auth: query }}")],
        ),
        probe(&b, "echo-isolation", &["isolation: echo"]),
    ]);
    for p in ["subprotocol", "bearer", "query", "echo-isolation"] {
        let m = wait_success(&exp, p);
        assert_all_delivered(&m, p);
        // The backend's typing and status_update frames are counted, not fatal.
        assert!(
            value(
                &m,
                "pathwatch_golden_path_unexpected_events_total",
                &[("probe", p)]
            ) >= Some(2.0),
            "{m}"
        );
    }
    assert!(!exp.logs().contains(PASSWORD));
}

/// Waits for a failure of `probe` at step `event` with `reason`, and returns the log line of
/// its detail (pathwatch logs a failure when its reason changes).
fn wait_event_failure(exp: &Exporter, probe: &str, reason: &str) -> String {
    exp.wait_for(
        "pathwatch_golden_path_failures_total",
        &[("probe", probe), ("step", "event"), ("reason", reason)],
        WAIT,
        |v| v >= 1.0,
    );
    let logs = exp.logs();
    logs.lines()
        .find(|l| {
            l.contains("probe failed")
                && l.contains(&format!("probe={probe} "))
                && l.contains(&format!("reason={reason}"))
        })
        .unwrap_or_else(|| panic!("no failure line for {probe} ({reason}):\n{logs}"))
        .to_string()
}

#[test]
fn a_backend_that_assigns_thread_ids_passes_under_the_default_isolation() {
    // The issue's case: the server names the run itself, mixes flat and `payload` events,
    // numeric and ISO timestamps, and interleaves heartbeats, typing and status updates.
    let assign = ChatBackend::start(&[]);
    let nested = ChatBackend::start(&["--shape", "nested", "--ids", "thread"]);
    let no_ids = ChatBackend::start(&["--ids", "none", "--shape", "flat"]);
    let exp = start(&[
        probe(&assign, "assign", &[]),
        probe(&assign, "by-user", &["isolation: user"]),
        probe(&assign, "no-isolation", &["isolation: none"]),
        probe(&nested, "nested", &[]),
        probe(&no_ids, "no-ids", &[]),
    ]);
    for p in ["assign", "by-user", "no-isolation", "nested", "no-ids"] {
        let m = wait_success(&exp, p);
        assert_all_delivered(&m, p);
    }
}

#[test]
fn server_assigned_ids_under_echo_isolation_fail_as_crosstalk_naming_the_thread() {
    let b = ChatBackend::start(&[]);
    let exp = start(&[probe(
        &b,
        "echo-only",
        &["isolation: echo", "timeout: 1500ms", "interval: 10s"],
    )]);
    let line = wait_event_failure(&exp, "echo-only", "crosstalk");
    // "no answer within 1s 500ms (stopped in phase events): 5 events of another run
    // (thread thread-3f2a ×5), sent pathwatch-1732...-1 (isolation echo); 0/5 events counted"
    assert!(
        line.contains("5 events of another run (thread thread-"),
        "{line}"
    );
    assert!(line.contains(" ×5), sent pathwatch-"), "{line}");
    assert!(line.contains("0/5 events counted"), "{line}");
    let m = exp.metrics();
    assert!(
        value(
            &m,
            "pathwatch_golden_path_crosstalk_events_total",
            &[("probe", "echo-only")]
        ) >= Some(5.0),
        "{m}"
    );
    assert_eq!(
        value(
            &m,
            "pathwatch_probe_runs_total",
            &[("probe", "echo-only"), ("reason", "timeout")]
        ),
        None,
        "never a bare timeout:\n{m}"
    );
}

#[test]
fn broken_backends_fail_with_a_reason_that_says_what_arrived() {
    let other_thread = ChatBackend::start(&["--fault", "crosstalk_thread"]);
    let other_user = ChatBackend::start(&["--fault", "crosstalk_user"]);
    let renamed = ChatBackend::start(&["--fault", "unexpected"]);
    let missing = ChatBackend::start(&["--fault", "missing"]);
    let elsewhere = ChatBackend::start(&["--event-key", "event"]);
    let slow = ["timeout: 1500ms", "interval: 10s"];
    let exp = start(&[
        probe(&other_thread, "other-thread", &[]),
        probe(&other_user, "other-user", &[]),
        probe(&renamed, "renamed", &slow),
        probe(&missing, "missing", &slow),
        probe(&elsewhere, "name-elsewhere", &slow),
    ]);
    let line = wait_event_failure(&exp, "other-thread", "crosstalk");
    // The backend's foreign events follow ours from the second on; the run ends at our
    // agent_completed, before the foreign one.
    assert!(
        line.contains("3 events of another run (thread thread-3f2a ×3), sent pathwatch-"),
        "{line}"
    );
    assert!(line.contains("5/5 events counted;"), "{line}");
    assert!(line.contains("bound to thread-"), "{line}");
    let line = wait_event_failure(&exp, "other-user", "crosstalk");
    assert!(
        line.contains("3 events of another run (user u-someone-else ×3)"),
        "{line}"
    );
    let line = wait_event_failure(&exp, "renamed", "unexpected_events");
    assert!(
        line.contains("no expected event, but ") && line.contains("agent.started ×1"),
        "{line}"
    );
    // agent_completed is the final answer: the run ends there, without waiting out 1.5 s.
    let line = wait_event_failure(&exp, "missing", "events_missing");
    assert!(
        line.contains(
            "the final event agent_completed arrived (4/5 events counted, missing: tool_completed"
        ),
        "{line}"
    );
    // Every message has its name under `event`, the welcome too: the wait for it says so.
    exp.wait_for(
        "pathwatch_golden_path_failures_total",
        &[
            ("probe", "name-elsewhere"),
            ("step", "handshake"),
            ("reason", "unexpected_events"),
        ],
        WAIT,
        |v| v >= 1.0,
    );
    let logs = exp.logs();
    assert!(
        logs.contains("waiting for connection_established, ")
            && logs.contains("frames of other types came: <no type> ×")
            && logs.contains("(type read at /type, /payload/type)"),
        "{logs}"
    );
}

#[test]
fn the_protocol_shape_is_configurable_for_other_backends() {
    // Each backend takes one presentation of the token only, so a probe that presents it
    // otherwise would fail at the handshake (the last probe shows it does).
    let bearer = ChatBackend::start(&["--auth", "bearer", "--ack"]);
    let query = ChatBackend::start(&["--auth", "query", "--event-key", "event"]);
    let nested_login = ChatBackend::start(&[
        "--auth",
        "subprotocol",
        "--login-shape",
        "nested",
        "--start-types",
        "ask",
    ]);
    let exp = start(&[
        probe(
            &bearer,
            "ack-bearer",
            &[&format!(
                "websocket: {{ url: {}, auth: bearer, ack: session_ready }}",
                bearer.ws()
            )],
        ),
        probe(
            &query,
            "event-key",
            &[
                &format!("websocket: {{ url: {}, auth: query }}", query.ws()),
                "event_fields: { type: /event }",
            ],
        ),
        probe(
            &nested_login,
            "nested-login",
            &[
                "message_json: { type: ask, payload: { text: \"{text}\" } }",
                "isolation: user",
            ],
        )
        .replace(
            "    login:\n",
            "    login:\n      token_pointer: /data/jwt\n      user_id_pointer: /data/account/uid\n",
        ),
        probe(&bearer, "wrong-presentation", &[]),
    ]);
    for p in ["ack-bearer", "event-key", "nested-login"] {
        let m = wait_success(&exp, p);
        assert_all_delivered(&m, p);
    }
    exp.wait_for(
        "pathwatch_golden_path_failures_total",
        &[
            ("probe", "wrong-presentation"),
            ("step", "handshake"),
            ("reason", "auth"),
        ],
        WAIT,
        |v| v >= 1.0,
    );
}

#[test]
fn a_start_message_the_backend_does_not_know_is_explained() {
    // The backend answers an unknown start message with {"type":"error"}: the run's only
    // frames of note are of another type, and the reason says so.
    let b = ChatBackend::start(&["--start-types", "ask"]);
    let exp = start(&[probe(
        &b,
        "wrong-start",
        &["timeout: 1500ms", "interval: 10s"],
    )]);
    let line = wait_event_failure(&exp, "wrong-start", "unexpected_events");
    assert!(line.contains("error ×1"), "{line}");
}

#[test]
fn a_config_with_every_protocol_key_validates() {
    let out = std::process::Command::new(crate::support::exporter::BIN)
        .args(["validate", "tests/fixtures/config/golden_protocol.yaml"])
        .output()
        .expect("run pathwatch validate");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sessions_bind_to_their_own_server_assigned_runs_and_leaks_between_them_are_crosstalk() {
    let b = ChatBackend::start(&["--pause-ms", "40"]);
    let same_user = |name: &str| {
        probe(&b, name, &["sessions: 3"]).replace(
            &format!("email: \"{name}@example.com\""),
            "email: \"one-user@example.com\"",
        )
    };
    let exp = start(&[
        probe(&b, "users", &["sessions: 3"]).replace("@example.com", "-{n}@example.com"),
        same_user("same-user"),
    ]);
    for p in ["users", "same-user"] {
        let m = wait_success(&exp, p);
        assert_all_delivered(&m, p);
    }
    // Now every run's events go to every open connection (a broadcast bug): each session
    // still binds to one run and counts the others' events as crosstalk.
    b.set_variant(r#"{"fault": "broadcast"}"#);
    for p in ["users", "same-user"] {
        let line = wait_event_failure(&exp, p, "crosstalk");
        assert!(line.contains("session "), "{line}");
        let m = exp.metrics();
        assert!(
            value(
                &m,
                "pathwatch_golden_path_crosstalk_events_total",
                &[("probe", p)]
            ) >= Some(2.0),
            "{p}:\n{m}"
        );
    }
    let logs = exp.logs();
    // Distinct users: the other users' events are named by user.
    assert!(
        logs.lines()
            .any(|l| l.contains("probe=users ") && l.contains("events of another run (user u-")),
        "{logs}"
    );
}

#[test]
fn an_endless_login_answer_is_cut_at_the_body_cap() {
    let b = ChatBackend::start(&["--login-endless"]);
    let exp = start(&[probe(&b, "endless", &["timeout: 10s", "interval: 30s"])]);
    exp.wait_for(
        "pathwatch_golden_path_failures_total",
        &[
            ("probe", "endless"),
            ("step", "login"),
            ("reason", "body_too_large"),
        ],
        WAIT,
        |v| v >= 1.0,
    );
    let logs = exp.logs();
    assert!(
        logs.contains("the login answer exceeds 1048576 bytes (login.max_body_bytes)"),
        "{logs}"
    );
}

#[test]
fn login_redirects_are_followed_within_the_origin_only() {
    const BYPASS: &str = "bypass-key-never-elsewhere";
    let elsewhere = ChatBackend::start(&[]);
    let redirect = elsewhere.http("/auth/login");
    let away = ChatBackend::start(&["--login-redirect", &redirect]);
    let same = ChatBackend::start(&["--login-redirect", "/auth/login2"]);
    let looping = ChatBackend::start(&["--login-redirect", "/auth/login"]);
    let exp = start(&[
        probe(&looping, "loop", &[]),
        probe(&away, "cross-origin", &[]).replace(
            "    login:\n",
            &format!("    login:\n      headers: {{ X-E2E-Bypass-Key: {BYPASS} }}\n"),
        ),
        probe(&same, "same-origin", &[]),
    ]);
    let m = wait_success(&exp, "same-origin");
    assert_all_delivered(&m, "same-origin");
    exp.wait_for(
        "pathwatch_golden_path_failures_total",
        &[
            ("probe", "loop"),
            ("step", "login"),
            ("reason", "too_many_redirects"),
        ],
        WAIT,
        |v| v >= 1.0,
    );
    exp.wait_for(
        "pathwatch_golden_path_failures_total",
        &[
            ("probe", "cross-origin"),
            ("step", "login"),
            ("reason", "http_status"),
        ],
        WAIT,
        |v| v >= 1.0,
    );
    let logs = exp.logs();
    assert!(
        logs.contains(&format!(
            "login answered 307 with a redirect to another origin (http://{}); not followed",
            elsewhere.addr
        )),
        "{logs}"
    );
    assert!(!logs.contains(BYPASS), "{logs}");
    // The redirecting server got the login with its password; the other origin got nothing.
    let asked = away.log();
    assert!(asked.as_array().is_some_and(|a| !a.is_empty()), "{asked}");
    assert_eq!(asked[0]["had_password"], true, "{asked}");
    assert!(
        asked[0]["headers"]
            .as_array()
            .is_some_and(|h| h.iter().any(|x| x == "x-e2e-bypass-key")),
        "{asked}"
    );
    assert_eq!(
        elsewhere.log(),
        serde_json::json!([]),
        "the other origin was asked"
    );
    // The same-origin redirect reached its target with the password (307 keeps the body).
    let same_log = same.log();
    assert!(
        same_log.as_array().is_some_and(|a| a
            .iter()
            .any(|r| r["path"] == "/auth/login2" && r["had_password"] == true)),
        "{same_log}"
    );
}

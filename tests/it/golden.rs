//! The `golden_path` probe against the reference service: every step's success, and each
//! fault's reason and step on /metrics.

use crate::support::exporter::{Exporter, samples, value};
use crate::support::sim::{BYPASS_KEY, PASSWORD, Sim};
use pathwatch::sim::Faults;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const EVENTS: [&str; 5] = [
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
];

/// One golden_path probe named `gp` against `sim`; `extra` lines go under the probe.
fn config(sim: &Sim, extra: &[&str]) -> String {
    let mut y = format!(
        "defaults: {{ interval: 1s, timeout: 5s }}\nprobes:\n  - name: gp\n    kind: golden_path\n    login:\n      url: {}\n      email: \"user{{n}}@example.com\"\n      password: ${{SIM_PASSWORD}}\n    websocket:\n      url: {}\n",
        sim.http("/auth/login"),
        sim.ws()
    );
    for l in extra {
        y.push_str("    ");
        y.push_str(l);
        y.push('\n');
    }
    y
}

fn start(sim: &Sim, extra: &[&str]) -> Exporter {
    Exporter::start_with_env(&config(sim, extra), &[("SIM_PASSWORD", PASSWORD)])
}

fn wait_failure(exp: &Exporter, step: &str, reason: &str) -> String {
    exp.wait_for(
        "pathwatch_golden_path_failures_total",
        &[("probe", "gp"), ("step", step), ("reason", reason)],
        WAIT,
        |v| v >= 1.0,
    );
    exp.metrics()
}

fn phases(m: &str) -> Vec<String> {
    let mut p: Vec<String> = samples(m, "pathwatch_probe_phase_duration_seconds")
        .into_iter()
        .filter_map(|s| s.labels.get("phase").cloned())
        .collect();
    p.sort();
    p
}

#[test]
fn the_whole_path_succeeds_with_every_event_and_step_timed() {
    let sim = Sim::start(Faults::default());
    let exp = start(&sim, &[]);
    exp.wait_for(
        "pathwatch_probe_success",
        &[("probe", "gp"), ("kind", "golden_path")],
        WAIT,
        |v| v == 1.0,
    );
    let m = exp.metrics();
    assert_eq!(
        value(
            &m,
            "pathwatch_golden_path_events_delivered",
            &[("probe", "gp")]
        ),
        Some(5.0)
    );
    assert_eq!(
        value(
            &m,
            "pathwatch_golden_path_events_expected",
            &[("probe", "gp")]
        ),
        Some(5.0)
    );
    let mut last = 0.0;
    for e in EVENTS {
        let t = value(
            &m,
            "pathwatch_golden_path_event_seconds",
            &[("probe", "gp"), ("event", e)],
        )
        .unwrap_or_else(|| panic!("no latency for {e}:\n{m}"));
        // The sim pauses 20 ms before each event, in this order.
        assert!(t > last, "{e} at {t} after {last}");
        last = t;
    }
    assert!(
        value(
            &m,
            "pathwatch_golden_path_seconds_count",
            &[("probe", "gp")]
        ) >= Some(1.0)
    );
    assert_eq!(
        phases(&m),
        [
            "close",
            "connect",
            "events",
            "handshake",
            "login",
            "resolve",
            "send"
        ]
    );
    assert_eq!(
        value(
            &m,
            "pathwatch_golden_path_crosstalk_events_total",
            &[("probe", "gp")]
        ),
        Some(0.0)
    );
    // The password and the token never leave the exchange.
    let logs = exp.logs();
    assert!(!logs.contains(PASSWORD) && !m.contains(PASSWORD));
    let runs = sim.state.runs();
    assert!(!runs.is_empty(), "the sim saw the runs");
}

#[test]
fn bearer_and_query_token_and_the_e2e_bypass_login_work() {
    let sim = Sim::start(Faults::default());
    let yaml = format!(
        "defaults: {{ interval: 1s, timeout: 5s }}\nprobes:\n  - name: bearer\n    kind: golden_path\n    login: {{ url: {login}, email: a@example.com, password: {PASSWORD} }}\n    websocket: {{ url: {ws}, auth: bearer }}\n  - name: query\n    kind: golden_path\n    login: {{ url: {login}, email: b@example.com, password: {PASSWORD} }}\n    websocket: {{ url: \"ws://{addr}/api/v1/websocket\", auth: query }}\n  - name: bypass\n    kind: golden_path\n    login:\n      url: {bypass}\n      email: e2e@example.com\n      headers: {{ X-E2E-Bypass-Key: {BYPASS_KEY} }}\n    websocket: {{ url: {ws} }}\n    message_json: {{ type: start_agent, payload: {{ user_request: \"{{text}}\", thread_id: \"{{thread_id}}\" }} }}\n",
        login = sim.http("/auth/login"),
        bypass = sim.http("/auth/e2e/test-auth"),
        ws = sim.ws(),
        addr = sim.addr,
    );
    let exp = Exporter::start(&yaml);
    for p in ["bearer", "query", "bypass"] {
        exp.wait_for("pathwatch_probe_success", &[("probe", p)], WAIT, |v| {
            v == 1.0
        });
    }
    let logs = exp.logs();
    assert!(!logs.contains(BYPASS_KEY));
}

#[test]
fn login_rejected_is_auth_at_step_login() {
    let sim = Sim::start(Faults {
        login_401: true,
        ..Faults::default()
    });
    let exp = start(&sim, &[]);
    let m = wait_failure(&exp, "login", "auth");
    assert_eq!(phases(&m), Vec::<String>::new());
    // Once logins work again, so does the path.
    sim.state.set_faults(Faults::default());
    exp.wait_for("pathwatch_probe_success", &[("probe", "gp")], WAIT, |v| {
        v == 1.0
    });
}

#[test]
fn close_1011_is_not_ready_at_step_handshake() {
    let sim = Sim::start(Faults {
        ws_close_1011: true,
        ..Faults::default()
    });
    let exp = start(&sim, &[]);
    wait_failure(&exp, "handshake", "not_ready");
}

#[test]
fn the_incident_database_down_fails_the_login() {
    let sim = Sim::start(Faults {
        db_down: true,
        ..Faults::default()
    });
    let exp = start(&sim, &[]);
    wait_failure(&exp, "login", "server_error");
}

#[test]
fn a_missing_event_fails_as_soon_as_the_final_event_arrives() {
    let sim = Sim::start(Faults {
        drop_event: Some("tool_completed".into()),
        ..Faults::default()
    });
    // A timeout far beyond the test's wait: the run must end at agent_completed, not here.
    let exp = start(&sim, &["timeout: 120s", "interval: 10s"]);
    let m = wait_failure(&exp, "event", "events_missing");
    assert_eq!(
        value(
            &m,
            "pathwatch_golden_path_events_delivered",
            &[("probe", "gp")]
        ),
        Some(4.0)
    );
    let logs = exp.logs();
    assert!(
        logs.contains(
            "the final event agent_completed arrived (4/5 events counted, missing: tool_completed"
        ),
        "{logs}"
    );
}

#[test]
fn a_missing_event_times_out_at_step_event_with_four_of_five() {
    let sim = Sim::start(Faults {
        drop_event: Some("tool_completed".into()),
        ..Faults::default()
    });
    // A server that may answer before its other events: wait them out.
    let exp = start(
        &sim,
        &[
            "timeout: 1500ms",
            "interval: 10s",
            "final_event_ends_run: false",
        ],
    );
    let m = wait_failure(&exp, "event", "timeout");
    assert_eq!(
        value(
            &m,
            "pathwatch_golden_path_events_delivered",
            &[("probe", "gp")]
        ),
        Some(4.0)
    );
    assert_eq!(
        value(
            &m,
            "pathwatch_golden_path_event_seconds",
            &[("probe", "gp"), ("event", "tool_completed")]
        ),
        None
    );
    assert!(
        value(
            &m,
            "pathwatch_golden_path_event_seconds",
            &[("probe", "gp"), ("event", "agent_completed")]
        )
        .is_some()
    );
    // A timed-out run counts in the histogram at the timeout.
    assert_eq!(
        value(
            &m,
            "pathwatch_golden_path_seconds_count",
            &[("probe", "gp")]
        ),
        Some(1.0)
    );
    assert!(
        exp.logs().contains("stopped in phase events"),
        "{}",
        exp.logs()
    );
}

#[test]
fn order_matters_only_when_asked() {
    let sim = Sim::start(Faults {
        out_of_order: true,
        ..Faults::default()
    });
    let yaml = config(&sim, &["ordered: true"])
        + &format!(
            "  - name: any-order\n    kind: golden_path\n    login: {{ url: {}, email: c@example.com, password: {PASSWORD} }}\n    websocket: {{ url: {} }}\n",
            sim.http("/auth/login"),
            sim.ws()
        );
    let exp = Exporter::start_with_env(&yaml, &[("SIM_PASSWORD", PASSWORD)]);
    wait_failure(&exp, "event", "event_order");
    exp.wait_for(
        "pathwatch_probe_success",
        &[("probe", "any-order")],
        WAIT,
        |v| v == 1.0,
    );
}

#[test]
fn garbage_and_duplicates_are_counted_not_fatal() {
    let sim = Sim::start(Faults {
        garbage_frames: true,
        duplicate_event: Some("agent_thinking".into()),
        ..Faults::default()
    });
    let exp = start(&sim, &[]);
    exp.wait_for("pathwatch_probe_success", &[("probe", "gp")], WAIT, |v| {
        v == 1.0
    });
    let m = exp.metrics();
    assert!(
        value(
            &m,
            "pathwatch_golden_path_unexpected_events_total",
            &[("probe", "gp")]
        ) >= Some(2.0),
        "{m}"
    );
    assert!(
        value(
            &m,
            "pathwatch_golden_path_duplicate_events_total",
            &[("probe", "gp")]
        ) >= Some(1.0),
        "{m}"
    );
}

#[test]
fn an_endless_stream_is_cut_by_the_message_cap() {
    let sim = Sim::start(Faults {
        endless_stream: true,
        drop_event: Some("agent_completed".into()),
        ..Faults::default()
    });
    let exp = start(&sim, &["max_messages: 40"]);
    let m = wait_failure(&exp, "event", "too_many_messages");
    assert_eq!(
        value(
            &m,
            "pathwatch_golden_path_events_delivered",
            &[("probe", "gp")]
        ),
        Some(4.0)
    );
}

#[test]
fn crosstalk_between_sessions_fails_the_run() {
    let sim = Sim::start(Faults::default());
    let exp = start(&sim, &["sessions: 3"]);
    exp.wait_for("pathwatch_probe_success", &[("probe", "gp")], WAIT, |v| {
        v == 1.0
    });
    sim.state.set_faults(Faults {
        crosstalk: true,
        ..Faults::default()
    });
    let m = wait_failure(&exp, "event", "crosstalk");
    assert!(
        value(
            &m,
            "pathwatch_golden_path_crosstalk_events_total",
            &[("probe", "gp")]
        ) >= Some(1.0)
    );
}

#[test]
fn slow_events_show_in_the_latencies() {
    let sim = Sim::start(Faults {
        slow_events_ms: 150,
        ..Faults::default()
    });
    let exp = start(&sim, &[]);
    exp.wait_for("pathwatch_probe_success", &[("probe", "gp")], WAIT, |v| {
        v == 1.0
    });
    let m = exp.metrics();
    let last = value(
        &m,
        "pathwatch_golden_path_event_seconds",
        &[("probe", "gp"), ("event", "agent_completed")],
    )
    .expect("latency of the final event");
    // Five pauses of 20 + 150 ms before the final event.
    assert!(last >= 0.85, "final event after {last} s");
}

#[test]
fn static_token_file_missing_password_and_frame_cap() {
    let sim = Sim::start(Faults::default());
    let dir = tempfile::tempdir().expect("temp dir");
    let token_file = dir.path().join("token");
    std::fs::write(
        &token_file,
        format!("{}\n", sim.state.issue_token("static@example.com")),
    )
    .expect("write the token");
    let yaml = format!(
        "defaults: {{ interval: 1s, timeout: 5s }}\nprobes:\n  - name: static\n    kind: golden_path\n    token_file: {}\n    websocket: {{ url: {ws} }}\n  - name: no-password\n    kind: golden_path\n    login: {{ url: {login}, email: d@example.com }}\n    websocket: {{ url: {ws} }}\n  - name: tiny-frames\n    kind: golden_path\n    login: {{ url: {login}, email: e@example.com, password: {PASSWORD} }}\n    websocket: {{ url: {ws}, welcome: null }}\n    max_frame_bytes: 64\n",
        token_file.display(),
        ws = sim.ws(),
        login = sim.http("/auth/login"),
    );
    let exp = Exporter::start(&yaml);
    exp.wait_for(
        "pathwatch_probe_success",
        &[("probe", "static")],
        WAIT,
        |v| v == 1.0,
    );
    // FastAPI answers 422 to a body without a password.
    exp.wait_for(
        "pathwatch_golden_path_failures_total",
        &[
            ("probe", "no-password"),
            ("step", "login"),
            ("reason", "unprocessable"),
        ],
        WAIT,
        |v| v >= 1.0,
    );
    exp.wait_for(
        "pathwatch_golden_path_failures_total",
        &[
            ("probe", "tiny-frames"),
            ("step", "event"),
            ("reason", "frame_too_large"),
        ],
        WAIT,
        |v| v >= 1.0,
    );
}

#[test]
fn thread_ids_the_sim_assigns_bind_the_run_and_leaks_stay_crosstalk() {
    // A message without a thread id: the sim creates the thread and names it on every event.
    let sim = Sim::start(Faults::default());
    let no_thread = "message_json: { type: user_message, payload: { text: \"{text}\" } }";
    let yaml = config(&sim, &[no_thread, "sessions: 3"])
        + &format!(
            "  - name: echoed\n    kind: golden_path\n    login: {{ url: {}, email: g@example.com, password: {PASSWORD} }}\n    websocket: {{ url: {} }}\n    isolation: echo\n",
            sim.http("/auth/login"),
            sim.ws()
        )
        + &format!(
            "  - name: echo-only\n    kind: golden_path\n    login: {{ url: {}, email: f@example.com, password: {PASSWORD} }}\n    websocket: {{ url: {} }}\n    {no_thread}\n    isolation: echo\n    timeout: 1500ms\n    interval: 10s\n",
            sim.http("/auth/login"),
            sim.ws()
        );
    let exp = Exporter::start_with_env(&yaml, &[("SIM_PASSWORD", PASSWORD)]);
    for p in ["gp", "echoed"] {
        exp.wait_for("pathwatch_probe_success", &[("probe", p)], WAIT, |v| {
            v == 1.0
        });
    }
    exp.wait_for(
        "pathwatch_golden_path_failures_total",
        &[
            ("probe", "echo-only"),
            ("step", "event"),
            ("reason", "crosstalk"),
        ],
        WAIT,
        |v| v >= 1.0,
    );
    assert!(
        exp.logs()
            .contains("5 events of another run (thread thread_"),
        "{}",
        exp.logs()
    );
    sim.state.set_faults(Faults {
        crosstalk: true,
        ..Faults::default()
    });
    let m = wait_failure(&exp, "event", "crosstalk");
    assert!(
        value(
            &m,
            "pathwatch_golden_path_crosstalk_events_total",
            &[("probe", "gp")]
        ) >= Some(1.0)
    );
}

//! The `golden_path` probe against a backend pathwatch's authors did not write
//! (tests/backends/chat_aiohttp.py, Python aiohttp): every protocol variant in README's table
//! passes, and each broken variant fails with a reason and a detail that say what arrived.

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
    ]);
    for p in ["subprotocol", "bearer", "query"] {
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

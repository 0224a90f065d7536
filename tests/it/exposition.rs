//! `/metrics` speaks both formats as the official clients do, and each passes its reference
//! checker with nothing filtered: the text format 0.0.4 (no `Accept`, or `text/plain`) through
//! `promtool check metrics`, OpenMetrics (Prometheus's `Accept`) through the official Python
//! client's strict OpenMetrics parser. The other endpoints answer as documented.

use crate::support::exporter::{Exporter, PROMETHEUS_ACCEPT, http_get_with, value};
use crate::support::hang::closed_port;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `program args`, feeding `input`; returns (success, stdout + stderr).
fn feed(program: &str, args: &[&str], input: &str) -> (bool, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} must be installed (.ci/install installs it): {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("feed the checker");
    let out = child.wait_with_output().expect("checker result");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}

/// The official Python client's OpenMetrics parser (prometheus_client), which refuses
/// anything the format does not allow; prints the families it read.
const OPENMETRICS_CHECK: &str = r"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    print(family.name, family.type, len(family.samples))
";

/// GETs `path` as 0.0.4 (with `headers`) and checks it: status 200, the 0.0.4 content type,
/// no OpenMetrics-only lines, and `promtool check metrics` silent. Returns the text.
fn get_text_004(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> String {
    let (status, ctype, text) = http_get_with(addr, path, headers);
    assert_eq!(status, 200, "{path} ({headers:?}): {text}");
    assert_eq!(
        ctype, "text/plain; version=0.0.4; charset=utf-8",
        "{path} ({headers:?})"
    );
    assert!(
        !text.contains("# EOF") && !text.contains("# UNIT"),
        "{text}"
    );
    let (ok, report) = feed("promtool", &["check", "metrics"], &text);
    assert!(
        ok && report.trim().is_empty(),
        "promtool check metrics ({path}, {headers:?}):\n{report}\non:\n{text}"
    );
    text
}

/// GETs `path` as Prometheus asks (OpenMetrics) and runs the official parser on it: status
/// 200, the OpenMetrics content type, `# EOF` at the end, the parser content. Returns the
/// parser's report (a family per line: name, type, samples).
fn get_openmetrics(addr: std::net::SocketAddr, path: &str) -> String {
    let (status, ctype, text) = http_get_with(addr, path, &[("Accept", PROMETHEUS_ACCEPT)]);
    assert_eq!(status, 200, "{path}: {text}");
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    let (ok, report) = feed("python3", &["-c", OPENMETRICS_CHECK], &text);
    assert!(
        ok,
        "prometheus_client's OpenMetrics parser:\n{report}\non:\n{text}"
    );
    report
}

fn exporter() -> Exporter {
    let exp = Exporter::start(&format!(
        "defaults: {{ interval: 1s, timeout: 2s }}\nprobes:\n  - {{ name: refused-db, kind: postgres, host: 127.0.0.1, port: {} }}\n  - {{ name: refused-tcp, kind: tcp, host: 127.0.0.1, port: {} }}\n",
        closed_port(),
        closed_port()
    ));
    exp.wait_first_run("refused-db", Duration::from_secs(20));
    exp
}

#[test]
fn text_0_0_4_passes_promtool_check_metrics_with_nothing_filtered() {
    let exp = exporter();
    for accept in [None, Some("text/plain;version=0.0.4"), Some("*/*")] {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        let text = get_text_004(exp.addr, "/metrics", &headers);
        // The counters carry their HELP and TYPE on the `_total` name, as 0.0.4 wants.
        assert!(
            text.contains("# TYPE pathwatch_probe_runs_total counter\n"),
            "{text}"
        );
        assert!(
            value(
                &text,
                "pathwatch_probe_runs_total",
                &[("probe", "refused-db"), ("result", "failure")]
            )
            .is_some_and(|v| v >= 1.0),
            "{text}"
        );
    }
}

#[test]
fn openmetrics_passes_the_official_parser() {
    let exp = exporter();
    let report = get_openmetrics(exp.addr, "/metrics");
    assert!(
        report.contains("pathwatch_probe_runs counter"),
        "the parser read our families:\n{report}"
    );
    assert!(
        report.contains("pathwatch_probe_run_duration_seconds histogram"),
        "{report}"
    );
}

/// A `/probe` answer, written without the registry (src/on_demand/answer/mod.rs), passes the same
/// checkers in both formats.
#[test]
fn probe_answers_pass_both_checkers() {
    let exp = exporter();
    let path = "/probe?module=refused-tcp";
    let report = get_openmetrics(exp.addr, path);
    assert!(
        report.contains("pathwatch_probe_success gauge 1"),
        "{report}"
    );
    assert!(
        report.contains("pathwatch_probe_duration_seconds gauge 1"),
        "{report}"
    );

    let text = get_text_004(exp.addr, path, &[]);
    assert_eq!(
        value(
            &text,
            "pathwatch_probe_success",
            &[("probe", "refused-tcp"), ("kind", "tcp")]
        ),
        Some(0.0),
        "{text}"
    );
}

#[test]
fn health_readiness_and_index() {
    let exp = Exporter::start("probes: []\n");
    let (status, _, body) = exp.get("/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, _, _) = exp.get("/readyz");
    assert_eq!(status, 200);
    let (status, ctype, body) = exp.get("/");
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/html"), "{ctype}");
    assert!(body.contains("/metrics"));
    let m = exp.metrics();
    assert!(m.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    assert!(m.contains(&format!(
        "pathwatch_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    )));
    let (status, _, _) = exp.get("/nope");
    assert_eq!(status, 404);
}

/// The families kinds declare (`ProbeKind::FAMILIES`: labels of their own, integer and
/// float gauges, counters) pass both checkers: a logs probe over a file and a startup probe
/// whose service is not up yet.
#[test]
fn declared_families_pass_both_checkers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("app.log");
    std::fs::write(
        &log,
        "PHASE COMPLETED: DATABASE (1.250s)\nApplication startup failed. Exiting.\nother\n",
    )
    .expect("write the log");
    let exp = Exporter::start(&format!(
        "defaults: {{ interval: 1s, timeout: 2s }}\nprobes:\n  - name: applog\n    kind: logs\n    file: {{ path: {} }}\n    patterns:\n      db_phase: 'PHASE COMPLETED: DATABASE \\(([0-9.]+)s\\)'\n      startup_failed: 'Application startup failed'\n      vpc: 'not accessible through VPC connector'\n  - {{ name: boot, kind: startup, check: {{ url: \"http://127.0.0.1:{}/health\" }} }}\n",
        log.display(),
        closed_port()
    ));
    exp.wait_first_run("applog", Duration::from_secs(20));
    exp.wait_first_run("boot", Duration::from_secs(20));
    let text = get_text_004(exp.addr, "/metrics", &[]);
    for (name, labels, want) in [
        (
            "pathwatch_log_pattern_matches_total",
            &[("probe", "applog"), ("pattern", "db_phase")][..],
            1.0,
        ),
        (
            "pathwatch_log_pattern_last_value",
            &[("probe", "applog"), ("pattern", "db_phase")][..],
            1.25,
        ),
        (
            "pathwatch_log_pattern_window_matches",
            &[("probe", "applog"), ("pattern", "vpc")][..],
            0.0,
        ),
        (
            "pathwatch_log_lines_read_total",
            &[("probe", "applog")][..],
            3.0,
        ),
        (
            "pathwatch_startup_in_progress",
            &[("probe", "boot")][..],
            1.0,
        ),
        (
            "pathwatch_startup_unhealthy_answers_total",
            &[("probe", "boot")][..],
            0.0,
        ),
    ] {
        assert_eq!(value(&text, name, labels), Some(want), "{name}:\n{text}");
    }
    let report = get_openmetrics(exp.addr, "/metrics");
    for family in [
        "pathwatch_log_pattern_matches counter 3",
        "pathwatch_log_pattern_window_matches gauge 3",
        "pathwatch_log_pattern_last_value gauge 1",
        "pathwatch_log_lines_read counter 1",
        "pathwatch_startup_in_progress gauge 1",
        "pathwatch_startup_unhealthy_answers counter 1",
    ] {
        assert!(report.contains(family), "{family}:\n{report}");
    }
}

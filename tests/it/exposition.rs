//! `/metrics` passes promtool's linter; the other endpoints answer as documented.

use crate::support::exporter::Exporter;
use crate::support::hang::closed_port;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// promtool 2.42 reads the 0.0.4 text format, where HELP goes on the `_total` name; on
/// OpenMetrics counters it says exactly this, and that one message is a format mismatch.
fn is_format_mismatch(line: &str) -> bool {
    line.strip_suffix(" no help text").is_some_and(|name| {
        name.starts_with("pathwatch_") && name.ends_with("_total") && !name.contains(' ')
    })
}

#[test]
fn metrics_pass_promtool_check_metrics() {
    let exp = Exporter::start(&format!(
        "defaults: {{ interval: 1s, timeout: 2s }}\nprobes:\n  - {{ name: refused-db, kind: postgres, host: 127.0.0.1, port: {} }}\n  - {{ name: refused-tcp, kind: tcp, host: 127.0.0.1, port: {} }}\n",
        closed_port(),
        closed_port()
    ));
    let text = exp.wait_first_run("refused-db", Duration::from_secs(20));
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed (Debian package prometheus; .ci/run installs it)");
    child
        .stdin
        .take()
        .expect("promtool stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool result");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let problems: Vec<&str> = report
        .lines()
        .filter(|l| !l.trim().is_empty() && !is_format_mismatch(l.trim()))
        .collect();
    assert!(
        problems.is_empty(),
        "promtool check metrics:\n{report}\non:\n{text}"
    );
    // It did read the exposition: the counters it mentions are ours.
    assert!(report.contains("pathwatch_probe_runs_total"), "{report}");
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

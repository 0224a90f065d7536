//! Process lifecycle: invalid entries skipped while valid probes run, SIGTERM during a hung
//! probe, `validate` on the shipped examples.

use crate::support::exporter::{BIN, Exporter, value};
use crate::support::hang::{SilentServer, closed_port};
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn invalid_entries_are_reported_and_valid_probes_keep_running() {
    let port = closed_port();
    let exp = Exporter::start(&format!(
        "probes:\n  - name: good\n    kind: tcp\n    host: 127.0.0.1\n    port: {port}\n    interval: 1s\n  - name: bad\n    kind: tcp\n    hots: 127.0.0.1\n"
    ));
    let m = exp.wait_first_run("good", Duration::from_secs(20));
    assert_eq!(
        value(&m, "pathwatch_config_last_reload_successful", &[]),
        Some(0.0)
    );
    assert_eq!(
        value(&m, "pathwatch_config_invalid_entries", &[]),
        Some(1.0)
    );
    assert!(!m.contains("probe=\"bad\""));
    let logs = exp.logs();
    assert!(
        logs.contains(
            "pathwatch.yaml:9:5: probe \"bad\": unknown field \"hots\", did you mean \"host\"?"
        ),
        "the log names file:line:col and the probe:\n{logs}"
    );
}

#[test]
fn sigterm_cancels_a_hung_probe_and_exits_cleanly() {
    let silent = SilentServer::start();
    let mut exp = Exporter::start(&format!(
        "probes:\n  - {{ name: hung, kind: postgres, host: 127.0.0.1, port: {}, timeout: 75s, interval: 100ms }}\n",
        silent.port
    ));
    // Wait until the probe is stuck inside its run.
    let deadline = Instant::now() + Duration::from_secs(10);
    while silent.connections() == 0 {
        assert!(Instant::now() < deadline, "the probe never connected");
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    let status = exp.terminate(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    // Cancelled, not waited out: far below the 75 s timeout.
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(exp.logs().contains("shutting down"), "{}", exp.logs());
}

#[test]
fn shipped_examples_validate() {
    for file in ["examples/local.yaml", "examples/staging.yaml"] {
        let out = Command::new(BIN)
            .args(["validate", file])
            .env("PATHWATCH_EXAMPLE_DUMMY", "1")
            .output()
            .expect("run pathwatch validate");
        assert!(
            out.status.success(),
            "{file}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn version_and_help() {
    let out = Command::new(BIN)
        .arg("--version")
        .output()
        .expect("run --version");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("pathwatch {}", env!("CARGO_PKG_VERSION"))
    );
    let out = Command::new(BIN)
        .arg("--help")
        .output()
        .expect("run --help");
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "validate"] {
        assert!(help.contains(cmd), "{help}");
    }
}

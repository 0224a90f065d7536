//! The command line as a newcomer meets it: a taken port fails before anything is announced,
//! errors about a whole file carry no made-up position, an empty config is flagged, and bare
//! `pathwatch` shows the help.

use crate::support::exporter::BIN;
use std::net::TcpListener;
use std::process::{Command, Stdio};

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run pathwatch");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn demo_on_a_taken_port_fails_before_announcing_anything() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    // Exits by itself: nothing is started when the port is taken.
    let (code, stdout, stderr) = run(&["demo", "--listen", &addr]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        !stdout.contains("status page") && !stdout.contains("healthy"),
        "nothing is announced before the port is ours:\n{stdout}"
    );
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}

#[test]
fn serve_on_a_taken_port_exits_1_with_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        "probes:\n  - { name: t, kind: tcp, host: 127.0.0.1, port: 9 }\n",
    )
    .expect("write config");
    let (code, _, stderr) = run(&[
        "serve",
        "--config",
        cfg.to_str().expect("utf-8 path"),
        "--listen",
        &addr,
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}

#[test]
fn validate_a_missing_file_names_it_without_a_position() {
    let (code, _, stderr) = run(&["validate", "no-such-dir/missing.yaml"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.starts_with("no-such-dir/missing.yaml: cannot read config file: "),
        "{stderr}"
    );
    assert!(!stderr.contains(":1:1:"), "{stderr}");
}

#[test]
fn validate_an_empty_file_warns_that_nothing_is_probed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = dir.path().join("empty.yaml");
    std::fs::write(&cfg, "").expect("write");
    let path = cfg.to_str().expect("utf-8 path");
    let (code, stdout, stderr) = run(&["validate", path]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), format!("{path}: OK (0 probes)"));
    assert!(
        stderr.contains(&format!("{path}: warning: no probes configured")),
        "{stderr}"
    );
}

#[test]
fn bare_pathwatch_prints_the_help_and_succeeds() {
    let (code, stdout, _) = run(&[]);
    assert_eq!(code, Some(0));
    for sub in ["serve", "demo", "check", "validate", "schema"] {
        assert!(stdout.contains(sub), "{sub} in the help:\n{stdout}");
    }
}

#[test]
fn check_text_shows_failure_details_and_times_no_startup_of_its_own() {
    use crate::support::hang::closed_port;
    use crate::support::sim::Sim;
    let sim = Sim::start(pathwatch::sim::Faults::default());
    let port = closed_port();
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        format!(
            "probes:\n  - name: backend-startup\n    kind: startup\n    check: {{ url: \"{}\" }}\n  - {{ name: vpc-path, kind: tcp, host: 127.0.0.1, port: {port} }}\nincidents:\n  - id: \"1278\"\n    title: t\n    criteria:\n      - {{ name: startup, probe: backend-startup, max_seconds: 30 }}\n      - {{ name: vpc_path, probe: vpc-path, success: true }}\n",
            sim.http("/health")
        ),
    )
    .expect("write config");
    let (code, stdout, stderr) = run(&[
        "check",
        "--config",
        cfg.to_str().expect("utf-8 path"),
        "--format",
        "text",
    ]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    // The startup criterion says what one run can know, not "4ms < 30s".
    assert!(
        stdout.contains("healthy now (check times no startup with reference: restart)"),
        "{stdout}"
    );
    // The detail JSON has is in the text too.
    assert!(
        stdout.contains(&format!(
            "Failures\n  vpc-path: connecting to 127.0.0.1:{port}: Connection refused"
        )),
        "{stdout}"
    );
}

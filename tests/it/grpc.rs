//! `grpc`: grpc.health.v1 Health/Check against a server nobody here wrote (Python grpcio and
//! its health servicer, tests/backends/grpc_health_server.py), plaintext and TLS, switched from
//! SERVING to NOT_SERVING to SERVICE_UNKNOWN to down; and one `/probe` call.
//! A missing python3 or grpcio fails the test loudly (`.ci/install` installs them).

use crate::support::exporter::{Exporter, phases, value};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const STATUS: &str = "pathwatch_grpc_health_status";
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/backends/grpc_health_server.py"
);
const SERVICE: &str = "pathwatch.test.Echo";

/// The Python health server as a child process, driven through its stdin (also paging.rs's
/// NOT_SERVING scenario).
pub(crate) struct HealthServer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub(crate) plain: u16,
    tls: u16,
}

impl HealthServer {
    pub(crate) fn start(args: &[&str]) -> HealthServer {
        let mut child = Command::new("python3")
            .arg(SCRIPT)
            .args(["--service", SERVICE])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run python3 for the gRPC health server: {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let ports: Vec<u16> = line
            .trim()
            .strip_prefix("listening ")
            .map(|p| p.split(' ').filter_map(|p| p.parse().ok()).collect())
            .unwrap_or_default();
        let [plain, tls] = ports[..] else {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!(
                "the gRPC health server did not start (python3 with grpcio and \
                 grpcio-health-checking is needed, see .ci/install); it said {line:?}, stderr:\n{err}"
            );
        };
        if let Some(mut e) = child.stderr.take() {
            std::thread::spawn(move || std::io::copy(&mut e, &mut std::io::sink()));
        }
        HealthServer {
            child,
            stdin,
            stdout,
            plain,
            tls,
        }
    }

    /// Sends a command (`serving`, `not_serving`, `unknown`, `down`) and waits for the
    /// server to have applied it.
    pub(crate) fn command(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").expect("write to the health server");
        self.stdin.flush().expect("flush");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read its answer");
        assert_eq!(line.trim(), format!("ok {command}"));
    }
}

impl Drop for HealthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn health_checks_follow_the_servers_serving_status() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = crate::support::certs::generate(dir.path());
    let (cert, key, ca) = (
        certs.server_cert.display().to_string(),
        certs.server_key.display().to_string(),
        certs.ca_cert.display().to_string(),
    );
    let mut server = HealthServer::start(&["--tls-cert", &cert, "--tls-key", &key]);
    let (plain, tls) = (server.plain, server.tls);
    let yaml = format!(
        r#"defaults: {{ interval: 1s, timeout: 3s }}
probes:
  - {{ name: overall, kind: grpc, host: 127.0.0.1, port: {plain} }}
  - {{ name: service, kind: grpc, host: localhost, port: {plain}, service: {SERVICE} }}
  - {{ name: missing, kind: grpc, host: 127.0.0.1, port: {plain}, service: no.such.Service }}
  - {{ name: tls, kind: grpc, host: localhost, port: {tls}, tls: true, ca_file: "{ca}", service: {SERVICE} }}
  - {{ name: tls-by-ip, kind: grpc, host: 127.0.0.1, port: {tls}, tls: true, server_name: localhost, ca_file: "{ca}" }}
  - {{ name: tls-unknown-ca, kind: grpc, host: localhost, port: {tls}, tls: true }}
  - {{ name: tls-skip-verify, kind: grpc, host: localhost, port: {tls}, tls: true, insecure_skip_verify: true }}
  - {{ name: plaintext-to-tls, kind: grpc, host: 127.0.0.1, port: {tls} }}
"#
    );
    let exp = Exporter::start(&yaml);
    let ok = ["overall", "service", "tls", "tls-by-ip", "tls-skip-verify"];
    for probe in ok {
        exp.wait_for("pathwatch_probe_success", &[("probe", probe)], WAIT, |v| {
            v == 1.0
        });
    }
    exp.wait_reason("missing", "failure", "not_found");
    exp.wait_reason("tls-unknown-ca", "failure", "tls");
    exp.wait_for(
        "pathwatch_probe_success",
        &[("probe", "plaintext-to-tls")],
        WAIT,
        |v| v == 0.0,
    );
    let m = exp.metrics();
    for probe in ok {
        assert_eq!(
            value(&m, STATUS, &[("probe", probe)]),
            Some(1.0),
            "{probe}\n{m}"
        );
    }
    // NOT_FOUND is a failed call, not a status: no gauge.
    assert_eq!(value(&m, STATUS, &[("probe", "missing")]), None);
    assert_eq!(phases(&m, "service"), ["connect", "request", "resolve"]);
    assert_eq!(phases(&m, "tls"), ["connect", "request", "resolve", "tls"]);
    assert_eq!(phases(&m, "tls-unknown-ca"), ["connect", "resolve"]);

    server.command("not_serving");
    for probe in ["overall", "service", "tls"] {
        exp.wait_reason(probe, "failure", "not_ready");
        exp.wait_for(STATUS, &[("probe", probe)], WAIT, |v| v == 2.0);
    }
    server.command("unknown");
    for probe in ["overall", "service"] {
        exp.wait_reason(probe, "failure", "not_found");
        exp.wait_for(STATUS, &[("probe", probe)], WAIT, |v| v == 3.0);
    }
    server.command("serving");
    exp.wait_for(
        "pathwatch_probe_success",
        &[("probe", "service")],
        WAIT,
        |v| v == 1.0,
    );
    server.command("down");
    for probe in ["overall", "service", "tls"] {
        exp.wait_reason(probe, "failure", "refused");
    }
    // A failed run reports no status: the gauge is gone rather than stale.
    let m = exp.metrics();
    assert_eq!(value(&m, STATUS, &[("probe", "service")]), None, "{m}");
}

/// `/probe` with a grpc module checks the target's health service.
#[test]
fn an_on_demand_run_checks_the_targets_health() {
    let server = HealthServer::start(&[]);
    let closed = crate::support::hang::closed_port();
    let yaml = format!(
        r#"probes:
  - {{ name: health, kind: grpc, host: 127.0.0.1, port: {closed}, service: {SERVICE}, interval: 1h }}
on_demand:
  allowed_targets: ["127.0.0.1:*"]
"#
    );
    let exp = Exporter::start(&yaml);
    let (status, _, body) = crate::support::exporter::http_get(
        exp.addr,
        &format!("/probe?module=health&target=127.0.0.1:{}", server.plain),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        value(&body, "pathwatch_probe_success", &[("probe", "health")]),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        value(&body, STATUS, &[("probe", "health")]),
        Some(1.0),
        "{body}"
    );
}

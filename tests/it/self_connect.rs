//! TCP self-connects fail as `refused` in every TCP-based kind. With the ephemeral port range
//! narrowed to one port P, a connect to 127.0.0.1:P with nothing listening is given P as its
//! source too, and TCP's simultaneous open "connects" the socket to itself: a tcp probe
//! passed that way (issue 35). Deterministic: the run happens in a network namespace of its
//! own (`unshare --net`, as root or in an unprivileged user namespace) whose
//! `net.ipv4.ip_local_port_range` is P..P, so nothing else on the machine is disturbed.
//!
//! The control: in the same namespace a plain Python connect to 127.0.0.1:P does meet itself
//! (getsockname() == getpeername()), so the test would catch pathwatch passing such a probe.
//! Afterwards a server binds P (with SO_REUSEADDR, as Postgres does): no socket was left on it
//! (but by reqwest's golden login, which closes with a FIN: see below).

use crate::support::exporter::BIN;
use serde_json::Value;
use std::process::Command;

/// The one port both ends get.
const P: u16 = 45_678;

/// One config per probe: `check` runs a config's probes at once, and with one ephemeral
/// port two concurrent connects would fight over it (EADDRNOTAVAIL) instead of meeting
/// themselves, so each kind gets a `check` of its own, one after the other.
fn configs() -> Vec<(&'static str, String)> {
    let one =
        |probe: String| format!("defaults: {{ interval: 30s, timeout: 3s }}\nprobes:\n{probe}");
    vec![
        (
            "tcp",
            one(format!(
                "  - {{ name: tcp, kind: tcp, host: 127.0.0.1, port: {P} }}\n"
            )),
        ),
        (
            "postgres",
            one(format!(
                "  - {{ name: postgres, kind: postgres, host: 127.0.0.1, port: {P}, user: postgres, dbname: postgres, sslmode: disable }}\n"
            )),
        ),
        (
            "redis",
            one(format!(
                "  - {{ name: redis, kind: redis, host: 127.0.0.1, port: {P} }}\n"
            )),
        ),
        (
            "http",
            one(format!(
                "  - {{ name: http, kind: http, url: \"http://127.0.0.1:{P}/health\" }}\n"
            )),
        ),
        (
            "tls-cert",
            one(format!(
                "  - {{ name: tls-cert, kind: tls_cert, host: 127.0.0.1, port: {P}, server_name: localhost }}\n"
            )),
        ),
        (
            "golden-login",
            one(format!(
                "  - name: golden-login\n    kind: golden_path\n    login: {{ url: \"http://127.0.0.1:{P}/auth/login\", email: a@b.test, password: pw }}\n    websocket: {{ url: \"ws://127.0.0.1:{P}/ws\" }}\n    message: hello\n"
            )),
        ),
        (
            "golden-token",
            one(format!(
                "  - name: golden-token\n    kind: golden_path\n    token: static-token\n    websocket: {{ url: \"ws://127.0.0.1:{P}/ws\" }}\n    message: hello\n"
            )),
        ),
    ]
}

/// Python inside the namespace: does a connect to P meet itself (the control), then can a
/// server bind P after pathwatch ran.
const CONTROL: &str = r#"
import socket, struct, sys
p = int(sys.argv[1])
s = socket.socket()
try:
    s.connect(("127.0.0.1", p))
    print("self" if s.getsockname() == s.getpeername() else "other")
except OSError as e:
    print("refused:", e)
# A reset, not a FIN: no TIME_WAIT left on P by the control itself.
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
"#;

const BIND: &str = r#"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
print("bound")
"#;

/// `unshare --net` as root, else in a user namespace of our own; None if neither works.
fn unshare() -> Option<Vec<&'static str>> {
    for args in [vec!["--net"], vec!["--user", "--map-root-user", "--net"]] {
        let ok = Command::new("unshare")
            .args(&args)
            .args(["--", "true"])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(args);
        }
    }
    None
}

#[test]
fn every_tcp_kind_fails_a_self_connect_as_refused() {
    let ns = unshare().expect(
        "this test needs a network namespace of its own (unshare --net as root, or an \
         unprivileged user namespace): none could be made",
    );
    let dir = tempfile::tempdir().unwrap();
    let (mut checks, mut last) = (String::new(), String::new());
    for (name, yaml) in configs() {
        let cfg = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&cfg, yaml).unwrap();
        let out = dir.path().join(format!("{name}.json"));
        let check = format!(
            "{BIN} check --config {} --format json > {} 2>/dev/null || true; ",
            cfg.display(),
            out.display()
        );
        // reqwest's connection (the golden login) closes with a FIN, which leaves P in
        // TIME_WAIT for a minute: it runs after the bind check. Every other kind's own
        // connect closes a self-connect with a reset.
        if name == "golden-login" {
            last = check;
        } else {
            checks.push_str(&check);
        }
    }
    let script = format!(
        "set -e; ip link set lo up; echo '{P} {P}' > /proc/sys/net/ipv4/ip_local_port_range; \
         python3 -c \"$CONTROL\" {P}; {checks} python3 -c \"$BIND\" {P}; {last}"
    );
    let run = Command::new("unshare")
        .args(&ns)
        .args(["--", "bash", "-c", &script])
        .env("CONTROL", CONTROL)
        .env("BIND", BIND)
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "namespace run failed: {stdout}\n{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        ["self", "bound"],
        "the control connect must meet itself, and P must be free after the run: {stderr}"
    );

    for (name, _) in configs() {
        let out = dir.path().join(format!("{name}.json"));
        let report: Value = serde_json::from_slice(&std::fs::read(&out).unwrap())
            .unwrap_or_else(|e| panic!("{name}: check --format json: {e}"));
        let p = &report["probes"][0];
        assert_eq!(p["name"], name, "{report}");
        assert_eq!(p["ok"], Value::Bool(false), "{p}");
        assert_eq!(p["reason"], "refused", "{p}");
        // The login is one step (reqwest's connect inside it), the rest time their connect.
        let phase = if name == "golden-login" {
            "login"
        } else {
            "connect"
        };
        assert_eq!(p["failed_phase"], phase, "{p}");
        assert!(
            p["detail"]
                .as_str()
                .is_some_and(|d| d.contains("connected to itself")),
            "{p}"
        );
    }
}

//! `icmp`: echo requests to 127.0.0.1 and ::1, answered by the kernel's own ICMP stack, in a
//! network namespace of the test's own (`unshare --net`, as root), where it may set
//! `net.ipv4.ping_group_range` without touching the machine's or another test's:
//! - as root with the range closed ("1 0"): a raw socket (CAP_NET_RAW);
//! - as `nobody` with the range open: a ping socket (nobody has no CAP_NET_RAW, so a
//!   success proves the ping socket);
//! - as `nobody` with the range closed: neither, `permission_denied`, and a detail that names
//!   both ways out.
//!
//! The parent test runs this same binary's [`in_a_namespace`] once per case, with the case
//! in `PATHWATCH_ICMP_CASE`; without it, [`in_a_namespace`] does nothing.

use crate::support::exporter::{Exporter, http_get, phases, value};
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const CASE: &str = "PATHWATCH_ICMP_CASE";
const TTL: &str = "pathwatch_icmp_reply_ttl";
const CHILD: &str = "icmp::in_a_namespace";

const PROBES: &str = r#"defaults: { interval: 1s, timeout: 3s }
probes:
  - { name: v4, kind: icmp, host: 127.0.0.1 }
  - { name: v6, kind: icmp, host: "::1" }
  - { name: prefer-v6, kind: icmp, host: localhost, ip_protocol: ip6 }
  # TEST-NET-1: the namespace has no route beyond loopback.
  - { name: nowhere, kind: icmp, host: 192.0.2.1 }
on_demand:
  allowed_targets: ["[::1]:*", "127.0.0.1:7"]
"#;

#[test]
fn pings_over_raw_and_ping_sockets_and_says_what_is_missing() {
    if std::env::var(CASE).is_ok() {
        return;
    }
    assert!(
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n")),
        "the icmp test needs root (a network namespace of its own, a sysctl in it, and a \
         switch to the nobody user)"
    );
    for (case, range, user) in [
        ("raw", "1 0", None),
        ("ping", "0 2147483647", Some("65534")),
        ("denied", "1 0", Some("65534")),
    ] {
        let exe = std::env::current_exe().expect("the test binary's path");
        // The child runs as `user`: setpriv drops root (and with it CAP_NET_RAW).
        let drop = user
            .map(|u| format!("setpriv --reuid={u} --regid={u} --clear-groups "))
            .unwrap_or_default();
        let script = format!(
            "ip link set lo up && echo '{range}' > /proc/sys/net/ipv4/ping_group_range \
             && exec {drop}\"$0\" \"$@\""
        );
        let out = Command::new("unshare")
            .args(["--net", "--", "sh", "-c", &script])
            .arg(&exe)
            .args(["--exact", CHILD, "--test-threads=1", "--nocapture"])
            .env(CASE, case)
            .output()
            .expect("run unshare (util-linux)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "case {case}:\n{text}");
        assert!(
            text.contains("1 passed"),
            "case {case} did not run:\n{text}"
        );
    }
}

/// One case, inside its namespace (see the module's doc).
#[test]
fn in_a_namespace() {
    let Ok(case) = std::env::var(CASE) else {
        return;
    };
    let exp = Exporter::start(PROBES);
    if case == "denied" {
        for probe in ["v4", "v6"] {
            exp.wait_reason(probe, "failure", "permission_denied");
        }
        let logs = exp.logs();
        assert!(
            logs.contains("net.ipv4.ping_group_range (now \\\"1 0\\\")")
                || logs.contains("net.ipv4.ping_group_range (now \"1 0\")"),
            "{logs}"
        );
        assert!(logs.contains("CAP_NET_RAW"), "{logs}");
        assert_eq!(value(&exp.metrics(), TTL, &[("probe", "v4")]), None);
        return;
    }
    for probe in ["v4", "v6", "prefer-v6"] {
        exp.wait_for("pathwatch_probe_success", &[("probe", probe)], WAIT, |v| {
            v == 1.0
        });
    }
    exp.wait_reason("nowhere", "failure", "unreachable");
    let m = exp.metrics();
    // Linux answers with its default TTL and hop limit, 64, and loopback is no hop.
    for probe in ["v4", "v6", "prefer-v6"] {
        assert_eq!(
            value(&m, TTL, &[("probe", probe)]),
            Some(64.0),
            "{case} {probe}\n{m}"
        );
    }
    assert_eq!(phases(&m, "v4"), ["request", "resolve"]);
    // /probe points the module at another host, named without a port (a `host:*` pattern
    // admits it), bare or bracketed; `host:port`, as older requests wrote it, still reads.
    for target in ["::1", "[::1]", "[::1]:1"] {
        let (status, _, body) = http_get(exp.addr, &format!("/probe?module=v4&target={target}"));
        assert_eq!(status, 200, "{target}: {body}");
        assert_eq!(
            value(&body, "pathwatch_probe_success", &[("probe", "v4")]),
            Some(1.0),
            "{target}: {body}"
        );
        assert_eq!(value(&body, TTL, &[("probe", "v4")]), Some(64.0), "{body}");
    }
    // A host no pattern admits is refused before anything is sent; a port-bound pattern
    // (`127.0.0.1:7`) does not admit the portless host.
    let (status, _, body) = http_get(exp.addr, "/probe?module=v4&target=127.0.0.1");
    assert_eq!(status, 403, "{body}");
}

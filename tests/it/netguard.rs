//! The loopback-only guard that CI and README's test command run the tests in (.ci/netguard):
//! inside it, loopback works and a connect to any other address fails at once with "Network is
//! unreachable", so no test can send traffic beyond this machine.
//!
//! Under the guard (`PATHWATCH_NET_GUARD=1`) the test checks the namespace it runs in. Run
//! without it (plain `cargo test`), it makes a network namespace of its own for a child run
//! of this same test (`unshare --net`, as root or in an unprivileged user namespace) and
//! fails loudly if none can be made. Nothing is ever sent outside a namespace with only `lo`.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

const GUARD: &str = "PATHWATCH_NET_GUARD";
const NAME: &str = "netguard::beyond_loopback_is_unreachable_under_the_guard";

/// The interfaces of this process's network namespace (/proc/net/dev is per namespace;
/// /sys/class/net is not, unless sysfs was mounted anew).
fn interfaces() -> Vec<String> {
    std::fs::read_to_string("/proc/net/dev")
        .expect("read /proc/net/dev")
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|name| name.trim().to_string())
        .collect()
}

fn check_the_namespace() {
    // Checked before anything is sent: a stray PATHWATCH_NET_GUARD=1 outside a namespace
    // fails here instead of connecting out.
    assert_eq!(
        interfaces(),
        ["lo"],
        "{GUARD}=1 but this network namespace has more than loopback"
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind on loopback");
    TcpStream::connect(listener.local_addr().expect("local addr"))
        .expect("loopback must work under the guard");
    // TEST-NET-1 and the IPv6 documentation prefix: never routed anywhere, and here no route
    // exists at all, so the kernel answers at once instead of the timeout running out.
    for addr in ["192.0.2.1:9", "[2001:db8::1]:9"] {
        let addr: SocketAddr = addr.parse().expect("address");
        let err = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .expect_err("a connect beyond loopback succeeded under the guard");
        assert_eq!(err.kind(), ErrorKind::NetworkUnreachable, "{addr}: {err}");
    }
}

#[test]
fn beyond_loopback_is_unreachable_under_the_guard() {
    if std::env::var(GUARD).as_deref() == Ok("1") {
        check_the_namespace();
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let mut cmd = Command::new("unshare");
    if !root {
        cmd.arg("--map-root-user");
    }
    let out = cmd
        .args([
            "--net",
            "--",
            "sh",
            "-c",
            "ip link set lo up && exec \"$0\" \"$@\"",
        ])
        .arg(&exe)
        .args(["--exact", NAME, "--test-threads=1"])
        .env(GUARD, "1")
        .output()
        .expect("run unshare (util-linux): the guard's test needs a network namespace");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the check in a network namespace of its own failed (unshare --net needs root or unprivileged user namespaces, and `ip` from iproute2):\n{text}"
    );
    assert!(text.contains("1 passed"), "the child ran no test:\n{text}");
}

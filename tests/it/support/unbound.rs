//! A disposable `unbound` (NLnet Labs' DNS server, from Debian) for the dns probe's tests, on
//! a free 127.0.0.1 port, UDP and TCP, everything in a temp dir. It answers [`ZONE`] from
//! `local-data` (authoritatively, NXDOMAIN for other names in it), refuses `refused.test.`,
//! and forwards `dead.test.` to a port nothing listens on, so it answers SERVFAIL there.
//! `big.` + [`ZONE`] has a TXT RRset of about 2 KB, too big for a 1232-byte UDP answer.
//! [`SIGNED`] is a DNSSEC-signed zone unbound validates (`www.` A 192.0.2.53).
//! Dropping it kills the server. A test that cannot start one panics with its log.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ZONE: &str = "pathwatch.test.";

/// Tries with a new port when the one picked was taken before the server bound it.
const PORT_ATTEMPTS: usize = 5;

pub struct Unbound {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// The zone's records, in zone-file form.
fn local_data(dead_port: u16) -> String {
    let mut rr = vec![
        "pathwatch.test. 3600 IN SOA ns.pathwatch.test. hostmaster.pathwatch.test. 1 3600 900 604800 300".to_string(),
        "www.pathwatch.test. 300 IN A 192.0.2.10".to_string(),
        "www.pathwatch.test. 300 IN A 192.0.2.11".to_string(),
        "www.pathwatch.test. 300 IN AAAA 2001:db8::10".to_string(),
        "pathwatch.test. 300 IN MX 10 mail.pathwatch.test.".to_string(),
        "pathwatch.test. 300 IN MX 20 backup.pathwatch.test.".to_string(),
        r#"pathwatch.test. 300 IN TXT "v=spf1 -all""#.to_string(),
        "_sip._udp.pathwatch.test. 300 IN SRV 0 5 5060 sip.pathwatch.test.".to_string(),
        "alias.pathwatch.test. 300 IN CNAME www.pathwatch.test.".to_string(),
    ];
    // Ten strings of 200 bytes: about 2.2 KB, truncated over UDP.
    for i in 0..10 {
        rr.push(format!(
            r#"big.pathwatch.test. 300 IN TXT "{i:02}-{}""#,
            "x".repeat(200)
        ));
    }
    let mut out = String::new();
    for r in rr {
        out.push_str(&format!("  local-data: '{r}'\n"));
    }
    out.push_str(&format!(
        "forward-zone:\n  name: \"dead.test.\"\n  forward-addr: 127.0.0.1@{dead_port}\n  forward-tcp-upstream: yes\n"
    ));
    out
}

impl Unbound {
    pub fn start() -> Unbound {
        let dir = tempfile::Builder::new()
            .prefix("pathwatch-unbound-")
            .tempdir()
            .expect("temp dir for unbound");
        let conf = dir.path().join("unbound.conf");
        let log = dir.path().join("unbound.log");
        let signed = sign_zone(dir.path());
        for _ in 0..PORT_ATTEMPTS {
            let port = free_udp_and_tcp_port();
            let dead = crate::support::hang::closed_port();
            // No chroot, no privilege drop, no remote control; the forwarder may be on
            // loopback. The validator trusts the signed zone's key only (no root anchor).
            let text = format!(
                r#"server:
  interface: 127.0.0.1
  port: {port}
  do-ip6: no
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "{dir}"
  pidfile: ""
  use-syslog: no
  logfile: "{log}"
  verbosity: 1
  module-config: "validator iterator"
  trust-anchor-file: "{anchor}"
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  local-zone: "{ZONE}" static
  local-zone: "refused.test." refuse
  # unbound answers the whole of test. itself by default (RFC 6761): not dead.test.
  local-zone: "test." nodefault
{data}auth-zone:
  name: "{SIGNED}"
  zonefile: "{zonefile}"
  for-upstream: yes
  for-downstream: no
  fallback-enabled: no
remote-control:
  control-enable: no
"#,
                dir = dir.path().display(),
                log = log.display(),
                data = local_data(dead),
                anchor = signed.anchor.display(),
                zonefile = signed.zonefile.display(),
            );
            std::fs::write(&conf, text).expect("write unbound.conf");
            let mut child = Command::new(binary())
                .arg("-d")
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot run unbound (bash .ci/install installs it): {e}")
                });
            match wait_ready(&mut child, &log, Duration::from_secs(20)) {
                Ok(()) => {
                    return Unbound {
                        child,
                        addr: SocketAddr::from(([127, 0, 0, 1], port)),
                        _dir: dir,
                    };
                }
                Err(text) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    assert!(
                        text.contains("Address already in use"),
                        "unbound did not start; its log:\n{text}"
                    );
                    let _ = std::fs::remove_file(&log);
                }
            }
        }
        panic!("unbound: no free port after {PORT_ATTEMPTS} attempts");
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The signed zone: unbound serves it to its own iterator (`auth-zone`, `for-upstream`) and
/// validates it with its key as the only trust anchor, so its answers carry the AD bit.
pub const SIGNED: &str = "signed.test.";

struct SignedZone {
    zonefile: PathBuf,
    anchor: PathBuf,
}

/// Makes a key-signing and a zone-signing key (ECDSA P-256) and signs [`SIGNED`] with them,
/// with ldns' tools (NLnet Labs', as unbound); the key-signing key's DS is the anchor.
fn sign_zone(dir: &Path) -> SignedZone {
    let zone = dir.join("signed.test.zone");
    std::fs::write(
        &zone,
        "$ORIGIN signed.test.\n$TTL 300\n\
         @ IN SOA ns.signed.test. hostmaster.signed.test. 1 3600 900 604800 300\n\
         @ IN NS ns.signed.test.\n\
         ns IN A 127.0.0.1\n\
         www IN A 192.0.2.53\n",
    )
    .expect("write the zone file");
    let run = |args: &[&str]| {
        let out = Command::new(args[0])
            .args(&args[1..])
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} (bash .ci/install installs ldnsutils): {e}",
                    args[0]
                )
            });
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let ksk = run(&["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", SIGNED]);
    let zsk = run(&["ldns-keygen", "-a", "ECDSAP256SHA256", SIGNED]);
    run(&["ldns-signzone", "signed.test.zone", &ksk, &zsk]);
    SignedZone {
        zonefile: dir.join("signed.test.zone.signed"),
        anchor: dir.join(format!("{ksk}.ds")),
    }
}

/// unbound lives in /usr/sbin, which is not on every user's PATH.
fn binary() -> &'static str {
    if Path::new("/usr/sbin/unbound").exists() {
        "/usr/sbin/unbound"
    } else {
        "unbound"
    }
}

/// Waits for "start of service" in the log; the log text on failure.
fn wait_ready(child: &mut Child, log: &Path, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains("start of service") {
            return Ok(());
        }
        let exited = child.try_wait().ok().flatten().is_some();
        if exited || Instant::now() > deadline {
            return Err(text);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A port free for both UDP and TCP on 127.0.0.1 (bound, then released).
fn free_udp_and_tcp_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind UDP to find a free port");
        let port = udp.local_addr().expect("address").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

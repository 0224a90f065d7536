//! Disposable `redis-server` instances for integration tests: a free 127.0.0.1 port, a Unix
//! socket, `requirepass`, no persistence, everything in a temp dir; optionally TLS only
//! (`--port 0 --tls-port P`) with a certificate from [`super::certs`]. Dropping the server
//! kills it and deletes the dir. A test that cannot start one panics with the server log: it
//! never skips silently.

use super::certs::{self, TestCerts};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Tries with a new port when the one picked was taken before the server bound it.
const PORT_ATTEMPTS: usize = 5;

#[derive(Debug, Clone, Copy, Default)]
pub struct RedisOptions {
    /// Serve TLS only, with a certificate for `localhost`/`127.0.0.1` from a fresh CA.
    pub tls: bool,
}

pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    password: String,
    socket: PathBuf,
    certs: Option<TestCerts>,
    /// Holds the data dir (socket, log, certificates) until the server is dropped.
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start(opts: RedisOptions) -> RedisServer {
        let dir = tempfile::Builder::new()
            .prefix("pathwatch-redis-")
            .tempdir()
            .expect("temp dir for redis-server");
        let certs = opts.tls.then(|| certs::generate(dir.path()));
        let password = format!("rpw-{:016x}", random_u64());
        let socket = dir.path().join("redis.sock");
        let log = dir.path().join("redis.log");
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let mut cmd = Command::new("redis-server");
            // Every setting on the command line: no config file, nothing saved.
            cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--requirepass", &password])
                .arg("--dir")
                .arg(dir.path())
                .arg("--unixsocket")
                .arg(&socket)
                .args(["--unixsocketperm", "700", "--daemonize", "no"])
                .arg("--logfile")
                .arg(&log);
            match &certs {
                Some(c) => {
                    cmd.args(["--port", "0", "--tls-port", &port.to_string()])
                        .arg("--tls-cert-file")
                        .arg(&c.server_cert)
                        .arg("--tls-key-file")
                        .arg(&c.server_key)
                        .arg("--tls-ca-cert-file")
                        .arg(&c.ca_cert)
                        .args(["--tls-auth-clients", "no"]);
                }
                None => {
                    cmd.args(["--port", &port.to_string()]);
                }
            }
            let mut child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot run redis-server (bash .ci/test installs it): {e}")
                });
            match wait_ready(&mut child, &log, Duration::from_secs(20)) {
                Ok(()) => {
                    return RedisServer {
                        child: Some(child),
                        port,
                        password,
                        socket,
                        certs,
                        _dir: dir,
                    };
                }
                Err(text) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    assert!(
                        text.contains("Address already in use"),
                        "redis-server did not start; its log:\n{text}"
                    );
                    let _ = std::fs::remove_file(&log);
                }
            }
        }
        panic!("redis-server: no free port after {PORT_ATTEMPTS} attempts");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn ca_cert(&self) -> &Path {
        &self
            .certs
            .as_ref()
            .expect("a TLS redis-server has certificates")
            .ca_cert
    }

    /// Kills the server; its port then refuses connections.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits for "Ready to accept connections" in the log; the log text on failure.
fn wait_ready(child: &mut Child, log: &Path, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains("Ready to accept connections") {
            return Ok(());
        }
        let exited = child.try_wait().ok().flatten().is_some();
        if exited || Instant::now() > deadline {
            return Err(text);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind to find a free port");
    l.local_addr().expect("address").port()
}

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

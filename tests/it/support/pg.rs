//! Disposable PostgreSQL clusters for integration tests.
//!
//! [`PgCluster::start`] runs `initdb` into a fresh temp dir and starts a
//! postmaster on a free 127.0.0.1 port plus a private Unix socket directory,
//! with SCRAM authentication for the `postgres` superuser and, optionally,
//! TLS with a throwaway CA (see [`super::certs`]). Dropping the cluster stops
//! the server and deletes everything, so tests can run several clusters
//! concurrently in one process without sharing state.
//!
//! Requirements: the Postgres server binaries (`pg_config --bindir`, else the
//! newest `/usr/lib/postgresql/*/bin`), `psql`, `openssl` for TLS, and when
//! running as root the `postgres` OS user plus `runuser`, because `initdb`
//! refuses to run as root. A test that needs Postgres and cannot get it
//! panics with the reason and the server log; it never skips silently.
//!
//! [`PgCluster::freeze`] / [`PgCluster::thaw`] SIGSTOP/SIGCONT the postmaster
//! to simulate a server that accepts TCP connections at the kernel level but
//! never answers (new connections hang in the listen backlog; sessions that
//! are already established keep working, since their backends are separate
//! processes).

use std::collections::BTreeSet;
use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::certs::{self, TestCerts};

/// The superuser `initdb` creates (`-U postgres`).
const SUPERUSER: &str = "postgres";
/// OS account that owns the cluster when the tests run as root.
const OS_USER: &str = "postgres";
/// How many times start is retried with a new port when the one picked was
/// taken in the window between probing it and the postmaster binding it.
const PORT_ATTEMPTS: usize = 5;

/// Ports handed to clusters of this process that are still alive. The OS
/// rarely re-issues an ephemeral port right away, but concurrent tests probe
/// ports at nearly the same moment, so keep our own ledger as well.
static PORTS_IN_USE: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// What kind of server to start.
#[derive(Debug, Clone, Copy, Default)]
pub struct PgOptions {
    /// Enable TLS (`ssl=on`) with a certificate for `localhost`/`127.0.0.1`
    /// signed by a per-cluster CA, see [`PgCluster::ca_cert_path`]. Plain TCP
    /// stays accepted as well (pg_hba has `host` lines, not `hostssl`), so the
    /// client decides via `sslmode`.
    pub tls: bool,
    /// `max_connections` (Postgres' default, 100, when `None`): a small one lets a test fill
    /// the server with real sessions.
    pub max_connections: Option<u32>,
}

/// A running throwaway Postgres server. Stopped and deleted on drop.
#[derive(Debug)]
pub struct PgCluster {
    bindir: PathBuf,
    datadir: PathBuf,
    socket_dir: PathBuf,
    logfile: PathBuf,
    port: u16,
    password: String,
    /// Postmaster PID, read from `postmaster.pid` after start.
    pid: u32,
    stopped: AtomicBool,
    certs: Option<TestCerts>,
    /// Declared last so it is dropped (directory deleted) after everything
    /// else; `Drop for PgCluster` has already stopped the server by then.
    tempdir: tempfile::TempDir,
}

impl PgCluster {
    /// `initdb` + start. Panics with the command output and server log if
    /// anything fails.
    pub fn start(opts: PgOptions) -> PgCluster {
        let bindir = pg_bindir().to_path_buf();
        let as_root = running_as_root();

        let tempdir = tempfile::Builder::new()
            .prefix("pathwatch-pg-")
            .tempdir()
            .expect("creating a temp dir for the Postgres cluster");
        let root = tempdir.path().to_path_buf();
        let datadir = root.join("data");
        let socket_dir = root.join("sock");
        let logfile = root.join("server.log");
        let pwfile = root.join("pwfile");
        fs::create_dir(&socket_dir)
            .unwrap_or_else(|e| panic!("creating socket dir {}: {e}", socket_dir.display()));

        // The socket path must fit in sockaddr_un.sun_path (108 bytes incl.
        // NUL); a long TMPDIR would otherwise fail much later with an obscure
        // "path too long" in the server log.
        let sock_path_len = socket_dir.join(".s.PGSQL.65535").as_os_str().len();
        assert!(
            sock_path_len < 108,
            "Unix socket path under {} would be {sock_path_len} bytes (limit 107); \
             set TMPDIR to a shorter directory",
            socket_dir.display()
        );

        let password = format!("pw-{:016x}", random_u64());
        fs::write(&pwfile, format!("{password}\n"))
            .unwrap_or_else(|e| panic!("writing {}: {e}", pwfile.display()));

        let certs = opts.tls.then(|| {
            let dir = root.join("certs");
            fs::create_dir(&dir)
                .unwrap_or_else(|e| panic!("creating cert dir {}: {e}", dir.display()));
            let generated = certs::generate(&dir);
            // Postgres refuses a key that others can read: it must be 0600
            // when owned by the server user (chowned below when root).
            let key = root.join("server.key");
            fs::copy(&generated.server_key, &key).unwrap_or_else(|e| {
                panic!(
                    "copying {} to {}: {e}",
                    generated.server_key.display(),
                    key.display()
                )
            });
            fs::set_permissions(&key, fs::Permissions::from_mode(0o600))
                .unwrap_or_else(|e| panic!("chmod 0600 {}: {e}", key.display()));
            TestCerts {
                server_key: key,
                ..generated
            }
        });

        if as_root {
            // The server runs as `postgres`, which must be able to reach and
            // write into the temp dir (TempDir creates it 0700 root-owned).
            fs::set_permissions(&root, fs::Permissions::from_mode(0o755))
                .unwrap_or_else(|e| panic!("chmod 0755 {}: {e}", root.display()));
            let out = Command::new("chown")
                .args(["-R", &format!("{OS_USER}:{OS_USER}")])
                .arg(&root)
                .output()
                .expect("running chown for the Postgres temp dir");
            check(
                &out,
                &format!("chown -R {OS_USER} {}", root.display()),
                None,
            );
        }

        let t_initdb = Instant::now();
        let out = pg_command(&bindir, "initdb", as_root, &root)
            .arg("-D")
            .arg(&datadir)
            .args(["-U", SUPERUSER, "--auth=scram-sha-256", "--no-sync"])
            // C locale: no dependency on which locales the machine generated
            .args(["--locale=C", "--encoding=UTF8"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("running initdb");
        check(&out, "initdb", None);
        // The password is in the cluster now; no need to leave it lying
        // around in a world-readable dir.
        let _ = fs::remove_file(&pwfile);
        let initdb_time = t_initdb.elapsed();

        // Settings go into postgresql.conf rather than `pg_ctl -o`: pg_ctl
        // hands -o to /bin/sh, so paths would need shell quoting. Only the
        // port (a number) is passed with -o, since it may change on retry.
        let mut conf = String::from("\n# added by pathwatch test support\n");
        let mut set = |k: &str, v: &str| {
            conf.push_str(&format!("{k} = '{}'\n", v.replace('\'', "''")));
        };
        set("listen_addresses", "127.0.0.1");
        set("unix_socket_directories", &socket_dir.to_string_lossy());
        set("fsync", "off");
        set("password_encryption", "scram-sha-256");
        if let Some(n) = opts.max_connections {
            set("max_connections", &n.to_string());
        }
        if let Some(c) = &certs {
            set("ssl", "on");
            set("ssl_cert_file", &c.server_cert.to_string_lossy());
            set("ssl_key_file", &c.server_key.to_string_lossy());
        }
        let conf_path = datadir.join("postgresql.conf");
        let mut full = fs::read_to_string(&conf_path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", conf_path.display()));
        full.push_str(&conf);
        // Rewriting keeps the file's owner (postgres) since we only write.
        fs::write(&conf_path, full)
            .unwrap_or_else(|e| panic!("writing {}: {e}", conf_path.display()));

        let t_start = Instant::now();
        let mut port = 0;
        for attempt in 1..=PORT_ATTEMPTS {
            port = reserve_free_port();
            // Fresh log per attempt, so the port-conflict check below (and
            // the panic message) only see this attempt.
            let _ = fs::remove_file(&logfile);
            let out = pg_command(&bindir, "pg_ctl", as_root, &root)
                .args(["-w", "-t", "60", "-D"])
                .arg(&datadir)
                .arg("-l")
                .arg(&logfile)
                .args(["-o", &format!("-p {port}"), "start"])
                .output()
                .expect("running pg_ctl start");
            if out.status.success() {
                break;
            }
            release_port(port);
            let log = fs::read_to_string(&logfile).unwrap_or_default();
            let port_taken =
                log.contains("could not bind") || log.contains("Address already in use");
            if port_taken && attempt < PORT_ATTEMPTS {
                continue;
            }
            check(&out, &format!("pg_ctl start (port {port})"), Some(&logfile));
        }
        let start_time = t_start.elapsed();

        let pid_file = datadir.join("postmaster.pid");
        let pid = fs::read_to_string(&pid_file)
            .unwrap_or_else(|e| panic!("reading {} after start: {e}", pid_file.display()))
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<u32>().ok())
            .unwrap_or_else(|| panic!("no PID on the first line of {}", pid_file.display()));

        eprintln!(
            "pg test cluster: port {port}, socket dir {}, tls {}, initdb {initdb_time:.2?}, start {start_time:.2?}",
            socket_dir.display(),
            opts.tls
        );

        PgCluster {
            bindir,
            datadir,
            socket_dir,
            logfile,
            port,
            password,
            pid,
            stopped: AtomicBool::new(false),
            certs,
            tempdir,
        }
    }

    /// TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Directory containing the Unix socket `.s.PGSQL.<port>` (use as `host`).
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// Password of the superuser [`Self::user`].
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The superuser name, `postgres`.
    pub fn user(&self) -> &str {
        SUPERUSER
    }

    /// PEM of the CA that signed the server certificate, when started with
    /// `tls: true` (for `sslmode=verify-ca`/`verify-full` or a rustls root
    /// store). The server certificate names `localhost` and `127.0.0.1`.
    pub fn ca_cert_path(&self) -> Option<&Path> {
        self.certs.as_ref().map(|c| c.ca_cert.as_path())
    }

    /// `pg_ctl stop -m immediate`. Idempotent, thaws a frozen server first,
    /// and never panics (it also runs from `Drop`, possibly while a failed
    /// test is already unwinding); problems are reported on stderr.
    pub fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        // A SIGSTOPped postmaster cannot act on pg_ctl's SIGQUIT and pg_ctl
        // would wait until its timeout. SIGCONT unconditionally (harmless on
        // a running process) rather than trusting a flag: the test may have
        // stopped it some other way.
        self.send_signal("CONT");

        let result = pg_command(
            &self.bindir,
            "pg_ctl",
            running_as_root(),
            self.tempdir.path(),
        )
        .args(["-w", "-t", "30", "-m", "immediate", "-D"])
        .arg(&self.datadir)
        .arg("stop")
        .output();
        let ok = match &result {
            Ok(out) if out.status.success() => true,
            Ok(out) => {
                eprintln!(
                    "pg test cluster on port {}: pg_ctl stop failed ({}): {}{}",
                    self.port,
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                false
            }
            Err(e) => {
                eprintln!(
                    "pg test cluster on port {}: could not run pg_ctl stop: {e}",
                    self.port
                );
                false
            }
        };
        if !ok {
            // Do not leave a server behind; its children exit on their own
            // once they notice the postmaster is gone.
            self.send_signal("KILL");
        }
        release_port(self.port);
    }

    /// Starts a cluster stopped by [`Self::stop`] again, on the same port and data: for a
    /// database that was down and comes back.
    pub fn start_again(&mut self) {
        assert!(
            self.stopped.load(Ordering::SeqCst),
            "start_again() on a running cluster"
        );
        claim_port(self.port);
        let out = pg_command(
            &self.bindir,
            "pg_ctl",
            running_as_root(),
            self.tempdir.path(),
        )
        .args(["-w", "-t", "60", "-D"])
        .arg(&self.datadir)
        .arg("-l")
        .arg(&self.logfile)
        .args(["-o", &format!("-p {}", self.port), "start"])
        .output()
        .expect("running pg_ctl start");
        check(&out, "pg_ctl start (again)", Some(&self.logfile));
        let pid_file = self.datadir.join("postmaster.pid");
        self.pid = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no PID in {} after start", pid_file.display()));
        self.stopped.store(false, Ordering::SeqCst);
    }

    /// Opens `n` real sessions (psql running `pg_sleep`) as the superuser; they end when the
    /// children are killed (or dropped with [`Sessions`]).
    pub fn hold_sessions(&self, n: usize) -> Sessions {
        let children = (0..n)
            .map(|_| {
                self.psql()
                    // The server notices the client is gone within 200 ms (instead of at
                    // the end of the sleep), so dropping the children frees the slots.
                    .args([
                        "-c",
                        "SET client_connection_check_interval = '200ms'; SELECT pg_sleep(600)",
                    ])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .expect("psql holding a session")
            })
            .collect();
        Sessions(children)
    }

    /// Runs one SQL statement as the superuser over the Unix socket.
    pub fn exec(&self, sql: &str) {
        let out = self
            .psql()
            .args(["-c", sql])
            .output()
            .expect("running psql");
        check(&out, "psql -c (statement not shown)", Some(&self.logfile));
    }

    /// SIGSTOP the postmaster: new connections are accepted by the kernel
    /// (TCP handshake completes) but never get a server response, so clients
    /// hang until their own timeout. Existing sessions are unaffected.
    pub fn freeze(&self) {
        assert!(
            !self.stopped.load(Ordering::SeqCst),
            "freeze() on a stopped cluster"
        );
        assert!(
            self.send_signal("STOP"),
            "SIGSTOP to postmaster {} failed",
            self.pid
        );
    }

    /// SIGCONT the postmaster; connections queued meanwhile are then served
    /// (unless the client already gave up).
    pub fn thaw(&self) {
        assert!(
            self.send_signal("CONT"),
            "SIGCONT to postmaster {} failed",
            self.pid
        );
    }

    /// `CREATE DATABASE` via psql over the Unix socket, as the superuser.
    pub fn create_database(&self, name: &str) {
        let ident = format!("\"{}\"", name.replace('"', "\"\""));
        let out = self
            .psql()
            .args(["-c", &format!("CREATE DATABASE {ident}")])
            .output()
            .expect("running psql for CREATE DATABASE");
        check(
            &out,
            &format!("CREATE DATABASE {ident}"),
            Some(&self.logfile),
        );
    }

    /// psql connected over the socket as the superuser, with no influence
    /// from the caller's environment (`PG*` variables, `~/.psqlrc`).
    fn psql(&self) -> Command {
        let local = self.bindir.join("psql");
        let mut cmd = Command::new(if local.exists() {
            local
        } else {
            PathBuf::from("psql")
        });
        for var in [
            "PGHOST",
            "PGHOSTADDR",
            "PGPORT",
            "PGUSER",
            "PGDATABASE",
            "PGSERVICE",
            "PGSSLMODE",
            "PGPASSFILE",
            "PGOPTIONS",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("PGPASSWORD", &self.password)
            .env("PGCONNECT_TIMEOUT", "10")
            .arg("-X")
            .args(["-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(&self.socket_dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
            ]);
        cmd
    }

    /// `kill -SIG PID`; returns whether it was delivered. Shells out because
    /// the tests have no libc dependency.
    fn send_signal(&self, sig: &str) -> bool {
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid.to_string())
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // stop() thaws first; the TempDir field is dropped afterwards.
        self.stop();
    }
}

/// Directory with `initdb`/`pg_ctl`: `pg_config --bindir` if that really
/// contains `initdb` (a client-only pg_config may point at /usr/bin), else the
/// newest `/usr/lib/postgresql/<major>/bin`.
fn pg_bindir() -> &'static Path {
    static BINDIR: OnceLock<PathBuf> = OnceLock::new();
    BINDIR.get_or_init(|| {
        let from_pg_config = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .filter(|d| d.join("initdb").exists());
        if let Some(dir) = from_pg_config {
            return dir;
        }
        let newest = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let major: u32 = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").exists().then_some((major, bin))
            })
            .max_by_key(|(major, _)| *major);
        match newest {
            Some((_, bin)) => bin,
            None => panic!(
                "PostgreSQL server binaries not found: `pg_config --bindir` has no initdb \
                 and there is no /usr/lib/postgresql/*/bin/initdb; install the postgresql package"
            ),
        }
    })
}

/// Effective uid 0? Read from /proc (no libc dependency), `id -u` otherwise.
fn running_as_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        let from_proc = fs::read_to_string("/proc/self/status").ok().and_then(|s| {
            // "Uid:\treal\teffective\tsaved\tfs"
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|rest| rest.split_whitespace().nth(1).map(|euid| euid == "0"))
        });
        from_proc.unwrap_or_else(|| {
            Command::new("id")
                .arg("-u")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
                .expect(
                    "determining the current uid: /proc/self/status unreadable and `id -u` failed",
                )
        })
    })
}

/// A server binary, run as the `postgres` OS user when we are root (initdb
/// and postgres refuse to run as root). `cwd` is set to a directory that user
/// can enter, since the caller's cwd (e.g. under /root) may not be.
fn pg_command(bindir: &Path, program: &str, as_root: bool, cwd: &Path) -> Command {
    let exe = bindir.join(program);
    let mut cmd = if as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", OS_USER, "--"]).arg(exe);
        c
    } else {
        Command::new(exe)
    };
    cmd.current_dir(cwd);
    // pg_ctl/initdb would otherwise prefer these over our -D.
    cmd.env_remove("PGDATA");
    cmd
}

/// Panic with everything useful if `out` is a failure.
fn check(out: &Output, what: &str, logfile: Option<&Path>) {
    if out.status.success() {
        return;
    }
    let log = logfile
        .map(|p| match fs::read_to_string(p) {
            Ok(s) => format!("\n--- server log {} ---\n{s}", p.display()),
            Err(e) => format!("\n(server log {} unreadable: {e})", p.display()),
        })
        .unwrap_or_default();
    panic!(
        "test Postgres: {what} failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}{log}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A port that was free a moment ago and is not used by another cluster of
/// this process. Racy against other processes by nature; start() retries.
fn reserve_free_port() -> u16 {
    // A poisoned lock only means another test panicked mid-update; the set
    // itself is still usable.
    let mut in_use = PORTS_IN_USE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("binding 127.0.0.1:0 to find a free port")
            .port();
        if in_use.insert(port) {
            return port;
        }
    }
}

fn release_port(port: u16) {
    PORTS_IN_USE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&port);
}

/// OS-seeded randomness via std's hasher keys; enough for a test password.
fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_nanos(),
    );
    h.finish()
}

/// Takes `port` back into the ledger (a cluster started again on its old port).
fn claim_port(port: u16) {
    PORTS_IN_USE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(port);
}

/// Sessions held open by [`PgCluster::hold_sessions`]; dropping ends them.
pub struct Sessions(Vec<std::process::Child>);

impl Drop for Sessions {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

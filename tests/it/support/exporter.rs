//! The real `pathwatch` binary, started with a config on 127.0.0.1:0, scraped over HTTP.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_pathwatch");

pub struct Exporter {
    child: Child,
    pub addr: SocketAddr,
    logs: Arc<Mutex<String>>,
    pub dir: tempfile::TempDir,
}

/// A scraped sample: its labels and value.
#[derive(Debug, Clone)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Exporter {
    /// Writes `yaml` to a temp file and runs `pathwatch serve` on it.
    pub fn start(yaml: &str) -> Exporter {
        Self::start_with_env(yaml, &[])
    }

    pub fn start_with_env(yaml: &str, env: &[(&str, &str)]) -> Exporter {
        let dir = tempfile::tempdir().expect("temp dir for the config");
        let path = dir.path().join("pathwatch.yaml");
        std::fs::write(&path, yaml).expect("write the config");
        let args = [
            "serve".to_string(),
            "--config".to_string(),
            path.display().to_string(),
        ];
        Self::start_command(&args, env, dir)
    }

    /// Sends a signal (`HUP`, `TERM`, ...) to the process.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -{name}");
    }

    /// Runs `pathwatch ARGS --listen 127.0.0.1:0` and waits for its "listening" log line.
    pub fn start_command(
        args: &[String],
        env: &[(&str, &str)],
        dir: tempfile::TempDir,
    ) -> Exporter {
        Self::start_command_at(args, env, dir, "127.0.0.1:0")
    }

    /// `pathwatch serve` on the config in `dir` (pathwatch.yaml) at a fixed address, so a
    /// restarted exporter is scraped where it was.
    pub fn serve_at(dir: tempfile::TempDir, env: &[(&str, &str)], listen: &str) -> Exporter {
        let path = dir.path().join("pathwatch.yaml");
        let args = [
            "serve".to_string(),
            "--config".to_string(),
            path.display().to_string(),
        ];
        Self::start_command_at(&args, env, dir, listen)
    }

    /// Stops the process (SIGTERM) and hands back its directory, config included.
    pub fn stop_keep_dir(mut self) -> tempfile::TempDir {
        self.terminate(Duration::from_secs(20));
        let fresh = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.dir, fresh)
    }

    /// Like [`Self::start_command`], listening on `listen`.
    pub fn start_command_at(
        args: &[String],
        env: &[(&str, &str)],
        dir: tempfile::TempDir,
        listen: &str,
    ) -> Exporter {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .args(["--listen", listen, "--log-level", "info"])
            .env_remove("RUST_LOG")
            .env_remove("PATHWATCH_CONFIG")
            .env_remove("PATHWATCH_LISTEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn pathwatch");
        let stderr = child.stderr.take().expect("piped stderr");
        let logs = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let l = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Text logs: `... listening addr=127.0.0.1:PORT ...`; JSON logs: an object
                // with "message":"listening" and "addr".
                let text_addr = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("addr="))
                    .filter(|_| line.contains("listening"))
                    .map(str::to_string);
                let json_addr = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .filter(|v| v["message"] == "listening")
                    .and_then(|v| v["addr"].as_str().map(str::to_string));
                if let Some(addr) = text_addr.or(json_addr) {
                    let _ = tx.send(addr);
                }
                let mut logs = l.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        // Long enough for a debug build to load a config of 30,000 probes on a busy 2-core
        // machine (tests/it/shards.rs starts four such at once).
        let addr = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(a) => a.parse().expect("listening address"),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "pathwatch did not start listening; its logs:\n{}",
                    logs.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                );
            }
        };
        Exporter {
            child,
            addr,
            logs,
            dir,
        }
    }

    /// The process id (for signals and `prlimit`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("pathwatch.yaml")
    }

    /// GET over plain HTTP/1.0: (status, content-type, body).
    pub fn get(&self, path: &str) -> (u16, String, String) {
        http_get(self.addr, path)
    }

    /// GET /metrics as Prometheus asks for it (OpenMetrics).
    pub fn metrics(&self) -> String {
        let (status, ctype, body) =
            http_get_with(self.addr, "/metrics", &[("Accept", PROMETHEUS_ACCEPT)]);
        assert_eq!(status, 200, "GET /metrics");
        assert!(
            ctype.starts_with("application/openmetrics-text"),
            "content-type {ctype}"
        );
        body
    }

    pub fn logs(&self) -> String {
        self.logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Scrapes until `name` has a sample with all of `labels` for which `pred` holds.
    pub fn wait_for(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        timeout: Duration,
        pred: impl Fn(f64) -> bool,
    ) -> f64 {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.metrics();
            if let Some(v) = value(&text, name, labels).filter(|v| pred(*v)) {
                return v;
            }
            assert!(
                Instant::now() <= deadline,
                "no {name}{labels:?} matching the condition within {timeout:?}\nmetrics:\n{text}\nlogs:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `probe` has at least one run with this result and reason.
    pub fn wait_reason(&self, probe: &str, result: &str, reason: &str) {
        self.wait_for(
            "pathwatch_probe_runs_total",
            &[("probe", probe), ("result", result), ("reason", reason)],
            Duration::from_secs(20),
            |v| v >= 1.0,
        );
    }

    /// Waits for the probe's first finished run and returns the scrape.
    pub fn wait_first_run(&self, probe: &str, timeout: Duration) -> String {
        self.wait_for(
            "pathwatch_probe_last_run_timestamp_seconds",
            &[("probe", probe)],
            timeout,
            |v| v > 0.0,
        );
        self.metrics()
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for pathwatch") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("pathwatch did not exit within {within:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Accept header Prometheus 2.42 scrapes with.
pub const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    http_get_with(addr, path, &[])
}

/// GET over plain HTTP/1.0 with extra request headers: (status, content-type, body).
pub fn http_get_with(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect to pathwatch");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{extra}\r\n").expect("send request");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read response");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let ctype = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    (status, ctype, body.to_string())
}

/// Every sample of `name` in an exposition (exact name match).
pub fn samples(text: &str, name: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (n, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if n != name {
            continue;
        }
        let mut map = BTreeMap::new();
        for pair in split_labels(labels) {
            if let Some((k, v)) = pair.split_once('=') {
                map.insert(k.to_string(), v.trim_matches('"').to_string());
            }
        }
        if let Ok(v) = value.parse() {
            out.push(Sample {
                labels: map,
                value: v,
            });
        }
    }
    out
}

fn split_labels(s: &str) -> Vec<&str> {
    // Label values here never hold commas or quotes (names are validated), so a split works.
    s.split(',').filter(|p| !p.is_empty()).collect()
}

/// The value of the first sample of `name` carrying all of `labels`.
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(text, name)
        .into_iter()
        .find(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

/// The phases a probe's last run reached, sorted (absent phases have no series).
pub fn phases(text: &str, probe: &str) -> Vec<String> {
    let mut p: Vec<String> = samples(text, "pathwatch_probe_phase_duration_seconds")
        .into_iter()
        .filter(|s| s.labels.get("probe").map(String::as_str) == Some(probe))
        .filter_map(|s| s.labels.get("phase").cloned())
        .collect();
    p.sort();
    p
}

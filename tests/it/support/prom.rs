//! Real Prometheus and Alertmanager (Debian's packages) on free loopback ports, with temp
//! storage, stopped on drop.

use super::exporter::http_get;
use super::hang::closed_port;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_ready(addr: SocketAddr, path: &str, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if std::net::TcpStream::connect(addr).is_ok() && http_get(addr, path).0 == 200 {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited: {status}");
        }
        assert!(Instant::now() < deadline, "{what} not ready on {addr}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Alertmanager sending every notification (and resolution) to `webhook`.
pub fn alertmanager(webhook: &str) -> Server {
    let config = format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: \"{webhook}\"\n        send_resolved: true\n"
    );
    alertmanager_with(&config)
}

/// Alertmanager on this configuration text.
pub fn alertmanager_with(config: &str) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("am.yml"), config).expect("write alertmanager config");
    let addr: SocketAddr = format!("127.0.0.1:{}", closed_port())
        .parse()
        .expect("addr");
    let mut child = Command::new("prometheus-alertmanager")
        .arg(format!(
            "--config.file={}",
            dir.path().join("am.yml").display()
        ))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus-alertmanager must be installed (Debian package; .ci/test installs it)");
    wait_ready(addr, "/-/ready", "alertmanager", &mut child);
    Server { child, addr, dir }
}

/// Prometheus scraping `target` every second as job "pathwatch", evaluating `rules` every
/// second and alerting to `alertmanager`.
pub fn prometheus(
    target: SocketAddr,
    rules: &[std::path::PathBuf],
    alertmanager: SocketAddr,
) -> Server {
    prometheus_scraping(&[target], rules, alertmanager)
}

/// Prometheus scraping every one of `targets` as job "pathwatch" (see [`prometheus`]).
pub fn prometheus_scraping(
    targets: &[SocketAddr],
    rules: &[std::path::PathBuf],
    alertmanager: SocketAddr,
) -> Server {
    prometheus_with(&prometheus_config(targets, rules, alertmanager))
}

/// Prometheus on this configuration text (see [`prometheus_config`] for the usual one).
pub fn prometheus_with(config: &str) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("prometheus.yml"), config).expect("write prometheus config");
    let addr: SocketAddr = format!("127.0.0.1:{}", closed_port())
        .parse()
        .expect("addr");
    let mut child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus must be installed (Debian package prometheus)");
    wait_ready(addr, "/-/ready", "prometheus", &mut child);
    Server { child, addr, dir }
}

/// The configuration text of [`prometheus_scraping`].
pub fn prometheus_config(
    targets: &[SocketAddr],
    rules: &[std::path::PathBuf],
    alertmanager: SocketAddr,
) -> String {
    let target = targets
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let rule_files: String = rules
        .iter()
        .map(|r| {
            format!(
                "  - {}\n",
                std::fs::canonicalize(r).expect("rule file").display()
            )
        })
        .collect();
    format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n{rule_files}alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [\"{alertmanager}\"]\nscrape_configs:\n  - job_name: pathwatch\n    static_configs:\n      - targets: [{target}]\n"
    )
}

impl Server {
    /// Prometheus only: replaces its configuration and reloads it (SIGHUP).
    pub fn reload_prometheus(&self, config: &str) {
        std::fs::write(self.dir.path().join("prometheus.yml"), config)
            .expect("write prometheus config");
        let ok = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -HUP prometheus");
    }
}

/// Percent-encodes a PromQL expression for a query string.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// An instant query; the `result` array.
pub fn query(prom: SocketAddr, expr: &str) -> Vec<serde_json::Value> {
    let (status, _, body) = http_get(prom, &format!("/api/v1/query?query={}", encode(expr)));
    assert_eq!(status, 200, "{expr}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("query JSON");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// Alerts Prometheus holds now: (name, state).
pub fn alerts(prom: SocketAddr) -> Vec<(String, String)> {
    let (_, _, body) = http_get(prom, "/api/v1/alerts");
    let v: serde_json::Value = serde_json::from_str(&body).expect("alerts JSON");
    v["data"]["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap_or("").to_string(),
                a["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

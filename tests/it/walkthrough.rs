//! The paging walkthrough runs as written: alerts/walkthrough.sh, unchanged, starts the demo,
//! Prometheus with the rules from alerts/install.py and Alertmanager with the shipped
//! alerts/alertmanager.yml; the page for incident 1278 reaches the demo's own receiver (its
//! output says so), Alertmanager logs no error or warning, and Ctrl-C (here SIGTERM) leaves no
//! process behind.
//!
//! The script uses fixed ports (9778, 9095, 9090, 9093), so it runs in a network namespace of
//! its own (`unshare --net`, as root or in an unprivileged user namespace): other tests' demos
//! cannot take them. The demo runs at `--speed 6` (probes every second) and the rules at
//! `--scale 30`; Alertmanager keeps the shipped timings, as a user's would.

use crate::support::exporter::BIN;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The page, as the demo's receiver prints it.
const PAGE: &str = "webhook /pager: firing PathwatchIncidentPresent{incident=\"1278\", probe=";
/// The act the page is about.
const OUTAGE: &str = "demo: outage: ";

/// A process (the script: `unshare` execs into it; or a demo) that gets SIGTERM and a bounded
/// wait on drop, so a failed assertion still runs the script's own cleanup.
struct Running(Child);

impl Running {
    fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
        None
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            self.terminate(Duration::from_secs(20));
        }
    }
}

/// Processes whose working directory is `dir` (the script starts Prometheus and
/// Alertmanager there).
fn processes_in(dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| std::fs::read_link(e.path().join("cwd")).is_ok_and(|cwd| cwd == dir))
        .map(|e| {
            std::fs::read_to_string(e.path().join("cmdline"))
                .unwrap_or_default()
                .replace('\0', " ")
        })
        .collect()
}

#[test]
fn the_walkthrough_script_pages_the_demos_receiver_and_alertmanager_logs_no_error() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let work = dir.path().canonicalize().expect("temp dir path");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let mut cmd = Command::new("unshare");
    if !root {
        cmd.arg("--map-root-user");
    }
    cmd.args([
        "--net",
        "--",
        "sh",
        "-c",
        "ip link set lo up && exec bash alerts/walkthrough.sh",
    ])
    .env("PATHWATCH", BIN)
    .env("SPEED", "6")
    .env("WALKTHROUGH_DIR", &work)
    .env_remove("SCALE")
    .env_remove("PATHWATCH_LISTEN")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .expect("run unshare (util-linux): the walkthrough needs a network namespace");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let mut script = Running(child);
    let (tx, rx) = mpsc::channel::<(Instant, String)>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    // The page, within the outage's first loop: healthy 10 s, outage 7.5 s, then the
    // detection and Alertmanager's group_wait.
    let mut lines: Vec<(Instant, String)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let page = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((at, line)) => {
                let is_page = line.starts_with(PAGE);
                lines.push((at, line));
                if is_page {
                    break Some(at);
                }
            }
            Err(_) => break None,
        }
    };
    let outage = lines
        .iter()
        .find(|(_, l)| l.starts_with(OUTAGE))
        .map(|(at, _)| *at);
    let status = script.terminate(Duration::from_secs(30));
    lines.extend(rx.try_iter());
    let text: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    let text = text.join("\n");
    let stderr = errors.join().unwrap_or_default();
    let (Some(page), Some(outage)) = (page, outage) else {
        panic!("no page for incident 1278 at the demo's receiver:\n{text}\nstderr:\n{stderr}");
    };
    let delay = page.duration_since(outage);
    eprintln!(
        "walkthrough: the page reached the demo's receiver {:.1} s into the outage (speed 6, scale 30)",
        delay.as_secs_f64()
    );
    // Detection at 1/30 of the shipped timings, plus the shipped group_wait of 5 s.
    assert!(delay < Duration::from_secs(20), "{delay:?}\n{text}");

    // Stopped by its trap: everything it started is gone, Alertmanager said nothing wrong.
    assert!(
        status.is_some(),
        "the script did not stop on SIGTERM:\n{text}"
    );
    assert!(
        text.contains("walkthrough: Alertmanager logged no error")
            && text.contains("walkthrough: stopped"),
        "{text}\nstderr:\n{stderr}"
    );
    let left = processes_in(&work);
    assert!(left.is_empty(), "left running: {left:#?}");
    let am_log = std::fs::read_to_string(work.join("alertmanager.log")).expect("alertmanager.log");
    assert!(am_log.contains("level=info"), "{am_log}");
    let bad: Vec<&str> = am_log
        .lines()
        .filter(|l| l.contains("level=error") || l.contains("level=warn"))
        .collect();
    assert!(bad.is_empty(), "Alertmanager logged:\n{}", bad.join("\n"));
    // The demo delivered every line it was sent: no receiver refused a payload.
    assert!(!text.contains(": refused: "), "{text}");
    eprintln!("walkthrough test took {:.1?}", started.elapsed());
}

/// The receiver's port taken: the demo says so on its output and goes on (it serves more than
/// the walkthrough); `pathwatch sim --webhook-listen`, where the receiver was asked for by
/// name, fails with the address instead.
#[test]
fn a_taken_webhook_port_is_said_by_the_demo_and_fails_sim() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let mut child = Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0", "--webhook-listen", &addr])
        .args(["--speed", "30"])
        .env_remove("PATHWATCH_LISTEN")
        .env("DATABASE_URL", "")
        .env("PGHOST", "")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pathwatch demo");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut demo = Running(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    // Two acts at speed 30: the scenario goes on after the warning.
    while seen
        .iter()
        .filter(|l: &&String| l.starts_with("demo: "))
        .count()
        < 8
    {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    demo.terminate(Duration::from_secs(20));
    let text = seen.join("\n");
    assert!(
        text.contains(&format!(
            "demo: cannot listen on {addr} for Alertmanager's webhooks ("
        )) && text.contains("--webhook-listen off none"),
        "{text}"
    );
    assert!(text.contains("demo: outage: "), "{text}");
    assert!(!text.contains("print here, one line per alert"), "{text}");

    let out = Command::new(BIN)
        .args(["sim", "--listen", "127.0.0.1:0", "--webhook-listen", &addr])
        .stdin(Stdio::null())
        .output()
        .expect("run pathwatch sim");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot listen on {addr} for Alertmanager's webhooks"
        )),
        "{stderr}"
    );
}

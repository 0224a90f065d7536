//! Paging, proven through the real tools: the real pathwatch binary probes real failures
//! (throwaway Postgres clusters refused, hung with SIGSTOP, with a wrong password, slow; the
//! reference service's outage, degraded stream, restart, crosstalk, cloud states and log
//! lines; a pathwatch restart while healthy), a real Prometheus evaluates the shipped rules
//! (a copy from `alerts/install.py --scale 30`: every `for:`, range and evaluation interval
//! divided by 30, the expressions untouched) and a real Alertmanager routes with the shipped
//! alerts/alertmanager.yml (timings divided by 30, webhooks pointed at a local receiver).
//!
//! For every alert in alerts/: it fires for its scenario, resolves when the fault is gone, and
//! stays silent for the healthy controls; pages reach the webhook once per status change and
//! none at start-up; symptom alerts are held back while their incident fires. The measured
//! time-to-page and time-to-resolve of each scenario are printed (at 1/30 of the shipped
//! timings, probes every 1 s instead of 30 s).
//!
//! `amtool check-config` accepts alerts/alertmanager.yml, and every series the promtool unit
//! tests feed exists in what the real exporter emits.

use crate::support::exporter::{Exporter, http_get, samples};
use crate::support::pg::{PgCluster, PgOptions};
use crate::support::prom::{self, encode};
use crate::support::receiver::Receiver;
use crate::support::sim::{PASSWORD, Sim};
use pathwatch::sim::{Faults, gcp};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The shipped timings divided by this; the probes run every 1 s instead of 30 s.
pub const SCALE: u32 = 30;
/// How long most faults last.
const FAULT: Duration = Duration::from_secs(50);
/// The Postgres freeze that makes a connect slow (but not time out): the faults start right
/// after a run of pg-slow (every 20 s), so its next run hangs 11 s and the 11 s it reports
/// stays the last result for 9 s (a run longer than the interval would be followed at once).
const SLOW_FREEZE: Duration = Duration::from_secs(31);
/// A restart of the reference service that takes this long: over the 30 s criterion.
const SLOW_START_MS: u64 = 32_000;

/// A pause before each agent event that makes a golden path take over its 60 s bound.
const SLOW_EVENT_MS: u64 = 12_500;

/// Alerts no scenario here provokes: ProbeStale and SchedulerLagging need a stalled or
/// overloaded scheduler (runs that do not finish, or start late, while /metrics answers),
/// which a test cannot cause without starving the machine. promtool unit tests cover them.
const NOT_PROVOKED: &[&str] = &["PathwatchProbeStale", "PathwatchSchedulerLagging"];

/// How an alert of a scenario must reach people.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Via {
    /// A firing and a resolved notification at the webhook.
    Page,
    /// Held back (suppressed) at Alertmanager while its incident's alert fires, or while
    /// its probe's failure follows from a root cause.
    Inhibited,
    /// Fires at Alertmanager and reaches nobody (an inhibitor such as
    /// PathwatchFailureFollowsFromRootCause), held back from the view while an incident of
    /// its pathwatch fires.
    Quiet,
}

struct Expect {
    scenario: &'static str,
    alert: &'static str,
    label: (&'static str, String),
    via: Via,
    /// When the fault began and ended (filled in as the test runs).
    start: Instant,
    end: Instant,
}

/// What the poller saw of one alert (by its full label set).
#[derive(Clone, Debug, Default)]
struct Seen {
    labels: BTreeMap<String, String>,
    first_firing: Option<Instant>,
    last_active: Option<Instant>,
    suppressed: bool,
}

type Observed = Arc<Mutex<HashMap<String, Seen>>>;

fn labels_of(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect()
}

fn key(labels: &BTreeMap<String, String>) -> String {
    format!("{labels:?}")
}

/// Polls the alerts (pending and firing) of every Prometheus in `proms` and Alertmanager's
/// (active, suppressed) every 200 ms until `stop`.
fn poll(proms: &Mutex<Vec<SocketAddr>>, am: SocketAddr, seen: &Observed, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        // Both may be gone when a failed test unwinds: then nothing is read.
        let get = |addr, path| {
            std::net::TcpStream::connect(addr)
                .is_ok()
                .then(|| http_get(addr, path).2)
                .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
                .unwrap_or_default()
        };
        let addrs = proms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let v: Vec<serde_json::Value> = addrs
            .into_iter()
            .map(|p| get(p, "/api/v1/alerts"))
            .collect();
        let am_v = get(am, "/api/v2/alerts");
        {
            let mut seen = seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for a in v
                .iter()
                .flat_map(|v| v["data"]["alerts"].as_array().into_iter().flatten())
            {
                let labels = labels_of(&a["labels"]);
                let s = seen.entry(key(&labels)).or_default();
                s.labels = labels;
                s.last_active = Some(now);
                if a["state"] == "firing" && s.first_firing.is_none() {
                    s.first_firing = Some(now);
                }
            }
            for a in am_v.as_array().into_iter().flatten() {
                let labels = labels_of(&a["labels"]);
                if a["status"]["state"] == "suppressed"
                    && let Some(s) = seen.get_mut(&key(&labels))
                {
                    s.suppressed = true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One alert in one webhook notification: when, the notification's status, its labels.
#[derive(Clone, Debug)]
pub struct Notified {
    pub at: Instant,
    /// The alert's status, and its notification's (firing while any alert of it fires).
    pub status: String,
    pub group_status: String,
    pub group_key: String,
    pub path: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

pub fn notifications(hook: &Receiver) -> Vec<Notified> {
    let mut out = Vec::new();
    for r in hook.received() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&r.body) else {
            continue;
        };
        for a in v["alerts"].as_array().into_iter().flatten() {
            out.push(Notified {
                at: r.at,
                status: a["status"].as_str().unwrap_or("").to_string(),
                group_status: v["status"].as_str().unwrap_or("").to_string(),
                group_key: v["groupKey"].as_str().unwrap_or("").to_string(),
                path: r.path.clone(),
                labels: labels_of(&a["labels"]),
                annotations: labels_of(&a["annotations"]),
            });
        }
    }
    out
}

fn matches(labels: &BTreeMap<String, String>, alert: &str, (k, v): &(&str, String)) -> bool {
    labels.get("alertname").map(String::as_str) == Some(alert)
        && labels.get(*k).map(String::as_str) == Some(v.as_str())
}

/// The webhook notifications (status, alert) whose payload names this alert.
fn first_notified(all: &[Notified], e: &Expect, status: &str, after: Instant) -> Option<Instant> {
    all.iter()
        .filter(|n| n.status == status && n.at >= after && matches(&n.labels, e.alert, &e.label))
        .map(|n| n.at)
        .min()
}

/// The shipped Alertmanager config with its timings divided by [`SCALE`] and its webhooks
/// pointed at `port` (same paths).
pub fn scaled_alertmanager_config(port: u16) -> String {
    let text = std::fs::read_to_string("alerts/alertmanager.yml").expect("alerts/alertmanager.yml");
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let scaled = ["group_wait: ", "group_interval: ", "repeat_interval: "]
            .iter()
            .find_map(|k| trimmed.strip_prefix(k).map(|v| (k, v)));
        match scaled {
            Some((k, v)) => {
                let ms = duration_ms(v) / u64::from(SCALE);
                let indent = &line[..line.len() - trimmed.len()];
                out.push_str(&format!("{indent}{k}{}ms\n", ms.max(1)));
            }
            None => {
                out.push_str(&line.replace(
                    "http://127.0.0.1:9095/",
                    &format!("http://127.0.0.1:{port}/"),
                ));
                out.push('\n');
            }
        }
    }
    out
}

/// `5s`, `30s`, `4h`, `1m` in milliseconds (the units alerts/alertmanager.yml uses).
fn duration_ms(v: &str) -> u64 {
    let v = v.trim();
    let (num, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let n: u64 = num.parse().unwrap_or_else(|_| panic!("duration {v:?}"));
    n * match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => panic!("unit of {v:?}"),
    }
}

fn alert_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for f in crate::rules::rule_files() {
        let text = std::fs::read_to_string(&f).expect("rules");
        let doc: serde_json::Value = serde_saphyr::from_str(&text).expect("YAML");
        for g in doc["groups"].as_array().expect("groups") {
            for r in g["rules"].as_array().expect("rules") {
                if let Some(a) = r["alert"].as_str() {
                    names.insert(a.to_string());
                }
            }
        }
    }
    names
}

#[test]
fn amtool_accepts_the_shipped_alertmanager_config() {
    let out = Command::new("amtool")
        .args(["check-config", "alerts/alertmanager.yml"])
        .output()
        .expect("amtool must be installed (Debian package prometheus-alertmanager)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("SUCCESS"), "{text}");
    // A broken config fails the same check (it is not a check that passes anything).
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "route:\n  receiver: nowhere\nreceivers: []\n").expect("write");
    let out = Command::new("amtool")
        .arg("check-config")
        .arg(&bad)
        .output()
        .expect("amtool");
    assert!(!out.status.success());
}

/// Series names and label names (without job and instance) of every promtool test input.
fn test_input_series() -> BTreeSet<(String, BTreeSet<String>)> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir("alerts/tests").expect("alerts/tests") {
        let text = std::fs::read_to_string(e.expect("entry").path()).expect("read");
        let doc: serde_json::Value = serde_saphyr::from_str(&text).expect("YAML");
        for t in doc["tests"].as_array().expect("tests") {
            for s in t["input_series"].as_array().into_iter().flatten() {
                let series = s["series"].as_str().expect("series");
                let (name, rest) = series.split_once('{').unwrap_or((series, "}"));
                let labels = rest
                    .trim_end_matches('}')
                    .split(',')
                    .filter_map(|p| p.split_once('='))
                    .map(|(k, _)| k.trim().to_string())
                    .filter(|k| k != "job" && k != "instance")
                    .collect();
                out.insert((name.to_string(), labels));
            }
        }
    }
    out
}

fn pg_probe(name: &str, pg: &PgCluster, env: &str, extra: &str) -> String {
    format!(
        "  - {{ name: {name}, kind: postgres, host: 127.0.0.1, port: {}, password: \"${{{env}}}\", sslmode: disable{extra} }}\n",
        pg.port()
    )
}

fn golden(name: &str, sim: &Sim, extra: &str) -> String {
    format!(
        "  - name: {name}\n    kind: golden_path\n    login: {{ url: {}, email: e2e@example.com, password: \"${{SIM_PASSWORD}}\" }}\n    websocket: {{ url: {} }}\n{extra}",
        sim.http("/auth/login"),
        sim.ws()
    )
}

fn startup(name: &str, sim: &Sim) -> String {
    format!(
        "  - name: {name}\n    kind: startup\n    poll_interval: 200ms\n    deadline: 120s\n    check: {{ url: \"{}\" }}\n",
        sim.http("/health")
    )
}

fn wait(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn query_one(prom: SocketAddr, expr: &str) -> usize {
    let (status, _, body) = http_get(prom, &format!("/api/v1/query?query={}", encode(expr)));
    assert_eq!(status, 200, "{expr}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    v["data"]["result"].as_array().map_or(0, Vec::len)
}

#[test]
fn every_alert_pages_and_resolves_through_prometheus_and_alertmanager() {
    let t0 = Instant::now();
    // Failures: refused (pg1), hung (pg2), wrong password and the healthy control (pg3),
    // slow (pg4).
    let mut pg1 = PgCluster::start(PgOptions::default());
    let pg2 = PgCluster::start(PgOptions::default());
    let pg3 = PgCluster::start(PgOptions::default());
    let pg4 = PgCluster::start(PgOptions::default());
    // Capacity: 7 slots usable by ordinary roles, filled to 6 by real sessions at t1.
    let pg5 = PgCluster::start(PgOptions {
        max_connections: Some(10),
        ..PgOptions::default()
    });
    let prober_password = "prober-secret-1";
    pg3.exec(&format!(
        "CREATE ROLE prober LOGIN PASSWORD '{prober_password}'"
    ));
    let outage = Sim::start(Faults::default());
    let degraded = Sim::start(Faults::default());
    let restarting = Sim::start(Faults::default());
    let healthy = Sim::start(Faults::default());
    let crosstalk = Sim::start(Faults::default());
    let cloud = Sim::start(Faults::default());
    let slow = Sim::start(Faults::default());
    // Root cause: a connector in ERROR under a database health check that depends on it.
    let rooted = Sim::start(Faults::default());
    // A TLS server whose certificate is renewed (825 days) or about to end (3 days).
    let cert = crate::support::tls_target::start();
    // A gRPC service (Python grpcio's health servicer) that reports NOT_SERVING from t1 to t2.
    let mut grpc = crate::grpc::HealthServer::start(&[]);
    let logdir = tempfile::tempdir().expect("temp dir");
    let log = logdir.path().join("backend.log");
    std::fs::write(&log, "").expect("log file");

    let mut a_yaml = String::from("defaults: { interval: 1s, timeout: 2s }\nprobes:\n");
    a_yaml += &pg_probe("pg-refused", &pg1, "PG1", "");
    a_yaml += &format!(
        "  - {{ name: tcp-refused, kind: tcp, host: 127.0.0.1, port: {} }}\n",
        pg1.port()
    );
    a_yaml += &pg_probe("pg-hung", &pg2, "PG2", ", timeout: 3s");
    a_yaml += &format!(
        "  - {{ name: pg-auth, kind: postgres, host: 127.0.0.1, port: {}, user: prober, dbname: postgres, password: \"${{PROBER}}\", sslmode: disable }}\n",
        pg3.port()
    );
    a_yaml += &pg_probe("pg-ok", &pg3, "PG3", "");
    a_yaml += &pg_probe("pg-slow", &pg4, "PG4", ", interval: 20s, timeout: 25s");
    a_yaml += &pg_probe("pg-full", &pg5, "PG5", ", connections: true");
    a_yaml += &format!(
        "  - {{ name: outage-db-health, kind: http, url: \"{}\" }}\n",
        outage.http("/api/health/database")
    );
    a_yaml += &format!(
        "  - {{ name: grpc-not-serving, kind: grpc, host: 127.0.0.1, port: {} }}\n",
        grpc.plain
    );
    a_yaml += &golden("outage-golden", &outage, "");
    a_yaml += &golden("degraded-golden", &degraded, "");
    a_yaml += &startup("restart-startup", &restarting);
    a_yaml += &golden("crosstalk-golden", &crosstalk, "    sessions: 2\n");
    a_yaml += &golden("slow-golden", &slow, "    timeout: 90s\n");
    a_yaml += &format!(
        "  - {{ name: gcp-connector, kind: gcp_vpc_connector, project: {}, region: {}, connector: {}, api_base: \"{}\" }}\n",
        gcp::PROJECT,
        gcp::REGION,
        gcp::CONNECTOR,
        cloud.http("")
    );
    a_yaml += &format!(
        "  - {{ name: gcp-service, kind: gcp_cloud_run, project: {}, region: {}, service: {}, api_base: \"{}\", expect: {{ egress: ALL_TRAFFIC }} }}\n",
        gcp::PROJECT,
        gcp::REGION,
        gcp::SERVICE,
        cloud.http("")
    );
    a_yaml += &format!(
        "  - name: backend-logs\n    kind: logs\n    patterns:\n      db_socket_failed: 'socket connection to /cloudsql/.*/\\.s\\.PGSQL\\.5432 failed'\n      ws_failed: 'Cannot establish WebSocket connection'\n      container_exit: 'Container called exit\\(([0-9]+)\\)'\n    file: {{ path: \"{}\" }}\n",
        log.display()
    );
    a_yaml += &format!(
        "  - {{ name: rooted-connector, kind: gcp_vpc_connector, project: {}, region: {}, connector: {}, api_base: \"{}\", credentials: {{ metadata_host: \"{}\" }} }}\n  - {{ name: rooted-db-health, kind: http, url: \"{}\", depends_on: [rooted-connector] }}\n",
        gcp::PROJECT,
        gcp::REGION,
        gcp::CONNECTOR,
        rooted.http(""),
        rooted.addr,
        rooted.http("/api/health/database"),
    );
    a_yaml += &format!(
        "  - {{ name: cert-expiring, kind: tls_cert, host: 127.0.0.1, port: {}, insecure_skip_verify: true }}\n",
        cert.addr.port()
    );
    a_yaml += &format!(
        "  - {{ name: ok-health, kind: http, url: \"{}\" }}\n",
        healthy.http("/api/health/database")
    );
    a_yaml += &golden("ok-golden", &healthy, "");
    a_yaml += &startup("ok-startup", &healthy);
    a_yaml += "incidents:
  - id: db-refused
    title: The database refuses connections
    criteria:
      - { name: database_connect, probe: pg-refused, max_seconds: 10 }
  - id: outage
    title: Users cannot get an answer
    criteria:
      - { name: backend_database, probe: outage-db-health, success: true }
      - { name: golden_path, probe: outage-golden, max_seconds: 60 }
      - { name: websocket_events, probe: outage-golden, all_events: true }
  - id: healthy
    title: Everything works
    criteria:
      - { name: database_connect, probe: pg-ok, max_seconds: 10 }
      - { name: backend_database, probe: ok-health, success: true }
      - { name: golden_path, probe: ok-golden, max_seconds: 60 }
";
    let env_a = [
        ("PG1", pg1.password().to_string()),
        ("PG2", pg2.password().to_string()),
        ("PG3", pg3.password().to_string()),
        ("PG4", pg4.password().to_string()),
        ("PG5", pg5.password().to_string()),
        ("PROBER", prober_password.to_string()),
        ("SIM_PASSWORD", PASSWORD.to_string()),
        ("GCE_METADATA_HOST", cloud.addr.to_string()),
    ];
    let env_a: Vec<(&str, &str)> = env_a.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = Exporter::start_with_env(&a_yaml, &env_a);

    // Replica a2: the same database and incident as a, scraped side by side.
    let a2 = Exporter::start_with_env(
        &format!(
            "defaults: {{ interval: 1s, timeout: 2s }}\nprobes:\n{}incidents:\n  - id: db-refused\n    title: The database refuses connections\n    criteria:\n      - {{ name: database_connect, probe: pg-refused, max_seconds: 10 }}\n",
            pg_probe("pg-refused", &pg1, "PG1", "")
        ),
        &env_a,
    );

    // Replica B: healthy probes, and a probe of the database that will hang while B restarts.
    let b_probes = format!(
        "defaults: {{ interval: 1s, timeout: 2s }}\nprobes:\n{}{}  - {{ name: b-health, kind: http, url: \"{}\" }}\n",
        pg_probe("b-pg-ok", &pg3, "PG3", ""),
        pg_probe("b-pg-hang", &pg2, "PG2", ", timeout: 60s"),
        healthy.http("/health")
    );
    let b_incidents = "incidents:
  - id: healthy-b
    title: Healthy across a restart
    criteria:
      - { name: database_connect, probe: b-pg-ok, max_seconds: 10 }
      - { name: backend_up, probe: b-health, success: true }
  - id: hang-b
    title: Judged by a probe that hangs across the restart
    criteria:
      - { name: database_up, probe: b-pg-hang, success: true }
";
    let b_yaml = format!("{b_probes}{b_incidents}");
    let b_dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(b_dir.path().join("pathwatch.yaml"), &b_yaml).expect("write B's config");
    let b_listen = format!("127.0.0.1:{}", crate::support::hang::closed_port());
    let env_b = [("PG2", pg2.password()), ("PG3", pg3.password())];
    let b = Exporter::serve_at(b_dir, &env_b, &b_listen);
    let b_instance = b.addr.to_string();

    // Replica c: one healthy probe, the target a Prometheus that lost pathwatch gets back.
    let c = Exporter::start(&format!(
        "probes:\n  - {{ name: c-health, kind: http, url: \"{}\", interval: 1s }}\n",
        healthy.http("/health")
    ));

    let hook = Receiver::start();
    let am = prom::alertmanager_with(&scaled_alertmanager_config(hook.port));
    let rules_dir = tempfile::tempdir().expect("temp dir");
    let rules = rules_dir.path().join("pathwatch.rules.yml");
    let status = Command::new("python3")
        .arg("alerts/install.py")
        .arg(&rules)
        .args(["--scale", &SCALE.to_string()])
        .status()
        .expect("python3");
    assert!(status.success(), "alerts/install.py");
    let shipped = std::fs::read_to_string("alerts/pathwatch.rules.yml").expect("rules");
    let scaled = std::fs::read_to_string(&rules).expect("scaled rules");
    assert_eq!(
        expressions(&shipped),
        expressions(&scaled),
        "the scaled copy keeps every expression (only range durations differ)"
    );
    assert_ne!(shipped, scaled);
    let prom = prom::prometheus_scraping(
        &[a.addr, a2.addr, b.addr],
        std::slice::from_ref(&rules),
        am.addr,
    );
    let p = prom.addr;
    let seen: Observed = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let proms = Arc::new(Mutex::new(vec![p]));
    let poller = {
        let (seen, stop, am, proms) = (seen.clone(), stop.clone(), am.addr, proms.clone());
        std::thread::spawn(move || poll(&proms, am, &seen, &stop))
    };

    // Healthy start: every incident resolves, nothing is sent.
    wait("every incident resolved", Duration::from_secs(60), || {
        query_one(p, "pathwatch_incident_status == 0") == 6
    });
    std::thread::sleep(Duration::from_secs(5));
    let at_start = notifications(&hook);
    // (Also nothing in the notifications of the quiet probes later: see below.)
    assert!(
        at_start.is_empty(),
        "notifications at start-up: {at_start:?}"
    );
    let healthy_until = Instant::now();
    eprintln!("paging: healthy after {:.1?}", t0.elapsed());
    let last_slow_run = || {
        crate::support::exporter::value(
            &a.metrics(),
            "pathwatch_probe_last_run_timestamp_seconds",
            &[("probe", "pg-slow")],
        )
    };
    let before = last_slow_run();
    wait("a run of pg-slow", Duration::from_secs(25), || {
        last_slow_run() != before
    });

    // Faults, all at once.
    let t1 = Instant::now();
    pg1.stop();
    grpc.command("not_serving");
    pg2.freeze();
    pg4.freeze();
    pg3.exec("ALTER ROLE prober PASSWORD 'not-the-configured-one'");
    let full = pg5.hold_sessions(5);
    cert.renew(3);
    outage.state.set_faults(Faults {
        db_down: true,
        ..Faults::default()
    });
    degraded.state.set_faults(Faults {
        drop_event: Some("agent_completed".into()),
        ..Faults::default()
    });
    restarting.state.set_faults(Faults {
        startup_delay_ms: SLOW_START_MS,
        ..Faults::default()
    });
    restarting.state.restart();
    crosstalk.state.set_faults(Faults {
        crosstalk: true,
        ..Faults::default()
    });
    slow.state.set_faults(Faults {
        slow_events_ms: SLOW_EVENT_MS,
        ..Faults::default()
    });
    // A Prometheus whose scrape config lost pathwatch (the same rules, the same Alertmanager).
    let lost = prom::prometheus_scraping(&[], std::slice::from_ref(&rules), am.addr);
    proms
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(lost.addr);
    cloud.state.set_faults(Faults {
        connector_state: Some("ERROR".into()),
        cloud_run_egress: Some("PRIVATE_RANGES_ONLY".into()),
        ..Faults::default()
    });
    rooted.state.set_faults(Faults {
        connector_state: Some("ERROR".into()),
        db_down: true,
        ..Faults::default()
    });
    std::fs::write(
        &log,
        "ERROR socket connection to /cloudsql/p:r:i/.s.PGSQL.5432 failed: timeout expired\nERROR Cannot establish WebSocket connection\nWARNING Container called exit(3).\n",
    )
    .expect("append the log line");
    // B restarts while its targets are healthy (the hang only matters to b-pg-hang), with an
    // invalid entry in its config; it stays down long enough to be missed.
    let b_dir = b.stop_keep_dir();
    let b_down = Instant::now();
    std::fs::write(
        b_dir.path().join("pathwatch.yaml"),
        format!("{b_probes}  - {{ name: broken, kind: tcp, hots: 127.0.0.1 }}\n{b_incidents}"),
    )
    .expect("write B's config");
    wait("PathwatchDown firing", Duration::from_secs(30), || {
        query_one(
            p,
            "ALERTS{alertname=\"PathwatchDown\", alertstate=\"firing\"}",
        ) == 1
    });
    let b = Exporter::serve_at(b_dir, &env_b, &b_listen);
    let b_up = Instant::now();
    // a's real output, mid-fault, for the promtool inputs check below.
    let mut emitted = a.metrics();

    std::thread::sleep(SLOW_FREEZE.saturating_sub(t1.elapsed()));
    pg4.thaw();
    let slow_end = Instant::now();
    std::thread::sleep(FAULT.saturating_sub(t1.elapsed()));

    // Heal.
    let t2 = Instant::now();
    pg1.start_again();
    grpc.command("serving");
    pg2.thaw();
    pg3.exec(&format!("ALTER ROLE prober PASSWORD '{prober_password}'"));
    drop(full);
    cert.renew(825);
    for sim in [&outage, &degraded, &crosstalk, &cloud, &rooted] {
        sim.state.set_faults(Faults::default());
    }
    // A quick restart (seen from outside: 1 s of 503) measures a startup under 30 s.
    restarting.state.set_faults(Faults {
        startup_delay_ms: 1000,
        ..Faults::default()
    });
    restarting.state.restart();
    std::fs::write(b.config_path(), &b_yaml).expect("write B's config");
    b.signal("HUP");
    lost.reload_prometheus(&prom::prometheus_config(
        &[c.addr],
        std::slice::from_ref(&rules),
        am.addr,
    ));
    // The slow answer: its 62.5 s run reports after the other faults are gone. A run longer
    // than the interval is followed at once by the next, so the fault stays until the alert
    // has fired (the next run is slow too), then a restart of the service cuts that run.
    let slow_fired = || {
        seen.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .any(|s| {
                matches(
                    &s.labels,
                    "PathwatchGoldenPathSlow",
                    &("probe", "slow-golden".into()),
                ) && s.first_firing.is_some()
            })
    };
    let deadline = t1 + Duration::from_secs(90);
    while !slow_fired() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
    }
    slow.state.set_faults(Faults::default());
    slow.state.restart();
    let slow_healed = Instant::now();
    emitted.push_str(&a.metrics());
    emitted.push_str(&b.metrics());

    let restart_started = t1;
    let slow_started_done = t1 + Duration::from_millis(SLOW_START_MS);
    let a_label = |k: &'static str, v: &str| (k, v.to_string());
    let mut expects = vec![];
    let mut add = |scenario, alert, label, via, start, end| {
        expects.push(Expect {
            scenario,
            alert,
            label,
            via,
            start,
            end,
        });
    };
    use Via::*;
    // Root cause: the connector pages; the database check that depends on it stays quiet.
    add(
        "root cause",
        "PathwatchGcpResourceNotHealthy",
        a_label("probe", "rooted-connector"),
        Page,
        t1,
        t2,
    );
    add(
        "root cause",
        "PathwatchHealthEndpointFailing",
        a_label("probe", "rooted-db-health"),
        Inhibited,
        t1,
        t2,
    );
    add(
        "root cause",
        "PathwatchFailureFollowsFromRootCause",
        a_label("probe", "rooted-db-health"),
        Quiet,
        t1,
        t2,
    );
    add(
        "db refused",
        "PathwatchIncidentPresent",
        a_label("incident", "db-refused"),
        Page,
        t1,
        t2,
    );
    add(
        "db refused",
        "PathwatchDatabaseUnreachable",
        a_label("probe", "pg-refused"),
        Inhibited,
        t1,
        t2,
    );
    add(
        "db refused",
        "PathwatchTcpUnreachable",
        a_label("probe", "tcp-refused"),
        Page,
        t1,
        t2,
    );
    add(
        "grpc not serving",
        "PathwatchGrpcNotServing",
        a_label("probe", "grpc-not-serving"),
        Page,
        t1,
        t2,
    );
    add(
        "db hung",
        "PathwatchDatabaseConnectTimeout",
        a_label("probe", "pg-hung"),
        Page,
        t1,
        t2,
    );
    add(
        "db wrong password",
        "PathwatchDatabaseUnreachable",
        a_label("probe", "pg-auth"),
        Page,
        t1,
        t2,
    );
    add(
        "db full",
        "PathwatchDatabaseConnectionsSaturated",
        a_label("probe", "pg-full"),
        Page,
        t1,
        t2,
    );
    add(
        "db slow",
        "PathwatchDatabaseConnectSlow",
        a_label("probe", "pg-slow"),
        Page,
        t1,
        slow_end,
    );
    add(
        "service outage",
        "PathwatchIncidentPresent",
        a_label("incident", "outage"),
        Page,
        t1,
        t2,
    );
    add(
        "service outage",
        "PathwatchHealthEndpointFailing",
        a_label("probe", "outage-db-health"),
        Inhibited,
        t1,
        t2,
    );
    add(
        "service outage",
        "PathwatchGoldenPathFailing",
        a_label("probe", "outage-golden"),
        Inhibited,
        t1,
        t2,
    );
    add(
        "service outage",
        "PathwatchGoldenPathEventsMissing",
        a_label("probe", "outage-golden"),
        Inhibited,
        t1,
        t2,
    );
    add(
        "service degraded",
        "PathwatchGoldenPathEventsMissing",
        a_label("probe", "degraded-golden"),
        Page,
        t1,
        t2,
    );
    add(
        "service degraded",
        "PathwatchGoldenPathFailing",
        a_label("probe", "degraded-golden"),
        Page,
        t1,
        t2,
    );
    add(
        "service restart",
        "PathwatchStartupStuck",
        a_label("probe", "restart-startup"),
        Page,
        restart_started,
        slow_started_done,
    );
    add(
        "service restart",
        "PathwatchStartupSlow",
        a_label("probe", "restart-startup"),
        Page,
        restart_started,
        t2,
    );
    add(
        "crosstalk",
        "PathwatchGoldenPathCrosstalk",
        a_label("probe", "crosstalk-golden"),
        Page,
        t1,
        t2,
    );
    add(
        "cloud",
        "PathwatchGcpResourceNotHealthy",
        a_label("probe", "gcp-connector"),
        Page,
        t1,
        t2,
    );
    add(
        "cloud",
        "PathwatchConfigDrift",
        a_label("probe", "gcp-service"),
        Page,
        t1,
        t2,
    );
    add(
        "log lines",
        "PathwatchDatabaseSocketErrorsInLogs",
        a_label("probe", "backend-logs"),
        Page,
        t1,
        t1,
    );
    add(
        "certificate",
        "PathwatchTlsCertExpiringSoon",
        a_label("probe", "cert-expiring"),
        Page,
        t1,
        t2,
    );
    add(
        "log lines",
        "PathwatchContainerExited",
        a_label("pattern", "container_exit"),
        Page,
        t1,
        t1,
    );
    add(
        "log lines",
        "PathwatchWebSocketErrorsInLogs",
        a_label("pattern", "ws_failed"),
        Page,
        t1,
        t1,
    );
    add(
        "slow answer",
        "PathwatchGoldenPathSlow",
        a_label("probe", "slow-golden"),
        Page,
        t1,
        slow_healed,
    );
    add(
        "scrape config lost",
        "PathwatchAbsent",
        a_label("severity", "critical"),
        Page,
        t1,
        t2,
    );
    add(
        "pathwatch restart",
        "PathwatchDown",
        a_label("instance", &b_instance),
        Page,
        b_down,
        b_up,
    );
    add(
        "pathwatch restart",
        "PathwatchIncidentUnknown",
        a_label("incident", "hang-b"),
        Page,
        b_up,
        t2,
    );
    add(
        "pathwatch restart",
        "PathwatchConfigInvalid",
        a_label("instance", &b_instance),
        Page,
        b_up,
        t2,
    );

    // Wait for every resolution (the log lines and crosstalk age out of their 20 s windows).
    let resolved = |e: &Expect| {
        let all = notifications(&hook);
        let s = seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let active = s.values().any(|x| {
            matches(&x.labels, e.alert, &e.label)
                && x.last_active
                    .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        });
        !active && (e.via != Page || first_notified(&all, e, "resolved", e.end).is_some())
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline && !expects.iter().all(&resolved) {
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::SeqCst);
    poller.join().expect("poller");

    // Each alert fired for its scenario, resolved, and reached people as it should.
    let all = notifications(&hook);
    let seen = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let mut problems = Vec::new();
    let mut table = String::from(
        "\nscenario            alert                                  label                     page   resolve (s, at 1/30 timings)\n",
    );
    for e in &expects {
        let fired: Vec<&Seen> = seen
            .values()
            .filter(|s| matches(&s.labels, e.alert, &e.label))
            .collect();
        let first_firing = fired.iter().filter_map(|s| s.first_firing).min();
        if first_firing.is_none_or(|f| f < e.start) {
            problems.push(format!(
                "{} {}{:?}: did not fire after its fault",
                e.scenario, e.alert, e.label
            ));
        }
        if !resolved(e) {
            problems.push(format!(
                "{} {}{:?}: did not resolve",
                e.scenario, e.alert, e.label
            ));
        }
        let (page, resolve) = match e.via {
            Page => {
                let page = first_notified(&all, e, "firing", e.start);
                let resolve = first_notified(&all, e, "resolved", e.end);
                if page.is_none() {
                    problems.push(format!("{} {}: no page", e.scenario, e.alert));
                }
                if resolve.is_none() {
                    problems.push(format!("{} {}: no resolved notice", e.scenario, e.alert));
                }
                (
                    page.map(|t| t.duration_since(e.start).as_secs_f64()),
                    resolve.map(|t| t.duration_since(e.end).as_secs_f64()),
                )
            }
            Quiet => {
                if first_notified(&all, e, "firing", e.start).is_some() {
                    problems.push(format!("{} {}: reached a receiver", e.scenario, e.alert));
                }
                // Out of `amtool alert query`'s view while an incident of its pathwatch is
                // PRESENT (db-refused and outage are, on a), yet still holding back.
                if !fired.iter().any(|s| s.suppressed) {
                    problems.push(format!(
                        "{} {}{:?}: listed as active while its pathwatch's incidents fired",
                        e.scenario, e.alert, e.label
                    ));
                }
                let gone = fired.iter().filter_map(|s| s.last_active).max();
                (
                    first_firing.map(|t| t.duration_since(e.start).as_secs_f64()),
                    gone.map(|t| t.saturating_duration_since(e.end).as_secs_f64()),
                )
            }
            Inhibited => {
                if !fired.iter().any(|s| s.suppressed) {
                    problems.push(format!(
                        "{} {}{:?}: never held back while its incident fired",
                        e.scenario, e.alert, e.label
                    ));
                }
                let gone = fired.iter().filter_map(|s| s.last_active).max();
                (
                    first_firing.map(|t| t.duration_since(e.start).as_secs_f64()),
                    gone.map(|t| t.saturating_duration_since(e.end).as_secs_f64()),
                )
            }
        };
        let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.1}"));
        table.push_str(&format!(
            "{:<19} {:<38} {:<25} {:>5}  {:>5}{}\n",
            e.scenario,
            e.alert,
            format!("{}={}", e.label.0, e.label.1),
            f(page),
            f(resolve),
            match e.via {
                Inhibited => "  (held back; times at Prometheus)",
                Quiet => "  (an inhibitor, reaches nobody; times at Prometheus)",
                Page => "",
            }
        ));
    }
    eprintln!("{table}");

    // Alert on change: each incident page is one firing and one resolved notification.
    // Two replicas (a and a2) judge db-refused: one alert group, so one page.
    for incident in ["db-refused", "outage"] {
        let sent: Vec<&Notified> = all
            .iter()
            .filter(|n| {
                n.labels.get("alertname").map(String::as_str) == Some("PathwatchIncidentPresent")
                    && n.labels.get("incident").map(String::as_str) == Some(incident)
            })
            .collect();
        // A notification holds the incident's alerts of every judged probe and replica: one
        // entry per notification, its status, deduplicated while it stays the same.
        let mut statuses: Vec<(Instant, &str)> = sent
            .iter()
            .map(|n| (n.at, n.group_status.as_str()))
            .collect();
        statuses.dedup();
        let mut changes: Vec<&str> = statuses.iter().map(|(_, s)| *s).collect();
        changes.dedup();
        if changes != ["firing", "resolved"] {
            problems.push(format!("incident {incident}: notifications {statuses:?}"));
        }
        let keys: BTreeSet<&str> = sent.iter().map(|n| n.group_key.as_str()).collect();
        if keys.len() != 1 {
            problems.push(format!("incident {incident}: alert groups {keys:?}"));
        }
        if sent.iter().any(|n| n.path != "/pager") {
            problems.push(format!("incident {incident}: not routed to the pager"));
        }
    }
    // What the on-call person reads: the failing criterion by name with its value, absolute
    // links to the runbook section and the dashboard.
    match all.iter().find(|n| {
        n.status == "firing" && n.labels.get("incident").map(String::as_str) == Some("db-refused")
    }) {
        Some(n) => {
            let a = &n.annotations;
            eprintln!("paging: the db-refused page: {a:#?}");
            let get = |k: &str| a.get(k).map(String::as_str).unwrap_or("");
            if get("summary") != "Incident db-refused is PRESENT: database_connect failing"
                || !get("description").contains("database_connect = ")
                || !get("runbook_url").starts_with(
                    "https://github.com/pathwatch/pathwatch/blob/main/docs/src/runbook.md#pathwatchincidentpresent",
                )
                || get("dashboard_url")
                    != "http://localhost:3000/d/pathwatch-incidents?var-incident=db-refused"
            {
                problems.push(format!("db-refused page annotations: {a:?}"));
            }
        }
        None => problems.push("no db-refused page".into()),
    }
    let replicas: BTreeSet<&str> = all
        .iter()
        .filter(|n| n.labels.get("incident").map(String::as_str) == Some("db-refused"))
        .filter(|n| n.status == "firing")
        .filter_map(|n| n.labels.get("instance").map(String::as_str))
        .collect();
    if replicas.len() != 2 {
        problems.push(format!(
            "db-refused paged from replicas {replicas:?}, want a and a2"
        ));
    }

    // Silence: the healthy controls never fired anything (a `for:` may go pending, as
    // PathwatchIncidentUnknown does for the seconds after B's restart), and B's restart paged
    // no incident.
    let quiet_probes = [
        "c-health",
        "pg-ok",
        "ok-health",
        "ok-golden",
        "ok-startup",
        "b-pg-ok",
        "b-health",
    ];
    for s in seen.values() {
        let probe = s.labels.get("probe").map(String::as_str).unwrap_or("");
        let incident = s.labels.get("incident").map(String::as_str).unwrap_or("");
        let name = s.labels.get("alertname").map(String::as_str).unwrap_or("");
        let quiet = quiet_probes.contains(&probe)
            || incident == "healthy"
            || incident == "healthy-b"
            || (incident == "hang-b" && name == "PathwatchIncidentPresent");
        if quiet && (s.first_firing.is_some() || name == "PathwatchIncidentPresent") {
            problems.push(format!("healthy yet alerting: {:?}", s.labels));
        }
        if name == "PathwatchDatabaseUnreachable" && probe == "pg-hung" && s.first_firing.is_some()
        {
            problems.push("a hang raised PathwatchDatabaseUnreachable".into());
        }
        if s.first_firing.is_some_and(|f| f < healthy_until) {
            problems.push(format!("firing during the healthy start: {:?}", s.labels));
        }
    }

    for n in &all {
        let probe = n.labels.get("probe").map(String::as_str).unwrap_or("");
        let incident = n.labels.get("incident").map(String::as_str).unwrap_or("");
        if quiet_probes.contains(&probe) || incident == "healthy" || incident == "healthy-b" {
            problems.push(format!("healthy yet notified: {:?}", n.labels));
        }
    }

    // Every alert in alerts/ has a scenario here, or is named in NOT_PROVOKED.
    let covered: BTreeSet<String> = expects.iter().map(|e| e.alert.to_string()).collect();
    for name in alert_names() {
        if !covered.contains(&name) && !NOT_PROVOKED.contains(&name.as_str()) {
            problems.push(format!("{name}: no scenario"));
        }
    }

    // promtool's unit-test inputs are series the exporter really emits.
    let names: BTreeSet<&str> = emitted
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let mut real: BTreeSet<(String, BTreeSet<String>)> = BTreeSet::new();
    for name in names {
        for s in samples(&emitted, name) {
            real.insert((name.to_string(), s.labels.keys().cloned().collect()));
        }
    }
    for (name, labels) in test_input_series() {
        if name == "up" {
            continue; // Prometheus's own series
        }
        if !real.contains(&(name.clone(), labels.clone())) {
            problems.push(format!(
                "promtool input {name}{labels:?} is not a series pathwatch emits"
            ));
        }
    }

    let logs: String = [a.logs(), b.logs()]
        .concat()
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("Incident"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        problems.is_empty(),
        "{}\n{table}\nnotifications:\n{all:#?}\npathwatch's warnings:\n{logs}",
        problems.join("\n")
    );
    eprintln!("paging: whole test {:.1?}", t0.elapsed());
}

/// Every expression line of a rule file (`expr:` and the lines of block expressions), with
/// range durations blanked: `rate(x[5m])` and `rate(x[10s])` both read `rate(x[])`.
fn expressions(rules: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_block = false;
    for l in rules.lines() {
        let t = l.trim_start();
        if t.starts_with("expr:") {
            in_block = t.ends_with('|');
        } else if in_block && l.starts_with("            ") {
            // a line of a block expression
        } else {
            in_block = false;
            continue;
        }
        let mut blanked = String::new();
        let mut skipping = false;
        for c in l.chars() {
            match c {
                '[' => {
                    skipping = true;
                    blanked.push(c);
                }
                ']' => {
                    skipping = false;
                    blanked.push(c);
                }
                _ if skipping => {}
                _ => blanked.push(c),
            }
        }
        out.push(blanked);
    }
    out
}

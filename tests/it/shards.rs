//! Sharding proven with the real binary (issue 33): one config of 30,000 tcp probes and 20
//! incidents, run by three `pathwatch serve --shard i/3` on loopback, then by four, with a
//! real Prometheus scraping every shard under the shipped rules and a real Alertmanager.
//! Everything is judged from the series Prometheus stores, as a user would see it:
//!
//! - Every probe is run by exactly one shard: the probes with a run since the shards started
//!   (`pathwatch_probe_last_run_timestamp_seconds`), grouped by `instance`, are the config's
//!   names, none under two instances; each probe has one series across the targets.
//! - Every incident is judged on exactly one shard, the one that runs its criteria's probes
//!   and their `depends_on` (`pathwatch_incident_status`, `pathwatch_incident_probe`).
//! - A resize 3 -> 4 (the three restarted with `i/4` where they were, a fourth added) moves
//!   at most 30 % of the probes, only to the new shard, and pages nothing: no alert was ever
//!   firing, and PathwatchProbeStale, judged per probe (`max by (probe)` over the
//!   instances), was never even pending: a moved probe's old series goes stale and its new
//!   shard runs it within seconds, far inside two intervals.
//! - An HA pair (a second replica of the shard with the most incidents) pages once per
//!   incident through Alertmanager once Prometheus drops the replica's `instance` label from
//!   alerts (`alert_relabel_configs`, as docs/src/operating/sharding.md says), though the two
//!   replicas find the incidents present at different times.
//!
//! Kept cheap for CI (2 cores): every probe runs every 60 s, so each runs once or twice in
//! the whole test (first runs spread over 10 s); the targets are a few accept-and-close
//! listeners; `buckets: []` halves `/metrics` (no rule reads that histogram); Prometheus
//! scrapes every 5 s. At 30,000 probes the debug build's shards (10,000 each) answer a
//! scrape in about 0.1 s: before the root-cause judgement re-judged only the part of the
//! dependency graph a result changes, each result re-judged the whole graph and a shard did
//! not answer within a minute.

use crate::support::exporter::{Exporter, samples};
use crate::support::prom;
use crate::support::receiver::Receiver;
use pathwatch::config::shard::Shard;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The probes of the config (the 30,000).
const PROBES: usize = 30_000;
const INCIDENTS: usize = 20;
/// The plan's and the reload's config: small, the same shape.
const PLAN_PROBES: usize = 3_000;
/// Accept-and-close listeners the plain probes take in turn.
const LISTENERS: usize = 4;

/// A loopback port that accepts and closes every connection until [`Listening::close`];
/// then a connect is refused.
struct Listening {
    port: u16,
    open: Arc<AtomicBool>,
}

impl Listening {
    fn start() -> Listening {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let open = Arc::new(AtomicBool::new(true));
        let still = open.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                if !still.load(Ordering::SeqCst) {
                    break;
                }
                drop(c);
            }
        });
        Listening { port, open }
    }

    /// Stops accepting: the listener is dropped once the accept loop wakes (this connect).
    fn close(&self) {
        self.open.store(false, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A port that accepts and closes every connection for the rest of the test.
fn accepting() -> u16 {
    let l = Listening::start();
    l.port
}

fn name(i: usize) -> String {
    format!("tcp-{i:06}")
}

/// The probes incident `k`'s criteria name: one in a block near the start, one near the
/// middle; each depends on its block's base (`i - i % 10`).
fn incident_probes(k: usize, probes: usize) -> [usize; 2] {
    [k * 10 + 1, probes / 2 + k * 10 + 2]
}

/// bench/shard_config.py's shape: blocks of 10 probes, a base and three that depend on it
/// (a group of 4) and six alone; each incident names a probe of two blocks far apart (a
/// group of 8). The plain probes take `ports` in turn; incident k's two probes take
/// `switches[k % switches.len()]`, so a test can fail exactly one incident's probes.
fn config(probes: usize, ports: &[u16], switches: &[u16]) -> String {
    let mut switched: BTreeMap<usize, u16> = BTreeMap::new();
    for k in 0..INCIDENTS {
        for p in incident_probes(k, probes) {
            switched.insert(p, switches[k % switches.len()]);
        }
    }
    let mut out = String::from("defaults: { interval: 60s, timeout: 2s, buckets: [] }\nprobes:\n");
    for i in 0..probes {
        let port = switched.get(&i).copied().unwrap_or(ports[i % ports.len()]);
        let depends = if (1..=3).contains(&(i % 10)) {
            format!(", depends_on: [{}]", name(i - i % 10))
        } else {
            String::new()
        };
        out.push_str(&format!(
            "  - {{ name: {}, kind: tcp, host: 127.0.0.1, port: {port}{depends} }}\n",
            name(i)
        ));
    }
    out.push_str("incidents:\n");
    for k in 0..INCIDENTS {
        let [a, b] = incident_probes(k, probes);
        out.push_str(&format!(
            "  - id: inc-{k}\n    reopen_after: 1\n    criteria:\n      - {{ name: a, probe: {}, success: true }}\n      - {{ name: b, probe: {}, success: true }}\n",
            name(a),
            name(b)
        ));
    }
    out
}

/// `pathwatch serve --shard SHARD` on `yaml`, listening on `listen`.
fn shard(yaml: &str, shard: &str, listen: &str) -> Exporter {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pathwatch.yaml");
    std::fs::write(&path, yaml).expect("write the config");
    let args = [
        "serve".to_string(),
        "--config".to_string(),
        path.display().to_string(),
        "--shard".to_string(),
        shard.to_string(),
    ];
    Exporter::start_command_at(&args, &[], dir, listen)
}

/// Starts the shards `(INDEX/COUNT, listen address)` side by side (each reads the whole
/// config first).
fn start_shards(yaml: &str, which: &[(String, String)]) -> Vec<Exporter> {
    std::thread::scope(|s| {
        let started: Vec<_> = which
            .iter()
            .map(|(i, at)| s.spawn(move || shard(yaml, i, at)))
            .collect();
        started
            .into_iter()
            .map(|h| h.join().expect("a shard started"))
            .collect()
    })
}

/// What one shard runs: its probes and its incidents (from its own /metrics).
fn share(e: &Exporter) -> (BTreeSet<String>, BTreeSet<String>) {
    let text = e.metrics();
    let labels = |name: &str, key: &str| -> BTreeSet<String> {
        samples(&text, name)
            .into_iter()
            .filter_map(|s| s.labels.get(key).cloned())
            .collect()
    };
    (
        labels("pathwatch_probe_interval_seconds", "probe"),
        labels("pathwatch_incident_status", "incident"),
    )
}

fn scalar(prom: SocketAddr, expr: &str) -> Option<f64> {
    prom::query(prom, expr)
        .first()
        .and_then(|r| r["value"][1].as_str().and_then(|v| v.parse().ok()))
}

/// Waits until `expr` (one sample) equals `want`.
fn wait_scalar(prom: SocketAddr, expr: &str, want: f64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = scalar(prom, expr);
        if got == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{expr}: {got:?}, want {want} within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(1_000));
    }
}

/// `expr` has no sample.
fn assert_empty(prom: SocketAddr, expr: &str) {
    let got = prom::query(prom, expr);
    assert!(got.is_empty(), "{expr}: {got:?}");
}

/// `label` value -> the instances that have a series of `expr` with it.
fn by_instance(prom: SocketAddr, expr: &str, label: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in prom::query(prom, &format!("group by (instance, {label}) ({expr})")) {
        let value = r["metric"][label].as_str().unwrap_or("").to_string();
        let instance = r["metric"]["instance"].as_str().unwrap_or("").to_string();
        out.entry(value).or_default().push(instance);
    }
    out
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The shards' shares as Prometheus stores them, once every probe has run since `since`:
/// checks that they are a partition of the config (every probe under one instance, their
/// union the config), that each shard says which it is, and that every incident is judged
/// on one shard, the one running its criteria's probes and their `depends_on`. Returns
/// probe -> shard index.
fn partition(prom: SocketAddr, shards: &[Exporter], since: f64) -> BTreeMap<String, usize> {
    let index: BTreeMap<String, usize> = shards
        .iter()
        .enumerate()
        .map(|(i, e)| (e.addr.to_string(), i))
        .collect();
    let ran = format!("pathwatch_probe_last_run_timestamp_seconds > {since}");
    let deadline = Instant::now() + Duration::from_secs(180);
    let runs = loop {
        let runs = by_instance(prom, &ran, "probe");
        if runs.len() == PROBES {
            break runs;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {PROBES} probes ran since {since}",
            runs.len()
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    let mut owner: BTreeMap<String, usize> = BTreeMap::new();
    for (probe, instances) in &runs {
        assert_eq!(instances.len(), 1, "{probe} runs on {instances:?}");
        let i = index.get(&instances[0]).copied();
        let i = i.unwrap_or_else(|| panic!("{probe} on {instances:?}, no shard"));
        owner.insert(probe.clone(), i);
    }
    let all: BTreeSet<String> = (0..PROBES).map(name).collect();
    assert_eq!(
        owner.keys().cloned().collect::<BTreeSet<_>>(),
        all,
        "the shards together run the config"
    );
    // Each shard says which it is.
    let count = shards.len().to_string();
    for r in prom::query(prom, "pathwatch_shard_info") {
        let instance = r["metric"]["instance"].as_str().unwrap_or("");
        let Some(i) = index.get(instance) else {
            continue;
        };
        assert_eq!(r["metric"]["index"], i.to_string().as_str(), "{instance}");
        assert_eq!(r["metric"]["count"], count.as_str(), "{instance}");
    }
    // Every incident on one shard, with its criteria's probes and their bases.
    let judged = by_instance(prom, "pathwatch_incident_status", "incident");
    assert_eq!(judged.len(), INCIDENTS, "every incident judged: {judged:?}");
    for (inc, instances) in &judged {
        assert_eq!(instances.len(), 1, "{inc} judged on {instances:?}");
        let at = index.get(&instances[0]).copied();
        let k: usize = inc.trim_start_matches("inc-").parse().expect("incident id");
        for p in incident_probes(k, PROBES) {
            for q in [p, p - p % 10] {
                assert_eq!(
                    owner.get(&name(q)).copied(),
                    at,
                    "{inc} without {}",
                    name(q)
                );
            }
        }
    }
    owner
}

/// Each probe has one series of `pathwatch_probe_interval_seconds` across the targets (the
/// old series of a moved probe have gone stale).
fn wait_one_series_per_probe(prom: SocketAddr) {
    let probes = PROBES as f64;
    wait_scalar(
        prom,
        "count(pathwatch_probe_interval_seconds)",
        probes,
        Duration::from_secs(120),
    );
    wait_scalar(
        prom,
        "count(count by (probe) (pathwatch_probe_interval_seconds))",
        probes,
        Duration::from_secs(10),
    );
}

/// What a real Prometheus of sharded (and paired) replicas runs: every shard a target of
/// job `pathwatch`, found in `targets` (file service discovery, as Kubernetes' would find
/// the pods: a change of the file adds and removes targets, nothing is reloaded), the
/// shipped rules, and alerts leaving without the replica's label.
fn prometheus_config(targets: &std::path::Path, alertmanager: SocketAddr) -> String {
    let rules = std::fs::canonicalize("alerts/pathwatch.rules.yml").expect("rule file");
    format!(
        "global:\n  scrape_interval: 5s\n  scrape_timeout: 5s\n  evaluation_interval: 5s\nrule_files:\n  - {}\nalerting:\n  alert_relabel_configs:\n    - action: labeldrop\n      regex: instance\n  alertmanagers:\n    - static_configs:\n        - targets: [\"{alertmanager}\"]\nscrape_configs:\n  - job_name: pathwatch\n    file_sd_configs:\n      - files: [\"{}\"]\n",
        rules.display(),
        targets.display()
    )
}

/// Writes the scrape targets for file service discovery: whole, then renamed into place,
/// so Prometheus never reads half a file.
fn set_targets(file: &std::path::Path, targets: &[SocketAddr]) {
    let list: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
    let part = file.with_extension("part");
    std::fs::write(&part, format!("[{{\"targets\": [{}]}}]\n", list.join(", ")))
        .expect("write the targets");
    std::fs::rename(&part, file).expect("move the targets into place");
}

/// The IncidentPresent notifications so far, per incident (each checked: one group of the
/// incident's two probes, without the replica's label; on a failure the message says when
/// each replica's alert of each probe first fired, as Prometheus stored it).
fn incident_pages(hook: &Receiver, prom: SocketAddr) -> BTreeMap<String, usize> {
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    for body in hook.bodies() {
        let v: serde_json::Value = serde_json::from_str(&body).expect("webhook JSON");
        if v["groupLabels"]["alertname"] != "PathwatchIncidentPresent" {
            continue;
        }
        let alerts = v["alerts"].as_array().cloned().unwrap_or_default();
        for a in &alerts {
            assert!(a["labels"].get("instance").is_none(), "{a}");
        }
        let inc = v["groupLabels"]["incident"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if alerts.len() != 2 {
            let first = prom::query(
                prom,
                &format!(
                    "min_over_time(timestamp(ALERTS{{alertname=\"PathwatchIncidentPresent\",incident=\"{inc}\"}})[15m:1s])"
                ),
            );
            let first: Vec<String> = first
                .iter()
                .map(|r| {
                    format!(
                        "{} {} {}",
                        r["metric"]["instance"], r["metric"]["probe"], r["value"][1]
                    )
                })
                .collect();
            let sent: Vec<String> = hook
                .bodies()
                .iter()
                .filter_map(|b| serde_json::from_str::<serde_json::Value>(b).ok())
                .filter(|v| v["groupLabels"]["incident"] == inc.as_str())
                .map(|v| {
                    let probes: Vec<String> = v["alerts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| format!("{} since {}", a["labels"]["probe"], a["startsAt"]))
                        .collect();
                    probes.join(", ")
                })
                .collect();
            panic!(
                "{inc}: one alert per probe, got {}: firing first at {first:?}; notifications {sent:?}",
                alerts.len()
            );
        }
        *per.entry(inc).or_default() += 1;
    }
    per
}

#[test]
fn shards_run_each_probe_once_resize_quietly_and_an_ha_pair_pages_once() {
    let test_start = Instant::now();
    let listeners: Vec<Listening> = (0..LISTENERS).map(|_| Listening::start()).collect();
    let switches: Vec<Listening> = (0..INCIDENTS).map(|_| Listening::start()).collect();
    let ports: Vec<u16> = listeners.iter().map(|l| l.port).collect();
    let switch_ports: Vec<u16> = switches.iter().map(|l| l.port).collect();
    let yaml = config(PROBES, &ports, &switch_ports);

    let hook = Receiver::start();
    let am = prom::alertmanager_with(&format!(
        "route:\n  receiver: hook\n  group_by: [alertname, incident]\n  group_wait: 2s\n  group_interval: 2s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: \"http://127.0.0.1:{}/\"\n",
        hook.port
    ));

    // Three shards of the one config.
    let started = unix_now();
    let three: Vec<(String, String)> = (0..3)
        .map(|i| (format!("{i}/3"), "127.0.0.1:0".to_string()))
        .collect();
    let mut shards = start_shards(&yaml, &three);
    let mut addrs: Vec<SocketAddr> = shards.iter().map(|e| e.addr).collect();
    let sd = tempfile::tempdir().expect("temp dir");
    let targets = sd.path().join("pathwatch.json");
    set_targets(&targets, &addrs);
    let prometheus = prom::prometheus_with(&prometheus_config(&targets, am.addr));
    let before = partition(prometheus.addr, &shards, started);
    wait_one_series_per_probe(prometheus.addr);
    let counts: Vec<usize> = (0..3)
        .map(|i| before.values().filter(|s| **s == i).count())
        .collect();
    eprintln!(
        "3 shards: probes per shard {counts:?}, max/min {:.3} ({:.0?} in)",
        *counts.iter().max().unwrap_or(&0) as f64 / *counts.iter().min().unwrap_or(&1) as f64,
        test_start.elapsed()
    );

    let early = prom::query(
        prometheus.addr,
        "count_over_time(ALERTS{alertname=\"PathwatchAbsent\"}[1h])",
    );
    eprintln!("before the resize, PathwatchAbsent pending at evaluations: {early:?}");

    // Resize: every shard restarts with i/4 where it was, a fourth joins.
    for e in shards.iter_mut() {
        e.terminate(Duration::from_secs(20));
    }
    let resized = unix_now();
    let four: Vec<(String, String)> = (0..4)
        .map(|i| {
            let at = addrs
                .get(i)
                .map_or("127.0.0.1:0".to_string(), std::string::ToString::to_string);
            (format!("{i}/4"), at)
        })
        .collect();
    shards = start_shards(&yaml, &four);
    addrs.push(shards[3].addr);
    set_targets(&targets, &addrs);
    let after = partition(prometheus.addr, &shards, resized);
    let moved: Vec<&String> = before
        .iter()
        .filter(|(p, s)| after.get(*p) != Some(*s))
        .map(|(p, _)| p)
        .collect();
    assert!(
        moved.iter().all(|p| after.get(*p) == Some(&3)),
        "a probe moved between old shards"
    );
    let share_moved = moved.len() as f64 / PROBES as f64;
    let counts: Vec<usize> = (0..4)
        .map(|i| after.values().filter(|s| **s == i).count())
        .collect();
    eprintln!(
        "3 -> 4 shards: {} of {PROBES} probes moved ({:.1} %), probes per shard {counts:?} ({:.0?} in)",
        moved.len(),
        100.0 * share_moved,
        test_start.elapsed()
    );
    assert!(share_moved <= 0.30, "moved {share_moved}");
    wait_one_series_per_probe(prometheus.addr);
    // The resize paged nothing: no alert ever fired, and no probe was ever stale long
    // enough for PathwatchProbeStale to be pending.
    let fired = "count_over_time(ALERTS{alertstate=\"firing\"}[1h])";
    assert_empty(prometheus.addr, fired);
    let stale = "count_over_time(ALERTS{alertname=\"PathwatchProbeStale\"}[1h])";
    assert_empty(prometheus.addr, stale);
    assert!(hook.received().is_empty(), "paged: {:?}", hook.bodies());

    // An HA pair: a second replica of the shard with the most incidents. Their incidents'
    // probes fail from now on; the new replica finds them present at its first runs, the
    // old one at its next (up to an interval later).
    let judged = by_instance(prometheus.addr, "pathwatch_incident_status", "incident");
    let on = |i: usize| -> BTreeSet<String> {
        let at = shards[i].addr.to_string();
        judged
            .iter()
            .filter(|(_, instances)| instances.contains(&at))
            .map(|(inc, _)| inc.clone())
            .collect()
    };
    let pair = (0..4).max_by_key(|i| on(*i).len()).unwrap_or(0);
    let mine = on(pair);
    assert!(!mine.is_empty(), "shard {pair}/4 judges an incident");
    for inc in &mine {
        let k: usize = inc.trim_start_matches("inc-").parse().expect("incident id");
        switches[k].close();
    }
    let twin = shard(&yaml, &format!("{pair}/4"), "127.0.0.1:0");
    addrs.push(twin.addr);
    set_targets(&targets, &addrs);
    // Both replicas find every one of the pair's incidents present, and only those.
    wait_scalar(
        prometheus.addr,
        "count(count by (incident) (pathwatch_incident_status == 1) == 2)",
        mine.len() as f64,
        Duration::from_secs(180),
    );
    let present = by_instance(
        prometheus.addr,
        "pathwatch_incident_status == 1",
        "incident",
    );
    assert_eq!(present.keys().cloned().collect::<BTreeSet<_>>(), mine);
    // Two more evaluation rounds (10 s each) of both replicas' alerts: one page each.
    std::thread::sleep(Duration::from_secs(25));
    let per = incident_pages(&hook, prometheus.addr);
    assert_eq!(per.keys().cloned().collect::<BTreeSet<_>>(), mine);
    assert!(per.values().all(|&n| n == 1), "{per:?}");
    let stale = "count_over_time(ALERTS{alertname=\"PathwatchProbeStale\"}[1h])";
    assert_empty(prometheus.addr, stale);
    // PathwatchAbsent (`absent(up)`) since the resize: before the first scrape lands, a
    // freshly started Prometheus may evaluate it once with no `up` at all (pending, never
    // firing: `for: 5m`), as any new Prometheus does; that is not the shards' doing.
    let window = (unix_now() - resized).ceil();
    let absent = format!("count_over_time(ALERTS{{alertname=\"PathwatchAbsent\"}}[{window}s])");
    assert_empty(prometheus.addr, &absent);
    // A replica restarted by the resize may miss a scrape (`up` 0 once: PathwatchDown
    // pending, as any rollout makes it); none stays down long enough to fire.
    assert_empty(
        prometheus.addr,
        "count_over_time(ALERTS{alertname=\"PathwatchDown\",alertstate=\"firing\"}[1h])",
    );
    eprintln!(
        "HA pair of shard {pair}/4: {} incidents, one page each ({:.0?} in)",
        mine.len(),
        test_start.elapsed()
    );
}

/// k8s/overlays/sharded: both StatefulSets run `--shard ordinal/COUNT` with COUNT equal to
/// the replicas kustomize gives them, read one ConfigMap, and that config validates.
#[test]
fn the_sharded_overlay_runs_count_replicas_of_count_shards() {
    let read = |path: &str| -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        text.split("\n---\n")
            .map(|doc| serde_saphyr::from_str(doc).unwrap_or_else(|e| panic!("{path}: {e}")))
            .collect()
    };
    let kustomization = &read("k8s/overlays/sharded/kustomization.yaml")[0];
    let replicas: BTreeMap<String, u64> = kustomization["replicas"]
        .as_array()
        .expect("replicas")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().expect("name").to_string(),
                r["count"].as_u64().expect("count"),
            )
        })
        .collect();
    let sets = read("k8s/overlays/sharded/statefulsets.yaml");
    assert_eq!(sets.len(), 2, "replicas a and b");
    for set in &sets {
        let name = set["metadata"]["name"].as_str().expect("name");
        let container = &set["spec"]["template"]["spec"]["containers"][0];
        let args: Vec<&str> = container["args"]
            .as_array()
            .expect("args")
            .iter()
            .filter_map(|a| a.as_str())
            .collect();
        let at = args.iter().position(|a| *a == "--shard").expect("--shard");
        let count: u64 = args[at + 1]
            .strip_prefix("ordinal/")
            .expect("ordinal/COUNT")
            .parse()
            .expect("COUNT");
        assert_eq!(replicas.get(name), Some(&count), "{name}: replicas = COUNT");
        assert_eq!(
            set["spec"]["serviceName"], "pathwatch",
            "{name}: headless service"
        );
        assert_eq!(
            set["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"],
            "pathwatch-config"
        );
        // The ordinal of every pod name is a valid index.
        for i in 0..count {
            let pod = format!("{name}-{i}");
            let shard = Shard::parse(&format!("ordinal/{count}"), Some(&pod)).expect("shard");
            assert_eq!(u64::from(shard.index), i);
        }
    }
    let out = std::process::Command::new(crate::support::exporter::BIN)
        .args(["validate", "k8s/overlays/sharded/pathwatch.yaml"])
        .output()
        .expect("run validate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `pathwatch shards` prints the plan (every probe on one shard, the 3 -> 4 movement), a bad
/// `--shard` is refused by name, `validate` warns about a group too large for the count, and a
/// reload (SIGHUP) keeps the shard.
#[test]
fn the_plan_the_warning_and_a_reload_keep_to_the_shard() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("c.yaml");
    let port = accepting();
    std::fs::write(&path, config(PLAN_PROBES, &[port], &[port])).expect("write");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(crate::support::exporter::BIN)
            .args(args)
            .output()
            .expect("run pathwatch");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let file = path.display().to_string();
    let (code, out, err) = run(&["shards", &file, "--count", "4", "--from", "3"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("3000 probes in 2080 groups, 20 incidents, over 4 shards\n"),
        "{out}"
    );
    let per: Vec<usize> = out
        .lines()
        .filter(|l| l.contains("/4 "))
        .map(|l| {
            l.split_whitespace()
                .nth(1)
                .expect("probes")
                .parse()
                .expect("n")
        })
        .collect();
    assert_eq!(per.len(), 4, "{out}");
    assert_eq!(per.iter().sum::<usize>(), PLAN_PROBES, "{out}");
    assert!(out.contains("from 3 to 4 shards: "), "{out}");
    assert!(err.is_empty(), "no warning for groups of 8: {err}");

    let (code, _, err) = run(&["check", "-c", &file, "--shard", "3/3"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("invalid value '3/3' for '--shard <INDEX/COUNT>': INDEX must be below COUNT (3 is not below 3)"),
        "{err}"
    );

    // 1,500 probes that depend on one: a group of 1,501, over twice the mean of 4 shards.
    let mut big =
        String::from("probes:\n  - { name: base, kind: tcp, host: 127.0.0.1, port: 9 }\n");
    for i in 0..1_500 {
        big.push_str(&format!(
            "  - {{ name: p{i}, kind: tcp, host: 127.0.0.1, port: 9, depends_on: [base] }}\n"
        ));
    }
    let big_path = dir.path().join("big.yaml");
    std::fs::write(&big_path, big).expect("write");
    let big_file = big_path.display().to_string();
    let (code, _, err) = run(&["validate", &big_file, "--shard", "0/4"]);
    assert_eq!(code, Some(0), "a warning is no error: {err}");
    assert_eq!(
        err,
        format!(
            "{big_file}: warning: one group of 1501 probes (linked by depends_on or incident criteria, from \"base\") is larger than 1000 (twice the mean share of 4 shards); it always runs on one shard\n"
        )
    );
    let (_, _, err) = run(&["validate", &big_file]);
    assert!(
        err.is_empty(),
        "under the absolute limit without a count: {err}"
    );

    let port = accepting();
    let e = shard(&config(PLAN_PROBES, &[port], &[port]), "1/3", "127.0.0.1:0");
    let before = share(&e);
    e.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !e.logs().contains("config reloaded") {
        assert!(Instant::now() < deadline, "no reload: {}", e.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        e.logs()
            .contains(&format!("config reloaded: {} probes", before.0.len())),
        "{}",
        e.logs()
    );
    assert_eq!(share(&e), before, "the reload kept shard 1/3");
}

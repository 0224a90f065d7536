//! Sharding proven with the real binary (issue 33): three `pathwatch serve --shard i/3` of one
//! config on loopback, and a real Prometheus scraping all three with the shipped rules.
//!
//! - Every probe is run by exactly one shard (the union of what the shards export is the
//!   config, the intersection empty) and every incident is judged on exactly one, with its
//!   criteria's probes and their `depends_on` on the same shard; Prometheus counts each probe
//!   once across the targets.
//! - A resize 3 -> 4 (the three restarted with `i/4`, a fourth added) moves at most 30 % of
//!   the probes, only to the new shard, and pages nothing: PathwatchProbeStale is judged per
//!   probe (`max by (probe)` over the instances), so a moved probe is fresh again as soon as
//!   its new shard has run it, long before the rule's `for: 2m`.
//! - An HA pair (two replicas of one shard) pages once per incident through a real
//!   Alertmanager once Prometheus drops the replica's `instance` label from alerts
//!   (`alert_relabel_configs`, as docs/src/operating/sharding.md says).
//!
//! The config has 3,000 tcp probes (not the 30,000: three debug-build exporters and a
//! Prometheus scraping them every second on a 2-core CI machine would take minutes; the unit
//! tests in src/config/shard.rs check balance and movement on 30,000 groups).

use crate::support::exporter::{Exporter, samples};
use crate::support::prom;
use crate::support::receiver::Receiver;
use pathwatch::config::shard::Shard;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

const PROBES: usize = 3_000;
const INCIDENTS: usize = 20;

/// A port that accepts and closes every connection (every tcp probe's target).
fn accepting() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            drop(c);
        }
    });
    port
}

/// bench/shard_config.py's shape: blocks of 10 probes, a base and three that depend on it
/// (a group of 4) and six alone; each incident names a probe of two blocks far apart.
fn config(port: u16) -> String {
    let mut out = String::from("defaults: { interval: 10s, timeout: 2s }\nprobes:\n");
    for i in 0..PROBES {
        out.push_str(&format!(
            "  - name: tcp-{i:06}\n    kind: tcp\n    host: 127.0.0.1\n    port: {port}\n"
        ));
        if (1..=3).contains(&(i % 10)) {
            out.push_str(&format!("    depends_on: [tcp-{:06}]\n", i - i % 10));
        }
    }
    out.push_str("incidents:\n");
    for k in 0..INCIDENTS {
        let (a, b) = (k * 10 + 1, PROBES / 2 + k * 10 + 2);
        out.push_str(&format!(
            "  - id: inc-{k}\n    criteria:\n      - {{ name: a, probe: tcp-{a:06}, success: true }}\n      - {{ name: b, probe: tcp-{b:06}, success: true }}\n"
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
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The shards' shares are a partition of the config: returns probe -> shard index.
fn partition(shares: &[(BTreeSet<String>, BTreeSet<String>)]) -> BTreeMap<String, usize> {
    let mut owner: BTreeMap<String, usize> = BTreeMap::new();
    for (i, (probes, _)) in shares.iter().enumerate() {
        assert!(!probes.is_empty(), "shard {i} runs nothing");
        for p in probes {
            if let Some(other) = owner.insert(p.clone(), i) {
                panic!("{p} runs on shard {other} and shard {i}");
            }
        }
    }
    let all: BTreeSet<String> = (0..PROBES).map(|i| format!("tcp-{i:06}")).collect();
    let union: BTreeSet<String> = owner.keys().cloned().collect();
    assert_eq!(union, all, "the shards together run the config");
    let mut judged: BTreeMap<String, usize> = BTreeMap::new();
    for (i, (probes, incidents)) in shares.iter().enumerate() {
        for inc in incidents {
            assert!(judged.insert(inc.clone(), i).is_none(), "{inc} twice");
            // Its criteria's probes (and their depends_on base) run on the same shard.
            let k: usize = inc.trim_start_matches("inc-").parse().expect("incident id");
            for p in [
                k * 10 + 1,
                k * 10,
                PROBES / 2 + k * 10 + 2,
                PROBES / 2 + k * 10,
            ] {
                assert!(
                    probes.contains(&format!("tcp-{p:06}")),
                    "{inc} without tcp-{p:06}"
                );
            }
        }
    }
    assert_eq!(judged.len(), INCIDENTS, "every incident judged once");
    owner
}

#[test]
fn shards_run_each_probe_once_and_a_resize_pages_nothing() {
    let port = accepting();
    let yaml = config(port);
    let mut shards: Vec<Exporter> = (0..3)
        .map(|i| shard(&yaml, &format!("{i}/3"), "127.0.0.1:0"))
        .collect();
    let shares: Vec<_> = shards.iter().map(share).collect();
    let before = partition(&shares);
    let counts: Vec<usize> = shares.iter().map(|(p, _)| p.len()).collect();
    let (max, min) = (counts.iter().max(), counts.iter().min());
    eprintln!(
        "3 shards: probes per shard {counts:?}, max/min {:.3}",
        *max.unwrap_or(&0) as f64 / *min.unwrap_or(&1) as f64
    );
    for (i, e) in shards.iter().enumerate() {
        let text = e.metrics();
        assert!(
            text.contains(&format!(
                "pathwatch_shard_info{{index=\"{i}\",count=\"3\"}} 1"
            )),
            "shard {i} says which it is"
        );
    }

    let hook = Receiver::start();
    let am = prom::alertmanager(&format!("http://127.0.0.1:{}/", hook.port));
    let rules = [std::path::PathBuf::from("alerts/pathwatch.rules.yml")];
    let mut addrs: Vec<SocketAddr> = shards.iter().map(|e| e.addr).collect();
    let prometheus = prom::prometheus_scraping(&addrs, &rules, am.addr);
    let probes = PROBES as f64;
    // Each probe once across the three targets, none twice.
    wait_scalar(
        prometheus.addr,
        "count(pathwatch_probe_interval_seconds)",
        probes,
        Duration::from_secs(60),
    );
    wait_scalar(
        prometheus.addr,
        "count(count by (probe) (pathwatch_probe_interval_seconds))",
        probes,
        Duration::from_secs(10),
    );
    let stale = "count(time() - max by (probe) (pathwatch_probe_last_run_timestamp_seconds) > on (probe) (2 * max by (probe) (pathwatch_probe_interval_seconds) + max by (probe) (pathwatch_probe_timeout_seconds))) or vector(0)";
    wait_scalar(prometheus.addr, stale, 0.0, Duration::from_secs(40));

    // Resize: every shard restarts with i/4 where it was, a fourth joins.
    for (i, e) in shards.iter_mut().enumerate() {
        let at = e.addr.to_string();
        e.terminate(Duration::from_secs(20));
        *e = shard(&yaml, &format!("{i}/4"), &at);
    }
    shards.push(shard(&yaml, "3/4", "127.0.0.1:0"));
    addrs.push(shards[3].addr);
    prometheus.reload_prometheus(&prom::prometheus_config(&addrs, &rules, am.addr));
    let resized = Instant::now();
    let shares: Vec<_> = shards.iter().map(share).collect();
    let after = partition(&shares);
    let moved: Vec<&String> = before
        .iter()
        .filter(|(p, s)| after.get(*p) != Some(*s))
        .map(|(p, _)| p)
        .collect();
    assert!(
        moved.iter().all(|p| after.get(*p) == Some(&3)),
        "a probe moved between old shards"
    );
    let share_moved = moved.len() as f64 / probes;
    let counts: Vec<usize> = shares.iter().map(|(p, _)| p.len()).collect();
    eprintln!(
        "3 -> 4 shards: {} of {PROBES} probes moved ({:.1} %), probes per shard {counts:?}",
        moved.len(),
        100.0 * share_moved
    );
    assert!(share_moved <= 0.30, "moved {share_moved}");

    // Prometheus sees each probe once again (the old series of moved probes went stale)...
    wait_scalar(
        prometheus.addr,
        "count(count by (probe) (pathwatch_probe_interval_seconds))",
        probes,
        Duration::from_secs(30),
    );
    wait_scalar(
        prometheus.addr,
        "count(pathwatch_probe_interval_seconds)",
        probes,
        Duration::from_secs(30),
    );
    // ... and no probe, moved or not, is stale long enough for ProbeStale's `for: 2m`.
    wait_scalar(prometheus.addr, stale, 0.0, Duration::from_secs(40));
    assert!(
        resized.elapsed() < Duration::from_secs(110),
        "fresh again only after {:?}",
        resized.elapsed()
    );
    let firing: Vec<_> = prom::alerts(prometheus.addr)
        .into_iter()
        .filter(|(name, _)| name == "PathwatchProbeStale" || name == "PathwatchAbsent")
        .collect();
    assert!(firing.is_empty(), "{firing:?}");
    assert!(hook.received().is_empty(), "paged: {:?}", hook.bodies());
}

#[test]
fn an_ha_pair_of_one_shard_pages_once_per_incident() {
    // Six incidents, each on its own probe of a closed port; the pair runs shard 0 of 2.
    let closed = crate::support::hang::closed_port();
    let mut yaml = String::from("defaults: { interval: 1s, timeout: 1s }\nprobes:\n");
    for k in 0..6 {
        yaml.push_str(&format!(
            "  - name: ha-{k}\n    kind: tcp\n    host: 127.0.0.1\n    port: {closed}\n"
        ));
    }
    yaml.push_str("incidents:\n");
    for k in 0..6 {
        yaml.push_str(&format!(
            "  - id: ha-inc-{k}\n    reopen_after: 1\n    criteria:\n      - {{ name: up, probe: ha-{k}, success: true }}\n"
        ));
    }
    let mine: BTreeSet<String> = (0..6)
        .filter(|k| Shard::of_group(&[format!("ha-{k}").as_str()], 2) == 0)
        .map(|k| format!("ha-inc-{k}"))
        .collect();
    assert!(!mine.is_empty(), "shard 0 holds an incident");
    let pair = [
        shard(&yaml, "0/2", "127.0.0.1:0"),
        shard(&yaml, "0/2", "127.0.0.1:0"),
    ];
    for e in &pair {
        assert_eq!(share(e).1, mine, "each replica judges shard 0's incidents");
    }

    let hook = Receiver::start();
    let am = prom::alertmanager_with(&format!(
        "route:\n  receiver: hook\n  group_by: [alertname, incident]\n  group_wait: 2s\n  group_interval: 2s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: \"http://127.0.0.1:{}/\"\n",
        hook.port
    ));
    let rules = [std::path::PathBuf::from("alerts/pathwatch.rules.yml")];
    let addrs: Vec<SocketAddr> = pair.iter().map(|e| e.addr).collect();
    let prometheus = prom::prometheus_scraping(&addrs, &rules, am.addr);
    // What docs/src/operating/sharding.md tells HA users to add: alerts leave Prometheus
    // without the replica's label, so the pair's copies are one alert to Alertmanager.
    let text = prom::prometheus_config(&addrs, &rules, am.addr).replace(
        "alerting:\n",
        "alerting:\n  alert_relabel_configs:\n    - action: labeldrop\n      regex: instance\n",
    );
    prometheus.reload_prometheus(&text);

    // Both replicas find every incident present; wait for the pages and a while after.
    let deadline = Instant::now() + Duration::from_secs(60);
    let pages = |hook: &Receiver| -> BTreeMap<String, usize> {
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
            assert_eq!(alerts.len(), 1, "{inc}: one alert for the pair: {body}");
            *per.entry(inc).or_default() += 1;
        }
        per
    };
    while pages(&hook).len() < mine.len() {
        assert!(Instant::now() < deadline, "pages: {:?}", hook.bodies());
        std::thread::sleep(Duration::from_millis(500));
    }
    // Two more evaluation rounds (10 s each) of both replicas' alerts: still one page each.
    std::thread::sleep(Duration::from_secs(25));
    let per = pages(&hook);
    assert_eq!(per.keys().cloned().collect::<BTreeSet<_>>(), mine);
    assert!(per.values().all(|&n| n == 1), "{per:?}");
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
    std::fs::write(&path, config(accepting())).expect("write");
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
    assert_eq!(per.iter().sum::<usize>(), PROBES, "{out}");
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

    let e = shard(&config(accepting()), "1/3", "127.0.0.1:0");
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

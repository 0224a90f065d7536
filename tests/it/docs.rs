//! The book (docs/) checked like code: its generated references are what the code gives
//! (a drift fails here; `PATHWATCH_BLESS=1` rewrites them), and every config example marked
//! ```` ```yaml pathwatch ```` in the book and README validates with the real binary.
//!
//! - docs/src/reference/config.md: `python3 docs/reference.py` over `pathwatch schema`,
//!   the JSON Schema derived from the structs the parser reads (their doc comments).
//! - docs/src/reference/metrics.md: the families the exporter registers and encodes
//!   ([`pathwatch::metrics::Metrics`]), read from what it writes for one probe of each kind.

use crate::support::exporter::BIN;
use pathwatch::incident::Tracked;
use pathwatch::incident::engine::{CriterionResult, Evaluation, Status};
use pathwatch::incident::rootcause::Judgement;
use pathwatch::metrics::Metrics;
use pathwatch::probe::{Kind, Observation, Observations, Phase, ProbeError, Reason, RunResult};
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const CONFIG_PAGE: &str = "docs/src/reference/config.md";
const METRICS_PAGE: &str = "docs/src/reference/metrics.md";
/// The "kind" of the incident and root-cause families in the page.
const INCIDENTS: &str = "incidents";

/// Compares `page` with `want`; with `PATHWATCH_BLESS=1` writes it instead.
fn current_or_bless(page: &str, want: &str, how: &str) {
    if std::env::var("PATHWATCH_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(page, want).expect("write the page");
        return;
    }
    let have = std::fs::read_to_string(page).unwrap_or_default();
    if have != want {
        let line = have
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .map_or(have.lines().count().min(want.lines().count()), |i| i)
            + 1;
        panic!(
            "{page} differs from the code (first at line {line}: have {:?}, the code gives {:?}); \
             {how}",
            have.lines().nth(line - 1).unwrap_or(""),
            want.lines().nth(line - 1).unwrap_or("")
        );
    }
}

#[test]
fn the_configuration_reference_is_what_the_schema_gives() {
    let schema = Command::new(BIN)
        .arg("schema")
        .output()
        .expect("pathwatch schema");
    assert!(schema.status.success());
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("schema.json");
    std::fs::write(&json, &schema.stdout).expect("write schema");
    let out = dir.path().join("config.md");
    let status = Command::new("python3")
        .args(["docs/reference.py", "--schema"])
        .arg(&json)
        .arg("--out")
        .arg(&out)
        .status()
        .expect("python3");
    assert!(status.success(), "docs/reference.py failed");
    let want = std::fs::read_to_string(&out).expect("generated page");
    current_or_bless(
        CONFIG_PAGE,
        &want,
        "regenerate: PATHWATCH_BLESS=1 cargo test --test it docs::the_configuration_reference",
    );
}

/// One probe of each kind, in a graph and judged by an incident, so that every family the
/// exporter has shows its labels.
const EVERY_KIND: &str = r#"
probes:
  - { name: pg, kind: postgres, host: 127.0.0.1, connections: true, depends_on: [tcp] }
  - { name: pg-unix, kind: postgres, host: /run/postgresql }
  - { name: tcp, kind: tcp, host: 127.0.0.1, port: 9 }
  - { name: http, kind: http, url: "http://127.0.0.1:9/" }
  - { name: golden, kind: golden_path, token: t0ken-value, websocket: { url: "ws://127.0.0.1:9/ws" } }
  - { name: startup, kind: startup, check: { url: "http://127.0.0.1:9/health" } }
  - { name: connector, kind: gcp_vpc_connector, project: p, region: r, connector: c, expect: { machine_type: e2-micro } }
  - { name: cloudsql, kind: gcp_cloudsql, project: p, instance: i }
  - { name: cloudrun, kind: gcp_cloud_run, project: p, region: r, service: s }
  - { name: redis, kind: redis, host: 127.0.0.1 }
  - name: logs
    kind: logs
    patterns: { failed: 'failed' }
    file: { path: /nonexistent/app.log }
  - { name: cert, kind: tls_cert, host: 127.0.0.1, port: 9 }
  - { name: dns, kind: dns, server: "127.0.0.1:9", query_name: example.test }
  - { name: grpc, kind: grpc, host: 127.0.0.1, port: 9 }
  - { name: icmp, kind: icmp, host: 127.0.0.1 }
incidents:
  - id: "1"
    title: t
    criteria: [{ name: c, probe: pg, max_seconds: 10 }]
"#;

/// One family as the exporter writes it.
#[derive(Default)]
struct Family {
    kind: String,
    unit: String,
    help: String,
    labels: Vec<String>,
    /// The kinds of the probes whose series it has; empty: none (the exporter's own).
    kinds: Vec<&'static str>,
}

/// What a run of `kind` typically observes (the kind's own families are born from it).
fn observations(kind: Kind) -> Observations {
    let mut obs = Observations::default();
    // The families a kind declares (ProbeKind::FAMILIES), each with a sample: the
    // reference lists them from what the exporter writes for it.
    let samples: Vec<_> = kind
        .families()
        .iter()
        .map(|f| f.sample_with(f.labels.iter().map(|l| format!("{l}-1")).collect(), 1.0))
        .collect();
    if !samples.is_empty() {
        obs.set(Observation::Samples(samples));
    }
    obs
}

/// A run as the runner hands it on: passing or failed, with what its kind observes.
fn run(ok: bool, kind: Kind) -> RunResult {
    RunResult {
        finished_unix_seconds: 1.0,
        duration: std::time::Duration::from_millis(5),
        phases: vec![(Phase::Connect, std::time::Duration::from_millis(1))],
        failed_phase: (!ok).then_some(Phase::Connect),
        observations: observations(kind),
        next_run: None,
        trace_id: None,
        lateness: Some(std::time::Duration::from_millis(1)),
        outcome: if ok {
            Ok(Default::default())
        } else {
            Err(ProbeError::new(Reason::Timeout, "cut at the timeout"))
        },
    }
}

/// The families of the exposition text `text`, series and metadata.
fn read_families(text: &str, into: &mut BTreeMap<String, Family>, kind: Option<&'static str>) {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (what, name, value) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or("").to_string(),
                parts.next().unwrap_or("").to_string(),
            );
            let f = into.entry(name.clone()).or_default();
            match what {
                "HELP" => f.help = value,
                "TYPE" => {
                    f.kind = value.clone();
                    types.insert(name, value);
                }
                "UNIT" => f.unit = value,
                _ => {}
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let series = line.split([' ', '{']).next().unwrap_or("");
        // A sample belongs to the longest family name it extends (_total, _bucket, ...).
        let Some(family) = types
            .keys()
            .filter(|n| series == n.as_str() || series.starts_with(&format!("{n}_")))
            .max_by_key(|n| n.len())
            .cloned()
        else {
            continue;
        };
        let f = into.get_mut(&family).expect("family seen");
        if let Some(labels) = line.split_once('{').and_then(|(_, r)| r.split_once('}')) {
            for pair in labels.0.split(',') {
                let name = pair.split('=').next().unwrap_or("").trim().to_string();
                if !name.is_empty()
                    && name != "le"
                    && name != "quantile"
                    && !f.labels.contains(&name)
                {
                    f.labels.push(name);
                }
            }
        }
        if let Some(k) = kind
            && !f.kinds.contains(&k)
        {
            f.kinds.push(k);
        }
    }
}

/// What the exporter writes: the registry's families and the per-probe text.
fn exposition(metrics: &Metrics, registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).expect("encode");
    for part in metrics.encode_probes().expect("encode probes") {
        text.push_str(&part);
    }
    text
}

fn metrics_reference() -> String {
    let loaded = pathwatch::config::parse("every-kind.yaml", EVERY_KIND, &|_| None)
        .expect("the config parses");
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    // The exporter without probes: every family it registers, and its own series.
    {
        let mut registry = Registry::with_prefix("pathwatch");
        let m = Metrics::new(&mut registry);
        read_families(&exposition(&m, &registry), &mut families, None);
    }
    let own: Vec<String> = families.keys().cloned().collect();
    // The incident and root-cause families: an incident judged once, a probe blocked by
    // its failing dependency.
    {
        let mut registry = Registry::with_prefix("pathwatch");
        let m = Metrics::new(&mut registry);
        let spec = &loaded.config.incidents[0];
        m.incidents.init(spec);
        let criterion = CriterionResult {
            name: "c".into(),
            probe: "pg".into(),
            met: Some(false),
            value: Some(12.0),
            threshold: Some(10.0),
            display: String::new(),
            reason: None,
            passing_streak: 0,
            failing_streak: 1,
        };
        let eval = Evaluation {
            status: Status::Present,
            criteria: vec![criterion],
            resolving: None,
        };
        let mut tracked = Tracked::default();
        tracked.changes = 1;
        tracked.last_change_unix = 1.0;
        m.incidents.record(spec, &eval, &tracked);
        let judgement = Judgement {
            root_causes: vec!["tcp".into()],
            blocked_by: [("pg".to_string(), vec!["tcp".to_string()])].into(),
        };
        m.root_causes.set(&["pg".into(), "tcp".into()], &judgement);
        read_families(&exposition(&m, &registry), &mut families, Some(INCIDENTS));
    }
    // Each probe alone, after a failed and a passing run: the families its kind has.
    for p in &loaded.config.probes {
        let mut registry = Registry::with_prefix("pathwatch");
        let m = Metrics::new(&mut registry);
        m.init_probe(p);
        let kind = p.spec.kind();
        for ok in [false, true] {
            m.record(&p.name, kind, &run(ok, kind));
        }
        read_families(
            &exposition(&m, &registry),
            &mut families,
            Some(kind.as_str()),
        );
    }
    let mut out = String::from(
        "# Metrics reference\n\n\
         <!-- Generated by tests/it/docs.rs from the families the exporter registers: do not \
         edit. Regenerate with PATHWATCH_BLESS=1 cargo test --test it docs:: -->\n\n\
         Every family pathwatch exports, as `/metrics` writes it: its type, unit, help text and \
         the labels its series carry. *Kinds* names the probe kinds whose probes have it; \
         *every kind* means every probe has it; *exporter* means the exporter's own series. \
         Label values are bounded: configured names or closed lists, never an error text, \
         URL or secret (see [the failure reasons](#reason)). Counters are named as PromQL \
         reads them, with `_total`.\n\n\
         | family | type | labels | kinds | help |\n|---|---|---|---|---|\n",
    );
    let every: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    // (kinds it is special to, its row without the kinds cell) per family, in name order.
    let mut by_kind: Vec<(Vec<&str>, String)> = Vec::new();
    for (name, f) in &families {
        if f.kind.is_empty() {
            continue;
        }
        let mut kinds = f.kinds.clone();
        kinds.sort();
        kinds.dedup();
        let (cell, special) = if own.contains(name) {
            ("exporter".to_string(), vec![])
        } else if kinds == [INCIDENTS] && name.starts_with("pathwatch_incident") {
            ("incidents".to_string(), vec![])
        } else if kinds == [INCIDENTS] {
            ("probes in a `depends_on` graph".to_string(), vec![])
        } else if kinds.len() == every.len() {
            ("every kind".to_string(), vec![])
        } else {
            let cell = kinds
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
            (cell, kinds)
        };
        // PromQL names a counter's samples with _total.
        let name = if f.kind == "counter" {
            format!("{name}_total")
        } else {
            name.clone()
        };
        let unit = if f.unit.is_empty() {
            String::new()
        } else {
            format!(" ({})", f.unit)
        };
        let labels = f
            .labels
            .iter()
            .map(|l| format!("`{l}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let help = f.help.replace('|', "\\|");
        out.push_str(&format!(
            "| `{name}` | {}{unit} | {labels} | {cell} | {help} |\n",
            f.kind
        ));
        by_kind.push((
            special,
            format!("| `{name}` | {}{unit} | {labels} | {help} |\n", f.kind),
        ));
    }
    // Each kind's own families, which its page includes (mdBook's {{#include}} anchors).
    out.push_str(
        "\n## By kind\n\nThe families of each kind's own observations, besides those every \
         probe has.\n",
    );
    for kind in &every {
        out.push_str(&format!("\n### {kind}\n\n<!-- ANCHOR: {kind} -->\n"));
        let rows: Vec<&String> = by_kind
            .iter()
            .filter(|(k, _)| k.contains(kind))
            .map(|(_, row)| row)
            .collect();
        if rows.is_empty() {
            out.push_str("Only the families every probe has.\n");
        } else {
            out.push_str("| family | type | labels | help |\n|---|---|---|---|\n");
            for row in rows {
                out.push_str(row);
            }
        }
        out.push_str(&format!("<!-- ANCHOR_END: {kind} -->\n"));
    }
    out.push_str(
        "\n## reason\n\nThe values of the `reason` label (`ok` on success); each kind's page \
         says which of them its runs give:\n\n",
    );
    let reasons: Vec<String> = Reason::ALL
        .iter()
        .map(|r| format!("`{}`", r.as_str()))
        .collect();
    out.push_str(&reasons.join(", "));
    out.push_str("\n\n## kind\n\nThe values of the `kind` label: ");
    let kinds: Vec<String> = every.iter().map(|k| format!("`{k}`")).collect();
    out.push_str(&kinds.join(", "));
    out.push_str(".\n");
    out
}

#[test]
fn the_metrics_reference_is_what_the_exporter_registers() {
    current_or_bless(
        METRICS_PAGE,
        &metrics_reference(),
        "regenerate: PATHWATCH_BLESS=1 cargo test --test it docs::the_metrics_reference",
    );
}

/// Every Markdown file of the book, and README.md.
fn pages() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("docs/src") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    let mut out = vec![PathBuf::from("README.md")];
    walk(Path::new("docs/src"), &mut out);
    out.sort();
    out
}

/// The fenced blocks opened with ```` ```yaml pathwatch ````: (file, line, text).
fn config_examples() -> Vec<(PathBuf, usize, String)> {
    let mut out = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).expect("page");
        let mut open: Option<(usize, String)> = None;
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            match open.as_mut() {
                None if trimmed.starts_with("```") => {
                    let info: Vec<&str> = trimmed[3..].split([' ', ',']).collect();
                    // Line 0 marks another fenced block: skipped to its end.
                    let start = if info.first() == Some(&"yaml") && info.contains(&"pathwatch") {
                        i + 1
                    } else {
                        0
                    };
                    open = Some((start, String::new()));
                }
                Some((start, body)) if trimmed.starts_with("```") => {
                    if *start > 0 {
                        out.push((page.clone(), *start, std::mem::take(body)));
                    }
                    open = None;
                }
                Some((_, body)) => {
                    body.push_str(line);
                    body.push('\n');
                }
                None => {}
            }
        }
    }
    out
}

#[test]
fn every_config_example_in_the_book_validates() {
    let examples = config_examples();
    assert!(examples.len() >= 10, "{} examples", examples.len());
    let dir = tempfile::tempdir().expect("temp dir");
    let mut failures = Vec::new();
    for (n, (page, line, yaml)) in examples.iter().enumerate() {
        let file = dir.path().join(format!("example-{n}.yaml"));
        std::fs::write(&file, yaml).expect("write example");
        // Examples name secrets and settings by variable, as a deployment would.
        let out = Command::new(BIN)
            .arg("validate")
            .arg(&file)
            .env("POSTGRES_USER", "pathwatch")
            .env("PGPASSWORD", "example-secret")
            .env("E2E_EMAIL", "e2e@example.com")
            .env("E2E_BYPASS_KEY", "example-key")
            .env("E2E_PASSWORD", "example-password")
            .env("HOOK_TOKEN", "example-token")
            .output()
            .expect("pathwatch validate");
        if !out.status.success() {
            failures.push(format!(
                "{}:{line}: {}{}",
                page.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

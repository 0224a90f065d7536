//! The kinds' families as the registry writes them (both formats) from fixed runs, against
//! the text the exporter wrote before the kinds declared their families
//! (testdata/kind_families.txt; `UPDATE_GOLDEN=1` rewrites it, which a change of a kind's
//! families needs and a refactoring must not).

use super::super::Metrics;
use crate::config::ProbeConfig;
use crate::exposition::to_text_004;
use crate::probe::{Observation, Observations, Outcome, ProbeError, Reason, RunResult};
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use std::time::Duration;

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/src/metrics/testdata/kind_families.txt"
);

fn probes() -> Vec<std::sync::Arc<ProbeConfig>> {
    let text = r#"probes:
  - name: applog
    kind: logs
    file: { path: /var/log/app.log }
    patterns:
      db_socket_failed: 'socket connection failed'
      startup_failed: 'Application startup failed'
      db_phase: 'PHASE COMPLETED: DATABASE \(([0-9.]+)s\)'
  - { name: boot, kind: startup, check: { url: "http://127.0.0.1:9/health" } }
  - { name: cert, kind: tls_cert, host: 127.0.0.1, port: 9 }
"#;
    crate::config::parse("t.yaml", text, &|_| None)
        .expect("config")
        .config
        .probes
}

fn run(ok: bool, observations: Vec<Observation>) -> RunResult {
    let mut obs = Observations::default();
    for o in observations {
        obs.set(o);
    }
    RunResult {
        finished_unix_seconds: 1_795_957_554.5,
        duration: Duration::from_millis(3),
        phases: Vec::new(),
        failed_phase: None,
        observations: obs,
        next_run: None,
        trace_id: None,
        lateness: None,
        outcome: if ok {
            Ok(Outcome::default())
        } else {
            Err(ProbeError::new(Reason::Timeout, "cut"))
        },
    }
}

/// What a logs run reports: lines read, and per pattern (name, matches, window, last value).
fn logs(lines: u64, patterns: &[(&str, u64, u64, Option<f64>)]) -> Vec<Observation> {
    use crate::probe::kinds::logs::{LogsObs, PatternObs};
    let obs = LogsObs {
        lines_read: lines,
        patterns: patterns
            .iter()
            .map(|(name, matches, window, last)| PatternObs {
                name: (*name).to_string(),
                matches: *matches,
                window_matches: *window,
                last_value: *last,
            })
            .collect(),
    };
    vec![Observation::Samples(obs.samples())]
}

/// What a startup run reports.
fn startup(seconds: Option<f64>, in_progress: bool, unhealthy: u64) -> Vec<Observation> {
    let obs = crate::probe::kinds::startup::StartupObs {
        seconds,
        in_progress,
        unhealthy_answers: unhealthy,
    };
    vec![Observation::Samples(obs.samples())]
}

/// What a tls_cert run reports.
fn tls_cert(not_after: f64) -> Vec<Observation> {
    let expiry = crate::probe::Kind::TlsCert.families()[0];
    vec![Observation::Samples(vec![expiry.sample(not_after)])]
}

/// Both formats of the registry's text, each family's samples sorted (a family writes its
/// series in hash order) and the families sorted by name.
fn canonical(r: &Registry) -> String {
    let mut om = String::new();
    encode(&mut om, r).expect("encode");
    let mut text = String::new();
    to_text_004(&om, &mut text);
    let mut out = String::new();
    for (title, t) in [("openmetrics", &om), ("text 0.0.4", &text)] {
        let mut families: Vec<Vec<&str>> = Vec::new();
        for line in t.lines() {
            if line.starts_with("# HELP") || line == "# EOF" || families.is_empty() {
                families.push(Vec::new());
            }
            if let Some(f) = families.last_mut() {
                f.push(line);
            }
        }
        for f in &mut families {
            let header = f.iter().take_while(|l| l.starts_with('#')).count();
            f[header..].sort_unstable();
        }
        families.sort();
        out.push_str(&format!("== {title}\n"));
        for f in families {
            for l in f {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    out
}

#[test]
fn the_kinds_families_write_what_they_wrote_before() {
    let probes = probes();
    let mut r = Registry::with_prefix("pathwatch");
    let m = Metrics::new(&mut r);
    let mut got = String::new();
    let mut snapshot = |step: &str, r: &Registry| {
        got.push_str(&format!("### {step}\n"));
        got.push_str(&canonical(r));
    };
    for p in &probes {
        m.init_probe(p);
    }
    snapshot("before the first run", &r);
    let (applog, boot, cert) = (&probes[0], &probes[1], &probes[2]);
    let record = |p: &ProbeConfig, run: RunResult| m.record(&p.name, p.spec.kind(), &run);
    record(
        applog,
        run(
            true,
            logs(
                4,
                &[
                    ("db_phase", 2, 2, Some(0.5)),
                    ("db_socket_failed", 1, 1, None),
                    ("startup_failed", 0, 0, None),
                ],
            ),
        ),
    );
    record(boot, run(false, startup(None, true, 1)));
    record(cert, run(true, tls_cert(1_795_957_554.5)));
    snapshot("first runs", &r);
    // Totals: a counter never goes down; a pattern with no new value keeps its last one.
    record(
        applog,
        run(
            true,
            logs(
                10,
                &[
                    ("db_phase", 5, 1, None),
                    ("db_socket_failed", 0, 0, None),
                    ("startup_failed", 3, 3, Some(7.0)),
                ],
            ),
        ),
    );
    record(boot, run(false, startup(None, true, 1)));
    record(boot, run(true, startup(Some(12.25), false, 0)));
    // A run cut before it observed anything: startup keeps its values, tls_cert's expiry
    // goes.
    record(boot, run(false, Vec::new()));
    record(cert, run(false, Vec::new()));
    record(applog, run(false, Vec::new()));
    snapshot("later runs", &r);
    // A reload keeps the counters and sets the gauges' first values again.
    for p in &probes {
        m.init_probe(p);
    }
    snapshot("reload", &r);
    for p in &probes {
        m.forget_probe(p);
    }
    snapshot("forgotten", &r);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(GOLDEN, &got).expect("write the golden file");
    }
    let want = std::fs::read_to_string(GOLDEN).expect("the golden file");
    assert!(got == want, "the families changed:\n{got}");
}

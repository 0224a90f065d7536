//! The answer against what the prometheus-client registry of the run's families wrote before
//! (`Metrics::new_run_only`: the same names, help, units and label sets), for every kind.

use super::*;
use crate::exposition::to_text_004;
use crate::metrics::{NameLabels, PhaseLabels, ProbeLabels};
use crate::probe::{KindFamily, Observation, Observations, Outcome, ProbeError, Reason};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;
use std::time::Duration;

type FloatGauge = Gauge<f64, AtomicU64>;

/// The OpenMetrics text the registry of `Metrics::new_run_only` encoded for this run.
fn reference(probe: &str, kind: Kind, run: &RunResult) -> String {
    let mut r = Registry::with_prefix("pathwatch");
    let labels = ProbeLabels {
        probe: probe.to_string(),
        kind,
    };
    let success = Family::<ProbeLabels, Gauge>::default();
    success.get_or_create(&labels).set(i64::from(run.ok()));
    r.register(
        "probe_success",
        "Whether the run succeeded (1) or failed (0)",
        success,
    );
    let duration = Family::<ProbeLabels, FloatGauge>::default();
    duration
        .get_or_create(&labels)
        .set(run.duration.as_secs_f64());
    r.register_with_unit(
        "probe_duration",
        "Duration of the run",
        Unit::Seconds,
        duration,
    );
    let phases = Family::<PhaseLabels, FloatGauge>::default();
    for phase in Phase::ALL {
        if let Some((_, took)) = run.phases.iter().find(|(p, _)| p == phase) {
            let l = PhaseLabels {
                probe: probe.to_string(),
                kind,
                phase: *phase,
            };
            phases.get_or_create(&l).set(took.as_secs_f64());
        }
    }
    r.register_with_unit(
        "probe_phase_duration",
        "Duration of each phase the run completed",
        Unit::Seconds,
        phases,
    );
    let name = NameLabels {
        probe: probe.to_string(),
    };
    for g in kind.families().iter().filter(|f| f.on_demand) {
        let unreported = (g.unreported == Unreported::Zero).then_some(0.0);
        let value = run.observations.value(g.name).or(unreported);
        match g.family_type {
            FamilyType::IntGauge => {
                let family = Family::<NameLabels, Gauge>::default();
                if let Some(v) = value {
                    family.get_or_create(&name).set(v as i64);
                }
                register(&mut r, g, family);
            }
            _ => {
                let family = Family::<NameLabels, FloatGauge>::default();
                if let Some(v) = value {
                    family.get_or_create(&name).set(v);
                }
                register(&mut r, g, family);
            }
        }
    }
    let mut text = String::new();
    encode(&mut text, &r).expect("encode");
    text
}

/// Registers a declared family as the exporter's registry did.
fn register(r: &mut Registry, g: &KindFamily, family: impl prometheus_client::registry::Metric) {
    match g.unit {
        Some("seconds") => r.register_with_unit(g.name, g.help, Unit::Seconds, family),
        Some("bytes") => r.register_with_unit(g.name, g.help, Unit::Bytes, family),
        Some(u) => r.register_with_unit(g.name, g.help, Unit::Other(u.into()), family),
        None => r.register(g.name, g.help, family),
    }
}

/// The text with each family's sample lines sorted: a prometheus-client family writes its
/// series in hash order, the answer its phases in `Phase::ALL` order.
fn canonical(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut samples: Vec<&str> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            samples.sort_unstable();
            out.extend(samples.drain(..).map(str::to_string));
            out.push(line.to_string());
        } else {
            samples.push(line);
        }
    }
    samples.sort_unstable();
    out.extend(samples.drain(..).map(str::to_string));
    out
}

fn run(ok: bool, phases: &[Phase], status: Option<u16>, kind: Kind) -> RunResult {
    let mut observations = Observations::default();
    let status_family = crate::probe::kinds::http::STATUS;
    let gauges = kind
        .families()
        .iter()
        .filter(|f| **f != status_family)
        .map(|f| f.sample(1_795_957_554.5));
    observations.set(Observation::Samples(gauges.collect()));
    if let Some(code) = status {
        observations.set(Observation::Samples(vec![
            status_family.sample(f64::from(code)),
        ]));
    }
    RunResult {
        finished_unix_seconds: 1_795_957_554.998_789_4,
        duration: Duration::from_nanos(1_234_567),
        phases: phases
            .iter()
            .enumerate()
            .map(|(i, p)| (*p, Duration::from_nanos(301_246 + i as u64 * 7)))
            .collect(),
        failed_phase: None,
        observations,
        next_run: None,
        trace_id: Some("0af7651916cd43dd8448eb211c80319c".to_string()),
        lateness: None,
        outcome: if ok {
            Ok(Outcome::default())
        } else {
            Err(ProbeError::new(Reason::Timeout, "cut"))
        },
    }
}

#[test]
fn every_kinds_answer_is_what_the_registry_wrote_in_both_formats() {
    let all: Vec<Phase> = Phase::ALL.to_vec();
    let mut reversed = all.clone();
    reversed.reverse();
    let cases: Vec<(bool, Vec<Phase>, Option<u16>)> = vec![
        (true, vec![Phase::ALL[0]], Some(200)),
        (false, Vec::new(), None),
        (false, reversed, Some(503)),
        (true, all.iter().chain(&all).copied().collect(), Some(200)),
    ];
    for kind in Kind::ALL {
        for probe in ["tcp", "web-1", "a\"b\\c\nd"] {
            for (ok, phases, status) in &cases {
                let r = run(*ok, phases, *status, *kind);
                let want = reference(probe, *kind, &r);
                let om = write(probe, *kind, &r, ScrapeFormat::OpenMetrics);
                assert_eq!(canonical(&om), canonical(&want), "{kind}\n{om}\n{want}");
                if phases.len() <= 1 {
                    // One series per family: no order to differ in.
                    assert_eq!(om, want);
                }
                let mut want_004 = String::new();
                to_text_004(&want, &mut want_004);
                let text = write(probe, *kind, &r, ScrapeFormat::Text004);
                assert_eq!(canonical(&text), canonical(&want_004), "{kind}\n{text}");
                assert!(
                    !text.contains("# UNIT") && !text.contains("# EOF"),
                    "{text}"
                );
            }
        }
    }
}

#[test]
fn a_tcp_answer_is_exactly_this() {
    let r = run(true, &[Phase::ALL[0]], None, Kind::Tcp);
    let phase = Phase::ALL[0].as_str();
    let want = format!(
        "# HELP pathwatch_probe_success Whether the run succeeded (1) or failed (0).\n\
         # TYPE pathwatch_probe_success gauge\n\
         pathwatch_probe_success{{probe=\"t\",kind=\"tcp\"}} 1\n\
         # HELP pathwatch_probe_duration_seconds Duration of the run.\n\
         # TYPE pathwatch_probe_duration_seconds gauge\n\
         pathwatch_probe_duration_seconds{{probe=\"t\",kind=\"tcp\"}} 0.001234567\n\
         # HELP pathwatch_probe_phase_duration_seconds Duration of each phase the run completed.\n\
         # TYPE pathwatch_probe_phase_duration_seconds gauge\n\
         pathwatch_probe_phase_duration_seconds{{probe=\"t\",kind=\"tcp\",phase=\"{phase}\"}} 0.000301246\n"
    );
    assert_eq!(write("t", Kind::Tcp, &r, ScrapeFormat::Text004), want);
}

//! The rows' text against prometheus-client's for the same values: byte for byte, line by
//! line (series order follows a hash map in both, so lines are compared sorted).

use super::*;
use crate::metrics::{NameLabels, PhaseLabels, ProbeLabels, RunLabels};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::time::Duration;

type FloatGauge = Gauge<f64, AtomicU64>;
type Hist = Family<
    ProbeLabels,
    HistogramWithExemplars<TraceLabels>,
    fn() -> HistogramWithExemplars<TraceLabels>,
>;

const BUCKETS: &[f64] = &[0.01, 0.1, 1.0, 10.0];
const OWN: &[f64] = &[0.5, 2.0];

fn families() -> RowFamilies {
    RowFamilies {
        fields: [
            ("pathwatch_a", None, "A (1) or not (0)"),
            ("pathwatch_b", None, "B"),
            ("pathwatch_c", None, "C"),
            ("pathwatch_d_seconds", Some("seconds"), "D"),
            ("pathwatch_e_seconds", Some("seconds"), "E"),
            ("pathwatch_f_seconds", Some("seconds"), "F"),
            ("pathwatch_g_seconds", Some("seconds"), "G"),
        ],
        runs: ("pathwatch_runs", None, "Runs; by result"),
        phases: ("pathwatch_phase_seconds", Some("seconds"), "Phases"),
        run_duration: ("pathwatch_run_seconds", Some("seconds"), "Runs"),
    }
}

/// prometheus-client's families, registered as metrics.rs names them.
struct Reference {
    ints: [Family<ProbeLabels, Gauge>; 3],
    floats: [Family<ProbeLabels, FloatGauge>; 3],
    last: Family<NameLabels, FloatGauge>,
    runs: Family<RunLabels, Counter>,
    phases: Family<PhaseLabels, FloatGauge>,
    hist: Hist,
    own: Hist,
    registry: Registry,
}

impl Reference {
    fn new() -> Self {
        let mut r = Registry::with_prefix("pathwatch");
        let ints: [Family<ProbeLabels, Gauge>; 3] = Default::default();
        let floats: [Family<ProbeLabels, FloatGauge>; 3] = Default::default();
        r.register("a", "A (1) or not (0)", ints[0].clone());
        r.register("b", "B", ints[1].clone());
        r.register("c", "C", ints[2].clone());
        for (name, f) in ["d", "e", "f"].iter().zip(&floats) {
            r.register_with_unit(*name, name.to_uppercase(), Unit::Seconds, f.clone());
        }
        let runs = Family::<RunLabels, Counter>::default();
        r.register("runs", "Runs; by result", runs.clone());
        let phases = Family::<PhaseLabels, FloatGauge>::default();
        r.register_with_unit("phase", "Phases", Unit::Seconds, phases.clone());
        let last = Family::<NameLabels, FloatGauge>::default();
        r.register_with_unit("g", "G", Unit::Seconds, last.clone());
        let hist: Hist =
            Family::new_with_constructor(|| HistogramWithExemplars::new(BUCKETS.iter().copied()));
        let own: Hist =
            Family::new_with_constructor(|| HistogramWithExemplars::new(OWN.iter().copied()));
        // One family in the text: the probes with their own bounds register nothing apart,
        // their lines are added to the family's below.
        r.register_with_unit("run", "Runs", Unit::Seconds, hist.clone());
        Reference {
            ints,
            floats,
            last,
            runs,
            phases,
            hist,
            own,
            registry: r,
        }
    }

    fn text(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("encode");
        // The series with their own bounds, through a registry of their own.
        let mut r = Registry::with_prefix("pathwatch");
        r.register_with_unit("run", "Runs", Unit::Seconds, self.own.clone());
        let mut own = String::new();
        encode(&mut own, &r).expect("encode");
        let own = own
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"));
        text.strip_suffix("# EOF\n").expect("EOF").to_string() + &own.collect::<String>()
    }
}

fn sorted(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    lines
}

fn ours(rows: &ProbeRows) -> String {
    rows.encode_parts().expect("encoded").concat()
}

#[test]
fn rows_write_what_prometheus_client_writes() {
    let rows = ProbeRows::new(families(), BUCKETS);
    let want = Reference::new();
    let odd = "a\"b\\c\nd";
    for (i, name) in ["db", "p1", odd, "x.y:z"].iter().enumerate() {
        let kind = if i == 1 { Kind::Postgres } else { Kind::Tcp };
        let l = ProbeLabels {
            probe: name.to_string(),
            kind,
        };
        let bounds = [Some(BUCKETS), Some(OWN), None, Some(BUCKETS)][i];
        rows.init(name, kind, 5.0, 0.25 * i as f64, bounds);
        let _ = want.ints[1].get_or_create(&l);
        let _ = want.ints[2].get_or_create(&l);
        want.floats[1].get_or_create(&l).set(5.0);
        want.floats[2].get_or_create(&l).set(0.25 * i as f64);
        let run = |result, reason| RunLabels {
            probe: name.to_string(),
            kind,
            result,
            reason,
        };
        let _ = want
            .runs
            .get_or_create(&run(RunResultLabel::Success, Reason::Ok));
        match bounds {
            Some(b) if b == OWN => drop(want.own.get_or_create(&l)),
            Some(_) => drop(want.hist.get_or_create(&l)),
            None => {}
        }
        // Only some probes have run: success, duration, phases and last run are absent
        // for the others.
        if i % 2 == 1 {
            continue;
        }
        let trace = TraceLabels {
            trace_id: format!("t{i}"),
        };
        let phases = [
            (Phase::Resolve, Duration::from_micros(12)),
            (Phase::Connect, Duration::from_millis(301)),
        ];
        for (ok, reason, secs) in [
            (true, Reason::Ok, 0.000301246),
            (false, Reason::Refused, 0.02),
            (false, Reason::Timeout, 5.0),
        ] {
            rows.record(
                name,
                kind,
                &RowRun {
                    ok,
                    reason,
                    seconds: secs,
                    phases: &phases[..if ok { 2 } else { 1 }],
                    finished_unix_seconds: 1795957554.9987894,
                    exemplar: Some(&trace),
                },
            );
            want.ints[0].get_or_create(&l).set(i64::from(ok));
            if ok {
                want.ints[1].get_or_create(&l).set(0);
            } else {
                want.ints[1].get_or_create(&l).inc();
            }
            want.ints[2]
                .get_or_create(&l)
                .set(i64::from(reason == Reason::Timeout));
            want.floats[0].get_or_create(&l).set(secs);
            let result = if ok {
                RunResultLabel::Success
            } else {
                RunResultLabel::Failure
            };
            want.runs.get_or_create(&run(result, reason)).inc();
            want.last
                .get_or_create(&NameLabels {
                    probe: name.to_string(),
                })
                .set(1795957554.9987894);
            if let Some(b) = bounds {
                let h = if b == OWN { &want.own } else { &want.hist };
                h.get_or_create(&l).observe(secs, Some(trace.clone()), None);
            }
        }
        for (p, d) in &phases[..1] {
            want.phases
                .get_or_create(&PhaseLabels {
                    probe: name.to_string(),
                    kind,
                    phase: *p,
                })
                .set(d.as_secs_f64());
        }
    }
    let text = ours(&rows);
    let reference = want.text();
    assert_eq!(sorted(&text), sorted(&reference));
    // Each family's lines together, in the reference's family order.
    let names = |t: &str| {
        let mut v: Vec<String> = t
            .lines()
            .filter(|l| l.starts_with("# TYPE"))
            .map(String::from)
            .collect();
        v.dedup();
        v
    };
    assert_eq!(names(&text), names(&reference));
    assert!(
        text.contains("pathwatch_b{probe=\"db\",kind=\"tcp\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("pathwatch_g_seconds{probe=\"db\"} 1795957554.9987894\n"),
        "{text}"
    );
    assert!(text.contains("pathwatch_runs_total{probe=\"p1\",kind=\"postgres\",result=\"success\",reason=\"ok\"} 0\n"), "{text}");
    assert!(!text.contains("pathwatch_a{probe=\"p1\""), "{text}");
    assert!(
        !text.contains("pathwatch_phase_seconds{probe=\"db\",kind=\"tcp\",phase=\"connect\""),
        "{text}"
    );
    assert_eq!(rows.get(Field::Success, "p1"), None);
    assert_eq!(rows.get(Field::Timeout, "p1"), Some(5.0));
    assert_eq!(
        rows.runs("db", RunResultLabel::Failure, Reason::Refused),
        Some(1)
    );
}

#[test]
fn a_reload_keeps_counts_resets_changed_buckets_and_forgets() {
    let rows = ProbeRows::new(families(), BUCKETS);
    let run = RowRun {
        ok: true,
        reason: Reason::Ok,
        seconds: 0.5,
        phases: &[],
        finished_unix_seconds: 1.0,
        exemplar: None,
    };
    rows.init("a", Kind::Tcp, 1.0, 10.0, Some(BUCKETS));
    rows.record("a", Kind::Tcp, &run);
    rows.init("a", Kind::Tcp, 2.0, 10.0, Some(BUCKETS));
    let text = ours(&rows);
    assert!(
        text.contains("pathwatch_run_seconds_count{probe=\"a\",kind=\"tcp\"} 1\n"),
        "{text}"
    );
    assert_eq!(rows.runs("a", RunResultLabel::Success, Reason::Ok), Some(1));
    assert_eq!(rows.get(Field::Timeout, "a"), Some(2.0));

    rows.init("a", Kind::Tcp, 2.0, 10.0, Some(OWN));
    let text = ours(&rows);
    assert!(
        text.contains("pathwatch_run_seconds_count{probe=\"a\",kind=\"tcp\"} 0\n"),
        "{text}"
    );
    assert!(text.contains("le=\"2.0\""), "{text}");
    rows.init("a", Kind::Tcp, 2.0, 10.0, None);
    assert!(!ours(&rows).contains("pathwatch_run_seconds"));

    // Another kind under the same name is a new row.
    rows.init("a", Kind::Redis, 2.0, 10.0, None);
    assert_eq!(rows.runs("a", RunResultLabel::Success, Reason::Ok), Some(0));
    assert!(ours(&rows).contains("kind=\"redis\""));
    assert!(rows.forget("a"));
    assert!(!rows.forget("a"));
    assert_eq!(ours(&rows), "");
}

/// The rows are encoded in two halves side by side: whichever half holds the only row of a
/// family, the family's metadata comes once, before its lines, and its lines stay together.
#[test]
fn each_family_once_and_together_whichever_half_has_it() {
    let run = RowRun {
        ok: true,
        reason: Reason::Ok,
        seconds: 0.5,
        phases: &[(Phase::Connect, Duration::from_millis(3))],
        finished_unix_seconds: 1.0,
        exemplar: None,
    };
    for n in 1..=6 {
        for ran in 0..n {
            let rows = ProbeRows::new(families(), BUCKETS);
            for i in 0..n {
                let name = format!("p{i}");
                rows.init(&name, Kind::Tcp, 1.0, 10.0, (i == ran).then_some(BUCKETS));
                if i == ran {
                    rows.record(&name, Kind::Tcp, &run);
                }
            }
            let text = ours(&rows);
            let mut seen: Vec<&str> = Vec::new();
            for line in text.lines() {
                let family = match line.strip_prefix("# TYPE ") {
                    Some(t) => t.split(' ').next().unwrap_or(""),
                    None if line.starts_with('#') => continue,
                    None => {
                        let name = line.split(['{', ' ']).next().unwrap_or("");
                        let last = seen.last().copied().unwrap_or("");
                        assert!(name.starts_with(last), "{name} outside {last}:\n{text}");
                        continue;
                    }
                };
                assert!(!seen.contains(&family), "{family} twice:\n{text}");
                seen.push(family);
            }
            assert_eq!(seen.len(), 10, "{text}");
            assert_eq!(text.matches("pathwatch_phase_seconds{").count(), 1);
            assert_eq!(text.matches("pathwatch_run_seconds_count{").count(), 1);
        }
    }
}

//! Tests of store/mod.rs.

use super::*;
use crate::incident::Status;
use crate::probe::{Observation, Outcome};
use prometheus_client::registry::Registry;

fn state() -> (State, Config) {
    // State holds a webhook client; main installs the provider once per process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let text = "probes:\n  - { name: judged, kind: tcp, host: 127.0.0.1, port: 9 }\n  - { name: plain, kind: tcp, host: 127.0.0.1, port: 9 }\nincidents:\n  - id: x\n    title: t\n    criteria:\n      - { name: up, probe: judged, success: true }\n";
    let config = crate::config::parse("t.yaml", text, &|_| None)
        .expect("config")
        .config;
    let metrics = Metrics::new(&mut Registry::default());
    (State::new(metrics, &config), config)
}

fn run(i: u64) -> RunResult {
    RunResult {
        finished_unix_seconds: unix_now(),
        duration: Duration::from_millis(i),
        phases: Vec::new(),
        failed_phase: None,
        observations: Default::default(),
        next_run: None,
        trace_id: None,
        lateness: Some(Duration::from_micros(i)),
        outcome: Ok(Outcome::default()),
    }
}

#[test]
fn whole_results_are_kept_only_as_deep_as_an_incident_needs() {
    let (state, config) = state();
    for i in 0..(HISTORY as u64 + 10) {
        for p in &config.probes {
            state.record(p, run(i));
        }
    }
    let probes: HashMap<_, _> = state.probes().into_iter().collect();
    assert_eq!(probes["judged"].runs.len(), HISTORY);
    assert_eq!(probes["plain"].runs.len(), 1);
    for name in ["judged", "plain"] {
        let e = &probes[name];
        assert_eq!(e.points.len(), HISTORY, "{name}");
        // Oldest first, the newest last, lateness carried along.
        let last = e.points.back().expect("points");
        assert_eq!(
            last.seconds,
            stored_seconds((HISTORY as f32 + 9.0) / 1000.0)
        );
        assert_eq!(
            e.points.front().map(|p| p.seconds),
            Some(stored_seconds(0.010))
        );
        assert_eq!(
            last.lateness_seconds,
            Some(stored_seconds((HISTORY as f32 + 9.0) / 1e6))
        );
        assert_eq!(e.latest().map(|r| r.duration.as_millis()), Some(69));
    }
}

#[test]
fn a_restart_while_healthy_goes_unknown_to_resolved_without_present() {
    // A fresh State is what a restarted pathwatch has: no history, every incident UNKNOWN.
    let (state, config) = state();
    let judged = &config.probes[0];
    state.evaluate_all();
    assert_eq!(state.status("x"), Status::Unknown);
    state.record(judged, run(1));
    assert_eq!(state.status("x"), Status::Unknown);
    let (_, t) = &state.incidents()[0];
    let progress = t.evaluation.as_ref().and_then(|e| e.resolving);
    assert_eq!(
        progress
            .map(super::super::incident::engine::Progress::text)
            .as_deref(),
        Some("resolving: 1 of 2 passing results")
    );
    state.record(judged, run(2));
    assert_eq!(state.status("x"), Status::Resolved);
    let (_, t) = &state.incidents()[0];
    // One change (UNKNOWN -> RESOLVED), never PRESENT.
    assert_eq!(t.changes, 1);
}

#[test]
fn a_golden_run_failing_before_the_events_zeroes_delivered_and_drops_event_times() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let text = "probes:\n  - name: gp\n    kind: golden_path\n    login: { url: http://127.0.0.1:9/login, email: a@b.c, password: p }\n    websocket: { url: ws://127.0.0.1:9/ws }\n    message: hi\n";
    let config = crate::config::parse("t.yaml", text, &|_| None)
        .expect("config")
        .config;
    let mut registry = Registry::with_prefix("pathwatch");
    let metrics = Metrics::new(&mut registry);
    let p = &config.probes[0];
    metrics.init_probe(p);
    let state = State::new(metrics, &config);
    let crate::probe::ProbeSpec::GoldenPath(g) = &p.spec else {
        panic!("golden path spec");
    };
    let mut ok = run(1);
    let seen = crate::probe::kinds::golden::GoldenObs {
        expected: g.events.clone(),
        arrived: g
            .events
            .iter()
            .map(|_| Some(Duration::from_secs(1)))
            .collect(),
        total: Some(Duration::from_secs(2)),
        ..Default::default()
    };
    ok.observations.set(Observation::Samples(seen.samples()));
    state.record(p, ok);
    let text = encode(&registry);
    let delivered = format!(
        "pathwatch_golden_path_events_delivered{{probe=\"gp\"}} {}",
        g.events.len()
    );
    assert!(text.contains(&delivered), "{text}");
    assert!(
        text.contains("pathwatch_golden_path_event_seconds{"),
        "{text}"
    );
    let mut failed = run(2);
    failed.outcome = Err(crate::probe::ProbeError::new(
        Reason::Refused,
        "login refused",
    ));
    state.record(p, failed);
    let text = encode(&registry);
    assert!(
        text.contains("pathwatch_golden_path_events_delivered{probe=\"gp\"} 0"),
        "{text}"
    );
    assert!(
        !text.contains("pathwatch_golden_path_event_seconds{"),
        "{text}"
    );
    let expected = format!(
        "pathwatch_golden_path_events_expected{{probe=\"gp\"}} {}",
        g.events.len()
    );
    assert!(text.contains(&expected), "{text}");
}

fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).expect("encode");
    out
}

/// Every line `log_run` writes, at debug level, as text.
fn logged(f: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let out = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || out.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let bytes = buf
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn a_run_is_logged_at_info_or_warn_when_it_changes_and_debug_when_it_repeats() {
    let (_, config) = state();
    let p = &config.probes[0];
    let ok = run(5);
    let failed = RunResult {
        failed_phase: Some(crate::probe::common::trace::Phase::Connect),
        outcome: Err(crate::probe::ProbeError::new(
            Reason::Protocol,
            "bad answer",
        )),
        ..run(7)
    };
    let text = logged(|| {
        log_run(p, &ok, None);
        log_run(p, &ok, Some(ok.reason()));
        log_run(p, &failed, Some(ok.reason()));
        log_run(p, &failed, Some(failed.reason()));
    });
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let fields = "probe=judged kind=tcp duration_seconds=0.005";
    assert!(
        lines[0].contains(" INFO ") && lines[0].contains("probe succeeded"),
        "{text}"
    );
    assert!(lines[0].ends_with(fields), "{text}");
    assert!(
        lines[1].contains(" DEBUG ") && lines[1].ends_with(fields),
        "{text}"
    );
    let fields = "probe=judged kind=tcp reason=protocol phase=\"connect\" \
                  duration_seconds=0.007 detail=bad answer";
    assert!(
        lines[2].contains(" WARN ") && lines[2].contains("probe failed"),
        "{text}"
    );
    assert!(lines[2].ends_with(fields), "{text}");
    assert!(
        lines[3].contains(" DEBUG ") && lines[3].ends_with(fields),
        "{text}"
    );
}

#[test]
fn points_keep_the_last_hour_in_order_with_each_ok_bit_and_missing_lateness() {
    let mut points = Points::default();
    assert!(points.is_empty() && points.back().is_none());
    let total = HISTORY + 25;
    for i in 0..total {
        points.push(RunPoint {
            seconds: i as f32,
            ok: i % 3 != 0,
            lateness_seconds: (i % 2 == 0).then_some(i as f32 / 1000.0),
        });
    }
    assert_eq!(points.len(), HISTORY);
    let kept: Vec<RunPoint> = points.iter().collect();
    let expected: Vec<RunPoint> = (total - HISTORY..total)
        .map(|i| RunPoint {
            seconds: i as f32,
            ok: i % 3 != 0,
            lateness_seconds: (i % 2 == 0).then_some(stored_seconds(i as f32 / 1000.0)),
        })
        .collect();
    assert_eq!(kept, expected);
    assert_eq!(points.front(), expected.first().copied());
    assert_eq!(points.back(), expected.last().copied());
}

/// Points keep half-precision seconds: within 0.05 % of what was pushed (0.06 µs below
/// 61 µs), and a run past the largest half-precision value saturates rather than turning
/// infinite.
#[test]
fn points_keep_seconds_within_a_twentieth_of_a_percent() {
    let mut points = Points::default();
    let pushed = [0.000_301_2_f32, 0.0137, 1.234_567, 59.99, 75.0, 3599.0, 1e6];
    for s in pushed {
        points.push(RunPoint {
            seconds: s,
            ok: true,
            lateness_seconds: Some(s / 10.0),
        });
    }
    for (s, p) in pushed.iter().zip(points.iter()) {
        let want = s.min(65504.0);
        let close = |got: f32, want: f32| (got - want).abs() <= (want * 0.0005).max(6e-8);
        assert!(close(p.seconds, want), "{s} kept as {}", p.seconds);
        let (late, want) = (
            p.lateness_seconds.expect("lateness"),
            (s / 10.0).min(65504.0),
        );
        assert!(close(late, want), "{late}");
    }
    assert_eq!(points.back().map(|p| p.seconds), Some(65504.0));
}

#[test]
fn each_probe_finds_the_incidents_judging_it_once_each_in_config_order() {
    let text = "probes:\n  - { name: a, kind: tcp, host: 127.0.0.1, port: 9 }\n  - { name: b, kind: tcp, host: 127.0.0.1, port: 9 }\n  - { name: c, kind: tcp, host: 127.0.0.1, port: 9 }\nincidents:\n  - id: one\n    criteria:\n      - { name: up, probe: a, success: true }\n      - { name: fast, probe: a, max_seconds: 1 }\n      - { name: b_up, probe: b, success: true }\n  - id: two\n    criteria:\n      - { name: up, probe: b, success: true }\n";
    let config = crate::config::parse("t.yaml", text, &|_| None)
        .expect("config")
        .config;
    let incidents = Incidents::new(config.incidents.clone());
    let ids = |p: &str| -> Vec<String> { incidents.judging(p).into_iter().map(|i| i.id).collect() };
    assert_eq!(ids("a"), ["one"]);
    assert_eq!(ids("b"), ["one", "two"]);
    assert!(ids("c").is_empty());
    assert!(ids("nowhere").is_empty());
}

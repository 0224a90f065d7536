//! What the exporter knows now: each probe's recent results (a bounded history for the
//! status page and the incident engine) and each incident's status. Written by the runner,
//! read by scrapes and pages.

use crate::config::{Config, ProbeConfig};
use crate::core::clock::unix_now;
use crate::incident::engine::ProbeView;
use crate::incident::rootcause::{self, Graph, Judgement};
use crate::incident::{IncidentSpec, Status, Tracked, evaluate, notify};
use crate::metrics::Metrics;
use crate::probe::RunResult;
use crate::probe::{Kind, Reason};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Runs kept per probe: an hour at a 1-minute interval, enough for a sparkline.
pub const HISTORY: usize = 60;

#[derive(Debug)]
pub struct State {
    pub metrics: Metrics,
    probes: RwLock<HashMap<String, ProbeEntry>>,
    /// Replaced whole on reload; evaluations take a copy of the list.
    incidents: RwLock<Vec<IncidentSpec>>,
    tracked: Mutex<HashMap<String, Tracked>>,
    webhooks: reqwest::Client,
    /// The dependency graph (only the probes in one) and its latest judgement.
    graph: RwLock<Graph>,
    judgement: RwLock<Judgement>,
}

/// A probe's schedule and its recent results, oldest first.
#[derive(Clone, Debug)]
pub struct ProbeEntry {
    pub kind: Kind,
    pub interval: Duration,
    pub timeout: Duration,
    /// Whole results: [`HISTORY`] deep for a probe an incident judges (the engine counts
    /// streaks over them), else only the latest. A whole result is ~600 bytes; at 10,000
    /// probes an hour of them would be ~360 MB.
    pub runs: Vec<Arc<RunResult>>,
    /// Every probe's last [`HISTORY`] runs as points for the status page (16 bytes each).
    pub points: VecDeque<RunPoint>,
}

/// One run as the status page and `/api/status` show it. f32 seconds: 8 µs resolution at
/// 120 s, far below what a sparkline or a lateness figure needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunPoint {
    pub seconds: f32,
    pub ok: bool,
    /// How late the run started against its slot; `None` for runs not scheduled.
    pub lateness_seconds: Option<f32>,
}

impl ProbeEntry {
    fn new(probe: &ProbeConfig) -> Self {
        ProbeEntry {
            kind: probe.spec.kind(),
            interval: probe.interval,
            timeout: probe.timeout,
            runs: Vec::new(),
            points: VecDeque::new(),
        }
    }

    pub fn latest(&self) -> Option<&Arc<RunResult>> {
        self.runs.last()
    }

    /// Adds a run, keeping `depth` whole results and [`HISTORY`] points.
    fn push(&mut self, run: Arc<RunResult>, depth: usize) {
        if self.points.len() == HISTORY {
            self.points.pop_front();
        }
        self.points.push_back(RunPoint {
            seconds: run.duration.as_secs_f32(),
            ok: run.ok(),
            lateness_seconds: run.lateness.map(|l| l.as_secs_f32()),
        });
        self.runs.push(run);
        if self.runs.len() > depth {
            let excess = self.runs.len() - depth;
            self.runs.drain(..excess);
        }
    }
}

impl State {
    pub fn new(metrics: Metrics, config: &Config) -> Self {
        let probes = config
            .probes
            .iter()
            .map(|p| (p.name.clone(), ProbeEntry::new(p)))
            .collect();
        for inc in &config.incidents {
            metrics.incidents.init(inc);
        }
        let graph = graph_of(config);
        let members: Vec<String> = graph.keys().cloned().collect();
        metrics.root_causes.set(&members, &Judgement::default());
        State {
            metrics,
            probes: RwLock::new(probes),
            incidents: RwLock::new(config.incidents.clone()),
            tracked: Mutex::new(HashMap::new()),
            webhooks: reqwest::Client::new(),
            graph: RwLock::new(graph),
            judgement: RwLock::new(Judgement::default()),
        }
    }

    /// Judges the probes of the dependency graph on their latest results and exports it.
    /// Runs on a result of a probe in the graph, so probes outside one cost nothing.
    fn rejudge(&self) {
        let graph = self.graph.read().unwrap_or_else(|p| p.into_inner());
        let j = {
            let probes = self.probes.read().unwrap_or_else(|p| p.into_inner());
            rootcause::judge(&graph, |name| {
                probes
                    .get(name)
                    .and_then(ProbeEntry::latest)
                    .is_some_and(|r| !r.ok())
            })
        };
        let members: Vec<String> = graph.keys().cloned().collect();
        self.metrics.root_causes.set(&members, &j);
        *self.judgement.write().unwrap_or_else(|p| p.into_inner()) = j;
    }

    /// The latest root-cause judgement (empty when nothing in a dependency graph fails).
    pub fn judgement(&self) -> Judgement {
        self.judgement
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// `Root cause: vpc-connector (ERROR); 7 failures follow from it`, naming each root's
    /// reported state or failure reason; None when nothing in a dependency graph fails.
    pub fn root_cause_line(&self) -> Option<String> {
        let j = self.judgement();
        let probes = self.probes.read().unwrap_or_else(|p| p.into_inner());
        j.line(|name| Some(probes.get(name)?.latest()?.brief()))
    }

    /// Stores a run, updates its metrics, logs when its result changes, and re-evaluates
    /// the incidents that depend on the probe.
    pub fn record(&self, probe: &ProbeConfig, run: RunResult) {
        let kind = probe.spec.kind();
        self.metrics
            .record(&probe.name, kind, probe.spec.db_transport(), &run);
        if let (crate::probe::ProbeSpec::GoldenPath(g), None) =
            (&probe.spec, run.observations.golden())
        {
            self.metrics
                .kinds
                .golden
                .events_not_reached(&probe.name, &g.events);
        }
        let run = Arc::new(run);
        let judging = self.incidents_judging(&probe.name);
        // An incident added by a reload starts its streaks from the runs after it.
        let depth = if judging.is_empty() { 1 } else { HISTORY };
        let previous = {
            let mut probes = self.probes.write().unwrap_or_else(|p| p.into_inner());
            let entry = probes
                .entry(probe.name.clone())
                .or_insert_with(|| ProbeEntry::new(probe));
            let previous = entry.latest().map(|r| r.reason());
            entry.push(run.clone(), depth);
            previous
        };
        log_run(probe, &run, previous);
        let in_graph = self
            .graph
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&probe.name);
        if in_graph {
            self.rejudge();
        }
        let now = unix_now();
        for inc in &judging {
            self.evaluate(inc, now);
        }
    }

    /// The incidents with a criterion on `probe`.
    fn incidents_judging(&self, probe: &str) -> Vec<IncidentSpec> {
        self.incidents
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|i| i.criteria.iter().any(|c| c.probe == probe))
            .cloned()
            .collect()
    }

    fn incident_specs(&self) -> Vec<IncidentSpec> {
        self.incidents
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Moves to a reloaded config. Probes that stay (same name and kind) keep their history
    /// and counters; the series of probes and incidents that left are removed; incidents
    /// keep their status across the reload.
    pub fn reconfigure(&self, old: &Config, new: &Config) {
        {
            let mut probes = self.probes.write().unwrap_or_else(|p| p.into_inner());
            for o in &old.probes {
                let stays = new
                    .probes
                    .iter()
                    .any(|n| n.name == o.name && n.spec.kind() == o.spec.kind());
                if !stays {
                    probes.remove(&o.name);
                    self.metrics.forget_probe(o);
                }
            }
            for n in &new.probes {
                let entry = probes
                    .entry(n.name.clone())
                    .or_insert_with(|| ProbeEntry::new(n));
                entry.interval = n.interval;
                entry.timeout = n.timeout;
                // Creates what is missing, updates the configured gauges, resets nothing.
                self.metrics.init_probe(n);
            }
        }
        {
            let mut tracked = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
            for o in &old.incidents {
                let same = new
                    .incidents
                    .iter()
                    .find(|n| n.id == o.id)
                    .is_some_and(|n| format!("{n:?}") == format!("{o:?}"));
                if !same {
                    self.metrics.incidents.forget(o);
                }
                if !new.incidents.iter().any(|n| n.id == o.id) {
                    tracked.remove(&o.id);
                }
            }
            for n in &new.incidents {
                let known = old
                    .incidents
                    .iter()
                    .any(|o| format!("{n:?}") == format!("{o:?}"));
                if !known {
                    self.metrics.incidents.init(n);
                }
            }
        }
        *self.incidents.write().unwrap_or_else(|p| p.into_inner()) = new.incidents.clone();
        *self.graph.write().unwrap_or_else(|p| p.into_inner()) = graph_of(new);
        self.metrics.root_causes.clear();
        self.rejudge();
        self.evaluate_all();
    }

    /// Re-evaluates every incident (staleness moves status even when no result arrives).
    pub fn evaluate_all(&self) {
        let now = unix_now();
        for inc in &self.incident_specs() {
            self.evaluate(inc, now);
        }
    }

    fn evaluate(&self, spec: &IncidentSpec, now: f64) {
        let mut tracked = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
        let t = tracked.entry(spec.id.clone()).or_default();
        let eval = {
            let probes = self.probes.read().unwrap_or_else(|p| p.into_inner());
            let view = |name: &str| {
                probes.get(name).map(|e| ProbeView {
                    kind: e.kind,
                    interval: e.interval,
                    timeout: e.timeout,
                    runs: &e.runs,
                })
            };
            evaluate(spec, &view, now, t.status)
        };
        let previous = t.status;
        if eval.status != previous {
            t.record_change(&eval, now);
            let root_cause = self.root_cause_line();
            notify::log_change(spec, &eval, previous, root_cause.as_deref());
            if let Some(hook) = &spec.webhook {
                let change = notify::Change {
                    incident: &spec.id,
                    title: &spec.title,
                    status: eval.status,
                    previous,
                    changed_at_unix: now,
                    summary: notify::line(spec, &eval),
                    criteria: &eval.criteria,
                    root_cause,
                };
                if let Ok(body) = serde_json::to_string(&change) {
                    notify::post(self.webhooks.clone(), hook.clone(), spec.id.clone(), body);
                }
            }
        }
        self.metrics.incidents.record(spec, &eval, t);
        t.evaluation = Some(eval);
    }

    /// Every probe with its history, sorted by name.
    pub fn probes(&self) -> Vec<(String, ProbeEntry)> {
        let probes = self.probes.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = probes.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Every incident with what is known of it, in config order.
    pub fn incidents(&self) -> Vec<(IncidentSpec, Tracked)> {
        let tracked = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
        self.incident_specs()
            .into_iter()
            .map(|i| {
                let t = tracked.get(&i.id).cloned().unwrap_or_default();
                (i, t)
            })
            .collect()
    }

    /// The status of one incident.
    pub fn status(&self, id: &str) -> Status {
        let tracked = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
        tracked.get(id).map_or(Status::Unknown, |t| t.status)
    }
}

/// A changed result (first run, success <-> failure, another reason) is news: info or warn.
/// A repeat of the same result is only debug, so a steady state does not flood the logs.
fn log_run(probe: &ProbeConfig, run: &RunResult, previous: Option<Reason>) {
    let changed = previous != Some(run.reason());
    let secs = run.duration.as_secs_f64();
    match (&run.outcome, changed) {
        (Ok(_), true) => tracing::info!(
            probe = %probe.name, kind = %probe.spec.kind(), duration_seconds = secs,
            "probe succeeded"
        ),
        (Ok(_), false) => tracing::debug!(
            probe = %probe.name, kind = %probe.spec.kind(), duration_seconds = secs,
            "probe succeeded"
        ),
        (Err(e), true) => tracing::warn!(
            probe = %probe.name, kind = %probe.spec.kind(), reason = %e.reason,
            phase = run.failed_phase.map(|p| p.as_str()).unwrap_or("-"),
            duration_seconds = secs, detail = %e.detail,
            "probe failed"
        ),
        (Err(e), false) => tracing::debug!(
            probe = %probe.name, kind = %probe.spec.kind(), reason = %e.reason,
            phase = run.failed_phase.map(|p| p.as_str()).unwrap_or("-"),
            duration_seconds = secs, detail = %e.detail,
            "probe failed"
        ),
    }
}

/// The config's dependency graph: only the probes that take part in one.
fn graph_of(config: &Config) -> Graph {
    rootcause::graph(
        config
            .probes
            .iter()
            .map(|p| (p.name.as_str(), p.depends_on.as_slice())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
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
            assert_eq!(last.seconds, (HISTORY as f32 + 9.0) / 1000.0);
            assert_eq!(e.points.front().map(|p| p.seconds), Some(0.010));
            assert_eq!(last.lateness_seconds, Some((HISTORY as f32 + 9.0) / 1e6));
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
            progress.map(|p| p.text()).as_deref(),
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
        ok.observations
            .set(Observation::Golden(crate::probe::golden::GoldenObs {
                expected: g.events.clone(),
                arrived: g
                    .events
                    .iter()
                    .map(|_| Some(Duration::from_secs(1)))
                    .collect(),
                total: Some(Duration::from_secs(2)),
                ..Default::default()
            }));
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
}

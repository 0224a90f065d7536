//! What the exporter knows now: each probe's recent results (a bounded history for the
//! status page and the incident engine) and each incident's status. Written by the runner,
//! read by scrapes and pages.

use crate::config::{Config, ProbeConfig};
use crate::core::clock::unix_now;
use crate::incident::engine::ProbeHistory;
use crate::incident::rootcause::{self, Graph, Judgement, Parts};
use crate::incident::{IncidentSpec, Tracked, evaluate, notify};
use crate::metrics::Metrics;
use crate::probe::RunResult;
use crate::probe::{Kind, Reason};
use half::f16;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Runs kept per probe: an hour at a 1-minute interval, enough for a sparkline.
pub(crate) const HISTORY: usize = 60;

/// Probes copied per read lock when the status page takes its snapshot (about 0.1 ms of
/// copying: what a run's result may wait for the lock).
const SNAPSHOT_SLICE: usize = 256;

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) metrics: Metrics,
    probes: RwLock<HashMap<String, ProbeEntry>>,
    /// Replaced whole on reload; evaluations take a copy of the list.
    incidents: RwLock<Incidents>,
    tracked: Mutex<HashMap<String, Tracked>>,
    /// Built on the first webhook sent: a client (its TLS config and root store) costs
    /// about 0.3 MiB of an idle exporter that has no webhook (bench/heap_profile.py).
    webhooks: std::sync::OnceLock<reqwest::Client>,
    judged: RwLock<Judged>,
}

/// The dependency graph (only the probes in one) cut into its parts, and each part's latest
/// judgement (by part index). One lock: the two never differ in size, and two judgements of
/// one part are never written out of order.
#[derive(Debug, Default)]
struct Judged {
    parts: Parts,
    judgements: Vec<Judgement>,
}

/// The incidents, and which of them judge each probe: replaced whole on reload.
#[derive(Debug)]
struct Incidents {
    list: Vec<IncidentSpec>,
    /// Probe -> the indexes in `list` of the incidents with a criterion on it, each once.
    /// Every result looks its probe up here: scanning every incident's criteria instead
    /// cost 0.23 cores at 10,000 probes and 5,000 incidents (0.1 without incidents).
    by_probe: HashMap<String, Vec<usize>>,
}

impl Incidents {
    fn new(list: Vec<IncidentSpec>) -> Incidents {
        let mut by_probe: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, inc) in list.iter().enumerate() {
            for c in &inc.criteria {
                let judged = by_probe.entry(c.probe.clone()).or_default();
                if judged.last() != Some(&i) {
                    judged.push(i);
                }
            }
        }
        Incidents { list, by_probe }
    }

    /// The incidents with a criterion on `probe`, in config order.
    fn judging(&self, probe: &str) -> Vec<IncidentSpec> {
        self.by_probe.get(probe).map_or_else(Vec::new, |found| {
            found.iter().map(|&i| self.list[i].clone()).collect()
        })
    }
}

/// A probe's schedule and its recent results, oldest first.
#[derive(Clone, Debug)]
pub(crate) struct ProbeEntry {
    pub(crate) kind: Kind,
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    /// Whole results: [`HISTORY`] deep for a probe an incident judges (the engine counts
    /// streaks over them), else only the latest. A whole result is ~600 bytes; at 10,000
    /// probes an hour of them would be ~360 MB.
    pub(crate) runs: Vec<Arc<RunResult>>,
    /// Every probe's last [`HISTORY`] runs as points for the status page (8 bytes each).
    pub(crate) points: Points,
}

/// One run as the status page and `/api/status` show it. f32 seconds: 8 µs resolution at
/// 120 s, far below what a sparkline or a lateness figure needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RunPoint {
    pub(crate) seconds: f32,
    pub(crate) ok: bool,
    /// How late the run started against its slot; `None` for runs not scheduled.
    pub(crate) lateness_seconds: Option<f32>,
}

/// The last [`HISTORY`] [`RunPoint`]s, oldest first, packed: 4 bytes a point and one bit
/// for `ok`, in one allocation of exactly [`HISTORY`] slots made on the first push. A
/// `VecDeque<RunPoint>` grew to 64 slots of 16 bytes: 1 KiB a probe, 100 MiB at 100,000
/// probes (bench/heap_profile.py); points of two `f32` were 480 bytes, these are 240.
#[derive(Clone, Debug, Default)]
pub(crate) struct Points {
    /// Slot `(start + i) % HISTORY` holds the i-th oldest point once the ring is full;
    /// until then slots are in order from 0.
    slots: Vec<Packed>,
    start: usize,
    /// Bit `s` is the `ok` of slot `s`.
    ok: u64,
}

/// One point without its `ok` bit, as half-precision seconds: 11 significant bits (0.05 %,
/// 0.5 µs at 1 ms, 30 ms at 60 s; 0.06 µs steps below 61 µs), far finer than a sparkline
/// or a lateness percentile reads, up to 65,504 s (longer saturates). `lateness_seconds` is NaN for `None` (a
/// lateness is never NaN: it comes from a Duration).
#[derive(Clone, Copy, Debug)]
struct Packed {
    seconds: f16,
    lateness_seconds: f16,
}

#[cfg(test)]
/// `seconds` as a point keeps it: the nearest half-precision value, at most [`f16::MAX`].
pub(crate) fn stored_seconds(seconds: f32) -> f32 {
    pack(seconds).to_f32()
}

fn pack(seconds: f32) -> f16 {
    // NaN stays NaN (`min` would turn it into MAX).
    if seconds.is_nan() {
        return f16::NAN;
    }
    f16::from_f32(seconds.min(f16::MAX.to_f32()))
}

// The `ok` bits of every slot fit in one word.
const _: () = assert!(HISTORY <= u64::BITS as usize);

impl Points {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The i-th oldest point.
    pub(crate) fn get(&self, i: usize) -> Option<RunPoint> {
        if i >= self.slots.len() {
            return None;
        }
        let slot = (self.start + i) % self.slots.len();
        let p = self.slots[slot];
        Some(RunPoint {
            seconds: p.seconds.to_f32(),
            ok: self.ok & (1u64 << slot) != 0,
            lateness_seconds: (!p.lateness_seconds.is_nan()).then(|| p.lateness_seconds.to_f32()),
        })
    }

    #[cfg(test)]
    pub(crate) fn front(&self) -> Option<RunPoint> {
        self.get(0)
    }

    #[cfg(test)]
    pub(crate) fn back(&self) -> Option<RunPoint> {
        self.get(self.slots.len().checked_sub(1)?)
    }

    /// Oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = RunPoint> + '_ {
        (0..self.slots.len()).filter_map(|i| self.get(i))
    }

    /// Adds the newest point, dropping the oldest once [`HISTORY`] are kept.
    pub(crate) fn push(&mut self, point: RunPoint) {
        let packed = Packed {
            seconds: pack(point.seconds),
            lateness_seconds: pack(point.lateness_seconds.unwrap_or(f32::NAN)),
        };
        let slot = if self.slots.len() < HISTORY {
            if self.slots.capacity() == 0 {
                self.slots.reserve_exact(HISTORY);
            }
            self.slots.push(packed);
            self.slots.len() - 1
        } else {
            let slot = self.start;
            self.slots[slot] = packed;
            self.start = (slot + 1) % HISTORY;
            slot
        };
        if point.ok {
            self.ok |= 1u64 << slot;
        } else {
            self.ok &= !(1u64 << slot);
        }
    }
}

impl ProbeEntry {
    fn new(probe: &ProbeConfig) -> Self {
        ProbeEntry {
            kind: probe.spec.kind(),
            interval: probe.interval,
            timeout: probe.timeout,
            runs: Vec::new(),
            points: Points::default(),
        }
    }

    pub(crate) fn latest(&self) -> Option<&Arc<RunResult>> {
        self.runs.last()
    }

    /// Adds a run, keeping `depth` whole results and [`HISTORY`] points.
    fn push(&mut self, run: Arc<RunResult>, depth: usize) {
        self.points.push(RunPoint {
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
    pub(crate) fn new(metrics: Metrics, config: &Config) -> Self {
        let probes = config
            .probes
            .iter()
            .map(|p| (p.name.clone(), ProbeEntry::new(p)))
            .collect();
        for inc in &config.incidents {
            metrics.incidents.init(inc);
        }
        let state = State {
            metrics,
            probes: RwLock::new(probes),
            incidents: RwLock::new(Incidents::new(config.incidents.clone())),
            tracked: Mutex::new(HashMap::new()),
            webhooks: std::sync::OnceLock::new(),
            judged: RwLock::new(Judged::default()),
        };
        state.replace_graph(config.dependency_graph());
        state
    }

    /// Switches to `graph` (at start, on a reload) and judges every part of it on the
    /// probes' latest results.
    fn replace_graph(&self, graph: Graph) {
        let mut judged = self
            .judged
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        judged.parts = Parts::new(graph);
        judged.judgements = vec![Judgement::default(); judged.parts.graphs().len()];
        for part in 0..judged.judgements.len() {
            self.judge_part(&mut judged, part);
        }
    }

    /// Judges one part of the dependency graph again. Runs when a probe of the part turns
    /// failing or passing: a steady result, and a probe outside every graph, cost nothing.
    fn rejudge(&self, part: usize) {
        let mut judged = self
            .judged
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.judge_part(&mut judged, part);
    }

    /// Judges one part on its probes' latest results and exports it.
    fn judge_part(&self, judged: &mut Judged, part: usize) {
        let Some(graph) = judged.parts.graphs().get(part) else {
            return;
        };
        let j = {
            let probes = self
                .probes
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            rootcause::judge(graph, |name| {
                probes
                    .get(name)
                    .and_then(ProbeEntry::latest)
                    .is_some_and(|r| !r.ok())
            })
        };
        let members: Vec<String> = graph.keys().cloned().collect();
        self.metrics.root_causes.set(&members, &j);
        if let Some(slot) = judged.judgements.get_mut(part) {
            *slot = j;
        }
    }

    /// The latest root-cause judgement of the whole graph (empty when nothing in a
    /// dependency graph fails).
    pub(crate) fn judgement(&self) -> Judgement {
        let judged = self
            .judged
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Judgement::merge(judged.judgements.iter())
    }

    /// `Root cause: vpc-connector (ERROR); 7 failures follow from it`, naming each root's
    /// reported state or failure reason; None when nothing in a dependency graph fails.
    pub(crate) fn root_cause_line(&self) -> Option<String> {
        self.line_of(&self.judgement())
    }

    /// The root-cause line of one incident: the root causes behind the probes its criteria
    /// judge only (a replica with many incidents must not name another's in this one's page).
    fn incident_root_cause_line(&self, spec: &IncidentSpec) -> Option<String> {
        let j = self
            .judgement()
            .behind(spec.criteria.iter().map(|c| c.probe.as_str()));
        self.line_of(&j)
    }

    fn line_of(&self, j: &Judgement) -> Option<String> {
        let probes = self
            .probes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        j.line(|name| Some(probes.get(name)?.latest()?.brief()))
    }

    /// Stores a run, updates its metrics, logs when its result changes, and re-evaluates
    /// the incidents that depend on the probe.
    pub(crate) fn record(&self, probe: &ProbeConfig, run: RunResult) {
        let kind = probe.spec.kind();
        self.metrics.record(&probe.name, kind, &run);
        let run = Arc::new(run);
        let judging = self.incidents_judging(&probe.name);
        // An incident added by a reload starts its streaks from the runs after it.
        let depth = if judging.is_empty() { 1 } else { HISTORY };
        let (previous, was_failing) = {
            let mut probes = self
                .probes
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let entry = probes
                .entry(probe.name.clone())
                .or_insert_with(|| ProbeEntry::new(probe));
            let latest = entry.latest();
            let previous = (latest.map(|r| r.reason()), latest.is_some_and(|r| !r.ok()));
            entry.push(run.clone(), depth);
            previous
        };
        log_run(probe, &run, previous);
        // The judgement reads only who fails (no result yet counts as passing).
        if was_failing == run.ok() {
            let part = self
                .judged
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .parts
                .part_of(&probe.name);
            if let Some(part) = part {
                self.rejudge(part);
            }
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
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .judging(probe)
    }

    fn incident_specs(&self) -> Vec<IncidentSpec> {
        self.incidents
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .list
            .clone()
    }

    /// Moves to a reloaded config. Probes that stay (same name and kind) keep their history
    /// and counters; the series of probes and incidents that left are removed; incidents
    /// keep their status across the reload.
    pub(crate) fn reconfigure(&self, old: &Config, new: &Config) {
        {
            let mut probes = self
                .probes
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // By name: a reload of 100,000 probes must not compare every pair.
            let kinds: HashMap<&str, Kind> = new
                .probes
                .iter()
                .map(|n| (n.name.as_str(), n.spec.kind()))
                .collect();
            for o in &old.probes {
                let stays = kinds.get(o.name.as_str()) == Some(&o.spec.kind());
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
            let mut tracked = self
                .tracked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
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
        *self
            .incidents
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Incidents::new(new.incidents.clone());
        self.metrics.root_causes.clear();
        self.replace_graph(new.dependency_graph());
        self.evaluate_all();
    }

    /// Re-evaluates every incident (staleness moves status even when no result arrives).
    pub(crate) fn evaluate_all(&self) {
        let now = unix_now();
        for inc in &self.incident_specs() {
            self.evaluate(inc, now);
        }
    }

    fn evaluate(&self, spec: &IncidentSpec, now: f64) {
        let mut tracked = self
            .tracked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let t = tracked.entry(spec.id.clone()).or_default();
        let eval = {
            let probes = self
                .probes
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let view = |name: &str| {
                probes.get(name).map(|e| ProbeHistory {
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
            let root_cause = self.incident_root_cause_line(spec);
            notify::log_change(spec, &eval, previous, root_cause.as_deref());
            if let Some(hook) = &spec.webhook {
                let change = notify::WebhookBody {
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
                    let client = self.webhooks.get_or_init(reqwest::Client::new).clone();
                    notify::post(client, hook.clone(), spec.id.clone(), body);
                }
            }
        }
        self.metrics.incidents.record(spec, &eval, t);
        t.evaluation = Some(eval);
    }

    /// Every probe with its history, sorted by name.
    ///
    /// Copied a slice of [`SNAPSHOT_SLICE`] probes at a time: every run's result waits for the
    /// map's write lock, and a status page of 100,000 probes copied under one read lock held
    /// every result (and the runtime worker recording it) for the whole copy: scheduled runs
    /// started up to 330 ms late (bench/schedule_at_scale.py, issue 33's shard).
    pub(crate) fn probes(&self) -> Vec<(String, ProbeEntry)> {
        let mut names: Vec<String> = self
            .probes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        names.sort_unstable();
        let mut all = Vec::with_capacity(names.len());
        let mut names = names.into_iter().peekable();
        while names.peek().is_some() {
            let probes = self
                .probes
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // A probe a reload removed between two slices is left out, as it would be a
            // moment later.
            all.extend(names.by_ref().take(SNAPSHOT_SLICE).filter_map(|name| {
                let entry = probes.get(&name)?.clone();
                Some((name, entry))
            }));
        }
        all
    }

    /// Every incident with what is known of it, in config order.
    pub(crate) fn incidents(&self) -> Vec<(IncidentSpec, Tracked)> {
        let tracked = self
            .tracked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.incident_specs()
            .into_iter()
            .map(|i| {
                let t = tracked.get(&i.id).cloned().unwrap_or_default();
                (i, t)
            })
            .collect()
    }

    #[cfg(test)]
    /// The status of one incident.
    pub(crate) fn status(&self, id: &str) -> crate::incident::Status {
        let tracked = self
            .tracked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tracked
            .get(id)
            .map_or(crate::incident::Status::Unknown, |t| t.status)
    }
}

/// The one log line of a run, with the same fields at every level. A macro, not a function:
/// tracing's level must be a constant at each call site.
macro_rules! run_event {
    ($level:expr, $probe:expr, $run:expr) => {{
        let (probe, run) = ($probe, $run);
        let secs = run.duration.as_secs_f64();
        match &run.outcome {
            Ok(_) => tracing::event!(
                $level,
                probe = %probe.name, kind = %probe.spec.kind(), duration_seconds = secs,
                "probe succeeded"
            ),
            Err(e) => tracing::event!(
                $level,
                probe = %probe.name, kind = %probe.spec.kind(), reason = %e.reason,
                phase = run.failed_phase.map(|p| p.as_str()).unwrap_or("-"),
                duration_seconds = secs, detail = %e.detail,
                "probe failed"
            ),
        }
    }};
}

/// A changed result (first run, success <-> failure, another reason) is news: info or warn.
/// A repeat of the same result is only debug, so a steady state does not flood the logs.
fn log_run(probe: &ProbeConfig, run: &RunResult, previous: Option<Reason>) {
    use tracing::Level;
    let changed = previous != Some(run.reason());
    match (run.outcome.is_ok(), changed) {
        (true, true) => run_event!(Level::INFO, probe, run),
        (false, true) => run_event!(Level::WARN, probe, run),
        (_, false) => run_event!(Level::DEBUG, probe, run),
    }
}

#[cfg(test)]
mod tests;

//! The metric families pathwatch exports (its contract with rules and dashboards; the book's
//! generated metrics reference lists them), registered once, updated by the runner.
//! This file holds what every run has (success, duration, phases, reasons) and the self
//! families; the incidents' are in [`incident`], and the families each kind declares in its
//! own folder are written by [`kinds::DeclaredFamilies`], so nothing here names a kind's
//! observation.
//!
//! Scrapes only encode what is here; they never run probes. Label sets are typed structs
//! whose values are configured probe names or closed enums, so cardinality is bounded by
//! the config.

pub mod histograms;
pub mod incident;
pub mod kinds;
pub mod labels;
pub mod rootcause;
pub mod rows;
pub mod scrape;
pub mod values;

use crate::probe::RunResult;
use crate::probe::{Kind, Reason};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use rows::{ProbeRows, RowFamilies, RowRun};
use std::sync::atomic::AtomicU64;

pub(crate) use histograms::TraceLabels;
pub(crate) use labels::{BuildLabels, NameLabels, ShardLabels};
#[cfg(test)]
pub(crate) use labels::{PhaseLabels, ProbeLabels, RunLabels};

/// Buckets for how late scheduled runs start: a healthy exporter stays in the first ones.
pub(crate) const LATENESS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

type FloatGauge = Gauge<f64, AtomicU64>;

/// The exemplar of a run: its trace id, when it was traced.
fn exemplar(run: &RunResult) -> Option<TraceLabels> {
    run.trace_id.as_ref().map(|t| TraceLabels {
        trace_id: t.clone(),
    })
}

/// Every family pathwatch exports. The per-probe ones that write their own text (the
/// probe rows and the histograms) change only through [`Metrics::init_probe`],
/// [`Metrics::record`] and [`Metrics::forget_probe`], which tell [`Metrics::scrape`]: their
/// text is encoded once per change (metrics/scrape.rs), the registry's at every scrape.
#[derive(Debug)]
pub struct Metrics {
    /// `pathwatch_probe_success`, `_consecutive_failures` (failed runs in a row, 0 after a
    /// success: alerts count failures without `for:`), `_timed_out` (1 when the last run
    /// was cut at its timeout), `_duration_seconds`, `_timeout_seconds`, `_interval_seconds`,
    /// `_last_run_timestamp_seconds`, `_runs_total`, `_phase_duration_seconds` and
    /// `_run_duration_seconds`: one row per probe (metrics/rows/mod.rs).
    pub(crate) probe_rows: ProbeRows,
    /// `pathwatch_incident_*` (metrics/incident.rs).
    pub incidents: incident::IncidentMetrics,
    pub(crate) build_info: Family<BuildLabels, Gauge>,
    /// `pathwatch_shard_info{index, count}`: which share of the config runs here (`--shard`;
    /// `0`/`1` unsharded).
    pub(crate) shard_info: Family<ShardLabels, Gauge>,
    pub(crate) config_reload_ok: Gauge,
    pub(crate) config_reload_time: FloatGauge,
    pub(crate) config_invalid_entries: Gauge,
    /// One histogram for all probes: the scheduler's health, not a probe's.
    pub(crate) scheduler_lateness: Histogram,
    /// How long the previous `/metrics` answer took to encode.
    pub(crate) encode_seconds: FloatGauge,
    /// The families of each kind's observations (metrics/kinds/mod.rs).
    pub(crate) kinds: kinds::DeclaredFamilies,
    /// The root-cause families: which failing probe is a root cause and what each other
    /// failure follows from.
    pub root_causes: rootcause::RootCauseMetrics,
    /// The per-probe part's text between changes.
    pub(crate) scrape: scrape::ScrapeCache,
}

impl Metrics {
    /// Creates the families and registers into `registry` (with the `pathwatch` prefix)
    /// all but the per-probe ones every probe has (success, durations, runs, histograms):
    /// those encode apart ([`Metrics::encode_probes`], cached by
    /// [`Metrics::scrape`]), and a scrape answers with both (see server.rs).
    pub fn new(registry: &mut Registry) -> Self {
        Self::families().register(registry)
    }

    /// The families every probe has, as parts of the answer in order (see
    /// metrics/rows/text.rs), then the histograms of the kinds' own observations. `None`
    /// when an encoder thread failed.
    pub fn encode_probes(&self) -> Option<Vec<String>> {
        let mut parts = self.probe_rows.encode_parts()?;
        let mut rest = String::new();
        self.kinds.encode_histograms(&mut rest);
        if !rest.is_empty() {
            parts.push(rest);
        }
        Some(parts)
    }

    /// The families, unregistered: what a run records into.
    fn families() -> Self {
        Metrics {
            probe_rows: ProbeRows::new(
                RowFamilies {
                    fields: [
                        (
                            "pathwatch_probe_success",
                            None,
                            "Whether the probe's last run succeeded (1) or failed (0)",
                        ),
                        (
                            "pathwatch_probe_consecutive_failures",
                            None,
                            "Failed runs of the probe in a row (0 after a success, and before the first run)",
                        ),
                        (
                            "pathwatch_probe_timed_out",
                            None,
                            "Whether the probe's last run was cut at its timeout (1) or not (0)",
                        ),
                        (
                            "pathwatch_probe_duration_seconds",
                            Some("seconds"),
                            "Duration of the probe's last run",
                        ),
                        (
                            "pathwatch_probe_timeout_seconds",
                            Some("seconds"),
                            "Configured timeout of the probe",
                        ),
                        (
                            "pathwatch_probe_interval_seconds",
                            Some("seconds"),
                            "Configured interval between runs of the probe (staleness alerts use it)",
                        ),
                        (
                            "pathwatch_probe_last_run_timestamp_seconds",
                            Some("seconds"),
                            "Unix time the probe's last run finished",
                        ),
                    ],
                    runs: (
                        "pathwatch_probe_runs",
                        None,
                        "Probe runs by result and reason (reason is a closed set; ok on success)",
                    ),
                    phases: (
                        "pathwatch_probe_phase_duration_seconds",
                        Some("seconds"),
                        "Duration of each phase the last run completed; phases not reached are absent",
                    ),
                    // Each probe's histogram gets its own bounds at init_probe (`buckets:`).
                    run_duration: (
                        "pathwatch_probe_run_duration_seconds",
                        Some("seconds"),
                        "Distribution of probe run durations; a run cut at its timeout counts at the timeout",
                    ),
                },
                crate::config::buckets::DEFAULT_RUN_BUCKETS,
            ),
            incidents: incident::IncidentMetrics::default(),
            build_info: Family::default(),
            shard_info: Family::default(),
            config_reload_ok: Gauge::default(),
            config_reload_time: Gauge::default(),
            config_invalid_entries: Gauge::default(),
            scheduler_lateness: Histogram::new(LATENESS_BUCKETS.iter().copied()),
            encode_seconds: Gauge::default(),
            kinds: kinds::DeclaredFamilies::new(),
            root_causes: rootcause::RootCauseMetrics::default(),
            scrape: scrape::ScrapeCache::default(),
        }
    }

    /// Registers the families of [`Metrics::families`] (see [`Metrics::new`]).
    fn register(self, r: &mut Registry) -> Self {
        let m = self;
        m.kinds.register(r);
        m.incidents.register(r);
        r.register(
            "build_info",
            "pathwatch build information (always 1)",
            m.build_info.clone(),
        );
        r.register(
            "shard_info",
            "The share of the config this replica runs: shard index of count (always 1)",
            m.shard_info.clone(),
        );
        r.register(
            "config_last_reload_successful",
            "Whether the last config load had no errors (1) or skipped invalid entries (0)",
            m.config_reload_ok.clone(),
        );
        r.register_with_unit(
            "config_last_reload_success_timestamp",
            "Unix time of the last config load",
            Unit::Seconds,
            m.config_reload_time.clone(),
        );
        r.register(
            "config_invalid_entries",
            "Config entries skipped because they are invalid (see the logs for file:line:column)",
            m.config_invalid_entries.clone(),
        );
        r.register_with_unit(
            "scheduler_lateness",
            "How late scheduled runs started against their slot (an overloaded exporter shows here)",
            Unit::Seconds,
            m.scheduler_lateness.clone(),
        );
        r.register_with_unit(
            "metrics_encode",
            "Time the previous /metrics answer took to encode",
            Unit::Seconds,
            m.encode_seconds.clone(),
        );
        m.root_causes.register(r);
        m.build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        m.set_shard(0, 1);
        m
    }

    /// Sets `pathwatch_shard_info` to this shard alone.
    pub(crate) fn set_shard(&self, index: u32, count: u32) {
        self.shard_info.clear();
        self.shard_info
            .get_or_create(&ShardLabels {
                index: index.to_string(),
                count: count.to_string(),
            })
            .set(1);
    }

    /// Creates a probe's series before its first run, so dashboards and `rate()` see zeros
    /// instead of absent series.
    pub fn init_probe(&self, p: &crate::config::ProbeConfig) {
        // `buckets: []`: no run-duration histogram for this probe. Alert rules read the
        // failure gauges from the first failure on (a counter born at 1 would show no
        // increase): the row has them at 0 before the first run.
        self.probe_rows.init(
            &p.name,
            p.spec.kind(),
            p.timeout.as_secs_f64(),
            p.interval.as_secs_f64(),
            p.buckets.enabled().then(|| p.buckets.bounds()),
        );
        self.kinds.init_probe(p);
        self.scrape.changed();
    }

    /// Records one finished run.
    pub fn record(&self, probe: &str, kind: Kind, run: &RunResult) {
        let secs = run.duration.as_secs_f64();
        let (ok, reason) = match &run.outcome {
            Ok(_) => (true, Reason::Ok),
            Err(e) => (false, e.reason),
        };
        if let Some(late) = run.lateness {
            self.scheduler_lateness.observe(late.as_secs_f64());
        }
        let exemplar = exemplar(run);
        // A run cut at its timeout counts at the timeout in the histogram; none for
        // `buckets: []`, and none in an on-demand run's rows, which do not expose it.
        self.probe_rows.record(
            probe,
            kind,
            &RowRun {
                ok,
                reason,
                seconds: secs,
                phases: &run.phases,
                finished_unix_seconds: run.finished_unix_seconds,
                exemplar: exemplar.as_ref(),
            },
        );
        self.kinds.record(probe, kind, run);
        self.scrape.changed();
    }

    /// Removes every series of a probe that left the config (or changed kind) on reload.
    /// Families are keyed by full label sets, so each set is named: the closed label enums
    /// are walked, the configured ones (events, patterns) come from the old spec.
    pub(crate) fn forget_probe(&self, p: &crate::config::ProbeConfig) {
        let probe = p.name.clone();
        self.probe_rows.forget(&probe);
        self.kinds.forget_probe(p);
        self.scrape.changed();
    }
}

//! The metric families of the contract in DESIGN.md, registered once, updated by the runner.
//!
//! Scrapes only encode what is here; they never run probes. Label sets are typed structs
//! whose values are configured probe names or closed enums, so cardinality is bounded by
//! the config.

use crate::probe::{Kind, Phase, PhaseTimings, Reason, Transport};
use crate::runner::RunResult;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;

/// Buckets for durations bounded by probe timeouts: they reach past the largest default
/// timeout (75 s) so that hangs land in a bucket of their own instead of `+Inf`.
pub const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 75.0, 120.0,
];

type FloatGauge = Gauge<f64, AtomicU64>;
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS.iter().copied())
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    pub probe: String,
    pub kind: Kind,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NameLabels {
    pub probe: String,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum RunResultLabel {
    Success,
    Failure,
}

impl EncodeLabelValue for RunResultLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            RunResultLabel::Success => "success",
            RunResultLabel::Failure => "failure",
        })
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    pub probe: String,
    pub kind: Kind,
    pub result: RunResultLabel,
    pub reason: Reason,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub probe: String,
    pub kind: Kind,
    pub phase: Phase,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DbLabels {
    pub probe: String,
    pub transport: Transport,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
}

/// Every family pathwatch exports.
#[derive(Debug)]
pub struct Metrics {
    pub probe_success: Family<ProbeLabels, Gauge>,
    pub probe_duration: Family<ProbeLabels, FloatGauge>,
    pub probe_timeout: Family<ProbeLabels, FloatGauge>,
    pub probe_runs: Family<RunLabels, Counter>,
    pub probe_run_duration: Histograms<ProbeLabels>,
    pub probe_phase_duration: Family<PhaseLabels, FloatGauge>,
    pub probe_last_run: Family<NameLabels, FloatGauge>,
    pub db_connect: Histograms<DbLabels>,
    pub http_status: Family<NameLabels, Gauge>,
    pub build_info: Family<BuildLabels, Gauge>,
    pub config_reload_ok: Gauge,
    pub config_reload_time: FloatGauge,
    pub config_invalid_entries: Gauge,
}

impl Metrics {
    /// Creates the families and registers them under the `pathwatch_` prefix.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Metrics {
            probe_success: Family::default(),
            probe_duration: Family::default(),
            probe_timeout: Family::default(),
            probe_runs: Family::default(),
            probe_run_duration: Family::new_with_constructor(duration_histogram),
            probe_phase_duration: Family::default(),
            probe_last_run: Family::default(),
            db_connect: Family::new_with_constructor(duration_histogram),
            http_status: Family::default(),
            build_info: Family::default(),
            config_reload_ok: Gauge::default(),
            config_reload_time: Gauge::default(),
            config_invalid_entries: Gauge::default(),
        };
        let r = registry;
        r.register(
            "probe_success",
            "Whether the probe's last run succeeded (1) or failed (0)",
            m.probe_success.clone(),
        );
        r.register_with_unit(
            "probe_duration",
            "Duration of the probe's last run",
            Unit::Seconds,
            m.probe_duration.clone(),
        );
        r.register_with_unit(
            "probe_timeout",
            "Configured timeout of the probe",
            Unit::Seconds,
            m.probe_timeout.clone(),
        );
        r.register(
            "probe_runs",
            "Probe runs by result and reason (reason is a closed set; ok on success)",
            m.probe_runs.clone(),
        );
        r.register_with_unit(
            "probe_run_duration",
            "Distribution of probe run durations; a run cut at its timeout counts at the timeout",
            Unit::Seconds,
            m.probe_run_duration.clone(),
        );
        r.register_with_unit(
            "probe_phase_duration",
            "Duration of each phase the last run completed; phases not reached are absent",
            Unit::Seconds,
            m.probe_phase_duration.clone(),
        );
        r.register_with_unit(
            "probe_last_run_timestamp",
            "Unix time the probe's last run finished",
            Unit::Seconds,
            m.probe_last_run.clone(),
        );
        r.register_with_unit(
            "db_connect",
            "Time to a usable database session (connect, TLS, auth and first query); runs that fail fast are not observed, runs cut at the timeout are",
            Unit::Seconds,
            m.db_connect.clone(),
        );
        r.register(
            "http_status_code",
            "Status code of the last HTTP response (0 when none arrived)",
            m.http_status.clone(),
        );
        r.register(
            "build_info",
            "pathwatch build information (always 1)",
            m.build_info.clone(),
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
        m.build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        m
    }

    /// Creates a probe's series before its first run, so dashboards and `rate()` see zeros
    /// instead of absent series.
    pub fn init_probe(&self, probe: &str, kind: Kind, timeout_seconds: f64) {
        let labels = ProbeLabels {
            probe: probe.to_string(),
            kind,
        };
        self.probe_timeout
            .get_or_create(&labels)
            .set(timeout_seconds);
        let _ = self.probe_runs.get_or_create(&RunLabels {
            probe: probe.to_string(),
            kind,
            result: RunResultLabel::Success,
            reason: Reason::Ok,
        });
        let _ = self.probe_run_duration.get_or_create(&labels);
    }

    /// Records one finished run.
    pub fn record(&self, probe: &str, kind: Kind, transport: Option<Transport>, run: &RunResult) {
        let labels = ProbeLabels {
            probe: probe.to_string(),
            kind,
        };
        let secs = run.duration.as_secs_f64();
        let (ok, reason) = match &run.outcome {
            Ok(_) => (true, Reason::Ok),
            Err(e) => (false, e.reason),
        };
        self.probe_success.get_or_create(&labels).set(i64::from(ok));
        self.probe_duration.get_or_create(&labels).set(secs);
        self.probe_run_duration.get_or_create(&labels).observe(secs);
        self.probe_runs
            .get_or_create(&RunLabels {
                probe: probe.to_string(),
                kind,
                result: if ok {
                    RunResultLabel::Success
                } else {
                    RunResultLabel::Failure
                },
                reason,
            })
            .inc();
        self.set_phases(probe, kind, &run.phases);
        self.probe_last_run
            .get_or_create(&NameLabels {
                probe: probe.to_string(),
            })
            .set(run.finished_unix_seconds);
        if kind == Kind::Http {
            self.http_status
                .get_or_create(&NameLabels {
                    probe: probe.to_string(),
                })
                .set(i64::from(run.http_status.unwrap_or(0)));
        }
        if let Some(transport) = transport
            && (ok || reason == Reason::Timeout)
        {
            self.db_connect
                .get_or_create(&DbLabels {
                    probe: probe.to_string(),
                    transport,
                })
                .observe(secs);
        }
    }

    /// Sets this run's phases and removes the ones it did not reach.
    fn set_phases(&self, probe: &str, kind: Kind, phases: &PhaseTimings) {
        for phase in Phase::ALL {
            let labels = PhaseLabels {
                probe: probe.to_string(),
                kind,
                phase: *phase,
            };
            match phases.iter().find(|(p, _)| p == phase) {
                Some((_, took)) => {
                    self.probe_phase_duration
                        .get_or_create(&labels)
                        .set(took.as_secs_f64());
                }
                None => {
                    self.probe_phase_duration.remove(&labels);
                }
            }
        }
    }
}

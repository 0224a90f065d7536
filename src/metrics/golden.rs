//! `pathwatch_golden_path_*` of the golden_path probe: login to final event, events
//! delivered and expected, each event's time, crosstalk, duplicates, unexpected frames, and
//! failures by the step that broke.

use super::kind_metrics::KindMetrics;
use super::{FloatGauge, Histograms, NameLabels, duration_histogram, exemplar};
use crate::config::ProbeConfig;
use crate::probe::golden::GoldenObs;
use crate::probe::{Kind, Phase, ProbeSpec, Reason, RunResult, label_enum};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

label_enum!(
    /// The `step` label of golden-path failures: where the user's path broke.
    pub(crate) Step {
        Login => "login",
        Connect => "connect",
        Handshake => "handshake",
        Send => "send",
        Event => "event",
        Close => "close",
    }
);

impl Step {
    /// The user-level step a phase belongs to (resolve, connect and TLS are all "connect").
    pub(crate) fn of(phase: Phase) -> Step {
        match phase {
            Phase::Login => Step::Login,
            Phase::Handshake => Step::Handshake,
            Phase::Send => Step::Send,
            Phase::Events => Step::Event,
            Phase::Close => Step::Close,
            _ => Step::Connect,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct EventLabels {
    pub(crate) probe: String,
    /// A configured event type: bounded by the config.
    pub(crate) event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StepLabels {
    pub(crate) probe: String,
    pub(crate) step: Step,
    pub(crate) reason: Reason,
}

#[derive(Debug)]
pub(crate) struct GoldenMetrics {
    pub(crate) seconds: Histograms<NameLabels>,
    pub(crate) delivered: Family<NameLabels, Gauge>,
    pub(crate) expected: Family<NameLabels, Gauge>,
    pub(crate) event_seconds: Family<EventLabels, FloatGauge>,
    pub(crate) crosstalk: Family<NameLabels, Counter>,
    pub(crate) duplicates: Family<NameLabels, Counter>,
    pub(crate) unexpected: Family<NameLabels, Counter>,
    pub(crate) failures: Family<StepLabels, Counter>,
}

impl GoldenMetrics {
    pub(crate) fn new() -> Self {
        GoldenMetrics {
            seconds: duration_histogram(
                "golden_path",
                "Login to the final agent event; runs cut at the timeout are observed at it",
            ),
            delivered: Family::default(),
            expected: Family::default(),
            event_seconds: Family::default(),
            crosstalk: Family::default(),
            duplicates: Family::default(),
            unexpected: Family::default(),
            failures: Family::default(),
        }
    }

    /// A golden-path run that failed before the events (login, connect, handshake) delivered
    /// none: `events_delivered` drops to 0 and the per-event times of an earlier run go, so
    /// no gauge shows a previous run's values as if they were this one's.
    pub(crate) fn events_not_reached(&self, probe: &str, events: &[String]) {
        self.delivered
            .get_or_create(&NameLabels {
                probe: probe.to_string(),
            })
            .set(0);
        for event in events {
            self.event_seconds.remove(&EventLabels {
                probe: probe.to_string(),
                event: event.clone(),
            });
        }
    }

    fn record_run(&self, probe: &str, run: &RunResult, reason: Reason) {
        let name = NameLabels {
            probe: probe.to_string(),
        };
        if let Some(obs) = run.observations.golden() {
            self.set_events(probe, obs);
        }
        if let Some(total) = run
            .observations
            .golden()
            .and_then(|g| g.total)
            .filter(|_| run.ok())
        {
            self.seconds
                .observe(&name, total.as_secs_f64(), exemplar(run));
        } else if reason == Reason::Timeout {
            self.seconds
                .observe(&name, run.duration.as_secs_f64(), exemplar(run));
        }
        if let (false, Some(phase)) = (run.ok(), run.failed_phase) {
            self.failures
                .get_or_create(&StepLabels {
                    probe: probe.to_string(),
                    step: Step::of(phase),
                    reason,
                })
                .inc();
        }
    }

    fn set_events(&self, probe: &str, obs: &GoldenObs) {
        let name = NameLabels {
            probe: probe.to_string(),
        };
        self.delivered
            .get_or_create(&name)
            .set(obs.delivered() as i64);
        self.expected
            .get_or_create(&name)
            .set(obs.expected.len() as i64);
        self.crosstalk.get_or_create(&name).inc_by(obs.crosstalk);
        self.duplicates.get_or_create(&name).inc_by(obs.duplicates);
        self.unexpected.get_or_create(&name).inc_by(obs.unexpected);
        for (event, arrived) in obs.expected.iter().zip(&obs.arrived) {
            let labels = EventLabels {
                probe: probe.to_string(),
                event: event.clone(),
            };
            match arrived {
                Some(d) => {
                    self.event_seconds
                        .get_or_create(&labels)
                        .set(d.as_secs_f64());
                }
                None => {
                    self.event_seconds.remove(&labels);
                }
            }
        }
    }
}

impl Default for GoldenMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl KindMetrics for GoldenMetrics {
    fn register(&self, r: &mut Registry) {
        r.register(
            "golden_path_events_delivered",
            "Expected agent events delivered in the last run (in every session)",
            self.delivered.clone(),
        );
        r.register(
            "golden_path_events_expected",
            "Agent events the golden path expects",
            self.expected.clone(),
        );
        r.register_with_unit(
            "golden_path_event",
            "Time from sending the message to each event in the last run (absent if not seen)",
            Unit::Seconds,
            self.event_seconds.clone(),
        );
        r.register(
            "golden_path_crosstalk_events",
            "Events that reached a session they did not belong to",
            self.crosstalk.clone(),
        );
        r.register(
            "golden_path_duplicate_events",
            "Expected events received more than once",
            self.duplicates.clone(),
        );
        r.register(
            "golden_path_unexpected_events",
            "Frames that were not an expected or ignored event (other types, non-JSON, binary)",
            self.unexpected.clone(),
        );
        r.register(
            "golden_path_failures",
            "Failed golden-path runs by the step that broke and why",
            self.failures.clone(),
        );
    }

    fn init_probe(&self, p: &ProbeConfig) {
        if let ProbeSpec::GoldenPath(g) = &p.spec {
            let name = NameLabels {
                probe: p.name.clone(),
            };
            let _ = self.seconds.get_or_create(&name);
            let _ = self.crosstalk.get_or_create(&name);
            let _ = self.duplicates.get_or_create(&name);
            let _ = self.unexpected.get_or_create(&name);
            self.expected
                .get_or_create(&name)
                .set(g.events.len() as i64);
        }
    }

    fn record(&self, probe: &str, kind: Kind, run: &RunResult) {
        if kind == Kind::GoldenPath {
            self.record_run(probe, run, run.reason());
        }
    }

    fn forget_probe(&self, p: &ProbeConfig) {
        let name = NameLabels {
            probe: p.name.clone(),
        };
        self.seconds.remove(&name);
        self.delivered.remove(&name);
        self.expected.remove(&name);
        self.crosstalk.remove(&name);
        self.duplicates.remove(&name);
        self.unexpected.remove(&name);
        if let ProbeSpec::GoldenPath(g) = &p.spec {
            for event in &g.events {
                self.event_seconds.remove(&EventLabels {
                    probe: p.name.clone(),
                    event: event.clone(),
                });
            }
        }
        for reason in Reason::ALL {
            for step in Step::ALL {
                self.failures.remove(&StepLabels {
                    probe: p.name.clone(),
                    step: *step,
                    reason: *reason,
                });
            }
        }
    }

    fn encode_histograms(&self, out: &mut String) {
        self.seconds.encode(out);
    }
}

//! `startup` probe: how long the service takes from a start to its first healthy answer.
//!
//! Each run is one health check (an embedded `http` check). The probe keeps a small state
//! machine across runs: starting (since a reference time) or healthy. While starting it asks
//! the runner to poll again after `poll_interval` instead of the normal interval; on the first
//! healthy answer it reports the startup time. References:
//! - `restart` (default): the exporter's own start (a sidecar starts with its pod), then any
//!   restart seen from outside (healthy -> failing -> healthy), timed from the first failure.
//! - `reported`: the start time the service reports in its health body (`started_at_pointer`,
//!   unix seconds or an RFC 3339 string); a new value there is a restart even if no poll failed.

use crate::probe::Observation;
use crate::probe::common::kind::{KindFamily, Measured, Probe, ProbeKind, Sample};
use crate::probe::kinds::http::{HttpError, HttpProbe, HttpSpec};
use crate::probe::{Kind, Outcome, ProbeError, Reason, Trace};
use serde::Deserialize;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Reference {
    #[default]
    Restart,
    Reported,
}

/// The `startup` probe: how long a service takes from a start to its first healthy answer.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartupSpec {
    /// The health check that says "started": an `http` probe's settings.
    pub(crate) check: HttpSpec,
    /// `restart` (default): time a startup from pathwatch's own start, then from the first
    /// failing poll after a healthy one; `reported`: from the start time the service reports
    /// (`started_at_pointer`).
    #[serde(default)]
    pub(crate) reference: Reference,
    /// Where the service reports its start time (`reference: reported`).
    pub(crate) started_at_pointer: Option<String>,
    /// Poll period while a startup is in progress.
    #[serde(
        default = "default_poll",
        deserialize_with = "humantime_serde_compat::deserialize"
    )]
    #[schemars(with = "crate::core::types::PositiveDuration")]
    pub(crate) poll_interval: Duration,
    /// A startup longer than this fails with `startup_timeout` (polling goes on, slower).
    #[serde(
        default = "default_deadline",
        deserialize_with = "humantime_serde_compat::deserialize"
    )]
    #[schemars(with = "crate::core::types::PositiveDuration")]
    pub(crate) deadline: Duration,
}

fn default_poll() -> Duration {
    Duration::from_secs(1)
}
fn default_deadline() -> Duration {
    Duration::from_secs(120)
}

/// Durations in this spec use the same text form as everywhere else (`1s`, `500ms`).
mod humantime_serde_compat {
    use crate::core::types::PositiveDuration;
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        PositiveDuration::deserialize(d).map(|p| p.0)
    }
}

#[derive(Debug, Default)]
enum Phase {
    /// No answer seen yet: the reference is the exporter's own start.
    #[default]
    First,
    Starting {
        since_unix: f64,
        unhealthy: u64,
    },
    Healthy {
        reported_start: Option<f64>,
    },
}

#[derive(Debug, Default)]
struct State {
    phase: Phase,
}

/// The `pathwatch_startup_*` families.
const SECONDS: KindFamily = KindFamily::gauge(
    "startup",
    "Last measured time from a start of the service to its first healthy answer",
)
.unit("seconds");
const IN_PROGRESS: KindFamily = KindFamily::int_gauge(
    "startup_in_progress",
    "1 while the service is starting (polled fast), else 0",
);
const UNHEALTHY: KindFamily = KindFamily::counter_increment(
    "startup_unhealthy_answers",
    "Unhealthy answers (e.g. 503) received while the service was starting",
);

/// What a startup run observed, reported as the samples of the `pathwatch_startup_*`
/// families ([`StartupObs::samples`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct StartupObs {
    /// Set on the run that saw the first healthy answer after a start.
    pub(crate) seconds: Option<f64>,
    pub(crate) in_progress: bool,
    /// 1 when this run got an unhealthy answer during a startup.
    pub(crate) unhealthy_answers: u64,
}

impl StartupObs {
    /// The samples of [`StartupSpec::FAMILIES`]: the startup time only on the run that
    /// measured one (the gauge keeps the last).
    pub(crate) fn samples(&self) -> Vec<Sample> {
        let mut samples = vec![
            IN_PROGRESS.sample(f64::from(u8::from(self.in_progress))),
            UNHEALTHY.sample(self.unhealthy_answers as f64),
        ];
        if let Some(secs) = self.seconds {
            samples.push(SECONDS.sample(secs));
        }
        samples
    }
}

/// Why a `startup` spec does not build.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartupError {
    #[error("check: {0}")]
    Check(#[source] HttpError),
    #[error("reference \"reported\" needs \"started_at_pointer\"")]
    NeedsPointer,
}

/// A built `startup` probe: its health check, and the state machine kept across runs.
#[derive(Debug)]
pub(crate) struct StartupProbe {
    spec: StartupSpec,
    check: HttpProbe,
    state: Mutex<State>,
}

impl ProbeKind for StartupSpec {
    const KIND: Kind = Kind::Startup;
    const DEFAULT_TIMEOUT: Duration = crate::probe::kinds::http::DEFAULT_TIMEOUT;
    type Probe = StartupProbe;
    type Error = StartupError;
    const FAMILIES: &'static [KindFamily] = &[
        crate::probe::kinds::http::STATUS,
        SECONDS,
        IN_PROGRESS,
        UNHEALTHY,
    ];
    /// A `max_seconds` criterion bounds the last measured startup time.
    const MEASURED: Measured = Measured::LastValue(SECONDS.name);

    /// In progress until the first healthy answer; no unhealthy answer yet.
    fn initial_samples(&self) -> Vec<Sample> {
        vec![IN_PROGRESS.sample(1.0), UNHEALTHY.sample(0.0)]
    }

    fn build(&self) -> Result<StartupProbe, StartupError> {
        let check = self.check.build().map_err(StartupError::Check)?;
        if self.reference == Reference::Reported && self.started_at_pointer.is_none() {
            return Err(StartupError::NeedsPointer);
        }
        Ok(StartupProbe {
            spec: self.clone(),
            check,
            state: Mutex::default(),
        })
    }
}

impl Probe for StartupProbe {
    async fn run(&self, trace: &Trace) -> Result<Outcome, ProbeError> {
        probe(self, trace).await
    }
}

/// When this process started: the reference of the first startup a sidecar measures.
pub fn process_start_unix() -> f64 {
    static START: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *START.get_or_init(now_unix)
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

async fn probe(p: &StartupProbe, trace: &Trace) -> Result<Outcome, ProbeError> {
    let spec = &p.spec;
    let result = p.check.run_with_body(trace).await;
    let now = now_unix();
    let reported = match (&result, &spec.started_at_pointer) {
        (Ok((_, body)), Some(ptr)) => reported_start(body, ptr),
        _ => None,
    };
    let mut state = p
        .state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut obs = StartupObs::default();
    let outcome = match (&result, &state.phase) {
        (Ok(_), Phase::Healthy { reported_start }) => {
            // Healthy again: only a new reported start time means a restart happened between
            // two polls.
            if spec.reference == Reference::Reported
                && let Some(r) = reported
                && Some(r) != *reported_start
                && reported_start.is_some()
            {
                obs.seconds = Some((now - r).max(0.0));
            }
            state.phase = Phase::Healthy {
                reported_start: reported,
            };
            Ok(())
        }
        (Ok(_), Phase::First | Phase::Starting { .. }) => {
            let since = match &state.phase {
                Phase::Starting { since_unix, .. } => *since_unix,
                _ => process_start_unix(),
            };
            let reference = match (spec.reference, reported) {
                (Reference::Reported, Some(r)) => r,
                _ => since,
            };
            obs.seconds = Some((now - reference).max(0.0));
            state.phase = Phase::Healthy {
                reported_start: reported,
            };
            Ok(())
        }
        (Err(e), phase) => {
            let (since_unix, unhealthy) = match phase {
                Phase::Starting {
                    since_unix,
                    unhealthy,
                } => (*since_unix, *unhealthy),
                Phase::First => (process_start_unix(), 0),
                // The first failure after a healthy answer: a restart seen from outside.
                Phase::Healthy { .. } => (now, 0),
            };
            let answered = status(trace).is_some_and(|c| c != 0);
            obs.unhealthy_answers = u64::from(answered);
            obs.in_progress = true;
            state.phase = Phase::Starting {
                since_unix,
                unhealthy: unhealthy + obs.unhealthy_answers,
            };
            let elapsed = now - since_unix;
            if elapsed > spec.deadline.as_secs_f64() {
                Err(ProbeError::new(
                    Reason::StartupTimeout,
                    format!(
                        "not healthy {:.0} s after the start (deadline {}): {}",
                        elapsed,
                        humantime::format_duration(spec.deadline),
                        e.detail
                    ),
                ))
            } else {
                trace.set_next_run(spec.poll_interval);
                Err(e.clone())
            }
        }
    };
    drop(state);
    // The report is whole: the health check's status goes with startup's own samples.
    let mut samples = obs.samples();
    if let Some(code) = status(trace) {
        samples.push(crate::probe::kinds::http::STATUS.sample(f64::from(code)));
    }
    trace.observe(Observation::Samples(samples));
    outcome.map(|()| Outcome {
        facts: vec![("status", status(trace).unwrap_or(0).to_string())],
    })
}

/// The status of the health check's last answer, if one arrived.
fn status(trace: &Trace) -> Option<u16> {
    let code = trace
        .observations()
        .value(crate::probe::kinds::http::STATUS.name)?;
    Some(code as u16)
}

/// Reads a start time: unix seconds (number or numeric string) or an RFC 3339 string.
fn reported_start(body: &[u8], pointer: &str) -> Option<f64> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    match json.pointer(pointer)? {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.parse::<f64>().ok().or_else(|| {
            humantime::parse_rfc3339_weak(s)
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs_f64())
        }),
        _ => None,
    }
}

//! `logs` probe: counts the lines (or Cloud Logging entries) of a service's logs that match
//! named patterns, in total and over a sliding window, from a file or the Cloud Logging API.
//!
//! Each run reads what is new since the last run: a file from its last offset (following it
//! across rotation), Cloud Logging from the timestamp of the last entry seen. A run succeeds
//! when the source was read; matches are data, not failures, and alert rules judge them.
//!
//! Counts are kept in the probe's state and reported as totals since pathwatch started. A run
//! cut at its timeout may stop anywhere, so it can never report "what this run added"
//! exactly; totals make the next run's report include everything either way.

pub(crate) mod cloud;
pub(crate) mod file;
pub(crate) mod patterns;

use crate::core::types::PositiveDuration;
use crate::probe::Observation;
use crate::probe::common::kind::{KindFamily, Probe, ProbeKind, Sample};
use crate::probe::{Kind, Outcome, ProbeError, Reason, Trace};
use patterns::{Matcher, Pattern, PatternError, PatternName, Window};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsSpec {
    /// Name (the `pattern` label) -> regex. A line counts once per pattern it matches.
    pub(crate) patterns: BTreeMap<PatternName, Pattern>,
    /// The span of `pathwatch_log_pattern_window_matches` (default 30m).
    #[serde(default = "default_window")]
    pub(crate) window: PositiveDuration,
    /// Read a log file, followed like `tail -F` (give `file` or `cloud_logging`).
    pub(crate) file: Option<file::FileSource>,
    /// Read Cloud Logging with `entries:list` (give `file` or `cloud_logging`).
    pub(crate) cloud_logging: Option<cloud::CloudSource>,
}

fn default_window() -> PositiveDuration {
    PositiveDuration(Duration::from_secs(30 * 60))
}

/// What a build prepares once.
#[derive(Debug)]
struct Prepared {
    names: Vec<String>,
    matcher: Matcher,
    cloud: Option<cloud::Prepared>,
}

/// Why a `logs` spec does not build.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LogsError {
    #[error("\"patterns\" must name at least one pattern")]
    NoPatterns,
    #[error("give a log source: \"file\" or \"cloud_logging\"")]
    NoSource,
    #[error("give one log source, \"file\" or \"cloud_logging\", not both")]
    TwoSources,
    #[error(transparent)]
    File(#[from] file::FileError),
    #[error(transparent)]
    Cloud(#[from] cloud::CloudError),
    #[error(transparent)]
    Patterns(#[from] PatternError),
}

/// A built `logs` probe: its matcher and source, and the offsets, cursors and counts kept
/// across runs.
#[derive(Debug)]
pub(crate) struct LogsProbe {
    spec: LogsSpec,
    prep: Prepared,
    state: tokio::sync::Mutex<State>,
}

impl LogsSpec {
    /// The configured pattern names, in the order of [`LogsObs::patterns`].
    pub(crate) fn pattern_names(&self) -> impl Iterator<Item = &str> {
        self.patterns.keys().map(|k| k.0.as_str())
    }
}

/// The `pathwatch_log_*` families. The `pattern` label is a configured name, never matched
/// text.
const MATCHES: KindFamily = KindFamily::counter(
    "log_pattern_matches",
    "Log lines (or Cloud Logging entries) that matched each configured pattern",
)
.labels(&["pattern"]);
const WINDOW_MATCHES: KindFamily = KindFamily::int_gauge(
    "log_pattern_window_matches",
    "Matches of each pattern within the probe's sliding window (default 30m), as of its last run",
)
.labels(&["pattern"]);
const LAST_VALUE: KindFamily = KindFamily::gauge(
    "log_pattern_last_value",
    "The last number captured by the pattern's group (e.g. seconds in PHASE COMPLETED: DATABASE (x.xxxs)); absent until one matched",
)
.labels(&["pattern"]);
const LINES_READ: KindFamily = KindFamily::counter(
    "log_lines_read",
    "Log lines read from a file, or entries read from Cloud Logging",
);

impl ProbeKind for LogsSpec {
    const KIND: Kind = Kind::Logs;
    /// Reading a file is quick; Cloud Logging may take a few pages.
    const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    type Probe = LogsProbe;
    type Error = LogsError;
    /// Totals since the probe was built (see the module's doc), so the counters are
    /// [`crate::probe::FamilyType::Counter`]s: a run cut at its timeout is caught up by the next.
    const FAMILIES: &'static [KindFamily] = &[MATCHES, WINDOW_MATCHES, LAST_VALUE, LINES_READ];

    /// Every pattern's series at 0 before the first run, so `increase()` sees the first
    /// match.
    fn initial_samples(&self) -> Vec<Sample> {
        let mut samples: Vec<Sample> = self
            .pattern_names()
            .flat_map(|name| {
                [MATCHES, WINDOW_MATCHES].map(|f| f.sample_with(vec![name.to_string()], 0.0))
            })
            .collect();
        samples.push(LINES_READ.sample(0.0));
        samples
    }

    fn build(&self) -> Result<LogsProbe, LogsError> {
        if self.patterns.is_empty() {
            return Err(LogsError::NoPatterns);
        }
        let cloud = match (&self.file, &self.cloud_logging) {
            (None, None) => return Err(LogsError::NoSource),
            (Some(_), Some(_)) => return Err(LogsError::TwoSources),
            (Some(f), None) => {
                f.validate()?;
                None
            }
            (None, Some(c)) => Some(c.prepare()?),
        };
        let regexes: Vec<_> = self.patterns.values().map(|p| &p.0).collect();
        Ok(LogsProbe {
            spec: self.clone(),
            prep: Prepared {
                names: self.pattern_names().map(str::to_string).collect(),
                matcher: Matcher::new(&regexes)?,
                cloud,
            },
            state: tokio::sync::Mutex::default(),
        })
    }
}

impl Probe for LogsProbe {
    async fn run(&self, trace: &Trace) -> Result<Outcome, ProbeError> {
        probe(self, trace).await
    }
}

/// What the logs probe has seen since pathwatch started, reported as the samples of the
/// `pathwatch_log_*` families ([`LogsObs::samples`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct LogsObs {
    /// Lines read from a file, or entries read from Cloud Logging.
    pub(crate) lines_read: u64,
    /// One per configured pattern, in name order.
    pub(crate) patterns: Vec<PatternObs>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PatternObs {
    /// A configured pattern name (bounded by the config, never matched text).
    pub(crate) name: String,
    /// Lines that matched, in total.
    pub(crate) matches: u64,
    /// Lines that matched within the window, as of the end of the run.
    pub(crate) window_matches: u64,
    /// The last number captured by the pattern's group, if it has one and it matched.
    pub(crate) last_value: Option<f64>,
}

impl LogsObs {
    /// The samples of [`LogsSpec::FAMILIES`]: a pattern's last value only once one matched.
    pub(crate) fn samples(&self) -> Vec<Sample> {
        let mut samples = Vec::with_capacity(1 + 3 * self.patterns.len());
        samples.push(LINES_READ.sample(self.lines_read as f64));
        for p in &self.patterns {
            let label = || vec![p.name.clone()];
            samples.push(MATCHES.sample_with(label(), p.matches as f64));
            samples.push(WINDOW_MATCHES.sample_with(label(), p.window_matches as f64));
            if let Some(v) = p.last_value {
                samples.push(LAST_VALUE.sample_with(label(), v));
            }
        }
        samples
    }
}

/// The probe's memory between runs.
#[derive(Default)]
struct State {
    counts: LogCounts,
    file: file::Cursor,
    cloud: cloud::Cursor,
}

/// A summary only: the cursors hold pieces of log lines, which have no place in a debug print
/// of the config.
impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("lines_read", &self.counts.lines_read)
            .finish_non_exhaustive()
    }
}

/// Match counts, per pattern in name order.
#[derive(Debug, Default)]
pub(crate) struct LogCounts {
    lines_read: u64,
    patterns: Vec<PatternCount>,
}

#[derive(Debug)]
struct PatternCount {
    matches: u64,
    window: Window,
    last_value: Option<f64>,
}

impl LogCounts {
    fn ensure(&mut self, n: usize, window: Duration) {
        if self.patterns.len() != n {
            self.patterns = (0..n)
                .map(|_| PatternCount {
                    matches: 0,
                    window: Window::new(window),
                    last_value: None,
                })
                .collect();
        }
    }

    /// Counts one line (or entry) written at `at_ms` (unix ms).
    pub(crate) fn scan(&mut self, matcher: &Matcher, text: &str, at_ms: u64, now_ms: u64) {
        self.lines_read += 1;
        let patterns = &mut self.patterns;
        matcher.scan(text, |i, value| {
            if let Some(p) = patterns.get_mut(i) {
                p.matches += 1;
                p.window.add(at_ms, now_ms);
                if value.is_some() {
                    p.last_value = value;
                }
            }
        });
    }

    fn obs(&mut self, names: &[String], now_ms: u64) -> LogsObs {
        LogsObs {
            lines_read: self.lines_read,
            patterns: names
                .iter()
                .zip(self.patterns.iter_mut())
                .map(|(name, p)| PatternObs {
                    name: name.clone(),
                    matches: p.matches,
                    window_matches: p.window.count(now_ms),
                    last_value: p.last_value,
                })
                .collect(),
        }
    }
}

/// What a source reader needs besides its own state.
pub(crate) struct Ctx<'a> {
    pub(crate) matcher: &'a Matcher,
    names: &'a [String],
    pub(crate) trace: &'a Trace,
}

impl Ctx<'_> {
    /// Hands the counts so far to the trace. Readers call it after each chunk or page, right
    /// after the counts changed and before the next await, so that a run cut at its timeout
    /// still reports everything its reads were counted for.
    pub(crate) fn publish(&self, counts: &mut LogCounts) {
        self.trace.observe(Observation::Samples(
            counts.obs(self.names, now_ms()).samples(),
        ));
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

async fn probe(p: &LogsProbe, trace: &Trace) -> Result<Outcome, ProbeError> {
    let (spec, prep) = (&p.spec, &p.prep);
    // A run cut at its timeout drops its guard with its task. The state only changes between
    // awaits, so whatever point a run stopped at leaves it consistent.
    let mut state = p.state.lock().await;
    let state = &mut *state;
    state.counts.ensure(prep.names.len(), spec.window.0);
    let ctx = Ctx {
        matcher: &prep.matcher,
        names: &prep.names,
        trace,
    };
    ctx.publish(&mut state.counts);
    let lines_before = state.counts.lines_read;
    let read = match (&spec.file, &spec.cloud_logging, &prep.cloud) {
        (Some(f), _, _) => {
            file::read(f, &mut state.file, &mut state.counts, &ctx)
                .await
                .map(|backlog| {
                    if backlog {
                        // More is written than one run may read: catch up soon.
                        trace.set_next_run(Duration::from_secs(1));
                    }
                })
        }
        (None, Some(c), Some(p)) => {
            cloud::read(
                c,
                p,
                spec.window.0,
                &mut state.cloud,
                &mut state.counts,
                &ctx,
            )
            .await
        }
        _ => Err(ProbeError::new(
            Reason::Protocol,
            "no log source configured",
        )),
    };
    ctx.publish(&mut state.counts);
    read.map(|()| Outcome {
        facts: vec![(
            "lines_read",
            (state.counts.lines_read - lines_before).to_string(),
        )],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_pattern_with_window_and_last_value() {
        let a = patterns::compile(r"PHASE COMPLETED: DATABASE \(([0-9.]+)s\)").unwrap();
        let b = patterns::compile(r"Application startup failed\. Exiting\.").unwrap();
        let m = Matcher::new(&[&a, &b]).unwrap();
        let mut c = LogCounts::default();
        c.ensure(2, Duration::from_secs(60));
        let t0 = 1_700_000_000_000;
        c.scan(&m, "PHASE COMPLETED: DATABASE (1.500s)", t0, t0);
        c.scan(&m, "Application startup failed. Exiting.", t0, t0);
        c.scan(
            &m,
            "PHASE COMPLETED: DATABASE (0.250s)",
            t0 + 120_000,
            t0 + 120_000,
        );
        c.scan(&m, "nothing to see", t0 + 120_000, t0 + 120_000);
        let names = ["db_phase".to_string(), "startup_failed".to_string()];
        let obs = c.obs(&names, t0 + 120_000);
        assert_eq!(obs.lines_read, 4);
        assert_eq!(
            obs.patterns,
            vec![
                PatternObs {
                    name: "db_phase".into(),
                    matches: 2,
                    window_matches: 1,
                    last_value: Some(0.25),
                },
                PatternObs {
                    name: "startup_failed".into(),
                    matches: 1,
                    window_matches: 0,
                    last_value: None,
                },
            ]
        );
    }
}

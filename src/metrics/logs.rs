//! The `pathwatch_log_*` families of the `logs` probe: matches per configured pattern (in
//! total and within the sliding window), the last number a pattern captured, and lines read.
//! The `pattern` label is a configured name, never matched text.

use super::kinds::KindMetrics;
use super::{FloatGauge, NameLabels};
use crate::config::ProbeConfig;
use crate::probe::logs::LogsObs;
use crate::probe::{Kind, ProbeSpec, RunResult};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PatternLabels {
    pub probe: String,
    /// A configured pattern name: bounded by the config.
    pub pattern: String,
}

#[derive(Debug, Default)]
pub struct LogMetrics {
    pub matches: Family<PatternLabels, Counter>,
    pub window_matches: Family<PatternLabels, Gauge>,
    pub last_value: Family<PatternLabels, FloatGauge>,
    pub lines_read: Family<NameLabels, Counter>,
}

impl LogMetrics {
    fn register_families(&self, r: &mut Registry) {
        r.register(
            "log_pattern_matches",
            "Log lines (or Cloud Logging entries) that matched each configured pattern",
            self.matches.clone(),
        );
        r.register(
            "log_pattern_window_matches",
            "Matches of each pattern within the probe's sliding window (default 30m), as of its last run",
            self.window_matches.clone(),
        );
        r.register(
            "log_pattern_last_value",
            "The last number captured by the pattern's group (e.g. seconds in PHASE COMPLETED: DATABASE (x.xxxs)); absent until one matched",
            self.last_value.clone(),
        );
        r.register(
            "log_lines_read",
            "Log lines read from a file, or entries read from Cloud Logging",
            self.lines_read.clone(),
        );
    }

    /// Every pattern's series at 0 before the first run, so `increase()` sees the first match.
    fn init(&self, p: &ProbeConfig) {
        let ProbeSpec::Logs(spec) = &p.spec else {
            return;
        };
        for name in spec.pattern_names() {
            let labels = PatternLabels {
                probe: p.name.clone(),
                pattern: name.to_string(),
            };
            let _ = self.matches.get_or_create(&labels);
            self.window_matches.get_or_create(&labels).set(0);
        }
        let _ = self.lines_read.get_or_create(&NameLabels {
            probe: p.name.clone(),
        });
    }

    /// Removes every series of a probe that left the config.
    fn forget(&self, p: &ProbeConfig) {
        if let ProbeSpec::Logs(spec) = &p.spec {
            for name in spec.pattern_names() {
                let labels = PatternLabels {
                    probe: p.name.clone(),
                    pattern: name.to_string(),
                };
                self.matches.remove(&labels);
                self.window_matches.remove(&labels);
                self.last_value.remove(&labels);
            }
        }
        self.lines_read.remove(&NameLabels {
            probe: p.name.clone(),
        });
    }

    /// Records a run's totals. They are totals since the probe started (see probe::logs), so
    /// the counters move by the difference: a run cut at its timeout is caught up by the next.
    fn record_obs(&self, probe: &str, obs: Option<&LogsObs>) {
        let Some(obs) = obs else { return };
        catch_up(
            &self.lines_read.get_or_create(&NameLabels {
                probe: probe.to_string(),
            }),
            obs.lines_read,
        );
        for p in &obs.patterns {
            let labels = PatternLabels {
                probe: probe.to_string(),
                pattern: p.name.clone(),
            };
            catch_up(&self.matches.get_or_create(&labels), p.matches);
            self.window_matches
                .get_or_create(&labels)
                .set(i64::try_from(p.window_matches).unwrap_or(i64::MAX));
            if let Some(v) = p.last_value {
                self.last_value.get_or_create(&labels).set(v);
            }
        }
    }
}

/// Raises `counter` to `total` (counters never go down).
fn catch_up(counter: &Counter, total: u64) {
    let seen = counter.get();
    if total > seen {
        counter.inc_by(total - seen);
    }
}

impl KindMetrics for LogMetrics {
    fn register(&self, r: &mut Registry) {
        self.register_families(r);
    }

    fn init_probe(&self, p: &ProbeConfig) {
        self.init(p);
    }

    fn record(&self, probe: &str, _kind: Kind, run: &RunResult) {
        self.record_obs(probe, run.observations.logs());
    }

    fn forget_probe(&self, p: &ProbeConfig) {
        self.forget(p);
    }
}

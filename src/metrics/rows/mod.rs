//! Everything every probe has, one row per probe: the six gauges of `probe, kind` (success,
//! consecutive failures, timed out, duration, timeout, interval), its runs by result and
//! reason, its phases, its last-run time and its run-duration histogram.
//!
//! Kept as a family per metric, each map held its own copy of every probe's labels and each
//! line's label text was formatted per scrape: at 10,000 probes a scrape paid a cache miss
//! on nearly every line and the copies cost about 1,240 bytes a probe (issue 19). A row
//! holds its label text (`probe="x",kind="tcp"`, escaped) rendered once; a scrape walks the
//! rows once, writing each family into a buffer of its own (the formats want a family's
//! lines together), and a line is a few appends of prerendered text and one number
//! (rows/text.rs).

#[cfg(test)]
mod tests;
mod text;

use super::TraceLabels;
use super::histograms::{BucketCounts, BucketSet, HistogramText, close_labels, push_pair};
use super::labels::RunResultLabel;
use super::values::{ValueKind, header};
use crate::probe::{Kind, Phase, Reason};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// One number of the row, written as a gauge of its own family.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Field {
    Success,
    ConsecutiveFailures,
    TimedOut,
    Duration,
    Timeout,
    Interval,
    /// `pathwatch_probe_last_run_timestamp_seconds`, labelled by `probe` alone.
    LastRun,
}

const FIELDS: [Field; 7] = [
    Field::Success,
    Field::ConsecutiveFailures,
    Field::TimedOut,
    Field::Duration,
    Field::Timeout,
    Field::Interval,
    Field::LastRun,
];

impl Field {
    fn kind(self) -> ValueKind {
        match self {
            Field::Success | Field::ConsecutiveFailures | Field::TimedOut => ValueKind::Gauge,
            _ => ValueKind::FloatGauge,
        }
    }
}

/// The name, unit and help of a family.
pub(crate) type FamilyName = (&'static str, Option<&'static str>, &'static str);

/// The families of the rows: [`Field`]s, runs, phases, the run-duration histogram.
#[derive(Clone, Copy)]
pub(crate) struct RowFamilies {
    pub(crate) fields: [FamilyName; 7],
    /// A counter: the name without `_total`.
    pub(crate) runs: FamilyName,
    pub(crate) phases: FamilyName,
    pub(crate) run_duration: FamilyName,
}

/// A family's metadata lines and sample prefix (`<name>{`).
struct Meta {
    header: Box<str>,
    prefix: Box<str>,
}

impl Meta {
    fn new((name, unit, help): FamilyName, type_name: &str, suffix: &str) -> Meta {
        Meta {
            header: header(name, type_name, unit, help),
            prefix: format!("{name}{suffix}{{").into_boxed_str(),
        }
    }
}

/// One probe's row.
struct Row {
    kind: Kind,
    /// `probe="x",kind="tcp"} `, escaped, with the `} ` that closes it in most lines;
    /// `labels[..name_len]` is `probe="x"`.
    labels: Box<str>,
    name_len: usize,
    /// Bits of an `i64` or `f64` per [`Field`], as its kind says.
    values: [AtomicU64; 7],
    /// Which fields exist (bit `field as u8`): success, duration and last run only from
    /// the first run on.
    present: AtomicU8,
    counts: Mutex<RowCounts>,
}

/// What a run changes together beside the fields.
#[derive(Default)]
struct RowCounts {
    /// Runs by result and reason, in the order first seen.
    runs: Vec<(RunResultLabel, Reason, u64)>,
    /// The last run's phases (seconds); phases it did not reach are absent.
    phases: Vec<(Phase, f64)>,
    /// None for `buckets: []` (and in an on-demand run's rows).
    histogram: Option<(Arc<BucketSet>, BucketCounts)>,
}

impl Row {
    fn new(probe: &str, kind: Kind) -> Row {
        let mut labels = String::with_capacity(probe.len() + 20);
        push_pair(&mut labels, "probe", probe);
        let name_len = labels.len();
        push_pair(&mut labels, "kind", kind.as_str());
        Row {
            kind,
            labels: close_labels(labels),
            name_len,
            values: Default::default(),
            present: AtomicU8::new(0),
            counts: Mutex::default(),
        }
    }

    /// Stores `bits` in `field` and marks it present.
    fn store(&self, field: Field, bits: u64) {
        self.values[field as usize].store(bits, Ordering::Relaxed);
        self.mark(field);
    }

    fn mark(&self, field: Field) {
        let bit = 1u8 << field as u8;
        if self.present.load(Ordering::Relaxed) & bit == 0 {
            self.present.fetch_or(bit, Ordering::Relaxed);
        }
    }

    #[cfg(test)]
    fn has(&self, field: Field) -> bool {
        self.present.load(Ordering::Relaxed) & (1 << field as u8) != 0
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, RowCounts> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

type Rows = Arc<RwLock<HashMap<Box<str>, Row>>>;

/// One finished run, as the rows record it.
pub(crate) struct RowRun<'a> {
    pub(crate) ok: bool,
    pub(crate) reason: Reason,
    pub(crate) seconds: f64,
    pub(crate) phases: &'a [(Phase, std::time::Duration)],
    pub(crate) finished_unix_seconds: f64,
    pub(crate) exemplar: Option<&'a TraceLabels>,
}

pub(crate) struct ProbeRows {
    fields: [Meta; 7],
    runs: Meta,
    phases: Meta,
    histogram: HistogramText,
    /// The run-duration buckets of a probe without its own.
    default_buckets: Arc<BucketSet>,
    /// Other bucket sets in use: probes with the same bounds share one.
    bucket_sets: Mutex<Vec<Arc<BucketSet>>>,
    suffixes: text::Suffixes,
    /// Each half's buffer sizes at the previous encode, family by family, to size the next.
    sizes: [AtomicUsize; 2 * text::FAMILIES],
    rows: Rows,
}

impl fmt::Debug for ProbeRows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeRows").finish_non_exhaustive()
    }
}

impl ProbeRows {
    pub(crate) fn new(families: RowFamilies, default_buckets: &[f64]) -> Self {
        let (name, unit, help) = families.run_duration;
        ProbeRows {
            fields: std::array::from_fn(|i| Meta::new(families.fields[i], "gauge", "")),
            runs: Meta::new(families.runs, "counter", "_total"),
            phases: Meta::new(families.phases, "gauge", ""),
            histogram: HistogramText::new(name, unit, help),
            default_buckets: Arc::new(BucketSet::new(default_buckets)),
            bucket_sets: Mutex::default(),
            suffixes: text::Suffixes::new(),
            sizes: Default::default(),
            rows: Rows::default(),
        }
    }

    /// Applies `f` to the row of `probe`, created (or, for another kind, replaced) first.
    fn with<T>(&self, probe: &str, kind: Kind, f: impl FnOnce(&Row) -> T) -> T {
        if let Some(row) = self.read().get(probe)
            && row.kind == kind
        {
            return f(row);
        }
        let mut rows = self
            .rows
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let row = rows
            .entry(probe.into())
            .and_modify(|r| {
                if r.kind != kind {
                    *r = Row::new(probe, kind);
                }
            })
            .or_insert_with(|| Row::new(probe, kind));
        f(row)
    }

    /// A probe's row before its first run: its configured gauges, the failure gauges and the
    /// `success, ok` run counter at 0, and its run-duration histogram over `buckets` (none
    /// for `None`, `buckets: []`). Nothing that exists is reset, except a histogram whose
    /// bounds changed (a new layout starts anew, as a restart would).
    pub(crate) fn init(
        &self,
        probe: &str,
        kind: Kind,
        timeout: f64,
        interval: f64,
        buckets: Option<&[f64]>,
    ) {
        let set = buckets.map(|b| self.bucket_set(b));
        self.with(probe, kind, |row| {
            row.store(Field::Timeout, timeout.to_bits());
            row.store(Field::Interval, interval.to_bits());
            row.mark(Field::ConsecutiveFailures);
            row.mark(Field::TimedOut);
            let mut counts = row.counts();
            if !counts
                .runs
                .iter()
                .any(|(r, why, _)| *r == RunResultLabel::Success && *why == Reason::Ok)
            {
                // Exactly as many slots as kinds of runs seen (a first push takes four):
                // most probes only ever succeed.
                counts.runs.reserve_exact(1);
                counts.runs.push((RunResultLabel::Success, Reason::Ok, 0));
            }
            match set {
                None => counts.histogram = None,
                Some(set) => {
                    if counts.histogram.as_ref().map(|(s, _)| s.bounds()) != Some(set.bounds()) {
                        let fresh = BucketCounts::new(&set);
                        counts.histogram = Some((set, fresh));
                    }
                }
            }
        });
    }

    /// The shared set of `bounds`.
    fn bucket_set(&self, bounds: &[f64]) -> Arc<BucketSet> {
        if self.default_buckets.bounds() == bounds {
            return Arc::clone(&self.default_buckets);
        }
        let mut sets = self
            .bucket_sets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Sets no probe holds any more go (reloads change bounds).
        sets.retain(|s| Arc::strong_count(s) > 1);
        if let Some(s) = sets.iter().find(|s| s.bounds() == bounds) {
            return Arc::clone(s);
        }
        let set = Arc::new(BucketSet::new(bounds));
        sets.push(Arc::clone(&set));
        set
    }

    /// Records one finished run of `probe`.
    pub(crate) fn record(&self, probe: &str, kind: Kind, run: &RowRun<'_>) {
        self.with(probe, kind, |row| {
            row.store(Field::Success, u64::from(run.ok));
            if run.ok {
                row.store(Field::ConsecutiveFailures, 0);
            } else {
                row.values[Field::ConsecutiveFailures as usize].fetch_add(1, Ordering::Relaxed);
                row.mark(Field::ConsecutiveFailures);
            }
            row.store(Field::TimedOut, u64::from(run.reason == Reason::Timeout));
            row.store(Field::Duration, run.seconds.to_bits());
            row.store(Field::LastRun, run.finished_unix_seconds.to_bits());
            let result = if run.ok {
                RunResultLabel::Success
            } else {
                RunResultLabel::Failure
            };
            let mut counts = row.counts();
            match counts
                .runs
                .iter_mut()
                .find(|(r, why, _)| *r == result && *why == run.reason)
            {
                Some((_, _, n)) => *n += 1,
                None => {
                    counts.runs.reserve_exact(1);
                    counts.runs.push((result, run.reason, 1));
                }
            }
            counts.phases.clear();
            // Sized by the first run (a first push takes four slots); later runs reach the
            // same phases or fewer.
            counts.phases.reserve_exact(run.phases.len());
            for (phase, took) in run.phases {
                // A phase timed twice counts its first time.
                if !counts.phases.iter().any(|(p, _)| p == phase) {
                    counts.phases.push((*phase, took.as_secs_f64()));
                }
            }
            if let Some((set, h)) = &mut counts.histogram {
                h.observe(set.bounds(), run.seconds, run.exemplar);
            }
        });
    }

    /// Removes the row of a probe that left the config.
    pub(crate) fn forget(&self, probe: &str) -> bool {
        let mut rows = self
            .rows
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        rows.remove(probe).is_some()
    }

    #[cfg(test)]
    /// The value of `field` of `probe` as an `f64`, if it exists.
    pub(crate) fn get(&self, field: Field, probe: &str) -> Option<f64> {
        let rows = self.read();
        let row = rows.get(probe).filter(|r| r.has(field))?;
        let bits = row.values[field as usize].load(Ordering::Relaxed);
        Some(match field.kind() {
            ValueKind::FloatGauge => f64::from_bits(bits),
            _ => bits as i64 as f64,
        })
    }

    #[cfg(test)]
    /// The runs of `probe` with `result` and `reason`, if that counter exists.
    pub(crate) fn runs(&self, probe: &str, result: RunResultLabel, reason: Reason) -> Option<u64> {
        let rows = self.read();
        let counts = rows.get(probe)?.counts();
        let found = counts
            .runs
            .iter()
            .find(|(r, why, _)| *r == result && *why == reason);
        found.map(|(_, _, n)| *n)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Box<str>, Row>> {
        self.rows
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

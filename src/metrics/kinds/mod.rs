//! The families the kinds declare ([`crate::probe::ProbeKind::FAMILIES`]): each kind
//! reports [`Sample`]s of its own, and [`DeclaredFamilies`] registers and writes them all
//! without knowing a kind. metrics.rs records what every run has (success, duration, phases,
//! reasons) and hands each run to these, so it knows no kind's observation.

use super::exemplar;
use super::histograms::{HistogramFamily, LabelText, push_pair};
use crate::config::ProbeConfig;
use crate::probe::{FamilyType, Kind, KindFamily, Observed, Reason, RunResult, Sample, Unreported};
use prometheus_client::encoding::{
    EncodeLabel, EncodeLabelSet, EncodeMetric, LabelSetEncoder, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// One family per [`KindFamily`] the kinds declare, in the kinds' order (a family several
/// kinds declare, e.g. `http_status_code` of http and startup, once): a kind that reports
/// [`Sample`]s gets its metrics from its own module, without code here. Gauges and counters
/// are written by the registry; histograms with the per-probe text (metrics/histograms.rs).
#[derive(Debug)]
pub struct DeclaredFamilies {
    /// Each gauge or counter family and the kinds that declare it.
    families: Vec<(Vec<Kind>, DeclaredFamily)>,
    /// Each histogram family and the kinds that declare it.
    histograms: Vec<(Vec<Kind>, DeclaredHistogram)>,
}

impl DeclaredFamilies {
    /// One family per declaration of every kind (a family two kinds declare, e.g.
    /// `http_status_code` of http and startup, is registered once).
    pub fn new() -> Self {
        let mut declared: Vec<(Vec<Kind>, &'static KindFamily)> = Vec::new();
        for k in Kind::ALL {
            for decl in k.families() {
                match declared.iter_mut().find(|(_, d)| d.name == decl.name) {
                    Some((kinds, d)) => {
                        debug_assert_eq!(*d, decl, "{} declared twice", decl.name);
                        kinds.push(*k);
                    }
                    None => declared.push((vec![*k], decl)),
                }
            }
        }
        let (mut families, mut histograms) = (Vec::new(), Vec::new());
        for (kinds, decl) in declared {
            match decl.family_type {
                FamilyType::Histogram { buckets, observed } => {
                    let name = match decl.unit {
                        Some(unit) => format!("pathwatch_{}_{unit}", decl.name),
                        None => format!("pathwatch_{}", decl.name),
                    };
                    let family = HistogramFamily::new(&name, decl.unit, decl.help, buckets);
                    histograms.push((
                        kinds,
                        DeclaredHistogram {
                            decl,
                            observed,
                            family,
                        },
                    ));
                }
                _ => families.push((
                    kinds,
                    DeclaredFamily {
                        decl,
                        series: Arc::default(),
                    },
                )),
            }
        }
        DeclaredFamilies {
            families,
            histograms,
        }
    }

    fn of(&self, kind: Kind) -> impl Iterator<Item = &DeclaredFamily> {
        self.families
            .iter()
            .filter(move |(k, _)| k.contains(&kind))
            .map(|(_, f)| f)
    }

    fn histograms_of(&self, kind: Kind) -> impl Iterator<Item = &DeclaredHistogram> {
        self.histograms
            .iter()
            .filter(move |(k, _)| k.contains(&kind))
            .map(|(_, h)| h)
    }

    /// Writes `samples` of `probe` into the families of `kind`; with `run` set, a series
    /// the samples do not have goes as its family says ([`Unreported`]). Before a run
    /// (`run` unset), a histogram's sample creates its series empty.
    fn apply(&self, probe: &str, kind: Kind, samples: &[Sample], run: bool) {
        let reported = |name: &str| samples.iter().any(|s| s.family == name);
        // Whether the run reported any gauge or counter of its kind.
        let any = self.of(kind).any(|f| reported(f.decl.name));
        for family in self.of(kind) {
            let mut series = family.write();
            let name = family.decl.name;
            let has = |labels: &Vec<String>| {
                samples
                    .iter()
                    .any(|s| s.family == name && s.labels == *labels)
            };
            let drop = match family.decl.unreported {
                Unreported::Removed => run,
                Unreported::RemovedWhenOthersReported => run && any,
                Unreported::Zero | Unreported::Kept => false,
            };
            if drop || (run && family.decl.unreported == Unreported::Zero) {
                // The probe's series only: the map is ordered by probe.
                let stale: Vec<Vec<String>> = series
                    .range((probe.to_string(), Vec::new())..)
                    .take_while(|((p, _), _)| p == probe)
                    .filter(|((_, l), _)| !has(l))
                    .map(|((_, l), _)| l.clone())
                    .collect();
                for labels in stale {
                    let key = (probe.to_string(), labels);
                    if drop {
                        series.remove(&key);
                    } else {
                        series.insert(key, 0.0);
                    }
                }
                if !drop && family.decl.labels.is_empty() && !reported(name) {
                    series.insert((probe.to_string(), Vec::new()), 0.0);
                }
            }
            if matches!(family.decl.family_type, FamilyType::Failures { .. }) {
                continue;
            }
            for s in samples.iter().filter(|s| s.family == name) {
                let v = series
                    .entry((probe.to_string(), s.labels.clone()))
                    .or_insert(0.0);
                match family.decl.family_type {
                    // Counters never go down: a total lower than the count (a probe rebuilt
                    // by a reload) waits until it passes it.
                    FamilyType::Counter => *v = v.max(s.value),
                    FamilyType::CounterIncrement => *v += s.value.max(0.0),
                    _ => *v = s.value,
                }
            }
        }
        if !run {
            for h in self.histograms_of(kind) {
                for s in samples.iter().filter(|s| s.family == h.decl.name) {
                    let _ = h.family.get_or_create(&h.key(probe, &s.labels));
                }
            }
        }
    }

    /// Counts a failed run in the kind's [`FamilyType::Failures`] families.
    fn count_failure(&self, probe: &str, kind: Kind, run: &RunResult) {
        let (Err(e), Some(phase)) = (&run.outcome, run.failed_phase) else {
            return;
        };
        for family in self.of(kind) {
            if let FamilyType::Failures { steps, other } = family.decl.family_type {
                let step = steps
                    .iter()
                    .find(|(p, _)| *p == phase)
                    .map_or(other, |s| s.1);
                let labels = vec![step.to_string(), e.reason.as_str().to_string()];
                *family
                    .write()
                    .entry((probe.to_string(), labels))
                    .or_insert(0.0) += 1.0;
            }
        }
    }

    /// Observes one run in the histograms of `kind` ([`Observed`]).
    fn observe(&self, probe: &str, kind: Kind, run: &RunResult) {
        let (ok, timeout) = (run.ok(), run.reason() == Reason::Timeout);
        if !ok && !timeout {
            return;
        }
        for h in self.histograms_of(kind) {
            let mut samples = run
                .observations
                .samples()
                .iter()
                .filter(|s| s.family == h.decl.name)
                .peekable();
            let observe = |labels: &[String], v: f64| {
                h.family
                    .observe(&h.key(probe, labels), v, exemplar(run).as_ref());
            };
            match h.observed {
                Observed::Sample if ok => samples.for_each(|s| observe(&s.labels, s.value)),
                // A run cut at its timeout counts at the timeout.
                Observed::Sample => match samples.peek() {
                    Some(s) => observe(&s.labels, run.duration.as_secs_f64()),
                    None if h.decl.labels.is_empty() => {
                        observe(&[], run.duration.as_secs_f64());
                    }
                    None => {}
                },
                Observed::RunSeconds => {
                    if let Some(s) = samples.peek() {
                        observe(&s.labels, run.session_seconds());
                    }
                }
            }
        }
    }
}

impl DeclaredFamilies {
    /// Registers the gauges and counters (into the `pathwatch`-prefixed registry); the
    /// histograms write their own text ([`DeclaredFamilies::encode_histograms`]).
    pub fn register(&self, r: &mut Registry) {
        for (_, family) in &self.families {
            let d = family.decl;
            let f = family.clone();
            match d.unit {
                Some("seconds") => r.register_with_unit(d.name, d.help, Unit::Seconds, f),
                Some("bytes") => r.register_with_unit(d.name, d.help, Unit::Bytes, f),
                Some(u) => r.register_with_unit(d.name, d.help, Unit::Other(u.into()), f),
                None => r.register(d.name, d.help, f),
            }
        }
    }

    /// The series the probe's spec has before its first run (and again at each reload:
    /// gauges back to their first value, counters and histograms kept).
    pub fn init_probe(&self, p: &ProbeConfig) {
        self.apply(&p.name, p.spec.kind(), &p.spec.initial_samples(), false);
    }

    /// One finished run of `probe`: its samples, its failure and its histograms.
    pub fn record(&self, probe: &str, kind: Kind, run: &RunResult) {
        self.apply(probe, kind, run.observations.samples(), true);
        self.count_failure(probe, kind, run);
        self.observe(probe, kind, run);
    }

    /// Removes every series of a probe that left the config (or changed kind).
    pub fn forget_probe(&self, p: &ProbeConfig) {
        for family in self.of(p.spec.kind()) {
            family.write().retain(|(probe, _), _| *probe != p.name);
        }
        for h in self.histograms_of(p.spec.kind()) {
            h.family.retain(|key| key.probe != p.name);
        }
    }

    /// Appends the declared histograms' text, in the kinds' order.
    pub fn encode_histograms(&self, out: &mut String) {
        for (_, h) in &self.histograms {
            h.family.encode(out);
        }
    }
}

/// A declared histogram: its declaration and its self-encoded family.
#[derive(Debug)]
struct DeclaredHistogram {
    decl: &'static KindFamily,
    observed: Observed,
    family: HistogramFamily<SeriesKey>,
}

impl DeclaredHistogram {
    fn key(&self, probe: &str, values: &[String]) -> SeriesKey {
        SeriesKey {
            probe: probe.to_string(),
            names: self.decl.labels,
            values: values.to_vec(),
        }
    }
}

/// A declared histogram's series: `probe`, then the family's own labels.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SeriesKey {
    probe: String,
    names: &'static [&'static str],
    values: Vec<String>,
}

impl LabelText for SeriesKey {
    fn write_labels(&self, out: &mut String) {
        push_pair(out, "probe", &self.probe);
        for (name, value) in self.names.iter().zip(&self.values) {
            push_pair(out, name, value);
        }
    }
}

impl Default for DeclaredFamilies {
    fn default() -> Self {
        Self::new()
    }
}

/// The series of one declared family: (probe, label values) -> value, written by the
/// registry at each scrape in that order.
type SeriesMap = BTreeMap<(String, Vec<String>), f64>;

/// A declared family as a prometheus-client metric: it writes the text a `Family` of
/// gauges or counters with the same labels writes (an empty one writes nothing, not even
/// its HELP).
#[derive(Clone, Debug)]
struct DeclaredFamily {
    decl: &'static KindFamily,
    series: Arc<RwLock<SeriesMap>>,
}

impl DeclaredFamily {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, SeriesMap> {
        self.series
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, SeriesMap> {
        self.series
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A series' labels as the registry writes them: `probe`, then the family's own, without
/// building a list per series at each scrape.
struct SeriesLabels<'a> {
    probe: &'a str,
    names: &'static [&'static str],
    values: &'a [String],
}

impl EncodeLabelSet for SeriesLabels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        ("probe", self.probe).encode(encoder.encode_label())?;
        for (name, value) in self.names.iter().zip(self.values) {
            (*name, value.as_str()).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

impl EncodeMetric for DeclaredFamily {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for ((probe, values), v) in self.read().iter() {
            let labels = SeriesLabels {
                probe,
                names: self.decl.labels,
                values,
            };
            let mut e = encoder.encode_family(&labels)?;
            // Whole numbers as the integer gauges and counters they were: `as` saturates.
            match self.decl.family_type {
                FamilyType::Gauge => e.encode_gauge(v)?,
                FamilyType::IntGauge => e.encode_gauge(&(*v as i64))?,
                FamilyType::Counter
                | FamilyType::CounterIncrement
                | FamilyType::Failures { .. } => {
                    e.encode_counter::<NoLabelSet, _, u64>(&(*v as u64), None)?;
                }
                // Written with the per-probe text, not registered.
                FamilyType::Histogram { .. } => {}
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        match self.decl.family_type {
            FamilyType::Gauge | FamilyType::IntGauge => MetricType::Gauge,
            FamilyType::Counter | FamilyType::CounterIncrement | FamilyType::Failures { .. } => {
                MetricType::Counter
            }
            FamilyType::Histogram { .. } => MetricType::Histogram,
        }
    }

    fn is_empty(&self) -> bool {
        self.read().is_empty()
    }
}

#[cfg(test)]
mod tests;

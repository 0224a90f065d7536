//! The families of each kind's observations. Most kinds declare theirs
//! ([`crate::probe::ProbeKind::FAMILIES`]) and report [`Sample`]s: [`DeclaredFamilies`]
//! registers and writes them all without knowing a kind. The kinds whose observations are
//! richer than samples still have a module behind [`KindMetrics`] (http.rs, golden.rs,
//! gcp.rs, pg_connections.rs), one field of [`KindFamilies`] and one entry of `all`.
//! metrics.rs records what every run has (success, duration, phases, reasons) and hands each
//! run to these, so it knows no kind's observation.

use super::gcp::GcpMetrics;
use super::golden::GoldenMetrics;
use super::http::HttpMetrics;
pub(crate) use super::kind_metrics::KindMetrics;
use super::pg_connections::PgConnectionMetrics;
use crate::config::ProbeConfig;
use crate::probe::{FamilyType, Kind, KindFamily, RunResult, Sample};
use prometheus_client::encoding::{
    EncodeLabel, EncodeLabelSet, EncodeMetric, LabelSetEncoder, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// Every kind's families.
#[derive(Debug)]
pub(crate) struct KindFamilies {
    /// `pathwatch_http_status_code` (http, startup).
    pub(crate) http: HttpMetrics,
    /// `pathwatch_golden_path_*`.
    pub(crate) golden: GoldenMetrics,
    /// `pathwatch_gcp_*`.
    pub(crate) gcp: GcpMetrics,
    /// `pathwatch_db_connections*` (postgres with `connections: true`).
    pub(crate) pg_connections: PgConnectionMetrics,
    /// The families kinds declare (`ProbeKind::FAMILIES`), e.g. `pathwatch_log_*`,
    /// `pathwatch_startup_*`, `pathwatch_tls_cert_expiry_*`.
    pub(crate) declared: DeclaredFamilies,
}

impl KindFamilies {
    pub(crate) fn new() -> Self {
        KindFamilies {
            http: HttpMetrics::default(),
            golden: GoldenMetrics::new(),
            gcp: GcpMetrics::default(),
            pg_connections: PgConnectionMetrics::default(),
            declared: DeclaredFamilies::new(),
        }
    }

    /// Each kind's families, in the order they are registered and encoded.
    pub(crate) fn all(&self) -> [&dyn KindMetrics; 5] {
        [
            &self.http,
            &self.golden,
            &self.gcp,
            &self.pg_connections,
            &self.declared,
        ]
    }
}

impl Default for KindFamilies {
    fn default() -> Self {
        Self::new()
    }
}

/// One family per [`KindFamily`] a kind declares, in the kinds' order: a kind that reports
/// [`Sample`]s gets its metrics from its own module, without code here.
#[derive(Debug)]
pub(crate) struct DeclaredFamilies {
    families: Vec<(Kind, DeclaredFamily)>,
}

impl DeclaredFamilies {
    pub(crate) fn new() -> Self {
        let families = Kind::ALL
            .iter()
            .flat_map(|k| {
                k.families().iter().map(|decl| {
                    (
                        *k,
                        DeclaredFamily {
                            decl,
                            series: Arc::default(),
                        },
                    )
                })
            })
            .collect();
        DeclaredFamilies { families }
    }

    fn of(&self, kind: Kind) -> impl Iterator<Item = &DeclaredFamily> {
        self.families
            .iter()
            .filter(move |(k, _)| *k == kind)
            .map(|(_, f)| f)
    }

    /// Writes `samples` of `probe` into the families of `kind`; with `run` set, a family
    /// [`KindFamily::removed_when_unreported`] loses the series the samples do not have.
    fn apply(&self, probe: &str, kind: Kind, samples: &[Sample], run: bool) {
        for family in self.of(kind) {
            let mut series = family.write();
            if run && family.decl.removed_when_unreported {
                series.retain(|(p, labels), _| {
                    p != probe
                        || samples
                            .iter()
                            .any(|s| s.family == family.decl.name && s.labels == *labels)
                });
            }
            for s in samples.iter().filter(|s| s.family == family.decl.name) {
                let v = series
                    .entry((probe.to_string(), s.labels.clone()))
                    .or_insert(0.0);
                match family.decl.family_type {
                    FamilyType::Gauge | FamilyType::IntGauge => *v = s.value,
                    // Counters never go down: a total lower than the count (a probe rebuilt
                    // by a reload) waits until it passes it.
                    FamilyType::Counter => *v = v.max(s.value),
                    FamilyType::CounterIncrement => *v += s.value.max(0.0),
                }
            }
        }
    }
}

impl KindMetrics for DeclaredFamilies {
    fn register(&self, r: &mut Registry) {
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
    /// gauges back to their first value, counters kept).
    fn init_probe(&self, p: &ProbeConfig) {
        self.apply(&p.name, p.spec.kind(), &p.spec.initial_samples(), false);
    }

    fn record(&self, probe: &str, kind: Kind, run: &RunResult) {
        self.apply(probe, kind, run.observations.samples(), true);
    }

    fn forget_probe(&self, p: &ProbeConfig) {
        for family in self.of(p.spec.kind()) {
            family.write().retain(|(probe, _), _| *probe != p.name);
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
        self.series.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, SeriesMap> {
        self.series.read().unwrap_or_else(|p| p.into_inner())
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
                FamilyType::Counter | FamilyType::CounterIncrement => {
                    e.encode_counter::<NoLabelSet, _, u64>(&(*v as u64), None)?
                }
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        match self.decl.family_type {
            FamilyType::Gauge | FamilyType::IntGauge => MetricType::Gauge,
            FamilyType::Counter | FamilyType::CounterIncrement => MetricType::Counter,
        }
    }

    fn is_empty(&self) -> bool {
        self.read().is_empty()
    }
}

#[cfg(test)]
#[path = "kinds_tests.rs"]
mod tests;

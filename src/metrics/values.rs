//! Gauge and counter families that write their own OpenMetrics text: the per-probe families
//! every run sets (success, durations, runs, phases...), nine lines per tcp probe.
//!
//! prometheus-client encodes each line's labels through `dyn Write` and its label-set
//! encoder; at 10,000 probes that alone took longer than the 10 ms a whole `/metrics` may
//! (issue 19). These write a line as a handful of appends. The text is byte for byte what
//! prometheus-client writes for a `Family<L, Gauge>` (`Gauge<f64>`, `Counter`) registered
//! under the same name (the tests below encode the same values with both).

use super::histograms::LabelText;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// What a family's values are, and so how they are written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueKind {
    /// An `i64` gauge.
    Gauge,
    /// An `f64` gauge.
    FloatGauge,
    /// A `u64` counter, written as `<name>_total`.
    Counter,
}

/// One family: its metadata lines, its sample name and a value per label set. A value is
/// the bits of its `i64`, `f64` or `u64`, as [`ValueKind`] says.
pub struct ValueFamily<L> {
    kind: ValueKind,
    /// `# HELP`, `# TYPE` and `# UNIT` lines.
    header: Box<str>,
    /// `<name>{` (`<name>_total{` for a counter).
    prefix: Box<str>,
    /// Values inline in the map: a scrape reads 10,000s of them, and a pointer to each
    /// would be one more cache miss per line.
    series: Arc<RwLock<HashMap<L, AtomicU64>>>,
}

impl<L> fmt::Debug for ValueFamily<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueFamily")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl<L> Clone for ValueFamily<L> {
    fn clone(&self) -> Self {
        ValueFamily {
            kind: self.kind,
            header: self.header.clone(),
            prefix: self.prefix.clone(),
            series: Arc::clone(&self.series),
        }
    }
}

impl<L: LabelText> ValueFamily<L> {
    /// `name` is the full name with prefix and unit (`pathwatch_probe_duration_seconds`),
    /// `unit` the `# UNIT` value, as prometheus-client's `register_with_unit` writes them.
    pub fn new(kind: ValueKind, name: &str, unit: Option<&str>, help: &str) -> Self {
        let type_name = match kind {
            ValueKind::Counter => "counter",
            ValueKind::Gauge | ValueKind::FloatGauge => "gauge",
        };
        // prometheus-client's Registry ends every help text with a period.
        let mut header = format!("# HELP {name} {help}.\n# TYPE {name} {type_name}\n");
        if let Some(unit) = unit {
            header.push_str(&format!("# UNIT {name} {unit}\n"));
        }
        let suffix = if kind == ValueKind::Counter {
            "_total"
        } else {
            ""
        };
        ValueFamily {
            kind,
            header: header.into_boxed_str(),
            prefix: format!("{name}{suffix}{{").into_boxed_str(),
            series: Arc::default(),
        }
    }

    /// Applies `f` to the value of `labels`, created at 0 if it is missing.
    fn with(&self, labels: &L, f: impl Fn(&AtomicU64)) {
        if let Some(c) = self.read().get(labels) {
            return f(c);
        }
        let mut map = self.series.write().unwrap_or_else(|p| p.into_inner());
        let zero = match self.kind {
            ValueKind::FloatGauge => 0f64.to_bits(),
            ValueKind::Gauge | ValueKind::Counter => 0,
        };
        f(map
            .entry(labels.clone())
            .or_insert_with(|| AtomicU64::new(zero)));
    }

    /// Creates the series of `labels` at 0 if it is missing.
    pub fn ensure(&self, labels: &L) {
        self.with(labels, |_| {});
    }

    /// Sets an `i64` gauge.
    pub fn set(&self, labels: &L, v: i64) {
        self.with(labels, |c| c.store(v as u64, Ordering::Relaxed));
    }

    /// Sets an `f64` gauge.
    pub fn set_f64(&self, labels: &L, v: f64) {
        self.with(labels, |c| c.store(v.to_bits(), Ordering::Relaxed));
    }

    /// Adds 1 to a counter or an `i64` gauge (two's complement: the same addition).
    pub fn inc(&self, labels: &L) {
        self.with(labels, |c| {
            c.fetch_add(1, Ordering::Relaxed);
        });
    }

    /// The value of `labels` as an `f64`, if the series exists (tests and the status page).
    pub fn get(&self, labels: &L) -> Option<f64> {
        let bits = self.read().get(labels)?.load(Ordering::Relaxed);
        Some(match self.kind {
            ValueKind::Gauge => bits as i64 as f64,
            ValueKind::FloatGauge => f64::from_bits(bits),
            ValueKind::Counter => bits as f64,
        })
    }

    pub fn remove(&self, labels: &L) -> bool {
        // Every run removes the phases it did not reach, which are mostly absent already:
        // a look under the read lock spares the write lock (and a scrape's wait on it).
        if !self.read().contains_key(labels) {
            return false;
        }
        let mut map = self.series.write().unwrap_or_else(|p| p.into_inner());
        map.remove(labels).is_some()
    }

    /// Appends the family in OpenMetrics text; nothing when it has no series, as
    /// prometheus-client does.
    pub fn encode(&self, out: &mut String) {
        let map = self.read();
        if map.is_empty() {
            return;
        }
        out.push_str(&self.header);
        let mut float = dtoa::Buffer::new();
        let mut int = itoa::Buffer::new();
        for (labels, value) in map.iter() {
            out.push_str(&self.prefix);
            labels.write_labels(out);
            out.push_str("} ");
            let bits = value.load(Ordering::Relaxed);
            out.push_str(match self.kind {
                ValueKind::Gauge => int.format(bits as i64),
                ValueKind::FloatGauge => float.format(f64::from_bits(bits)),
                ValueKind::Counter => int.format(bits),
            });
            out.push('\n');
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<L, AtomicU64>> {
        self.series.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// Through prometheus-client's encoder, for a registry that holds one of these among its own
/// families: an on-demand run's answer (`Metrics::new_run_only`), which is one probe.
impl<L> EncodeMetric for ValueFamily<L>
where
    L: LabelText + EncodeLabelSet + Send + Sync + fmt::Debug + 'static,
{
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), fmt::Error> {
        for (labels, value) in self.read().iter() {
            let mut e = encoder.encode_family(labels)?;
            let bits = value.load(Ordering::Relaxed);
            match self.kind {
                ValueKind::Gauge => e.encode_gauge(&(bits as i64))?,
                ValueKind::FloatGauge => e.encode_gauge(&f64::from_bits(bits))?,
                ValueKind::Counter => e.encode_counter::<NoLabelSet, _, u64>(&bits, None)?,
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        match self.kind {
            ValueKind::Counter => MetricType::Counter,
            ValueKind::Gauge | ValueKind::FloatGauge => MetricType::Gauge,
        }
    }

    fn is_empty(&self) -> bool {
        self.read().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{NameLabels, ProbeLabels};
    use crate::probe::Kind;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::registry::{Registry, Unit};

    const HELP: &str = "Some help; with punctuation (1) or not (0)";

    fn probe(name: &str) -> ProbeLabels {
        ProbeLabels {
            probe: name.to_string(),
            kind: Kind::Tcp,
        }
    }

    fn sorted(text: &str) -> Vec<&str> {
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort();
        lines
    }

    /// prometheus-client's text for one registered family, without `# EOF`.
    fn reference(register: impl FnOnce(&mut Registry)) -> String {
        let mut registry = Registry::with_prefix("pathwatch");
        register(&mut registry);
        let mut text = String::new();
        encode(&mut text, &registry).expect("encode");
        text.strip_suffix("# EOF\n").expect("EOF").to_string()
    }

    #[test]
    fn gauges_and_counters_are_what_prometheus_client_writes() {
        let odd = "a\"b\\c\nd";
        let names = ["db", "p1", odd, "x.y:z"];

        let ints = Family::<ProbeLabels, Gauge>::default();
        let ours = ValueFamily::new(ValueKind::Gauge, "pathwatch_up", None, HELP);
        for (i, n) in names.iter().enumerate() {
            let v = [0, 1, -3, i64::MAX][i];
            ints.get_or_create(&probe(n)).set(v);
            ours.set(&probe(n), v);
        }
        ints.get_or_create(&probe("db")).inc();
        ours.inc(&probe("db"));
        let mut text = String::new();
        ours.encode(&mut text);
        let want = reference(|r| r.register("up", HELP, ints.clone()));
        assert_eq!(sorted(&text), sorted(&want));
        assert!(
            text.contains("pathwatch_up{probe=\"db\",kind=\"tcp\"} 1\n"),
            "{text}"
        );

        let floats = Family::<NameLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        let ours = ValueFamily::new(
            ValueKind::FloatGauge,
            "pathwatch_last_seconds",
            Some("seconds"),
            HELP,
        );
        for (i, n) in names.iter().enumerate() {
            let v = [0.0, 5.0, 0.000301246, 1795957554.9987894][i];
            let l = NameLabels {
                probe: n.to_string(),
            };
            floats.get_or_create(&l).set(v);
            ours.set_f64(&l, v);
        }
        let mut text = String::new();
        ours.encode(&mut text);
        let want = reference(|r| r.register_with_unit("last", HELP, Unit::Seconds, floats.clone()));
        assert_eq!(sorted(&text), sorted(&want));
        assert!(text.starts_with("# HELP pathwatch_last_seconds "), "{text}");

        let counts = Family::<ProbeLabels, Counter>::default();
        let ours = ValueFamily::new(ValueKind::Counter, "pathwatch_runs", None, HELP);
        for n in names {
            counts.get_or_create(&probe(n)).inc();
            ours.inc(&probe(n));
        }
        let _ = counts.get_or_create(&probe("zero"));
        ours.ensure(&probe("zero"));
        let mut text = String::new();
        ours.encode(&mut text);
        let want = reference(|r| r.register("runs", HELP, counts.clone()));
        assert_eq!(sorted(&text), sorted(&want));
        assert!(
            text.contains("pathwatch_runs_total{probe=\"zero\",kind=\"tcp\"} 0\n"),
            "{text}"
        );
        assert_eq!(ours.get(&probe("db")), Some(1.0));
    }

    #[test]
    fn an_empty_family_writes_nothing_and_removed_series_go() {
        let empty = Family::<ProbeLabels, Gauge>::default();
        let ours = ValueFamily::<ProbeLabels>::new(ValueKind::Gauge, "pathwatch_up", None, HELP);
        let mut text = String::new();
        ours.encode(&mut text);
        assert_eq!(text, reference(|r| r.register("up", HELP, empty.clone())));

        ours.set(&probe("a"), 1);
        assert!(ours.remove(&probe("a")));
        assert!(!ours.remove(&probe("a")));
        assert_eq!(ours.get(&probe("a")), None);
        let mut text = String::new();
        ours.encode(&mut text);
        assert_eq!(text, "");
    }
}

//! The six gauges of [`ProbeLabels`] every probe has (success, consecutive failures, timed
//! out, duration, timeout, interval), one row per probe.
//!
//! Kept as six families, each map held its own copy of every probe's labels, and a scrape
//! at 10,000 probes paid a cache miss on nearly every line (about 130 ns a line, issue 19).
//! One map of rows is read six times over the same 10,000 entries, which stay in cache after
//! the first pass. The text is what six [`ValueFamily`]s write (the test below compares).

use super::ProbeLabels;
use super::histograms::LabelText;
use super::values::ValueKind;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// One gauge of the row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Field {
    Success,
    ConsecutiveFailures,
    TimedOut,
    Duration,
    Timeout,
    Interval,
}

const FIELDS: [Field; 6] = [
    Field::Success,
    Field::ConsecutiveFailures,
    Field::TimedOut,
    Field::Duration,
    Field::Timeout,
    Field::Interval,
];

/// A family's metadata lines and sample prefix.
struct Meta {
    kind: ValueKind,
    header: Box<str>,
    prefix: Box<str>,
}

/// One probe's values (bits of an `i64` or `f64`, as the field's kind says), and which of
/// them exist (bit `field as u8`): success and duration only from the first run on.
#[derive(Default)]
struct Row {
    values: [AtomicU64; 6],
    present: AtomicU8,
}

type Rows = Arc<RwLock<HashMap<ProbeLabels, Row>>>;

pub struct ProbeGauges {
    meta: [Meta; 6],
    rows: Rows,
}

impl fmt::Debug for ProbeGauges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeGauges").finish_non_exhaustive()
    }
}

impl ProbeGauges {
    /// `families[i]` is the full name, unit and help of `FIELDS[i]`'s family.
    pub fn new(families: [(&str, Option<&str>, &str); 6]) -> Self {
        let meta = std::array::from_fn(|i| {
            let (name, unit, help) = families[i];
            let kind = match FIELDS[i] {
                Field::Success | Field::ConsecutiveFailures | Field::TimedOut => ValueKind::Gauge,
                Field::Duration | Field::Timeout | Field::Interval => ValueKind::FloatGauge,
            };
            // prometheus-client's Registry ends every help text with a period.
            let mut header = format!("# HELP {name} {help}.\n# TYPE {name} gauge\n");
            if let Some(unit) = unit {
                header.push_str(&format!("# UNIT {name} {unit}\n"));
            }
            Meta {
                kind,
                header: header.into_boxed_str(),
                prefix: format!("{name}{{").into_boxed_str(),
            }
        });
        ProbeGauges {
            meta,
            rows: Rows::default(),
        }
    }

    /// One field as a prometheus-client metric over the same rows, for a registry that
    /// holds it among its own families (an on-demand run's answer).
    pub fn metric(&self, field: Field) -> FieldMetric {
        FieldMetric {
            field,
            float: self.meta[field as usize].kind == ValueKind::FloatGauge,
            rows: Arc::clone(&self.rows),
        }
    }

    /// Applies `f` to the value of `field` of `labels`, creating the row and marking the
    /// field present. A new `f64` field starts at 0.0, whose bits are 0 as an `i64`'s are.
    fn with(&self, field: Field, labels: &ProbeLabels, f: impl Fn(&AtomicU64)) {
        let bit = 1u8 << field as u8;
        let apply = |row: &Row| {
            f(&row.values[field as usize]);
            if row.present.load(Ordering::Relaxed) & bit == 0 {
                row.present.fetch_or(bit, Ordering::Relaxed);
            }
        };
        if let Some(row) = self.read().get(labels) {
            return apply(row);
        }
        let mut rows = self.rows.write().unwrap_or_else(|p| p.into_inner());
        apply(rows.entry(labels.clone()).or_default());
    }

    /// Creates `field` of `labels` at 0 if it is missing.
    pub fn ensure(&self, field: Field, labels: &ProbeLabels) {
        self.with(field, labels, |_| {});
    }

    /// Sets an `i64` field.
    pub fn set(&self, field: Field, labels: &ProbeLabels, v: i64) {
        self.with(field, labels, |c| c.store(v as u64, Ordering::Relaxed));
    }

    /// Sets an `f64` field.
    pub fn set_f64(&self, field: Field, labels: &ProbeLabels, v: f64) {
        self.with(field, labels, |c| c.store(v.to_bits(), Ordering::Relaxed));
    }

    /// Adds 1 to an `i64` field.
    pub fn inc(&self, field: Field, labels: &ProbeLabels) {
        self.with(field, labels, |c| {
            c.fetch_add(1, Ordering::Relaxed);
        });
    }

    /// The value of `field` of `labels` as an `f64`, if it exists.
    pub fn get(&self, field: Field, labels: &ProbeLabels) -> Option<f64> {
        let rows = self.read();
        let row = rows.get(labels)?;
        if row.present.load(Ordering::Relaxed) & (1 << field as u8) == 0 {
            return None;
        }
        let bits = row.values[field as usize].load(Ordering::Relaxed);
        Some(match self.meta[field as usize].kind {
            ValueKind::FloatGauge => f64::from_bits(bits),
            _ => bits as i64 as f64,
        })
    }

    /// Removes every field of `labels` (a probe that left the config).
    pub fn remove(&self, labels: &ProbeLabels) -> bool {
        let mut rows = self.rows.write().unwrap_or_else(|p| p.into_inner());
        rows.remove(labels).is_some()
    }

    /// Appends the six families in OpenMetrics text, each only when some probe has it.
    pub fn encode(&self, out: &mut String) {
        let rows = self.read();
        let mut float = dtoa::Buffer::new();
        let mut int = itoa::Buffer::new();
        for (field, meta) in FIELDS.iter().zip(&self.meta) {
            let bit = 1u8 << *field as u8;
            let mut header = false;
            for (labels, row) in rows.iter() {
                if row.present.load(Ordering::Relaxed) & bit == 0 {
                    continue;
                }
                if !header {
                    out.push_str(&meta.header);
                    header = true;
                }
                out.push_str(&meta.prefix);
                labels.write_labels(out);
                out.push_str("} ");
                let bits = row.values[*field as usize].load(Ordering::Relaxed);
                out.push_str(match meta.kind {
                    ValueKind::FloatGauge => float.format(f64::from_bits(bits)),
                    _ => int.format(bits as i64),
                });
                out.push('\n');
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ProbeLabels, Row>> {
        self.rows.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// See [`ProbeGauges::metric`].
#[derive(Clone)]
pub struct FieldMetric {
    field: Field,
    float: bool,
    rows: Rows,
}

impl fmt::Debug for FieldMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldMetric")
            .field("field", &self.field)
            .finish_non_exhaustive()
    }
}

impl EncodeMetric for FieldMetric {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), fmt::Error> {
        let bit = 1u8 << self.field as u8;
        let rows = self.rows.read().unwrap_or_else(|p| p.into_inner());
        for (labels, row) in rows.iter() {
            if row.present.load(Ordering::Relaxed) & bit == 0 {
                continue;
            }
            let bits = row.values[self.field as usize].load(Ordering::Relaxed);
            let mut e = encoder.encode_family(labels)?;
            if self.float {
                e.encode_gauge(&f64::from_bits(bits))?;
            } else {
                e.encode_gauge(&(bits as i64))?;
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }

    fn is_empty(&self) -> bool {
        let bit = 1u8 << self.field as u8;
        let rows = self.rows.read().unwrap_or_else(|p| p.into_inner());
        !rows
            .values()
            .any(|r| r.present.load(Ordering::Relaxed) & bit != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::values::ValueFamily;
    use crate::probe::Kind;

    const FAMILIES: [(&str, Option<&str>, &str); 6] = [
        ("pathwatch_a", None, "A (1) or not (0)"),
        ("pathwatch_b", None, "B"),
        ("pathwatch_c", None, "C"),
        ("pathwatch_d_seconds", Some("seconds"), "D"),
        ("pathwatch_e_seconds", Some("seconds"), "E"),
        ("pathwatch_f_seconds", Some("seconds"), "F"),
    ];

    fn probe(name: &str) -> ProbeLabels {
        ProbeLabels {
            probe: name.to_string(),
            kind: Kind::Tcp,
        }
    }

    #[test]
    fn rows_write_what_six_families_write() {
        let rows = ProbeGauges::new(FAMILIES);
        let families: Vec<ValueFamily<ProbeLabels>> = FIELDS
            .iter()
            .zip(FAMILIES)
            .map(|(f, (name, unit, help))| {
                let kind = if (*f as usize) < 3 {
                    ValueKind::Gauge
                } else {
                    ValueKind::FloatGauge
                };
                ValueFamily::new(kind, name, unit, help)
            })
            .collect();
        let odd = "a\"b\\c\nd";
        for (i, name) in ["db", "p1", odd, "x.y:z"].iter().enumerate() {
            let l = probe(name);
            // Only some probes have run: success and duration are absent for the others.
            for f in [Field::ConsecutiveFailures, Field::TimedOut] {
                rows.ensure(f, &l);
                families[f as usize].ensure(&l);
            }
            rows.set_f64(Field::Timeout, &l, 5.0);
            families[Field::Timeout as usize].set_f64(&l, 5.0);
            rows.set_f64(Field::Interval, &l, 0.25 * i as f64);
            families[Field::Interval as usize].set_f64(&l, 0.25 * i as f64);
            if i % 2 == 0 {
                rows.set(Field::Success, &l, 1);
                families[Field::Success as usize].set(&l, 1);
                rows.set_f64(Field::Duration, &l, 0.000301246);
                families[Field::Duration as usize].set_f64(&l, 0.000301246);
                rows.inc(Field::ConsecutiveFailures, &l);
                families[Field::ConsecutiveFailures as usize].inc(&l);
            }
        }
        let mut ours = String::new();
        rows.encode(&mut ours);
        let mut want = String::new();
        families.iter().for_each(|f| f.encode(&mut want));
        let sorted = |s: &str| {
            let mut l: Vec<String> = s.lines().map(str::to_string).collect();
            l.sort();
            l
        };
        assert_eq!(sorted(&ours), sorted(&want));
        assert!(
            ours.contains("pathwatch_b{probe=\"db\",kind=\"tcp\"} 1\n"),
            "{ours}"
        );
        assert!(!ours.contains("pathwatch_a{probe=\"p1\""), "{ours}");
        assert_eq!(rows.get(Field::Success, &probe("p1")), None);
        assert_eq!(rows.get(Field::Timeout, &probe("p1")), Some(5.0));

        assert!(rows.remove(&probe("db")));
        let mut after = String::new();
        rows.encode(&mut after);
        assert!(!after.contains("probe=\"db\""), "{after}");
        let empty = ProbeGauges::new(FAMILIES);
        let mut none = String::new();
        empty.encode(&mut none);
        assert_eq!(none, "");
    }
}

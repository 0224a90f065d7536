//! The rows as prometheus-client metrics, for a registry that holds them among its own
//! families: an on-demand run's answer (`Metrics::new_run_only`), which is one probe. Not a
//! hot path: labels are rebuilt per line for prometheus-client's encoder.

use super::{Field, ProbeRows, Rows};
use crate::metrics::{PhaseLabels, ProbeLabels};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl ProbeRows {
    /// One field of `probe, kind` as a gauge family over the same rows.
    pub fn metric(&self, field: Field) -> FieldMetric {
        FieldMetric {
            field,
            rows: Arc::clone(&self.rows),
        }
    }

    /// The phases as a gauge family over the same rows.
    pub fn phase_metric(&self) -> PhaseMetric {
        PhaseMetric {
            rows: Arc::clone(&self.rows),
        }
    }
}

/// See [`ProbeRows::metric`].
#[derive(Clone)]
pub struct FieldMetric {
    field: Field,
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
        let rows = self.rows.read().unwrap_or_else(|p| p.into_inner());
        for (probe, row) in rows.iter().filter(|(_, r)| r.has(self.field)) {
            let bits = row.values[self.field as usize].load(Ordering::Relaxed);
            let labels = ProbeLabels {
                probe: probe.to_string(),
                kind: row.kind,
            };
            let mut e = encoder.encode_family(&labels)?;
            match self.field.kind() {
                crate::metrics::values::ValueKind::FloatGauge => {
                    e.encode_gauge(&f64::from_bits(bits))?
                }
                _ => e.encode_gauge(&(bits as i64))?,
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }

    fn is_empty(&self) -> bool {
        let rows = self.rows.read().unwrap_or_else(|p| p.into_inner());
        !rows.values().any(|r| r.has(self.field))
    }
}

/// See [`ProbeRows::phase_metric`].
#[derive(Clone)]
pub struct PhaseMetric {
    rows: Rows,
}

impl fmt::Debug for PhaseMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhaseMetric").finish_non_exhaustive()
    }
}

impl EncodeMetric for PhaseMetric {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), fmt::Error> {
        let rows = self.rows.read().unwrap_or_else(|p| p.into_inner());
        for (probe, row) in rows.iter() {
            for (phase, seconds) in &row.counts().phases {
                let labels = PhaseLabels {
                    probe: probe.to_string(),
                    kind: row.kind,
                    phase: *phase,
                };
                encoder.encode_family(&labels)?.encode_gauge(seconds)?;
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }

    fn is_empty(&self) -> bool {
        let rows = self.rows.read().unwrap_or_else(|p| p.into_inner());
        !rows.values().any(|r| !r.counts().phases.is_empty())
    }
}

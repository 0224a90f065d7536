//! The rows' OpenMetrics text: each family's lines together, a row's line being its label
//! text (rendered once, when the row was created) and one number.

use super::{FIELDS, Field, Meta, ProbeRows, Row};
use crate::metrics::histograms::Numbers;
use crate::metrics::labels::RunResultLabel;
use crate::metrics::values::ValueKind;
use std::sync::atomic::Ordering;

impl ProbeRows {
    /// Appends half of the rows' families: `half` 0 the gauges and counters (ten lines per
    /// tcp probe), 1 the run-duration histogram (ten with the default buckets). Each family
    /// is written only when some row has it, as prometheus-client does.
    pub fn encode_half(&self, half: usize, out: &mut String) {
        let rows = self.read();
        let mut n = Numbers::default();
        if half != 0 {
            self.write_histograms(rows.values(), out, &mut n);
            return;
        }
        for (field, meta) in FIELDS.iter().zip(&self.fields) {
            let mut header = Header::new(meta);
            for row in rows.values().filter(|r| r.has(*field)) {
                header.once(out);
                let labels = match field {
                    Field::LastRun => &row.labels[..row.name_len],
                    _ => &*row.labels,
                };
                line(out, &meta.prefix, labels, "");
                let bits = row.values[*field as usize].load(Ordering::Relaxed);
                out.push_str(match field.kind() {
                    ValueKind::FloatGauge => n.float.format(f64::from_bits(bits)),
                    _ => n.int.format(bits as i64),
                });
                out.push('\n');
            }
            // The runs and phases families come where they did as families of their own:
            // after the gauges of `probe, kind`, before the last-run time.
            if *field == Field::Interval {
                self.write_runs_and_phases(rows.values(), out, &mut n);
            }
        }
    }

    fn write_runs_and_phases<'a>(
        &self,
        rows: impl Iterator<Item = &'a Row> + Clone,
        out: &mut String,
        n: &mut Numbers,
    ) {
        let mut header = Header::new(&self.runs);
        for row in rows.clone() {
            for (result, reason, count) in &row.counts().runs {
                header.once(out);
                line(out, &self.runs.prefix, &row.labels, ",result=\"");
                out.push_str(match result {
                    RunResultLabel::Success => "success",
                    RunResultLabel::Failure => "failure",
                });
                out.push_str("\",reason=\"");
                out.push_str(reason.as_str());
                out.push_str("\"} ");
                out.push_str(n.int.format(*count));
                out.push('\n');
            }
        }
        let mut header = Header::new(&self.phases);
        for row in rows {
            for (phase, seconds) in &row.counts().phases {
                header.once(out);
                line(out, &self.phases.prefix, &row.labels, ",phase=\"");
                out.push_str(phase.as_str());
                out.push_str("\"} ");
                out.push_str(n.float.format(*seconds));
                out.push('\n');
            }
        }
    }

    fn write_histograms<'a>(
        &self,
        rows: impl Iterator<Item = &'a Row>,
        out: &mut String,
        n: &mut Numbers,
    ) {
        let mut header = false;
        for row in rows {
            let counts = row.counts();
            if let Some((set, h)) = &counts.histogram {
                if !header {
                    out.push_str(&self.histogram.header);
                    header = true;
                }
                self.histogram.write_series(out, &row.labels, set, h, n);
            }
        }
    }
}

/// A family's metadata lines, written before its first line.
struct Header<'a> {
    text: Option<&'a str>,
}

impl<'a> Header<'a> {
    fn new(meta: &'a Meta) -> Self {
        Header {
            text: Some(&meta.header),
        }
    }

    fn once(&mut self, out: &mut String) {
        if let Some(text) = self.text.take() {
            out.push_str(text);
        }
    }
}

/// Appends `<prefix><labels><rest>`; a line of a row's own labels ends `} ` here.
fn line(out: &mut String, prefix: &str, labels: &str, rest: &str) {
    out.push_str(prefix);
    out.push_str(labels);
    if rest.is_empty() {
        out.push_str("} ");
    } else {
        out.push_str(rest);
    }
}

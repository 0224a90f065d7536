//! The rows' OpenMetrics text: each family's lines together, a row's line being its label
//! text (rendered once, when the row was created) and one number.
//!
//! One pass over the rows writes every family at once, each into a buffer of its own (a
//! row's values and counts are read once, under one lock), and the rows are split in two
//! halves encoded side by side. The answer is the buffers in family order, half by half:
//! a family's lines stay together, which is all the formats ask of their order, and no
//! buffer is copied into another. At 10,000 tcp probes a scrape writes 14 MB in about
//! 200,000 lines, so what counts is the number of appends per line (bench/encode_ab.py):
//! a line is the family's prefix, prerendered pieces and one number.

use super::{FIELDS, Field, ProbeRows, Row};
use crate::metrics::histograms::Numbers;
use crate::metrics::labels::RunResultLabel;
use crate::metrics::values::ValueKind;
use crate::probe::{Phase, Reason};
use std::sync::atomic::Ordering;

/// The row families in the order the text has them: the gauges of `probe, kind`, the runs,
/// the phases, the last-run time (which used to follow them as a family of its own), then
/// the run-duration histogram.
const RUNS: usize = 6;
const PHASES: usize = 7;
const LAST_RUN: usize = 8;
const HISTOGRAM: usize = 9;
pub(crate) const FAMILIES: usize = 10;

/// Where a [`Field`]'s lines go.
fn family_of(field: Field) -> usize {
    match field {
        Field::LastRun => LAST_RUN,
        f => f as usize,
    }
}

/// Line endings rendered once: `,result="…",reason="…"} ` and `,phase="…"} `.
pub(crate) struct Suffixes {
    runs: Box<[Box<str>]>,
    phases: Box<[Box<str>]>,
}

impl Suffixes {
    pub(crate) fn new() -> Suffixes {
        let results = [RunResultLabel::Success, RunResultLabel::Failure];
        Suffixes {
            runs: results
                .iter()
                .flat_map(|r| Reason::ALL.iter().map(move |why| (*r, *why)))
                .map(|(r, why)| {
                    format!(",result=\"{}\",reason=\"{}\"}} ", r.as_str(), why.as_str())
                        .into_boxed_str()
                })
                .collect(),
            phases: Phase::ALL
                .iter()
                .map(|p| format!(",phase=\"{}\"}} ", p.as_str()).into_boxed_str())
                .collect(),
        }
    }

    fn run(&self, result: RunResultLabel, reason: Reason) -> &str {
        let r = match result {
            RunResultLabel::Success => 0,
            RunResultLabel::Failure => 1,
        };
        &self.runs[r * Reason::ALL.len() + reason as usize]
    }

    fn phase(&self, phase: Phase) -> &str {
        &self.phases[phase as usize]
    }
}

/// One half's buffers, a family each.
type Buffers = [String; FAMILIES];

impl ProbeRows {
    /// The rows' families as parts of the answer, in order; none is empty. `None` when an
    /// encoder thread failed.
    pub(crate) fn encode_parts(&self) -> Option<Vec<String>> {
        let rows = self.read();
        let all: Vec<&Row> = rows.values().collect();
        let (first, second) = all.split_at(all.len() / 2);
        let (first, second) = std::thread::scope(|s| {
            let second = s.spawn(|| self.write_half(1, second));
            (self.write_half(0, first), second.join().ok())
        });
        let second = second?;
        let mut parts = Vec::with_capacity(2 * FAMILIES);
        for (f, (a, b)) in first.into_iter().zip(second).enumerate() {
            // The first half writes a family's metadata before its first line; a family
            // only the second half has gets it on its own.
            if a.is_empty() && !b.is_empty() {
                parts.push(self.header(f).to_string());
            }
            parts.extend([a, b].into_iter().filter(|p| !p.is_empty()));
        }
        Some(parts)
    }

    fn header(&self, family: usize) -> &str {
        match family {
            RUNS => &self.runs.header,
            PHASES => &self.phases.header,
            LAST_RUN => &self.fields[Field::LastRun as usize].header,
            HISTOGRAM => &self.histogram.header,
            f => &self.fields[f].header,
        }
    }

    /// Writes `rows` into a buffer per family, sized from the previous encode; half 0
    /// writes each family's metadata before its first line.
    fn write_half(&self, half: usize, rows: &[&Row]) -> Buffers {
        let mut out: Buffers = std::array::from_fn(|f| {
            let size = self.sizes[half * FAMILIES + f].load(Ordering::Relaxed);
            String::with_capacity(size + size / 8)
        });
        let mut n = Numbers::default();
        let start = |out: &mut Buffers, f: usize| -> usize {
            if half == 0 && out[f].is_empty() {
                out[f].push_str(self.header(f));
            }
            f
        };
        for row in rows {
            let present = row.present.load(Ordering::Relaxed);
            // `probe="x",kind="tcp"` and `probe="x"`, each without its closing `} `.
            let open = &row.labels[..row.labels.len() - 2];
            for field in FIELDS {
                if present & (1 << field as u8) == 0 {
                    continue;
                }
                let f = start(&mut out, family_of(field));
                let o = &mut out[f];
                o.push_str(&self.fields[field as usize].prefix);
                if field == Field::LastRun {
                    o.push_str(&open[..row.name_len]);
                    o.push_str("} ");
                } else {
                    o.push_str(&row.labels);
                }
                let bits = row.values[field as usize].load(Ordering::Relaxed);
                o.push_str(match field.kind() {
                    ValueKind::FloatGauge => n.float(f64::from_bits(bits)),
                    _ => n.int.format(bits as i64),
                });
                o.push('\n');
            }
            let counts = row.counts();
            for (result, reason, count) in &counts.runs {
                let f = start(&mut out, RUNS);
                let o = &mut out[f];
                o.push_str(&self.runs.prefix);
                o.push_str(open);
                o.push_str(self.suffixes.run(*result, *reason));
                o.push_str(n.int.format(*count));
                o.push('\n');
            }
            for (phase, seconds) in &counts.phases {
                let f = start(&mut out, PHASES);
                let o = &mut out[f];
                o.push_str(&self.phases.prefix);
                o.push_str(open);
                o.push_str(self.suffixes.phase(*phase));
                o.push_str(n.float(*seconds));
                o.push('\n');
            }
            if let Some((set, h)) = &counts.histogram {
                let f = start(&mut out, HISTOGRAM);
                let o = &mut out[f];
                self.histogram.write_series(o, &row.labels, set, h, &mut n);
            }
        }
        for (f, o) in out.iter().enumerate() {
            self.sizes[half * FAMILIES + f].store(o.len(), Ordering::Relaxed);
        }
        out
    }
}

//! The text of a `/probe` answer, written straight from the run's [`RunResult`] in the format
//! the client asked for: success, duration, phases and the gauges the kind declares for it
//! ([`crate::probe::KindFamily::on_demand`], e.g. the HTTP status), as blackbox_exporter
//! answers.
//!
//! The answer used to be a fresh prometheus-client registry over the exporter's families,
//! encoded as OpenMetrics and rewritten to 0.0.4 for most clients: building those families
//! and formatting their names cost a tcp `/probe` more CPU than writing the answer does
//! (BENCHMARKS.md, issue 19). The text is byte for byte what that registry wrote, phases in
//! [`Phase::ALL`] order (the tests below encode the same run both ways).

use crate::metrics::histograms::{Numbers, push_pair};
use crate::metrics::scrape::ScrapeFormat;
use crate::probe::{FamilyType, Kind, Phase, RunResult, Sample, Unreported};

/// Room for a tcp run's answer with its phases, so the buffer is allocated once; an answer
/// that outgrows it (a long probe name, many phases) grows it as a `String` does.
const CAPACITY: usize = 1024;

/// The answer for one run of probe `probe` of kind `kind`.
pub(crate) fn write(probe: &str, kind: Kind, run: &RunResult, format: ScrapeFormat) -> String {
    let mut w = Writer {
        out: String::with_capacity(CAPACITY + 4 * probe.len()),
        format,
        numbers: Numbers::default(),
    };
    let probe_kind = [("probe", probe), ("kind", kind.as_str())];
    w.header(
        "pathwatch_probe_success",
        None,
        "Whether the run succeeded (1) or failed (0)",
    );
    w.int_sample("pathwatch_probe_success", &probe_kind, i64::from(run.ok()));
    w.header(
        "pathwatch_probe_duration_seconds",
        Some("seconds"),
        "Duration of the run",
    );
    w.float_sample(
        "pathwatch_probe_duration_seconds",
        &probe_kind,
        run.duration.as_secs_f64(),
    );
    // A phase the run reached more than once counts at its first time, as the exporter's
    // own families record it (Metrics::set_phases).
    let first = |phase: &Phase| run.phases.iter().find(|(p, _)| p == phase);
    if !run.phases.is_empty() {
        const NAME: &str = "pathwatch_probe_phase_duration_seconds";
        w.header(
            NAME,
            Some("seconds"),
            "Duration of each phase the run completed",
        );
        for (phase, took) in Phase::ALL.iter().filter_map(first) {
            let labels = [
                ("probe", probe),
                ("kind", kind.as_str()),
                ("phase", phase.as_str()),
            ];
            w.float_sample(NAME, &labels, took.as_secs_f64());
        }
    }
    // The gauges the kind declares for one run (the HTTP status, a tls_cert module's
    // expiry), when the run reported them or they read 0 unreported; totals kept across
    // runs are the exporter's, not an answer's.
    for f in kind.families().iter().filter(|f| f.on_demand) {
        let zero = [f.sample(0.0)];
        let mut samples = run
            .observations
            .samples()
            .iter()
            .filter(|s| s.family == f.name)
            .peekable();
        let samples: &mut dyn Iterator<Item = &Sample> = match samples.peek() {
            Some(_) => &mut samples,
            None if f.unreported == Unreported::Zero => &mut zero.iter(),
            None => continue,
        };
        let name = match f.unit {
            Some(unit) => format!("pathwatch_{}_{unit}", f.name),
            None => format!("pathwatch_{}", f.name),
        };
        w.header(&name, f.unit, f.help);
        for s in samples {
            let labels: Vec<(&str, &str)> = std::iter::once(("probe", probe))
                .chain(
                    f.labels
                        .iter()
                        .copied()
                        .zip(s.labels.iter().map(String::as_str)),
                )
                .collect();
            match f.family_type {
                FamilyType::IntGauge => w.int_sample(&name, &labels, s.value as i64),
                _ => w.float_sample(&name, &labels, s.value),
            }
        }
    }
    if format == ScrapeFormat::OpenMetrics {
        w.out.push_str("# EOF\n");
    }
    w.out
}

/// The answer being written, and the number buffers its lines share.
struct Writer {
    out: String,
    format: ScrapeFormat,
    /// The /metrics encoder's formatters, so both answers write numbers alike.
    numbers: Numbers,
}

impl Writer {
    /// A gauge family's `# HELP`, `# TYPE` and (OpenMetrics only) `# UNIT` lines; the help
    /// ends with a period, as prometheus-client's registry writes it.
    fn header(&mut self, name: &str, unit: Option<&str>, help: &str) {
        let out = &mut self.out;
        for s in ["# HELP ", name, " ", help, ".\n# TYPE ", name, " gauge\n"] {
            out.push_str(s);
        }
        if let (Some(unit), ScrapeFormat::OpenMetrics) = (unit, self.format) {
            for s in ["# UNIT ", name, " ", unit, "\n"] {
                out.push_str(s);
            }
        }
    }

    fn labels(&mut self, name: &str, labels: &[(&str, &str)]) {
        self.out.push_str(name);
        self.out.push('{');
        for (k, v) in labels {
            push_pair(&mut self.out, k, v);
        }
        self.out.push_str("} ");
    }

    fn int_sample(&mut self, name: &str, labels: &[(&str, &str)], v: i64) {
        self.labels(name, labels);
        self.out.push_str(self.numbers.int.format(v));
        self.out.push('\n');
    }

    fn float_sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.labels(name, labels);
        self.out.push_str(self.numbers.float(v));
        self.out.push('\n');
    }
}

#[cfg(test)]
mod tests;

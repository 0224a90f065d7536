//! What the self-encoded families (metrics/rows/mod.rs, metrics/histograms.rs) share: the kinds
//! of value a line carries and the metadata lines above a family.
//!
//! prometheus-client encodes each line's labels through `dyn Write` and its label-set
//! encoder; at 10,000 probes that alone took longer than the 10 ms a whole `/metrics` may
//! (issue 19). The self-encoded families write a line as a handful of appends. Their text is
//! byte for byte what prometheus-client writes for a `Family<L, Gauge>` (`Gauge<f64>`,
//! `Counter`, `HistogramWithExemplars`) registered under the same name: the tests in
//! metrics/rows/tests.rs and metrics/histograms.rs encode the same values with both.

/// What a family's values are, and so how they are written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum ValueKind {
    /// An `i64` gauge.
    Gauge,
    /// An `f64` gauge.
    FloatGauge,
}

/// The `# HELP`, `# TYPE` and `# UNIT` lines of a family, as prometheus-client's Registry
/// writes them: `name` is the full name with prefix and unit (`pathwatch_probe_duration_seconds`,
/// a counter's without `_total`), `type_name` `gauge`, `counter` or `histogram`.
pub(crate) fn header(name: &str, type_name: &str, unit: Option<&str>, help: &str) -> Box<str> {
    // prometheus-client's Registry ends every help text with a period.
    let mut header = format!("# HELP {name} {help}.\n# TYPE {name} {type_name}\n");
    if let Some(unit) = unit {
        header.push_str(&format!("# UNIT {name} {unit}\n"));
    }
    header.into_boxed_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::registry::{Registry, Unit};

    #[test]
    fn headers_are_what_prometheus_client_writes() {
        let mut r = Registry::with_prefix("pathwatch");
        let c = Counter::<u64>::default();
        r.register_with_unit("runs", "Runs (1) or not", Unit::Seconds, c.clone());
        let mut text = String::new();
        encode(&mut text, &r).expect("encode");
        let ours = header(
            "pathwatch_runs_seconds",
            "counter",
            Some("seconds"),
            "Runs (1) or not",
        );
        assert!(text.starts_with(&*ours), "{text}\n{ours}");
    }
}

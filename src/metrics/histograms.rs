//! Histogram families that write their own OpenMetrics text.
//!
//! At 10,000 probes two thirds of `/metrics` are histogram lines, and prometheus-client
//! encodes every line's labels anew through `dyn Write` (its encoder carries a TODO to cache
//! them). These families render each series' label text once, when the series is created,
//! so a line is a handful of appends and one integer. The output is byte for byte what
//! prometheus-client writes for a `Family<L, HistogramWithExemplars<TraceLabels>>` (the tests
//! below encode the same observations with both), so the exported families (the book's
//! metrics reference) are unchanged.

use prometheus_client::encoding::EncodeLabelSet;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex, RwLock};

/// The label set of an exemplar: the trace id of the run it came from. Here, not in
/// labels.rs, so that labels.rs may use this file's text helpers without a circle.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TraceLabels {
    pub(crate) trace_id: String,
}

impl LabelText for TraceLabels {
    fn write_labels(&self, out: &mut String) {
        push_pair(out, "trace_id", &self.trace_id);
    }
}

/// A label set as it appears between the braces of a line, e.g. `probe="a",kind="tcp"`.
pub(crate) trait LabelText: Clone + Eq + Hash {
    /// Appends `name="value"` pairs separated by commas; values go through [`push_value`].
    fn write_labels(&self, out: &mut String);
}

/// Appends one `name="value"` pair, with a leading comma unless it is the first: `out` is
/// empty or ends with the `{` that opens the label set (a pair ends with `"`).
pub(crate) fn push_pair(out: &mut String, name: &str, value: &str) {
    if !out.is_empty() && !out.ends_with('{') {
        out.push(',');
    }
    out.push_str(name);
    out.push_str("=\"");
    push_value(out, value);
    out.push('"');
}

/// Appends a label value escaped as the exposition formats require (`\\`, `\"`, `\n`).
pub(crate) fn push_value(out: &mut String, value: &str) {
    // Configured names never need escaping: copy them whole.
    if !value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The upper bounds of a series' buckets, with their `le` text rendered once. Series of
/// one family may differ (`buckets:` per probe); series with the same bounds share one.
#[derive(Debug, PartialEq)]
pub(crate) struct BucketSet {
    /// Finite and ascending, without the implicit `+Inf`.
    bounds: Box<[f64]>,
    /// `le="<bound>",` per bucket as the text shows it, `+Inf` last: a bucket line is the
    /// family's prefix, this, the series' labels and its count (the comma goes when a
    /// series has no labels).
    le: Box<[Box<str>]>,
}

impl BucketSet {
    pub(crate) fn new(bounds: &[f64]) -> BucketSet {
        let mut dtoa = dtoa::Buffer::new();
        BucketSet {
            bounds: bounds.into(),
            le: bounds
                .iter()
                .map(|b| format!("le=\"{}\",", dtoa.format(*b)).into_boxed_str())
                .chain(std::iter::once(Box::from("le=\"+Inf\",")))
                .collect(),
        }
    }

    pub(crate) fn bounds(&self) -> &[f64] {
        &self.bounds
    }
}

/// A histogram family's metadata lines and sample prefixes, rendered once.
#[derive(Clone)]
pub(crate) struct HistogramText {
    /// `# HELP`, `# TYPE` and `# UNIT` lines.
    pub(crate) header: Box<str>,
    /// `<name>_sum{` and `<name>_count{`.
    sum_prefix: Box<str>,
    count_prefix: Box<str>,
    /// `<name>_bucket{`.
    bucket_prefix: Box<str>,
}

impl HistogramText {
    /// `name` is the full name with prefix and unit (`pathwatch_db_connect_seconds`), `unit`
    /// the unit's own `# UNIT` line value.
    pub(crate) fn new(name: &str, unit: Option<&str>, help: &str) -> HistogramText {
        HistogramText {
            header: super::values::header(name, "histogram", unit, help),
            sum_prefix: format!("{name}_sum{{").into_boxed_str(),
            count_prefix: format!("{name}_count{{").into_boxed_str(),
            bucket_prefix: format!("{name}_bucket{{").into_boxed_str(),
        }
    }

    /// Appends one series' lines: `closed` is its label text (between the braces) followed
    /// by the closing `} ` (see [`close_labels`]).
    pub(crate) fn write_series(
        &self,
        out: &mut String,
        closed: &str,
        buckets: &BucketSet,
        data: &BucketCounts,
        numbers: &mut Numbers,
    ) {
        out.push_str(&self.sum_prefix);
        out.push_str(closed);
        out.push_str(numbers.float(data.sum));
        out.push('\n');
        out.push_str(&self.count_prefix);
        out.push_str(closed);
        out.push_str(numbers.int.format(data.count));
        out.push('\n');
        // Without labels, `le` is the only pair: no comma after it.
        let unlabelled = closed.len() <= 2;
        let mut cumulative = 0u64;
        for (i, (le, n)) in buckets.le.iter().zip(&*data.counts).enumerate() {
            cumulative += n;
            out.push_str(&self.bucket_prefix);
            out.push_str(if unlabelled { &le[..le.len() - 1] } else { le });
            out.push_str(closed);
            out.push_str(numbers.int.format(cumulative));
            if let Some(Some((trace, v))) = data.exemplars.get(i) {
                out.push_str(" # {");
                out.push_str(trace);
                out.push_str("} ");
                out.push_str(numbers.float(*v));
            }
            out.push('\n');
        }
    }
}

/// A label text (`probe="x",kind="tcp"`) followed by the `} ` that ends it in a line: most
/// lines write the two together, so series keep them together.
pub(crate) fn close_labels(mut labels: String) -> Box<str> {
    labels.push_str("} ");
    labels.into_boxed_str()
}

/// The number formatters of one encode (dtoa and itoa: prometheus-client's own, so the text
/// matches its byte for byte).
#[derive(Default)]
pub(crate) struct Numbers {
    float: dtoa::Buffer,
    pub(crate) int: itoa::Buffer,
    /// An integer-valued float's digits and `.0`.
    whole: String,
}

/// Below this, an integer-valued `f64` is exact as an `i64`, and dtoa writes it as its
/// digits and `.0` (it switches to an exponent only past 21 digits).
const WHOLE_LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53

impl Numbers {
    /// `v` as dtoa writes it. Whole numbers (timeouts, intervals, counts kept as floats)
    /// take itoa's much shorter path: dtoa's shortest-digits search was 8 % of a busy
    /// exporter's CPU at 10,000 probes, scraped back to back (bench/encode_ab.py).
    pub(crate) fn float(&mut self, v: f64) -> &str {
        // -0.0 is written with its sign.
        if v.fract() == 0.0 && v.abs() < WHOLE_LIMIT && (v != 0.0 || v.is_sign_positive()) {
            self.whole.clear();
            self.whole.push_str(self.int.format(v as i64));
            self.whole.push_str(".0");
            return &self.whole;
        }
        self.float.format(v)
    }
}

/// One family: a metric name, its default buckets and a series per label set.
pub(crate) struct HistogramFamily<L> {
    text: HistogramText,
    /// The buckets of a series created without its own.
    default: Arc<BucketSet>,
    series: Arc<RwLock<HashMap<L, Arc<Series>>>>,
}

impl<L> Clone for HistogramFamily<L> {
    fn clone(&self) -> Self {
        HistogramFamily {
            text: self.text.clone(),
            default: Arc::clone(&self.default),
            series: Arc::clone(&self.series),
        }
    }
}

impl<L> fmt::Debug for HistogramFamily<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HistogramFamily")
            .field("header", &self.text.header)
            .finish_non_exhaustive()
    }
}

/// One series: its label text, rendered once (with its closing `} `), its buckets and its
/// counts.
pub(crate) struct Series {
    labels: Box<str>,
    buckets: Arc<BucketSet>,
    data: Mutex<BucketCounts>,
}

/// A series' counts.
pub(crate) struct BucketCounts {
    /// Per bucket (not cumulative), `+Inf` last.
    counts: Box<[u64]>,
    sum: f64,
    count: u64,
    /// The latest exemplar per bucket; empty until the first one arrives.
    exemplars: Vec<Option<(Box<str>, f64)>>,
}

impl BucketCounts {
    /// No observation yet, over `buckets`.
    pub(crate) fn new(buckets: &BucketSet) -> BucketCounts {
        BucketCounts {
            counts: vec![0; buckets.le.len()].into_boxed_slice(),
            sum: 0.0,
            count: 0,
            exemplars: Vec::new(),
        }
    }

    /// Counts `v` in the first bucket whose bound is at least `v` (`+Inf` for NaN), as
    /// prometheus-client does; the exemplar replaces that bucket's previous one.
    pub(crate) fn observe(&mut self, bounds: &[f64], v: f64, exemplar: Option<&TraceLabels>) {
        let bucket = bounds.iter().position(|b| *b >= v).unwrap_or(bounds.len());
        self.sum += v;
        self.count += 1;
        self.counts[bucket] += 1;
        if let Some(e) = exemplar {
            let mut text = String::new();
            e.write_labels(&mut text);
            if self.exemplars.is_empty() {
                self.exemplars = vec![None; bounds.len() + 1];
            }
            self.exemplars[bucket] = Some((text.into_boxed_str(), v));
        }
    }
}

impl<L: LabelText> HistogramFamily<L> {
    /// `name` is the full name with prefix and unit (`pathwatch_db_connect_seconds`), `unit`
    /// the unit's own `# UNIT` line value, `bounds` finite and ascending.
    pub(crate) fn new(
        name: &str,
        unit: Option<&str>,
        help: &str,
        bounds: &[f64],
    ) -> HistogramFamily<L> {
        HistogramFamily {
            text: HistogramText::new(name, unit, help),
            default: Arc::new(BucketSet::new(bounds)),
            series: Arc::default(),
        }
    }

    /// The series of `labels`, created empty over the default buckets if it is new.
    pub(crate) fn get_or_create(&self, labels: &L) -> Arc<Series> {
        if let Some(s) = self.read().get(labels) {
            return Arc::clone(s);
        }
        let mut map = self.write();
        let series = map
            .entry(labels.clone())
            .or_insert_with(|| Series::new(labels, Arc::clone(&self.default)));
        Arc::clone(series)
    }

    /// Records `v` in the series of `labels`, with the trace it came from if any.
    pub(crate) fn observe(&self, labels: &L, v: f64, exemplar: Option<&TraceLabels>) {
        self.get_or_create(labels).observe(v, exemplar);
    }

    /// Keeps the series whose labels `keep` accepts.
    pub(crate) fn retain(&self, keep: impl Fn(&L) -> bool) {
        self.write().retain(|labels, _| keep(labels));
    }

    #[cfg(test)]
    pub(crate) fn remove(&self, labels: &L) -> bool {
        self.write().remove(labels).is_some()
    }

    /// Appends the family in OpenMetrics text; nothing when it has no series, as
    /// prometheus-client does.
    pub(crate) fn encode(&self, out: &mut String) {
        let map = self.read();
        if map.is_empty() {
            return;
        }
        out.push_str(&self.text.header);
        let mut numbers = Numbers::default();
        for series in map.values() {
            let data = series
                .data
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.text
                .write_series(out, &series.labels, &series.buckets, &data, &mut numbers);
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<L, Arc<Series>>> {
        self.series
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<L, Arc<Series>>> {
        self.series
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Series {
    fn new<L: LabelText>(labels: &L, buckets: Arc<BucketSet>) -> Arc<Series> {
        let mut text = String::new();
        labels.write_labels(&mut text);
        Arc::new(Series {
            labels: close_labels(text),
            data: Mutex::new(BucketCounts::new(&buckets)),
            buckets,
        })
    }

    fn observe(&self, v: f64, exemplar: Option<&TraceLabels>) {
        let mut data = self
            .data
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        data.observe(&self.buckets.bounds, v, exemplar);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{NameLabels, ProbeLabels};
    use crate::probe::Kind;
    use crate::probe::common::kind::DURATION_BUCKETS;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::exemplar::HistogramWithExemplars;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::registry::{Registry, Unit};

    const HELP: &str = "Some help; with punctuation";

    /// The whole-number path writes what dtoa writes, at both ends of its range and at
    /// the signs and zeros dtoa treats apart.
    #[test]
    fn whole_floats_are_written_as_dtoa_writes_them() {
        let mut n = Numbers::default();
        let mut dtoa = dtoa::Buffer::new();
        let mut values = vec![0.0, -0.0, 1.0, -1.0, 5.0, 10.0, 60.0, 1800.0, 1e15, -1e15];
        values.extend([
            WHOLE_LIMIT - 1.0,
            WHOLE_LIMIT,
            2.0 * WHOLE_LIMIT,
            1e21,
            1e22,
        ]);
        values.extend([
            0.5,
            1.5,
            -2.25,
            1e-7,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ]);
        values.extend((0..64).map(|i| (1u64 << i) as f64));
        for v in values {
            assert_eq!(n.float(v), dtoa.format(v), "{v:?}");
        }
    }

    /// The reference: the same observations through prometheus-client's own types.
    fn reference<L>(observations: &[(L, f64, Option<&str>)]) -> String
    where
        L: LabelText + prometheus_client::encoding::EncodeLabelSet + std::fmt::Debug,
        L: Send + Sync + 'static,
    {
        let family =
            Family::<L, HistogramWithExemplars<TraceLabels>, _>::new_with_constructor(|| {
                HistogramWithExemplars::new(DURATION_BUCKETS.iter().copied())
            });
        let mut registry = Registry::with_prefix("pathwatch");
        registry.register_with_unit("run", HELP, Unit::Seconds, family.clone());
        for (labels, v, trace) in observations {
            let exemplar = trace.map(|t| TraceLabels {
                trace_id: t.to_string(),
            });
            family.get_or_create(labels).observe(*v, exemplar, None);
        }
        let mut text = String::new();
        encode(&mut text, &registry).expect("encode");
        text.strip_suffix("# EOF\n").expect("EOF").to_string()
    }

    fn ours<L: LabelText>(observations: &[(L, f64, Option<&str>)]) -> String {
        let family = HistogramFamily::<L>::new(
            "pathwatch_run_seconds",
            Some("seconds"),
            HELP,
            DURATION_BUCKETS,
        );
        for (labels, v, trace) in observations {
            let exemplar = trace.map(|t| TraceLabels {
                trace_id: t.to_string(),
            });
            family.observe(labels, *v, exemplar.as_ref());
        }
        let mut text = String::new();
        family.encode(&mut text);
        text
    }

    fn probe(name: &str) -> ProbeLabels {
        ProbeLabels {
            probe: name.to_string(),
            kind: Kind::Tcp,
        }
    }

    #[test]
    fn one_series_is_byte_for_byte_what_prometheus_client_writes() {
        // On a bound (0.005, 75), between bounds, past the last bound (+Inf), zero, NaN;
        // exemplars on some, a later one replacing an earlier one in the same bucket.
        let obs: Vec<(ProbeLabels, f64, Option<&str>)> = vec![
            (probe("db"), 0.0, None),
            (probe("db"), 0.005, Some("aaaa")),
            (probe("db"), 0.0031, Some("bbbb")),
            (probe("db"), 0.3, None),
            (probe("db"), 7.25, Some("cccc")),
            (probe("db"), 75.0, None),
            (probe("db"), 200.0, Some("dddd")),
            (probe("db"), 1e-9, None),
        ];
        let text = ours(&obs);
        assert_eq!(text, reference(&obs));
        assert!(text.contains(
            "pathwatch_run_seconds_bucket{le=\"0.005\",probe=\"db\",kind=\"tcp\"} 4 # {trace_id=\"bbbb\"} 0.0031\n"
        ));
        assert!(text.contains(
            "pathwatch_run_seconds_bucket{le=\"+Inf\",probe=\"db\",kind=\"tcp\"} 8 # {trace_id=\"dddd\"} 200.0\n"
        ));

        let nan = vec![(probe("x"), f64::NAN, None)];
        assert_eq!(ours(&nan), reference(&nan));
    }

    #[test]
    fn many_series_and_escaped_values_match_prometheus_client() {
        // Series order follows a hash map in both, so lines are compared as sorted sets;
        // each series' lines are contiguous in ours by construction.
        let odd = "a\"b\\c\nd";
        let obs: Vec<(NameLabels, f64, Option<&str>)> = (0..50)
            .map(|i| {
                let name = if i % 7 == 0 {
                    odd.to_string()
                } else {
                    format!("p{}", i % 13)
                };
                (
                    NameLabels { probe: name },
                    f64::from(i) * 0.37,
                    (i % 3 == 0).then_some("t"),
                )
            })
            .collect();
        let sorted = |s: String| {
            let mut lines: Vec<String> = s.lines().map(str::to_string).collect();
            lines.sort();
            lines
        };
        let text = ours(&obs);
        assert!(
            text.contains("probe=\"a\\\"b\\\\c\\nd\""),
            "escaped value in {text}"
        );
        assert_eq!(sorted(text), sorted(reference(&obs)));
    }

    #[test]
    fn an_empty_family_writes_nothing_and_removed_series_go() {
        let none: Vec<(ProbeLabels, f64, Option<&str>)> = Vec::new();
        assert_eq!(ours(&none), reference(&none));

        let family = HistogramFamily::<ProbeLabels>::new("h_seconds", None, "h", DURATION_BUCKETS);
        family.observe(&probe("a"), 1.0, None);
        let _ = family.get_or_create(&probe("b"));
        assert!(family.remove(&probe("a")));
        assert!(!family.remove(&probe("a")));
        let mut text = String::new();
        family.encode(&mut text);
        assert!(text.starts_with("# HELP h_seconds h.\n# TYPE h_seconds histogram\nh_seconds_sum"));
        assert!(!text.contains("probe=\"a\""), "{text}");
        assert!(
            text.contains("h_seconds_count{probe=\"b\",kind=\"tcp\"} 0\n"),
            "{text}"
        );
    }
}

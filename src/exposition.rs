//! Content negotiation for `/metrics` and `/probe`, as the official clients do it: OpenMetrics
//! to a client that asks for it (Prometheus does, in its `Accept` header), the Prometheus text
//! format 0.0.4 to everyone else (curl, promtool, older scrapers).
//!
//! pathwatch encodes OpenMetrics (prometheus-client); [`to_text_004`] rewrites that text line
//! by line. The two formats differ only in a few places:
//! - a counter family is named without `_total` in OpenMetrics metadata and with it in 0.0.4;
//! - an `info` family is a gauge named `NAME_info` in 0.0.4;
//! - 0.0.4 has no exemplars, no `# UNIT`, no `_created` samples and no `# EOF`.

/// The OpenMetrics content type pathwatch answers with.
pub(crate) const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The Prometheus text format's content type.
pub(crate) const TEXT_004: &str = "text/plain; version=0.0.4; charset=utf-8";

/// True when the `Accept` header takes OpenMetrics (any `application/openmetrics-text` range
/// with a non-zero q), as client_golang's `expfmt.Negotiate` decides. No header, `*/*` and
/// `text/plain` get 0.0.4.
pub(crate) fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| {
        accept.split(',').any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            let q_zero = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case("application/openmetrics-text") && !q_zero
        })
    })
}

/// The family types that change their name or type in 0.0.4.
#[derive(Clone, Copy, PartialEq)]
enum Family {
    Counter,
    Info,
    Other,
}

/// Appends `openmetrics` (one or more complete families, as prometheus-client writes them)
/// to `out` in the 0.0.4 text format.
pub(crate) fn to_text_004(openmetrics: &str, out: &mut String) {
    out.reserve(openmetrics.len());
    // Metadata of the current family; a counter's HELP may come before its TYPE.
    let mut family = Family::Other;
    let mut pending_help: Option<&str> = None;
    for line in openmetrics.lines() {
        if let Some(meta) = line.strip_prefix("# ") {
            let (keyword, rest) = meta.split_once(' ').unwrap_or((meta, ""));
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            match keyword {
                "HELP" => {
                    // Held until TYPE says which name 0.0.4 puts it on.
                    flush_help(out, pending_help.take(), Family::Other);
                    pending_help = Some(line);
                    family = Family::Other;
                }
                "TYPE" => {
                    family = match text {
                        "counter" => Family::Counter,
                        "info" => Family::Info,
                        _ => Family::Other,
                    };
                    flush_help(out, pending_help.take(), family);
                    let (suffix, kind) = match (family, text) {
                        (Family::Counter, _) => ("_total", "counter"),
                        (Family::Info, _) => ("_info", "gauge"),
                        (_, "gauge" | "histogram" | "summary") => ("", text),
                        _ => ("", "untyped"),
                    };
                    out.push_str("# TYPE ");
                    out.push_str(name);
                    out.push_str(suffix);
                    out.push(' ');
                    out.push_str(kind);
                    out.push('\n');
                }
                // UNIT, EOF and anything else OpenMetrics-only: 0.0.4 has no place for them.
                _ => {}
            }
            continue;
        }
        flush_help(out, pending_help.take(), family);
        if line.is_empty() {
            continue;
        }
        let (series, value) = split_sample(line);
        let name = series.split('{').next().unwrap_or(series);
        if name.ends_with("_created") {
            continue;
        }
        out.push_str(series);
        out.push(' ');
        out.push_str(value);
        out.push('\n');
    }
    flush_help(out, pending_help.take(), family);
}

/// Writes a held `# HELP name text` line, on the name 0.0.4 gives the family.
fn flush_help(out: &mut String, help: Option<&str>, family: Family) {
    let Some(line) = help else { return };
    let rest = line.strip_prefix("# HELP ").unwrap_or(line);
    let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
    out.push_str("# HELP ");
    out.push_str(name);
    out.push_str(match family {
        Family::Counter => "_total",
        Family::Info => "_info",
        Family::Other => "",
    });
    if !text.is_empty() {
        out.push(' ');
        out.push_str(text);
    }
    out.push('\n');
}

/// Splits a sample line into its series (name and labels) and its value (and timestamp),
/// without the exemplar. Label values may hold spaces, `#` and escaped quotes, so the label
/// set is scanned rather than split.
fn split_sample(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut i = 0;
    let mut in_labels = false;
    let mut in_quotes = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_quotes => i += 1,
            b'"' if in_labels => in_quotes = !in_quotes,
            b'{' if !in_quotes => in_labels = true,
            b'}' if !in_quotes => in_labels = false,
            b' ' if !in_labels => break,
            _ => {}
        }
        i += 1;
    }
    let series = &line[..i.min(line.len())];
    let rest = line.get(i + 1..).unwrap_or("");
    let value = rest.split(" # ").next().unwrap_or(rest).trim_end();
    (series, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_gets_openmetrics_and_everyone_else_0_0_4() {
        // What Prometheus 2.42 sends.
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(wants_openmetrics(Some(prometheus)));
        assert!(wants_openmetrics(Some("application/openmetrics-text")));
        assert!(!wants_openmetrics(None));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(Some("text/plain;version=0.0.4")));
        assert!(!wants_openmetrics(Some(
            "application/openmetrics-text;q=0, text/plain"
        )));
    }

    #[test]
    fn counters_info_exemplars_units_and_eof_become_0_0_4() {
        let om = concat!(
            "# HELP pathwatch_probe_runs Runs.\n",
            "# TYPE pathwatch_probe_runs counter\n",
            "pathwatch_probe_runs_total{probe=\"a # b\",reason=\"ok\"} 3\n",
            "pathwatch_probe_runs_created{probe=\"a # b\",reason=\"ok\"} 1700000000.0\n",
            "# HELP pathwatch_build Build.\n",
            "# TYPE pathwatch_build info\n",
            "pathwatch_build_info{version=\"0.1.0\"} 1\n",
            "# HELP pathwatch_run_seconds Seconds.\n",
            "# TYPE pathwatch_run_seconds histogram\n",
            "# UNIT pathwatch_run_seconds seconds\n",
            "pathwatch_run_seconds_bucket{le=\"0.5\"} 1 # {trace_id=\"ab\"} 0.25 1700000000.5\n",
            "pathwatch_run_seconds_sum 0.25\n",
            "# TYPE pathwatch_up gauge\n",
            "pathwatch_up{probe=\"q\\\"x\\\" y\"} 1\n",
            "# EOF\n",
        );
        let mut out = String::new();
        to_text_004(om, &mut out);
        assert_eq!(
            out,
            concat!(
                "# HELP pathwatch_probe_runs_total Runs.\n",
                "# TYPE pathwatch_probe_runs_total counter\n",
                "pathwatch_probe_runs_total{probe=\"a # b\",reason=\"ok\"} 3\n",
                "# HELP pathwatch_build_info Build.\n",
                "# TYPE pathwatch_build_info gauge\n",
                "pathwatch_build_info{version=\"0.1.0\"} 1\n",
                "# HELP pathwatch_run_seconds Seconds.\n",
                "# TYPE pathwatch_run_seconds histogram\n",
                "pathwatch_run_seconds_bucket{le=\"0.5\"} 1\n",
                "pathwatch_run_seconds_sum 0.25\n",
                "# TYPE pathwatch_up gauge\n",
                "pathwatch_up{probe=\"q\\\"x\\\" y\"} 1\n",
            )
        );
    }
}

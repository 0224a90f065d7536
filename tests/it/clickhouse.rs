//! ClickHouse is probed by two `http` probes in examples/staging.yaml. This runs those two
//! entries, taken from the example file as they are, against a fake ClickHouse HTTP interface,
//! so the example is proven to work rather than only to parse.

use crate::support::cloud_logging::clickhouse;
use crate::support::exporter::{Exporter, value};
use std::time::Duration;

/// The probe entries of `example` whose name starts with `prefix`, verbatim.
fn entries(example: &str, prefix: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in example.lines() {
        if let Some(name) = line.strip_prefix("  - name: ") {
            inside = name.starts_with(prefix);
        } else if !line.starts_with("    ") {
            inside = false;
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn clickhouse_probes_of_the_staging_example_pass_against_a_clickhouse_fake() {
    let example =
        std::fs::read_to_string("examples/staging.yaml").expect("read examples/staging.yaml");
    let probes = entries(&example, "clickhouse-");
    assert_eq!(probes.matches("  - name: ").count(), 2, "{probes}");
    let fake = clickhouse();
    let yaml = format!("defaults: {{ interval: 1s }}\nprobes:\n{probes}");
    let exp = Exporter::start_with_env(&yaml, &[("CLICKHOUSE_URL", fake.base().as_str())]);
    for probe in ["clickhouse-ping", "clickhouse-query"] {
        exp.wait_for(
            "pathwatch_probe_success",
            &[("probe", probe), ("kind", "http")],
            Duration::from_secs(20),
            |v| v == 1.0,
        );
    }
    let m = exp.metrics();
    assert_eq!(
        value(
            &m,
            "pathwatch_http_status_code",
            &[("probe", "clickhouse-query")]
        ),
        Some(200.0)
    );
}

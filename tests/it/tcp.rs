//! The `tcp` probe: connect time to host:port.

use crate::support::exporter::{Exporter, value};
use crate::support::hang::{SilentServer, closed_port};
use std::time::Duration;

#[test]
fn open_port_succeeds_closed_port_is_refused_unknown_host_is_dns() {
    let open = SilentServer::start();
    let closed = closed_port();
    let exp = Exporter::start(&format!(
        "defaults: {{ interval: 1s, timeout: 3s }}\nprobes:\n  - {{ name: open, kind: tcp, host: 127.0.0.1, port: {} }}\n  - {{ name: closed, kind: tcp, host: 127.0.0.1, port: {closed} }}\n  - {{ name: nxdomain, kind: tcp, host: no-such-host.invalid, port: 5432 }}\n",
        open.port
    ));
    let wait = Duration::from_secs(20);
    exp.wait_for(
        "pathwatch_probe_success",
        &[("probe", "open"), ("kind", "tcp")],
        wait,
        |v| v == 1.0,
    );
    for (probe, reason) in [("closed", "refused"), ("nxdomain", "dns")] {
        exp.wait_for(
            "pathwatch_probe_runs_total",
            &[("probe", probe), ("result", "failure"), ("reason", reason)],
            wait,
            |v| v >= 1.0,
        );
    }
    let m = exp.metrics();
    assert!(
        value(
            &m,
            "pathwatch_probe_phase_duration_seconds",
            &[("probe", "open"), ("phase", "connect")]
        )
        .is_some()
    );
    // TCP probes are no database sessions.
    assert!(!m.contains("pathwatch_db_connect_seconds_count{probe=\"open\""));
    assert!(open.connections() >= 1);
}

/// The scheduler reports how late each run started (histogram and /api/status), and a
/// scrape records how long the previous encoding took.
#[test]
fn scheduled_runs_report_their_lateness_and_scrapes_their_encode_time() {
    let open = SilentServer::start();
    let exp = Exporter::start(&format!(
        "defaults: {{ interval: 1s, timeout: 1s }}\nprobes:\n  - {{ name: open, kind: tcp, host: 127.0.0.1, port: {} }}\n",
        open.port
    ));
    let count = exp.wait_for(
        "pathwatch_scheduler_lateness_seconds_count",
        &[],
        Duration::from_secs(20),
        |v| v >= 3.0,
    );
    let m = exp.metrics();
    // An idle exporter wakes its probes within a quarter second of their slots.
    let in_time = value(
        &m,
        "pathwatch_scheduler_lateness_seconds_bucket",
        &[("le", "0.25")],
    )
    .expect("lateness bucket");
    assert!(in_time >= count, "{m}");
    let encode = value(&m, "pathwatch_metrics_encode_seconds", &[]).expect("encode gauge");
    assert!(encode > 0.0 && encode < 5.0, "encode {encode}");

    let (status, _, body) = exp.get("/api/status");
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    let probe = &json["probes"][0];
    let lateness = probe["lateness_seconds"].as_array().expect("lateness list");
    let history = probe["history"].as_array().expect("history");
    assert!(lateness.len() >= 3, "{body}");
    assert_eq!(
        lateness.len(),
        history.len(),
        "one figure per scheduled run"
    );
    assert!(
        lateness
            .iter()
            .all(|l| l.as_f64().is_some_and(|s| (0.0..0.25).contains(&s))),
        "{body}"
    );
}

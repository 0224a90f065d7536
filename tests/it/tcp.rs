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

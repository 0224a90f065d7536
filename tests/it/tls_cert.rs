//! `tls_cert`: a handshake with a real TLS server on 127.0.0.1, and the leaf certificate's
//! notAfter exported; the certificate is verified unless told otherwise.

use crate::support::exporter::{Exporter, phases, value};
use crate::support::hang::closed_port;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const WAIT: Duration = Duration::from_secs(20);
const EXPIRY: &str = "pathwatch_tls_cert_expiry_timestamp_seconds";

#[test]
fn the_leaf_certificates_expiry_is_exported_and_verified() {
    let t = crate::support::tls_target::start();
    let port = t.addr.port();
    let ca = t.certs.ca_cert.display().to_string();
    let closed = closed_port();
    let yaml = format!(
        r#"defaults: {{ interval: 1s, timeout: 3s }}
probes:
  - {{ name: trusted, kind: tls_cert, host: localhost, port: {port}, ca_file: "{ca}" }}
  - {{ name: by-ip, kind: tls_cert, host: 127.0.0.1, port: {port}, server_name: localhost, ca_file: "{ca}" }}
  - {{ name: unknown-ca, kind: tls_cert, host: localhost, port: {port} }}
  - {{ name: wrong-name, kind: tls_cert, host: 127.0.0.1, port: {port}, server_name: example.com, ca_file: "{ca}" }}
  - {{ name: skip-verify, kind: tls_cert, host: localhost, port: {port}, insecure_skip_verify: true }}
  - {{ name: closed, kind: tls_cert, host: 127.0.0.1, port: {closed} }}
"#
    );
    let exp = Exporter::start(&yaml);
    for ok in ["trusted", "by-ip", "skip-verify"] {
        exp.wait_for("pathwatch_probe_success", &[("probe", ok)], WAIT, |v| {
            v == 1.0
        });
    }
    exp.wait_reason("unknown-ca", "failure", "tls");
    exp.wait_reason("wrong-name", "failure", "tls");
    exp.wait_reason("closed", "failure", "refused");
    let m = exp.metrics();
    // The leaf is signed for 825 days (the CA for 3650): the leaf's date is the one read.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    for ok in ["trusted", "by-ip", "skip-verify"] {
        let at = value(&m, EXPIRY, &[("probe", ok)]).unwrap_or_else(|| panic!("{ok}\n{m}"));
        let days = (at - now) / 86_400.0;
        assert!((824.0..=825.0).contains(&days), "{ok}: {days} days");
    }
    // No handshake, no date.
    for failed in ["unknown-ca", "wrong-name", "closed"] {
        assert_eq!(value(&m, EXPIRY, &[("probe", failed)]), None, "{failed}");
    }
    assert_eq!(phases(&m, "trusted"), ["connect", "resolve", "tls"]);
    assert_eq!(phases(&m, "unknown-ca"), ["connect", "resolve"]);
}

/// `/probe` with a tls_cert module answers the expiry of the target's certificate too, and
/// nothing of the other kinds' declared gauges.
#[test]
fn an_on_demand_run_answers_the_targets_certificate_expiry() {
    let near = crate::support::tls_target::start_for_days(5);
    let yaml = format!(
        r#"probes:
  - {{ name: cert, kind: tls_cert, host: 127.0.0.1, port: {}, insecure_skip_verify: true, interval: 1h }}
on_demand:
  allowed_targets: ["127.0.0.1:*"]
"#,
        near.addr.port()
    );
    let exp = Exporter::start(&yaml);
    let (status, _, body) = crate::support::exporter::http_get(
        exp.addr,
        &format!("/probe?module=cert&target=127.0.0.1:{}", near.addr.port()),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        value(&body, "pathwatch_probe_success", &[("probe", "cert")]),
        Some(1.0),
        "{body}"
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let at = value(&body, EXPIRY, &[("probe", "cert")]).unwrap_or_else(|| panic!("{body}"));
    let days = (at - now) / 86_400.0;
    assert!((4.0..=5.0).contains(&days), "{days} days\n{body}");
}

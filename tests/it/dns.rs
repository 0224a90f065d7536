//! `dns`: the real binary asking a real DNS server (unbound, from Debian, started by the
//! test): answers of each type checked by `expect` and blackbox's regex checks, passing and
//! failing; NXDOMAIN, SERVFAIL and REFUSED; a truncated UDP answer asked again over TCP; TCP
//! only; a server that never answers; the AD bit of a validated signed zone, and missing
//! for an unsigned one; and one `/probe` call.

use crate::support::exporter::{Exporter, http_get, phases, value};
use crate::support::unbound::Unbound;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn success(exp: &Exporter, probe: &str) {
    exp.wait_for("pathwatch_probe_success", &[("probe", probe)], WAIT, |v| {
        v == 1.0
    });
}

#[test]
fn answers_rcodes_truncation_and_timeouts_from_a_real_server() {
    let ub = Unbound::start();
    let server = ub.addr;
    // A UDP socket that never answers (nothing reads it).
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let silent = silent.local_addr().expect("address");
    let yaml = format!(
        r#"defaults: {{ interval: 1s, timeout: 3s }}
probes:
  - name: a
    kind: dns
    server: "{server}"
    query_name: www.pathwatch.test
    expect: [192.0.2.11, 192.0.2.10]
    validate_answer_rrs:
      fail_if_not_matches_regexp: ['^www\.pathwatch\.test\.\t300\tIN\tA\t192\.0\.2\.1[01]$']
  - name: a-wrong
    kind: dns
    server: "{server}"
    query_name: www.pathwatch.test
    expect: [192.0.2.10]
  - {{ name: aaaa-tcp, kind: dns, server: "{server}", query_name: www.pathwatch.test, query_type: AAAA, transport: tcp, expect: ["2001:db8:0::0010"] }}
  - {{ name: mx, kind: dns, server: "{server}", query_name: pathwatch.test, query_type: MX, expect: [20 backup.pathwatch.test., 10 mail.pathwatch.test.] }}
  - name: mx-regex
    kind: dns
    server: "{server}"
    query_name: pathwatch.test
    query_type: MX
    validate_answer_rrs: {{ fail_if_matches_regexp: ['IN\tMX\t20 '] }}
  - name: txt
    kind: dns
    server: "{server}"
    query_name: pathwatch.test
    query_type: TXT
    expect: ['"v=spf1 -all"']
    validate_answer_rrs: {{ fail_if_none_matches_regexp: ['v=spf1'] }}
  - name: txt-regex
    kind: dns
    server: "{server}"
    query_name: pathwatch.test
    query_type: TXT
    validate_answer_rrs: {{ fail_if_none_matches_regexp: ['v=DMARC1'] }}
  - {{ name: srv, kind: dns, server: "{server}", query_name: _sip._udp.pathwatch.test, query_type: SRV, expect: [0 5 5060 sip.pathwatch.test.] }}
  - {{ name: cname, kind: dns, server: "{server}", query_name: alias.pathwatch.test, query_type: CNAME, expect: [www.pathwatch.test.] }}
  - {{ name: nxdomain, kind: dns, server: "{server}", query_name: nope.pathwatch.test }}
  - {{ name: nxdomain-wanted, kind: dns, server: "{server}", query_name: nope.pathwatch.test, valid_rcodes: [NXDOMAIN] }}
  - {{ name: servfail, kind: dns, server: "{server}", query_name: www.dead.test, timeout: 15s }}
  - {{ name: refused, kind: dns, server: "{server}", query_name: www.refused.test }}
  - {{ name: big, kind: dns, server: "{server}", query_name: big.pathwatch.test, query_type: TXT }}
  - {{ name: silent, kind: dns, server: "{silent}", query_name: www.pathwatch.test, timeout: 1s }}
  - {{ name: dnssec, kind: dns, server: "{server}", query_name: www.pathwatch.test, dnssec: true }}
  - {{ name: dnssec-signed, kind: dns, server: "{server}", query_name: www.signed.test, dnssec: true, expect: [192.0.2.53] }}
  - {{ name: dnssec-signed-nx, kind: dns, server: "{server}", query_name: nope.signed.test, dnssec: true, valid_rcodes: [NXDOMAIN] }}
"#
    );
    let exp = Exporter::start(&yaml);
    for ok in [
        "a",
        "aaaa-tcp",
        "mx",
        "txt",
        "srv",
        "cname",
        "nxdomain-wanted",
        "big",
        "dnssec-signed",
        "dnssec-signed-nx",
    ] {
        success(&exp, ok);
    }
    exp.wait_reason("a-wrong", "failure", "assertion");
    exp.wait_reason("mx-regex", "failure", "assertion");
    exp.wait_reason("txt-regex", "failure", "assertion");
    exp.wait_reason("nxdomain", "failure", "not_found");
    exp.wait_reason("refused", "failure", "forbidden");
    exp.wait_reason("silent", "failure", "timeout");
    exp.wait_reason("dnssec", "failure", "expectation");
    exp.wait_for(
        "pathwatch_probe_runs_total",
        &[
            ("probe", "servfail"),
            ("result", "failure"),
            ("reason", "server_error"),
        ],
        WAIT,
        |v| v >= 1.0,
    );
    let m = exp.metrics();
    let gauge = |name: &str, probe: &str| {
        value(&m, name, &[("probe", probe)]).unwrap_or_else(|| panic!("{name} {probe}\n{m}"))
    };
    for (probe, rcode) in [
        ("a", 0.0),
        ("nxdomain", 3.0),
        ("servfail", 2.0),
        ("refused", 5.0),
    ] {
        assert_eq!(gauge("pathwatch_dns_rcode", probe), rcode, "{probe}");
    }
    assert_eq!(gauge("pathwatch_dns_answer_rrs", "a"), 2.0);
    assert_eq!(gauge("pathwatch_dns_answer_rrs", "big"), 10.0);
    assert_eq!(gauge("pathwatch_dns_answer_rrs", "nxdomain"), 0.0);
    // unbound's static zone puts its SOA in the authority section of an NXDOMAIN.
    assert_eq!(gauge("pathwatch_dns_authority_rrs", "nxdomain"), 1.0);
    // The silent server never answered: nothing to report.
    assert_eq!(
        value(&m, "pathwatch_dns_rcode", &[("probe", "silent")]),
        None
    );
    // UDP only; TCP only; and the 2 KB answer truncated over UDP, then asked over TCP.
    assert_eq!(phases(&m, "a"), ["query", "resolve"]);
    assert_eq!(phases(&m, "aaaa-tcp"), ["connect", "query", "resolve"]);
    assert_eq!(
        phases(&m, "big"),
        ["connect", "query", "resolve", "transfer"]
    );
    assert_eq!(phases(&m, "silent"), ["resolve"]);
    // The failures say why, with the records compared.
    let (_, _, status) = exp.get("/api/status");
    for text in [
        r#"the answer's A records are [\"192.0.2.10\", \"192.0.2.11\"], expected [\"192.0.2.10\"]"#,
        "answered NXDOMAIN (3), not a valid rcode",
        "did not set the AD bit",
    ] {
        assert!(status.contains(text), "{text}\n{status}");
    }
}

/// `/probe` points a dns module at another server: the module's own server is closed, the
/// target answers.
#[test]
fn an_on_demand_run_asks_the_target_server() {
    let ub = Unbound::start();
    let closed = crate::support::hang::closed_port();
    let yaml = format!(
        r#"probes:
  - {{ name: www, kind: dns, server: "127.0.0.1:{closed}", query_name: www.pathwatch.test, interval: 1h, expect: [192.0.2.10, 192.0.2.11] }}
on_demand:
  allowed_targets: ["127.0.0.1:*"]
"#
    );
    let exp = Exporter::start(&yaml);
    let (status, _, body) = http_get(exp.addr, &format!("/probe?module=www&target={}", ub.addr));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        value(&body, "pathwatch_probe_success", &[("probe", "www")]),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        value(&body, "pathwatch_dns_answer_rrs", &[("probe", "www")]),
        Some(2.0),
        "{body}"
    );
}

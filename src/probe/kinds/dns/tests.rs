//! The spec's checks, the text form of records and the resolv.conf reading.

use super::*;
use hickory_proto::rr::rdata::{A, MX, TXT};
use hickory_proto::rr::{RData, Record};

fn spec(name: &str) -> DnsSpec {
    serde_saphyr::from_str(&format!("query_name: {name}\nserver: 127.0.0.1:5353\n")).unwrap()
}

#[test]
fn defaults_ask_for_a_over_udp_with_edns_and_accept_noerror() {
    let s = spec("example.com");
    assert_eq!(s.query_type, QueryType::A);
    assert_eq!(s.transport, DnsTransport::Udp);
    assert!(s.recursion_desired && s.edns && !s.dnssec);
    let p = s.build().unwrap();
    assert_eq!(p.valid_rcodes, [0]);
    assert_eq!(p.server, Some(("127.0.0.1".into(), 5353)));
    let q = &p.query.queries[0];
    assert_eq!(q.name().to_string(), "example.com.");
    assert_eq!(p.query.edns.as_ref().unwrap().max_payload(), 1232);
}

#[test]
fn bad_specs_say_what_is_wrong() {
    let error = |s: DnsSpec| s.build().map(|_| ()).unwrap_err().to_string();
    assert_eq!(error(spec("''")), "invalid \"query_name\" \"\": empty");
    let long = "a".repeat(64);
    assert!(error(spec(&long)).starts_with(&format!("invalid \"query_name\" \"{long}\": ")));
    let no_rcodes = DnsSpec {
        valid_rcodes: vec![],
        ..spec("x.test")
    };
    assert_eq!(error(no_rcodes), "\"valid_rcodes\" must not be empty");
    let dnssec = DnsSpec {
        dnssec: true,
        edns: false,
        ..spec("x.test")
    };
    assert_eq!(error(dnssec), "\"dnssec\" needs \"edns\"");
    let server = DnsSpec {
        server: Some("ns:x".into()),
        ..spec("x.test")
    };
    assert_eq!(
        error(server),
        "invalid \"server\": target \"ns:x\" has no valid port"
    );
    let address = DnsSpec {
        expect: Some(vec!["192.0.2.1".into(), "2001:db8::1".into()]),
        ..spec("x.test")
    };
    assert_eq!(
        error(address),
        "\"expect\" has \"2001:db8::1\", which is not an IPv4 address"
    );
    let regex = DnsSpec {
        validate_answer_rrs: RrChecks {
            fail_if_not_matches_regexp: vec!["(".into()],
            ..RrChecks::default()
        },
        ..spec("x.test")
    };
    assert_eq!(
        error(regex),
        "\"validate_answer_rrs.fail_if_not_matches_regexp\" \"(\": invalid regex at character 1: unclosed group"
    );
}

#[test]
fn expected_addresses_match_in_any_spelling() {
    let aaaa = DnsSpec {
        query_type: QueryType::Aaaa,
        expect: Some(vec!["2001:0db8:0:0::0010".into()]),
        ..spec("x.test")
    };
    assert_eq!(
        aaaa.build().unwrap().expect,
        Some(vec!["2001:db8::10".into()])
    );
    let mx = DnsSpec {
        query_type: QueryType::Mx,
        expect: Some(vec!["10 mail.x.test.".into()]),
        ..spec("x.test")
    };
    assert_eq!(
        mx.build().unwrap().expect,
        Some(vec!["10 mail.x.test.".into()])
    );
}

#[test]
fn a_server_without_port_is_port_53_and_a_target_replaces_it() {
    assert_eq!(server_address("ns1.test"), Ok(("ns1.test".into(), 53)));
    assert_eq!(server_address("::1"), Ok(("::1".into(), 53)));
    assert_eq!(server_address("[::1]:5353"), Ok(("::1".into(), 5353)));
    assert_eq!(server_address("10.0.0.2:53"), Ok(("10.0.0.2".into(), 53)));
    assert!(server_address(" ").is_err());
    let t = spec("x.test").retarget("[::1]:5300").unwrap();
    assert_eq!(t.server.as_deref(), Some("[::1]:5300"));
    assert_eq!(t.build().unwrap().server, Some(("::1".into(), 5300)));
}

#[test]
fn records_read_as_blackbox_shows_them() {
    let name = Name::from_ascii("www.example.com.").unwrap();
    let a = Record::from_rdata(name.clone(), 300, RData::A(A::new(192, 0, 2, 1)));
    assert_eq!(text::record(&a), "www.example.com.\t300\tIN\tA\t192.0.2.1");
    let mx = RData::MX(MX::new(10, Name::from_ascii("mail.example.com.").unwrap()));
    assert_eq!(text::rdata(&mx), "10 mail.example.com.");
    let txt = RData::TXT(TXT::from_bytes(vec![b"v=spf1 -all", b"say \"hi\"\\\x01"]));
    assert_eq!(text::rdata(&txt), r#""v=spf1 -all" "say \"hi\"\\\001""#);
}

#[test]
fn the_checks_follow_blackbox_semantics() {
    let c = |f: fn(&mut RrChecks) -> &mut Vec<String>, re: &str| {
        let mut checks = RrChecks::default();
        f(&mut checks).push(re.into());
        Checks::compile("validate_answer_rrs", &checks).unwrap()
    };
    let rrs = vec![
        "a.\t1\tIN\tA\t10.0.0.1".to_string(),
        "a.\t1\tIN\tA\t10.0.0.2".to_string(),
    ];
    let none: Vec<String> = vec![];
    let matches = c(|c| &mut c.fail_if_matches_regexp, r"10\.0\.0\.2$");
    assert!(matches.failure("answer", &rrs).is_some());
    assert!(matches.failure("answer", &rrs[..1]).is_none());
    let all = c(|c| &mut c.fail_if_all_match_regexp, r"10\.0\.0\.");
    assert!(all.failure("answer", &rrs).is_some());
    assert!(all.failure("answer", &none).is_none());
    let not = c(|c| &mut c.fail_if_not_matches_regexp, r"\tA\t10\.0\.0\.1$");
    assert_eq!(
        not.failure("answer", &rrs).unwrap(),
        r#"answer record "a.\t1\tIN\tA\t10.0.0.2" does not match "\\tA\\t10\\.0\\.0\\.1$""#
    );
    assert!(not.failure("answer", &none).is_none());
    let none_m = c(|c| &mut c.fail_if_none_matches_regexp, r"10\.0\.0\.2");
    assert!(none_m.failure("answer", &rrs).is_none());
    assert!(none_m.failure("answer", &none).is_some());
}

#[test]
fn the_system_nameserver_is_the_first_nameserver_line() {
    let conf = "# generated\nsearch corp.test\noptions ndots:2\n;nameserver 10.9.9.9\nnameserver fe80::1%eth0 # link\nnameserver 10.0.0.2\n";
    assert_eq!(text::first_nameserver(conf).as_deref(), Some("fe80::1"));
    assert_eq!(text::first_nameserver("search x\n"), None);
    assert_eq!(
        text::first_nameserver("nameserver bogus\nnameserver 1.1.1.1"),
        Some("1.1.1.1".into())
    );
}

#[test]
fn rcodes_have_their_names_and_numbers() {
    assert_eq!(text::rcode_name(3), "NXDOMAIN");
    assert_eq!(text::rcode_name(23), "RCODE23");
    let s: DnsSpec = serde_saphyr::from_str(
        "query_name: x\nvalid_rcodes: [NOERROR, NXDOMAIN, SERVFAIL, REFUSED]\n",
    )
    .unwrap();
    assert_eq!(s.build().unwrap().valid_rcodes, [0, 3, 2, 5]);
}

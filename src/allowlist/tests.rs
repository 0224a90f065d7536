//! The allowlist matcher: examples of what each pattern admits and refuses, and properties
//! (no input panics; `*` never crosses a label, so no name can pass for an address range).

use super::*;
use proptest::prelude::*;

fn allows(pattern: &str, target: &str) -> bool {
    let p = TargetPattern::parse(pattern).expect("pattern");
    parse_target(target).is_ok_and(|t| p.matches(&t))
}

#[test]
fn cidr_patterns_match_addresses_only() {
    assert!(allows("10.0.0.0/16:5432", "10.0.3.7:5432"));
    assert!(!allows("10.0.0.0/16:5432", "10.1.3.7:5432"));
    assert!(!allows("10.0.0.0/16:5432", "10.0.3.7:6432"));
    assert!(allows("10.0.3.7/16:*", "10.0.200.1:1"));
    assert!(allows("127.0.0.1:*", "127.0.0.1:5432"));
    assert!(allows("[::1]:6379", "[::1]:6379"));
    assert!(allows("[fd00::/8]:5432-5439", "[fd12::3]:5433"));
    assert!(!allows("[fd00::/8]:5432-5439", "[fd12::3]:5440"));
    // An IPv4-mapped IPv6 address is its IPv4 address.
    assert!(allows("10.0.0.0/8:80", "[::ffff:10.1.2.3]:80"));
    // A name never matches an address pattern, whatever it spells.
    assert!(!allows("10.0.0.0/16:5432", "10.0.169.254.nip.io:5432"));
}

#[test]
fn name_globs_match_whole_labels() {
    assert!(allows("*.internal:*", "DB.internal:5432"));
    assert!(allows("*.internal:*", "db.internal.:5432"));
    assert!(!allows("*.internal:*", "a.db.internal:5432"));
    assert!(!allows("*.internal:5432", "evil.com/?x=.internal:5432"));
    assert!(allows(
        "db-*.staging.internal:5432",
        "db-3.staging.internal:5432"
    ));
    assert!(!allows(
        "db-*.staging.internal:5432",
        "db-3.x.staging.internal:5432"
    ));
    assert!(
        !allows("*:5432", "127.0.0.1:5432"),
        "* is a label, not an address"
    );
    assert!(!allows("*.internal:5432", "[::1]:5432"));
}

#[test]
fn url_patterns_match_scheme_origin_and_path() {
    let p = "https://*.example.com/*";
    assert!(allows(p, "https://api.example.com/health"));
    assert!(allows(p, "HTTPS://Api.Example.com:443/h?q=1"));
    assert!(!allows(p, "https://api.example.com:8443/health"));
    assert!(!allows(p, "http://api.example.com/health"));
    assert!(!allows(p, "https://api.example.com.evil.io/"));
    assert!(!allows(p, "https://user:pw@api.example.com/"));
    assert!(allows(
        "http://127.0.0.1:*",
        "http://127.0.0.1:8080/any/path"
    ));
    assert!(!allows(
        "http://127.0.0.1:*",
        "http://127.0.0.1:80@evil.example/"
    ));
    assert!(
        !allows("http://127.0.0.1:*", "127.0.0.1:8080"),
        "kinds apart"
    );
}

#[test]
fn socket_directories_match_segment_by_segment() {
    assert!(allows("/cloudsql/*", "/cloudsql/p:r:i"));
    assert!(!allows("/cloudsql/*", "/cloudsql/p/../../etc"));
    assert!(!allows("/cloudsql/*", "/cloudsql/a/b"));
}

#[test]
fn bad_patterns_are_refused_with_the_reason() {
    let e = |p: &str| TargetPattern::parse(p).unwrap_err().to_string();
    assert!(
        e("10.0.*:5432").contains("write it as a CIDR network"),
        "{}",
        e("10.0.*:5432")
    );
    assert!(e("db.internal").contains("needs a port"));
    assert!(e("db:99999").contains("the port must be"));
    assert!(e("db:10-5").contains("the port must be"));
    assert!(e("ftp://x/").contains("http or https"));
    assert!(e("a..b:1").contains("DNS name"));
    assert!(e("/a/../b").contains(".."));
}

#[test]
fn a_portless_host_is_admitted_by_host_star_patterns_only() {
    let admits_host = |pattern: &str, target: &str| {
        let p = TargetPattern::parse(pattern).expect("pattern");
        parse_host_target(target).is_ok_and(|t| p.matches(&t))
    };
    assert!(admits_host("127.0.0.1:*", "127.0.0.1"));
    assert!(admits_host("10.0.0.0/8:*", "2130706441") == admits_host("10.0.0.0/8:*", "127.0.0.9"));
    assert!(admits_host("[::1]:*", "::1"));
    assert!(admits_host("[::1]:*", "[::1]"));
    assert!(admits_host("*.internal:*", "Gateway.internal."));
    // A pattern bound to ports does not admit a host without one.
    assert!(!admits_host("127.0.0.1:7", "127.0.0.1"));
    assert!(!admits_host("http://127.0.0.1", "127.0.0.1"));
    // Addresses are written as judged; the denied networks apply.
    let t = parse_host_target("0x7f000009").expect("an address");
    assert_eq!(t.address_text().as_deref(), Some("127.0.0.9"));
    let everything = [TargetPattern::parse("0.0.0.0/0:*").expect("pattern")];
    let metadata = parse_host_target("169.254.169.254").expect("an address");
    assert!(!admits(&everything, &metadata));
    for bad in [
        "",
        "[::1",
        "[evil.example]",
        "a b",
        "1.2.3.999",
        "127.0.0.1:80",
    ] {
        assert!(parse_host_target(bad).is_err(), "{bad}");
    }
}

#[test]
fn denied_networks_cover_link_local_and_metadata() {
    for ip in [
        "169.254.169.254",
        "169.254.0.1",
        "fe80::1",
        "fd00:ec2::254",
        "::ffff:169.254.169.254",
        "100.100.100.200",
        "0.0.0.0",
        "::",
    ] {
        assert!(denied(ip.parse().unwrap()), "{ip}");
    }
    for ip in ["127.0.0.1", "::1", "10.0.0.1", "100.100.100.201"] {
        assert!(!denied(ip.parse().unwrap()), "{ip}");
    }
}

/// Whether `/probe` would run `target` under these patterns (before any resolution).
fn admitted(patterns: &[&str], target: &str) -> Result<bool, TargetError> {
    let allowed: Vec<TargetPattern> = patterns
        .iter()
        .map(|p| TargetPattern::parse(p).expect("pattern"))
        .collect();
    Ok(admits(&allowed, &parse_target(target)?))
}

#[test]
fn numeric_hosts_are_addresses_never_names() {
    let ip = |t: &str| parse_target(t).map(|t| t.address_text());
    let nine = Ok(Some("127.0.0.9:6379".to_string()));
    for t in [
        "2130706441:6379",
        "0x7f000009:6379",
        "0X7F000009:6379",
        "017700000011:6379",
        "127.9:6379",
        "127.0.9:6379",
        "0x7f.0.0.011:6379",
        "0x7f.9:6379",
        "127.0.0.9.:6379",
        "0000000000000000177.0x0.9:6379",
    ] {
        assert_eq!(ip(t), nine, "{t}");
        assert_eq!(admitted(&["*:6379"], t), Ok(false), "{t}");
        assert_eq!(admitted(&["127.0.0.0/8:6379"], t), Ok(true), "{t}");
    }
    // The metadata address in any spelling is denied, whatever the allowlist admits.
    for t in [
        "2852039166:80",
        "0xa9fea9fe:80",
        "0251.0376.0251.0376:80",
        "169.16689662:80",
    ] {
        assert_eq!(admitted(&["0.0.0.0/0:*", "*:*"], t), Ok(false), "{t}");
    }
    // Ends in a number, yet no address: refused, never resolved as a name.
    for t in [
        "1.2.3.4.5:80",
        "db.1:80",
        "0x7g.1:80",
        "089:80",
        "4294967296:80",
        "256.1.1.1:80",
    ] {
        assert!(parse_target(t).is_err(), "{t}");
    }
    assert_eq!(parse_target("db.0x1:80"), Err(TargetError::NumericHost));
    // Names that only look numeric somewhere else stay names.
    assert_eq!(admitted(&["*.*:6379"], "127.x:6379"), Ok(true));
    assert_eq!(admitted(&["*:6379"], "0xdb-host:6379"), Ok(true));
    // Patterns: an address is written dotted, and a name pattern never ends in a number.
    let e = |p: &str| TargetPattern::parse(p).unwrap_err().to_string();
    for p in ["0x7f000001:6379", "0x7f.1:*", "db.0x1:*", "http://0x7f.1:*"] {
        assert!(e(p).contains("ends in a number"), "{p}: {}", e(p));
    }
}

#[test]
fn ipv6_zones_and_carried_ipv4_addresses_are_judged_as_the_address() {
    let any = ["0.0.0.0/0:*", "[::/0]:*"];
    for t in [
        "[fe80::1%eth0]:80",
        "fe80::1%eth0:80",
        "[fe80::1%25eth0]:80",
        "[::ffff:169.254.169.254]:80",
        "[::169.254.169.254]:80",
        "[::a9fe:a9fe]:80",
        "[64:ff9b::169.254.169.254]:80",
        "[::ffff:0.0.0.0]:80",
    ] {
        assert_eq!(admitted(&any, t), Ok(false), "{t}");
    }
    assert_eq!(
        parse_target("[fd00::1%eth0]:80").map(|t| t.address_text()),
        Ok(Some("[fd00::1]:80".to_string()))
    );
    assert_eq!(
        admitted(&["127.0.0.0/8:6379"], "[::ffff:127.0.0.9]:6379"),
        Ok(true)
    );
    assert_eq!(admitted(&any, "[::1]:80"), Ok(true), "::1 is not 0.0.0.1");
    assert_eq!(admitted(&any, "[::127.0.0.9]:80"), Ok(true));
    assert!(parse_target("[fe80::1%]:80").is_err());
    assert!(parse_target("[fe80::1%a/b]:80").is_err());
    assert!(parse_target("[127.0.0.1%eth0]:80").is_err());
}

/// One number written in `parts` dotted parts (1-4), each in its own radix: the last part
/// holds the remaining bits, as the WHATWG and `inet_aton` parsers read it.
fn spelled(a: u32, parts: usize, radix: &[(u8, usize, bool)], dot: bool) -> String {
    let mut values: Vec<u32> = (0..parts - 1).map(|i| (a >> (24 - 8 * i)) & 0xff).collect();
    let bits = 32 - 8 * (parts as u32 - 1);
    values.push(if bits == 32 { a } else { a & ((1 << bits) - 1) });
    let text: Vec<String> = values
        .iter()
        .zip(radix)
        .map(|(v, (r, zeros, upper))| {
            let z = "0".repeat(*zeros);
            match r {
                0 => v.to_string(),
                1 if *upper => format!("0X{z}{v:X}"),
                1 => format!("0x{z}{v:x}"),
                _ => format!("0{z}{v:o}"),
            }
        })
        .collect();
    format!("{}{}", text.join("."), if dot { "." } else { "" })
}

#[tokio::test]
async fn the_guard_applies_only_inside_a_guarded_run() {
    let meta: Vec<SocketAddr> = vec!["169.254.169.254:80".parse().unwrap()];
    assert!(
        check_resolved(&meta).is_ok(),
        "scheduled probes go where configured"
    );
    let hop = url::Url::parse("http://10.9.9.9/").unwrap();
    assert!(check_hop(&hop).is_ok());
    let guard = Arc::new(Guard {
        allowed: Arc::from([TargetPattern::parse("http://127.0.0.1:*").unwrap()]),
        trusted_origin: Some(
            url::Url::parse("http://db.internal:8080/")
                .unwrap()
                .origin(),
        ),
    });
    guarded(guard, async {
        assert!(check_resolved(&meta).is_err());
        assert!(check_resolved(&["127.0.0.1:80".parse().unwrap()]).is_ok());
        assert!(check_hop(&hop).is_err());
        assert!(check_hop(&url::Url::parse("http://127.0.0.1:9/x").unwrap()).is_ok());
        assert!(check_hop(&url::Url::parse("http://db.internal:8080/y").unwrap()).is_ok());
        assert!(check_hop(&url::Url::parse("http://169.254.169.254/").unwrap()).is_err());
    })
    .await;
}

proptest! {
    #[test]
    fn no_pattern_or_target_panics(p in "\\PC{0,40}", t in "\\PC{0,40}") {
        if let (Ok(p), Ok(t)) = (TargetPattern::parse(&p), parse_target(&t)) {
            let _ = p.matches(&t);
        }
    }

    #[test]
    fn star_never_crosses_a_label(
        labels in proptest::collection::vec("[a-z][a-z0-9-]{0,7}", 1..5),
        extra in "[a-z][a-z0-9-]{0,7}",
        port in 1u16..,
    ) {
        // "*.<rest>" admits exactly one more label than <rest>: never two.
        let rest = labels.join(".");
        let p = TargetPattern::parse(&format!("*.{rest}:*")).unwrap();
        let one = parse_target(&format!("{extra}.{rest}:{port}")).unwrap();
        let two = parse_target(&format!("{extra}.{extra}.{rest}:{port}")).unwrap();
        prop_assert!(p.matches(&one));
        prop_assert!(!p.matches(&two));
    }

    #[test]
    fn cidr_matches_exactly_its_addresses(a in any::<u32>(), b in any::<u32>(), len in 0u8..=32) {
        let net = ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(a), len).unwrap().trunc();
        let p = TargetPattern::parse(&format!("{net}:*")).unwrap();
        let ip = std::net::Ipv4Addr::from(b);
        let t = parse_target(&format!("{ip}:80")).unwrap();
        prop_assert_eq!(p.matches(&t), net.contains(&ip));
    }

    #[test]
    fn every_spelling_of_an_ipv4_number_gets_the_verdict_of_its_dotted_form(
        a in any::<u32>(),
        parts in 1usize..=4,
        radix in proptest::collection::vec((0u8..3, 0usize..3, any::<bool>()), 4),
        dot in any::<bool>(),
        near in any::<u32>(),
        len in 0u8..=32,
        port in 1u16..,
    ) {
        let ip = std::net::Ipv4Addr::from(a);
        let form = spelled(a, parts, &radix, dot);
        // A network around the address half the time, around another one otherwise.
        let base = if near % 2 == 0 { a } else { near };
        let net = ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(base), len).unwrap().trunc();
        let sets: [Vec<String>; 4] = [
            vec![format!("*:{port}")],
            vec![format!("{net}:*")],
            vec!["0.0.0.0/0:*".into()],
            vec![format!("http://{net}:*"), format!("http://*:{port}")],
        ];
        let sets: Vec<Vec<TargetPattern>> = sets
            .iter()
            .map(|s| s.iter().map(|p| TargetPattern::parse(p).unwrap()).collect())
            .collect();
        let socket = parse_target(&format!("{form}:{port}")).unwrap();
        prop_assert_eq!(&socket, &Target::Socket(Host::Ip(IpAddr::V4(ip)), port));
        let dotted = parse_target(&format!("{ip}:{port}")).unwrap();
        let url = parse_target(&format!("http://{form}:{port}/")).unwrap();
        let dotted_url = parse_target(&format!("http://{ip}:{port}/")).unwrap();
        for allowed in &sets {
            prop_assert_eq!(admits(allowed, &socket), admits(allowed, &dotted), "{}", form);
            prop_assert_eq!(admits(allowed, &url), admits(allowed, &dotted_url), "{}", form);
        }
        // The name pattern never admits an address, and the probe is handed the dotted form.
        prop_assert!(!admits(&sets[0], &socket));
        prop_assert_eq!(socket.address_text(), Some(format!("{ip}:{port}")));
    }
}

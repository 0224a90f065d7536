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
}

//! Hostile targets and hostile clients (issue 16), through real sockets: credentials stay
//! with their origin (redirects, `/probe` targets), and every input is bounded.

use crate::support::exporter::{Exporter, http_get, value};
use crate::support::hostile::{PasswordTrap, RecordingHttp, ok, redirect};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "Bearer s3cr3t-token";
const KEY: &str = "ck-s3cr3t-key";

/// A server on another host (127.0.0.2) and one that redirects there, or within itself.
fn redirect_pair() -> (RecordingHttp, RecordingHttp) {
    let elsewhere = RecordingHttp::start("127.0.0.2", |_| ok("elsewhere"));
    let to = format!("{}/landing", elsewhere.base());
    let origin = RecordingHttp::start("127.0.0.1", move |path| match path {
        "/cross" => redirect(302, &to),
        "/cross307" => redirect(307, &to),
        "/hop" => redirect(302, "/final"),
        _ => ok("home"),
    });
    (origin, elsewhere)
}

#[test]
fn http_redirects_never_carry_credentials_to_another_origin() {
    let (origin, elsewhere) = redirect_pair();
    let headers = format!(r#"{{ Authorization: "{TOKEN}", X-ClickHouse-Key: "{KEY}" }}"#);
    let o = origin.base();
    let exp = Exporter::start(&format!(
        r#"defaults: {{ interval: 1h, timeout: 5s }}
probes:
  - {{ name: default-policy, kind: http, url: "{o}/cross", headers: {headers} }}
  - {{ name: legacy-true, kind: http, url: "{o}/cross", follow_redirects: true, headers: {headers} }}
  - {{ name: none, kind: http, url: "{o}/hop", follow_redirects: none, headers: {headers} }}
  - {{ name: any, kind: http, url: "{o}/cross307", follow_redirects: any, headers: {headers} }}
  - {{ name: within, kind: http, url: "{o}/hop", headers: {headers} }}
"#
    ));
    for p in ["default-policy", "legacy-true", "none", "any", "within"] {
        exp.wait_first_run(p, WAIT);
    }
    let m = exp.metrics();
    let status = |p: &str| value(&m, "pathwatch_http_status_code", &[("probe", p)]);
    // Not followed across origins: the 302 is the final answer.
    assert_eq!(status("default-policy"), Some(302.0));
    assert_eq!(status("legacy-true"), Some(302.0));
    assert_eq!(status("none"), Some(302.0));
    // Followed within the origin, and anywhere with `any`.
    assert_eq!(status("within"), Some(200.0));
    assert_eq!(status("any"), Some(200.0));

    // The other host got exactly one request (from `any`), and none of the credentials.
    let there = elsewhere.seen();
    assert_eq!(there.len(), 1, "{there:?}");
    assert_eq!(there[0].header("authorization"), None, "{there:?}");
    assert_eq!(there[0].header("x-clickhouse-key"), None, "{there:?}");
    assert!(!there[0].head.contains("s3cr3t"), "{there:?}");
    // Within the origin the headers are still sent on every hop.
    let finals: Vec<_> = origin
        .seen()
        .into_iter()
        .filter(|s| s.line.starts_with("GET /final"))
        .collect();
    assert_eq!(finals.len(), 1, "{finals:?}");
    assert_eq!(finals[0].header("authorization").as_deref(), Some(TOKEN));
    assert_eq!(finals[0].header("x-clickhouse-key").as_deref(), Some(KEY));
}

#[test]
fn redirects_carry_a_body_as_http_says_and_never_out_of_the_origin_unasked() {
    const BODY: &str = r#"{"query":"b0dy-s3cr3t"}"#;
    let elsewhere = RecordingHttp::start("127.0.0.2", |_| ok("elsewhere"));
    let there = elsewhere.base();
    // /r/CODE/WHERE/TAG answers CODE to /landed/CODE/TAG, on this server or the other host.
    let origin = RecordingHttp::start("127.0.0.1", move |path| {
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            ["", "r", code, place, tag] => {
                let to = format!("/landed/{code}/{tag}");
                let to = if *place == "same" {
                    to
                } else {
                    format!("{there}{to}")
                };
                redirect(code.parse().unwrap_or(302), &to)
            }
            _ => ok("landed"),
        }
    });
    let o = origin.base();
    let headers = format!(
        r#"{{ Authorization: "{TOKEN}", Content-Type: application/json, Content-Language: en }}"#
    );
    let mut probes = String::new();
    let mut add = |name: &str, path: &str, extra: &str| {
        probes.push_str(&format!(
            "  - {{ name: {name}, kind: http, method: POST, url: \"{o}{path}\", body: '{BODY}', follow_redirects: any, headers: {headers}{extra} }}\n"
        ));
    };
    for code in [301, 302, 303, 307, 308] {
        add(
            &format!("same-{code}"),
            &format!("/r/{code}/same/s{code}"),
            "",
        );
        add(
            &format!("cross-{code}"),
            &format!("/r/{code}/cross/c{code}"),
            "",
        );
    }
    for code in [307, 308] {
        add(
            &format!("cross-any-{code}"),
            &format!("/r/{code}/cross/a{code}"),
            ", redirect_body: any",
        );
    }
    // A PUT keeps its body through a 302, so it does not leave the origin either.
    probes.push_str(&format!(
        "  - {{ name: put-302, kind: http, method: PUT, url: \"{o}/r/302/cross/p302\", body: '{BODY}', follow_redirects: any }}\n"
    ));
    let exp = Exporter::start(&format!(
        "defaults: {{ interval: 1h, timeout: 5s }}\nprobes:\n{probes}"
    ));
    let names: Vec<String> = [301, 302, 303, 307, 308]
        .iter()
        .flat_map(|c| [format!("same-{c}"), format!("cross-{c}")])
        .chain(["cross-any-307", "cross-any-308", "put-302"].map(String::from))
        .collect();
    for p in &names {
        exp.wait_first_run(p, WAIT);
    }
    let m = exp.metrics();
    let status = |p: &str| value(&m, "pathwatch_http_status_code", &[("probe", p)]);
    let hop = |server: &RecordingHttp, path: &str| {
        let hits: Vec<_> = server
            .seen()
            .into_iter()
            .filter(|s| s.path() == path)
            .collect();
        assert!(hits.len() <= 1, "{hits:?}");
        hits.into_iter().next()
    };
    // The first request of every probe: POST, the body and all the configured headers.
    let first = hop(&origin, "/r/307/cross/c307").expect("the first request");
    assert_eq!(first.method(), "POST");
    assert_eq!(first.body, BODY);
    assert_eq!(
        first.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(first.header("authorization").as_deref(), Some(TOKEN));

    for code in [301, 302, 303] {
        // Continued as a GET without the body or its Content-* headers, here and elsewhere;
        // the credentials only within the origin.
        let same = hop(&origin, &format!("/landed/{code}/s{code}")).expect("followed");
        let cross = hop(&elsewhere, &format!("/landed/{code}/c{code}")).expect("followed");
        for (seen, own) in [(&same, true), (&cross, false)] {
            assert_eq!(seen.method(), "GET", "{code}: {seen:?}");
            assert_eq!(seen.body, "", "{code}: {seen:?}");
            for h in ["content-type", "content-language", "content-length"] {
                assert_eq!(seen.header(h), None, "{code} {h}: {seen:?}");
            }
            assert_eq!(
                seen.header("authorization").is_some(),
                own,
                "{code}: {seen:?}"
            );
        }
        assert_eq!(status(&format!("same-{code}")), Some(200.0));
        assert_eq!(status(&format!("cross-{code}")), Some(200.0));
    }
    for code in [307, 308] {
        // Within the origin: the same request again, body, headers and all.
        let same = hop(&origin, &format!("/landed/{code}/s{code}")).expect("followed");
        assert_eq!(same.method(), "POST", "{same:?}");
        assert_eq!(same.body, BODY, "{same:?}");
        assert_eq!(
            same.header("content-type").as_deref(),
            Some("application/json")
        );
        assert_eq!(same.header("authorization").as_deref(), Some(TOKEN));
        // To another origin: not followed by default, the 3xx is the answer.
        assert_eq!(
            hop(&elsewhere, &format!("/landed/{code}/c{code}")).map(|s| s.line),
            None
        );
        assert_eq!(status(&format!("cross-{code}")), Some(f64::from(code)));
        // With `redirect_body: any`: the body and its Content-* headers, no credentials.
        let any = hop(&elsewhere, &format!("/landed/{code}/a{code}")).expect("followed");
        assert_eq!(any.method(), "POST", "{any:?}");
        assert_eq!(any.body, BODY, "{any:?}");
        assert_eq!(
            any.header("content-type").as_deref(),
            Some("application/json")
        );
        assert_eq!(any.header("authorization"), None, "{any:?}");
        assert!(!any.head.contains("s3cr3t-token"), "{any:?}");
        assert_eq!(status(&format!("cross-any-{code}")), Some(200.0));
    }
    assert_eq!(hop(&elsewhere, "/landed/302/p302").map(|s| s.line), None);
    assert_eq!(status("put-302"), Some(302.0));
    // Nothing else reached the other host; the body only where asked.
    let bodies = elsewhere
        .seen()
        .iter()
        .filter(|s| s.body.contains("b0dy"))
        .count();
    assert_eq!(bodies, 2, "{:?}", elsewhere.seen());
    assert_eq!(elsewhere.seen().len(), 5, "{:?}", elsewhere.seen());
}

#[test]
fn on_demand_redirects_are_rechecked_against_the_allowlist() {
    let (origin, elsewhere) = redirect_pair();
    let o = origin.base();
    let config = |allowed: &str| {
        format!(
            r#"probes:
  - {{ name: web, kind: http, url: "{o}/", follow_redirects: any, interval: 1h, headers: {{ Authorization: "{TOKEN}" }} }}
on_demand:
  allowed_targets: [{allowed}]
"#
        )
    };
    let success = |exp: &Exporter, path: &str| {
        let (status, _, body) = http_get(exp.addr, &format!("/probe?module=web&target={o}{path}"));
        assert_eq!(status, 200, "{body}");
        value(&body, "pathwatch_probe_success", &[("probe", "web")])
    };
    // The target is allowed; its redirect to 127.0.0.2 is not, and is never contacted.
    let exp = Exporter::start(&config(r#""http://127.0.0.1:*""#));
    assert_eq!(success(&exp, "/cross"), Some(0.0));
    assert!(elsewhere.seen().is_empty(), "{:?}", elsewhere.seen());
    // A hop inside the allowlist is followed.
    assert_eq!(success(&exp, "/hop"), Some(1.0));
    drop(exp);
    // With 127.0.0.2 allowed the same redirect is followed, without the module's header.
    let exp = Exporter::start(&config(r#""http://127.0.0.1:*", "http://127.0.0.2:*""#));
    assert_eq!(success(&exp, "/cross"), Some(1.0));
    let there = elsewhere.seen();
    assert_eq!(there.len(), 1, "{there:?}");
    assert_eq!(there[0].header("authorization"), None, "{there:?}");
}

#[test]
fn on_demand_targets_get_no_credentials_unless_the_module_opts_in() {
    let own = PasswordTrap::start();
    let foreign = PasswordTrap::start();
    let optin = PasswordTrap::start();
    let (origin, _elsewhere) = redirect_pair();
    let recorder = RecordingHttp::start("127.0.0.1", |_| ok("ok"));
    let exp = Exporter::start(&format!(
        r#"defaults: {{ interval: 1h, timeout: 5s }}
probes:
  - {{ name: pg, kind: postgres, host: 127.0.0.1, port: {own}, user: app, password: pg-s3cr3t, sslmode: disable }}
  - name: pg-open
    kind: postgres
    host: 127.0.0.1
    port: {own}
    password: pg-optin-s3cr3t
    sslmode: disable
    on_demand: {{ send_credentials: true }}
  - {{ name: web, kind: http, url: "{o}/", headers: {{ Authorization: "{TOKEN}" }} }}
on_demand:
  allowed_targets: ["127.0.0.1:*", "http://127.0.0.1:*"]
"#,
        own = own.port,
        o = origin.base(),
    ));
    exp.wait_first_run("pg", WAIT);
    exp.wait_first_run("pg-open", WAIT);
    let before = own.passwords().len();
    assert!(before >= 1, "the module's own server gets its password");

    // Another listener, chosen by the caller: it is contacted, and gets no password.
    let (status, _, body) = http_get(
        exp.addr,
        &format!("/probe?module=pg&target=127.0.0.1:{}", foreign.port),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(foreign.startups(), 1, "the trap was contacted");
    assert!(foreign.passwords().is_empty(), "{:?}", foreign.passwords());
    // The module's own address as a target keeps its credentials.
    http_get(
        exp.addr,
        &format!("/probe?module=pg&target=127.0.0.1:{}", own.port),
    );
    assert_eq!(own.passwords().len(), before + 1);
    assert_eq!(
        own.passwords().last().map(String::as_str),
        Some("pg-s3cr3t")
    );
    // A module that opts in sends its password anywhere allowed (blackbox_exporter style).
    http_get(
        exp.addr,
        &format!("/probe?module=pg-open&target=127.0.0.1:{}", optin.port),
    );
    assert_eq!(optin.passwords(), ["pg-optin-s3cr3t"]);

    // http modules: the configured headers stay with the module's origin.
    let (status, _, body) = http_get(
        exp.addr,
        &format!("/probe?module=web&target={}/x", recorder.base()),
    );
    assert_eq!(status, 200, "{body}");
    let seen = recorder.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].header("authorization"), None, "{seen:?}");
}

#[test]
fn on_demand_refuses_denied_networks_and_label_crossing_globs() {
    let exp = Exporter::start(
        r#"probes:
  - { name: t, kind: tcp, host: 127.0.0.1, port: 9, interval: 1h }
on_demand:
  allowed_targets: ["0.0.0.0/0:*", "[::/0]:*", "*.nip.io:*"]
"#,
    );
    for t in [
        "169.254.169.254:80",
        "[::ffff:169.254.169.254]:80",
        "[fe80::1]:80",
        "0.0.0.0:80",
        // `*` is one label: a name that spells an address does not match `*.nip.io`.
        "10.0.169.254.169.254.nip.io:80",
    ] {
        let (status, _, body) = http_get(exp.addr, &format!("/probe?module=t&target={t}"));
        assert_eq!(status, 403, "{t}: {body}");
    }
}

/// How many connections `count` holds once it reaches `want` or 10 s pass.
/// A probe's connect completes in the kernel's backlog, so its run can answer
/// before the listener thread's `accept` returns and counts it.
fn settled_count(count: &std::sync::atomic::AtomicUsize, want: usize) -> usize {
    use std::sync::atomic::Ordering;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let n = count.load(Ordering::SeqCst);
        if n >= want || std::time::Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A TCP listener on `ip` that counts the connections it accepts.
fn counting_listener(ip: &str) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let l = std::net::TcpListener::bind((ip, 0)).expect("bind a counting listener");
    let port = l.local_addr().expect("addr").port();
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for _conn in l.incoming().flatten() {
            c.fetch_add(1, Ordering::SeqCst);
        }
    });
    (port, count)
}

#[test]
fn numeric_hosts_are_addresses_to_the_allowlist() {
    use std::sync::atomic::Ordering;
    // 127.0.0.9 in every spelling an IPv4 parser reads (issue 34).
    let (port, accepted) = counting_listener("127.0.0.9");
    let spellings = [
        "2130706441",
        "0x7f000009",
        "017700000011",
        "127.9",
        "127.0.9",
        "0x7f.9",
        "0x7f.0.0.011",
        "127.0.0.9.",
        "[::ffff:127.0.0.9]",
    ];
    let config = |allowed: &str| {
        format!(
            r"probes:
  - {{ name: t, kind: tcp, host: 127.0.0.1, port: 9, interval: 1h }}
on_demand:
  allowed_targets: [{allowed}]
"
        )
    };
    let probe = |exp: &Exporter, target: &str| {
        let (status, _, body) = http_get(exp.addr, &format!("/probe?module=t&target={target}"));
        (status, body)
    };
    // A name pattern admits no address, in any spelling; nothing is contacted.
    let exp = Exporter::start(&config(&format!(r#""*:{port}""#)));
    for host in spellings.iter().chain(&["127.0.0.9"]) {
        let (status, body) = probe(&exp, &format!("{host}:{port}"));
        assert_eq!(status, 403, "{host}: {body}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
    // A host that ends in a number but is no address is refused, not resolved.
    for host in ["db.9", "1.2.3.4.5", "089", "4294967296"] {
        let (status, body) = probe(&exp, &format!("{host}:{port}"));
        assert_eq!(status, 400, "{host}: {body}");
    }
    drop(exp);
    // An address pattern admits every spelling, and the run reaches 127.0.0.9.
    let exp = Exporter::start(&config(&format!(r#""127.0.0.0/8:{port}""#)));
    for host in spellings {
        let (status, body) = probe(&exp, &format!("{host}:{port}"));
        assert_eq!(status, 200, "{host}: {body}");
        assert_eq!(
            value(&body, "pathwatch_probe_success", &[("probe", "t")]),
            Some(1.0),
            "{host}: {body}"
        );
    }
    // Counts the refused phase's connections too: one there would make this 10.
    assert_eq!(settled_count(&accepted, spellings.len()), spellings.len());
    drop(exp);
    // The metadata address and link-local ones are denied in every spelling, IPv6 too.
    let exp = Exporter::start(&config(r#""0.0.0.0/0:*", "[::/0]:*", "*:*""#));
    for target in [
        "2852039166:80",
        "0xa9fea9fe:80",
        "0251.0376.0251.0376:80",
        "169.254.43518:80",
        "[::169.254.169.254]:80",
        "[64:ff9b::a9fe:a9fe]:80",
        "[fe80::1%25lo]:80",
        "fe80::1%25lo:80",
    ] {
        let (status, body) = probe(&exp, target);
        assert_eq!(status, 403, "{target}: {body}");
    }
}

/// One GET with extra headers over HTTP/1.0: (status, body).
fn get_with(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    request(addr, "GET", path, headers)
}

/// One request over HTTP/1.0: (status, body).
fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send");
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

#[test]
fn absurd_scrape_timeouts_and_durations_never_panic() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // The longest schedule the config takes, with an incident whose staleness task must
    // keep running.
    let exp = Exporter::start(&format!(
        r"probes:
  - {{ name: slow, kind: tcp, host: 127.0.0.1, port: {port}, interval: 7d, timeout: 24h }}
incidents:
  - id: inc-1
    criteria:
      - {{ name: up, probe: slow, fresh: 2 }}
"
    ));
    exp.wait_first_run("slow", WAIT);
    for v in [
        "1e308",
        "1e20",
        "18446744073709551616",
        "NaN",
        "-1",
        "inf",
        "0",
        "x",
    ] {
        let (status, body) = get_with(
            exp.addr,
            "/probe?module=slow",
            &[("X-Prometheus-Scrape-Timeout-Seconds", v)],
        );
        assert_eq!(status, 200, "{v}: {body}");
        assert_eq!(
            value(&body, "pathwatch_probe_success", &[("probe", "slow")]),
            Some(1.0),
            "{v}: {body}"
        );
    }
    // Still serving, the incident still evaluated.
    let m = exp.metrics();
    assert!(m.contains("pathwatch_incident"), "{m}");
    assert!(!exp.logs().contains("panicked"), "{}", exp.logs());
    drop(listener);
}

/// A TCP target that accepts and closes every connection, for probes that must pass.
fn accepting_target() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a target");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || for _c in l.incoming() {});
    port
}

fn runs(m: &str, probe: &str, result: &str) -> f64 {
    crate::support::exporter::samples(m, "pathwatch_probe_runs_total")
        .into_iter()
        .filter(|s| {
            s.labels.get("probe").map(String::as_str) == Some(probe)
                && s.labels.get("result").map(String::as_str) == Some(result)
        })
        .map(|s| s.value)
        .sum()
}

#[test]
fn idle_sockets_under_a_low_fd_limit_starve_neither_scrapes_nor_probes() {
    let port = accepting_target();
    let exp = Exporter::start(&format!(
        "probes:\n  - {{ name: path, kind: tcp, host: 127.0.0.1, port: {port}, interval: 200ms, timeout: 2s }}\n"
    ));
    exp.wait_first_run("path", WAIT);
    // 256 descriptors for the whole process, then 300 clients that connect and say nothing.
    let limited = std::process::Command::new("prlimit")
        .args(["--pid", &exp.pid().to_string(), "--nofile=256:256"])
        .status()
        .expect("run prlimit");
    assert!(limited.success(), "prlimit");
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(std::net::TcpStream::connect(exp.addr).expect("an idle connection"));
    }
    std::thread::sleep(Duration::from_secs(1));
    let before = exp.metrics();
    // Keep the pressure on for a few probe runs, with a second wave of idle sockets.
    for _ in 0..300 {
        if let Ok(s) = std::net::TcpStream::connect(exp.addr) {
            idle.push(s);
        }
    }
    std::thread::sleep(Duration::from_secs(3));
    let after = exp.metrics();
    assert!(
        runs(&after, "path", "success") >= runs(&before, "path", "success") + 5.0,
        "probes kept running:\n{after}"
    );
    assert_eq!(
        runs(&after, "path", "failure"),
        0.0,
        "{after}\n{}",
        exp.logs()
    );
    assert!(
        !exp.logs().contains("Too many open files"),
        "{}",
        exp.logs()
    );
    drop(idle);
}

#[test]
fn a_fifo_config_is_refused_on_reload_and_the_process_keeps_serving() {
    let port = accepting_target();
    let exp = Exporter::start(&format!(
        "probes:\n  - {{ name: path, kind: tcp, host: 127.0.0.1, port: {port}, interval: 200ms }}\n"
    ));
    exp.wait_first_run("path", WAIT);
    let path = exp.config_path();
    std::fs::remove_file(&path).expect("remove the config");
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo");
    exp.signal("HUP");
    let deadline = std::time::Instant::now() + WAIT;
    while !exp.logs().contains("not a regular file") {
        assert!(std::time::Instant::now() < deadline, "{}", exp.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Still serving, still probing; a reload over HTTP gets the same refusal.
    assert_eq!(http_get(exp.addr, "/healthz").0, 200);
    let (status, body) = request(exp.addr, "POST", "/-/reload", &[]);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("not a regular file"), "{body}");
    let m = exp.metrics();
    let before = runs(&m, "path", "success");
    std::thread::sleep(Duration::from_secs(1));
    assert!(runs(&exp.metrics(), "path", "success") > before);
}

#[test]
fn wrong_passwords_cannot_starve_an_authorised_scrape() {
    use base64::Engine as _;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("pathwatch.yaml");
    std::fs::write(
        &config,
        "probes:\n  - { name: quiet, kind: tcp, host: 127.0.0.1, port: 1, interval: 1h }\n",
    )
    .expect("write config");
    // A realistic cost: each wrong password costs the server real CPU time.
    let hash = bcrypt::hash("right-password", 12).expect("hash");
    let web = dir.path().join("web.yml");
    std::fs::write(&web, format!("basic_auth_users:\n  prometheus: {hash}\n")).expect("write");
    let args = [
        "serve".to_string(),
        "--config".to_string(),
        config.display().to_string(),
        "--web-config".to_string(),
        web.display().to_string(),
    ];
    let exp = Exporter::start_command(&args, &[], dir);
    let basic = |pw: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("prometheus:{pw}"))
        )
    };
    let good = basic("right-password");
    assert_eq!(
        get_with(exp.addr, "/metrics", &[("Authorization", &good)]).0,
        200
    );

    // 300 different wrong passwords at once, then the scrape that knows its password.
    let done = Arc::new(AtomicUsize::new(0));
    let addr = exp.addr;
    let flood: Vec<_> = (0..300)
        .map(|i| {
            let (done, bad) = (done.clone(), basic(&format!("wrong-{i}")));
            std::thread::spawn(move || {
                let status = get_with(addr, "/metrics", &[("Authorization", &bad)]).0;
                done.fetch_add(1, Ordering::SeqCst);
                status
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let (status, body) = get_with(exp.addr, "/metrics", &[("Authorization", &good)]);
    let finished_by_then = done.load(Ordering::SeqCst);
    // Reported, not asserted (no timed assertions in tests): the issue's figure was 7.3 s.
    eprintln!(
        "authorised scrape during the flood: {:?}, {finished_by_then}/300 wrong ones answered by then",
        started.elapsed()
    );
    assert_eq!(status, 200, "{body}");
    let statuses: Vec<u16> = flood
        .into_iter()
        .map(|t| t.join().expect("flood"))
        .collect();
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    assert!(
        finished_by_then < 300,
        "the authorised scrape waited for every wrong password to be checked"
    );
}

#[test]
fn a_huge_value_found_is_cut_in_details_logs_and_status() {
    let big = format!("{{\"status\":\"{}\"}}", "x".repeat(10 << 20));
    let server = RecordingHttp::start("127.0.0.1", move |_| ok(&big));
    let exp = Exporter::start(&format!(
        r#"probes:
  - name: huge
    kind: http
    url: "{}/health"
    interval: 1h
    max_body_bytes: 16777216
    assert: [{{ json_pointer: /status, equals: healthy }}]
"#,
        server.base()
    ));
    exp.wait_reason("huge", "failure", "assertion");
    let (status, _, api) = http_get(exp.addr, "/api/status");
    assert_eq!(status, 200);
    assert!(api.len() < 64 << 10, "/api/status is {} bytes", api.len());
    assert!(
        api.contains("bytes)"),
        "the cut says how long the value was: {api}"
    );
    let logs = exp.logs();
    let longest = logs.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 4096, "a log line of {longest} bytes");
    let (_, _, page) = http_get(exp.addr, "/");
    assert!(
        page.len() < 256 << 10,
        "the status page is {} bytes",
        page.len()
    );
}

#[test]
fn secrets_never_leave_through_side_doors() {
    use crate::support::sim::{PASSWORD, Sim};
    // A server that echoes the key it was sent, and a URL with a password typed into host:.
    let echo = RecordingHttp::start("127.0.0.1", |_| ok(r#"{"status":"key-s1dedoor-123"}"#));
    let sim = Sim::start(pathwatch::sim::Faults::default());
    let yaml = format!(
        r#"defaults: {{ interval: 1h, timeout: 5s }}
probes:
  - name: echo
    kind: http
    url: "{}/health"
    headers: {{ X-Api-Key: key-s1dedoor-123 }}
    assert: [{{ json_pointer: /status, equals: healthy }}]
  - {{ name: typo, kind: postgres, host: "postgres://app:pw-s1dedoor@db.invalid", password: pg-s1dedoor }}
  - name: gp
    kind: golden_path
    login: {{ url: "{}", email: "user{{n}}@example.com", password: "${{SIM_PASSWORD}}" }}
    websocket: {{ url: "{}" }}
"#,
        echo.base(),
        sim.http("/auth/login"),
        sim.ws()
    );
    // Everything at trace level: the libraries' own request logs must still stay out.
    let exp = Exporter::start_with_env(&yaml, &[("SIM_PASSWORD", PASSWORD), ("RUST_LOG", "trace")]);
    exp.wait_reason("echo", "failure", "assertion");
    exp.wait_first_run("typo", WAIT);
    exp.wait_reason("gp", "success", "ok");
    let (_, _, api) = http_get(exp.addr, "/api/status");
    let (_, _, page) = http_get(exp.addr, "/");
    let logs = exp.logs();
    for (what, text) in [
        ("/api/status", &api),
        ("status page", &page),
        ("logs", &logs),
    ] {
        for secret in ["key-s1dedoor-123", "pw-s1dedoor", "pg-s1dedoor", PASSWORD] {
            assert!(!text.contains(secret), "{secret} in the {what}:\n{text}");
        }
    }
    // The echo is still reported, masked.
    assert!(api.contains("<redacted>"), "{api}");
    // No library logged a request at trace level (tungstenite's `Request: ...` carries the
    // upgrade with its token); their debug lines and everyone else's trace lines remain.
    let library_trace = |l: &&str| {
        l.contains("TRACE")
            && ["tungstenite", "hyper", "h2::", "reqwest"]
                .iter()
                .any(|c| l.contains(c))
    };
    assert_eq!(logs.lines().filter(library_trace).count(), 0, "{logs}");
    assert!(
        logs.contains("DEBUG tungstenite"),
        "trace level was on: {logs}"
    );
}

#[test]
fn a_hostile_metadata_server_cannot_panic_or_flood_a_gcp_probe() {
    // An endless lifetime, then an answer far larger than any token.
    let forever = RecordingHttp::start("127.0.0.1", |_| {
        ok(
            r#"{"access_token":"tok-from-forever","expires_in":18446744073709551615,"token_type":"Bearer"}"#,
        )
    });
    let huge = RecordingHttp::start("127.0.0.1", |_| {
        ok(&format!(
            r#"{{"access_token":"{}","expires_in":3600}}"#,
            "t".repeat(1 << 20)
        ))
    });
    let api = RecordingHttp::start("127.0.0.1", |_| ok("{}"));
    let probe = |name: &str, meta: &RecordingHttp| {
        format!(
            "  - name: {name}\n    kind: gcp_vpc_connector\n    project: p\n    region: r\n    connector: c\n    api_base: {}\n    credentials: {{ metadata_host: \"{}\" }}\n",
            api.base(),
            meta.addr
        )
    };
    let exp = Exporter::start(&format!(
        "defaults: {{ interval: 300ms, timeout: 3s }}\nprobes:\n{}{}",
        probe("forever", &forever),
        probe("huge", &huge)
    ));
    // Past the token, the fake API's empty answer fails the run: a protocol error, runs on.
    exp.wait_for(
        "pathwatch_probe_runs_total",
        &[("probe", "forever"), ("reason", "protocol")],
        WAIT,
        |v| v >= 3.0,
    );
    exp.wait_reason("huge", "failure", "credentials");
    let m = exp.metrics();
    for p in ["forever", "huge"] {
        assert_eq!(
            value(
                &m,
                "pathwatch_probe_runs_total",
                &[("probe", p), ("reason", "panic")]
            ),
            None,
            "{m}"
        );
    }
    // The token with the endless lifetime is fetched once, then served from the cache.
    assert_eq!(forever.seen().len(), 1, "{:?}", forever.seen());
    assert!(
        exp.logs().contains("more than 65536 bytes"),
        "{}",
        exp.logs()
    );
}

#[test]
fn a_fifo_as_a_log_file_fails_each_run_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("app.log");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo");
    let exp = Exporter::start(&format!(
        "probes:\n  - name: fifo-logs\n    kind: logs\n    interval: 200ms\n    timeout: 5s\n    patterns: {{ boom: \"boom\" }}\n    file: {{ path: \"{}\" }}\n",
        fifo.display()
    ));
    // Before: every run waited for a writer until its timeout, holding a thread.
    exp.wait_for(
        "pathwatch_probe_runs_total",
        &[("probe", "fifo-logs"), ("reason", "io")],
        WAIT,
        |v| v >= 3.0,
    );
    assert!(exp.logs().contains("not a regular file"), "{}", exp.logs());
}

// What was already right (issue 16's fault matrix), kept right.

#[test]
fn a_yaml_alias_bomb_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bomb.yaml");
    let mut y = String::from("a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n");
    let mut prev = 'a';
    for c in "bcdefghi".chars() {
        let refs = vec![format!("*{prev}"); 9].join(",");
        y.push_str(&format!("{c}: &{c} [{refs}]\n"));
        prev = c;
    }
    y.push_str("probes: *i\n");
    std::fs::write(&path, y).expect("write");
    let out = std::process::Command::new(crate::support::exporter::BIN)
        .arg("validate")
        .arg(&path)
        .output()
        .expect("run validate");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("budget breached"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A target that answers 200 with a body that never ends.
fn endless_server() -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = c.read(&mut buf);
                let _ = c.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
                let chunk = format!("10000\r\n{}\r\n", "z".repeat(0x10000));
                while c.write_all(chunk.as_bytes()).is_ok() {}
            });
        }
    });
    port
}

#[test]
fn endless_bodies_rapid_sighups_slow_clients_and_500_probe_calls_are_survived() {
    use std::io::{Read, Write};
    let endless = endless_server();
    let target = accepting_target();
    let exp = Exporter::start(&format!(
        r#"probes:
  - {{ name: endless, kind: http, url: "http://127.0.0.1:{endless}/", interval: 300ms, timeout: 5s }}
  - {{ name: path, kind: tcp, host: 127.0.0.1, port: {target}, interval: 300ms }}
on_demand:
  allowed_targets: ["127.0.0.1:*"]
"#
    ));
    // An endless body stops at the cap (1 MiB by default).
    exp.wait_reason("endless", "failure", "body_too_large");

    // 50 SIGHUPs in a row: every reload succeeds or is coalesced, the process keeps serving.
    for _ in 0..50 {
        exp.signal("HUP");
    }
    exp.wait_for("pathwatch_config_last_reload_successful", &[], WAIT, |v| {
        v == 1.0
    });
    assert_eq!(http_get(exp.addr, "/healthz").0, 200);

    // A slowloris client trickling header bytes is cut off; scrapes go on meanwhile.
    let mut slow = std::net::TcpStream::connect(exp.addr).expect("connect");
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .expect("send");
    let trickle = std::thread::spawn(move || {
        for _ in 0..30 {
            if slow.write_all(b"X-A: b\r\n").is_err() {
                return true;
            }
            std::thread::sleep(Duration::from_secs(1));
            slow.set_nonblocking(true).ok();
            let mut b = [0u8; 256];
            if slow.read(&mut b).is_ok() {
                return true;
            }
            slow.set_nonblocking(false).ok();
        }
        false
    });
    assert_eq!(http_get(exp.addr, "/metrics").0, 200);

    // 500 concurrent on-demand runs, every one answered.
    let addr = exp.addr;
    let calls: Vec<_> = (0..500)
        .map(|_| {
            // The status line is what counts: a reset after a whole answer is still an answer.
            std::thread::spawn(move || {
                get_with(
                    addr,
                    &format!("/probe?module=path&target=127.0.0.1:{target}"),
                    &[],
                )
                .0
            })
        })
        .collect();
    let statuses: Vec<u16> = calls.into_iter().map(|c| c.join().expect("call")).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(
        trickle.join().expect("slowloris"),
        "the slow client was never cut off"
    );
}

//! The `http` probe's credentials against real servers: `bearer_token_file` (read again when
//! rotated), a client certificate to a server that requires one (mTLS), Google ID tokens from
//! the metadata server, and OAuth2 client credentials from a token endpoint. Each goes to the
//! configured origin only, and no token shows on /metrics, /api/status, the status page or
//! the logs, even when the target echoes it.

use crate::support::auth_server::{AuthServer, CLIENT_ID, CLIENT_SECRET};
use crate::support::exporter::{Exporter, value};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// The bearer tokens among (path, Authorization) pairs a server saw.
pub(crate) fn bearer_tokens(seen: Vec<(String, Option<String>)>) -> Vec<String> {
    seen.into_iter()
        .filter_map(|(_, a)| a)
        .map(|a| a.trim_start_matches("Bearer ").to_string())
        .collect()
}

pub(crate) fn wait_ok(exp: &Exporter, probe: &str) {
    exp.wait_for("pathwatch_probe_success", &[("probe", probe)], WAIT, |v| {
        v == 1.0
    });
}

fn runs(exp: &Exporter, probe: &str, result: &str) -> f64 {
    crate::support::exporter::samples(&exp.metrics(), "pathwatch_probe_runs_total")
        .iter()
        .filter(|s| s.labels.get("probe").map(String::as_str) == Some(probe))
        .filter(|s| s.labels.get("result").map(String::as_str) == Some(result))
        .map(|s| s.value)
        .sum()
}

/// Every text a user or a scraper sees: none may hold any of `secrets` (also golden_auth.rs).
pub(crate) fn assert_nowhere(exp: &Exporter, secrets: &[&str]) {
    let (_, _, api) = exp.get("/api/status");
    let (_, _, page) = exp.get("/");
    let texts = [
        ("/metrics", exp.metrics()),
        ("/api/status", api),
        ("/", page),
        ("logs", exp.logs()),
    ];
    for (what, text) in &texts {
        for s in secrets {
            assert!(!text.contains(s), "{what} shows {s}:\n{text}");
        }
    }
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn bearer_token_file_goes_to_its_origin_is_reread_when_rotated_and_never_shows() {
    let own = AuthServer::start();
    let other = AuthServer::start();
    own.redirect_away_to(&other.url("/protected"));
    let first = "file-token-first-7Hq2Lx";
    let second = "file-token-second-9Zp4Wm";
    own.allow_bearer(first);
    other.allow_bearer(first);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{first}\n")).unwrap();
    let yaml = format!(
        r#"defaults: {{ interval: 1s, timeout: 3s }}
probes:
  - {{ name: bearer, kind: http, url: "{protected}", bearer_token_file: "{file}" }}
  - name: bearer-away
    kind: http
    url: "{away}"
    bearer_token_file: "{file}"
    follow_redirects: any
    valid_status: [401]
  - name: echo
    kind: http
    url: "{protected}"
    bearer_token_file: "{file}"
    assert: [{{ json_pointer: /auth, equals: nothing }}]
"#,
        protected = own.url("/protected"),
        away = own.url("/away"),
        file = file.display(),
    );
    let exp = Exporter::start(&yaml);
    wait_ok(&exp, "bearer");
    wait_ok(&exp, "bearer-away");
    exp.wait_reason("echo", "failure", "assertion");
    // The redirect to another origin went without the token, though that origin would
    // have taken it.
    let away = other.seen();
    assert!(
        !away.is_empty() && away.iter().all(|(_, a)| a.is_none()),
        "{away:?}"
    );
    assert!(
        own.seen()
            .iter()
            .any(|(p, a)| p == "/away" && a.as_deref() == Some(&format!("Bearer {first}"))),
        "{:?}",
        own.seen()
    );

    // Rotated: the next run sends the new token, without a reload.
    own.revoke_all();
    own.allow_bearer(second);
    std::fs::write(&file, format!("{second}\n")).unwrap();
    let want = format!("Bearer {second}");
    wait_until("the rotated token", || {
        own.seen().iter().any(|(_, a)| a.as_deref() == Some(&want))
    });
    let before = runs(&exp, "bearer", "success");
    exp.wait_for(
        "pathwatch_probe_runs_total",
        &[("probe", "bearer"), ("result", "success")],
        WAIT,
        |v| v >= before + 2.0,
    );
    // The echoed token is masked in the assertion's failure text.
    let logs = exp.logs();
    assert!(logs.contains("/auth is \"Bearer <redacted>\""), "{logs}");
    assert_nowhere(&exp, &[first, second]);
}

#[test]
fn a_client_certificate_opens_a_server_that_requires_one() {
    let s = crate::support::mtls::start();
    let port = s.addr.port();
    let ca = s.certs.ca_cert.display();
    let (cert, key) = (s.client_cert.display(), s.client_key.display());
    let (scert, skey) = (s.stranger_cert.display(), s.stranger_key.display());
    let yaml = format!(
        r#"defaults: {{ interval: 1s, timeout: 3s }}
probes:
  - {{ name: with-cert, kind: http, url: "https://localhost:{port}/health", ca_file: "{ca}", cert_file: "{cert}", key_file: "{key}", assert: [{{ json_pointer: /status, equals: healthy }}] }}
  - {{ name: without-cert, kind: http, url: "https://localhost:{port}/health", ca_file: "{ca}" }}
  - {{ name: wrong-ca-cert, kind: http, url: "https://localhost:{port}/health", ca_file: "{ca}", cert_file: "{scert}", key_file: "{skey}" }}
"#
    );
    let exp = Exporter::start(&yaml);
    wait_ok(&exp, "with-cert");
    exp.wait_reason("without-cert", "failure", "tls");
    exp.wait_reason("wrong-ca-cert", "failure", "tls");
    let m = exp.metrics();
    assert_eq!(
        value(&m, "pathwatch_http_status_code", &[("probe", "with-cert")]),
        Some(200.0)
    );
}

#[test]
fn google_id_tokens_come_from_the_metadata_server_once_per_lifetime() {
    let meta = AuthServer::start();
    let audience = format!("https://{}", "svc-abc123-uc.a.run.app");
    let yaml = format!(
        r#"defaults: {{ interval: 1s, timeout: 3s }}
probes:
  - name: cloud-run
    kind: http
    url: "{protected}"
    google_id_token: {{ audience: "{audience}" }}
  - name: echo
    kind: http
    url: "{protected}"
    google_id_token: {{ audience: "{audience}" }}
    assert: [{{ json_pointer: /auth, equals: nothing }}]
"#,
        protected = meta.url("/protected"),
    );
    let host = meta.addr.to_string();
    let exp = Exporter::start_with_env(&yaml, &[("GCE_METADATA_HOST", &host)]);
    wait_ok(&exp, "cloud-run");
    exp.wait_reason("echo", "failure", "assertion");
    exp.wait_for(
        "pathwatch_probe_runs_total",
        &[("probe", "cloud-run"), ("result", "success")],
        WAIT,
        |v| v >= 3.0,
    );
    // One token per probe, cached over its runs.
    let asked = meta.identity_requests();
    assert_eq!(asked, [audience.clone(), audience.clone()], "{asked:?}");
    let tokens = bearer_tokens(meta.seen());
    assert!(
        tokens.iter().all(|t| t.split('.').count() == 3),
        "{tokens:?}"
    );
    let logs = exp.logs();
    assert!(logs.contains("/auth is \"Bearer <redacted>\""), "{logs}");
    let secrets: Vec<&str> = tokens.iter().map(String::as_str).collect();
    assert_nowhere(&exp, &secrets);
}

#[test]
fn oauth2_client_credentials_are_fetched_cached_and_kept_out_of_sight() {
    let s = AuthServer::start();
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("client-secret");
    std::fs::write(&secret_file, format!("{CLIENT_SECRET}\n")).unwrap();
    let yaml = format!(
        r#"defaults: {{ interval: 1s, timeout: 3s }}
probes:
  - name: basic
    kind: http
    url: "{protected}"
    oauth2:
      client_id: {CLIENT_ID}
      client_secret_file: "{secret_file}"
      token_url: "{token_url}"
      scopes: [read, "probe:run"]
      endpoint_params: {{ audience: "https://api.internal" }}
  - name: in-body
    kind: http
    url: "{protected}"
    oauth2:
      client_id: {CLIENT_ID}
      client_secret: {CLIENT_SECRET}
      token_url: "{token_url}"
      client_auth: body
    assert: [{{ json_pointer: /auth, equals: nothing }}]
  - name: wrong-secret
    kind: http
    url: "{protected}"
    oauth2: {{ client_id: {CLIENT_ID}, client_secret: not-the-secret, token_url: "{token_url}" }}
"#,
        protected = s.url("/protected"),
        token_url = s.url("/oauth/token"),
        secret_file = secret_file.display(),
    );
    let exp = Exporter::start(&yaml);
    wait_ok(&exp, "basic");
    exp.wait_reason("in-body", "failure", "assertion");
    exp.wait_reason("wrong-secret", "failure", "credentials");
    exp.wait_for(
        "pathwatch_probe_runs_total",
        &[("probe", "basic"), ("result", "success")],
        WAIT,
        |v| v >= 3.0,
    );
    let reqs = s.token_requests();
    // Cached: one token request each for the two that got a token; the refused one asks
    // again at every run.
    let basic = reqs.iter().filter(|(f, _)| f.contains_key("scope")).count();
    let in_body = reqs
        .iter()
        .filter(|(f, _)| f.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET))
        .count();
    assert_eq!((basic, in_body), (1, 1), "{reqs:?}");
    let (form, auth) = reqs
        .iter()
        .find(|(f, _)| f.contains_key("scope"))
        .expect("the basic probe's request");
    assert_eq!(
        form.get("grant_type").map(String::as_str),
        Some("client_credentials")
    );
    assert_eq!(
        form.get("scope").map(String::as_str),
        Some("read probe:run")
    );
    assert_eq!(
        form.get("audience").map(String::as_str),
        Some("https://api.internal")
    );
    assert!(auth.as_deref().is_some_and(|a| a.starts_with("Basic ")));
    let logs = exp.logs();
    assert!(
        logs.contains("oauth2 token endpoint answered 401"),
        "{logs}"
    );
    assert!(logs.contains("/auth is \"Bearer <redacted>\""), "{logs}");
    assert_nowhere(
        &exp,
        &[CLIENT_SECRET, "oauth-access-tok-", "not-the-secret"],
    );
}

/// A plain HTTP server on `bind` (`127.0.0.1:0` or `[::1]:0`) answering 200 to everything,
/// on a thread of its own for the rest of the test process.
fn plain_server(bind: &str) -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind(bind).expect("bind a plain server");
    let addr = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    addr
}

#[test]
fn ip_protocol_prefers_a_family_and_falls_back_only_when_told() {
    let v4 = plain_server("127.0.0.1:0").port();
    let v6 = plain_server("[::1]:0").port();
    // `localhost` has only 127.0.0.1 here (checked: a v6 answer would make the
    // no-fallback case pass for the wrong reason).
    let yaml = format!(
        r#"defaults: {{ interval: 1s, timeout: 3s }}
probes:
  - {{ name: v6-pref-v4-only, kind: http, url: "http://localhost:{v4}/", ip_protocol: ip6 }}
  - {{ name: v6-only-v4-only, kind: http, url: "http://localhost:{v4}/", ip_protocol: ip6, ip_protocol_fallback: false }}
  - {{ name: v4-only-v4, kind: http, url: "http://localhost:{v4}/", ip_protocol: ip4, ip_protocol_fallback: false }}
  - {{ name: v6-only-v6, kind: http, url: "http://[::1]:{v6}/", ip_protocol: ip6, ip_protocol_fallback: false }}
  - {{ name: v4-pref-v6-only, kind: http, url: "http://[::1]:{v6}/", ip_protocol: ip4 }}
  - {{ name: v4-only-v6-only, kind: http, url: "http://[::1]:{v6}/", ip_protocol: ip4, ip_protocol_fallback: false }}
"#
    );
    let localhost_v6 = std::net::ToSocketAddrs::to_socket_addrs(&("localhost", v4))
        .expect("resolve localhost")
        .any(|a| a.is_ipv6());
    let exp = Exporter::start(&yaml);
    for ok in [
        "v6-pref-v4-only",
        "v4-only-v4",
        "v6-only-v6",
        "v4-pref-v6-only",
    ] {
        wait_ok(&exp, ok);
    }
    exp.wait_reason("v4-only-v6-only", "failure", "dns");
    if !localhost_v6 {
        exp.wait_reason("v6-only-v4-only", "failure", "dns");
        assert!(exp.logs().contains("has no IPv6 address"), "{}", exp.logs());
    }
}

#[test]
fn a_proxy_tunnels_https_forwards_http_and_keeps_its_password_out_of_sight() {
    let open = crate::support::proxy::start(None);
    let guarded = crate::support::proxy::start(Some("probe:proxy-pa55-wq7"));
    let tls = crate::support::tls_target::start();
    let ca = tls.certs.ca_cert.display();
    let port = tls.addr.port();
    let service = AuthServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "proxied-token-4Rt8").unwrap();
    service.allow_bearer("proxied-token-4Rt8");
    let (p1, p2) = (open.addr, guarded.addr);
    let yaml = format!(
        r#"defaults: {{ interval: 1s, timeout: 3s }}
probes:
  - {{ name: tunnel, kind: http, url: "https://localhost:{port}/health", ca_file: "{ca}", proxy_url: "http://{p1}" }}
  - {{ name: forward, kind: http, url: "{protected}", bearer_token_file: "{file}", proxy_url: "http://{p1}" }}
  - {{ name: with-password, kind: http, url: "https://localhost:{port}/health", ca_file: "{ca}", proxy_url: "http://probe:proxy-pa55-wq7@{p2}" }}
  - {{ name: without-password, kind: http, url: "https://localhost:{port}/health", ca_file: "{ca}", proxy_url: "http://{p2}" }}
"#,
        protected = service.url("/protected"),
        file = file.display(),
    );
    let exp = Exporter::start(&yaml);
    for ok in ["tunnel", "forward", "with-password"] {
        wait_ok(&exp, ok);
    }
    exp.wait_reason("without-password", "failure", "auth");
    let seen = open.seen();
    assert!(
        seen.iter()
            .any(|l| l == &format!("CONNECT localhost:{port} HTTP/1.1")),
        "{seen:?}"
    );
    let forwarded = format!("GET {} HTTP/1.1", service.url("/protected"));
    assert!(seen.contains(&forwarded), "{seen:?}");
    // Through the tunnel, the TLS phase is still the target's own.
    let m = exp.metrics();
    assert_eq!(
        crate::support::exporter::phases(&m, "tunnel"),
        ["connect", "processing", "resolve", "tls", "transfer"]
    );
    assert_nowhere(&exp, &["proxy-pa55-wq7", "proxied-token-4Rt8"]);
}

#[test]
fn an_on_demand_target_elsewhere_gets_no_token_the_modules_own_origin_does() {
    let own = AuthServer::start();
    let other = AuthServer::start();
    own.allow_bearer("module-token-Kd93");
    other.allow_bearer("module-token-Kd93");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "module-token-Kd93").unwrap();
    let yaml = format!(
        r#"on_demand:
  allowed_targets: ["http://127.0.0.1:*"]
probes:
  - {{ name: api, kind: http, url: "{own_url}", bearer_token_file: "{file}", interval: 1h }}
"#,
        own_url = own.url("/protected"),
        file = file.display(),
    );
    let exp = Exporter::start(&yaml);
    let target = other.url("/protected");
    let (status, _, body) = exp.get(&format!("/probe?module=api&target={target}"));
    assert_eq!(status, 200, "{body}");
    let success = |b: &str| value(b, "pathwatch_probe_success", &[("probe", "api")]);
    assert_eq!(success(&body), Some(0.0), "{body}");
    assert_eq!(other.seen(), [("/protected".to_string(), None)]);
    let (_, _, body) = exp.get(&format!(
        "/probe?module=api&target={}",
        own.url("/protected")
    ));
    assert_eq!(success(&body), Some(1.0), "{body}");
    assert!(
        own.seen()
            .iter()
            .all(|(_, a)| a.as_deref() == Some("Bearer module-token-Kd93")),
        "{:?}",
        own.seen()
    );
}

#[test]
fn golden_path_presents_its_client_certificate_to_the_websocket() {
    let s = crate::support::mtls::start();
    let port = s.addr.port();
    let ca = s.certs.ca_cert.display();
    let (cert, key) = (s.client_cert.display(), s.client_key.display());
    // The server speaks TLS with client certificates but not WebSocket: with the certificate
    // the run gets past TLS and fails at the upgrade (the server answers 200, not 101);
    // without it, TLS 1.3's refusal arrives at the upgrade's first read, which the WebSocket
    // step reports as `io` (golden/ws.rs does not single out TLS alerts yet).
    let yaml = format!(
        r#"defaults: {{ interval: 1s, timeout: 3s }}
probes:
  - {{ name: gp-cert, kind: golden_path, token: golden-token-123, ca_file: "{ca}", cert_file: "{cert}", key_file: "{key}", websocket: {{ url: "wss://localhost:{port}/ws" }} }}
  - {{ name: gp-bare, kind: golden_path, token: golden-token-123, ca_file: "{ca}", websocket: {{ url: "wss://localhost:{port}/ws" }} }}
"#
    );
    let exp = Exporter::start(&yaml);
    exp.wait_reason("gp-cert", "failure", "http_status");
    exp.wait_reason("gp-bare", "failure", "io");
    let m = exp.metrics();
    let bare_past_tls = value(
        &m,
        "pathwatch_probe_runs_total",
        &[("probe", "gp-bare"), ("reason", "http_status")],
    );
    assert!(bare_past_tls.unwrap_or(0.0) == 0.0, "{m}");
}

//! The `golden_path` probe's HTTP client settings, shared with `http`, against real servers:
//! a gateway in front of the reference service that wants a credential (as Cloud Run, IAP or
//! an API gateway do) gets it from `bearer_token_file`, the metadata server's ID tokens or an
//! OAuth2 token endpoint, at the login and the WebSocket upgrade of its own origin only; a
//! proxy carries the login and tunnels the WebSocket; `ip_protocol` orders the addresses of
//! both. No credential shows on /metrics, /api/status, the status page or the logs.

use crate::http_auth::{assert_nowhere, bearer_tokens, wait_ok};
use crate::support::auth_server::{AuthServer, CLIENT_ID, CLIENT_SECRET};
use crate::support::exporter::Exporter;
use crate::support::gateway;
use crate::support::sim::{PASSWORD, Sim};
use pathwatch::sim::Faults;
use std::sync::Arc;

/// A golden_path probe entry (flow style) logging in at `login` and opening `ws`, with
/// `extra` keys.
fn probe(name: &str, login: &str, ws: &str, extra: &str) -> String {
    format!(
        "  - {{ name: {name}, kind: golden_path, login: {{ url: \"{login}\", email: \"u{{n}}@example.com\", password: \"${{SIM_PASSWORD}}\" }}, websocket: {{ url: \"{ws}\" }}{extra} }}\n"
    )
}

fn start(probes: &[String], env: &[(&str, &str)]) -> Exporter {
    let yaml = format!(
        "defaults: {{ interval: 1s, timeout: 5s }}\nprobes:\n{}",
        probes.concat()
    );
    let mut env = env.to_vec();
    env.push(("SIM_PASSWORD", PASSWORD));
    Exporter::start_with_env(&yaml, &env)
}

/// Whether the gateway saw a request starting with `line` that carried `auth`.
fn saw(gw: &gateway::Gateway, line: &str, auth: Option<&str>) -> bool {
    gw.seen()
        .iter()
        .any(|(l, a)| l.starts_with(line) && a.as_deref() == auth)
}

#[test]
fn a_bearer_token_file_opens_the_gateway_of_the_websockets_origin_only() {
    let sim = Sim::start(Faults::default());
    let auth = AuthServer::start();
    let token = "gateway-token-5Vb7Qe";
    auth.allow_bearer(token);
    let gw = gateway::start(sim.addr, auth.gate());
    // A login on another origin (an open gateway to the same service) must not get it.
    let elsewhere = gateway::start(sim.addr, Arc::new(|_: Option<&str>| true));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let with = format!(", bearer_token_file: \"{}\"", file.display());
    let login = gw.http("/auth/login");
    let exp = start(
        &[
            probe("gp", &login, &gw.ws(), &with),
            probe(
                "gp-login-elsewhere",
                &elsewhere.http("/auth/login"),
                &gw.ws(),
                &with,
            ),
            probe("gp-without", &login, &gw.ws(), ""),
        ],
        &[],
    );
    wait_ok(&exp, "gp");
    wait_ok(&exp, "gp-login-elsewhere");
    exp.wait_reason("gp-without", "failure", "auth");
    let bearer = format!("Bearer {token}");
    assert!(
        saw(&gw, "POST /auth/login ", Some(&bearer)),
        "{:?}",
        gw.seen()
    );
    assert!(saw(&gw, "GET /ws", Some(&bearer)), "{:?}", gw.seen());
    let away = elsewhere.seen();
    assert!(
        !away.is_empty() && away.iter().all(|(_, a)| a.is_none()),
        "{away:?}"
    );
    assert_nowhere(&exp, &[token]);
}

#[test]
fn id_tokens_and_oauth2_tokens_open_the_gateway_and_stay_out_of_sight() {
    let sim = Sim::start(Faults::default());
    // One server is the metadata server, the token endpoint and the gateway's judge.
    let auth = AuthServer::start();
    let gw = gateway::start(sim.addr, auth.gate());
    let audience = "https://chat-abc123-uc.a.run.app";
    let (login, ws) = (gw.http("/auth/login"), gw.ws());
    let exp = start(
        &[
            probe(
                "gp-id",
                &login,
                &ws,
                &format!(", google_id_token: {{ audience: \"{audience}\" }}"),
            ),
            probe(
                "gp-oauth",
                &login,
                &ws,
                &format!(
                    ", oauth2: {{ client_id: {CLIENT_ID}, client_secret: {CLIENT_SECRET}, token_url: \"{}\", scopes: [chat] }}",
                    auth.url("/oauth/token")
                ),
            ),
        ],
        &[("GCE_METADATA_HOST", &auth.addr.to_string())],
    );
    wait_ok(&exp, "gp-id");
    wait_ok(&exp, "gp-oauth");
    exp.wait_for(
        "pathwatch_probe_runs_total",
        &[("probe", "gp-oauth"), ("result", "success")],
        std::time::Duration::from_secs(20),
        |v| v >= 2.0,
    );
    // Cached over runs: one of each.
    assert_eq!(auth.identity_requests(), [audience.to_string()]);
    assert_eq!(
        auth.token_requests().len(),
        1,
        "{:?}",
        auth.token_requests()
    );
    let tokens = bearer_tokens(gw.seen());
    assert!(
        tokens.iter().any(|t| t.split('.').count() == 3),
        "{tokens:?}"
    );
    assert!(
        tokens.iter().any(|t| t.starts_with("oauth-access-tok-")),
        "{tokens:?}"
    );
    let mut secrets: Vec<&str> = tokens.iter().map(String::as_str).collect();
    secrets.push(CLIENT_SECRET);
    assert_nowhere(&exp, &secrets);
}

#[test]
fn a_proxy_carries_the_login_and_tunnels_the_websocket() {
    let sim = Sim::start(Faults::default());
    let open = crate::support::proxy::start(None);
    let guarded = crate::support::proxy::start(Some("probe:gp-proxy-pa55-k2"));
    let (p1, p2) = (open.addr, guarded.addr);
    let (login, ws) = (sim.http("/auth/login"), sim.ws());
    let exp = start(
        &[
            probe(
                "gp-open",
                &login,
                &ws,
                &format!(", proxy_url: \"http://{p1}\""),
            ),
            probe(
                "gp-password",
                &login,
                &ws,
                &format!(", proxy_url: \"http://probe:gp-proxy-pa55-k2@{p2}\""),
            ),
            probe(
                "gp-no-password",
                &login,
                &ws,
                &format!(", proxy_url: \"http://{p2}\""),
            ),
        ],
        &[],
    );
    wait_ok(&exp, "gp-open");
    wait_ok(&exp, "gp-password");
    // The guarded proxy answers the login's request 407.
    exp.wait_reason("gp-no-password", "failure", "http_status");
    let seen = open.seen();
    assert!(seen.contains(&format!("POST {login} HTTP/1.1")), "{seen:?}");
    assert!(
        seen.contains(&format!("CONNECT {} HTTP/1.1", sim.addr)),
        "{seen:?}"
    );
    assert_nowhere(&exp, &["gp-proxy-pa55-k2"]);
}

#[test]
fn ip_protocol_orders_the_login_and_websocket_addresses() {
    let sim = Sim::start(Faults::default());
    let port = sim.addr.port();
    let login = format!("http://localhost:{port}/auth/login");
    let ws = format!("ws://localhost:{port}/ws");
    let localhost_v6 = std::net::ToSocketAddrs::to_socket_addrs(&("localhost", port))
        .expect("resolve localhost")
        .any(|a| a.is_ipv6());
    // The sim listens on 127.0.0.1 only: preferring IPv6 falls back to it.
    let token_only = |name: &str, extra: &str| {
        format!(
            "  - {{ name: {name}, kind: golden_path, token: not-a-session-token, websocket: {{ url: \"{ws}\" }}{extra} }}\n"
        )
    };
    let exp = start(
        &[
            probe("gp-v6-first", &login, &ws, ", ip_protocol: ip6"),
            probe(
                "gp-v4-only",
                &login,
                &ws,
                ", ip_protocol: ip4, ip_protocol_fallback: false",
            ),
            probe(
                "gp-v6-only",
                &login,
                &ws,
                ", ip_protocol: ip6, ip_protocol_fallback: false",
            ),
            token_only(
                "ws-v6-only",
                ", ip_protocol: ip6, ip_protocol_fallback: false",
            ),
            // Past the connect: the sim refuses the made-up session token at the upgrade.
            token_only("ws-v6-first", ", ip_protocol: ip6"),
        ],
        &[],
    );
    wait_ok(&exp, "gp-v6-first");
    wait_ok(&exp, "gp-v4-only");
    exp.wait_reason("ws-v6-first", "failure", "auth");
    if !localhost_v6 {
        exp.wait_reason("ws-v6-only", "failure", "dns");
        exp.wait_reason("gp-v6-only", "failure", "io");
        let logs = exp.logs();
        assert!(logs.contains("has no IPv6 address"), "{logs}");
    }
}

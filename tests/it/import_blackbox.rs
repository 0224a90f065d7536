//! `pathwatch import blackbox`: blackbox_exporter's own example config (fetched from its
//! repository, tests/fixtures/blackbox/example.yml) becomes a config `pathwatch validate`
//! accepts, with specific conversions checked and every field left behind named with its
//! line; exit 0 when nothing is left behind, 1 when something is, 2 for an unusable file.

use crate::support::certs;
use crate::support::exporter::BIN;
use std::path::Path;
use std::process::{Command, Stdio};

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/blackbox/example.yml"
);

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    run_with_env(args, &[])
}

fn run_with_env(args: &[&str], env: &[(String, String)]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .expect("run pathwatch");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn import(file: &Path) -> (Option<i32>, String, String) {
    run(&["import", "blackbox", file.to_str().expect("utf-8 path")])
}

/// The `${BLACKBOX_...}` variables a converted config reads, each set to a made-up value (a
/// base64 one: basic auth's is the base64 of `user:password`).
fn secret_env(yaml: &str) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = yaml
        .split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}'))
        .map(|(name, _)| (name.to_string(), "c2VjcmV0OnZhbHVl".to_string()))
        .collect();
    vars.dedup();
    vars
}

/// The converted probe entry named `name`: its lines, up to the next entry.
fn entry<'a>(yaml: &'a str, name: &str) -> Vec<&'a str> {
    let start = format!("  - name: \"{name}\"");
    let mut lines = yaml.lines().skip_while(|l| *l != start);
    let mut out: Vec<&str> = lines.next().into_iter().collect();
    out.extend(lines.take_while(|l| l.starts_with("    ")).map(str::trim));
    assert!(!out.is_empty(), "no entry {name} in\n{yaml}");
    out
}

#[test]
fn the_example_config_converts_into_a_valid_config() {
    let (code, stdout, stderr) = import(Path::new(EXAMPLE));
    assert_eq!(code, Some(1), "fields are left behind:\n{stderr}");
    assert!(
        stderr.ends_with("example.yml: 24 modules converted, 29 fields left behind\n"),
        "{stderr}"
    );
    // `validate` opens the files a config names: the fixture's CA file is
    // blackbox's example path, so point it at a CA that exists.
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = certs::generate(dir.path()).ca_cert;
    assert!(stdout.contains("\"/certs/my_cert.crt\""), "{stdout}");
    let converted = stdout.replace("/certs/my_cert.crt", ca.to_str().expect("utf-8"));
    let file = dir.path().join("converted.yaml");
    std::fs::write(&file, &converted).expect("write");
    // The secrets the file held inline are variables now: set, the config is valid.
    let env = secret_env(&converted);
    assert_eq!(env.len(), 2, "{converted}");
    let (code, out, err) = run_with_env(&["validate", file.to_str().expect("utf-8")], &env);
    assert_eq!(code, Some(0), "{out}{err}\n{converted}");
    assert!(out.contains("OK (24 probes)"), "{out}");
}

#[test]
fn the_example_modules_keep_their_settings() {
    let (_, yaml, stderr) = import(Path::new(EXAMPLE));
    assert!(yaml.contains("on_demand:\n"), "{yaml}");
    assert_eq!(
        entry(&yaml, "http_2xx_example"),
        [
            "  - name: \"http_2xx_example\"",
            "kind: http",
            "url: \"http://target.invalid/\"",
            "method: \"GET\"",
            "insecure_skip_verify: false",
            "ip_protocol: ip4",
            "ip_protocol_fallback: false",
            // valid_status_codes: [] is blackbox's 2xx, not pathwatch's 200-399.
            "valid_status: [\"200-299\"]",
            "follow_redirects: any",
            "headers: { \"Host\": \"vhost.example.com\", \"Origin\": \"example.com\", \"Accept-Language\": \"en-US\" }",
            "assert: [{ \"not_regex\": \"Could not connect to database\" }, { \"regex\": \"Download the latest version here\" }]",
            "timeout: 5s",
        ],
        "{stderr}"
    );
    let oauth = entry(&yaml, "http_2xx_oauth_client_credentials");
    assert!(oauth.contains(&"valid_status: [200, 201]"), "{oauth:?}");
    assert!(
        oauth.contains(&"oauth2: { \"client_id\": \"client_id\", \"client_secret\": \"${BLACKBOX_HTTP_2XX_OAUTH_CLIENT_CREDENTIALS_OAUTH2_CLIENT_SECRET}\", \"token_url\": \"https://api.example.com/token\" }"),
        "grant_type client_credentials is pathwatch's own: {oauth:?}"
    );
    let post = entry(&yaml, "http_post_2xx");
    assert!(post.contains(&"method: \"POST\""), "{post:?}");
    assert!(post.contains(&"body: \"{}\""), "{post:?}");
    assert_eq!(
        entry(&yaml, "tcp_connect_example")[1..],
        [
            "kind: tcp",
            "host: \"target.invalid\"",
            "port: 1",
            "timeout: 5s"
        ]
    );
    assert_eq!(
        entry(&yaml, "icmp_example")[1..],
        [
            "kind: icmp",
            "host: \"target.invalid\"",
            "ip_protocol: ip4",
            "timeout: 5s"
        ]
    );
    let dns = entry(&yaml, "dns_udp_example");
    for line in [
        "server: \"target.invalid:53\"",
        "query_name: \"www.prometheus.io\"",
        "query_type: A",
        "valid_rcodes: [NOERROR]",
        "validate_answer_rrs: { \"fail_if_matches_regexp\": [\".*127.0.0.1\"], \"fail_if_all_match_regexp\": [\".*127.0.0.1\"], \"fail_if_not_matches_regexp\": [\"www.prometheus.io.\\t300\\tIN\\tA\\t127.0.0.1\"], \"fail_if_none_matches_regexp\": [\"127.0.0.1\"] }",
        "validate_authority_rrs: { \"fail_if_matches_regexp\": [\".*127.0.0.1\"] }",
    ] {
        assert!(dns.contains(&line), "{line} not in {dns:?}");
    }
    assert!(entry(&yaml, "dns_tcp_example").contains(&"transport: tcp"));
    // The other probers are left out.
    assert!(
        !yaml.contains("unix_socket_ping") && !yaml.contains("websocket"),
        "{yaml}"
    );
}

#[test]
fn every_field_left_behind_is_named_with_its_line() {
    let (_, _, stderr) = import(Path::new(EXAMPLE));
    let f = EXAMPLE;
    let expected = [
        "9:7: module \"http_2xx_example\": field \"http.valid_http_versions\"",
        "26:7: module \"http_2xx_example\": field \"http.fail_if_header_matches\"",
        "30:7: module \"http_2xx_example\": field \"http.fail_if_header_not_matches\"",
        "46:7: module \"http_with_proxy_and_headers\": field \"http.proxy_connect_header\"",
        "62:7: module \"http_post_body_file\": field \"http.body_file\"",
        "70:7: module \"http_basic_auth_example\": field \"http.basic_auth\" needs a secret: set BLACKBOX_HTTP_BASIC_AUTH_EXAMPLE_BASIC_AUTH to the base64 of \"username:<password>\" (the value in the file is not copied)",
        "78:7: module \"http_json_cel_match\": field \"http.fail_if_body_json_not_matches_cel\"",
        "83:7: module \"http_2xx_oauth_client_credentials\": field \"http.valid_http_versions\"",
        "91:9: module \"http_2xx_oauth_client_credentials\": field \"http.oauth2.client_secret\" needs a secret: set BLACKBOX_HTTP_2XX_OAUTH_CLIENT_CREDENTIALS_OAUTH2_CLIENT_SECRET (the value in the file is not copied)",
        "105:7: module \"http_gzip\": field \"http.compression\"",
        "110:7: module \"http_gzip_with_accept_encoding\": field \"http.compression\"",
        "117:7: module \"tls_connect\": field \"tcp.tls\"",
        "125:7: module \"imap_starttls\": field \"tcp.query_response\"",
        "136:7: module \"smtp_starttls\": field \"tcp.query_response\"",
        "150:7: module \"irc_banner_example\": field \"tcp.query_response\"",
        "160:7: module \"rabbitmq\": field \"tcp.query_response\"",
        "166:7: module \"rabbitmq\": field \"tcp.tls\"",
        "167:7: module \"rabbitmq\": field \"tcp.tls_config\"",
        "174:7: module \"rabbitmq_insecure\": field \"tcp.query_response\"",
        "180:7: module \"rabbitmq_insecure\": field \"tcp.tls\"",
        "181:7: module \"rabbitmq_insecure\": field \"tcp.tls_config\"",
        "189:7: module \"icmp_example\": field \"icmp.source_ip_address\"",
        "220:5: module \"dns_tcp_example\": field \"dns.query_type\"",
        "222:7: module \"dns_tcp_example\": field \"dns.preferred_ip_protocol\"",
        "225:5: module \"unix_socket_ping\": field \"prober\"",
        "234:7: module \"postgresql\": field \"tcp.query_response\"",
        "243:11: module \"http_with_header_from_files\": field \"http.http_headers.X-API-Key.files\"",
        "246:5: module \"websocket_example_basic_auth\": field \"prober\"",
        "261:5: module \"websocket_example_bearer_token\": field \"prober\"",
    ];
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), expected.len() + 1, "{stderr}");
    for (line, want) in lines.iter().zip(expected) {
        let want = if want.contains(" needs a secret: ") {
            format!("{f}:{want}")
        } else {
            format!("{f}:{want} has no pathwatch equivalent")
        };
        assert!(line.starts_with(&want), "expected {want}\n got {line}");
    }
    // Neither secret the example writes inline reaches the converted config.
    let (_, yaml, _) = import(Path::new(EXAMPLE));
    assert!(
        !yaml.contains("mysecret") && !yaml.contains("\"client_secret\": \"client_secret\""),
        "{yaml}"
    );
    assert!(
        stderr.contains("field \"dns.query_type\" has no pathwatch equivalent (blackbox's default ANY; pathwatch asks A)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "field \"prober\" has no pathwatch equivalent (prober \"unix\": the module is left out)"
        ),
        "{stderr}"
    );
}

#[test]
fn a_fully_convertible_config_exits_0_and_grpc_keeps_service_and_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("blackbox.yml");
    std::fs::write(
        &file,
        "modules:\n  grpc_tls:\n    prober: grpc\n    timeout: 2s\n    grpc:\n      service: api.v1.Orders\n      tls: true\n      tls_config:\n        insecure_skip_verify: true\n        server_name: orders.internal\n  icmp:\n    prober: icmp\n    icmp:\n      preferred_ip_protocol: ip6\n      ip_protocol_fallback: true\n",
    )
    .expect("write");
    let (code, yaml, stderr) = import(&file);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.ends_with("2 modules converted, 0 fields left behind\n"),
        "{stderr}"
    );
    assert_eq!(
        entry(&yaml, "grpc_tls")[1..],
        [
            "kind: grpc",
            "host: \"target.invalid\"",
            "port: 1",
            "service: \"api.v1.Orders\"",
            "tls: true",
            "insecure_skip_verify: true",
            "server_name: \"orders.internal\"",
            "timeout: 2s",
        ]
    );
    let out = dir.path().join("converted.yaml");
    std::fs::write(&out, &yaml).expect("write");
    let (code, o, e) = run(&["validate", out.to_str().expect("utf-8")]);
    assert_eq!(code, Some(0), "{o}{e}\n{yaml}");
}

#[test]
fn an_unreadable_or_unparsable_file_exits_2() {
    let (code, stdout, stderr) = import(Path::new("no-such-dir/blackbox.yml"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.starts_with("no-such-dir/blackbox.yml: cannot read:"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "modules:\n  a: [unclosed\n").expect("write");
    let (code, stdout, stderr) = import(&bad);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.starts_with(&format!("{}:", bad.display())),
        "{stderr}"
    );

    let other = dir.path().join("prometheus.yml");
    std::fs::write(&other, "scrape_configs: []\n").expect("write");
    let (code, _, stderr) = import(&other);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("no `modules:` mapping"), "{stderr}");
}

/// Every http_config credential: files stay file references, secrets written in the file
/// become `${BLACKBOX_...}` variables (never the value), each named with its line.
#[test]
fn credentials_become_file_references_or_variables_never_copied_secrets() {
    let auth = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/blackbox/auth.yml"
    );
    let (code, yaml, stderr) = import(Path::new(auth));
    assert_eq!(code, Some(1), "{stderr}");
    for secret in [
        "inline-bearer-Zq81",
        "inline-credentials-Lm42",
        "inline-api-key-Pw07",
        "inline-client-secret-Hx55",
    ] {
        assert!(!yaml.contains(secret), "{secret} copied:\n{yaml}");
        assert!(!stderr.contains(secret), "{secret} shown:\n{stderr}");
    }
    let header = |name: &str| {
        entry(&yaml, name)
            .last()
            .map(std::string::ToString::to_string)
    };
    assert_eq!(
        header("bearer_inline").as_deref(),
        Some("headers: { \"Authorization\": \"Bearer ${BLACKBOX_BEARER_INLINE_BEARER_TOKEN}\" }")
    );
    assert_eq!(
        header("basic_file").as_deref(),
        Some("headers: { \"Authorization\": \"Basic ${BLACKBOX_BASIC_FILE_BASIC_AUTH}\" }")
    );
    assert_eq!(
        header("authorization_inline").as_deref(),
        Some(
            "headers: { \"Authorization\": \"Token ${BLACKBOX_AUTHORIZATION_INLINE_AUTHORIZATION_CREDENTIALS}\" }"
        )
    );
    assert_eq!(
        header("header_secret").as_deref(),
        Some(
            "headers: { \"X-Api-Key\": \"${BLACKBOX_HEADER_SECRET_HTTP_HEADERS_X_API_KEY_SECRETS}\" }"
        )
    );
    for file_ref in ["bearer_file", "authorization_file"] {
        assert!(
            entry(&yaml, file_ref).contains(&"bearer_token_file: \"/run/secrets/probe-token\""),
            "{yaml}"
        );
    }
    assert!(
        entry(&yaml, "oauth_inline").contains(&"oauth2: { \"client_id\": \"probe\", \"client_secret\": \"${BLACKBOX_OAUTH_INLINE_OAUTH2_CLIENT_SECRET}\", \"token_url\": \"https://auth.example.com/token\" }"),
        "{yaml}"
    );
    let expected = [
        "8:7: module \"bearer_inline\": field \"http.bearer_token\" needs a secret: set BLACKBOX_BEARER_INLINE_BEARER_TOKEN (the value in the file is not copied)",
        "16:7: module \"basic_file\": field \"http.basic_auth\" needs a secret: set BLACKBOX_BASIC_FILE_BASIC_AUTH to the base64 of \"prober:<password>\" (the value in the file is not copied)",
        "24:9: module \"authorization_inline\": field \"http.authorization.credentials\" needs a secret: set BLACKBOX_AUTHORIZATION_INLINE_AUTHORIZATION_CREDENTIALS (the value in the file is not copied)",
        "35:11: module \"header_secret\": field \"http.http_headers.X-Api-Key.secrets\" needs a secret: set BLACKBOX_HEADER_SECRET_HTTP_HEADERS_X_API_KEY_SECRETS (the value in the file is not copied)",
        "41:9: module \"oauth_inline\": field \"http.oauth2.client_secret\" needs a secret: set BLACKBOX_OAUTH_INLINE_OAUTH2_CLIENT_SECRET (the value in the file is not copied)",
    ];
    let lines: Vec<String> = stderr
        .lines()
        .map(|l| l.replace(&format!("{auth}:"), ""))
        .collect();
    assert_eq!(lines[..lines.len() - 1], expected, "{stderr}");
    assert!(
        stderr.ends_with("7 modules converted, 5 fields left behind\n"),
        "{stderr}"
    );
    // With the variables set and the token file in place, the config is valid.
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "a-token\n").expect("write");
    let converted = yaml.replace("/run/secrets/probe-token", token.to_str().expect("utf-8"));
    let file = dir.path().join("converted.yaml");
    std::fs::write(&file, &converted).expect("write");
    let env = secret_env(&converted);
    assert_eq!(env.len(), 5, "{converted}");
    let (code, out, err) = run_with_env(&["validate", file.to_str().expect("utf-8")], &env);
    assert_eq!(code, Some(0), "{out}{err}\n{converted}");
}

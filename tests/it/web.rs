//! The web config (`--web-config`): TLS, basic auth and client certificates, through the real
//! binary and real HTTPS clients; bad web configs stop `serve` with the file named.

use crate::support::certs::{self, TestCerts};
use crate::support::exporter::{BIN, Exporter};
use crate::support::web_client::{self, ClientCert, block_on, client, get, tls_config};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One probe that never gets in the way: the tests are about the HTTP surface.
const PROBES: &str =
    "probes:\n  - { name: quiet, kind: tcp, host: 127.0.0.1, port: 1, interval: 1h }\n";

const PASSWORD: &str = "correct horse battery staple";

/// Writes the pathwatch config and `web` (as web.yml) into a temp dir holding fresh
/// certificates, and starts `pathwatch serve --web-config web.yml`.
fn start(web: impl FnOnce(&TestCerts) -> String) -> (Exporter, TestCerts) {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = certs::generate(dir.path());
    std::fs::write(dir.path().join("pathwatch.yaml"), PROBES).expect("write config");
    let web_path = dir.path().join("web.yml");
    std::fs::write(&web_path, web(&certs)).expect("write web config");
    let args = [
        "serve".to_string(),
        "--config".to_string(),
        dir.path().join("pathwatch.yaml").display().to_string(),
        "--web-config".to_string(),
        web_path.display().to_string(),
    ];
    (Exporter::start_command(&args, &[], dir), certs)
}

/// A cheap hash: the cost does not matter to what is tested, only to test time.
fn hash(password: &str) -> String {
    bcrypt::hash(password, 4).expect("bcrypt hash")
}

/// Sends `bytes` over plain TCP and returns whatever comes back before the server closes.
fn raw_exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(bytes).expect("send");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn tls_with_basic_auth_protects_everything_but_the_open_paths() {
    // Relative file names: they resolve against web.yml's directory, not the working one.
    let (mut exp, certs) = start(|_| {
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: {}\nunauthenticated_paths: [/healthz]\n",
            hash(PASSWORD)
        )
    });
    assert!(exp.logs().contains("web config loaded"), "{}", exp.logs());
    let base = format!("https://127.0.0.1:{}", exp.addr.port());
    let h2 = client(tls_config(&certs.ca_cert, None, &["h2", "http/1.1"]));
    let h1 = client(tls_config(&certs.ca_cert, None, &["http/1.1"]));

    // A stalled client (TCP open, no handshake) and a plain-HTTP one must not get in the way.
    let _stalled = TcpStream::connect(exp.addr).expect("connect");
    let plain = raw_exchange(exp.addr, b"GET /metrics HTTP/1.0\r\n\r\n");
    assert!(
        !plain.starts_with(b"HTTP/"),
        "plain HTTP got an HTTP answer from the TLS port"
    );

    block_on(async {
        let ok = get(
            &h2,
            &format!("{base}/metrics"),
            Some(("prometheus", PASSWORD)),
        )
        .await
        .expect("authenticated scrape");
        assert_eq!(ok.status, 200, "{ok:?}");
        assert_eq!(ok.version, reqwest::Version::HTTP_2);
        assert!(
            ok.body.contains("pathwatch_probe_interval_seconds"),
            "{}",
            ok.body
        );

        let ok = get(
            &h1,
            &format!("{base}/metrics"),
            Some(("prometheus", PASSWORD)),
        )
        .await
        .expect("authenticated scrape over HTTP/1.1");
        assert_eq!(ok.status, 200);
        assert_eq!(ok.version, reqwest::Version::HTTP_11);

        let url = format!("{base}/metrics");
        let wrong_password = get(
            &h2,
            &url,
            Some(("prometheus", "Correct horse battery staple")),
        )
        .await
        .expect("wrong password");
        let unknown_user = get(&h2, &url, Some(("grafana", PASSWORD)))
            .await
            .expect("unknown user");
        let no_header = get(&h2, &url, None).await.expect("no credentials");
        for r in [&wrong_password, &unknown_user, &no_header] {
            assert_eq!(r.status, 401, "{r:?}");
            assert_eq!(
                r.www_authenticate.as_deref(),
                Some("Basic realm=\"pathwatch\""),
                "{r:?}"
            );
            assert!(!r.body.contains("pathwatch_"), "{r:?}");
        }
        assert_eq!(wrong_password.body, unknown_user.body);
        assert_eq!(wrong_password.body, no_header.body);

        // Every route is behind auth, not only /metrics.
        for path in ["/", "/api/status", "/readyz", "/no-such-page"] {
            let r = get(&h1, &format!("{base}{path}"), None).await.expect(path);
            assert_eq!(r.status, 401, "{path}: {r:?}");
        }
        let open = get(&h1, &format!("{base}/healthz"), None)
            .await
            .expect("healthz");
        assert_eq!((open.status, open.body.as_str()), (200, "ok\n"));
    });

    // Nothing secret in the logs.
    let logs = exp.logs();
    assert!(!logs.contains(PASSWORD), "{logs}");
    assert!(!logs.contains("$2"), "{logs}");
    let status = exp.terminate(Duration::from_secs(15));
    assert!(status.success(), "exit after SIGTERM: {status:?}");
}

#[test]
fn client_certificates_are_required_and_verified() {
    let (exp, certs) = start(|_| {
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n".to_string()
    });
    let good = web_client::client_cert(&certs, "prometheus");
    let other_dir = tempfile::tempdir().expect("temp dir");
    let rogue = web_client::client_cert(&certs::generate(other_dir.path()), "rogue");
    let url = format!("https://127.0.0.1:{}/metrics", exp.addr.port());
    let with =
        |cert: Option<&ClientCert>| client(tls_config(&certs.ca_cert, cert, &["h2", "http/1.1"]));

    block_on(async {
        let ok = get(&with(Some(&good)), &url, None)
            .await
            .expect("scrape with a client certificate");
        assert_eq!(ok.status, 200, "{ok:?}");
        let none = get(&with(None), &url, None).await;
        assert!(none.is_err(), "no client certificate: {none:?}");
        let foreign = get(&with(Some(&rogue)), &url, None).await;
        assert!(foreign.is_err(), "certificate of another CA: {foreign:?}");
        // Refused by the TLS layer itself, with the alert saying why.
        let raw = |cert: Option<&ClientCert>| {
            web_client::raw_tls_get(exp.addr, tls_config(&certs.ca_cert, cert, &[]), "/metrics")
        };
        let none = raw(None).await.expect_err("no client certificate");
        assert!(none.to_string().contains("CertificateRequired"), "{none}");
        let foreign = raw(Some(&rogue))
            .await
            .expect_err("certificate of another CA");
        assert!(foreign.to_string().contains("alert"), "{foreign}");
        let ok = raw(Some(&good))
            .await
            .expect("raw scrape with a client certificate");
        assert!(ok.starts_with("HTTP/1.0 200"), "{ok}");
        // The refused handshakes cost nothing to the next client.
        let ok = get(&with(Some(&good)), &url, None)
            .await
            .expect("scrape again");
        assert_eq!(ok.status, 200);
    });
}

#[test]
fn optional_client_certificates_are_verified_when_given() {
    let (exp, certs) = start(|_| {
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: ca.crt\n  client_auth_type: VerifyClientCertIfGiven\n".to_string()
    });
    let other_dir = tempfile::tempdir().expect("temp dir");
    let rogue = web_client::client_cert(&certs::generate(other_dir.path()), "rogue");
    let url = format!("https://127.0.0.1:{}/metrics", exp.addr.port());
    block_on(async {
        let anonymous = client(tls_config(&certs.ca_cert, None, &["http/1.1"]));
        let ok = get(&anonymous, &url, None)
            .await
            .expect("no certificate given");
        assert_eq!(ok.status, 200);
        let foreign = client(tls_config(&certs.ca_cert, Some(&rogue), &["http/1.1"]));
        assert!(get(&foreign, &url, None).await.is_err());
    });
}

#[test]
fn basic_auth_over_plain_http_keeps_probes_open_by_default() {
    let (exp, certs) = start(|_| format!("basic_auth_users:\n  prometheus: {}\n", hash(PASSWORD)));
    let (status, _, body) = exp.get("/metrics");
    assert_eq!(status, 401);
    assert_eq!(body, "unauthorized\n");
    // The default open paths: what kubelet and Cloud Run probe.
    assert_eq!(exp.get("/healthz").0, 200);
    assert_eq!(exp.get("/readyz").0, 200);
    // reqwest needs some TLS config even for http:// URLs.
    let client = client(tls_config(&certs.ca_cert, None, &[]));
    block_on(async {
        let ok = get(
            &client,
            &format!("http://{}/metrics", exp.addr),
            Some(("prometheus", PASSWORD)),
        )
        .await
        .expect("scrape");
        assert_eq!(ok.status, 200);
    });
}

/// Runs `pathwatch serve` with a web config that must not load; returns (exit code, stderr).
fn serve_fails(dir: &Path, web: &str, via_env: bool) -> (Option<i32>, String) {
    std::fs::write(dir.join("pathwatch.yaml"), PROBES).expect("write config");
    let web_path = dir.join("web.yml");
    std::fs::write(&web_path, web).expect("write web config");
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--config"])
        .arg(dir.join("pathwatch.yaml"))
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .env_remove("PATHWATCH_WEB_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if via_env {
        cmd.env("PATHWATCH_WEB_CONFIG", &web_path);
    } else {
        cmd.arg("--web-config").arg(&web_path);
    }
    let mut child = cmd.spawn().expect("spawn pathwatch");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pathwatch kept running with a bad web config:\n{web}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_web_config_stops_serve_with_the_file_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = certs::generate(dir.path());
    let web = dir.path().join("web.yml").display().to_string();
    let marker = "VERY-SECRET-KEY-MATERIAL";
    std::fs::write(
        dir.path().join("broken.key"),
        format!("-----BEGIN PRIVATE KEY-----\n{marker}\n-----END PRIVATE KEY-----\n"),
    )
    .expect("write broken key");
    let good_tls = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
        certs.server_cert.display(),
        certs.server_key.display()
    );
    let cases: [(&str, String, &[&str]); 6] = [
        (
            "unknown key",
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth: RequireAndVerifyClientCert\n".to_string(),
            &[":4:3: ", "unknown field", "client_auth"],
        ),
        (
            "missing cert file",
            "tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n".to_string(),
            &[":2:14: ", "missing.crt", "cannot read"],
        ),
        (
            "broken key",
            "tls_server_config:\n  cert_file: server.crt\n  key_file: broken.key\n".to_string(),
            &[":3:13: ", "broken.key"],
        ),
        (
            "key of another certificate",
            "tls_server_config:\n  cert_file: server.crt\n  key_file: ca.key\n".to_string(),
            &[":3:13: ", "ca.key", "does not fit cert_file"],
        ),
        (
            "plaintext password instead of a hash",
            format!("{good_tls}basic_auth_users:\n  prometheus: {PASSWORD}\n"),
            &[":5:15: ", "basic_auth_users \"prometheus\"", "not a bcrypt hash"],
        ),
        (
            "not YAML mapping",
            "- just\n- a list\n".to_string(),
            &[":1:1: "],
        ),
    ];
    for (i, (what, text, expected)) in cases.iter().enumerate() {
        let (code, stderr) = serve_fails(dir.path(), text, i % 2 == 1);
        assert_eq!(code, Some(2), "{what}: exit code; stderr:\n{stderr}");
        assert!(
            stderr.contains(&format!("{web}:")),
            "{what}: the web config is not named:\n{stderr}"
        );
        for e in *expected {
            assert!(stderr.contains(e), "{what}: no {e:?} in:\n{stderr}");
        }
        assert!(
            !stderr.contains("listening"),
            "{what}: it started:\n{stderr}"
        );
        assert!(
            !stderr.contains(marker),
            "{what}: key material in:\n{stderr}"
        );
        assert!(!stderr.contains(PASSWORD), "{what}: password in:\n{stderr}");
    }
}

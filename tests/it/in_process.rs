//! The exporter started in-process through the library's composition root
//! (`pathwatch::app::serve`), as main.rs starts it: it probes, serves /metrics, stops when
//! its token is cancelled, and refuses a bad web config before opening anything.

use crate::support::exporter::{http_get, value};
use crate::support::hang::SilentServer;
use pathwatch::app::{self, Options, ServeError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn loaded(port: u16) -> pathwatch::config::Loaded {
    let yaml = format!(
        "defaults: {{ interval: 1s, timeout: 3s }}\nprobes:\n  - {{ name: open, kind: tcp, host: 127.0.0.1, port: {port} }}\n"
    );
    pathwatch::config::parse("in-process.yaml", &yaml, &|_| None).expect("the config parses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_probes_in_process_until_cancelled() {
    let open = SilentServer::start();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let token = CancellationToken::new();
    let options = Options {
        source: "in-process.yaml".into(),
        ..Options::default()
    };
    let served = tokio::spawn(app::serve(
        loaded(open.port),
        listener,
        token.clone(),
        options,
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let success = loop {
        let (status, _, body) = tokio::task::spawn_blocking(move || http_get(addr, "/metrics"))
            .await
            .expect("scrape");
        assert_eq!(status, 200, "{body}");
        let v = value(
            &body,
            "pathwatch_probe_success",
            &[("probe", "open"), ("kind", "tcp")],
        );
        if v == Some(1.0) || tokio::time::Instant::now() > deadline {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        success,
        Some(1.0),
        "the tcp probe never succeeded in-process"
    );
    token.cancel();
    let ended = tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .expect("serve returns once cancelled")
        .expect("serve does not panic");
    assert!(ended.is_ok(), "{ended:?}");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the listener is closed after serve returns"
    );
}

#[tokio::test]
async fn a_bad_web_config_is_refused_before_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let web = dir.path().join("web.yml");
    std::fs::write(&web, "tls_server_config: { cert_file: /nonexistent.pem }\n").expect("write");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let options = Options {
        web_config: Some(web),
        ..Options::default()
    };
    let ended = app::serve(loaded(1), listener, CancellationToken::new(), options).await;
    assert!(matches!(ended, Err(ServeError::WebConfig(_))), "{ended:?}");
}

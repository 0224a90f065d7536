//! An HTTPS server on 127.0.0.1:0 with a certificate from a throwaway CA: every request gets
//! `200 {"status":"healthy"}`. Enough to prove the http probe's TLS phase and verification.
//! Its certificate can be replaced while it runs ([`TlsTarget::renew`]): the next handshake
//! presents the new one.

use super::certs::{self, TestCerts};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct TlsTarget {
    pub addr: SocketAddr,
    pub certs: TestCerts,
    config: Arc<Mutex<Arc<rustls::ServerConfig>>>,
    dir: tempfile::TempDir,
}

impl TlsTarget {
    /// From the next handshake on, a new certificate (from a new CA) valid for `days`.
    pub fn renew(&self, days: u32) {
        let dir = self.dir.path().join(format!("renewed-{}", random_suffix()));
        std::fs::create_dir(&dir).expect("directory for the renewed certificate");
        let certs = certs::generate_for_days(&dir, days);
        *self
            .config
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = server_config(&certs);
    }
}

fn random_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

pub fn start() -> TlsTarget {
    start_for_days(825)
}

/// A target whose leaf certificate is valid for `days` from now.
pub fn start_for_days(days: u32) -> TlsTarget {
    let dir = tempfile::tempdir().expect("temp dir for certificates");
    let certs = certs::generate_for_days(dir.path(), days);
    let config = Arc::new(Mutex::new(server_config(&certs)));
    let shared = config.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime for the TLS target");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind the TLS target");
            tx.send(listener.local_addr().expect("address"))
                .expect("send address");
            while let Ok((tcp, _)) = listener.accept().await {
                let current = shared
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                let acceptor = tokio_rustls::TlsAcceptor::from(current);
                tokio::spawn(answer_healthy(acceptor, tcp));
            }
        });
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("TLS target started");
    TlsTarget {
        addr,
        certs,
        config,
        dir,
    }
}

/// One connection: the TLS handshake (a failed one, an untrusting or certificate-less client,
/// is part of the tests and ends it), one read of the request, and `200 {"status":"healthy"}`.
pub async fn answer_healthy(acceptor: tokio_rustls::TlsAcceptor, tcp: tokio::net::TcpStream) {
    let Ok(mut tls) = acceptor.accept(tcp).await else {
        return;
    };
    let mut buf = vec![0u8; 4096];
    let _ = tls.read(&mut buf).await;
    let body = r#"{"status":"healthy"}"#;
    let resp = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tls.write_all(resp.as_bytes()).await;
    let _ = tls.shutdown().await;
}

fn server_config(certs: &TestCerts) -> Arc<rustls::ServerConfig> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&certs.server_cert)
        .expect("read the server certificate")
        .map(|c| c.expect("parse the server certificate"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(&certs.server_key).expect("read the server key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("server certificate");
    Arc::new(config)
}

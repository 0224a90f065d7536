//! HTTPS clients for the web config tests: client certificates signed by the test CA (with
//! the `openssl` CLI, like `certs`), rustls client configs, and a reqwest client on them.

use super::certs::TestCerts;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// A client certificate and its key.
#[derive(Debug, Clone)]
pub struct ClientCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `extendedKeyUsage = clientAuth`: webpki refuses a client certificate without it.
const CLIENT_CNF: &str = "\
[req]
distinguished_name = req_dn
prompt = no

[req_dn]
CN = prometheus

[v3_client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
";

/// A client certificate `name` signed by the CA of `certs` (its key is `ca.key` beside
/// `ca.crt`, where `certs::generate` puts it).
pub fn client_cert(certs: &TestCerts, name: &str) -> ClientCert {
    let dir = certs.ca_cert.parent().expect("CA directory");
    let ca_key = certs.ca_cert.with_file_name("ca.key");
    let cnf = dir.join("client.cnf");
    std::fs::write(&cnf, CLIENT_CNF).expect("write client.cnf");
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let cert = dir.join(format!("{name}.crt"));
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        s(&key),
    ]);
    openssl(&[
        "req",
        "-new",
        "-subj",
        &format!("/CN={name}"),
        "-config",
        s(&cnf),
        "-key",
        s(&key),
        "-out",
        s(&csr),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-sha256",
        "-days",
        "30",
        "-extensions",
        "v3_client",
        "-extfile",
        s(&cnf),
        "-set_serial",
        &format!(
            "{}",
            u64::from(std::process::id()) * 1000 + name.len() as u64
        ),
        "-in",
        s(&csr),
        "-CA",
        s(&certs.ca_cert),
        "-CAkey",
        s(&ca_key),
        "-out",
        s(&cert),
    ]);
    ClientCert { cert, key }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A rustls client config trusting `ca`, presenting `client` if given, offering `alpn`.
pub fn tls_config(ca: &Path, client: Option<&ClientCert>, alpn: &[&str]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).expect("read CA") {
        roots.add(c.expect("parse CA")).expect("add CA");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some(c) => {
            let chain = CertificateDer::pem_file_iter(&c.cert)
                .expect("read client cert")
                .map(|c| c.expect("parse client cert"))
                .collect();
            let key = PrivateKeyDer::from_pem_file(&c.key).expect("read client key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client certificate")
        }
    };
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    config
}

/// A reqwest client on `config`, without connection reuse so each request is a handshake.
pub fn client(config: rustls::ClientConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("reqwest client")
}

/// A response, read to the end.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub version: reqwest::Version,
    pub www_authenticate: Option<String>,
    pub body: String,
}

/// GET `url` with optional basic auth; Err carries the error chain as text.
pub async fn get(
    client: &reqwest::Client,
    url: &str,
    auth: Option<(&str, &str)>,
) -> Result<Reply, String> {
    let mut req = client.get(url);
    if let Some((user, password)) = auth {
        req = req.basic_auth(user, Some(password));
    }
    let resp = req.send().await.map_err(|e| chain(&e))?;
    let status = resp.status().as_u16();
    let version = resp.version();
    let www_authenticate = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp.text().await.map_err(|e| chain(&e))?;
    Ok(Reply {
        status,
        version,
        www_authenticate,
        body,
    })
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Runs `fut` on a fresh current-thread runtime (the tests themselves are sync).
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(fut)
}

/// One HTTP/1.0 GET over tokio-rustls directly, so a refusal shows as the TLS alert the
/// server sent (reqwest reports only "connection closed").
pub async fn raw_tls_get(
    addr: std::net::SocketAddr,
    mut config: rustls::ClientConfig,
    path: &str,
) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    config.alpn_protocols.clear();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut out = Vec::new();
    tls.read_to_end(&mut out).await?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

//! An HTTPS server that requires a client certificate signed by its CA (mTLS), on
//! 127.0.0.1:0, answering `200 {"status":"healthy"}`; and that client certificate, made with
//! the `openssl` CLI like the rest of the test PKI (certs.rs).

use super::certs::{self, TestCerts};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

pub struct MtlsServer {
    pub addr: SocketAddr,
    pub certs: TestCerts,
    /// A client certificate the server accepts, and its key.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A client certificate from another CA, which it refuses.
    pub stranger_cert: PathBuf,
    pub stranger_key: PathBuf,
    _dir: tempfile::TempDir,
}

const CLIENT_EXT: &str = "\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
";

/// A client certificate for `cn`, signed by the CA in `ca_dir` (as certs.rs leaves it:
/// `ca.crt`, `ca.key`).
fn make_client_cert(ca_dir: &Path, cn: &str) -> (PathBuf, PathBuf) {
    let key = ca_dir.join(format!("{cn}.key"));
    let csr = ca_dir.join(format!("{cn}.csr"));
    let cert = ca_dir.join(format!("{cn}.crt"));
    let ext = ca_dir.join("client-ext.cnf");
    std::fs::write(&ext, CLIENT_EXT).expect("write the client extensions");
    run(Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&key));
    run(Command::new("openssl")
        .args(["req", "-new", "-subj", &format!("/CN={cn}"), "-key"])
        .arg(&key)
        .arg("-out")
        .arg(&csr));
    run(Command::new("openssl")
        .args([
            "x509",
            "-req",
            "-sha256",
            "-days",
            "30",
            "-set_serial",
            "4242",
            "-extfile",
        ])
        .arg(&ext)
        .arg("-in")
        .arg(&csr)
        .arg("-CA")
        .arg(ca_dir.join("ca.crt"))
        .arg("-CAkey")
        .arg(ca_dir.join("ca.key"))
        .arg("-out")
        .arg(&cert));
    (cert, key)
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run openssl");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn start() -> MtlsServer {
    let dir = tempfile::tempdir().expect("temp dir for certificates");
    let certs = certs::generate(dir.path());
    let (client_cert, client_key) = make_client_cert(dir.path(), "probe-client");
    let other = dir.path().join("other-ca");
    std::fs::create_dir(&other).expect("dir for another CA");
    certs::generate(&other);
    let (stranger_cert, stranger_key) = make_client_cert(&other, "stranger");
    let config = server_config(&certs);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime for the mTLS server");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind the mTLS server");
            tx.send(listener.local_addr().expect("address"))
                .expect("send address");
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                // A client without an accepted certificate is refused in the handshake.
                tokio::spawn(super::tls_target::answer_healthy(acceptor, tcp));
            }
        });
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("mTLS server started");
    MtlsServer {
        addr,
        certs,
        client_cert,
        client_key,
        stranger_cert,
        stranger_key,
        _dir: dir,
    }
}

fn server_config(certs: &TestCerts) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(&certs.ca_cert).expect("read the CA") {
        roots.add(ca.expect("parse the CA")).expect("add the CA");
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("client verifier");
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&certs.server_cert)
        .expect("read the server certificate")
        .map(|c| c.expect("parse the server certificate"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(&certs.server_key).expect("read the server key");
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .expect("server certificate"),
    )
}

//! The reference service's TLS port, for the demo's `tls_cert` probe: a handshake with a
//! certificate made at start, then close. The certificate is self-signed (P-256), made by
//! rcgen (the rustls project's certificate maker) on ring, valid from an hour before the start
//! for [`VALIDITY`]: the demo must commit no private key.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long the certificate is valid: 90 days, as Let's Encrypt's.
pub(crate) const VALIDITY: Duration = Duration::from_secs(90 * 86_400);

/// A self-signed certificate for `name` (its common name and DNS name), valid from
/// `not_before` to `not_after`, and its PKCS#8 key.
///
/// # Errors
/// When rcgen cannot make the key or sign (an invalid name, no randomness).
pub(crate) fn self_signed(
    name: &str,
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), rcgen::Error> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.not_before = not_before.into();
    params.not_after = not_after.into();
    let cert = params.self_signed(&key)?;
    Ok((
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    ))
}

/// Completes a TLS handshake with every client on `listener`, then closes, until `shutdown`.
///
/// # Errors
/// When the certificate cannot be made or taken by rustls.
pub async fn serve_tls(
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let now = SystemTime::now();
    let (cert, key) = self_signed(
        "pathwatch-demo",
        now - Duration::from_secs(3600),
        now + VALIDITY,
    )
    .map_err(|e| format!("cannot make the demo certificate: {e}"))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        if let Ok(mut tls) = acceptor.accept(tcp).await {
                            let _ = tls.shutdown().await;
                        }
                    });
                }
                // Out of file descriptors and the like: pause rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            },
        }
    }
}

//! The reference service's TLS port, for the demo's `tls_cert` probe: a handshake with a
//! certificate made at start, then close. The certificate is self-signed (P-256, `ring`, the
//! crate rustls already signs with), valid from an hour before the start for [`VALIDITY`]:
//! written here as DER by hand, since no certificate-making crate is in the tree and the demo
//! must commit no private key.

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long the certificate is valid: 90 days, as Let's Encrypt's.
pub const VALIDITY: Duration = Duration::from_secs(90 * 86_400);

const ECDSA_WITH_SHA256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const PRIME256V1: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const COMMON_NAME: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];

/// A DER tag-length-value (lengths below 64 KiB, all a certificate needs).
fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let n = body.len();
    let mut out = vec![tag];
    match u8::try_from(n) {
        Ok(b) if b < 0x80 => out.push(b),
        Ok(b) => out.extend([0x81, b]),
        Err(_) => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(body);
    out
}

fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// `UTCTime` (`YYMMDDHHMMSSZ`) of `t`, through its RFC 3339 text.
fn utc_time(t: SystemTime) -> Vec<u8> {
    let text = humantime::format_rfc3339_seconds(t).to_string();
    let digits: String = text.chars().filter(char::is_ascii_digit).skip(2).collect();
    tlv(0x17, format!("{digits}Z").as_bytes())
}

/// A self-signed v3 certificate for `name`, valid from `not_before` to `not_after`, and its
/// PKCS#8 key.
pub fn self_signed(
    name: &str,
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), ring::error::Unspecified> {
    let rng = SystemRandom::new();
    let alg = &ECDSA_P256_SHA256_ASN1_SIGNING;
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng)?;
    let key = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng)
        .map_err(|_| ring::error::Unspecified)?;
    let signature_alg = sequence(&[ECDSA_WITH_SHA256]);
    let cn = tlv(0x0c, name.as_bytes());
    let dn = sequence(&[&tlv(0x31, &sequence(&[COMMON_NAME, &cn]))]);
    let public_key = tlv(0x03, &[&[0u8][..], key.public_key().as_ref()].concat());
    let tbs = sequence(&[
        &tlv(0xa0, &tlv(0x02, &[2])), // v3
        &tlv(0x02, &[1]),             // serial
        &signature_alg,
        &dn,
        &sequence(&[&utc_time(not_before), &utc_time(not_after)]),
        &dn,
        &sequence(&[&sequence(&[EC_PUBLIC_KEY, PRIME256V1]), &public_key]),
    ]);
    let signature = key.sign(&rng, &tbs)?;
    let cert = sequence(&[
        &tbs,
        &signature_alg,
        &tlv(0x03, &[&[0u8][..], signature.as_ref()].concat()),
    ]);
    Ok((
        CertificateDer::from(cert),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.as_ref().to_vec())),
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
    .map_err(|_| "cannot make the demo certificate")?;
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

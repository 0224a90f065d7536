//! rustls client configs with libpq's meaning of each `sslmode`, and an optional client
//! certificate (mTLS).
//!
//! libpq's `prefer` and `require` encrypt without checking the server's certificate;
//! `verify-ca` checks the chain but not the host name; `verify-full` checks both. rustls
//! always verifies, so the weaker modes get verifiers that relax exactly what libpq relaxes,
//! while handshake signatures are still checked.

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ConfigBuilder, DigitallySignedStruct, Error, RootCertStore,
    SignatureScheme, client::WantsClientCert,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How much of the server's certificate to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verify {
    /// Encrypt only (libpq `prefer`, `require`).
    Nothing,
    /// The chain up to a trusted root, not the name (libpq `verify-ca`).
    Chain,
    /// The chain and the host name (libpq `verify-full`).
    Full,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why a client config could not be built (a config error, at the probe's location).
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    #[error("cannot read CA file \"{}\": {source}", path.display())]
    ReadCa {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("bad certificate in \"{}\": {source}", path.display())]
    BadCert {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("bad CA certificate in \"{}\": {source}", path.display())]
    BadCa { path: PathBuf, source: Error },
    #[error("no certificate in CA file \"{}\"", path.display())]
    NoCertificate { path: PathBuf },
    #[error("cannot read cert_file \"{}\": {source}", path.display())]
    ReadClientCert {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("no certificate in cert_file \"{}\"", path.display())]
    NoClientCert { path: PathBuf },
    /// The key's bytes are never quoted: only the file and what is wrong with it.
    #[error("cannot read a private key from key_file \"{}\": {source}", path.display())]
    ReadClientKey {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("key_file \"{}\" does not fit cert_file \"{}\": {source}", key.display(), cert.display())]
    ClientKeyMismatch {
        cert: PathBuf,
        key: PathBuf,
        source: Error,
    },
    #[error("{0}")]
    Rustls(#[from] Error),
    #[error("{0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
}

/// Trusted roots: the PEM file given, or the Mozilla roots bundled with webpki-roots.
pub(crate) fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path).map_err(|source| TlsError::ReadCa {
                path: path.to_path_buf(),
                source,
            })?;
            for cert in certs {
                let cert = cert.map_err(|source| TlsError::BadCert {
                    path: path.to_path_buf(),
                    source,
                })?;
                store.add(cert).map_err(|source| TlsError::BadCa {
                    path: path.to_path_buf(),
                    source,
                })?;
            }
            if store.is_empty() {
                return Err(TlsError::NoCertificate {
                    path: path.to_path_buf(),
                });
            }
        }
        None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(store)
}

/// A client certificate chain and its key (mTLS), as PEM files.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientCert<'a> {
    pub(crate) cert_file: &'a Path,
    pub(crate) key_file: &'a Path,
}

/// A client config for `verify`, trusting `ca_file` (or the bundled roots).
pub(crate) fn client_config(
    verify: Verify,
    ca_file: Option<&Path>,
) -> Result<Arc<ClientConfig>, TlsError> {
    client_config_with_cert(verify, ca_file, None)
}

/// [`client_config`], presenting `cert` when the server asks for a client certificate.
pub(crate) fn client_config_with_cert(
    verify: Verify,
    ca_file: Option<&Path>,
    cert: Option<ClientCert<'_>>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = match verify {
        Verify::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert(
                provider.signature_verification_algorithms,
            )))
            .finish(cert)?,
        Verify::Chain | Verify::Full => {
            let inner = match ca_file {
                Some(_) => WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots(ca_file)?),
                    provider.clone(),
                )
                .build()?,
                None => bundled_verifier(&provider)?,
            };
            if verify == Verify::Full {
                builder.with_webpki_verifier(inner).finish(cert)?
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly(inner)))
                    .finish(cert)?
            }
        }
    };
    Ok(Arc::new(config))
}

/// The last step of a client config: with or without a client certificate.
trait Finish {
    fn finish(self, cert: Option<ClientCert<'_>>) -> Result<ClientConfig, TlsError>;
}

impl Finish for ConfigBuilder<ClientConfig, WantsClientCert> {
    fn finish(self, cert: Option<ClientCert<'_>>) -> Result<ClientConfig, TlsError> {
        let Some(cert) = cert else {
            return Ok(self.with_no_client_auth());
        };
        let (chain, key) = load_client_cert(cert)?;
        // rustls checks that the key is the certificate's: a mismatch is a config error
        // here, not a handshake failure at every run.
        self.with_client_auth_cert(chain, key)
            .map_err(|source| TlsError::ClientKeyMismatch {
                cert: cert.cert_file.to_path_buf(),
                key: cert.key_file.to_path_buf(),
                source,
            })
    }
}

/// The certificate chain and key of a client certificate.
fn load_client_cert(
    cert: ClientCert<'_>,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let read_err = |source| TlsError::ReadClientCert {
        path: cert.cert_file.to_path_buf(),
        source,
    };
    let chain = CertificateDer::pem_file_iter(cert.cert_file)
        .map_err(read_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_err)?;
    if chain.is_empty() {
        return Err(TlsError::NoClientCert {
            path: cert.cert_file.to_path_buf(),
        });
    }
    let key =
        PrivateKeyDer::from_pem_file(cert.key_file).map_err(|source| TlsError::ReadClientKey {
            path: cert.key_file.to_path_buf(),
            source,
        })?;
    Ok((chain, key))
}

/// The verifier over the bundled Mozilla roots, built once per process and shared: each
/// copy holds about 150 parsed trust anchors, and with one per https probe they were 27 % of
/// an idle exporter's heap (bench/heap_profile.py). Immutable, so sharing changes nothing a
/// probe sees; a `ca_file` still gets a verifier of its own.
fn bundled_verifier(provider: &Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
    static BUNDLED: std::sync::OnceLock<Arc<WebPkiServerVerifier>> = std::sync::OnceLock::new();
    if let Some(v) = BUNDLED.get() {
        return Ok(v.clone());
    }
    let v = WebPkiServerVerifier::builder_with_provider(Arc::new(roots(None)?), provider.clone())
        .build()?;
    Ok(BUNDLED.get_or_init(|| v).clone())
}

/// Accepts any certificate, still checking that the server owns the key it presented.
#[derive(Debug)]
struct AnyCert(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// Full chain verification that forgives only a name mismatch.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

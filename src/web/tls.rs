//! The rustls server config of `tls_server_config`: certificate chain, key, client CA.
//!
//! Every file is read once at startup, so a bad one stops `serve` with the web config's
//! `file:line:col` of the key that named it. Errors name files, never their content: PEM
//! parser details are left out because they can quote lines of a key file.

use super::config::{ClientAuthType, FileRef, MinVersion, TlsSettings, WebConfigError};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::sync::Arc;

/// Builds the server config; `file` names the web config in errors.
pub(crate) fn server_config(
    file: &str,
    tls: &TlsSettings,
) -> Result<Arc<ServerConfig>, WebConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(file, "cert_file", &tls.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_file.path).map_err(|e| {
        fail(
            file,
            "key_file",
            &tls.key_file,
            &pem_problem(&e, "private key"),
        )
    })?;

    let versions: &[&rustls::SupportedProtocolVersion] = match tls.min_version {
        MinVersion::TLS12 => rustls::DEFAULT_VERSIONS,
        MinVersion::TLS13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| tls.cert_file.pos.err(file, format!("TLS setup: {e}")))?;

    let builder = match (&tls.client_ca_file, tls.client_auth) {
        (
            Some(ca),
            ClientAuthType::VerifyClientCertIfGiven | ClientAuthType::RequireAndVerifyClientCert,
        ) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(file, "client_ca_file", ca)? {
                roots.add(cert).map_err(|e| {
                    fail(
                        file,
                        "client_ca_file",
                        ca,
                        &format!("bad CA certificate: {e}"),
                    )
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if tls.client_auth == ClientAuthType::VerifyClientCertIfGiven {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| fail(file, "client_ca_file", ca, &format!("unusable CA: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        // config::parse only lets a CA through with a verifying policy, and a verifying
        // policy only with a CA; no client authentication is left.
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        // Typically a key that does not belong to the certificate. rustls' message names
        // no key material.
        fail(
            file,
            "key_file",
            &tls.key_file,
            &format!(
                "does not fit cert_file \"{}\": {e}",
                tls.cert_file.path.display()
            ),
        )
    })?;
    // HTTP/2 where the client offers it; the connection builder speaks both.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn certificates(
    file: &str,
    key: &str,
    at: &FileRef,
) -> Result<Vec<CertificateDer<'static>>, WebConfigError> {
    let mut out = Vec::new();
    let iter = CertificateDer::pem_file_iter(&at.path)
        .map_err(|e| fail(file, key, at, &pem_problem(&e, "certificate")))?;
    for cert in iter {
        out.push(cert.map_err(|e| fail(file, key, at, &pem_problem(&e, "certificate")))?);
    }
    if out.is_empty() {
        return Err(fail(file, key, at, "no PEM certificate in the file"));
    }
    Ok(out)
}

fn fail(file: &str, key: &str, at: &FileRef, problem: &str) -> WebConfigError {
    at.pos.err(
        file,
        format!(
            "tls_server_config.{key} \"{}\": {problem}",
            at.path.display()
        ),
    )
}

/// A PEM error without its details, some of which quote the file.
fn pem_problem(e: &pem::Error, what: &str) -> String {
    match e {
        pem::Error::Io(io) => format!("cannot read: {io}"),
        pem::Error::NoItemsFound => format!("no PEM {what} in the file"),
        _ => format!("not a readable PEM {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::config::Pos;
    use std::path::PathBuf;

    fn at(path: PathBuf) -> FileRef {
        FileRef {
            path,
            pos: Pos { line: 2, col: 14 },
        }
    }

    #[test]
    fn missing_and_garbage_files_are_named_without_their_content() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN PRIVATE KEY-----\nTOPSECRET!!\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let settings = TlsSettings {
            cert_file: at(dir.path().join("nope.crt")),
            key_file: at(garbage.clone()),
            client_ca_file: None,
            client_auth: ClientAuthType::NoClientCert,
            min_version: MinVersion::TLS12,
        };
        let e = server_config("web.yml", &settings).unwrap_err().to_string();
        assert!(
            e.starts_with("web.yml:2:14: tls_server_config.cert_file \""),
            "{e}"
        );
        assert!(e.contains("nope.crt\": cannot read"), "{e}");

        let settings = TlsSettings {
            cert_file: at(garbage.clone()),
            ..settings
        };
        let e = server_config("web.yml", &settings).unwrap_err().to_string();
        assert!(e.contains("garbage.pem"), "{e}");
        assert!(!e.contains("TOPSECRET"), "{e}");
    }
}

//! Throwaway TLS material for integration tests: a private CA plus a server
//! certificate signed by it, produced with the `openssl` command-line tool.
//!
//! Why a separate CA instead of one self-signed server certificate: rustls
//! (via webpki) refuses a self-signed end-entity certificate used as its own
//! trust anchor, and it rejects X.509 v1 certificates outright. So the chain is
//! CA (v3, `CA:TRUE`, `keyCertSign`) -> leaf (v3, `CA:FALSE`, `serverAuth`,
//! SAN `DNS:localhost` + `IP:127.0.0.1`), which satisfies both rustls and
//! libpq's `sslmode=verify-full`.
//!
//! Why the CLI instead of a Rust crate: the test build then needs no extra
//! dev-dependency, and `openssl` is present wherever the Postgres server
//! binaries are.

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Paths of the generated PEM files (all inside the directory given to
/// [`generate`]).
#[derive(Debug, Clone)]
pub struct TestCerts {
    /// Self-signed CA certificate: the trust anchor clients should use
    /// (`sslrootcert=` for libpq, a root store entry for rustls).
    pub ca_cert: PathBuf,
    /// Server certificate signed by the CA, valid for `localhost` and
    /// `127.0.0.1`.
    pub server_cert: PathBuf,
    /// Unencrypted private key of `server_cert` (EC P-256, PKCS#8 PEM).
    pub server_key: PathBuf,
}

/// Extension sections referenced by name below. Written to a file of our own
/// (instead of relying on the system `openssl.cnf`) so the result does not
/// depend on distribution defaults.
const OPENSSL_CNF: &str = "\
[req]
distinguished_name = req_dn
prompt = no

[req_dn]
CN = pathwatch-test

[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[v3_server]
basicConstraints = critical, CA:FALSE
# EC key: only signatures, no key encipherment
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
";

/// Generate a CA and a server certificate into `dir` (which must exist).
///
/// Panics with openssl's output if any step fails: a test that asked for TLS
/// cannot do anything useful without it.
pub fn generate(dir: &Path) -> TestCerts {
    generate_for_days(dir, 825)
}

/// [`generate`] with a leaf certificate valid for `days` from now (a certificate about to
/// expire, for the tls_cert probe's alert).
pub fn generate_for_days(dir: &Path, days: u32) -> TestCerts {
    let cnf = dir.join("openssl-test.cnf");
    fs::write(&cnf, OPENSSL_CNF).unwrap_or_else(|e| panic!("writing {}: {e}", cnf.display()));

    let ca_key = dir.join("ca.key");
    let ca_cert = dir.join("ca.crt");
    let server_key = dir.join("server.key");
    let server_csr = dir.join("server.csr");
    let server_cert = dir.join("server.crt");

    gen_p256_key(&ca_key);
    gen_p256_key(&server_key);

    // The CA: self-signed, v3 because -extensions selects our v3_ca section.
    openssl(
        Command::new("openssl")
            .args(["req", "-x509", "-new", "-sha256", "-days", "3650"])
            .args(["-subj", "/CN=pathwatch test CA", "-extensions", "v3_ca"])
            .arg("-set_serial")
            .arg(random_serial())
            .arg("-config")
            .arg(&cnf)
            .arg("-key")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca_cert),
    );

    // The leaf: CSR, then signed by the CA. -extfile makes it v3 and carries
    // the SAN/EKU; without it `openssl x509 -req` would emit a v1 certificate.
    openssl(
        Command::new("openssl")
            .args(["req", "-new", "-subj", "/CN=localhost"])
            .arg("-config")
            .arg(&cnf)
            .arg("-key")
            .arg(&server_key)
            .arg("-out")
            .arg(&server_csr),
    );
    openssl(
        Command::new("openssl")
            .args([
                "x509",
                "-req",
                "-sha256",
                "-days",
                &days.to_string(),
                "-extensions",
                "v3_server",
            ])
            // explicit serial: -CAcreateserial would drop a ca.srl file next
            // to the CA
            .arg("-set_serial")
            .arg(random_serial())
            .arg("-extfile")
            .arg(&cnf)
            .arg("-in")
            .arg(&server_csr)
            .arg("-CA")
            .arg(&ca_cert)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-out")
            .arg(&server_cert),
    );

    TestCerts {
        ca_cert,
        server_cert,
        server_key,
    }
}

fn gen_p256_key(out: &Path) {
    openssl(
        Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .arg("-out")
            .arg(out),
    );
}

/// Positive 63-bit decimal serial. Random so two CAs generated by concurrent
/// tests never share an issuer/serial pair (harmless here, but cheap to avoid).
fn random_serial() -> String {
    // RandomState is seeded from the OS per instance: good enough for a
    // serial number without pulling in a rand crate.
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    (h.finish() >> 1).max(1).to_string()
}

fn openssl(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("could not run the `openssl` command (is it installed and on PATH?): {e}")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

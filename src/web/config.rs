//! The web config file (`--web-config`): YAML in the shape of Prometheus' exporter-toolkit
//! web config, parsed into typed structs with located errors.
//!
//! Only the file's structure is checked here; reading the certificates, keys and hashes it
//! names happens in `tls` and `auth`, which report their errors at the key that named them.

use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Paths open without credentials unless the file says otherwise: orchestrator probes
/// (kubelet, Cloud Run) cannot send basic auth.
pub(crate) const DEFAULT_UNAUTHENTICATED: &[&str] = &["/healthz", "/readyz"];

/// An error in a web config file, or in a file it names, as `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct WebConfigError {
    pub(crate) file: String,
    pub(crate) line: u64,
    pub(crate) col: u64,
    pub(crate) msg: String,
}

impl fmt::Display for WebConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.msg)
    }
}

/// A 1-based position in the web config file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pos {
    pub(crate) line: u64,
    pub(crate) col: u64,
}

impl Pos {
    pub(crate) const START: Pos = Pos { line: 1, col: 1 };

    fn of<T>(s: &Spanned<T>) -> Pos {
        Pos {
            line: s.referenced.line().max(1),
            col: s.referenced.column().max(1),
        }
    }

    /// An error at this position of `file`.
    pub(crate) fn err(self, file: &str, msg: impl Into<String>) -> WebConfigError {
        WebConfigError {
            file: file.to_string(),
            line: self.line,
            col: self.col,
            msg: msg.into(),
        }
    }
}

/// Who must present a client certificate. The names are Go's `tls.ClientAuthType`, as in
/// exporter-toolkit; its two modes that accept unverified certificates are left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub(crate) enum ClientAuthType {
    NoClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

/// The lowest TLS version accepted (rustls speaks only 1.2 and 1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub(crate) enum MinVersion {
    TLS12,
    TLS13,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    tls_server_config: Option<RawTls>,
    basic_auth_users: Option<BTreeMap<String, Spanned<String>>>,
    unauthenticated_paths: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Spanned<PathBuf>,
    key_file: Spanned<PathBuf>,
    client_ca_file: Option<Spanned<PathBuf>>,
    client_auth_type: Option<Spanned<ClientAuthType>>,
    min_version: Option<MinVersion>,
}

/// A file path from the config, resolved, with the place that named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileRef {
    pub(crate) path: PathBuf,
    pub(crate) pos: Pos,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TlsSettings {
    pub cert_file: FileRef,
    pub key_file: FileRef,
    pub client_ca_file: Option<FileRef>,
    pub client_auth: ClientAuthType,
    pub min_version: MinVersion,
}

/// One `basic_auth_users` entry. The hash is not a secret like a password, but it is kept
/// out of errors and logs all the same: it can be attacked offline.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct BasicAuthUser {
    pub name: String,
    pub hash: String,
    pub pos: Pos,
}

impl fmt::Debug for BasicAuthUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuthUser")
            .field("name", &self.name)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

/// A parsed web config: what to serve with, before any file it names is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WebSettings {
    /// Names the source in errors.
    pub(crate) file: String,
    pub(crate) tls: Option<TlsSettings>,
    /// Empty: no authentication.
    pub users: Vec<BasicAuthUser>,
    pub unauthenticated_paths: Vec<String>,
}

/// Reads and parses the web config at `path`.
pub(crate) fn load(path: &Path) -> Result<WebSettings, WebConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Pos::START.err(&file, format!("cannot read web config file: {e}")))?;
    parse(&file, &text, path.parent().unwrap_or(Path::new("")))
}

/// Parses web config text; relative paths resolve against `dir`.
pub(crate) fn parse(file: &str, text: &str, dir: &Path) -> Result<WebSettings, WebConfigError> {
    // An empty file is a valid config that changes nothing, as in exporter-toolkit.
    let raw: RawFile = if text.trim().is_empty() {
        RawFile::default()
    } else {
        serde_saphyr::from_str(text).map_err(|e| {
            let pos = e
                .location()
                .map(|l| Pos {
                    line: l.line().max(1),
                    col: l.column().max(1),
                })
                .unwrap_or(Pos::START);
            pos.err(file, first_line(&e.to_string()))
        })?
    };
    let resolve = |s: &Spanned<PathBuf>| -> Result<FileRef, WebConfigError> {
        if s.value.as_os_str().is_empty() {
            return Err(Pos::of(s).err(file, "the path is empty"));
        }
        Ok(FileRef {
            path: dir.join(&s.value),
            pos: Pos::of(s),
        })
    };

    let tls = match &raw.tls_server_config {
        None => None,
        Some(t) => {
            let client_ca_file = t.client_ca_file.as_ref().map(resolve).transpose()?;
            // A CA given without a policy means "verify clients": that is the only reason to
            // give one. exporter-toolkit rejects this; being stricter than asked is safer
            // than silently ignoring the CA.
            let client_auth = match (&t.client_auth_type, &client_ca_file) {
                (None, None) => ClientAuthType::NoClientCert,
                (None, Some(_)) => ClientAuthType::RequireAndVerifyClientCert,
                (Some(a), None) if a.value != ClientAuthType::NoClientCert => {
                    return Err(Pos::of(a).err(
                        file,
                        format!("client_auth_type {:?} needs client_ca_file", a.value),
                    ));
                }
                (Some(a), Some(_)) if a.value == ClientAuthType::NoClientCert => {
                    return Err(Pos::of(a).err(
                        file,
                        "client_ca_file is set but client_auth_type is NoClientCert: \
                         choose VerifyClientCertIfGiven or RequireAndVerifyClientCert, \
                         or remove client_ca_file",
                    ));
                }
                (Some(a), _) => a.value,
            };
            Some(TlsSettings {
                cert_file: resolve(&t.cert_file)?,
                key_file: resolve(&t.key_file)?,
                client_ca_file,
                client_auth,
                min_version: t.min_version.unwrap_or(MinVersion::TLS12),
            })
        }
    };

    let mut users = Vec::new();
    for (name, hash) in raw.basic_auth_users.iter().flatten() {
        if name.is_empty() || name.contains(':') {
            // RFC 7617: the user-id cannot hold a colon, so such a user could never log in.
            // (Keys carry no position; the value sits on the same line.)
            return Err(Pos::of(hash).err(
                file,
                "a basic_auth_users name must be non-empty and cannot contain ':'",
            ));
        }
        users.push(BasicAuthUser {
            name: name.clone(),
            hash: hash.value.clone(),
            pos: Pos::of(hash),
        });
    }

    let unauthenticated_paths = match &raw.unauthenticated_paths {
        None => DEFAULT_UNAUTHENTICATED
            .iter()
            .map(std::string::ToString::to_string)
            .collect(),
        Some(paths) => {
            let mut out = Vec::new();
            for p in paths {
                if !p.value.starts_with('/') {
                    return Err(Pos::of(p).err(
                        file,
                        format!(
                            "unauthenticated_paths entry \"{}\" must start with '/'",
                            p.value
                        ),
                    ));
                }
                out.push(p.value.clone());
            }
            out
        }
    };

    Ok(WebSettings {
        file: file.to_string(),
        tls,
        users,
        unauthenticated_paths,
    })
}

/// serde-saphyr renders a code snippet under its message; keep only the message itself.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or(s);
    let line = line.strip_prefix("error: ").unwrap_or(line);
    match line.find(": ") {
        Some(i) if line.starts_with("line ") => line[i + 2..].to_string(),
        _ => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> WebSettings {
        parse("web.yml", text, Path::new("/etc/pw")).unwrap()
    }

    fn parse_err(text: &str) -> String {
        parse("web.yml", text, Path::new("/etc/pw"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn empty_file_changes_nothing() {
        let s = parse_ok("\n");
        assert!(s.tls.is_none());
        assert!(s.users.is_empty());
        assert_eq!(s.unauthenticated_paths, ["/healthz", "/readyz"]);
    }

    #[test]
    fn full_file_resolves_relative_paths_against_the_config_dir() {
        let s = parse_ok(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: /abs/server.key\n  client_ca_file: ca/ca.crt\n  client_auth_type: VerifyClientCertIfGiven\n  min_version: TLS13\nbasic_auth_users:\n  prometheus: $2y$10$abc\nunauthenticated_paths: [/healthz]\n",
        );
        let tls = s.tls.unwrap();
        assert_eq!(tls.cert_file.path, Path::new("/etc/pw/server.crt"));
        assert_eq!(tls.cert_file.pos, Pos { line: 2, col: 14 });
        assert_eq!(tls.key_file.path, Path::new("/abs/server.key"));
        assert_eq!(
            tls.client_ca_file.unwrap().path,
            Path::new("/etc/pw/ca/ca.crt")
        );
        assert_eq!(tls.client_auth, ClientAuthType::VerifyClientCertIfGiven);
        assert_eq!(tls.min_version, MinVersion::TLS13);
        assert_eq!(s.users.len(), 1);
        assert_eq!(s.users[0].name, "prometheus");
        assert_eq!(s.users[0].hash, "$2y$10$abc");
        assert_eq!(s.users[0].pos.line, 8);
        assert_eq!(s.unauthenticated_paths, ["/healthz"]);
    }

    #[test]
    fn a_client_ca_alone_requires_client_certificates() {
        let s = parse_ok("tls_server_config: { cert_file: a, key_file: b, client_ca_file: c }\n");
        assert_eq!(
            s.tls.unwrap().client_auth,
            ClientAuthType::RequireAndVerifyClientCert
        );
    }

    #[test]
    fn unknown_keys_are_errors_with_file_line_and_column() {
        let e = parse_err("tls_server_config:\n  cert_file: a\n  key_file: b\n  certfile: c\n");
        assert!(e.starts_with("web.yml:4:"), "{e}");
        assert!(e.contains("unknown field"), "{e}");
        assert!(e.contains("certfile"), "{e}");
        let e = parse_err("basic_auth: {}\n");
        assert!(e.starts_with("web.yml:1:1: "), "{e}");
    }

    #[test]
    fn inconsistent_client_auth_is_an_error() {
        let e = parse_err(
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n",
        );
        assert!(e.starts_with("web.yml:4:21: "), "{e}");
        assert!(e.contains("needs client_ca_file"), "{e}");
        let e = parse_err(
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n  client_auth_type: NoClientCert\n",
        );
        assert!(e.contains("client_auth_type is NoClientCert"), "{e}");
        let e = parse_err(
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n  client_auth_type: RequireAnyClientCert\n",
        );
        assert!(e.starts_with("web.yml:5:"), "{e}");
        assert!(e.contains("RequireAndVerifyClientCert"), "{e}");
    }

    #[test]
    fn missing_key_file_and_bad_paths_are_errors() {
        let e = parse_err("tls_server_config:\n  cert_file: a\n");
        assert!(e.contains("key_file"), "{e}");
        let e = parse_err("unauthenticated_paths: [healthz]\n");
        assert!(e.starts_with("web.yml:1:25: "), "{e}");
        let e = parse_err("basic_auth_users:\n  \"a:b\": x\n");
        assert!(e.starts_with("web.yml:2:"), "{e}");
    }

    #[test]
    fn user_debug_output_leaves_the_hash_out() {
        let u = BasicAuthUser {
            name: "p".into(),
            hash: "$2y$10$secretish".into(),
            pos: Pos::START,
        };
        assert!(!format!("{u:?}").contains("secretish"));
    }
}

//! `redis` probe: time to a usable Redis session, phase by phase, then `PING`.
//!
//! pathwatch speaks RESP by hand on a socket it opens itself instead of using a client
//! library: a library connects, negotiates TLS, authenticates and selects the database inside
//! one call, which hides where the time went and which step failed. Here each step is a
//! phase: `resolve`, `connect`, `tls` (rustls, verified as in tls.rs), `auth` (`AUTH`, in the
//! Redis 6 ACL form when a username is given), `query` (`SELECT` when `db` is set, then
//! `PING`, which must answer `+PONG`). A probe only needs to send arrays of bulk strings and
//! to read one reply line (or bulk string) per command, which is a few lines of code.

use crate::core::target::{HostPort, HostPortError};
use crate::core::types::{Secret, SecretFile, pick_secret};
use crate::probe::common::kind::{KindFamily, Probe, ProbeKind, RetargetError};
use crate::probe::common::tls::{self, TlsError, Verify};
use crate::probe::{
    Kind, Outcome, Phase, ProbeError, Reason, Trace, Transport, connect_tcp, io_reason, resolve,
};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// Longest reply line read (bytes): Redis' own replies to these commands are tens of bytes,
/// so anything longer is not Redis.
const MAX_LINE: u64 = 4096;
/// Longest bulk reply read (bytes), for the same reason.
const MAX_BULK: usize = 64 * 1024;
/// Server error texts are cut to this many characters in failure details.
const MAX_DETAIL: usize = 200;

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisSpec {
    /// A host name or IP address, or the absolute path of the server's Unix socket
    /// (its `unixsocket` setting, e.g. `/var/run/redis/redis-server.sock`).
    pub(crate) host: String,
    /// TCP port (the `tls-port` with `tls: true`).
    #[serde(default = "default_port")]
    pub(crate) port: u16,
    /// An ACL user (Redis 6+): sends `AUTH username password` instead of `AUTH password`.
    pub(crate) username: Option<String>,
    pub(crate) password: Option<Secret>,
    pub(crate) password_file: Option<SecretFile>,
    /// The logical database to `SELECT` before the `PING`.
    pub(crate) db: Option<u32>,
    /// Speak TLS (Redis' `tls-port`, Memorystore's in-transit encryption).
    #[serde(default)]
    pub(crate) tls: bool,
    /// PEM file of the CA that signed the server certificate (default: the Mozilla roots).
    pub(crate) ca_file: Option<PathBuf>,
    /// Encrypt without checking the server's certificate.
    #[serde(default)]
    pub(crate) insecure_skip_verify: bool,
}

/// Why a `redis` spec does not build.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RedisError {
    /// A blank host, or port 0 over TCP.
    #[error(transparent)]
    Address(#[from] HostPortError),
    /// Both `password` and `password_file`, or a file that cannot be read.
    #[error("{0}")]
    Password(String),
    #[error("\"username\" needs \"password\" or \"password_file\"")]
    UsernameWithoutPassword,
    #[error("\"ca_file\" needs \"tls: true\"")]
    CaFileWithoutTls,
    #[error("\"insecure_skip_verify\" needs \"tls: true\"")]
    InsecureWithoutTls,
    #[error("give \"ca_file\" or \"insecure_skip_verify\", not both")]
    CaFileAndInsecure,
    /// Redis serves TLS only on its tls-port; its Unix socket is always plain.
    #[error("\"tls\" is not available over a Unix socket")]
    TlsOverUnix,
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A built `redis` probe: the spec and its TLS config (built once, so a bad CA file is a
/// config error, not a failed run; `None` without TLS).
#[derive(Debug)]
pub(crate) struct RedisProbe {
    spec: RedisSpec,
    tls: Option<Arc<rustls::ClientConfig>>,
}

fn default_port() -> u16 {
    6379
}

impl RedisSpec {
    /// The same probe without its user and password, for an on-demand target that is not
    /// its own (`/probe`: credentials stay with the server they were configured for).
    pub(crate) fn without_credentials(&self) -> RedisSpec {
        RedisSpec {
            username: None,
            password: None,
            password_file: None,
            ..self.clone()
        }
    }

    pub(crate) fn transport(&self) -> Transport {
        if self.host.starts_with('/') {
            Transport::Unix
        } else {
            Transport::Tcp
        }
    }

    /// The password to send; an empty one (an unset `${VAR:-}`) means none.
    fn password(&self) -> Option<Secret> {
        pick_secret(&self.password, &self.password_file, "password")
            .ok()
            .flatten()
            .filter(|p| !p.expose().is_empty())
    }

    /// The checks of the fields, without building anything.
    fn check(&self) -> Result<(), RedisError> {
        // Over a Unix socket the port is not used.
        if self.transport() == Transport::Tcp {
            HostPort::new(&self.host, self.port)?;
        }
        let password = pick_secret(&self.password, &self.password_file, "password")
            .map_err(RedisError::Password)?;
        if self.username.is_some() && password.is_none() {
            return Err(RedisError::UsernameWithoutPassword);
        }
        if !self.tls {
            if self.ca_file.is_some() {
                return Err(RedisError::CaFileWithoutTls);
            }
            if self.insecure_skip_verify {
                return Err(RedisError::InsecureWithoutTls);
            }
        }
        if self.ca_file.is_some() && self.insecure_skip_verify {
            return Err(RedisError::CaFileAndInsecure);
        }
        if self.tls && self.transport() == Transport::Unix {
            return Err(RedisError::TlsOverUnix);
        }
        Ok(())
    }

    fn tls_config(&self) -> Result<Option<Arc<rustls::ClientConfig>>, RedisError> {
        if !self.tls {
            return Ok(None);
        }
        let verify = if self.insecure_skip_verify {
            Verify::Nothing
        } else {
            Verify::Full
        };
        Ok(Some(tls::client_config(verify, self.ca_file.as_deref())?))
    }
}

async fn probe(p: &RedisProbe, trace: &Trace) -> Result<Outcome, ProbeError> {
    let spec = &p.spec;
    trace.observe(crate::probe::Observation::Samples(vec![
        crate::probe::kinds::postgres::timed(spec.transport()),
    ]));
    let password = spec.password();
    let out = match spec.transport() {
        Transport::Unix => {
            let path = Path::new(&spec.host);
            let stream = trace
                .time(Phase::Connect, async {
                    tokio::net::UnixStream::connect(path)
                        .await
                        .map_err(|e| unix_error(path, &e))
                })
                .await?;
            session(stream, spec, password.as_ref(), trace).await
        }
        Transport::Tcp => {
            let tls = p.tls.clone();
            let addrs = resolve(&spec.host, spec.port, trace).await?;
            let stream = connect_tcp(&addrs, trace).await?;
            match tls {
                None => session(stream, spec, password.as_ref(), trace).await,
                Some(tls) => {
                    let name = rustls::pki_types::ServerName::try_from(spec.host.clone()).map_err(
                        |e| ProbeError::new(Reason::Tls, format!("bad TLS server name: {e}")),
                    )?;
                    let stream = trace
                        .time(
                            Phase::Tls,
                            tokio_rustls::TlsConnector::from(tls).connect(name, stream),
                        )
                        .await
                        .map_err(|e| {
                            // Every handshake failure is `tls`: a plain-text port, a bad
                            // certificate and a reset during the handshake all mean the TLS
                            // session could not be set up.
                            ProbeError::new(Reason::Tls, format!("TLS handshake: {e}"))
                        })?;
                    session(stream, spec, password.as_ref(), trace).await
                }
            }
        }
    };
    // The server never echoes the password, but a server that is not Redis might.
    out.map_err(|e| match &password {
        Some(pw) => redact(e, pw),
        None => e,
    })
}

fn unix_error(path: &Path, e: &std::io::Error) -> ProbeError {
    let reason = io_reason(e);
    let detail = match reason {
        Reason::SocketMissing => format!("no socket \"{}\"", path.display()),
        Reason::Refused => format!(
            "socket \"{}\" refused the connection (stale socket: server not running)",
            path.display()
        ),
        _ => format!("connecting to \"{}\": {e}", path.display()),
    };
    ProbeError::new(reason, detail)
}

/// `AUTH` (phase `auth`, only when a password is set), then `SELECT` and `PING` (phase
/// `query`).
async fn session<S>(
    stream: S,
    spec: &RedisSpec,
    password: Option<&Secret>,
    trace: &Trace,
) -> Result<Outcome, ProbeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut conn = Conn(BufReader::new(stream));
    if let Some(pw) = password {
        trace
            .time(Phase::Auth, async {
                let mut args: Vec<&[u8]> = vec![b"AUTH"];
                if let Some(user) = &spec.username {
                    args.push(user.as_bytes());
                }
                args.push(pw.expose().as_bytes());
                conn.send(&args).await?;
                expect_ok(conn.reply().await?, "AUTH")
            })
            .await?;
    }
    trace
        .time(Phase::Query, async {
            if let Some(db) = spec.db {
                conn.send(&[b"SELECT", db.to_string().as_bytes()]).await?;
                expect_ok(conn.reply().await?, "SELECT")?;
            }
            conn.send(&[b"PING"]).await?;
            match conn.reply().await? {
                Reply::Simple(s) if s == "PONG" => Ok(()),
                other => Err(unexpected(other, "PING")),
            }
        })
        .await?;
    // Best effort: a TLS close_notify, then FIN. The session has already proven itself.
    let _ = tokio::time::timeout(Duration::from_secs(1), conn.0.shutdown()).await;
    Ok(Outcome::default())
}

/// One RESP reply, as far as a probe reads it.
#[derive(Debug, PartialEq)]
enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    /// `None` is the null bulk string (`$-1`).
    Bulk(Option<Vec<u8>>),
    /// Only the element count: no command sent here answers with an array.
    Array(i64),
}

struct Conn<S>(BufReader<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// Sends a command as a RESP array of bulk strings.
    async fn send(&mut self, args: &[&[u8]]) -> Result<(), ProbeError> {
        let mut buf = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a);
            buf.extend_from_slice(b"\r\n");
        }
        let w = self.0.get_mut();
        let sent = async {
            w.write_all(&buf).await?;
            w.flush().await
        }
        .await;
        sent.map_err(|e| ProbeError::new(io_reason(&e), format!("sending a command: {e}")))
    }

    /// Reads one reply.
    async fn reply(&mut self) -> Result<Reply, ProbeError> {
        let line = self.line().await?;
        // The type byte is ASCII in RESP; anything else falls through to "not a reply".
        let (kind, rest) = line.get(..1).zip(line.get(1..)).unwrap_or_default();
        let number = || {
            rest.parse::<i64>().map_err(|_| {
                ProbeError::new(
                    Reason::Protocol,
                    format!("bad RESP number in {:?}", clip(&line)),
                )
            })
        };
        Ok(match kind {
            "+" => Reply::Simple(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Integer(number()?),
            "*" => Reply::Array(number()?),
            "$" => {
                let len = number()?;
                if len < 0 {
                    return Ok(Reply::Bulk(None));
                }
                let len = usize::try_from(len)
                    .ok()
                    .filter(|l| *l <= MAX_BULK)
                    .ok_or_else(|| {
                        ProbeError::new(Reason::Protocol, format!("bulk reply of {len} bytes"))
                    })?;
                // The bulk, then its CRLF.
                let mut data = vec![0; len + 2];
                self.0
                    .read_exact(&mut data)
                    .await
                    .map_err(|e| read_error(&e))?;
                data.truncate(len);
                Reply::Bulk(Some(data))
            }
            _ => {
                return Err(ProbeError::new(
                    Reason::Protocol,
                    format!("not a Redis reply: {:?}", clip(&line)),
                ));
            }
        })
    }

    /// One CRLF-terminated line, without its CRLF; never empty.
    async fn line(&mut self) -> Result<String, ProbeError> {
        let mut buf = Vec::new();
        (&mut self.0)
            .take(MAX_LINE)
            .read_until(b'\n', &mut buf)
            .await
            .map_err(|e| read_error(&e))?;
        if buf.is_empty() {
            return Err(ProbeError::new(
                Reason::Reset,
                "the server closed the connection without answering (a TLS-only port? set tls: true)",
            ));
        }
        let Some(line) = buf.strip_suffix(b"\r\n") else {
            let what = if buf.len() as u64 >= MAX_LINE {
                "a reply line too long for Redis"
            } else {
                "an unterminated reply line"
            };
            return Err(ProbeError::new(
                Reason::Protocol,
                format!("{what}: {:?}", clip(&String::from_utf8_lossy(&buf))),
            ));
        };
        if line.is_empty() {
            return Err(ProbeError::new(Reason::Protocol, "an empty reply line"));
        }
        Ok(String::from_utf8_lossy(line).into_owned())
    }
}

fn read_error(e: &std::io::Error) -> ProbeError {
    ProbeError::new(io_reason(e), format!("reading a reply: {e}"))
}

fn expect_ok(reply: Reply, command: &str) -> Result<(), ProbeError> {
    match reply {
        Reply::Simple(s) if s == "OK" => Ok(()),
        other => Err(unexpected(other, command)),
    }
}

/// A reply that is not the one `command` should get: a server error is named by its code,
/// anything else is `protocol`.
fn unexpected(reply: Reply, command: &str) -> ProbeError {
    match reply {
        Reply::Error(msg) => ProbeError::new(
            error_reason(&msg),
            format!("{command} answered -{}", clip(&msg)),
        ),
        other => ProbeError::new(
            Reason::Protocol,
            format!("{command} answered {}", clip(&format!("{other:?}"))),
        ),
    }
}

/// The reason of a Redis error reply, from its code (the first word) and, for the generic
/// `ERR`, its text, which is stable across Redis versions for these cases.
fn error_reason(msg: &str) -> Reason {
    let code = msg.split_whitespace().next().unwrap_or("");
    let text = msg.to_ascii_lowercase();
    match code {
        // WRONGPASS: Redis 6+ bad user or password; NOAUTH: a password is needed.
        "WRONGPASS" | "NOAUTH" => Reason::Auth,
        // LOADING: the dataset is still being loaded after a (re)start; BUSY: a script runs;
        // MASTERDOWN: a replica lost its master and serves no reads.
        "LOADING" | "BUSY" | "MASTERDOWN" => Reason::Unavailable,
        // NOPERM: the ACL user may not run the command; DENIED: protected mode.
        "NOPERM" | "DENIED" => Reason::Forbidden,
        "ERR"
            if text.contains("invalid password")
                || text.contains("invalid username-password")
                || text.contains("without any password configured") =>
        {
            Reason::Auth
        }
        "ERR" if text.contains("max number of clients") => Reason::TooManyConnections,
        "ERR" if text.contains("db index is out of range") || text.contains("invalid db index") => {
            Reason::DatabaseMissing
        }
        _ => Reason::Protocol,
    }
}

fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(MAX_DETAIL).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

fn redact(mut e: ProbeError, secret: &Secret) -> ProbeError {
    if e.detail.contains(secret.expose()) {
        e.detail = e.detail.replace(secret.expose(), "<redacted>");
    }
    e
}

impl ProbeKind for RedisSpec {
    const KIND: Kind = Kind::Redis;
    const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
    type Probe = RedisProbe;
    type Error = RedisError;
    const FAMILIES: &'static [KindFamily] = &[crate::probe::kinds::postgres::DB_CONNECT];

    fn build(&self) -> Result<RedisProbe, RedisError> {
        self.check()?;
        Ok(RedisProbe {
            spec: self.clone(),
            tls: self.tls_config()?,
        })
    }

    /// As for Postgres: the TLS config does not follow the address, only the transport.
    fn build_like(&self, base: &RedisProbe) -> Result<RedisProbe, RedisError> {
        if self.transport() != base.spec.transport() {
            return self.build();
        }
        self.check()?;
        Ok(RedisProbe {
            spec: self.clone(),
            tls: base.tls.clone(),
        })
    }

    /// The same probe against another server (on-demand probing): `host:port` or a socket.
    fn retarget(&self, target: &str) -> Result<Self, RetargetError> {
        let (host, port) = crate::core::target::socket_or_host_port(target, self.port)?;
        Ok(RedisSpec {
            host,
            port,
            ..self.clone()
        })
    }

    fn without_credentials(&self) -> Self {
        RedisSpec::without_credentials(self)
    }
}

impl Probe for RedisProbe {
    async fn run(&self, trace: &Trace) -> Result<Outcome, ProbeError> {
        probe(self, trace).await
    }
}

#[cfg(test)]
mod tests;

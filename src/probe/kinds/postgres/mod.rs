//! `postgres` probe: time to a usable session, phase by phase, over TCP or a Unix socket.
//!
//! pathwatch opens the socket itself (trace `resolve`, `connect`), negotiates TLS itself
//! (`SSLRequest`, then rustls: phase `tls`), hands the stream to tokio-postgres for startup and
//! authentication (phase `auth`), then runs the query (phase `query`). Doing the first steps by
//! hand is what lets each phase be timed and each failure be named.

pub(crate) mod connections;

use crate::abort::AbortOnDrop;
use crate::core::target::{HostPort, HostPortError};
use crate::core::types::{Secret, SecretFile, pick_secret};
use crate::probe::common::kind::{
    DURATION_BUCKETS, KindFamily, Observed, Probe, ProbeKind, RetargetError,
};
use crate::probe::common::tls::{self, TlsError, Verify};
use crate::probe::{
    Kind, Outcome, Phase, ProbeError, Reason, Trace, Transport, connect_tcp, error_chain,
    io_reason, resolve,
};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_postgres::error::SqlState;

/// libpq's `sslmode` values (`allow` is not offered: it exists for servers that reject SSL
/// requests, and downgrades silently).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum SslMode {
    Disable,
    /// Try TLS, fall back to plain text if the server has none; no certificate check.
    #[default]
    Prefer,
    /// TLS or fail; no certificate check.
    Require,
    VerifyCa,
    VerifyFull,
}

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresSpec {
    /// A host name or IP address, or an absolute directory holding the server's Unix socket
    /// (`/cloudsql/PROJECT:REGION:INSTANCE`, `/var/run/postgresql`), as in libpq.
    pub(crate) host: String,
    /// TCP port, and the suffix of the socket file (`.s.PGSQL.5432`) in a socket directory.
    #[serde(default = "default_port")]
    pub(crate) port: u16,
    /// The role to log in as.
    #[serde(default = "default_user")]
    pub(crate) user: String,
    pub(crate) password: Option<Secret>,
    pub(crate) password_file: Option<SecretFile>,
    /// Defaults to the user name, as in libpq (so does an empty one: an unset
    /// `${PGDATABASE:-}`).
    pub(crate) dbname: Option<String>,
    #[serde(default)]
    pub(crate) sslmode: SslMode,
    /// PEM file of the CA that signed the server certificate (Cloud SQL's server CA);
    /// without it, the Mozilla roots are trusted.
    pub(crate) sslrootcert: Option<PathBuf>,
    /// Run with the simple query protocol once the session is up.
    #[serde(default = "default_query")]
    pub(crate) query: String,
    /// Shown in `pg_stat_activity`.
    #[serde(default = "default_application_name")]
    pub(crate) application_name: String,
    /// Also read the server's connections in the same session (phase `connections`):
    /// sessions by database and state against `max_connections`.
    #[serde(default)]
    pub(crate) connections: bool,
}

/// Why a `postgres` spec does not build.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PostgresError {
    /// A blank host, or port 0 over TCP.
    #[error(transparent)]
    Address(#[from] HostPortError),
    /// Both `password` and `password_file`, or a file that cannot be read.
    #[error("{0}")]
    Password(String),
    #[error(
        "\"sslrootcert\" needs sslmode verify-ca or verify-full (the other modes do not check certificates)"
    )]
    RootCertWithoutVerify,
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A built `postgres` probe: the spec and its TLS config (built once, so a bad CA file is a
/// config error, not a failed run; `None` without TLS).
#[derive(Debug)]
pub(crate) struct PostgresProbe {
    spec: PostgresSpec,
    tls: Option<Arc<rustls::ClientConfig>>,
}

fn default_port() -> u16 {
    5432
}
fn default_user() -> String {
    "postgres".into()
}
fn default_query() -> String {
    "SELECT 1".into()
}
fn default_application_name() -> String {
    "pathwatch".into()
}

impl PostgresSpec {
    pub(crate) fn transport(&self) -> Transport {
        if self.host.starts_with('/') {
            Transport::Unix
        } else {
            Transport::Tcp
        }
    }

    /// The same probe without its password, for an on-demand target that is not its own
    /// (`/probe`: credentials stay with the server they were configured for).
    pub(crate) fn without_credentials(&self) -> PostgresSpec {
        PostgresSpec {
            password: None,
            password_file: None,
            ..self.clone()
        }
    }

    fn password(&self) -> Option<Secret> {
        pick_secret(&self.password, &self.password_file, "password")
            .ok()
            .flatten()
    }

    /// The checks of the fields, without building anything.
    fn check(&self) -> Result<(), PostgresError> {
        // Over a Unix socket the port only names the socket file (`.s.PGSQL.5432`).
        if self.transport() == Transport::Tcp {
            HostPort::new(&self.host, self.port)?;
        }
        pick_secret(&self.password, &self.password_file, "password")
            .map_err(PostgresError::Password)?;
        if self.sslrootcert.is_some()
            && !matches!(self.sslmode, SslMode::VerifyCa | SslMode::VerifyFull)
        {
            return Err(PostgresError::RootCertWithoutVerify);
        }
        Ok(())
    }

    fn tls_config(&self) -> Result<Option<Arc<rustls::ClientConfig>>, PostgresError> {
        let verify = match self.sslmode {
            SslMode::Disable => None,
            SslMode::Prefer | SslMode::Require => Some(Verify::Nothing),
            SslMode::VerifyCa => Some(Verify::Chain),
            SslMode::VerifyFull => Some(Verify::Full),
        };
        Ok(match verify {
            Some(v) if self.transport() == Transport::Tcp => {
                Some(tls::client_config(v, self.sslrootcert.as_deref())?)
            }
            // libpq ignores sslmode on Unix sockets: the kernel is the transport.
            _ => None,
        })
    }

    fn pg_config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.user(&self.user)
            .dbname(
                self.dbname
                    .as_deref()
                    .filter(|d| !d.is_empty())
                    .unwrap_or(&self.user),
            )
            .application_name(&self.application_name)
            // TLS, when wanted, is already in place on the stream handed over.
            .ssl_mode(tokio_postgres::config::SslMode::Disable);
        // An empty password (an unset `${VAR:-}`) means none, as in libpq.
        if let Some(pw) = self.password().filter(|p| !p.expose().is_empty()) {
            c.password(pw.expose());
        }
        c
    }
}

async fn probe(p: &PostgresProbe, trace: &Trace) -> Result<Outcome, ProbeError> {
    let spec = &p.spec;
    trace.observe(crate::probe::Observation::Samples(vec![timed(
        spec.transport(),
    )]));
    let config = spec.pg_config();
    match spec.transport() {
        Transport::Unix => {
            let path = socket_path(Path::new(&spec.host), spec.port);
            let stream = trace
                .time(Phase::Connect, async {
                    tokio::net::UnixStream::connect(&path)
                        .await
                        .map_err(|e| unix_error(&path, &e))
                })
                .await?;
            session(stream, &config, spec, trace).await
        }
        Transport::Tcp => {
            let tls = p.tls.clone();
            let addrs = resolve(&spec.host, spec.port, trace).await?;
            let mut stream = connect_tcp(&addrs, trace).await?;
            let Some(tls) = tls else {
                return session(stream, &config, spec, trace).await;
            };
            let start = trace.enter(Phase::Tls);
            if !ssl_request(&mut stream).await? {
                if spec.sslmode == SslMode::Prefer {
                    // The server has no TLS: libpq's `prefer` goes on in plain text, and the
                    // refused request's round trip counts toward auth.
                    return session(stream, &config, spec, trace).await;
                }
                return Err(ProbeError::new(
                    Reason::Tls,
                    format!(
                        "sslmode {:?} but the server does not support TLS",
                        spec.sslmode
                    ),
                ));
            }
            let name = rustls::pki_types::ServerName::try_from(spec.host.clone())
                .map_err(|e| ProbeError::new(Reason::Tls, format!("bad TLS server name: {e}")))?;
            let stream = tokio_rustls::TlsConnector::from(tls)
                .connect(name, stream)
                .await
                .map_err(|e| ProbeError::new(Reason::Tls, format!("TLS handshake: {e}")))?;
            trace.complete(Phase::Tls, start.elapsed());
            session(stream, &config, spec, trace).await
        }
    }
}

/// The socket file inside a libpq socket directory.
fn socket_path(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!(".s.PGSQL.{port}"))
}

fn unix_error(path: &Path, e: &std::io::Error) -> ProbeError {
    let reason = io_reason(e);
    let dir_missing = path.parent().is_some_and(|d| !d.exists());
    let detail = match (reason, dir_missing) {
        (Reason::SocketMissing, true) => format!(
            "socket directory \"{}\" does not exist (is the Cloud SQL connector or volume mounted?)",
            path.parent()
                .map(|d| d.display().to_string())
                .unwrap_or_default()
        ),
        (Reason::SocketMissing, false) => format!(
            "no socket \"{}\" (is the server running on this port?)",
            path.display()
        ),
        (Reason::Refused, _) => format!(
            "socket \"{}\" refused the connection (stale socket: server not running)",
            path.display()
        ),
        _ => format!("connecting to \"{}\": {e}", path.display()),
    };
    ProbeError::new(reason, detail)
}

/// Sends Postgres' SSLRequest; true when the server answers 'S' (ready for a TLS handshake).
async fn ssl_request(stream: &mut tokio::net::TcpStream) -> Result<bool, ProbeError> {
    // Length 8, then the SSLRequest code 1234.5679 (protocol docs, "SSLRequest").
    const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    let io = |e: std::io::Error| ProbeError::new(io_reason(&e), format!("TLS negotiation: {e}"));
    stream.write_all(&SSL_REQUEST).await.map_err(io)?;
    let mut answer = [0u8; 1];
    stream.read_exact(&mut answer).await.map_err(io)?;
    match answer[0] {
        b'S' => Ok(true),
        b'N' => Ok(false),
        other => Err(ProbeError::new(
            Reason::Protocol,
            format!("unexpected answer {other:#04x} to SSLRequest: is this a Postgres server?"),
        )),
    }
}

/// Startup and authentication (phase `auth`), then the query (phase `query`), then with
/// `connections: true` the server's connections (phase `connections`).
async fn session<S>(
    stream: S,
    config: &tokio_postgres::Config,
    spec: &PostgresSpec,
    trace: &Trace,
) -> Result<Outcome, ProbeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (client, connection) = trace
        .time(
            Phase::Auth,
            config.connect_raw(stream, tokio_postgres::NoTls),
        )
        .await
        .map_err(|e| pg_error(&e, Reason::Protocol))?;
    // The connection drives the socket; abort it if this probe is dropped at its timeout.
    let driver = AbortOnDrop(tokio::spawn(connection));
    let messages = trace
        .time(Phase::Query, client.simple_query(&spec.query))
        .await
        .map_err(|e| pg_error(&e, Reason::Query))?;
    let rows = messages
        .iter()
        .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
        .count();
    let mut facts = vec![("rows", rows.to_string())];
    if spec.connections {
        let seen = trace
            .time(
                Phase::Connections,
                crate::probe::kinds::postgres::connections::read(&client),
            )
            .await?;
        facts.push(("connections", seen.text()));
        // The report is whole: the run stays timed in its transport's series.
        let mut samples = seen.samples();
        samples.push(timed(spec.transport()));
        trace.observe(crate::probe::Observation::Samples(samples));
    }
    // Dropping the client sends Terminate, so the server logs a clean disconnect. The close
    // runs on its own task: the run (and its duration, "time to a usable session") ends when
    // the query answers, not after the goodbye (~0.1 ms, 3 % of a local session: bench/pg_baseline.py).
    tokio::spawn(async move {
        drop(client);
        let _ = tokio::time::timeout(Duration::from_secs(1), driver.wait()).await;
    });
    Ok(Outcome { facts })
}

/// Names a tokio-postgres failure; `otherwise` is the reason for server errors we do not know.
fn pg_error(e: &tokio_postgres::Error, otherwise: Reason) -> ProbeError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let reason = if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            Reason::Auth
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            Reason::DatabaseMissing
        } else if *code == SqlState::TOO_MANY_CONNECTIONS {
            Reason::TooManyConnections
        } else if *code == SqlState::CANNOT_CONNECT_NOW || *code == SqlState::ADMIN_SHUTDOWN {
            Reason::Unavailable
        } else {
            otherwise
        };
        return ProbeError::new(
            reason,
            format!("{} ({}): {}", db.severity(), code.code(), db.message()),
        );
    }
    let (reason, detail) = error_chain(e, Reason::Protocol);
    // tokio-postgres' own auth failures (a password the server wants but we lack, an
    // unsupported method) have no SQLSTATE.
    let reason = match reason {
        Reason::Protocol if e.is_closed() => Reason::Reset,
        Reason::Protocol
            if detail.starts_with("authentication error")
                || detail.contains("password missing") =>
        {
            Reason::Auth
        }
        r => r,
    };
    ProbeError::new(reason, detail)
}

/// `pathwatch_db_connect_seconds{probe, transport}` (postgres and redis): time to a usable
/// session.
pub(crate) const DB_CONNECT: KindFamily = KindFamily::histogram(
    "db_connect",
    "Time to a usable database session (connect, TLS, auth and first query); runs that fail fast are not observed, runs cut at the timeout are",
    DURATION_BUCKETS,
    Observed::RunSeconds,
)
.unit("seconds")
.labels(&["transport"]);

/// The sample that times a database probe's run in [`DB_CONNECT`]: its series is the
/// transport's.
pub(crate) fn timed(transport: Transport) -> crate::probe::Sample {
    DB_CONNECT.timed(vec![transport.as_str().to_string()])
}

impl ProbeKind for PostgresSpec {
    const KIND: Kind = Kind::Postgres;
    const DEFAULT_TIMEOUT: Duration = Duration::from_secs(75);
    type Probe = PostgresProbe;
    type Error = PostgresError;
    const FAMILIES: &'static [KindFamily] = &[
        DB_CONNECT,
        connections::SESSIONS,
        connections::MAX,
        connections::RESERVED,
        connections::USED_RATIO,
        connections::READABLE,
    ];
    /// `connections_below` bounds the share of usable slots in use.
    const RATIO: Option<&'static str> = Some(connections::USED_RATIO.name);

    fn build(&self) -> Result<PostgresProbe, PostgresError> {
        self.check()?;
        Ok(PostgresProbe {
            spec: self.clone(),
            tls: self.tls_config()?,
        })
    }

    /// The TLS config follows sslmode, the CA and the transport, not the address: an
    /// on-demand run on the module's transport reuses the module's instead of building one.
    fn build_like(&self, base: &PostgresProbe) -> Result<PostgresProbe, PostgresError> {
        if self.transport() != base.spec.transport() {
            return self.build();
        }
        self.check()?;
        Ok(PostgresProbe {
            spec: self.clone(),
            tls: base.tls.clone(),
        })
    }

    /// The same probe against another server (on-demand probing): `host:port`, or a socket
    /// directory.
    fn retarget(&self, target: &str) -> Result<Self, RetargetError> {
        let (host, port) = crate::core::target::socket_or_host_port(target, self.port)?;
        Ok(PostgresSpec {
            host,
            port,
            ..self.clone()
        })
    }

    fn without_credentials(&self) -> Self {
        PostgresSpec::without_credentials(self)
    }
}

impl Probe for PostgresProbe {
    async fn run(&self, trace: &Trace) -> Result<Outcome, ProbeError> {
        probe(self, trace).await
    }
}

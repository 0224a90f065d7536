//! The reference service's Postgres (Cloud SQL): a stand-in that speaks the wire protocol
//! through the `pgwire` library, on a TCP port and on a Unix socket laid out as the Cloud SQL
//! connector lays them out (`<dir>/<project>:<region>:<instance>/.s.PGSQL.5432`).
//!
//! It authenticates with the sim's password (SCRAM-SHA-256 by default, or MD5, or cleartext:
//! [`PgAuth`]), answers `SELECT 1` and the `postgres` probe's `connections: true` read of
//! `pg_stat_activity`, and holds a connection count the scenario drives: the backend's pool
//! (other clients' sessions) plus the sessions open on it now, against `max_connections` 100
//! less 3 superuser-reserved slots. When every usable slot is taken a new connect fails with
//! SQLSTATE 53300, as Postgres' does.
//!
//! The faults ([`PgFaults`], `PUT /admin/faults` under `postgres`) are the ways the database
//! failed the first user: refused (nothing listens: the socket file stays, as a dead server
//! leaves it), accepted and never answered (the Cloud SQL hang: the client waits for its own
//! timeout), a slow answer, a password that no longer matches, too many connections, and the
//! pool climbing toward the limit.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::Sink;
use futures_util::stream;
use pgwire::api::auth::cleartext::CleartextPasswordAuthStartupHandler;
use pgwire::api::auth::md5pass::{Md5PasswordAuthStartupHandler, hash_md5_password};
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::{ScramAuth, gen_salted_password};
use pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
};
use pgwire::api::query::SimpleQueryHandler;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireServerHandlers, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use super::{SimState, lock};

/// Cloud SQL's default for an instance of the demo's size.
pub(crate) const MAX_CONNECTIONS: u32 = 100;
/// Postgres' default `superuser_reserved_connections`.
pub(crate) const RESERVED_CONNECTIONS: u32 = 3;
/// Slots an ordinary role can take.
pub const USABLE_CONNECTIONS: u32 = MAX_CONNECTIONS - RESERVED_CONNECTIONS;
/// The backend's pool when nothing is wrong: sessions other clients hold.
pub const POOL_SESSIONS: u32 = 12;
/// The database the backend's pool is connected to.
pub(crate) const APP_DATABASE: &str = "netra_staging";
/// PBKDF2 rounds of the SCRAM verifier (Postgres' default).
const SCRAM_ITERATIONS: usize = 4096;
/// Pause between attempts to listen again after a refusal ends.
const REBIND_PAUSE: Duration = Duration::from_millis(100);

/// How the stand-in asks for the password, as `pg_hba.conf` names the methods.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum PgAuth {
    /// Cloud SQL's default since Postgres 14.
    #[default]
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    /// MD5 of password and user, as before Postgres 14.
    #[serde(rename = "md5")]
    Md5,
    /// The password in clear text (over the socket, as `password` in pg_hba.conf).
    #[serde(rename = "password")]
    Password,
}

/// The Postgres stand-in's faults; each applies to the next connection.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PgFaults {
    /// Nothing listens: connects are refused (the Unix socket file stays, as a crashed
    /// server leaves it).
    pub refuse: bool,
    /// Accept the connection and never answer: the client waits until its own timeout (the
    /// incident's Cloud SQL hang). Connections stay held until the client leaves.
    pub hang: bool,
    /// Wait this long (ms) after accepting before answering the startup.
    pub slow_ms: u64,
    /// The server's password is no longer the sim's (rotated): authentication fails (28P01).
    pub wrong_password: bool,
    /// Every slot is taken: new connects fail with SQLSTATE 53300.
    pub too_many_connections: bool,
    /// How the server asks for the password.
    pub auth: PgAuth,
    /// Sessions the backend's pool holds (default [`POOL_SESSIONS`]); when they and the open
    /// sessions fill the usable slots, new connects fail with 53300.
    pub pool_sessions: Option<u32>,
    /// The pool climbs from [`POOL_SESSIONS`] to `pool_sessions` over this long (ms) from
    /// when the fault is set, instead of at once: saturation rising toward the limit.
    pub pool_ramp_ms: u64,
}

/// What the server notes between connections: when the pool's ramp began.
#[derive(Default)]
struct Ramp {
    /// `(pool_sessions, pool_ramp_ms)` the ramp is for, and when it was first seen.
    current: Option<((Option<u32>, u64), Instant)>,
}

/// The open sessions by id: database name, and whether a query runs on it now.
#[derive(Default)]
struct Sessions {
    open: BTreeMap<u64, (String, bool)>,
}

struct Inner {
    state: SimState,
    sessions: Mutex<Sessions>,
    ramp: Mutex<Ramp>,
    next_id: AtomicU64,
    /// SCRAM verifiers of the right and the rotated password, made once (PBKDF2 is slow on
    /// purpose).
    scram: OnceLock<[Password; 2]>,
}

/// The Postgres stand-in of one reference service; serve it on as many listeners as wanted
/// (they share the connection count). Cheap to clone.
#[derive(Clone)]
pub struct PgServer {
    inner: Arc<Inner>,
}

/// Where to listen.
pub enum PgListener {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix socket; the file is left in place when a `refuse` fault closes it.
    Unix(UnixListener, PathBuf),
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl PgListener {
    async fn accept(this: Option<&PgListener>) -> std::io::Result<Stream> {
        match this {
            Some(PgListener::Tcp(l)) => l.accept().await.map(|(s, _)| Stream::Tcp(s)),
            Some(PgListener::Unix(l, _)) => l.accept().await.map(|(s, _)| Stream::Unix(s)),
            None => std::future::pending().await,
        }
    }
}

/// A closed listener's address, to listen there again.
enum Address {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl Address {
    fn of(l: &PgListener) -> std::io::Result<Address> {
        Ok(match l {
            PgListener::Tcp(t) => Address::Tcp(t.local_addr()?),
            PgListener::Unix(_, path) => Address::Unix(path.clone()),
        })
    }

    async fn bind(&self) -> std::io::Result<PgListener> {
        match self {
            Address::Tcp(a) => TcpListener::bind(a).await.map(PgListener::Tcp),
            Address::Unix(path) => {
                // The stale socket file of the closed listener is in the way.
                match std::fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                UnixListener::bind(path).map(|l| PgListener::Unix(l, path.clone()))
            }
        }
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Tcp(a) => write!(f, "{a}"),
            Address::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

impl PgServer {
    /// A stand-in that reads its faults and auth from `state`; it listens once [`PgServer::serve`] is called.
    pub fn new(state: SimState) -> Self {
        PgServer {
            inner: Arc::new(Inner {
                state,
                sessions: Mutex::new(Sessions::default()),
                ramp: Mutex::new(Ramp::default()),
                next_id: AtomicU64::new(1),
                scram: OnceLock::new(),
            }),
        }
    }

    /// Serves the protocol on `listener` until `shutdown` is cancelled, following the
    /// `refuse` fault by closing and reopening it.
    ///
    /// # Errors
    /// Only when the listener's own address cannot be read.
    pub async fn serve(
        &self,
        listener: PgListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let addr = Address::of(&listener)?;
        let mut listener = Some(listener);
        loop {
            // Registered before the faults are read, so a change in between still wakes us.
            let changed = self.inner.state.inner.faults_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let faults = self.faults();
            if listener.is_some() && faults.refuse {
                tracing::debug!(%addr, "sim postgres: refusing connections");
                listener = None;
            } else if listener.is_none() && !faults.refuse {
                listener = self.rebind(&addr, &shutdown).await;
                if listener.is_none() {
                    return Ok(());
                }
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => {
                    // As Postgres does at a clean shutdown: the next start binds it anew.
                    if let Address::Unix(path) = &addr {
                        let _ = std::fs::remove_file(path);
                    }
                    return Ok(());
                }
                () = &mut changed => {}
                accepted = PgListener::accept(listener.as_ref()) => match accepted {
                    Ok(stream) => {
                        tokio::spawn(self.clone().session(stream, shutdown.clone()));
                    }
                    // Out of file descriptors and the like: pause rather than spin.
                    Err(e) => {
                        tracing::debug!(error = %e, "sim postgres: accept failed");
                        tokio::time::sleep(REBIND_PAUSE).await;
                    }
                },
            }
        }
    }

    /// Listens on `addr` again, retrying while it is briefly taken; `None` on shutdown.
    async fn rebind(&self, addr: &Address, shutdown: &CancellationToken) -> Option<PgListener> {
        for attempt in 0u64.. {
            match addr.bind().await {
                Ok(l) => {
                    tracing::debug!(%addr, "sim postgres: listening again");
                    return Some(l);
                }
                Err(e) if attempt == 0 => {
                    tracing::warn!(%addr, error = %e, "sim postgres: cannot listen again yet, retrying");
                }
                Err(_) => {}
            }
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = tokio::time::sleep(REBIND_PAUSE) => {}
            }
        }
        None
    }

    /// The Postgres faults in force, noting when a new pool ramp began.
    fn faults(&self) -> PgFaults {
        let faults = self.inner.state.faults().postgres;
        let key = (faults.pool_sessions, faults.pool_ramp_ms);
        let mut ramp = lock(&self.inner.ramp);
        if ramp.current.as_ref().is_none_or(|(k, _)| *k != key) {
            ramp.current = Some((key, Instant::now()));
        }
        faults
    }

    /// Sessions the backend's pool holds now.
    fn pool(&self, faults: &PgFaults) -> u32 {
        if faults.too_many_connections {
            return USABLE_CONNECTIONS;
        }
        let Some(target) = faults.pool_sessions else {
            return POOL_SESSIONS;
        };
        let since = lock(&self.inner.ramp)
            .current
            .map_or(Duration::ZERO, |(_, at)| at.elapsed());
        if faults.pool_ramp_ms == 0 {
            return target;
        }
        let done = (since.as_secs_f64() * 1000.0 / faults.pool_ramp_ms as f64).min(1.0);
        let from = f64::from(POOL_SESSIONS);
        (from + (f64::from(target) - from) * done).round() as u32
    }

    /// One connection: held without an answer, slowed, or handed to pgwire.
    async fn session(self, stream: Stream, shutdown: CancellationToken) {
        let faults = self.faults();
        if faults.hang {
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = hold(stream) => {}
            }
            return;
        }
        if faults.slow_ms > 0 {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(faults.slow_ms)) => {}
            }
        }
        let conn = Connection {
            server: self.clone(),
            slot: Arc::new(Slot {
                server: self.clone(),
                id: Mutex::new(None),
            }),
            auth: faults.auth,
            wrong_password: faults.wrong_password,
        };
        let served = async {
            match stream {
                Stream::Tcp(s) => pgwire::tokio::process_socket(s, None, conn).await,
                Stream::Unix(s) => pgwire::tokio::process_socket_unix(s, conn).await,
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => {}
            r = served => if let Err(e) = r {
                tracing::debug!(error = %e, "sim postgres: session ended");
            },
        }
    }

    /// Takes a slot for a new session on `database`, or the error Postgres sends when none
    /// is left.
    fn admit(&self, database: &str) -> PgWireResult<u64> {
        let faults = self.faults();
        let pool = self.pool(&faults);
        let mut sessions = lock(&self.inner.sessions);
        let open = u32::try_from(sessions.open.len()).unwrap_or(u32::MAX);
        if faults.too_many_connections || pool.saturating_add(open) >= MAX_CONNECTIONS {
            return Err(fatal("53300", "sorry, too many clients already"));
        }
        if pool.saturating_add(open) >= USABLE_CONNECTIONS {
            return Err(fatal(
                "53300",
                "remaining connection slots are reserved for roles with the SUPERUSER attribute",
            ));
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        sessions.open.insert(id, (database.to_owned(), false));
        Ok(id)
    }

    /// The rows of the probe's `pg_stat_activity` read: `[max, reserved, database, state,
    /// count]`, the pool's sessions mostly idle, the open ones idle or active.
    fn activity(&self) -> Vec<[String; 5]> {
        let faults = self.faults();
        let sessions = lock(&self.inner.sessions);
        // The pool is an ordinary role: it holds no more than the usable slots the open
        // sessions leave.
        let open = u32::try_from(sessions.open.len()).unwrap_or(u32::MAX);
        let pool = self
            .pool(&faults)
            .min(USABLE_CONNECTIONS.saturating_sub(open));
        // A pool mostly waits: one in six of its sessions runs a query.
        let active = pool.div_ceil(6);
        let mut counts: BTreeMap<(String, &'static str), u32> = BTreeMap::new();
        counts.insert((APP_DATABASE.into(), "idle"), pool - active);
        counts.insert((APP_DATABASE.into(), "active"), active);
        for (db, running) in sessions.open.values() {
            let state = if *running { "active" } else { "idle" };
            *counts.entry((db.clone(), state)).or_default() += 1;
        }
        counts
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|((db, state), n)| {
                [
                    MAX_CONNECTIONS.to_string(),
                    RESERVED_CONNECTIONS.to_string(),
                    db,
                    state.to_owned(),
                    n.to_string(),
                ]
            })
            .collect()
    }

    fn set_running(&self, id: Option<u64>, running: bool) {
        if let Some(id) = id
            && let Some(s) = lock(&self.inner.sessions).open.get_mut(&id)
        {
            s.1 = running;
        }
    }

    fn scram(&self, wrong: bool) -> Password {
        let [right, rotated] = self.inner.scram.get_or_init(|| {
            let salt = random_bytes::<16>().to_vec();
            let password = &self.inner.state.inner.password;
            [
                Password::new(
                    Some(salt.clone()),
                    gen_salted_password(password, &salt, SCRAM_ITERATIONS),
                ),
                Password::new(
                    Some(salt.clone()),
                    gen_salted_password(&rotated(password), &salt, SCRAM_ITERATIONS),
                ),
            ]
        });
        if wrong {
            rotated.clone()
        } else {
            right.clone()
        }
    }
}

/// The password after a rotation the client did not follow.
fn rotated(password: &str) -> String {
    format!("{password}-rotated")
}

fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut b = [0u8; N];
    // The system's random source failing is not worth failing a test service for: the salt
    // then is zeros, which only makes the verifier guessable.
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    b
}

/// A FATAL error, which ends the session (as Postgres' do).
fn fatal(code: &str, message: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        code.into(),
        message.into(),
    )))
}

/// Reads and drops whatever the client sends until it leaves: an accepted connection that
/// is never answered.
async fn hold(stream: Stream) {
    let mut buf = [0u8; 512];
    match stream {
        Stream::Tcp(mut s) => while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {},
        Stream::Unix(mut s) => while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {},
    }
}

/// A session's slot in the connection count, given back when the connection ends.
struct Slot {
    server: PgServer,
    id: Mutex<Option<u64>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(id) = lock(&self.id).take() {
            lock(&self.server.inner.sessions).open.remove(&id);
        }
    }
}

/// The handlers of one connection (pgwire asks for them once per connection).
struct Connection {
    server: PgServer,
    slot: Arc<Slot>,
    auth: PgAuth,
    wrong_password: bool,
}

impl PgWireServerHandlers for Connection {
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        let source = Source {
            server: self.server.clone(),
            auth: self.auth,
            wrong: self.wrong_password,
        };
        let method = match self.auth {
            PgAuth::ScramSha256 => {
                let mut scram = ScramAuth::new(Arc::new(source));
                scram.set_iterations(SCRAM_ITERATIONS);
                Method::Scram(Box::new(
                    SASLAuthStartupHandler::new(Arc::new(params())).with_scram(scram),
                ))
            }
            PgAuth::Md5 => Method::Md5(Box::new(Md5PasswordAuthStartupHandler::new(
                Arc::new(source),
                Arc::new(params()),
            ))),
            PgAuth::Password => Method::Password(Box::new(
                CleartextPasswordAuthStartupHandler::new(source, params()),
            )),
        };
        Arc::new(Startup {
            server: self.server.clone(),
            slot: self.slot.clone(),
            method,
        })
    }

    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::new(Queries {
            server: self.server.clone(),
            slot: self.slot.clone(),
        })
    }
}

/// What the server reports at startup: Cloud SQL's Postgres 16, an ordinary role.
fn params() -> DefaultServerParameterProvider {
    let mut p = DefaultServerParameterProvider::default();
    p.server_version = "16.6".into();
    p.is_superuser = false;
    p
}

/// The password the server expects, in the form each method compares.
struct Source {
    server: PgServer,
    auth: PgAuth,
    wrong: bool,
}

// Written by hand so no password can reach a log through `{:?}`.
impl Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("auth", &self.auth)
            .field("wrong", &self.wrong)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl AuthSource for Source {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let plain = || {
            let p = &self.server.inner.state.inner.password;
            if self.wrong { rotated(p) } else { p.clone() }
        };
        Ok(match self.auth {
            PgAuth::ScramSha256 => self.server.scram(self.wrong),
            PgAuth::Md5 => {
                let salt = random_bytes::<4>().to_vec();
                let hash = hash_md5_password(login.user().unwrap_or_default(), &plain(), &salt);
                Password::new(Some(salt), hash.into_bytes())
            }
            PgAuth::Password => Password::new(None, plain().into_bytes()),
        })
    }
}

/// pgwire's handler of each method (boxed: they differ in size).
enum Method {
    Scram(Box<SASLAuthStartupHandler<DefaultServerParameterProvider>>),
    Md5(Box<Md5PasswordAuthStartupHandler<Source, DefaultServerParameterProvider>>),
    Password(Box<CleartextPasswordAuthStartupHandler<Source, DefaultServerParameterProvider>>),
}

/// Startup: a slot first (53300 when none is left, before authentication, as Postgres
/// refuses a client over the limit), then the configured method.
struct Startup {
    server: PgServer,
    slot: Arc<Slot>,
    method: Method,
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let PgWireFrontendMessage::Startup(startup) = &message {
            let p = &startup.parameters;
            let database = p
                .get("database")
                .or_else(|| p.get("user"))
                .map_or("", String::as_str);
            let id = self.server.admit(database)?;
            *lock(&self.slot.id) = Some(id);
        }
        match &self.method {
            Method::Scram(h) => h.on_startup(client, message).await,
            Method::Md5(h) => h.on_startup(client, message).await,
            Method::Password(h) => h.on_startup(client, message).await,
        }
    }
}

/// The statements the `postgres` probe sends.
struct Queries {
    server: PgServer,
    slot: Arc<Slot>,
}

#[async_trait]
impl SimpleQueryHandler for Queries {
    async fn do_query<C>(&self, _client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
    {
        let id = *lock(&self.slot.id);
        self.server.set_running(id, true);
        let answer = self.answer(query);
        self.server.set_running(id, false);
        answer
    }
}

impl Queries {
    fn answer(&self, query: &str) -> PgWireResult<Vec<Response>> {
        let words: Vec<&str> = query
            .trim()
            .trim_end_matches(';')
            .split_whitespace()
            .collect();
        let normal = words.join(" ").to_ascii_lowercase();
        if normal == "select 1" {
            return rows(&[("?column?", Type::INT4)], vec![vec!["1".to_owned()]]);
        }
        if normal.contains("from pg_stat_activity") && normal.contains("max_connections") {
            let fields = [
                ("current_setting", Type::TEXT),
                ("current_setting", Type::TEXT),
                ("coalesce", Type::TEXT),
                ("coalesce", Type::TEXT),
                ("count", Type::INT8),
            ];
            let data = self.server.activity().into_iter().map(Vec::from).collect();
            return rows(&fields, data);
        }
        if let Some(name) = normal.strip_prefix("show ") {
            let value = match name {
                "max_connections" => MAX_CONNECTIONS.to_string(),
                "superuser_reserved_connections" => RESERVED_CONNECTIONS.to_string(),
                "server_version" => "16.6".to_owned(),
                _ => {
                    return Ok(vec![error(
                        "42704",
                        &format!("unrecognized configuration parameter \"{name}\""),
                    )]);
                }
            };
            return rows(&[(name, Type::TEXT)], vec![vec![value]]);
        }
        Ok(vec![error(
            "0A000",
            "the reference service's Postgres answers SELECT 1, SHOW and the pathwatch probe's pg_stat_activity read only",
        )])
    }
}

fn error(code: &str, message: &str) -> Response {
    Response::Error(Box::new(ErrorInfo::new(
        "ERROR".into(),
        code.into(),
        message.into(),
    )))
}

/// A result set in text format.
fn rows(fields: &[(&str, Type)], data: Vec<Vec<String>>) -> PgWireResult<Vec<Response>> {
    let schema = Arc::new(
        fields
            .iter()
            .map(|(name, ty)| {
                FieldInfo::new(
                    (*name).to_owned(),
                    None,
                    None,
                    ty.clone(),
                    FieldFormat::Text,
                )
            })
            .collect::<Vec<_>>(),
    );
    let mut encoder = DataRowEncoder::new(schema.clone());
    let mut encoded = Vec::with_capacity(data.len());
    for row in data {
        for value in &row {
            encoder.encode_field(&Some(value.as_str()))?;
        }
        encoded.push(Ok(encoder.take_row()));
    }
    Ok(vec![Response::Query(QueryResponse::new(
        schema,
        stream::iter(encoded),
    ))])
}

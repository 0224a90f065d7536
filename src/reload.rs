//! Owns the running config: starts the probe tasks, and on a reload (SIGHUP, `POST /-/reload`
//! or a changed file) loads the config again and switches to it, or keeps the old one running
//! when the new one is invalid.
//!
//! It sits between config and runner (config -> reload -> runner): it reads the config,
//! never the other way. A refused reload is a [`ReloadError`], whose text `POST /-/reload`
//! answers and the log shows.

use crate::config::{self, Config};
use crate::runner;
use crate::store::State;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The config in force, shared with the HTTP handlers (`/probe` reads it).
pub(crate) type SharedConfig = Arc<RwLock<Arc<Config>>>;

/// How long a reload may spend reading the config and its secret files.
const LOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// A reload request; the answer says what happened.
pub(crate) type ReloadRequest = oneshot::Sender<Result<String, ReloadError>>;

/// Why a reload left the old config running. Its text is what `POST /-/reload` answers.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReloadError {
    #[error("this config does not come from a file: nothing to reload")]
    NotFromFile,
    /// The file did not load at all (unreadable, broken YAML, too slow to read).
    #[error(transparent)]
    Load(#[from] config::ConfigError),
    /// The file loaded with invalid entries: one line each, in file order.
    #[error("{}", lines(.0))]
    Invalid(Vec<config::ConfigError>),
    /// The runtime is shutting down: the new config was not switched to.
    #[error("shutting down: the config was not switched")]
    ShuttingDown,
}

fn lines(errors: &[config::ConfigError]) -> String {
    errors
        .iter()
        .map(std::string::ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) struct Supervisor {
    /// None when the config is not from a file (the demo): reloads are refused.
    path: Option<PathBuf>,
    /// `--target` URLs, added to the file's probes on each load.
    targets: Vec<config::TargetUrl>,
    state: Arc<State>,
    config: SharedConfig,
    shutdown: CancellationToken,
    generation: CancellationToken,
    tasks: JoinSet<()>,
    /// The share of every config loaded that runs here (`--shard`).
    shard: config::shard::Shard,
}

impl Supervisor {
    /// Starts the probes of `config`.
    pub(crate) fn start(
        path: Option<PathBuf>,
        targets: Vec<config::TargetUrl>,
        state: Arc<State>,
        config: SharedConfig,
        shutdown: CancellationToken,
    ) -> Self {
        let mut s = Supervisor {
            path,
            targets,
            state,
            config,
            generation: shutdown.child_token(),
            shutdown,
            tasks: JoinSet::new(),
            shard: config::shard::Shard::WHOLE,
        };
        s.spawn();
        s
    }

    /// Keeps only `shard`'s share of every config a reload reads (the first one is cut by
    /// the caller before [`Supervisor::start`]).
    pub(crate) fn with_shard(mut self, shard: config::shard::Shard) -> Self {
        self.shard = shard;
        self
    }

    fn current(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn spawn(&mut self) {
        let config = self.current();
        self.generation = self.shutdown.child_token();
        self.tasks = runner::spawn_all(&config.probes, self.state.clone(), self.generation.clone());
    }

    /// Loads the file again; an invalid config (any error at all) leaves the old one running.
    pub(crate) async fn reload(&mut self) -> Result<String, ReloadError> {
        let result = self.load_and_switch().await;
        // Whatever the outcome, the whole file was parsed and most of it is freed by now (its
        // tree, the other shards' probes, the old config or the rejected new one): give it
        // back, or glibc keeps it resident (core/heap.rs). Off the async workers: it walks
        // every arena, milliseconds for a large heap.
        let _ = tokio::task::spawn_blocking(crate::core::heap::release_freed).await;
        result
    }

    async fn load_and_switch(&mut self) -> Result<String, ReloadError> {
        let Some(path) = self.path.clone() else {
            return Err(ReloadError::NotFromFile);
        };
        let state = self.state.clone();
        let metrics = &state.metrics;
        // Off the async workers and with a time limit: a config on a hung network mount must
        // not freeze the process (a FIFO is already refused without blocking). On a thread of
        // its own rather than the blocking pool: its malloc arena then holds only the load,
        // which the cut below copies out of and frees whole (core/heap.rs).
        let reading = config::load_apart(Some(path.clone()), self.targets.clone());
        let read = match tokio::time::timeout(LOAD_TIMEOUT, reading).await {
            Ok(read) => read,
            Err(_) => Err(config::ConfigError {
                file: path.display().to_string(),
                loc: config::node::Loc { line: 1, col: 1 },
                probe: None,
                msg: format!(
                    "reading the config file took longer than {}s",
                    LOAD_TIMEOUT.as_secs()
                ),
            }),
        };
        let loaded = match read {
            Ok(l) if l.errors.is_empty() => l,
            Ok(l) => {
                metrics.config_reload_ok.set(0);
                let e = ReloadError::Invalid(l.errors);
                tracing::error!("reload rejected, the old config keeps running:\n{e}");
                return Err(e);
            }
            Err(e) => {
                metrics.config_reload_ok.set(0);
                tracing::error!("reload rejected, the old config keeps running: {e}");
                return Err(e.into());
            }
        };
        // The share is copied (probes built again, which may read their files): off the
        // async workers too, while the old config keeps running.
        let shard = self.shard;
        let new = match tokio::task::spawn_blocking(move || loaded.config.shard(shard)).await {
            Ok(config) => Arc::new(config),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => return Err(ReloadError::ShuttingDown),
        };
        let old = self.current();
        // Stop the old generation's runs before the new one starts: its timetable ends once
        // the runs in flight are gone.
        self.generation.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.state.reconfigure(&old, &new);
        *self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = new.clone();
        self.spawn();
        metrics.config_reload_ok.set(1);
        metrics.config_invalid_entries.set(0);
        metrics
            .config_reload_time
            .set(crate::core::clock::unix_now());
        let msg = format!(
            "config reloaded: {} probes, {} incidents",
            new.probes.len(),
            new.incidents.len()
        );
        tracing::info!("{msg}");
        Ok(msg)
    }

    /// Serves reload requests, SIGHUP and (with `watch`) file changes until shutdown, then
    /// waits for the probe tasks to stop.
    pub(crate) async fn run(
        mut self,
        mut requests: mpsc::Receiver<ReloadRequest>,
        watch: Option<Duration>,
    ) {
        let mut hup = hangups();
        let mut stamp = self.path.as_deref().and_then(file_stamp);
        let mut poll = tokio::time::interval(watch.unwrap_or(Duration::from_secs(3600)));
        poll.tick().await;
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                Some(reply) = requests.recv() => {
                    let result = self.reload().await;
                    let _ = reply.send(result);
                }
                Some(()) = next_hangup(&mut hup) => {
                    tracing::info!("SIGHUP: reloading the config");
                    let _ = self.reload().await;
                }
                _ = poll.tick(), if watch.is_some() => {
                    let now = self.path.as_deref().and_then(file_stamp);
                    if now != stamp {
                        stamp = now;
                        tracing::info!("the config file changed: reloading");
                        let _ = self.reload().await;
                    }
                }
            }
        }
        while self.tasks.join_next().await.is_some() {}
    }
}

/// What tells a file changed: its modification time and length.
fn file_stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = Option<()>;

#[cfg(unix)]
fn hangups() -> Hangups {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}
#[cfg(not(unix))]
fn hangups() -> Hangups {
    None
}

#[cfg(unix)]
async fn next_hangup(h: &mut Hangups) -> Option<()> {
    match h {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}
#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangups) -> Option<()> {
    std::future::pending().await
}

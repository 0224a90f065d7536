//! The composition root: from a loaded config and a bound listener, build the metrics
//! registry, the state, the supervisor (reloads), the staleness tick and the HTTP server, and
//! run them until the shutdown token is cancelled. main.rs parses the command line and calls
//! [`serve`]; tests can start an exporter in-process the same way. The only module that may
//! name every other one (tests/it/structure.rs).

use crate::config::Loaded;
use crate::metrics::Metrics;
use crate::reload::{SharedConfig, Supervisor};
use crate::runner;
use crate::server::{AppState, router};
use crate::store::State;
use crate::web::{Web, WebConfigError};
use prometheus_client::registry::Registry;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How often every incident is judged again without a new result: staleness turns an
/// incident unknown even when no result arrives to trigger it.
const EVALUATE_EVERY: Duration = Duration::from_secs(5);

/// The runtime every command runs on (main.rs), and that an embedding program can use to
/// run [`serve`] as `pathwatch serve` does.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// What [`serve`] needs besides the config and the listener.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Where the config came from, for the `listening` log line (a path, `<demo config>`).
    pub source: String,
    /// The file a reload reads again (SIGHUP, `POST /-/reload`, `watch`); `None`: the config
    /// cannot be reloaded (the demo's is generated).
    pub config_path: Option<PathBuf>,
    /// `--target` URLs: probes added to the file's, again on every reload.
    pub targets: Vec<crate::config::TargetUrl>,
    /// Poll `config_path` for changes this often.
    pub watch: Option<Duration>,
    /// The web config (`--web-config`): TLS, client certificates, basic auth.
    pub web_config: Option<PathBuf>,
    /// The share of the config this replica runs (`--shard`); every reload keeps it.
    pub shard: crate::config::shard::Shard,
}

/// Why [`serve`] stopped other than by its token.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The web config does not load; nothing was started, so no endpoint was ever open.
    #[error(transparent)]
    WebConfig(#[from] WebConfigError),
    /// The listener's own address could not be read after binding.
    #[error("reading the bound address")]
    Address(#[source] std::io::Error),
    /// The HTTP server's accept loop failed.
    #[error("HTTP server failed")]
    Http(#[source] std::io::Error),
}

/// Runs the probes of `loaded` and serves HTTP on `listener` until `shutdown` is cancelled,
/// then lets the requests in flight finish and waits for the supervisor and the tick.
/// Invalid config entries are logged and skipped; the valid probes run.
pub async fn serve(
    loaded: Loaded,
    listener: TcpListener,
    shutdown: CancellationToken,
    options: Options,
) -> Result<(), ServeError> {
    // reqwest (webhooks, GCP) and tokio-rustls find the ring provider through the process
    // default; main.rs installs it too, this makes an in-process exporter whole. A second
    // install is refused harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Before anything starts: a bad web config must not leave the endpoints open.
    let web = Web::load(options.web_config.as_deref())?;
    let mut loaded = loaded;
    loaded.config = loaded.config.shard(options.shard);
    // The whole file's tree and, sharded, the other shards' probes are freed now: give that
    // memory back before the probes start (core/heap.rs), or it stays resident for good.
    crate::core::heap::release_freed();
    for e in &loaded.errors {
        tracing::error!(error = %e, "invalid config entry skipped");
    }

    let mut registry = Registry::with_prefix("pathwatch");
    let metrics = Metrics::new(&mut registry);
    metrics.set_shard(options.shard.index, options.shard.count);
    metrics
        .config_reload_ok
        .set(i64::from(loaded.errors.is_empty()));
    metrics
        .config_invalid_entries
        .set(loaded.errors.len() as i64);
    metrics
        .config_reload_time
        .set(crate::core::clock::unix_now());
    for p in &loaded.config.probes {
        metrics.init_probe(p);
    }
    let state = Arc::new(State::new(metrics, &loaded.config));
    let ready = Arc::new(AtomicBool::new(false));
    let probes = loaded.config.probes.len();
    let config: SharedConfig = Arc::new(std::sync::RwLock::new(Arc::new(loaded.config)));
    let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(4);
    let app = AppState {
        registry: Arc::new(registry),
        encoded_bytes: Arc::default(),
        state: state.clone(),
        ready: ready.clone(),
        config: config.clone(),
        reload: reload_tx,
    };

    let addr = listener.local_addr().map_err(ServeError::Address)?;
    tracing::info!(
        addr = %addr,
        probes,
        shard = %options.shard,
        config = %options.source,
        version = env!("CARGO_PKG_VERSION"),
        "listening"
    );

    let supervisor = Supervisor::start(
        options.config_path,
        options.targets,
        state.clone(),
        config,
        shutdown.clone(),
    )
    .with_shard(options.shard);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(supervisor.run(reload_rx, options.watch));
    tasks.spawn(runner::schedule(
        EVALUATE_EVERY,
        EVALUATE_EVERY,
        shutdown.clone(),
        move |_| {
            state.evaluate_all();
            std::future::ready(None)
        },
    ));
    ready.store(true, Ordering::Relaxed);

    let served = crate::web::serve(listener, router(app), web, shutdown.clone()).await;
    ready.store(false, Ordering::Relaxed);
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}
    served.map_err(ServeError::Http)?;
    tracing::info!("stopped");
    Ok(())
}

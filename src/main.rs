//! The `pathwatch` command: parses the command line and runs one command (`serve`, `demo`,
//! `sim`, `check`, `validate`, `schema`) on one runtime; maps outcomes to exit codes (0, 1,
//! 2 for a bad config). The exporter itself is wired in the library ([`pathwatch::app`]).

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use pathwatch::app;
use pathwatch::config::shard::{MAX_COUNT, Shard};
use pathwatch::config::{self, Loaded};
use pathwatch::telemetry::{self, LogFormat};
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// Exit code for a config that does not load or validate.
const EXIT_BAD_CONFIG: u8 = 2;

#[derive(Parser)]
#[command(
    name = "pathwatch",
    version,
    about = "Turns an incident's resolution criteria into continuous probes and Prometheus metrics"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "PATHWATCH_LOG_FORMAT")]
    log_format: LogFormat,
    /// Log level (RUST_LOG overrides it).
    #[arg(
        long,
        global = true,
        default_value = "info",
        env = "PATHWATCH_LOG_LEVEL"
    )]
    log_level: String,
    /// Without one, the help is printed (exit 0).
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the probes on their schedules and serve /metrics.
    ///
    /// Probes come from --config, from --target URLs, or both. With neither, DATABASE_URL
    /// is the target (or, without it, PGHOST and the other libpq variables).
    #[command(after_help = TARGET_HELP)]
    Serve {
        /// Config file (YAML).
        #[arg(long, short, env = "PATHWATCH_CONFIG")]
        config: Option<PathBuf>,
        /// Probe this URL with its kind's defaults, no config file needed; repeatable, and
        /// added to the config's probes. See the forms below.
        #[arg(long = "target", value_name = "URL")]
        targets: Vec<String>,
        /// Address to serve HTTP on.
        #[arg(long, default_value = "0.0.0.0:9778", env = "PATHWATCH_LISTEN")]
        listen: String,
        /// Web config (YAML): TLS, client certificates, basic auth. Plain HTTP without it.
        #[arg(long, value_name = "FILE", env = "PATHWATCH_WEB_CONFIG")]
        web_config: Option<PathBuf>,
        /// Reload the config when the file changes, checking this often (e.g. 10s). SIGHUP
        /// and `POST /-/reload` reload it in any case.
        #[arg(long, value_parser = watch_period, env = "PATHWATCH_WATCH_CONFIG")]
        watch_config: Option<std::time::Duration>,
        /// Run only this share of the config: INDEX/COUNT (e.g. 1/3), or ordinal/COUNT to take
        /// INDEX from a StatefulSet pod name in HOSTNAME (pathwatch-2 -> 2). Every replica
        /// reads the same config; `pathwatch shards` prints the plan.
        #[arg(long, value_name = "INDEX/COUNT", value_parser = shard_arg, env = "PATHWATCH_SHARD")]
        shard: Option<Shard>,
    },
    /// Start the reference service and pathwatch probing it; walk an incident on a loop.
    Demo {
        /// Address to serve pathwatch's HTTP on.
        #[arg(long, default_value = "127.0.0.1:9778", env = "PATHWATCH_LISTEN")]
        listen: String,
        /// Web config (YAML): TLS, client certificates, basic auth. Plain HTTP without it.
        #[arg(long, value_name = "FILE", env = "PATHWATCH_WEB_CONFIG")]
        web_config: Option<PathBuf>,
        /// Address of the reference service (default: a free port on 127.0.0.1).
        #[arg(long, default_value = "127.0.0.1:0")]
        sim_listen: String,
        /// Plays the scenario this many times faster (tests use it).
        #[arg(long, default_value_t = 1.0, hide = true)]
        speed: f64,
        /// Print the Alertmanager notifications sent to this address (the webhooks of
        /// alerts/alertmanager.yml), one line per alert; `off` for none. When it is taken the
        /// demo says so and goes on without it.
        #[arg(long, value_name = "ADDR|off", default_value = pathwatch::sim::receiver::DEFAULT_LISTEN)]
        webhook_listen: String,
    },
    /// Run only the reference golden-path service (auth, health, WebSocket, fault switches).
    Sim {
        /// Address of the reference service (backend, auth, ClickHouse ping, Google APIs).
        #[arg(long, default_value = "127.0.0.1:8000")]
        listen: String,
        /// Password every email logs in with.
        #[arg(long, default_value = pathwatch::demo::DEMO_PASSWORD)]
        password: String,
        /// Enables POST /auth/e2e/test-auth with this X-E2E-Bypass-Key.
        #[arg(long, env = "SIM_BYPASS_KEY")]
        bypass_key: Option<String>,
        /// Also serve the tiny Redis (RESP: AUTH, PING, SELECT, QUIT) on this address.
        #[arg(long)]
        redis_listen: Option<String>,
        /// Also print the Alertmanager notifications sent to this address, one line per
        /// alert (alerts/alertmanager.yml sends to 127.0.0.1:9095).
        #[arg(long, value_name = "ADDR")]
        webhook_listen: Option<String>,
        /// Also serve the Postgres stand-in (Cloud SQL) over TCP on this address.
        #[arg(long)]
        postgres_listen: Option<String>,
        /// Also serve the Postgres stand-in on `.s.PGSQL.5432` in this directory, e.g.
        /// `/tmp/cloudsql/PROJECT:REGION:INSTANCE` as Cloud Run's `/cloudsql/...`.
        #[arg(long)]
        postgres_socket_dir: Option<PathBuf>,
    },
    /// Run every probe once and judge the incidents: exit 0 resolved, 1 present, 2 bad config.
    ///
    /// Probes come from --config, from --target URLs, or both. With neither, DATABASE_URL
    /// is the target (or, without it, PGHOST and the other libpq variables).
    #[command(after_help = TARGET_HELP)]
    Check {
        /// Config file (YAML).
        #[arg(long, short, env = "PATHWATCH_CONFIG")]
        config: Option<PathBuf>,
        /// Probe this URL with its kind's defaults, no config file needed; repeatable, and
        /// added to the config's probes. See the forms below.
        #[arg(long = "target", value_name = "URL")]
        targets: Vec<String>,
        /// Only this incident.
        #[arg(long)]
        incident: Option<String>,
        /// Output: a table (text), JSON for scripts, or JUnit XML for CI systems.
        #[arg(long, value_enum, default_value_t = pathwatch::check::CheckFormat::Text)]
        format: pathwatch::check::CheckFormat,
        /// Run only this share of the config: INDEX/COUNT (e.g. 1/3), or ordinal/COUNT to take
        /// INDEX from a StatefulSet pod name in HOSTNAME (pathwatch-2 -> 2). Every replica
        /// reads the same config; `pathwatch shards` prints the plan.
        #[arg(long, value_name = "INDEX/COUNT", value_parser = shard_arg, env = "PATHWATCH_SHARD")]
        shard: Option<Shard>,
    },
    /// Print the config's JSON Schema (for editors and CI validation).
    Schema,
    /// Print another tool's config as a pathwatch config; name each field left behind.
    #[command(subcommand)]
    Import(Import),
    /// Check a config file and print every error with file:line:column; exit 2 if any.
    Validate {
        /// Config file (YAML).
        #[arg(env = "PATHWATCH_CONFIG")]
        file: PathBuf,
        /// Warn when a group is too large for this many shards (see `pathwatch shards`).
        #[arg(long, value_name = "INDEX/COUNT", value_parser = shard_arg, env = "PATHWATCH_SHARD")]
        shard: Option<Shard>,
    },
    /// Print how `--shard` splits a config over COUNT replicas: probes, groups, incidents and
    /// estimated /metrics bytes per shard.
    Shards {
        /// Config file (YAML).
        #[arg(env = "PATHWATCH_CONFIG")]
        file: PathBuf,
        /// Number of shards (replicas).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_COUNT)))]
        count: u32,
        /// Also say how many probes change shard when going from this many shards to COUNT.
        #[arg(long, value_name = "COUNT", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_COUNT)))]
        from: Option<u32>,
    },
}

#[derive(Subcommand)]
enum Import {
    /// blackbox_exporter's modules as on-demand modules (stdout); each field that has no
    /// pathwatch equivalent on stderr with its line. Exit 0: all converted, 1: fields left
    /// behind, 2: unreadable file.
    Blackbox {
        /// blackbox_exporter config file (YAML).
        file: PathBuf,
    },
}

/// The forms `--target` takes, under `serve --help` and `check --help`.
const TARGET_HELP: &str = "\
Target URLs (--target, DATABASE_URL):
  postgres://user:password@host:5432/dbname?sslmode=require
  postgresql:///dbname?host=/var/run/postgresql     a Unix socket directory
      Parts left out come from PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE and
      PGSSLMODE, as in psql; then host /var/run/postgresql, port 5432, user postgres.
      Query parameters: host, port, user, password, dbname, sslmode, sslrootcert,
      application_name.
  redis://[user:password@]host:6379[/db]    rediss:// for TLS
  http://host:port/path    https://...      user:password@ becomes basic auth
  tcp://host:port
Each becomes a probe named kind-host-port (postgres-127.0.0.1-5432); the password is a
secret: it never shows in names, metrics, logs or errors. A bad URL exits with 2.";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        // Bare `pathwatch`: say what it can do, as `--help` does; asking is not an error.
        let _ = <Cli as clap::CommandFactory>::command().print_help();
        return ExitCode::SUCCESS;
    };
    // The reference of the first startup a sidecar measures: this process's own start.
    let _ = pathwatch::probe::kinds::startup::process_start_unix();
    // reqwest, tokio-rustls and friends find the ring provider through this process default.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // One runtime for every command, entered before telemetry starts: the OTLP gRPC exporter
    // runs as a task on it.
    let runtime = match app::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pathwatch: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let entered = runtime.enter();
    let telemetry = telemetry::init(cli.log_format, &cli.log_level);
    let code = match command {
        Command::Validate { file, shard } => validate(&file, shard),
        Command::Shards { file, count, from } => shards(&file, count, from),
        Command::Import(Import::Blackbox { file }) => import_blackbox(&file),
        Command::Schema => {
            match serde_json::to_string_pretty(&pathwatch::schema::config_schema()) {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("pathwatch: cannot print the schema: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check {
            config,
            targets,
            incident,
            format,
            shard,
        } => match sources(config, &targets) {
            Ok(source) => block_on(&runtime, check(source, incident, format, shard)),
            Err(code) => code,
        },
        Command::Serve {
            config,
            targets,
            listen,
            watch_config,
            web_config,
            shard,
        } => match sources(config, &targets) {
            Ok(source) => block_on(
                &runtime,
                serve(source, listen, watch_config, web_config, shard),
            ),
            Err(code) => code,
        },
        Command::Demo {
            listen,
            sim_listen,
            speed,
            web_config,
            webhook_listen,
        } => block_on(
            &runtime,
            demo(listen, sim_listen, speed, web_config, webhook_listen),
        ),
        Command::Sim {
            listen,
            password,
            bypass_key,
            redis_listen,
            webhook_listen,
            postgres_listen,
            postgres_socket_dir,
        } => block_on(
            &runtime,
            sim(
                listen,
                password,
                bypass_key,
                redis_listen,
                webhook_listen,
                (postgres_listen, postgres_socket_dir),
            ),
        ),
    };
    // Flush the spans of the last runs while the runtime still runs the gRPC processor; from
    // this thread (not a runtime worker) blocking on it is fine. Nothing when traces are off.
    telemetry.shutdown();
    drop(entered);
    drop(runtime);
    code
}

fn block_on(
    runtime: &tokio::runtime::Runtime,
    fut: impl std::future::Future<Output = anyhow::Result<ExitCode>>,
) -> ExitCode {
    match runtime.block_on(fut) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Where `serve` and `check` take their probes from: the config file, the `--target` URLs,
/// both; with neither, `DATABASE_URL`, else the libpq variables when PGHOST is set (as the
/// demo does). Those variables are never added beside a config file or a `--target`: an
/// application's environment often holds them, and a probe nobody asked for would be a
/// surprise. A bad URL is a bad config: its error is printed here, exit 2.
fn sources(config: Option<PathBuf>, urls: &[String]) -> Result<Source, ExitCode> {
    let env = |name: &str| std::env::var(name).ok();
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    let given: Vec<(config::Origin, String)> = if config.is_some() || !urls.is_empty() {
        urls.iter()
            .enumerate()
            .map(|(i, u)| (config::Origin::Flag(i + 1), u.clone()))
            .collect()
    } else if let Some(url) = set("DATABASE_URL") {
        vec![(config::Origin::Env("DATABASE_URL"), url)]
    } else if set("PGHOST").is_some() {
        // Every part from the libpq variables, as a bare `psql` takes them.
        vec![(config::Origin::Env("PGHOST"), "postgresql://".to_string())]
    } else {
        eprintln!(
            "pathwatch: nothing to probe: give --config FILE or --target URL (or set DATABASE_URL)"
        );
        return Err(ExitCode::from(EXIT_BAD_CONFIG));
    };
    let mut targets = Vec::new();
    let mut bad = false;
    for (origin, url) in given {
        match config::TargetUrl::parse(origin, &url, &env) {
            Ok(t) => targets.push(t),
            Err(e) => {
                // Every bad URL at once, as `validate` lists every bad entry.
                eprintln!("{e}");
                bad = true;
            }
        }
    }
    if bad {
        return Err(ExitCode::from(EXIT_BAD_CONFIG));
    }
    Ok(Source {
        path: config,
        targets,
    })
}

/// A config file, target URLs, or both.
struct Source {
    path: Option<PathBuf>,
    targets: Vec<config::TargetUrl>,
}

impl Source {
    fn load(&self) -> Result<Loaded, config::ConfigError> {
        config::load_with(self.path.as_deref(), &self.targets)
    }

    /// What the `listening` line and errors call it: the file, and how many targets.
    fn describe(&self) -> String {
        let targets = match self.targets.len() {
            0 => String::new(),
            1 => "1 target".to_string(),
            n => format!("{n} targets"),
        };
        match (&self.path, targets.is_empty()) {
            (Some(p), true) => p.display().to_string(),
            (Some(p), false) => format!("{} and {targets}", p.display()),
            (None, _) => targets,
        }
    }
}

async fn check(
    source: Source,
    incident: Option<String>,
    format: pathwatch::check::CheckFormat,
    shard: Option<Shard>,
) -> anyhow::Result<ExitCode> {
    let mut loaded = match source.load() {
        Ok(l) if l.errors.is_empty() => l,
        Ok(l) => {
            for e in &l.errors {
                eprintln!("{e}");
            }
            return Ok(ExitCode::from(EXIT_BAD_CONFIG));
        }
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(EXIT_BAD_CONFIG));
        }
    };
    loaded.config = loaded.config.shard(shard.unwrap_or_default());
    match pathwatch::check::run(&loaded.config, incident.as_deref()).await {
        Err(e) => {
            eprintln!("{}: {e}", source.describe());
            Ok(ExitCode::from(EXIT_BAD_CONFIG))
        }
        Ok(report) => {
            print!("{}", pathwatch::check::render(&report, format));
            Ok(if report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// The config in `file` when it has no error; else every error printed, in file order, and
/// the exit code of a bad config (`validate`, `shards`).
fn load_valid(file: &std::path::Path) -> Result<config::Config, ExitCode> {
    match config::load(file) {
        Ok(Loaded { config, errors }) if errors.is_empty() => Ok(config),
        Ok(Loaded { errors, .. }) => {
            for e in &errors {
                eprintln!("{e}");
            }
            Err(ExitCode::from(EXIT_BAD_CONFIG))
        }
        Err(e) => {
            eprintln!("{e}");
            Err(ExitCode::from(EXIT_BAD_CONFIG))
        }
    }
}

fn validate(file: &std::path::Path, shard: Option<Shard>) -> ExitCode {
    let config = match load_valid(file) {
        Ok(c) => c,
        Err(code) => return code,
    };
    println!("{}: OK ({} probes)", file.display(), config.probes.len());
    // Valid, but `serve` would probe nothing: most likely not what was meant.
    if config.probes.is_empty() {
        eprintln!(
            "{}: warning: no probes configured (serve would only export its own metrics)",
            file.display()
        );
    }
    let count = shard.map(|s| s.count);
    if let Some(w) = config::shard::large_group_warning(&config, count) {
        eprintln!("{}: warning: {w}", file.display());
    }
    ExitCode::SUCCESS
}

/// `pathwatch import blackbox`: the converted config on stdout, what it leaves behind on stderr.
fn import_blackbox(file: &std::path::Path) -> ExitCode {
    let shown = file.display();
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{shown}: cannot read: {e}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    match pathwatch::import::blackbox::convert(&text) {
        Err(e) => {
            eprintln!("{shown}:{}:{}: {e}", e.loc.line, e.loc.col);
            ExitCode::from(EXIT_BAD_CONFIG)
        }
        Ok(c) => {
            print!("{}", c.yaml);
            for d in &c.dropped {
                eprintln!("{shown}:{}:{}: {d}", d.loc.line, d.loc.col);
            }
            eprintln!(
                "{shown}: {} modules converted, {} fields left behind",
                c.modules,
                c.dropped.len()
            );
            if c.dropped.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// `pathwatch shards`: the plan of a valid config over `count` shards.
fn shards(file: &std::path::Path, count: u32, from: Option<u32>) -> ExitCode {
    let config = match load_valid(file) {
        Ok(c) => c,
        Err(code) => return code,
    };
    print!("{}", config::shard::render_plan(&config, count));
    if let Some(from) = from {
        let (moved, total) = config::shard::moved(&config, from, count);
        println!(
            "from {from} to {count} shards: {moved} of {total} probes change shard ({:.1} %)",
            100.0 * moved as f64 / total.max(1) as f64
        );
    }
    if let Some(w) = config::shard::large_group_warning(&config, Some(count)) {
        eprintln!("{}: warning: {w}", file.display());
    }
    ExitCode::SUCCESS
}

async fn serve(
    source: Source,
    listen: String,
    watch: Option<std::time::Duration>,
    web_config: Option<PathBuf>,
    shard: Option<Shard>,
) -> anyhow::Result<ExitCode> {
    // Apart from the probes that will run: app::serve copies the share out of the load, and
    // all the load leaves behind (the tree, the other shards' probes) is freed whole.
    let loaded = match config::load_apart(source.path.clone(), source.targets.clone()).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("{e}");
            return Ok(ExitCode::from(EXIT_BAD_CONFIG));
        }
    };
    let listener = bind(&listen).await?;
    let token = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(token.clone()));
    let options = app::Options {
        source: source.describe(),
        config_path: source.path,
        targets: source.targets,
        watch,
        web_config,
        shard: shard.unwrap_or_default(),
    };
    run(loaded, listener, token, options).await
}

/// pathwatch's own listener. Bound before anything is announced or started, so a taken port
/// fails at once (exit 1) instead of after the demo has printed its URLs.
async fn bind(listen: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))
}

async fn demo(
    listen: String,
    sim_listen: String,
    speed: f64,
    web_config: Option<PathBuf>,
    webhook_listen: String,
) -> anyhow::Result<ExitCode> {
    let listener = bind(&listen).await?;
    let token = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(token.clone()));
    let sim_listener = tokio::net::TcpListener::bind(&sim_listen)
        .await
        .with_context(|| format!("cannot listen on {sim_listen} for the reference service"))?;
    let sim_addr = sim_listener
        .local_addr()
        .context("reference service address")?;
    // Redis on the sim's host, on a free port: the demo needs no port of its own for it.
    let redis_listener = tokio::net::TcpListener::bind((sim_addr.ip(), 0))
        .await
        .context("cannot listen for the reference service's Redis")?;
    let redis_addr = redis_listener
        .local_addr()
        .context("reference Redis address")?;
    let tls_listener = tokio::net::TcpListener::bind((sim_addr.ip(), 0))
        .await
        .context("cannot listen for the reference service's TLS port")?;
    let tls_addr = tls_listener.local_addr().context("reference TLS address")?;
    tokio::spawn(pathwatch::sim::serve_tls(tls_listener, token.clone()));
    let dns_addr = pathwatch::sim::dns::start_dns(sim_addr.ip(), token.clone())
        .await
        .context("cannot listen for the reference service's DNS")?;
    // gRPC health (the demo's grpc probe) on the sim's host, on a free port.
    let grpc_listener = tokio::net::TcpListener::bind((sim_addr.ip(), 0))
        .await
        .context("cannot listen for the reference service's gRPC health")?;
    let grpc_addr = grpc_listener
        .local_addr()
        .context("reference gRPC address")?;
    tokio::spawn(pathwatch::sim::serve_grpc(grpc_listener, token.clone()));
    let state = pathwatch::sim::SimState::new(pathwatch::demo::sim_options(speed));
    tokio::spawn(pathwatch::sim::serve(
        sim_listener,
        state.clone(),
        token.clone(),
    ));
    tokio::spawn(pathwatch::sim::serve_redis(
        redis_listener,
        state.clone(),
        token.clone(),
    ));

    // Kept to the end: dropping it removes the stand-in's socket directory.
    let pg = pathwatch::demo::start_postgres(sim_addr.ip(), state.clone(), token.clone())
        .await
        .context("cannot start the reference service's Postgres")?;
    let (vars, with_postgres) = pathwatch::demo::env_values(&|k| std::env::var(k).ok())?;
    let targets = pathwatch::demo::Targets {
        sim: sim_addr,
        redis: redis_addr,
        tls: tls_addr,
        dns: dns_addr,
        postgres: pg.tcp,
        postgres_socket: pg.socket_dir.clone(),
        grpc: grpc_addr,
    };
    let text = pathwatch::demo::config(&targets, with_postgres, speed);
    let env = |name: &str| vars.get(name).cloned().or_else(|| std::env::var(name).ok());
    let loaded = config::parse("<demo config>", &text, &env)
        .map_err(|e| anyhow::anyhow!("the bundled demo config is broken: {e}"))?;
    let shown = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or(listen)
        .replace("0.0.0.0", "127.0.0.1");
    println!(
        "demo: reference service on http://{sim_addr} (faults: http://{sim_addr}/admin/faults), Redis on {redis_addr}"
    );
    println!("demo: pathwatch status page http://{shown}/ and metrics http://{shown}/metrics");
    demo_webhooks(&webhook_listen, token.clone()).await;
    println!(
        "demo: reference Postgres (Cloud SQL) on {} and {}/.s.PGSQL.5432",
        pg.tcp,
        pg.socket_dir.display()
    );
    if !with_postgres {
        println!("demo: set DATABASE_URL or PGHOST to probe a real Postgres as `database`");
    }
    println!("demo: Ctrl-C stops it");
    tokio::spawn(pathwatch::demo::walk(state, speed, token.clone()));
    let options = app::Options {
        source: "<demo config>".into(),
        web_config,
        ..app::Options::default()
    };
    run(loaded, listener, token, options).await
}

async fn sim(
    listen: String,
    password: String,
    bypass_key: Option<String>,
    redis_listen: Option<String>,
    webhook_listen: Option<String>,
    (postgres_listen, postgres_socket_dir): (Option<String>, Option<PathBuf>),
) -> anyhow::Result<ExitCode> {
    let token = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(token.clone()));
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let state = pathwatch::sim::SimState::new(pathwatch::sim::SimOptions {
        password,
        bypass_key,
        ..pathwatch::demo::sim_options(1.0)
    });
    if let Some(redis_listen) = redis_listen {
        let redis = tokio::net::TcpListener::bind(&redis_listen)
            .await
            .with_context(|| format!("cannot listen on {redis_listen} for Redis"))?;
        let redis_addr = redis.local_addr().context("reading the Redis address")?;
        tracing::info!(addr = %redis_addr, "reference Redis listening");
        tokio::spawn(pathwatch::sim::serve_redis(
            redis,
            state.clone(),
            token.clone(),
        ));
    }
    if let Some(hooks) = webhook_listen.as_deref() {
        // Asked for by name: a taken port fails, as the other listeners do.
        let hooks = pathwatch::sim::receiver::spawn(hooks, token.clone())
            .await
            .with_context(|| format!("cannot listen on {hooks} for Alertmanager's webhooks"))?;
        tracing::info!(addr = %hooks, "webhook receiver listening");
    }
    let pg = pathwatch::sim::PgServer::new(state.clone());
    if let Some(pg_listen) = postgres_listen {
        let l = tokio::net::TcpListener::bind(&pg_listen)
            .await
            .with_context(|| format!("cannot listen on {pg_listen} for Postgres"))?;
        let pg_addr = l.local_addr().context("reading the Postgres address")?;
        tracing::info!(addr = %pg_addr, "reference Postgres listening");
        let (pg, token) = (pg.clone(), token.clone());
        tokio::spawn(async move { pg.serve(pathwatch::sim::PgListener::Tcp(l), token).await });
    }
    if let Some(dir) = postgres_socket_dir {
        let path = dir.join(".s.PGSQL.5432");
        let l = tokio::net::UnixListener::bind(&path)
            .with_context(|| format!("cannot listen on {} for Postgres", path.display()))?;
        tracing::info!(socket = %path.display(), "reference Postgres listening");
        let (pg, token) = (pg.clone(), token.clone());
        tokio::spawn(async move {
            pg.serve(pathwatch::sim::PgListener::Unix(l, path), token)
                .await
        });
    }
    tracing::info!(addr = %addr, "reference service listening");
    pathwatch::sim::serve(listener, state, token)
        .await
        .context("reference service failed")?;
    Ok(ExitCode::SUCCESS)
}

/// The demo's receiver of Alertmanager's webhooks. A taken port is said and skipped: the demo
/// serves more than the paging walkthrough, and a second demo (or the user's own receiver on
/// 9095) must not stop it.
async fn demo_webhooks(listen: &str, token: CancellationToken) {
    use pathwatch::sim::receiver;
    let Some(listen) = receiver::parse_listen(listen) else {
        return;
    };
    match receiver::spawn(listen, token).await {
        Ok(a) => println!(
            "demo: Alertmanager notifications to http://{a}/pager, /tickets and /default print here, one line per alert"
        ),
        Err(e) => println!(
            "demo: cannot listen on {listen} for Alertmanager's webhooks ({e}): notifications will not print here (--webhook-listen ADDR picks another address, --webhook-listen off none)"
        ),
    }
}

/// Runs the exporter (pathwatch::app) and turns how it stopped into the exit code: a web
/// config that does not load is a bad config (2), like the config itself.
async fn run(
    loaded: Loaded,
    listener: tokio::net::TcpListener,
    token: CancellationToken,
    options: app::Options,
) -> anyhow::Result<ExitCode> {
    match app::serve(loaded, listener, token, options).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(app::ServeError::WebConfig(e)) => {
            tracing::error!("{e}");
            Ok(ExitCode::from(EXIT_BAD_CONFIG))
        }
        Err(e) => Err(e.into()),
    }
}

/// SIGTERM (Kubernetes, Cloud Run) and Ctrl-C both end the process gracefully.
async fn shutdown_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down: cancelling probes");
    token.cancel();
}

/// `--shard`: `INDEX/COUNT`, or `ordinal/COUNT` with the index from a StatefulSet pod's
/// HOSTNAME.
fn shard_arg(text: &str) -> Result<Shard, config::shard::ShardError> {
    Shard::parse(text, std::env::var("HOSTNAME").ok().as_deref())
}

/// Why a `--watch-config` period is refused (clap prints it after the option's name).
#[derive(Debug, thiserror::Error)]
enum WatchPeriodError {
    #[error(transparent)]
    Parse(#[from] humantime::DurationError),
    #[error("the period must be from 100ms to 24h")]
    Range,
}

/// `--watch-config`: a period from 100ms to a day (zero would panic the timer, and a
/// period past the clock's range would overflow it).
fn watch_period(text: &str) -> Result<std::time::Duration, WatchPeriodError> {
    let d = humantime::parse_duration(text)?;
    let range = std::time::Duration::from_millis(100)..=std::time::Duration::from_secs(86_400);
    if range.contains(&d) {
        Ok(d)
    } else {
        Err(WatchPeriodError::Range)
    }
}
